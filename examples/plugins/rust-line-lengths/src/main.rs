//! Example Vigil plugin in Rust: line-length statistics.
//!
//! The protocol (docs/plugin-protocol.md): read one JSON request on stdin, write one JSON
//! response on stdout, log to stderr. This plugin depends on nothing from Vigil; any
//! language that reads and writes JSON can do the same.

use std::io::{BufRead, BufReader, Read, Write};

use serde_json::{Value, json};

fn main() {
    let mut raw = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut raw) {
        fail(&format!("cannot read the request: {e}"));
    }
    let request: Value = serde_json::from_str(&raw).unwrap_or_else(|e| fail(&format!("invalid request: {e}")));
    let limit = request["config"]["max_line_bytes"].as_u64().unwrap_or(200);
    let Some(path) = request["input"]["path"].as_str() else { fail("the request names no input path") };
    let file = std::fs::File::open(path).unwrap_or_else(|e| fail(&format!("cannot open {path}: {e}")));

    let mut lengths = Vec::new();
    let mut too_long = Vec::new();
    let mut line = Vec::new();
    let mut reader = BufReader::new(file);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => fail(&format!("cannot read the input: {e}")),
        }
        let len = line.strip_suffix(b"\n").map_or(line.len(), |l| l.strip_suffix(b"\r").map_or(l.len(), <[u8]>::len));
        lengths.push(len as u64);
        if len as u64 > limit {
            too_long.push(lengths.len() as u64);
        }
    }
    let mut sorted = lengths.clone();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let max = sorted.last().copied().unwrap_or(0);

    let mut findings = Vec::new();
    if !too_long.is_empty() {
        findings.push(json!({
            "kind": "long_lines",
            "title": format!("{} lines are longer than {limit} bytes", too_long.len()),
            "severity": "low",
            "measurement_type": "measured",
            "evidence": { "rows": too_long.iter().take(20).collect::<Vec<_>>(), "values": { "lines": too_long.len() } }
        }));
    }
    let response = json!({
        "status": "ok",
        "summary": format!("{} lines, median {median} bytes, longest {max}", lengths.len()),
        "metrics": { "lines": lengths.len(), "median_bytes": median, "max_bytes": max },
        "findings": findings,
    });
    eprintln!("measured {} lines", lengths.len());
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, &response);
    let _ = out.flush();
}

/// Answers with an error response (the protocol's way to fail) and exits.
fn fail(why: &str) -> ! {
    println!("{}", json!({ "status": "error", "error": why }));
    std::process::exit(0);
}
