//! Replay of local CloudTrail files into a local lake, on all cores, in bounded
//! memory, with the same output for the same input.
//!
//! Objects, in key order, are cut into groups of consecutive objects (about 1 MiB
//! of input each), dealt round-robin to worker threads that map them in chunks, a
//! chunk running on from one object to the next within a group; one aggregator
//! applies the chunks strictly in group order (so flush points, and hence files,
//! depend neither on thread timing nor on the number of threads) and hands full
//! partitions, and those the listing has passed (a partition is one account, region
//! and day: trails are read folder by folder, day by day), to encoder threads, whose
//! files writer threads put on disk. Every channel is bounded; buffered plus in-flight
//! Arrow data is kept under the flush policy's `max_buffer_bytes`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use serde::Serialize;
use trailhouse_cloudtrail::key::{KeyKind, classify_key};
use trailhouse_cloudtrail::time::day_start_ms;
use trailhouse_lake::{
    EncodedPartition, FlushPolicy, Layout, PartitionBuffers, PartitionKey, Pending, WriteOptions,
    encode_partition,
};

use crate::process::{ObjectEvent, ObjectOutcome, ObjectProcessor, Part, SkipReason};
use crate::quarantine::{QUARANTINE_DIR, Quarantine, write_atomic};
use crate::spill::Spill;

/// Why a replay job failed as a whole (as opposed to bad input, which is quarantined).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input path does not exist or cannot be listed.
    #[error("cannot read input {path}: {source}")]
    Input {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The lake (or its quarantine) cannot be written.
    #[error("cannot write to the lake at {path}: {source}")]
    Lake {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding Parquet failed (a bug, reported rather than hidden).
    #[error("encoding partition {partition}: {message}")]
    Encode {
        /// The partition.
        partition: String,
        /// The error.
        message: String,
    },
    /// A worker thread stopped unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Bucket layout of the lake.
    pub layout: Layout,
    /// Worker threads for mapping, and as many for encoding (≥ 1). As many write the
    /// files, and at least four (they mostly wait for the disk).
    pub threads: usize,
    /// When partitions are written.
    pub flush: FlushPolicy,
    /// Parquet settings.
    pub write: WriteOptions,
    /// Rows per mapped chunk.
    pub chunk_rows: usize,
    /// Input bytes per group of consecutive objects that one thread maps, carrying
    /// rows from object to object ([`GROUP_BYTES`] by default).
    pub group_bytes: u64,
}

/// A partition pushed out of memory with less than `max_buffer_bytes / SPILL_FRACTION`
/// of rows (1.5 MiB of Arrow data by default; never more than `flush_bytes`) is spilled
/// instead of written, and comes back once it holds that much, or at the end. Rows held
/// in memory are unchanged: the spill only decides where small evicted partitions wait.
pub const SPILL_FRACTION: usize = 32;

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            layout: Layout::Ext,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            flush: FlushPolicy::default(),
            write: WriteOptions::default(),
            chunk_rows: 4096,
            group_bytes: GROUP_BYTES,
        }
    }
}

/// What a replay did. `records_read = rows written + duplicates_dropped +
/// records_quarantined`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Log objects read (completely or until they failed).
    pub objects_read: u64,
    /// Objects skipped as digest files.
    pub objects_skipped_digest: u64,
    /// CloudTrail Insights files: not logs; their records become rows of the
    /// Detection Finding table (`findings_written`), or the file is quarantined.
    pub objects_skipped_insight: u64,
    /// Detection Finding rows written from CloudTrail Insights files.
    pub findings_written: u64,
    /// Objects that could not be read to their end, copied to quarantine.
    pub objects_quarantined: u64,
    /// Records read from objects.
    pub records_read: u64,
    /// Records that could not be mapped, written to quarantine.
    pub records_quarantined: u64,
    /// Rows left out as exact duplicates (same eventID and eventTime in a partition).
    pub duplicates_dropped: u64,
    /// Rows written, by OCSF class name.
    pub rows_written: BTreeMap<String, u64>,
    /// Rows written, by source name.
    pub rows_by_source: BTreeMap<String, u64>,
    /// Parquet files written.
    pub files_written: u64,
    /// Bytes of the input objects as stored (compressed).
    pub bytes_in: u64,
    /// Bytes of JSON read after decompression.
    pub bytes_uncompressed: u64,
    /// Bytes of Parquet written.
    pub bytes_written: u64,
    /// Bytes set aside in the spill file (zstd frames of Arrow IPC; see
    /// [`crate::spill`]): rows of partitions that memory could not hold until they were
    /// worth a file.
    pub spill_bytes_written: u64,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// Records read per second.
    pub records_per_sec: f64,
    /// Uncompressed megabytes (10^6) read per second.
    pub mb_per_sec: f64,
    /// Peak resident memory of the process in bytes (Linux; `None` elsewhere).
    pub peak_rss_bytes: Option<u64>,
    /// Times freed memory was given back to the system because the process held
    /// more than its bound allows for ([`crate::malloc::trim_above`]).
    pub memory_trims: u64,
}

/// The process's peak resident set size (`VmHWM`), where the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    crate::malloc::status_bytes("VmHWM:")
}

impl Summary {
    /// Total rows written.
    pub fn rows_total(&self) -> u64 {
        self.rows_written.values().sum()
    }

    /// A short human summary.
    pub fn human(&self) -> String {
        let classes: Vec<String> = self
            .rows_written
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "objects   {} read, {} quarantined, {} digest + {} insight files skipped\n\
             records   {} read, {} quarantined, {} duplicates dropped\n\
             rows      {} written ({})\n\
             files     {} Parquet files, {} bytes (input {} bytes, {} uncompressed)\n\
             elapsed   {:.2} s, {:.0} records/s, {:.1} MB/s uncompressed, peak RSS {} MiB{}",
            self.objects_read,
            self.objects_quarantined,
            self.objects_skipped_digest,
            self.objects_skipped_insight,
            self.records_read,
            self.records_quarantined,
            self.duplicates_dropped,
            self.rows_total(),
            if classes.is_empty() {
                "none".to_string()
            } else {
                classes.join(", ")
            },
            self.files_written,
            self.bytes_written,
            self.bytes_in,
            self.bytes_uncompressed,
            self.elapsed_secs,
            self.records_per_sec,
            self.mb_per_sec,
            self.peak_rss_bytes
                .map_or("?".to_string(), |b| (b >> 20).to_string()),
            match self.memory_trims {
                0 => String::new(),
                n => format!(" (freed memory given back {n} times)"),
            },
        )
    }
}

/// A local input object: its path and the key it is known by (the path with `/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalObject {
    /// The key: the path as reached from the input, with `/` separators.
    pub key: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size when listed, in bytes (0 if unknown).
    pub bytes: u64,
}

/// Lists CloudTrail files (`*.json`, `*.json.gz`, `*.gz`) under the inputs,
/// recursively, sorted by key; `exclude` (the lake) is never entered. Symbolic links
/// to directories are not followed.
pub fn discover(
    inputs: &[PathBuf],
    exclude: Option<&Path>,
) -> Result<Vec<LocalObject>, ReplayError> {
    let exclude = exclude.and_then(|p| p.canonicalize().ok());
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| ReplayError::Input {
            path: input.clone(),
            source,
        })?;
        if meta.is_file() {
            out.push(LocalObject {
                key: input.to_string_lossy().replace('\\', "/"),
                path: input.clone(),
                bytes: meta.len(),
            });
            continue;
        }
        let mut stack = vec![input.clone()];
        while let Some(dir) = stack.pop() {
            if exclude.is_some() && dir.canonicalize().ok() == exclude {
                continue;
            }
            let entries = std::fs::read_dir(&dir).map_err(|source| ReplayError::Input {
                path: dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| ReplayError::Input {
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                let ft = entry.file_type().map_err(|source| ReplayError::Input {
                    path: path.clone(),
                    source,
                })?;
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
                    let name = entry.file_name().to_string_lossy().to_string();
                    if name.ends_with(".json")
                        || name.ends_with(".json.gz")
                        || name.ends_with(".gz")
                    {
                        // The path as reached from the input, so the AWSLogs/… layout
                        // is seen even when the input is a folder inside it.
                        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                        out.push(LocalObject {
                            key: path.to_string_lossy().replace('\\', "/"),
                            path,
                            bytes,
                        });
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

enum Msg {
    Event(ObjectEvent),
    Done {
        outcome: ObjectOutcome,
        bytes_in: u64,
    },
    /// Rows of objects already reported done could not be built (a bug): the
    /// replay fails rather than count them written.
    Lost(String),
    /// The group's last rows have been sent.
    GroupEnd,
}

/// Messages carrying rows or a bad record's bytes that a worker may have queued.
const QUEUED_ROWS: usize = 1;

/// Messages of any kind that a worker may have queued: outcomes of objects cost
/// next to nothing, so a worker can run through the many small objects of its group
/// while the aggregator is still on an earlier group.
const QUEUED_MESSAGES: usize = 1024;

impl Msg {
    /// Whether the message holds rows or a record's bytes (and takes a slot).
    fn is_heavy(&self) -> bool {
        matches!(self, Msg::Event(_))
    }
}

/// A worker's end of its ordered link to the aggregator.
struct Outbox {
    tx: Sender<Msg>,
    slots: Sender<()>,
}

/// The aggregator's end of a worker's link.
struct Inbox {
    rx: Receiver<Msg>,
    slots: Receiver<()>,
}

/// A link of at most [`QUEUED_MESSAGES`] queued messages, [`QUEUED_ROWS`] of them heavy.
fn link() -> (Outbox, Inbox) {
    let (tx, rx) = bounded(QUEUED_MESSAGES);
    let (slot_tx, slot_rx) = bounded(QUEUED_ROWS);
    (Outbox { tx, slots: slot_tx }, Inbox { rx, slots: slot_rx })
}

impl Outbox {
    /// Sends in order, waiting for a slot first if the message is heavy; false once
    /// the aggregator is gone.
    fn send(&self, msg: Msg) -> bool {
        (!msg.is_heavy() || self.slots.send(()).is_ok()) && self.tx.send(msg).is_ok()
    }
}

impl Inbox {
    /// The next message, freeing its slot; `None` once the worker is gone.
    fn recv(&self) -> Option<Msg> {
        let msg = self.rx.recv().ok()?;
        if msg.is_heavy() {
            let _ = self.slots.try_recv();
        }
        Some(msg)
    }
}

/// Input bytes (as listed: compressed for `.gz`) per group of consecutive objects at
/// least, unless the objects run out: about two chunks of record JSON at CloudTrail's
/// gzip ratio, and small enough to spread a few MB of input over the threads.
pub const GROUP_BYTES: u64 = 1 << 20;

/// Consecutive objects, in key order, in groups of at least `group_bytes` (the last
/// one may be smaller). A worker maps a whole group, carrying rows from object
/// to object, so the files of a quiet account (a few records each) make a few large
/// batches; and since groups depend on the listing alone, so does every batch, and
/// the lake is the same whatever the number of threads.
fn groups(objects: &[LocalObject], group_bytes: u64) -> Vec<&[LocalObject]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, obj) in objects.iter().enumerate() {
        bytes += obj.bytes;
        if bytes >= group_bytes {
            out.push(&objects[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < objects.len() {
        out.push(&objects[start..]);
    }
    out
}

struct Encoded {
    key: PartitionKey,
    rows: u64,
    files: u64,
    bytes: u64,
    duplicates: u64,
    arrow_bytes: usize,
}

/// Wraps an I/O error on `path` in the lake (or beside it) as a job failure.
fn lake_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReplayError + use<> {
    let path = path.to_path_buf();
    move |source| ReplayError::Lake { path, source }
}

/// Replays local files into the lake at `lake`.
///
/// # Errors
/// When the job itself fails: an input that cannot be listed, a lake that cannot be
/// written. Bad input never fails the job: it is quarantined and counted.
pub fn replay_local(
    inputs: &[PathBuf],
    lake: &Path,
    opts: &ReplayOptions,
) -> Result<Summary, ReplayError> {
    let started = Instant::now();
    std::fs::create_dir_all(lake).map_err(lake_err(lake))?;
    // Fail early, with the lake's path, if it is not writable.
    write_atomic(&lake.join(".trailhouse-write-check"), b"ok").map_err(lake_err(lake))?;
    let _ = std::fs::remove_file(lake.join(".trailhouse-write-check"));
    let objects = discover(inputs, Some(lake))?;
    let groups = groups(&objects, opts.group_bytes);
    let threads = opts.threads.max(1).min(groups.len().max(1));

    let mut summary = Summary::default();
    let trims = crate::malloc::trims();
    std::thread::scope(|s| -> Result<(), ReplayError> {
        let mut receivers = Vec::with_capacity(threads);
        for w in 0..threads {
            let (tx, rx) = link();
            receivers.push(rx);
            let groups = &groups;
            let chunk_rows = opts.chunk_rows;
            s.spawn(move || worker(groups, w, threads, chunk_rows, tx));
        }
        let (enc_tx, enc_rx) = bounded::<(PartitionKey, Pending)>(0);
        let (file_tx, file_rx) = bounded::<ToWrite>(threads);
        let (res_tx, res_rx) = unbounded::<Result<Encoded, ReplayError>>();
        for _ in 0..threads {
            let (enc_rx, file_tx) = (enc_rx.clone(), file_tx.clone());
            s.spawn(move || encoder(opts, enc_rx, file_tx));
        }
        for _ in 0..threads.max(MIN_WRITERS) {
            let (file_rx, res_tx) = (file_rx.clone(), res_tx.clone());
            s.spawn(move || writer(lake, opts, file_rx, res_tx));
        }
        drop((file_tx, file_rx, res_tx));
        aggregate(&groups, lake, opts, receivers, enc_tx, res_rx, &mut summary)
    })?;

    summary.elapsed_secs = started.elapsed().as_secs_f64();
    if summary.elapsed_secs > 0.0 {
        summary.records_per_sec = summary.records_read as f64 / summary.elapsed_secs;
        summary.mb_per_sec = summary.bytes_uncompressed as f64 / 1e6 / summary.elapsed_secs;
    }
    summary.peak_rss_bytes = peak_rss_bytes();
    summary.memory_trims = crate::malloc::trims() - trims;
    Ok(summary)
}

/// A CloudTrail Insights file into the findings table, or into quarantine.
fn ingest_insights(
    obj: &LocalObject,
    lake: &Path,
    quarantine: &mut Quarantine,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    let q_err = |e: std::io::Error| ReplayError::Lake {
        path: lake.join(QUARANTINE_DIR),
        source: e,
    };
    let result = std::fs::read(&obj.path)
        .map_err(|e| e.to_string())
        .and_then(|b| trailhouse_insights::findings::ingest_file(&b).map_err(|e| e.to_string()));
    match result {
        Ok(files) => {
            for f in files {
                let path = lake.join(&f.path);
                write_atomic(&path, &f.bytes)
                    .map_err(|source| ReplayError::Lake { path, source })?;
                summary.findings_written += 1;
                summary.files_written += 1;
            }
        }
        Err(reason) => {
            summary.objects_quarantined += 1;
            tracing::warn!(object = %obj.key, %reason, "Insights file quarantined");
            quarantine
                .object_file(&obj.key, &reason, 0, &obj.path)
                .map_err(q_err)?;
        }
    }
    Ok(())
}

/// Maps every `stride`-th group from the `w`-th. Within a group, rows wait in the
/// processor across objects ([`ObjectProcessor::carry_rows`]); the last of them follow
/// the group's last `Done`, then `GroupEnd`.
fn worker(groups: &[&[LocalObject]], w: usize, stride: usize, chunk_rows: usize, tx: Outbox) {
    let mut processor = ObjectProcessor::with_chunk_rows(chunk_rows);
    processor.carry_rows = true;
    // The aggregator buffers partitions over many chunks (and spills them): rows of
    // a mix of many partitions wait there as JSON rather than as tiny batches.
    processor.sparse = true;
    for group in groups.iter().skip(w).step_by(stride) {
        if !map_group(&mut processor, group, &tx) {
            return;
        }
    }
}

/// One group through `processor`, its events to `tx`; false once the aggregator is
/// gone or rows were lost.
fn map_group(processor: &mut ObjectProcessor, objects: &[LocalObject], tx: &Outbox) -> bool {
    let mut go = true;
    for (i, obj) in objects.iter().enumerate() {
        // Rows name the objects they came from by their index in the group (the
        // aggregator's `Place`s).
        processor.tag = i as u64;
        let (outcome, bytes_in) = match File::open(&obj.path) {
            Ok(file) => {
                processor.expect_bytes(obj.bytes);
                let outcome = processor.process(&obj.key, file, &mut |ev| {
                    if go {
                        go = pass(tx, ev);
                    }
                });
                if !go {
                    return false;
                }
                (outcome, obj.bytes)
            }
            Err(e) => (
                ObjectOutcome::Failed {
                    reason: format!("cannot open {}: {e}", obj.path.display()),
                    records: 0,
                    bytes: 0,
                },
                0,
            ),
        };
        if !tx.send(Msg::Done { outcome, bytes_in }) {
            return false;
        }
    }
    let finished = processor.finish(&mut |ev| {
        if go {
            go = pass(tx, ev);
        }
    });
    if let Err(reason) = finished {
        if go {
            tx.send(Msg::Lost(reason));
        }
        return false;
    }
    go && tx.send(Msg::GroupEnd)
}

/// Passes a processor's event on: rows and bad records as they are, rows of earlier
/// objects lost with a chunk (a bug) as [`Msg::Lost`]. Whether to go on. (The
/// aggregator needs no word of carried rows: a group's end follows them.)
fn pass(tx: &Outbox, ev: ObjectEvent) -> bool {
    match ev {
        ObjectEvent::Carried(_) | ObjectEvent::Released { error: None, .. } => true,
        ObjectEvent::Released {
            error: Some(reason),
            ..
        } => {
            tx.send(Msg::Lost(reason));
            false
        }
        ev => tx.send(Msg::Event(ev)),
    }
}

/// Writer threads at least, whatever `threads` says: they mostly wait for the disk to
/// sync a file, and syncs under way together are committed together. On the 300 MB
/// mix of the README's Memory section (12,998 files, one thread on one core, one run
/// each): one writer 59.3 s, four 44.2 s, eight 47.1 s; on the benchmark corpus (543
/// files) no difference.
const MIN_WRITERS: usize = 4;

/// A partition's Parquet files, encoded, on their way to the disk; or why encoding it
/// failed.
type ToWrite = Result<(PartitionKey, EncodedPartition, usize), ReplayError>;

/// Encodes partitions, and hands their files to the writers. (An encoder that also
/// waited for the disk to sync each file held up the aggregator's next partition, and
/// through it the workers, at every file: cores idle while there was work.)
fn encoder(opts: &ReplayOptions, jobs: Receiver<(PartitionKey, Pending)>, files: Sender<ToWrite>) {
    for (key, pending) in jobs {
        let arrow_bytes = pending.bytes;
        // Records kept as JSON are mapped here, on the encoder's thread.
        let encoded = pending
            .into_batches(&key)
            .and_then(|batches| encode_partition(&key, opts.layout, &batches, &opts.write));
        let result = match encoded {
            Ok(enc) => Ok((key, enc, arrow_bytes)),
            Err(e) => Err(ReplayError::Encode {
                partition: key.to_string(),
                message: e.to_string(),
            }),
        };
        if files.send(result).is_err() {
            return;
        }
    }
}

/// Writes encoded partitions into the lake (each file synced, then renamed into
/// place: [`write_atomic`]) and reports them. A partition's Arrow data stays counted
/// in flight until then: what it turned into waits here, smaller.
fn writer(
    lake: &Path,
    opts: &ReplayOptions,
    files: Receiver<ToWrite>,
    results: Sender<Result<Encoded, ReplayError>>,
) {
    let trim_budget = crate::malloc::trim_budget(opts.flush.max_buffer_bytes);
    for job in files {
        let result = job.and_then(|(key, enc, arrow_bytes)| {
            let mut bytes = 0;
            for f in &enc.files {
                let path = lake.join(&f.path);
                write_atomic(&path, &f.bytes)
                    .map_err(|source| ReplayError::Lake { path, source })?;
                bytes += f.bytes.len() as u64;
            }
            Ok(Encoded {
                rows: enc.files.iter().map(|f| f.rows).sum(),
                files: enc.files.len() as u64,
                bytes,
                duplicates: enc.duplicates,
                arrow_bytes,
                key,
            })
        });
        // The partition's Parquet files are written and freed, its batches too (on the
        // encoder's thread): the moment to give memory back, if the process holds
        // more than its bound allows for.
        crate::malloc::trim_above(trim_budget);
        if results.send(result).is_err() {
            return;
        }
    }
}

/// Where a log object lies in a CloudTrail listing: the folder of one account and
/// region (`…/AWSLogs/[o-org/]{account}/CloudTrail/{region}`, or a folder of files
/// named `{account}_CloudTrail_{region}_{YYYYMMDD}T…`), and its day there. Objects
/// are replayed in key order, which goes through such folders one at a time, day
/// after day.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    /// The folder (without the day's `/YYYY/MM/DD`).
    folder: String,
    account: String,
    region: String,
    /// The day, in days since 1970-01-01.
    day: i64,
}

/// `YYYYMMDD` in days since 1970-01-01 (`None` if not a date).
fn epoch_day(day: u32) -> Option<i64> {
    day_start_ms(day).map(|ms| ms.div_euclid(86_400_000))
}

impl Place {
    fn of(key: &str) -> Option<Place> {
        let KeyKind::Log(parts) = classify_key(key) else {
            return None;
        };
        let ymd = parts.day?;
        let day = epoch_day(ymd)?;
        let dir = key.rsplit_once('/').map_or("", |(dir, _)| dir);
        let date = format!(
            "/{:04}/{:02}/{:02}",
            ymd / 10_000,
            ymd / 100 % 100,
            ymd % 100
        );
        Some(Place {
            folder: dir.strip_suffix(date.as_str()).unwrap_or(dir).to_string(),
            account: parts.account,
            region: parts.region,
            day,
        })
    }

    /// Whether rows of partition `key` are this place's own: its account and region,
    /// of its day or of the day before (a file delivered just after midnight holds the
    /// last minutes of the day before).
    fn holds(&self, key: &PartitionKey) -> bool {
        key.account() == self.account
            && key.region() == self.region
            && epoch_day(key.day()).is_some_and(|d| d == self.day || d + 1 == self.day)
    }

    /// Whether a listing now at `here` is past every object of this place that can
    /// hold rows of partition `key`: it has left the folder, or is two days past the
    /// partition's day.
    fn passed_for(&self, key: &PartitionKey, here: &Place) -> bool {
        (&self.folder, &self.account, &self.region) != (&here.folder, &here.account, &here.region)
            || epoch_day(key.day()).is_some_and(|d| here.day - d >= 2)
    }
}

/// A partition whose rows so far came from objects of its own [`Place`]: when the
/// listing has passed that place, no more of its rows are to come.
struct Home {
    place: Place,
    /// The last group with rows of it.
    group: usize,
}

/// `first`'s rows, then `then`'s.
fn join(first: Option<Pending>, then: Option<Pending>) -> Option<Pending> {
    match (first, then) {
        (Some(mut a), Some(b)) => {
            a.batches.extend(b.batches);
            a.raw.append(b.raw);
            a.bytes += b.bytes;
            a.rows += b.rows;
            a.since_ms = a.since_ms.min(b.since_ms);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

fn aggregate(
    groups: &[&[LocalObject]],
    lake: &Path,
    opts: &ReplayOptions,
    receivers: Vec<Inbox>,
    enc_tx: Sender<(PartitionKey, Pending)>,
    res_rx: Receiver<Result<Encoded, ReplayError>>,
    summary: &mut Summary,
) -> Result<(), ReplayError> {
    let mut buffers = PartitionBuffers::new(opts.flush.clone());
    let mut quarantine = Quarantine::new(lake);
    let q_err = |source| ReplayError::Lake {
        path: lake.join(QUARANTINE_DIR),
        source,
    };
    let mut in_flight = 0usize;
    let account = |r: Result<Encoded, ReplayError>,
                   in_flight: &mut usize,
                   summary: &mut Summary|
     -> Result<(), ReplayError> {
        let e = r?;
        *in_flight -= e.arrow_bytes;
        *summary
            .rows_written
            .entry(e.key.class().name().to_string())
            .or_default() += e.rows;
        *summary
            .rows_by_source
            .entry(e.key.source().name().to_string())
            .or_default() += e.rows;
        summary.files_written += e.files;
        summary.bytes_written += e.bytes;
        summary.duplicates_dropped += e.duplicates;
        Ok(())
    };
    let send = |job: (PartitionKey, Pending), in_flight: &mut usize| -> Result<(), ReplayError> {
        *in_flight += job.1.bytes;
        enc_tx
            .send(job)
            .map_err(|_| ReplayError::Internal("encoder threads stopped".into()))
    };
    // Waits for encoders until `room` more bytes fit beside what is in flight (or
    // nothing is in flight).
    let make_room = |room: usize, in_flight: &mut usize, summary: &mut Summary| {
        while *in_flight > 0 && *in_flight + room > opts.flush.max_buffer_bytes {
            let r = res_rx
                .recv()
                .map_err(|_| ReplayError::Internal("encoders stopped".into()))?;
            account(r, in_flight, summary)?;
        }
        Ok::<(), ReplayError>(())
    };
    // Partitions pushed out of memory while small go to the spill, and come back once
    // they are worth a file. (A partition flushed because it is full is never small.)
    let mut spill = Spill::new(lake);
    let small = (opts.flush.max_buffer_bytes / SPILL_FRACTION).min(opts.flush.flush_bytes);
    let route = |(key, pending): (PartitionKey, Pending),
                 buffered: usize,
                 spill: &mut Spill,
                 in_flight: &mut usize,
                 summary: &mut Summary|
     -> Result<(), ReplayError> {
        if pending.bytes >= small {
            return send((key, pending), in_flight);
        }
        spill.put(&key, pending).map_err(lake_err(spill.path()))?;
        let back = spill.bytes(&key);
        if back >= small {
            // Less than 2 × `small`: it fits beside the buffers, which an eviction
            // left at three quarters of the bound at most.
            make_room(buffered + back, in_flight, summary)?;
            if let Some(p) = spill.take(&key).map_err(lake_err(spill.path()))? {
                send((key, p), in_flight)?;
            }
        }
        Ok(())
    };
    // A partition the listing has passed is complete: it is written now, with what
    // the spill holds of it, rather than wait in memory until it is pushed out, go to
    // the spill while small, and come back at the end (the usual case in a replay of
    // trails: each partition is one account, region and day, whose objects come one
    // after the other in key order).
    let mut homes: BTreeMap<PartitionKey, Home> = BTreeMap::new();
    let complete = |key: PartitionKey,
                    buffers: &mut PartitionBuffers,
                    spill: &mut Spill,
                    in_flight: &mut usize,
                    summary: &mut Summary|
     -> Result<(), ReplayError> {
        let buffered = buffers.remove(&key);
        let mut spilled = None;
        if spill.holds(&key) {
            let room = buffers.total_bytes()
                + buffered.as_ref().map_or(0, |p| p.bytes)
                + spill.bytes(&key);
            make_room(room, in_flight, summary)?;
            spilled = spill.take(&key).map_err(lake_err(spill.path()))?;
        }
        match join(spilled, buffered) {
            Some(pending) => send((key, pending), in_flight),
            None => Ok(()),
        }
    };
    let take_rows = |parts: Vec<Part>,
                     buffers: &mut PartitionBuffers,
                     spill: &mut Spill,
                     in_flight: &mut usize,
                     summary: &mut Summary|
     -> Result<(), ReplayError> {
        for Part { key, rows, .. } in parts {
            for job in buffers.add(key, rows, 0) {
                let buffered = buffers.total_bytes();
                route(job, buffered, spill, in_flight, summary)?;
            }
        }
        // Keep buffered + encoding data under the memory bound.
        make_room(buffers.total_bytes(), in_flight, summary)
    };
    let lost = |reason: String| ReplayError::Internal(format!("rows could not be kept: {reason}"));
    for (g, group) in groups.iter().enumerate() {
        let places: Vec<Option<Place>> = group.iter().map(|o| Place::of(&o.key)).collect();
        let rx = &receivers[g % receivers.len()];
        // The group's objects report in order: `group[done]` is the one being read.
        let mut done = 0;
        loop {
            let current = group.get(done);
            let msg = rx.recv().ok_or_else(|| {
                ReplayError::Internal(format!(
                    "worker stopped while reading {}",
                    current.map_or("the end of a group", |o| &o.key)
                ))
            })?;
            match (msg, current) {
                (Msg::Event(ObjectEvent::Rows(parts)), _) => {
                    for part in &parts {
                        // Where its rows came from (the objects' tags are their
                        // indexes in the group).
                        let home = part.tags.iter().rev().find_map(|&t| {
                            let place = places.get(t as usize)?.as_ref()?;
                            place.holds(&part.key).then_some(place)
                        });
                        match home {
                            Some(place) => {
                                let home = Home {
                                    place: place.clone(),
                                    group: g,
                                };
                                homes.insert(part.key.clone(), home);
                            }
                            // Rows from elsewhere (a merged file, late events):
                            // written when memory or the end of the replay says so.
                            None => {
                                homes.remove(&part.key);
                            }
                        }
                    }
                    take_rows(parts, &mut buffers, &mut spill, &mut in_flight, summary)?;
                }
                (Msg::Lost(reason), _) => return Err(lost(reason)),
                // `pass` keeps these to the worker.
                (Msg::Event(ObjectEvent::Carried(_) | ObjectEvent::Released { .. }), _) => {}
                (Msg::GroupEnd, None) => {
                    // The group's rows are all in: partitions without rows in it whose
                    // place the listing has now passed are complete.
                    if let Some(here) = places.iter().rev().flatten().next() {
                        let passed: Vec<PartitionKey> = homes
                            .iter()
                            .filter(|(key, h)| h.group < g && h.place.passed_for(key, here))
                            .map(|(key, _)| key.clone())
                            .collect();
                        for key in passed {
                            homes.remove(&key);
                            complete(key, &mut buffers, &mut spill, &mut in_flight, summary)?;
                        }
                    }
                    break;
                }
                (Msg::GroupEnd, Some(obj)) => {
                    return Err(ReplayError::Internal(format!(
                        "a worker ended its group before reading {}",
                        obj.key
                    )));
                }
                (Msg::Event(ObjectEvent::BadRecord { .. }) | Msg::Done { .. }, None) => {
                    return Err(ReplayError::Internal(
                        "a worker reported more objects than its group holds".into(),
                    ));
                }
                (
                    Msg::Event(ObjectEvent::BadRecord {
                        index,
                        reason,
                        bytes,
                    }),
                    Some(obj),
                ) => {
                    summary.records_quarantined += 1;
                    quarantine
                        .record(&obj.key, index, &reason, &bytes)
                        .map_err(q_err)?;
                }
                (Msg::Done { outcome, bytes_in }, Some(obj)) => {
                    done += 1;
                    summary.bytes_in += bytes_in;
                    match outcome {
                        ObjectOutcome::Complete { records, bytes } => {
                            summary.objects_read += 1;
                            summary.records_read += records;
                            summary.bytes_uncompressed += bytes;
                        }
                        ObjectOutcome::Skipped(SkipReason::Digest) => {
                            summary.objects_skipped_digest += 1
                        }
                        ObjectOutcome::Skipped(SkipReason::Insight) => {
                            summary.objects_skipped_insight += 1;
                            ingest_insights(obj, lake, &mut quarantine, summary)?;
                        }
                        ObjectOutcome::Failed {
                            reason,
                            records,
                            bytes,
                        } => {
                            summary.objects_read += 1;
                            summary.objects_quarantined += 1;
                            summary.records_read += records;
                            summary.bytes_uncompressed += bytes;
                            tracing::warn!(object = %obj.key, %reason, records_before_error = records, "object quarantined");
                            quarantine
                                .object_file(&obj.key, &reason, records, &obj.path)
                                .map_err(q_err)?;
                        }
                    }
                }
            }
            while let Ok(r) = res_rx.try_recv() {
                account(r, &mut in_flight, summary)?;
            }
        }
    }
    for (key, pending) in buffers.drain() {
        // Joins its spilled rows when small, so that what comes back stays under
        // 2 × `small`; otherwise a file of its own.
        if pending.bytes < small && spill.holds(&key) {
            spill.put(&key, pending).map_err(lake_err(spill.path()))?;
        } else {
            send((key, pending), &mut in_flight)?;
        }
    }
    // Spilled partitions last, one at a time within the memory bound.
    for key in spill.keys() {
        make_room(spill.bytes(&key), &mut in_flight, summary)?;
        if let Some(p) = spill.take(&key).map_err(lake_err(spill.path()))? {
            send((key, p), &mut in_flight)?;
        }
    }
    summary.spill_bytes_written = spill.bytes_written();
    drop(enc_tx);
    for r in res_rx {
        account(r, &mut in_flight, summary)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_the_folder_of_an_account_and_region_and_passes_with_the_listing() {
        use trailhouse_ocsf::{OcsfClass, Source};
        let key = |account: &str, region: &str, day: u32| {
            let (source, class) = (Source::CloudTrailMgmt, OcsfClass::ApiActivity);
            PartitionKey::new(source, class, region, account, day).unwrap()
        };
        let at = |k: &str| Place::of(k).unwrap();
        let p = at(
            "/in/trail/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/01/\
                    111122223333_CloudTrail_eu-west-1_20240301T0005Z_abc.json.gz",
        );
        assert_eq!(
            p,
            Place {
                folder: "/in/trail/AWSLogs/111122223333/CloudTrail/eu-west-1".into(),
                account: "111122223333".into(),
                region: "eu-west-1".into(),
                day: epoch_day(20240301).unwrap(),
            }
        );
        // Its own rows: its account and region, its day or the day before (across a
        // month's end), not the day after nor another account or region.
        assert!(p.holds(&key("111122223333", "eu-west-1", 20240301)));
        assert!(p.holds(&key("111122223333", "eu-west-1", 20240229)));
        assert!(!p.holds(&key("111122223333", "eu-west-1", 20240302)));
        assert!(!p.holds(&key("111122223333", "eu-west-1", 20240228)));
        assert!(!p.holds(&key("444455556666", "eu-west-1", 20240301)));
        assert!(!p.holds(&key("111122223333", "us-east-1", 20240301)));
        // Passed when the listing leaves the folder, or is two days past the day.
        let k = key("111122223333", "eu-west-1", 20240301);
        let same = |day: &str| {
            at(&format!(
                "/in/trail/AWSLogs/111122223333/CloudTrail/eu-west-1/{day}/x.json.gz"
            ))
        };
        assert!(!p.passed_for(&k, &same("2024/03/01")));
        assert!(!p.passed_for(&k, &same("2024/03/02")));
        assert!(p.passed_for(&k, &same("2024/03/03")));
        assert!(p.passed_for(
            &k,
            &at("/in/trail/AWSLogs/111122223333/CloudTrail/eu-west-2/2024/03/01/x.gz")
        ));
        assert!(p.passed_for(
            &k,
            &at("/in/trail/AWSLogs/222222222222/CloudTrail/eu-west-1/2024/03/01/x.gz")
        ));
        // The same account and region under another prefix is another folder.
        assert!(p.passed_for(
            &k,
            &at("/in/other/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/01/x.gz")
        ));
        // An organization trail's folder, and log files out of their tree (named as
        // CloudTrail names them): the folder, account and region still tell them apart.
        let org = at("t/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2024/03/01/f.json.gz");
        assert_eq!(
            org.folder,
            "t/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1"
        );
        assert!(org.holds(&k));
        let flat = |name: &str| at(&format!("dump/{name}"));
        let f = flat("111122223333_CloudTrail_eu-west-1_20240301T2355Z_a.json.gz");
        assert_eq!(
            (f.folder.as_str(), f.day),
            ("dump", epoch_day(20240301).unwrap())
        );
        assert!(f.holds(&k));
        assert!(!f.passed_for(
            &k,
            &flat("111122223333_CloudTrail_eu-west-1_20240302T0005Z_b.json.gz")
        ));
        assert!(f.passed_for(
            &k,
            &flat("111122223333_CloudTrail_us-east-1_20240301T0005Z_c.json.gz")
        ));
        // Keys without a day or outside the layout have no place: their partitions
        // wait for memory or the end of the replay, as before.
        assert_eq!(Place::of("dump/export.json.gz"), None);
        assert_eq!(
            Place::of("x/AWSLogs/111122223333/CloudTrail/eu-west-1/f.json.gz"),
            None
        );
        assert_eq!(
            Place::of("x/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2024/03/01/d.json.gz"),
            None
        );
    }

    #[test]
    fn groups_are_consecutive_and_hold_at_least_group_bytes() {
        let objects: Vec<LocalObject> = [600_000, 300_000, 200_000, 5, 2 << 20, 0, 7]
            .iter()
            .enumerate()
            .map(|(i, &bytes)| LocalObject {
                key: format!("k{i}"),
                path: PathBuf::from(format!("k{i}")),
                bytes,
            })
            .collect();
        let keys = |g: &[LocalObject]| g.iter().map(|o| o.key.clone()).collect::<Vec<_>>();
        let got: Vec<Vec<String>> = groups(&objects, GROUP_BYTES)
            .into_iter()
            .map(keys)
            .collect();
        // 600 + 300 + 200 KB reach 1 MiB; a large object ends its group at once; the
        // rest is a last, smaller group. Every object once, in order.
        assert_eq!(
            got,
            [vec!["k0", "k1", "k2"], vec!["k3", "k4"], vec!["k5", "k6"]]
        );
        assert!(groups(&[], GROUP_BYTES).is_empty());
        // One object per group when any size will do.
        assert_eq!(groups(&objects, 0).len(), objects.len());
    }
}
