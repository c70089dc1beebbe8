//! A partition's rows to Parquet files: sorted by time, exact duplicates (same
//! `metadata.uid` at the same `time`) removed, zstd, bounded pages and row groups,
//! and named by their content so the same input always gives the same files.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef, TimeUnit};
use arrow_select::interleave::interleave_record_batch;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{
    DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT, EnabledStatistics, WriterProperties,
};
use parquet::schema::types::{ColumnPath, SchemaDescriptor};
use trailhouse_ocsf::schema;
use xxhash_rust::xxh3::Xxh3;

use crate::layout::{Layout, PartitionKey};

/// Columns that the partition path supplies (`region=…/accountId=…`): Hive-style
/// tables (Athena, Glue crawlers, Spark, DuckDB) read them from the path, and a file
/// that also carried them would clash with the partition columns.
pub const PARTITION_COLUMNS: [&str; 2] = ["region", "accountid"];

/// Columns whose values are (nearly) all distinct: encoded plain, without a dictionary,
/// and compressed at [`unique_zstd_level`].
pub const UNIQUE_COLUMNS: [&str; 4] = ["metadata.uid", "api.request.uid", "time", "time_dt"];

/// The zstd level of [`UNIQUE_COLUMNS`] when the files' level is `level`: 1 up to
/// level 9, then `level`. These columns are random ids and millisecond times, where
/// zstd finds few matches; the fast strategy of level 1 keeps them as small as
/// levels 3 and 9 do or smaller (on the first 40 files of the benchmark corpus the
/// whole output is 9.927 MB at 1, 9.958 MB at 3, 10.015 MB at 9, 9.877 MB at 19),
/// and the double-hash search of level 3 looked for matches in them at a cost of
/// 1.6 % of a replay's instructions.
pub fn unique_zstd_level(level: i32) -> i32 {
    if level <= 9 { 1 } else { level }
}

/// Columns holding whole JSON documents (CloudTrail's `requestParameters` and
/// `responseElements`: up to tens of KB, nearly all distinct): encoded plain, and
/// without min/max statistics, which no query prunes on. A dictionary would hash
/// and compare each document in full, to spill soon; the statistics would compare
/// each in full twice and store two truncated prefixes per page.
pub const DOCUMENT_COLUMNS: [&str; 2] = ["api.request.data", "api.response.data"];

/// The writer is fed the sorted rows in slices of at most this many rows …
const SLICE_ROWS: usize = 8192;
/// … and about this many bytes of Arrow data (estimated from each input batch's
/// average row), so an encoder's working copy does not grow with the row size.
const SLICE_BYTES: usize = 8 << 20;

/// A leaf column whose chunk in a file comes to at most about this many bytes
/// before compression is stored uncompressed: zstd cannot shrink so little, and its
/// frames would add bytes and cost a compression context per page.
const TINY_CHUNK_BYTES: usize = 96;

/// Why a partition could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Arrow refused the arrays (a bug: batches must have the OCSF schema).
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// The Parquet encoder failed.
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// A record kept as JSON ([`crate::RawRecords`]) did not map again (a bug: it
    /// mapped when it was read).
    #[error("a record kept as JSON did not map again: {0}")]
    Remap(#[from] trailhouse_ocsf::MapError),
}

/// Parquet settings. The defaults follow Security Lake's custom-source guidance:
/// zstd, data pages ≤ 1 MB, row groups well under 256 MB.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// The columns written without a dictionary.
fn no_dictionary() -> impl Iterator<Item = &'static str> {
    UNIQUE_COLUMNS.into_iter().chain(DOCUMENT_COLUMNS)
}

/// Parquet writer settings of every lake file.
pub fn writer_properties(opts: &WriteOptions) -> Result<WriterProperties, ParquetError> {
    let mut b = WriterProperties::builder();
    let path = |p: &str| ColumnPath::new(p.split('.').map(str::to_string).collect());
    // Columns unique per row gain nothing from a dictionary: the encoder would hash
    // every value into one, find it full, and fall back to plain encoding.
    for p in no_dictionary() {
        b = b.set_column_dictionary_enabled(path(p), false);
    }
    let unique = Compression::ZSTD(ZstdLevel::try_new(unique_zstd_level(opts.zstd_level))?);
    for p in UNIQUE_COLUMNS {
        b = b.set_column_compression(path(p), unique);
    }
    for p in DOCUMENT_COLUMNS {
        b = b.set_column_statistics_enabled(path(p), EnabledStatistics::None);
    }
    // Leaves inside lists and maps (`unmapped`, `observables`, `resources`,
    // `metadata.profiles`) get no statistics either: engines prune row groups on
    // top-level and struct fields (parquet-mr, under Spark, refuses predicates on
    // repeated columns), and the min and max of all elements of a chunk cost a
    // comparison per element plus footer bytes in every file.
    for leaf in leaf_columns().iter().filter(|l| l.repeated) {
        b = b.set_column_statistics_enabled(leaf.path.clone(), EnabledStatistics::None);
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

/// [`writer_properties`], fitted to the file that `batches` make (the rows of one
/// partition; fitted per leaf column from [`leaf_contents`]):
///
/// - A leaf whose chunk will be tiny is not compressed. On the benchmark corpus more
///   than half of all column chunks are under 128 bytes before compression (all-null
///   columns, and columns constant in a partition, which the dictionary shrinks to
///   one value); zstd made them larger (×1.17–1.38), and each cost a zstd
///   compressor and decompressor (parquet-rs makes both for every compressed
///   column of a file).
/// - A leaf whose chunk will be a single data page gets chunk statistics only, not
///   the page index: the index would repeat the chunk's statistics and offsets. If
///   every leaf is such, the file has no page index at all. Partitions are small
///   (the benchmark's files average ~360 rows), and there the page index was 4.5 %
///   of the bytes. Larger files keep it for the columns that span pages.
///
/// Files differ only in which leaves these are, and a lake's files repeat a few such
/// fits, so each fit's properties are built once ([`FITTED`]) and cloned: building
/// them (the base map of 16 column paths, then the fitted one of up to 67, each
/// insert hashing its path) was a tenth of encoding a file of a few rows.
fn file_properties(
    batches: &[RecordBatch],
    opts: &WriteOptions,
) -> Result<WriterProperties, WriteError> {
    let fit = Fit::of(batches, opts)?;
    let mut cache = FITTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(props) = cache.get(&fit) {
        return Ok(props.clone());
    }
    let props = fit.properties()?;
    if cache.len() >= MAX_FITTED {
        cache.clear();
    }
    cache.insert(fit, props.clone());
    Ok(props)
}

/// Fitted properties built so far, by fit.
static FITTED: LazyLock<Mutex<HashMap<Fit, WriterProperties>>> = LazyLock::new(Default::default);
/// The most fits [`FITTED`] keeps (each a map of up to 67 column paths: about 30 KB,
/// by the sizes of its parts, so at most ~4 MB in all); it starts over when full. The
/// benchmark corpus's 543 files have 141 fits, a 10 GB replay's 3,363 files 245.
const MAX_FITTED: usize = 128;

/// What [`file_properties`] decides for a file: the options it starts from, and a
/// bit per leaf column (in [`leaf_columns`] order) for each choice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fit {
    opts: WriteOptions,
    /// Leaves stored uncompressed.
    uncompressed: Vec<u64>,
    /// Leaves that will be one data page.
    one_page: Vec<u64>,
}

impl Fit {
    fn of(batches: &[RecordBatch], opts: &WriteOptions) -> Result<Fit, ArrowError> {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        // A chunk is one data page if it stays under the page's row limit and byte
        // limit; the writer checks the bytes only every few hundred values, hence the
        // margin below. (A dictionary-encoded chunk's data page holds indices, smaller
        // still.) [`writer_properties`] keeps parquet-rs's row limit.
        let few_rows = rows <= DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT;
        let leaves = leaf_contents(batches)?;
        let words = leaves.len().div_ceil(64);
        let mut fit = Fit {
            opts: opts.clone(),
            uncompressed: vec![0; words],
            one_page: vec![0; words],
        };
        for (i, (leaf, column)) in leaves.iter().zip(leaf_columns()).enumerate() {
            let bit = 1u64 << (i % 64);
            if leaf.encoded_estimate(column.dictionary) <= TINY_CHUNK_BYTES {
                fit.uncompressed[i / 64] |= bit;
            }
            if few_rows && leaf.bytes() <= opts.data_page_bytes / 2 {
                fit.one_page[i / 64] |= bit;
            }
        }
        Ok(fit)
    }

    fn properties(&self) -> Result<WriterProperties, ParquetError> {
        let base = writer_properties(&self.opts)?;
        let mut b = base.clone().into_builder();
        let has = |bits: &[u64], i: usize| bits[i / 64] & (1 << (i % 64)) != 0;
        let leaves = leaf_columns();
        for (i, LeafColumn { path, .. }) in leaves.iter().enumerate() {
            if has(&self.uncompressed, i) {
                b = b.set_column_compression(path.clone(), Compression::UNCOMPRESSED);
            }
        }
        if (0..leaves.len()).all(|i| has(&self.one_page, i)) {
            // The offset index goes too; parquet-rs keeps it while the default (or any
            // column) asks for page statistics. Columns set to no statistics keep
            // their own setting.
            b = b
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_offset_index_disabled(true);
        } else {
            for (i, LeafColumn { path, .. }) in leaves.iter().enumerate() {
                // Not for columns without statistics: this would turn them back on.
                if has(&self.one_page, i)
                    && base.statistics_enabled(path) != EnabledStatistics::None
                {
                    b = b.set_column_statistics_enabled(path.clone(), EnabledStatistics::Chunk);
                }
            }
        }
        Ok(b.build())
    }
}

/// A Parquet leaf column of the file schema.
struct LeafColumn {
    path: ColumnPath,
    /// Inside a list or map: its values are elements, not one per row.
    repeated: bool,
    /// Whether [`writer_properties`] gives it a dictionary.
    dictionary: bool,
}

/// The Parquet leaf columns of the file schema, in Parquet's order (depth first,
/// as the writer visits the Arrow arrays).
fn leaf_columns() -> &'static [LeafColumn] {
    static LEAVES: LazyLock<Vec<LeafColumn>> = LazyLock::new(|| {
        parquet_schema()
            .columns()
            .iter()
            .map(|c| LeafColumn {
                path: c.path().clone(),
                repeated: c.max_rep_level() > 0,
                dictionary: !no_dictionary().any(|p| p == c.path().string()),
            })
            .collect()
    });
    &LEAVES
}

/// [`file_schema`] in Parquet's terms, converted once (as `ArrowWriter` would for
/// every file).
fn parquet_schema() -> &'static SchemaDescriptor {
    static DESCR: LazyLock<SchemaDescriptor> = LazyLock::new(|| {
        ArrowSchemaConverter::new()
            .convert(&file_schema())
            .expect("the OCSF schema converts to Parquet")
    });
    &DESCR
}

/// What each Parquet leaf column holds over all of `batches` (in [`leaf_columns`]
/// order): estimated from the Arrow arrays without encoding anything.
fn leaf_contents(batches: &[RecordBatch]) -> Result<Vec<Leaf>, ArrowError> {
    let want = leaf_columns().len();
    let mut merged: Vec<Leaf> = Vec::with_capacity(want);
    let mut leaves = Vec::with_capacity(want);
    for batch in batches {
        leaves.clear();
        for column in batch.columns() {
            collect_leaves(column, None, false, &mut leaves);
        }
        if leaves.len() != want {
            return Err(ArrowError::SchemaError(format!(
                "{} leaf arrays for {want} Parquet leaf columns",
                leaves.len()
            )));
        }
        if merged.is_empty() {
            merged.append(&mut leaves);
        } else {
            for (m, l) in merged.iter_mut().zip(leaves.drain(..)) {
                m.merge(l);
            }
        }
    }
    Ok(merged)
}

/// What one leaf column holds, as far as its encoded size goes. Merging the leaves of
/// several batches gives what the leaf of their concatenation would: a file's fit
/// depends on its rows, not on how they were batched.
#[derive(Debug)]
struct Leaf {
    /// Slots (rows, or list and map entries for a repeated leaf).
    slots: usize,
    /// Bytes of the values: of the non-null ones for fixed-width types; for
    /// booleans the count of non-null ones, a bit each ([`Leaf::bytes`]).
    values: usize,
    /// Whether the values are booleans.
    boolean: bool,
    levels: Levels,
    /// Whether all slots hold the same thing.
    shape: Shape,
}

/// The definition levels of a leaf's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Levels {
    /// Not repeated: its runs of equal level. Parquet stores a run of levels in a
    /// few bytes, so a leaf null in the first rows and valid in the rest, say, costs
    /// about nothing for them. (Two enclosing structs, each null at some of the
    /// slots, are not told apart: rare, and then the estimate is low by a few bits
    /// per slot.)
    Runs(Runs),
    /// Inside a list or map: up to a few bits per slot.
    Repeated,
}

impl Levels {
    /// Whether every slot is at the same level (no slot counts as one run).
    fn one_run(self) -> bool {
        matches!(self, Levels::Runs(runs) if runs.count <= 1)
    }
}

/// Runs of equal definition level, and the level at either end (0: null in an
/// enclosing struct, 1: null in the leaf, 2: a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Runs {
    count: usize,
    first: u8,
    last: u8,
}

impl Runs {
    /// The runs of slots whose enclosing structs are valid where `parent` says, and
    /// that hold a value where `valid` says (`None`: everywhere).
    fn of(parent: Option<&NullBuffer>, valid: Option<&NullBuffer>, slots: usize) -> Runs {
        if slots == 0 {
            return Runs {
                count: 0,
                first: 0,
                last: 0,
            };
        }
        let level = |i: usize| {
            u8::from(parent.is_none_or(|p| p.is_valid(i)))
                + u8::from(valid.is_none_or(|v| v.is_valid(i)))
        };
        // Slots whose validity differs from the previous slot's.
        let changes = |b: Option<&NullBuffer>| {
            b.map(|b| &b.inner().slice(0, slots - 1) ^ &b.inner().slice(1, slots - 1))
        };
        let changed = match (changes(parent), changes(valid)) {
            (Some(p), Some(v)) => (&p | &v).count_set_bits(),
            (Some(c), None) | (None, Some(c)) => c.count_set_bits(),
            (None, None) => 0,
        };
        Runs {
            count: 1 + changed,
            first: level(0),
            last: level(slots - 1),
        }
    }

    fn then(self, next: Runs) -> Runs {
        if self.count == 0 {
            return next;
        }
        if next.count == 0 {
            return self;
        }
        Runs {
            count: self.count + next.count - usize::from(self.last == next.first),
            first: self.first,
            last: next.last,
        }
    }
}

#[derive(Debug)]
enum Shape {
    /// Every slot is null, at the same level (this one or an enclosing struct's).
    AllNull,
    /// Every slot holds this value (an array of one; then its size in bytes); none
    /// is null.
    Same(ArrayRef, usize),
    /// Anything else, or not examined (leaves inside lists and maps).
    Varied,
}

impl Leaf {
    /// Bytes of the values plus the levels (none for one run, about two bytes a run,
    /// at most a quarter byte per slot): about the chunk's size without a dictionary.
    fn bytes(&self) -> usize {
        let values = if self.boolean {
            self.values.div_ceil(8)
        } else {
            self.values
        };
        let levels = match self.levels {
            levels if levels.one_run() => 0,
            // A run takes a byte or two; slots in short runs a bit or two each.
            Levels::Runs(runs) => (runs.count * 2).min(self.slots / 4),
            Levels::Repeated => self.slots / 4,
        };
        values + levels
    }

    fn merge(&mut self, other: Leaf) {
        if other.slots == 0 {
            return;
        }
        if self.slots == 0 {
            *self = other;
            return;
        }
        self.slots += other.slots;
        self.values += other.values;
        self.levels = match (self.levels, other.levels) {
            (Levels::Runs(a), Levels::Runs(b)) => Levels::Runs(a.then(b)),
            _ => Levels::Repeated,
        };
        self.shape = match (
            std::mem::replace(&mut self.shape, Shape::Varied),
            other.shape,
        ) {
            // Null at the same level throughout.
            (Shape::AllNull, Shape::AllNull) if self.levels.one_run() => Shape::AllNull,
            (Shape::Same(a, n), Shape::Same(b, _)) if a.to_data() == b.to_data() => {
                Shape::Same(a, n)
            }
            _ => Shape::Varied,
        };
    }

    /// About how many bytes the chunk takes before compression. A repeated value
    /// is stored once only if the column has a dictionary.
    fn encoded_estimate(&self, dictionary: bool) -> usize {
        match self.shape {
            Shape::AllNull => 0,
            Shape::Same(_, one) if dictionary => one,
            _ => self.bytes(),
        }
    }
}

/// Appends a [`Leaf`] for every Parquet leaf under `array`, in Parquet's order.
/// `parent` is the validity of the enclosing structs; `nested` says an enclosing
/// list or map repeats the leaf (its slots are then not the file's rows).
fn collect_leaves(
    array: &dyn Array,
    parent: Option<&NullBuffer>,
    nested: bool,
    out: &mut Vec<Leaf>,
) {
    match array.data_type() {
        DataType::Struct(_) => {
            let s = array.as_struct();
            let nulls = NullBuffer::union(parent, s.nulls());
            for c in s.columns() {
                collect_leaves(c, nulls.as_ref(), nested, out);
            }
        }
        DataType::List(_) => collect_leaves(array.as_list::<i32>().values(), None, true, out),
        DataType::LargeList(_) => collect_leaves(array.as_list::<i64>().values(), None, true, out),
        DataType::Map(_, _) => {
            for c in array.as_map().entries().columns() {
                collect_leaves(c, None, true, out);
            }
        }
        _ => out.push(leaf(array, parent, nested)),
    }
}

fn leaf(array: &dyn Array, parent: Option<&NullBuffer>, nested: bool) -> Leaf {
    let slots = array.len();
    let nulls = NullBuffer::union(parent, array.nulls());
    let null_count = nulls.as_ref().map_or(0, |n| n.null_count());
    let valid = slots - null_count;
    let boolean = array.data_type() == &DataType::Boolean;
    let values = match array.data_type() {
        DataType::Utf8 => {
            let offsets = array.as_string::<i32>().value_offsets();
            match &nulls {
                // Only the slots not null are stored: one null through an enclosing
                // struct may still span bytes of the child's buffer.
                Some(n) if n.null_count() > 0 => n
                    .valid_indices()
                    .map(|i| (offsets[i + 1] - offsets[i]) as usize)
                    .sum(),
                _ => (offsets[slots] - offsets[0]) as usize,
            }
        }
        DataType::Boolean => valid,
        t => valid * t.primitive_width().unwrap_or(16),
    };
    let levels = if nested {
        Levels::Repeated
    } else {
        Levels::Runs(Runs::of(parent, nulls.as_ref(), slots))
    };
    let shape = if nested || slots == 0 {
        Shape::Varied
    } else if valid == 0 && levels.one_run() {
        Shape::AllNull
    } else if null_count == 0 && all_same(array) {
        Shape::Same(array.slice(0, 1), values / valid)
    } else {
        Shape::Varied
    };
    Leaf {
        slots,
        values,
        boolean,
        levels,
        shape,
    }
}

/// Whether every slot of `array` (which has no nulls) holds the same value; false
/// for types not compared, and for booleans, which Parquet never puts in a
/// dictionary: a constant boolean column still takes a bit per value.
fn all_same(array: &dyn Array) -> bool {
    fn same<T: PartialEq>(mut values: impl Iterator<Item = T>) -> bool {
        match values.next() {
            Some(first) => values.all(|v| v == first),
            None => true,
        }
    }
    match array.data_type() {
        DataType::Utf8 => same(array.as_string::<i32>().iter()),
        DataType::Int32 => same(array.as_primitive::<Int32Type>().values().iter()),
        DataType::Int64 => same(array.as_primitive::<Int64Type>().values().iter()),
        DataType::Timestamp(TimeUnit::Millisecond, _) => same(
            array
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .iter(),
        ),
        _ => false,
    }
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
/// ([`trailhouse_ocsf::schema()`]); their order only matters for ties, which makes the
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

    let props = file_properties(&projected, opts)?;
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
    // One set of properties per file, moved into the last.
    let file_rows = opts.max_file_rows.max(1);
    let props = std::iter::repeat_n(props, order.len().div_ceil(file_rows));
    for (part, props) in order.chunks(file_rows).zip(props) {
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
                .with_properties(props)
                .with_parquet_schema(parquet_schema().clone())
                .with_skip_arrow_metadata(true),
        )?;
        let ends = slice_ends(
            part.iter().map(|(_, _, b, _)| row_bytes[*b]),
            SLICE_ROWS,
            SLICE_BYTES,
        );
        let mut idx: Vec<(usize, usize)> = Vec::with_capacity(part.len().min(SLICE_ROWS));
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
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BooleanArray, Int32Array, StringArray, StructArray};
    use arrow_buffer::NullBuffer;
    use arrow_schema::{DataType, Field};

    use parquet::basic::{Compression, ZstdLevel};
    use parquet::schema::types::ColumnPath;

    use super::{
        Leaf, Shape, UNIQUE_COLUMNS, WriteOptions, collect_leaves, slice_ends, writer_properties,
    };

    fn leaves(array: &ArrayRef) -> Vec<Leaf> {
        let mut out = Vec::new();
        collect_leaves(array.as_ref(), None, false, &mut out);
        out
    }

    fn session(outer_nulls: Option<NullBuffer>, issuer: StringArray) -> ArrayRef {
        Arc::new(StructArray::new(
            vec![Field::new("issuer", DataType::Utf8, true)].into(),
            vec![Arc::new(issuer) as ArrayRef],
            outer_nulls,
        ))
    }

    #[test]
    fn leaves_tell_null_constant_and_varied_apart() {
        // All null inside a valid struct, and inside an all-null struct: one level.
        let valid = session(None, StringArray::from(vec![None::<&str>; 4]));
        assert!(matches!(leaves(&valid)[0].shape, Shape::AllNull));
        let null = session(
            Some(NullBuffer::new_null(4)),
            StringArray::from(vec![Some("x"); 4]),
        );
        assert!(matches!(leaves(&null)[0].shape, Shape::AllNull));
        // Null in the struct at some slots and in the leaf at the others: two levels.
        let mixed = session(
            Some(NullBuffer::from(vec![true, false, true, false])),
            StringArray::from(vec![None::<&str>; 4]),
        );
        assert!(matches!(leaves(&mixed)[0].shape, Shape::Varied));
        assert_eq!(
            leaves(&mixed)[0].bytes(),
            4 / 4,
            "no values, levels of two kinds"
        );
        // Parquet keeps no dictionary for booleans: a constant one is a bit per value.
        let flags: ArrayRef = Arc::new(BooleanArray::from(vec![true; 64]));
        let leaf = &leaves(&flags)[0];
        assert!(matches!(leaf.shape, Shape::Varied));
        assert_eq!(leaf.encoded_estimate(true), 64 / 8);
        // One value throughout; a constant leaf counts its value's bytes once.
        let same = session(None, StringArray::from(vec![Some("issuer"); 4]));
        let leaf = &leaves(&same)[0];
        assert!(matches!(leaf.shape, Shape::Same(_, 6)));
        assert_eq!(leaf.encoded_estimate(true), 6);
        assert_eq!(leaf.encoded_estimate(false), 4 * 6);
        // Partly null (here in the struct): not one run of levels, whatever the values.
        let hidden = session(
            Some(NullBuffer::from(vec![true, true, false, true])),
            StringArray::from(vec![Some("a"), Some("a"), Some("b"), Some("a")]),
        );
        assert!(matches!(leaves(&hidden)[0].shape, Shape::Varied));
    }

    #[test]
    fn leaves_merge_across_batches() {
        let ints = |v: Vec<i32>| -> ArrayRef { Arc::new(Int32Array::from(v)) };
        let (n1, n2) = (8, 12);
        let mut a = leaves(&ints(vec![7; n1])).remove(0);
        a.merge(leaves(&ints(vec![7; n2])).remove(0));
        assert!(matches!(a.shape, Shape::Same(_, 4)));
        // Four bytes per value; no nulls, so the levels are one run in each batch.
        assert_eq!(a.bytes(), (n1 + n2) * 4);
        a.merge(leaves(&ints(vec![8])).remove(0));
        assert!(matches!(a.shape, Shape::Varied));
        let nulls = |n: usize| -> ArrayRef { Arc::new(Int32Array::from(vec![None; n])) };
        let mut n = leaves(&nulls(2)).remove(0);
        n.merge(leaves(&nulls(3)).remove(0));
        assert!(matches!(n.shape, Shape::AllNull));
        assert_eq!(n.encoded_estimate(true), 0);
        n.merge(leaves(&ints(vec![7])).remove(0));
        assert!(matches!(n.shape, Shape::Varied));
    }

    /// The leaf of batches merged, and of the batches concatenated, in a comparable form.
    fn merged_and_whole(parts: &[ArrayRef]) -> [(usize, usize, &'static str); 2] {
        let view = |l: &Leaf| {
            let shape = match l.shape {
                Shape::AllNull => "all null",
                Shape::Same(..) => "same",
                Shape::Varied => "varied",
            };
            (l.encoded_estimate(true), l.encoded_estimate(false), shape)
        };
        let mut merged = leaves(&parts[0]).remove(0);
        for part in &parts[1..] {
            merged.merge(leaves(part).remove(0));
        }
        let refs: Vec<&dyn arrow_array::Array> = parts.iter().map(|p| p.as_ref()).collect();
        let whole = leaves(&arrow_select::concat::concat(&refs).unwrap()).remove(0);
        [view(&merged), view(&whole)]
    }

    #[test]
    fn leaves_merged_over_batches_are_the_leaf_of_their_rows() {
        let issuers = |v: Vec<Option<&str>>| StringArray::from(v);
        let null_leaf = session(None, issuers(vec![None; 40]));
        let null_struct = session(Some(NullBuffer::new_null(40)), issuers(vec![None; 40]));
        let constant = session(None, issuers(vec![Some("issuer"); 40]));
        let other = session(None, issuers(vec![Some("other"); 40]));
        let empty = session(None, issuers(vec![]));
        let alternating = session(
            Some(NullBuffer::from_iter((0..40).map(|i| i % 3 != 0))),
            issuers((0..40).map(|i| (i % 2 == 0).then_some("x")).collect()),
        );
        let flags = |n: usize| -> ArrayRef { Arc::new(BooleanArray::from(vec![true; n])) };
        let cases: Vec<Vec<ArrayRef>> = vec![
            // Each batch one run of levels, but of different levels: not one run
            // over the file (its run count, where it used to count none).
            vec![null_leaf.clone(), null_struct.clone()],
            vec![constant.clone(), null_leaf.clone()],
            vec![null_struct.clone(), constant.clone(), null_struct.clone()],
            // The same level throughout.
            vec![null_leaf.clone(), null_leaf.clone()],
            vec![constant.clone(), constant.clone()],
            vec![constant.clone(), other.clone()],
            // An empty batch changes nothing.
            vec![empty.clone(), null_leaf.clone()],
            vec![constant.clone(), empty.clone(), constant.clone()],
            // Booleans take a bit per value over the file, not rounded up per batch.
            vec![flags(3), flags(3), flags(3)],
            // Runs that go on from one batch into the next, and short ones.
            vec![alternating.clone(), null_leaf.clone(), alternating.clone()],
            vec![alternating.clone(), alternating.clone()],
        ];
        for parts in cases {
            let [merged, whole] = merged_and_whole(&parts);
            assert_eq!(merged, whole, "{parts:?}");
        }
        // Null in the leaf, then in the struct: two runs of levels, two bytes each,
        // and no longer a column null at one level throughout.
        let [(_, bytes, shape), _] = merged_and_whole(&[null_leaf, null_struct]);
        assert_eq!((bytes, shape), (2 * 2, "varied"));
        // Runs of one or two slots: a quarter byte per slot at most. Of the one-byte
        // "x" at every other slot only those the struct does not hide count (slots
        // 2 and 4 of every 6: 13 of 0..40), not the 20 the child's buffer holds.
        let [(_, bytes, _), _] = merged_and_whole(&[alternating]);
        assert_eq!(bytes, 13 + 40 / 4);
    }

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

    #[test]
    fn files_keep_parquets_page_row_limit() {
        // The fit takes a file of at most this many rows for one page per column.
        let props = writer_properties(&WriteOptions::default()).unwrap();
        assert_eq!(
            props.data_page_row_count_limit(),
            parquet::file::properties::DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT
        );
    }

    #[test]
    fn unique_columns_use_level_1_up_to_level_9() {
        let codec = |level: i32, column: &str| {
            let opts = WriteOptions {
                zstd_level: level,
                ..WriteOptions::default()
            };
            let path = ColumnPath::new(column.split('.').map(str::to_string).collect());
            writer_properties(&opts).unwrap().compression(&path)
        };
        let zstd = |level| Compression::ZSTD(ZstdLevel::try_new(level).unwrap());
        for column in UNIQUE_COLUMNS {
            assert_eq!(codec(3, column), zstd(1), "{column}");
            assert_eq!(codec(9, column), zstd(1), "{column}");
            assert_eq!(codec(19, column), zstd(19), "{column}");
        }
        // Every other column, documents included, at the level asked for.
        for column in [
            "api.operation",
            "api.request.data",
            "unmapped.key_value.value",
        ] {
            assert_eq!(codec(3, column), zstd(3), "{column}");
            assert_eq!(codec(19, column), zstd(19), "{column}");
        }
        // An invalid level is still refused.
        for level in [0, 23] {
            let opts = WriteOptions {
                zstd_level: level,
                ..WriteOptions::default()
            };
            assert!(writer_properties(&opts).is_err(), "level {level}");
        }
    }
}
