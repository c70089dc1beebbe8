//! Renders a fixture dashboard, for the browser test (tests/python/test_dashboard.py) and for a
//! look at the page until `trailhouse dashboard` exists:
//!
//!     cargo run -p trailhouse-dashboard --example fixture -- OUT.html [rich|empty|one|many]
//!
//! Writes OUT.html and, next to it, the rendered data as JSON (OUT.json); prints the JSON path.

mod fixtures;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), variant) = (args.first(), args.get(1).map_or("rich", String::as_str)) else {
        eprintln!("usage: fixture OUT.html [{}]", fixtures::VARIANTS.join("|"));
        return ExitCode::from(2);
    };
    let Some(d) = fixtures::by_name(variant) else {
        eprintln!(
            "unknown fixture {variant:?}: one of {}",
            fixtures::VARIANTS.join(", ")
        );
        return ExitCode::from(2);
    };
    let html = PathBuf::from(out);
    let json = html.with_extension("json");
    let data = match serde_json::to_string_pretty(&d) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fixture: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (path, body) in [(&html, trailhouse_dashboard::render(&d)), (&json, data)] {
        if let Err(e) = std::fs::write(path, body) {
            eprintln!("fixture: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{}", json.display());
    ExitCode::SUCCESS
}
