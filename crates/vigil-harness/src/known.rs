//! Known issues: what a kind of dataset is expected to show, declared before a run and
//! evaluated after it (`evaluation.json`).
//!
//! A declared issue is checkable when it names a finding `kind`; it may narrow the match
//! to a plugin, a column the evidence names, a sheet of a workbook, and a least number of
//! affected rows. An
//! issue without a kind is a note: shown in the report, never counted as found or missed,
//! and the preview says so, so a free-form entry cannot pass for a check that runs.
//!
//! [`preview`] tells, before anything is saved or run, exactly which check each issue
//! becomes, which plugins can report its kind, whether they are in the plan, and which
//! findings of an earlier report it would match. [`evaluate`] is the same matching over a
//! finished run's findings.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_store::KnownIssueSet;

/// Most issues one dataset kind may declare.
pub const ISSUES_MAX: usize = 500;

/// One expected finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownIssue {
    /// A short name, unique in the declaration: letters, digits, `-`, `_`, `.`.
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,100}$"))]
    pub id: String,
    /// What the issue is, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The finding kind that shows it (`duplicate_keys`). Without a kind the issue is a
    /// note: reported, never checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only findings of this plugin match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_id: Option<String>,
    /// Only findings whose evidence names this column match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Only findings about this sheet of a workbook match: the finding's
    /// `evidence.values.sheet` (findings about a CSV or JSON input state no sheet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Only findings affecting at least this many rows match: the finding's
    /// `evidence.values.affected_rows` (a finding that does not state it never matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
}

/// What `PUT /api/v1/known-issues/{kind}` takes.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub issues: Vec<KnownIssue>,
}

impl Declaration {
    /// Checks every issue, listing every problem by issue.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.issues.len() > ISSUES_MAX {
            problems.push(format!("{} issues: at most {ISSUES_MAX} may be declared", self.issues.len()));
        }
        let mut seen = BTreeSet::new();
        for (i, issue) in self.issues.iter().enumerate() {
            let at = format!("issues[{i}]");
            if issue.id.is_empty()
                || issue.id.len() > 100
                || !issue.id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                problems.push(format!("{at}: id {:?} must be 1 to 100 letters, digits, '-', '_' or '.'", issue.id));
            } else if !seen.insert(issue.id.as_str()) {
                problems.push(format!("{at}: id {:?} is declared twice", issue.id));
            }
            match &issue.kind {
                Some(kind)
                    if kind.is_empty()
                        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
                {
                    problems.push(format!("{at}: kind {kind:?} must be lowercase letters, digits and underscores"));
                }
                None if issue.plugin_id.is_some()
                    || issue.column.is_some()
                    || issue.sheet.is_some()
                    || issue.min_rows.is_some() =>
                {
                    problems.push(format!(
                        "{at}: plugin_id, column, sheet and min_rows narrow a check, which needs a kind (or leave them out for a note)"
                    ));
                }
                None if issue.description.trim().is_empty() => {
                    problems.push(format!("{at}: a note (an issue without a kind) needs a description"));
                }
                _ => {}
            }
            if let Some(sheet) = &issue.sheet
                && (sheet.is_empty() || sheet.len() > 255)
            {
                problems.push(format!("{at}: sheet must be a sheet's name, 1 to 255 bytes"));
            }
            if issue.description.len() > 4096 {
                problems.push(format!("{at}: the description is longer than 4096 bytes"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

impl KnownIssue {
    /// The exact check this issue becomes, in words; `None` for a note.
    pub fn check(&self) -> Option<String> {
        let kind = self.kind.as_ref()?;
        let mut check = format!("a finding of kind `{kind}`");
        if let Some(plugin) = &self.plugin_id {
            check.push_str(&format!(" from {plugin}"));
        }
        if let Some(column) = &self.column {
            check.push_str(&format!(" naming column `{column}`"));
        }
        if let Some(sheet) = &self.sheet {
            check.push_str(&format!(" about sheet `{sheet}`"));
        }
        if let Some(n) = self.min_rows {
            check.push_str(&format!(" affecting at least {n} rows"));
        }
        Some(check)
    }

    /// Whether a finding, as `report.json` holds it, shows this issue.
    pub fn matches(&self, finding: &Value) -> bool {
        let Some(kind) = &self.kind else { return false };
        if finding["kind"].as_str() != Some(kind) {
            return false;
        }
        if let Some(plugin) = &self.plugin_id
            && finding["plugin_id"].as_str() != Some(plugin)
        {
            return false;
        }
        let evidence = &finding["evidence"];
        if let Some(column) = &self.column
            && !evidence["columns"].as_array().is_some_and(|c| c.iter().any(|c| c.as_str() == Some(column)))
        {
            return false;
        }
        if let Some(sheet) = &self.sheet
            && evidence["values"]["sheet"].as_str() != Some(sheet)
        {
            return false;
        }
        if let Some(n) = self.min_rows {
            // The cited rows are capped, so only a stated count can be compared.
            if evidence["values"]["affected_rows"].as_u64().is_none_or(|affected| affected < n) {
                return false;
            }
        }
        true
    }
}

/// The known issues a run is evaluated against, as resolved when it was planned.
pub fn issues_of(set: &KnownIssueSet) -> Result<Vec<KnownIssue>, String> {
    serde_json::from_value(set.issues.clone()).map_err(|e| {
        format!("version {} of the known issues of {:?} is unreadable: {e}", set.version, set.dataset_kind)
    })
}

/// A plugin as the preview and the evaluation see it.
#[derive(Clone, Debug)]
pub struct Reporter<'a> {
    pub plugin_id: &'a str,
    pub finding_kinds: &'a [String],
    /// Whether the plan (or the run) has it.
    pub planned: bool,
    /// For a run: whether it succeeded.
    pub succeeded: bool,
}

/// Where each issue stands before a run.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct IssuePreview {
    pub id: String,
    /// The exact check, or `None` for a note.
    pub check: Option<String>,
    /// `will_run`: a planned plugin reports this kind. `not_in_plan`: only plugins left
    /// out of the plan do. `no_plugin_reports_kind`: no plugin declares this kind, so the
    /// issue can only be missed. `note`: nothing is checked.
    pub status: &'static str,
    /// Plugins declaring the kind (limited to `plugin_id` when the issue names one).
    pub plugins: Vec<String>,
    /// With a report given: the findings of that report this issue matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_match: Option<Vec<String>>,
}

/// Which check each issue becomes and whether it can be found, optionally against the
/// findings of an earlier `report`.
pub fn preview(issues: &[KnownIssue], reporters: &[Reporter<'_>], report: Option<&Value>) -> Vec<IssuePreview> {
    issues
        .iter()
        .map(|issue| {
            let plugins: Vec<&Reporter<'_>> = able(issue, reporters);
            let status = match (&issue.kind, plugins.is_empty(), plugins.iter().any(|r| r.planned)) {
                (None, _, _) => "note",
                (Some(_), true, _) => "no_plugin_reports_kind",
                (Some(_), false, true) => "will_run",
                (Some(_), false, false) => "not_in_plan",
            };
            IssuePreview {
                id: issue.id.clone(),
                check: issue.check(),
                status,
                plugins: plugins.iter().map(|r| r.plugin_id.to_owned()).collect(),
                would_match: report.map(|r| matching(issue, r)),
            }
        })
        .collect()
}

/// The plugins that declare the issue's kind (and are the one it names, if it names one).
fn able<'a, 'b>(issue: &KnownIssue, reporters: &'b [Reporter<'a>]) -> Vec<&'b Reporter<'a>> {
    let Some(kind) = &issue.kind else { return Vec::new() };
    reporters
        .iter()
        .filter(|r| issue.plugin_id.as_deref().is_none_or(|p| p == r.plugin_id))
        .filter(|r| r.finding_kinds.iter().any(|k| k == kind))
        .collect()
}

/// The ids of the findings in `report` that show `issue`.
fn matching(issue: &KnownIssue, report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| issue.matches(f))
        .filter_map(|f| f["finding_id"].as_str().map(str::to_owned))
        .collect()
}

/// `evaluation.json`: which declared issues the run found (with the findings that show
/// them), which it missed (and why), which are notes, and the findings no issue expected.
pub fn evaluate(set: Option<&KnownIssueSet>, report: &Value, reporters: &[Reporter<'_>]) -> Value {
    let Some(set) = set else {
        return json!({
            "status": "no_known_issues_declared",
            "ground_truth_source": null,
            "expected": [], "found": [], "missed": [], "notes": [], "unexpected": [],
        });
    };
    let issues = match issues_of(set) {
        Ok(issues) => issues,
        Err(e) => {
            return json!({
                "status": "error", "error": e,
                "ground_truth_source": format!("known issues of {} version {}", set.dataset_kind, set.version),
                "expected": [], "found": [], "missed": [], "notes": [], "unexpected": [],
            });
        }
    };
    let mut found = Vec::new();
    let mut missed = Vec::new();
    let mut notes = Vec::new();
    let mut explained: BTreeSet<String> = BTreeSet::new();
    for issue in &issues {
        let Some(check) = issue.check() else {
            notes.push(json!({ "id": issue.id, "description": issue.description }));
            continue;
        };
        let ids = matching(issue, report);
        if !ids.is_empty() {
            explained.extend(ids.iter().cloned());
            found.push(json!({ "id": issue.id, "check": check, "finding_ids": ids }));
            continue;
        }
        let plugins = able(issue, reporters);
        let reason = if plugins.is_empty() {
            format!("no plugin declares `{}` findings", issue.kind.as_deref().unwrap_or(""))
        } else if !plugins.iter().any(|r| r.planned) {
            format!("{} did not run: not in the plan", names(&plugins))
        } else if !plugins.iter().any(|r| r.planned && r.succeeded) {
            format!("{} did not succeed", names(&plugins.iter().filter(|r| r.planned).copied().collect::<Vec<_>>()))
        } else {
            "no finding matched".to_owned()
        };
        missed.push(json!({ "id": issue.id, "check": check, "reason": reason }));
    }
    let unexpected: Vec<Value> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["finding_id"].as_str().is_some_and(|id| !explained.contains(id)))
        .filter(|f| matches!(f["severity"].as_str(), Some("high" | "medium")))
        .map(|f| json!({ "finding_id": f["finding_id"], "kind": f["kind"], "severity": f["severity"], "title": f["title"] }))
        .collect();
    let checked = found.len() + missed.len();
    json!({
        "status": match (checked, missed.is_empty()) {
            (0, _) => "nothing_checked",
            (_, true) => "all_found",
            (_, false) => "missed_some",
        },
        "ground_truth_source": format!("known issues of {} version {}", set.dataset_kind, set.version),
        "dataset_kind": set.dataset_kind,
        "version": set.version,
        "sha256": set.sha256,
        "strict": true,
        "expected": issues.iter().filter(|i| i.kind.is_some()).map(|i| i.id.clone()).collect::<Vec<_>>(),
        "recall": if checked == 0 { Value::Null } else { json!(found.len() as f64 / checked as f64) },
        "found": found,
        "missed": missed,
        "notes": notes,
        "unexpected": unexpected,
    })
}

fn names(reporters: &[&Reporter<'_>]) -> String {
    reporters.iter().map(|r| r.plugin_id).collect::<Vec<_>>().join(", ")
}

/// Reporters from plugin kinds and statuses (a helper for callers holding a registry).
pub fn reporters<'a>(
    kinds: &'a BTreeMap<String, Vec<String>>,
    planned: &BTreeSet<&str>,
    succeeded: &BTreeSet<&str>,
) -> Vec<Reporter<'a>> {
    kinds
        .iter()
        .map(|(id, finding_kinds)| Reporter {
            plugin_id: id,
            finding_kinds,
            planned: planned.contains(id.as_str()),
            succeeded: succeeded.contains(id.as_str()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::time::Timestamp;

    fn issue(v: Value) -> KnownIssue {
        serde_json::from_value(v).expect("issue")
    }

    fn report() -> Value {
        json!({ "findings": [
            { "finding_id": "a1", "plugin_id": "tabular.profile", "kind": "duplicate_keys", "severity": "high", "title": "t",
              "evidence": { "columns": ["invoice_id"], "rows": [1, 7], "values": { "affected_rows": 12 } } },
            { "finding_id": "b2", "plugin_id": "tabular.analyses", "kind": "outliers", "severity": "medium", "title": "t",
              "evidence": { "columns": ["amount"], "rows": [3] } },
            { "finding_id": "c3", "plugin_id": "core.text_profile", "kind": "blank_lines", "severity": "low", "title": "t",
              "evidence": { "rows": [4] } },
        ]})
    }

    fn kinds() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([
            ("tabular.profile".to_owned(), vec!["duplicate_keys".to_owned(), "missing_values".to_owned()]),
            ("tabular.analyses".to_owned(), vec!["outliers".to_owned(), "unmatched_references".to_owned()]),
        ])
    }

    #[test]
    fn matching_honours_kind_plugin_column_and_rows() {
        let findings = report();
        let f = &findings["findings"][0];
        assert!(issue(json!({"id": "d", "kind": "duplicate_keys"})).matches(f));
        assert!(issue(json!({"id": "d", "kind": "duplicate_keys", "column": "invoice_id", "min_rows": 12})).matches(f));
        assert!(!issue(json!({"id": "d", "kind": "duplicate_keys", "min_rows": 13})).matches(f), "12 rows affected");
        assert!(!issue(json!({"id": "d", "kind": "duplicate_keys", "column": "vendor_id"})).matches(f));
        assert!(!issue(json!({"id": "d", "kind": "duplicate_keys", "plugin_id": "core.text_profile"})).matches(f));
        assert!(!issue(json!({"id": "d", "kind": "outliers"})).matches(f));
        // A finding that does not state how many rows it affects cannot meet a minimum.
        assert!(issue(json!({"id": "o", "kind": "outliers"})).matches(&findings["findings"][1]));
        assert!(!issue(json!({"id": "o", "kind": "outliers", "min_rows": 1})).matches(&findings["findings"][1]));
        assert!(!issue(json!({"id": "n", "description": "a note"})).matches(f), "a note checks nothing");
    }

    #[test]
    fn an_issue_narrowed_to_a_sheet_matches_only_findings_about_that_sheet() {
        let finding = |sheet: Option<&str>| {
            let mut values = json!({ "affected_rows": 3 });
            if let Some(sheet) = sheet {
                values["sheet"] = json!(sheet);
            }
            json!({ "finding_id": "f", "plugin_id": "tabular.profile", "kind": "duplicate_keys",
                    "evidence": { "columns": ["invoice_id"], "values": values } })
        };
        let on_invoices =
            issue(json!({"id": "d", "kind": "duplicate_keys", "sheet": "Invoices", "column": "invoice_id"}));
        assert!(on_invoices.matches(&finding(Some("Invoices"))));
        assert!(!on_invoices.matches(&finding(Some("Vendors"))));
        assert!(!on_invoices.matches(&finding(Some("invoices"))), "sheet names compare exactly");
        assert!(!on_invoices.matches(&finding(None)), "a CSV's findings name no sheet");
        assert!(issue(json!({"id": "d", "kind": "duplicate_keys"})).matches(&finding(Some("Vendors"))));
        assert_eq!(
            on_invoices.check().as_deref(),
            Some("a finding of kind `duplicate_keys` naming column `invoice_id` about sheet `Invoices`")
        );
        let decl: Declaration = serde_json::from_value(json!({ "issues": [
            { "id": "loose", "sheet": "Invoices" },
            { "id": "blank", "kind": "outliers", "sheet": "" },
        ]}))
        .expect("parse");
        let problems = decl.validate().expect_err("problems");
        assert!(problems[0].contains("needs a kind") && problems[1].contains("sheet must be"), "{problems:?}");
    }

    #[test]
    fn declarations_are_validated_with_every_problem_named() {
        let decl: Declaration = serde_json::from_value(json!({ "issues": [
            { "id": "ok", "kind": "duplicate_keys" },
            { "id": "ok", "kind": "outliers" },
            { "id": "bad id!", "kind": "Outliers" },
            { "id": "loose", "column": "amount" },
            { "id": "empty-note" },
        ]}))
        .expect("parse");
        let problems = decl.validate().expect_err("problems");
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].contains("declared twice"), "{problems:?}");
        assert!(problems[1].contains("bad id!") && problems[2].contains("Outliers"), "{problems:?}");
        assert!(problems[3].contains("needs a kind") && problems[4].contains("needs a description"), "{problems:?}");
        let unknown =
            serde_json::from_value::<Declaration>(json!({ "issues": [{ "id": "x", "kind": "k", "colum": "a" }] }));
        assert!(unknown.expect_err("typo").to_string().contains("colum"));
    }

    #[test]
    fn the_preview_says_which_checks_run_and_what_they_would_match() {
        let kinds = kinds();
        let planned = BTreeSet::from(["tabular.profile"]);
        let reporters = reporters(&kinds, &planned, &BTreeSet::new());
        let issues = vec![
            issue(json!({"id": "dups", "kind": "duplicate_keys", "column": "invoice_id"})),
            issue(json!({"id": "spikes", "kind": "outliers"})),
            issue(json!({"id": "typo", "kind": "duplicate_key"})),
            issue(json!({"id": "why", "description": "month-end batch postings"})),
        ];
        let report = report();
        let preview = preview(&issues, &reporters, Some(&report));
        let status: Vec<&str> = preview.iter().map(|p| p.status).collect();
        assert_eq!(status, ["will_run", "not_in_plan", "no_plugin_reports_kind", "note"]);
        assert_eq!(preview[0].check.as_deref(), Some("a finding of kind `duplicate_keys` naming column `invoice_id`"));
        assert_eq!(preview[0].plugins, ["tabular.profile"]);
        assert_eq!(preview[0].would_match, Some(vec!["a1".to_owned()]));
        assert_eq!(preview[2].would_match, Some(vec![]));
        assert_eq!(preview[3].check, None);
    }

    #[test]
    fn evaluation_reports_found_missed_with_reasons_notes_and_the_unexpected() {
        let set = KnownIssueSet {
            dataset_kind: "erp.invoices".into(),
            version: 3,
            issues: json!([
                { "id": "dups", "kind": "duplicate_keys" },
                { "id": "orphans", "kind": "unmatched_references" },
                { "id": "gaps", "kind": "missing_values" },
                { "id": "typo", "kind": "duplicate_key" },
                { "id": "why", "description": "month-end batch postings" },
            ]),
            sha256: "s".into(),
            created_at: Timestamp::from_unix_micros(0),
            created_by: "alice".into(),
        };
        let kinds = kinds();
        let planned = BTreeSet::from(["tabular.profile", "tabular.analyses"]);
        let succeeded = BTreeSet::from(["tabular.profile"]);
        let eval = evaluate(Some(&set), &report(), &reporters(&kinds, &planned, &succeeded));
        assert_eq!(eval["status"], "missed_some");
        assert_eq!(
            eval["found"],
            json!([{ "id": "dups", "check": "a finding of kind `duplicate_keys`", "finding_ids": ["a1"] }])
        );
        let reasons: Vec<(&str, &str)> = eval["missed"]
            .as_array()
            .expect("missed")
            .iter()
            .map(|m| (m["id"].as_str().unwrap_or(""), m["reason"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(
            reasons,
            [
                ("orphans", "tabular.analyses did not succeed"),
                ("gaps", "no finding matched"),
                ("typo", "no plugin declares `duplicate_key` findings"),
            ]
        );
        assert_eq!(eval["notes"][0]["id"], "why");
        assert_eq!(eval["recall"], json!(0.25));
        assert_eq!(eval["unexpected"].as_array().map(|u| u.len()), Some(1), "the medium outlier nobody declared");
        assert_eq!(eval["ground_truth_source"], "known issues of erp.invoices version 3");
        assert_eq!(evaluate(None, &report(), &[])["status"], "no_known_issues_declared");
        let notes_only = KnownIssueSet { issues: json!([{ "id": "why", "description": "a note" }]), ..set.clone() };
        assert_eq!(evaluate(Some(&notes_only), &report(), &[])["status"], "nothing_checked");
        let broken = KnownIssueSet { issues: json!("not a list"), ..set };
        let eval = evaluate(Some(&broken), &report(), &[]);
        assert_eq!(eval["status"], "error");
        assert!(eval["ground_truth_source"].is_string(), "the report names what failed to load");
    }
}
