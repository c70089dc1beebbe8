//! `cargo run --release --example speed [MB]`: throughput of `large_log_file`.
use std::time::Instant;
fn main() {
    let mb: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(200);
    let path = std::env::temp_dir()
        .join("123456789012_CloudTrail_us-east-1_20240309T1205Z_speedspeedspeed1.json.gz");
    let t = Instant::now();
    let m = trailhouse_corpus::large_log_file(&path, 1, mb << 20).unwrap();
    let s = t.elapsed().as_secs_f64();
    let gz = std::fs::metadata(&path).unwrap().len();
    println!(
        "{} records, {:.1} MB JSON -> {:.1} MB gz ({:.1}x) in {:.2}s: {:.0} MB/s, {:.0} records/s",
        m.records_total,
        m.uncompressed_bytes as f64 / 1e6,
        gz as f64 / 1e6,
        m.uncompressed_bytes as f64 / gz as f64,
        s,
        m.uncompressed_bytes as f64 / 1e6 / s,
        m.records_total as f64 / s
    );
    std::fs::remove_file(&path).unwrap();
}
