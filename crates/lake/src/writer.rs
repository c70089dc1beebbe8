//! A partition's rows to Parquet files: sorted by time, exact duplicates (same
//! `metadata.uid` at the same `time`) removed, zstd, bounded pages and row groups,
//! and named by their content so the same input always gives the same files.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use arrow_select::interleave::interleave_record_batch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use trailhouse_ocsf::schema;
use xxhash_rust::xxh3::Xxh3;

use crate::layout::{Layout, PartitionKey};

/// Columns that the partition path supplies (`region=…/accountId=…`): Hive-style
/// tables (Athena, Glue crawlers, Spark, DuckDB) read them from the path, and a file
/// that also carried them would clash with the partition columns.
pub const PARTITION_COLUMNS: [&str; 2] = ["region", "accountid"];

/// Columns whose values are (nearly) all distinct: encoded plain, without a dictionary.
pub const UNIQUE_COLUMNS: [&str; 4] = ["metadata.uid", "api.request.uid", "time", "time_dt"];

/// The writer is fed the sorted rows in slices of at most this many rows …
const SLICE_ROWS: usize = 8192;
/// … and about this many bytes of Arrow data (estimated from each input batch's
/// average row), so an encoder's working copy does not grow with the row size.
const SLICE_BYTES: usize = 8 << 20;

/// Why a partition could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Arrow refused the arrays (a bug: batches must have the OCSF schema).
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// The Parquet encoder failed.
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
}

/// Parquet settings. The defaults follow Security Lake's custom-source guidance:
/// zstd, data pages ≤ 1 MB, row groups well under 256 MB.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// zstd level (1 fastest … 22 smallest).
    pub zstd_level: i32,
    /// Rows per row group at most.
    pub max_row_group_rows: usize,
    /// Uncompressed bytes per row group at most.
    pub max_row_group_bytes: usize,
    /// Uncompressed bytes per data page at most.
    pub data_page_bytes: usize,
    /// Rows per file at most; a larger partition is split into several files.
    pub max_file_rows: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            zstd_level: 3,
            max_row_group_rows: 128 * 1024,
            max_row_group_bytes: 128 << 20,
            data_page_bytes: 1 << 20,
            max_file_rows: 4 * 1024 * 1024,
        }
    }
}

/// One encoded Parquet file, ready to be stored.
#[derive(Debug)]
pub struct EncodedFile {
    /// Path relative to the lake root, e.g. `ext/…/eventDay=20240101/{32 hex}.parquet`.
    pub path: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Rows in the file.
    pub rows: u64,
    /// Smallest and largest `time` (epoch ms).
    pub time_range: (i64, i64),
}

/// What encoding a partition produced.
#[derive(Debug, Default)]
pub struct EncodedPartition {
    /// The files, in time order.
    pub files: Vec<EncodedFile>,
    /// Rows dropped as exact duplicates of another row (same eventID and time).
    pub duplicates: u64,
}

/// The schema of the files: the OCSF table schema minus [`PARTITION_COLUMNS`].
pub fn file_schema() -> SchemaRef {
    let full = schema();
    let fields: Vec<_> = full
        .fields()
        .iter()
        .filter(|f| !PARTITION_COLUMNS.contains(&f.name().as_str()))
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
}

/// Parquet writer settings of every lake file.
pub fn writer_properties(opts: &WriteOptions) -> Result<WriterProperties, ParquetError> {
    let mut b = WriterProperties::builder();
    // Columns unique per row gain nothing from a dictionary: the encoder would hash
    // every value into one, find it full, and fall back to plain encoding.
    for path in UNIQUE_COLUMNS {
        let path = ColumnPath::new(path.split('.').map(str::to_string).collect());
        b = b.set_column_dictionary_enabled(path, false);
    }
    Ok(
        b.set_compression(Compression::ZSTD(ZstdLevel::try_new(opts.zstd_level)?))
            .set_max_row_group_row_count(Some(opts.max_row_group_rows))
            .set_max_row_group_bytes(Some(opts.max_row_group_bytes))
            .set_data_page_size_limit(opts.data_page_bytes)
            .set_dictionary_page_size_limit(opts.data_page_bytes)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(concat!("trailhouse version ", env!("CARGO_PKG_VERSION")).to_string())
            .build(),
    )
}

/// Where the slices of rows fed to the writer end (exclusive indices): each holds at
/// most `max_rows` rows, and ends at the row that brings its bytes to `max_bytes`.
fn slice_ends(
    row_bytes: impl Iterator<Item = usize>,
    max_rows: usize,
    max_bytes: usize,
) -> Vec<usize> {
    let mut ends = Vec::new();
    let (mut rows, mut bytes, mut n) = (0, 0, 0);
    for b in row_bytes {
        n += 1;
        rows += 1;
        bytes += b;
        if rows >= max_rows || bytes >= max_bytes {
            ends.push(n);
            (rows, bytes) = (0, 0);
        }
    }
    if rows > 0 {
        ends.push(n);
    }
    ends
}

/// Encodes all rows of one partition. `batches` must have the OCSF schema
/// ([`trailhouse_ocsf::schema`]); their order only matters for ties, which makes the
/// output deterministic for a deterministic input order.
pub fn encode_partition(
    key: &PartitionKey,
    layout: Layout,
    batches: &[RecordBatch],
    opts: &WriteOptions,
) -> Result<EncodedPartition, WriteError> {
    let file_schema = file_schema();
    let keep: Vec<usize> = file_schema
        .fields()
        .iter()
        .map(|f| schema().index_of(f.name()))
        .collect::<Result<_, _>>()?;
    let projected: Vec<RecordBatch> = batches
        .iter()
        .map(|b| b.project(&keep))
        .collect::<Result<_, _>>()?;

    // Sort keys without copying rows: (time, eventID, batch, row).
    let mut order: Vec<(i64, &str, usize, usize)> =
        Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    let mut columns = Vec::with_capacity(batches.len());
    for b in batches {
        let time = b
            .column_by_name("time")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| ArrowError::SchemaError("time is not Int64".into()))?
            .clone();
        let uid = b
            .column_by_name("metadata")
            .and_then(|c| c.as_any().downcast_ref::<StructArray>())
            .and_then(|m| m.column_by_name("uid"))
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| ArrowError::SchemaError("metadata.uid is not Utf8".into()))?
            .clone();
        columns.push((time, uid));
    }
    for (bi, (time, uid)) in columns.iter().enumerate() {
        for row in 0..time.len() {
            order.push((time.value(row), uid.value(row), bi, row));
        }
    }
    order.sort_unstable();
    let before = order.len();
    order.dedup_by(|later, earlier| later.0 == earlier.0 && later.1 == earlier.1);
    let duplicates = (before - order.len()) as u64;

    let props = writer_properties(opts)?;
    let refs: Vec<&RecordBatch> = projected.iter().collect();
    let row_bytes: Vec<usize> = projected
        .iter()
        .map(|b| b.get_array_memory_size() / b.num_rows().max(1))
        .collect();
    let dir = key.dir(layout);
    let mut out = EncodedPartition {
        files: Vec::new(),
        duplicates,
    };
    for part in order.chunks(opts.max_file_rows.max(1)) {
        // Content-derived name: the partition and every (time, eventID) in order.
        let mut h = Xxh3::new();
        h.update(dir.as_bytes());
        for (t, uid, _, _) in part {
            h.update(&t.to_le_bytes());
            h.update(uid.as_bytes());
            h.update(&[0]);
        }
        let name = format!("{:032x}", h.digest128());
        let mut writer = ArrowWriter::try_new_with_options(
            Vec::new(),
            file_schema.clone(),
            ArrowWriterOptions::new()
                .with_properties(props.clone())
                .with_skip_arrow_metadata(true),
        )?;
        let ends = slice_ends(
            part.iter().map(|(_, _, b, _)| row_bytes[*b]),
            SLICE_ROWS,
            SLICE_BYTES,
        );
        let mut idx: Vec<(usize, usize)> = Vec::with_capacity(SLICE_ROWS);
        let mut start = 0;
        for end in ends {
            idx.clear();
            idx.extend(part[start..end].iter().map(|(_, _, b, r)| (*b, *r)));
            writer.write(&interleave_record_batch(&refs, &idx)?)?;
            start = end;
        }
        let bytes = writer.into_inner()?;
        out.files.push(EncodedFile {
            path: format!("{dir}{name}.parquet"),
            bytes,
            rows: part.len() as u64,
            time_range: (part[0].0, part[part.len() - 1].0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::slice_ends;

    #[test]
    fn slices_end_at_the_row_or_byte_bound() {
        // Small rows: the row bound decides.
        assert_eq!(slice_ends([10; 7].into_iter(), 3, 1000), vec![3, 6, 7]);
        // Large rows: a slice ends at the row that reaches the byte bound.
        assert_eq!(
            slice_ends([400, 400, 400, 50, 900, 10].into_iter(), 100, 800),
            vec![2, 5, 6]
        );
        // A row larger than the bound is a slice of its own.
        assert_eq!(slice_ends([5000, 1].into_iter(), 100, 800), vec![1, 2]);
        assert!(slice_ends(std::iter::empty(), 3, 800).is_empty());
    }
}
