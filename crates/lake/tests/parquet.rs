//! Encoded partitions read back as Security Lake would see them.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, LogicalType, TimeUnit, Type as PhysicalType};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};
use trailhouse_lake::{Layout, WriteOptions, encode_partition, file_schema};

mod common;
use common::{batch, key, record};

fn read(bytes: &[u8]) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn rows_are_time_sorted_deduplicated_and_deterministic() {
    let b1 = batch(&[
        record("c", "2024-01-02T10:00:00Z"),
        record("a", "2024-01-02T08:00:00Z"),
        record("b", "2024-01-02T09:00:00Z"),
    ]);
    // A re-delivered event (same id and time) and an earlier one.
    let b2 = batch(&[
        record("a", "2024-01-02T08:00:00Z"),
        record("d", "2024-01-02T07:00:00Z"),
    ]);
    let out = encode(&[b1.clone(), b2.clone()]);
    assert_eq!(out.duplicates, 1);
    assert_eq!(out.files.len(), 1);
    let f = &out.files[0];
    assert_eq!(f.rows, 4);
    assert!(f.path.starts_with(
        "ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0/region=us-east-1/accountId=123456789012/eventDay=20240102/"
    ));
    let name = f.path.rsplit('/').next().unwrap();
    assert_eq!(name.len(), 32 + ".parquet".len());
    assert!(
        name[..32]
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );

    let rows = read(&f.bytes);
    let times: Vec<i64> = rows
        .iter()
        .flat_map(|b| {
            b.column_by_name("time")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    let ids: Vec<String> = rows
        .iter()
        .flat_map(|b| {
            let m = b
                .column_by_name("metadata")
                .unwrap()
                .as_any()
                .downcast_ref::<StructArray>()
                .unwrap();
            let u = m
                .column_by_name("uid")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            (0..u.len())
                .map(|i| u.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, ["d", "a", "b", "c"]);

    // Same rows in another arrival order: same file name and bytes.
    let again = encode(&[b2, b1]);
    assert_eq!(again.files[0].path, f.path);
    assert_eq!(again.files[0].bytes, f.bytes);
}

#[test]
fn parquet_types_match_security_lake() {
    let out = encode_partition(
        &key(),
        Layout::Native,
        &[batch(&[record("a", "2024-01-02T08:00:00Z")])],
        &WriteOptions::default(),
    )
    .unwrap();
    assert!(
        out.files[0]
            .path
            .starts_with("aws/CLOUD_TRAIL_MGMT/2.0/region=us-east-1/")
    );
    let bytes = bytes::Bytes::from(out.files[0].bytes.clone());
    let reader = SerializedFileReader::new(bytes).unwrap();
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let col = |path: &str| {
        (0..schema.num_columns())
            .map(|i| schema.column(i))
            .find(|c| c.path().string() == path)
            .unwrap_or_else(|| panic!("no column {path}"))
    };
    assert_eq!(col("time").physical_type(), PhysicalType::INT64);
    assert_eq!(col("time").logical_type_ref(), None);
    assert_eq!(col("time_dt").physical_type(), PhysicalType::INT64);
    assert_eq!(
        col("time_dt").logical_type_ref(),
        Some(&LogicalType::timestamp(true, TimeUnit::MILLIS))
    );
    assert_eq!(col("type_uid").physical_type(), PhysicalType::INT64);
    for c in ["class_uid", "category_uid", "activity_id", "severity_id"] {
        assert_eq!(col(c).physical_type(), PhysicalType::INT32, "{c}");
    }
    assert_eq!(
        col("unmapped.key_value.key").physical_type(),
        PhysicalType::BYTE_ARRAY
    );
    assert!(matches!(
        col("api.request.data").logical_type_ref(),
        Some(LogicalType::String)
    ));
    let rg = meta.row_group(0);
    for c in rg.columns() {
        // zstd, except for chunks too small for it (see the next test).
        assert!(
            matches!(
                c.compression(),
                Compression::ZSTD(_) | Compression::UNCOMPRESSED
            ),
            "{:?}",
            c.column_path()
        );
        // Statistics for every column a query may prune on; none for JSON
        // documents and for elements of lists and maps (no engine prunes on them).
        let path = c.column_path().string();
        let pruned_on = c.column_descr().max_rep_level() == 0
            && !trailhouse_lake::writer::DOCUMENT_COLUMNS.contains(&path.as_str());
        assert_eq!(c.statistics().is_some(), pruned_on, "{path}");
    }
    for path in ["time", "api.operation", "actor.user.uid", "src_endpoint.ip"] {
        assert!(chunk(rg.columns(), path).statistics().is_some(), "{path}");
    }
    for path in ["unmapped.key_value.value", "observables.list.element.value"] {
        let c = chunk(rg.columns(), path);
        assert!(c.column_descr().max_rep_level() > 0, "{path} is repeated");
        assert!(c.statistics().is_none(), "{path}");
    }
    // Columns unique per row, and JSON documents, are plain; repeated strings keep
    // their dictionary.
    let plain = trailhouse_lake::writer::UNIQUE_COLUMNS
        .iter()
        .chain(&trailhouse_lake::writer::DOCUMENT_COLUMNS);
    for path in plain {
        assert!(
            chunk(rg.columns(), path).dictionary_page_offset().is_none(),
            "{path}"
        );
    }
    for path in ["api.operation", "metadata.product.name", "class_name"] {
        assert!(
            chunk(rg.columns(), path).dictionary_page_offset().is_some(),
            "{path}"
        );
    }
    // The partition columns come from the path, not the file.
    let read_schema = read(&out.files[0].bytes)[0].schema();
    assert!(read_schema.field_with_name("region").is_err());
    assert!(read_schema.field_with_name("accountid").is_err());
    assert_eq!(read_schema.fields().len(), file_schema().fields().len());
    // No embedded Arrow schema (Security Lake's own files have none either; it was
    // ~6 KB of every footer): Parquet's own types give readers back the same Arrow
    // types, field by field, except that a UTC timestamp's zone reads as "UTC", as
    // it does from Security Lake's files, where the batches written said "+00:00".
    let kv = meta.file_metadata().key_value_metadata();
    assert!(
        kv.is_none_or(|kv| kv.iter().all(|e| e.key != "ARROW:schema")),
        "{kv:?}"
    );
    for (read, want) in read_schema.fields().iter().zip(file_schema().fields()) {
        assert_eq!(read.name(), want.name());
        assert_eq!(
            read.data_type(),
            &utc_named(want.data_type()),
            "{}",
            want.name()
        );
    }
}

/// `t` with every "+00:00" timestamp zone named "UTC", at any depth.
fn utc_named(t: &DataType) -> DataType {
    let field =
        |f: &Arc<Field>| Arc::new(f.as_ref().clone().with_data_type(utc_named(f.data_type())));
    match t {
        DataType::Timestamp(unit, Some(tz)) if &**tz == "+00:00" => {
            DataType::Timestamp(*unit, Some("UTC".into()))
        }
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::List(f) => DataType::List(field(f)),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        t => t.clone(),
    }
}

#[test]
fn large_partitions_split_by_rows() {
    let records: Vec<String> = (0..25)
        .map(|i| record(&format!("id{i:03}"), &format!("2024-01-02T00:00:{i:02}Z")))
        .collect();
    let opts = WriteOptions {
        max_file_rows: 10,
        ..WriteOptions::default()
    };
    let out = encode_partition(&key(), Layout::Ext, &[batch(&records)], &opts).unwrap();
    let rows: Vec<u64> = out.files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, [10, 10, 5]);
    assert!(
        out.files
            .windows(2)
            .all(|w| w[0].time_range.1 <= w[1].time_range.0)
    );
    let names: std::collections::HashSet<_> = out.files.iter().map(|f| &f.path).collect();
    assert_eq!(names.len(), 3);
}

/// The column chunks of the one row group of `bytes`.
fn chunks(bytes: &[u8]) -> Vec<ColumnChunkMetaData> {
    let reader = SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes)).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), 1);
    meta.row_group(0).columns().to_vec()
}

/// The chunk of the column at `path` ("a.b.c").
fn chunk<'a>(chunks: &'a [ColumnChunkMetaData], path: &str) -> &'a ColumnChunkMetaData {
    chunks
        .iter()
        .find(|c| c.column_path().string() == path)
        .unwrap_or_else(|| panic!("no column chunk {path}"))
}

/// One partition's batches encoded with the default settings.
fn encode(batches: &[RecordBatch]) -> trailhouse_lake::EncodedPartition {
    encode_partition(&key(), Layout::Ext, batches, &WriteOptions::default()).unwrap()
}

#[test]
fn chunks_too_small_for_zstd_are_stored_uncompressed() {
    // 300 events in one second: the same class, service and operation throughout,
    // no errors, distinct 36-character ids.
    let records: Vec<String> = (0..300)
        .map(|i| {
            record(
                &format!("5f0c8a3e-1b2d-4c6e-9f7a-{i:012}"),
                "2024-01-02T00:00:07Z",
            )
        })
        .collect();
    let b = batch(&records);
    let out = encode(std::slice::from_ref(&b));
    let chunks = chunks(&out.files[0].bytes);
    let codec = |path: &str| chunk(&chunks, path).compression();
    // Constant columns: the dictionary holds the one value, every index is the same.
    for path in [
        "class_name",
        "api.operation",
        "api.service.name",
        "cloud.region",
    ] {
        assert_eq!(codec(path), Compression::UNCOMPRESSED, "{path}");
    }
    // All null: only definition levels.
    assert_eq!(codec("api.response.error"), Compression::UNCOMPRESSED);
    // Distinct values, and a constant column without a dictionary (every value is
    // stored), stay compressed.
    for path in ["metadata.uid", "time", "time_dt"] {
        assert!(matches!(codec(path), Compression::ZSTD(_)), "{path}");
    }
    // What was written reads back the same (read with the Arrow schema written:
    // the files name the zone "UTC" where the batches said "+00:00").
    let back: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new_with_options(
        bytes::Bytes::copy_from_slice(&out.files[0].bytes),
        ArrowReaderOptions::new().with_schema(file_schema()),
    )
    .unwrap()
    .build()
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    let back = arrow_select::concat::concat_batches(&back[0].schema(), &back).unwrap();
    let want = b.project(&keep_file_columns(&b)).unwrap();
    assert_eq!(back.num_rows(), 300);
    for (i, field) in file_schema().fields().iter().enumerate() {
        assert_eq!(
            back.column(i).to_data(),
            want.column(i).to_data(),
            "{}",
            field.name()
        );
    }
}

/// The indices of the file columns in a batch of the full OCSF schema.
fn keep_file_columns(b: &RecordBatch) -> Vec<usize> {
    file_schema()
        .fields()
        .iter()
        .map(|f| b.schema().index_of(f.name()).unwrap())
        .collect()
}

fn large_record(id: usize) -> String {
    // A distinct 10 KB request and error message each: 250 of them make two columns
    // of about 2.5 MB, a JSON document and a text.
    let blob: String = (0..1000)
        .map(|j| format!("{:09},", id * 1000 + j))
        .collect();
    record(&format!("id{id:05}"), "2024-01-02T00:00:07Z")
        .replace(
            r#""requestParameters":{"x":1}"#,
            &format!(r#""requestParameters":{{"blob":"{blob}"}}"#),
        )
        .replace(
            r#""requestID":"r""#,
            &format!(r#""requestID":"r","errorMessage":"{blob}""#),
        )
}

#[test]
fn the_page_index_is_written_only_for_chunks_of_several_pages() {
    // A small partition: every chunk is one page, whose statistics the chunk's repeat.
    let small: Vec<String> = (0..50)
        .map(|i| record(&format!("id{i:03}"), "2024-01-02T00:00:07Z"))
        .collect();
    let out = encode(&[batch(&small)]);
    let small_chunks = chunks(&out.files[0].bytes);
    for c in &small_chunks {
        assert!(c.column_index_offset().is_none(), "{}", c.column_path());
        assert!(c.offset_index_offset().is_none(), "{}", c.column_path());
    }
    let time = chunk(&small_chunks, "time");
    assert!(
        time.statistics()
            .is_some_and(|s| s.null_count_opt() == Some(0))
    );

    // A text column of ~2.5 MB spans pages and keeps its column index (page
    // statistics); the others need none, but the offset index is written for all
    // columns of a file that has one. A JSON document column of the same size spans
    // pages too, without statistics at any level.
    let large: Vec<String> = (0..250).map(large_record).collect();
    let out = encode(&[batch(&large)]);
    let chunks = chunks(&out.files[0].bytes);
    let message = chunk(&chunks, "api.response.message");
    assert!(message.column_index_offset().is_some());
    assert!(message.offset_index_offset().is_some());
    let data = chunk(&chunks, "api.request.data");
    assert!(data.column_index_offset().is_none());
    assert!(data.statistics().is_none());
    assert!(data.offset_index_offset().is_some());
    assert!(chunk(&chunks, "class_name").column_index_offset().is_none());
    assert!(chunk(&chunks, "class_name").statistics().is_some());
    // A single-page column inside a map gets no chunk statistics either.
    let unmapped = chunk(&chunks, "unmapped.key_value.value");
    assert!(unmapped.num_values() > 0 && unmapped.statistics().is_none());
    let reader = SerializedFileReader::new_with_options(
        bytes::Bytes::from(out.files[0].bytes.clone()),
        parquet::file::serialized_reader::ReadOptionsBuilder::new()
            .with_page_index()
            .build(),
    )
    .unwrap();
    for path in ["api.response.message", "api.request.data"] {
        let col = chunks
            .iter()
            .position(|c| c.column_path().string() == path)
            .unwrap();
        let pages = &reader.metadata().offset_index().unwrap()[0][col];
        assert!(pages.page_locations().len() > 1, "{path}: {pages:?}");
    }
}

#[test]
fn files_of_another_fit_get_their_own_properties() {
    // Fitted properties are built once per fit and reused: a small file (no page
    // index, constant columns uncompressed), a large one (page index, those columns
    // compressed), then the small one again, in one process.
    let small: Vec<String> = (0..50)
        .map(|i| record(&format!("id{i:03}"), "2024-01-02T00:00:07Z"))
        .collect();
    let large: Vec<String> = (0..250).map(large_record).collect();
    let first = encode(&[batch(&small)]);
    let other = encode(&[batch(&large)]);
    let again = encode(&[batch(&small)]);
    assert_eq!(first.files[0].bytes, again.files[0].bytes);
    let small_chunks = chunks(&first.files[0].bytes);
    let large_chunks = chunks(&other.files[0].bytes);
    assert!(
        chunk(&small_chunks, "api.response.message")
            .offset_index_offset()
            .is_none()
    );
    assert!(
        chunk(&large_chunks, "api.response.message")
            .offset_index_offset()
            .is_some()
    );
    let codec = |chunks: &[ColumnChunkMetaData], path: &str| chunk(chunks, path).compression();
    assert_eq!(
        codec(&small_chunks, "api.operation"),
        Compression::UNCOMPRESSED
    );
    assert!(matches!(
        codec(&large_chunks, "api.response.message"),
        Compression::ZSTD(_)
    ));
}
