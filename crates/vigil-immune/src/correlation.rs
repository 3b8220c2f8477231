//! Correlation: is one agent sick, or is the whole fleet reacting to the same outside cause?
//!
//! [`Correlator`] remembers which agents were seen and which were anomalous, by time. When
//! an agent's suspicion is about to be confirmed, [`Correlator::verdict`] counts the agents
//! anomalous within the window among those active in it: one agent is
//! [`Verdict::AgentSpecific`]; several but less than the fleet share is
//! [`Verdict::PartialFleet`]; at least the share (and the minimum count) is
//! [`Verdict::FleetWide`], an external cause such as a provider outage, which must not be
//! "healed" agent by agent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How correlation judges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CorrelationConfig {
    /// How far back agents count as active or anomalous together (microseconds).
    pub window_us: i64,
    /// Share of the active agents that makes an anomaly fleet-wide.
    pub fleet_share: f64,
    /// Fewest anomalous agents for a fleet-wide verdict.
    pub fleet_min_agents: u32,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig { window_us: 60_000_000, fleet_share: 0.5, fleet_min_agents: 3 }
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

/// Last-seen and last-anomalous times per agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Correlator {
    seen: BTreeMap<String, i64>,
    anomalous: BTreeMap<String, i64>,
}

impl Correlator {
    pub fn saw(&mut self, agent: &str, at_us: i64) {
        bump(&mut self.seen, agent, at_us);
    }

    pub fn saw_anomaly(&mut self, agent: &str, at_us: i64) {
        bump(&mut self.seen, agent, at_us);
        bump(&mut self.anomalous, agent, at_us);
    }

    /// Forgets agents not seen for a window (bounds memory; they no longer count anyway).
    pub fn prune(&mut self, now_us: i64, config: &CorrelationConfig) {
        let since = now_us.saturating_sub(config.window_us);
        self.seen.retain(|_, t| *t >= since);
        self.anomalous.retain(|_, t| *t >= since);
    }

    /// The verdict at `now_us`.
    pub fn verdict(&self, now_us: i64, config: &CorrelationConfig) -> Verdict {
        let since = now_us.saturating_sub(config.window_us);
        let active = count(&self.seen, since);
        let agents = count(&self.anomalous, since);
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

    #[test]
    fn specific_partial_and_fleet_wide() {
        let config = CorrelationConfig::default();
        let mut c = Correlator::default();
        for i in 0..10 {
            c.saw(&format!("agent-{i}"), 1_000);
        }
        c.saw_anomaly("agent-0", 2_000);
        assert_eq!(c.verdict(2_000, &config), Verdict::AgentSpecific);
        c.saw_anomaly("agent-1", 2_100);
        c.saw_anomaly("agent-2", 2_200);
        assert_eq!(c.verdict(2_200, &config), Verdict::PartialFleet { agents: 3, active: 10 });
        for i in 3..6 {
            c.saw_anomaly(&format!("agent-{i}"), 2_300);
        }
        assert_eq!(c.verdict(2_300, &config), Verdict::FleetWide { agents: 6, active: 10 });
        // A window later, only what happens then counts.
        let later = 2_300 + config.window_us + 1;
        c.saw_anomaly("agent-7", later);
        assert_eq!(c.verdict(later, &config), Verdict::AgentSpecific);
        c.prune(later, &config);
        assert_eq!(c.seen.len(), 1);
    }

    #[test]
    fn two_agents_are_never_a_fleet() {
        let config = CorrelationConfig::default();
        let mut c = Correlator::default();
        c.saw_anomaly("a", 1);
        c.saw_anomaly("b", 1);
        assert_eq!(c.verdict(1, &config), Verdict::PartialFleet { agents: 2, active: 2 });
    }
}
