//! Healing: which action to try next for a diagnosis, and what the fleet has learned.
//!
//! Each [`Diagnosis`] has a ladder of [`Action`]s, mildest first, ending in
//! [`Action::ResetAgent`] (except [`Diagnosis::ExternalCause`]: a provider outage is not
//! healed agent by agent). [`next_action`] walks the ladder, skipping actions that already
//! failed for this agent, and orders the rest by the success rates [`ImmuneMemory`] has
//! learned across all agents, so a cure that works for one agent is tried first on the next.
//! The reset stays last whatever the rates say: it is the most disruptive action.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnosis::Diagnosis;

/// Something done to an agent to heal it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Lower the agent's call rate for a while.
    Throttle,
    /// Clear the agent's conversation memory or context.
    ResetMemory,
    /// Refuse the agent's calls that offer tools.
    RevokeTools,
    /// Move the agent to its fallback model.
    SwitchModel,
    /// Keep the agent isolated for a cool-down before probation.
    Quarantine,
    /// Restart the agent from a clean state; its baselines are relearned.
    ResetAgent,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Throttle,
        Action::ResetMemory,
        Action::RevokeTools,
        Action::SwitchModel,
        Action::Quarantine,
        Action::ResetAgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Throttle => "throttle",
            Action::ResetMemory => "reset_memory",
            Action::RevokeTools => "revoke_tools",
            Action::SwitchModel => "switch_model",
            Action::Quarantine => "quarantine",
            Action::ResetAgent => "reset_agent",
        }
    }

    /// How disruptive the action is, 1 (mild) to 4 (the agent starts over). Actions at or
    /// above the configured severity wait for a person's approval.
    pub fn severity(self) -> u8 {
        match self {
            Action::Throttle => 1,
            Action::RevokeTools | Action::SwitchModel => 2,
            Action::ResetMemory | Action::Quarantine => 3,
            Action::ResetAgent => 4,
        }
    }
}

/// The ladder for a diagnosis, mildest first.
pub fn ladder(diagnosis: Diagnosis) -> &'static [Action] {
    use Action::*;
    match diagnosis {
        Diagnosis::PromptInjection => &[RevokeTools, ResetMemory, Quarantine, ResetAgent],
        Diagnosis::PromptDrift => &[ResetMemory, SwitchModel, ResetAgent],
        Diagnosis::CostOverrun => &[Throttle, SwitchModel, ResetAgent],
        Diagnosis::InfiniteLoop => &[RevokeTools, ResetMemory, ResetAgent],
        Diagnosis::ToolInstability => &[Throttle, RevokeTools, ResetAgent],
        Diagnosis::MemoryCorruption => &[ResetMemory, ResetAgent],
        Diagnosis::ExternalCause => &[],
        Diagnosis::Unknown => &[Throttle, ResetMemory, Quarantine, ResetAgent],
    }
}

/// Attempts and successes of one action for one diagnosis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Record {
    pub attempts: u32,
    pub successes: u32,
}

impl Record {
    /// Laplace-smoothed success rate: an untried action counts as an even bet.
    pub fn rate(self) -> f64 {
        (f64::from(self.successes) + 1.0) / (f64::from(self.attempts) + 2.0)
    }
}

/// What healing has taught the whole fleet: outcomes per diagnosis and action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImmuneMemory {
    records: BTreeMap<Diagnosis, BTreeMap<Action, Record>>,
}

impl ImmuneMemory {
    pub fn record(&mut self, diagnosis: Diagnosis, action: Action, success: bool) {
        let record = self.records.entry(diagnosis).or_default().entry(action).or_default();
        record.attempts = record.attempts.saturating_add(1);
        if success {
            record.successes = record.successes.saturating_add(1);
        }
    }

    pub fn get(&self, diagnosis: Diagnosis, action: Action) -> Record {
        self.records.get(&diagnosis).and_then(|m| m.get(&action)).copied().unwrap_or_default()
    }

    /// Every record, for the API.
    pub fn records(&self) -> impl Iterator<Item = (Diagnosis, Action, Record)> + '_ {
        self.records.iter().flat_map(|(d, m)| m.iter().map(move |(a, r)| (*d, *a, *r)))
    }
}

/// The next action for `diagnosis`: not in `failed`, best learned success rate first
/// (ladder order breaks ties and orders untried actions), the reset always last. `None`
/// when the ladder is exhausted.
pub fn next_action(diagnosis: Diagnosis, failed: &[Action], memory: &ImmuneMemory) -> Option<Action> {
    let steps = ladder(diagnosis);
    let candidates = steps.iter().enumerate().filter(|(_, a)| !failed.contains(a));
    candidates
        .min_by(|(i, a), (j, b)| {
            let last = |x: Action| x == Action::ResetAgent;
            last(**a)
                .cmp(&last(**b))
                .then_with(|| memory.get(diagnosis, **b).rate().total_cmp(&memory.get(diagnosis, **a).rate()))
                .then_with(|| i.cmp(j))
        })
        .map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ladder_ends_in_a_reset_except_external_causes() {
        for d in Diagnosis::ALL {
            let steps = ladder(d);
            if d == Diagnosis::ExternalCause {
                assert!(steps.is_empty());
            } else {
                assert_eq!(steps.last(), Some(&Action::ResetAgent), "{d:?}");
                assert!(steps.windows(2).all(|w| w[0] != w[1]));
            }
        }
    }

    #[test]
    fn default_order_skips_failures_and_runs_out() {
        let memory = ImmuneMemory::default();
        let d = Diagnosis::PromptInjection;
        assert_eq!(next_action(d, &[], &memory), Some(Action::RevokeTools));
        assert_eq!(next_action(d, &[Action::RevokeTools], &memory), Some(Action::ResetMemory));
        let all: Vec<Action> = ladder(d).to_vec();
        assert_eq!(next_action(d, &all, &memory), None);
        assert_eq!(next_action(Diagnosis::ExternalCause, &[], &memory), None);
    }

    #[test]
    fn learned_success_reorders_but_reset_stays_last() {
        let mut memory = ImmuneMemory::default();
        let d = Diagnosis::PromptInjection;
        // Revoking tools failed on three agents; resetting memory cured two.
        for _ in 0..3 {
            memory.record(d, Action::RevokeTools, false);
        }
        memory.record(d, Action::ResetMemory, true);
        memory.record(d, Action::ResetMemory, true);
        assert_eq!(next_action(d, &[], &memory), Some(Action::ResetMemory));
        // Even a reset that always works is not tried before milder actions.
        for _ in 0..10 {
            memory.record(d, Action::ResetAgent, true);
        }
        assert_eq!(next_action(d, &[Action::ResetMemory], &memory), Some(Action::Quarantine));
        assert_eq!(memory.get(d, Action::ResetMemory), Record { attempts: 2, successes: 2 });
        assert!((memory.get(d, Action::RevokeTools).rate() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn severities_grow_towards_the_reset() {
        assert!(Action::ALL.iter().all(|a| (1..=4).contains(&a.severity())));
        assert_eq!(Action::ALL.iter().map(|a| a.severity()).max(), Some(Action::ResetAgent.severity()));
    }
}
