//! Scoring a streaming detector the way the Numenta Anomaly Benchmark does.
//!
//! Implemented from the description shipped with the data (`../shared/data/nab/README.md`):
//! a probationary period that is not scored; inside a labelled window only the earliest
//! detection counts, rewarded by how early it came on a scaled sigmoid; a window without one
//! costs `fn_weight`; a detection outside every window costs `fp_weight` scaled by how far
//! it is from the end of the previous window (a full `fp_weight` before the first one). The
//! corpus score is normalized against a detector that never fires and a perfect one, at the
//! single threshold that maximizes it.

use serde::Serialize;

/// Weights of one scoring profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    pub name: &'static str,
    pub tp_weight: f64,
    pub fn_weight: f64,
    pub fp_weight: f64,
}

pub const STANDARD: Profile = Profile { name: "standard", tp_weight: 1.0, fn_weight: 1.0, fp_weight: 0.11 };
pub const REWARD_LOW_FP: Profile = Profile { name: "reward_low_fp", tp_weight: 1.0, fn_weight: 1.0, fp_weight: 0.22 };
pub const REWARD_LOW_FN: Profile = Profile { name: "reward_low_fn", tp_weight: 1.0, fn_weight: 2.0, fp_weight: 0.11 };
pub const PROFILES: [Profile; 3] = [STANDARD, REWARD_LOW_FP, REWARD_LOW_FN];

/// One series: its anomaly scores per row and its labelled windows as inclusive row ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub scores: Vec<f64>,
    pub windows: Vec<(usize, usize)>,
}

/// NAB's scaled sigmoid: 1 − … from +1 far before, 0 at the window's end, −1 far after.
pub fn sigmoid(y: f64) -> f64 {
    2.0 / (1.0 + (5.0 * y).exp()) - 1.0
}

/// Rows at the start of a series of `n` rows that are not scored.
pub fn probation(n: usize) -> usize {
    (n * 15 / 100).min(750)
}

/// The raw score of one series at `threshold`.
pub fn raw_score(series: &Series, threshold: f64, profile: &Profile) -> f64 {
    let start = probation(series.scores.len());
    let mut raw = 0.0;
    let mut windows = series.windows.clone();
    windows.sort_unstable();
    let mut credited = vec![false; windows.len()];
    for (i, &score) in series.scores.iter().enumerate().skip(start) {
        if score < threshold {
            continue;
        }
        match windows.iter().position(|&(a, b)| a <= i && i <= b) {
            Some(w) => {
                if !credited[w] {
                    credited[w] = true;
                    let (a, b) = windows[w];
                    let width = (b - a + 1) as f64;
                    let y = -((b - i + 1) as f64) / width;
                    raw += profile.tp_weight * sigmoid(y) / sigmoid(-1.0);
                }
            }
            None => match windows.iter().rev().find(|&&(_, b)| b < i) {
                Some(&(a, b)) => {
                    let width = (b - a + 1) as f64;
                    let y = (i - b) as f64 / (width - 1.0).max(1.0);
                    raw += profile.fp_weight * if y > 3.0 { -1.0 } else { sigmoid(y) };
                }
                None => raw -= profile.fp_weight,
            },
        }
    }
    let missed = credited.iter().filter(|c| !**c).count() as f64;
    raw - missed * profile.fn_weight
}

/// A corpus result at its best threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorpusScore {
    pub profile: &'static str,
    pub threshold: f64,
    /// 100 is perfect, 0 is a detector that never fires.
    pub normalized: f64,
    pub raw: f64,
}

/// Scores the corpus at each candidate threshold and keeps the best.
pub fn score_corpus(corpus: &[Series], thresholds: &[f64], profile: &Profile) -> CorpusScore {
    let windows: usize = corpus.iter().map(|s| s.windows.len()).sum();
    let perfect = profile.tp_weight * windows as f64;
    let null = -profile.fn_weight * windows as f64;
    let mut best = CorpusScore { profile: profile.name, threshold: f64::INFINITY, normalized: 0.0, raw: null };
    for &threshold in thresholds {
        let raw: f64 = corpus.iter().map(|s| raw_score(s, threshold, profile)).sum();
        if raw > best.raw {
            best = CorpusScore { profile: profile.name, threshold, normalized: 0.0, raw };
        }
    }
    best.normalized = if perfect > null { 100.0 * (best.raw - null) / (perfect - null) } else { 0.0 };
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, windows: Vec<(usize, usize)>, fire: &[usize]) -> Series {
        let mut scores = vec![0.0; n];
        for &i in fire {
            scores[i] = 1.0;
        }
        Series { scores, windows }
    }

    #[test]
    fn the_sigmoid_is_scaled_as_described() {
        assert!((sigmoid(0.0)).abs() < 1e-12);
        assert!(sigmoid(-1.0) > 0.98 && sigmoid(3.0) < -0.99);
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(100_000), 750);
    }

    #[test]
    fn earliest_detection_in_a_window_scores_most() {
        let early = series(1000, vec![(500, 599)], &[500]);
        let late = series(1000, vec![(500, 599)], &[598]);
        let twice = series(1000, vec![(500, 599)], &[500, 550]);
        let e = raw_score(&early, 0.5, &STANDARD);
        assert!((e - 1.0).abs() < 1e-9, "{e}");
        assert!(raw_score(&late, 0.5, &STANDARD) < 0.1);
        assert_eq!(raw_score(&twice, 0.5, &STANDARD), e, "only the first detection in a window counts");
    }

    #[test]
    fn misses_and_false_alarms_cost() {
        let silent = series(1000, vec![(500, 599)], &[]);
        assert_eq!(raw_score(&silent, 0.5, &STANDARD), -1.0);
        assert_eq!(raw_score(&silent, 0.5, &REWARD_LOW_FN), -2.0);
        let before = series(1000, vec![(500, 599)], &[300]);
        assert!((raw_score(&before, 0.5, &STANDARD) - (-1.0 - 0.11)).abs() < 1e-9);
        // Just after a window is cheap; far after costs the full weight.
        let near = raw_score(&series(1000, vec![(500, 599)], &[500, 601]), 0.5, &STANDARD);
        let far = raw_score(&series(1000, vec![(500, 599)], &[500, 990]), 0.5, &STANDARD);
        assert!(near > far, "{near} {far}");
        assert!((far - (1.0 - 0.11)).abs() < 1e-9, "{far}");
        // The probationary period is not scored.
        assert_eq!(raw_score(&series(1000, vec![], &[10]), 0.5, &STANDARD), 0.0);
    }

    #[test]
    fn corpus_normalization() {
        let corpus = vec![series(1000, vec![(500, 599)], &[500]), series(1000, vec![(200, 299)], &[])];
        let score = score_corpus(&corpus, &[0.5, 2.0], &STANDARD);
        assert_eq!(score.threshold, 0.5);
        assert!((score.normalized - 50.0).abs() < 1e-9, "{score:?}");
        let never = score_corpus(&corpus, &[2.0], &STANDARD);
        assert_eq!(never.normalized, 0.0);
    }
}
