//! The one decision function: may this action go ahead under this policy?
//!
//! Kill switches first (any switch that is on and matches stops the action, whatever the
//! rules say), then the rules (the highest priority among the matching rules decides; at
//! equal priority a deny wins; among equals the first in the document names the decision),
//! then the document's default. Every decision names what decided it, so a refusal can
//! say which rule of which policy version refused. Limits that need counters (budgets,
//! rate limits) are admitted elsewhere, after an allow.

use serde::Serialize;
use vigil_core::glob::glob_match;

use crate::document::{Domain, Effect, KillSwitch, Match, PolicyDocument, Rule};

/// What a decision is about: the facts the rules match on. A fact that is not known (a
/// call without a feature tag) matches only a field left empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Subject<'a> {
    pub model: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub key: Option<&'a str>,
    pub feature: Option<&'a str>,
    pub user: Option<&'a str>,
    pub endpoint: Option<&'a str>,
}

impl Subject<'_> {
    fn facts(&self) -> [Option<&str>; 6] {
        [self.model, self.agent, self.key, self.feature, self.user, self.endpoint]
    }
}

impl Match {
    /// Whether every field matches the subject's fact (an empty field matches anything).
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        self.fields().iter().zip(subject.facts()).all(|((_, patterns), fact)| {
            patterns.is_empty() || fact.is_some_and(|fact| patterns.iter().any(|p| glob_match(p, fact)))
        })
    }
}

/// What decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DecidedBy {
    KillSwitch {
        id: String,
    },
    Rule {
        id: String,
    },
    /// No rule matched.
    Default,
}

/// A decision and what made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub effect: Effect,
    pub by: DecidedBy,
    /// Why, in words a refused caller can act on.
    pub reason: String,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The id of the switch or rule that decided, if one did.
    pub fn rule_id(&self) -> Option<&str> {
        match &self.by {
            DecidedBy::KillSwitch { id } | DecidedBy::Rule { id } => Some(id),
            DecidedBy::Default => None,
        }
    }
}

/// Whether a switch stops actions of `domain` on `subject`.
pub fn stops(switch: &KillSwitch, domain: Domain, subject: &Subject<'_>) -> bool {
    switch.on && (switch.domains.is_empty() || switch.domains.contains(&domain)) && switch.matches.matches(subject)
}

/// The rule that decides for `subject`, if any matches.
pub fn deciding_rule<'d>(doc: &'d PolicyDocument, subject: &Subject<'_>) -> Option<&'d Rule> {
    let mut best: Option<&Rule> = None;
    for rule in doc.rules.iter().filter(|r| r.matches.matches(subject)) {
        let better = match best {
            None => true,
            Some(b) => (rule.priority, rule.effect == Effect::Deny) > (b.priority, b.effect == Effect::Deny),
        };
        if better {
            best = Some(rule);
        }
    }
    best
}

/// Decides an action of `domain` on `subject` under `doc`.
pub fn decide(doc: &PolicyDocument, domain: Domain, subject: &Subject<'_>) -> Decision {
    if let Some(switch) = doc.kill_switches.iter().find(|s| stops(s, domain, subject)) {
        let reason = switch.reason.clone().unwrap_or_else(|| format!("kill switch {:?} is on", switch.id));
        return Decision { effect: Effect::Deny, by: DecidedBy::KillSwitch { id: switch.id.clone() }, reason };
    }
    match deciding_rule(doc, subject) {
        Some(rule) => {
            let reason = match (&rule.reason, rule.effect) {
                (Some(reason), _) => reason.clone(),
                (None, Effect::Allow) => format!("allowed by rule {:?}", rule.id),
                (None, Effect::Deny) => format!("denied by rule {:?}", rule.id),
            };
            Decision { effect: rule.effect, by: DecidedBy::Rule { id: rule.id.clone() }, reason }
        }
        None => {
            let reason = match doc.default {
                Effect::Allow => "no rule matched; the policy allows by default".to_owned(),
                Effect::Deny => "no rule matched; the policy denies by default".to_owned(),
            };
            Decision { effect: doc.default, by: DecidedBy::Default, reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::parse;
    use proptest::prelude::*;
    use serde_json::json;

    fn call<'a>(model: &'a str, agent: &'a str) -> Subject<'a> {
        Subject { model: Some(model), agent: Some(agent), endpoint: Some("chat.completions"), ..Subject::default() }
    }

    #[test]
    fn priority_then_deny_then_order_decide() {
        let doc = parse(&json!({
            "default": "deny",
            "rules": [
                { "id": "gpt", "effect": "allow", "match": { "models": ["gpt-*"] } },
                { "id": "no-4o", "effect": "deny", "match": { "models": ["gpt-4o*"] }, "reason": "4o is retired here" },
                { "id": "bot-may", "effect": "allow", "priority": 5, "match": { "models": ["gpt-4o*"], "agents": ["bot"] } },
                { "id": "gpt-again", "effect": "allow", "match": { "models": ["gpt-*"] } }
            ]
        }))
        .expect("valid");
        let d = decide(&doc, Domain::ModelCalls, &call("gpt-4.1", "anyone"));
        assert_eq!((d.effect, d.rule_id()), (Effect::Allow, Some("gpt")), "the first of equals names it");
        let d = decide(&doc, Domain::ModelCalls, &call("gpt-4o-mini", "anyone"));
        assert_eq!((d.effect, d.rule_id(), d.reason.as_str()), (Effect::Deny, Some("no-4o"), "4o is retired here"));
        let d = decide(&doc, Domain::ModelCalls, &call("gpt-4o", "bot"));
        assert_eq!((d.effect, d.rule_id()), (Effect::Allow, Some("bot-may")), "a higher priority wins");
        let d = decide(&doc, Domain::ModelCalls, &call("claude-3", "bot"));
        assert_eq!((d.effect, &d.by), (Effect::Deny, &DecidedBy::Default));
    }

    #[test]
    fn a_kill_switch_beats_every_rule_in_its_domains_only() {
        let doc = parse(&json!({
            "rules": [{ "id": "all", "effect": "allow", "priority": 1000 }],
            "kill_switches": [
                { "id": "stop-bot", "match": { "agents": ["bot"] }, "domains": ["model_calls"] },
                { "id": "parked", "on": false }
            ]
        }))
        .expect("valid");
        let d = decide(&doc, Domain::ModelCalls, &call("gpt-4o", "bot"));
        assert_eq!((d.effect, d.rule_id()), (Effect::Deny, Some("stop-bot")));
        assert!(d.reason.contains("stop-bot"));
        assert!(decide(&doc, Domain::Runs, &Subject { agent: Some("bot"), ..Subject::default() }).allowed());
        assert!(decide(&doc, Domain::ModelCalls, &call("gpt-4o", "other")).allowed(), "an off switch stops nothing");
    }

    #[test]
    fn an_unknown_fact_matches_only_an_empty_field() {
        let doc = parse(&json!({
            "rules": [{ "id": "tagged", "effect": "deny", "match": { "features": ["*"] } }]
        }))
        .expect("valid");
        assert!(decide(&doc, Domain::ModelCalls, &call("m", "a")).allowed(), "no feature: not matched by features [*]");
        let tagged = Subject { feature: Some("search"), ..call("m", "a") };
        assert!(!decide(&doc, Domain::ModelCalls, &tagged).allowed());
    }

    proptest! {
        /// The decision does not depend on where a rule of another priority or effect
        /// sits in the list: only ties of equal priority and effect are broken by order.
        #[test]
        fn the_effect_does_not_depend_on_rule_order(
            rules in proptest::collection::vec((0..3i32, any::<bool>(), 0..4usize), 1..8),
            model in 0..4usize,
            seed in any::<u64>(),
        ) {
            let models = ["a*", "ab*", "*", "b"];
            let names = ["ab", "abc", "b", "c"];
            let to_rules = |order: &[usize]| -> Vec<Rule> {
                order.iter().map(|&i| {
                    let (priority, deny, m) = rules[i];
                    Rule {
                        id: format!("r{i}"),
                        effect: if deny { Effect::Deny } else { Effect::Allow },
                        priority,
                        matches: Match { models: vec![models[m].to_owned()], ..Match::default() },
                        reason: None,
                    }
                }).collect()
            };
            let forward: Vec<usize> = (0..rules.len()).collect();
            let mut shuffled = forward.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let subject = Subject { model: Some(names[model]), ..Subject::default() };
            let a = PolicyDocument { rules: to_rules(&forward), ..PolicyDocument::default() };
            let b = PolicyDocument { rules: to_rules(&shuffled), ..PolicyDocument::default() };
            prop_assert_eq!(decide(&a, Domain::ModelCalls, &subject).effect, decide(&b, Domain::ModelCalls, &subject).effect);
        }
    }
}
