//! The enforcement point: one decision per call, before anything is forwarded.
//!
//! [`Policy`] holds the gateway's own rules (model allow/block globs, a per-agent call
//! rate). Other parts of Vigil add their own rules through [`CallGuard`] — the immune
//! system refuses quarantined or draining agents, governance enforces budgets and kill
//! switches — and the first refusal wins. A [`Refusal`] is a domain value: its
//! [`RefusalKind`] says what kind of "no" it is, and the proxy turns that into a status.

use std::sync::Arc;

use vigil_core::config::PolicyConfig;
use vigil_core::glob::glob_match;
use vigil_services::limit::KeyedLimiter;

pub use vigil_core::policy::{CallFacts, CallGuard, Refusal, RefusalKind};

/// The gateway's own rules plus the registered guards.
#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
    agent_limiter: Option<KeyedLimiter>,
    guards: Vec<Arc<dyn CallGuard>>,
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        let agent_limiter = config.agent_calls_per_minute.map(KeyedLimiter::per_minute);
        Policy { config, agent_limiter, guards: Vec::new() }
    }

    /// Forgets agents whose buckets are full again, bounding memory when callers invent
    /// agent ids.
    pub fn prune(&self) {
        if let Some(limiter) = &self.agent_limiter {
            limiter.prune();
        }
    }

    pub fn add_guard(&mut self, guard: Arc<dyn CallGuard>) {
        self.guards.push(guard);
    }

    /// Model rules first (they do not depend on history), then guards, then the rate.
    pub fn check(&self, call: &CallFacts<'_>) -> Option<Refusal> {
        if let Some(pattern) = self.config.block_models.iter().find(|g| glob_match(g, call.model)) {
            return Some(Refusal {
                kind: RefusalKind::Denied,
                code: "model_blocked",
                reason: format!("model {:?} is blocked by policy (pattern {pattern:?})", call.model),
                retry_after_secs: None,
            });
        }
        if !self.config.allow_models.is_empty() && !self.config.allow_models.iter().any(|g| glob_match(g, call.model)) {
            return Some(Refusal {
                kind: RefusalKind::Denied,
                code: "model_not_allowed",
                reason: format!("model {:?} is not in the allowed models {:?}", call.model, self.config.allow_models),
                retry_after_secs: None,
            });
        }
        if let Some(refusal) = self.guards.iter().find_map(|g| g.check(call)) {
            return Some(refusal);
        }
        let secs = self.agent_limiter.as_ref()?.check(call.agent_id).err()?;
        Some(Refusal {
            kind: RefusalKind::RateLimited,
            code: "agent_rate_limited",
            reason: format!("agent {:?} is over its limit of calls per minute; retry in {secs} s", call.agent_id),
            retry_after_secs: Some(secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn facts<'a>(agent: &'a str, model: &'a str) -> CallFacts<'a> {
        CallFacts {
            agent_id: agent,
            model,
            endpoint: "chat.completions",
            offers_tools: false,
            key_id: None,
            feature: None,
            user: None,
        }
    }

    #[test]
    fn block_beats_allow_and_allow_lists_are_closed() {
        let policy = Policy::new(PolicyConfig {
            allow_models: vec!["gpt-*".into()],
            block_models: vec!["gpt-4o".into()],
            agent_calls_per_minute: None,
        });
        assert_eq!(policy.check(&facts("a", "gpt-4o")).map(|r| r.code), Some("model_blocked"));
        assert_eq!(policy.check(&facts("a", "claude-opus-4")).map(|r| r.code), Some("model_not_allowed"));
        assert_eq!(policy.check(&facts("a", "gpt-4.1")), None);
    }

    #[derive(Debug)]
    struct Quarantine;

    impl CallGuard for Quarantine {
        fn check(&self, call: &CallFacts<'_>) -> Option<Refusal> {
            (call.agent_id == "sick").then(|| Refusal {
                kind: RefusalKind::Denied,
                code: "agent_quarantined",
                reason: "agent is quarantined".into(),
                retry_after_secs: None,
            })
        }
    }

    #[test]
    fn guards_and_per_agent_rates() {
        let mut policy =
            Policy::new(PolicyConfig { agent_calls_per_minute: NonZeroU32::new(2), ..PolicyConfig::default() });
        policy.add_guard(Arc::new(Quarantine));
        assert_eq!(policy.check(&facts("sick", "m")).map(|r| r.code), Some("agent_quarantined"));
        assert_eq!(policy.check(&facts("well", "m")), None);
        assert_eq!(policy.check(&facts("well", "m")), None);
        let limited = policy.check(&facts("well", "m")).expect("third call in a minute");
        assert_eq!((limited.kind, limited.code), (RefusalKind::RateLimited, "agent_rate_limited"));
        assert!(limited.retry_after_secs.is_some_and(|s| s >= 1));
        assert_eq!(policy.check(&facts("other", "m")), None, "limits are per agent");
    }
}
