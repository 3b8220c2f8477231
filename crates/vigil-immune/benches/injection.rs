//! Benchmark (not a test): the prompt-injection signal on a labelled corpus.
//!
//! Reads JSON lines `{id, text, label: malicious|benign, category, ...}` from
//! `INJECTION_CORPUS` (written by `scripts/bench-injection.sh` from PyPI `bastioncorpus`)
//! and reports, at the engine's threshold (0.5): recall per attack category, false
//! positives on the benign rows (the corpus's hard negatives), and the scan cost.

use std::collections::BTreeMap;
use std::time::Instant;

use vigil_immune::injection::scan;

#[derive(serde::Deserialize)]
struct Row {
    id: String,
    text: String,
    label: String,
    category: String,
}

const THRESHOLD: f64 = 0.5;

fn main() {
    let path = std::env::var("INJECTION_CORPUS").expect("INJECTION_CORPUS: the corpus as JSON lines");
    let text = std::fs::read_to_string(&path).expect("read the corpus");
    let rows: Vec<Row> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("row")).collect();
    let mut per: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let (mut attacks, mut caught, mut benign, mut false_positives) = (0, 0, 0, 0);
    let verbose = std::env::var("VERBOSE").is_ok();
    for row in &rows {
        let signal = scan(&row.text);
        let hit = signal.score >= THRESHOLD;
        if row.label == "benign" {
            benign += 1;
            if hit {
                false_positives += 1;
                eprintln!("false positive {} ({}): {:?} {:?}", row.id, row.category, signal.matched, row.text);
            }
        } else {
            attacks += 1;
            let entry = per.entry(row.category.clone()).or_default();
            entry.1 += 1;
            if hit {
                caught += 1;
                entry.0 += 1;
            } else if verbose {
                eprintln!(
                    "missed {} ({}): {:.2} {:?} {:?}",
                    row.id, row.category, signal.score, signal.matched, row.text
                );
            }
        }
    }
    for (category, (hit, n)) in &per {
        println!(
            "{{\"category\": \"{category}\", \"caught\": {hit}, \"attacks\": {n}, \"recall\": {:.3}}}",
            f64::from(*hit) / f64::from(*n)
        );
    }
    println!(
        "{{\"all_attacks\": {attacks}, \"caught\": {caught}, \"recall\": {:.3}, \"benign\": {benign}, \"false_positives\": {false_positives}}}",
        f64::from(caught) / f64::from(attacks.max(1))
    );
    let bytes: usize = rows.iter().map(|r| r.text.len()).sum();
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        for row in &rows {
            std::hint::black_box(scan(&row.text));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A long benign input (a document pasted into the conversation): the benign rows
    // repeated to 16 KiB.
    let mut long = String::new();
    while long.len() < 16 * 1024 {
        for row in rows.iter().filter(|r| r.label == "benign") {
            long.push_str(&row.text);
            long.push('\n');
        }
    }
    let started_long = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(scan(&long));
    }
    let long_us = started_long.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!(
        "{{\"scan_us_per_text\": {:.2}, \"corpus_bytes_per_text\": {}, \"scan_us_16kib_benign\": {long_us:.1}}}",
        elapsed * 1e6 / (rounds * rows.len()) as f64,
        bytes / rows.len().max(1)
    );
}
