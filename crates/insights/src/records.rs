//! Insights as CloudTrail writes them: `AwsCloudTrailInsight` records, a Start and
//! (once closed) an End sharing one `sharedEventID`, in `CloudTrail-Insight/` files.
//!
//! Identifiers are derived from the insight (trail, API, type, start minute), so a
//! second run over the same range produces the same records, not new ones.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use trailhouse_cloudtrail::time::format_rfc3339_s as format_time;
use xxhash_rust::xxh3::xxh3_128;

use crate::Insight;

/// `eventVersion` of the records written (Insights records are 1.07 and later).
pub const EVENT_VERSION: &str = "1.08";

/// A UUID-shaped identifier derived from `parts` (stable across runs).
pub fn stable_id(parts: &[&str]) -> String {
    let h = xxh3_128(parts.join("\u{1f}").as_bytes());
    let x = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The `sharedEventID` of an insight's Start/End pair.
pub fn shared_event_id(i: &Insight) -> String {
    stable_id(&[
        "trailhouse-insight",
        &i.group.account,
        &i.group.region,
        &i.group.event_source,
        &i.group.event_name,
        i.kind.name(),
        &i.start_ms.to_string(),
    ])
}

/// The insight's records: Start, and End when it is closed.
pub fn records(i: &Insight) -> Vec<Value> {
    let shared = shared_event_id(i);
    let attributions: Vec<Value> = i
        .attributions
        .iter()
        .map(|a| {
            let side = |v: &[(String, f64)]| -> Vec<Value> {
                v.iter()
                    .map(|(value, avg)| json!({"value": value, "average": round(*avg)}))
                    .collect()
            };
            json!({"attribute": a.attribute, "insight": side(&a.insight), "baseline": side(&a.baseline)})
        })
        .collect();
    let mut out = Vec::new();
    let states: &[(&str, i64)] = match i.end_ms {
        Some(end) => &[("Start", i.start_ms), ("End", end)],
        None => &[("Start", i.start_ms)],
    };
    for &(state, time) in states {
        out.push(json!({
            "eventVersion": EVENT_VERSION,
            "eventTime": format_time(time),
            "awsRegion": i.group.region,
            "eventID": stable_id(&[&shared, state]),
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": i.group.account,
            "sharedEventID": shared,
            "insightDetails": {
                "state": state,
                "eventSource": i.group.event_source,
                "eventName": i.group.event_name,
                "insightType": i.kind.name(),
                "insightContext": {
                    "statistics": {
                        "baseline": {"average": round(i.baseline_average)},
                        "insight": {"average": round(i.insight_average)},
                        "insightDuration": i.insight_duration,
                        "baselineDuration": i.baseline_duration,
                    },
                    "attributions": attributions,
                },
            },
            "eventCategory": "Insight",
        }));
    }
    out
}

fn round(x: f64) -> f64 {
    (x * 1e10).round() / 1e10
}

/// Where a trail delivers a file of `kind` (`CloudTrail`, `CloudTrail-Insight`), under
/// `AWSLogs/`: `{account}/{kind}/{region}/YYYY/MM/DD/{account}_{kind}_{region}_{YYYYMMDDTHHmmZ}_{unique}.json.gz`.
pub fn trail_key(kind: &str, account: &str, region: &str, time_ms: i64, unique: &str) -> String {
    let t = format_time(time_ms); // YYYY-MM-DDTHH:MM:SSZ
    let (y, m, d, hh, mm) = (&t[0..4], &t[5..7], &t[8..10], &t[11..13], &t[14..16]);
    format!(
        "AWSLogs/{account}/{kind}/{region}/{y}/{m}/{d}/{account}_{kind}_{region}_{y}{m}{d}T{hh}{mm}Z_{unique}.json.gz"
    )
}

/// Where a trail would deliver an Insights file of these records.
pub fn file_key(account: &str, region: &str, time_ms: i64, unique: &str) -> String {
    trail_key("CloudTrail-Insight", account, region, time_ms, unique)
}

/// A gzip'd CloudTrail log file (`{"Records":[…]}`) of `records`.
pub fn gzip_file(records: &[Value]) -> std::io::Result<Vec<u8>> {
    let body = serde_json::to_vec(&json!({ "Records": records }))?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&body)?;
    gz.finish()
}
