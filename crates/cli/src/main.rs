//! `trailhouse`: CloudTrail logs into an open OCSF security data lake in Amazon
//! Security Lake's layout. Thin glue over the library crates.

mod dashboard;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use trailhouse_lake::{FlushPolicy, Layout, WriteOptions};
use trailhouse_pipeline::convert::convert_local;
use trailhouse_pipeline::{ReplayOptions, replay_local};

#[derive(Parser)]
#[command(
    name = "trailhouse",
    version,
    about = "AWS CloudTrail → OCSF 1.1.0 → Security-Lake-compatible Parquet"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TRAILHOUSE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LayoutArg {
    /// Security Lake custom sources: ext/{SOURCE}_{CLASS}/1.0/region=…/accountId=…/eventDay=…/
    Ext,
    /// Security Lake's native layout: aws/{SOURCE}/2.0/region=…/accountId=…/eventDay=…/
    Native,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Layout {
        match l {
            LayoutArg::Ext => Layout::Ext,
            LayoutArg::Native => Layout::Native,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the streaming worker: SQS notifications of new CloudTrail objects in,
    /// the lake (S3 or a local folder) out, at least once, never lossy.
    Run(Box<RunArgs>),
    /// Run as an AWS Lambda function with an SQS event source (the same binary named
    /// `bootstrap` for the provided.al2023 runtime starts this). Reports
    /// `batchItemFailures` for exactly the messages whose objects were not made durable.
    Lambda(LambdaArgs),
    /// Replay CloudTrail log files (.json.gz or .json, files or folders searched
    /// recursively, e.g. an AWSLogs/ tree) into a lake.
    Replay(ReplayArgs),
    /// Convert CloudTrail log files to OCSF JSON Lines (one event per line).
    Convert {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Write a realistic synthetic CloudTrail tree (AWSLogs/… layout) for tests,
    /// demos and benchmarks, with a manifest of what a correct pipeline produces.
    Generate(GenerateArgs),
    /// Find unusual API call rates and error rates in the lake's management events,
    /// the way CloudTrail Insights does (7-day seasonal baselines), and write them to
    /// the lake as OCSF Detection Findings (and, if asked, as CloudTrail Insights files).
    Insights(InsightsArgs),
    /// Write one self-contained HTML page with the Insights dashboards CloudTrail
    /// Lake had and an activity overview of the lake.
    Dashboard(DashboardArgs),
    /// Run SQL on a lake (local folder or s3://bucket/prefix): one table per source
    /// folder, views by class (api_activity, authentication, account_change,
    /// cloudtrail), partition columns region, accountid, eventday.
    Query(QueryArgs),
    /// Benchmark baseline: read the files `replay` would read (the same gunzip and
    /// record reader) and parse each record as JSON, nothing more; prints a JSON
    /// summary. `bench/e2e.py` sets `replay` beside it.
    Floor {
        /// CloudTrail files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Print the Glue/Athena DDL for the lake's tables.
    Ddl {
        /// Layout of the lake.
        #[arg(long, value_enum, default_value = "ext")]
        layout: LayoutArg,
        /// Where the lake is, e.g. s3://my-lake-bucket/
        #[arg(long, default_value = "s3://YOUR-LAKE-BUCKET/")]
        location: String,
    },
}

/// The Parquet settings of every command that writes the lake.
#[derive(Args)]
struct ParquetArgs {
    /// Rows per Parquet file at most.
    #[arg(long, default_value_t = WriteOptions::default().max_file_rows)]
    max_file_rows: usize,
    /// zstd level of the Parquet files (the id and time columns use level 1 while
    /// this is at most 9: no larger there, and faster).
    #[arg(long, default_value_t = WriteOptions::default().zstd_level)]
    zstd_level: i32,
}

impl ParquetArgs {
    fn write_options(&self) -> WriteOptions {
        WriteOptions {
            max_file_rows: self.max_file_rows.max(1),
            zstd_level: self.zstd_level,
            ..WriteOptions::default()
        }
    }
}

#[derive(Args)]
struct ReplayArgs {
    /// CloudTrail files or folders, or one trail bucket: s3://bucket[/prefix].
    #[arg(required = true)]
    paths: Vec<String>,
    /// The lake: a local folder, or s3://bucket/prefix (with an S3 source).
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: String,
    /// Bucket layout.
    #[arg(long, value_enum, default_value = "ext", env = "TRAILHOUSE_LAYOUT")]
    layout: LayoutArg,
    /// Threads that map the input, and as many that encode Parquet (default: all
    /// cores); as many write the files, and at least four (they mostly wait for the
    /// disk).
    #[arg(long, env = "TRAILHOUSE_THREADS")]
    threads: Option<usize>,
    /// Write a partition once this much Arrow data is buffered for it (e.g. 32MiB).
    #[arg(long, value_parser = parse_size, default_value = "36MiB", env = "TRAILHOUSE_FLUSH_BYTES")]
    flush_bytes: usize,
    /// Bound on buffered plus in-flight Arrow data of all partitions; peak RSS grows
    /// with it (README, "Memory").
    #[arg(long, value_parser = parse_size, default_value = "48MiB", env = "TRAILHOUSE_MAX_BUFFER_BYTES")]
    max_buffer_bytes: usize,
    #[command(flatten)]
    parquet: ParquetArgs,
    /// Local source: input bytes (compressed, as stored) of the consecutive files that
    /// one thread maps together, carrying rows from file to file; smaller spreads a
    /// small input over more threads, larger makes fewer, larger batches. Partitions
    /// the listing has passed are written at the end of each group.
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    group_bytes: usize,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// S3 source: first day, YYYY-MM-DD (or an RFC 3339 time: its UTC day).
    #[arg(long, value_parser = parse_day)]
    from: Option<u32>,
    /// S3 source: last day, inclusive.
    #[arg(long, value_parser = parse_day)]
    to: Option<u32>,
    /// S3 source: only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',')]
    accounts: Vec<String>,
    /// S3 source: only these regions (comma-separated).
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// S3 source: record completed day prefixes here (a file or s3://bucket/key) and
    /// skip them when resuming.
    #[arg(long)]
    checkpoint: Option<String>,
    /// S3 source: send the planned objects to this SQS queue for `trailhouse run`
    /// workers instead of processing them here.
    #[arg(long)]
    enqueue: Option<String>,
    /// S3 source: objects processed at once.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Path-style S3 addressing (emulators, S3-compatible stores).
    #[arg(long, env = "TRAILHOUSE_S3_PATH_STYLE")]
    s3_path_style: bool,
}

/// Parses `YYYY-MM-DD`, `YYYYMMDD` or an RFC 3339 time into `YYYYMMDD` (UTC).
fn parse_day(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let day = if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        t.to_string()
    } else if t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
        t.replace('-', "")
    } else {
        let ms = trailhouse_cloudtrail::time::parse_rfc3339_ms(t)
            .ok_or_else(|| format!("not a date or time: {s:?} (use YYYY-MM-DD)"))?;
        trailhouse_cloudtrail::time::utc_day(ms).to_string()
    };
    let n: u32 = day.parse().map_err(|_| format!("not a date: {s:?}"))?;
    let (m, d) = (n / 100 % 100, n % 100);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(format!("not a date: {s:?}"));
    }
    Ok(n)
}

#[derive(Args)]
struct DashboardArgs {
    /// The lake: a local folder, or s3://bucket/prefix.
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: String,
    /// The HTML file to write.
    #[arg(long)]
    out: PathBuf,
    /// First day shown (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day, requires = "to")]
    from: Option<u32>,
    /// Last day shown (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day, requires = "from")]
    to: Option<u32>,
    /// Path-style S3 addressing (emulators, S3-compatible stores).
    #[arg(long, env = "TRAILHOUSE_S3_PATH_STYLE")]
    s3_path_style: bool,
}

#[derive(Args)]
struct InsightsArgs {
    /// The lake: a local folder, or s3://bucket/prefix.
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: String,
    /// First day that may open an insight (YYYY-MM-DD; default: the lake's first
    /// day). The 7 days before it are read for the baseline.
    #[arg(long, value_parser = parse_day)]
    from: Option<u32>,
    /// Last day analysed (YYYY-MM-DD; default: the lake's last day).
    #[arg(long, value_parser = parse_day)]
    to: Option<u32>,
    /// Also write the insights as CloudTrail Insights files
    /// (AWSLogs/{account}/CloudTrail-Insight/…) under this folder.
    #[arg(long)]
    records: Option<PathBuf>,
    /// Write the run's summary as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Path-style S3 addressing (emulators, S3-compatible stores).
    #[arg(long, env = "TRAILHOUSE_S3_PATH_STYLE")]
    s3_path_style: bool,
}

#[derive(Args)]
struct RunArgs {
    /// SQS queue URL receiving S3 (direct, via SNS or EventBridge) or CloudTrail notifications.
    #[arg(long, env = "TRAILHOUSE_QUEUE_URL")]
    queue_url: String,
    /// The lake: s3://bucket/prefix or a local folder.
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: String,
    /// Bucket layout.
    #[arg(long, value_enum, default_value = "ext", env = "TRAILHOUSE_LAYOUT")]
    layout: LayoutArg,
    /// Objects processed at once (default: 2 per core).
    #[arg(long, env = "TRAILHOUSE_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Write a partition once this much Arrow data is buffered for it.
    #[arg(long, value_parser = parse_size, default_value = "96MiB", env = "TRAILHOUSE_FLUSH_BYTES")]
    flush_bytes: usize,
    /// Write a partition at the latest this long after its first row arrived
    /// (Security Lake asks custom sources for 5 minutes to 1 day).
    #[arg(long, value_parser = parse_duration, default_value = "5m", env = "TRAILHOUSE_FLUSH_INTERVAL")]
    flush_interval: Duration,
    /// Bound on buffered plus in-flight Arrow data; receiving pauses above it.
    #[arg(long, value_parser = parse_size, default_value = "256MiB", env = "TRAILHOUSE_MAX_BUFFER_BYTES")]
    max_buffer_bytes: usize,
    #[command(flatten)]
    parquet: ParquetArgs,
    /// Visibility of messages in flight; the heartbeat keeps re-extending it.
    #[arg(long, value_parser = parse_duration, default_value = "5m", env = "TRAILHOUSE_VISIBILITY_TIMEOUT")]
    visibility_timeout: Duration,
    /// How often visibility is extended (default: a third of the visibility timeout).
    #[arg(long, value_parser = parse_duration, env = "TRAILHOUSE_HEARTBEAT_INTERVAL")]
    heartbeat_interval: Option<Duration>,
    /// Long-poll wait of each receive (at most 20s).
    #[arg(long, value_parser = parse_duration, default_value = "20s", env = "TRAILHOUSE_WAIT_TIME")]
    wait_time: Duration,
    /// Serve Prometheus metrics here, e.g. 0.0.0.0:9090.
    #[arg(long, env = "TRAILHOUSE_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Path-style S3 addressing (emulators, S3-compatible stores).
    #[arg(long, env = "TRAILHOUSE_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Bound on finishing in-flight objects at shutdown.
    #[arg(long, value_parser = parse_duration, default_value = "60s", env = "TRAILHOUSE_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Duration,
    /// Flush and exit when no message arrived for this long (batch-style runs).
    #[arg(long, value_parser = parse_duration, env = "TRAILHOUSE_IDLE_EXIT")]
    idle_exit: Option<Duration>,
    /// Write the exit summary as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
}

#[derive(Args)]
struct QueryArgs {
    /// One SQL statement (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE); or --file.
    #[arg(allow_hyphen_values = true)]
    sql: Option<String>,
    /// The lake: a local folder, or s3://bucket/prefix.
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: String,
    /// Read the statement from this file (e.g. schemas/queries/root_activity.sql).
    #[arg(long, short, conflicts_with = "sql")]
    file: Option<PathBuf>,
    /// Output format: an aligned table, CSV with a header, JSON Lines (one object per
    /// row), or one JSON array.
    #[arg(long, value_enum, default_value = "table")]
    format: QueryFormat,
    /// List the tables and views with their columns, instead of running SQL.
    #[arg(long)]
    tables: bool,
    /// Path-style S3 addressing (emulators, S3-compatible stores).
    #[arg(long, env = "TRAILHOUSE_S3_PATH_STYLE")]
    s3_path_style: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum QueryFormat {
    Table,
    Csv,
    /// JSON Lines: one object per row.
    Json,
    /// One JSON array of row objects.
    JsonArray,
}

#[derive(Args)]
struct LambdaArgs {
    /// The lake: s3://bucket/prefix (or a local folder, for tests).
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: String,
    /// Bucket layout.
    #[arg(long, value_enum, default_value = "ext", env = "TRAILHOUSE_LAYOUT")]
    layout: LayoutArg,
    /// Objects processed at once.
    #[arg(long, env = "TRAILHOUSE_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Bound on buffered Arrow data within one invocation (partitions are written
    /// early above it).
    #[arg(long, value_parser = parse_size, default_value = "256MiB", env = "TRAILHOUSE_MAX_BUFFER_BYTES")]
    max_buffer_bytes: usize,
    #[command(flatten)]
    parquet: ParquetArgs,
    /// Path-style S3 addressing (emulators, S3-compatible stores).
    #[arg(long, env = "TRAILHOUSE_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Handle one SQS event read from this file (the Lambda event JSON) and print
    /// the response, instead of serving the Lambda Runtime API.
    #[arg(long)]
    event: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Random seed (same seed, same files).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of accounts.
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Regions, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "us-east-1,eu-west-1,ap-southeast-2"
    )]
    regions: Vec<String>,
    /// First day, YYYY-MM-DD.
    #[arg(long, default_value = "2024-03-09")]
    start: String,
    /// Number of days.
    #[arg(long, default_value_t = 2)]
    days: u32,
    /// Number of log files.
    #[arg(long, default_value_t = 12)]
    files: usize,
    /// Records per log file.
    #[arg(long, default_value_t = 50)]
    records_per_file: usize,
    /// Organization trail id (AWSLogs/o-…/account/…).
    #[arg(long)]
    org_id: Option<String>,
    /// Key prefix before AWSLogs/.
    #[arg(long)]
    prefix: Option<String>,
    /// Add corrupt, truncated, non-CloudTrail, digest, Insights files and hostile records.
    #[arg(long)]
    hostile: bool,
    /// Some request/response payloads of tens of KB.
    #[arg(long)]
    large_payloads: bool,
    /// Instead of a tree, write one log file of about this many uncompressed bytes
    /// (e.g. 2GiB) under OUT/AWSLogs/…, streamed.
    #[arg(long, value_parser = parse_size)]
    large_file: Option<usize>,
    /// Write the manifest (expected results) as JSON to this file.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Instead of a corpus, write a trail for `trailhouse insights`: a seasonal
    /// background (daily cycles, noise) over --days (at least 8) from --start, with
    /// bursts of calls and of errors injected in the last days; the manifest lists
    /// the bursts.
    #[arg(long)]
    insights_demo: bool,
}

fn generate(a: GenerateArgs) -> Result<()> {
    if a.insights_demo {
        return generate_insights_demo(&a);
    }
    let manifest = if let Some(bytes) = a.large_file {
        // CloudTrail's own layout and naming: the key names account and region.
        let dir = a
            .out
            .join("AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/09");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file =
            dir.join("123456789012_CloudTrail_us-east-1_20240309T1200Z_LargeFile0000000.json.gz");
        trailhouse_corpus::large_log_file(&file, a.seed, bytes as u64)?
    } else {
        let mut parts = a.start.split('-').map(|p| p.parse::<u32>());
        let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("--start must be YYYY-MM-DD, got {:?}", a.start);
        };
        let spec = trailhouse_corpus::CorpusSpec {
            seed: a.seed,
            accounts: a.accounts.max(1),
            regions: a.regions,
            start_day: (y as i32, m, d),
            days: a.days.max(1),
            files: a.files,
            records_per_file: a.records_per_file,
            org_id: a.org_id,
            key_prefix: a.prefix,
            hostile: a.hostile,
            large_payloads: a.large_payloads,
        };
        trailhouse_corpus::generate(&spec, &a.out)?
    };
    eprintln!(
        "generated {} objects, {} records ({} valid, {} to quarantine), {} bytes of JSON",
        manifest.objects_total,
        manifest.records_total,
        manifest.records_valid,
        manifest.records_quarantined,
        manifest.uncompressed_bytes
    );
    if let Some(path) = a.manifest {
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn generate_insights_demo(a: &GenerateArgs) -> Result<()> {
    use trailhouse_insights::synth::Scenario;
    use trailhouse_insights::{InsightType, MINUTE_MS};
    let day = parse_day(&a.start).map_err(anyhow::Error::msg)?;
    let start_ms = trailhouse_cloudtrail::time::day_start_ms(day)
        .ok_or_else(|| anyhow::anyhow!("--start is not a date"))?;
    let days = i64::from(a.days.max(8));
    let s = Scenario::demo(a.seed, start_ms / MINUTE_MS, days);
    let records = s.write_logs(&a.out)?;
    let bursts: Vec<serde_json::Value> = s
        .bursts
        .iter()
        .map(|b| {
            let api = &s.apis[b.api];
            serde_json::json!({
                "account": s.account, "region": s.region,
                "eventSource": api.event_source, "eventName": api.event_name,
                "insightType": b.kind.name(),
                "start": trailhouse_cloudtrail::time::format_rfc3339_s(b.start * MINUTE_MS),
                "end": trailhouse_cloudtrail::time::format_rfc3339_s((b.start + b.minutes) * MINUTE_MS),
                "extraPerMinute": b.extra_per_minute,
                "userIdentityArn": b.user_arn, "userAgent": b.user_agent,
                "errorCode": (b.kind == InsightType::ApiErrorRate).then_some(&b.error_code),
            })
        })
        .collect();
    eprintln!(
        "generated {records} management events over {days} days with {} bursts",
        bursts.len()
    );
    if let Some(path) = &a.manifest {
        let m = serde_json::json!({"records": records, "days": days, "bursts": bursts});
        std::fs::write(path, serde_json::to_vec_pretty(&m)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// How to open a lake for SQL: S3 settings and credentials from the same chain as
/// the other commands (profiles, SSO, env, IMDS).
async fn sql_options(lake: &str, path_style: bool) -> trailhouse_query::OpenOptions {
    use trailhouse_query::S3Options;
    let mut s3 = S3Options {
        path_style,
        ..S3Options::default()
    };
    if lake.starts_with("s3://") {
        // The same chain as the other commands (profiles, SSO, env, IMDS).
        use aws_sdk_s3::config::ProvideCredentials;
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        s3.endpoint = conf.endpoint_url().map(str::to_string);
        s3.region = conf.region().map(|r| r.to_string());
        if let Some(provider) = conf.credentials_provider() {
            match provider.provide_credentials().await {
                Ok(c) => {
                    s3.credentials = Some(trailhouse_query::S3Credentials {
                        access_key_id: c.access_key_id().to_string(),
                        secret_access_key: c.secret_access_key().to_string(),
                        session_token: c.session_token().map(str::to_string),
                    })
                }
                Err(e) => tracing::debug!("no AWS credentials from the default chain: {e}"),
            }
        }
    }
    trailhouse_query::OpenOptions {
        s3,
        ..trailhouse_query::OpenOptions::default()
    }
}

/// Opens a lake for SQL (DataFusion).
async fn sql_lake(lake: &str, path_style: bool) -> Result<trailhouse_query::Lake> {
    let opts = sql_options(lake, path_style).await;
    trailhouse_query::Lake::open(lake, &opts)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn dashboard_cmd(a: DashboardArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let d = runtime.block_on(async {
        let lake = sql_lake(&a.lake, a.s3_path_style).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        dashboard::build(
            &lake,
            &a.lake,
            a.from.zip(a.to),
            trailhouse_cloudtrail::time::format_rfc3339_s(now),
        )
        .await
    })?;
    let html = trailhouse_dashboard::render(&d);
    std::fs::write(&a.out, html).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} insight events, {} days of activity)",
        a.out.display(),
        d.insight_events.len(),
        d.events_by_day
            .iter()
            .map(|s| s.points.len())
            .max()
            .unwrap_or(0)
    );
    Ok(())
}

fn insights(a: InsightsArgs) -> Result<()> {
    use trailhouse_pipeline::insights::{InsightsOptions, run_insights};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(async {
        let lake = open_lake(&a.lake, a.s3_path_style).await?;
        let opts = InsightsOptions {
            from_day: a.from,
            to_day: a.to,
            records_dir: a.records.clone(),
            ..InsightsOptions::default()
        };
        anyhow::Ok(run_insights(&lake, &opts).await?)
    })?;
    let mut out = std::io::stdout().lock();
    for i in &summary.found {
        let end = i
            .end_ms
            .map(trailhouse_cloudtrail::time::format_rfc3339_s)
            .unwrap_or_else(|| "(open)".into());
        let top = i
            .attributions
            .first()
            .and_then(|a| a.insight.first())
            .map_or("", |v| v.0.as_str());
        writeln!(
            out,
            "{}  {}  {:<20} {}/{}  {} {}  {:.2}/min vs baseline {:.2}/min  top user {}",
            trailhouse_cloudtrail::time::format_rfc3339_s(i.start_ms),
            end,
            i.kind.name(),
            i.group.account,
            i.group.region,
            i.group.event_source,
            i.group.event_name,
            i.insight_average,
            i.baseline_average,
            top
        )?;
    }
    eprintln!(
        "{} insights ({} call rate, {} error rate, {} open) from {} management events in {} files, days {}..{}; {} finding rows written in {:.1}s",
        summary.insights,
        summary.call_rate,
        summary.error_rate,
        summary.open,
        summary.events,
        summary.files_read,
        summary.from_day.map_or("-".into(), |d| d.to_string()),
        summary.to_day.map_or("-".into(), |d| d.to_string()),
        summary.findings_written,
        summary.elapsed_secs
    );
    if let Some(path) = a.summary {
        std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1d` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (use e.g. 500ms, 30s, 5m, 1h)"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(format!("unknown unit in {s:?} (use ms, s, m, h, d)")),
    };
    Ok(d)
}

fn run_worker(a: RunArgs) -> Result<()> {
    use std::sync::Arc;
    use trailhouse_pipeline::metrics::{Metrics, serve};
    use trailhouse_pipeline::worker::{WorkerConfig, run};

    if a.visibility_timeout < Duration::from_secs(1) {
        bail!("--visibility-timeout must be at least 1s");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cfg = WorkerConfig {
        queue_url: a.queue_url.clone(),
        layout: a.layout.into(),
        concurrency: a.concurrency.unwrap_or(2 * cores).max(1),
        flush: FlushPolicy {
            flush_bytes: a.flush_bytes.max(1),
            max_buffer_bytes: a.max_buffer_bytes.max(1),
            max_age_ms: Some(a.flush_interval.as_millis() as u64),
        },
        write: a.parquet.write_options(),
        visibility_timeout: a.visibility_timeout,
        heartbeat_interval: a
            .heartbeat_interval
            .unwrap_or(a.visibility_timeout / 3)
            .max(Duration::from_millis(200)),
        wait_time: a.wait_time,
        shutdown_timeout: a.shutdown_timeout,
        idle_exit: a.idle_exit,
        chunk_rows: 4096,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let worker_clients = clients(&a.lake, a.s3_path_style).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        let metrics = Arc::new(Metrics::default());
        if let Some(addr) = a.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding metrics to {addr}"))?;
            tracing::info!(%addr, "serving metrics");
            tokio::spawn(serve(listener, metrics.clone(), stop.clone()));
        }
        let signal_stop = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: stopping, flushing buffers");
            signal_stop.cancel();
        });
        tracing::info!(queue = %a.queue_url, lake = %a.lake, "worker started");
        let result = run(cfg, worker_clients, metrics.clone(), stop.clone()).await;
        stop.cancel();
        let summary = metrics.summary();
        eprintln!("{}", serde_json::to_string(&summary)?);
        if let Some(path) = &a.summary {
            std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        result?;
        Ok(())
    })
}

/// The lake named by `lake`, existing: a local folder needs no AWS configuration.
async fn open_lake(lake: &str, path_style: bool) -> Result<trailhouse_pipeline::store::Lake> {
    use trailhouse_pipeline::store::Lake;
    if lake.starts_with("s3://") {
        return Ok(clients(lake, path_style).await?.lake);
    }
    if !std::path::Path::new(lake).is_dir() {
        bail!("no lake at {lake} (a folder written by `trailhouse replay`, or s3://bucket/prefix)");
    }
    Ok(Lake::Local(PathBuf::from(lake)))
}

/// AWS clients from the standard chain and the lake named by `lake`.
async fn clients(lake: &str, path_style: bool) -> Result<trailhouse_pipeline::worker::Clients> {
    use trailhouse_pipeline::store::{Lake, parse_s3_uri};
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(path_style)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(s3_conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let lake = match parse_s3_uri(lake) {
        Some((bucket, prefix)) => Lake::S3 {
            client: s3.clone(),
            bucket,
            prefix,
        },
        None if lake.contains("://") => {
            bail!("--lake must be s3://bucket/prefix or a local folder, got {lake}")
        }
        None => {
            std::fs::create_dir_all(lake)
                .with_context(|| format!("creating the lake folder {lake}"))?;
            Lake::Local(PathBuf::from(lake))
        }
    };
    Ok(trailhouse_pipeline::worker::Clients { s3, sqs, lake })
}

fn lambda(a: LambdaArgs) -> Result<()> {
    use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
    use std::sync::Arc;
    use trailhouse_pipeline::metrics::Metrics;
    use trailhouse_pipeline::worker::{WorkerConfig, process_batch};

    let started = std::time::Instant::now();
    let cfg = WorkerConfig::batch(
        a.layout.into(),
        a.concurrency.unwrap_or(4),
        // One file per partition per invocation unless memory runs short.
        FlushPolicy {
            flush_bytes: a.max_buffer_bytes.max(1),
            max_buffer_bytes: a.max_buffer_bytes.max(1),
            max_age_ms: None,
        },
        a.parquet.write_options(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let clients = Arc::new(clients(&a.lake, a.s3_path_style).await?);
        let cfg = Arc::new(cfg);
        tracing::info!(
            init_ms = started.elapsed().as_millis() as u64,
            "lambda initialized"
        );
        let handle = move |event: SqsEvent,
                           clients: Arc<trailhouse_pipeline::worker::Clients>,
                           cfg: Arc<WorkerConfig>| async move {
            let t = std::time::Instant::now();
            let metrics = Arc::new(Metrics::default());
            let n = event.records.len();
            let messages: Vec<(String, String)> = event
                .records
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        r.message_id.unwrap_or_else(|| format!("record-{i}")),
                        r.body.unwrap_or_default(),
                    )
                })
                .collect();
            let outcomes = process_batch(&cfg, &clients, &metrics, messages, false)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            let summary = metrics.summary();
            tracing::info!(
                records = n,
                failed = outcomes.failed.len(),
                rows = summary.rows_written.values().sum::<u64>(),
                files = summary.files_written,
                duration_ms = t.elapsed().as_millis() as u64,
                "invocation done"
            );
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = outcomes
                .failed
                .into_iter()
                .map(|id| {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = id;
                    f
                })
                .collect();
            Ok::<_, lambda_runtime::Error>(response)
        };
        if let Some(path) = &a.event {
            let event: SqsEvent = serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not an SQS event", path.display()))?;
            let response = handle(event, clients, cfg)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&response)?);
            return Ok(());
        }
        lambda_runtime::run(lambda_runtime::service_fn(
            move |ev: lambda_runtime::LambdaEvent<SqsEvent>| {
                handle(ev.payload, clients.clone(), cfg.clone())
            },
        ))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Parses `123`, `64KiB`, `64MiB`, `1GiB`, `10MB`, `1GB` (case-insensitive).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn replay(args: ReplayArgs) -> Result<()> {
    if args.flush_bytes == 0 || args.max_buffer_bytes == 0 {
        bail!("--flush-bytes and --max-buffer-bytes must be positive");
    }
    if args.paths.iter().any(|p| p.starts_with("s3://")) {
        return replay_s3(args);
    }
    for flag in [
        ("--checkpoint", args.checkpoint.is_some()),
        ("--enqueue", args.enqueue.is_some()),
        ("--from/--to", args.from.is_some() || args.to.is_some()),
        (
            "--accounts/--regions",
            !args.accounts.is_empty() || !args.regions.is_empty(),
        ),
    ] {
        if flag.1 {
            bail!("{} applies to an s3:// source", flag.0);
        }
    }
    if args.lake.starts_with("s3://") {
        bail!(
            "a local replay writes a local lake; for an S3 lake replay from s3:// or run `trailhouse run`"
        );
    }
    let defaults = ReplayOptions::default();
    let opts = ReplayOptions {
        layout: args.layout.into(),
        threads: args.threads.unwrap_or(defaults.threads).max(1),
        flush: FlushPolicy {
            flush_bytes: args.flush_bytes,
            max_buffer_bytes: args.max_buffer_bytes,
            max_age_ms: None,
        },
        write: args.parquet.write_options(),
        group_bytes: args.group_bytes as u64,
        ..defaults
    };
    let paths: Vec<PathBuf> = args.paths.iter().map(PathBuf::from).collect();
    let summary = replay_local(&paths, std::path::Path::new(&args.lake), &opts)?;
    eprintln!("{}", summary.human());
    if let Some(path) = args.summary {
        let mut text = serde_json::to_vec_pretty(&summary)?;
        text.push(b'\n');
        std::fs::write(&path, text)
            .with_context(|| format!("writing the summary to {}", path.display()))?;
    }
    Ok(())
}

fn replay_s3(a: ReplayArgs) -> Result<()> {
    use std::sync::Arc;
    use trailhouse_pipeline::metrics::Metrics;
    use trailhouse_pipeline::plan::PlanFilter;
    use trailhouse_pipeline::s3_replay::{CheckpointLocation, S3ReplayOptions, replay_s3};
    use trailhouse_pipeline::worker::WorkerConfig;

    if a.paths.len() != 1 {
        bail!("replay takes one s3:// source at a time");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cfg = WorkerConfig::batch(
        a.layout.into(),
        a.concurrency.unwrap_or(2 * cores),
        FlushPolicy {
            flush_bytes: a.flush_bytes,
            max_buffer_bytes: a.max_buffer_bytes,
            max_age_ms: None,
        },
        a.parquet.write_options(),
    );
    let opts = S3ReplayOptions {
        filter: PlanFilter {
            from: a.from,
            to: a.to,
            accounts: a.accounts.clone(),
            regions: a.regions.clone(),
        },
        checkpoint: a.checkpoint.as_deref().map(CheckpointLocation::parse),
        enqueue: a.enqueue.clone(),
    };
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let c = clients(&a.lake, a.s3_path_style).await?;
        let metrics = Arc::new(Metrics::default());
        let report = replay_s3(&a.paths[0], &cfg, &c, &metrics, &opts).await?;
        let mut summary = serde_json::to_value(&report)?;
        if let (Some(obj), serde_json::Value::Object(m)) = (summary.as_object_mut(), serde_json::to_value(metrics.summary())?) {
            for (k, v) in m {
                if k != "objects_failed" {
                    obj.entry(k).or_insert(v);
                }
            }
            obj.insert("elapsed_secs".into(), started.elapsed().as_secs_f64().into());
        }
        eprintln!("{}", serde_json::to_string(&summary)?);
        if let Some(path) = &a.summary {
            std::fs::write(path, serde_json::to_vec_pretty(&summary)?).with_context(|| format!("writing {}", path.display()))?;
        }
        if report.days_failed > 0 {
            bail!(
                "{} day prefixes had objects that failed ({} objects); rerun (with --checkpoint to skip the completed days)",
                report.days_failed,
                report.objects_failed.len()
            );
        }
        Ok(())
    })
}

fn query(a: QueryArgs) -> Result<()> {
    use trailhouse_query::{Lake, OutputFormat};

    let sql = match (&a.sql, &a.file) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(p)) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        (None, None) => None,
    };
    if sql.is_none() && !a.tables {
        bail!("no SQL: give a statement, --file <query.sql>, or --tables");
    }
    let format = match a.format {
        QueryFormat::Table => OutputFormat::Table,
        QueryFormat::Csv => OutputFormat::Csv,
        QueryFormat::Json => OutputFormat::Json,
        QueryFormat::JsonArray => OutputFormat::JsonArray,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let opts = sql_options(&a.lake, a.s3_path_style).await;
        // The message alone: DataFusion's errors already include their causes.
        let flat = |e: trailhouse_query::QueryError| anyhow::anyhow!("{e}");
        let lake = Lake::open(&a.lake, &opts).await.map_err(flat)?;
        for note in lake.notes() {
            tracing::warn!("{note}");
        }
        let mut out = BufWriter::new(std::io::stdout().lock());
        if a.tables {
            for t in lake.tables() {
                let kind = match t.kind {
                    trailhouse_query::TableKind::Ext => "table",
                    trailhouse_query::TableKind::Native => "table (native layout)",
                    trailhouse_query::TableKind::View => "view",
                };
                writeln!(out, "{}  [{kind}: {}]", t.name, t.source)?;
                for (name, ty) in t.columns() {
                    writeln!(out, "    {name}  {ty}")?;
                }
            }
            out.flush()?;
            if sql.is_none() {
                return Ok(());
            }
        }
        if let Some(sql) = sql {
            let batches = lake.sql(&sql).await.map_err(flat)?;
            trailhouse_query::write_batches(&batches, format, &mut out).map_err(flat)?;
        }
        Ok(())
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run_worker(*args),
        Command::Lambda(args) => lambda(args),
        Command::Replay(args) => replay(args),
        Command::Floor { paths, threads } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let summary = trailhouse_pipeline::floor::floor(&paths, threads)?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Convert { paths, out } => {
            let mut sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(BufWriter::new(
                    File::create(p).with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let s = convert_local(&paths, &mut sink)?;
            sink.flush()?;
            eprintln!(
                "converted {} rows from {} objects ({} records rejected, {} objects failed, {} skipped)",
                s.rows, s.objects_read, s.records_rejected, s.objects_failed, s.objects_skipped
            );
            Ok(())
        }
        Command::Generate(args) => generate(args),
        Command::Insights(args) => insights(args),
        Command::Dashboard(args) => dashboard_cmd(args),
        Command::Query(args) => query(args),
        Command::Ddl { layout, location } => {
            print!(
                "{}",
                trailhouse_lake::ddl::lake_ddl(layout.into(), &location)
            );
            Ok(())
        }
    }
}

// jemalloc, two arenas (README, Memory): faster than glibc's malloc on every input
// measured, with lower peaks on the large ones.
trailhouse_pipeline::use_jemalloc!();

fn main() -> ExitCode {
    // Before any thread starts: large buffers get mappings of their own (README, Memory).
    trailhouse_pipeline::malloc::pin_mmap_threshold();
    // Named `bootstrap` (the provided.al2023 runtime), the binary is the Lambda handler.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let is_bootstrap = std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "bootstrap");
    let cli = if is_bootstrap {
        Cli::parse_from(["trailhouse", "lambda"])
    } else {
        Cli::parse()
    };
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn durations() {
        use super::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
    }

    /// The replay's size defaults are written as text for `--help`; they must be the
    /// library's defaults, which the README's memory figures were measured with.
    #[test]
    fn replay_defaults_are_the_flush_policy_defaults() {
        use clap::Parser;
        let cli =
            super::Cli::try_parse_from(["trailhouse", "replay", "in", "--lake", "out"]).unwrap();
        let super::Command::Replay(args) = cli.command else {
            panic!("not a replay");
        };
        let policy = trailhouse_lake::FlushPolicy::default();
        assert_eq!(args.flush_bytes, policy.flush_bytes);
        assert_eq!(args.max_buffer_bytes, policy.max_buffer_bytes);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    #[cfg(all(target_os = "linux", not(target_env = "msvc")))]
    fn jemalloc_runs_with_the_binarys_settings() {
        // This test binary is this crate, with its `use_jemalloc!`: were the settings
        // left out by the linker, jemalloc would run four arenas per CPU (one on a
        // single CPU), never two.
        assert_eq!(trailhouse_pipeline::malloc::jemalloc_arenas(), Some(2));
    }
}
