//! The gateway end to end: the real binary between a client and the mock provider.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_core::digest::{Sha256Digest, Sha256Hasher};

use crate::mock_upstream::{MockUpstream, USAGE};
use crate::support::{Env, Server, write_file};

/// gpt-4o list price in nano-dollars per token: input, cached input, output.
const GPT_4O: (u64, u64, u64) = (2_500, 1_250, 10_000);
const EXPECTED_COST: u64 = (USAGE.0 - USAGE.2) * GPT_4O.0 + USAGE.2 * GPT_4O.1 + USAGE.1 * GPT_4O.2;

fn gateway_env(upstream: &str) -> Env {
    let env = Env::new();
    let config = format!(
        r#"
[[gateway.providers]]
name = "mock"
kind = "openai"
base_url = "{upstream}"
api_key_env = "MOCK_PROVIDER_KEY"
timeout_ms = 5000
connect_timeout_ms = 500
"#
    );
    write_file(&env.data().join("vigil.toml"), &config);
    let mut env = env;
    env.set("MOCK_PROVIDER_KEY", "sk-provider-secret");
    env
}

fn request(stream: bool, include_usage: bool, model: &str) -> String {
    let mut body = json!({
        "model": model,
        "messages": [
            { "role": "system", "content": "You are terse." },
            { "role": "user", "content": "Say hello" }
        ],
        "tools": [{ "type": "function", "function": { "name": "search", "parameters": { "type": "object" } } }]
    });
    if stream {
        body["stream"] = json!(true);
    }
    if include_usage {
        body["stream_options"] = json!({ "include_usage": true });
    }
    body.to_string()
}

fn call(server: &Server, body: &str, agent: &str) -> reqwest::blocking::Response {
    server
        .client
        .post(format!("{}/v1/chat/completions", server.url))
        .header("content-type", "application/json")
        .header("user-agent", "OpenAI/Python 1.99.0")
        .header("x-agent-id", agent)
        .header("x-vigil-feature", "greeting")
        .body(body.to_owned())
        .send()
        .expect("send")
}

/// Waits for the vitals of `agent` to reach `count` (they are written asynchronously).
fn vitals(server: &Server, agent: &str, count: usize) -> Vec<Value> {
    let since = Instant::now();
    loop {
        let reply = server.get(&format!("/api/v1/vitals?agent_id={agent}"), None);
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let items = reply.body["data"]["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= count || since.elapsed() > Duration::from_secs(5) {
            return items;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn data_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("chunk json"))
        .collect()
}

#[test]
fn whole_and_streamed_calls_are_relayed_and_measured_alike() {
    let upstream = MockUpstream::start();
    let env = gateway_env(&upstream.url);
    let server = env.start();

    let whole = call(&server, &request(false, false, "gpt-4o"), "agent-whole");
    assert_eq!(whole.status().as_u16(), 200);
    let whole: Value = whole.json().expect("json");
    assert_eq!(whole["choices"][0]["message"]["content"], "Hello world");
    let seen = upstream.last();
    assert_eq!(seen.authorization.as_deref(), Some("Bearer sk-provider-secret"), "configured key used upstream");

    let streamed = call(&server, &request(true, false, "gpt-4o"), "agent-stream");
    assert_eq!(streamed.status().as_u16(), 200);
    assert!(streamed.headers()["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
    let text = streamed.text().expect("text");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let events = data_events(&text);
    assert!(
        events.iter().all(|e| e.get("usage").is_none_or(Value::is_null)),
        "usage the client did not ask for is hidden"
    );
    assert!(events.iter().all(|e| !e["choices"].as_array().is_some_and(Vec::is_empty)), "no usage-only chunk");
    let content: String = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Hello world");
    assert_eq!(upstream.last().body["stream_options"]["include_usage"], true, "usage requested upstream");

    let mut system = Sha256Hasher::new();
    system.update(b"You are terse.\0");
    let system: Sha256Digest = system.finish();
    let mut measured = Vec::new();
    for agent in ["agent-whole", "agent-stream"] {
        let items = vitals(&server, agent, 1);
        assert_eq!(items.len(), 1, "{agent}: {items:?}");
        let v = &items[0];
        assert_eq!(v["outcome"], "ok", "{v}");
        assert_eq!(v["provider"], "mock");
        assert_eq!(v["model_requested"], "gpt-4o");
        assert_eq!(v["model_served"], "gpt-4o-2024-08-06");
        assert_eq!(v["agent_type"], "openai-python");
        assert_eq!(v["feature"], "greeting");
        assert_eq!(v["tool_names"], json!(["search", "fetch"]));
        assert_eq!(v["system_prompt_sha256"], system.to_hex());
        assert_eq!(v["unpriced"], false);
        measured.push((v["usage"].clone(), v["cost_nanos"].clone(), v["tool_calls"].clone()));
    }
    assert_eq!(measured[0], measured[1], "streamed and whole calls measure the same tokens and cost");
    assert_eq!(
        measured[0].0,
        json!({ "input_tokens": USAGE.0, "output_tokens": USAGE.1, "cached_tokens": USAGE.2, "reasoning_tokens": 0, "estimated": false })
    );
    assert_eq!(measured[0].1, json!(EXPECTED_COST));
    let streamed_vital = &vitals(&server, "agent-stream", 1)[0];
    assert_eq!(streamed_vital["streamed"], true);
    assert!(
        streamed_vital["ttft_us"].as_u64().is_some_and(|t| t <= streamed_vital["latency_us"].as_u64().unwrap_or(0))
    );
}

#[test]
fn client_requested_stream_usage_is_passed_through() {
    let upstream = MockUpstream::start();
    let env = gateway_env(&upstream.url);
    let server = env.start();
    let text = call(&server, &request(true, true, "gpt-4o"), "agent-usage").text().expect("text");
    let events = data_events(&text);
    let last = events.last().expect("events");
    assert_eq!(last["usage"]["prompt_tokens"], USAGE.0, "{text}");
}

#[test]
fn upstream_errors_are_relayed_and_unreachable_upstreams_answer_502() {
    let upstream = MockUpstream::start();
    let env = gateway_env(&upstream.url);
    let server = env.start();
    let limited = call(&server, &request(false, false, "fail-429"), "agent-429");
    assert_eq!(limited.status().as_u16(), 429);
    let body: Value = limited.json().expect("json");
    assert_eq!(body["error"]["type"], "rate_limit_error", "relayed faithfully");
    let v = &vitals(&server, "agent-429", 1)[0];
    assert_eq!(
        (v["outcome"].as_str(), v["error_class"].as_str(), v["status"].as_u64()),
        (Some("upstream_error"), Some("rate_limit_error"), Some(429))
    );
    drop(server);

    // A provider nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}/v1", closed.local_addr().expect("addr"));
    drop(closed);
    let env = gateway_env(&dead);
    let server = env.start();
    let started = Instant::now();
    let reply = call(&server, &request(false, false, "gpt-4o"), "agent-down");
    assert_eq!(reply.status().as_u16(), 502);
    assert!(started.elapsed() < Duration::from_secs(3), "never a hang");
    let body: Value = reply.json().expect("json");
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    assert!(!body.to_string().contains("sk-provider-secret"));
    let v = &vitals(&server, "agent-down", 1)[0];
    assert_eq!(v["outcome"], "unreachable");
}

#[test]
fn bad_requests_get_openai_shaped_errors() {
    let upstream = MockUpstream::start();
    let env = gateway_env(&upstream.url);
    let server = env.start();
    for (body, status, code) in [
        ("{not json", 400, "invalid_json"),
        (r#"{"messages": []}"#, 400, "invalid_request"),
        (r#"{"model": "gpt-4o", "messages": "hi"}"#, 400, "invalid_request"),
    ] {
        let reply = call(&server, body, "agent-bad");
        assert_eq!(reply.status().as_u16(), status, "{body}");
        let json: Value = reply.json().expect("json");
        assert_eq!(json["error"]["code"], code, "{json}");
        assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(json["error"]["type"].is_string(), "OpenAI's error shape");
    }
    let big = format!(
        r#"{{"model": "gpt-4o", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(33 * 1024 * 1024)
    );
    let reply = call(&server, &big, "agent-bad");
    assert_eq!(reply.status().as_u16(), 413);
}

#[test]
fn broken_and_abandoned_streams_are_recorded() {
    let upstream = MockUpstream::start();
    let env = gateway_env(&upstream.url);
    let server = env.start();

    let text = call(&server, &request(true, false, "broken-stream"), "agent-broken").text().unwrap_or_default();
    assert!(!text.contains("[DONE]"));
    let v = &vitals(&server, "agent-broken", 1)[0];
    assert_eq!(v["outcome"], "interrupted", "{v}");
    assert_eq!(v["usage"]["estimated"], true, "usage estimated and flagged when none arrived");

    // The client reads one chunk of a slow stream and hangs up.
    let mut response = call(&server, &request(true, false, "slow-stream"), "agent-gone");
    let mut first = [0u8; 64];
    let n = response.read(&mut first).expect("read");
    assert!(n > 0);
    drop(response);
    let since = Instant::now();
    let v = loop {
        let items = vitals(&server, "agent-gone", 1);
        if let Some(v) = items.first() {
            break v.clone();
        }
        assert!(since.elapsed() < Duration::from_secs(5), "no vital for the abandoned stream");
    };
    assert_eq!(v["outcome"], "cancelled", "{v}");
}
