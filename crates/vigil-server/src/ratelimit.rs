//! Per-caller rate limiting: a token bucket per key id, or per IP for callers without one.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use vigil_core::config::RateLimitConfig;

/// A keyed token-bucket limiter.
#[derive(Debug)]
pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl Limiter {
    pub fn new(config: RateLimitConfig) -> Self {
        let quota = Quota::per_second(config.per_second).allow_burst(config.burst);
        Limiter { inner: DefaultKeyedRateLimiter::keyed(quota), clock: DefaultClock::default() }
    }

    /// Takes a token for `key`, or says how many whole seconds to wait (at least 1).
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.inner
            .check_key(&key.to_owned())
            .map_err(|not_until| vigil_core::time::retry_after_secs(not_until.wait_time_from(self.clock.now())))
    }

    /// Forgets buckets that are full again, bounding memory under many distinct callers.
    pub fn prune(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn burst_then_refuse_with_retry_after() {
        let limiter =
            Limiter::new(RateLimitConfig { per_second: NonZeroU32::MIN, burst: NonZeroU32::new(3).expect("3") });
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        assert_eq!(limiter.check("a"), Err(1));
        assert_eq!(limiter.check("b"), Ok(()), "buckets are per caller");
    }
}
