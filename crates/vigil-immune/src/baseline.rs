//! Exponentially weighted baselines.
//!
//! A [`Baseline`] follows one metric of one agent. Its weight per sample comes from a
//! half-life in samples: after `half_life` samples an old value counts half as much. During
//! warm-up (the first `warmup` samples) each sample weighs at least `1/n`, so the first
//! values give the plain running mean and variance rather than a mean dragged towards zero.
//! A second, slower average tracks drift: how far the recent level has moved from the
//! long-run one, in standard deviations. After healing, [`Baseline::accelerate`] weighs
//! the next samples more (to learn the cured behaviour quickly) and [`Baseline::reset`]
//! starts over.

use serde::{Deserialize, Serialize};

/// How a baseline learns.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BaselineConfig {
    /// Samples after which a value's weight has halved.
    pub half_life: f64,
    /// Samples before the baseline is trusted.
    pub warmup: u64,
    /// Half-life of the slow average drift is measured against (in samples).
    pub drift_half_life: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig { half_life: 50.0, warmup: 20, drift_half_life: 500.0 }
    }
}

/// The weight of one sample for a half-life (in samples).
pub fn alpha(half_life: f64) -> f64 {
    if half_life <= 0.0 { 1.0 } else { 1.0 - 0.5f64.powf(1.0 / half_life) }
}

/// One metric's learned normal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Baseline {
    pub samples: u64,
    pub mean: f64,
    pub variance: f64,
    /// The slow average, for drift.
    pub slow_mean: f64,
    /// Samples left to learn at the accelerated rate.
    pub accelerated: u64,
}

impl Baseline {
    /// Whether the baseline has seen enough samples to judge by.
    pub fn is_warm(&self, config: &BaselineConfig) -> bool {
        self.samples >= config.warmup
    }

    pub fn std_dev(&self) -> f64 {
        self.variance.max(0.0).sqrt()
    }

    /// Learns one sample. Non-finite values are ignored.
    pub fn update(&mut self, value: f64, config: &BaselineConfig) {
        if !value.is_finite() {
            return;
        }
        self.samples += 1;
        let n = self.samples as f64;
        let mut a = alpha(config.half_life);
        if self.samples <= config.warmup.max(1) {
            a = a.max(1.0 / n);
        }
        if self.accelerated > 0 {
            self.accelerated -= 1;
            a = a.max(alpha(config.half_life / 4.0));
        }
        if self.samples == 1 {
            self.mean = value;
            self.variance = 0.0;
            self.slow_mean = value;
            return;
        }
        let diff = value - self.mean;
        let increment = a * diff;
        self.mean += increment;
        self.variance = (1.0 - a) * (self.variance + diff * increment);
        let slow = alpha(config.drift_half_life).max(if self.samples <= config.warmup { 1.0 / n } else { 0.0 });
        self.slow_mean += slow * (value - self.slow_mean);
    }

    /// How far the recent level has moved from the long-run one, in standard deviations
    /// (0 when there is no spread to measure against).
    pub fn drift(&self) -> f64 {
        let sd = self.std_dev();
        if sd > 0.0 { (self.mean - self.slow_mean) / sd } else { 0.0 }
    }

    /// Learns the next `samples` four times faster (after healing, to adopt the cure).
    pub fn accelerate(&mut self, samples: u64) {
        self.accelerated = samples;
    }

    /// Forgets everything: the next samples are a new warm-up.
    pub fn reset(&mut self) {
        *self = Baseline::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn warm_up_gives_the_running_mean_and_variance() {
        let config = BaselineConfig { warmup: 10, ..BaselineConfig::default() };
        let mut b = Baseline::default();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            b.update(v, &config);
        }
        assert!((b.mean - 5.0).abs() < 1e-9, "{}", b.mean);
        // Population variance of the eight values is 4.
        assert!((b.variance - 4.0).abs() < 1e-9, "{}", b.variance);
        assert!(!b.is_warm(&config));
    }

    #[test]
    fn half_life_halves_an_old_value_weight() {
        let a = alpha(10.0);
        assert!(((1.0 - a).powi(10) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_level_shift_is_learned_and_shows_as_drift() {
        let config = BaselineConfig { half_life: 20.0, warmup: 5, drift_half_life: 400.0 };
        let mut b = Baseline::default();
        for i in 0..200 {
            b.update(100.0 + f64::from(i % 5), &config);
        }
        assert!(b.drift().abs() < 1.0, "{}", b.drift());
        for i in 0..100 {
            b.update(200.0 + f64::from(i % 5), &config);
        }
        assert!((b.mean - 202.0).abs() < 5.0, "{}", b.mean);
        assert!(b.drift() > 3.0, "{}", b.drift());
    }

    #[test]
    fn acceleration_and_reset() {
        let config = BaselineConfig::default();
        let mut slow = Baseline::default();
        for _ in 0..100 {
            slow.update(10.0, &config);
        }
        let mut fast = slow.clone();
        fast.accelerate(20);
        for _ in 0..20 {
            slow.update(20.0, &config);
            fast.update(20.0, &config);
        }
        assert!(fast.mean > slow.mean + 1.0, "{} vs {}", fast.mean, slow.mean);
        fast.reset();
        assert_eq!(fast, Baseline::default());
    }

    proptest! {
        /// The mean stays within the range of what was seen, and the variance is never
        /// negative, whatever the values.
        #[test]
        fn mean_is_bounded_and_variance_non_negative(values in proptest::collection::vec(-1e6f64..1e6, 1..300)) {
            let config = BaselineConfig::default();
            let mut b = Baseline::default();
            for &v in &values {
                b.update(v, &config);
            }
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(b.mean >= lo - 1e-6 && b.mean <= hi + 1e-6);
            prop_assert!(b.variance >= -1e-9);
            prop_assert_eq!(b.samples, values.len() as u64);
        }
    }
}
