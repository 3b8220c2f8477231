//! Benchmark (not a test): Vigil's per-metric detectors on the Numenta Anomaly Benchmark,
//! streamed one value at a time, scored with `vigil_immune::nab` in all three profiles: the
//! context detector (`vigil_immune::stream`), the sentinel's EWMA deviation, and beside them
//! a windowed-Gaussian detector (NAB's reference baseline) in the same run. Each detector is
//! told the series' probationary period, as NAB tells its detectors.
//!
//! `scripts/bench-nab.sh` runs it; `NAB_DIR` points at the data (default
//! `../shared/data/nab` from the repository root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil_immune::baseline::{Baseline, BaselineConfig};
use vigil_immune::nab::{PROFILES, Series, probation, score_corpus};
use vigil_immune::sentinel::{SentinelConfig, spread};
use vigil_immune::stream::{ContextConfig, ContextDetector};

/// Anomaly scores per row for one detector.
type Detector = fn(&[f64]) -> Vec<f64>;

/// One NAB file: name, timestamps, values, labelled windows (as timestamps).
type NabFile = (String, Vec<String>, Vec<f64>, Vec<(String, String)>);

/// The sentinel: |deviation| from the EWMA baseline learned so far, scaled into [0, 1].
fn sentinel(values: &[f64]) -> Vec<f64> {
    let config = BaselineConfig::default();
    let sentinel = SentinelConfig { floor_absolute: 0.0, floor_relative: 0.0, ..SentinelConfig::default() };
    let mut baseline = Baseline::default();
    values
        .iter()
        .map(|&v| {
            let score = if baseline.is_warm(&config) {
                let s = spread(&baseline, &sentinel).max(1e-9);
                (((v - baseline.mean) / s).abs() / 10.0).min(1.0)
            } else {
                0.0
            };
            baseline.update(v, &config);
            score
        })
        .collect()
}

/// The context detector with its defaults, learning over NAB's probationary period.
fn context(values: &[f64]) -> Vec<f64> {
    let config = ContextConfig { learn: probation(values.len()), ..ContextConfig::default() };
    let mut detector = ContextDetector::new(config);
    values.iter().map(|&v| detector.push(v)).collect()
}

/// NAB's windowed Gaussian: how far the value is from the mean of the previous 6400
/// values, in their standard deviations, scaled into [0, 1].
fn windowed_gaussian(values: &[f64]) -> Vec<f64> {
    const WINDOW: usize = 6400;
    (0..values.len())
        .map(|i| {
            let past = &values[i.saturating_sub(WINDOW)..i];
            if past.len() < 2 {
                return 0.0;
            }
            let n = past.len() as f64;
            let mean = past.iter().sum::<f64>() / n;
            let sd = (past.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-9);
            (((values[i] - mean) / sd).abs() / 10.0).min(1.0)
        })
        .collect()
}

fn load(dir: &Path) -> Vec<NabFile> {
    let text = std::fs::read_to_string(dir.join("combined_windows.json")).expect("combined_windows.json");
    let windows: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(&text).expect("windows json");
    windows
        .into_iter()
        .filter_map(|(name, wins)| {
            let text = std::fs::read_to_string(dir.join(&name)).ok()?;
            let (mut stamps, mut values) = (Vec::new(), Vec::new());
            for line in text.lines().skip(1) {
                let (t, v) = line.split_once(',')?;
                stamps.push(t[..t.len().min(19)].to_owned());
                values.push(v.trim().parse().ok()?);
            }
            Some((name, stamps, values, wins))
        })
        .collect()
}

fn main() {
    let dir = std::env::var("NAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab"));
    let files = load(&dir);
    assert!(!files.is_empty(), "no NAB series under {}", dir.display());
    // Coarse steps over the whole scale, fine ones near the top where conformal scores sit.
    let mut thresholds: Vec<f64> = (1..=200).map(|i| f64::from(i) / 200.0).collect();
    thresholds.extend((1..100).map(|i| 0.99 + f64::from(i) * 0.0001));
    let detectors: [(&str, Detector); 3] =
        [("vigil_context_knn", context), ("vigil_sentinel_ewma", sentinel), ("windowed_gaussian", windowed_gaussian)];
    for (name, detect) in detectors {
        let corpus: Vec<Series> = files
            .iter()
            .map(|(_, stamps, values, wins)| {
                let row = |t: &str| {
                    let t = &t[..t.len().min(19)];
                    stamps.iter().position(|s| s.as_str() >= t).unwrap_or(stamps.len().saturating_sub(1))
                };
                Series { scores: detect(values), windows: wins.iter().map(|(a, b)| (row(a), row(b))).collect() }
            })
            .collect();
        for profile in PROFILES {
            let score = score_corpus(&corpus, &thresholds, &profile);
            println!(
                "{{\"detector\": \"{name}\", \"profile\": \"{}\", \"score\": {:.1}, \"threshold\": {}, \"series\": {}}}",
                score.profile,
                score.normalized,
                score.threshold,
                corpus.len()
            );
        }
    }
}
