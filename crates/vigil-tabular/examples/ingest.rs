//! Ingests a delimited file and prints its summary (kinds, roles, evidence, problems) as
//! JSON, with the time taken: `cargo run --release -p vigil-tabular --example ingest -- FILE`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: ingest FILE")?;
    let start = Instant::now();
    let data = vigil_tabular::ingest_path(path.as_ref(), &vigil_tabular::IngestOptions::default())?;
    let took = start.elapsed();
    println!("{}", serde_json::to_string_pretty(&data.summary())?);
    eprintln!("ingested {} rows x {} columns in {:.3} s", data.rows, data.columns.len(), took.as_secs_f64());
    Ok(())
}
