//! A batch job's overflow: rows of partitions too small to be worth a file of their own,
//! set aside on local disk until the partition has enough rows, or the job ends.
//!
//! When a replay's input spreads over more partitions than its memory bound can hold
//! (thousands of accounts × regions × days in one pass), the bound forces small
//! partitions out long before they are full; written to the lake, they become files of
//! a few rows each. Spilled instead, a partition's rows come back together once they
//! are worth a file (the caller decides how much that is; `replay` uses 1/32 of its
//! memory bound), or at the end, and are written as one file.
//!
//! One append-only file holds every partition's spilled rows: each [`Spill::put`] is one
//! zstd frame (level 1, one reused context) of Arrow IPC record batch messages, which
//! are read back after the stream's schema message, kept in memory, and one more for
//! records kept as JSON ([`RawRecords`]: their count, their ends, their bytes). An
//! in-memory index keeps each partition's frames. (Arrow IPC's own compression was tried first: it
//! compresses every buffer of every column on its own, with a fresh LZ4 frame each
//! time, and the spill of a 300 MB input spent 85 % of its time there.) The file is
//! unlinked as soon as it is open (on Unix), so nothing is left behind if the process
//! dies; space is given back when the `Spill` is dropped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::ArrowError;
use arrow_select::concat::concat_batches;
use trailhouse_lake::{PartitionKey, Pending, RawRecords};

/// zstd level of the spill's frames: the fastest, the spill being read back once.
const LEVEL: i32 = 1;

/// Spilled rows, by partition, in one local file created on first use.
pub struct Spill {
    path: PathBuf,
    open: Option<Open>,
    parts: BTreeMap<PartitionKey, Spilled>,
    written: u64,
}

struct Open {
    file: File,
    reader: File,
    /// Made at the first batch spilled.
    ipc: Option<Ipc>,
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    /// Whether the path still exists (it could not be unlinked while open).
    linked: bool,
}

struct Ipc {
    /// Encodes batches as IPC messages into its `Vec`, emptied after every put.
    writer: StreamWriter<Vec<u8>>,
    /// The stream's schema, and its message, which every frame is read after.
    schema: arrow_schema::SchemaRef,
    head: Vec<u8>,
}

/// One put: where its frame is in the file, and the IPC bytes it decompresses to.
struct Frame {
    at: u64,
    len: usize,
    raw_len: usize,
}

#[derive(Default)]
struct Spilled {
    /// Frames of IPC messages.
    frames: Vec<Frame>,
    /// Frames of records kept as JSON.
    json: Vec<Frame>,
    /// Bytes of Arrow data of the rows (buffers' used lengths): about the memory they
    /// take when read back into one batch, without the slack of the small batches they
    /// were spilled as (capacity, 64-byte rounding, per-array overhead).
    bytes: usize,
    rows: usize,
}

fn arrow_io(e: ArrowError) -> io::Error {
    match e {
        ArrowError::IoError(_, e) => e,
        e => io::Error::other(e),
    }
}

/// The bytes of Arrow data `batch` holds: its buffers' lengths, not their capacity.
fn data_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

impl Spill {
    /// A spill that will create its file in `dir` (not before the first [`Spill::put`]).
    pub fn new(dir: &Path) -> Self {
        Spill {
            path: dir.join(format!(".trailhouse-spill-{}", std::process::id())),
            open: None,
            parts: BTreeMap::new(),
            written: 0,
        }
    }

    /// Where the spill file is (or will be) created.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written to the spill file so far (zstd frames).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Whether `key` has spilled rows.
    pub fn holds(&self, key: &PartitionKey) -> bool {
        self.parts.contains_key(key)
    }

    /// About the Arrow memory that `key`'s spilled rows take when read back (their
    /// data's size).
    pub fn bytes(&self, key: &PartitionKey) -> usize {
        self.parts.get(key).map_or(0, |s| s.bytes)
    }

    /// Partitions with spilled rows, in key order.
    pub fn keys(&self) -> Vec<PartitionKey> {
        self.parts.keys().cloned().collect()
    }

    fn open(&mut self) -> io::Result<&mut Open> {
        if self.open.is_none() {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.path)?;
            let reader = File::open(&self.path)?;
            // Unlinked while open: the space is the process's until it drops the handles.
            let linked = std::fs::remove_file(&self.path).is_err();
            self.open = Some(Open {
                file,
                reader,
                ipc: None,
                compressor: zstd::bulk::Compressor::new(LEVEL)?,
                decompressor: zstd::bulk::Decompressor::new()?,
                linked,
            });
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    /// Appends `pending`'s rows (batches and records kept as JSON) to `key`'s
    /// spilled rows.
    ///
    /// # Errors
    /// When the spill file cannot be created or written, or a batch's schema is not the
    /// one the spill started with.
    pub fn put(&mut self, key: &PartitionKey, pending: Pending) -> io::Result<()> {
        if pending.batches.is_empty() && pending.raw.is_empty() {
            return Ok(());
        }
        let mut at = self.written;
        let open = self.open()?;
        let mut batches = None;
        if let Some(first) = pending.batches.first() {
            let ipc = match &mut open.ipc {
                Some(ipc) => ipc,
                None => {
                    let schema = first.schema();
                    let mut writer =
                        StreamWriter::try_new(Vec::new(), &schema).map_err(arrow_io)?;
                    let head = std::mem::take(writer.get_mut());
                    open.ipc.insert(Ipc {
                        writer,
                        schema,
                        head,
                    })
                }
            };
            for batch in &pending.batches {
                // The IPC writer does not check: a batch of another schema would be
                // written, and read back as garbage.
                let schema = batch.schema_ref();
                if !Arc::ptr_eq(schema, &ipc.schema) && **schema != *ipc.schema {
                    return Err(io::Error::other(
                        "spill: a batch's schema is not the spill's schema",
                    ));
                }
            }
            for batch in &pending.batches {
                ipc.writer.write(batch).map_err(arrow_io)?;
            }
            let raw = std::mem::take(ipc.writer.get_mut());
            let frame = open.write_frame(at, &raw)?;
            at += frame.len as u64;
            batches = Some(frame);
        }
        let mut json = None;
        if !pending.raw.is_empty() {
            let (bytes, ends) = pending.raw.parts();
            let mut raw = Vec::with_capacity(8 * (1 + ends.len()) + bytes.len());
            raw.extend_from_slice(&(ends.len() as u64).to_le_bytes());
            for &end in ends {
                raw.extend_from_slice(&(end as u64).to_le_bytes());
            }
            raw.extend_from_slice(bytes);
            let frame = open.write_frame(at, &raw)?;
            at += frame.len as u64;
            json = Some(frame);
        }
        self.written = at;
        let s = self.parts.entry(key.clone()).or_default();
        s.frames.extend(batches);
        s.json.extend(json);
        s.bytes += pending.batches.iter().map(data_bytes).sum::<usize>() + pending.raw.bytes();
        s.rows += pending.rows;
        Ok(())
    }

    /// Reads `key`'s spilled rows back, in the order they were spilled, as one batch
    /// and its records kept as JSON, and forgets them.
    ///
    /// # Errors
    /// When the spill file cannot be read or decoded.
    pub fn take(&mut self, key: &PartitionKey) -> io::Result<Option<Pending>> {
        let Some(spilled) = self.parts.remove(key) else {
            return Ok(None);
        };
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| io::Error::other("spill index without a spill file"))?;
        // One frame buffer, and one buffer of what a frame decompresses to (for IPC,
        // after the schema message), for all of the partition's frames.
        let mut frame = Vec::new();
        let mut batch = None;
        if !spilled.frames.is_empty() {
            let ipc = open
                .ipc
                .as_ref()
                .ok_or_else(|| io::Error::other("spill index of batches never spilled"))?;
            let (mut buf, schema) = (ipc.head.clone(), ipc.schema.clone());
            let mut batches = Vec::new();
            let head = buf.len();
            for f in &spilled.frames {
                open.read_frame(f, &mut frame, &mut buf, head)?;
                for batch in StreamReader::try_new(Cursor::new(&buf[..]), None).map_err(arrow_io)? {
                    batches.push(batch.map_err(arrow_io)?);
                }
            }
            batch = Some(concat_batches(&schema, &batches).map_err(arrow_io)?);
        }
        let mut raw = RawRecords::default();
        let mut buf = Vec::new();
        for f in &spilled.json {
            open.read_frame(f, &mut frame, &mut buf, 0)?;
            raw.append(json_records(&buf).ok_or_else(|| {
                io::Error::other("spill: a frame of JSON records does not add up")
            })?);
        }
        let rows = batch.as_ref().map_or(0, RecordBatch::num_rows) + raw.len();
        if rows != spilled.rows {
            return Err(io::Error::other(format!(
                "spill of {key} read back {rows} rows, {} were spilled",
                spilled.rows
            )));
        }
        Ok(Some(Pending {
            bytes: batch.as_ref().map_or(0, RecordBatch::get_array_memory_size) + raw.bytes(),
            rows,
            batches: batch.into_iter().collect(),
            raw,
            since_ms: 0,
        }))
    }
}

impl Open {
    /// Compresses `raw` into a frame at `at` (the end of the file).
    fn write_frame(&mut self, at: u64, raw: &[u8]) -> io::Result<Frame> {
        let frame = self.compressor.compress(raw)?;
        self.file.write_all(&frame)?;
        Ok(Frame {
            at,
            len: frame.len(),
            raw_len: raw.len(),
        })
    }

    /// Reads frame `f` (into `frame`) and decompresses it into `out` from `from` on.
    fn read_frame(
        &mut self,
        f: &Frame,
        frame: &mut Vec<u8>,
        out: &mut Vec<u8>,
        from: usize,
    ) -> io::Result<()> {
        frame.resize(f.len, 0);
        self.reader.seek(SeekFrom::Start(f.at))?;
        self.reader.read_exact(frame)?;
        out.resize(from + f.raw_len, 0);
        let n = self
            .decompressor
            .decompress_to_buffer(frame, &mut out[from..])?;
        if n != f.raw_len {
            return Err(io::Error::other(
                "spill: a frame decompressed to a wrong size",
            ));
        }
        Ok(())
    }
}

/// Records kept as JSON from a frame's bytes: their count, their ends (u64 LE each),
/// then their JSON.
fn json_records(buf: &[u8]) -> Option<RawRecords> {
    let word = |i: usize| -> Option<usize> {
        let b = buf.get(i * 8..i * 8 + 8)?;
        usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()
    };
    let n = word(0)?;
    let ends = (1..=n).map(word).collect::<Option<Vec<usize>>>()?;
    let json = buf.get(8 * (1 + n)..)?.to_vec();
    RawRecords::from_parts(json, ends)
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            let linked = open.linked;
            drop(open);
            if linked {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use trailhouse_ocsf::{OcsfClass, Source};

    use super::*;

    fn key(account: &str) -> PartitionKey {
        PartitionKey::new(
            Source::CloudTrailMgmt,
            OcsfClass::ApiActivity,
            "us-east-1",
            account,
            20240309,
        )
        .unwrap()
    }

    fn batch(schema: &Arc<Schema>, from: i64, rows: i64) -> RecordBatch {
        let n: Vec<i64> = (from..from + rows).collect();
        let s: Vec<Option<String>> = n
            .iter()
            .map(|i| (i % 3 != 0).then(|| format!("row {i} ").repeat(*i as usize % 7)))
            .collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(n)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .unwrap()
    }

    fn pending(batches: Vec<RecordBatch>) -> Pending {
        Pending {
            bytes: batches.iter().map(|b| b.get_array_memory_size()).sum(),
            rows: batches.iter().map(|b| b.num_rows()).sum(),
            batches,
            raw: RawRecords::default(),
            since_ms: 0,
        }
    }

    #[test]
    fn partitions_come_back_whole_in_spill_order_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let mut spill = Spill::new(dir.path());
        assert_eq!(spill.take(&key("1")).unwrap().map(|p| p.rows), None);
        // Three partitions' puts interleaved, one of them of several batches.
        let mut expected: BTreeMap<PartitionKey, Vec<RecordBatch>> = BTreeMap::new();
        let mut at = 0;
        for round in 0..4 {
            for account in ["1", "22", "333"] {
                let rows = 1 + (round * 7 + account.len() as i64 * 3) % 11;
                let batches: Vec<RecordBatch> = (0..account.len())
                    .map(|i| batch(&schema, at + i as i64 * 100, rows))
                    .collect();
                at += 1000;
                expected
                    .entry(key(account))
                    .or_default()
                    .extend(batches.iter().cloned());
                spill.put(&key(account), pending(batches)).unwrap();
            }
        }
        assert!(spill.bytes_written() > 0);
        assert!(spill.holds(&key("22")));
        assert_eq!(spill.keys(), expected.keys().cloned().collect::<Vec<_>>());
        let bytes_before = spill.bytes(&key("22"));
        let back = spill.take(&key("22")).unwrap().unwrap();
        assert!(!spill.holds(&key("22")));
        assert_eq!(
            back.batches,
            [concat_batches(&schema, &expected[&key("22")]).unwrap()]
        );
        assert_eq!(back.rows, back.batches[0].num_rows());
        assert_eq!(back.bytes, back.batches[0].get_array_memory_size());
        // The rows are counted at about their read-back size.
        assert!(bytes_before <= back.bytes * 2 && back.bytes <= bytes_before * 2);
        // Puts after a take go on where the file ends.
        let more = batch(&schema, 99_000, 5);
        spill.put(&key("1"), pending(vec![more.clone()])).unwrap();
        expected.get_mut(&key("1")).unwrap().push(more);
        for account in ["1", "333"] {
            let back = spill.take(&key(account)).unwrap().unwrap();
            let want = concat_batches(&schema, &expected[&key(account)]).unwrap();
            assert_eq!(back.batches, [want], "partition {account}");
        }
        assert!(spill.keys().is_empty());
        // Records kept as JSON: alone (the first put of `4444`, before any batch of
        // it), and beside batches; they come back in order, after the batches.
        let raw = |records: &[&str]| {
            let mut r = RawRecords::default();
            for rec in records {
                r.push(rec.as_bytes());
            }
            r
        };
        let json_only = |records: &[&str]| {
            let raw = raw(records);
            Pending {
                bytes: raw.bytes(),
                rows: raw.len(),
                raw,
                ..Pending::default()
            }
        };
        spill
            .put(&key("4444"), json_only(&[r#"{"a":1}"#, "{\n}"]))
            .unwrap();
        let mut both = pending(vec![batch(&schema, 5, 3)]);
        both.raw = raw(&["{}", r#"{"b":"é"}"#]);
        both.rows += 2;
        spill.put(&key("4444"), both).unwrap();
        spill.put(&key("4444"), json_only(&[])).unwrap();
        let back = spill.take(&key("4444")).unwrap().unwrap();
        assert_eq!(back.batches, [batch(&schema, 5, 3)]);
        assert_eq!(back.raw, raw(&[r#"{"a":1}"#, "{\n}", "{}", r#"{"b":"é"}"#]));
        assert_eq!(back.rows, 7);
        assert_eq!(
            back.bytes,
            back.batches[0].get_array_memory_size() + back.raw.bytes()
        );
        // A batch of another schema is an error, not a corrupt spill.
        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)]));
        let bad = RecordBatch::try_new(other, vec![Arc::new(StringArray::from(vec![Some("x")]))])
            .unwrap();
        assert!(spill.put(&key("1"), pending(vec![bad])).is_err());
        // The file is unlinked while open (Unix) and gone once the spill is dropped.
        #[cfg(unix)]
        assert!(!spill.path().exists());
        drop(spill);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
