//! A small deterministic generator (xorshift) and the distributions the benchmarks and the
//! engine tests draw from, so neither needs a randomness crate. Included by `#[path]`:
//! each user calls only some of the draws.
#![allow(dead_code, reason = "shared by several targets, each using some of the draws")]

pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next()
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-12);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Roughly normal around `mean` with spread `sd` (sum of uniforms).
    pub fn around(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..6).map(|_| self.next()).sum::<f64>() - 3.0;
        mean + sd * s * std::f64::consts::SQRT_2
    }

    /// Log-normal around `median` with log-spread `sigma` (latencies and token counts are
    /// skewed, not Gaussian).
    pub fn skewed(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Poisson by multiplying uniforms (rates here stay below a few hundred).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        let limit = (-lambda).exp();
        let (mut k, mut p) = (0, self.next());
        while p > limit {
            k += 1;
            p *= self.next();
        }
        k
    }
}
