//! Text from the data on its way into the page: every string is hostile.
//!
//! Three steps, always in this order:
//! 1. [`clip`]: at most [`MAX_TEXT_CHARS`] characters (a longer string keeps its first
//!    `MAX_TEXT_CHARS - 1` characters and ends with `…`), and characters that are unsafe or
//!    misleading on screen are replaced by U+FFFD: C0 controls except tab and line feed
//!    (so also CR and NUL), DEL, C1 controls, and the bidirectional overrides and isolates
//!    (U+202A–U+202E, U+2066–U+2069, which could make text read differently than it is).
//!    This clipped text is what `data-*` attributes and tooltips carry.
//! 2. `short` (crate-private): for display, a clipped string longer than a chart's room keeps
//!    its start and its end with `…` in the middle (ARNs differ at the end).
//! 3. `esc` (crate-private): HTML escaping of `& < > " '`, valid in text, in double-quoted
//!    attributes and in inline SVG alike. No data is ever written into a script, style or URL
//!    context.

/// Longest text (in characters) that the page carries for one datum.
pub const MAX_TEXT_CHARS: usize = 1024;

fn unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{B}'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}')
}

/// Sanitized text of at most [`MAX_TEXT_CHARS`] characters (see the module docs).
pub fn clip(s: &str) -> String {
    clip_to(s, MAX_TEXT_CHARS)
}

fn clip_to(s: &str, max: usize) -> String {
    let max = max.max(1);
    let long = s.char_indices().nth(max).is_some();
    let keep = if long { max - 1 } else { max };
    let mut out = String::with_capacity(s.len().min(4 * max));
    for c in s.chars().take(keep) {
        out.push(if unsafe_char(c) { '\u{FFFD}' } else { c });
    }
    if long {
        out.push('…');
    }
    out
}

/// `s` (already clipped) shortened to `max` characters for display: start … end.
pub(crate) fn short(s: &str, max: usize) -> String {
    let max = max.max(3);
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head = (max - 1) * 2 / 5;
    let tail = max - 1 - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// Appends `s` HTML-escaped (and sanitized, in case it was not clipped).
pub(crate) fn esc_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if unsafe_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `s` HTML-escaped.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    esc_into(&mut out, s);
    out
}

/// A count with thousands separators: 1234567 → "1,234,567".
pub(crate) fn group(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A coordinate for SVG: one decimal, never NaN or infinite.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".into();
    }
    let s = format!("{x:.1}");
    match s.strip_suffix(".0") {
        Some(i) if i != "-0" => i.to_string(),
        Some(_) => "0".into(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_limits_and_sanitizes() {
        assert_eq!(
            clip("a\u{0}b\r\n\tc\u{202E}d\u{85}"),
            "a\u{FFFD}b\u{FFFD}\n\tc\u{FFFD}d\u{FFFD}"
        );
        let long = "x".repeat(MAX_TEXT_CHARS + 5);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_TEXT_CHARS);
        assert!(c.ends_with('…'));
        let exact = "é".repeat(MAX_TEXT_CHARS);
        assert_eq!(clip(&exact), exact);
        assert_eq!(clip(""), "");
    }

    #[test]
    fn short_keeps_both_ends() {
        let arn = "arn:aws:iam::123456789012:assumed-role/VeryLongRoleName/alice@example.com";
        let s = short(arn, 30);
        assert_eq!(s.chars().count(), 30);
        assert!(s.starts_with("arn:aws:iam"));
        assert!(s.ends_with("example.com"));
        assert_eq!(short("abc", 30), "abc");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x" b='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; b=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(esc("]]></svg>"), "]]&gt;&lt;/svg&gt;");
    }

    #[test]
    fn numbers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(u64::MAX as u128), "18,446,744,073,709,551,615");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.26), "1.3");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(f64::NAN), "0");
    }
}
