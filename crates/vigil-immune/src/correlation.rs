//! Correlation: is one agent sick, or is the whole fleet reacting to the same outside cause?
//!
//! [`Correlator`] remembers which agents were seen, and which showed which [`Symptom`] (an
//! anomalous per-call metric or a surging rate), by time. When an agent's suspicion is about to be confirmed,
//! [`Correlator::verdict`] counts, for each of its symptoms, the agents that showed the same
//! symptom within the window, among those active in it, and takes the largest count: one
//! agent is [`Verdict::AgentSpecific`]; several but less than the fleet share is
//! [`Verdict::PartialFleet`]; at least the share (and the minimum count) is
//! [`Verdict::FleetWide`], an external cause such as a provider outage, which must not be
//! "healed" agent by agent. Matching symptoms matters: three agents with three unrelated
//! faults in the same minute are three incidents, not an outage. Injection signals and
//! prompt changes are never symptoms here: many agents injected at once is an attack on
//! the fleet, not a cause to excuse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rhythm::Rate;
use crate::sentinel::Metric;

/// What correlation matches across agents. Serialized as the metric's or rate's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Symptom {
    Metric(Metric),
    /// A fleet whose call rate surges together is under load, not sick.
    Rate(Rate),
}

impl Symptom {
    fn window_us(self, config: &CorrelationConfig) -> i64 {
        match self {
            Symptom::Metric(_) => config.window_us,
            Symptom::Rate(_) => config.window_us.max(config.rate_window_us),
        }
    }
}

impl From<Metric> for Symptom {
    fn from(metric: Metric) -> Self {
        Symptom::Metric(metric)
    }
}

impl From<Rate> for Symptom {
    fn from(rate: Rate) -> Self {
        Symptom::Rate(rate)
    }
}

/// How correlation judges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CorrelationConfig {
    /// How far back agents count as active or anomalous together (microseconds).
    pub window_us: i64,
    /// How far back a surging rate counts (microseconds). A surge describes a whole rhythm
    /// bucket and is seen only when the bucket closes, so this covers two buckets: agents
    /// surging together have all shown it by the time the first one's surge is sustained.
    pub rate_window_us: i64,
    /// Share of the active agents that makes an anomaly fleet-wide.
    pub fleet_share: f64,
    /// Fewest anomalous agents for a fleet-wide verdict.
    pub fleet_min_agents: u32,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig { window_us: 60_000_000, rate_window_us: 600_000_000, fleet_share: 0.5, fleet_min_agents: 3 }
    }
}

/// Who is affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    AgentSpecific,
    PartialFleet { agents: u32, active: u32 },
    FleetWide { agents: u32, active: u32 },
}

/// Last-seen times per agent, and last times per agent and symptom.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Correlator {
    seen: BTreeMap<String, i64>,
    symptoms: BTreeMap<Symptom, BTreeMap<String, i64>>,
}

impl Correlator {
    pub fn saw(&mut self, agent: &str, at_us: i64) {
        bump(&mut self.seen, agent, at_us);
    }

    /// `agent` showed `symptom` at `at_us`.
    pub fn saw_symptom(&mut self, agent: &str, symptom: impl Into<Symptom>, at_us: i64) {
        bump(&mut self.seen, agent, at_us);
        bump(self.symptoms.entry(symptom.into()).or_default(), agent, at_us);
    }

    /// Forgets what is older than a window (bounds memory; it no longer counts anyway).
    pub fn prune(&mut self, now_us: i64, config: &CorrelationConfig) {
        let since = now_us.saturating_sub(config.window_us);
        self.seen.retain(|_, t| *t >= since);
        for (symptom, agents) in &mut self.symptoms {
            let since = now_us.saturating_sub(symptom.window_us(config));
            agents.retain(|_, t| *t >= since);
        }
        self.symptoms.retain(|_, agents| !agents.is_empty());
    }

    /// The verdict at `now_us` for an agent showing `symptoms`.
    pub fn verdict(&self, now_us: i64, symptoms: &[Symptom], config: &CorrelationConfig) -> Verdict {
        let since = now_us.saturating_sub(config.window_us);
        let active = count(&self.seen, since);
        let agents = symptoms
            .iter()
            .filter_map(|s| Some((self.symptoms.get(s)?, now_us.saturating_sub(s.window_us(config)))))
            .map(|(agents, since)| count(agents, since))
            .max()
            .unwrap_or(0);
        if agents <= 1 {
            Verdict::AgentSpecific
        } else if agents >= config.fleet_min_agents && f64::from(agents) >= config.fleet_share * f64::from(active) {
            Verdict::FleetWide { agents, active }
        } else {
            Verdict::PartialFleet { agents, active }
        }
    }
}

fn bump(map: &mut BTreeMap<String, i64>, agent: &str, at_us: i64) {
    match map.get_mut(agent) {
        Some(t) => *t = (*t).max(at_us),
        None => {
            map.insert(agent.to_owned(), at_us);
        }
    }
}

fn count(map: &BTreeMap<String, i64>, since: i64) -> u32 {
    u32::try_from(map.values().filter(|t| **t >= since).count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATENCY: &[Symptom] = &[Symptom::Metric(Metric::LatencyMs)];

    #[test]
    fn specific_partial_and_fleet_wide() {
        let config = CorrelationConfig::default();
        let mut c = Correlator::default();
        for i in 0..10 {
            c.saw(&format!("agent-{i}"), 1_000);
        }
        c.saw_symptom("agent-0", Metric::LatencyMs, 2_000);
        assert_eq!(c.verdict(2_000, LATENCY, &config), Verdict::AgentSpecific);
        c.saw_symptom("agent-1", Metric::LatencyMs, 2_100);
        c.saw_symptom("agent-2", Metric::LatencyMs, 2_200);
        assert_eq!(c.verdict(2_200, LATENCY, &config), Verdict::PartialFleet { agents: 3, active: 10 });
        for i in 3..6 {
            c.saw_symptom(&format!("agent-{i}"), Metric::LatencyMs, 2_300);
        }
        assert_eq!(c.verdict(2_300, LATENCY, &config), Verdict::FleetWide { agents: 6, active: 10 });
        // A window later, only what happens then counts.
        let later = 2_300 + config.window_us + 1;
        c.saw_symptom("agent-7", Metric::LatencyMs, later);
        assert_eq!(c.verdict(later, LATENCY, &config), Verdict::AgentSpecific);
        c.prune(later, &config);
        assert_eq!(c.seen.len(), 1);
    }

    #[test]
    fn unrelated_symptoms_are_not_a_fleet() {
        let config = CorrelationConfig::default();
        let mut c = Correlator::default();
        for (agent, metric) in
            [("a", Metric::LatencyMs), ("b", Metric::InputTokens), ("c", Metric::ToolCalls), ("d", Metric::CostUsd)]
        {
            c.saw_symptom(agent, metric, 10);
        }
        assert_eq!(c.verdict(10, &[Metric::ToolCalls.into()], &config), Verdict::AgentSpecific);
        c.saw_symptom("b", Metric::LatencyMs, 11);
        c.saw_symptom("c", Metric::LatencyMs, 11);
        assert_eq!(
            c.verdict(11, &[Metric::ToolCalls.into(), Metric::LatencyMs.into()], &config),
            Verdict::FleetWide { agents: 3, active: 4 }
        );
    }

    #[test]
    fn two_agents_are_never_a_fleet() {
        let config = CorrelationConfig::default();
        let mut c = Correlator::default();
        c.saw_symptom("a", Metric::Errors, 1);
        c.saw_symptom("b", Metric::Errors, 1);
        assert_eq!(c.verdict(1, &[Metric::Errors.into()], &config), Verdict::PartialFleet { agents: 2, active: 2 });
    }

    #[test]
    fn rate_symptoms_match_rates_and_serialize_by_name() {
        let config = CorrelationConfig::default();
        let mut c = Correlator::default();
        for agent in ["a", "b", "c"] {
            c.saw_symptom(agent, Rate::CallRate, 5);
        }
        c.saw_symptom("d", Metric::ToolCalls, 5);
        assert_eq!(c.verdict(5, &[Rate::CallRate.into()], &config), Verdict::FleetWide { agents: 3, active: 4 });
        assert_eq!(c.verdict(5, &[Metric::ToolCalls.into()], &config), Verdict::AgentSpecific);
        let json = serde_json::to_value(&c).expect("json");
        assert!(json["symptoms"]["call_rate"].is_object() && json["symptoms"]["tool_calls"].is_object(), "{json}");
        let back: Correlator = serde_json::from_value(json).expect("parses");
        assert_eq!(back, c);
    }
}
