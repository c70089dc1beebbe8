//! The small parsers of untrusted text: S3 keys, timestamps, JSON compaction and the
//! flattening of unmapped fields. Every input goes through all of them.
//!
//! Invariants: no panic; `classify_key` parts come from the key; a parsed time agrees
//! with its own text (UTC day, time of day, milliseconds) and, when in 1970..=9999,
//! gives a day `PartitionKey` accepts; `compact_json` of valid JSON parses to the
//! same value, has no whitespace outside strings and is idempotent; every JSON
//! string (top level or object member) has a `text` (`None` is for null only);
//! `flatten` of a raw JSON value gives unique keys under the prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use trailhouse_cloudtrail::time::{parse_rfc3339_ms, utc_day};
use trailhouse_cloudtrail::record::text;
use trailhouse_cloudtrail::{KeyKind, RawJson, RawObject, classify_key};
use trailhouse_lake::PartitionKey;
use trailhouse_ocsf::mapper::compact_json;
use trailhouse_ocsf::unmapped::Unmapped;
use trailhouse_ocsf::{OcsfClass, Source};

/// 9999-12-31T23:59:59.999Z.
const MAX_MS: i64 = 253_402_300_799_999;

fn keys(s: &str) {
    match classify_key(s) {
        KeyKind::Log(p) | KeyKind::Digest(p) | KeyKind::Insight(p) => {
            // Parts come from the `AWSLogs/` layout or, outside it, from the file name.
            assert!(s.contains(&p.account) && s.contains(&p.region), "{p:?} not in {s:?}");
            assert!(s.starts_with(&p.prefix));
            if let Some(o) = &p.org_id {
                assert!(o.starts_with("o-") && s.contains(o.as_str()));
            }
            if let Some(d) = p.day {
                assert!(d <= 99_999_999);
                let slashed = format!("{:04}/{:02}/{:02}", d / 10_000, d / 100 % 100, d % 100);
                let flat = format!("{d:08}");
                assert!(s.contains(&slashed) || s.contains(&flat), "day {d} not in {s:?}");
            }
        }
        KeyKind::Other => {}
    }
}

fn digits(b: &[u8]) -> i64 {
    b.iter().fold(0, |v, c| v * 10 + i64::from(c - b'0'))
}

fn times(s: &str) {
    let Some(ms) = parse_rfc3339_ms(s) else {
        return;
    };
    let b = s.as_bytes();
    assert!(b.len() >= 20 && b[..4].iter().all(u8::is_ascii_digit));
    let day = utc_day(ms);
    if (0..=MAX_MS).contains(&ms) {
        PartitionKey::new(
            Source::CloudTrailMgmt,
            OcsfClass::ApiActivity,
            "us-east-1",
            "1",
            day,
        )
        .unwrap_or_else(|e| panic!("{s:?} -> {ms} -> day {day}: {e}"));
    }
    // With a UTC designator the text itself is the UTC date and time of day.
    if matches!(b[b.len() - 1], b'Z' | b'z') {
        let text_day = digits(&b[0..4]) * 10_000 + digits(&b[5..7]) * 100 + digits(&b[8..10]);
        if (0..=MAX_MS).contains(&ms) {
            assert_eq!(i64::from(day), text_day, "{s:?} -> {ms}");
        }
        let sec = digits(&b[17..19]).min(59);
        let mut frac = 0;
        if b[19] == b'.' {
            let f = &b[20..b.len() - 1];
            let mut three = f.iter().take(3).copied().collect::<Vec<_>>();
            three.resize(3, b'0');
            frac = digits(&three);
        }
        let tod = ((digits(&b[11..13]) * 60 + digits(&b[14..16])) * 60 + sec) * 1000 + frac;
        assert_eq!(ms.rem_euclid(86_400_000), tod, "{s:?} -> {ms}");
    }
}

fn no_ws_outside_strings(s: &str) -> bool {
    let (mut in_str, mut esc) = (false, false);
    for c in s.bytes() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            return false;
        }
    }
    true
}

fn json(s: &str) {
    let compact = compact_json(s);
    // Anything serde_json takes as a raw value (it is laxer than `Value`: lone
    // surrogate escapes pass) is what records are made of.
    if let Ok(raw) = serde_json::from_str::<&RawValue>(s) {
        let raw = RawJson::from(raw);
        // A JSON string always has a text: `None` means "null", and callers fall back
        // to other values when they get it.
        if raw.get().starts_with('"') {
            assert!(text(raw).is_some(), "the JSON string {s:?} has no text");
        }
        if let Some(obj) = RawObject::parse(raw) {
            for (_, v) in &obj.members {
                if v.get().starts_with('"') {
                    assert!(text(*v).is_some(), "the JSON string {:?} has no text", v.get());
                }
            }
        }
        let mut u = Unmapped::default();
        for (prefix, skip) in [("p", &[][..]), ("userIdentity", &["type", "a.b", "x"][..])] {
            u.clear();
            if u.flatten(prefix, raw, skip).is_ok() {
                let keys: Vec<&str> = u.entries().map(|(k, _)| k).collect();
                for (i, k) in keys.iter().enumerate() {
                    assert!(k.starts_with(prefix), "{k:?}");
                    assert!(!keys[..i].contains(k), "duplicate unmapped key {k:?}");
                }
            }
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(s) else {
        return;
    };
    assert!(serde_json::from_str::<&RawValue>(s).is_ok(), "valid JSON {s:?} is not a RawValue");
    let again: Value = serde_json::from_str(&compact)
        .unwrap_or_else(|e| panic!("compact_json({s:?}) = {compact:?} is not JSON: {e}"));
    assert_eq!(value, again, "compact_json changed the value of {s:?}");
    assert!(no_ws_outside_strings(&compact), "{compact:?}");
    assert!(
        matches!(compact_json(&compact), std::borrow::Cow::Borrowed(_)),
        "compact_json is not idempotent on {compact:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    keys(&s);
    times(&s);
    json(&s);
});
