//! The plugin protocol: one JSON [`Request`] on stdin, one JSON [`Response`] on stdout.
//!
//! Documented for plugin authors in `docs/plugin-protocol.md`. The response is first
//! checked against the plugin's output schema, then read into [`Response`], then its
//! findings are checked for the discipline every report relies on: each says whether it
//! is `measured` (and then carries evidence) or `modeled` (and then states assumptions).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this Vigil speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Resource budgets of one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Budgets {
    pub time_limit_ms: u64,
    pub memory_mb: u64,
    /// Rows a plugin may read before it must sample (reported back in its output).
    pub row_limit: Option<u64>,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets { time_limit_ms: 60_000, memory_mb: 1024, row_limit: None }
    }
}

/// What a plugin is given.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub protocol: u32,
    pub run: RunContext,
    pub plugin: PluginRef,
    /// The plugin's settings, already validated against its config schema.
    pub config: Value,
    pub input: InputRef,
    /// Results of the plugins this one depends on, by plugin id.
    pub dependencies: BTreeMap<String, DependencyRef>,
    /// Where the plugin writes its artifacts (the only folder it may write besides scratch).
    pub output_dir: PathBuf,
    /// The working directory; scratch space that is not kept.
    pub scratch_dir: PathBuf,
    /// Where the plugin may leave files for the plugins after it in this run (they find it
    /// as their dependency's `share_dir`): an intermediate result, deleted when the run
    /// ends, never part of the report. A dependent must work without it, since a result
    /// reused from an earlier run comes without its shared files.
    #[serde(default)]
    pub share_dir: Option<PathBuf>,
    pub seed: u64,
    pub budgets: Budgets,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunContext {
    pub run_id: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginRef {
    pub id: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputRef {
    pub path: PathBuf,
    pub file_name: String,
    pub format: String,
    pub sha256: String,
    pub size_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DependencyRef {
    /// The dependency's response, as JSON.
    pub response_path: PathBuf,
    pub artifacts_dir: PathBuf,
    /// What the dependency shared for this run (see [`Request::share_dir`]), when it still
    /// exists.
    #[serde(default)]
    pub share_dir: Option<PathBuf>,
}

/// Whether a plugin's run went well, in its own judgement.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Ok,
    Error,
}

/// What a plugin answers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub status: ResponseStatus,
    #[serde(default)]
    pub summary: String,
    /// Why it failed, when `status` is `error`.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Named measurements (numbers, strings, small objects).
    #[serde(default)]
    pub metrics: BTreeMap<String, Value>,
    /// Files the plugin wrote in its output folder.
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    /// For ingest plugins: the dataset version the input became.
    #[serde(default)]
    pub dataset: Option<DatasetVersion>,
    /// Whether the plugin looked at all of the input or a sample (and how).
    #[serde(default)]
    pub sampling: Option<Value>,
    /// Anything else, validated by the plugin's output schema only.
    #[serde(default)]
    pub data: Option<Value>,
}

impl Response {
    /// A run that went well, having looked at all of its input.
    pub fn ok(summary: String, findings: Vec<Finding>, metrics: BTreeMap<String, Value>) -> Response {
        Response {
            status: ResponseStatus::Ok,
            summary,
            error: None,
            findings,
            metrics,
            artifacts: Vec::new(),
            dataset: None,
            sampling: Some(serde_json::json!({ "complete": true })),
            data: None,
        }
    }

    /// A run that failed, saying why.
    pub fn failed(error: String) -> Response {
        Response {
            status: ResponseStatus::Error,
            summary: String::new(),
            error: Some(error),
            findings: Vec::new(),
            metrics: BTreeMap::new(),
            artifacts: Vec::new(),
            dataset: None,
            sampling: None,
            data: None,
        }
    }
}

/// How much to trust a finding.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

/// Whether a finding was observed in the data or comes from a model of it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementType {
    Measured,
    Modeled,
}

/// Where in the input a finding was seen.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// 1-based row (or line) numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<u64>,
    /// Values and their counts, or other measured values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
}

impl Evidence {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.rows.is_empty() && self.values.is_empty()
    }
}

/// Row (or line) numbers a finding cites; the count beside them is always complete.
pub const EVIDENCE_ROWS_MAX: usize = 20;

/// One thing a plugin found.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// A stable, machine-readable kind, e.g. `ragged_rows`.
    pub kind: String,
    pub title: String,
    pub severity: Severity,
    /// Required: `measured` or `modeled`. Optional only so a missing value can be reported
    /// with a clear message rather than a parse error.
    #[serde(default)]
    pub measurement_type: Option<MeasurementType>,
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// For modeled findings: what the model assumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Finding {
    /// A finding seen in the data, with the evidence of where.
    pub fn measured(kind: &str, title: String, severity: Severity, evidence: Evidence) -> Finding {
        Finding {
            kind: kind.to_owned(),
            title,
            severity,
            measurement_type: Some(MeasurementType::Measured),
            evidence: Some(evidence),
            assumptions: Vec::new(),
            value: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// Relative to the plugin's output folder.
    pub path: String,
    #[serde(default)]
    pub description: String,
}

impl ArtifactRef {
    pub fn new(path: &str, description: &str) -> ArtifactRef {
        ArtifactRef { path: path.to_owned(), description: description.to_owned() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetVersion {
    /// sha256 of the canonical content (independent of line endings, BOM, quoting).
    pub data_hash: String,
    pub rows: u64,
    pub columns: u64,
}

/// Checks the findings' discipline. Every problem names the finding and says what to add.
pub fn check_findings(findings: &[Finding]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let at = format!("findings[{i}] ({})", f.kind);
        if f.kind.trim().is_empty() || f.title.trim().is_empty() {
            problems.push(format!("{at}: kind and title must not be empty"));
        }
        match f.measurement_type {
            None => problems.push(format!(
                "{at}: measurement_type is missing: say \"measured\" (seen in the data, with evidence) or \"modeled\" (from a model, with assumptions)"
            )),
            Some(MeasurementType::Measured) if f.evidence.as_ref().is_none_or(Evidence::is_empty) => problems.push(format!(
                "{at}: a measured finding needs evidence: the columns, row numbers or value counts it was seen in"
            )),
            Some(MeasurementType::Modeled) if f.assumptions.is_empty() => {
                problems.push(format!("{at}: a modeled finding needs its assumptions listed"))
            }
            _ => {}
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finding(value: Value) -> Finding {
        serde_json::from_value(value).expect("finding")
    }

    #[test]
    fn discipline_is_enforced_with_actionable_messages() {
        let ok = finding(
            json!({"kind": "blank_lines", "title": "2 blank lines", "severity": "low", "measurement_type": "measured", "evidence": {"rows": [3, 9]}}),
        );
        let modeled = finding(
            json!({"kind": "forecast", "title": "t", "severity": "info", "measurement_type": "modeled", "assumptions": ["linear trend"]}),
        );
        assert!(check_findings(&[ok.clone(), modeled]).is_ok());
        let unmarked = finding(json!({"kind": "x", "title": "t", "severity": "info"}));
        let bare = finding(json!({"kind": "y", "title": "t", "severity": "info", "measurement_type": "measured"}));
        let problems = check_findings(&[ok, unmarked, bare]).expect_err("two problems");
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("findings[1] (x): measurement_type is missing"), "{problems:?}");
        assert!(problems[1].contains("needs evidence"), "{problems:?}");
    }

    #[test]
    fn responses_refuse_unknown_fields() {
        let err = serde_json::from_value::<Response>(json!({"status": "ok", "surprise": 1})).expect_err("unknown");
        assert!(err.to_string().contains("surprise"));
    }
}
