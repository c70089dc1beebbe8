//! CloudTrail Insights records as OCSF 1.1.0 Detection Finding (2004) rows, and the
//! Arrow schema of their table.
//!
//! The same mapping serves insights that a trail delivered (`CloudTrail-Insight/`
//! files) and those `trailhouse insights` finds, so both can be compared in one
//! table; `metadata.product` tells them apart.
//!
//! | OCSF | CloudTrail Insights record |
//! |---|---|
//! | `activity_id` | `insightDetails.state`: Start → 1 Create, End → 3 Close |
//! | `status_id` | Start → 1 New, End → 4 Resolved |
//! | `time` | `eventTime` |
//! | `start_time` / `end_time` | the insight window (End: `eventTime` − `insightDuration`) |
//! | `finding_info.uid` | `sharedEventID` (one finding, opened and closed) |
//! | `finding_info.types`, `.analytic.name` | `insightType` |
//! | `api.operation` / `api.service.name` | `insightDetails.eventName` / `.eventSource` |
//! | `evidences[0].actor.user.uid` | the top `userIdentityArn` attribution of the insight window (`actor` needs the host profile) |
//! | `cloud.region` / `cloud.account.uid` | `awsRegion` / `recipientAccountId` |
//! | `metadata.uid` | `eventID` |
//! | `severity_id` | insight / baseline average: ≥ 10× High, ≥ 3× Medium, else Low |
//! | `count` | insight average × `insightDuration` (events in the window) |
//! | `unmapped` | every other leaf (`insightDetails.insightContext.statistics.…`, attributions as JSON) |
//! | `raw_data` | the record, as delivered |

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Map, Value, json};

use trailhouse_cloudtrail::time::format_rfc3339_s;

use crate::schema::{
    OCSF_VERSION, i32f as int, list, metadata_fields, s, st, timestamp_type, unmapped_type,
};

/// Custom-source name of the findings table (`ext/{name}/1.0/…`).
pub const SOURCE_NAME: &str = "CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING";

/// Who produced an insight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// Delivered by a trail (CloudTrail Insights).
    CloudTrail,
    /// Found by `trailhouse insights`.
    Trailhouse,
}

/// Why a record is not an Insights record this mapping can use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a CloudTrail Insights record: {0}")]
pub struct FindingError(pub String);

fn long(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

/// The Arrow schema of the Detection Finding table (files; `region`/`accountid` come
/// from the partition path as in the CloudTrail tables).
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                st("metadata", {
                    let mut fields = metadata_fields();
                    fields.push(s("log_name"));
                    fields
                }),
                Field::new("time", DataType::Int64, false),
                Field::new("time_dt", timestamp_type(), true),
                long("start_time"),
                long("end_time"),
                long("duration"),
                int("count"),
                st(
                    "cloud",
                    vec![s("region"), s("provider"), st("account", vec![s("uid")])],
                ),
                st(
                    "finding_info",
                    vec![
                        s("uid"),
                        s("title"),
                        s("desc"),
                        list("types", DataType::Utf8),
                        st(
                            "analytic",
                            vec![s("name"), s("type"), int("type_id"), s("uid")],
                        ),
                        long("first_seen_time"),
                        long("last_seen_time"),
                        list("data_sources", DataType::Utf8),
                    ],
                ),
                st("api", vec![s("operation"), st("service", vec![s("name")])]),
                list(
                    "evidences",
                    DataType::Struct(Fields::from(vec![
                        st("actor", vec![st("user", vec![s("uid")])]),
                        st("api", vec![s("operation"), st("service", vec![s("name")])]),
                    ])),
                ),
                s("message"),
                s("class_name"),
                int("class_uid"),
                s("category_name"),
                int("category_uid"),
                int("severity_id"),
                s("severity"),
                s("activity_name"),
                int("activity_id"),
                long("type_uid"),
                s("type_name"),
                s("status"),
                int("status_id"),
                Field::new("unmapped", unmapped_type(), true),
                s("raw_data"),
            ]))
        })
        .clone()
}

fn text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, FindingError> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| FindingError(format!("no {pointer}")))
}

/// Maps one Insights record to a Detection Finding row (OCSF JSON; the table's
/// columns, so it decodes into [`schema`]).
pub fn from_insight_record(rec: &Value, producer: Producer) -> Result<Value, FindingError> {
    if rec.get("eventType").and_then(Value::as_str) != Some("AwsCloudTrailInsight") {
        return Err(FindingError("eventType is not AwsCloudTrailInsight".into()));
    }
    let time = trailhouse_cloudtrail::time::parse_rfc3339_ms(text(rec, "/eventTime")?)
        .ok_or_else(|| FindingError("eventTime is not a time".into()))?;
    let event_id = text(rec, "/eventID")?;
    let region = text(rec, "/awsRegion")?;
    let account = text(rec, "/recipientAccountId")?;
    let state = text(rec, "/insightDetails/state")?;
    let source = text(rec, "/insightDetails/eventSource")?;
    let name = text(rec, "/insightDetails/eventName")?;
    let kind = text(rec, "/insightDetails/insightType")?;
    let shared = rec
        .get("sharedEventID")
        .and_then(Value::as_str)
        .unwrap_or(event_id);
    let stats = rec.pointer("/insightDetails/insightContext/statistics");
    let num = |k: &str| stats.and_then(|s| s.pointer(k)).and_then(Value::as_f64);
    let (baseline, insight) = (num("/baseline/average"), num("/insight/average"));
    let duration_min = num("/insightDuration").filter(|d| d.is_finite() && *d >= 0.0);
    let top_user = rec
        .pointer("/insightDetails/insightContext/attributions")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|x| x.get("attribute").and_then(Value::as_str) == Some("userIdentityArn"))
        })
        .and_then(|x| x.pointer("/insight/0/value"))
        .and_then(Value::as_str)
        .filter(|v| *v != "null");

    let (activity_id, activity, status_id, status) = match state {
        "Start" => (1, "Create", 1, "New"),
        "End" => (3, "Close", 4, "Resolved"),
        _ => (99, "Other", 99, "Other"),
    };
    let (severity_id, severity) = match (baseline, insight) {
        (Some(b), Some(i)) if i >= 10.0 * b => (4, "High"),
        (Some(b), Some(i)) if i >= 3.0 * b => (3, "Medium"),
        (Some(_), Some(_)) => (2, "Low"),
        _ => (0, "Unknown"),
    };
    let window_ms = duration_min.map(|d| (d * 60_000.0).round() as i64);
    let (start_time, end_time) = match (state, window_ms) {
        ("End", Some(w)) => (Some(time - w), Some(time)),
        ("End", None) => (None, Some(time)),
        _ => (Some(time), None),
    };
    let what = match kind {
        "ApiCallRateInsight" => "API call rate",
        "ApiErrorRateInsight" => "API error rate",
        other => other,
    };
    let rates = match (insight, baseline) {
        (Some(i), Some(b)) => format!(" ({i:.2}/min against a baseline of {b:.2}/min)"),
        _ => String::new(),
    };
    let (product, vendor, version) = match producer {
        Producer::CloudTrail => (
            "CloudTrail",
            "AWS",
            rec.get("eventVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
        Producer::Trailhouse => (
            "trailhouse insights",
            "trailhouse",
            env!("CARGO_PKG_VERSION"),
        ),
    };
    let mut unmapped = Map::new();
    flatten("", rec, &mut unmapped);
    for mapped in [
        "eventTime",
        "eventID",
        "awsRegion",
        "eventType",
        "insightDetails.eventSource",
        "insightDetails.eventName",
    ] {
        unmapped.remove(mapped);
    }
    let mut row = json!({
        "metadata": {
            "product": {"version": version, "name": product, "vendor_name": vendor,
                        "feature": {"name": "Insights"}},
            "event_code": "AwsCloudTrailInsight",
            "uid": event_id,
            "profiles": ["cloud", "datetime"],
            "version": OCSF_VERSION,
            "log_name": "CloudTrail-Insight",
        },
        "time": time,
        "time_dt": format_rfc3339_s(time),
        "cloud": {"region": region, "provider": "AWS", "account": {"uid": account}},
        "finding_info": {
            "uid": shared,
            "title": format!("Unusual {what}: {name} ({source})"),
            "desc": format!("{what} of {name} on {source} in {account}/{region}{rates}"),
            "types": [kind],
            "analytic": {"name": kind, "type": "Statistical", "type_id": 3},
            "data_sources": ["CloudTrail management events"],
        },
        "api": {"operation": name, "service": {"name": source}},
        "message": format!("{what} insight {}: {name} ({source}){rates}", state.to_lowercase()),
        "class_name": "Detection Finding",
        "class_uid": 2004,
        "category_name": "Findings",
        "category_uid": 2,
        "severity_id": severity_id,
        "severity": severity,
        "activity_name": activity,
        "activity_id": activity_id,
        "type_uid": 200400 + activity_id,
        "type_name": format!("Detection Finding: {activity}"),
        "status": status,
        "status_id": status_id,
        "unmapped": unmapped,
        "raw_data": rec.to_string(),
    });
    let obj = row.as_object_mut().expect("a JSON object literal");
    if let Some(t) = start_time {
        obj.insert("start_time".into(), t.into());
        obj["finding_info"]["first_seen_time"] = t.into();
    }
    if let Some(t) = end_time {
        obj.insert("end_time".into(), t.into());
        obj["finding_info"]["last_seen_time"] = t.into();
    }
    if let Some(w) = window_ms.filter(|_| state == "End") {
        obj.insert("duration".into(), w.into());
    }
    if let (Some(i), Some(d)) = (insight, duration_min) {
        let n = (i * d).round();
        if (0.0..=f64::from(i32::MAX)).contains(&n) {
            obj.insert("count".into(), (n as i64).into());
        }
    }
    // The evidence: the API, and the principal that drove the insight window.
    let mut evidence = json!({"api": {"operation": name, "service": {"name": source}}});
    if let Some(u) = top_user {
        evidence["actor"] = json!({"user": {"uid": u}});
    }
    obj.insert("evidences".into(), json!([evidence]));
    Ok(row)
}

/// Leaves of `v` as `a.b.c` → text; arrays are kept whole as JSON text.
fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), Value::String(s.clone()));
        }
        other => {
            out.insert(prefix.to_string(), Value::String(other.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str) -> Value {
        json!({
            "eventVersion": "1.07", "eventTime": "2020-09-23T05:16:00Z", "awsRegion": "ca-central-1",
            "eventID": format!("id-{state}"), "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "123456789015", "sharedEventID": "shared-1",
            "insightDetails": {"state": state, "eventSource": "ssm.amazonaws.com",
              "eventName": "UpdateInstanceAssociationStatus", "insightType": "ApiCallRateInsight",
              "insightContext": {"statistics": {"baseline": {"average": 0.5}, "insight": {"average": 12.0},
                 "insightDuration": 4, "baselineDuration": 10080},
                 "attributions": [{"attribute": "userIdentityArn",
                   "insight": [{"value": "arn:aws:iam::123456789015:role/x", "average": 12.0}],
                   "baseline": [{"value": "null", "average": 0.5}]}]}},
            "eventCategory": "Insight"
        })
    }

    #[test]
    fn start_and_end_share_one_finding() {
        let s = from_insight_record(&record("Start"), Producer::CloudTrail).unwrap();
        let e = from_insight_record(&record("End"), Producer::CloudTrail).unwrap();
        assert_eq!(s["finding_info"]["uid"], "shared-1");
        assert_eq!(e["finding_info"]["uid"], "shared-1");
        assert_eq!(
            (s["activity_id"].clone(), e["activity_id"].clone()),
            (json!(1), json!(3))
        );
        assert_eq!(e["type_uid"], 200403);
        assert_eq!(s["severity_id"], 4);
        let t = trailhouse_cloudtrail::time::parse_rfc3339_ms("2020-09-23T05:16:00Z").unwrap();
        assert_eq!(e["end_time"], t);
        assert_eq!(e["start_time"], t - 4 * 60_000);
        assert_eq!(e["count"], 48);
        assert_eq!(
            s["evidences"][0]["actor"]["user"]["uid"],
            "arn:aws:iam::123456789015:role/x"
        );
        assert!(s.get("actor").is_none(), "actor needs the host profile");
        assert_eq!(
            s["unmapped"]["insightDetails.insightContext.statistics.baseline.average"],
            "0.5"
        );
        assert!(s["unmapped"].get("eventTime").is_none());
        assert_eq!(s["api"]["operation"], "UpdateInstanceAssociationStatus");
    }

    #[test]
    fn other_records_are_refused() {
        let mut r = record("Start");
        r["eventType"] = json!("AwsApiCall");
        assert!(from_insight_record(&r, Producer::CloudTrail).is_err());
        let mut r = record("Start");
        r["eventTime"] = json!("yesterday");
        assert!(from_insight_record(&r, Producer::CloudTrail).is_err());
        let mut r = record("Start");
        r["insightDetails"]
            .as_object_mut()
            .unwrap()
            .remove("eventName");
        assert!(from_insight_record(&r, Producer::CloudTrail).is_err());
    }
}
