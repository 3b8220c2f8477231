//! A mock OpenAI-compatible provider, in-process, for gateway tests. Behaviour is chosen by
//! the requested model:
//!
//! - any model: a chat completion with two tool calls and fixed usage (12 in, 4 of them
//!   cached, 7 out); streamed as SSE when asked, with the usage chunk only when
//!   `stream_options.include_usage` is set;
//! - `fail-429`: a rate-limit error in OpenAI's shape;
//! - `slow-stream`: a stream that trickles a chunk every 100 ms for ten seconds;
//! - `broken-stream`: a stream that stops mid-way without `[DONE]`;
//! - `flaky`: 503 for the first two calls, then a normal answer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the mock saw, for assertions.
#[derive(Clone, Debug)]
pub struct Seen {
    pub body: Value,
    pub authorization: Option<String>,
}

pub struct MockUpstream {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

pub const USAGE: (u64, u64, u64) = (12, 7, 4);

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

fn sse(events: Vec<Value>, done: bool) -> String {
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    text
}

async fn chat(State(seen): State<Arc<Mutex<Vec<Seen>>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().expect("lock").push(Seen { body: body.clone(), authorization });
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let sse_response =
        |body: Body| Response::builder().header("content-type", "text/event-stream").body(body).expect("response");
    match model.as_str() {
        // Fails twice with 503, then answers; counts its own calls.
        "flaky" if seen.lock().expect("lock").iter().filter(|s| s.body["model"] == "flaky").count() <= 2 => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": { "message": "overloaded", "type": "server_error", "param": null, "code": null } })),
        )
            .into_response(),
        "fail-429" => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": { "message": "Rate limit reached", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded" } })),
        )
            .into_response(),
        "slow-stream" => {
            let stream = futures_stream(model.clone());
            sse_response(Body::from_stream(stream))
        }
        "broken-stream" => {
            let events = chunks(&model, include_usage);
            sse_response(Body::from(sse(events[..3].to_vec(), false)))
        }
        _ if stream => sse_response(Body::from(sse(chunks(&model, include_usage), true))),
        _ => Json(completion(&model)).into_response(),
    }
}

fn futures_stream(model: String) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send {
    futures_util::stream::unfold(0u32, move |i| {
        let model = model.clone();
        async move {
            if i >= 100 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let chunk = json!({ "model": served(&model), "choices": [{ "index": 0, "delta": { "content": "." } }] });
            Some((Ok::<_, std::io::Error>(format!("data: {chunk}\n\n")), i + 1))
        }
    })
}

async fn embeddings(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().expect("lock").push(Seen { body: body.clone(), authorization });
    Json(json!({
        "object": "list",
        "data": [{ "object": "embedding", "index": 0, "embedding": [0.25, -0.5, 1.0] }],
        "model": body["model"],
        "usage": { "prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS }
    }))
}

async fn models() -> Json<Value> {
    Json(json!({ "object": "list", "data": [
        { "id": "gpt-4o", "object": "model", "created": 1_700_000_000, "owned_by": "mock" },
        { "id": "text-embedding-3-small", "object": "model", "created": 1_700_000_000, "owned_by": "mock" }
    ]}))
}

pub const EMBEDDING_TOKENS: u64 = 8;

impl MockUpstream {
    pub fn start() -> MockUpstream {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(chat))
            .route("/v1/embeddings", axum::routing::post(embeddings))
            .route("/v1/models", axum::routing::get(models))
            .with_state(seen.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockUpstream { url: format!("http://{addr}/v1"), seen, _runtime: runtime }
    }

    pub fn last(&self) -> Seen {
        self.seen.lock().expect("lock").last().cloned().expect("a request reached the mock")
    }
}
