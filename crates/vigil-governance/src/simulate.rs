//! Simulation: what a proposed policy would have done to calls already made, decided by the
//! same [`decide`] function the gateway uses, against the policy in force.
//!
//! A [`Simulation`] is fed recorded calls one at a time (so millions stream through without
//! being held) and sums up the flips: calls the proposal would have refused that were
//! allowed, and calls it would have allowed that were refused, with the dollars the refused
//! ones cost, by agent, feature, day and deciding rule, and a few example calls of each kind.
//! It also replays the proposal's hard budgets of calendar periods over the calls its rules
//! allow, and says when each counter would have run out in each window ([`Exhaustion`]),
//! to the minute, and what it would have refused from then on.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::time::Timestamp;

use crate::budget::applicable;
use crate::decide::{DecidedBy, Subject, decide};
use crate::document::{Domain, Effect, Mode, PolicyDocument};

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
    /// Each hard budget counter of the proposal that would have run out, per window, in
    /// the order they ran out.
    pub budget_exhaustion: Vec<Exhaustion>,
    /// Budget counters beyond [`GROUPS_MAX`] were not replayed; budgets over rolling
    /// windows never are.
    pub budgets_truncated: bool,
}

/// When a hard budget counter would have run out in one of its windows.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Exhaustion {
    pub budget: String,
    /// The counter's subject (`*` for the tenant's one counter).
    pub subject: String,
    /// The window's start (a UTC day, week or month).
    pub window: Timestamp,
    pub limit_usd: f64,
    /// The minute whose calls took it past its limit.
    pub ran_out_at: Timestamp,
    /// What the calls the rules allow cost in the whole window.
    pub spent_usd: f64,
    /// Calls from the minute it ran out to the window's end, and what they cost: what the
    /// budget would have refused (some of the first minute's may have fit).
    pub refused_calls: u64,
    pub refused_usd: f64,
}

/// A hard budget counter's spend in one window, by minute.
#[derive(Debug, Default)]
struct Window {
    limit_usd: f64,
    minutes: BTreeMap<i64, (u64, f64)>,
}

const MICROS_PER_MINUTE: i64 = 60_000_000;

/// A running simulation.
#[derive(Debug)]
pub struct Simulation<'p> {
    current: Option<&'p PolicyDocument>,
    proposed: &'p PolicyDocument,
    report: Report,
    /// (budget, subject, window start) → spend by minute.
    windows: BTreeMap<(String, String, i64), Window>,
}

impl<'p> Simulation<'p> {
    /// Compares `proposed` with `current` (`None`: no policy, every call allowed).
    pub fn new(current: Option<&'p PolicyDocument>, proposed: &'p PolicyDocument) -> Simulation<'p> {
        Simulation { current, proposed, report: Report::default(), windows: BTreeMap::new() }
    }

    /// Decides one recorded call both ways.
    pub fn add(&mut self, call: &RecordedCall<'_>) {
        self.report.calls += 1;
        let before = self.current.is_none_or(|doc| decide(doc, Domain::ModelCalls, &call.subject).allowed());
        let after = decide(self.proposed, Domain::ModelCalls, &call.subject);
        if after.allowed() {
            self.count_budgets(call);
        }
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

    /// Adds an allowed call's cost to every hard calendar budget of the proposal it falls
    /// under.
    fn count_budgets(&mut self, call: &RecordedCall<'_>) {
        let at = Timestamp::from_unix_micros(call.at_us);
        for found in applicable(self.proposed, &call.subject, at) {
            if found.budget.mode != Mode::Hard || found.until.is_none() {
                self.report.budgets_truncated |= found.until.is_none() && found.budget.mode == Mode::Hard;
                continue;
            }
            let key = (found.budget.id.clone(), found.subject.clone(), found.since.as_unix_micros());
            if !self.windows.contains_key(&key) && self.windows.len() >= GROUPS_MAX {
                self.report.budgets_truncated = true;
                continue;
            }
            let window = self.windows.entry(key).or_default();
            window.limit_usd = found.budget.limit_usd;
            let minute = window.minutes.entry(call.at_us.div_euclid(MICROS_PER_MINUTE)).or_default();
            minute.0 += 1;
            minute.1 += call.cost_usd.unwrap_or(0.0);
        }
    }

    pub fn finish(mut self) -> Report {
        for ((budget, subject, since), window) in std::mem::take(&mut self.windows) {
            let total: f64 = window.minutes.values().map(|(_, usd)| usd).sum();
            let mut before = 0.0;
            let mut ran_out = None;
            for (&minute, &(_, usd)) in &window.minutes {
                if before + usd > window.limit_usd {
                    ran_out = Some(minute);
                    break;
                }
                before += usd;
            }
            let Some(minute) = ran_out else { continue };
            let refused_calls = window.minutes.range(minute..).map(|(_, (calls, _))| calls).sum();
            self.report.budget_exhaustion.push(Exhaustion {
                budget,
                subject,
                window: Timestamp::from_unix_micros(since),
                limit_usd: window.limit_usd,
                ran_out_at: Timestamp::from_unix_micros(minute * MICROS_PER_MINUTE),
                spent_usd: total,
                refused_calls,
                refused_usd: total - before,
            });
        }
        self.report
            .budget_exhaustion
            .sort_by(|a, b| (a.ran_out_at, &a.budget, &a.subject).cmp(&(b.ran_out_at, &b.budget, &b.subject)));
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
    let stamp = Timestamp::from_unix_micros(at_us).to_rfc3339();
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
    fn each_hard_budget_counter_says_when_it_would_have_run_out_in_each_window() {
        let proposed = parse(&json!({
            "rules": [{ "id": "no-o1", "effect": "deny", "match": { "models": ["o1*"] } }],
            "budgets": [
                { "id": "per-agent", "per": "agent", "period": "day", "limit_usd": 1.0 },
                { "id": "watch", "per": "agent", "period": "day", "limit_usd": 0.1, "mode": "soft" }
            ]
        }))
        .expect("valid");
        let day = 1_796_688_000_000_000; // 2026-12-08T00:00:00Z
        let minute = 60_000_000;
        let mut simulation = Simulation::new(None, &proposed);
        for i in 0..10 {
            simulation.add(&call(i, day + 600 * minute + i * minute, "gpt-4o", "a", 0.15));
            simulation.add(&call(100 + i, day + 600 * minute + i * minute, "gpt-4o", "b", 0.05));
            // Refused by the rules: it spends nothing.
            simulation.add(&call(200 + i, day + 600 * minute + i * minute, "o1-mini", "b", 5.0));
        }
        // The next day starts afresh.
        simulation.add(&call(300, day + 86_400_000_000 + minute, "gpt-4o", "a", 0.5));
        let report = simulation.finish();
        assert_eq!(report.budget_exhaustion.len(), 1, "{:?}", report.budget_exhaustion);
        let ran_out = &report.budget_exhaustion[0];
        assert_eq!((ran_out.budget.as_str(), ran_out.subject.as_str()), ("per-agent", "a"));
        assert_eq!(ran_out.window.to_rfc3339(), "2026-12-08T00:00:00Z");
        // 0.15 a minute from 10:00: the seventh, at 10:06, takes it past $1.
        assert_eq!(ran_out.ran_out_at.to_rfc3339(), "2026-12-08T10:06:00Z");
        assert_eq!(ran_out.refused_calls, 4);
        assert!((ran_out.refused_usd - 0.6).abs() < 1e-9 && (ran_out.spent_usd - 1.5).abs() < 1e-9, "{ran_out:?}");
        assert!(!report.budgets_truncated);
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
