//! Timestamps as CloudTrail writes them (RFC 3339, `2023-09-21T22:22:52Z`), parsed to
//! epoch milliseconds without allocating; and UTC calendar days for partitioning.

/// Parses an RFC 3339 timestamp to milliseconds since the Unix epoch (UTC).
///
/// Accepts `YYYY-MM-DDTHH:MM:SS`, optional fractional seconds (any number of digits,
/// truncated to milliseconds), and `Z` or a `±HH:MM` offset; `t`, `z` and a space
/// separator are tolerated. Returns `None` for anything else, including out-of-range
/// fields (month 13, second 61), so callers can report the original text.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    Some(secs * 1000 + millis)
}

/// The UTC calendar day of an epoch-millisecond instant, as the number `YYYYMMDD`.
pub fn utc_day(ms: i64) -> u32 {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    (y * 10_000 + m * 100 + d) as u32
}

/// An epoch-millisecond instant as CloudTrail writes `eventTime`:
/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub fn format_rfc3339_s(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Midnight UTC of the day `YYYYMMDD`, in epoch milliseconds (`None` if not a date).
pub fn day_start_ms(day: u32) -> Option<i64> {
    let (y, m, d) = (
        i64::from(day / 10_000),
        i64::from(day / 100 % 100),
        i64::from(day % 100),
    );
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

// Howard Hinnant's algorithms (public domain), proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_days_round_trip() {
        let ms = parse_rfc3339_ms("2024-02-29T23:59:07Z").unwrap();
        assert_eq!(format_rfc3339_s(ms), "2024-02-29T23:59:07Z");
        assert_eq!(format_rfc3339_s(ms + 999), "2024-02-29T23:59:07Z");
        assert_eq!(
            day_start_ms(20240229),
            parse_rfc3339_ms("2024-02-29T00:00:00Z")
        );
        assert_eq!(utc_day(day_start_ms(20240301).unwrap()), 20240301);
        assert_eq!(day_start_ms(20230229), None);
        assert_eq!(day_start_ms(20241301), None);
        assert_eq!(format_rfc3339_s(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_cloudtrail_times() {
        // Values from the OCSF golden samples.
        assert_eq!(
            parse_rfc3339_ms("2023-09-21T22:22:52Z"),
            Some(1_695_334_972_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-03-17T17:07:59Z"),
            Some(1_679_072_879_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-10T16:24:34Z"),
            Some(1_699_633_474_000)
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Some(-1000));
    }

    #[test]
    fn fractions_offsets_and_separators() {
        let base = 1_704_164_645_000;
        assert_eq!(
            parse_rfc3339_ms("2024-01-02T03:04:05.123Z"),
            Some(base + 123)
        );
        assert_eq!(parse_rfc3339_ms("2024-01-02T03:04:05.1Z"), Some(base + 100));
        assert_eq!(
            parse_rfc3339_ms("2024-01-02T03:04:05.123456789Z"),
            Some(base + 123)
        );
        assert_eq!(parse_rfc3339_ms("2024-01-02t03:04:05z"), Some(base));
        assert_eq!(parse_rfc3339_ms("2024-01-02 03:04:05Z"), Some(base));
        assert_eq!(parse_rfc3339_ms("2024-01-01T22:04:05-05:00"), Some(base));
        assert_eq!(parse_rfc3339_ms("2024-01-02T05:34:05+02:30"), Some(base));
    }

    #[test]
    fn rejects_malformed_times() {
        for bad in [
            "",
            "not-a-time",
            "2024-01-02",
            "2024-01-02T03:04:05",
            "2024-13-02T03:04:05Z",
            "2023-02-29T03:04:05Z",
            "2024-01-32T03:04:05Z",
            "2024-01-02T24:04:05Z",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05Zjunk",
            "2024-01-02T03:04:05+0500",
            "２０２４-01-02T03:04:05Z",
            "2024-01-02T03:04:05+25:00",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(1_695_334_972_000), 20230921);
        assert_eq!(utc_day(0), 19700101);
        assert_eq!(utc_day(-1), 19691231);
        assert_eq!(
            utc_day(parse_rfc3339_ms("2024-02-29T23:59:59.999Z").unwrap()),
            20240229
        );
        assert_eq!(
            utc_day(parse_rfc3339_ms("2024-03-01T00:30:00+01:00").unwrap()),
            20240229
        );
        // Round trip over a long span, day by day.
        for d in -800_000..800_000i64 {
            if d % 997 != 0 {
                continue;
            }
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
