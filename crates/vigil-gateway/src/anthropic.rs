//! What Vigil reads from Anthropic Messages traffic (`/v1/messages`): facts about the
//! request, and usage, model and tool calls from the answer, whole or streamed as typed
//! events. Pure functions over JSON values, producing the same [`RequestFacts`] and
//! [`Answer`] as the OpenAI reader so everything downstream is shared.
//!
//! Anthropic counts `input_tokens` without the prompt-cache reads and writes; Vigil's
//! `input_tokens` is the whole prompt, so those are added back (`cached_tokens` is the
//! cache reads, `cache_write_tokens` the writes, priced apart: writes cost more than
//! plain input, and those for the one-hour cache more again).

use serde_json::Value;
use vigil_core::vitals::Usage;

use crate::openai::{
    Answer, RequestBody, RequestError, RequestFacts, object_model_messages, system_prompt_hash, text_of,
};

pub fn request_facts(body: &Value) -> Result<RequestFacts, RequestError> {
    let RequestBody { object, model, messages } = object_model_messages(body)?;
    let system = object.get("system").map(text_of).filter(|s| !s.is_empty());
    let prompt_chars = messages.iter().map(|m| m.get("content").map(text_of).unwrap_or_default().chars().count()).sum();
    Ok(RequestFacts {
        model: model.to_owned(),
        stream: object.get("stream").and_then(Value::as_bool).unwrap_or(false),
        // Anthropic streams always carry usage.
        client_wants_stream_usage: true,
        system_prompt_sha256: system_prompt_hash(system.as_deref()),
        prompt_chars,
        newest_input: crate::openai::newest_turn(messages.iter()),
    })
}

/// An Anthropic `usage` object as [`Usage`], or `None` if it is not an object.
fn usage_of(usage: &Value) -> Option<Usage> {
    usage.as_object()?;
    let mut out = Usage::default();
    add_input_counts(&mut out, usage);
    out.output_tokens = usage.get("output_tokens").and_then(Value::as_u64).unwrap_or(0);
    Some(out)
}

/// Sets the input side of `usage` from an Anthropic `usage` object, count by count: a
/// `message_delta` may repeat some of the (cumulative) counts `message_start` gave, and
/// what it leaves out stands.
fn add_input_counts(usage: &mut Usage, from: &Value) {
    let count = |pointer: &str| from.pointer(pointer).and_then(Value::as_u64);
    let plain = count("/input_tokens")
        .unwrap_or_else(|| usage.input_tokens.saturating_sub(usage.cached_tokens + usage.cache_write_tokens));
    let read = count("/cache_read_input_tokens").unwrap_or(usage.cached_tokens);
    let written = count("/cache_creation_input_tokens").unwrap_or(usage.cache_write_tokens);
    // The split by lifetime, when given; a write never split is a five-minute write.
    let written_1h = count("/cache_creation/ephemeral_1h_input_tokens").unwrap_or(usage.cache_write_1h_tokens);
    usage.input_tokens = plain.saturating_add(read).saturating_add(written);
    usage.cached_tokens = read;
    usage.cache_write_tokens = written;
    usage.cache_write_1h_tokens = written_1h.min(written);
}

/// Reads a complete message.
pub fn answer_from_message(body: &Value) -> Answer {
    let mut answer = Answer {
        model_served: body.get("model").and_then(Value::as_str).map(str::to_owned),
        usage: body.get("usage").and_then(usage_of),
        finished: true,
        ..Answer::default()
    };
    for (i, block) in body.get("content").and_then(Value::as_array).into_iter().flatten().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                answer.output_chars += block.get("text").and_then(Value::as_str).map_or(0, |t| t.chars().count())
            }
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).map(str::to_owned);
                answer.tool_calls.insert((0, i as u64), name);
            }
            _ => {}
        }
    }
    answer
}

/// Reads one streamed event (its `data` JSON, whose `type` names the event).
pub fn add_event(answer: &mut Answer, event: &Value) {
    match event.get("type").and_then(Value::as_str) {
        Some("message_start") => {
            let message = event.get("message");
            if answer.model_served.is_none() {
                answer.model_served = message.and_then(|m| m.get("model")).and_then(Value::as_str).map(str::to_owned);
            }
            if let Some(usage) = message.and_then(|m| m.get("usage")).and_then(usage_of) {
                answer.usage = Some(usage);
            }
        }
        Some("content_block_start") => {
            let block = event.get("content_block");
            if block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("tool_use") {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let name = block.and_then(|b| b.get("name")).and_then(Value::as_str).map(str::to_owned);
                answer.tool_calls.insert((0, index), name);
            }
        }
        Some("content_block_delta") => {
            if let Some(text) = event.pointer("/delta/text").and_then(Value::as_str) {
                answer.output_chars += text.chars().count();
            }
        }
        Some("message_delta") => {
            // Counts here are cumulative. Output always comes; input came with
            // message_start, and is repeated here by newer API versions.
            if let Some(delta) = event.get("usage").filter(|u| u.is_object()) {
                let usage = answer.usage.get_or_insert_with(Usage::default);
                add_input_counts(usage, delta);
                if let Some(output) = delta.get("output_tokens").and_then(Value::as_u64) {
                    usage.output_tokens = output;
                }
            }
        }
        Some("message_stop") => answer.finished = true,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_and_streamed_agree() {
        let whole = json!({
            "type": "message", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
            "content": [
                {"type": "text", "text": "Hello"},
                {"type": "tool_use", "id": "t1", "name": "search", "input": {}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0, "output_tokens": 7}
        });
        let events = [
            json!({"type": "message_start", "message": {"model": "claude-sonnet-4-5-20250929", "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "search", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}}),
            json!({"type": "message_stop"}),
        ];
        let mut streamed = Answer::default();
        for event in &events {
            add_event(&mut streamed, event);
        }
        let whole = answer_from_message(&whole);
        assert_eq!(streamed.usage, whole.usage);
        assert_eq!(whole.usage.map(|u| (u.input_tokens, u.cached_tokens, u.output_tokens)), Some((14, 4, 7)));
        assert_eq!(streamed.tool_names(), whole.tool_names());
        assert_eq!(streamed.tool_names(), ["search"]);
        assert!(streamed.finished && whole.finished);
    }

    #[test]
    fn cache_writes_are_counted_apart_whole_and_streamed() {
        let usage = json!({"input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 6,
            "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 4}, "output_tokens": 7});
        let whole =
            answer_from_message(&json!({"type": "message", "model": "claude-opus-4-1", "content": [], "usage": usage}));
        let expected = Usage {
            input_tokens: 20,
            cached_tokens: 4,
            cache_write_tokens: 6,
            cache_write_1h_tokens: 4,
            output_tokens: 7,
            ..Usage::default()
        };
        assert_eq!(whole.usage, Some(expected));
        // Newer API versions repeat the cumulative input counts in message_delta.
        let mut streamed = Answer::default();
        let start = json!({"input_tokens": 10, "output_tokens": 1});
        add_event(
            &mut streamed,
            &json!({"type": "message_start", "message": {"model": "claude-opus-4-1", "usage": start}}),
        );
        add_event(&mut streamed, &json!({"type": "message_delta", "delta": {}, "usage": usage}));
        assert_eq!(streamed.usage, Some(expected));
        // A delta with output only keeps what message_start said about input, and one
        // repeating some counts (without the split by lifetime) keeps the rest.
        let mut streamed = Answer::default();
        add_event(&mut streamed, &json!({"type": "message_start", "message": {"usage": usage}}));
        add_event(&mut streamed, &json!({"type": "message_delta", "usage": {"output_tokens": 9}}));
        assert_eq!(streamed.usage, Some(Usage { output_tokens: 9, ..expected }));
        let partial = json!({"input_tokens": 10, "cache_creation_input_tokens": 6, "output_tokens": 9});
        add_event(&mut streamed, &json!({"type": "message_delta", "usage": partial}));
        assert_eq!(streamed.usage, Some(Usage { output_tokens: 9, ..expected }));
    }

    #[test]
    fn system_prompt_and_errors() {
        let facts = request_facts(&json!({"model": "claude-haiku-4-5", "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]})).expect("valid");
        assert!(facts.system_prompt_sha256.is_some());
        assert_eq!(facts.prompt_chars, 2);
        assert_eq!(request_facts(&json!({"messages": []})), Err(RequestError::MissingModel));
    }
}
