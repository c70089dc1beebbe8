//! One object, start to end: judged by its key, streamed through gunzip and the
//! record reader, mapped into the Arrow builders of each row's partition. Used by
//! replay, convert and the workers alike; synchronous, so callers run it off any
//! async reactor.

use std::collections::HashMap;
use std::io::Read;

use trailhouse_cloudtrail::time::utc_day;
use trailhouse_cloudtrail::{KeyKind, LogReader, classify_key};
use trailhouse_lake::{PartitionKey, RawRecords, Rows};
use trailhouse_ocsf::{ObjectContext, OcsfBuilder, RowInfo};

/// Why an object was not read as a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A CloudTrail digest file (`CloudTrail-Digest/`).
    Digest,
    /// A CloudTrail Insights file (`CloudTrail-Insight/`).
    Insight,
}

/// What became of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Read to its end; `records` records were read (mapped or quarantined).
    Complete {
        /// Records read.
        records: u64,
        /// Decompressed bytes read.
        bytes: u64,
    },
    /// Recognised by its key and not read.
    Skipped(SkipReason),
    /// The object could not be read to its end. Records before the failure were
    /// delivered as usual; the object goes to quarantine with `reason`.
    Failed {
        /// What went wrong, with the record index or offset.
        reason: String,
        /// Records read before the failure (their rows were delivered).
        records: u64,
        /// Decompressed bytes read before the failure.
        bytes: u64,
    },
}

/// One partition's rows of a chunk.
#[derive(Debug)]
pub struct Part {
    /// The partition.
    pub key: PartitionKey,
    /// Its rows: a batch, or with [`sparse`](ObjectProcessor::sparse) records kept
    /// as JSON.
    pub rows: Rows,
    /// The [`tag`](ObjectProcessor::tag)s of the objects with rows in `rows`, each
    /// once: with [`carry_rows`](ObjectProcessor::carry_rows) a chunk holds rows of
    /// several objects, and a caller that acknowledges objects needs to know whose.
    pub tags: Vec<u64>,
}

/// What the processor hands to its caller while it reads an object.
#[derive(Debug)]
pub enum ObjectEvent {
    /// Mapped rows, one batch per partition.
    Rows(Vec<Part>),
    /// A record that could not be mapped, with its original bytes.
    BadRecord {
        /// Index of the record in the object's `Records` array.
        index: u64,
        /// Why.
        reason: String,
        /// The record's bytes as they were in the file.
        bytes: Vec<u8>,
    },
    /// With [`carry_rows`](ObjectProcessor::carry_rows): the object of this
    /// [`tag`](ObjectProcessor::tag) ended with rows still in the processor. One
    /// [`Released`](Self::Released) naming it follows, when they are handed out.
    Carried(u64),
    /// The rows carried past the end of these objects (one tag per
    /// [`Carried`](Self::Carried)) were all handed out, in the `Rows` just before;
    /// or, with an `error`, lost: their batch could not be built (a bug).
    Released {
        /// The objects' tags.
        tags: Vec<u64>,
        /// Why their rows were lost, if they were.
        error: Option<String>,
    },
}

/// Record JSON per chunk handed out, by default: a chunk ends at [`ObjectProcessor::chunk_rows`]
/// rows or once its records reach this many bytes, whichever comes first, so a
/// chunk's memory does not depend on how large the records are.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Partitions per chunk with builders at most: a chunk ends when its rows reach this
/// many partitions (or, with [`ObjectProcessor::sparse`], keeps the records of
/// further partitions as JSON). Each partition of a chunk has its own set of column
/// builders (a lane of the [`OcsfBuilder`]), kept for the next chunks; an object's
/// records usually fall in a few partitions (one account and region; a class and
/// source or two; a day or two), so the bound only keeps a hostile mix from making
/// thousands.
pub const MAX_CHUNK_PARTITIONS: usize = 64;

/// Records of one partition that a chunk keeps as JSON, with the tags of their
/// objects.
#[derive(Default)]
struct JsonPart {
    records: RawRecords,
    tags: Vec<u64>,
}

/// Maps objects; keeps its Arrow builders between objects.
pub struct ObjectProcessor {
    builder: OcsfBuilder,
    keys: Vec<PartitionKey>,
    /// For each lane (as `keys`), the tags of the objects with rows in it.
    lane_tags: Vec<Vec<u64>>,
    /// Record JSON bytes in the chunk being built.
    chunk_json: usize,
    /// Rows per batch handed out at most.
    pub chunk_rows: usize,
    /// Record JSON bytes per batch handed out (a chunk ends at the record that
    /// reaches it). With `chunk_rows`, the bound on memory per object in flight.
    pub chunk_bytes: usize,
    /// Largest record accepted.
    pub max_record_bytes: usize,
    /// Whether rows may wait in the builders for the next objects: a chunk then ends
    /// at its bounds or at [`finish`](Self::finish), not with each object, so that
    /// many small objects (a quiet account's trail files hold a few records each) make
    /// a few large batches rather than a few-row batch per partition per object, whose
    /// fixed costs (a set of arrays to build, buffer, sort, write and free) would
    /// outweigh its rows many times over. An object's last rows may then still be in
    /// the processor when its outcome is returned: a caller that acknowledges objects
    /// waits for the [`ObjectEvent::Released`] that follows each
    /// [`ObjectEvent::Carried`], and the parts' [`tags`](Part::tags) say whose rows
    /// are whose. A caller that stops using a processor calls [`finish`](Self::finish).
    pub carry_rows: bool,
    /// The caller's name for the object being processed, reported with its rows
    /// ([`Part::tags`]).
    pub tag: u64,
    /// The tags of the objects that ended with rows in the chunk being built, once
    /// per [`ObjectEvent::Carried`].
    owed: Vec<u64>,
    /// Whether a chunk that has [`MAX_CHUNK_PARTITIONS`] partitions goes on to its
    /// row and byte bounds, keeping the records of further partitions as their JSON
    /// ([`Rows::Json`], mapped again when their partition is written), instead of
    /// ending. For inputs that mix many partitions (a merge or an export of trails
    /// from many accounts), whose chunks would otherwise end every few dozen records
    /// and hand out a batch of a row or two per partition: each such batch costs
    /// about what a large one does (~150 arrays built, then buffered, spilled, read
    /// back and concatenated), while a kept record is one copy of its bytes. For a
    /// caller that buffers partitions over many chunks (`replay`); off by default.
    pub sparse: bool,
    /// With `sparse`, the records kept as JSON in the chunk being built, by partition.
    json: HashMap<PartitionKey, JsonPart>,
    /// Records in `json`.
    json_rows: usize,
    /// The log reader's buffer, kept from one object to the next
    /// ([`LogReader::open_in`]).
    read_buf: Vec<u8>,
    /// Whether the next objects are inflated on a thread of their own
    /// ([`LogReader::open_ahead`]; set by [`ObjectProcessor::expect_bytes`]); the
    /// same rows and outcomes either way.
    pub(crate) inflate_ahead: bool,
}

/// Objects of at least this many bytes (compressed, as listed or fetched) are inflated
/// on a thread of their own, beside the one mapping them
/// ([`ObjectProcessor::expect_bytes`]): a large object is mapped by one thread, which
/// would otherwise also inflate it (and, from S3, wait for its bytes) while other
/// cores may have nothing to do. A thread per object costs tens of microseconds,
/// nothing against the seconds such an object takes; the rows are the same either
/// way. `replay` of a folder and every S3 path (`run`, `lambda`, `replay s3://`) use it.
pub const INFLATE_AHEAD_BYTES: u64 = 8 << 20;

impl Default for ObjectProcessor {
    fn default() -> Self {
        ObjectProcessor {
            builder: OcsfBuilder::new(),
            keys: Vec::new(),
            lane_tags: Vec::new(),
            chunk_json: 0,
            chunk_rows: 8192,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            max_record_bytes: trailhouse_cloudtrail::reader::DEFAULT_MAX_RECORD_BYTES,
            carry_rows: false,
            tag: 0,
            owed: Vec::new(),
            sparse: false,
            json: HashMap::new(),
            json_rows: 0,
            read_buf: Vec::new(),
            inflate_ahead: false,
        }
    }
}

impl ObjectProcessor {
    /// A processor handing out batches of at most `chunk_rows` rows (and
    /// [`DEFAULT_CHUNK_BYTES`] of record JSON).
    pub fn with_chunk_rows(chunk_rows: usize) -> Self {
        ObjectProcessor {
            chunk_rows: chunk_rows.max(1),
            ..ObjectProcessor::default()
        }
    }

    /// Tells the size of the next objects (compressed, as listed or fetched): those
    /// of at least [`INFLATE_AHEAD_BYTES`] are inflated on a thread of their own.
    pub fn expect_bytes(&mut self, bytes: u64) {
        self.inflate_ahead = bytes >= INFLATE_AHEAD_BYTES;
    }

    /// Processes the object named `key` whose bytes `reader` yields, reporting rows
    /// and bad records to `sink` as it goes.
    pub fn process<R: Read + Send + 'static>(
        &mut self,
        key: &str,
        reader: R,
        sink: &mut dyn FnMut(ObjectEvent),
    ) -> ObjectOutcome {
        let ctx = match classify_key(key) {
            KeyKind::Digest(_) => return ObjectOutcome::Skipped(SkipReason::Digest),
            KeyKind::Insight(_) => return ObjectOutcome::Skipped(SkipReason::Insight),
            KeyKind::Log(parts) => ObjectContext {
                account: Some(parts.account),
                region: Some(parts.region),
            },
            KeyKind::Other => ObjectContext::default(),
        };
        let buf = std::mem::take(&mut self.read_buf);
        let opened = if self.inflate_ahead {
            LogReader::open_ahead(reader, buf)
        } else {
            LogReader::open_in(reader, buf)
        };
        let (reader, _) = match opened {
            Ok(r) => r,
            Err(e) => {
                return ObjectOutcome::Failed {
                    reason: e.to_string(),
                    records: 0,
                    bytes: 0,
                };
            }
        };
        let mut reader = reader.with_max_record_bytes(self.max_record_bytes);
        let outcome = self.read_object(&mut reader, &ctx, sink);
        self.read_buf = reader.into_buffer();
        outcome
    }

    /// [`process`](Self::process) once the object is open.
    fn read_object(
        &mut self,
        reader: &mut LogReader<Box<dyn Read + Send>>,
        ctx: &ObjectContext,
        sink: &mut dyn FnMut(ObjectEvent),
    ) -> ObjectOutcome {
        // Rows carried from earlier objects stay in their lanes, with their keys.
        if self.builder.is_empty() && self.json_rows == 0 {
            self.keys.clear();
            self.lane_tags.clear();
            self.chunk_json = 0;
        }
        let tag = self.tag;
        let sparse = self.sparse;
        loop {
            let index = reader.records_read();
            let (builder, keys, lane_tags, json, json_rows) = (
                &mut self.builder,
                &mut self.keys,
                &mut self.lane_tags,
                &mut self.json,
                &mut self.json_rows,
            );
            // Each partition's rows go to their own lane of the builder: lane i holds
            // the rows of keys[i]; past the lanes (`sparse`), to `json`.
            let read = reader.next_record_with(|bytes, rec| {
                let mut slot = Slot::Lane(0);
                let routed = builder.append_parsed(rec, ctx, |info| {
                    slot = partition_slot(keys, info, sparse)?;
                    Ok(match slot {
                        Slot::Lane(lane) => Some(lane),
                        Slot::Json(_) => None,
                    })
                });
                match routed {
                    Ok(_) => {
                        let tags = match slot {
                            Slot::Lane(lane) => {
                                if lane_tags.len() < keys.len() {
                                    lane_tags.resize_with(keys.len(), Vec::new);
                                }
                                &mut lane_tags[lane]
                            }
                            Slot::Json(key) => {
                                let part = json.entry(key).or_default();
                                part.records.push(bytes);
                                *json_rows += 1;
                                &mut part.tags
                            }
                        };
                        if tags.last() != Some(&tag) {
                            tags.push(tag);
                        }
                        Ok(bytes.len())
                    }
                    Err(e) => Err(ObjectEvent::BadRecord {
                        index,
                        reason: e.to_string(),
                        bytes: bytes.to_vec(),
                    }),
                }
            });
            let json = match read {
                Ok(Some(Ok(json))) => json,
                Ok(Some(Err(bad))) => {
                    sink(bad);
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    // Rows read before the failure are handed out (or carried) as
                    // usual: the object's outcome says how many.
                    let flushed = if self.carry_rows {
                        self.end_object(sink);
                        Ok(())
                    } else {
                        self.flush_chunk(sink)
                    };
                    return ObjectOutcome::Failed {
                        reason: flushed.err().unwrap_or(e.to_string()),
                        records: reader.records_read(),
                        bytes: reader.bytes_read(),
                    };
                }
            };
            self.chunk_json += json;
            let full = self.builder.len() + self.json_rows >= self.chunk_rows
                || self.chunk_json >= self.chunk_bytes
                || (!self.sparse && self.keys.len() >= MAX_CHUNK_PARTITIONS);
            if full && let Err(reason) = self.flush_chunk(sink) {
                return ObjectOutcome::Failed {
                    reason,
                    records: reader.records_read(),
                    bytes: reader.bytes_read(),
                };
            }
        }
        if self.carry_rows {
            self.end_object(sink);
        } else if let Err(reason) = self.flush_chunk(sink) {
            return ObjectOutcome::Failed {
                reason,
                records: reader.records_read(),
                bytes: reader.bytes_read(),
            };
        }
        ObjectOutcome::Complete {
            records: reader.records_read(),
            bytes: reader.bytes_read(),
        }
    }

    /// Hands out the rows carried from earlier objects (with
    /// [`carry_rows`](Self::carry_rows)); nothing when there are none.
    ///
    /// # Errors
    /// When a batch cannot be built, which would be a bug: the rows are lost (and
    /// [`ObjectEvent::Released`] says whose), and the caller must fail rather than
    /// report them written.
    pub fn finish(&mut self, sink: &mut dyn FnMut(ObjectEvent)) -> Result<(), String> {
        self.flush_chunk(sink)
    }

    /// The objects whose rows this processor holds past their end, taken without
    /// handing the rows out: for a caller giving up on the processor (its mapping
    /// panicked), which must then fail them.
    pub fn take_owed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.owed)
    }

    /// At the end of an object, with `carry_rows`: whether rows of it stay in the
    /// chunk (the lanes it wrote to name it last), and if so, says so.
    fn end_object(&mut self, sink: &mut dyn FnMut(ObjectEvent)) {
        let tag = self.tag;
        let named = |tags: &Vec<u64>| tags.last() == Some(&tag);
        if self.lane_tags.iter().any(named) || self.json.values().any(|p| named(&p.tags)) {
            self.owed.push(tag);
            sink(ObjectEvent::Carried(tag));
        }
    }

    /// Hands out the rows built so far, split by partition, then releases the
    /// objects owed. An error here means the arrays disagree with the schema: a bug,
    /// reported as the object's failure so the object is quarantined rather than
    /// lost; the earlier objects with rows in the chunk are released with the error.
    fn flush_chunk(&mut self, sink: &mut dyn FnMut(ObjectEvent)) -> Result<(), String> {
        let keys = std::mem::take(&mut self.keys);
        let mut tags = std::mem::take(&mut self.lane_tags).into_iter();
        let json = std::mem::take(&mut self.json);
        self.chunk_json = 0;
        self.json_rows = 0;
        let mut out = Vec::with_capacity(keys.len() + json.len());
        if !self.builder.is_empty() || !json.is_empty() {
            for (lane, key) in keys.into_iter().enumerate() {
                let batch = match self.builder.finish_lane(lane) {
                    Ok(batch) => batch,
                    Err(e) => {
                        // No lane keeps rows whose key is gone.
                        self.builder = OcsfBuilder::new();
                        let reason = format!("internal error building the batch: {e}");
                        self.release(sink, Some(reason.clone()));
                        return Err(reason);
                    }
                };
                // A lane can be empty: its key was chosen for a record that then failed.
                let tags = tags.next().unwrap_or_default();
                if batch.num_rows() > 0 {
                    out.push(Part {
                        key,
                        rows: Rows::Batch(batch),
                        tags,
                    });
                }
            }
            // In key order: the caller's buffers see the same sequence whatever the
            // hash map's.
            let mut json: Vec<(PartitionKey, JsonPart)> = json.into_iter().collect();
            json.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            out.extend(json.into_iter().map(|(key, part)| Part {
                key,
                rows: Rows::Json(part.records),
                tags: part.tags,
            }));
            sink(ObjectEvent::Rows(out));
        }
        self.release(sink, None);
        Ok(())
    }

    /// Releases the objects owed, if any.
    fn release(&mut self, sink: &mut dyn FnMut(ObjectEvent), error: Option<String>) {
        if !self.owed.is_empty() {
            let tags = std::mem::take(&mut self.owed);
            sink(ObjectEvent::Released { tags, error });
        }
    }
}

/// Where a mapped row goes in a chunk.
enum Slot {
    /// The builder's lane of this index in `keys`.
    Lane(usize),
    /// Kept as JSON, with the records of this partition.
    Json(PartitionKey),
}

/// Where the row of a mapped record goes: the lane of its partition in `keys`
/// (adding the partition if it is new), or with `sparse`, once `keys` holds
/// [`MAX_CHUNK_PARTITIONS`], the chunk's records kept as JSON. An error means a key
/// value the mapper should have refused; the record is then quarantined with that
/// reason ([`MapError::NoPartition`](trailhouse_ocsf::MapError::NoPartition)).
fn partition_slot(
    keys: &mut Vec<PartitionKey>,
    info: &RowInfo,
    sparse: bool,
) -> Result<Slot, String> {
    let day = utc_day(info.time_ms);
    if let Some(i) = keys
        .iter()
        .position(|k| k.matches(info.source, info.class, &info.region, &info.account, day))
    {
        return Ok(Slot::Lane(i));
    }
    let key = PartitionKey::new(info.source, info.class, &info.region, &info.account, day)
        .map_err(|e| e.to_string())?;
    if sparse && keys.len() >= MAX_CHUNK_PARTITIONS {
        return Ok(Slot::Json(key));
    }
    keys.push(key);
    Ok(Slot::Lane(keys.len() - 1))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow_array::RecordBatch;
    use arrow_array::cast::AsArray;
    use std::io::{Cursor, Write};

    fn rec(id: &str, region: &str, day: u32) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"}},"eventTime":"2024-01-{day:02}T01:02:03Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeVpcs","awsRegion":"{region}","sourceIPAddress":"10.1.2.3","eventID":"{id}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
        )
    }

    pub(crate) fn gz(s: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(s.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    /// The outcome, (partition, rows) per batch handed out, (index, reason) per bad record.
    type Run = (ObjectOutcome, Vec<(String, usize)>, Vec<(u64, String)>);

    fn run(key: &str, bytes: Vec<u8>, chunk_rows: usize) -> Run {
        let mut p = ObjectProcessor::with_chunk_rows(chunk_rows);
        let (mut rows, mut bad) = (Vec::new(), Vec::new());
        let outcome = p.process(key, Cursor::new(bytes), &mut |ev| match ev {
            ObjectEvent::Rows(parts) => {
                rows.extend(parts.into_iter().map(|p| (p.key.to_string(), p.rows.len())))
            }
            ObjectEvent::BadRecord { index, reason, .. } => bad.push((index, reason)),
            ev => panic!("an event of carried rows without carry_rows: {ev:?}"),
        });
        (outcome, rows, bad)
    }

    #[test]
    fn rows_are_split_by_partition_and_chunked() {
        let doc = format!(
            r#"{{"Records":[{},{},{},{},{{"eventID":"x"}}]}}"#,
            rec("a", "us-east-1", 1),
            rec("b", "eu-west-1", 1),
            rec("c", "us-east-1", 2),
            rec("d", "us-east-1", 1)
        );
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/f.json.gz";
        let (outcome, rows, bad) = run(key, gz(&doc), 2);
        assert_eq!(
            outcome,
            ObjectOutcome::Complete {
                records: 5,
                bytes: doc.len() as u64
            }
        );
        let total: usize = rows.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 4);
        assert!(
            rows.iter()
                .any(|(k, _)| k == "CLOUD_TRAIL_MGMT/API Activity/eu-west-1/111122223333/20240101")
        );
        assert!(
            rows.iter()
                .any(|(k, _)| k == "CLOUD_TRAIL_MGMT/API Activity/us-east-1/111122223333/20240102")
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 4);
        assert!(bad[0].1.contains("eventTime"), "{}", bad[0].1);
    }

    #[test]
    fn chunks_end_at_the_byte_bound_whatever_the_row_count() {
        // 40 records of one partition, each about 8 KB: with room for 1,000 rows but
        // only 20,000 bytes per chunk, a chunk closes at the record that reaches the
        // bound (its third), so 13 chunks of 3 and one of 1.
        let pad = "x".repeat(8000);
        let records: Vec<String> = (0..40)
            .map(|i| {
                rec(&format!("id{i}"), "us-east-1", 1).replace(
                    r#""eventType""#,
                    &format!(r#""userAgent":"{pad}","eventType""#),
                )
            })
            .collect();
        let doc = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let mut p = ObjectProcessor::with_chunk_rows(1000);
        p.chunk_bytes = 20_000;
        let mut sizes = Vec::new();
        let outcome = p.process("f.json.gz", Cursor::new(gz(&doc)), &mut |ev| {
            if let ObjectEvent::Rows(parts) = ev {
                sizes.push(parts.iter().map(|p| p.rows.len()).sum::<usize>());
            }
        });
        assert!(matches!(
            outcome,
            ObjectOutcome::Complete { records: 40, .. }
        ));
        let mut expected = vec![3; 13];
        expected.push(1);
        assert_eq!(sizes, expected);
    }

    /// 3 × MAX_CHUNK_PARTITIONS + 5 records, each of its own region (and so its own
    /// partition), then the first region again; and their number.
    fn a_region_each() -> (String, usize) {
        let n = 3 * MAX_CHUNK_PARTITIONS + 5;
        let mut records: Vec<String> = (0..n)
            .map(|i| rec(&format!("id{i}"), &format!("xx-test-{i}"), 1))
            .collect();
        records.push(rec("again", "xx-test-0", 1));
        (format!(r#"{{"Records":[{}]}}"#, records.join(",")), n)
    }

    #[test]
    fn a_chunk_ends_at_the_partition_bound_and_every_row_keeps_its_partition() {
        // Room for 10,000 rows per chunk, but a chunk ends once it holds rows of
        // MAX_CHUNK_PARTITIONS partitions.
        let (doc, n) = a_region_each();
        let mut p = ObjectProcessor::with_chunk_rows(10_000);
        let mut events = Vec::new();
        let outcome = p.process("f.json.gz", Cursor::new(gz(&doc)), &mut |ev| {
            if let ObjectEvent::Rows(parts) = ev {
                events.push(parts);
            }
        });
        assert!(
            matches!(outcome, ObjectOutcome::Complete { records, .. } if records == n as u64 + 1)
        );
        let sizes: Vec<usize> = events.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [
                MAX_CHUNK_PARTITIONS,
                MAX_CHUNK_PARTITIONS,
                MAX_CHUNK_PARTITIONS,
                6
            ]
        );
        // Each batch holds the rows of its own key and no other.
        let mut seen = Vec::new();
        for Part { key, rows, .. } in events.iter().flatten() {
            let Rows::Batch(batch) = rows else {
                panic!("rows kept as JSON without sparse")
            };
            let region = batch
                .column_by_name("region")
                .expect("region")
                .as_string::<i32>();
            let metadata = batch
                .column_by_name("metadata")
                .expect("metadata")
                .as_struct();
            let ids = metadata
                .column_by_name("uid")
                .expect("uid")
                .as_string::<i32>();
            for (r, id) in region.iter().zip(ids.iter()) {
                let (r, id) = (r.unwrap(), id.unwrap());
                assert_eq!(
                    key.to_string(),
                    format!("CLOUD_TRAIL_MGMT/API Activity/{r}/111122223333/20240101")
                );
                seen.push((id.to_string(), r.to_string()));
            }
        }
        let mut expected: Vec<(String, String)> = (0..n)
            .map(|i| (format!("id{i}"), format!("xx-test-{i}")))
            .collect();
        expected.push(("again".into(), "xx-test-0".into()));
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_sparse_chunk_keeps_the_records_of_further_partitions_as_json_that_maps_the_same() {
        // The input of the test above; `sparse` on. One chunk: MAX_CHUNK_PARTITIONS
        // lanes, the rest kept as JSON (the record "again" joins its lane). Mapped
        // again, each JSON part is the batch the plain processor builds for that
        // partition. Two objects, carried: the second's records have neither
        // awsRegion nor recipientAccountId, so they take its key's region and
        // account, and mapped again take them from their partition.
        let (doc, n) = a_region_each();
        let keyed = "AWSLogs/444455556666/CloudTrail/ap-south-2/2024/01/01/f.json.gz";
        let no_region: Vec<String> = (0..3)
            .map(|i| {
                rec(&format!("nr{i}"), "XX", 2)
                    .replace(r#""awsRegion":"XX","#, "")
                    .replace(r#","recipientAccountId":"111122223333""#, "")
            })
            .collect();
        let doc2 = format!(r#"{{"Records":[{}]}}"#, no_region.join(","));
        let objects = [("f.json.gz", gz(&doc)), (keyed, gz(&doc2))];

        let run = |sparse: bool| -> Vec<Part> {
            let mut p = ObjectProcessor::with_chunk_rows(10_000);
            p.sparse = sparse;
            p.carry_rows = true;
            let mut parts = Vec::new();
            let mut carried = Vec::new();
            for (tag, (key, bytes)) in objects.iter().enumerate() {
                p.tag = tag as u64;
                let outcome = p.process(key, Cursor::new(bytes.clone()), &mut |ev| match ev {
                    ObjectEvent::Rows(ps) => parts.extend(ps),
                    ObjectEvent::Carried(t) => carried.push(t),
                    _ => {}
                });
                assert!(
                    matches!(outcome, ObjectOutcome::Complete { .. }),
                    "{outcome:?}"
                );
            }
            if sparse {
                // Both objects end with rows in the chunk: the second only in JSON.
                assert_eq!(carried, [0, 1]);
            }
            p.finish(&mut |ev| {
                if let ObjectEvent::Rows(ps) = ev {
                    parts.extend(ps)
                }
            })
            .unwrap();
            parts
        };
        let plain = run(false);
        let sparse = run(true);
        let json: Vec<&Part> = sparse
            .iter()
            .filter(|p| matches!(p.rows, Rows::Json(_)))
            .collect();
        assert_eq!(sparse.len() - json.len(), MAX_CHUNK_PARTITIONS);
        assert_eq!(json.len(), n - MAX_CHUNK_PARTITIONS + 1);
        let keys: Vec<&PartitionKey> = json.iter().map(|p| &p.key).collect();
        assert!(keys.is_sorted(), "JSON parts in key order");
        let last = json
            .iter()
            .find(|p| p.key.region() == "ap-south-2")
            .unwrap();
        assert_eq!((last.rows.len(), last.key.account()), (3, "444455556666"));
        assert_eq!(last.tags, [1]);

        // The plain processor's chunks end at the partition bound, so "again" comes in
        // a later batch of its partition than the first record's.
        let mut want: std::collections::BTreeMap<PartitionKey, Vec<RecordBatch>> =
            Default::default();
        for p in plain {
            let Rows::Batch(b) = p.rows else {
                panic!("rows kept as JSON without sparse")
            };
            want.entry(p.key).or_default().push(b);
        }
        assert_eq!(want.len(), sparse.len());
        for p in sparse {
            let batch = p.rows.into_batch(&p.key).unwrap();
            let plain = arrow_select::concat::concat_batches(&batch.schema(), &want[&p.key]);
            assert_eq!(batch, plain.unwrap(), "{}", p.key);
        }
    }

    /// A sink keeping (partition, rows) of each batch handed out.
    fn into(batches: &mut Vec<(String, usize)>) -> impl FnMut(ObjectEvent) + '_ {
        |ev| {
            if let ObjectEvent::Rows(parts) = ev {
                batches.extend(parts.into_iter().map(|p| (p.key.to_string(), p.rows.len())));
            }
        }
    }

    #[test]
    fn carried_rows_of_many_objects_make_one_batch_per_partition() {
        // Ten objects of three records each, over two regions: without carrying, one
        // batch per partition per object (20); with it, one per partition, after the
        // last object, holding every row. A failed object's rows read before the
        // failure are carried too, and its outcome still counts them.
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/f.json.gz";
        let object = |i: usize| {
            let recs: Vec<String> = (0..3)
                .map(|j| rec(&format!("id{i}-{j}"), ["us-east-1", "eu-west-1"][j % 2], 1))
                .collect();
            gz(&format!(r#"{{"Records":[{}]}}"#, recs.join(",")))
        };
        for carry in [false, true] {
            let mut p = ObjectProcessor::with_chunk_rows(1000);
            p.carry_rows = carry;
            let mut batches = Vec::new();
            for i in 0..10 {
                let outcome = p.process(key, Cursor::new(object(i)), &mut into(&mut batches));
                assert!(matches!(
                    outcome,
                    ObjectOutcome::Complete { records: 3, .. }
                ));
            }
            let cut = object(10);
            let outcome = p.process(
                key,
                Cursor::new(cut[..cut.len() - 12].to_vec()),
                &mut into(&mut batches),
            );
            let ObjectOutcome::Failed { records, .. } = outcome else {
                panic!("a cut object fails: {outcome:?}");
            };
            if carry {
                assert!(batches.is_empty(), "nothing handed out before finish");
            }
            p.finish(&mut into(&mut batches)).unwrap();
            let rows: usize = batches.iter().map(|(_, n)| n).sum();
            assert_eq!(rows as u64, 30 + records);
            if carry {
                let mut keys: Vec<&str> = batches.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort();
                assert_eq!(
                    keys,
                    [
                        "CLOUD_TRAIL_MGMT/API Activity/eu-west-1/111122223333/20240101",
                        "CLOUD_TRAIL_MGMT/API Activity/us-east-1/111122223333/20240101"
                    ]
                );
            } else {
                assert!(batches.len() >= 20, "{}", batches.len());
            }
            // Nothing is left to hand out.
            batches.clear();
            p.finish(&mut into(&mut batches)).unwrap();
            assert!(batches.is_empty());
        }
    }

    #[test]
    fn each_part_names_the_objects_whose_rows_it_holds() {
        // Objects tagged 7 (two records in us-east-1), 8 (two in eu-west-1) and 9 (one
        // in each), carried: a part's tags are the objects with rows in it, each once,
        // whether the chunk ends at `finish` or at its row bound mid-stream; an object
        // ending with rows in the processor is `Carried`, and `Released` right after
        // the rows that held its last ones, never before.
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/f.json.gz";
        let object = |tag: u64, regions: &[&str]| {
            let recs: Vec<String> = regions
                .iter()
                .enumerate()
                .map(|(j, r)| rec(&format!("id{tag}-{j}"), r, 1))
                .collect();
            gz(&format!(r#"{{"Records":[{}]}}"#, recs.join(",")))
        };
        let part =
            |region: &str, rows: usize, tags: &[u64]| format!("rows {region} {rows} {tags:?}");
        let (us, eu) = ("us-east-1", "eu-west-1");
        let (end, carried, released) = (
            |tag: u64| format!("end {tag}"),
            |tag: u64| format!("carried {tag}"),
            |tags: &[u64]| format!("released {tags:?}"),
        );
        for (chunk_rows, expected) in [
            (
                1000,
                vec![
                    carried(7),
                    end(7),
                    carried(8),
                    end(8),
                    carried(9),
                    end(9),
                    part(us, 3, &[7, 9]),
                    part(eu, 3, &[8, 9]),
                    released(&[7, 8, 9]),
                ],
            ),
            (
                4,
                vec![
                    carried(7),
                    end(7),
                    // Object 8 fills the chunk with its last row: nothing of it is
                    // carried, and 7 is released with the chunk.
                    part(us, 2, &[7]),
                    part(eu, 2, &[8]),
                    released(&[7]),
                    end(8),
                    carried(9),
                    end(9),
                    part(us, 1, &[9]),
                    part(eu, 1, &[9]),
                    released(&[9]),
                ],
            ),
        ] {
            let mut p = ObjectProcessor::with_chunk_rows(chunk_rows);
            p.carry_rows = true;
            let log = std::cell::RefCell::new(Vec::new());
            let mut sink = |ev| match ev {
                ObjectEvent::Rows(ps) => log.borrow_mut().extend(ps.into_iter().map(|p| {
                    let region = p.key.to_string().split('/').nth(2).unwrap().to_string();
                    part(&region, p.rows.len(), &p.tags)
                })),
                ObjectEvent::Carried(tag) => log.borrow_mut().push(carried(tag)),
                ObjectEvent::Released { tags, error } => {
                    assert_eq!(error, None);
                    log.borrow_mut().push(released(&tags));
                }
                ObjectEvent::BadRecord { reason, .. } => panic!("bad record: {reason}"),
            };
            for (tag, regions) in [(7, vec![us, us]), (8, vec![eu, eu]), (9, vec![us, eu])] {
                p.tag = tag;
                let outcome = p.process(key, Cursor::new(object(tag, &regions)), &mut sink);
                assert!(matches!(
                    outcome,
                    ObjectOutcome::Complete { records: 2, .. }
                ));
                log.borrow_mut().push(end(tag));
            }
            p.finish(&mut sink).unwrap();
            assert_eq!(log.into_inner(), expected, "chunk_rows {chunk_rows}");
            assert_eq!(p.take_owed(), Vec::<u64>::new());
        }
    }

    #[test]
    fn digest_and_insight_keys_are_not_read() {
        let digest = "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/01/01/1_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T000000Z.json.gz";
        assert_eq!(
            run(digest, b"garbage".to_vec(), 10).0,
            ObjectOutcome::Skipped(SkipReason::Digest)
        );
        let insight = "AWSLogs/1/CloudTrail-Insight/us-east-1/2024/01/01/1_CloudTrail-Insight_us-east-1_20240101T0000Z_x.json.gz";
        assert_eq!(
            run(insight, b"garbage".to_vec(), 10).0,
            ObjectOutcome::Skipped(SkipReason::Insight)
        );
    }

    /// A log file of `n` records over three days of one region.
    pub(crate) fn three_days_of(n: usize) -> String {
        let records: Vec<String> = (0..n)
            .map(|i| rec(&format!("id{i}"), "us-east-1", 1 + (i % 3) as u32))
            .collect();
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

    #[test]
    fn a_truncated_object_fails_after_delivering_what_it_read() {
        let full = gz(&three_days_of(3000));
        let (outcome, rows, bad) = run("f.json.gz", full[..full.len() / 2].to_vec(), 100);
        let ObjectOutcome::Failed {
            records, reason, ..
        } = outcome
        else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(records > 0 && records < 3000, "{records}");
        assert!(!reason.is_empty());
        let delivered: usize = rows.iter().map(|(_, n)| n).sum();
        assert_eq!(
            delivered as u64, records,
            "every record read before the cut is delivered"
        );
        assert!(bad.is_empty());
    }

    #[test]
    fn inflating_ahead_maps_the_same_rows_and_failures() {
        let full = gz(&three_days_of(3000));
        for bytes in [full.clone(), full[..full.len() / 2].to_vec()] {
            let mut outs = Vec::new();
            for ahead in [false, true] {
                let mut p = ObjectProcessor::with_chunk_rows(100);
                p.inflate_ahead = ahead;
                let mut rows = Vec::new();
                let outcome = p.process("f.json.gz", Cursor::new(bytes.clone()), &mut |ev| {
                    if let ObjectEvent::Rows(parts) = ev {
                        rows.extend(parts.into_iter().map(|p| (p.key.to_string(), p.rows.len())));
                    }
                });
                outs.push((outcome, rows));
            }
            assert_eq!(outs[0], outs[1]);
            assert!(!outs[0].1.is_empty());
        }
    }

    #[test]
    fn not_cloudtrail_fails_with_a_clear_reason() {
        let (outcome, rows, _) = run("x.json.gz", gz(r#"{"foo":[1,2]}"#), 10);
        assert!(rows.is_empty());
        match outcome {
            ObjectOutcome::Failed {
                reason, records: 0, ..
            } => assert!(reason.contains("not a CloudTrail log file"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
