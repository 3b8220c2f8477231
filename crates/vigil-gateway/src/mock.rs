//! A mock OpenAI-compatible provider, for tests, demos and benchmarks (`vigil
//! mock-upstream`). Users bring their own provider; this stands in for it on loopback.
//!
//! Behaviour is chosen by the requested model:
//! - any model: a chat completion with two tool calls and fixed usage ([`USAGE`]); streamed
//!   as SSE when asked, with the usage chunk only when `stream_options.include_usage` is set;
//! - `fail-429`: a rate-limit error in OpenAI's shape;
//! - `flaky`: 503 for the first two calls, then a normal answer;
//! - `slow-stream`: a stream that trickles a chunk every 100 ms for ten seconds;
//! - `broken-stream`: a stream that stops mid-way without `[DONE]`.
//!
//! - a request whose `metadata` carries `mock_*` keys (the simulated fleet of `vigil demo`)
//!   is answered as a provider under that load would: `mock_latency_ms` of delay,
//!   `mock_status` as the HTTP status (an error in OpenAI's shape), usage counted from the
//!   prompt's length (about four characters a token) and `mock_output_tokens`, and
//!   `mock_tool_calls` calls of `mock_tool` when the request offers tools.
//!
//! `/v1/messages` answers in Anthropic's shape (text plus one `search` tool use; usage 10 in,
//! 4 of them cache reads on top, 7 out), streamed as typed events when asked.
//! `/v1/responses` answers in the Responses API's shape (text plus one `search` function
//! call, the chat usage above), streamed as typed events ending at `response.completed`
//! with no `[DONE]`.
//! `/v1/embeddings` answers a three-number embedding with [`EMBEDDING_TOKENS`] of usage and
//! `/v1/models` lists two models.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Usage of every mock chat completion: (prompt, completion, cached prompt) tokens.
pub const USAGE: (u64, u64, u64) = (12, 7, 4);
/// Prompt tokens of every mock embedding.
pub const EMBEDDING_TOKENS: u64 = 8;

/// A request the mock received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub body: Value,
    pub authorization: Option<String>,
}

/// Shared state: what was received (when recording) and the simulated provider latency.
#[derive(Clone, Debug, Default)]
pub struct MockState {
    /// `None` when not recording (benchmarks: nothing grows without bound).
    pub seen: Option<Arc<Mutex<Vec<Seen>>>>,
    /// Added before every answer, to stand in for a real provider's latency.
    pub delay: Duration,
    flaky_calls: Arc<AtomicU64>,
}

impl MockState {
    pub fn recording() -> Self {
        MockState { seen: Some(Arc::new(Mutex::new(Vec::new()))), ..MockState::default() }
    }

    pub fn with_delay(delay: Duration) -> Self {
        MockState { delay, ..MockState::default() }
    }

    fn record(&self, headers: &HeaderMap, body: &Value) {
        if let Some(seen) = &self.seen {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Seen { body: body.clone(), authorization });
        }
    }
}

/// The mock's routes, under `/v1`.
pub fn router(state: MockState) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(chat))
        .route("/v1/embeddings", axum::routing::post(embeddings))
        .route("/v1/messages", axum::routing::post(messages))
        .route("/v1/responses", axum::routing::post(responses))
        .route("/v1/models", axum::routing::get(models))
        .with_state(state)
}

fn usage() -> Value {
    json!({ "prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.0 + USAGE.1,
            "prompt_tokens_details": { "cached_tokens": USAGE.2 } })
}

fn served(model: &str) -> String {
    format!("{model}-2024-08-06")
}

fn completion(model: &str) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000, "model": served(model),
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "Hello world", "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "search", "arguments": "{\"q\":\"x\"}" } },
                { "id": "call_2", "type": "function", "function": { "name": "fetch", "arguments": "{}" } }
            ]},
            "finish_reason": "tool_calls"
        }],
        "usage": usage()
    })
}

fn chunks(model: &str, include_usage: bool) -> Vec<Value> {
    let base = |choices: Value| {
        let mut c = json!({ "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
                            "model": served(model), "choices": choices });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut out = vec![
        base(json!([{ "index": 0, "delta": { "role": "assistant", "content": "" } }])),
        base(json!([{ "index": 0, "delta": { "content": "Hello" } }])),
        base(json!([{ "index": 0, "delta": { "content": " world" } }])),
        base(json!([{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "id": "call_1", "type": "function",
            "function": { "name": "search", "arguments": "" } }] } }])),
        base(
            json!([{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "function": { "arguments": "{\"q\":\"x\"}" } }] } }]),
        ),
        base(json!([{ "index": 0, "delta": { "tool_calls": [{ "index": 1, "id": "call_2", "type": "function",
            "function": { "name": "fetch", "arguments": "{}" } }] } }])),
        base(json!([{ "index": 0, "delta": {}, "finish_reason": "tool_calls" }])),
    ];
    if include_usage {
        let mut last = base(json!([]));
        last["usage"] = usage();
        out.push(last);
    }
    out
}

fn sse(events: &[Value], done: bool) -> String {
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    text
}

fn sse_response(body: Body) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (status, Json(json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })))
        .into_response()
}

/// A simulated provider's answer to a request carrying `metadata.mock_*` directives.
async fn simulated(body: &Value, metadata: &serde_json::Map<String, Value>) -> Response {
    let number = |key: &str| metadata.get(key).and_then(|v| v.as_str()?.parse::<u64>().ok().or_else(|| v.as_u64()));
    if let Some(ms) = number("mock_latency_ms") {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
    if let Some(status) = number("mock_status").and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        && !status.is_success()
    {
        return error(status, "the simulated provider is failing", "server_error", None);
    }
    let model = body["model"].as_str().unwrap_or("");
    let prompt_chars: usize = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .map(|c| c.chars().count())
        .sum();
    let prompt_tokens = prompt_chars as u64 / 4 + 8;
    // A provider never writes past the request's output cap.
    let cap = ["max_completion_tokens", "max_tokens"].iter().find_map(|f| body[*f].as_u64()).unwrap_or(u64::MAX);
    let completion_tokens = number("mock_output_tokens").unwrap_or(200).min(cap);
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens });
    if body["stream"].as_bool() == Some(true) {
        let chunks = number("mock_chunks").unwrap_or(5).clamp(1, 1_000);
        let pause = Duration::from_millis(number("mock_chunk_ms").unwrap_or(0).min(10_000));
        let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
        return sse_response(Body::from_stream(simulated_stream(
            served(model),
            chunks,
            pause,
            include_usage.then_some(usage),
        )));
    }
    let offers_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let tool = metadata.get("mock_tool").and_then(Value::as_str).unwrap_or("search");
    let calls = if offers_tools { number("mock_tool_calls").unwrap_or(0).min(64) } else { 0 };
    let tool_calls: Vec<Value> = (0..calls)
        .map(|i| json!({ "id": format!("call_{i}"), "type": "function", "function": { "name": tool, "arguments": "{}" } }))
        .collect();
    let mut message = json!({ "role": "assistant", "content": "Done." });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Json(json!({
        "id": "chatcmpl-sim", "object": "chat.completion", "created": 1_700_000_000, "model": served(model),
        "choices": [{ "index": 0, "message": message, "finish_reason": if calls > 0 { "tool_calls" } else { "stop" } }],
        "usage": usage
    }))
    .into_response()
}

/// A simulated streamed answer: `chunks` content chunks `pause` apart, then the finish, the
/// usage chunk when asked for, and `[DONE]`.
fn simulated_stream(
    model: String,
    chunks: u64,
    pause: Duration,
    usage: Option<Value>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(0u64, move |i| {
        let (model, usage) = (model.clone(), usage.clone());
        async move {
            let chunk = |choices: Value| {
                json!({ "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1_700_000_000,
                        "model": model, "choices": choices })
            };
            let event = if i < chunks {
                if i > 0 && !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                chunk(json!([{ "index": 0, "delta": { "content": "word " } }]))
            } else if i == chunks {
                chunk(json!([{ "index": 0, "delta": {}, "finish_reason": "stop" }]))
            } else if i == chunks + 1
                && let Some(usage) = usage
            {
                let mut last = chunk(json!([]));
                last["usage"] = usage;
                last
            } else if i <= chunks + 2 {
                return Some((Ok("data: [DONE]\n\n".to_owned()), chunks + 3));
            } else {
                return None;
            };
            Some((Ok(format!("data: {event}\n\n")), i + 1))
        }
    })
}

async fn chat(State(state): State<MockState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    state.record(&headers, &body);
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    if let Some(metadata) =
        body.get("metadata").and_then(Value::as_object).filter(|m| m.keys().any(|k| k.starts_with("mock_")))
    {
        return simulated(&body, metadata).await;
    }
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    match model.as_str() {
        "flaky" if state.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 => {
            error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "server_error", None)
        }
        "fail-429" => {
            error(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached", "rate_limit_error", Some("rate_limit_exceeded"))
        }
        "slow-stream" => {
            let served_model = served(&model);
            let stream = futures_util::stream::unfold(0u32, move |i| {
                let served_model = served_model.clone();
                async move {
                    if i >= 100 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let chunk =
                        json!({ "model": served_model, "choices": [{ "index": 0, "delta": { "content": "." } }] });
                    Some((Ok::<_, std::io::Error>(format!("data: {chunk}\n\n")), i + 1))
                }
            });
            sse_response(Body::from_stream(stream))
        }
        "broken-stream" => sse_response(Body::from(sse(&chunks(&model, include_usage)[..3], false))),
        _ if stream => sse_response(Body::from(sse(&chunks(&model, include_usage), true))),
        _ => Json(completion(&model)).into_response(),
    }
}

async fn embeddings(State(state): State<MockState>, headers: HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    state.record(&headers, &body);
    Json(json!({
        "object": "list",
        "data": [{ "object": "embedding", "index": 0, "embedding": [0.25, -0.5, 1.0] }],
        "model": body["model"],
        "usage": { "prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS }
    }))
}

async fn messages(State(state): State<MockState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    state.record(&headers, &body);
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let usage = json!({ "input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0, "output_tokens": 7 });
    if !body["stream"].as_bool().unwrap_or(false) {
        return Json(json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": served(&model),
            "content": [
                { "type": "text", "text": "Hello world" },
                { "type": "tool_use", "id": "toolu_1", "name": "search", "input": { "q": "x" } }
            ],
            "stop_reason": "tool_use", "stop_sequence": null, "usage": usage
        }))
        .into_response();
    }
    let events = [
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "msg_mock", "type": "message", "role": "assistant",
            "model": served(&model), "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0, "output_tokens": 1 } } }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Hello" } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": " world" } }),
        ),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 1, "content_block": { "type": "tool_use", "id": "toolu_1", "name": "search", "input": {} } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 1, "delta": { "type": "input_json_delta", "partial_json": "{\"q\": \"x\"}" } }),
        ),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 1 })),
        (
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use", "stop_sequence": null }, "usage": { "output_tokens": 7 } }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ];
    let text: String = events.iter().map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")).collect();
    sse_response(Body::from(text))
}

async fn responses(State(state): State<MockState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    state.record(&headers, &body);
    let model = served(body["model"].as_str().unwrap_or(""));
    let usage = json!({ "input_tokens": USAGE.0, "input_tokens_details": { "cached_tokens": USAGE.2 },
                        "output_tokens": USAGE.1, "output_tokens_details": { "reasoning_tokens": 0 },
                        "total_tokens": USAGE.0 + USAGE.1 });
    let message = json!({ "id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                          "content": [{ "type": "output_text", "text": "Hello world", "annotations": [] }] });
    let call = json!({ "id": "fc_1", "type": "function_call", "status": "completed", "name": "search",
                       "arguments": "{\"q\":\"x\"}", "call_id": "call_1" });
    let response = |status: &str, output: Value, usage: Value| {
        json!({ "id": "resp_mock", "object": "response", "created_at": 1_700_000_000, "status": status,
                "model": model, "output": output, "usage": usage, "parallel_tool_calls": true, "tools": [],
                "tool_choice": "auto", "text": { "format": { "type": "text" } } })
    };
    if !body["stream"].as_bool().unwrap_or(false) {
        return Json(response("completed", json!([message, call]), usage)).into_response();
    }
    let events = [
        json!({ "type": "response.created", "sequence_number": 0, "response": response("in_progress", json!([]), Value::Null) }),
        json!({ "type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
                "item": { "id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress", "content": [] } }),
        json!({ "type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hello", "logprobs": [] }),
        json!({ "type": "response.output_text.delta", "sequence_number": 3, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": " world", "logprobs": [] }),
        json!({ "type": "response.output_item.done", "sequence_number": 4, "output_index": 0, "item": message }),
        json!({ "type": "response.output_item.added", "sequence_number": 5, "output_index": 1, "item": call }),
        json!({ "type": "response.output_item.done", "sequence_number": 6, "output_index": 1, "item": call }),
        json!({ "type": "response.completed", "sequence_number": 7, "response": response("completed", json!([message, call]), usage) }),
    ];
    let text: String =
        events.iter().map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or(""))).collect();
    sse_response(Body::from(text))
}

async fn models() -> Json<Value> {
    Json(json!({ "object": "list", "data": [
        { "id": "gpt-4o", "object": "model", "created": 1_700_000_000, "owned_by": "mock" },
        { "id": "text-embedding-3-small", "object": "model", "created": 1_700_000_000, "owned_by": "mock" }
    ]}))
}
