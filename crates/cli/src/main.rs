//! `trailhouse`: CloudTrail logs into an open OCSF security data lake in Amazon
//! Security Lake's layout. Thin glue over the library crates.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Args)]
struct ReplayArgs {
    /// CloudTrail files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The lake: a local folder.
    #[arg(long, env = "TRAILHOUSE_LAKE")]
    lake: PathBuf,
    /// Bucket layout.
    #[arg(long, value_enum, default_value = "ext", env = "TRAILHOUSE_LAYOUT")]
    layout: LayoutArg,
    /// Threads (default: all cores).
    #[arg(long, env = "TRAILHOUSE_THREADS")]
    threads: Option<usize>,
    /// Write a partition once this much Arrow data is buffered for it (e.g. 64MiB).
    #[arg(long, value_parser = parse_size, default_value = "96MiB", env = "TRAILHOUSE_FLUSH_BYTES")]
    flush_bytes: usize,
    /// Bound on buffered plus in-flight Arrow data of all partitions.
    #[arg(long, value_parser = parse_size, default_value = "128MiB", env = "TRAILHOUSE_MAX_BUFFER_BYTES")]
    max_buffer_bytes: usize,
    /// Rows per Parquet file at most.
    #[arg(long, default_value_t = WriteOptions::default().max_file_rows)]
    max_file_rows: usize,
    /// zstd level of the Parquet files.
    #[arg(long, default_value_t = WriteOptions::default().zstd_level)]
    zstd_level: i32,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
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
}

fn generate(a: GenerateArgs) -> Result<()> {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn replay(args: ReplayArgs) -> Result<()> {
    if args.flush_bytes == 0 || args.max_buffer_bytes == 0 {
        bail!("--flush-bytes and --max-buffer-bytes must be positive");
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
        write: WriteOptions {
            max_file_rows: args.max_file_rows.max(1),
            zstd_level: args.zstd_level,
            ..WriteOptions::default()
        },
        ..defaults
    };
    let summary = replay_local(&args.paths, &args.lake, &opts)?;
    eprintln!("{}", summary.human());
    if let Some(path) = args.summary {
        let mut text = serde_json::to_vec_pretty(&summary)?;
        text.push(b'\n');
        std::fs::write(&path, text)
            .with_context(|| format!("writing the summary to {}", path.display()))?;
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay(args) => replay(args),
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
        Command::Ddl { layout, location } => {
            print!(
                "{}",
                trailhouse_lake::ddl::lake_ddl(layout.into(), &location)
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
