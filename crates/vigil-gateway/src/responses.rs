//! What Vigil reads from OpenAI Responses API traffic (`/v1/responses`): request facts,
//! and usage, model and tool calls from the answer, whole or streamed as typed events
//! (`response.created`, `response.output_text.delta`, `response.output_item.added`,
//! `response.completed`, ...). Such streams may end without `[DONE]`: the terminal event
//! (`response.completed`, `.failed` or `.incomplete`) is what marks the answer finished.

use serde_json::Value;
use vigil_core::vitals::Usage;

use crate::openai::{Answer, RequestBody, RequestError, RequestFacts, object_model_messages, system_prompt_hash};

fn text_of(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item.get("content") {
                Some(content) => text_of(content),
                None => item.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub fn request_facts(body: &Value) -> Result<RequestFacts, RequestError> {
    let RequestBody { object, model, .. } = object_model_messages(body)?;
    let instructions = object.get("instructions").and_then(Value::as_str).filter(|s| !s.is_empty());
    let system_prompt_sha256 = system_prompt_hash(instructions);
    Ok(RequestFacts {
        model: model.to_owned(),
        stream: object.get("stream").and_then(Value::as_bool).unwrap_or(false),
        // The Responses API reports usage on its terminal event in every stream.
        client_wants_stream_usage: true,
        system_prompt_sha256,
        prompt_chars: object.get("input").map(text_of).unwrap_or_default().chars().count(),
        newest_input: match object.get("input") {
            Some(Value::Array(items)) => crate::openai::newest_turn(items.iter()),
            Some(other) => {
                let mut text = text_of(other);
                let mut end = text.len().min(crate::openai::NEWEST_INPUT_MAX);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text
            }
            None => String::new(),
        },
    })
}

fn usage_of(usage: &Value) -> Option<Usage> {
    usage.as_object()?;
    let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input_tokens: count("/input_tokens"),
        output_tokens: count("/output_tokens"),
        cached_tokens: count("/input_tokens_details/cached_tokens"),
        reasoning_tokens: count("/output_tokens_details/reasoning_tokens"),
        ..Usage::default()
    })
}

fn read_output(answer: &mut Answer, output: &Value) {
    for (i, item) in output.as_array().into_iter().flatten().enumerate() {
        match item.get("type").and_then(Value::as_str) {
            Some("function_call") => {
                let name = item.get("name").and_then(Value::as_str).map(str::to_owned);
                answer.tool_calls.insert((0, i as u64), name);
            }
            Some("message") => {
                for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
                    answer.output_chars += part.get("text").and_then(Value::as_str).map_or(0, |t| t.chars().count());
                }
            }
            _ => {}
        }
    }
}

/// Reads a complete response object.
pub fn answer_from_response(body: &Value) -> Answer {
    let mut answer = Answer {
        model_served: body.get("model").and_then(Value::as_str).map(str::to_owned),
        usage: body.get("usage").and_then(usage_of),
        finished: true,
        ..Answer::default()
    };
    if let Some(output) = body.get("output") {
        read_output(&mut answer, output);
    }
    answer
}

/// Reads one streamed event.
pub fn add_event(answer: &mut Answer, event: &Value) {
    match event.get("type").and_then(Value::as_str) {
        Some("response.created" | "response.in_progress") if answer.model_served.is_none() => {
            answer.model_served = event.pointer("/response/model").and_then(Value::as_str).map(str::to_owned);
        }
        Some("response.output_text.delta") => {
            answer.output_chars += event.get("delta").and_then(Value::as_str).map_or(0, |t| t.chars().count());
        }
        Some("response.output_item.added") => {
            let item = event.get("item");
            if item.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("function_call") {
                let index = event.get("output_index").and_then(Value::as_u64).unwrap_or(0);
                let name = item.and_then(|i| i.get("name")).and_then(Value::as_str).map(str::to_owned);
                answer.tool_calls.insert((0, index), name);
            }
        }
        Some("response.completed" | "response.failed" | "response.incomplete") => {
            let response = event.get("response");
            if let Some(model) = response.and_then(|r| r.get("model")).and_then(Value::as_str) {
                answer.model_served = Some(model.to_owned());
            }
            if let Some(usage) = response.and_then(|r| r.get("usage")).and_then(usage_of) {
                answer.usage = Some(usage);
            }
            answer.finished = true;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_and_streamed_agree() {
        let usage = json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}});
        let output = json!([
            {"type": "message", "content": [{"type": "output_text", "text": "Hello world"}]},
            {"type": "function_call", "name": "search", "arguments": "{}", "call_id": "c1"}
        ]);
        let whole = answer_from_response(&json!({"model": "gpt-4o-2024-08-06", "output": output, "usage": usage}));
        let mut streamed = Answer::default();
        for event in [
            json!({"type": "response.created", "response": {"model": "gpt-4o-2024-08-06"}}),
            json!({"type": "response.output_text.delta", "output_index": 0, "delta": "Hello"}),
            json!({"type": "response.output_text.delta", "output_index": 0, "delta": " world"}),
            json!({"type": "response.output_item.added", "output_index": 1, "item": {"type": "function_call", "name": "search"}}),
            json!({"type": "response.completed", "response": {"model": "gpt-4o-2024-08-06", "usage": usage}}),
        ] {
            add_event(&mut streamed, &event);
        }
        assert_eq!(streamed.usage, whole.usage);
        assert_eq!(
            whole.usage.map(|u| (u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens)),
            Some((12, 4, 7, 3))
        );
        assert_eq!(streamed.tool_names(), whole.tool_names());
        assert_eq!(streamed.output_chars, whole.output_chars);
        assert!(streamed.finished, "the terminal event finishes the answer, no [DONE] needed");
    }

    #[test]
    fn instructions_are_the_system_prompt() {
        let facts =
            request_facts(&json!({"model": "gpt-4o", "instructions": "Be brief.", "input": "Hi"})).expect("valid");
        assert!(facts.system_prompt_sha256.is_some());
        assert_eq!(facts.prompt_chars, 2);
    }
}
