//! Detection Finding rows to Parquet files in the lake.
//!
//! One file per row, named by the row's `metadata.uid` (the record's `eventID`):
//! insights are rare, and a name derived from the event makes a second run over the
//! same range rewrite the same files instead of adding rows.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use trailhouse_lake::layout::findings_dir;
use trailhouse_lake::writer::{WriteOptions, writer_properties};
use trailhouse_ocsf::finding::{FindingError, Producer, from_insight_record, schema};
use xxhash_rust::xxh3::xxh3_128;

/// Why findings could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A record is not an Insights record.
    #[error(transparent)]
    Finding(#[from] FindingError),
    /// A row's partition values are not a valid region/account/day.
    #[error(transparent)]
    Partition(#[from] trailhouse_lake::layout::PartitionError),
    /// Arrow refused the row (a mapping bug).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The Parquet encoder failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// One Parquet file of the findings table.
#[derive(Debug)]
pub struct FindingFile {
    /// Path relative to the lake root.
    pub path: String,
    /// The file.
    pub bytes: Vec<u8>,
}

/// Rows (OCSF JSON of [`schema`]) as one Arrow batch.
pub fn to_batch(rows: &[Value]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut decoder = ReaderBuilder::new(schema()).build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema())))
}

/// Maps Insights records to findings and encodes one file per record.
pub fn encode(records: &[Value], producer: Producer) -> Result<Vec<FindingFile>, EncodeError> {
    let props = writer_properties(&WriteOptions::default())?;
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        let row = from_insight_record(rec, producer)?;
        let time = row["time"].as_i64().unwrap_or(0);
        let day = trailhouse_cloudtrail::time::utc_day(time);
        let dir = findings_dir(
            row["cloud"]["region"].as_str().unwrap_or(""),
            row["cloud"]["account"]["uid"].as_str().unwrap_or(""),
            day,
        )?;
        let uid = row["metadata"]["uid"].as_str().unwrap_or("");
        let name = format!(
            "{:032x}",
            xxh3_128(format!("{dir}{producer:?}/{uid}").as_bytes())
        );
        let batch = to_batch(std::slice::from_ref(&row))?;
        let mut w = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema()), Some(props.clone()))?;
        w.write(&batch)?;
        out.push(FindingFile {
            path: format!("{dir}{name}.parquet"),
            bytes: w.into_inner()?,
        });
    }
    Ok(out)
}

/// Why a CloudTrail Insights file could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not gzip/JSON, or no `Records` array.
    #[error("not a CloudTrail Insights file: {0}")]
    Format(String),
    /// A record could not be mapped or encoded.
    #[error("record {index}: {source}")]
    Record {
        /// Index of the record in `Records`.
        index: usize,
        /// Why.
        source: EncodeError,
    },
}

/// Largest Insights file read (they hold a few records; a bigger one is not one).
pub const MAX_INSIGHT_FILE_BYTES: u64 = 64 << 20;

/// The findings of a CloudTrail Insights file (`{"Records":[…]}`, gzip'd or not), as
/// delivered by a trail. All or nothing: one bad record refuses the file, which the
/// caller quarantines with this reason.
pub fn ingest_file(bytes: &[u8]) -> Result<Vec<FindingFile>, IngestError> {
    use std::io::Read;
    let mut json = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_INSIGHT_FILE_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|e| IngestError::Format(format!("gzip: {e}")))?;
    } else {
        json.extend_from_slice(bytes);
    }
    if json.len() as u64 > MAX_INSIGHT_FILE_BYTES {
        return Err(IngestError::Format(format!(
            "larger than {MAX_INSIGHT_FILE_BYTES} bytes uncompressed"
        )));
    }
    let v: Value =
        serde_json::from_slice(&json).map_err(|e| IngestError::Format(format!("JSON: {e}")))?;
    let records = v
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| IngestError::Format("no Records array".into()))?;
    let mut out = Vec::with_capacity(records.len());
    for (index, rec) in records.iter().enumerate() {
        let files = encode(std::slice::from_ref(rec), Producer::CloudTrail)
            .map_err(|source| IngestError::Record { index, source })?;
        out.extend(files);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::json;

    fn insight_file() -> Vec<u8> {
        let rec = |state: &str| {
            json!({
            "eventVersion": "1.07", "eventTime": "2020-09-23T05:16:00Z", "awsRegion": "ca-central-1",
            "eventID": format!("e-{state}"), "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "123456789015", "sharedEventID": "s-1",
            "insightDetails": {"state": state, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
              "insightType": "ApiErrorRateInsight",
              "insightContext": {"statistics": {"baseline": {"average": 0.1}, "insight": {"average": 2.0},
                "insightDuration": 3, "baselineDuration": 10080}, "attributions": []}},
            "eventCategory": "Insight"})
        };
        crate::records::gzip_file(&[rec("Start"), rec("End")]).unwrap()
    }

    #[test]
    fn a_delivered_file_becomes_one_finding_file_per_record() {
        let files = ingest_file(&insight_file()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].path.starts_with(
            "ext/CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING/1.0/region=ca-central-1/accountId=123456789015/eventDay=20200923/"
        ), "{}", files[0].path);
        assert_ne!(files[0].path, files[1].path);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(files[1].bytes.clone()))
                .unwrap()
                .build()
                .unwrap();
        let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        assert_eq!(batches[0].schema(), schema());
        // Same input, same names and bytes: a second ingestion rewrites, never adds.
        let again = ingest_file(&insight_file()).unwrap();
        assert_eq!(again[1].path, files[1].path);
        assert_eq!(again[1].bytes, files[1].bytes);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        assert!(matches!(
            ingest_file(b"\x1f\x8b\x08garbage"),
            Err(IngestError::Format(_))
        ));
        assert!(matches!(
            ingest_file(b"{\"Records\": 1}"),
            Err(IngestError::Format(_))
        ));
        let hostile = crate::records::gzip_file(&[json!({
            "eventType": "AwsCloudTrailInsight", "eventTime": "2020-09-23T05:16:00Z", "eventID": "x",
            "awsRegion": "../../etc", "recipientAccountId": "1",
            "insightDetails": {"state": "Start", "eventSource": "a", "eventName": "b", "insightType": "ApiCallRateInsight"}
        })]).unwrap();
        let e = ingest_file(&hostile).unwrap_err();
        assert!(e.to_string().contains("invalid region"), "{e}");
        let api_call = crate::records::gzip_file(&[json!({"eventType": "AwsApiCall"})]).unwrap();
        assert!(matches!(
            ingest_file(&api_call),
            Err(IngestError::Record { index: 0, .. })
        ));
    }
}
