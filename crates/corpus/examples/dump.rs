//! `cargo run --example dump -- [N]`: prints the first N records of the default
//! corpus with their expected partitions.
use trailhouse_corpus::*;
fn main() {
    let spec = CorpusSpec::default();
    for r in records(&spec).take(
        std::env::args()
            .nth(1)
            .map(|s| s.parse().unwrap())
            .unwrap_or(5),
    ) {
        println!("{}\n  -> {} {}", r.json, r.expect, r.event_id);
    }
}
