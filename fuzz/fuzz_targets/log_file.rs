//! A whole object, as the pipeline sees it: the first byte picks the S3 key and the
//! chunk size, the rest is the object's bytes (gzip or plain).
//!
//! Invariants: no panic; every `Rows` batch has the OCSF schema, is non-empty, and
//! each of its rows belongs to its (valid) partition key; bad-record indices only
//! grow; rows delivered + bad records == the records the outcome reports; skipped
//! objects deliver nothing.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use trailhouse_cloudtrail::{KeyKind, classify_key};
use trailhouse_fuzz::{check_rows_in_partition, check_schema};
use trailhouse_pipeline::{ObjectEvent, ObjectOutcome, ObjectProcessor};

const KEYS: [&str; 8] = [
    "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/123456789012_CloudTrail_us-east-1_20240101T0000Z_abc.json.gz",
    "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/01/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T000000Z.json.gz",
    "../x",
    "plain/file.json",
    "p/AWSLogs/o-abc123def4/210987654321/CloudTrail/eu-west-3/2024/02/29/x.json.gz",
    // Hostile values in the key: they are only fallbacks, and must be validated.
    "AWSLogs/12..34/CloudTrail/US_EAST/2024/01/01/x.json",
    "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/01/01/123456789012_CloudTrail-Insight_us-east-1_x.json.gz",
    "",
];
const CHUNKS: [usize; 4] = [8192, 1, 2, 3];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let key = KEYS[usize::from(sel & 7)];
    let mut p = ObjectProcessor::default();
    p.chunk_rows = CHUNKS[usize::from(sel >> 3 & 3)];
    let (mut rows, mut bad) = (0u64, 0u64);
    let mut last_bad: Option<u64> = None;
    let outcome = p.process(key, Cursor::new(body.to_vec()), &mut |ev| match ev {
        ObjectEvent::Rows(parts) => {
            for (k, batch) in parts {
                check_schema(&batch);
                assert!(batch.num_rows() > 0, "empty batch for {k}");
                check_rows_in_partition(&k, &batch);
                rows += batch.num_rows() as u64;
            }
        }
        ObjectEvent::BadRecord { index, reason, .. } => {
            assert!(!reason.is_empty());
            assert!(last_bad.is_none_or(|l| index > l), "bad record indices go back");
            last_bad = Some(index);
            bad += 1;
        }
    });
    match outcome {
        ObjectOutcome::Complete { records, .. } | ObjectOutcome::Failed { records, .. } => {
            assert_eq!(
                rows + bad,
                records,
                "rows {rows} + bad {bad} != records {records} ({outcome:?})"
            );
            if let Some(l) = last_bad {
                assert!(l < records);
            }
        }
        ObjectOutcome::Skipped(_) => {
            assert_eq!(rows + bad, 0);
            assert!(matches!(
                classify_key(key),
                KeyKind::Digest(_) | KeyKind::Insight(_)
            ));
        }
    }
});
