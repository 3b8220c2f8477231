//! Ingests and profiles a delimited file, printing the dataset summary (kinds, roles,
//! evidence, problems) and the profile as JSON, with the time each step took on stderr:
//! `cargo run --release -p vigil-tabular --example ingest -- FILE [--quiet]`.
//!
//! scripts/bench-tabular.sh times this against pandas and polars doing the same work.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: ingest FILE [--quiet]")?;
    let quiet = std::env::args().any(|a| a == "--quiet");
    let start = Instant::now();
    let options = vigil_tabular::IngestOptions::default();
    let data = vigil_tabular::ingest_path(path.as_ref(), &options)?;
    let ingested = start.elapsed();
    let profile = vigil_tabular::profile::profile(&data.columns, data.rows, options.read.threads);
    let total = start.elapsed();
    if !quiet {
        let out = serde_json::json!({"dataset": data.summary(), "profile": profile});
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    eprintln!(
        "vigil: {} rows x {} columns: ingest {:.3} s, profile {:.3} s, total {:.3} s",
        data.rows,
        data.columns.len(),
        ingested.as_secs_f64(),
        (total - ingested).as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}
