//! `cargo run --example write -- OUT_DIR [hostile]`: writes a corpus and prints its manifest.
fn main() {
    let out = std::env::args().nth(1).expect("output directory");
    let hostile = std::env::args().nth(2).is_some_and(|a| a == "hostile");
    let spec = trailhouse_corpus::CorpusSpec {
        hostile,
        ..Default::default()
    };
    let m = trailhouse_corpus::generate(&spec, std::path::Path::new(&out)).unwrap();
    let mut m = serde_json::to_value(&m).unwrap();
    m["event_ids"] = serde_json::json!(m["event_ids"].as_array().unwrap().len());
    println!("{}", serde_json::to_string_pretty(&m).unwrap());
}
