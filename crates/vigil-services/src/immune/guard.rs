//! The gateway's lifecycle rule: which agents' calls are refused, throttled or stripped of
//! tools, as the engine last decided.

use super::*;

/// A restriction on one agent's calls.
#[derive(Debug, Default)]
pub(super) struct Restriction {
    /// A lifecycle state that refuses calls, and why.
    pub(super) refused: Option<(State, String)>,
    /// Until when, and the spacing between calls.
    pub(super) throttle: Option<(Instant, Duration)>,
    /// When the next throttled call may go.
    pub(super) next_call: Option<Instant>,
    pub(super) tools_revoked_until: Option<Instant>,
}

impl Restriction {
    fn is_empty(&self, now: Instant) -> bool {
        self.refused.is_none()
            && self.throttle.is_none_or(|(until, _)| until <= now)
            && self.tools_revoked_until.is_none_or(|until| until <= now)
    }
}

/// The gateway's enforcement of the immune system's decisions.
#[derive(Debug, Default)]
pub struct ImmuneGuard {
    pub(super) agents: RwLock<HashMap<String, Mutex<Restriction>>>,
    /// Whether any agent is restricted: the common case costs one atomic load per call.
    pub(super) any: AtomicBool,
}

impl ImmuneGuard {
    fn update(&self, agent_id: &str, f: impl FnOnce(&mut Restriction)) {
        let now = Instant::now();
        let mut agents = self.agents.write().unwrap_or_else(|e| e.into_inner());
        let slot = agents.entry(agent_id.to_owned()).or_default();
        let restriction = slot.get_mut().unwrap_or_else(|e| e.into_inner());
        f(restriction);
        if restriction.is_empty(now) {
            agents.remove(agent_id);
        }
        agents.retain(|_, r| !r.get_mut().is_ok_and(|r| r.is_empty(now)));
        self.any.store(!agents.is_empty(), Ordering::Release);
    }

    /// Follows the lifecycle: states that refuse calls refuse them, others lift that.
    pub fn set_state(&self, agent_id: &str, state: State, reason: String) {
        self.update(agent_id, |r| r.refused = (!state.accepts_calls()).then_some((state, reason)));
    }

    pub fn throttle(&self, agent_id: &str, per_minute: u32, for_: Duration) {
        let spacing = Duration::from_secs(60) / per_minute.max(1);
        self.update(agent_id, |r| {
            r.throttle = Some((Instant::now() + for_, spacing));
            r.next_call = None;
        });
    }

    pub fn revoke_tools(&self, agent_id: &str, for_: Duration) {
        self.update(agent_id, |r| r.tools_revoked_until = Some(Instant::now() + for_));
    }

    /// Lifts everything (an operator released the agent).
    pub fn clear(&self, agent_id: &str) {
        self.update(agent_id, |r| *r = Restriction::default());
    }
}

impl CallGuard for ImmuneGuard {
    fn check(&self, call: &CallFacts<'_>) -> Option<Refusal> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let agents = self.agents.read().unwrap_or_else(|e| e.into_inner());
        let mut r = agents.get(call.agent_id)?.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((state, reason)) = &r.refused {
            let (kind, code, retry) = match state {
                State::Draining => (RefusalKind::Unavailable, "agent_draining", Some(5)),
                State::Healing => (RefusalKind::Unavailable, "agent_healing", Some(5)),
                State::Exhausted => (RefusalKind::Denied, "agent_exhausted", None),
                _ => (RefusalKind::Denied, "agent_quarantined", None),
            };
            return Some(Refusal { kind, code, reason: reason.clone(), retry_after_secs: retry });
        }
        let now = Instant::now();
        if call.offers_tools && r.tools_revoked_until.is_some_and(|until| now < until) {
            return Some(Refusal {
                kind: RefusalKind::Denied,
                code: "agent_tools_revoked",
                reason: format!(
                    "the immune system revoked tools for agent {:?}; send the request without \"tools\"",
                    call.agent_id
                ),
                retry_after_secs: None,
            });
        }
        let (until, spacing) = r.throttle?;
        if now >= until {
            return None;
        }
        match r.next_call {
            Some(next) if now < next => {
                let secs = vigil_core::time::retry_after_secs(next - now);
                Some(Refusal {
                    kind: RefusalKind::RateLimited,
                    code: "agent_throttled",
                    reason: format!(
                        "the immune system throttled agent {:?} to one call every {} s; retry in {secs} s",
                        call.agent_id,
                        spacing.as_secs_f64()
                    ),
                    retry_after_secs: Some(secs),
                })
            }
            _ => {
                r.next_call = Some(now + spacing);
                None
            }
        }
    }
}
