//! `trailhouse run`: the streaming worker. SQS delivers notifications of new trail
//! objects; each object is streamed from S3 through the same processor as replay; rows
//! wait in partition buffers shared by all objects until a flush by size, age, memory
//! or shutdown; a message is deleted only when every row of every object it named is
//! durable (or quarantined). Messages in flight are kept invisible by a heartbeat.
//!
//! Tasks: a receiver (long polls, parses, starts object tasks under a concurrency
//! bound), object tasks (fetch, then map on the blocking pool), and one aggregator
//! that owns the buffers and the [`AckLedger`] and runs flushes, deletes and the
//! heartbeat. Channels are bounded; buffered bytes stop the receiver.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client as S3Client;
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;
use tokio_util::sync::CancellationToken;
use trailhouse_cloudtrail::{KeyKind, classify_key};
use trailhouse_lake::{
    FlushPolicy, Layout, PartitionBuffers, PartitionKey, Pending, WriteOptions, encode_partition,
};

use crate::ledger::{AckLedger, BufferId, MessageId, Settled};
use crate::metrics::{Metrics, add};
use crate::notification::{Notification, ObjectRef, parse};
use crate::process::{ObjectEvent, ObjectOutcome, ObjectProcessor, Part};
use crate::quarantine::{QUARANTINE_DIR, record_line, safe_name};
use crate::store::{Lake, sdk_error_message};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The SQS queue receiving the notifications.
    pub queue_url: String,
    /// Bucket layout of the lake.
    pub layout: Layout,
    /// Objects processed at once.
    pub concurrency: usize,
    /// Flush policy (`max_age_ms` is the flush interval).
    pub flush: FlushPolicy,
    /// Parquet settings.
    pub write: WriteOptions,
    /// Visibility given to messages while they are in flight (re-extended by the
    /// heartbeat).
    pub visibility_timeout: Duration,
    /// How often the heartbeat extends visibility.
    pub heartbeat_interval: Duration,
    /// Long-poll wait of ReceiveMessage.
    pub wait_time: Duration,
    /// Bound on the time spent finishing in-flight objects at shutdown.
    pub shutdown_timeout: Duration,
    /// Stop (after flushing) when no message arrived for this long.
    pub idle_exit: Option<Duration>,
    /// Rows per mapped chunk.
    pub chunk_rows: usize,
}

impl WorkerConfig {
    /// A configuration for batches handled to their end (Lambda, replay days): no
    /// queue to poll, no heartbeat, no age-based flushes.
    pub fn batch(
        layout: Layout,
        concurrency: usize,
        flush: FlushPolicy,
        write: WriteOptions,
    ) -> Self {
        WorkerConfig {
            queue_url: String::new(),
            layout,
            concurrency: concurrency.max(1),
            flush: FlushPolicy {
                max_age_ms: None,
                ..flush
            },
            write,
            visibility_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(3600),
            wait_time: Duration::ZERO,
            shutdown_timeout: Duration::ZERO,
            idle_exit: None,
            chunk_rows: 4096,
        }
    }
}

/// Why the worker stopped with an error (bad input never does).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue could not be read at all (wrong URL, no permission).
    #[error("receiving from {queue}: {message}")]
    Receive {
        /// The queue URL.
        queue: String,
        /// The SDK's error.
        message: String,
    },
    /// A task of the worker stopped unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

enum AggMsg {
    Register {
        id: MessageId,
        receipt: String,
        objects: usize,
    },
    /// Mapped rows; each part's tags are the messages whose objects' rows it holds.
    Rows(Vec<Part>),
    /// An object of the message ended with rows still in a processor
    /// ([`ObjectEvent::Carried`]): one more `ObjectDone` to wait for, sent when they
    /// are handed out.
    Hold {
        id: MessageId,
    },
    ObjectDone {
        id: MessageId,
        ok: bool,
    },
    FlushDone {
        buffer: BufferId,
        bytes: usize,
        result: Result<(), String>,
    },
    /// Flush everything and stop. With `all_or_nothing`, if any message failed or
    /// `unregistered` is set, the buffers are dropped instead (every message is then
    /// reported failed): a replay day is written whole or not at all.
    Drain {
        all_or_nothing: bool,
        unregistered: bool,
    },
}

/// How settled messages are acknowledged.
#[derive(Clone)]
pub enum Acknowledge {
    /// The worker: delete durable messages from the queue, keep the rest invisible
    /// with the heartbeat, make abandoned ones visible again at shutdown.
    Sqs,
    /// Lambda: only report; the event source mapping deletes what succeeded and
    /// retries the `batchItemFailures`.
    Report(Arc<std::sync::Mutex<Outcomes>>),
}

/// Messages (by the id they were registered with) that succeeded or failed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcomes {
    /// Every row durable: may be deleted.
    pub succeeded: Vec<String>,
    /// Something failed: must come back.
    pub failed: Vec<String>,
    /// Nothing failed, but their batch was dropped because another message of it
    /// failed (`all_or_nothing`): must come back too.
    pub discarded: Vec<String>,
}

/// Clients and shared state of one worker.
#[derive(Clone)]
pub struct Clients {
    /// S3 client for the trail objects.
    pub s3: S3Client,
    /// SQS client.
    pub sqs: SqsClient,
    /// The lake.
    pub lake: Lake,
}

/// Runs the worker until `stop` is cancelled (SIGTERM/SIGINT) or, with `idle_exit`,
/// until the queue stays empty; then flushes everything and deletes what is durable.
pub async fn run(
    cfg: WorkerConfig,
    clients: Clients,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> Result<(), WorkerError> {
    let (agg_tx, agg_rx) = mpsc::channel::<AggMsg>(64);
    let aggregator = tokio::spawn(aggregate(
        cfg.clone(),
        clients.clone(),
        metrics.clone(),
        agg_rx,
        agg_tx.clone(),
        Acknowledge::Sqs,
    ));
    let carry = Arc::new(Carry::new(cfg.chunk_rows, cfg.concurrency));
    // Rows wait in idle processors for the next objects at most this long.
    let swept = CancellationToken::new();
    let sweeper = tokio::spawn({
        let (carry, agg, swept) = (carry.clone(), agg_tx.clone(), swept.clone());
        let every = carry_interval(&cfg.flush);
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = swept.cancelled() => break,
                    _ = tick.tick() => {
                        if carry.finish(&agg).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    let received = receive(&cfg, &clients, &metrics, &stop, &agg_tx, &carry).await;
    swept.cancel();
    let _ = sweeper.await;
    // Whatever ended receiving, drain: hand out carried rows, flush what is
    // buffered, delete what is durable.
    let _ = carry.finish(&agg_tx).await;
    let _ = agg_tx
        .send(AggMsg::Drain {
            all_or_nothing: false,
            unregistered: false,
        })
        .await;
    drop(agg_tx);
    let drained = aggregator
        .await
        .map_err(|e| WorkerError::Internal(format!("aggregator: {e}")))?;
    received?;
    drained
}

async fn receive(
    cfg: &WorkerConfig,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
    agg: &mpsc::Sender<AggMsg>,
    carry: &Arc<Carry>,
) -> Result<(), WorkerError> {
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut next_id: MessageId = 0;
    let mut last_message = Instant::now();
    let mut consecutive_errors = 0u32;
    let result = loop {
        if stop.is_cancelled() {
            break Ok(());
        }
        if let Some(idle) = cfg.idle_exit
            && last_message.elapsed() >= idle
            && tasks.is_empty()
        {
            tracing::info!(idle_secs = idle.as_secs_f64(), "queue idle, stopping");
            break Ok(());
        }
        // Backpressure: while buffers are full, stop taking new work.
        if metrics.buffer_bytes.load(Ordering::Relaxed) as usize > cfg.flush.max_buffer_bytes
            || permits.available_permits() == 0
        {
            tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
            continue;
        }
        while tasks.try_join_next().is_some() {}
        let mut wait = cfg.wait_time.as_secs().min(20) as i32;
        if let Some(idle) = cfg.idle_exit {
            wait = wait.min(idle.as_secs().max(1) as i32);
        }
        let req = clients
            .sqs
            .receive_message()
            .queue_url(&cfg.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .visibility_timeout(cfg.visibility_timeout.as_secs().max(1) as i32)
            .send();
        let resp = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            r = req => r,
        };
        let resp = match resp {
            Ok(r) => {
                consecutive_errors = 0;
                r
            }
            Err(e) => {
                let message = sdk_error_message(&e);
                consecutive_errors += 1;
                tracing::warn!(queue = %cfg.queue_url, error = %message, "receive failed");
                if consecutive_errors >= 10 {
                    break Err(WorkerError::Receive {
                        queue: cfg.queue_url.clone(),
                        message,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(consecutive_errors)))
                    .await;
                continue;
            }
        };
        for m in resp.messages.unwrap_or_default() {
            last_message = Instant::now();
            add(&metrics.messages_received, 1);
            let (Some(receipt), body) = (m.receipt_handle, m.body.unwrap_or_default()) else {
                continue;
            };
            let message_id = m.message_id.unwrap_or_default();
            let id = next_id;
            next_id += 1;
            let ctx = Dispatch {
                clients,
                metrics,
                agg,
                permits: &permits,
                stop,
                carry,
            };
            dispatch(&ctx, id, receipt, &message_id, &body, &mut tasks).await?;
        }
    };
    // Let in-flight objects finish, within the shutdown bound.
    let finish = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(cfg.shutdown_timeout, finish)
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown timeout: abandoning objects in flight; their messages will reappear"
        );
        tasks.abort_all();
    }
    result
}

/// What handling a message needs.
struct Dispatch<'a> {
    clients: &'a Clients,
    metrics: &'a Arc<Metrics>,
    agg: &'a mpsc::Sender<AggMsg>,
    permits: &'a Arc<Semaphore>,
    stop: &'a CancellationToken,
    carry: &'a Arc<Carry>,
}

/// The worker's processors, kept from one object to the next so that their rows run
/// on in one chunk ([`ObjectProcessor::carry_rows`]): a trail's objects are mostly
/// small (a few records in a quiet region), and a chunk per object would make each a
/// few-row batch per partition, whose fixed costs (arrays to build, buffer, sort,
/// write and free) outweigh its rows many times over.
///
/// An object whose last rows stay in a processor holds its message
/// ([`AggMsg::Hold`]) until the processor hands them out: when its chunk fills, or at
/// [`finish`](Self::finish), which the streaming worker calls every
/// [`carry_interval`] and a batch (Lambda, a replay day) after its last object.
struct Carry {
    idle: std::sync::Mutex<Vec<ObjectProcessor>>,
    chunk_rows: usize,
    /// Idle processors kept at most (the concurrency); more are finished and dropped.
    keep: usize,
}

impl Carry {
    fn new(chunk_rows: usize, keep: usize) -> Self {
        Carry {
            idle: std::sync::Mutex::new(Vec::new()),
            chunk_rows,
            keep: keep.max(1),
        }
    }

    /// The idle processors. The list is valid whatever a panicking thread left, so a
    /// poisoned lock is taken as it is: its processors hold rows.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<ObjectProcessor>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle processor, or a new one.
    fn take(&self) -> ObjectProcessor {
        self.idle().pop().unwrap_or_else(|| {
            let mut p = ObjectProcessor::with_chunk_rows(self.chunk_rows);
            p.carry_rows = true;
            // The partition buffers hold rows over many chunks: a mix of many
            // partitions waits there as JSON rather than as batches of a row or two.
            p.sparse = true;
            p
        })
    }

    /// Returns a processor after an object (on the blocking pool); one beyond `keep`
    /// hands out its rows and is dropped.
    fn put(&self, mut processor: ObjectProcessor, agg: &mpsc::Sender<AggMsg>) {
        let mut idle = self.idle();
        if idle.len() < self.keep {
            idle.push(processor);
            return;
        }
        drop(idle);
        let _ = processor.finish(&mut |ev| forward(agg, ev));
    }

    /// Hands out the rows of the idle processors (a failure releases their objects
    /// failed) and keeps the processors.
    async fn finish(self: &Arc<Self>, agg: &mpsc::Sender<AggMsg>) -> Result<(), WorkerError> {
        let (tx, carry) = (agg.clone(), self.clone());
        tokio::task::spawn_blocking(move || {
            let mut finished = std::mem::take(&mut *carry.idle());
            for processor in &mut finished {
                let _ = processor.finish(&mut |ev| forward(&tx, ev));
            }
            let mut idle = carry.idle();
            finished.truncate(carry.keep.saturating_sub(idle.len()));
            idle.append(&mut finished);
        })
        .await
        .map_err(|e| WorkerError::Internal(format!("handing out carried rows: {e}")))
    }
}

/// How long rows may wait in an idle processor in the streaming worker: a thirtieth of
/// the flush interval, between 0.25 and 10 s, so that they reach their partition's
/// buffer a little later than without carrying, and in far fewer, larger batches.
fn carry_interval(flush: &FlushPolicy) -> Duration {
    let interval = flush
        .max_age_ms
        .map_or(Duration::from_secs(10), |ms| Duration::from_millis(ms / 30));
    interval.clamp(Duration::from_millis(250), Duration::from_secs(10))
}

/// Sends a processor's event to the aggregator (on the blocking pool). Bad records
/// are the object task's to quarantine, not the aggregator's (and `finish`, the only
/// other source of events, makes none).
fn forward(agg: &mpsc::Sender<AggMsg>, ev: ObjectEvent) {
    match ev {
        ObjectEvent::Rows(parts) => {
            let _ = agg.blocking_send(AggMsg::Rows(parts));
        }
        ObjectEvent::Carried(id) => {
            let _ = agg.blocking_send(AggMsg::Hold { id });
        }
        ObjectEvent::Released { tags, error } => {
            if let Some(reason) = &error {
                tracing::error!(%reason, messages = tags.len(), "rows of earlier objects were lost; their messages fail");
            }
            let ok = error.is_none();
            for id in tags {
                let _ = agg.blocking_send(AggMsg::ObjectDone { id, ok });
            }
        }
        ObjectEvent::BadRecord { .. } => {}
    }
}

/// Handles one message: registers it with the aggregator (under `receipt`, the
/// string it is settled by) and starts a task per object. Returns false when the
/// message could not even be registered (its quarantine write failed): it must come
/// back.
async fn dispatch(
    d: &Dispatch<'_>,
    id: MessageId,
    receipt: String,
    message_id: &str,
    body: &str,
    tasks: &mut JoinSet<()>,
) -> Result<bool, WorkerError> {
    // Test events and quarantined bodies are messages with no objects: they settle
    // as soon as they are registered.
    let objects = match parse(body) {
        Notification::TestEvent => {
            add(&d.metrics.test_events, 1);
            Vec::new()
        }
        Notification::Unrecognized(reason) => {
            tracing::warn!(message_id = %message_id, %reason, "unrecognized message quarantined");
            let note =
                serde_json::json!({"message_id": message_id, "reason": reason, "body": body});
            // SQS message ids are UUIDs; anything else is reduced to a safe name.
            let safe = !message_id.is_empty()
                && message_id.len() <= 128
                && message_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let name = if safe {
                message_id.to_string()
            } else {
                safe_name(message_id)
            };
            let rel = format!("{QUARANTINE_DIR}/messages/{name}.json");
            let bytes = serde_json::to_vec_pretty(&note).unwrap_or_default();
            if let Err(e) = d.clients.lake.overwrite(&rel, bytes).await {
                // Not durable: leave the message to come back.
                tracing::error!(message_id = %message_id, error = %e, "cannot quarantine message");
                return Ok(false);
            }
            add(&d.metrics.messages_quarantined, 1);
            Vec::new()
        }
        Notification::Objects(objects) => objects,
    };
    send(
        d.agg,
        AggMsg::Register {
            id,
            receipt,
            objects: objects.len(),
        },
    )
    .await?;
    for obj in objects {
        let permit = tokio::select! {
            _ = d.stop.cancelled() => None,
            p = d.permits.clone().acquire_owned() => p.ok(),
        };
        let (agg, clients, metrics, carry) = (
            d.agg.clone(),
            d.clients.clone(),
            d.metrics.clone(),
            d.carry.clone(),
        );
        tasks.spawn(async move {
            let ok = match permit {
                Some(_permit) => process_object(&obj, &clients, &metrics, &agg, id, carry).await,
                // Shutting down: the object is left for the message's return.
                None => false,
            };
            let _ = agg.send(AggMsg::ObjectDone { id, ok }).await;
        });
    }
    Ok(true)
}

/// Processes one batch of messages to the end and reports which succeeded: the
/// Lambda handler, and one day of a replay. Everything is flushed before it returns
/// (a Lambda invocation keeps no buffers). With `all_or_nothing`, a batch in which
/// anything failed writes nothing (rows flushed early under memory pressure aside)
/// and every message is reported failed, so redoing it cannot duplicate rows.
pub async fn process_batch(
    cfg: &WorkerConfig,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    messages: Vec<(String, String)>,
    all_or_nothing: bool,
) -> Result<Outcomes, WorkerError> {
    let outcomes = Arc::new(std::sync::Mutex::new(Outcomes::default()));
    let (agg_tx, agg_rx) = mpsc::channel::<AggMsg>(64);
    let aggregator = tokio::spawn(aggregate(
        cfg.clone(),
        clients.clone(),
        metrics.clone(),
        agg_rx,
        agg_tx.clone(),
        Acknowledge::Report(outcomes.clone()),
    ));
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut unregistered = Vec::new();
    let carry = Arc::new(Carry::new(cfg.chunk_rows, cfg.concurrency));
    for (i, (message_id, body)) in messages.into_iter().enumerate() {
        add(&metrics.messages_received, 1);
        let d = Dispatch {
            clients,
            metrics,
            agg: &agg_tx,
            permits: &permits,
            stop: &stop,
            carry: &carry,
        };
        let id = i as MessageId;
        if !dispatch(&d, id, message_id.clone(), &message_id, &body, &mut tasks).await? {
            unregistered.push(message_id);
        }
    }
    while tasks.join_next().await.is_some() {}
    carry.finish(&agg_tx).await?;
    send(
        &agg_tx,
        AggMsg::Drain {
            all_or_nothing,
            unregistered: !unregistered.is_empty(),
        },
    )
    .await?;
    drop(agg_tx);
    aggregator
        .await
        .map_err(|e| WorkerError::Internal(format!("aggregator: {e}")))??;
    let mut out = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    out.failed.extend(unregistered);
    add(&metrics.messages_deleted, out.succeeded.len() as u64);
    Ok(out)
}

async fn send(agg: &mpsc::Sender<AggMsg>, m: AggMsg) -> Result<(), WorkerError> {
    agg.send(m)
        .await
        .map_err(|_| WorkerError::Internal("aggregator stopped".into()))
}

/// A CloudTrail Insights file into the findings table (or quarantine). Whether the
/// outcome is durable; false lets the message come back.
async fn ingest_insights(obj: &ObjectRef, clients: &Clients, metrics: &Arc<Metrics>) -> bool {
    let location = format!("s3://{}/{}", obj.bucket, obj.key);
    let got = clients
        .s3
        .get_object()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .send()
        .await;
    let bytes = match got {
        Ok(r) => match r.body.collect().await {
            Ok(b) => b.into_bytes(),
            Err(e) => {
                add(&metrics.objects_failed, 1);
                tracing::error!(object = %location, error = %e, "cannot read Insights file; its message will be retried");
                return false;
            }
        },
        Err(e) => {
            add(&metrics.objects_failed, 1);
            tracing::error!(object = %location, error = %sdk_error_message(&e), "cannot fetch Insights file; its message will be retried");
            return false;
        }
    };
    add(&metrics.bytes_in, bytes.len() as u64);
    match crate::insights::ingest_insight_file(&clients.lake, bytes).await {
        Ok(Ok(rows)) => {
            add(&metrics.findings_written, rows);
            add(&metrics.files_written, rows);
            true
        }
        Ok(Err(reason)) => quarantine(obj, clients, metrics, &reason, 0).await,
        Err(e) => {
            tracing::error!(object = %location, error = %e, "cannot write findings; the message will be retried");
            false
        }
    }
}

/// Copies an object that cannot be read to its end into quarantine with its reason.
/// Whether that is durable; false lets the message come back.
async fn quarantine(
    obj: &ObjectRef,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    reason: &str,
    records: u64,
) -> bool {
    let location = format!("s3://{}/{}", obj.bucket, obj.key);
    tracing::warn!(object = %location, %reason, records_before_error = records, "object quarantined");
    match clients
        .lake
        .quarantine_object(&clients.s3, obj, reason, records)
        .await
    {
        Ok(()) => {
            add(&metrics.objects_quarantined, 1);
            true
        }
        Err(e) => {
            tracing::error!(object = %location, error = %e, "cannot quarantine object; the message will be retried");
            false
        }
    }
}

/// Fetches and maps one object with one of `carry`'s processors. Returns whether its
/// outcome is durable-or-pending (true) or must be retried through the message
/// (false).
async fn process_object(
    obj: &ObjectRef,
    clients: &Clients,
    metrics: &Arc<Metrics>,
    agg: &mpsc::Sender<AggMsg>,
    id: MessageId,
    carry: Arc<Carry>,
) -> bool {
    let location = format!("s3://{}/{}", obj.bucket, obj.key);
    match classify_key(&obj.key) {
        KeyKind::Digest(_) => {
            add(&metrics.objects_skipped_digest, 1);
            return true;
        }
        KeyKind::Insight(_) => {
            add(&metrics.objects_skipped_insight, 1);
            return ingest_insights(obj, clients, metrics).await;
        }
        _ => {}
    }
    let resp = match clients
        .s3
        .get_object()
        .bucket(&obj.bucket)
        .key(&obj.key)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            add(&metrics.objects_failed, 1);
            tracing::error!(object = %location, error = %sdk_error_message(&e), "cannot fetch object; its message will be retried");
            return false;
        }
    };
    let size = resp.content_length().unwrap_or(0).max(0) as u64;
    add(&metrics.bytes_in, size);
    let transport = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = TransportWatch {
        inner: SyncIoBridge::new(resp.body.into_async_read()),
        failed: transport.clone(),
    };
    let key = obj.key.clone();
    let agg = agg.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let mut processor = carry.take();
        processor.tag = id;
        processor.expect_bytes(size);
        let mut bad = Vec::new();
        let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            processor.process(&key, reader, &mut |ev| match ev {
                ObjectEvent::BadRecord {
                    index,
                    reason,
                    bytes,
                } => bad.push((index, reason, bytes)),
                ev => forward(&agg, ev),
            })
        }));
        match mapped {
            Ok(outcome) => {
                carry.put(processor, &agg);
                (outcome, bad)
            }
            Err(panic) => {
                // The processor goes, with the rows of earlier objects in it: their
                // messages fail too, rather than wait forever.
                let tags = processor.take_owed();
                if !tags.is_empty() {
                    let error = Some(format!("mapping {key} panicked"));
                    forward(&agg, ObjectEvent::Released { tags, error });
                }
                std::panic::resume_unwind(panic)
            }
        }
    });
    let (outcome, bad) = match handle.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(object = %location, error = %e, "processing task failed");
            return false;
        }
    };
    if transport.load(Ordering::Relaxed) {
        add(&metrics.objects_failed, 1);
        tracing::error!(object = %location, "connection to S3 failed while reading; the message will be retried");
        return false;
    }
    if !bad.is_empty() {
        let lines: Vec<u8> = bad
            .iter()
            .flat_map(|(index, reason, bytes)| record_line(&location, *index, reason, bytes))
            .collect();
        let rel = format!(
            "{QUARANTINE_DIR}/records/{}.jsonl",
            safe_name(&format!("{}/{}", obj.bucket, obj.key))
        );
        if let Err(e) = clients.lake.overwrite(&rel, lines).await {
            tracing::error!(object = %location, error = %e, "cannot quarantine records; the message will be retried");
            return false;
        }
        add(&metrics.records_quarantined, bad.len() as u64);
    }
    match outcome {
        ObjectOutcome::Complete { records, .. } => {
            add(&metrics.objects_processed, 1);
            add(&metrics.records_read, records);
            true
        }
        ObjectOutcome::Skipped(_) => true,
        ObjectOutcome::Failed {
            reason, records, ..
        } => {
            add(&metrics.records_read, records);
            quarantine(obj, clients, metrics, &reason, records).await
        }
    }
}

/// Remembers whether the underlying transport failed, so a dropped connection is
/// retried rather than taken for a corrupt object.
struct TransportWatch<R> {
    inner: R,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl<R: std::io::Read> std::io::Read for TransportWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|_| self.failed.store(true, Ordering::Relaxed))
    }
}

async fn aggregate(
    cfg: WorkerConfig,
    clients: Clients,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<AggMsg>,
    tx: mpsc::Sender<AggMsg>,
    ack: Acknowledge,
) -> Result<(), WorkerError> {
    let mut buffers = PartitionBuffers::new(cfg.flush.clone());
    let mut ledger = AckLedger::new();
    let mut flushes: HashSet<BufferId> = HashSet::new();
    let mut flushing_bytes = 0usize;
    let mut side_tasks = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let started = Instant::now();
    let mut last_heartbeat = Instant::now();
    let mut draining = false;
    // Whether any object of this run failed (for all-or-nothing batches).
    let mut any_object_failed = false;
    // The aggregator keeps a sender of its own for its flush tasks: the channel never
    // closes under it, and the loop ends only when draining is complete.

    let start_flush = |key: PartitionKey,
                       pending: Pending,
                       ledger: &mut AckLedger,
                       flushes: &mut HashSet<BufferId>,
                       flushing_bytes: &mut usize,
                       side: &mut JoinSet<()>| {
        let buffer = ledger.flushing(&key);
        flushes.insert(buffer.clone());
        *flushing_bytes += pending.bytes;
        let (lake, metrics, write, layout) = (
            clients.lake.clone(),
            metrics.clone(),
            cfg.write.clone(),
            cfg.layout,
        );
        let trim_budget = crate::malloc::trim_budget(cfg.flush.max_buffer_bytes);
        let tx = tx.clone();
        side.spawn(async move {
            let bytes = pending.bytes;
            let result = flush(&key, pending, layout, &write, trim_budget, &lake, &metrics).await;
            let _ = tx
                .send(AggMsg::FlushDone {
                    buffer,
                    bytes,
                    result,
                })
                .await;
        });
    };

    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = tick.tick() => {
                // Age-based flushes and the visibility heartbeat.
                let now = started.elapsed().as_millis() as u64;
                for (key, pending) in buffers.expired(now) {
                    start_flush(key, pending, &mut ledger, &mut flushes, &mut flushing_bytes, &mut side_tasks);
                }
                if matches!(ack, Acknowledge::Sqs) && last_heartbeat.elapsed() >= cfg.heartbeat_interval {
                    last_heartbeat = Instant::now();
                    let receipts = ledger.receipts();
                    if !receipts.is_empty() {
                        let (sqs, queue, vt) = (clients.sqs.clone(), cfg.queue_url.clone(), cfg.visibility_timeout);
                        side_tasks.spawn(async move { extend_visibility(&sqs, &queue, receipts, vt).await });
                    }
                }
                while side_tasks.try_join_next().is_some() {}
                metrics.buffer_bytes.store((buffers.total_bytes() + flushing_bytes) as u64, Ordering::Relaxed);
                metrics.messages_in_flight.store(ledger.in_flight() as u64, Ordering::Relaxed);
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let mut settled = Vec::new();
        match msg {
            AggMsg::Register {
                id,
                receipt,
                objects,
            } => settled.extend(ledger.register(id, receipt, objects)),
            AggMsg::Rows(parts) => {
                let now = started.elapsed().as_millis() as u64;
                for Part { key, rows, tags } in parts {
                    for id in tags {
                        ledger.rows(id, &key);
                    }
                    for (k, p) in buffers.add(key, rows, now) {
                        start_flush(
                            k,
                            p,
                            &mut ledger,
                            &mut flushes,
                            &mut flushing_bytes,
                            &mut side_tasks,
                        );
                    }
                }
            }
            AggMsg::Hold { id } => ledger.hold(id),
            AggMsg::ObjectDone { id, ok } => {
                any_object_failed |= !ok;
                settled.extend(if ok {
                    ledger.object_done(id)
                } else {
                    ledger.object_failed(id)
                });
            }
            AggMsg::FlushDone {
                buffer,
                bytes,
                result,
            } => {
                flushes.remove(&buffer);
                flushing_bytes -= bytes;
                let ok = match result {
                    Ok(()) => true,
                    Err(e) => {
                        add(&metrics.flush_failures, 1);
                        tracing::error!(partition = %buffer.0, error = %e, "flush failed; its messages will be retried");
                        false
                    }
                };
                settled.extend(ledger.flushed(&buffer, ok));
            }
            AggMsg::Drain {
                all_or_nothing,
                unregistered,
            } => {
                draining = true;
                if all_or_nothing && (unregistered || any_object_failed || ledger.any_failed()) {
                    let dropped: usize = buffers.drain().iter().map(|(_, p)| p.rows).sum();
                    add(&metrics.rows_discarded, dropped as u64);
                    tracing::warn!(
                        rows = dropped,
                        "batch had failures: nothing of it is written"
                    );
                    let failed = ledger.failed_receipts();
                    let mut discarded = Vec::new();
                    for s in ledger.release_all() {
                        let (Settled::Delete(r) | Settled::Release(r)) = s;
                        if failed.contains(&r) {
                            settled.push(Settled::Release(r));
                        } else {
                            discarded.push(r);
                        }
                    }
                    if let Acknowledge::Report(out) = &ack
                        && let Ok(mut o) = out.lock()
                    {
                        o.discarded.extend(discarded);
                    }
                }
                for (key, pending) in buffers.drain() {
                    start_flush(
                        key,
                        pending,
                        &mut ledger,
                        &mut flushes,
                        &mut flushing_bytes,
                        &mut side_tasks,
                    );
                }
            }
        }
        settle(&clients, &cfg, &metrics, &ack, settled, &mut side_tasks);
        metrics.buffer_bytes.store(
            (buffers.total_bytes() + flushing_bytes) as u64,
            Ordering::Relaxed,
        );
        metrics
            .messages_in_flight
            .store(ledger.in_flight() as u64, Ordering::Relaxed);
        if draining && flushes.is_empty() {
            // Late rows (objects that finished after the drain began) need a flush too.
            let late = buffers.drain();
            if late.is_empty() {
                break;
            }
            for (key, pending) in late {
                start_flush(
                    key,
                    pending,
                    &mut ledger,
                    &mut flushes,
                    &mut flushing_bytes,
                    &mut side_tasks,
                );
            }
        }
    }
    // Deletes first; then whatever is still pending (objects abandoned at the
    // shutdown bound) is made visible again at once rather than after its timeout.
    while side_tasks.join_next().await.is_some() {}
    let released: Vec<String> = ledger
        .release_all()
        .into_iter()
        .map(|s| match s {
            Settled::Delete(r) | Settled::Release(r) => r,
        })
        .collect();
    if !released.is_empty()
        && let Acknowledge::Report(out) = &ack
    {
        add(&metrics.messages_released, released.len() as u64);
        if let Ok(mut o) = out.lock() {
            o.failed.extend(released.iter().cloned());
        }
    } else if !released.is_empty() {
        add(&metrics.messages_released, released.len() as u64);
        tracing::warn!(
            messages = released.len(),
            "released unfinished messages for redelivery"
        );
        extend_visibility(&clients.sqs, &cfg.queue_url, released, Duration::ZERO).await;
    }
    metrics.messages_in_flight.store(0, Ordering::Relaxed);
    Ok(())
}

fn settle(
    clients: &Clients,
    cfg: &WorkerConfig,
    metrics: &Arc<Metrics>,
    ack: &Acknowledge,
    settled: Vec<Settled>,
    side: &mut JoinSet<()>,
) {
    if let Acknowledge::Report(out) = ack {
        if let Ok(mut o) = out.lock() {
            for s in settled {
                match s {
                    Settled::Delete(id) => o.succeeded.push(id),
                    Settled::Release(id) => {
                        add(&metrics.messages_released, 1);
                        o.failed.push(id);
                    }
                }
            }
        }
        return;
    }
    let mut deletes = Vec::new();
    for s in settled {
        match s {
            Settled::Delete(receipt) => deletes.push(receipt),
            Settled::Release(_) => add(&metrics.messages_released, 1),
        }
    }
    for chunk in deletes.chunks(10) {
        let (sqs, queue, metrics, chunk) = (
            clients.sqs.clone(),
            cfg.queue_url.clone(),
            metrics.clone(),
            chunk.to_vec(),
        );
        side.spawn(async move {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(r).build().ok())
                .collect();
            match sqs.delete_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await {
                Ok(out) => {
                    add(&metrics.messages_deleted, out.successful.len() as u64);
                    for f in out.failed {
                        tracing::warn!(id = %f.id, code = %f.code, "delete failed; the message may be delivered again");
                    }
                }
                Err(e) => tracing::warn!(error = %sdk_error_message(&e), "delete failed; the messages may be delivered again"),
            }
        });
    }
}

async fn extend_visibility(sqs: &SqsClient, queue: &str, receipts: Vec<String>, vt: Duration) {
    for chunk in receipts.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(vt.as_secs() as i32)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = sqs
            .change_message_visibility_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
        {
            tracing::warn!(error = %sdk_error_message(&e), "visibility heartbeat failed");
        }
    }
}

/// Encodes a partition (on the blocking pool) and writes its files to the lake.
/// `trim_budget`: see [`crate::malloc::trim_above`].
async fn flush(
    key: &PartitionKey,
    pending: Pending,
    layout: Layout,
    write: &WriteOptions,
    trim_budget: u64,
    lake: &Lake,
    metrics: &Metrics,
) -> Result<(), String> {
    let (k, w) = (key.clone(), write.clone());
    let encoded = tokio::task::spawn_blocking(move || {
        let encoded = pending
            .into_batches(&k)
            .and_then(|batches| encode_partition(&k, layout, &batches, &w));
        // The partition's batches are freed here (its files once written, below).
        crate::malloc::trim_above(trim_budget);
        encoded
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let mut rows = 0;
    let mut newest = i64::MIN;
    for f in encoded.files {
        let size = f.bytes.len() as u64;
        lake.put(&f.path, f.bytes)
            .await
            .map_err(|e| e.to_string())?;
        add(&metrics.files_written, 1);
        add(&metrics.bytes_out, size);
        rows += f.rows;
        newest = newest.max(f.time_range.1);
    }
    add(&metrics.flushes, 1);
    add(&metrics.duplicates_dropped, encoded.duplicates);
    metrics.add_rows(key.class().name(), rows);
    metrics.saw_event_time(newest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::{gz, three_days_of};
    use std::io::{Cursor, Read};
    use std::sync::atomic::AtomicBool;

    /// Yields its bytes, then fails as a dropped connection does.
    struct Dropped(Cursor<Vec<u8>>);

    impl Read for Dropped {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::ErrorKind::ConnectionReset.into()),
                n => Ok(n),
            }
        }
    }

    /// A large object is inflated on a thread of its own, which then also reads the
    /// connection: its failure must still be told apart from a truncated object (one
    /// is retried, the other quarantined).
    #[test]
    fn a_dropped_connection_is_told_from_a_truncated_object_inflating_ahead_or_not() {
        let full = gz(&three_days_of(3000));
        let half = full[..full.len() / 2].to_vec();
        for ahead in [false, true] {
            for dropped in [false, true] {
                let inner: Box<dyn Read + Send> = if dropped {
                    Box::new(Dropped(Cursor::new(half.clone())))
                } else {
                    Box::new(Cursor::new(half.clone()))
                };
                let failed = Arc::new(AtomicBool::new(false));
                let reader = TransportWatch {
                    inner,
                    failed: failed.clone(),
                };
                let mut p = ObjectProcessor::with_chunk_rows(100);
                p.inflate_ahead = ahead;
                let outcome = p.process("f.json.gz", reader, &mut |_| {});
                let case = format!("inflating ahead: {ahead}, connection dropped: {dropped}");
                let ObjectOutcome::Failed { records, .. } = outcome else {
                    panic!("{case}: {outcome:?}");
                };
                assert!(records > 0 && records < 3000, "{case}: {records}");
                assert_eq!(failed.load(Ordering::Relaxed), dropped, "{case}");
            }
        }
    }
}
