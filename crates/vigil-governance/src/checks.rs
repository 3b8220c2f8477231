//! Static checks: what is wrong with a valid document, found before it is saved, each with a
//! concrete example request that shows it.
//!
//! - `unreachable_rule`: another rule always decides first (it matches every call this one
//!   does and wins on priority, then deny, then order);
//! - `precedence_tie`: an allow and a deny of equal priority meet, so the tie rule (deny
//!   wins) rather than the author decides their common calls;
//! - `allow_deny_overlap`: an allow and a deny of different priorities meet; the higher
//!   decides (a note, since exceptions are written this way);
//! - `child_budget_above_parent`: a budget's limit exceeds what its parent lets it spend;
//! - `unknown_reference`: a pattern matches no model or agent Vigil knows;
//! - `never_admits`: a hard limit of zero, or a kill switch that stops everything;
//! - `not_enforced`: a rate limit in tokens (requests are enforced), or a kill switch for a
//!   kind of action nothing enforces yet (healing and
//!   external actions: today model calls and runs consult the policy);
//! - `checks_incomplete`: the rule-pair checks stopped at their work budget
//!   ([`PAIR_WORK_MAX`]); what they found so far is reported.

use serde::Serialize;

use crate::decide::Subject;
use crate::document::{Budget, Domain, Effect, Match, Mode, Period, PolicyDocument, Rule};
use crate::pattern::{common_name, covers, example_name};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; often intended.
    Note,
    /// Almost certainly not what the author meant.
    Warning,
}

/// A request that shows a finding: the facts a call would carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Example {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl Example {
    fn from_fields(fields: [Option<String>; 6]) -> Example {
        let [model, agent, key, feature, user, endpoint] = fields;
        Example { model, agent, key, feature, user, endpoint }
    }

    /// A call matching `m`: the first pattern of each field, made concrete.
    fn of(m: &Match) -> Example {
        Example::from_fields(m.fields().map(|(_, patterns)| patterns.first().map(|p| example_name(p))))
    }

    /// A call both match, if one exists.
    fn common(a: &Match, b: &Match) -> Option<Example> {
        let mut fields: [Option<String>; 6] = Default::default();
        for (slot, ((_, pa), (_, pb))) in fields.iter_mut().zip(a.fields().into_iter().zip(b.fields())) {
            *slot = match (pa.is_empty(), pb.is_empty()) {
                (true, true) => None,
                (true, false) => Some(example_name(&pb[0])),
                (false, true) => Some(example_name(&pa[0])),
                (false, false) => Some(pa.iter().find_map(|x| pb.iter().find_map(|y| common_name(x, y)))?),
            };
        }
        Some(Example::from_fields(fields))
    }

    /// The example as the facts a decision reads.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            model: self.model.as_deref(),
            agent: self.agent.as_deref(),
            key: self.key.as_deref(),
            feature: self.feature.as_deref(),
            user: self.user.as_deref(),
            endpoint: self.endpoint.as_deref(),
        }
    }
}

/// One thing a check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Finding {
    /// `unreachable_rule`, `precedence_tie`, `allow_deny_overlap`,
    /// `child_budget_above_parent`, `unknown_reference` or `never_admits`.
    pub kind: &'static str,
    pub severity: Severity,
    /// The ids of the entries involved, the one the finding is about first.
    pub entries: Vec<String>,
    pub message: String,
    pub example: Option<Example>,
}

/// What Vigil knows exists, to check references against: names or glob patterns (a policy
/// pattern refers to something when some name both match). An empty list checks nothing.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// Models the gateway can serve (its providers' and price table's patterns).
    pub models: Vec<String>,
    /// Agent ids seen.
    pub agents: Vec<String>,
}

/// Character steps the rule-pair checks may spend (each pattern comparison costs the product
/// of the two lengths): a document built to be slow to check is checked in part, and says so.
pub const PAIR_WORK_MAX: u64 = 20_000_000;

/// The work left for the rule-pair checks.
struct Work(u64);

impl Work {
    /// Charges comparing every pattern of `a` with every pattern of `b`; false when the
    /// budget does not cover it.
    fn take(&mut self, a: &Match, b: &Match) -> bool {
        let chars = |m: &Match| m.fields().iter().flat_map(|(_, p)| p.iter()).map(|p| p.len() as u64 + 1).sum::<u64>();
        let cost = chars(a).saturating_mul(chars(b));
        if cost > self.0 {
            return false;
        }
        self.0 -= cost;
        true
    }
}

/// Whether every call `inner` matches is matched by `outer`.
fn match_covers(outer: &Match, inner: &Match) -> bool {
    outer
        .fields()
        .into_iter()
        .zip(inner.fields())
        .all(|((_, o), (_, i))| o.is_empty() || (!i.is_empty() && i.iter().all(|ip| o.iter().any(|op| covers(op, ip)))))
}

/// Whether `a` decides before `b` when both match (`a` at index `ia`, `b` at `ib`).
fn beats(a: &Rule, ia: usize, b: &Rule, ib: usize) -> bool {
    let rank = |r: &Rule| (r.priority, r.effect == Effect::Deny);
    rank(a) > rank(b) || (rank(a) == rank(b) && ia < ib)
}

/// Runs every check.
pub fn check(doc: &PolicyDocument, known: &Known) -> Vec<Finding> {
    let mut findings = Vec::new();
    rules(doc, &mut findings);
    budgets(doc, &mut findings);
    references(doc, known, &mut findings);
    never_admits(doc, &mut findings);
    findings
}

fn rules(doc: &PolicyDocument, findings: &mut Vec<Finding>) {
    let mut work = Work(PAIR_WORK_MAX);
    let mut exhausted = false;
    let mut unreachable = vec![false; doc.rules.len()];
    for (i, rule) in doc.rules.iter().enumerate() {
        let winner = doc.rules.iter().enumerate().find(|&(j, other)| {
            j != i
                && beats(other, j, rule, i)
                && (work.take(&other.matches, &rule.matches) || {
                    exhausted = true;
                    false
                })
                && match_covers(&other.matches, &rule.matches)
        });
        if let Some((_, other)) = winner {
            unreachable[i] = true;
            findings.push(Finding {
                kind: "unreachable_rule",
                severity: Severity::Warning,
                entries: vec![rule.id.clone(), other.id.clone()],
                message: format!(
                    "rule {:?} never decides: rule {:?} matches every call it does and comes first",
                    rule.id, other.id
                ),
                example: Some(Example::of(&rule.matches)),
            });
        }
    }
    for (i, allow) in doc.rules.iter().enumerate().filter(|(_, r)| r.effect == Effect::Allow) {
        for (j, deny) in doc.rules.iter().enumerate().filter(|(_, r)| r.effect == Effect::Deny) {
            if unreachable[i] || unreachable[j] {
                continue;
            }
            if !work.take(&allow.matches, &deny.matches) {
                exhausted = true;
                continue;
            }
            let Some(example) = Example::common(&allow.matches, &deny.matches) else { continue };
            let finding = if allow.priority == deny.priority {
                Finding {
                    kind: "precedence_tie",
                    severity: Severity::Warning,
                    entries: vec![allow.id.clone(), deny.id.clone()],
                    message: format!(
                        "allow {:?} and deny {:?} have the same priority ({}) and both match some calls: deny wins the tie; give one a higher priority to say which you mean",
                        allow.id, deny.id, allow.priority
                    ),
                    example: Some(example),
                }
            } else {
                let (winner, loser) = if deny.priority > allow.priority { (deny, allow) } else { (allow, deny) };
                Finding {
                    kind: "allow_deny_overlap",
                    severity: Severity::Note,
                    entries: vec![loser.id.clone(), winner.id.clone()],
                    message: format!(
                        "allow {:?} and deny {:?} both match some calls; {:?} (priority {}) decides them",
                        allow.id, deny.id, winner.id, winner.priority
                    ),
                    example: Some(example),
                }
            };
            findings.push(finding);
        }
    }
    if exhausted {
        findings.push(Finding {
            kind: "checks_incomplete",
            severity: Severity::Warning,
            entries: Vec::new(),
            message: format!(
                "the rules are too many or their patterns too long to compare every pair within the checks' budget ({PAIR_WORK_MAX} steps): some unreachable rules and overlaps may not be reported"
            ),
            example: None,
        });
    }
}

/// The longest a period can be, in hours (a month is at most 31 days).
fn period_hours(period: Period) -> u64 {
    match period {
        Period::Day => 24,
        Period::Week => 24 * 7,
        Period::Month => 24 * 31,
        Period::RollingHours(h) => u64::from(h),
    }
}

fn budgets(doc: &PolicyDocument, findings: &mut Vec<Finding>) {
    let find = |id: &str| doc.budgets.iter().find(|b| b.id == id);
    for child in &doc.budgets {
        let Some(parent) = child.parent.as_deref().and_then(find) else { continue };
        // What the parent lets be spent within one of the child's periods.
        let parent_periods = period_hours(child.period).div_ceil(period_hours(parent.period).max(1)).max(1);
        let room = parent.limit_usd * parent_periods as f64;
        if child.limit_usd > room {
            findings.push(Finding {
                kind: "child_budget_above_parent",
                severity: Severity::Warning,
                entries: vec![child.id.clone(), parent.id.clone()],
                message: format!(
                    "budget {:?} allows ${} per {}, but its parent {:?} allows at most ${room} in that time",
                    child.id,
                    child.limit_usd,
                    describe(child.period),
                    parent.id
                ),
                example: Some(Example::of(&child.matches)),
            });
        }
    }
}

fn describe(period: Period) -> String {
    match period {
        Period::Day => "day".to_owned(),
        Period::Week => "week".to_owned(),
        Period::Month => "month".to_owned(),
        Period::RollingHours(h) => format!("{h} rolling hours"),
    }
}

/// Every entry's id and match, whatever its list.
fn matches(doc: &PolicyDocument) -> impl Iterator<Item = (&str, &Match)> {
    doc.rules
        .iter()
        .map(|r| (r.id.as_str(), &r.matches))
        .chain(doc.kill_switches.iter().map(|s| (s.id.as_str(), &s.matches)))
        .chain(doc.budgets.iter().map(|b| (b.id.as_str(), &b.matches)))
        .chain(doc.rate_limits.iter().map(|l| (l.id.as_str(), &l.matches)))
}

fn references(doc: &PolicyDocument, known: &Known, findings: &mut Vec<Finding>) {
    for (id, m) in matches(doc) {
        for (field, patterns, names) in [("model", &m.models, &known.models), ("agent", &m.agents, &known.agents)] {
            if names.is_empty() {
                continue;
            }
            for pattern in patterns.iter().filter(|p| !names.iter().any(|n| common_name(p, n).is_some())) {
                let mut example = Example::of(m);
                match field {
                    "model" => example.model = Some(example_name(pattern)),
                    _ => example.agent = Some(example_name(pattern)),
                }
                findings.push(Finding {
                    kind: "unknown_reference",
                    severity: Severity::Warning,
                    entries: vec![id.to_owned()],
                    message: format!("{id:?}: the {field} pattern {pattern:?} matches no {field} Vigil knows"),
                    example: Some(example),
                });
            }
        }
    }
}

fn never_admits(doc: &PolicyDocument, findings: &mut Vec<Finding>) {
    let mut push = |id: &str, m: &Match, message: String| {
        findings.push(Finding {
            kind: "never_admits",
            severity: Severity::Warning,
            entries: vec![id.to_owned()],
            message,
            example: Some(Example::of(m)),
        });
    };
    for budget in doc.budgets.iter().filter(|b: &&Budget| b.mode == Mode::Hard && b.limit_usd == 0.0) {
        push(
            &budget.id,
            &budget.matches,
            format!("hard budget {:?} is $0: it refuses every call it matches", budget.id),
        );
    }
    for limit in &doc.rate_limits {
        if limit.requests_per_minute == Some(0) || limit.tokens_per_minute == Some(0) {
            push(
                &limit.id,
                &limit.matches,
                format!("rate limit {:?} is 0 per minute: it refuses every call it matches", limit.id),
            );
        }
    }
    for switch in doc.kill_switches.iter().filter(|s| s.on && s.domains.is_empty() && s.matches.is_everything()) {
        push(
            &switch.id,
            &switch.matches,
            format!("kill switch {:?} is on and stops every action of every kind", switch.id),
        );
    }
    for switch in &doc.kill_switches {
        let enforced = [Domain::ModelCalls, Domain::Runs];
        let unenforced: Vec<&str> = if switch.domains.is_empty() {
            vec!["healing", "external"]
        } else {
            switch.domains.iter().filter(|d| !enforced.contains(d)).map(|d| d.as_str()).collect()
        };
        if !unenforced.is_empty() {
            findings.push(Finding {
                kind: "not_enforced",
                severity: Severity::Warning,
                entries: vec![switch.id.clone()],
                message: format!(
                    "kill switch {:?} names {}, which nothing enforces yet: today model calls and runs consult the policy",
                    switch.id,
                    unenforced.join(", ")
                ),
                example: Some(Example::of(&switch.matches)),
            });
        }
    }
    for limit in doc.rate_limits.iter().filter(|l| l.tokens_per_minute.is_some()) {
        findings.push(Finding {
            kind: "not_enforced",
            severity: Severity::Warning,
            entries: vec![limit.id.clone()],
            message: format!(
                "rate limit {:?} names tokens_per_minute, which nothing enforces yet: today requests_per_minute is enforced",
                limit.id
            ),
            example: Some(Example::of(&limit.matches)),
        });
    }
    if doc.default == Effect::Deny && !doc.rules.iter().any(|r| r.effect == Effect::Allow) {
        findings.push(Finding {
            kind: "never_admits",
            severity: Severity::Warning,
            entries: Vec::new(),
            message: "the policy denies by default and no rule allows anything: every call is refused".to_owned(),
            example: Some(Example::default()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{DecidedBy, decide};
    use crate::document::{Domain, parse};
    use serde_json::json;

    fn kinds(findings: &[Finding]) -> Vec<(&'static str, Vec<&str>)> {
        findings.iter().map(|f| (f.kind, f.entries.iter().map(String::as_str).collect())).collect()
    }

    #[test]
    fn shadowed_rules_ties_and_overlaps_are_found_with_examples_that_show_them() {
        let doc = parse(&json!({
            "rules": [
                { "id": "no-gpt", "effect": "deny", "priority": 10, "match": { "models": ["gpt-*"] } },
                { "id": "gpt4o", "effect": "allow", "match": { "models": ["gpt-4o*"] } },
                { "id": "bots", "effect": "allow", "match": { "agents": ["bot-*"] } },
                { "id": "no-o1", "effect": "deny", "match": { "models": ["o1*"] } },
                { "id": "claude", "effect": "allow", "priority": 20, "match": { "models": ["claude-*"] } },
                { "id": "no-claude-3", "effect": "deny", "match": { "models": ["claude-3*"] } }
            ]
        }))
        .expect("valid");
        let findings = check(&doc, &Known::default());
        let found = kinds(&findings);
        assert!(found.contains(&("unreachable_rule", vec!["gpt4o", "no-gpt"])), "{found:?}");
        assert!(found.contains(&("unreachable_rule", vec!["no-claude-3", "claude"])), "{found:?}");
        assert!(found.contains(&("precedence_tie", vec!["bots", "no-o1"])), "{found:?}");
        assert!(found.contains(&("allow_deny_overlap", vec!["bots", "no-gpt"])), "{found:?}");
        // Each example is a call on which the finding shows.
        for f in &findings {
            let example = f.example.as_ref().expect("an example");
            let decision = decide(&doc, Domain::ModelCalls, &example.subject());
            match f.kind {
                "unreachable_rule" | "allow_deny_overlap" => {
                    assert_eq!(decision.by, DecidedBy::Rule { id: f.entries[1].clone() }, "{f:?}")
                }
                "precedence_tie" => assert!(!decision.allowed(), "deny wins the tie: {f:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn budgets_references_and_limits_that_never_admit() {
        let doc = parse(&json!({
            "default": "deny",
            "rules": [{ "id": "no", "effect": "deny", "match": { "models": ["gtp-4o"] } }],
            "budgets": [
                { "id": "org", "period": "day", "limit_usd": 100 },
                { "id": "team", "period": "month", "limit_usd": 5000, "parent": "org" },
                { "id": "bot", "period": "month", "limit_usd": 3000, "parent": "org", "match": { "agents": ["bot"] } },
                { "id": "frozen", "period": "day", "limit_usd": 0 }
            ],
            "rate_limits": [{ "id": "shut", "tokens_per_minute": 0 }],
            "kill_switches": [{ "id": "panic" }]
        }))
        .expect("valid");
        let known = Known { models: vec!["gpt-4o".into(), "o3".into()], agents: vec!["bot".into()] };
        let findings = check(&doc, &known);
        let found = kinds(&findings);
        assert!(found.contains(&("child_budget_above_parent", vec!["team", "org"])), "{found:?}");
        assert!(!found.iter().any(|(_, e)| e.first() == Some(&"bot")), "31 days of $100 cover $3000: {found:?}");
        assert!(found.contains(&("unknown_reference", vec!["no"])), "a typo of a model name: {found:?}");
        for id in ["frozen", "shut", "panic"] {
            assert!(found.contains(&("never_admits", vec![id])), "{id}: {found:?}");
        }
        assert!(found.contains(&("never_admits", vec![])), "deny by default and no allow: {found:?}");
    }

    #[test]
    fn a_document_built_to_be_slow_to_check_is_checked_in_part_and_says_so() {
        let star: String = "*a".repeat(60) + "*";
        let rules: Vec<_> = (0..400)
            .map(|i| {
                let effect = if i % 2 == 0 { "allow" } else { "deny" };
                json!({ "id": format!("r{i}"), "effect": effect, "match": { "models": [format!("{star}{i}")] } })
            })
            .collect();
        let doc = parse(&json!({ "rules": rules })).expect("valid");
        let started = std::time::Instant::now();
        let findings = check(&doc, &Known::default());
        assert!(findings.iter().any(|f| f.kind == "checks_incomplete"), "the budget was reached");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "bounded: {:?}", started.elapsed());
    }

    #[test]
    fn kill_switches_for_actions_nothing_enforces_yet_say_so() {
        let doc = parse(&json!({ "kill_switches": [
            { "id": "calls", "domains": ["model_calls"], "match": { "agents": ["bot"] } },
            { "id": "heal", "domains": ["healing"], "match": { "agents": ["bot"] } }
        ] }))
        .expect("valid");
        let findings = check(&doc, &Known::default());
        assert_eq!(kinds(&findings), vec![("not_enforced", vec!["heal"])]);
    }

    #[test]
    fn a_rate_limit_in_tokens_says_it_is_not_enforced_yet() {
        let doc = parse(&json!({ "rate_limits": [
            { "id": "requests", "requests_per_minute": 60 },
            { "id": "tokens", "tokens_per_minute": 10000 }
        ] }))
        .expect("valid");
        let findings = check(&doc, &Known::default());
        assert_eq!(kinds(&findings), vec![("not_enforced", vec!["tokens"])]);
    }

    #[test]
    fn a_clean_policy_has_no_findings() {
        let doc = parse(&json!({
            "rules": [
                { "id": "mini", "effect": "allow", "match": { "models": ["gpt-4o-mini"] } },
                { "id": "no-o1", "effect": "deny", "match": { "models": ["o1*"] } }
            ],
            "budgets": [
                { "id": "org", "period": "month", "limit_usd": 1000 },
                { "id": "bot", "period": "day", "limit_usd": 20, "parent": "org", "match": { "agents": ["bot"] } }
            ]
        }))
        .expect("valid");
        let known = Known { models: vec!["gpt-4o-mini".into(), "o1-preview".into()], agents: vec!["bot".into()] };
        assert_eq!(check(&doc, &known), Vec::new());
    }
}
