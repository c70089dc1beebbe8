//! Replay of a trail bucket: the plan's day prefixes, one batch each, through the
//! worker's batch path (same mapping, quarantine and lake writes), with a checkpoint
//! of completed prefixes so an interrupted replay resumes without redoing or skipping
//! anything; or, with `--enqueue`, the objects sent to an SQS queue for a fleet.
//!
//! A day prefix is one batch and is flushed whole, so the files it yields are a
//! function of its objects alone: replaying a range again writes the same files, not
//! duplicate rows.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::plan::{DayPrefix, PlanFilter, objects, plan};
use crate::quarantine::write_atomic;
use crate::store::{StoreError, parse_s3_uri, sdk_error};
use crate::worker::{Clients, WorkerConfig, WorkerError, process_batch};

/// Keys per enqueued message: a failure retries the whole message, so keep it small.
const KEYS_PER_MESSAGE: usize = 10;

/// Why an S3 replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum S3ReplayError {
    /// Listing, the checkpoint or the queue failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch path failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// Where the checkpoint lives.
#[derive(Debug, Clone)]
pub enum CheckpointLocation {
    /// A local file.
    File(PathBuf),
    /// `s3://bucket/key`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

impl CheckpointLocation {
    /// `s3://bucket/key` or a path.
    pub fn parse(s: &str) -> Self {
        match parse_s3_uri(s) {
            Some((bucket, key)) => CheckpointLocation::S3 {
                bucket,
                key: key.trim_end_matches('/').to_string(),
            },
            None => CheckpointLocation::File(PathBuf::from(s)),
        }
    }
}

/// The checkpoint: day prefixes fully processed (or enqueued).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `s3://bucket/prefix/` of each completed day.
    pub done: BTreeSet<String>,
}

async fn load(loc: &CheckpointLocation, clients: &Clients) -> Result<Checkpoint, StoreError> {
    let bytes = match loc {
        CheckpointLocation::File(p) => match std::fs::read(p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoint::default()),
            Err(e) => {
                return Err(StoreError {
                    op: "read",
                    location: p.display().to_string(),
                    message: e.to_string(),
                });
            }
        },
        CheckpointLocation::S3 { bucket, key } => {
            match clients.s3.get_object().bucket(bucket).key(key).send().await {
                Ok(o) => o
                    .body
                    .collect()
                    .await
                    .map_err(|e| StoreError {
                        op: "get",
                        location: format!("s3://{bucket}/{key}"),
                        message: e.to_string(),
                    })?
                    .into_bytes()
                    .to_vec(),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    return Ok(Checkpoint::default());
                }
                Err(e) => {
                    return Err(sdk_error("get", format!("s3://{bucket}/{key}"), e));
                }
            }
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| StoreError {
        op: "read",
        location: format!("{loc:?}"),
        message: format!("not a trailhouse checkpoint: {e}"),
    })
}

async fn save(
    loc: &CheckpointLocation,
    clients: &Clients,
    cp: &Checkpoint,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(cp).unwrap_or_default();
    match loc {
        CheckpointLocation::File(p) => write_atomic(p, &bytes).map_err(|e| StoreError {
            op: "write",
            location: p.display().to_string(),
            message: e.to_string(),
        }),
        CheckpointLocation::S3 { bucket, key } => clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("put", format!("s3://{bucket}/{key}"), e)),
    }
}

/// How an S3 replay runs.
#[derive(Debug, Clone, Default)]
pub struct S3ReplayOptions {
    /// What to replay.
    pub filter: PlanFilter,
    /// Where completed day prefixes are recorded.
    pub checkpoint: Option<CheckpointLocation>,
    /// Send the objects to this queue instead of processing them.
    pub enqueue: Option<String>,
}

/// What an S3 replay did.
#[derive(Debug, Default, Serialize)]
pub struct S3ReplayReport {
    /// Day prefixes planned.
    pub days_planned: u64,
    /// Day prefixes skipped as already done (checkpoint).
    pub days_skipped: u64,
    /// Day prefixes completed in this run.
    pub days_done: u64,
    /// Day prefixes with objects that failed (left for the next run).
    pub days_failed: u64,
    /// Objects listed.
    pub objects: u64,
    /// Bytes of the objects listed.
    pub bytes: u64,
    /// Messages enqueued (with `enqueue`).
    pub messages_enqueued: u64,
    /// Objects that failed (S3 errors).
    pub objects_failed: Vec<String>,
}

/// Replays `source` (`s3://bucket[/prefix]`).
pub async fn replay_s3(
    source: &str,
    cfg: &WorkerConfig,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    opts: &S3ReplayOptions,
) -> Result<S3ReplayReport, S3ReplayError> {
    let (bucket, base) = parse_s3_uri(source).ok_or_else(|| StoreError {
        op: "parse",
        location: source.to_string(),
        message: "expected s3://bucket[/prefix]".into(),
    })?;
    let days = plan(&clients.s3, &bucket, &base, &opts.filter).await?;
    let mut report = S3ReplayReport {
        days_planned: days.len() as u64,
        ..S3ReplayReport::default()
    };
    let mut checkpoint = match &opts.checkpoint {
        Some(loc) => load(loc, clients).await?,
        None => Checkpoint::default(),
    };
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    for (i, day) in days.iter().enumerate() {
        let id = format!("s3://{bucket}/{}", day.prefix);
        if checkpoint.done.contains(&id) {
            report.days_skipped += 1;
            continue;
        }
        let listed = objects(&clients.s3, &bucket, &day.prefix).await?;
        report.objects += listed.len() as u64;
        report.bytes += listed.iter().map(|(_, s)| s).sum::<u64>();
        let ok = match &opts.enqueue {
            Some(queue) => {
                report.messages_enqueued += enqueue(clients, queue, &bucket, &listed).await?;
                true
            }
            None => process_day(cfg, clients, metrics, &bucket, day, &listed, &mut report).await?,
        };
        if ok {
            report.days_done += 1;
            checkpoint.done.insert(id);
            if let Some(loc) = &opts.checkpoint {
                save(loc, clients, &checkpoint).await?;
            }
        } else {
            report.days_failed += 1;
        }
        if progress {
            let s = metrics.summary();
            let elapsed = started.elapsed().as_secs_f64().max(0.001);
            let done = (i + 1) as f64;
            let eta = elapsed / done * (days.len() as f64 - done);
            eprint!(
                "\r{}/{} days  {} objects  {:.1} MB  {:.0} records/s  ETA {:.0}s   ",
                i + 1,
                days.len(),
                report.objects,
                report.bytes as f64 / 1e6,
                s.records_read as f64 / elapsed,
                eta
            );
        }
    }
    if progress {
        eprintln!();
    }
    Ok(report)
}

async fn process_day(
    cfg: &WorkerConfig,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    bucket: &str,
    day: &DayPrefix,
    listed: &[(String, u64)],
    report: &mut S3ReplayReport,
) -> Result<bool, S3ReplayError> {
    // Each object as a CloudTrail-notification-shaped message, keyed by its key.
    let messages: Vec<(String, String)> = listed
        .iter()
        .map(|(k, _)| {
            (
                k.clone(),
                serde_json::json!({"s3Bucket": bucket, "s3ObjectKey": [k]}).to_string(),
            )
        })
        .collect();
    if messages.is_empty() {
        return Ok(true);
    }
    tracing::debug!(prefix = %day.prefix, objects = messages.len(), "replaying day");
    let outcomes = process_batch(cfg, clients, metrics, messages, true).await?;
    if !outcomes.failed.is_empty() {
        tracing::error!(prefix = %format!("s3://{bucket}/{}", day.prefix), "the day had failed objects: nothing of it was written; it will be replayed whole next run");
    }
    let ok = outcomes.failed.is_empty() && outcomes.discarded.is_empty();
    report.objects_failed.extend(
        outcomes
            .failed
            .into_iter()
            .map(|k| format!("s3://{bucket}/{k}")),
    );
    Ok(ok)
}

async fn enqueue(
    clients: &Clients,
    queue: &str,
    bucket: &str,
    listed: &[(String, u64)],
) -> Result<u64, StoreError> {
    let bodies: Vec<String> = listed
        .chunks(KEYS_PER_MESSAGE)
        .map(|keys| serde_json::json!({"s3Bucket": bucket, "s3ObjectKey": keys.iter().map(|(k, _)| k).collect::<Vec<_>>()}).to_string())
        .collect();
    let mut sent = 0;
    for batch in bodies.chunks(10) {
        let entries: Vec<_> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(b)
                    .build()
                    .ok()
            })
            .collect();
        let out = clients
            .sqs
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("send", queue.to_string(), e))?;
        if let Some(f) = out.failed.first() {
            return Err(StoreError {
                op: "send",
                location: queue.to_string(),
                message: format!("{}: {}", f.code, f.message.clone().unwrap_or_default()),
            });
        }
        sent += out.successful.len() as u64;
    }
    Ok(sent)
}
