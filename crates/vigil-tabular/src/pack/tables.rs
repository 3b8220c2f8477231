//! The typed tables the profile and the analyses start from: the ingest's snapshots, or
//! the input read again as the ingest read it, either way checked against its report.

use serde_json::Value;
use vigil_pack::Files;
use vigil_pack::protocol::Response;

use super::INGEST;
use super::ingest::snapshot_name;
use super::read_as::{ReadAs, load};
use crate::ingest::ColumnSummary;
use crate::table::data_hash;
use crate::{Column, default_threads, snapshot};

/// One typed table of the input, as the ingest produced it.
pub(super) struct Table {
    /// The sheet it was read from, for a workbook.
    pub sheet: Option<String>,
    pub columns: Vec<Column>,
    pub rows: usize,
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
pub(super) fn tables_of(files: &dyn Files) -> Result<Vec<Table>, String> {
    let raw = files.dependency_response(INGEST).map_err(|e| format!("cannot read {INGEST}'s response: {e}"))?;
    let response: Response =
        serde_json::from_slice(&raw).map_err(|e| format!("{INGEST}'s response is invalid: {e}"))?;
    let data = response.data.as_ref().ok_or_else(|| format!("{INGEST} did not say how it read the input"))?;
    let read_as = data.get("read_as").ok_or_else(|| format!("{INGEST} did not say how it read the input"))?;
    let read_as: ReadAs = serde_json::from_value(read_as.clone())
        .map_err(|e| format!("{INGEST} recorded how it read the input wrongly: {e}"))?;
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
    match snapshots(files, &expected) {
        Ok(Some(tables)) => return Ok(tables),
        Ok(None) => {}
        Err(e) => eprintln!("{INGEST}'s snapshots are not used ({e}): reading the input again"),
    }
    let (settings, xlsx) = read_as.settings();
    let loaded = load(files, &settings, xlsx)?;
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

/// The tables from the ingest's snapshots, each checked against its report.
/// `None` when the ingest shared none (a result reused from an earlier run).
fn snapshots(files: &dyn Files, expected: &[Reported]) -> Result<Option<Vec<Table>>, String> {
    let mut tables = Vec::with_capacity(expected.len());
    for (i, reported) in expected.iter().enumerate() {
        let name = snapshot_name(i);
        let shared = files.shared_by(INGEST, &name).map_err(|e| format!("{name}: {e}"))?;
        let Some(shared) = shared else {
            if i > 0 {
                return Err(format!("{name} is missing"));
            }
            // A result reused from an earlier run, or a table too large to share.
            eprintln!("{INGEST} shared no snapshot of its tables: reading the input again");
            return Ok(None);
        };
        let (columns, rows) = snapshot::read_from(shared.reader, shared.len).map_err(|e| format!("{name}: {e}"))?;
        reported.check_snapshot(&columns, rows).map_err(|e| format!("{name}: {e}"))?;
        tables.push(Table { sheet: reported.sheet.clone(), columns, rows });
    }
    Ok(Some(tables))
}
