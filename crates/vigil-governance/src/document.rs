//! The policy document: one per tenant, what is allowed and what it may cost.
//!
//! A document is JSON (the API's) with five lists, each entry named by an `id` unique in
//! the document: `rules` (allow or deny by model, agent, key, feature, user and endpoint,
//! with a priority), `kill_switches`, `budgets`, `rate_limits`, and the `default` effect
//! when no rule matches. [`parse`] reads one and reports every problem at once, each with
//! the path to the offending value: every entry is read on its own, so one bad rule does
//! not hide the next.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pattern::PATTERN_CHARS_MAX;

/// Entries one list may hold.
pub const ENTRIES_MAX: usize = 1_000;
/// Patterns one field of a match may hold.
pub const PATTERNS_MAX: usize = 100;
/// Patterns a whole document may hold: what a check or a decision reads is bounded by it.
pub const PATTERNS_TOTAL_MAX: usize = 2_000;
/// Bound of a rule's priority, either way.
pub const PRIORITY_MAX: i32 = 1_000;
/// Longest rolling budget window.
pub const ROLLING_HOURS_MAX: u32 = 24 * 366;
/// Alert thresholds when a budget names none, in percent of its limit.
pub const DEFAULT_ALERTS: [u8; 3] = [50, 80, 100];

/// Allow or deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

/// Which calls an entry applies to. Each field is a list of glob patterns (`*`, `?`); an
/// empty or missing field matches anything, and a call matches when every field does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Match {
    #[schemars(with = "Patterns")]
    pub models: Vec<String>,
    #[schemars(with = "Patterns")]
    pub agents: Vec<String>,
    /// Key ids, as `GET /api/v1/keys` lists them.
    #[schemars(with = "Patterns")]
    pub keys: Vec<String>,
    #[schemars(with = "Patterns")]
    pub features: Vec<String>,
    #[schemars(with = "Patterns")]
    pub users: Vec<String>,
    /// API operations, such as `chat.completions`.
    #[schemars(with = "Patterns")]
    pub endpoints: Vec<String>,
}

/// A glob pattern as the schema states it: 1 to 128 characters, none a control character.
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "a schema only")]
struct Pattern(#[schemars(length(min = 1, max = 128), regex(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))] String);

/// Up to 100 patterns.
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "a schema only")]
struct Patterns(#[schemars(length(max = 100))] Vec<Pattern>);

/// An entry's id as the schema states it.
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "a schema only")]
struct EntryId(#[schemars(regex(pattern = r"^[a-z0-9._-]{1,64}$"))] String);

impl Match {
    /// The fields with their names, in a fixed order.
    pub fn fields(&self) -> [(&'static str, &[String]); 6] {
        [
            ("models", &self.models),
            ("agents", &self.agents),
            ("keys", &self.keys),
            ("features", &self.features),
            ("users", &self.users),
            ("endpoints", &self.endpoints),
        ]
    }

    pub fn is_everything(&self) -> bool {
        self.fields().iter().all(|(_, patterns)| patterns.is_empty())
    }
}

/// Allows or denies the calls it matches. The highest priority among the matching rules
/// decides; at equal priority a deny wins, and among equals the first in the document
/// names the decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[schemars(with = "EntryId")]
    pub id: String,
    pub effect: Effect,
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: i32,
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// Said to the caller a deny refuses.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a kill switch stops: every kind of action, or one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// Model calls through the gateway, and vitals reported for them.
    ModelCalls,
    /// Harness runs.
    Runs,
    /// The immune system's healing actions.
    Healing,
    /// Anything with an effect outside Vigil.
    External,
}

impl Domain {
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::ModelCalls => "model_calls",
            Domain::Runs => "runs",
            Domain::Healing => "healing",
            Domain::External => "external",
        }
    }
}

/// Stops what it matches, at once, whatever the rules say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitch {
    #[schemars(with = "EntryId")]
    pub id: String,
    /// A switch kept in the document but off stops nothing.
    #[serde(default = "on")]
    pub on: bool,
    /// The kinds of action it stops; empty: all of them.
    #[serde(default)]
    pub domains: Vec<Domain>,
    #[serde(default, rename = "match")]
    pub matches: Match,
    #[serde(default)]
    pub reason: Option<String>,
}

fn on() -> bool {
    true
}

/// Whose spend or rate a limit counts: each distinct value gets its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One counter for everything the scope matches.
    Tenant,
    Key,
    Agent,
    Feature,
    User,
}

/// The period a budget counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
    /// The last this many hours, sliding.
    RollingHours(#[schemars(range(min = 1, max = 8784))] u32),
}

/// Hard budgets refuse a call that would go over; soft ones only alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Hard,
    Soft,
}

/// Spend allowed per period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[schemars(with = "EntryId")]
    pub id: String,
    #[serde(default, rename = "match")]
    pub matches: Match,
    #[serde(default = "per_tenant")]
    pub per: Per,
    pub period: Period,
    #[schemars(range(min = 0))]
    pub limit_usd: f64,
    #[serde(default)]
    pub mode: Mode,
    /// Percentages of the limit at which to alert, ascending; 50, 80 and 100 when missing.
    #[serde(default = "default_alerts")]
    #[schemars(with = "Alerts")]
    pub alerts: Vec<u8>,
    /// A budget this one spends within: its limit may not exceed the parent's.
    #[serde(default)]
    pub parent: Option<String>,
}

/// Alert thresholds as the schema states them (their order it cannot).
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "a schema only")]
struct Alerts(#[schemars(length(max = 100), inner(range(min = 1, max = 100)))] Vec<u8>);

fn per_tenant() -> Per {
    Per::Tenant
}

fn default_alerts() -> Vec<u8> {
    DEFAULT_ALERTS.to_vec()
}

/// Calls and tokens allowed per minute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[schemars(with = "EntryId")]
    pub id: String,
    #[serde(default, rename = "match")]
    pub matches: Match,
    #[serde(default = "per_tenant")]
    pub per: Per,
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
}

/// A tenant's policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// What happens to a call no rule matches.
    #[serde(default)]
    pub default: Effect,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub rules: Vec<Rule>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub kill_switches: Vec<KillSwitch>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub rate_limits: Vec<RateLimit>,
}

/// One thing wrong with a document, at the path of the value (`rules[2].match.models[0]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads and validates a document, or says everything that is wrong with it. A whole float
/// (`5.0`) reads as the integer it is.
pub fn parse(value: &Value) -> Result<PolicyDocument, Vec<Problem>> {
    let mut value = value.clone();
    vigil_core::number::whole_numbers_as_integers(&mut value);
    let mut problems = Vec::new();
    let Some(fields) = value.as_object() else {
        return Err(vec![problem("", "a policy document is a JSON object")]);
    };
    const KNOWN: [&str; 5] = ["default", "rules", "kill_switches", "budgets", "rate_limits"];
    for key in fields.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        problems.push(problem(key, format!("unknown field; a document has {}", KNOWN.join(", "))));
    }
    let default = match fields.get("default") {
        None => Effect::default(),
        Some(v) => read(v, "default", &mut problems).unwrap_or_default(),
    };
    let read = Indexed {
        rules: list(fields.get("rules"), "rules", &mut problems),
        kill_switches: list(fields.get("kill_switches"), "kill_switches", &mut problems),
        budgets: list(fields.get("budgets"), "budgets", &mut problems),
        rate_limits: list(fields.get("rate_limits"), "rate_limits", &mut problems),
    };
    validate(&read, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PolicyDocument {
        default,
        rules: entries(read.rules),
        kill_switches: entries(read.kill_switches),
        budgets: entries(read.budgets),
        rate_limits: entries(read.rate_limits),
    })
}

fn entries<T>(list: Vec<(usize, T)>) -> Vec<T> {
    list.into_iter().map(|(_, entry)| entry).collect()
}

/// The entries that could be read, each with its index in the document (so a problem's
/// path names the entry the author wrote, whichever entries before it failed to read).
struct Indexed {
    rules: Vec<(usize, Rule)>,
    kill_switches: Vec<(usize, KillSwitch)>,
    budgets: Vec<(usize, Budget)>,
    rate_limits: Vec<(usize, RateLimit)>,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { path: path.into(), message: message.into() }
}

/// One value read on its own, its errors reported under `path`.
fn read<T: serde::de::DeserializeOwned>(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner == "." { path.to_owned() } else { format!("{path}.{inner}") };
            problems.push(problem(at, e.into_inner().to_string()));
            None
        }
    }
}

/// A list read entry by entry, so every bad entry is reported.
fn list<T: serde::de::DeserializeOwned>(
    value: Option<&Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(usize, T)> {
    let Some(value) = value else { return Vec::new() };
    let Some(items) = value.as_array() else {
        problems.push(problem(path, "must be a list"));
        return Vec::new();
    };
    if items.len() > ENTRIES_MAX {
        problems.push(problem(path, format!("{} entries; at most {ENTRIES_MAX}", items.len())));
        return Vec::new();
    }
    items.iter().enumerate().filter_map(|(i, item)| Some((i, read(item, &format!("{path}[{i}]"), problems)?))).collect()
}

/// The checks a value's type cannot make: ids, patterns, numbers, references.
fn validate(doc: &Indexed, problems: &mut Vec<Problem>) {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut id = |id: &str, path: String, problems: &mut Vec<Problem>| {
        let ok = (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            problems.push(problem(format!("{path}.id"), "1 to 64 lowercase letters, digits, '.', '_' or '-'"));
        } else if let Some(first) = ids.get(id) {
            problems.push(problem(format!("{path}.id"), format!("{id:?} is already the id of {first}")));
        } else {
            ids.insert(id.to_owned(), path);
        }
    };
    for (i, rule) in &doc.rules {
        let path = format!("rules[{i}]");
        id(&rule.id, path.clone(), problems);
        if !(-PRIORITY_MAX..=PRIORITY_MAX).contains(&rule.priority) {
            problems.push(problem(format!("{path}.priority"), format!("from -{PRIORITY_MAX} to {PRIORITY_MAX}")));
        }
        check_match(&rule.matches, &path, problems);
    }
    for (i, switch) in &doc.kill_switches {
        let path = format!("kill_switches[{i}]");
        id(&switch.id, path.clone(), problems);
        check_match(&switch.matches, &path, problems);
        if switch.domains.iter().collect::<BTreeSet<_>>().len() != switch.domains.len() {
            problems.push(problem(format!("{path}.domains"), "a domain is named twice"));
        }
    }
    for (i, budget) in &doc.budgets {
        let path = format!("budgets[{i}]");
        id(&budget.id, path.clone(), problems);
        check_match(&budget.matches, &path, problems);
        if !budget.limit_usd.is_finite() || budget.limit_usd < 0.0 {
            problems.push(problem(format!("{path}.limit_usd"), "a finite amount of dollars, 0 or more"));
        }
        if let Period::RollingHours(h) = budget.period
            && !(1..=ROLLING_HOURS_MAX).contains(&h)
        {
            problems
                .push(problem(format!("{path}.period"), format!("rolling windows are 1 to {ROLLING_HOURS_MAX} hours")));
        }
        let ascending = budget.alerts.windows(2).all(|w| w[0] < w[1]);
        if !ascending || budget.alerts.iter().any(|a| !(1..=100).contains(a)) {
            problems.push(problem(format!("{path}.alerts"), "ascending percentages from 1 to 100, each once"));
        }
    }
    for (i, limit) in &doc.rate_limits {
        let path = format!("rate_limits[{i}]");
        id(&limit.id, path.clone(), problems);
        check_match(&limit.matches, &path, problems);
        if limit.requests_per_minute.is_none() && limit.tokens_per_minute.is_none() {
            problems.push(problem(path, "give requests_per_minute, tokens_per_minute or both"));
        }
    }
    let matches = doc
        .rules
        .iter()
        .map(|(_, r)| &r.matches)
        .chain(doc.kill_switches.iter().map(|(_, s)| &s.matches))
        .chain(doc.budgets.iter().map(|(_, b)| &b.matches))
        .chain(doc.rate_limits.iter().map(|(_, l)| &l.matches));
    let patterns: usize = matches.map(|m| m.fields().iter().map(|(_, p)| p.len()).sum::<usize>()).sum();
    if patterns > PATTERNS_TOTAL_MAX {
        problems.push(problem("", format!("{patterns} patterns in all; a policy holds at most {PATTERNS_TOTAL_MAX}")));
    }
    // Parents: budgets of the document, and no budget its own ancestor.
    let budgets: BTreeMap<&str, &Budget> = doc.budgets.iter().map(|(_, b)| (b.id.as_str(), b)).collect();
    for (i, budget) in &doc.budgets {
        let Some(parent) = &budget.parent else { continue };
        if !budgets.contains_key(parent.as_str()) {
            problems.push(problem(format!("budgets[{i}].parent"), format!("no budget has the id {parent:?}")));
            continue;
        }
        let mut seen = BTreeSet::from([budget.id.as_str()]);
        let mut at = budgets.get(parent.as_str()).copied();
        while let Some(b) = at {
            if !seen.insert(b.id.as_str()) {
                problems.push(problem(format!("budgets[{i}].parent"), format!("{:?} is its own ancestor", budget.id)));
                break;
            }
            at = b.parent.as_deref().and_then(|p| budgets.get(p).copied());
        }
    }
}

fn check_match(m: &Match, path: &str, problems: &mut Vec<Problem>) {
    for (field, patterns) in m.fields() {
        if patterns.len() > PATTERNS_MAX {
            problems.push(problem(format!("{path}.match.{field}"), format!("at most {PATTERNS_MAX} patterns")));
            continue;
        }
        for (j, pattern) in patterns.iter().enumerate() {
            let chars = pattern.chars().count();
            if chars == 0 || chars > PATTERN_CHARS_MAX || pattern.chars().any(char::is_control) {
                problems.push(problem(
                    format!("{path}.match.{field}[{j}]"),
                    format!("a pattern is 1 to {PATTERN_CHARS_MAX} printable characters"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_document_reads() {
        let doc = parse(&json!({
            "default": "deny",
            "rules": [
                { "id": "mini", "effect": "allow", "match": { "models": ["gpt-4o-mini*"] } },
                { "id": "no-o1", "effect": "deny", "priority": 10, "match": { "models": ["o1*"] }, "reason": "too dear" }
            ],
            "kill_switches": [{ "id": "stop-healing", "domains": ["healing"] }],
            "budgets": [
                { "id": "team", "period": "month", "limit_usd": 500 },
                { "id": "bot", "per": "agent", "period": { "rolling_hours": 24 }, "limit_usd": 20, "mode": "soft", "parent": "team" }
            ],
            "rate_limits": [{ "id": "calm", "per": "key", "requests_per_minute": 600 }]
        }))
        .expect("valid");
        assert_eq!(doc.default, Effect::Deny);
        assert_eq!(doc.rules[1].priority, 10);
        assert!(doc.kill_switches[0].on, "a switch is on unless it says otherwise");
        assert_eq!(doc.budgets[0].alerts, DEFAULT_ALERTS);
        assert_eq!(doc.budgets[1].period, Period::RollingHours(24));
        assert_eq!(doc.budgets[1].per, Per::Agent);
        assert_eq!(parse(&json!({})).expect("empty"), PolicyDocument::default());
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let overflow = parse(&json!({ "rules": [{ "id": "low", "effect": "deny", "priority": i32::MIN }] }));
        assert!(overflow.is_err_and(|p| p[0].path == "rules[0].priority"), "the lowest i32 is out of range too");
        let problems = parse(&json!({
            "colour": "red",
            "rules": [
                { "id": "a", "effect": "maybe" },
                { "id": "Bad Id", "effect": "deny", "match": { "models": [""] } },
                { "id": "a", "effect": "allow", "priority": 5000 },
                { "id": "c", "effect": "allow", "match": { "modles": ["x"] } },
                { "id": "dup", "effect": "allow" },
                { "id": "dup", "effect": "deny" }
            ],
            "budgets": [
                { "id": "b", "period": "month", "limit_usd": -1, "alerts": [80, 50] },
                { "id": "c2", "period": { "rolling_hours": 0 }, "limit_usd": 1, "parent": "nope" },
                { "id": "x", "period": "day", "limit_usd": 1, "parent": "y" },
                { "id": "y", "period": "day", "limit_usd": 1, "parent": "x" }
            ],
            "rate_limits": [{ "id": "r" }],
            "kill_switches": "all"
        }))
        .expect_err("invalid");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "colour",
            "rules[0].effect",
            "rules[1].id",
            "rules[1].match.models[0]",
            "rules[2].priority",
            "rules[5].id",
            "rules[3].match",
            "budgets[0].limit_usd",
            "budgets[0].alerts",
            "budgets[1].period",
            "budgets[1].parent",
            "budgets[2].parent",
            "budgets[3].parent",
            "rate_limits[0]",
            "kill_switches",
        ] {
            assert!(paths.iter().any(|p| p.starts_with(expected)), "no problem at {expected}: {problems:#?}");
        }
        let duplicate = problems.iter().find(|p| p.path == "rules[5].id").expect("duplicate id");
        assert!(duplicate.message.contains("rules[4]"), "{duplicate}");
    }
}
