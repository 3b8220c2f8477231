//! Diagnosis: what is probably wrong with an agent, as ranked hypotheses with evidence.
//!
//! The input is an [`Episode`]: what the sentinel saw from the first anomaly to the
//! confirmation (the largest deviation per metric, prompt changes, injection signals, the
//! tools called) plus the correlation verdict. Each [`Diagnosis`] has a signature; every
//! signature that matches yields a [`Hypothesis`] with a confidence and the evidence that
//! raised it. `unknown` is always present at a low confidence, so a diagnosis never comes
//! back empty. Operator feedback ([`Feedback`]) scales future confidence per diagnosis:
//! confirmed diagnoses are trusted more, refuted ones less.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::correlation::{Symptom, Verdict};
use crate::rhythm::{Rate, Surge};
use crate::sentinel::Metric;

/// What can be wrong with an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    /// Instructions smuggled into the agent's input took it over.
    PromptInjection,
    /// The agent's instructions changed and its behaviour with them.
    PromptDrift,
    /// The agent costs far more per call than it used to.
    CostOverrun,
    /// The agent keeps calling tools without getting anywhere.
    InfiniteLoop,
    /// The agent's tools or backends fail or stall.
    ToolInstability,
    /// The agent's context grows or garbles: input tokens blow up.
    MemoryCorruption,
    /// Most of the fleet misbehaves at once: the cause is outside the agents.
    ExternalCause,
    /// No signature matched.
    Unknown,
}

impl Diagnosis {
    pub const ALL: [Diagnosis; 8] = [
        Diagnosis::PromptInjection,
        Diagnosis::PromptDrift,
        Diagnosis::CostOverrun,
        Diagnosis::InfiniteLoop,
        Diagnosis::ToolInstability,
        Diagnosis::MemoryCorruption,
        Diagnosis::ExternalCause,
        Diagnosis::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Diagnosis::PromptInjection => "prompt_injection",
            Diagnosis::PromptDrift => "prompt_drift",
            Diagnosis::CostOverrun => "cost_overrun",
            Diagnosis::InfiniteLoop => "infinite_loop",
            Diagnosis::ToolInstability => "tool_instability",
            Diagnosis::MemoryCorruption => "memory_corruption",
            Diagnosis::ExternalCause => "external_cause",
            Diagnosis::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// What the sentinel saw of one agent between its first anomaly and now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Episode {
    /// The largest upward deviation seen per metric.
    pub deviations: BTreeMap<Metric, f64>,
    /// Observations in the episode, and how many were anomalous.
    pub observations: u32,
    pub anomalous: u32,
    /// The system prompt hash changed during the episode.
    pub prompt_changed: bool,
    /// The strongest prompt-injection signal seen in the agent's input, 0 to 1.
    pub injection: f64,
    /// What matched, for the evidence (capped).
    pub injection_patterns: Vec<String>,
    /// Tool calls per tool name during the episode (capped in size).
    pub tools: BTreeMap<String, u32>,
    /// The strongest sustained surge per rate.
    #[serde(default)]
    pub rates: BTreeMap<Rate, Surge>,
}

/// Names of tools kept per episode, and injection patterns.
const EPISODE_NAMES_MAX: usize = 32;

impl Episode {
    /// The metrics that were anomalous and the rates that surged (the symptoms correlation
    /// matches across agents).
    pub fn symptoms(&self) -> Vec<Symptom> {
        let metrics = self.deviations.iter().filter(|(_, d)| **d > 0.0).map(|(m, _)| Symptom::Metric(*m));
        metrics.chain(self.rates.keys().map(|r| Symptom::Rate(*r))).collect()
    }

    pub fn note_surge(&mut self, surge: &Surge) {
        match self.rates.get(&surge.rate) {
            Some(kept) if kept.factor() >= surge.factor() => {}
            _ => {
                self.rates.insert(surge.rate, *surge);
            }
        }
    }

    /// A surge's strength, 0 to 1: twice the expected rate is 0.25, five times 1.
    fn surge_strength(&self, rate: Rate) -> f64 {
        self.rates.get(&rate).map_or(0.0, |s| ((s.factor() - 1.0) / 4.0).clamp(0.0, 1.0))
    }

    pub fn deviation(&self, metric: Metric) -> f64 {
        self.deviations.get(&metric).copied().unwrap_or(0.0)
    }

    pub fn note_deviation(&mut self, metric: Metric, deviation: f64) {
        let slot = self.deviations.entry(metric).or_insert(0.0);
        *slot = slot.max(deviation);
    }

    pub fn note_tools(&mut self, names: &[String]) {
        for name in names {
            if let Some(n) = self.tools.get_mut(name) {
                *n = n.saturating_add(1);
            } else if self.tools.len() < EPISODE_NAMES_MAX {
                self.tools.insert(name.clone(), 1);
            }
        }
    }

    pub fn note_injection(&mut self, score: f64, patterns: &[String]) {
        self.injection = self.injection.max(score);
        for p in patterns {
            if self.injection_patterns.len() < EPISODE_NAMES_MAX && !self.injection_patterns.contains(p) {
                self.injection_patterns.push(p.clone());
            }
        }
    }

    /// The most called tool and its share of all tool calls in the episode.
    fn dominant_tool(&self) -> Option<(&str, f64)> {
        let total: u32 = self.tools.values().sum();
        let (name, n) = self.tools.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        (total > 0).then(|| (name.as_str(), f64::from(*n) / f64::from(total)))
    }
}

/// One candidate explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hypothesis {
    pub diagnosis: Diagnosis,
    /// 0 to 1, after operator feedback.
    pub confidence: f64,
    pub evidence: Vec<String>,
}

/// Operator verdicts on past diagnoses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Feedback {
    /// (confirmed, refuted) per diagnosis.
    counts: BTreeMap<Diagnosis, (u32, u32)>,
}

impl Feedback {
    pub fn record(&mut self, diagnosis: Diagnosis, confirmed: bool) {
        let (c, r) = self.counts.entry(diagnosis).or_default();
        if confirmed {
            *c = c.saturating_add(1);
        } else {
            *r = r.saturating_add(1);
        }
    }

    pub fn counts(&self, diagnosis: Diagnosis) -> (u32, u32) {
        self.counts.get(&diagnosis).copied().unwrap_or_default()
    }

    /// The factor confidence is scaled by: 1 with no feedback, up to 2 when every verdict
    /// confirmed, down towards 0 when every verdict refuted (Laplace-smoothed).
    pub fn factor(&self, diagnosis: Diagnosis) -> f64 {
        let (c, r) = self.counts(diagnosis);
        2.0 * (f64::from(c) + 1.0) / (f64::from(c) + f64::from(r) + 2.0)
    }
}

/// A deviation as a 0-to-1 strength: `threshold` deviations is 0.5, twice that is 1.
fn strength(deviation: f64, threshold: f64) -> f64 {
    if deviation <= 0.0 || threshold <= 0.0 { 0.0 } else { (deviation / (2.0 * threshold)).min(1.0) }
}

/// Ranks every diagnosis whose signature matches `episode`, most likely first.
/// `threshold` is the sentinel's (deviations at which a value is anomalous).
pub fn diagnose(episode: &Episode, verdict: &Verdict, threshold: f64, feedback: &Feedback) -> Vec<Hypothesis> {
    let s = |m: Metric| strength(episode.deviation(m), threshold);
    let dev = |m: Metric| format!("{} {:+.1} deviations", m.as_str(), episode.deviation(m));
    let mut found: Vec<(Diagnosis, f64, Vec<String>)> = Vec::new();

    if episode.injection >= 0.5 {
        let mut evidence = vec![format!("injection signal {:.2} in the agent's input", episode.injection)];
        if !episode.injection_patterns.is_empty() {
            evidence.push(format!("matched: {}", episode.injection_patterns.join(", ")));
        }
        let mut confidence = 0.6 + 0.35 * episode.injection;
        for m in [Metric::ToolCalls, Metric::OutputTokens] {
            if s(m) > 0.0 {
                evidence.push(dev(m));
                confidence += 0.05;
            }
        }
        found.push((Diagnosis::PromptInjection, confidence, evidence));
    }
    if episode.prompt_changed {
        let mut evidence = vec!["the system prompt changed".to_owned()];
        let behaviour = [Metric::OutputTokens, Metric::ToolCalls, Metric::InputTokens]
            .into_iter()
            .filter(|&m| s(m) > 0.0)
            .collect::<Vec<_>>();
        evidence.extend(behaviour.iter().map(|&m| dev(m)));
        let confidence = if episode.injection >= 0.5 { 0.4 } else { 0.6 + 0.1 * behaviour.len() as f64 };
        found.push((Diagnosis::PromptDrift, confidence, evidence));
    }
    let surge = |r: Rate| {
        episode.rates.get(&r).map(|x| {
            format!(
                "{} {:.1}× what similar moments had ({} against {:.0} per bucket, {} buckets running), each call ordinary",
                r.as_str(),
                x.factor(),
                x.value,
                x.expected,
                x.buckets
            )
        })
    };
    let calls_surged = episode.rates.contains_key(&Rate::CallRate);
    if let Some(evidence) = surge(Rate::TokenRate).filter(|_| !calls_surged && s(Metric::CostUsd) == 0.0) {
        // The spend per minute rose with the calls steady and no call alone anomalous: the
        // calls grew a little each, which adds up.
        found.push((Diagnosis::CostOverrun, 0.5 + 0.3 * episode.surge_strength(Rate::TokenRate), vec![evidence]));
    }
    if s(Metric::CostUsd) > 0.0 {
        let tokens = s(Metric::InputTokens).max(s(Metric::OutputTokens));
        let mut evidence = vec![dev(Metric::CostUsd)];
        // Cost up with tokens steady: a pricier model or a pricing change, the overrun itself.
        let confidence = if tokens == 0.0 {
            evidence.push("token counts stayed within their baselines".into());
            0.55 + 0.4 * s(Metric::CostUsd)
        } else {
            0.35 + 0.2 * s(Metric::CostUsd)
        };
        found.push((Diagnosis::CostOverrun, confidence, evidence));
    }
    if s(Metric::ToolCalls) > 0.0 || calls_surged {
        let mut evidence: Vec<String> = surge(Rate::CallRate).into_iter().collect();
        if s(Metric::ToolCalls) > 0.0 {
            evidence.insert(0, dev(Metric::ToolCalls));
        }
        // Calling far more often than this hour usually sees is what a loop that re-plans
        // with short prompts looks like, however ordinary each call.
        let mut confidence = 0.5 + 0.3 * s(Metric::ToolCalls).max(episode.surge_strength(Rate::CallRate));
        if let Some((name, share)) = episode.dominant_tool().filter(|(_, share)| *share >= 0.6) {
            evidence.push(format!("{:.0}% of tool calls went to {name:?}", share * 100.0));
            confidence += 0.15;
        }
        found.push((Diagnosis::InfiniteLoop, confidence, evidence));
    }
    let failing = s(Metric::Errors).max(s(Metric::Retries));
    if failing > 0.0 || s(Metric::LatencyMs) > 0.0 {
        let mut evidence = Vec::new();
        for m in [Metric::Errors, Metric::Retries, Metric::LatencyMs] {
            if s(m) > 0.0 {
                evidence.push(dev(m));
            }
        }
        let confidence = if failing > 0.0 {
            0.6 + 0.3 * failing
        } else {
            evidence.push("latency rose without errors or retries".into());
            0.35 + 0.2 * s(Metric::LatencyMs)
        };
        found.push((Diagnosis::ToolInstability, confidence, evidence));
    }
    if s(Metric::InputTokens) > 0.0 {
        let mut evidence = vec![dev(Metric::InputTokens)];
        let mut confidence = 0.5 + 0.3 * s(Metric::InputTokens);
        if episode.deviation(Metric::InputTokens) >= episode.deviation(Metric::OutputTokens) {
            evidence.push("the context grew faster than the answers".into());
            confidence += 0.1;
        }
        if episode.prompt_changed || episode.injection >= 0.5 {
            confidence -= 0.2;
        }
        found.push((Diagnosis::MemoryCorruption, confidence, evidence));
    } else if s(Metric::OutputTokens) > 0.0 && !episode.prompt_changed && episode.injection < 0.5 {
        found.push((
            Diagnosis::MemoryCorruption,
            0.4 + 0.2 * s(Metric::OutputTokens),
            vec![dev(Metric::OutputTokens), "answers grew with the input steady".into()],
        ));
    }
    match verdict {
        Verdict::FleetWide { agents, active } => found.push((
            Diagnosis::ExternalCause,
            0.97,
            vec![format!("{agents} of {active} active agents were anomalous in the same window")],
        )),
        Verdict::PartialFleet { agents, active } => found.push((
            Diagnosis::ExternalCause,
            0.3 + 0.3 * f64::from(*agents) / f64::from((*active).max(1)),
            vec![format!("{agents} of {active} active agents were anomalous in the same window")],
        )),
        Verdict::AgentSpecific => {}
    }
    found.push((Diagnosis::Unknown, 0.2, vec!["no signature matched more strongly".into()]));

    let mut ranked: Vec<Hypothesis> = found
        .into_iter()
        .map(|(diagnosis, confidence, evidence)| Hypothesis {
            diagnosis,
            confidence: (confidence * feedback.factor(diagnosis)).clamp(0.0, 0.99),
            evidence,
        })
        .collect();
    ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.diagnosis.cmp(&b.diagnosis)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(deviations: &[(Metric, f64)]) -> Episode {
        let mut e = Episode { observations: 3, anomalous: 2, ..Episode::default() };
        for &(m, d) in deviations {
            e.note_deviation(m, d);
        }
        e
    }

    fn top(e: &Episode, verdict: &Verdict) -> Diagnosis {
        diagnose(e, verdict, 4.0, &Feedback::default())[0].diagnosis
    }

    #[test]
    fn each_signature_wins_its_case() {
        let specific = Verdict::AgentSpecific;
        let mut injected = episode(&[(Metric::ToolCalls, 6.0)]);
        injected.note_injection(0.9, &["ignore previous instructions".into()]);
        assert_eq!(top(&injected, &specific), Diagnosis::PromptInjection);

        let mut drift = episode(&[(Metric::OutputTokens, 5.0)]);
        drift.prompt_changed = true;
        assert_eq!(top(&drift, &specific), Diagnosis::PromptDrift);

        assert_eq!(top(&episode(&[(Metric::CostUsd, 9.0)]), &specific), Diagnosis::CostOverrun);

        let mut looping = episode(&[(Metric::ToolCalls, 10.0)]);
        looping.note_tools(&["search".into(), "search".into(), "search".into(), "fetch".into()]);
        assert_eq!(top(&looping, &specific), Diagnosis::InfiniteLoop);

        let failing = episode(&[(Metric::Errors, 6.0), (Metric::LatencyMs, 8.0)]);
        assert_eq!(top(&failing, &specific), Diagnosis::ToolInstability);

        let bloated = episode(&[(Metric::InputTokens, 12.0), (Metric::CostUsd, 6.0)]);
        assert_eq!(top(&bloated, &specific), Diagnosis::MemoryCorruption);

        let outage = episode(&[(Metric::LatencyMs, 20.0), (Metric::Errors, 8.0)]);
        assert_eq!(top(&outage, &Verdict::FleetWide { agents: 9, active: 10 }), Diagnosis::ExternalCause);
        assert_eq!(top(&outage, &specific), Diagnosis::ToolInstability);

        assert_eq!(top(&Episode::default(), &specific), Diagnosis::Unknown);

        let surge = |rate, value| Surge { rate, value, expected: 10.0, score: 0.999, buckets: 2, bucket_secs: 300.0 };
        let mut busy = Episode::default();
        busy.note_surge(&surge(Rate::CallRate, 60.0));
        busy.note_surge(&surge(Rate::TokenRate, 50.0));
        let ranked = diagnose(&busy, &specific, 4.0, &Feedback::default());
        assert_eq!(ranked[0].diagnosis, Diagnosis::InfiniteLoop, "{ranked:?}");
        assert!(ranked[0].evidence[0].starts_with("call_rate 6.0×"), "{ranked:?}");
        let mut spending = Episode::default();
        spending.note_surge(&surge(Rate::TokenRate, 40.0));
        assert_eq!(top(&spending, &specific), Diagnosis::CostOverrun);
        assert_eq!(spending.symptoms(), vec![Symptom::Rate(Rate::TokenRate)]);
    }

    #[test]
    fn hypotheses_are_ranked_deduplicated_and_explained() {
        let e = episode(&[(Metric::InputTokens, 12.0), (Metric::CostUsd, 6.0), (Metric::LatencyMs, 5.0)]);
        let ranked = diagnose(&e, &Verdict::AgentSpecific, 4.0, &Feedback::default());
        assert!(ranked.windows(2).all(|w| w[0].confidence >= w[1].confidence));
        let mut kinds: Vec<_> = ranked.iter().map(|h| h.diagnosis).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), ranked.len());
        assert!(ranked.iter().all(|h| !h.evidence.is_empty() && (0.0..=0.99).contains(&h.confidence)));
        assert!(ranked[0].evidence[0].starts_with("input_tokens +12.0 deviations"), "{:?}", ranked[0]);
    }

    #[test]
    fn feedback_moves_confidence() {
        let e = episode(&[(Metric::CostUsd, 9.0)]);
        let before = diagnose(&e, &Verdict::AgentSpecific, 4.0, &Feedback::default())[0].confidence;
        let mut refuted = Feedback::default();
        for _ in 0..4 {
            refuted.record(Diagnosis::CostOverrun, false);
        }
        let after = diagnose(&e, &Verdict::AgentSpecific, 4.0, &refuted);
        let cost = after.iter().find(|h| h.diagnosis == Diagnosis::CostOverrun).map(|h| h.confidence);
        assert!(cost.is_some_and(|c| c < before / 2.0), "{before} → {cost:?}");
        let mut confirmed = Feedback::default();
        confirmed.record(Diagnosis::Unknown, true);
        assert!(confirmed.factor(Diagnosis::Unknown) > 1.0 && confirmed.factor(Diagnosis::CostOverrun) == 1.0);
    }
}
