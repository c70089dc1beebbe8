//! The day axis of the per-day charts: every calendar day between the first and the last
//! (days without data are drawn as zero), sorted, at most [`MAX_DAYS`].

use std::collections::BTreeSet;

/// Most days one per-day chart draws; older days are left out (and counted on the page).
pub const MAX_DAYS: usize = 366;

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of an exact `YYYY-MM-DD`, if it is a real date.
pub(crate) fn parse_day(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    if !digits.bytes().all(|d| d.is_ascii_digit()) {
        return None;
    }
    let ms = trailhouse_cloudtrail::time::day_start_ms(digits.parse().ok()?)?;
    Some(ms / DAY_MS)
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub(crate) fn format_day(z: i64) -> String {
    trailhouse_cloudtrail::time::format_rfc3339_s(z * DAY_MS)[..10].to_string()
}

/// A range end: its first 10 characters as a day (so RFC 3339 timestamps work too).
fn parse_range_end(s: &str) -> Option<i64> {
    s.get(..10).and_then(parse_day)
}

/// The axis for the given data days and optional range: (days, older days left out).
///
/// When every data day is a real `YYYY-MM-DD`, the axis is every calendar day from the first
/// to the last of the data days and the range ends; otherwise (hostile day strings) it is the
/// distinct data days, sorted as text.
pub(crate) fn axis<'a>(
    days: impl IntoIterator<Item = &'a str>,
    range: Option<&(String, String)>,
) -> (Vec<String>, usize) {
    let set: BTreeSet<&str> = days.into_iter().collect();
    let parsed: Option<Vec<i64>> = set.iter().map(|d| parse_day(d)).collect();
    if let Some(mut parsed) = parsed {
        if let Some((a, b)) = range
            && let (Some(a), Some(b)) = (parse_range_end(a), parse_range_end(b))
            && a <= b
        {
            parsed.push(a);
            parsed.push(b);
        }
        let (Some(&lo), Some(&hi)) = (parsed.iter().min(), parsed.iter().max()) else {
            return (Vec::new(), 0);
        };
        let span = usize::try_from(hi - lo).unwrap_or(0).saturating_add(1);
        let hidden = span.saturating_sub(MAX_DAYS);
        let first = hi - (span - hidden) as i64 + 1;
        return ((first..=hi).map(format_day).collect(), hidden);
    }
    let all: Vec<String> = set.into_iter().map(str::to_string).collect();
    let hidden = all.len().saturating_sub(MAX_DAYS);
    (all[hidden..].to_vec(), hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "1970-01-01",
            "2000-02-29",
            "2026-12-31",
            "0001-01-01",
            "9999-12-31",
            "2024-03-01",
        ] {
            assert_eq!(format_day(parse_day(s).unwrap()), s);
        }
        assert_eq!(parse_day("1970-01-02"), Some(1));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "2026-01-01T00",
            "abcd-ef-gh",
            "",
            "２０２６-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn fills_gaps_and_caps() {
        let (ax, hidden) = axis(["2026-01-03", "2026-01-01", "2026-01-03"], None);
        assert_eq!(ax, ["2026-01-01", "2026-01-02", "2026-01-03"]);
        assert_eq!(hidden, 0);
        let r = ("2025-12-30".to_string(), "2026-01-02T23:59:59Z".to_string());
        let (ax, _) = axis(["2026-01-01"], Some(&r));
        assert_eq!(ax, ["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02"]);
        let huge = ("0001-01-01".to_string(), "9999-12-31".to_string());
        let (ax, hidden) = axis([], Some(&huge));
        assert_eq!(ax.len(), MAX_DAYS);
        assert_eq!(ax.last().map(String::as_str), Some("9999-12-31"));
        assert!(hidden > 3_000_000);
        let (ax, hidden) = axis(["b", "<a>", "b"], None);
        assert_eq!((ax, hidden), (vec!["<a>".to_string(), "b".to_string()], 0));
        assert_eq!(axis([], None), (Vec::new(), 0));
    }
}
