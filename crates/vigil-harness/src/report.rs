//! The run's report: `report.json` (checked against `schemas/report.schema.json`),
//! `report.md` for people, and `evaluation.json`.
//!
//! `report.json` holds only what follows from the input, the plugins, their settings and
//! the seed: no durations, no cache hits, no paths. So two runs of the same work give the
//! same bytes once `run.id` and `run.created_at` are normalized. Each finding gets a
//! `finding_id` derived from its content (plugin, kind, title, evidence, value), so the
//! same finding keeps its id across runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::{Value, json};
use vigil_core::digest::Sha256Digest;
use vigil_core::run::ExecStatus;

use crate::manifest::Schema;
use crate::plan::Plan;
use crate::protocol::{Finding, MeasurementType, Response};

/// The report schema shipped with Vigil.
pub const REPORT_SCHEMA: &str = include_str!("../schemas/report.schema.json");

fn report_schema() -> Result<&'static Schema, String> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let doc: Value = serde_json::from_str(REPORT_SCHEMA).map_err(|e| format!("report schema: {e}"))?;
            Schema::compile(doc)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks a report against the report schema, with every problem listed.
pub fn validate(report: &Value) -> Result<(), String> {
    report_schema()?.check(report).map_err(|problems| format!("report.json is invalid: {}", problems.join("; ")))
}

/// Everything a report is made from.
#[derive(Debug)]
pub struct ReportInput<'a> {
    pub run_id: &'a str,
    pub fingerprint: &'a str,
    pub seed: u64,
    pub vigil_version: &'a str,
    pub created_at: &'a str,
    pub upload: &'a vigil_store::UploadRecord,
    pub plan: &'a Plan,
    /// Per planned plugin: how it ended.
    pub results: &'a BTreeMap<String, PluginResult>,
}

/// How one planned plugin ended, for the report.
#[derive(Debug)]
pub struct PluginResult {
    pub status: ExecStatus,
    pub error: Option<String>,
    pub violations: Vec<Value>,
    /// The response, when the plugin succeeded.
    pub response: Option<Response>,
}

/// A finding's id: the first 16 hex digits of the sha256 of its canonical content.
pub fn finding_id(plugin_id: &str, finding: &Finding) -> String {
    let canonical = json!({
        "plugin_id": plugin_id,
        "kind": finding.kind,
        "title": finding.title,
        "evidence": finding.evidence,
        "value": finding.value,
    });
    Sha256Digest::of(canonical.to_string().as_bytes()).to_string()[..16].to_owned()
}

/// The dataset version the run's input became: the one reported by the last plugin in
/// plan order to report one, since a later ingest plugin depends on (and refines) earlier
/// ones (`tabular.ingest`'s typed content hash over `core.inspect`'s line-level one). Only
/// ingest plugins report one: the executor fails any other plugin's response that does.
pub fn dataset_version<'a>(
    plan: &'a Plan,
    results: &'a BTreeMap<String, PluginResult>,
) -> Option<(&'a str, &'a crate::protocol::DatasetVersion)> {
    plan.steps.iter().rev().find_map(|step| {
        let result = results.get(&step.plugin_id).filter(|r| r.status.succeeded())?;
        Some((step.plugin_id.as_str(), result.response.as_ref()?.dataset.as_ref()?))
    })
}

/// Where a plugin's artifact lies, relative to the run folder.
pub fn artifact_path(plugin_id: &str, path: &str) -> String {
    format!("plugins/{plugin_id}/artifacts/{path}")
}

/// Builds `report.json`.
pub fn build(input: &ReportInput<'_>) -> Value {
    let mut findings = Vec::new();
    let mut metrics = serde_json::Map::new();
    let mut plugins = Vec::new();
    let dataset = dataset_version(input.plan, input.results).map_or(Value::Null, |(plugin_id, d)| {
        json!({ "data_hash": d.data_hash, "rows": d.rows, "columns": d.columns, "plugin_id": plugin_id })
    });
    for step in &input.plan.steps {
        let Some(PluginResult { status, error, violations, response }) = input.results.get(&step.plugin_id) else {
            continue;
        };
        // A reused result is reported as what it was; the reuse itself is run metadata.
        let shown = if *status == ExecStatus::Cached { ExecStatus::Ok } else { *status };
        let artifacts: Vec<Value> = response
            .iter()
            .filter(|_| status.succeeded())
            .flat_map(|r| &r.artifacts)
            .map(|a| json!({ "path": artifact_path(&step.plugin_id, &a.path), "description": a.description }))
            .collect();
        plugins.push(json!({
            "plugin_id": step.plugin_id,
            "version": step.version,
            "status": shown,
            "summary": response.as_ref().map(|r| r.summary.clone()).unwrap_or_default(),
            "error": error,
            "violations": violations,
            "sampling": response.as_ref().and_then(|r| r.sampling.clone()),
            "artifacts": artifacts,
        }));
        let Some(response) = response.as_ref().filter(|_| status.succeeded()) else { continue };
        if !response.metrics.is_empty() {
            metrics.insert(step.plugin_id.clone(), json!(response.metrics));
        }
        for finding in &response.findings {
            let mut value = serde_json::to_value(finding).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.insert("finding_id".into(), json!(finding_id(&step.plugin_id, finding)));
                object.insert("plugin_id".into(), json!(step.plugin_id));
                if object.get("evidence").is_some_and(Value::is_null) {
                    object.remove("evidence");
                }
            }
            findings.push(value);
        }
    }
    // Most severe first; ties in plan order, then by id, so the order is stable.
    findings.sort_by(|a, b| {
        let rank = |f: &Value| match f["severity"].as_str() {
            Some("high") => 0,
            Some("medium") => 1,
            Some("low") => 2,
            _ => 3,
        };
        rank(a).cmp(&rank(b)).then_with(|| a["finding_id"].as_str().cmp(&b["finding_id"].as_str()))
    });
    let u = input.upload;
    json!({
        "schema": "vigil.report/1",
        "run": {
            "id": input.run_id,
            "fingerprint": input.fingerprint,
            "seed": input.seed,
            "vigil_version": input.vigil_version,
            "created_at": input.created_at,
        },
        "input": {
            "upload_id": u.id,
            "file_name": u.file_name,
            "format": u.format,
            "sha256": u.sha256,
            "size_bytes": u.size_bytes,
            "dataset": dataset,
        },
        "plan": input.plan.steps.iter().map(|s| json!({
            "plugin_id": s.plugin_id, "version": s.version, "layer": s.layer, "reason": s.reason,
        })).collect::<Vec<_>>(),
        "plugins": plugins,
        "findings": findings,
        "metrics": metrics,
        // Filled in by the known-issue evaluation, which matches this report's findings.
        "evaluation": { "status": "not_evaluated" },
    })
}

/// `report.md`: the same report for people.
pub fn markdown(report: &Value) -> String {
    let mut md = String::new();
    let input = &report["input"];
    let run = &report["run"];
    let _ = writeln!(md, "# Report: {}\n", text(input["file_name"].as_str().unwrap_or("input")));
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| Input | {} ({}, {} bytes) |",
        text(input["file_name"].as_str().unwrap_or("")),
        text(input["format"].as_str().unwrap_or("")),
        input["size_bytes"]
    );
    let _ = writeln!(md, "| sha256 | `{}` |", input["sha256"].as_str().unwrap_or(""));
    if let Some(d) = input["dataset"].as_object() {
        let _ = writeln!(
            md,
            "| Dataset | {} rows × {} columns, data hash `{}` |",
            d["rows"],
            d["columns"],
            d["data_hash"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(
        md,
        "| Run | `{}`, seed {}, fingerprint `{}` |",
        run["id"].as_str().unwrap_or(""),
        run["seed"],
        run["fingerprint"].as_str().unwrap_or("")
    );
    let _ = writeln!(md, "| Vigil | {} |\n", run["vigil_version"].as_str().unwrap_or(""));

    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let modeled = findings.iter().filter(|f| f["measurement_type"] == "modeled").count();
    let _ = writeln!(md, "## Findings ({})\n", findings.len());
    if modeled > 0 {
        let _ = writeln!(md, "> {modeled} of these findings are **modeled**, not measured: read their assumptions.\n");
    }
    if findings.is_empty() {
        let _ = writeln!(md, "No findings: every plugin that ran found nothing to report.\n");
    }
    for f in &findings {
        let marker = if f["measurement_type"] == "modeled" { " (modeled)" } else { "" };
        let _ = writeln!(
            md,
            "- **{}** {}{} — {} from {} (id `{}`)",
            text(f["severity"].as_str().unwrap_or("")),
            text(f["title"].as_str().unwrap_or("")),
            marker,
            text(f["kind"].as_str().unwrap_or("")),
            text(f["plugin_id"].as_str().unwrap_or("")),
            text(f["finding_id"].as_str().unwrap_or(""))
        );
        if let Some(evidence) = f.get("evidence") {
            let mut parts = Vec::new();
            if let Some(cols) = evidence["columns"].as_array().filter(|c| !c.is_empty()) {
                parts.push(format!("columns {}", text(&join(cols))));
            }
            if let Some(rows) = evidence["rows"].as_array().filter(|r| !r.is_empty()) {
                parts.push(format!("rows {}", text(&join(rows))));
            }
            if let Some(values) = evidence["values"].as_object().filter(|v| !v.is_empty()) {
                parts.push(format!("values {}", text(&Value::Object(values.clone()).to_string())));
            }
            let _ = writeln!(md, "  - evidence: {}", parts.join("; "));
        }
        if let Some(assumptions) = f["assumptions"].as_array().filter(|a| !a.is_empty()) {
            let _ = writeln!(md, "  - assumptions: {}", text(&join(assumptions)));
        }
    }
    known_issues(&mut md, &report["evaluation"]);
    let artifacts: Vec<(&str, &Value)> = report["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            let id = p["plugin_id"].as_str().unwrap_or("");
            p["artifacts"].as_array().into_iter().flatten().map(move |a| (id, a))
        })
        .collect();
    let is_plot = |a: &Value| a["path"].as_str().is_some_and(|p| p.ends_with(".svg"));
    if artifacts.iter().any(|(_, a)| is_plot(a)) {
        let _ = writeln!(md, "\n## Plots\n");
        for (_, a) in artifacts.iter().filter(|(_, a)| is_plot(a)) {
            let description = text(a["description"].as_str().unwrap_or(""));
            let _ =
                writeln!(md, "### {description}\n\n![{description}]({})\n", target(a["path"].as_str().unwrap_or("")));
        }
    }
    let others: Vec<_> = artifacts.iter().filter(|(_, a)| !is_plot(a)).collect();
    if !others.is_empty() {
        let _ = writeln!(md, "\n## Files\n");
        for (id, a) in others {
            let path = a["path"].as_str().unwrap_or("");
            let _ = writeln!(
                md,
                "- [{}]({}) from {}: {}",
                text(path),
                target(path),
                text(id),
                text(a["description"].as_str().unwrap_or(""))
            );
        }
    }
    let _ = writeln!(md, "\n## Plugins\n\n| plugin | version | status | summary |\n|---|---|---|---|");
    for p in report["plugins"].as_array().into_iter().flatten() {
        let detail = p["error"].as_str().map_or_else(|| p["summary"].as_str().unwrap_or("").to_owned(), str::to_owned);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            text(p["plugin_id"].as_str().unwrap_or("")),
            text(p["version"].as_str().unwrap_or("")),
            text(p["status"].as_str().unwrap_or("")),
            text(&detail)
        );
    }
    let _ = writeln!(md, "\n## Plan\n");
    for s in report["plan"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "- layer {}: {} {} — {}",
            s["layer"],
            text(s["plugin_id"].as_str().unwrap_or("")),
            text(s["version"].as_str().unwrap_or("")),
            text(s["reason"].as_str().unwrap_or(""))
        );
    }
    md
}

/// The known-issue evaluation, for people.
fn known_issues(md: &mut String, evaluation: &Value) {
    let _ = writeln!(md, "\n## Known issues\n");
    if let Some(error) = evaluation["error"].as_str() {
        let _ = writeln!(md, "**Not evaluated**: {}", text(error));
        return;
    }
    let Some(source) = evaluation["ground_truth_source"].as_str() else {
        let _ = writeln!(
            md,
            "None declared for this run: submit it with a `dataset_kind` whose known issues are declared to evaluate them."
        );
        return;
    };
    let list = |key: &str| evaluation[key].as_array().cloned().unwrap_or_default();
    let (found, missed) = (list("found"), list("missed"));
    let _ =
        writeln!(md, "Evaluated against the {source}: **{} of {} found**.\n", found.len(), found.len() + missed.len());
    if !found.is_empty() || !missed.is_empty() {
        let _ = writeln!(md, "| issue | check | result |\n|---|---|---|");
    }
    for f in &found {
        let ids = f["finding_ids"].as_array().map(|ids| join(ids)).unwrap_or_default();
        let _ = writeln!(md, "| {} | {} | found: {} |", cell(&f["id"]), cell(&f["check"]), ids);
    }
    for m in &missed {
        let _ = writeln!(md, "| {} | {} | **missed**: {} |", cell(&m["id"]), cell(&m["check"]), cell(&m["reason"]));
    }
    for n in list("notes") {
        let _ = writeln!(md, "- note {}: {} (not checked)", cell(&n["id"]), cell(&n["description"]));
    }
    let unexpected = list("unexpected");
    if !unexpected.is_empty() {
        let _ = writeln!(md, "\n{} high or medium findings were not declared:\n", unexpected.len());
        for u in unexpected {
            let _ = writeln!(md, "- {} {} (id `{}`)", cell(&u["kind"]), cell(&u["title"]), cell(&u["finding_id"]));
        }
    }
}

/// A JSON value as inert markdown text (see [`text`]).
fn cell(value: &Value) -> String {
    text(&value.as_str().map_or_else(|| value.to_string(), str::to_owned))
}

/// Text from an upload or a plugin made inert in markdown: markup characters escaped and
/// line breaks made spaces, so a column name or a title cannot add headings, links,
/// images, HTML or table cells.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '|' | '!' | '{' | '}' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a link target: characters that would end or break it
/// percent-encoded.
fn target(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '(' | ')' | '<' | '>' | '[' | ']' | '"' | '\'' | '\\' | '`' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn join(values: &[Value]) -> String {
    values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect::<Vec<_>>().join(", ")
}

/// Whether a finding's measurement type is `measured`.
pub fn is_measured(f: &Finding) -> bool {
    f.measurement_type == Some(MeasurementType::Measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_text_cannot_add_markup_to_the_report() {
        assert_eq!(text("a\n## Known issues\n**5 of 5**"), "a \\#\\# Known issues \\*\\*5 of 5\\*\\*");
        assert_eq!(text("<img src=x onerror=alert(1)>"), "\\<img src=x onerror=alert\\(1\\)\\>");
        assert_eq!(text("[x](javascript:y) | z"), "\\[x\\]\\(javascript:y\\) \\| z");
        assert_eq!(target("plugins/p/artifacts/a b).svg"), "plugins/p/artifacts/a%20b%29.svg");
    }

    #[test]
    fn the_schema_compiles_and_refuses_undisciplined_findings() {
        let schema = report_schema().expect("schema");
        let finding = |f: Value| {
            json!({
                "schema": "vigil.report/1",
                "run": { "id": "r", "fingerprint": "0".repeat(64), "seed": 1, "vigil_version": "0.1.0", "created_at": "t" },
                "input": { "upload_id": "u", "file_name": "f", "format": "csv", "sha256": "0".repeat(64), "size_bytes": 1, "dataset": null },
                "plan": [], "plugins": [], "findings": [f], "metrics": {}, "evaluation": { "status": "x" },
            })
        };
        let good = json!({"finding_id": "0123456789abcdef", "plugin_id": "p", "kind": "k", "title": "t", "severity": "low", "measurement_type": "measured", "evidence": {"rows": [1]}});
        assert!(schema.check(&finding(good.clone())).is_ok());
        let mut bare = good.clone();
        bare.as_object_mut().map(|o| o.remove("evidence"));
        assert!(schema.check(&finding(bare)).is_err(), "measured without evidence");
        let mut unmarked = good;
        unmarked.as_object_mut().map(|o| o.remove("measurement_type"));
        assert!(schema.check(&finding(unmarked)).is_err(), "no measurement type");
    }
}
