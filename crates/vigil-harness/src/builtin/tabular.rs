//! The tabular statistics pack ([`vigil_tabular`]) as three built-in plugins:
//!
//! - `tabular.ingest` (ingest): reads CSV/TSV/TXT or JSON into a typed table and reports
//!   the dataset version (rows, columns, the `data_hash` of the typed content), how it was
//!   read (encoding, dialect or JSON layout, each with its evidence), every column's kind
//!   and role with evidence, and the rows left out (with their line numbers).
//! - `tabular.profile` (profile): exact statistics per column and per table, findings for
//!   duplicate rows and keys, missing values, constant columns, strong correlations and
//!   long date gaps, and the plots (histograms, missingness map, correlation matrices).
//! - `tabular.analyses` (analysis): outliers, Benford's test, volume by period, the
//!   referential checks the settings name, and personal data (redacted), with plots.
//!
//! An input is one table, or for a workbook one table per sheet with rows (or the sheets
//! the settings name). Each table is profiled and analysed on its own, and a referential
//! check may join two of them (an invoice sheet's vendor among the vendor sheet's). With
//! several tables, file names, titles and evidence name the sheet ([`Scope`]), and the
//! dataset version covers them all ([`vigil_tabular::table::tables_hash`]).
//!
//! The ingest shares its typed tables with the plugins after it as snapshots
//! ([`vigil_tabular::snapshot`], in its `share_dir`); the profile and the analyses start
//! from them when they are intact and hash as the tables the ingest reported. Otherwise (a
//! result reused from an earlier run comes without them) they read the input again exactly
//! as the ingest did (its response's `data.read_as`) and stop if the typed content hashes
//! differently. Either way all three describe one dataset version. Row numbers in their
//! evidence are data rows (1-based, header excluded); the ingest's are lines of the file
//! (rows of the sheet for a workbook).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use vigil_tabular::analyses::{self, Analyses, Referential, RobustZ};
use vigil_tabular::ingest::{ColumnSummary, Dataset, Format as TableFormat, IngestOptions, InputFormat};
use vigil_tabular::profile::{self, Profile};
use vigil_tabular::read::ReadOptions;
use vigil_tabular::snapshot;
use vigil_tabular::sniff::Encoding;
use vigil_tabular::table::{data_hash, tables_hash};
use vigil_tabular::xlsx::{XlsxOptions, ingest_xlsx};
use vigil_tabular::{Column, Role, default_threads, plot};

use super::{EVIDENCE_ROWS_MAX, measured, ok};
use crate::protocol::{ArtifactRef, DatasetVersion, Evidence, Finding, Request, Response, Severity};

pub(super) const INGEST: &str = "tabular.ingest";
/// The pack's plugins' version: their manifests, settings and results change together.
const VERSION: &str = "1.2.0";
/// The largest snapshot written, well under the sandbox's cap on one file (4 GiB), which
/// would stop the plugin: past it the dependents read the input again.
const SNAPSHOT_BYTES_MAX: u64 = 2 << 30;
/// Input formats the pack reads.
const FORMATS: &str = "input_formats = [\"csv\", \"tsv\", \"text\", \"json\", \"ndjson\", \"xlsx\"]\n";
/// Histograms drawn (the first numeric columns); every column's statistics are reported.
const HISTOGRAMS_MAX: usize = 40;
/// A correlation at least this strong (in absolute value) is a finding.
const STRONG_CORRELATION: f64 = 0.95;
/// A date gap is a finding when it is at least this many days long, and this many times
/// the column's mean spacing between days with rows (sparse dates have long gaps anyway).
const DATE_GAP_DAYS: i64 = 7;
const DATE_GAP_SPACINGS: f64 = 5.0;

/// The pack's manifests (TOML) with their config schemas.
pub(super) fn manifests() -> Vec<(String, Value)> {
    let budgets = "[budgets]\ntime_limit_ms = 1800000\nmemory_mb = 8192\n";
    let ingest = format!(
        "id = \"{INGEST}\"\nname = \"Read a table\"\nversion = \"{VERSION}\"\ntype = \"ingest\"\nbuiltin = \"tabular_ingest\"\n\
         depends_on = [\"core.inspect\"]\n{FORMATS}\
         finding_kinds = [\"ragged_rows\", \"records_too_long\", \"invalid_utf8\", \"malformed_records\", \"renamed_columns\", \"invalid_cells\"]\n\
         description = \"CSV, TSV, JSON or the sheets of a workbook to typed tables: encoding, dialect, column kinds and roles with evidence, a canonical data hash\"\n{budgets}"
    );
    let profile = format!(
        "id = \"tabular.profile\"\nname = \"Profile a table\"\nversion = \"{VERSION}\"\ntype = \"profile\"\nbuiltin = \"tabular_profile\"\n\
         depends_on = [\"{INGEST}\"]\n{FORMATS}\
         finding_kinds = [\"duplicate_rows\", \"duplicate_keys\", \"missing_values\", \"empty_column\", \"constant_column\", \"strong_correlation\", \"date_gap\"]\n\
         description = \"Exact per-column statistics, duplicates, missingness and correlations, with plots\"\n{budgets}"
    );
    let analyses = format!(
        "id = \"tabular.analyses\"\nname = \"Analyse a table\"\nversion = \"{VERSION}\"\ntype = \"analysis\"\nbuiltin = \"tabular_analyses\"\n\
         depends_on = [\"{INGEST}\"]\n{FORMATS}\
         finding_kinds = [\"outliers\", \"benford_nonconformity\", \"volume_spike\", \"volume_gap\", \"unmatched_references\", \"personal_data\"]\n\
         description = \"Outliers, Benford's first-digit test, volume by period, referential checks and personal data\"\n{budgets}"
    );
    let ingest_schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "format": { "enum": ["delimited", "json"], "description": "Detected from the content when not given" },
            "encoding": { "enum": ["utf-8", "utf-8-bom", "utf-16le", "utf-16be", "latin-1"] },
            "delimiter": { "type": "string", "minLength": 1, "maxLength": 1 },
            "header": { "type": "boolean" },
            "max_record_bytes": { "type": "integer", "minimum": 64, "maximum": 1_073_741_824_u64, "default": 16_777_216 },
            "sheets": {
                "type": "array", "items": { "type": "string" }, "uniqueItems": true,
                "description": "XLSX: the sheets to read; those with rows are profiled and analysed (every sheet when omitted, or only `sheet` when that is given)"
            },
            "sheet": { "type": "string", "description": "XLSX: the one sheet to profile and analyse (every sheet read that has rows when omitted)" }
        }
    });
    let profile_schema = json!({ "type": "object", "additionalProperties": false });
    let analyses_schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "references": {
                "type": "array",
                "description": "Referential checks: every value of `column` should occur in `parent`. In a workbook, `sheet` and `parent_sheet` say which sheet's column is meant (needed when more than one sheet has a column of that name)",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["column", "parent"],
                    "properties": {
                        "column": { "type": "string" },
                        "parent": { "type": "string" },
                        "sheet": { "type": "string" },
                        "parent_sheet": { "type": "string" }
                    }
                },
                "default": []
            }
        }
    });
    vec![(ingest, ingest_schema), (profile, profile_schema), (analyses, analyses_schema)]
}

/// Runs the pack's built-in `name`, or `None` if it is not one of the pack's.
pub(super) fn run(name: &str, request: &Request) -> Option<Result<Response, String>> {
    Some(match name {
        "tabular_ingest" => ingest(request),
        "tabular_profile" => profile(request),
        "tabular_analyses" => analyse(request),
        _ => return None,
    })
}

/// How the input was read: enough to read it again the same way.
#[derive(Debug, PartialEq)]
struct ReadAs {
    format: InputFormat,
    encoding: Encoding,
    delimiter: Option<u8>,
    header: Option<bool>,
    max_record_bytes: usize,
}

impl ReadAs {
    /// How a text table was read. A workbook has no text settings: `load` records its
    /// sheets instead, so one here is a mistake, refused rather than recorded wrongly.
    fn of(dataset: &Dataset, max_record_bytes: usize) -> Result<ReadAs, String> {
        let (format, delimiter, header) = match &dataset.format.value {
            TableFormat::Delimited(d) => {
                (InputFormat::Delimited, u8::try_from(d.delimiter.value).ok(), Some(d.header.value))
            }
            TableFormat::Json { .. } => (InputFormat::Json, None, None),
            TableFormat::Xlsx { sheet } => {
                return Err(format!("sheet {sheet:?} of a workbook cannot be read again as text"));
            }
        };
        Ok(ReadAs { format, encoding: dataset.encoding.value, delimiter, header, max_record_bytes })
    }

    fn to_json(&self) -> Value {
        json!({
            "format": match self.format { InputFormat::Delimited => "delimited", InputFormat::Json => "json" },
            "encoding": encoding_name(self.encoding),
            "delimiter": self.delimiter.map(|d| char::from(d).to_string()),
            "header": self.header,
            "max_record_bytes": self.max_record_bytes,
        })
    }

    /// Reads settings (the ingest's config, or a recorded `read_as`); absent choices are
    /// detected.
    fn from_json(value: &Value) -> Result<(IngestOptions, usize), String> {
        let format = match value.get("format").and_then(Value::as_str) {
            None => None,
            Some("delimited") => Some(InputFormat::Delimited),
            Some("json") => Some(InputFormat::Json),
            Some(other) => return Err(format!("unknown format {other:?}: use \"delimited\" or \"json\"")),
        };
        let encoding = match value.get("encoding").and_then(Value::as_str) {
            None => None,
            Some(name) => Some(encoding_named(name).ok_or_else(|| {
                format!("unknown encoding {name:?}: use utf-8, utf-8-bom, utf-16le, utf-16be or latin-1")
            })?),
        };
        let delimiter = match value.get("delimiter").and_then(Value::as_str) {
            None => None,
            Some(d) => match d.as_bytes() {
                [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Some(*b),
                _ => {
                    return Err(format!(
                        "the delimiter {d:?} must be one ASCII character other than a quote or newline"
                    ));
                }
            },
        };
        let header = value.get("header").and_then(Value::as_bool);
        let cap = value.get("max_record_bytes").and_then(Value::as_u64).unwrap_or(16 << 20);
        let cap = usize::try_from(cap).map_err(|_| "max_record_bytes is too large".to_owned())?;
        let read = ReadOptions { max_record_bytes: cap, ..ReadOptions::default() };
        Ok((IngestOptions { format, encoding, delimiter, header, read }, cap))
    }
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 => "utf-8",
        Encoding::Utf8Bom => "utf-8-bom",
        Encoding::Utf16Le => "utf-16le",
        Encoding::Utf16Be => "utf-16be",
        Encoding::Latin1 => "latin-1",
    }
}

fn encoding_named(name: &str) -> Option<Encoding> {
    [Encoding::Utf8, Encoding::Utf8Bom, Encoding::Utf16Le, Encoding::Utf16Be, Encoding::Latin1]
        .into_iter()
        .find(|e| encoding_name(*e) == name)
}

fn read(path: &Path, options: &IngestOptions) -> Result<Dataset, String> {
    vigil_tabular::ingest_path(path, options).map_err(|e| format!("cannot read the input as a table: {e}"))
}

/// The input read as tables, ready to describe.
struct Loaded {
    /// The tables to profile and analyse, each with the sheet it was read from (for a
    /// workbook), in the input's order.
    tables: Vec<(Option<String>, Dataset)>,
    /// How to read the same tables again.
    read_as: Value,
    /// For a workbook: every sheet read (name, rows, columns, data_hash, whether it is
    /// one of `tables`).
    sheets: Vec<Value>,
}

/// Reads the input as `how` says (the ingest's settings, or the `read_as` it recorded):
/// text or JSON as one table; a workbook's sheets as one table each, those with rows (or
/// the one `sheet` names; the first sheet when none has rows).
fn load(path: &Path, how: &Value, xlsx: bool) -> Result<Loaded, String> {
    if !xlsx && how.get("format").and_then(Value::as_str) != Some("xlsx") {
        let (options, cap) = ReadAs::from_json(how)?;
        let dataset = read(path, &options)?;
        let read_as = ReadAs::of(&dataset, cap)?.to_json();
        return Ok(Loaded { tables: vec![(None, dataset)], read_as, sheets: Vec::new() });
    }
    let sheet = how.get("sheet").and_then(Value::as_str);
    let mut sheets: Vec<String> = match how.get("sheets").and_then(Value::as_array) {
        Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
        None => sheet.map(str::to_owned).into_iter().collect(),
    };
    // A sheet named twice is one table, read once.
    let mut seen = std::collections::HashSet::new();
    sheets.retain(|name| seen.insert(name.clone()));
    let header = how.get("header").and_then(Value::as_bool);
    let options = XlsxOptions { sheets, header, ..XlsxOptions::default() };
    let read = ingest_xlsx(path, &options).map_err(|e| format!("cannot read the workbook: {e}"))?;
    let mut chosen: Vec<bool> = match sheet {
        Some(name) if !read.iter().any(|s| s.name == name) => {
            return Err(format!("sheet {name:?} was not read: list it in `sheets`"));
        }
        Some(name) => read.iter().map(|s| s.name == name).collect(),
        None => read.iter().map(|s| s.dataset.rows > 0).collect(),
    };
    if !chosen.contains(&true) {
        *chosen.first_mut().ok_or_else(|| "the workbook has no sheets".to_owned())? = true;
    }
    let sheets = read
        .iter()
        .zip(&chosen)
        .map(|(s, chosen)| {
            json!({
                "name": s.name,
                "rows": s.dataset.rows,
                "columns": s.dataset.columns.len(),
                "data_hash": s.dataset.data_hash,
                "profiled": chosen,
            })
        })
        .collect();
    let tables: Vec<(Option<String>, Dataset)> =
        read.into_iter().zip(chosen).filter(|(_, chosen)| *chosen).map(|(s, _)| (Some(s.name), s.dataset)).collect();
    let names: Vec<&str> = tables.iter().filter_map(|(name, _)| name.as_deref()).collect();
    let read_as = json!({ "format": "xlsx", "sheets": names, "header": header });
    Ok(Loaded { tables, read_as, sheets })
}

/// The dataset version of the input's tables: the only one's, or for several their
/// combined hash ([`tables_hash`]) with the rows and columns of them all.
fn dataset_version(tables: &[(Option<String>, Dataset)]) -> DatasetVersion {
    let hash = match tables {
        [(_, only)] => only.data_hash.clone(),
        _ => tables_hash(tables.iter().map(|(sheet, d)| (sheet.as_deref().unwrap_or(""), d.data_hash.as_str()))),
    };
    DatasetVersion {
        data_hash: hash,
        rows: tables.iter().map(|(_, d)| d.rows as u64).sum(),
        columns: tables.iter().map(|(_, d)| d.columns.len() as u64).sum(),
    }
}

/// What is said about one of the input's tables, told apart from the others': when there
/// are several (the sheets of a workbook), file names, titles and evidence name its sheet.
/// The only table of an input needs no more than its columns.
#[derive(Clone, Copy)]
struct Scope<'a> {
    /// The sheet the table was read from, if it came from a workbook.
    sheet: Option<&'a str>,
    /// The sheet and its 1-based place among the tables, when there are several.
    among: Option<(&'a str, usize)>,
}

impl<'a> Scope<'a> {
    /// The scope of table `index` (0-based) of `count`, read from `sheet`.
    fn new(sheet: Option<&'a str>, index: usize, count: usize) -> Scope<'a> {
        Scope { sheet, among: sheet.filter(|_| count > 1).map(|s| (s, index + 1)) }
    }

    /// The name of this table's file `name`: as is, or after the sheet's place and name.
    fn file(&self, name: &str) -> String {
        match self.among {
            None => name.to_owned(),
            Some((sheet, n)) => format!("sheet-{n:02}-{}-{name}", slug(sheet)),
        }
    }

    /// `text` about this table, saying which sheet when there are several.
    fn describe(&self, text: String) -> String {
        match self.among {
            None => text,
            Some((sheet, _)) => format!("{text} (sheet {sheet:?})"),
        }
    }

    /// Writes `content` as this table's file `name` (see [`Scope::file`]) in the plugin's
    /// output folder, and lists it among `artifacts` with its description.
    fn write(
        &self,
        request: &Request,
        artifacts: &mut Vec<ArtifactRef>,
        name: &str,
        content: &str,
        description: String,
    ) -> Result<(), String> {
        let name = self.file(name);
        write_file(request, &name, content)?;
        artifacts.push(artifact(&name, &self.describe(description)));
        Ok(())
    }

    /// Findings about this table: the evidence of each names the sheet it came from (so
    /// a known issue can be narrowed to it), and with several tables the title does too.
    fn qualify(&self, findings: &mut [Finding]) {
        let Some(sheet) = self.sheet else { return };
        for finding in findings {
            if self.among.is_some() {
                finding.title = format!("Sheet {sheet:?}: {}", finding.title);
            }
            if let Some(evidence) = &mut finding.evidence {
                evidence.values.insert("sheet".to_owned(), json!(sheet));
            }
        }
    }
}

/// `value` per table: the only table's, or an object keyed by sheet.
fn per_table<T>(tables: &[(Option<String>, T)], value: impl Fn(&T) -> Value) -> Value {
    match tables {
        [(_, only)] => value(only),
        _ => Value::Object(tables.iter().map(|(sheet, t)| (sheet.clone().unwrap_or_default(), value(t))).collect()),
    }
}

fn ingest(request: &Request) -> Result<Response, String> {
    let xlsx = request.input.format == "xlsx";
    let Loaded { tables, read_as, sheets } = load(&request.input.path, &request.config, xlsx)?;
    let cap = request.config.get("max_record_bytes").and_then(Value::as_u64).unwrap_or(16 << 20);
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
    write_json(request, "schema.json", &summary)?;
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
    let mut response = ok(format!("{said}; {left_out} rows left out"), findings, metrics);
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
    if let Some(share) = &request.share_dir {
        for (i, (_, dataset)) in tables.iter().enumerate() {
            share_table(&share.join(snapshot_name(i)), dataset);
        }
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
        findings.push(measured(
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
fn snapshot_name(index: usize) -> String {
    format!("table-{index}.snapshot")
}

/// Writes the typed table for the plugins after this one. Only a shortcut: when it cannot
/// be written, or would be too large, they read the input again.
fn share_table(path: &Path, dataset: &Dataset) {
    let size = snapshot::values_size(&dataset.columns, dataset.rows);
    let written = if size > SNAPSHOT_BYTES_MAX {
        Err(format!("it would take {size} bytes, more than {SNAPSHOT_BYTES_MAX}"))
    } else {
        snapshot::write(path, &dataset.columns, dataset.rows).map_err(|e| e.to_string())
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
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
    measured(
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

/// One typed table of the input, as the ingest produced it.
struct Table {
    /// The sheet it was read from, for a workbook.
    sheet: Option<String>,
    columns: Vec<Column>,
    rows: usize,
}

/// What the ingest reported of one table: the hash of its typed content, and its schema
/// (each column's kind and role with their evidence), which the hash does not cover.
struct Reported<'a> {
    sheet: Option<String>,
    data_hash: &'a str,
    schema: &'a Value,
}

impl Reported<'_> {
    /// Whether a snapshot is the table reported: the same content, and every column with
    /// the reported kind and role for the same reasons (the evidence).
    fn check_snapshot(&self, columns: &[Column], rows: usize) -> Result<(), String> {
        if data_hash(columns, rows, default_threads()) != self.data_hash {
            return Err("it is not the table the ingest reported".to_owned());
        }
        self.check_schema(columns, true)
    }

    /// Column by column against the reported schema: names, kinds, roles and missing
    /// counts, and with `evidence` the reasons given for each kind and role too. Names
    /// the first difference.
    fn check_schema(&self, columns: &[Column], evidence: bool) -> Result<(), String> {
        let reported = self.schema.as_array().map_or(&[][..], Vec::as_slice);
        if reported.len() != columns.len() {
            return Err(format!("{} columns where the ingest reported {}", columns.len(), reported.len()));
        }
        for (column, said) in columns.iter().zip(reported) {
            let now = serde_json::to_value(ColumnSummary::of(column)).map_err(|e| e.to_string())?;
            let differs = |field: &str| match (&now[field], &said[field]) {
                (Value::Object(a), Value::Object(b)) if !evidence => a.get("value") != b.get("value"),
                (a, b) => a != b,
            };
            if let Some(field) = ["name", "kind", "role", "missing"].into_iter().find(|f| differs(f)) {
                // Without the evidence compared, show only what was compared.
                let shown = |v: &Value| if evidence || !v.is_object() { v.to_string() } else { v["value"].to_string() };
                return Err(format!(
                    "column {:?} has {field} {} where the ingest reported {}",
                    column.name,
                    shown(&now[field]),
                    shown(&said[field])
                ));
            }
        }
        Ok(())
    }
}

/// The typed tables the ingest produced (one, or one per sheet of a workbook): its
/// snapshots when intact and the tables it reported (content, kinds and roles), else the
/// input read again the same way and checked against the same report.
fn tables_of(request: &Request) -> Result<Vec<Table>, String> {
    let dependency =
        request.dependencies.get(INGEST).ok_or_else(|| format!("{INGEST} did not run before this plugin"))?;
    let raw = std::fs::read(&dependency.response_path).map_err(|e| format!("cannot read {INGEST}'s response: {e}"))?;
    let response: Response =
        serde_json::from_slice(&raw).map_err(|e| format!("{INGEST}'s response is invalid: {e}"))?;
    let data = response.data.as_ref().ok_or_else(|| format!("{INGEST} did not say how it read the input"))?;
    let read_as = data.get("read_as").ok_or_else(|| format!("{INGEST} did not say how it read the input"))?;
    let listed = data.get("tables").and_then(Value::as_array).filter(|t| !t.is_empty());
    let listed = listed.ok_or_else(|| format!("{INGEST} did not list the tables it read"))?;
    // One table's summary is the summary itself; several are a list.
    let summaries = match data.get("summary") {
        Some(Value::Array(all)) => all.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    if summaries.len() != listed.len() {
        return Err(format!("{INGEST} did not report the schema of every table it read"));
    }
    let expected: Vec<Reported> = listed
        .iter()
        .zip(summaries)
        .map(|(t, summary)| {
            let data_hash = t
                .get("data_hash")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{INGEST} listed a table without its data_hash"))?;
            let schema =
                summary.get("schema").ok_or_else(|| format!("{INGEST} reported a table without its schema"))?;
            let sheet = t.get("sheet").and_then(Value::as_str).map(str::to_owned);
            Ok(Reported { sheet, data_hash, schema })
        })
        .collect::<Result<_, String>>()?;
    if let Some(share) = &dependency.share_dir {
        match snapshots(share, &expected) {
            Ok(tables) => return Ok(tables),
            Err(e) => eprintln!("{INGEST}'s snapshots are not used ({e}): reading the input again"),
        }
    }
    let loaded = load(&request.input.path, read_as, false)?;
    if loaded.tables.len() != expected.len() {
        return Err(format!(
            "the input reads as {} tables now but {INGEST} read {}: it changed in between",
            loaded.tables.len(),
            expected.len()
        ));
    }
    let mut tables = Vec::with_capacity(expected.len());
    for ((sheet, d), reported) in loaded.tables.into_iter().zip(&expected) {
        if d.data_hash != reported.data_hash {
            return Err(format!(
                "the input reads as {} now but {INGEST} read it as {}: it changed in between",
                d.data_hash, reported.data_hash
            ));
        }
        // The same content: only a different reading (another Vigil build) can differ here,
        // so the reasons given may be worded otherwise, but kinds and roles must agree.
        reported.check_schema(&d.columns, false).map_err(|e| {
            format!("the input is what {INGEST} read, but this Vigil reads it otherwise ({e}): run {INGEST} again")
        })?;
        tables.push(Table { sheet, columns: d.columns, rows: d.rows });
    }
    Ok(tables)
}

/// The tables from the ingest's snapshots in `share`, each checked against its report.
fn snapshots(share: &Path, expected: &[Reported]) -> Result<Vec<Table>, String> {
    let mut tables = Vec::with_capacity(expected.len());
    for (i, reported) in expected.iter().enumerate() {
        let name = snapshot_name(i);
        let (columns, rows) = snapshot::read(&share.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        reported.check_snapshot(&columns, rows).map_err(|e| format!("{name}: {e}"))?;
        tables.push(Table { sheet: reported.sheet.clone(), columns, rows });
    }
    Ok(tables)
}

fn profile(request: &Request) -> Result<Response, String> {
    let tables = tables_of(request)?;
    let (mut findings, mut artifacts, mut profiled) = (Vec::new(), Vec::new(), Vec::new());
    for (i, table) in tables.iter().enumerate() {
        let scope = Scope::new(table.sheet.as_deref(), i, tables.len());
        let (p, mut found) = profile_table(request, table, scope, &mut artifacts)?;
        scope.qualify(&mut found);
        findings.extend(found);
        profiled.push((table.sheet.clone(), p));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let rows: usize = profiled.iter().map(|(_, p)| p.rows).sum();
    let duplicates: usize = profiled.iter().map(|(_, p)| p.duplicate_rows.count).sum();
    let columns = |p: &Profile| {
        json!(p.columns.iter().map(|c| (c.name.clone(), column_metrics(c))).collect::<serde_json::Map<_, _>>())
    };
    let mut metrics = BTreeMap::from([
        ("rows".to_owned(), json!(rows)),
        ("exact".to_owned(), json!(profiled.iter().all(|(_, p)| p.exact))),
        ("duplicate_rows".to_owned(), json!(duplicates)),
        ("row_numbers".to_owned(), json!("data rows, 1-based, header excluded")),
    ]);
    let summary = match &profiled[..] {
        [(_, p)] => {
            metrics.insert("columns".to_owned(), columns(p));
            format!("{} rows × {} columns profiled exactly", p.rows, p.columns.len())
        }
        _ => {
            let sheets = per_table(
                &profiled,
                |p| json!({ "rows": p.rows, "duplicate_rows": p.duplicate_rows.count, "columns": columns(p) }),
            );
            metrics.insert("sheets".to_owned(), sheets);
            format!("{} sheets profiled exactly, {rows} rows in all", profiled.len())
        }
    };
    let summary = format!("{summary}; {duplicates} duplicate rows; {} findings", findings.len());
    let mut response = ok(summary, findings, metrics);
    response.artifacts = artifacts;
    Ok(response)
}

/// Profiles one table: writes its statistics and plots (adding them to `artifacts`) and
/// returns the profile and its findings.
fn profile_table(
    request: &Request,
    table: &Table,
    scope: Scope<'_>,
    artifacts: &mut Vec<ArtifactRef>,
) -> Result<(Profile, Vec<Finding>), String> {
    let Table { columns, rows, .. } = table;
    let mut p = profile::profile(columns, *rows, default_threads());
    // A personal-data column's extremes, averages and dates are its values (an SSN as
    // the maximum, a birth date as the first day): none of them leaves the plugin.
    for column in p.columns.iter_mut().filter(|c| c.role == Role::Pii) {
        column.numeric = None;
        column.dates = None;
    }
    let findings = profile_findings(&p, columns);
    let mut add =
        |name: &str, content: &str, description: String| scope.write(request, artifacts, name, content, description);
    add(
        "profile.json",
        &pretty("profile.json", &json!(p))?,
        "Every statistic of every column and of the table".to_owned(),
    )?;
    let numeric = p.columns.iter().enumerate().filter_map(|(i, c)| Some((i, c, c.numeric.as_ref()?)));
    for (i, column, stats) in numeric.take(HISTOGRAMS_MAX) {
        let name = format!("histogram-{:02}-{}.svg", i + 1, slug(&column.name));
        add(&name, &plot::histogram(&column.name, stats), format!("Histogram of {}", column.name))?;
    }
    if *rows > 0 && !columns.is_empty() {
        let map = plot::missingness(columns, *rows);
        add("missingness.svg", &map, "Missing values by column and row band".to_owned())?;
    }
    let c = &p.correlations;
    let matrices = [
        ("correlation-pearson.svg", "Pearson correlation", &c.numeric, &c.pearson, true),
        ("correlation-spearman.svg", "Spearman correlation", &c.numeric, &c.spearman, true),
        ("cramers-v.svg", "Cramér's V between categories", &c.categorical, &c.cramers_v, false),
    ];
    for (name, title, names, matrix, signed) in matrices {
        if names.len() >= 2 {
            add(name, &plot::correlation(title, names, matrix, signed), title.to_owned())?;
        }
    }
    Ok((p, findings))
}

/// The statistics of one column that belong in the report itself.
fn column_metrics(c: &profile::ColumnProfile) -> Value {
    let mut m =
        json!({ "kind": c.kind, "role": c.role, "count": c.count, "missing": c.missing, "distinct": c.distinct });
    if let Some(n) = &c.numeric {
        m["min"] = json!(n.min);
        m["max"] = json!(n.max);
        m["mean"] = json!(n.mean);
        m["median"] = json!(n.median);
        m["std"] = json!(n.std);
        m["zeros"] = json!(n.zeros);
        m["negatives"] = json!(n.negatives);
    }
    if let Some(d) = &c.dates {
        m["first"] = json!(d.first);
        m["last"] = json!(d.last);
    }
    m
}

fn profile_findings(p: &Profile, columns: &[Column]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let values =
        |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>();
    if p.duplicate_rows.count > 0 {
        let d = &p.duplicate_rows;
        findings.push(measured(
            "duplicate_rows",
            format!("{} rows repeat an earlier row in every column", d.count),
            Severity::Medium,
            Evidence {
                rows: d.examples.iter().map(|(row, _)| *row as u64).take(EVIDENCE_ROWS_MAX).collect(),
                values: values(&[
                    ("rows", json!(d.count)),
                    ("affected_rows", json!(d.count)),
                    ("repeat_and_first_seen", json!(d.examples)),
                ]),
                ..Evidence::default()
            },
        ));
    }
    for k in &p.duplicate_keys {
        let rows: Vec<u64> =
            k.examples.iter().flat_map(|(_, rows)| rows.iter().map(|r| *r as u64)).take(EVIDENCE_ROWS_MAX).collect();
        findings.push(measured(
            "duplicate_keys",
            format!(
                "{} values of identifier column {} occur more than once ({} extra rows)",
                k.values, k.column, k.rows
            ),
            Severity::High,
            Evidence {
                columns: vec![k.column.clone()],
                rows,
                values: values(&[
                    ("values", json!(k.values)),
                    ("rows", json!(k.rows)),
                    ("affected_rows", json!(k.rows)),
                    ("examples", json!(k.examples)),
                ]),
            },
        ));
    }
    for (column, stats) in columns.iter().zip(&p.columns) {
        if stats.count == 0 {
            findings.push(measured(
                "empty_column",
                format!("Column {} has no values", stats.name),
                Severity::Low,
                Evidence {
                    columns: vec![stats.name.clone()],
                    values: values(&[("missing", json!(stats.missing))]),
                    ..Evidence::default()
                },
            ));
            continue;
        }
        if stats.missing > 0 {
            let share = stats.missing as f64 / p.rows as f64;
            let rows: Vec<u64> = (0..p.rows)
                .filter(|&r| column.validity.is_missing(r))
                .take(EVIDENCE_ROWS_MAX)
                .map(|r| r as u64 + 1)
                .collect();
            findings.push(measured(
                "missing_values",
                format!(
                    "Column {} is missing {} of {} values ({:.1}%)",
                    stats.name,
                    stats.missing,
                    p.rows,
                    share * 100.0
                ),
                if share >= 0.5 {
                    Severity::Medium
                } else if share >= 0.05 {
                    Severity::Low
                } else {
                    Severity::Info
                },
                Evidence {
                    columns: vec![stats.name.clone()],
                    rows,
                    values: values(&[
                        ("missing", json!(stats.missing)),
                        ("affected_rows", json!(stats.missing)),
                        ("rows", json!(p.rows)),
                        ("share", json!(share)),
                    ]),
                },
            ));
        }
        if stats.distinct == 1 && p.rows > 1 {
            findings.push(measured(
                "constant_column",
                format!("Column {} holds one value in every row that has one", stats.name),
                Severity::Low,
                Evidence {
                    columns: vec![stats.name.clone()],
                    values: values(&[("distinct", json!(1)), ("count", json!(stats.count)), ("top", json!(stats.top))]),
                    ..Evidence::default()
                },
            ));
        }
        if let Some(d) = &stats.dates {
            let spacing = d.span_days as f64 / d.days_with_rows.max(1) as f64;
            let unusual = |days: i64| days >= DATE_GAP_DAYS && days as f64 >= DATE_GAP_SPACINGS * spacing;
            for gap in d.gaps.iter().filter(|g| unusual(g.missing_days)) {
                findings.push(measured(
                    "date_gap",
                    format!(
                        "No rows in {} for {} days between {} and {}",
                        stats.name, gap.missing_days, gap.after, gap.before
                    ),
                    Severity::Low,
                    Evidence {
                        columns: vec![stats.name.clone()],
                        values: values(&[
                            ("after", json!(gap.after)),
                            ("before", json!(gap.before)),
                            ("missing_days", json!(gap.missing_days)),
                            ("mean_spacing_days", json!(spacing)),
                        ]),
                        ..Evidence::default()
                    },
                ));
            }
        }
    }
    let c = &p.correlations;
    let pairs = [
        ("pearson", &c.numeric, &c.pearson),
        ("spearman", &c.numeric, &c.spearman),
        ("cramers_v", &c.categorical, &c.cramers_v),
    ];
    for (measure, names, matrix) in pairs {
        for i in 0..names.len() {
            for j in i + 1..names.len() {
                let Some(r) = matrix.get(i).and_then(|row| row.get(j)).copied().flatten() else { continue };
                if r.abs() >= STRONG_CORRELATION {
                    findings.push(measured(
                        "strong_correlation",
                        format!("{} and {} are almost interchangeable ({measure} {r:.4})", names[i], names[j]),
                        Severity::Info,
                        Evidence {
                            columns: vec![names[i].clone(), names[j].clone()],
                            values: values(&[("measure", json!(measure)), ("value", json!(r))]),
                            ..Evidence::default()
                        },
                    ));
                }
            }
        }
    }
    findings
}

/// A referential check as the settings name it.
struct Reference<'a> {
    column: &'a str,
    sheet: Option<&'a str>,
    parent: &'a str,
    parent_sheet: Option<&'a str>,
}

impl<'a> Reference<'a> {
    /// The checks the analyses' settings name.
    fn all(config: &'a Value) -> Result<Vec<Reference<'a>>, String> {
        let listed = config.get("references").and_then(Value::as_array).into_iter().flatten();
        listed
            .map(|r| {
                let name = |key: &str| r.get(key).and_then(Value::as_str);
                let (column, parent) = name("column")
                    .zip(name("parent"))
                    .ok_or_else(|| "each reference needs a column and a parent".to_owned())?;
                Ok(Reference { column, sheet: name("sheet"), parent, parent_sheet: name("parent_sheet") })
            })
            .collect()
    }
}

/// The table (its index) and column a referential check names: in the sheet it names, or
/// else in the one table that has a column of that name.
fn locate<'t>(tables: &'t [Table], column: &str, sheet: Option<&str>) -> Result<(usize, &'t Column), String> {
    let named = |t: &'t Table| t.columns.iter().find(|c| c.name == column);
    if let Some(sheet) = sheet {
        let Some(at) = tables.iter().position(|t| t.sheet.as_deref() == Some(sheet)) else {
            let tabled: Vec<&str> = tables.iter().filter_map(|t| t.sheet.as_deref()).collect();
            return Err(if tabled.is_empty() {
                format!("a referential check names sheet {sheet:?}, but the input is not a workbook")
            } else {
                format!(
                    "a referential check names sheet {sheet:?}, which is not one of the tables profiled {tabled:?} \
                     (a sheet without rows, one not listed in `sheets`, or one other than the chosen `sheet`)"
                )
            });
        };
        let found = named(&tables[at])
            .ok_or_else(|| format!("sheet {sheet:?} has no column named {column:?} (a referential check names it)"))?;
        return Ok((at, found));
    }
    let holding: Vec<(usize, &Column)> =
        tables.iter().enumerate().filter_map(|(at, t)| Some((at, named(t)?))).collect();
    match holding[..] {
        [one] => Ok(one),
        [] => Err(format!("no column named {column:?} (a referential check names it)")),
        _ => Err(format!(
            "column {column:?} is in sheets {:?}: say which one a referential check means (`sheet`, `parent_sheet`)",
            holding.iter().filter_map(|(at, _)| tables[*at].sheet.as_deref()).collect::<Vec<_>>()
        )),
    }
}

fn analyse(request: &Request) -> Result<Response, String> {
    let references = Reference::all(&request.config)?;
    let tables = tables_of(request)?;
    let mut analysed: Vec<Analyses> = tables.iter().map(|t| analyses::analyse(&t.columns)).collect();
    for r in &references {
        let (at, child) = locate(&tables, r.column, r.sheet)?;
        let (parent_at, parent) = locate(&tables, r.parent, r.parent_sheet)?;
        let checked = Referential {
            parent_table: tables[parent_at].sheet.clone().filter(|_| parent_at != at),
            ..analyses::referential(child, parent)
        };
        analysed[at].references.push(checked);
    }
    let (mut findings, mut artifacts) = (Vec::new(), Vec::new());
    for (i, (table, a)) in tables.iter().zip(&analysed).enumerate() {
        let scope = Scope::new(table.sheet.as_deref(), i, tables.len());
        let mut found = analysis_findings(a);
        scope.qualify(&mut found);
        findings.extend(found);
        analysis_artifacts(request, &table.columns, a, scope, &mut artifacts)?;
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    let measures = |a: &Analyses| {
        let benford: serde_json::Map<String, Value> = a
            .benford
            .iter()
            .map(|b| (b.column.clone(), json!({"values": b.values, "chi2": b.chi2, "p_value": b.p_value, "mad": b.mad, "conformity": b.conformity, "caveat": b.caveat})))
            .collect();
        let outliers = a.outliers.iter().filter(|o| o.iqr.below + o.iqr.above > 0).count();
        let personal: Vec<&String> = a.personal_data.iter().map(|p| &p.column).collect();
        BTreeMap::from([
            ("benford".to_owned(), Value::Object(benford)),
            ("columns_with_outliers".to_owned(), json!(outliers)),
            ("personal_data_columns".to_owned(), json!(personal)),
        ])
    };
    let mut metrics = BTreeMap::from([("row_numbers".to_owned(), json!("data rows, 1-based, header excluded"))]);
    match &analysed[..] {
        [only] => metrics.extend(measures(only)),
        _ => {
            let keyed: Vec<_> = tables.iter().map(|t| t.sheet.clone()).zip(&analysed).collect();
            metrics.insert("sheets".to_owned(), per_table(&keyed, |a| json!(measures(a))));
        }
    }
    let count = |of: fn(&Analyses) -> usize| analysed.iter().map(of).sum::<usize>();
    let mut summary = format!(
        "{} outlier checks, {} Benford tests, {} volume series, {} referential checks, {} personal data columns",
        count(|a| a.outliers.len()),
        count(|a| a.benford.len()),
        count(|a| a.volume.len()),
        count(|a| a.references.len()),
        count(|a| a.personal_data.len()),
    );
    if tables.len() > 1 {
        summary += &format!(" in {} sheets", tables.len());
    }
    let mut response = ok(format!("{summary}; {} findings", findings.len()), findings, metrics);
    response.artifacts = artifacts;
    Ok(response)
}

/// Writes one table's analyses and their plots, adding them to `artifacts`.
fn analysis_artifacts(
    request: &Request,
    columns: &[Column],
    a: &Analyses,
    scope: Scope<'_>,
    artifacts: &mut Vec<ArtifactRef>,
) -> Result<(), String> {
    let mut add =
        |name: &str, content: &str, description: String| scope.write(request, artifacts, name, content, description);
    add(
        "analyses.json",
        &pretty("analyses.json", &json!(a))?,
        "Every analysis with its statistics and examples".to_owned(),
    )?;
    let index = |name: &str| columns.iter().position(|c| c.name == name).map_or(0, |i| i + 1);
    for b in &a.benford {
        let name = format!("benford-{:02}-{}.svg", index(&b.column), slug(&b.column));
        add(&name, &plot::benford(b), format!("First digits of {} against Benford's law", b.column))?;
    }
    for v in &a.volume {
        let name = format!("volume-{:02}-{}.svg", index(&v.column), slug(&v.column));
        add(&name, &plot::volume(v), format!("Rows per period by {}", v.column))?;
    }
    Ok(())
}

fn analysis_findings(a: &Analyses) -> Vec<Finding> {
    let mut findings = Vec::new();
    let values =
        |pairs: Vec<(&str, Value)>| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>();
    for o in &a.outliers {
        let beyond = o.iqr.below + o.iqr.above;
        if beyond == 0 {
            continue;
        }
        let mut v = values(vec![
            ("values", json!(o.values)),
            ("affected_rows", json!(beyond)),
            ("lower_fence", json!(o.iqr.lower_fence)),
            ("upper_fence", json!(o.iqr.upper_fence)),
            ("below", json!(o.iqr.below)),
            ("above", json!(o.iqr.above)),
            ("examples", json!(o.iqr.examples)),
        ]);
        if let RobustZ::Measured { flagged, median, mad, .. } = &o.robust_z {
            v.insert("robust_z_flagged".into(), json!(flagged));
            v.insert("median".into(), json!(median));
            v.insert("mad".into(), json!(mad));
        }
        let share = beyond as f64 / o.values.max(1) as f64;
        findings.push(measured(
            "outliers",
            format!(
                "{beyond} values of {} lie beyond Tukey's fences [{}, {}]",
                o.column,
                plot::format_number(o.iqr.lower_fence),
                plot::format_number(o.iqr.upper_fence)
            ),
            if share > 0.05 { Severity::Medium } else { Severity::Low },
            Evidence {
                columns: vec![o.column.clone()],
                rows: o.iqr.examples.iter().map(|f| f.row as u64).take(EVIDENCE_ROWS_MAX).collect(),
                values: v,
            },
        ));
    }
    for b in &a.benford {
        if !matches!(b.conformity, "nonconformity" | "marginal") {
            continue;
        }
        let mut v = values(vec![
            ("values", json!(b.values)),
            ("observed", json!(b.observed)),
            ("chi2", json!(b.chi2)),
            ("p_value", json!(b.p_value)),
            ("mad", json!(b.mad)),
            ("conformity", json!(b.conformity)),
        ]);
        if let Some(caveat) = &b.caveat {
            v.insert("caveat".into(), json!(caveat));
        }
        findings.push(measured(
            "benford_nonconformity",
            format!(
                "First digits of {} depart from Benford's law ({}, MAD {:.4}, p = {:.3e})",
                b.column, b.conformity, b.mad, b.p_value
            ),
            if b.conformity == "nonconformity" && b.caveat.is_none() { Severity::Medium } else { Severity::Low },
            Evidence { columns: vec![b.column.clone()], values: v, ..Evidence::default() },
        ));
    }
    for v in &a.volume {
        if !v.spikes.is_empty() {
            findings.push(measured(
                "volume_spike",
                format!("{} periods of {} have unusually many rows", v.spikes.len(), v.column),
                Severity::Low,
                Evidence {
                    columns: vec![v.column.clone()],
                    values: values(vec![("period", json!(v.period)), ("spikes", json!(v.spikes))]),
                    ..Evidence::default()
                },
            ));
        }
        if !v.gaps.is_empty() {
            findings.push(measured(
                "volume_gap",
                format!("{} stretches of {} have no rows", v.gaps.len(), v.column),
                Severity::Low,
                Evidence {
                    columns: vec![v.column.clone()],
                    values: values(vec![("period", json!(v.period)), ("gaps", json!(v.gaps))]),
                    ..Evidence::default()
                },
            ));
        }
    }
    for r in &a.references {
        if r.unmatched_rows == 0 {
            continue;
        }
        let parent = match &r.parent_table {
            Some(sheet) => format!("{} of sheet {sheet:?}", r.parent),
            None => r.parent.clone(),
        };
        let mut v = values(vec![
            ("rows_checked", json!(r.rows)),
            ("unmatched_rows", json!(r.unmatched_rows)),
            ("affected_rows", json!(r.unmatched_rows)),
            ("unmatched_values", json!(r.unmatched_values)),
            ("examples", json!(r.examples)),
        ]);
        if let Some(sheet) = &r.parent_table {
            v.insert("parent_sheet".into(), json!(sheet));
        }
        findings.push(measured(
            "unmatched_references",
            format!(
                "{} rows of {} hold {} values that {parent} does not have",
                r.unmatched_rows, r.child, r.unmatched_values
            ),
            Severity::High,
            Evidence {
                columns: vec![r.child.clone(), r.parent.clone()],
                rows: r
                    .examples
                    .iter()
                    .flat_map(|(_, rows)| rows.iter().map(|x| *x as u64))
                    .take(EVIDENCE_ROWS_MAX)
                    .collect(),
                values: v,
            },
        ));
    }
    for p in &a.personal_data {
        findings.push(measured(
            "personal_data",
            format!(
                "{} of {} values of {} look like {} ({:.0}% confidence)",
                p.matching,
                p.values,
                p.column,
                json!(p.kind).as_str().unwrap_or("personal data"),
                p.confidence * 100.0
            ),
            Severity::Medium,
            Evidence {
                columns: vec![p.column.clone()],
                rows: p.examples.iter().map(|(row, _)| *row as u64).take(EVIDENCE_ROWS_MAX).collect(),
                values: values(vec![
                    ("kind", json!(p.kind)),
                    ("matching", json!(p.matching)),
                    ("affected_rows", json!(p.matching)),
                    ("values", json!(p.values)),
                    ("confidence", json!(p.confidence)),
                    ("redacted_examples", json!(p.examples)),
                ]),
            },
        ));
    }
    findings
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
    ArtifactRef { path: path.to_owned(), description: description.to_owned() }
}

fn write_file(request: &Request, name: &str, content: &str) -> Result<(), String> {
    std::fs::write(request.output_dir.join(name), content).map_err(|e| format!("cannot write {name}: {e}"))
}

fn write_json(request: &Request, name: &str, value: &Value) -> Result<(), String> {
    write_file(request, name, &pretty(name, value)?)
}

/// `value` as the text of the JSON file `name`.
fn pretty(name: &str, value: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| format!("cannot write {name}: {e}"))
}

#[cfg(test)]
use vigil_tabular::testing as workbook;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DependencyRef, InputRef, PROTOCOL_VERSION, PluginRef, RunContext, check_findings};

    const ORDERS: &str = include_str!("../../../vigil-tabular/tests/fixtures/orders.csv");

    struct Run {
        dir: tempfile::TempDir,
        /// Whether dependents are handed the ingest's shared folder (a result reused
        /// from an earlier run comes without one).
        shared: bool,
        /// The input's format as the upload detected it.
        format: &'static str,
    }

    impl Run {
        fn new(input: &[u8]) -> Run {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("input"), input).expect("input");
            Run { dir, shared: true, format: "csv" }
        }

        fn request(&self, plugin: &str, config: Value) -> Request {
            let out = self.dir.path().join(plugin);
            std::fs::create_dir_all(&out).expect("output dir");
            let ingest = self.dir.path().join(INGEST);
            let share = |plugin: &str| self.dir.path().join(format!("{plugin}.share"));
            std::fs::create_dir_all(share(plugin)).expect("share dir");
            Request {
                protocol: PROTOCOL_VERSION,
                run: RunContext { run_id: "r".into(), fingerprint: "f".into() },
                plugin: PluginRef { id: plugin.into(), version: "1.0.0".into() },
                config,
                input: InputRef {
                    path: self.dir.path().join("input"),
                    file_name: "orders.csv".into(),
                    format: self.format.into(),
                    sha256: "raw".into(),
                    size_bytes: 0,
                },
                dependencies: BTreeMap::from([(
                    INGEST.to_owned(),
                    DependencyRef {
                        response_path: ingest.join("response.json"),
                        artifacts_dir: ingest.clone(),
                        share_dir: Some(share(INGEST)).filter(|_| self.shared),
                    },
                )]),
                output_dir: out.clone(),
                share_dir: Some(share(plugin)),
                scratch_dir: out,
                seed: 1,
                budgets: Default::default(),
            }
        }

        /// Runs the ingest and keeps its response where dependents read it.
        fn ingest(&self, config: Value) -> Response {
            let request = self.request(INGEST, config);
            let response = ingest(&request).expect("ingest");
            let path = request.output_dir.join("response.json");
            std::fs::write(path, serde_json::to_vec(&response).expect("json")).expect("response");
            response
        }
    }

    fn kinds(response: &Response) -> Vec<&str> {
        response.findings.iter().map(|f| f.kind.as_str()).collect()
    }

    fn finding<'a>(response: &'a Response, kind: &str) -> &'a Finding {
        response
            .findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(response)))
    }

    #[test]
    fn the_manifests_validate_and_declare_their_finding_kinds() {
        let plugins = crate::builtin::manifests("0.1.0");
        let ids: Vec<&str> = plugins.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids[2..], ["tabular.ingest", "tabular.profile", "tabular.analyses"]);
        assert!(plugins[3].finding_kinds.contains(&"duplicate_keys".to_owned()));
        assert_eq!(plugins[4].depends_on, [INGEST]);
    }

    #[test]
    fn ingest_reports_the_typed_dataset_version_and_what_it_left_out() {
        let run = Run::new(b"id,amount\n1,10\n2,20,extra\n3,30\n");
        let response = run.ingest(json!({}));
        let dataset = response.dataset.clone().expect("dataset");
        assert_eq!((dataset.rows, dataset.columns), (2, 2));
        assert!(dataset.data_hash.starts_with("sha256:"), "{}", dataset.data_hash);
        assert_eq!(kinds(&response), ["ragged_rows"]);
        assert_eq!(finding(&response, "ragged_rows").evidence.as_ref().map(|e| e.rows.clone()), Some(vec![3]));
        assert!(check_findings(&response.findings).is_ok());
        assert_eq!(response.metrics["read_as"]["delimiter"], ",");
        assert_eq!(response.metrics["schema"]["amount"]["kind"], "integer");
        let schema: Value = serde_json::from_slice(
            &std::fs::read(run.dir.path().join(INGEST).join("schema.json")).expect("schema.json"),
        )
        .expect("json");
        assert!(schema["schema"][1]["kind"]["evidence"].as_str().is_some_and(|e| !e.is_empty()), "{schema}");

        // The same table written otherwise is the same dataset version.
        let other = Run::new(b"\xEF\xBB\xBF\"id\";\"amount\"\r\n1;10\r\n3;30\r\n");
        assert_eq!(other.ingest(json!({})).dataset.map(|d| d.data_hash), Some(dataset.data_hash));
    }

    #[test]
    fn ingest_settings_override_detection_and_bad_ones_are_named() {
        let run = Run::new(b"a|b\n1|2\n");
        let as_text = run.ingest(json!({ "delimiter": ";", "header": false }));
        assert_eq!(as_text.dataset.map(|d| (d.rows, d.columns)), Some((2, 1)));
        let err = ingest(&run.request(INGEST, json!({ "encoding": "ebcdic" }))).expect_err("unknown encoding");
        assert!(err.contains("ebcdic"), "{err}");
        let err = ingest(&run.request(INGEST, json!({ "delimiter": "\"" }))).expect_err("quote");
        assert!(err.contains("delimiter"), "{err}");
        let err = ingest(&Run::new(b"").request(INGEST, json!({}))).expect_err("empty");
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn profile_finds_duplicates_and_gaps_and_draws_its_plots() {
        // The first order again, and a stretch of months without orders.
        let first = ORDERS.lines().nth(1).expect("a row");
        let late = first.replacen("ORD-0001", "ORD-9999", 1).replacen("2024-07-16", "2025-09-01", 1);
        let run = Run::new(format!("{ORDERS}{first}\n{late}\n").as_bytes());
        let rows = run.ingest(json!({})).dataset.expect("dataset").rows;
        let repeat = rows - 1;
        let response = profile(&run.request("tabular.profile", json!({}))).expect("profile");
        assert!(check_findings(&response.findings).is_ok());
        let keys = finding(&response, "duplicate_keys");
        assert_eq!(keys.evidence.as_ref().map(|e| e.columns.clone()), Some(vec!["order_id".to_owned()]));
        assert_eq!(keys.evidence.as_ref().map(|e| e.rows.clone()), Some(vec![1, repeat]));
        let duplicate = finding(&response, "duplicate_rows");
        assert_eq!(duplicate.evidence.as_ref().map(|e| e.rows.clone()), Some(vec![repeat]));
        let gaps: Vec<&Finding> = response.findings.iter().filter(|f| f.kind == "date_gap").collect();
        assert_eq!(gaps.len(), 1, "only the unusual gap: {:?}", kinds(&response));
        assert_eq!(gaps[0].evidence.as_ref().map(|e| e.values["before"].clone()), Some(json!("2025-09-01")));
        let paths: Vec<&str> = response.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert!(paths.contains(&"profile.json") && paths.contains(&"missingness.svg"), "{paths:?}");
        assert!(paths.contains(&"correlation-pearson.svg"), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("histogram-") && p.ends_with("-amount.svg")), "{paths:?}");
        for path in paths {
            let file = run.dir.path().join("tabular.profile").join(path);
            let text = std::fs::read_to_string(&file).expect("artifact written");
            assert!(!text.contains("@example."), "{path} shows an email address");
        }
        assert_eq!(response.metrics["columns"]["quantity"]["kind"], "integer");
    }

    #[test]
    fn analyses_check_the_named_references_and_never_show_personal_data() {
        let run = Run::new(ORDERS.as_bytes());
        run.ingest(json!({}));
        let request =
            run.request("tabular.analyses", json!({ "references": [{ "column": "vendor_id", "parent": "zip" }] }));
        let response = analyse(&request).expect("analyses");
        assert!(check_findings(&response.findings).is_ok());
        let unmatched = finding(&response, "unmatched_references");
        assert_eq!(
            unmatched.evidence.as_ref().map(|e| e.columns.clone()),
            Some(vec!["vendor_id".into(), "zip".into()])
        );
        let pii = finding(&response, "personal_data");
        assert_eq!(pii.evidence.as_ref().map(|e| e.columns.clone()), Some(vec!["customer_email".into()]));
        let everything = serde_json::to_string(&response).expect("json")
            + &std::fs::read_to_string(run.dir.path().join("tabular.analyses/analyses.json")).expect("analyses.json");
        assert!(!everything.contains("buyer1@example.com"), "raw personal data in the output");

        let bad = run.request("tabular.analyses", json!({ "references": [{ "column": "nope", "parent": "zip" }] }));
        let err = analyse(&bad).expect_err("unknown column");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn personal_numbers_and_dates_leave_no_statistic_plot_or_gap() {
        let run = Run::new(
            b"ssn,birth_date,amount\n123456789,1980-01-01,10\n987654321,1999-12-31,20\n555443333,1985-06-15,30\n",
        );
        let ingest = run.ingest(json!({}));
        assert_eq!(ingest.metrics["schema"]["ssn"]["role"], "pii", "{:?}", ingest.metrics["schema"]);
        let response = profile(&run.request("tabular.profile", json!({}))).expect("profile");
        let analyses = analyse(&run.request("tabular.analyses", json!({}))).expect("analyses");
        let dir = run.dir.path();
        let mut everything =
            serde_json::to_string(&response).expect("json") + &serde_json::to_string(&analyses).expect("json");
        for folder in ["tabular.profile", "tabular.analyses"] {
            for entry in std::fs::read_dir(dir.join(folder)).expect("dir").flatten() {
                everything += &std::fs::read_to_string(entry.path()).expect("artifact");
            }
        }
        for secret in ["987654321", "123456789", "1980-01-01", "1999-12-31"] {
            assert!(!everything.contains(secret), "{secret} leaked");
        }
        assert!(response.metrics["columns"]["amount"]["max"] == json!(30.0), "other columns keep their statistics");
    }

    #[test]
    fn dependents_refuse_an_input_that_changed_since_the_ingest() {
        let mut run = Run::new(b"id,amount\n1,10\n");
        run.ingest(json!({}));
        run.shared = false;
        std::fs::write(run.dir.path().join("input"), b"id,amount\n1,11\n").expect("rewrite");
        let err = profile(&run.request("tabular.profile", json!({}))).expect_err("changed");
        assert!(err.contains("changed"), "{err}");
    }

    #[test]
    fn the_snapshot_and_the_input_give_the_same_results() {
        let mut run = Run::new(ORDERS.as_bytes());
        run.ingest(json!({}));
        let references = json!({ "references": [{ "column": "vendor_id", "parent": "zip" }] });
        let mut outputs = Vec::new();
        for shared in [true, false] {
            run.shared = shared;
            let profiled = profile(&run.request("tabular.profile", json!({}))).expect("profile");
            let analysed = analyse(&run.request("tabular.analyses", references.clone())).expect("analyses");
            let file = |plugin: &str, name: &str| {
                std::fs::read_to_string(run.dir.path().join(plugin).join(name)).expect("written")
            };
            outputs.push((
                serde_json::to_value(&profiled).expect("json"),
                serde_json::to_value(&analysed).expect("json"),
                file("tabular.profile", "profile.json"),
                file("tabular.analyses", "analyses.json"),
                file("tabular.profile", "missingness.svg"),
            ));
        }
        assert!(outputs[0] == outputs[1], "the results depend on where the table came from");
    }

    #[test]
    fn dependents_start_from_the_ingests_snapshot_only_when_it_is_its_dataset_version() {
        let run = Run::new(b"id,amount\n1,10\n2,20\n");
        run.ingest(json!({}));
        let snapshot = run.dir.path().join(format!("{INGEST}.share")).join(snapshot_name(0));
        assert!(snapshot.is_file(), "the ingest shares its typed table");
        // The input is not read when the snapshot serves: rewriting it changes nothing.
        std::fs::write(run.dir.path().join("input"), b"id,amount\n1,11\n2,20\n").expect("rewrite");
        let response = profile(&run.request("tabular.profile", json!({}))).expect("from the snapshot");
        assert_eq!(response.metrics["columns"]["amount"]["min"], json!(10.0));
        assert!(analyse(&run.request("tabular.analyses", json!({}))).is_ok());
        // A damaged snapshot, or an intact one of another table, is passed over for the
        // input, which is then checked against the ingest's hash as always.
        let good = std::fs::read(&snapshot).expect("snapshot");
        std::fs::write(&snapshot, &good[..good.len() - 3]).expect("truncate");
        let err = profile(&run.request("tabular.profile", json!({}))).expect_err("damaged");
        assert!(err.contains("changed"), "{err}");
        let other =
            vigil_tabular::ingest_delimited(&b"id,amount\n1,11\n2,20\n"[..], &Default::default()).expect("other");
        snapshot::write(&snapshot, &other.columns, other.rows).expect("write");
        let err = profile(&run.request("tabular.profile", json!({}))).expect_err("another table");
        assert!(err.contains("changed"), "{err}");
        // The same content with a column given another role (which the hash does not
        // cover) is not the table the ingest reported either.
        std::fs::write(&snapshot, &good).expect("restore");
        assert!(profile(&run.request("tabular.profile", json!({}))).is_ok(), "the restored snapshot serves");
        let (mut columns, rows) = snapshot::read(&snapshot).expect("read");
        let hash = data_hash(&columns, rows, 1);
        columns[1].role = vigil_tabular::sniff::Chosen { value: Role::Pii, evidence: "said so".into() };
        assert_eq!(data_hash(&columns, rows, 1), hash, "roles are not hashed");
        snapshot::write(&snapshot, &columns, rows).expect("write");
        let err = profile(&run.request("tabular.profile", json!({}))).expect_err("another role");
        assert!(err.contains("changed"), "{err}");
        // Read again, the input itself must give the reported roles too.
        std::fs::write(run.dir.path().join("input"), b"id,amount\n1,10\n2,20\n").expect("restore");
        let response = profile(&run.request("tabular.profile", json!({}))).expect("from the input");
        assert_eq!(response.metrics["columns"]["amount"]["min"], json!(10.0));

        // Read again (no snapshot), reasons worded otherwise than the ingest's are fine (a
        // result reused from another build of the same version); another role is not.
        std::fs::remove_file(&snapshot).expect("no snapshot");
        let response_path = run.dir.path().join(INGEST).join("response.json");
        let original: Value = serde_json::from_slice(&std::fs::read(&response_path).expect("read")).expect("json");
        let mut reworded = original.clone();
        reworded["data"]["summary"]["schema"][1]["role"]["evidence"] = json!("worded otherwise");
        std::fs::write(&response_path, reworded.to_string()).expect("write");
        assert!(profile(&run.request("tabular.profile", json!({}))).is_ok(), "evidence alone may differ");
        let mut other_role = original;
        other_role["data"]["summary"]["schema"][1]["role"]["value"] = json!("pii");
        std::fs::write(&response_path, other_role.to_string()).expect("write");
        let err = profile(&run.request("tabular.profile", json!({}))).expect_err("another role");
        assert!(err.contains("reads it otherwise") && err.contains("\"amount\" has role"), "{err}");
    }

    /// Vendors V1 to V20, and V2 again as another vendor.
    fn vendor_rows() -> Vec<(String, String)> {
        let mut vendors: Vec<(String, String)> = (1..=20).map(|i| (format!("V{i}"), format!("Vendor {i}"))).collect();
        vendors.push(("V2".into(), "Initech".into()));
        vendors
    }

    /// A workbook: invoices (two of an unknown vendor), vendors (one id twice, see
    /// [`vendor_rows`]), and a sheet with a header only.
    fn ledger_book() -> Vec<u8> {
        use super::workbook::{self, number, row, text};
        let invoices = [
            row(1, &[text("A1", "invoice_id"), text("B1", "vendor_id"), text("C1", "amount")]),
            row(2, &[text("A2", "INV-1"), text("B2", "V1"), number("C2", "120.5")]),
            row(3, &[text("A3", "INV-2"), text("B3", "V99"), number("C3", "80")]),
            row(4, &[text("A4", "INV-3"), text("B4", "V2"), number("C4", "35")]),
            row(5, &[text("A5", "INV-4"), text("B5", "V99"), number("C5", "12")]),
        ]
        .concat();
        let mut vendors = row(1, &[text("A1", "vendor_id"), text("B1", "name")]);
        for (i, (id, name)) in vendor_rows().iter().enumerate() {
            let n = i as u32 + 2;
            vendors += &row(n, &[text(&format!("A{n}"), id), text(&format!("B{n}"), name)]);
        }
        let blank = row(1, &[text("A1", "todo")]);
        workbook::workbook(&[("Invoices", invoices), ("Vendors", vendors), ("Blank", blank)])
    }

    #[test]
    fn a_workbook_is_profiled_and_analysed_sheet_by_sheet() {
        let mut run = Run::new(&ledger_book());
        run.format = "xlsx";
        let ingest = run.ingest(json!({}));
        let sheets: Vec<(Value, Value)> = ingest.metrics["sheets"]
            .as_array()
            .expect("sheets")
            .iter()
            .map(|s| (s["name"].clone(), s["profiled"].clone()))
            .collect();
        assert_eq!(
            sheets,
            [(json!("Invoices"), json!(true)), (json!("Vendors"), json!(true)), (json!("Blank"), json!(false))]
        );
        let tables = ingest.data.as_ref().expect("data")["tables"].as_array().cloned().expect("tables");
        let hashes: Vec<&str> = tables.iter().filter_map(|t| t["data_hash"].as_str()).collect();
        let version = ingest.dataset.clone().expect("dataset");
        assert_eq!((version.rows, version.columns), (25, 5));
        assert_eq!(version.data_hash, tables_hash([("Invoices", hashes[0]), ("Vendors", hashes[1])].into_iter()));
        assert_eq!(ingest.metrics["schema"]["Invoices"]["amount"]["kind"], "decimal");

        // One sheet chosen is that sheet's table, hashing as the same table saved as CSV.
        let vendors = run.ingest(json!({ "sheet": "Vendors" })).dataset.expect("dataset");
        assert_eq!(vendors.data_hash, hashes[1]);
        let csv: String = vendor_rows().iter().map(|(id, name)| format!("{id},{name}\n")).collect();
        let csv = Run::new(format!("vendor_id,name\n{csv}").as_bytes()).ingest(json!({}));
        assert_eq!(csv.dataset.map(|d| d.data_hash), Some(vendors.data_hash));

        run.ingest(json!({}));
        let profiled = profile(&run.request("tabular.profile", json!({}))).expect("profile");
        assert!(check_findings(&profiled.findings).is_ok());
        assert_eq!(profiled.metrics["rows"], json!(25));
        assert_eq!(profiled.metrics["sheets"]["Invoices"]["columns"]["amount"]["max"], json!(120.5));
        assert_eq!(profiled.metrics["sheets"]["Vendors"]["rows"], json!(21));
        let keys = finding(&profiled, "duplicate_keys");
        assert!(keys.title.starts_with("Sheet \"Vendors\": "), "{}", keys.title);
        let evidence = keys.evidence.as_ref().expect("evidence");
        assert_eq!(
            (evidence.columns.clone(), evidence.values["sheet"].clone()),
            (vec!["vendor_id".into()], json!("Vendors"))
        );
        let paths: Vec<&str> = profiled.artifacts.iter().map(|a| a.path.as_str()).collect();
        for path in
            ["sheet-01-invoices-profile.json", "sheet-02-vendors-profile.json", "sheet-01-invoices-missingness.svg"]
        {
            assert!(paths.contains(&path), "{path} not in {paths:?}");
            assert!(run.dir.path().join("tabular.profile").join(path).is_file(), "{path}");
        }
        assert!(!paths.iter().any(|p| p.contains("blank")), "a sheet without rows is not profiled: {paths:?}");

        // A referential check joins two sheets; a name two sheets have must say which.
        let across = json!({ "references": [
            { "column": "vendor_id", "sheet": "Invoices", "parent": "vendor_id", "parent_sheet": "Vendors" },
            { "column": "invoice_id", "parent": "name" },
        ] });
        let analysed = analyse(&run.request("tabular.analyses", across.clone())).expect("analyses");
        assert!(check_findings(&analysed.findings).is_ok());
        let unmatched: Vec<&Finding> = analysed.findings.iter().filter(|f| f.kind == "unmatched_references").collect();
        assert_eq!(unmatched.len(), 2, "{:?}", analysed.findings);
        let vendor = unmatched.iter().find(|f| f.title.contains("vendor_id")).expect("vendor check");
        assert_eq!(
            vendor.title,
            "Sheet \"Invoices\": 2 rows of vendor_id hold 1 values that vendor_id of sheet \"Vendors\" does not have"
        );
        let evidence = vendor.evidence.as_ref().expect("evidence");
        assert_eq!(evidence.rows, [2, 4]);
        assert_eq!(
            (evidence.values["sheet"].clone(), evidence.values["parent_sheet"].clone()),
            (json!("Invoices"), json!("Vendors"))
        );
        assert!(analysed.metrics["sheets"]["Invoices"]["benford"].is_object(), "{:?}", analysed.metrics);
        let ambiguous = json!({ "references": [{ "column": "vendor_id", "parent": "vendor_id" }] });
        let err = analyse(&run.request("tabular.analyses", ambiguous)).expect_err("ambiguous");
        assert!(err.contains("Invoices") && err.contains("Vendors"), "{err}");
        for (sheet, why) in [("Nope", "no such sheet"), ("Blank", "a sheet without rows")] {
            let named = json!({ "references": [{ "column": "amount", "parent": "todo", "parent_sheet": sheet }] });
            let err = analyse(&run.request("tabular.analyses", named)).expect_err(why);
            assert!(err.contains(&format!("{sheet:?}")) && err.contains("not one of the tables profiled"), "{err}");
        }

        // A sheet listed twice is read once.
        let twice = run.ingest(json!({ "sheets": ["Vendors", "Vendors"] }));
        assert_eq!(twice.dataset.map(|d| d.data_hash), Some(hashes[1].to_owned()));
        // The one table of a chosen sheet: plain titles and file names, but the evidence
        // still says which sheet (a known issue narrowed to it must match).
        let alone = profile(&run.request("tabular.profile", json!({}))).expect("profile");
        let keys = finding(&alone, "duplicate_keys");
        assert!(!keys.title.starts_with("Sheet"), "{}", keys.title);
        assert_eq!(keys.evidence.as_ref().expect("evidence").values["sheet"], "Vendors");
        assert!(alone.artifacts.iter().any(|a| a.path == "profile.json"), "{:?}", alone.artifacts);
        run.ingest(json!({}));

        // Snapshots or the workbook read again: the same results.
        let mut outputs = Vec::new();
        for shared in [true, false] {
            run.shared = shared;
            let profiled = profile(&run.request("tabular.profile", json!({}))).expect("profile");
            let analysed = analyse(&run.request("tabular.analyses", across.clone())).expect("analyses");
            outputs
                .push((serde_json::to_value(&profiled).expect("json"), serde_json::to_value(&analysed).expect("json")));
        }
        assert!(outputs[0] == outputs[1], "the results depend on where the tables came from");
    }

    #[test]
    fn a_sheet_named_for_a_text_input_is_refused() {
        let run = Run::new(ORDERS.as_bytes());
        run.ingest(json!({}));
        let config = json!({ "references": [{ "column": "vendor_id", "parent": "zip", "parent_sheet": "Vendors" }] });
        let err = analyse(&run.request("tabular.analyses", config)).expect_err("not a workbook");
        assert!(err.contains("not a workbook"), "{err}");
    }

    #[test]
    fn slugs_are_safe_file_name_parts() {
        assert_eq!(slug("Betrag (EUR)"), "betrag-eur");
        assert_eq!(slug("../../etc"), "etc");
        assert_eq!(slug("€€"), "column");
    }
}
