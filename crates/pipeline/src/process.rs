//! One object, start to end: judged by its key, streamed through gunzip and the
//! record reader, mapped into Arrow, split by partition. Used by replay, convert and
//! the workers alike; synchronous, so callers run it off any async reactor.

use std::io::Read;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_select::take::take_record_batch;
use trailhouse_cloudtrail::time::utc_day;
use trailhouse_cloudtrail::{KeyKind, LogReader, classify_key};
use trailhouse_lake::PartitionKey;
use trailhouse_ocsf::{ObjectContext, OcsfBuilder};

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

/// What the processor hands to its caller while it reads an object.
#[derive(Debug)]
pub enum ObjectEvent {
    /// Mapped rows, one batch per partition.
    Rows(Vec<(PartitionKey, RecordBatch)>),
    /// A record that could not be mapped, with its original bytes.
    BadRecord {
        /// Index of the record in the object's `Records` array.
        index: u64,
        /// Why.
        reason: String,
        /// The record's bytes as they were in the file.
        bytes: Vec<u8>,
    },
}

/// Maps objects; keeps its Arrow builders between objects.
pub struct ObjectProcessor {
    builder: OcsfBuilder,
    row_parts: Vec<u16>,
    keys: Vec<PartitionKey>,
    /// Rows per batch handed out (a bound on memory per object in flight).
    pub chunk_rows: usize,
    /// Largest record accepted.
    pub max_record_bytes: usize,
}

impl Default for ObjectProcessor {
    fn default() -> Self {
        ObjectProcessor {
            builder: OcsfBuilder::new(),
            row_parts: Vec::new(),
            keys: Vec::new(),
            chunk_rows: 8192,
            max_record_bytes: trailhouse_cloudtrail::reader::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl ObjectProcessor {
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
        let (reader, _) = match LogReader::open(reader) {
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
        self.keys.clear();
        self.row_parts.clear();
        loop {
            let index = reader.records_read();
            let rec = match reader.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                Err(e) => {
                    let flushed = self.flush_chunk(sink);
                    return ObjectOutcome::Failed {
                        reason: flushed.err().unwrap_or_else(|| e.to_string()),
                        records: reader.records_read(),
                        bytes: reader.bytes_read(),
                    };
                }
            };
            match self.builder.append_bytes(rec, &ctx) {
                Ok(info) => {
                    let day = utc_day(info.time_ms);
                    let slot = match self.keys.iter().position(|k| {
                        k.matches(info.source, info.class, &info.region, &info.account, day)
                    }) {
                        Some(i) => i,
                        None => match PartitionKey::new(
                            info.source,
                            info.class,
                            &info.region,
                            &info.account,
                            day,
                        ) {
                            Ok(k) => {
                                self.keys.push(k);
                                self.keys.len() - 1
                            }
                            // The mapper validates the same values; this cannot be
                            // reached, but if it were the row must not be lost.
                            Err(e) => {
                                let flushed = self.flush_chunk(sink);
                                return ObjectOutcome::Failed {
                                    reason: flushed
                                        .err()
                                        .unwrap_or_else(|| format!("record {index}: {e}")),
                                    records: reader.records_read(),
                                    bytes: reader.bytes_read(),
                                };
                            }
                        },
                    };
                    self.row_parts.push(slot as u16);
                    if self.builder.len() >= self.chunk_rows || self.keys.len() >= u16::MAX as usize
                    {
                        if let Err(reason) = self.flush_chunk(sink) {
                            return ObjectOutcome::Failed {
                                reason,
                                records: reader.records_read(),
                                bytes: reader.bytes_read(),
                            };
                        }
                    }
                }
                Err(e) => sink(ObjectEvent::BadRecord {
                    index,
                    reason: e.to_string(),
                    bytes: rec.to_vec(),
                }),
            }
        }
        if let Err(reason) = self.flush_chunk(sink) {
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

    /// Hands out the rows built so far, split by partition. An error here means the
    /// arrays disagree with the schema: a bug, reported as the object's failure so
    /// the object is quarantined rather than lost.
    fn flush_chunk(&mut self, sink: &mut dyn FnMut(ObjectEvent)) -> Result<(), String> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self
            .builder
            .finish()
            .map_err(|e| format!("internal error building the batch: {e}"))?;
        let keys = std::mem::take(&mut self.keys);
        let parts = std::mem::take(&mut self.row_parts);
        let mut out = Vec::with_capacity(keys.len());
        if keys.len() == 1 {
            out.extend(keys.into_iter().next().map(|k| (k, batch)));
        } else {
            for (slot, key) in keys.into_iter().enumerate() {
                let idx: UInt32Array = parts
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| **p as usize == slot)
                    .map(|(i, _)| i as u32)
                    .collect();
                let part = take_record_batch(&batch, &idx)
                    .map_err(|e| format!("internal error splitting rows: {e}"))?;
                out.push((key, part));
            }
        }
        sink(ObjectEvent::Rows(out));
        Ok(())
    }
}
