//! `tabular.ingest`: the input read as typed tables, and what reading left out.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};
use vigil_pack::Files;
use vigil_pack::protocol::{EVIDENCE_ROWS_MAX, Evidence, Finding, Request, Response, Severity};

use super::read_as::{IngestSettings, Loaded, dataset_version, encoding_name, load};
use super::scope::{Scope, per_table};
use super::{SNAPSHOT_BYTES_MAX, artifact, write_json};
use crate::ingest::{Dataset, Format as TableFormat};
use crate::snapshot;

/// Runs `tabular.ingest`.
pub(super) fn run(request: &Request, settings: &IngestSettings, files: &dyn Files) -> Result<Response, String> {
    let xlsx = request.input.format == "xlsx";
    let Loaded { tables, read_as, sheets } = load(files, settings, xlsx)?;
    let read_as = read_as.to_json();
    let cap = settings.max_record_bytes;
    let mut findings = Vec::new();
    for (i, (sheet, dataset)) in tables.iter().enumerate() {
        let mut found = problem_findings(dataset, cap);
        Scope::new(sheet.as_deref(), i, tables.len()).qualify(&mut found);
        findings.extend(found);
    }
    let version = dataset_version(&tables);
    let left_out: u64 = tables.iter().map(|(_, d)| d.problems.rows_left_out()).sum();
    let summaries: Vec<_> = tables.iter().map(|(_, d)| d.summary()).collect();
    let summary = match &summaries[..] {
        [only] => json!(only),
        all => json!(all),
    };
    let metrics = BTreeMap::from([
        ("rows".to_owned(), json!(version.rows)),
        ("columns".to_owned(), json!(version.columns)),
        ("rows_left_out".to_owned(), json!(left_out)),
        ("blank_lines".to_owned(), json!(tables.iter().map(|(_, d)| d.problems.blank_lines).sum::<u64>())),
        ("read_as".to_owned(), read_as.clone()),
        ("sheets".to_owned(), json!(sheets)),
        (
            "schema".to_owned(),
            per_table(&tables, |d| {
                let kinds: serde_json::Map<String, Value> = d
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), json!({"kind": c.kind.value.name(), "role": c.role.value})))
                    .collect();
                Value::Object(kinds)
            }),
        ),
    ]);
    write_json(files, "schema.json", &summary)?;
    let said = match &tables[..] {
        [(_, d)] => format!(
            "{} rows × {} columns read as {} ({})",
            d.rows,
            d.columns.len(),
            format_name(&d.format.value),
            encoding_name(d.encoding.value)
        ),
        _ => format!(
            "{} sheets read as tables ({}), {} rows in all",
            tables.len(),
            tables
                .iter()
                .map(|(s, d)| format!("{:?} {} × {}", s.as_deref().unwrap_or(""), d.rows, d.columns.len()))
                .collect::<Vec<_>>()
                .join(", "),
            version.rows
        ),
    };
    let mut response = Response::ok(format!("{said}; {left_out} rows left out"), findings, metrics);
    let listed: Vec<Value> = tables
        .iter()
        .map(|(sheet, d)| json!({ "sheet": sheet, "data_hash": d.data_hash, "rows": d.rows, "columns": d.columns.len() }))
        .collect();
    response.dataset = Some(version);
    response.data = Some(json!({ "read_as": read_as, "tables": listed, "summary": summary }));
    response.artifacts = vec![artifact(
        "schema.json",
        "Every column's kind and role with the evidence, how the file was read, what was left out",
    )];
    for (i, (_, dataset)) in tables.iter().enumerate() {
        share_table(files, &snapshot_name(i), dataset);
    }
    Ok(response)
}

/// The findings about what reading one table left out or could not read.
fn problem_findings(dataset: &Dataset, cap: u64) -> Vec<Finding> {
    let p = &dataset.problems;
    let mut findings = Vec::new();
    if p.ragged.count > 0 {
        let examples: Vec<Value> = p
            .ragged
            .examples
            .iter()
            .map(|r| json!({"line": r.line, "fields": r.fields, "expected": r.expected}))
            .collect();
        findings.push(lines_finding(
            "ragged_rows",
            format!("{} rows do not have the header's field count and were left out", p.ragged.count),
            Severity::High,
            ("rows", p.ragged.count),
            p.ragged.examples.iter().map(|r| r.line),
            ("examples", json!(examples)),
        ));
    }
    if p.too_long.count > 0 {
        findings.push(lines_finding(
            "records_too_long",
            format!("{} records are longer than the {cap}-byte cap and were left out", p.too_long.count),
            Severity::High,
            ("rows", p.too_long.count),
            p.too_long.examples.iter().map(|r| r.line),
            ("cap_bytes", json!(cap)),
        ));
    }
    if p.malformed.count > 0 {
        let reasons: Vec<Value> =
            p.malformed.examples.iter().map(|m| json!({"line": m.line, "reason": m.reason})).collect();
        findings.push(lines_finding(
            "malformed_records",
            format!("{} JSON records do not parse or are not objects and were left out", p.malformed.count),
            Severity::High,
            ("rows", p.malformed.count),
            p.malformed.examples.iter().map(|m| m.line),
            ("reasons", json!(reasons)),
        ));
    }
    if p.invalid_utf8.count > 0 {
        findings.push(lines_finding(
            "invalid_utf8",
            format!("{} lines hold bytes that are not UTF-8 (read as U+FFFD)", p.invalid_utf8.count),
            Severity::Medium,
            ("lines", p.invalid_utf8.count),
            p.invalid_utf8.examples.iter().copied(),
            ("encoding", json!(encoding_name(dataset.encoding.value))),
        ));
    }
    if p.invalid_cells.count > 0 {
        findings.push(lines_finding(
            "invalid_cells",
            format!(
                "{} cells hold a spreadsheet error (#DIV/0!, #N/A, ...) and were read as missing",
                p.invalid_cells.count
            ),
            Severity::Medium,
            ("cells", p.invalid_cells.count),
            p.invalid_cells.examples.iter().copied(),
            ("row_numbers", json!("sheet rows, 1-based")),
        ));
    }
    if !dataset.renamed.is_empty() {
        findings.push(Finding::measured(
            "renamed_columns",
            format!("{} header names were empty or repeated and were renamed", dataset.renamed.len()),
            Severity::Low,
            Evidence {
                columns: dataset.renamed.iter().map(|(_, to)| to.clone()).collect(),
                values: BTreeMap::from([(
                    "renamed".to_owned(),
                    json!(dataset.renamed.iter().map(|(from, to)| json!({"from": from, "to": to})).collect::<Vec<_>>()),
                )]),
                ..Evidence::default()
            },
        ));
    }
    findings
}

/// The file in the ingest's `share_dir` holding its table `index` (0-based).
pub(super) fn snapshot_name(index: usize) -> String {
    format!("table-{index}.snapshot")
}

/// Writes the typed table for the plugins after this one. Only a shortcut: when it cannot
/// be written, or would be too large, they read the input again.
fn share_table(files: &dyn Files, name: &str, dataset: &Dataset) {
    let size = snapshot::values_size(&dataset.columns, dataset.rows);
    let written = if size > SNAPSHOT_BYTES_MAX {
        Err(format!("it would take {size} bytes, more than {SNAPSHOT_BYTES_MAX}"))
    } else {
        match files.share(name) {
            Ok(None) => return,
            Ok(Some(mut out)) => snapshot::write_to(&mut out, &dataset.columns, dataset.rows)
                .map_err(|e| e.to_string())
                .and_then(|()| out.flush().map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        }
    };
    if let Err(e) = written {
        if let Err(e) = files.unshare(name) {
            eprintln!("the unfinished {name} is not removed: {e}");
        }
        eprintln!("the typed table is not shared with the plugins after this one: {e}");
    }
}

/// A finding about lines (or rows) of the input: how many, the first few, one more value.
fn lines_finding(
    kind: &str,
    title: String,
    severity: Severity,
    (counted, count): (&str, u64),
    lines: impl Iterator<Item = u64>,
    (key, value): (&str, Value),
) -> Finding {
    let values = BTreeMap::from([
        (counted.to_owned(), json!(count)),
        ("affected_rows".to_owned(), json!(count)),
        (key.to_owned(), value),
    ]);
    Finding::measured(
        kind,
        title,
        severity,
        Evidence { rows: lines.take(EVIDENCE_ROWS_MAX).collect(), values, ..Evidence::default() },
    )
}

fn format_name(format: &TableFormat) -> String {
    match format {
        TableFormat::Delimited(d) => {
            let delimiter = match d.delimiter.value {
                '\t' => "tab".to_owned(),
                c => format!("{c:?}"),
            };
            format!("delimited by {delimiter}, {}", if d.header.value { "with a header" } else { "no header" })
        }
        TableFormat::Json { layout } => {
            format!("JSON {}", serde_json::to_value(layout).unwrap_or_default().as_str().unwrap_or(""))
        }
        TableFormat::Xlsx { sheet } => format!("XLSX sheet {sheet:?}"),
    }
}
