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
//! The reference trajectories are all windows of the same series, so the state is that
//! series' recent stretch (about `learn / 2 + 2 * window` normalized values) and the recent
//! distances, stored as `f32` and serialized packed: a few kilobytes per series, which
//! matters when every agent of a fleet keeps one in every snapshot.
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
    /// Values learned before the first score (at least `2 * (window + neighbours + 1)`).
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

/// How one value was judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement {
    /// The anomaly score in [0, 1].
    pub score: f64,
    /// What the nearest trajectories had where this value is (the mean of their last
    /// values, in the series' unit): what the value "should" have been.
    pub expected: f64,
}

/// The detector's state for one series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContextDetector {
    config: ContextConfig,
    /// Raw values until learning is done; then empty.
    #[serde(with = "packed")]
    #[schemars(with = "String")]
    learning: Vec<f64>,
    learned: bool,
    low: f64,
    range: f64,
    /// Normalized values, newest last; `first` is the position of the oldest in the series.
    #[serde(with = "packed")]
    #[schemars(with = "String")]
    history: VecDeque<f32>,
    first: u64,
    /// Distances of the recent trajectories to their neighbours, newest last.
    #[serde(with = "packed")]
    #[schemars(with = "String")]
    distances: VecDeque<f32>,
    quiet: usize,
}

impl ContextDetector {
    pub fn new(config: ContextConfig) -> Self {
        let window = config.window.max(2);
        let neighbours = config.neighbours.max(1);
        // Enough that the first half holds more reference trajectories than neighbours.
        let learn = config.learn.max(2 * (window + neighbours + 1));
        let config = ContextConfig { window, neighbours, learn, ..config };
        ContextDetector {
            config,
            learning: Vec::new(),
            learned: false,
            low: 0.0,
            range: 1.0,
            history: VecDeque::new(),
            first: 0,
            distances: VecDeque::new(),
            quiet: 0,
        }
    }

    pub fn config(&self) -> &ContextConfig {
        &self.config
    }

    /// Whether the learning period is over (scores can be non-zero).
    pub fn is_learned(&self) -> bool {
        self.learned
    }

    /// Takes the next value; its anomaly score in [0, 1] (0 while learning, during a rest
    /// period, and for non-finite values).
    pub fn push(&mut self, value: f64) -> f64 {
        self.judge_next(value).map_or(0.0, |j| j.score)
    }

    /// Takes the next value and says how it was judged: `None` while learning, during a
    /// rest period and for non-finite values.
    pub fn judge_next(&mut self, value: f64) -> Option<Judgement> {
        if !value.is_finite() {
            return None;
        }
        if !self.learned {
            self.learning.push(value);
            if self.learning.len() == self.config.learn {
                self.finish_learning();
            }
            return None;
        }
        let judgement = self.judge(value, true);
        if self.quiet > 0 {
            self.quiet -= 1;
            return None;
        }
        if judgement.score >= self.config.alarm {
            self.quiet = self.config.rest.unwrap_or(self.config.learn / 5);
        }
        Some(judgement)
    }

    /// How `value` would be judged as the next value, without taking it (rest periods
    /// aside): `None` while learning and for non-finite values. A caller that finds it anomalous can then teach
    /// the detector something else in its place ([`ContextDetector::judge_next`] with the
    /// expected value), so an anomaly does not become part of what is normal.
    pub fn peek(&mut self, value: f64) -> Option<Judgement> {
        if !self.learned || !value.is_finite() {
            return None;
        }
        self.history.push_back(self.normalize(value));
        let (alpha, expected) = self.nearest();
        self.history.pop_back();
        Some(Judgement { score: self.rank(f64::from(alpha)), expected: self.low + expected * self.range })
    }

    /// Normalizes by the learned range and builds the reference and distance sets from the
    /// learned values, as if they had streamed through.
    fn finish_learning(&mut self) {
        let values = std::mem::take(&mut self.learning);
        let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        self.low = low;
        self.range = (high - low).max(1e-9);
        self.learned = true;
        let half = values.len() / 2;
        for (i, &v) in values.iter().enumerate() {
            if i < half {
                self.history.push_back(self.normalize(v));
            } else {
                self.judge(v, false);
            }
        }
    }

    fn normalize(&self, value: f64) -> f32 {
        ((value - self.low) / self.range) as f32
    }

    /// Scores the trajectory ending at `value` and slides the sets along.
    ///
    /// With `t` the value's position in the series, the reference trajectories are those
    /// ending from `window - 1` (or the last `learn / 2` of them) up to the end of the first
    /// half, or up to `t - window - 1` once that is later: never one overlapping the
    /// trajectory judged.
    fn judge(&mut self, value: f64, scored: bool) -> Judgement {
        let ContextConfig { window, learn, .. } = self.config;
        self.history.push_back(self.normalize(value));
        let t = self.first + self.history.len() as u64 - 1;
        let (window64, half) = (window as u64, (learn / 2) as u64);
        let (alpha, expected) = self.nearest();
        let score = if scored { self.rank(f64::from(alpha)) } else { 0.0 };
        self.distances.push_back(alpha);
        if self.distances.len() > learn - learn / 2 {
            self.distances.pop_front();
        }
        // The next value's oldest reference trajectory starts here at the earliest.
        let next_hi = (half - 1).max((t + 1).saturating_sub(window64 + 1));
        let keep_from = ((window64 - 1).max((next_hi + 1).saturating_sub(half)) + 1 - window64).min(t + 2 - window64);
        while self.first < keep_from {
            self.history.pop_front();
            self.first += 1;
        }
        Judgement { score, expected: self.low + expected * self.range }
    }

    /// The summed distance from the trajectory ending at the newest value to its nearest
    /// reference trajectories, and the mean of their last values (normalized).
    fn nearest(&self) -> (f32, f64) {
        let ContextConfig { window, neighbours, learn, .. } = self.config;
        let t = self.first + self.history.len() as u64 - 1;
        let (window64, half) = (window as u64, (learn / 2) as u64);
        let hi = (half - 1).max(t.saturating_sub(window64 + 1));
        let lo = (window64 - 1).max((hi + 1).saturating_sub(half));
        let at = |pos: u64| (pos - self.first) as usize;
        let current = at(t + 1 - window64);
        let mut d: Vec<(f32, u64)> = (lo..=hi)
            .map(|end| {
                let start = at(end + 1 - window64);
                let sum: f64 = (0..window)
                    .map(|i| {
                        let diff = f64::from(self.history[start + i]) - f64::from(self.history[current + i]);
                        diff * diff
                    })
                    .sum();
                (sum as f32, end)
            })
            .collect();
        let k = neighbours.min(d.len() - 1);
        d.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let alpha: f64 = d[..k].iter().map(|(x, _)| f64::from(*x)).sum();
        let alpha = alpha as f32;
        let expected = d[..k].iter().map(|(_, end)| f64::from(self.history[at(*end)])).sum::<f64>() / k as f64;
        (alpha, expected)
    }

    /// The share of recent distances `alpha` exceeds (ties count half); beyond all of them,
    /// graded by how far beyond, so the top of the scale still orders.
    fn rank(&self, alpha: f64) -> f64 {
        // Distances closer than this are equal (rounding, not a difference of shape).
        const SAME: f64 = 1e-9;
        let m = self.distances.len().max(1) as f64;
        let below = self.distances.iter().filter(|d| f64::from(**d) < alpha - SAME).count();
        if below == self.distances.len() {
            let max = self.distances.iter().map(|d| f64::from(*d)).fold(0.0, f64::max).max(1e-12);
            return 1.0 - 0.5 / m * (max / alpha).min(1.0);
        }
        let equal = self.distances.iter().filter(|d| (f64::from(**d) - alpha).abs() <= SAME).count() as f64;
        (below as f64 + 0.5 * equal) / m
    }
}

/// Floats serialized as base64 of their little-endian bytes: exact, and a third the size
/// of JSON numbers.
mod packed {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub trait Float: Copy {
        const SIZE: usize;
        fn put(self, out: &mut Vec<u8>);
        fn get(bytes: &[u8]) -> Self;
    }

    /// Little-endian bytes of `f32` and `f64`.
    macro_rules! float {
        ($($t:ty),*) => {$(
            impl Float for $t {
                const SIZE: usize = size_of::<$t>();
                fn put(self, out: &mut Vec<u8>) {
                    out.extend_from_slice(&self.to_le_bytes());
                }
                fn get(bytes: &[u8]) -> Self {
                    let mut b = [0; size_of::<$t>()];
                    b.copy_from_slice(bytes);
                    <$t>::from_le_bytes(b)
                }
            }
        )*};
    }

    float!(f32, f64);

    pub fn serialize<'a, T, C, S>(values: &'a C, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Float + 'a,
        &'a C: IntoIterator<Item = &'a T>,
        S: Serializer,
    {
        let mut bytes = Vec::new();
        for v in values {
            v.put(&mut bytes);
        }
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, T, C, D>(deserializer: D) -> Result<C, D::Error>
    where
        T: Float,
        C: FromIterator<T>,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(deserializer)?;
        let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
        if !bytes.len().is_multiple_of(T::SIZE) {
            return Err(D::Error::custom(format!("{} bytes is not a whole number of floats", bytes.len())));
        }
        Ok(bytes.chunks_exact(T::SIZE).map(T::get).collect())
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

    #[test]
    fn peeking_judges_like_taking_and_changes_nothing() {
        let mut d = ContextDetector::new(config());
        for i in 0..240 {
            assert_eq!(d.peek(wave(i)), None, "nothing to peek at while learning");
            d.push(wave(i));
        }
        for i in 240..300 {
            d.push(wave(i));
        }
        let mut compared = 0;
        for i in 300..360 {
            let v = wave(i) + if i == 330 { 40.0 } else { 0.0 };
            let before = d.clone();
            let peeked = d.peek(v);
            assert_eq!(d, before);
            // Rest periods hold what `judge_next` reports; `peek` judges regardless.
            if let Some(taken) = d.judge_next(v) {
                assert_eq!(peeked, Some(taken));
                compared += 1;
            }
        }
        assert!(compared > 20, "{compared}");
        let state = serde_json::to_string(&d).expect("json");
        // learn 240 → 120 reference windows of 12, 120 distances: a few hundred floats.
        assert!(state.len() < 2_500, "{} bytes: {state}", state.len());
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
