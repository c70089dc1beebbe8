//! The floor of a replay, for benchmarks: the same files read the way `replay` reads
//! them (gunzip with the same decoder, the same streaming record reader), each record
//! parsed as JSON to its last byte, in the one pass `replay` makes over it
//! ([`LogReader::next_record_with`]), and nothing else — no mapping, no Arrow, no
//! Parquet. `replay`'s time over this time says how much the work trailhouse adds on
//! top of reading costs (`trailhouse floor`, `bench/e2e.py`).

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use trailhouse_cloudtrail::{KeyKind, LogReader, classify_key};

use crate::replay::{ReplayError, discover, peak_rss_bytes};

/// What a floor run read.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FloorSummary {
    /// Log objects read (digest and Insights files are left out, as `replay` does).
    pub objects_read: u64,
    /// Objects that could not be read to their end (not an error here: the floor
    /// measures reading, and `replay` would quarantine them).
    pub objects_failed: u64,
    /// Records read.
    pub records_read: u64,
    /// Records that were not a valid JSON object.
    pub records_invalid: u64,
    /// Bytes of the input objects as stored.
    pub bytes_in: u64,
    /// Bytes of JSON after decompression.
    pub bytes_uncompressed: u64,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
    /// Records read per second.
    pub records_per_sec: f64,
    /// Uncompressed megabytes (10^6) per second.
    pub mb_per_sec: f64,
    /// Peak resident memory of the process in bytes (Linux).
    pub peak_rss_bytes: Option<u64>,
}

impl FloorSummary {
    fn add(&mut self, o: &FloorSummary) {
        self.objects_read += o.objects_read;
        self.objects_failed += o.objects_failed;
        self.records_read += o.records_read;
        self.records_invalid += o.records_invalid;
        self.bytes_in += o.bytes_in;
        self.bytes_uncompressed += o.bytes_uncompressed;
    }
}

/// Reads every log file under `inputs` on `threads` threads (objects dealt
/// round-robin, as `replay` deals them).
///
/// # Errors
/// When an input cannot be listed.
pub fn floor(inputs: &[PathBuf], threads: usize) -> Result<FloorSummary, ReplayError> {
    let started = Instant::now();
    let objects: Vec<_> = discover(inputs, None)?
        .into_iter()
        .filter(|o| {
            !matches!(
                classify_key(&o.key),
                KeyKind::Digest(_) | KeyKind::Insight(_)
            )
        })
        .collect();
    let threads = threads.max(1).min(objects.len().max(1));
    let mut total = FloorSummary::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let objects = &objects;
                s.spawn(move || {
                    let mut part = FloorSummary::default();
                    // One read buffer per thread, as `replay`'s processors keep.
                    let mut buf = Vec::new();
                    for obj in objects.iter().skip(w).step_by(threads) {
                        buf = read_one(&obj.path, &mut part, buf);
                    }
                    part
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(part) => total.add(&part),
                Err(_) => return Err(ReplayError::Internal("a floor thread panicked".into())),
            }
        }
        Ok(())
    })?;
    total.elapsed_secs = started.elapsed().as_secs_f64();
    if total.elapsed_secs > 0.0 {
        total.records_per_sec = total.records_read as f64 / total.elapsed_secs;
        total.mb_per_sec = total.bytes_uncompressed as f64 / 1e6 / total.elapsed_secs;
    }
    total.peak_rss_bytes = peak_rss_bytes();
    Ok(total)
}

/// Reads one file into `out`; gives back the reader's buffer for the next.
fn read_one(path: &std::path::Path, out: &mut FloorSummary, buf: Vec<u8>) -> Vec<u8> {
    out.objects_read += 1;
    let Ok(file) = File::open(path) else {
        out.objects_failed += 1;
        return buf;
    };
    out.bytes_in += file.metadata().map_or(0, |m| m.len());
    let Ok((mut reader, _)) = LogReader::open_in(file, buf) else {
        out.objects_failed += 1;
        return Vec::new();
    };
    loop {
        match reader.next_record_with(|_, record| record.is_ok()) {
            Ok(Some(valid)) => {
                out.records_read += 1;
                out.records_invalid += u64::from(!valid);
            }
            Ok(None) => break,
            Err(_) => {
                out.objects_failed += 1;
                break;
            }
        }
    }
    out.bytes_uncompressed += reader.bytes_read();
    reader.into_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn counts_records_bytes_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir
            .path()
            .join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/09");
        std::fs::create_dir_all(&logs).unwrap();
        let body = br#"{"Records":[{"eventTime":"2024-03-09T00:00:00Z"},{"a":[1,2,{"b":null}]}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).unwrap();
        std::fs::write(logs.join("a.json.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(logs.join("b.json"), body).unwrap();
        std::fs::write(logs.join("c.json.gz"), b"\x1f\x8bnot gzip").unwrap();
        let digest = dir
            .path()
            .join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/09");
        std::fs::create_dir_all(&digest).unwrap();
        std::fs::write(digest.join("d.json.gz"), b"{}").unwrap();

        for threads in [1, 3] {
            let s = floor(&[dir.path().to_path_buf()], threads).unwrap();
            assert_eq!(s.objects_read, 3, "digest left out");
            assert_eq!(s.objects_failed, 1);
            assert_eq!(s.records_read, 4);
            assert_eq!(s.records_invalid, 0);
            assert_eq!(s.bytes_uncompressed, 2 * body.len() as u64);
        }
    }
}
