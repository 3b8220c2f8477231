//! The vocabulary of call enforcement, shared by the gateway (which enforces) and the
//! services that add rules to it (the immune system's lifecycle guard; governance next):
//! what a guard sees of a call ([`CallFacts`]), the rule it implements ([`CallGuard`]) and
//! the domain value it answers with ([`Refusal`]). No transport here: the gateway turns a
//! [`RefusalKind`] into a status.

/// What a guard sees of a call.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    pub agent_id: &'a str,
    pub model: &'a str,
    pub endpoint: &'a str,
    /// The request offers the model tools to call.
    pub offers_tools: bool,
    /// The id of the Vigil key the call came with, if any.
    pub key_id: Option<&'a str>,
    /// The caller's `X-Vigil-Feature` and `X-Vigil-User` tags.
    pub feature: Option<&'a str>,
    pub user: Option<&'a str>,
}

/// What kind of "no" a refusal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not allowed, and retrying will not change that until an operator does something.
    Denied,
    /// Too many calls; `retry_after_secs` says when to try again.
    RateLimited,
    /// Not now (an agent being drained or healed); retrying later may work.
    Unavailable,
}

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// Stable, machine-readable: `model_blocked`, `model_not_allowed`, `agent_rate_limited`, ...
    pub code: &'static str,
    pub reason: String,
    pub retry_after_secs: Option<u64>,
}

/// A rule another part of Vigil plugs into the gateway.
pub trait CallGuard: Send + Sync + std::fmt::Debug {
    fn check(&self, call: &CallFacts<'_>) -> Option<Refusal>;
}
