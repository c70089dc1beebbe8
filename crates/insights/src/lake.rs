//! Reading management events back from the lake's Parquet files: only the columns
//! the analysis needs, and which files hold management events.

use arrow_array::{Array, Int64Array, MapArray, RecordBatch, StringArray, StructArray};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;

use crate::detect::Event;

/// Folders (relative to the lake root) of the tables holding management events, in
/// both layouts.
pub const MANAGEMENT_PREFIXES: [&str; 4] = [
    "ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0/",
    "ext/CLOUD_TRAIL_MGMT_AUTHENTICATION/1.0/",
    "ext/CLOUD_TRAIL_MGMT_ACCOUNT_CHANGE/1.0/",
    "aws/CLOUD_TRAIL_MGMT/2.0/",
];

/// The partition of a lake file: (region, account, day), from its
/// `region=…/accountId=…/eventDay=…/` folders.
pub fn partition_of(path: &str) -> Option<(String, String, u32)> {
    let (mut region, mut account, mut day) = (None, None, None);
    for seg in path.split('/') {
        if let Some(v) = seg.strip_prefix("region=") {
            region = Some(v.to_string());
        } else if let Some(v) = seg.strip_prefix("accountId=") {
            account = Some(v.to_string());
        } else if let Some(v) = seg.strip_prefix("eventDay=") {
            day = v.parse().ok();
        }
    }
    Some((region?, account?, day?))
}

/// Calls `f` with every event of one lake file (a CloudTrail table's Parquet file)
/// of partition (`account`, `region`). Returns the number of rows read.
pub fn read_events(
    bytes: Bytes,
    account: &str,
    region: &str,
    mut f: impl FnMut(&Event<'_>),
) -> Result<u64, ParquetError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let mask = ProjectionMask::columns(
        builder.parquet_schema(),
        [
            "time",
            "api.operation",
            "api.service.name",
            "api.response.error",
            "actor.user.uid",
            "http_request.user_agent",
            "unmapped",
        ],
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        read_batch(&batch, account, region, &mut f)?;
    }
    Ok(rows)
}

fn child<'a>(s: Option<&'a StructArray>, name: &str) -> Option<&'a StructArray> {
    s?.column_by_name(name)?.as_any().downcast_ref()
}

fn strings<'a>(s: Option<&'a StructArray>, name: &str) -> Option<&'a StringArray> {
    s?.column_by_name(name)?.as_any().downcast_ref()
}

fn at(a: Option<&StringArray>, i: usize) -> Option<&str> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

fn read_batch(
    batch: &RecordBatch,
    account: &str,
    region: &str,
    f: &mut impl FnMut(&Event<'_>),
) -> Result<(), ParquetError> {
    let missing = |c: &str| ParquetError::General(format!("lake file without column {c}"));
    let time = batch
        .column_by_name("time")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| missing("time"))?;
    let api = batch
        .column_by_name("api")
        .and_then(|c| c.as_any().downcast_ref::<StructArray>());
    let operation = strings(api, "operation").ok_or_else(|| missing("api.operation"))?;
    let service =
        strings(child(api, "service"), "name").ok_or_else(|| missing("api.service.name"))?;
    let error = strings(child(api, "response"), "error");
    let actor = batch
        .column_by_name("actor")
        .and_then(|c| c.as_any().downcast_ref::<StructArray>());
    let user = strings(child(actor, "user"), "uid");
    let http = batch
        .column_by_name("http_request")
        .and_then(|c| c.as_any().downcast_ref::<StructArray>());
    let agent = strings(http, "user_agent");
    let unmapped = batch
        .column_by_name("unmapped")
        .and_then(|c| c.as_any().downcast_ref::<MapArray>());
    for i in 0..batch.num_rows() {
        let (Some(name), Some(source)) = (at(Some(operation), i), at(Some(service), i)) else {
            continue;
        };
        let read_only = match unmapped.and_then(|m| lookup(m, i, "readOnly")) {
            Some(v) => v == "true",
            None => looks_read_only(name),
        };
        f(&Event {
            time_ms: time.value(i),
            account,
            region,
            event_source: source,
            event_name: name,
            read_only,
            error_code: at(error, i).filter(|e| !e.is_empty()),
            user_arn: at(user, i),
            user_agent: at(agent, i),
        });
    }
    Ok(())
}

fn lookup<'a>(m: &'a MapArray, row: usize, key: &str) -> Option<&'a str> {
    if m.is_null(row) {
        return None;
    }
    let keys = m.keys().as_any().downcast_ref::<StringArray>()?;
    let values = m.values().as_any().downcast_ref::<StringArray>()?;
    let offsets = m.value_offsets();
    let (lo, hi) = (offsets[row] as usize, offsets[row + 1] as usize);
    (lo..hi)
        .find(|&j| keys.value(j) == key)
        .filter(|&j| values.is_valid(j))
        .map(|j| values.value(j))
}

/// For records without `readOnly` (old event versions): the read verbs.
fn looks_read_only(name: &str) -> bool {
    [
        "Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet", "Select",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_from_paths() {
        assert_eq!(
            partition_of("ext/X/1.0/region=us-east-1/accountId=123/eventDay=20240101/a.parquet"),
            Some(("us-east-1".into(), "123".into(), 20240101))
        );
        assert_eq!(partition_of("ext/X/1.0/region=us-east-1/a.parquet"), None);
        assert!(looks_read_only("DescribeInstances"));
        assert!(!looks_read_only("RunInstances"));
    }
}
