//! What the streaming worker reads from outside besides objects: SQS message bodies
//! (S3 event notifications, SNS envelopes, EventBridge events, CloudTrail's SNS
//! notification), their form-encoded keys, and the quarantine's names and lines for
//! arbitrary keys and record bytes.
//!
//! Invariants: no panic; `notification::parse` names each (bucket, key) once;
//! `form_decode` is the identity without `%`/`+`, never lengthens its input, and
//! inverts form encoding; `safe_name` is a single safe path segment that does not
//! start with a dot; `record_line` is one JSON line that gives back the key, index,
//! reason and the exact record bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trailhouse_pipeline::notification::{Notification, form_decode, parse};
use trailhouse_pipeline::quarantine::{record_line, safe_name};

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);

    if let Notification::Objects(objs) = parse(&s) {
        let mut seen: Vec<(&str, &str)> = objs.iter().map(|o| (o.bucket.as_str(), o.key.as_str())).collect();
        seen.sort_unstable();
        let n = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), n, "an object is named twice");
    }

    let decoded = form_decode(&s);
    assert!(decoded.len() <= s.len(), "{s:?} -> {decoded:?}");
    if !s.contains(['%', '+']) {
        assert_eq!(decoded, s);
    }
    assert_eq!(form_decode(&form_encode(&s)), s);

    let name = safe_name(&s);
    assert!(!name.starts_with('.') && !name.is_empty());
    assert!(
        name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
        "{name:?}"
    );
    assert_eq!(name, safe_name(&s));

    let index = data.len() as u64 * 7919;
    let line = record_line(&s, index, "reason \"x\"\n", data);
    assert_eq!(line.last(), Some(&b'\n'));
    assert!(!line[..line.len() - 1].contains(&b'\n'), "more than one line");
    let v: Value = serde_json::from_slice(&line).expect("a quarantine line is JSON");
    assert_eq!(v["object"].as_str(), Some(&*s));
    assert_eq!(v["record_index"].as_u64(), Some(index));
    assert_eq!(v["reason"].as_str(), Some("reason \"x\"\n"));
    match (v["record"].as_str(), v["record_hex"].as_str()) {
        (Some(text), None) => assert_eq!(text.as_bytes(), data),
        (None, Some(hex)) => assert_eq!(unhex(hex), data),
        other => panic!("record and record_hex: {other:?}"),
    }
});
