//! A tiny ordered, compact JSON writer. The workspace's serde_json has no
//! `preserve_order`, and CloudTrail's field order is part of what we imitate, so
//! records are written as text, in order, into reusable buffers.

/// True when one of the 8 bytes in `x` is a control character, a quote or a backslash
/// (the "has less than" / "has zero byte" word tricks; exact as a yes/no test).
#[inline]
fn needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ctl = x.wrapping_sub(ONES * 0x20) & !x;
    let q = x ^ (ONES * b'"' as u64);
    let q = q.wrapping_sub(ONES) & !q;
    let bs = x ^ (ONES * b'\\' as u64);
    let bs = bs.wrapping_sub(ONES) & !bs;
    (ctl | q | bs) & HIGH != 0
}

/// Appends `s` to `out` as the inside of a JSON string literal (no quotes).
/// Clean runs are found 8 bytes at a time and copied whole.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        while i + 8 <= bytes.len() {
            let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
            if needs_escape(word) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else { break };
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => {
                out.push_str(&s[start..i]);
                out.push_str("\\u00");
                out.push(crate::rng::HEX[(b >> 4) as usize] as char);
                out.push(crate::rng::HEX[(b & 0xf) as usize] as char);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        // `b` is ASCII, so `i` and `i + 1` are char boundaries.
        out.push_str(&s[start..i]);
        out.push_str(esc);
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// Writer over a borrowed buffer. Commas are inserted automatically: one flag
/// suffices because every value either opens a container (no comma next) or
/// completes one (comma next).
pub(crate) struct Json<'a> {
    out: &'a mut String,
    comma: bool,
}

impl<'a> Json<'a> {
    /// Starts writing at the end of `out`.
    pub(crate) fn new(out: &'a mut String) -> Self {
        Json { out, comma: false }
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.out.push(',');
        }
    }

    /// Writes `"k":` (k must need no escaping).
    #[inline]
    pub(crate) fn key(&mut self, k: &str) {
        self.sep();
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
        self.comma = false;
    }

    /// Opens an anonymous object (top level or array element).
    #[inline]
    pub(crate) fn open(&mut self) {
        self.sep();
        self.out.push('{');
        self.comma = false;
    }

    /// Closes an object.
    #[inline]
    pub(crate) fn close(&mut self) {
        self.out.push('}');
        self.comma = true;
    }

    /// Opens an anonymous array (top level or array element).
    #[inline]
    pub(crate) fn open_arr(&mut self) {
        self.sep();
        self.out.push('[');
        self.comma = false;
    }

    /// Opens an object-valued field.
    #[inline]
    pub(crate) fn obj(&mut self, k: &str) {
        self.key(k);
        self.out.push('{');
        self.comma = false;
    }

    /// Opens an array-valued field.
    #[inline]
    pub(crate) fn arr(&mut self, k: &str) {
        self.key(k);
        self.out.push('[');
        self.comma = false;
    }

    /// Closes an array.
    #[inline]
    pub(crate) fn close_arr(&mut self) {
        self.out.push(']');
        self.comma = true;
    }

    /// A string field.
    #[inline]
    pub(crate) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.val_str(v);
    }

    /// A string field whose value is already escaped JSON string content.
    pub(crate) fn str_escaped(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.push('"');
        self.out.push_str(v);
        self.out.push('"');
        self.comma = true;
    }

    /// A string value (array element, or after [`Json::key`]).
    #[inline]
    pub(crate) fn val_str(&mut self, v: &str) {
        self.sep();
        self.out.push('"');
        escape_into(self.out, v);
        self.out.push('"');
        self.comma = true;
    }

    /// A field whose value is raw JSON text.
    #[inline]
    pub(crate) fn raw(&mut self, k: &str, raw: &str) {
        self.key(k);
        self.out.push_str(raw);
        self.comma = true;
    }

    /// A raw JSON value (array element).
    pub(crate) fn val_raw(&mut self, raw: &str) {
        self.sep();
        self.out.push_str(raw);
        self.comma = true;
    }

    /// A boolean field.
    #[inline]
    pub(crate) fn bool(&mut self, k: &str, v: bool) {
        self.raw(k, if v { "true" } else { "false" });
    }

    /// An integer field.
    pub(crate) fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        push_int(self.out, v);
        self.comma = true;
    }

    /// A null field.
    #[inline]
    pub(crate) fn null(&mut self, k: &str) {
        self.raw(k, "null");
    }

    /// Direct access to the buffer, for formatted values after [`Json::key`];
    /// call [`Json::done`] afterwards.
    pub(crate) fn buf(&mut self) -> &mut String {
        self.out
    }

    /// Marks a value written through [`Json::buf`] as complete.
    pub(crate) fn done(&mut self) {
        self.comma = true;
    }
}

/// Appends the decimal form of `v`.
pub(crate) fn push_int(out: &mut String, v: i64) {
    let mut buf = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push('-');
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_ordered_compact_json_that_parses() {
        let mut s = String::new();
        let mut j = Json::new(&mut s);
        j.open();
        j.str("b", "q\"uo\\te\n\u{1}é");
        j.obj("a");
        j.int("n", -42);
        j.arr("xs");
        j.val_str("x");
        j.open();
        j.close();
        j.close_arr();
        j.close();
        j.null("z");
        j.bool("t", true);
        j.close();
        assert_eq!(
            s,
            r#"{"b":"q\"uo\\te\n\u0001é","a":{"n":-42,"xs":["x",{}]},"z":null,"t":true}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["b"], "q\"uo\\te\n\u{1}é");
    }

    #[test]
    fn escaping_matches_serde_json_for_every_byte_position() {
        let specials = [
            "\"", "\\", "\n", "\u{1}", "\u{1f}", "\t", "é", "🚀", "a", " ", "\u{7f}",
        ];
        for len in 0..20 {
            for sp in specials {
                for at in 0..=len {
                    let mut s: String = "x".repeat(len);
                    s.insert_str(at, sp);
                    let mut out = String::from("\"");
                    escape_into(&mut out, &s);
                    out.push('"');
                    let back: String = serde_json::from_str(&out).unwrap();
                    assert_eq!(back, s);
                    assert_eq!(out, serde_json::to_string(&s).unwrap());
                }
            }
        }
    }
}
