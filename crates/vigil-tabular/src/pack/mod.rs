//! The tabular statistics pack as three built-in plugins ([`vigil_pack`]'s contract):
//!
//! - `tabular.ingest` (ingest, [`ingest`]): reads CSV/TSV/TXT, JSON or a workbook's sheets
//!   into typed tables and reports the dataset version (rows, columns, the `data_hash` of
//!   the typed content), how it was read (encoding, dialect or JSON layout, each with its
//!   evidence), every column's kind and role with evidence, and the rows left out (with
//!   their line numbers).
//! - `tabular.profile` (profile, [`profile`]): exact statistics per column and per table,
//!   findings for duplicate rows and keys, missing values, constant columns, strong
//!   correlations and long date gaps, and the plots (histograms, missingness map,
//!   correlation matrices).
//! - `tabular.analyses` (analysis, [`analyses`]): outliers, Benford's test, volume by
//!   period, the referential checks the settings name, and personal data (redacted), with
//!   plots.
//!
//! An input is one table, or for a workbook one table per sheet with rows (or the sheets
//! the settings name). Each table is profiled and analysed on its own, and a referential
//! check may join two of them (an invoice sheet's vendor among the vendor sheet's). With
//! several tables, file names, titles and evidence name the sheet ([`scope::Scope`]), and
//! the dataset version covers them all ([`crate::table::tables_hash`]).
//!
//! The ingest shares its typed tables with the plugins after it as snapshots
//! ([`crate::snapshot`]); the profile and the analyses start from them when they are intact
//! and hash as the tables the ingest reported ([`tables`]). Otherwise (a result reused from
//! an earlier run comes without them) they read the input again exactly as the ingest did
//! (its response's `data.read_as`, [`read_as`]) and stop if the typed content hashes
//! differently. Either way all three describe one dataset version. Row numbers in their
//! evidence are data rows (1-based, header excluded); the ingest's are lines of the file
//! (rows of the sheet for a workbook).
//!
//! The thresholds that make a measurement a finding are constants here, each with its
//! reason; the settings are [`IngestSettings`], [`AnalysesSettings`] and none for the
//! profile.

pub mod analyses;
pub mod ingest;
pub mod profile;
pub mod read_as;
mod scope;
pub mod tables;
#[cfg(test)]
mod tests;

use serde_json::Value;
use vigil_pack::protocol::{ArtifactRef, Budgets, Request, Response};
use vigil_pack::{Builtin, Declaration, Files, NoSettings, Pack, Plugin, PluginKind};

pub use read_as::{EncodingSetting, IngestSettings, ReadAs, TextFormat, TextRead};

/// The tabular pack.
pub const PACK: Pack = Pack {
    name: "tabular",
    plugins: &[Builtin::of::<Ingest>(), Builtin::of::<ProfilePlugin>(), Builtin::of::<AnalysesPlugin>()],
};

/// The ingest's id: the profile and the analyses read its results.
pub const INGEST: &str = "tabular.ingest";
/// The pack's plugins' version: their declarations, settings and results change together.
const VERSION: &str = "1.2.0";
/// Input formats the pack reads.
const FORMATS: &[&str] = &["csv", "tsv", "text", "json", "ndjson", "xlsx"];
/// Every plugin of the pack may take half an hour and 8 GiB (a multi-gigabyte export).
const BUDGETS: Budgets = Budgets { time_limit_ms: 1_800_000, memory_mb: 8192, row_limit: None };

/// The largest snapshot written, well under the sandbox's cap on one file (4 GiB), which
/// would stop the plugin: past it the dependents read the input again.
const SNAPSHOT_BYTES_MAX: u64 = 2 << 30;
/// Histograms drawn (the first numeric columns); every column's statistics are reported.
const HISTOGRAMS_MAX: usize = 40;
/// A correlation at least this strong (in absolute value) is a finding.
const STRONG_CORRELATION: f64 = 0.95;
/// A date gap is a finding when it is at least this many days long, and this many times
/// the column's mean spacing between days with rows (sparse dates have long gaps anyway).
const DATE_GAP_DAYS: i64 = 7;
const DATE_GAP_SPACINGS: f64 = 5.0;

/// `tabular.ingest`.
#[derive(Debug)]
pub struct Ingest;

impl Plugin for Ingest {
    type Settings = IngestSettings;

    const DECLARATION: Declaration = Declaration {
        id: INGEST,
        name: "Read a table",
        version: VERSION,
        kind: PluginKind::Ingest,
        entry: "tabular_ingest",
        depends_on: &["core.inspect"],
        input_formats: FORMATS,
        finding_kinds: &[
            "ragged_rows",
            "records_too_long",
            "invalid_utf8",
            "malformed_records",
            "renamed_columns",
            "invalid_cells",
        ],
        description: "CSV, TSV, JSON or the sheets of a workbook to typed tables: encoding, dialect, column kinds and roles with evidence, a canonical data hash",
        budgets: BUDGETS,
    };

    fn run(request: &Request, settings: IngestSettings, files: &dyn Files) -> Result<Response, String> {
        ingest::run(request, &settings, files)
    }
}

/// `tabular.profile`.
#[derive(Debug)]
pub struct ProfilePlugin;

impl Plugin for ProfilePlugin {
    type Settings = NoSettings;

    const DECLARATION: Declaration = Declaration {
        id: "tabular.profile",
        name: "Profile a table",
        version: VERSION,
        kind: PluginKind::Profile,
        entry: "tabular_profile",
        depends_on: &[INGEST],
        input_formats: FORMATS,
        finding_kinds: &[
            "duplicate_rows",
            "duplicate_keys",
            "missing_values",
            "empty_column",
            "constant_column",
            "strong_correlation",
            "date_gap",
        ],
        description: "Exact per-column statistics, duplicates, missingness and correlations, with plots",
        budgets: BUDGETS,
    };

    fn run(_: &Request, _: NoSettings, files: &dyn Files) -> Result<Response, String> {
        profile::run(files)
    }
}

/// `tabular.analyses`.
#[derive(Debug)]
pub struct AnalysesPlugin;

/// The settings of `tabular.analyses`.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysesSettings {
    /// Referential checks: every value of `column` should occur in `parent`. In a
    /// workbook, `sheet` and `parent_sheet` say which sheet's column is meant (needed when
    /// more than one sheet has a column of that name).
    pub references: Vec<ReferenceSetting>,
}

/// One referential check: every value of `column` should occur in `parent`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSetting {
    pub column: String,
    pub parent: String,
    /// The sheet `column` is in (a workbook with the column in several sheets).
    #[serde(default)]
    pub sheet: Option<String>,
    /// The sheet `parent` is in.
    #[serde(default)]
    pub parent_sheet: Option<String>,
}

impl Plugin for AnalysesPlugin {
    type Settings = AnalysesSettings;

    const DECLARATION: Declaration = Declaration {
        id: "tabular.analyses",
        name: "Analyse a table",
        version: VERSION,
        kind: PluginKind::Analysis,
        entry: "tabular_analyses",
        depends_on: &[INGEST],
        input_formats: FORMATS,
        finding_kinds: &[
            "outliers",
            "benford_nonconformity",
            "volume_spike",
            "volume_gap",
            "unmatched_references",
            "personal_data",
        ],
        description: "Outliers, Benford's first-digit test, volume by period, referential checks and personal data",
        budgets: BUDGETS,
    };

    fn run(_: &Request, settings: AnalysesSettings, files: &dyn Files) -> Result<Response, String> {
        analyses::run(&settings, files)
    }
}

/// A file name part from a column name: lowercase ASCII letters, digits and dashes.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() { "column".to_owned() } else { out.to_owned() }
}

fn artifact(path: &str, description: &str) -> ArtifactRef {
    ArtifactRef::new(path, description)
}

fn write_file(files: &dyn Files, name: &str, content: &str) -> Result<(), String> {
    files.write_artifact(name, content.as_bytes()).map_err(|e| format!("cannot write {name}: {e}"))
}

fn write_json(files: &dyn Files, name: &str, value: &Value) -> Result<(), String> {
    write_file(files, name, &pretty(name, value)?)
}

/// `value` as the text of the JSON file `name`.
fn pretty(name: &str, value: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| format!("cannot write {name}: {e}"))
}
