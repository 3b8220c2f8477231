//! Vigil's model gateway: agents point their SDK's base URL at Vigil; Vigil forwards each
//! call to the configured provider, relays the answer (streamed event by event, never
//! buffered whole) and turns the call into a [`vigil_core::vitals::Vital`].
//!
//! [`proxy::Gateway`] holds one HTTP client per provider and routes by model name. Pure
//! pieces sit beside it: [`sse`] frames event streams, [`openai`] reads requests and
//! answers (usage, tool calls, system-prompt hash), [`price`] prices usage in nano-dollars,
//! [`fingerprint`] names the calling agent. [`recorder::Recorder`] writes vitals to the
//! store in batches off the response path, dropping (and counting) rather than blocking.

pub mod anthropic;
pub mod bound;
pub mod breaker;
pub mod fingerprint;
pub mod mock;
pub mod openai;
pub mod policy;
pub mod price;
pub mod proxy;
pub mod recorder;
pub mod responses;
pub mod sse;

pub use proxy::{Caller, Gateway, GatewayError, anthropic_error, openai_error};
pub use recorder::Recorder;

/// What the crate's unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use vigil_core::time::Timestamp;
    use vigil_core::vitals::{CallOutcome, Vital};

    /// An unpriced call of `agent`'s, made now, without usage: tests set what they need.
    pub(crate) fn vital(agent: &str) -> Vital {
        Vital {
            agent_type: "unknown".into(),
            provider: "p".into(),
            status: 200,
            outcome: CallOutcome::Ok,
            latency_us: 1,
            unpriced: true,
            ..Vital::received(Timestamp::now(), agent.into(), "chat.completions")
        }
    }
}
