//! `tabular.profile`: exact statistics per column and table, and what they make a finding.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vigil_pack::Files;
use vigil_pack::protocol::{ArtifactRef, EVIDENCE_ROWS_MAX, Evidence, Finding, Response, Severity};

use super::scope::{Scope, per_table};
use super::tables::{Table, tables_of};
use super::{DATE_GAP_DAYS, DATE_GAP_SPACINGS, HISTOGRAMS_MAX, STRONG_CORRELATION, pretty, slug};
use crate::profile::{self, Profile};
use crate::{Column, Role, default_threads, plot};

/// Runs `tabular.profile`.
pub(super) fn run(files: &dyn Files) -> Result<Response, String> {
    let tables = tables_of(files)?;
    let (mut findings, mut artifacts, mut profiled) = (Vec::new(), Vec::new(), Vec::new());
    for (i, table) in tables.iter().enumerate() {
        let scope = Scope::new(table.sheet.as_deref(), i, tables.len());
        let (p, mut found) = profile_table(files, table, scope, &mut artifacts)?;
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
    let mut response = Response::ok(summary, findings, metrics);
    response.artifacts = artifacts;
    Ok(response)
}

/// Profiles one table: writes its statistics and plots (adding them to `artifacts`) and
/// returns the profile and its findings.
fn profile_table(
    files: &dyn Files,
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
        |name: &str, content: &str, description: String| scope.write(files, artifacts, name, content, description);
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
        findings.push(Finding::measured(
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
        findings.push(Finding::measured(
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
            findings.push(Finding::measured(
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
            findings.push(Finding::measured(
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
            findings.push(Finding::measured(
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
                findings.push(Finding::measured(
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
                    findings.push(Finding::measured(
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
