//! Every statistic of the profile against pandas/numpy/scipy, computed independently by
//! `tests/reference.py` on the fixtures shipped here, to 1e-9 relative.
//!
//! The interpreter comes from `VIGIL_TEST_PYTHON` (set by scripts/test.sh, which installs
//! pinned pandas and scipy into it) or the venv that script creates.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use vigil_tabular::analyses::{RobustZ, analyse};
use vigil_tabular::profile::{Profile, profile};
use vigil_tabular::{IngestOptions, ingest_path};

fn python() -> String {
    let python = std::env::var("VIGIL_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/py-venv/bin/python").to_owned());
    let ok = Command::new(&python).args(["-c", "import pandas, scipy"]).status().is_ok_and(|s| s.success());
    assert!(ok, "{python} cannot import pandas and scipy: run ./scripts/test.sh, which installs them");
    python
}

fn close(ours: f64, reference: f64) -> bool {
    (ours - reference).abs() <= 1e-9 * ours.abs().max(reference.abs()) + 1e-12
}

#[track_caller]
fn assert_close(ours: Option<f64>, reference: &Value, what: &str) {
    match (ours, reference.as_f64()) {
        (Some(a), Some(b)) => assert!(close(a, b), "{what}: ours {a}, pandas {b}"),
        (None, None) => {}
        (a, _) => panic!("{what}: ours {a:?}, pandas {reference}"),
    }
}

fn check(fixture: &str) -> (Profile, Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
    let data = ingest_path(&path, &IngestOptions::default()).expect("ingest");
    let p = profile(&data.columns, data.rows, 2);
    let dates: Vec<&str> = p.columns.iter().filter(|c| c.dates.is_some()).map(|c| c.name.as_str()).collect();
    let analyses = analyse(&data.columns);
    let measured: Vec<&str> = analyses.outliers.iter().map(|o| o.column.as_str()).collect();
    let amounts: Vec<&str> = analyses.benford.iter().map(|b| b.column.as_str()).collect();
    let spec = json!({
        "numeric": p.correlations.numeric, "categorical": p.correlations.categorical, "dates": dates,
        "measured": measured, "amounts": amounts,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference.py");
    let out = Command::new(python()).arg(script).arg(&path).arg(spec.to_string()).output().expect("run reference.py");
    assert!(out.status.success(), "reference.py: {}", String::from_utf8_lossy(&out.stderr));
    let reference: Value = serde_json::from_slice(&out.stdout).expect("reference JSON");

    assert_eq!(reference["rows"], p.rows);
    for c in &p.columns {
        let r = &reference["columns"][&c.name];
        let at = |what: &str| format!("{fixture} {}: {what}", c.name);
        assert_eq!(
            (r["count"].as_u64(), r["missing"].as_u64()),
            (Some(c.count as u64), Some(c.missing as u64)),
            "{}",
            at("count")
        );
        assert_eq!(r["distinct"], c.distinct, "{}", at("distinct"));
        let top: Vec<usize> = c.top.iter().map(|t| t.1).collect();
        assert_eq!(r["top_counts"], json!(top), "{}", at("top counts"));
        if let Some(n) = &c.numeric {
            assert_close(Some(n.mean), &r["mean"], &at("mean"));
            assert_close(n.std, &r["std"], &at("std"));
            assert_close(Some(n.min), &r["min"], &at("min"));
            assert_close(Some(n.max), &r["max"], &at("max"));
            assert_close(Some(n.median), &r["median"], &at("median"));
            for (i, (q, v)) in n.quantiles.iter().enumerate() {
                assert_close(Some(*v), &r["quantiles"][i], &at(&format!("quantile {q}")));
            }
            assert_eq!(
                (r["zeros"].as_u64(), r["negatives"].as_u64()),
                (Some(n.zeros as u64), Some(n.negatives as u64)),
                "{}",
                at("signs")
            );
            assert_eq!(r["histogram"], json!(n.histogram.counts), "{}", at("histogram"));
            for (i, e) in n.histogram.edges.iter().enumerate() {
                assert_close(Some(*e), &r["edges"][i], &at("histogram edge"));
            }
        } else if let Some(d) = &c.dates {
            assert_eq!(
                (r["first"].as_str(), r["last"].as_str()),
                (Some(d.first.as_str()), Some(d.last.as_str())),
                "{}",
                at("range")
            );
            assert_eq!(r["days"], d.days_with_rows, "{}", at("days"));
        } else if let Some(l) = &c.lengths {
            assert_eq!(
                (r["len_min"].as_u64(), r["len_max"].as_u64()),
                (Some(l.min as u64), Some(l.max as u64)),
                "{}",
                at("lengths")
            );
            assert_close(Some(l.mean), &r["len_mean"], &at("mean length"));
        }
    }
    let k = &p.correlations;
    for (i, a) in k.numeric.iter().enumerate() {
        for (j, b) in k.numeric.iter().enumerate() {
            assert_close(k.pearson[i][j], &reference["pearson"][a][b], &format!("{fixture} pearson {a}/{b}"));
            assert_close(k.spearman[i][j], &reference["spearman"][a][b], &format!("{fixture} spearman {a}/{b}"));
        }
    }
    for (i, a) in k.categorical.iter().enumerate() {
        for (j, b) in k.categorical.iter().enumerate() {
            assert_close(k.cramers_v[i][j], &reference["cramers_v"][a][b], &format!("{fixture} cramér {a}/{b}"));
        }
    }
    assert_eq!(reference["duplicate_rows"], p.duplicate_rows.count);
    let mut patterns: Vec<Value> = p
        .missingness
        .iter()
        .map(|m| {
            let mut cols = m.columns.clone();
            cols.sort();
            json!([cols, m.rows])
        })
        .collect();
    patterns.sort_by_key(|v| v.to_string());
    let mut expected: Vec<Value> = reference["missing_patterns"].as_array().cloned().unwrap_or_default();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(patterns, expected, "{fixture} missingness patterns");

    for o in &analyses.outliers {
        let r = &reference["outliers"][&o.column];
        let at = |what: &str| format!("{fixture} {} outliers: {what}", o.column);
        assert_close(Some(o.iqr.q1), &r["q1"], &at("q1"));
        assert_close(Some(o.iqr.q3), &r["q3"], &at("q3"));
        assert_eq!(
            (r["below"].as_u64(), r["above"].as_u64()),
            (Some(o.iqr.below as u64), Some(o.iqr.above as u64)),
            "{}",
            at("fences")
        );
        match &o.robust_z {
            RobustZ::Measured { median, mad, flagged, .. } => {
                assert_close(Some(*median), &r["median"], &at("median"));
                assert_close(Some(*mad), &r["mad"], &at("MAD"));
                assert_eq!(r["flagged"], *flagged, "{}", at("robust z"));
            }
            RobustZ::NotApplicable { .. } => assert_eq!(r["mad"], 0.0, "{}", at("MAD")),
        }
    }
    for b in &analyses.benford {
        let r = &reference["benford"][&b.column];
        let at = |what: &str| format!("{fixture} {} Benford: {what}", b.column);
        assert_eq!(r["observed"], json!(b.observed), "{}", at("first digits"));
        assert_close(Some(b.chi2), &r["chi2"], &at("chi2"));
        assert_close(Some(b.p_value), &r["p"], &at("p-value"));
        assert_close(Some(b.mad), &r["mad"], &at("MAD"));
    }
    (p, reference)
}

#[test]
fn the_orders_profile_matches_pandas() {
    let (p, _) = check("orders.csv");
    assert_eq!(p.correlations.numeric, ["quantity", "amount", "amount_usd", "discount"]);
    let analyses = analyse(
        &ingest_path(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/orders.csv"),
            &IngestOptions::default(),
        )
        .expect("ingest")
        .columns,
    );
    assert!(analyses.benford.iter().any(|b| b.column == "amount_usd"), "amounts are tested against Benford");
    assert!(p.correlations.categorical.contains(&"status".to_string()));
    assert!(p.exact);
}

#[test]
fn the_ledger_profile_matches_pandas() {
    let (p, _) = check("ledger.csv");
    assert_eq!(p.correlations.numeric, ["Betrag", "Menge", "Satz"]);
    assert_eq!(p.correlations.categorical, ["Konto", "Kontoart", "Kostenstelle", "Text"]);
    // Two rows repeat earlier ones; three document numbers are used twice.
    assert_eq!(p.duplicate_rows.count, 2);
    let keys = p.duplicate_keys.iter().find(|k| k.column == "Beleg").expect("Beleg duplicates");
    assert_eq!((keys.values, keys.rows), (3, 3));
    assert!(keys.examples.iter().any(|(v, rows)| v == "B00010" && rows == &[10, 401]));
}
