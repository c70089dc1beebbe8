//! CPU time of the batch path (`trailhouse lambda`, `replay s3://`) against an S3
//! endpoint, which must be an emulator:
//!
//! ```sh
//! moto_server -H 127.0.0.1 -p 5077 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:5077 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
//!   AWS_REGION=us-east-1 cargo run --profile profiling -p trailhouse-pipeline \
//!   --example batch_bench -- DIR [FILES [PER_BATCH]]
//! ```
//!
//! Uploads the first FILES log files of DIR (a folder of trail files, e.g. a corpus of
//! `replay_bench`) to a new bucket, then maps them with `process_batch` in batches of
//! PER_BATCH messages (100 by default), one S3 notification per object as Lambda gets
//! them, into a local lake, with the Lambda handler's settings. With PER_BATCH
//! `stream`, it sends the notifications to a new queue instead and runs the streaming
//! worker (`trailhouse run`'s defaults, stopping once the queue has been idle for 2 s).
//! Prints, for the mapping only, the wall time and this process's CPU time: the
//! emulator runs in its own process, so the CPU time is trailhouse's alone and the
//! figure to compare (the streaming worker's includes its SQS calls).

// The CLI's allocator and its settings, so that speed and peak RSS here are the CLI's.
trailhouse_pipeline::use_jemalloc!();

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use trailhouse_lake::{FlushPolicy, Layout, WriteOptions};
use trailhouse_pipeline::metrics::Metrics;
use trailhouse_pipeline::replay::discover;
use trailhouse_pipeline::store::Lake;
use trailhouse_pipeline::worker::{Clients, WorkerConfig, process_batch, run};

/// User + system CPU time of this process so far, in seconds (`/proc/self/stat`,
/// clock ticks of 1/100 s as Linux reports them).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f[i].parse::<f64>().expect("clock ticks");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: batch_bench DIR [FILES [PER_BATCH]]"),
    );
    let limit: usize = args
        .next()
        .map_or(usize::MAX, |n| n.parse().expect("FILES"));
    let mode = args.next().unwrap_or_else(|| "100".into());
    let per_batch: Option<usize> =
        (mode != "stream").then(|| mode.parse().expect("PER_BATCH: a number or `stream`"));
    let objects: Vec<_> = discover(std::slice::from_ref(&dir), None)
        .expect("listing DIR")
        .into_iter()
        .take(limit)
        .collect();

    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("batch-bench-{}", std::process::id());
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("creating the bucket (is AWS_ENDPOINT_URL an emulator?)");
    let mut uploads = tokio::task::JoinSet::new();
    let mut bytes_in = 0u64;
    for obj in &objects {
        let body = std::fs::read(&obj.path).expect("reading a trail file");
        bytes_in += body.len() as u64;
        let (s3, bucket, key) = (s3.clone(), bucket.clone(), obj.key.clone());
        uploads.spawn(async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send()
                .await
                .expect("upload")
        });
        while uploads.len() >= 16 {
            uploads.join_next().await;
        }
    }
    while uploads.join_next().await.is_some() {}

    let lake_dir = tempfile::tempdir().expect("temporary lake");
    let clients = Clients {
        s3: s3.clone(),
        sqs: aws_sdk_sqs::Client::new(&conf),
        lake: Lake::Local(lake_dir.path().to_path_buf()),
    };
    // As `trailhouse lambda` sets it up by default.
    let cfg = WorkerConfig::batch(
        Layout::default(),
        4,
        FlushPolicy {
            flush_bytes: 256 << 20,
            max_buffer_bytes: 256 << 20,
            max_age_ms: None,
        },
        WriteOptions::default(),
    );
    let metrics = Arc::new(Metrics::default());
    let notification = |key: &str| {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
        }]})
        .to_string()
    };
    let Some(per_batch) = per_batch else {
        let sqs = clients.sqs.clone();
        let queue_url = sqs
            .create_queue()
            .queue_name(&bucket)
            .send()
            .await
            .expect("creating the queue")
            .queue_url
            .expect("queue URL");
        for (n, batch) in objects.chunks(10).enumerate() {
            let entries = batch.iter().enumerate().map(|(i, obj)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{n}-{i}"))
                    .message_body(notification(&obj.key))
                    .build()
                    .expect("entry")
            });
            sqs.send_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .expect("sending notifications");
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // As `trailhouse run` sets it up by default, but for the idle exit.
        let cfg = WorkerConfig {
            queue_url,
            concurrency: 2 * cores,
            flush: FlushPolicy {
                flush_bytes: 96 << 20,
                max_buffer_bytes: 256 << 20,
                max_age_ms: Some(300_000),
            },
            visibility_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(100),
            wait_time: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(60),
            idle_exit: Some(Duration::from_secs(2)),
            ..WorkerConfig::batch(
                Layout::default(),
                1,
                FlushPolicy::default(),
                WriteOptions::default(),
            )
        };
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        run(cfg, clients, metrics.clone(), CancellationToken::new())
            .await
            .expect("worker");
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let s = metrics.summary();
        println!(
            "{} objects ({:.1} MB gzip) streamed: {} messages deleted, {} rows, {} files; \
             wall {wall:.2} s (2 s of it idle), CPU {cpu:.2} s ({:.2} ms per object)",
            objects.len(),
            bytes_in as f64 / 1e6,
            s.messages_deleted,
            s.rows_written.values().sum::<u64>(),
            s.files_written,
            cpu * 1e3 / objects.len().max(1) as f64,
        );
        return;
    };
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let mut failed = 0;
    for batch in objects.chunks(per_batch.max(1)) {
        let messages = batch
            .iter()
            .enumerate()
            .map(|(i, obj)| (format!("m{i}"), notification(&obj.key)))
            .collect();
        let out = process_batch(&cfg, &clients, &metrics, messages, false)
            .await
            .expect("batch");
        failed += out.failed.len();
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let s = metrics.summary();
    println!(
        "{} objects ({:.1} MB gzip) in batches of {per_batch}: {failed} failed, {} rows, {} files; \
         wall {wall:.2} s, CPU {cpu:.2} s ({:.2} ms per object)",
        objects.len(),
        bytes_in as f64 / 1e6,
        s.rows_written.values().sum::<u64>(),
        s.files_written,
        cpu * 1e3 / objects.len().max(1) as f64,
    );
}
