//! Rhythm: how much an agent does per minute, judged against the shape of its own history.
//!
//! The sentinel judges one call at a time, so an agent that calls ten times as often as it
//! used to, each call ordinary, looks healthy to it: a loop that re-plans with short
//! prompts, a retry storm inside the agent, a runaway batch. [`Rhythm`] counts calls and
//! tokens per bucket of time (five minutes by default) and feeds each finished bucket to a
//! [`ContextDetector`] per [`Rate`], which knows the agent's usual daily shape after its
//! learning period (two days by default) and scores how unlike that shape the recent
//! stretch is.
//!
//! A conformal score of 0.99 is reached by about one normal bucket in a hundred, far too
//! often to act on alone over weeks of buckets, and a reference of one day cannot know
//! weeks: after a quiet weekend or a holiday, an ordinary busy morning is unlike the last
//! 24 hours. So a bucket *surges* only when
//!
//! - its score reaches the alarm (its shape is unlike the last day's),
//! - its value is at least `rise_factor` times what the nearest past trajectories had there,
//!   and above that by a floor that matters,
//! - and it is `peak_factor` above the busiest bucket of each of the last seven days (so
//!   nothing the agent did last week surges this week);
//!
//! and a rate is reported as an anomaly only after `sustain` surging buckets in a row. A
//! surging bucket is learned as the value expected there, so a runaway neither becomes
//! normal nor raises the bar for the next one. The
//! false-positive budget this buys is measured in `benches/rhythm.rs` over simulated weeks.
//! Drops are never surges: an agent going quiet is its own business. The price: a runaway
//! that stays below last week's peak (three times a night-time trickle) is not a surge.
//!
//! Buckets are closed by the agent's next call (the engine has no clock); the empty ones
//! in between count as zeros, at most `learn` of them (after that long the history is
//! replaced anyway).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::stream::{ContextConfig, ContextDetector};

/// A per-bucket series of one agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// Calls per bucket.
    CallRate,
    /// Input plus output tokens per bucket.
    TokenRate,
}

impl Rate {
    pub const ALL: [Rate; 2] = [Rate::CallRate, Rate::TokenRate];

    pub fn as_str(self) -> &'static str {
        match self {
            Rate::CallRate => "call_rate",
            Rate::TokenRate => "token_rate",
        }
    }

    /// The unit, for explanations.
    pub fn unit(self) -> &'static str {
        match self {
            Rate::CallRate => "calls",
            Rate::TokenRate => "tokens",
        }
    }

    /// The smallest rise per minute that can be a surge however regular the agent: two
    /// calls, five thousand tokens.
    pub fn min_excess_per_minute(self) -> f64 {
        match self {
            Rate::CallRate => 2.0,
            Rate::TokenRate => 5_000.0,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How rhythms are judged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RhythmConfig {
    pub enabled: bool,
    /// Length of a bucket (microseconds).
    pub bucket_us: i64,
    /// The detector per rate; `learn` is in buckets.
    pub context: ContextConfig,
    /// A surging bucket is at least this many times what similar moments had.
    pub rise_factor: f64,
    /// A surging bucket is at least this many times the busiest bucket of the last week.
    pub peak_factor: f64,
    /// Surging buckets in a row that make an anomaly.
    pub sustain: u32,
}

impl Default for RhythmConfig {
    fn default() -> Self {
        RhythmConfig {
            enabled: true,
            // Five-minute buckets, as most NAB series are, so the detector measured there
            // judges the same kind of series here. An hour's shape (12 buckets) against the
            // last day of them: learning two days leaves a reference of 24 hours, so each
            // hour is compared with its own time yesterday. No rest period: `sustain` needs
            // every bucket's score.
            bucket_us: 300_000_000,
            context: ContextConfig { window: 12, neighbours: 8, learn: 576, alarm: 0.99, rest: Some(0) },
            rise_factor: 1.5,
            peak_factor: 1.25,
            sustain: 2,
        }
    }
}

/// A rate that surged: the newest bucket, what was expected there, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Surge {
    pub rate: Rate,
    pub value: f64,
    pub expected: f64,
    pub score: f64,
    /// Surging buckets in a row, this one included.
    pub buckets: u32,
    /// The bucket length in seconds, for explanations.
    pub bucket_secs: f64,
}

impl Surge {
    /// How many times the expected value it is.
    pub fn factor(&self) -> f64 {
        self.value / self.expected.max(1.0)
    }

    /// Whether it lasted long enough to be an anomaly.
    pub fn sustained(&self, config: &RhythmConfig) -> bool {
        self.buckets >= config.sustain.max(1)
    }
}

/// One agent's open bucket and, per [`Rate`], its series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(from = "Stored", into = "Stored")]
pub struct Rhythm {
    /// Start of the open bucket; `None` before the first call.
    open_us: Option<i64>,
    /// Buckets closed.
    closed: u64,
    /// In [`Rate::ALL`] order.
    rates: [Series; 2],
}

/// One rate of one agent.
#[derive(Clone, Debug, Default, PartialEq)]
struct Series {
    /// In the open bucket so far.
    count: f64,
    /// Created when the first bucket closes.
    detector: Option<ContextDetector>,
    /// Surging buckets in a row.
    surging: u32,
    /// The busiest bucket of today and of each of the last seven days (newest last).
    /// Surges are not peaks: a runaway must not raise the bar for the next one. Nor is the
    /// bucket before a surge (a runaway's partial first bucket), so each bucket waits in
    /// `held` until the next one closes.
    held: f64,
    today: f64,
    week: VecDeque<f64>,
}

/// [`Rhythm`] as snapshots store it: one array per field, indexed by [`Rate`]. (The
/// layout of every snapshot so far; a change would need a migration.)
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct Stored {
    open_us: Option<i64>,
    counts: [f64; 2],
    /// None, or one per [`Rate`].
    detectors: Vec<ContextDetector>,
    surging: [u32; 2],
    closed: u64,
    held: [f64; 2],
    today: [f64; 2],
    week: [VecDeque<f64>; 2],
}

impl From<Stored> for Rhythm {
    fn from(s: Stored) -> Self {
        // Detectors exist for every rate or for none.
        let mut detectors = (s.detectors.len() == Rate::ALL.len()).then_some(s.detectors).into_iter().flatten();
        let mut weeks = s.week.into_iter();
        let rates = std::array::from_fn(|i| Series {
            count: s.counts[i],
            detector: detectors.next(),
            surging: s.surging[i],
            held: s.held[i],
            today: s.today[i],
            week: weeks.next().unwrap_or_default(),
        });
        Rhythm { open_us: s.open_us, closed: s.closed, rates }
    }
}

impl From<Rhythm> for Stored {
    fn from(r: Rhythm) -> Self {
        let field = |f: fn(&Series) -> f64| std::array::from_fn(|i| f(&r.rates[i]));
        let (counts, held, today) = (field(|s| s.count), field(|s| s.held), field(|s| s.today));
        let surging = std::array::from_fn(|i| r.rates[i].surging);
        let detectors = r.rates.iter().map(|s| s.detector.clone()).collect::<Option<Vec<_>>>().unwrap_or_default();
        let [a, b] = r.rates;
        Stored { open_us: r.open_us, counts, detectors, surging, closed: r.closed, held, today, week: [a.week, b.week] }
    }
}

/// Days of daily peaks kept.
const WEEK: usize = 7;

impl Rhythm {
    /// Counts a call made at `at_us`. Closes the buckets that ended before it and returns
    /// the rates whose newest closed bucket surged (sustained or not).
    pub fn record(&mut self, at_us: i64, tokens: u64, config: &RhythmConfig) -> Vec<Surge> {
        let bucket_us = config.bucket_us.max(1);
        let start = at_us - at_us.rem_euclid(bucket_us);
        let mut surges = Vec::new();
        match self.open_us {
            None => self.open_us = Some(start),
            Some(open) if start > open => {
                let empty = ((start - open) / bucket_us - 1).clamp(0, config.context.learn as i64);
                surges = self.close(config);
                for _ in 0..empty {
                    surges = self.close(config);
                }
                self.open_us = Some(start);
            }
            // A call stamped in (or before) the open bucket counts there.
            Some(_) => {}
        }
        self.rates[Rate::CallRate.index()].count += 1.0;
        self.rates[Rate::TokenRate.index()].count += tokens as f64;
        surges
    }

    /// Whether the detectors are still learning the agent's rhythm.
    pub fn is_learning(&self) -> bool {
        self.rates[0].detector.as_ref().is_none_or(|d| !d.is_learned())
    }

    /// Feeds the open bucket to the detectors and starts an empty one.
    fn close(&mut self, config: &RhythmConfig) -> Vec<Surge> {
        let bucket_us = config.bucket_us.max(1);
        let minutes = bucket_us as f64 / 60e6;
        let per_day = (86_400_000_000 / bucket_us).max(1) as u64;
        let mut surges = Vec::new();
        for rate in Rate::ALL {
            let series = &mut self.rates[rate.index()];
            let value = std::mem::take(&mut series.count);
            let week_peak = series.week.iter().copied().fold(0.0, f64::max);
            let detector = series.detector.get_or_insert_with(|| ContextDetector::new(config.context));
            let surged = detector.peek(value).filter(|j| {
                j.score >= config.context.alarm
                    && value >= config.rise_factor * j.expected
                    && value - j.expected >= rate.min_excess_per_minute() * minutes
                    && value > config.peak_factor * week_peak
            });
            // A surge is learned as what was expected there: a runaway must not make the
            // next one look normal.
            detector.judge_next(surged.map_or(value, |j| j.expected));
            let held = std::mem::take(&mut series.held);
            if surged.is_none() {
                series.today = series.today.max(held);
                series.held = value;
            }
            match surged {
                Some(j) => {
                    series.surging = series.surging.saturating_add(1);
                    surges.push(Surge {
                        rate,
                        value,
                        expected: j.expected,
                        score: j.score,
                        buckets: series.surging,
                        bucket_secs: config.bucket_us as f64 / 1e6,
                    });
                }
                None => series.surging = 0,
            }
        }
        self.closed += 1;
        if self.closed.is_multiple_of(per_day) {
            for series in &mut self.rates {
                if series.week.len() == WEEK {
                    series.week.pop_front();
                }
                series.week.push_back(std::mem::take(&mut series.today));
            }
        }
        surges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;
    const DAY: i64 = 24 * 60;

    /// Calls per minute of a working day: busy from 9 to 17, a trickle at night, with a
    /// deterministic jitter.
    fn calls_in(minute: i64) -> u64 {
        let hour = (minute / 60) % 24;
        let jitter = (minute as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61;
        if (9..17).contains(&hour) { 8 + jitter } else { 1 + jitter % 2 }
    }

    /// Feeds `minutes` of calls (scaled by `factor` from `surge_from`) and returns every
    /// surge with the minute it was reported in.
    fn run(minutes: i64, surge_from: i64, factor: u64) -> Vec<(i64, Surge)> {
        let config = RhythmConfig::default();
        let mut rhythm = Rhythm::default();
        let mut out = Vec::new();
        for minute in 0..minutes {
            let n = calls_in(minute) * if minute >= surge_from { factor } else { 1 };
            for call in 0..n {
                let at = minute * MINUTE + (call as i64) * (MINUTE / n as i64);
                for s in rhythm.record(at, 500, &config) {
                    out.push((minute, s));
                }
            }
        }
        out
    }

    #[test]
    fn two_weeks_of_ordinary_days_never_sustains_a_surge() {
        let surges = run(14 * DAY, i64::MAX, 1);
        let sustained = surges.iter().filter(|(_, s)| s.sustained(&RhythmConfig::default())).count();
        assert_eq!(sustained, 0, "{surges:?}");
        assert!(surges.is_empty(), "not even one surging bucket: {surges:?}");
    }

    #[test]
    fn a_loop_at_five_times_the_rate_is_caught_in_minutes() {
        // Three days learned and judged, then at 10:00 on day four the agent calls five
        // times as often.
        let start = 3 * DAY + 10 * 60;
        let surges = run(start + 60, start, 5);
        let (minute, first) = surges
            .iter()
            .find(|(_, s)| s.rate == Rate::CallRate && s.sustained(&RhythmConfig::default()))
            .expect("the loop is caught");
        assert!(*minute <= start + 15, "caught at minute {} of the loop", minute - start);
        assert!(first.factor() >= 3.0 && first.score >= 0.99, "{first:?}");
        assert!(surges.iter().all(|(m, _)| *m > start), "nothing surged before the loop: {surges:?}");
    }

    #[test]
    fn silence_is_not_a_surge_and_gaps_are_bounded() {
        let config = RhythmConfig::default();
        let mut rhythm = Rhythm::default();
        rhythm.record(0, 10, &config);
        // A year later: at most `learn` empty buckets are fed, and nothing surges.
        assert!(rhythm.record(365 * DAY * MINUTE, 10, &config).is_empty());
        assert!(!rhythm.is_learning());
        assert!(rhythm.record(365 * DAY * MINUTE - 5, 10, &config).is_empty(), "a late call counts in the open bucket");
    }

    #[test]
    fn the_state_is_compact() {
        let config = RhythmConfig::default();
        let mut rhythm = Rhythm::default();
        for minute in 0..(4 * DAY) {
            rhythm.record(minute * MINUTE, 100, &config);
        }
        let json = serde_json::to_string(&rhythm).expect("json");
        assert!(json.len() < 8_000, "{} bytes", json.len());
        let back: Rhythm = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, rhythm);
    }

    /// A rhythm as snapshots stored it before its fields were grouped per rate: the same
    /// run must still serialise to exactly this, and this must load as that run's state.
    const STORED: &str = r#"{"open_us":259560000000,"counts":[1.0,10.0],"detectors":[{"config":{"window":2,"neighbours":1,"learn":8,"alarm":0.99,"rest":0},"learning":"","learned":true,"low":1.0,"range":1e-9,"history":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","first":4319,"distances":"AAAAAAAAAAAAAAAAAAAAAA==","quiet":0},{"config":{"window":2,"neighbours":1,"learn":8,"alarm":0.99,"rest":0},"learning":"","learned":true,"low":10.0,"range":6.0,"history":"AAAAAKuqKj6rqqo+AAAAP6uqKj9VVVU/AACAPw==","first":4319,"distances":"Oo5jPTeOYz03jmM9////Pg==","quiet":0}],"surging":[0,0],"closed":4326,"held":[1.0,16.0],"today":[1.0,15.0],"week":[[1.0,1.0,1.0],[16.0,16.0,16.0]]}"#;

    #[test]
    fn the_stored_layout_is_unchanged() {
        let config = RhythmConfig {
            bucket_us: MINUTE,
            context: ContextConfig { window: 2, neighbours: 1, learn: 4, alarm: 0.99, rest: Some(0) },
            ..RhythmConfig::default()
        };
        let mut rhythm = Rhythm::default();
        for minute in 0..(3 * DAY + 7) {
            rhythm.record(minute * MINUTE, 10 + (minute as u64 % 7), &config);
        }
        assert_eq!(serde_json::to_string(&rhythm).expect("json"), STORED);
        let loaded: Rhythm = serde_json::from_str(STORED).expect("loads");
        assert_eq!(loaded, rhythm);
        // A state from before the first bucket closed has no detectors yet.
        let fresh: Rhythm = serde_json::from_str(r#"{"open_us":0,"counts":[3.0,30.0]}"#).expect("partial");
        assert!(fresh.is_learning());
    }
}
