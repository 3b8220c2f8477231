//! The one keyed rate limiter: a token bucket per key (a caller, an agent), for every rate
//! Vigil enforces on keys it does not know in advance: the HTTP layer's per-caller limit
//! and the gateway's per-agent call rate.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// A token bucket per key, all with the same quota.
#[derive(Debug)]
pub struct KeyedLimiter {
    buckets: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl KeyedLimiter {
    /// `per_second` tokens a second, up to `burst` at once.
    pub fn per_second(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        KeyedLimiter::with(Quota::per_second(per_second).allow_burst(burst))
    }

    /// `per_minute` tokens a minute, all of them available at once.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        KeyedLimiter::with(Quota::per_minute(per_minute))
    }

    fn with(quota: Quota) -> Self {
        KeyedLimiter { buckets: DefaultKeyedRateLimiter::keyed(quota), clock: DefaultClock::default() }
    }

    /// Takes a token for `key`, or says how many whole seconds to wait (at least 1).
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.buckets
            .check_key(&key.to_owned())
            .map_err(|not_until| vigil_core::time::retry_after_secs(not_until.wait_time_from(self.clock.now())))
    }

    /// Forgets buckets that are full again, bounding memory when callers invent keys.
    pub fn prune(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }

    /// How many keys have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_refusal_with_the_wait_and_buckets_per_key() {
        let limiter = KeyedLimiter::per_second(NonZeroU32::MIN, NonZeroU32::new(3).expect("3"));
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        assert_eq!(limiter.check("a"), Err(1));
        assert_eq!(limiter.check("b"), Ok(()), "buckets are per key");
        let per_minute = KeyedLimiter::per_minute(NonZeroU32::new(2).expect("2"));
        assert_eq!((per_minute.check("x"), per_minute.check("x")), (Ok(()), Ok(())));
        assert!(per_minute.check("x").is_err_and(|secs| (1..=30).contains(&secs)));
    }

    #[test]
    fn pruning_forgets_full_buckets() {
        let limiter = KeyedLimiter::per_second(NonZeroU32::new(1_000_000).expect("n"), NonZeroU32::MIN);
        for key in 0..100 {
            let _ = limiter.check(&key.to_string());
        }
        assert_eq!(limiter.len(), 100);
        std::thread::sleep(std::time::Duration::from_millis(5));
        limiter.prune();
        assert!(limiter.is_empty(), "{} buckets left", limiter.len());
    }
}
