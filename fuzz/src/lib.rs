//! Checks shared by the fuzz targets. Every function here panics (so libFuzzer
//! reports a crash) when an invariant of trailhouse does not hold.

use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use trailhouse_cloudtrail::time::utc_day;
use trailhouse_lake::{Layout, PartitionKey, WriteOptions, encode_partition, file_schema};
use trailhouse_ocsf::{ObjectContext, RowInfo};

/// The object contexts the record targets map each input under: none, a plausible
/// one, and one whose values are hostile (they are fallbacks and must be validated).
pub fn contexts() -> [ObjectContext; 3] {
    [
        ObjectContext::default(),
        ObjectContext {
            account: Some("123456789012".into()),
            region: Some("us-east-1".into()),
        },
        ObjectContext {
            account: Some("12/../34".into()),
            region: Some("../../etc".into()),
        },
    ]
}

/// The batch has exactly the OCSF table schema.
pub fn check_schema(batch: &RecordBatch) {
    let want = trailhouse_ocsf::schema();
    assert_eq!(
        batch.schema().fields(),
        want.fields(),
        "batch schema differs from the OCSF schema"
    );
}

fn col<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> &'b T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has the wrong type"))
}

/// Every row of `batch` belongs to the partition `key`, and the key is one that
/// `PartitionKey::new` accepts from the row's own values.
pub fn check_rows_in_partition(key: &PartitionKey, batch: &RecordBatch) {
    let region = col::<StringArray>(batch, "region");
    let account = col::<StringArray>(batch, "accountid");
    let time = col::<Int64Array>(batch, "time");
    let class_uid = col::<Int32Array>(batch, "class_uid");
    for row in 0..batch.num_rows() {
        assert!(region.is_valid(row) && account.is_valid(row) && class_uid.is_valid(row));
        let day = utc_day(time.value(row));
        let again = PartitionKey::new(
            key.source(),
            key.class(),
            region.value(row),
            account.value(row),
            day,
        )
        .unwrap_or_else(|e| panic!("row {row} has no valid partition key: {e}"));
        assert_eq!(&again, key, "row {row} is in the wrong partition");
        assert_eq!(class_uid.value(row), key.class().uid());
    }
}

/// The row `row` of `batch` agrees with the `RowInfo` the mapper returned for it.
pub fn check_row_info(info: &RowInfo<'_>, batch: &RecordBatch, row: usize) {
    assert_eq!(col::<Int64Array>(batch, "time").value(row), info.time_ms);
    assert_eq!(col::<StringArray>(batch, "region").value(row), info.region);
    assert_eq!(col::<StringArray>(batch, "accountid").value(row), info.account);
    assert_eq!(
        col::<Int32Array>(batch, "class_uid").value(row),
        info.class.uid()
    );
}

/// The partition key of a mapped row; the mapper promises it is valid.
pub fn key_of(info: &RowInfo<'_>) -> PartitionKey {
    PartitionKey::new(
        info.source,
        info.class,
        &info.region,
        &info.account,
        utc_day(info.time_ms),
    )
    .unwrap_or_else(|e| panic!("mapped row has no valid partition key ({info:?}): {e}"))
}

/// Encodes `batch` as the partition `key`, and reads the Parquet back: every row is
/// in exactly one file under the key's directory (`distinct` rows: those with a
/// distinct (time, eventID), which is what deduplication keeps).
pub fn encode_and_check(key: &PartitionKey, batch: &RecordBatch, distinct: usize) {
    let enc = encode_partition(key, Layout::Ext, std::slice::from_ref(batch), &WriteOptions::default())
        .unwrap_or_else(|e| panic!("encode_partition failed: {e}"));
    assert_eq!(
        enc.duplicates as usize + distinct,
        batch.num_rows(),
        "duplicate count"
    );
    let dir = key.dir(Layout::Ext);
    let mut rows = 0u64;
    for f in &enc.files {
        assert!(f.path.starts_with(&dir), "{} outside {dir}", f.path);
        assert!(!f.path[dir.len()..].contains('/'));
        // Opened as the lake's schema, which fails unless the file's columns are its
        // columns. (Read without it, the zone of the timestamps reads "+00:00", not
        // the schema's "UTC": files carry no Arrow schema since `cda13cc`.)
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(
            Bytes::from(f.bytes.clone()),
            ArrowReaderOptions::new().with_schema(file_schema()),
        )
        .unwrap_or_else(|e| panic!("written Parquet does not open as the lake's schema: {e}"));
        let mut n = 0;
        for b in reader.build().unwrap() {
            n += b.unwrap_or_else(|e| panic!("written Parquet does not read: {e}")).num_rows();
        }
        assert_eq!(n as u64, f.rows);
        rows += f.rows;
    }
    assert_eq!(rows as usize, distinct);
}

/// Maps `data` under each of [`contexts`] into one builder and checks everything
/// the record target promises (see `fuzz_targets/record.rs`). Returns the batch and,
/// per context, whether the record was mapped (its row index in the batch).
pub fn map_and_check(data: &[u8]) -> (RecordBatch, [Option<usize>; 3]) {
    let ctxs = contexts();
    let mut b = trailhouse_ocsf::OcsfBuilder::new();
    let mut infos = Vec::new();
    let mut rows = [None; 3];
    for (i, ctx) in ctxs.iter().enumerate() {
        let before = b.len();
        match b.append_bytes(data, ctx) {
            Ok(info) => {
                assert_eq!(b.len(), before + 1);
                rows[i] = Some(infos.len());
                infos.push(info);
            }
            Err(e) => {
                assert_eq!(b.len(), before, "refused record appended something: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
    let batch = b.finish().unwrap_or_else(|e| panic!("finish failed: {e}"));
    assert_eq!(batch.num_rows(), infos.len());
    assert!(b.is_empty());
    check_schema(&batch);
    check_unmapped(&batch);
    for (row, info) in infos.iter().enumerate() {
        check_row_info(info, &batch, row);
    }
    // Encode once per distinct partition (the contexts are only fallbacks, so the
    // rows usually share one). Rows of one record share eventID and time, so
    // deduplication keeps exactly one.
    let keys: Vec<PartitionKey> = infos.iter().map(key_of).collect();
    for (row, key) in keys.iter().enumerate() {
        if keys[..row].contains(key) {
            continue;
        }
        let part = if keys.iter().all(|k| k == key) {
            batch.clone()
        } else {
            batch.slice(row, 1)
        };
        encode_and_check(key, &part, 1);
    }
    // The builder is reusable after finish().
    assert_eq!(b.finish().unwrap().num_rows(), 0);
    (batch, rows)
}

/// `unmapped` is a map: per row, its keys are unique.
pub fn check_unmapped(batch: &RecordBatch) {
    let um = col::<arrow_array::MapArray>(batch, "unmapped");
    let keys = um
        .keys()
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("unmapped keys are strings");
    for row in 0..um.len() {
        let (s, e) = (um.value_offsets()[row] as usize, um.value_offsets()[row + 1] as usize);
        let mut seen: Vec<&str> = (s..e).map(|i| keys.value(i)).collect();
        seen.sort_unstable();
        for w in seen.windows(2) {
            assert_ne!(w[0], w[1], "row {row}: duplicate unmapped key {:?}", w[0]);
        }
    }
}
