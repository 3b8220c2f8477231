//! A circuit breaker per upstream, as a pure state machine driven by the caller's clock.
//!
//! Closed: calls pass; `failures_to_open` consecutive failures open it. Open: calls are
//! refused until `cooldown` has passed, then one trial call is let through (half-open). The
//! trial's success closes the breaker; its failure opens it for another cooldown.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

/// How a call was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Normal,
    /// The one call a half-open breaker lets through to test the upstream.
    Trial,
}

#[derive(Clone, Debug)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: State,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        assert!(failures_to_open > 0, "a breaker that opens on zero failures never closes");
        Breaker { failures_to_open, cooldown, state: State::Closed { failures: 0 } }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a call may go out now. In half-open state only one trial is let through.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.admit(now).is_some()
    }

    /// Like [`Breaker::allow`], saying whether the admitted call is the half-open trial
    /// (whose caller must report an outcome, or [`Breaker::abandon`] it).
    pub fn admit(&mut self, now: Instant) -> Option<Admission> {
        match self.state {
            State::Closed { .. } => Some(Admission::Normal),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { trial_in_flight: true };
                Some(Admission::Trial)
            }
            State::Open { .. } | State::HalfOpen { trial_in_flight: true } => None,
            State::HalfOpen { trial_in_flight: false } => {
                self.state = State::HalfOpen { trial_in_flight: true };
                Some(Admission::Trial)
            }
        }
    }

    /// When a refused caller may try again.
    pub fn retry_after(&self, now: Instant) -> Duration {
        match self.state {
            State::Open { until } => until.saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }

    /// The trial call let through by [`Breaker::admit`] ended without an outcome (its caller
    /// went away): let the next call be the trial instead. Only the trial's owner calls this.
    pub fn abandon(&mut self) {
        if let State::HalfOpen { trial_in_flight: true } = self.state {
            self.state = State::HalfOpen { trial_in_flight: false };
        }
    }

    pub fn success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    pub fn failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.failures_to_open => {
                State::Closed { failures: failures + 1 }
            }
            _ => State::Open { until: now + self.cooldown },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn opens_cools_down_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(b.allow(t0));
            b.failure(t0);
        }
        assert!(b.allow(t0), "two failures of three: still closed");
        b.failure(t0);
        assert!(!b.allow(t0 + Duration::from_secs(9)), "open");
        assert_eq!(b.retry_after(t0 + Duration::from_secs(9)), Duration::from_secs(1));
        assert!(b.allow(t0 + Duration::from_secs(10)), "half-open trial");
        assert!(!b.allow(t0 + Duration::from_secs(10)), "only one trial at a time");
        b.success();
        assert_eq!(b.state(), State::Closed { failures: 0 });
    }

    #[test]
    fn failed_trial_reopens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(5));
        b.failure(t0);
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.allow(t1));
        b.failure(t1);
        assert!(!b.allow(t1 + Duration::from_secs(4)));
        assert!(b.allow(t1 + Duration::from_secs(5)));
    }

    #[test]
    fn an_abandoned_trial_frees_the_next_call() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(1));
        b.failure(t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.admit(t1), Some(Admission::Trial));
        b.abandon();
        assert_eq!(b.admit(t1), Some(Admission::Trial), "the next call may try");
    }

    proptest! {
        /// Whatever happens, a success always closes the breaker, and an open breaker never
        /// lets a call through before its cooldown ends.
        #[test]
        fn invariants(events in proptest::collection::vec((0u8..3, 0u64..20), 0..60)) {
            let t0 = Instant::now();
            let mut b = Breaker::new(3, Duration::from_secs(10));
            let mut now = t0;
            for (kind, advance) in events {
                now += Duration::from_secs(advance);
                match kind {
                    0 => {
                        let before = b.state();
                        let allowed = b.allow(now);
                        if let State::Open { until } = before {
                            prop_assert_eq!(allowed, now >= until);
                        }
                    }
                    1 => { b.success(); prop_assert_eq!(b.state(), State::Closed { failures: 0 }); }
                    _ => b.failure(now),
                }
            }
        }
    }
}
