//! Judging one observation against its baseline.
//!
//! The deviation is `(value - mean) / spread`, where the spread is the baseline's standard
//! deviation but never below a floor (an absolute one, and a share of the mean), so a
//! metric that has been perfectly constant does not call every tiny change an anomaly. The
//! reported deviation is capped, so one absurd value cannot dominate later arithmetic. An
//! observation is anomalous when the baseline is warm and the deviation reaches the
//! threshold; a change of system-prompt hash is an anomaly of its own.

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, BaselineConfig};
use crate::rhythm::Surge;

/// The metrics a baseline is kept for, per agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LatencyMs,
    InputTokens,
    OutputTokens,
    ToolCalls,
    CostUsd,
    Retries,
    Errors,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::LatencyMs,
        Metric::InputTokens,
        Metric::OutputTokens,
        Metric::ToolCalls,
        Metric::CostUsd,
        Metric::Retries,
        Metric::Errors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::LatencyMs => "latency_ms",
            Metric::InputTokens => "input_tokens",
            Metric::OutputTokens => "output_tokens",
            Metric::ToolCalls => "tool_calls",
            Metric::CostUsd => "cost_usd",
            Metric::Retries => "retries",
            Metric::Errors => "errors",
        }
    }

    /// Whether the engine judges this metric on a log scale. Latency, token counts and cost
    /// are positive and vary by factors (their spread is skewed, log-normal rather than
    /// normal), so a baseline of their logarithm makes "four deviations" mean the same rarity
    /// for every agent, and a fault that multiplies them stands out however large the agent.
    pub fn log_scale(self) -> bool {
        matches!(self, Metric::LatencyMs | Metric::InputTokens | Metric::OutputTokens | Metric::CostUsd)
    }

    /// The value the engine learns and judges: the logarithm for [`Metric::log_scale`]
    /// metrics (of at least one unit: 1 ms, 1 token, a micro-dollar), the value otherwise.
    pub fn judged(self, value: f64) -> f64 {
        match self {
            Metric::CostUsd => value.max(1e-6).ln(),
            m if m.log_scale() => value.max(1.0).ln(),
            _ => value,
        }
    }

    /// The spread floor the engine judges this metric with, on its judged scale: below it,
    /// a change is too small to matter whatever the history. On the log scale 0.1 is about
    /// 10 %; retries and errors are counted over the agent's last few calls, so a floor of
    /// one half needs a burst, not a single failure; a tool call more is one unit.
    pub fn floor(self) -> f64 {
        match self {
            m if m.log_scale() => 0.1,
            Metric::ToolCalls => 1.0,
            _ => 0.5,
        }
    }

    /// The smallest rise, in the metric's unit, that can be anomalous however steady the
    /// baseline: a call 40 µs slower than a sub-millisecond normal is many deviations on a
    /// log scale and means nothing. 100 ms, 50 tokens, a hundredth of a cent; one tool
    /// call, retry or error.
    pub fn min_excess(self) -> f64 {
        match self {
            Metric::LatencyMs => 100.0,
            Metric::InputTokens | Metric::OutputTokens => 50.0,
            Metric::CostUsd => 0.000_1,
            Metric::ToolCalls | Metric::Retries | Metric::Errors => 1.0,
        }
    }

    /// Position in [`Metric::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How the sentinel judges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SentinelConfig {
    /// Deviations (in spreads) at which an observation is anomalous.
    pub threshold: f64,
    /// The spread is at least this much, in the metric's unit.
    pub floor_absolute: f64,
    /// The spread is at least this share of the mean.
    pub floor_relative: f64,
    /// Deviations are reported up to this size.
    pub max_deviation: f64,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        SentinelConfig { threshold: 4.0, floor_absolute: 1.0, floor_relative: 0.05, max_deviation: 1_000.0 }
    }
}

/// What the sentinel found wrong with one observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// `value` is in the metric's unit. On a log scale (`multiplicative`), `mean` is the
    /// baseline's geometric mean in that unit and `spread` a factor (×/÷); otherwise both are
    /// in the unit. `deviation` is in spreads on the judged scale.
    Metric {
        metric: Metric,
        value: f64,
        mean: f64,
        spread: f64,
        deviation: f64,
        #[serde(default)]
        multiplicative: bool,
    },
    PromptChanged {
        from: String,
        to: String,
    },
    /// The call's input carried a prompt-injection signal.
    Injection {
        score: f64,
        patterns: Vec<String>,
    },
    /// The agent's rate of calls or tokens surged against its daily shape
    /// ([`crate::rhythm`]), bucket after bucket.
    Rhythm(Surge),
}

impl Anomaly {
    /// The anomaly in words: metric, value, baseline and deviation.
    pub fn explain(&self) -> String {
        match self {
            Anomaly::Metric { metric, value, mean, spread, deviation, multiplicative: false } => format!(
                "{} was {}, against a baseline of {} ± {}: {deviation:+.1} deviations",
                metric.as_str(),
                number(*value),
                number(*mean),
                number(*spread)
            ),
            Anomaly::Metric { metric, value, mean, spread, deviation, multiplicative: true } => format!(
                "{} was {}, against a typical {} (×/÷ {spread:.2}): {deviation:+.1} deviations",
                metric.as_str(),
                number(*value),
                number(*mean)
            ),
            Anomaly::PromptChanged { from, to } => {
                format!("the system prompt changed (sha256 {} → {})", short(from), short(to))
            }
            Anomaly::Injection { score, patterns } if patterns.is_empty() => {
                format!("the input carried a prompt-injection signal of {score:.2}")
            }
            Anomaly::Injection { score, patterns } => {
                format!("the input carried a prompt-injection signal of {score:.2} ({})", patterns.join(", "))
            }
            Anomaly::Rhythm(s) => format!(
                "{} was {} {} per {}, where similar moments had {} ({:.1}×, score {:.3}), {} buckets running",
                s.rate.as_str(),
                number(s.value),
                s.rate.unit(),
                duration(s.bucket_secs),
                number(s.expected),
                s.factor(),
                s.score,
                s.buckets
            ),
        }
    }
}

/// A bucket length in words: "5 min", "90 s".
fn duration(secs: f64) -> String {
    if secs >= 60.0 && (secs % 60.0) == 0.0 { format!("{} min", secs / 60.0) } else { format!("{secs} s") }
}

/// A number with the digits that matter: whole above 100, cents of a unit above 1, three
/// significant digits below (a cost of 0.000271 dollars reads as 2.71e-4).
fn number(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || !a.is_finite() {
        format!("{x}")
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The spread a baseline is judged with: its standard deviation, floored.
pub fn spread(baseline: &Baseline, config: &SentinelConfig) -> f64 {
    baseline.std_dev().max(config.floor_absolute).max(config.floor_relative * baseline.mean.abs())
}

/// Judges `value` of `metric` against `baseline`. `None` while the baseline warms up, or
/// when the value is within the threshold.
pub fn check(
    metric: Metric,
    value: f64,
    baseline: &Baseline,
    baseline_config: &BaselineConfig,
    config: &SentinelConfig,
) -> Option<Anomaly> {
    if !value.is_finite() || !baseline.is_warm(baseline_config) {
        return None;
    }
    let spread = spread(baseline, config);
    let deviation = ((value - baseline.mean) / spread).clamp(-config.max_deviation, config.max_deviation);
    (deviation.abs() >= config.threshold).then_some(Anomaly::Metric {
        metric,
        value,
        mean: baseline.mean,
        spread,
        deviation,
        multiplicative: false,
    })
}

/// A changed system prompt: `known` is the hash the agent has used so far.
pub fn check_prompt(known: Option<&str>, seen: Option<&str>) -> Option<Anomaly> {
    match (known, seen) {
        (Some(from), Some(to)) if from != to => {
            Some(Anomaly::PromptChanged { from: from.to_owned(), to: to.to_owned() })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(values: impl IntoIterator<Item = f64>) -> Baseline {
        let mut b = Baseline::default();
        for v in values {
            b.update(v, &BaselineConfig::default());
        }
        b
    }

    #[test]
    fn a_spike_is_anomalous_and_explains_itself() {
        let b = learned((0..100).map(|i| 200.0 + f64::from(i % 10)));
        let config = SentinelConfig::default();
        assert_eq!(check(Metric::LatencyMs, 206.0, &b, &BaselineConfig::default(), &config), None);
        let anomaly = check(Metric::LatencyMs, 2_000.0, &b, &BaselineConfig::default(), &config).expect("spike");
        let text = anomaly.explain();
        assert!(text.starts_with("latency_ms was 2000, against a baseline of 20"), "{text}");
        assert!(text.contains("deviations"), "{text}");
    }

    #[test]
    fn a_constant_metric_needs_more_than_a_tiny_change() {
        // Zero variance: the floor keeps 1 tool call more from being a 10^9-sigma event.
        let b = learned(std::iter::repeat_n(2.0, 50));
        let config = SentinelConfig::default();
        assert_eq!(check(Metric::ToolCalls, 3.0, &b, &BaselineConfig::default(), &config), None);
        let loop_ = check(Metric::ToolCalls, 40.0, &b, &BaselineConfig::default(), &config).expect("tool loop");
        let Anomaly::Metric { deviation, .. } = loop_ else { panic!("metric anomaly") };
        assert!((deviation - 38.0).abs() < 1e-9, "{deviation}");
    }

    #[test]
    fn deviation_is_capped_and_warm_up_is_silent() {
        let b = learned((0..30).map(f64::from));
        let config = SentinelConfig { max_deviation: 50.0, ..SentinelConfig::default() };
        let Some(Anomaly::Metric { deviation, .. }) =
            check(Metric::CostUsd, 1e12, &b, &BaselineConfig::default(), &config)
        else {
            panic!("anomaly")
        };
        assert_eq!(deviation, 50.0);
        let cold = learned([1.0, 1.0]);
        assert_eq!(check(Metric::CostUsd, 1e12, &cold, &BaselineConfig::default(), &config), None);
    }

    #[test]
    fn prompt_changes() {
        assert!(check_prompt(Some("aaaa"), Some("bbbb")).is_some_and(|a| a.explain().contains("aaaa → bbbb")));
        assert_eq!(check_prompt(Some("aaaa"), Some("aaaa")), None);
        assert_eq!(check_prompt(None, Some("aaaa")), None);
    }
}
