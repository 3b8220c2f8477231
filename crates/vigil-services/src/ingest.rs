//! Items of `POST /api/v1/ingest`: vitals reported by agents themselves (an SDK, a sidecar),
//! for calls that did not pass through the gateway.
//!
//! Each item is read by the wire rules of its own fields (names and tags of 1 to 256
//! characters, an RFC 3339 time, a cost from 0 to a million dollars, cache and reasoning tokens
//! inside the counts they are part of) into a [`Reported`] call, which
//! [`Reported::into_vital`] holds to the bounds every stored call keeps.

use serde_json::Value;
use vigil_core::digest::Sha256Digest;
use vigil_core::id::AgentId;
use vigil_core::number::whole_u64;
use vigil_core::time::Timestamp;
use vigil_core::vitals::{COST_USD_PER_CALL_MAX, LATENCY_US_MAX, Usage, Vital, cost_nanos_from_usd};

use crate::vitals::{Refused, Reported};

/// Longest identifier or tag accepted.
const FIELD_LEN_MAX: usize = 256;
/// Tool names kept per call.
const TOOL_NAMES_MAX: usize = 64;
/// Largest `input_text` scanned for injections.
const INPUT_TEXT_MAX: usize = 8 * 1024;

/// One reported model call.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestItem {
    #[schemars(length(min = 1, max = 256), pattern(r"\S"))]
    pub agent_id: String,
    /// RFC 3339; defaults to when Vigil received it.
    #[schemars(extend("format" = "date-time"))]
    pub at: Option<String>,
    #[schemars(length(min = 1, max = 256), pattern(r"\S"))]
    pub model: Option<String>,
    #[schemars(length(min = 1, max = 256), pattern(r"\S"))]
    pub provider: Option<String>,
    #[schemars(range(min = 0, max = 86_400_000))]
    pub latency_ms: f64,
    /// Without input and output tokens the call has no usage (and no cost unless given).
    #[schemars(range(max = 1_000_000_000))]
    pub input_tokens: Option<u64>,
    #[schemars(range(max = 1_000_000_000))]
    pub output_tokens: Option<u64>,
    /// Input tokens read from the provider's prompt cache (part of `input_tokens`).
    #[serde(default)]
    #[schemars(range(max = 1_000_000_000))]
    pub cached_tokens: u64,
    /// Input tokens written to the provider's prompt cache (part of `input_tokens`).
    #[serde(default)]
    #[schemars(range(max = 1_000_000_000))]
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written for the one-hour cache lifetime (priced
    /// apart by providers that have one).
    #[serde(default)]
    #[schemars(range(max = 1_000_000_000))]
    pub cache_write_1h_tokens: u64,
    #[serde(default)]
    #[schemars(range(max = 1_000_000_000))]
    pub reasoning_tokens: u64,
    #[serde(default)]
    #[schemars(range(max = 100_000))]
    pub tool_calls: u32,
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
    pub tool_names: Vec<String>,
    /// Cost in US dollars, if the agent knows it.
    #[schemars(range(min = 0, max = 1_000_000))]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    #[schemars(range(max = 10_000))]
    pub retries: u32,
    /// An error class when the call failed (e.g. `rate_limit`, `timeout`).
    #[schemars(length(min = 1, max = 256), pattern(r"\S"))]
    pub error: Option<String>,
    /// sha256 (hex) of the system prompt.
    #[schemars(pattern(r"^[0-9a-f]{64}$"))]
    pub system_prompt_sha256: Option<String>,
    #[schemars(length(min = 1, max = 256), pattern(r"\S"))]
    pub feature: Option<String>,
    #[schemars(length(min = 1, max = 256), pattern(r"\S"))]
    pub user: Option<String>,
    /// The newest input the call sent (the user's message, tool results), up to 8 KiB:
    /// scanned for prompt injection, never stored.
    #[schemars(length(max = 8192))]
    pub input_text: Option<String>,
}

/// The item with each top-level whole float (`500.0`, as Python's `json.dumps` writes a
/// float) as an integer: a count is a count however a client's numbers are typed. Fractions
/// and negatives stay as they are, for the field's own check to refuse. Only the top level:
/// an item's counts are its fields, and nothing nested is a count.
fn counts_as_integers(item: &Value) -> std::borrow::Cow<'_, Value> {
    let whole = |v: &Value| v.as_f64().filter(|_| v.is_f64()).and_then(whole_u64);
    match item {
        Value::Object(fields) if fields.values().any(|v| whole(v).is_some()) => {
            let mut fields = fields.clone();
            for value in fields.values_mut() {
                if let Some(n) = whole(value) {
                    *value = Value::from(n);
                }
            }
            std::borrow::Cow::Owned(Value::Object(fields))
        }
        _ => std::borrow::Cow::Borrowed(item),
    }
}

/// Turns one item into a vital, or says which field is wrong.
pub fn to_vital(raw: &Value, received: Timestamp) -> Result<Vital, Refused> {
    let item: IngestItem = serde_path_to_error::deserialize(counts_as_integers(raw).as_ref()).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // A missing or unknown field is reported at the item itself; name it.
        let named = message.split('`').nth(1).map(str::to_owned);
        let field = if path == "." { named.unwrap_or_default() } else { path };
        Refused::new(field, message)
    })?;
    let text = |field: &str, value: &str| -> Result<(), Refused> {
        if value.trim().is_empty() || value.len() > FIELD_LEN_MAX {
            return Err(Refused::new(field, format!("must be 1 to {FIELD_LEN_MAX} characters")));
        }
        Ok(())
    };
    text("agent_id", &item.agent_id)?;
    for (field, value) in [
        ("model", &item.model),
        ("provider", &item.provider),
        ("error", &item.error),
        ("feature", &item.feature),
        ("user", &item.user),
    ] {
        if let Some(v) = value {
            text(field, v)?;
        }
    }
    // Only what a float adds is checked here; the bound is `Reported::into_vital`'s, which a
    // latency past it (saturated below) still meets.
    if !item.latency_ms.is_finite() || item.latency_ms < 0.0 {
        return Err(Refused::new("latency_ms", format!("must be between 0 and {} (one day)", LATENCY_US_MAX / 1000)));
    }
    // Every counted field is bounded, so no report can make a sum over stored calls overflow.
    let usage = Usage {
        input_tokens: item.input_tokens.unwrap_or(0),
        output_tokens: item.output_tokens.unwrap_or(0),
        cached_tokens: item.cached_tokens,
        cache_write_tokens: item.cache_write_tokens,
        cache_write_1h_tokens: item.cache_write_1h_tokens,
        reasoning_tokens: item.reasoning_tokens,
        ..Usage::default()
    };
    let at = match &item.at {
        Some(t) => Timestamp::parse_rfc3339(t).map_err(|e| Refused::new("at", e.to_string()))?,
        None => received,
    };
    let cost_nanos = match item.cost_usd.map(cost_nanos_from_usd) {
        Some(None) => return Err(Refused::new("cost_usd", format!("must be between 0 and {COST_USD_PER_CALL_MAX}"))),
        Some(nanos) => nanos,
        None => None,
    };
    let (input, output) = (usage.input_tokens, usage.output_tokens);
    if item.cached_tokens.saturating_add(item.cache_write_tokens) > input {
        let field = if item.cached_tokens > input { "cached_tokens" } else { "cache_write_tokens" };
        return Err(Refused::new(field, "cache reads and writes are parts of input_tokens, together at most that"));
    }
    if item.cache_write_1h_tokens > item.cache_write_tokens {
        return Err(Refused::new("cache_write_1h_tokens", "one-hour cache writes are part of cache_write_tokens"));
    }
    if item.reasoning_tokens > output {
        return Err(Refused::new("reasoning_tokens", "reasoning tokens are part of output_tokens"));
    }
    let counted = item.input_tokens.is_some() || item.output_tokens.is_some();
    let system_prompt_sha256 = item
        .system_prompt_sha256
        .as_deref()
        .map(|h| h.parse::<Sha256Digest>().map_err(|_| Refused::new("system_prompt_sha256", "must be 64 hex digits")))
        .transpose()?;
    if item.tool_names.len() > TOOL_NAMES_MAX || item.tool_names.iter().any(|n| n.is_empty() || n.len() > FIELD_LEN_MAX)
    {
        return Err(Refused::new(
            "tool_names",
            format!("at most {TOOL_NAMES_MAX} names of 1 to {FIELD_LEN_MAX} characters"),
        ));
    }
    if item.input_text.as_ref().is_some_and(|t| t.len() > INPUT_TEXT_MAX) {
        return Err(Refused::new("input_text", format!("must be at most {INPUT_TEXT_MAX} bytes")));
    }
    let newest_input = item.input_text;
    Reported {
        request_id: None,
        provider: item.provider,
        model_served: item.model.clone(),
        model_requested: item.model,
        latency_us: (item.latency_ms * 1000.0).round() as u64,
        usage: counted.then_some(usage),
        tool_calls: item.tool_calls,
        tool_names: item.tool_names,
        cost_nanos,
        retries: item.retries,
        error_class: item.error,
        system_prompt_sha256,
        feature: item.feature,
        user: item.user,
        newest_input,
        ..Reported::new(AgentId::new(item.agent_id), "ingest", "ingest".to_owned(), at)
    }
    .into_vital(received)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn items_are_checked_field_by_field() {
        let now = Timestamp::now();
        let good = json!({ "agent_id": "a1", "latency_ms": 120.5, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.002, "tool_names": ["search"] });
        let v = to_vital(&good, now).expect("valid");
        assert_eq!((v.latency_us, v.cost_nanos, v.tool_calls, v.unpriced), (120_500, Some(2_000_000), 1, false));
        let a_day = to_vital(&json!({ "agent_id": "a1", "latency_ms": 86_400_000 }), now).expect("a day is allowed");
        assert_eq!(a_day.latency_us, LATENCY_US_MAX);
        let cases = [
            (json!({ "latency_ms": 1 }), "agent_id"),
            (json!({ "agent_id": "a", "latency_ms": -1 }), "latency_ms"),
            (json!({ "agent_id": "a", "latency_ms": 86_400_000.5 }), "latency_ms"),
            (json!({ "agent_id": "a", "latency_ms": 1e300 }), "latency_ms"),
            (json!({ "agent_id": "a", "latency_ms": 1, "at": "yesterday" }), "at"),
            (json!({ "agent_id": "a", "latency_ms": 1, "cost_usd": -3 }), "cost_usd"),
            (json!({ "agent_id": "a", "latency_ms": 1, "input_tokens": u64::MAX }), "input_tokens"),
            (
                json!({ "agent_id": "a", "latency_ms": 1, "output_tokens": 5_000_000_000_000_000_000u64 }),
                "output_tokens",
            ),
            (
                json!({ "agent_id": "a", "latency_ms": 1, "input_tokens": 1, "reasoning_tokens": 2_000_000_000u64 }),
                "reasoning_tokens",
            ),
            (json!({ "agent_id": "a", "latency_ms": 1, "tool_calls": 4_000_000_000u32 }), "tool_calls"),
            (json!({ "agent_id": "a", "latency_ms": 1, "retries": 100_000 }), "retries"),
            (json!({ "agent_id": "a", "latency_ms": 1, "input_tokens": "many" }), "input_tokens"),
            (json!({ "agent_id": "a", "latency_ms": 1, "system_prompt_sha256": "abc" }), "system_prompt_sha256"),
            (json!({ "agent_id": "", "latency_ms": 1 }), "agent_id"),
            (json!({ "agent_id": "a", "latency_ms": 1, "surprise": true }), "surprise"),
        ];
        for (raw, field) in cases {
            let refused = to_vital(&raw, now).expect_err("invalid");
            assert_eq!(refused.field, field, "{raw}: {refused}");
        }
    }
}
