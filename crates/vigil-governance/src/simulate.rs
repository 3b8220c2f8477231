//! Simulation: what a proposed policy would have done to calls already made, decided by the
//! same [`decide`] function the gateway uses, against the policy in force.
//!
//! A [`Simulation`] is fed recorded calls one at a time (so millions stream through without
//! being held) and sums up the flips: calls the proposal would have refused that were
//! allowed, and calls it would have allowed that were refused, with the dollars the refused
//! ones cost, by agent, feature, day and deciding rule, and a few example calls of each kind.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decide::{DecidedBy, Subject, decide};
use crate::document::{Domain, Effect, PolicyDocument};

/// Example calls kept per kind of flip.
pub const SAMPLES_MAX: usize = 20;
/// Groups kept per breakdown (agents, features, rules); the rest are summed as `(others)`.
pub const GROUPS_MAX: usize = 1_000;
const OTHERS: &str = "(others)";

/// One recorded call, as the simulation reads it.
#[derive(Clone, Copy, Debug)]
pub struct RecordedCall<'a> {
    /// The call's id in the record (its vital's sequence number).
    pub id: i64,
    /// When it was made, microseconds since the epoch.
    pub at_us: i64,
    pub subject: Subject<'a>,
    /// What it cost, when it was priced.
    pub cost_usd: Option<f64>,
}

/// Flips in one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Flips {
    /// Allowed by the policy in force, refused by the proposal.
    pub newly_denied: u64,
    /// Refused by the policy in force, allowed by the proposal.
    pub newly_allowed: u64,
    /// What the newly denied calls cost.
    pub denied_usd: f64,
}

impl Flips {
    fn add(&mut self, denied: bool, cost: f64) {
        if denied {
            self.newly_denied += 1;
            self.denied_usd += cost;
        } else {
            self.newly_allowed += 1;
        }
    }
}

/// One call that would have been decided differently.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Sample {
    pub call_id: i64,
    pub at_us: i64,
    pub model: Option<String>,
    pub agent: Option<String>,
    pub feature: Option<String>,
    /// `denied` or `allowed`: what the proposal would have done.
    pub now: Effect,
    /// The proposal's rule or switch that decided it (`None`: its default).
    pub rule: Option<String>,
}

/// What a proposal would have changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub calls: u64,
    pub flips: Flips,
    pub by_agent: BTreeMap<String, Flips>,
    pub by_feature: BTreeMap<String, Flips>,
    /// By UTC day, `YYYY-MM-DD`.
    pub by_day: BTreeMap<String, Flips>,
    /// By the proposal's deciding rule (`(default)` when none matched).
    pub by_rule: BTreeMap<String, Flips>,
    pub newly_denied_samples: Vec<Sample>,
    pub newly_allowed_samples: Vec<Sample>,
}

/// A running simulation.
#[derive(Debug)]
pub struct Simulation<'p> {
    current: Option<&'p PolicyDocument>,
    proposed: &'p PolicyDocument,
    report: Report,
}

impl<'p> Simulation<'p> {
    /// Compares `proposed` with `current` (`None`: no policy, every call allowed).
    pub fn new(current: Option<&'p PolicyDocument>, proposed: &'p PolicyDocument) -> Simulation<'p> {
        Simulation { current, proposed, report: Report::default() }
    }

    /// Decides one recorded call both ways.
    pub fn add(&mut self, call: &RecordedCall<'_>) {
        self.report.calls += 1;
        let before = self.current.is_none_or(|doc| decide(doc, Domain::ModelCalls, &call.subject).allowed());
        let after = decide(self.proposed, Domain::ModelCalls, &call.subject);
        if before == after.allowed() {
            return;
        }
        let denied = before;
        let cost = call.cost_usd.unwrap_or(0.0);
        let rule = match &after.by {
            DecidedBy::KillSwitch { id } | DecidedBy::Rule { id } => Some(id.clone()),
            DecidedBy::Default => None,
        };
        let report = &mut self.report;
        report.flips.add(denied, cost);
        group(&mut report.by_agent, call.subject.agent.unwrap_or("(none)")).add(denied, cost);
        group(&mut report.by_feature, call.subject.feature.unwrap_or("(none)")).add(denied, cost);
        group(&mut report.by_day, &utc_day(call.at_us)).add(denied, cost);
        group(&mut report.by_rule, rule.as_deref().unwrap_or("(default)")).add(denied, cost);
        let samples = if denied { &mut report.newly_denied_samples } else { &mut report.newly_allowed_samples };
        if samples.len() < SAMPLES_MAX {
            samples.push(Sample {
                call_id: call.id,
                at_us: call.at_us,
                model: call.subject.model.map(str::to_owned),
                agent: call.subject.agent.map(str::to_owned),
                feature: call.subject.feature.map(str::to_owned),
                now: after.effect,
                rule,
            });
        }
    }

    pub fn finish(self) -> Report {
        self.report
    }
}

/// The group for `key`, or `(others)` once the breakdown holds [`GROUPS_MAX`] groups (so a
/// caller inventing agent ids cannot grow a report without bound).
fn group<'m>(map: &'m mut BTreeMap<String, Flips>, key: &str) -> &'m mut Flips {
    if !map.contains_key(key) && map.len() >= GROUPS_MAX {
        return map.entry(OTHERS.to_owned()).or_default();
    }
    map.entry(key.to_owned()).or_default()
}

/// The UTC calendar day of a time in microseconds, `YYYY-MM-DD`.
fn utc_day(at_us: i64) -> String {
    let stamp = vigil_core::time::Timestamp::from_unix_micros(at_us).to_rfc3339();
    stamp.get(..10).unwrap_or(&stamp).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::parse;
    use serde_json::json;

    fn call<'a>(id: i64, at_us: i64, model: &'a str, agent: &'a str, cost: f64) -> RecordedCall<'a> {
        RecordedCall {
            id,
            at_us,
            subject: Subject { model: Some(model), agent: Some(agent), feature: Some("chat"), ..Subject::default() },
            cost_usd: Some(cost),
        }
    }

    #[test]
    fn flips_are_counted_priced_grouped_and_sampled() {
        let current = parse(&json!({ "rules": [{ "id": "no-o1", "effect": "deny", "match": { "models": ["o1*"] } }] }))
            .expect("valid");
        let proposed = parse(&json!({
            "rules": [{ "id": "no-4o-for-bots", "effect": "deny", "match": { "models": ["gpt-4o"], "agents": ["bot-*"] } }]
        }))
        .expect("valid");
        let day = 86_400_000_000;
        let mut sim = Simulation::new(Some(&current), &proposed);
        sim.add(&call(1, 0, "gpt-4o", "bot-1", 0.5));
        sim.add(&call(2, day, "gpt-4o", "bot-2", 0.25));
        sim.add(&call(3, day, "gpt-4o", "human", 1.0));
        sim.add(&call(4, day, "o1-mini", "bot-1", 2.0));
        let report = sim.finish();
        assert_eq!(report.calls, 4);
        assert_eq!(report.flips, Flips { newly_denied: 2, newly_allowed: 1, denied_usd: 0.75 });
        assert_eq!(report.by_agent["bot-1"], Flips { newly_denied: 1, newly_allowed: 1, denied_usd: 0.5 });
        assert_eq!(report.by_day.keys().collect::<Vec<_>>(), ["1970-01-01", "1970-01-02"]);
        assert_eq!(report.by_rule["no-4o-for-bots"].newly_denied, 2);
        assert_eq!(report.by_rule["(default)"].newly_allowed, 1, "o1 is allowed by the proposal's default");
        assert_eq!(report.newly_denied_samples.iter().map(|s| s.call_id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(report.newly_allowed_samples[0].call_id, 4);
        // Against no policy at all, only the proposal's refusals flip.
        let mut sim = Simulation::new(None, &current);
        sim.add(&call(4, 0, "o1-mini", "bot-1", 2.0));
        assert_eq!(sim.finish().flips, Flips { newly_denied: 1, newly_allowed: 0, denied_usd: 2.0 });
    }

    #[test]
    fn breakdowns_are_bounded() {
        let proposed = parse(&json!({ "default": "deny" })).expect("valid");
        let mut sim = Simulation::new(None, &proposed);
        let agents: Vec<String> = (0..GROUPS_MAX + 50).map(|i| format!("a{i}")).collect();
        for (i, agent) in agents.iter().enumerate() {
            sim.add(&call(i as i64, 0, "m", agent, 0.0));
        }
        let report = sim.finish();
        assert_eq!(report.by_agent.len(), GROUPS_MAX + 1);
        assert_eq!(report.by_agent[OTHERS].newly_denied, 50);
        assert_eq!(report.newly_denied_samples.len(), SAMPLES_MAX);
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_796_601_600_000_000), "2026-12-07");
        assert_eq!(utc_day(951_782_400_000_000), "2000-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
    }
}
