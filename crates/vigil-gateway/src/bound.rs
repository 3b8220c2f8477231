//! The most input tokens a request can be billed for, without a tokenizer.
//!
//! Byte-level BPE tokenizers (OpenAI's, Anthropic's, Llama's) turn every token into at
//! least one byte of text, so a text of N UTF-8 bytes is at most N tokens. What a model
//! reads of a request is its prompt-bearing fields (messages or input, system prompt and
//! instructions, tool definitions and choices, the answer format), written out with a few
//! framing tokens per message; an image is billed by its size, not its bytes, so each counts
//! as [`IMAGE_TOKENS_MAX`]. The ceiling is therefore the byte length of every key and
//! string in those fields, plus [`FRAMING_TOKENS`] per object and array element, plus a
//! constant: never below what a provider bills for text, and for plain chat about four
//! times it. Other fields (`metadata`, `user`, sampling settings) are not read by the model.
//!
//! [`with_member`] writes an output cap into a request that names none, in the client's own
//! bytes.

use bytes::Bytes;
use serde_json::Value;

/// The request fields a model reads.
const PROMPT_FIELDS: [&str; 9] =
    ["messages", "input", "instructions", "system", "tools", "tool_choice", "functions", "response_format", "text"];
/// Tokens an image may cost, at most (a high-detail image of the largest size the
/// providers accept costs under 2,000; Anthropic's largest about 1,600).
pub const IMAGE_TOKENS_MAX: u64 = 2_000;
/// Tokens of framing per object or array element (role markers, separators).
pub const FRAMING_TOKENS: u64 = 4;
/// Tokens of framing per request (the reply's priming).
const REQUEST_TOKENS: u64 = 16;

/// The most input tokens `request` can be billed for.
pub fn input_token_ceiling(request: &Value) -> u64 {
    let Some(object) = request.as_object() else { return REQUEST_TOKENS };
    PROMPT_FIELDS
        .iter()
        .filter_map(|field| object.get(*field))
        .map(ceiling_of)
        .fold(REQUEST_TOKENS, u64::saturating_add)
}

fn ceiling_of(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.len() as u64,
        Value::Array(items) => {
            items.iter().map(|v| ceiling_of(v).saturating_add(FRAMING_TOKENS)).fold(0, u64::saturating_add)
        }
        Value::Object(fields) => {
            let image =
                matches!(fields.get("type").and_then(Value::as_str), Some("image_url" | "image" | "input_image"));
            let text: u64 = fields
                .iter()
                .map(|(key, v)| (key.len() as u64).saturating_add(ceiling_of(v)))
                .fold(FRAMING_TOKENS, u64::saturating_add);
            if image { text.saturating_add(IMAGE_TOKENS_MAX) } else { text }
        }
        // A number or a literal is a few characters of text at most.
        Value::Number(n) => n.to_string().len() as u64,
        Value::Bool(_) | Value::Null => 5,
    }
}

/// `body` (a JSON object) with `"name": value` added as its last member, or `None` when it
/// does not end as an object does.
pub fn with_member(body: &[u8], name: &str, value: u64) -> Option<Bytes> {
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if body[end] != b'}' {
        return None;
    }
    let before = body[..end].iter().rposition(|b| !b.is_ascii_whitespace())?;
    let separator = if body[before] == b'{' { "" } else { "," };
    let mut out = Vec::with_capacity(body.len() + name.len() + 24);
    out.extend_from_slice(&body[..end]);
    out.extend_from_slice(format!("{separator}\"{name}\":{value}").as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn only_what_the_model_reads_counts() {
        let small = json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "hi" }] });
        let padded = json!({
            "model": "gpt-4o", "messages": [{ "role": "user", "content": "hi" }],
            "metadata": { "note": "x".repeat(10_000) }, "temperature": 0.2, "user": "someone"
        });
        assert_eq!(input_token_ceiling(&small), input_token_ceiling(&padded));
        // "role" + "user" + "content" + "hi" and framing.
        assert_eq!(input_token_ceiling(&small), 16 + 4 + 4 + 4 + 4 + 7 + 2);
    }

    #[test]
    fn an_image_costs_its_ceiling_whatever_its_url() {
        let image = json!({ "messages": [{ "role": "user", "content": [
            { "type": "image_url", "image_url": { "url": "https://example.com/a.png" } }
        ] }] });
        assert!(input_token_ceiling(&image) > IMAGE_TOKENS_MAX);
    }

    #[test]
    fn a_member_is_written_into_the_clients_own_bytes() {
        let added = |body: &str| {
            with_member(body.as_bytes(), "max_tokens", 50).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        assert_eq!(added(r#"{"model":"m"}"#).as_deref(), Some(r#"{"model":"m","max_tokens":50}"#));
        assert_eq!(added("{ \"a\": [1, {}] }\n").as_deref(), Some("{ \"a\": [1, {}] ,\"max_tokens\":50}\n"));
        assert_eq!(added("{}").as_deref(), Some(r#"{"max_tokens":50}"#));
        assert_eq!(added("[1]"), None);
        for body in [r#"{"model":"m"}"#, "{ \"a\": [1, {}] }\n", "{ }"] {
            let written = added(body).expect("an object");
            let parsed: Value = serde_json::from_str(&written).expect("still JSON");
            assert_eq!(parsed["max_tokens"], 50, "{written}");
        }
    }

    proptest! {
        /// Never below the byte length of the message texts: a byte-level tokenizer's
        /// most tokens for them.
        #[test]
        fn never_below_the_bytes_of_the_texts(texts in proptest::collection::vec("\\PC{0,64}", 0..8), tools in "\\PC{0,64}") {
            let messages: Vec<Value> = texts.iter().map(|t| json!({ "role": "user", "content": t })).collect();
            let request = json!({ "messages": messages, "tools": [{ "type": "function", "function": { "name": tools } }] });
            let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum::<u64>() + tools.len() as u64;
            prop_assert!(input_token_ceiling(&request) >= bytes + texts.len() as u64 * FRAMING_TOKENS);
        }
    }
}
