//! A context detector for one metric's time series: is the recent *shape* of the series
//! unlike anything seen before?
//!
//! The sentinel judges one value against a mean and a spread, which misses anomalies of
//! context: a daily pattern that breaks, a plateau where there should be a swing. This
//! detector compares the last `window` values (a trajectory) with the trajectories it has
//! learned, by the summed distance to the `neighbours` nearest of them, and turns that
//! distance into a conformal score: the share of recent distances it exceeds. A score of
//! `alarm` or more raises an alarm and starts a rest period in which further scores are
//! held at 0, so one incident is one alarm.
//!
//! It learns from the first `learn` values (their range normalizes the series; the first
//! half gives the reference trajectories, the second half the distances scores are ranked
//! against) and then keeps both sets sliding. Cost per value: `learn / 2` distances of
//! `window` numbers.
//!
//! Measured on the Numenta Anomaly Benchmark (`benches/nab.rs`); this is the k-nearest-
//! neighbour conformal approach of Burnaev and Ishimtsev (KNN-CAD), implemented from its
//! description.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How the detector judges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextConfig {
    /// Values in one trajectory.
    pub window: usize,
    /// Nearest trajectories summed into a distance.
    pub neighbours: usize,
    /// Values learned before the first score.
    pub learn: usize,
    /// The score at which an alarm is raised.
    pub alarm: f64,
    /// Values held at 0 after an alarm (`None`: a fifth of `learn`).
    pub rest: Option<usize>,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig { window: 30, neighbours: 8, learn: 750, alarm: 0.99, rest: None }
    }
}

/// The detector's state for one series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextDetector {
    config: ContextConfig,
    /// Raw values until learning is done; afterwards unused.
    learning: Vec<f64>,
    low: f64,
    range: f64,
    /// The last `window` normalized values.
    recent: VecDeque<f64>,
    reference: VecDeque<Vec<f64>>,
    /// Trajectories waiting `window` values before they join the reference (so a
    /// trajectory is never compared with one overlapping it).
    pending: VecDeque<Vec<f64>>,
    distances: VecDeque<f64>,
    quiet: usize,
}

impl ContextDetector {
    pub fn new(config: ContextConfig) -> Self {
        let config = ContextConfig {
            window: config.window.max(2),
            neighbours: config.neighbours.max(1),
            learn: config.learn.max(2 * config.window.max(2) + config.neighbours.max(1) + 4),
            ..config
        };
        ContextDetector {
            config,
            learning: Vec::with_capacity(config.learn),
            low: 0.0,
            range: 1.0,
            recent: VecDeque::with_capacity(config.window),
            reference: VecDeque::new(),
            pending: VecDeque::new(),
            distances: VecDeque::new(),
            quiet: 0,
        }
    }

    pub fn config(&self) -> &ContextConfig {
        &self.config
    }

    /// Takes the next value; its anomaly score in [0, 1] (0 while learning, during a rest
    /// period, and for non-finite values).
    pub fn push(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        if self.learning.len() < self.config.learn {
            self.learning.push(value);
            if self.learning.len() == self.config.learn {
                self.finish_learning();
            }
            return 0.0;
        }
        let score = self.judge(value, true);
        if self.quiet > 0 {
            self.quiet -= 1;
            return 0.0;
        }
        if score >= self.config.alarm {
            self.quiet = self.config.rest.unwrap_or(self.config.learn / 5);
        }
        score
    }

    /// Normalizes by the learned range and builds the reference and distance sets from the
    /// learned values, as if they had streamed through.
    fn finish_learning(&mut self) {
        let values = std::mem::take(&mut self.learning);
        let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        self.low = low;
        self.range = (high - low).max(1e-9);
        let half = values.len() / 2;
        for (i, &v) in values.iter().enumerate() {
            if i < half {
                self.remember(v);
            } else {
                self.judge(v, false);
            }
        }
        self.learning = values;
    }

    /// Adds a value to the trajectory and the reference set (learning only).
    fn remember(&mut self, value: f64) {
        self.advance(value);
        if self.recent.len() == self.config.window {
            self.reference.push_back(self.recent.iter().copied().collect());
        }
    }

    fn advance(&mut self, value: f64) {
        if self.recent.len() == self.config.window {
            self.recent.pop_front();
        }
        self.recent.push_back((value - self.low) / self.range);
    }

    /// Scores the trajectory ending at `value` and slides the sets along.
    fn judge(&mut self, value: f64, scored: bool) -> f64 {
        self.advance(value);
        if self.recent.len() < self.config.window || self.reference.len() <= self.config.neighbours {
            return 0.0;
        }
        let trajectory: Vec<f64> = self.recent.iter().copied().collect();
        let mut d: Vec<f64> = self
            .reference
            .iter()
            .map(|r| r.iter().zip(&trajectory).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
            .collect();
        let k = self.config.neighbours.min(d.len() - 1);
        d.select_nth_unstable_by(k, f64::total_cmp);
        let alpha: f64 = d[..k].iter().sum();
        let score = if scored { self.rank(alpha) } else { 0.0 };
        let cap = self.config.learn - self.config.learn / 2;
        self.distances.push_back(alpha);
        if self.distances.len() > cap {
            self.distances.pop_front();
        }
        self.pending.push_back(trajectory);
        if self.pending.len() > self.config.window
            && let Some(old) = self.pending.pop_front()
        {
            self.reference.push_back(old);
            if self.reference.len() > self.config.learn / 2 {
                self.reference.pop_front();
            }
        }
        score
    }

    /// The share of recent distances `alpha` exceeds (ties count half); beyond all of them,
    /// graded by how far beyond, so the top of the scale still orders.
    fn rank(&self, alpha: f64) -> f64 {
        // Distances closer than this are equal (rounding, not a difference of shape).
        const SAME: f64 = 1e-9;
        let m = self.distances.len().max(1) as f64;
        let below = self.distances.iter().filter(|d| **d < alpha - SAME).count();
        if below == self.distances.len() {
            let max = self.distances.iter().copied().fold(0.0, f64::max).max(1e-12);
            return 1.0 - 0.5 / m * (max / alpha).min(1.0);
        }
        let equal = self.distances.iter().filter(|d| (**d - alpha).abs() <= SAME).count() as f64;
        (below as f64 + 0.5 * equal) / m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A daily swing with a little deterministic noise, as real metrics have.
    fn wave(i: usize) -> f64 {
        let noise = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
        (i as f64 * std::f64::consts::TAU / 24.0).sin() * 10.0 + 50.0 + noise
    }

    fn config() -> ContextConfig {
        ContextConfig { window: 12, neighbours: 5, learn: 240, alarm: 0.99, rest: Some(40) }
    }

    #[test]
    fn a_broken_pattern_alarms_once_and_a_repeating_one_does_not() {
        let mut d = ContextDetector::new(config());
        let mut scores = Vec::new();
        for i in 0..600 {
            // A flat stretch where the daily swing should be.
            let v = if (400..430).contains(&i) { 50.0 } else { wave(i) };
            scores.push(d.push(v));
        }
        assert!(scores[..240].iter().all(|s| *s == 0.0), "silent while learning");
        // Conformal scores of normal data are uniform: about one in a hundred reaches 0.99.
        let normal_alarms = scores[240..400].iter().filter(|s| **s >= 0.99).count();
        assert!(normal_alarms <= 3, "the learned pattern is normal: {normal_alarms} alarms");
        let alarms: Vec<usize> = (400..600).filter(|&i| scores[i] >= 0.99).collect();
        assert!(alarms.first().is_some_and(|&i| i < 415), "the flat stretch is caught early: {alarms:?}");
        assert!(alarms.windows(2).all(|w| w[1] - w[0] > 40), "one alarm per rest period: {alarms:?}");
        let top = scores[400..430].iter().copied().fold(0.0, f64::max);
        let usual = scores[300..400].iter().copied().sum::<f64>() / 100.0;
        assert!(top > 0.99 && usual < 0.7, "{top} {usual}");
    }

    #[test]
    fn it_is_deterministic_and_serializable() {
        let mut a = ContextDetector::new(config());
        for i in 0..300 {
            a.push(wave(i));
        }
        let mut b: ContextDetector = serde_json::from_str(&serde_json::to_string(&a).expect("json")).expect("back");
        for i in 300..360 {
            let v = wave(i) + if i == 330 { 40.0 } else { 0.0 };
            assert_eq!(a.push(v), b.push(v));
        }
    }

    proptest! {
        #[test]
        fn scores_stay_in_range(values in proptest::collection::vec(-1e6f64..1e6, 0..400)) {
            let mut d = ContextDetector::new(ContextConfig { window: 5, neighbours: 3, learn: 40, ..ContextConfig::default() });
            for v in values {
                let s = d.push(v);
                prop_assert!((0.0..=1.0).contains(&s), "{}", s);
            }
        }
    }
}
