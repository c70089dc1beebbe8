//! UTC calendar arithmetic and the timestamp formats CloudTrail uses, without a
//! date crate (Howard Hinnant's civil-date algorithms).

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Date for days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// True when (y, m, d) is a real calendar date.
pub(crate) fn is_valid_date(y: i32, m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && d >= 1 && civil_from_days(days_from_civil(y, m, d)) == (y, m, d)
}

fn push2(out: &mut String, v: u32) {
    out.push((b'0' + (v / 10) as u8) as char);
    out.push((b'0' + (v % 10) as u8) as char);
}

fn push4(out: &mut String, v: i32) {
    let v = v.clamp(0, 9999) as u32;
    push2(out, v / 100);
    push2(out, v % 100);
}

/// Splits epoch seconds into (date, hour, minute, second).
fn split(secs: i64) -> ((i32, u32, u32), u32, u32, u32) {
    let day = secs.div_euclid(DAY);
    let sod = secs.rem_euclid(DAY) as u32;
    (civil_from_days(day), sod / 3600, sod / 60 % 60, sod % 60)
}

/// `2024-01-02T03:04:05Z`, CloudTrail's `eventTime` format.
pub(crate) fn push_event_time(out: &mut String, secs: i64) {
    let ((y, m, d), hh, mm, ss) = split(secs);
    push4(out, y);
    out.push('-');
    push2(out, m);
    out.push('-');
    push2(out, d);
    out.push('T');
    push2(out, hh);
    out.push(':');
    push2(out, mm);
    out.push(':');
    push2(out, ss);
    out.push('Z');
}

/// [`push_event_time`] into a new string.
pub(crate) fn event_time(secs: i64) -> String {
    let mut s = String::with_capacity(20);
    push_event_time(&mut s, secs);
    s
}

/// `YYYYMMDD` (UTC), the Security Lake `eventDay`.
pub(crate) fn event_day(secs: i64) -> String {
    let ((y, m, d), ..) = split(secs);
    let mut s = String::with_capacity(8);
    push4(&mut s, y);
    push2(&mut s, m);
    push2(&mut s, d);
    s
}

/// `YYYYMMDDTHHmmZ`, the delivery stamp in log-file names.
pub(crate) fn key_minute(secs: i64) -> String {
    let ((y, m, d), hh, mm, _) = split(secs);
    let mut s = String::with_capacity(14);
    push4(&mut s, y);
    push2(&mut s, m);
    push2(&mut s, d);
    s.push('T');
    push2(&mut s, hh);
    push2(&mut s, mm);
    s.push('Z');
    s
}

/// `YYYYMMDDTHHMMSSZ`, the stamp in digest-file names.
pub(crate) fn key_second(secs: i64) -> String {
    let mut s = key_minute(secs);
    s.pop();
    let (_, _, _, ss) = split(secs);
    push2(&mut s, ss);
    s.push('Z');
    s
}

/// `YYYY/MM/DD`, the date folders of a CloudTrail key.
pub(crate) fn key_folders(secs: i64) -> String {
    let ((y, m, d), ..) = split(secs);
    let mut s = String::with_capacity(10);
    push4(&mut s, y);
    s.push('/');
    push2(&mut s, m);
    s.push('/');
    push2(&mut s, d);
    s
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Java's `MMM d, yyyy h:mm:ss a` as IAM writes `createDate`
/// ("Mar 17, 2023 5:07:59 PM"); with `comma` the STS `expiration` variant
/// ("Mar 17, 2023, 5:07:59 PM"); `narrow_space` uses U+202F before AM/PM as
/// newer JDKs (CLDR 42+) print it.
pub(crate) fn java_date(secs: i64, comma: bool, narrow_space: bool) -> String {
    let ((y, m, d), hh, mm, ss) = split(secs);
    let mut s = String::with_capacity(28);
    s.push_str(MONTHS[(m - 1) as usize]);
    s.push(' ');
    s.push_str(&d.to_string());
    s.push_str(", ");
    s.push_str(&y.to_string());
    if comma {
        s.push(',');
    }
    s.push(' ');
    let h12 = if hh % 12 == 0 { 12 } else { hh % 12 };
    s.push_str(&h12.to_string());
    s.push(':');
    push2(&mut s, mm);
    s.push(':');
    push2(&mut s, ss);
    s.push(if narrow_space { '\u{202f}' } else { ' ' });
    s.push_str(if hh < 12 { "AM" } else { "PM" });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        for z in [-1000, 0, 19_000, 19_723, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert!(is_valid_date(2024, 2, 29));
        assert!(!is_valid_date(2023, 2, 29));
        assert!(!is_valid_date(2023, 13, 1));
    }

    #[test]
    fn formats() {
        let t = days_from_civil(2023, 3, 17) * DAY + 17 * 3600 + 7 * 60 + 59;
        assert_eq!(event_time(t), "2023-03-17T17:07:59Z");
        assert_eq!(event_day(t), "20230317");
        assert_eq!(key_minute(t), "20230317T1707Z");
        assert_eq!(key_second(t), "20230317T170759Z");
        assert_eq!(key_folders(t), "2023/03/17");
        assert_eq!(java_date(t, false, false), "Mar 17, 2023 5:07:59 PM");
        assert_eq!(java_date(t, true, true), "Mar 17, 2023, 5:07:59\u{202f}PM");
    }
}
