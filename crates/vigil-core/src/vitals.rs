//! [`Vital`]: what Vigil records about one model call, whichever way it arrived (the
//! gateway today; ingest and OpenTelemetry later).

use crate::digest::Sha256Digest;
use crate::id::AgentId;
use crate::time::Timestamp;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The upstream answered successfully and the whole answer reached the client.
    Ok,
    /// The upstream answered with an error status, relayed to the client.
    UpstreamError,
    /// The upstream could not be reached (connect error or timeout).
    Unreachable,
    /// The client went away before the answer was complete.
    Cancelled,
    /// The upstream's stream broke off before its end.
    Interrupted,
    /// Vigil refused the call (bad request, no provider, policy).
    Refused,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 6] = [
        CallOutcome::Ok,
        CallOutcome::UpstreamError,
        CallOutcome::Unreachable,
        CallOutcome::Cancelled,
        CallOutcome::Interrupted,
        CallOutcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::UpstreamError => "upstream_error",
            CallOutcome::Unreachable => "unreachable",
            CallOutcome::Cancelled => "cancelled",
            CallOutcome::Interrupted => "interrupted",
            CallOutcome::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// Most tokens one call may report in any usage field. Far above any context window, far
/// below what would let a few rows overflow a sum: bounds what an ingest or OTLP caller can
/// store, so no report can poison the statistics read back.
pub const TOKENS_PER_CALL_MAX: u64 = 1_000_000_000;
/// Most tool calls one call may report.
pub const TOOL_CALLS_PER_CALL_MAX: u32 = 100_000;
/// Most retries one call may report.
pub const RETRIES_PER_CALL_MAX: u32 = 10_000;
/// Largest cost one call may report, in US dollars.
pub const COST_USD_PER_CALL_MAX: f64 = 1_000_000.0;
/// Longest latency one call may report, in microseconds (one day).
pub const LATENCY_US_MAX: u64 = 86_400 * 1_000_000;

/// A reported cost in US dollars as nano-dollars, or `None` when it is not a number from 0
/// to [`COST_USD_PER_CALL_MAX`].
pub fn cost_nanos_from_usd(usd: f64) -> Option<i64> {
    (usd.is_finite() && (0.0..=COST_USD_PER_CALL_MAX).contains(&usd)).then(|| (usd * 1e9).round() as i64)
}

/// Token counts of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache (a subset of `input_tokens`).
    pub cached_tokens: u64,
    /// Input tokens written to the provider's prompt cache (a subset of `input_tokens`,
    /// apart from `cached_tokens`): Anthropic bills these above the plain input price.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written for the long (one-hour) cache lifetime,
    /// billed higher again.
    #[serde(default)]
    pub cache_write_1h_tokens: u64,
    /// Reasoning tokens (a subset of `output_tokens`).
    pub reasoning_tokens: u64,
    /// True when the provider reported no usage (an interrupted stream) and Vigil estimated.
    pub estimated: bool,
}

impl Usage {
    /// The usage fields in their wire names, for bounds checks and messages.
    pub fn counts(&self) -> [(&'static str, u64); 6] {
        [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cached_tokens", self.cached_tokens),
            ("cache_write_tokens", self.cache_write_tokens),
            ("cache_write_1h_tokens", self.cache_write_1h_tokens),
            ("reasoning_tokens", self.reasoning_tokens),
        ]
    }

    /// The first field above [`TOKENS_PER_CALL_MAX`], if any.
    pub fn over_bounds(&self) -> Option<(&'static str, u64)> {
        self.counts().into_iter().find(|(_, n)| *n > TOKENS_PER_CALL_MAX)
    }
}

/// One model call.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Vital {
    pub at: Timestamp,
    pub request_id: Option<String>,
    pub agent_id: AgentId,
    /// Client family from the User-Agent: `openai-python`, `anthropic-python`, `langchain`, ...
    pub agent_type: String,
    pub provider: String,
    /// API operation, e.g. `chat.completions`.
    pub endpoint: String,
    pub model_requested: Option<String>,
    pub model_served: Option<String>,
    pub streamed: bool,
    pub status: u16,
    pub outcome: CallOutcome,
    pub latency_us: u64,
    /// Time to the first token of a streamed answer.
    pub ttft_us: Option<u64>,
    /// `None` when the call never produced an answer to count.
    pub usage: Option<Usage>,
    pub tool_calls: u32,
    pub tool_names: Vec<String>,
    /// Cost in nano-dollars; `None` when no price matched (`unpriced`), never a silent 0.
    pub cost_nanos: Option<i64>,
    pub unpriced: bool,
    /// True when the cost is the one the caller reported (`X-Vigil-Reported-Cost-Usd`),
    /// which wins over the price table.
    pub cost_reported: bool,
    /// What the price table makes of the call, kept beside a reported cost so the caller's
    /// figure can be checked; equal to `cost_nanos` when nothing was reported, `None` when
    /// no price matched (or the call was stored before Vigil kept it beside a reported
    /// cost).
    pub table_cost_nanos: Option<i64>,
    pub retries: u32,
    pub error_class: Option<String>,
    pub system_prompt_sha256: Option<Sha256Digest>,
    pub feature: Option<String>,
    pub user: Option<String>,
    /// The caller's address as Vigil saw it.
    pub client_ip: Option<String>,
    /// Strength (0 to 1) of a prompt-injection signal in the call's newest input, when any
    /// rule matched, and the rules that did.
    pub injection_score: Option<f64>,
    pub injection_rules: Vec<String>,
}

impl Vital {
    /// A call of `agent_id`'s to `endpoint` received at `at`, before anything about it is
    /// known: refused (nothing was forwarded), status 0, no provider, usage, cost or tags.
    /// Whoever records the call fills in what it learns.
    pub fn received(at: Timestamp, agent_id: AgentId, endpoint: &str) -> Vital {
        Vital {
            at,
            request_id: None,
            agent_id,
            agent_type: String::new(),
            provider: String::new(),
            endpoint: endpoint.to_owned(),
            model_requested: None,
            model_served: None,
            streamed: false,
            status: 0,
            outcome: CallOutcome::Refused,
            latency_us: 0,
            ttft_us: None,
            usage: None,
            tool_calls: 0,
            tool_names: Vec::new(),
            cost_nanos: None,
            unpriced: false,
            cost_reported: false,
            table_cost_nanos: None,
            retries: 0,
            error_class: None,
            system_prompt_sha256: None,
            feature: None,
            user: None,
            client_ip: None,
            injection_score: None,
            injection_rules: Vec::new(),
        }
    }
}
