//! The policy service: each tenant's policy document, checked before it is saved and kept as
//! immutable versions.
//!
//! A document is read and validated by [`vigil_governance::parse`] (every problem at once),
//! then checked statically ([`vigil_governance::check`]) against what Vigil knows exists
//! (the gateway's models, the agents discovered so far); a save names the version it was
//! based on, so a concurrent edit is refused rather than lost, and answers with the
//! findings and what changed against the previous version. A rollback saves an old
//! version's document as the newest, saying which it restored.
//!
//! [`PolicyGuard`] is the gateway's rule: it holds the version in force in memory (set on
//! every save here, and by [`PolicyService::refresh`] for saves made by another process) and
//! judges each call with [`vigil_governance::decide`], naming the rule and the version in
//! every refusal.

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;
use vigil_core::id::TenantId;
use vigil_core::page::PageRequest;
use vigil_core::policy::{CallFacts, CallGuard, Refusal, RefusalKind};
use vigil_core::time::Timestamp;
pub use vigil_governance::{Change, Domain, Finding, PolicyDocument, Problem, Subject};
use vigil_governance::{DecidedBy, Known, RecordedCall, Simulation};
use vigil_store::ports::{Policies, VitalsAgents};

use crate::limit::KeyedLimiter;
use vigil_store::{NewAuditEntry, NewPolicyVersion, PolicyVersion, StoreError, VitalsFilter};

/// Agents read for the reference check, at most.
const KNOWN_AGENTS_MAX: u32 = 500;
/// Days of recorded calls a simulation replays unless told otherwise, and at most.
pub const SIMULATE_DAYS_DEFAULT: u32 = 7;
pub const SIMULATE_DAYS_MAX: u32 = 30;
/// Recorded calls read per page while simulating.
const SIMULATE_PAGE: u32 = 500;

/// Why a policy could not be checked or saved.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy document is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A document checked without saving it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Checked {
    pub findings: Vec<Finding>,
    /// What saving it would change against the latest version (everything, when there is
    /// none yet).
    pub changes: Vec<Change>,
}

/// A saved version, what the checks found in it, and what it changed.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Saved {
    pub policy: PolicyVersion,
    /// False when the latest version already held this document.
    pub changed: bool,
    pub findings: Vec<Finding>,
    /// Against the version it was based on.
    pub changes: Vec<Change>,
}

/// What a proposed policy would have done to the calls of a period.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Simulated {
    /// The version in force it was compared with (`None`: no policy, every call allowed).
    pub against_version: Option<u32>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub report: vigil_governance::Report,
    /// Recorded calls carry no key id yet, so rules matching `keys` match none of them.
    pub note: &'static str,
}

/// A document as it is checked, compared and stored (`5.0` and `5` are the same document,
/// kept as the integer), and what it says.
fn read_document(mut document: Value) -> Result<(Value, PolicyDocument), PolicyError> {
    vigil_core::number::whole_numbers_as_integers(&mut document);
    let parsed = vigil_governance::parse(&document).map_err(PolicyError::Invalid)?;
    Ok((document, parsed))
}

/// The version of the policy in force, parsed.
#[derive(Debug)]
pub(crate) struct InForce {
    pub(crate) version: u32,
    pub(crate) document: PolicyDocument,
    /// A token bucket per subject for each rate limit with a request rate, by its id
    /// (`None`: a rate of 0, which admits nothing).
    limiters: Vec<(String, u32, Option<Arc<KeyedLimiter>>)>,
}

/// The gateway's governance rule: model calls judged by the policy in force. Keys belong to
/// the default tenant until tenants exist, so its policy is the one in force.
#[derive(Debug)]
pub struct PolicyGuard {
    in_force: RwLock<Option<Arc<InForce>>>,
    /// The version in force (0 before any), for what must act on a change at once: the
    /// gateway cuts the streams a new kill switch stops.
    changes: tokio::sync::watch::Sender<u32>,
}

impl Default for PolicyGuard {
    fn default() -> Self {
        PolicyGuard { in_force: RwLock::default(), changes: tokio::sync::watch::channel(0).0 }
    }
}

impl PolicyGuard {
    pub(crate) fn current(&self) -> Option<Arc<InForce>> {
        self.in_force.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The version in force, if a policy was saved.
    pub fn version(&self) -> Option<u32> {
        self.current().map(|p| p.version)
    }

    /// Puts `version` in force unless a later one already is: a refresh that read the
    /// store just before a save committed cannot undo the save.
    pub(crate) fn set(&self, version: u32, document: PolicyDocument) {
        let mut in_force = self.in_force.write().unwrap_or_else(|e| e.into_inner());
        if in_force.as_ref().is_none_or(|p| p.version < version) {
            // A rate limit whose id and rate stay keeps its buckets across versions.
            let before = in_force.as_ref().map(|p| p.limiters.as_slice()).unwrap_or_default();
            let limiters = document
                .rate_limits
                .iter()
                .filter_map(|limit| {
                    let rate = u32::try_from(limit.requests_per_minute?).unwrap_or(u32::MAX);
                    let kept =
                        before.iter().find(|(id, r, _)| *id == limit.id && *r == rate).map(|(_, _, l)| l.clone());
                    let limiter =
                        kept.unwrap_or_else(|| NonZeroU32::new(rate).map(|r| Arc::new(KeyedLimiter::per_minute(r))));
                    Some((limit.id.clone(), rate, limiter))
                })
                .collect();
            *in_force = Some(Arc::new(InForce { version, document, limiters }));
            self.changes.send_replace(version);
        }
    }

    /// Forgets rate-limit buckets that are full again.
    pub fn prune(&self) {
        if let Some(policy) = self.current() {
            policy.limiters.iter().filter_map(|(_, _, limiter)| limiter.as_ref()).for_each(|limiter| limiter.prune());
        }
    }

    /// Changes of the version in force, as they happen.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u32> {
        self.changes.subscribe()
    }
}

impl PolicyGuard {
    /// A kill switch of the policy in force that stops actions of `domain` on `subject`, as
    /// a refusal naming it and the version. Only switches: the rules speak of model calls.
    pub fn switched_off(&self, domain: Domain, subject: &Subject<'_>) -> Option<Refusal> {
        let policy = self.current()?;
        let switch =
            policy.document.kill_switches.iter().find(|s| vigil_governance::decide::stops(s, domain, subject))?;
        let why = switch.reason.clone().unwrap_or_else(|| format!("kill switch {:?} is on", switch.id));
        Some(Refusal {
            kind: RefusalKind::Denied,
            code: "policy_kill_switch",
            reason: format!("{why} (kill switch {:?} of policy version {})", switch.id, policy.version),
            retry_after_secs: None,
        })
    }
}

impl CallGuard for PolicyGuard {
    fn check(&self, call: &CallFacts<'_>) -> Option<Refusal> {
        let policy = self.current()?;
        let subject = Subject {
            model: Some(call.model),
            agent: Some(call.agent_id),
            key: call.key_id,
            feature: call.feature,
            user: call.user,
            endpoint: Some(call.endpoint),
        };
        let decision = vigil_governance::decide(&policy.document, Domain::ModelCalls, &subject);
        if decision.allowed() {
            return rate_limited(&policy, &subject);
        }
        let (code, what) = match &decision.by {
            DecidedBy::KillSwitch { id } => ("policy_kill_switch", format!("kill switch {id:?}")),
            DecidedBy::Rule { id } => ("policy_denied", format!("rule {id:?}")),
            DecidedBy::Default => ("policy_denied", "the default".to_owned()),
        };
        Some(Refusal {
            kind: RefusalKind::Denied,
            code,
            reason: format!("{} ({what} of policy version {})", decision.reason, policy.version),
            retry_after_secs: None,
        })
    }
}

/// The first rate limit of `policy` that has no request left this minute for the call's
/// subject, as a refusal naming it, the subject and the version. (Limits checked before it
/// have taken their token.)
fn rate_limited(policy: &InForce, subject: &Subject<'_>) -> Option<Refusal> {
    for (id, rate, limiter) in &policy.limiters {
        let Some(limit) = policy.document.rate_limits.iter().find(|l| &l.id == id) else { continue };
        if !limit.matches.matches(subject) {
            continue;
        }
        let counter = vigil_governance::budget::counter_subject(limit.per, subject);
        let checked = match limiter {
            Some(limiter) => limiter.check(&counter),
            None => Err(60),
        };
        if let Err(wait) = checked {
            let whose =
                if counter == vigil_governance::budget::TENANT { String::new() } else { format!(" for {counter:?}") };
            return Some(Refusal {
                kind: RefusalKind::RateLimited,
                code: "policy_rate_limited",
                reason: format!(
                    "rate limit {id:?}{whose} of policy version {} allows {rate} requests a minute; retry in {wait} s",
                    policy.version
                ),
                retry_after_secs: Some(wait),
            });
        }
    }
    None
}

/// The policy service. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PolicyService {
    store: Arc<dyn Policies>,
    agents: Arc<dyn VitalsAgents>,
    /// Models the gateway can serve, as patterns.
    models: Arc<Vec<String>>,
    guard: Arc<PolicyGuard>,
}

impl PolicyService {
    pub fn new(store: Arc<dyn Policies>, agents: Arc<dyn VitalsAgents>, models: Vec<String>) -> PolicyService {
        PolicyService { store, agents, models: Arc::new(models), guard: Arc::default() }
    }

    /// The gateway's rule, judging calls by the policy in force.
    pub fn guard(&self) -> Arc<PolicyGuard> {
        Arc::clone(&self.guard)
    }

    /// Puts the latest saved version in force when it is not already (a save by another
    /// process, or at start). A version that no longer reads leaves the one in force, and
    /// says so.
    pub async fn refresh(&self) -> Result<(), PolicyError> {
        let tenant = TenantId::default_tenant();
        let Some(latest) = self.latest(&tenant).await? else { return Ok(()) };
        if self.guard.version() >= Some(latest.version) {
            return Ok(());
        }
        match vigil_governance::parse(&latest.document) {
            Ok(document) => self.guard.set(latest.version, document),
            Err(problems) => {
                tracing::error!(
                    version = latest.version,
                    problems = ?problems,
                    "the latest policy version does not read (stricter rules since it was saved?); save a corrected one"
                );
                // With nothing in force yet (at start), the newest version that does read
                // is: a policy never silently becomes no policy.
                if self.guard.version().is_none() {
                    self.fall_back(&tenant).await?;
                }
            }
        }
        Ok(())
    }

    /// Puts the newest version that still reads in force.
    async fn fall_back(&self, tenant: &TenantId) -> Result<(), PolicyError> {
        let mut after = None;
        loop {
            let page = PageRequest { after, limit: 20 };
            let (versions, next) = self.store.policy_history(tenant.clone(), page).await?;
            for version in versions {
                if let Ok(document) = vigil_governance::parse(&version.document) {
                    tracing::warn!(version = version.version, "an older policy version is in force instead");
                    self.guard.set(version.version, document);
                    return Ok(());
                }
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(()),
            }
        }
    }

    /// The latest version of a tenant's policy; `NotFound` when none was saved.
    pub async fn current(&self, tenant: &TenantId) -> Result<PolicyVersion, PolicyError> {
        Ok(self.store.policy(tenant.clone(), None).await?)
    }

    /// A version of a tenant's policy.
    pub async fn version(&self, tenant: &TenantId, version: u32) -> Result<PolicyVersion, PolicyError> {
        Ok(self.store.policy(tenant.clone(), Some(version)).await?)
    }

    /// A tenant's versions, newest first.
    pub async fn history(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<vigil_store::ports::Page<PolicyVersion>, PolicyError> {
        Ok(self.store.policy_history(tenant.clone(), page).await?)
    }

    /// Replays the calls recorded over the last `days` days through `document` and through
    /// the policy in force, with the gateway's own decision function, and says what would
    /// have been decided differently.
    pub async fn simulate(&self, tenant: &TenantId, document: Value, days: u32) -> Result<Simulated, PolicyError> {
        let (_, proposed) = read_document(document)?;
        let current = match self.latest(tenant).await? {
            Some(v) => Some((v.version, vigil_governance::parse(&v.document).map_err(PolicyError::Invalid)?)),
            None => None,
        };
        let to = Timestamp::now();
        let span_us = i64::from(days.clamp(1, SIMULATE_DAYS_MAX)) * 86_400_000_000;
        let from = Timestamp::from_unix_micros(to.as_unix_micros().saturating_sub(span_us));
        let filter = VitalsFilter { agent_id: None, from: Some(from), to: Some(to) };
        let mut simulation = Simulation::new(current.as_ref().map(|(_, doc)| doc), &proposed);
        let mut after = None;
        loop {
            let page = PageRequest { after, limit: SIMULATE_PAGE };
            let (calls, next) = self.agents.list_vitals(filter.clone(), page).await?;
            // Deciding a page is CPU work: the worker hands its other tasks on meanwhile.
            tokio::task::block_in_place(|| {
                for stored in &calls {
                    let v = &stored.vital;
                    let subject = Subject {
                        model: v.model_requested.as_deref().or(v.model_served.as_deref()),
                        agent: Some(v.agent_id.as_str()),
                        key: None,
                        feature: v.feature.as_deref(),
                        user: v.user.as_deref(),
                        endpoint: Some(v.endpoint.as_str()),
                    };
                    let cost_usd = v.cost_nanos.map(|n| n as f64 / 1e9);
                    simulation.add(&RecordedCall { id: stored.seq, at_us: v.at.as_unix_micros(), subject, cost_usd });
                }
            });
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        let report = simulation.finish();
        Ok(Simulated {
            against_version: current.map(|(version, _)| version),
            from,
            to,
            report,
            note: "recorded calls carry no key id yet: rules that match keys match none of them here",
        })
    }

    /// Validates and checks a document without saving it.
    pub async fn check(&self, tenant: &TenantId, document: &Value) -> Result<Checked, PolicyError> {
        let (document, parsed) = read_document(document.clone())?;
        let findings = self.findings(&parsed).await?;
        let latest = self.latest(tenant).await?;
        let changes = vigil_governance::changes(latest.as_ref().map_or(&Value::Null, |l| &l.document), &document);
        Ok(Checked { findings, changes })
    }

    /// Saves a document as the tenant's next version, if `based_on` is still the latest.
    pub async fn save(
        &self,
        tenant: &TenantId,
        document: Value,
        based_on: Option<u32>,
        by: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<Saved, PolicyError> {
        let (document, parsed) = read_document(document)?;
        let findings = self.findings(&parsed).await?;
        self.store_version(tenant, (document, parsed), based_on, None, by, audit, findings).await
    }

    /// Makes an old version's document the newest version again.
    pub async fn rollback(
        &self,
        tenant: &TenantId,
        to: u32,
        based_on: Option<u32>,
        by: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<Saved, PolicyError> {
        let old = self.store.policy(tenant.clone(), Some(to)).await?;
        // It was valid when saved; it is checked against today's rules and names again.
        let parsed = vigil_governance::parse(&old.document).map_err(PolicyError::Invalid)?;
        let findings = self.findings(&parsed).await?;
        self.store_version(tenant, (old.document, parsed), based_on, Some(to), by, audit, findings).await
    }

    #[allow(clippy::too_many_arguments, reason = "one private step shared by save and rollback")]
    async fn store_version(
        &self,
        tenant: &TenantId,
        (document, parsed): (Value, PolicyDocument),
        based_on: Option<u32>,
        rolled_back_from: Option<u32>,
        by: &str,
        audit: Option<NewAuditEntry>,
        findings: Vec<Finding>,
    ) -> Result<Saved, PolicyError> {
        // The version the edit started from, to show what changed; one that does not exist
        // is left for the save to refuse as a conflict.
        let previous = match based_on {
            Some(v) => match self.store.policy(tenant.clone(), Some(v)).await {
                Ok(previous) => Some(previous),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let new = NewPolicyVersion {
            tenant_id: tenant.clone(),
            document,
            created_by: by.to_owned(),
            based_on,
            rolled_back_from,
        };
        let (policy, changed) = self.store.save_policy(new, audit).await?;
        if *tenant == TenantId::default_tenant() {
            self.guard.set(policy.version, parsed);
        }
        let changes =
            vigil_governance::changes(previous.as_ref().map_or(&Value::Null, |p| &p.document), &policy.document);
        Ok(Saved { policy, changed, findings, changes })
    }

    async fn latest(&self, tenant: &TenantId) -> Result<Option<PolicyVersion>, PolicyError> {
        match self.store.policy(tenant.clone(), None).await {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The static checks, against the models the gateway serves and the agents seen.
    async fn findings(&self, document: &PolicyDocument) -> Result<Vec<Finding>, PolicyError> {
        let page = PageRequest { after: None, limit: KNOWN_AGENTS_MAX };
        let (agents, _) = self.agents.list_agents(page).await?;
        let known = Known {
            models: self.models.as_ref().clone(),
            agents: agents.into_iter().map(|a| a.agent_id.into()).collect(),
        };
        // The checks' work is bounded (`PAIR_WORK_MAX`) but can take a moment: the worker
        // hands its other tasks on while they run.
        Ok(tokio::task::block_in_place(|| vigil_governance::check(document, &known)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vigil_store::{Store, StoreOptions};

    fn service() -> (tempfile::TempDir, PolicyService) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("store"));
        (dir, PolicyService::new(store.clone(), store, vec!["gpt-4o".into(), "gpt-4o-mini".into()]))
    }

    /// A request rate per subject, refused naming the limit, the subject and the version;
    /// a new version keeps a limit's buckets unless its rate changed.
    #[test]
    fn rate_limits_refuse_per_subject_and_keep_their_buckets_across_versions() {
        let guard = PolicyGuard::default();
        let doc = |rate: u64| {
            vigil_governance::parse(&json!({ "rate_limits": [
                { "id": "calm", "per": "agent", "match": { "models": ["gpt-*"] }, "requests_per_minute": rate }
            ] }))
            .expect("valid")
        };
        guard.set(1, doc(2));
        let call = |agent: &'static str, model: &'static str| CallFacts {
            agent_id: agent,
            model,
            endpoint: "chat.completions",
            offers_tools: false,
            key_id: None,
            feature: None,
            user: None,
        };
        assert_eq!(guard.check(&call("a", "gpt-4o")), None);
        assert_eq!(guard.check(&call("a", "gpt-4o")), None);
        let refused = guard.check(&call("a", "gpt-4o")).expect("the third in a minute is refused");
        assert_eq!((refused.kind, refused.code), (RefusalKind::RateLimited, "policy_rate_limited"));
        assert!(refused.reason.contains("\"calm\" for \"a\" of policy version 1"), "{}", refused.reason);
        assert!(refused.retry_after_secs.is_some_and(|s| s >= 1));
        assert_eq!(guard.check(&call("b", "gpt-4o")), None, "another agent has its own bucket");
        assert_eq!(guard.check(&call("a", "claude-3")), None, "a model the limit does not match");
        guard.set(2, doc(2));
        assert!(guard.check(&call("a", "gpt-4o")).is_some(), "the same limit keeps its bucket");
        guard.set(3, doc(5));
        assert_eq!(guard.check(&call("a", "gpt-4o")), None, "a changed rate starts afresh");
        guard.set(4, doc(0));
        assert!(guard.check(&call("c", "gpt-4o")).is_some(), "a rate of 0 admits nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saves_are_checked_versioned_diffed_and_rolled_back() {
        let (_dir, policies) = service();
        let tenant = TenantId::default_tenant();
        let bad = json!({ "rules": [{ "id": "x", "effect": "perhaps" }], "budgets": [{ "id": "b" }] });
        let Err(PolicyError::Invalid(problems)) = policies.save(&tenant, bad, None, "alice", None).await else {
            panic!("an invalid document is refused");
        };
        assert_eq!(problems.len(), 2, "every problem at once: {problems:?}");

        let first = json!({ "rules": [{ "id": "no-o1", "effect": "deny", "match": { "models": ["o1*"] } }] });
        let saved = policies.save(&tenant, first.clone(), None, "alice", None).await.expect("first");
        assert_eq!((saved.policy.version, saved.changed), (1, true));
        assert!(
            saved.findings.iter().any(|f| f.kind == "unknown_reference"),
            "o1* matches no model the gateway serves: {:?}",
            saved.findings
        );
        let second =
            json!({ "rules": [{ "id": "no-o1", "effect": "deny", "priority": 3, "match": { "models": ["gpt-4o"] } }] });
        let checked = policies.check(&tenant, &second).await.expect("check");
        assert!(checked.findings.is_empty(), "{:?}", checked.findings);
        let saved = policies.save(&tenant, second, Some(1), "bob", None).await.expect("second");
        let paths: Vec<&str> = saved.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["rules[no-o1].match.models[0]", "rules[no-o1].priority"]);
        let stale = policies.save(&tenant, json!({}), Some(1), "carol", None).await;
        assert!(matches!(stale, Err(PolicyError::Store(StoreError::Conflict(_)))), "{stale:?}");

        let back = policies.rollback(&tenant, 1, Some(2), "alice", None).await.expect("rollback");
        assert_eq!((back.policy.version, back.policy.rolled_back_from), (3, Some(1)));
        assert_eq!(back.policy.document, first);
        assert_eq!(policies.current(&tenant).await.expect("current").version, 3);
    }

    fn recorded(agent: &str, model: &str, cost_nanos: i64, ago_us: i64) -> vigil_core::vitals::Vital {
        let at = Timestamp::from_unix_micros(Timestamp::now().as_unix_micros() - ago_us);
        let mut v = vigil_core::vitals::Vital::received(at, agent.into(), "chat.completions");
        v.model_requested = Some(model.to_owned());
        v.cost_nanos = Some(cost_nanos);
        v.outcome = vigil_core::vitals::CallOutcome::Ok;
        v
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_proposal_is_replayed_against_the_recorded_calls_of_its_window() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("store"));
        let policies = PolicyService::new(store.clone(), store.clone(), Vec::new());
        let day = 86_400_000_000;
        let mut calls: Vec<_> = (0..1_200).map(|i| recorded("bot", "gpt-4o", 1_000_000, i * 1_000_000)).collect();
        calls.push(recorded("human", "gpt-4o", 5_000_000, 1_000_000));
        calls.push(recorded("bot", "gpt-4o", 7_000_000, 9 * day));
        store.insert_vitals(&calls).expect("recorded");
        let tenant = TenantId::default_tenant();
        let proposal = json!({ "rules": [{ "id": "no-bot", "effect": "deny", "match": { "agents": ["bot"] } }] });
        let simulated = policies.simulate(&tenant, proposal.clone(), 7).await.expect("simulated");
        assert_eq!(simulated.against_version, None);
        let report = &simulated.report;
        assert_eq!(report.calls, 1_201, "the window holds every page of it, and only it");
        assert_eq!((report.flips.newly_denied, report.flips.newly_allowed), (1_200, 0));
        assert!((report.flips.denied_usd - 1.2).abs() < 1e-9, "{}", report.flips.denied_usd);
        assert_eq!(report.by_rule["no-bot"].newly_denied, 1_200);
        assert!(simulated.note.contains("key"));
        // Against a policy in force, only the difference flips.
        policies.save(&tenant, proposal, None, "alice", None).await.expect("saved");
        let wider = json!({ "default": "deny", "rules": [{ "id": "human-ok", "effect": "allow", "match": { "agents": ["human"] } }] });
        let simulated = policies.simulate(&tenant, wider, 30).await.expect("simulated");
        assert_eq!(simulated.against_version, Some(1));
        assert_eq!(
            (simulated.report.calls, simulated.report.flips.newly_denied),
            (1_202, 0),
            "bot was refused already"
        );
        let invalid = policies.simulate(&tenant, json!({ "rules": 3 }), 7).await;
        assert!(matches!(invalid, Err(PolicyError::Invalid(_))));
    }

    /// How fast a week of recorded calls replays (not a test: run it in release with
    /// `VIGIL_SIMULATE_CALLS=1000000 cargo test --release -p vigil-services simulation_speed -- --ignored --nocapture`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement; run by hand in release"]
    async fn simulation_speed() {
        let n: i64 = std::env::var("VIGIL_SIMULATE_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("store"));
        let week_us = 7 * 86_400_000_000 - 60_000_000;
        let agents = ["bot-1", "bot-2", "helper", "search", "billing"];
        let models = ["gpt-4o", "gpt-4o-mini", "o3-mini", "claude-sonnet-4"];
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let calls: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let (agent, model) = (agents[(i % 5) as usize], models[(i % 4) as usize]);
                    recorded(agent, model, 1_000 + i % 5_000, week_us * i / n)
                })
                .collect();
            store.insert_vitals(&calls).expect("recorded");
        }
        let policies = PolicyService::new(store.clone(), store, Vec::new());
        let proposal = json!({
            "kill_switches": [{ "id": "stop-billing", "match": { "agents": ["billing"] } }],
            "rules": [
                { "id": "no-o3", "effect": "deny", "match": { "models": ["o3*"] } },
                { "id": "bots-mini", "effect": "allow", "priority": 5, "match": { "models": ["gpt-4o-mini"], "agents": ["bot-*"] } }
            ],
            "budgets": [
                { "id": "org", "period": "month", "limit_usd": 1000 },
                { "id": "per-agent", "per": "agent", "period": "day", "limit_usd": 0.05, "parent": "org" }
            ]
        });
        let started = std::time::Instant::now();
        let simulated = policies.simulate(&TenantId::default_tenant(), proposal, 7).await.expect("simulated");
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(simulated.report.calls as i64, n);
        println!(
            "{{\"bench\": \"policy_simulation\", \"calls\": {n}, \"seconds\": {elapsed:.2}, \"calls_per_second\": {:.0}, \"newly_denied\": {}, \"budgets_run_out\": {}}}",
            n as f64 / elapsed,
            simulated.report.flips.newly_denied,
            simulated.report.budget_exhaustion.len()
        );
    }

    /// The version in force only moves forward, and a policy never silently becomes none:
    /// when the latest version no longer reads, the newest that does is in force.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_version_in_force_only_moves_forward_and_falls_back_to_one_that_reads() {
        let (dir, policies) = service();
        let tenant = TenantId::default_tenant();
        let deny =
            json!({ "default": "deny", "rules": [{ "id": "ok", "effect": "allow", "match": { "agents": ["a"] } }] });
        policies.save(&tenant, deny.clone(), None, "alice", None).await.expect("v1");
        policies.save(&tenant, json!({}), Some(1), "alice", None).await.expect("v2");
        policies.guard.set(1, vigil_governance::parse(&deny).expect("parse"));
        assert_eq!(policies.guard.version(), Some(2), "a stale refresh cannot undo a save");
        let unknown = policies.save(&tenant, json!({}), Some(99), "alice", None).await;
        assert!(matches!(unknown, Err(PolicyError::Store(StoreError::Conflict(_)))), "{unknown:?}");

        // A version stored by an older, laxer Vigil that today's rules refuse.
        let store = Arc::new(Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("store"));
        let lax = NewPolicyVersion {
            tenant_id: tenant.clone(),
            document: json!({ "rules": [{ "id": "Bad Id", "effect": "deny" }] }),
            created_by: "old".into(),
            based_on: Some(2),
            rolled_back_from: None,
        };
        store.save_policy(&lax, None).expect("v3");
        let restarted = PolicyService::new(store.clone(), store, Vec::new());
        restarted.refresh().await.expect("refresh");
        assert_eq!(restarted.guard.version(), Some(2), "the newest version that reads is in force");
    }

    /// A save is in force at once in its process, and in another once it refreshes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saved_policy_comes_into_force_here_at_once_and_elsewhere_on_refresh() {
        let (dir, here) = service();
        let store = Arc::new(Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("store"));
        let elsewhere = PolicyService::new(store.clone(), store, Vec::new());
        let call = CallFacts {
            agent_id: "bot",
            model: "gpt-4o",
            endpoint: "chat.completions",
            offers_tools: false,
            key_id: None,
            feature: None,
            user: None,
        };
        assert_eq!(here.guard().check(&call), None, "no policy: nothing refused");
        let stop = json!({ "kill_switches": [{ "id": "stop", "match": { "agents": ["bot"] } }] });
        here.save(&TenantId::default_tenant(), stop, None, "alice", None).await.expect("save");
        let refusal = here.guard().check(&call).expect("refused at once");
        assert_eq!((refusal.code, refusal.kind), ("policy_kill_switch", RefusalKind::Denied));
        assert!(
            refusal.reason.contains("\"stop\"") && refusal.reason.contains("policy version 1"),
            "{}",
            refusal.reason
        );
        assert_eq!(elsewhere.guard().check(&call), None, "another process has not read it yet");
        elsewhere.refresh().await.expect("refresh");
        assert!(elsewhere.guard().check(&call).is_some(), "and has after a refresh");
        assert_eq!(elsewhere.guard().version(), Some(1));
    }
}
