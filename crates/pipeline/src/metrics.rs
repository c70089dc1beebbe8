//! The worker's counters: one set of atomics that both the exit summary and the
//! Prometheus endpoint read, so logs, summary and metrics cannot drift apart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Counters and gauges of a worker.
#[derive(Debug, Default)]
pub struct Metrics {
    /// SQS messages received.
    pub messages_received: AtomicU64,
    /// SQS messages deleted (all their rows durable).
    pub messages_deleted: AtomicU64,
    /// Messages released to reappear (a failure left work undone).
    pub messages_released: AtomicU64,
    /// Unrecognized messages written to quarantine (and deleted).
    pub messages_quarantined: AtomicU64,
    /// `s3:TestEvent` messages acknowledged.
    pub test_events: AtomicU64,
    /// Objects read to their end.
    pub objects_processed: AtomicU64,
    /// Objects copied to quarantine.
    pub objects_quarantined: AtomicU64,
    /// Objects that could not be fetched (S3 errors); their messages come back.
    pub objects_failed: AtomicU64,
    /// Digest files skipped.
    pub objects_skipped_digest: AtomicU64,
    /// CloudTrail Insights files (not logs: their records go to the findings table).
    pub objects_skipped_insight: AtomicU64,
    /// Detection Finding rows written from CloudTrail Insights files.
    pub findings_written: AtomicU64,
    /// Records read.
    pub records_read: AtomicU64,
    /// Records quarantined.
    pub records_quarantined: AtomicU64,
    /// Duplicate rows dropped at flush.
    pub duplicates_dropped: AtomicU64,
    /// Rows read but not written because their batch failed (all-or-nothing
    /// replay days); they are written when the batch is redone.
    pub rows_discarded: AtomicU64,
    /// Parquet files written.
    pub files_written: AtomicU64,
    /// Partition flushes completed.
    pub flushes: AtomicU64,
    /// Flushes that failed (their messages come back).
    pub flush_failures: AtomicU64,
    /// Object bytes read from the store (as stored).
    pub bytes_in: AtomicU64,
    /// Parquet bytes written.
    pub bytes_out: AtomicU64,
    /// Arrow bytes buffered now.
    pub buffer_bytes: AtomicU64,
    /// Messages in flight now.
    pub messages_in_flight: AtomicU64,
    /// Newest event time written (epoch ms), for the lag gauge.
    pub newest_event_ms: AtomicI64,
    /// Rows written per class name.
    pub rows_written: Mutex<BTreeMap<String, u64>>,
}

/// The exit summary of `trailhouse run`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WorkerSummary {
    /// See [`Metrics`].
    pub messages_received: u64,
    /// See [`Metrics`].
    pub messages_deleted: u64,
    /// See [`Metrics`].
    pub messages_released: u64,
    /// See [`Metrics`].
    pub messages_quarantined: u64,
    /// See [`Metrics`].
    pub test_events: u64,
    /// See [`Metrics`].
    pub objects_processed: u64,
    /// See [`Metrics`].
    pub objects_quarantined: u64,
    /// See [`Metrics`].
    pub objects_failed: u64,
    /// See [`Metrics`].
    pub objects_skipped_digest: u64,
    /// See [`Metrics`].
    pub objects_skipped_insight: u64,
    /// See [`Metrics`].
    pub findings_written: u64,
    /// See [`Metrics`].
    pub records_read: u64,
    /// See [`Metrics`].
    pub records_quarantined: u64,
    /// See [`Metrics`].
    pub duplicates_dropped: u64,
    /// See [`Metrics`].
    pub rows_discarded: u64,
    /// Rows written per class name.
    pub rows_written: BTreeMap<String, u64>,
    /// See [`Metrics`].
    pub files_written: u64,
    /// See [`Metrics`].
    pub bytes_in: u64,
    /// See [`Metrics`].
    pub bytes_out: u64,
    /// Peak resident memory of the process in bytes (Linux).
    pub peak_rss_bytes: Option<u64>,
    /// Times freed memory was given back to the system because the process held more
    /// than its memory budget ([`crate::malloc::trim_above`]).
    pub memory_trims: u64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Adds `n` to a counter.
pub fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Adds rows written for a class.
    pub fn add_rows(&self, class: &str, n: u64) {
        if let Ok(mut m) = self.rows_written.lock() {
            *m.entry(class.to_string()).or_default() += n;
        }
    }

    /// Records that rows up to `ms` are durable.
    pub fn saw_event_time(&self, ms: i64) {
        self.newest_event_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The summary as of now.
    pub fn summary(&self) -> WorkerSummary {
        WorkerSummary {
            messages_received: get(&self.messages_received),
            messages_deleted: get(&self.messages_deleted),
            messages_released: get(&self.messages_released),
            messages_quarantined: get(&self.messages_quarantined),
            test_events: get(&self.test_events),
            objects_processed: get(&self.objects_processed),
            objects_quarantined: get(&self.objects_quarantined),
            objects_failed: get(&self.objects_failed),
            objects_skipped_digest: get(&self.objects_skipped_digest),
            objects_skipped_insight: get(&self.objects_skipped_insight),
            findings_written: get(&self.findings_written),
            records_read: get(&self.records_read),
            records_quarantined: get(&self.records_quarantined),
            duplicates_dropped: get(&self.duplicates_dropped),
            rows_discarded: get(&self.rows_discarded),
            rows_written: self
                .rows_written
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
            files_written: get(&self.files_written),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            peak_rss_bytes: crate::replay::peak_rss_bytes(),
            memory_trims: crate::malloc::trims(),
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP trailhouse_{name} {help}\n# TYPE trailhouse_{name} counter\ntrailhouse_{name} {v}"
            );
        };
        counter(
            "messages_received_total",
            "SQS messages received.",
            get(&self.messages_received),
        );
        counter(
            "messages_deleted_total",
            "SQS messages deleted after their rows were durable.",
            get(&self.messages_deleted),
        );
        counter(
            "messages_released_total",
            "SQS messages left to reappear after a failure.",
            get(&self.messages_released),
        );
        counter(
            "messages_quarantined_total",
            "Unrecognized messages quarantined.",
            get(&self.messages_quarantined),
        );
        counter(
            "test_events_total",
            "s3:TestEvent messages acknowledged.",
            get(&self.test_events),
        );
        counter(
            "objects_processed_total",
            "Objects read to their end.",
            get(&self.objects_processed),
        );
        counter(
            "objects_quarantined_total",
            "Objects copied to quarantine.",
            get(&self.objects_quarantined),
        );
        counter(
            "objects_failed_total",
            "Objects that could not be fetched.",
            get(&self.objects_failed),
        );
        counter(
            "objects_skipped_total",
            "Digest and Insights files not read as logs.",
            get(&self.objects_skipped_digest) + get(&self.objects_skipped_insight),
        );
        counter(
            "findings_written_total",
            "Detection Finding rows written from CloudTrail Insights files.",
            get(&self.findings_written),
        );
        counter(
            "records_read_total",
            "Records read.",
            get(&self.records_read),
        );
        counter(
            "records_quarantined_total",
            "Records quarantined.",
            get(&self.records_quarantined),
        );
        counter(
            "duplicates_dropped_total",
            "Duplicate rows dropped at flush.",
            get(&self.duplicates_dropped),
        );
        counter(
            "files_written_total",
            "Parquet files written.",
            get(&self.files_written),
        );
        counter(
            "flushes_total",
            "Partition flushes completed.",
            get(&self.flushes),
        );
        counter(
            "flush_failures_total",
            "Partition flushes that failed.",
            get(&self.flush_failures),
        );
        counter("bytes_in_total", "Object bytes read.", get(&self.bytes_in));
        counter(
            "bytes_out_total",
            "Parquet bytes written.",
            get(&self.bytes_out),
        );
        counter(
            "memory_trims_total",
            "Times freed memory was given back to the system above the memory budget.",
            crate::malloc::trims(),
        );
        let _ = writeln!(
            out,
            "# HELP trailhouse_rows_written_total Rows written per OCSF class.\n# TYPE trailhouse_rows_written_total counter"
        );
        if let Ok(rows) = self.rows_written.lock() {
            for (class, n) in rows.iter() {
                let _ = writeln!(
                    out,
                    "trailhouse_rows_written_total{{class=\"{class}\"}} {n}"
                );
            }
        }
        let newest = self.newest_event_ms.load(Ordering::Relaxed);
        let lag = if newest > 0 {
            (now_ms - newest).max(0) as f64 / 1000.0
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "# HELP trailhouse_lag_seconds Now minus the newest eventTime written.\n# TYPE trailhouse_lag_seconds gauge\ntrailhouse_lag_seconds {lag}"
        );
        let _ = writeln!(
            out,
            "# HELP trailhouse_buffer_bytes Arrow bytes buffered.\n# TYPE trailhouse_buffer_bytes gauge\ntrailhouse_buffer_bytes {}",
            get(&self.buffer_bytes)
        );
        let _ = writeln!(
            out,
            "# HELP trailhouse_messages_in_flight Messages received and not yet settled.\n# TYPE trailhouse_messages_in_flight gauge\ntrailhouse_messages_in_flight {}",
            get(&self.messages_in_flight)
        );
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        let (mut sock, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // The request is not needed beyond its arrival; read what is there.
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), sock.read(&mut buf)).await;
            let body = metrics.render(now_ms());
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// Wall-clock epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_summary_agree() {
        let m = Metrics::default();
        add(&m.messages_received, 3);
        add(&m.records_read, 10);
        m.add_rows("API Activity", 7);
        m.add_rows("API Activity", 2);
        m.saw_event_time(1_000);
        let text = m.render(61_000);
        assert!(text.contains("trailhouse_messages_received_total 3\n"));
        assert!(text.contains("trailhouse_records_read_total 10\n"));
        assert!(text.contains("trailhouse_rows_written_total{class=\"API Activity\"} 9\n"));
        assert!(text.contains("trailhouse_lag_seconds 60\n"));
        let s = m.summary();
        assert_eq!(s.messages_received, 3);
        assert_eq!(s.rows_written["API Activity"], 9);
    }
}
