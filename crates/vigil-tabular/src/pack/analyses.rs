//! `tabular.analyses`: outliers, Benford's test, volume by period, referential checks
//! and personal data, and what they make a finding.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vigil_pack::Files;
use vigil_pack::protocol::{ArtifactRef, EVIDENCE_ROWS_MAX, Evidence, Finding, Response, Severity};

use super::AnalysesSettings;
use super::scope::{Scope, per_table};
use super::tables::{Table, tables_of};
use super::{pretty, slug};
use crate::analyses::{self, Analyses, Referential, RobustZ};
use crate::{Column, plot};

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

/// Runs `tabular.analyses`.
pub(super) fn run(settings: &AnalysesSettings, files: &dyn Files) -> Result<Response, String> {
    let tables = tables_of(files)?;
    let mut analysed: Vec<Analyses> = tables.iter().map(|t| analyses::analyse(&t.columns)).collect();
    for r in &settings.references {
        let (at, child) = locate(&tables, &r.column, r.sheet.as_deref())?;
        let (parent_at, parent) = locate(&tables, &r.parent, r.parent_sheet.as_deref())?;
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
        analysis_artifacts(files, &table.columns, a, scope, &mut artifacts)?;
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
    let mut response = Response::ok(format!("{summary}; {} findings", findings.len()), findings, metrics);
    response.artifacts = artifacts;
    Ok(response)
}

/// Writes one table's analyses and their plots, adding them to `artifacts`.
fn analysis_artifacts(
    files: &dyn Files,
    columns: &[Column],
    a: &Analyses,
    scope: Scope<'_>,
    artifacts: &mut Vec<ArtifactRef>,
) -> Result<(), String> {
    let mut add =
        |name: &str, content: &str, description: String| scope.write(files, artifacts, name, content, description);
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
        findings.push(Finding::measured(
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
        findings.push(Finding::measured(
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
            findings.push(Finding::measured(
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
            findings.push(Finding::measured(
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
        findings.push(Finding::measured(
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
        findings.push(Finding::measured(
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
