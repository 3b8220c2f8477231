//! The OTLP/HTTP receiver: the official OpenTelemetry Python SDK exporting GenAI spans
//! (protobuf, gzip, an API key), OTLP JSON with a partial success, and the refusals.

use std::io::Write;

use serde_json::{Value, json};

use crate::support::Env;

fn python() -> String {
    let python = std::env::var("VIGIL_TEST_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/py-venv/bin/python").to_owned());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{python} cannot import the OpenTelemetry SDK: run ./scripts/test.sh, which installs it");
    python
}

fn vitals(server: &crate::support::Server, agent: &str) -> Vec<Value> {
    let reply = server.get(&format!("/api/v1/vitals?agent_id={agent}&limit=100"), None);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["data"]["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_official_opentelemetry_sdk_exports_genai_spans_as_vitals() {
    let env = Env::new();
    let key = env.key("otel-exporter", "write");
    let server = env.start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/otel_sdk.py");
    let out = std::process::Command::new(python()).args([script, &server.url, &key]).output().expect("run");
    assert!(
        out.status.success(),
        "exporter failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert!(sent["exports"].as_u64().is_some_and(|n| n >= 2), "{sent}");

    let items = vitals(&server, "otel-agent");
    assert_eq!(items.len(), 32, "30 current, 1 deprecated, 1 failed; the tool span is not a call");
    let by_provider = |p: &str| items.iter().filter(|v| v["provider"] == p).count();
    assert_eq!((by_provider("openai"), by_provider("anthropic")), (30, 1));
    let old = items.iter().find(|v| v["provider"] == "anthropic").expect("deprecated span");
    assert_eq!((old["usage"]["input_tokens"].as_u64(), old["usage"]["output_tokens"].as_u64()), (Some(101), Some(21)));
    let failed = items.iter().find(|v| v["outcome"] == "upstream_error").expect("failed span");
    assert_eq!(failed["error_class"], "rate_limit");
    assert!(items.iter().all(|v| v["agent_type"] == "otel"));
    // And the immune system saw them.
    let agent = server.get("/api/v1/immune/agents/otel-agent", None);
    assert!(agent.body["data"]["observations"].as_u64().is_some_and(|n| n >= 31), "{:?}", agent.body);
    // Exports are authenticated: a wrong key is refused.
    let refused = std::process::Command::new(python()).args([script, &server.url, "vgl_wrong"]).output().expect("run");
    assert!(!refused.status.success());
}

fn post(
    server: &crate::support::Server,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    let mut req =
        server.client.post(format!("{}/v1/traces", server.url)).header("content-type", content_type).body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.send().expect("send")
}

#[test]
fn otlp_json_partial_success_and_refusals() {
    let env = Env::new();
    let server = env.start();
    let span = |id: &str, start: &str, end: &str| {
        json!({
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": id, "name": "chat gpt-4o",
            "startTimeUnixNano": start, "endTimeUnixNano": end,
            "attributes": [
                { "key": "gen_ai.operation.name", "value": { "stringValue": "chat" } },
                { "key": "gen_ai.agent.id", "value": { "stringValue": "json-agent" } },
                { "key": "gen_ai.usage.input_tokens", "value": { "intValue": "12" } }
            ]
        })
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let (a, b) = (now.to_string(), (now + 400_000_000).to_string());
    let export = json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": [span("eee19b7ec3c1b174", &a, &b), span("eee19b7ec3c1b175", &b, &a)] }] }] });
    let reply = post(&server, "application/json", None, export.to_string().into_bytes());
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(reply.headers()["content-type"], "application/json");
    let body: Value = reply.json().expect("json");
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "1", "{body}");
    assert!(body["partialSuccess"]["errorMessage"].as_str().is_some_and(|m| m.contains("eee19b7ec3c1b175")));
    let stored = vitals(&server, "json-agent");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["latency_us"], 400_000);

    // Not an export, another content type, an unknown encoding, a gzip bomb.
    assert_eq!(post(&server, "application/x-protobuf", None, vec![0xff, 0xff, 0xff]).status().as_u16(), 400);
    assert_eq!(post(&server, "application/xml", None, b"hi".to_vec()).status().as_u16(), 415);
    assert_eq!(post(&server, "application/json", Some("br"), b"{}".to_vec()).status().as_u16(), 415);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![b' '; 21 * 1024 * 1024]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 1024 * 1024, "small on the wire: {}", bomb.len());
    let reply = post(&server, "application/json", Some("gzip"), bomb);
    assert_eq!(reply.status().as_u16(), 413);
    let status: Value = reply.json().expect("google.rpc.Status");
    assert!(status["message"].as_str().is_some_and(|m| m.contains("20 MiB")), "{status}");
    // An empty export is a success with nothing to say.
    let empty = post(&server, "application/x-protobuf", None, Vec::new());
    assert_eq!(empty.status().as_u16(), 200);
    assert_eq!(empty.headers()["content-type"], "application/x-protobuf");
    assert!(empty.bytes().expect("body").is_empty());
}
