//! A fast-building stand-in for `trailhouse floor` + `trailhouse replay` on one
//! thread, for profiling the hot path without the CLI's DataFusion build:
//!
//! ```sh
//! cargo run --profile profiling -p trailhouse-pipeline --example replay_bench -- CORPUS [FILES]
//! ```
//!
//! Generates the benchmark corpus of `bench/e2e.py` into CORPUS when it does not exist,
//! reads its first FILES log files (all when absent; e.g. 10 for a callgrind slice),
//! and prints the floor's and the replay's speed and their ratio. REPLAY_BENCH_ONLY=replay
//! skips the floor; REPLAY_BENCH_KEEP keeps the lake; REPLAY_BENCH_THREADS sets the
//! replay's threads (1 by default); REPLAY_BENCH_CORPUS="SEED ACCOUNTS DAYS FILES
//! RECORDS_PER_FILE" generates another corpus (with large payloads) when CORPUS is missing.

// The CLI's allocator and its settings, so that speed and peak RSS here are the CLI's.
trailhouse_pipeline::use_jemalloc!();

use std::path::PathBuf;
use std::time::Instant;

use trailhouse_pipeline::replay::{ReplayOptions, discover, replay_local};

fn main() {
    // As the CLI does (README, Memory), so that peak RSS here is the CLI's.
    trailhouse_pipeline::malloc::pin_mmap_threshold();
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(args.next().expect("usage: replay_bench CORPUS [FILES]"));
    let limit: Option<usize> = args.next().map(|n| n.parse().expect("FILES is a number"));
    if !corpus.exists() {
        // The corpus of bench/e2e.py (`trailhouse generate --seed 21 --accounts 8
        // --days 3 --files 240 --records-per-file 1000 --large-payloads`).
        let mut spec = trailhouse_corpus::CorpusSpec {
            seed: 21,
            accounts: 8,
            days: 3,
            files: 240,
            records_per_file: 1000,
            large_payloads: true,
            ..Default::default()
        };
        if let Ok(v) = std::env::var("REPLAY_BENCH_CORPUS") {
            let n: Vec<u64> = v
                .split_whitespace()
                .map(|x| x.parse().expect("REPLAY_BENCH_CORPUS: five numbers"))
                .collect();
            let [seed, accounts, days, files, records] = n[..] else {
                panic!("REPLAY_BENCH_CORPUS: five numbers");
            };
            spec.seed = seed;
            spec.accounts = accounts as usize;
            spec.days = days as u32;
            spec.files = files as usize;
            spec.records_per_file = records as usize;
        }
        trailhouse_corpus::generate(&spec, &corpus).expect("corpus generated");
    }
    let mut inputs: Vec<PathBuf> = discover(std::slice::from_ref(&corpus), None)
        .expect("corpus listed")
        .into_iter()
        .filter(|o| o.key.contains("/CloudTrail/"))
        .map(|o| o.path)
        .collect();
    if let Some(n) = limit {
        inputs.truncate(n);
    }
    let only = std::env::var("REPLAY_BENCH_ONLY").unwrap_or_default();
    let mut floor_secs = f64::NAN;
    if only != "replay" {
        let started = Instant::now();
        trailhouse_pipeline::floor::floor(&inputs, 1).expect("floor");
        floor_secs = started.elapsed().as_secs_f64();
    }
    let lake = std::env::temp_dir().join(format!("replay-bench-lake-{}", std::process::id()));
    let mut opts = ReplayOptions {
        threads: std::env::var("REPLAY_BENCH_THREADS").map_or(1, |t| t.parse().expect("a number")),
        ..Default::default()
    };
    // REPLAY_BENCH_BUFFER_MIB: --max-buffer-bytes (flush at three quarters of it).
    if let Ok(mib) = std::env::var("REPLAY_BENCH_BUFFER_MIB") {
        let bytes = mib.parse::<usize>().expect("a number of MiB") << 20;
        opts.flush.max_buffer_bytes = bytes;
        opts.flush.flush_bytes = bytes / 4 * 3;
    }
    let started = Instant::now();
    let s = replay_local(&inputs, &lake, &opts).expect("replay");
    let replay_secs = started.elapsed().as_secs_f64();
    if std::env::var_os("REPLAY_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&lake);
    } else {
        eprintln!("lake kept at {}", lake.display());
    }
    let mb = s.bytes_uncompressed as f64 / 1e6;
    println!(
        "{} files, {:.1} MB JSON: floor {:.2} s ({:.1} MB/s), replay {:.2} s ({:.1} MB/s), \
         replay/floor {:.2}x; {} records, {} rows, {} duplicates, {} Parquet files, {:.3} MB out, {:.3} MB spilled, \
         peak RSS {} MiB, {} memory trims",
        inputs.len(),
        mb,
        floor_secs,
        mb / floor_secs,
        replay_secs,
        mb / replay_secs,
        replay_secs / floor_secs,
        s.records_read,
        s.rows_total(),
        s.duplicates_dropped,
        s.files_written,
        s.bytes_written as f64 / 1e6,
        s.spill_bytes_written as f64 / 1e6,
        s.peak_rss_bytes.unwrap_or(0) >> 20,
        s.memory_trims,
    );
}
