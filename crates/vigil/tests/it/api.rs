//! API conventions over real HTTP: envelopes, error shapes and statuses, pagination,
//! request ids, rate limits, readiness, metrics, OpenAPI coverage.

use crate::support::Env;

#[test]
fn success_bodies_carry_data_and_provenance() {
    let env = Env::new();
    let server = env.start();
    for path in ["/health/live", "/health/ready", "/api/v1/version", "/api/v1/keys", "/api/v1/audit"] {
        let reply = server.get(path, None);
        assert_eq!(reply.status, 200, "{path}");
        let provenance = &reply.body["provenance"];
        assert!(reply.body.get("data").is_some(), "{path}: {:?}", reply.body);
        assert!(provenance["generated_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{path}");
        assert!(["list", "summary", "count", "detail"].contains(&provenance["aggregation"].as_str().unwrap_or("")));
        assert!(provenance["source"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(provenance.get("tenant_id").is_some() && provenance.get("period").is_some());
    }
    let version = server.get("/api/v1/version", None).body;
    assert_eq!(version["data"]["mode"], "local");
    assert_eq!(version["data"]["schema_version"], vigil_store::migrations::head_version());
    assert!(version["data"]["git_sha"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn bad_inputs_get_the_right_status_and_error_shape() {
    let mut env = Env::new();
    env.set("VIGIL_HTTP_MAX_BODY_BYTES", "2048");
    let server = env.start();
    let check = |status: u16, code: &str, reply: crate::support::Reply| {
        assert_eq!(reply.status, status, "{:?}", reply.body);
        assert_eq!(reply.error_code(), code, "{:?}", reply.body);
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(reply.body["error"].get("details").is_some());
        reply.body
    };

    let body = check(400, "invalid_json", server.post("/api/v1/keys", None, "{\n \"name\": \"x\",\n \"scope\": }"));
    assert_eq!(body["error"]["details"]["line"], 3, "the parse error's location is given");
    assert!(body["error"]["details"]["column"].as_u64().is_some());

    let body = check(422, "invalid_request", server.post("/api/v1/keys", None, r#"{"name": "x", "scope": "root"}"#));
    assert_eq!(body["error"]["details"]["path"], "scope");
    let body = check(422, "invalid_request", server.post("/api/v1/keys", None, r#"{"name": "x"}"#));
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("scope")));
    check(422, "invalid_request", server.post("/api/v1/keys", None, r#"{"name": "a/b", "scope": "read"}"#));

    let text = server
        .client
        .post(format!("{}/api/v1/keys", server.url))
        .header("content-type", "text/plain")
        .header("x-requested-with", "test")
        .body("name=x")
        .send()
        .expect("send");
    check(415, "unsupported_media_type", crate::support::reply(text));

    let big = format!(r#"{{"name": "{}", "scope": "read"}}"#, "x".repeat(4096));
    let body = check(413, "payload_too_large", server.post("/api/v1/keys", None, &big));
    assert_eq!(body["error"]["details"]["limit_bytes"], 2048);

    assert_eq!(server.post("/api/v1/keys", None, r#"{"name": "dup", "scope": "read"}"#).status, 201);
    check(409, "conflict", server.post("/api/v1/keys", None, r#"{"name": "dup", "scope": "read"}"#));

    check(404, "not_found", server.get("/api/v1/keys/0123456789abcdef", None));
    check(404, "not_found", server.get("/api/v1/keys/not-an-id", None));
    check(404, "not_found", server.get("/api/v1/no-such-thing", None));
    check(405, "method_not_allowed", server.request("PUT", "/api/v1/keys", None, Some("{}")));

    check(400, "invalid_query", server.get("/api/v1/audit?limit=501", None));
    check(400, "invalid_query", server.get("/api/v1/audit?limit=abc", None));
    check(400, "invalid_query", server.get("/api/v1/audit?cursor=forged", None));
    check(400, "invalid_query", server.get("/api/v1/audit?from=yesterday", None));
    check(400, "invalid_query", server.get("/api/v1/audit?colour=blue", None));
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let mut env = Env::new();
    env.set("VIGIL_RATE_LIMIT_PER_SECOND", "1").set("VIGIL_RATE_LIMIT_BURST", "3");
    let server = env.start();
    let statuses: Vec<u16> = (0..6).map(|_| server.get("/api/v1/version", None).status).collect();
    assert_eq!(&statuses[..3], [200, 200, 200]);
    let limited = server.get("/api/v1/version", None);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry: u64 = limited.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    // Public routes share the caller's bucket: they are not a way around the limit.
    assert_eq!(server.get("/health/live", None).status, 429);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(server.get("/api/v1/version", None).status, 200, "the bucket refills");
}

#[test]
fn readiness_fails_with_the_failing_check_named() {
    let env = Env::new();
    let server = env.start();
    assert_eq!(server.get("/health/ready", None).status, 200);
    // Replace the blob temp directory with a file: blob writes now fail.
    let tmp = env.data().join("blobs/tmp");
    std::fs::remove_dir_all(&tmp).expect("rm");
    std::fs::write(&tmp, b"not a directory").expect("write");
    // Readiness results are reused for a second, so the failure shows within about that.
    let since = std::time::Instant::now();
    let reply = loop {
        let reply = server.get("/health/ready", None);
        if reply.status != 200 || since.elapsed() > std::time::Duration::from_secs(3) {
            break reply;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(reply.status, 503);
    assert_eq!(reply.error_code(), "not_ready");
    assert!(reply.headers.contains_key("retry-after"));
    let checks = reply.body["error"]["details"]["checks"].as_array().expect("checks");
    let failing: Vec<&str> = checks.iter().filter(|c| c["ok"] == false).filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(failing, ["blobs_writable"]);
    assert_eq!(server.get("/health/live", None).status, 200, "liveness is unaffected");
}

#[test]
fn slow_requests_hit_the_deadline_and_are_still_audited() {
    let mut env = Env::new();
    env.set("VIGIL_HTTP_REQUEST_TIMEOUT_MS", "400");
    let server = env.start();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let body = reqwest::blocking::Body::new(crate::support::ChannelReader::new(rx));
    tx.send(br#"{"name": "slowloris", "#.to_vec()).expect("send");
    // The rest never comes; the client gives up after 3 s, long after the deadline.
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(tx);
    });
    let started = std::time::Instant::now();
    let reply = crate::support::reply(
        server
            .client
            .post(format!("{}/api/v1/keys", server.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("send"),
    );
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let audit = server.get("/api/v1/audit?action=keys.create", None);
    let entry = &audit.body["data"]["items"][0];
    assert_eq!((entry["status"].as_u64(), entry["outcome"].as_str()), (Some(503), Some("error")));
}

#[test]
fn request_ids_are_echoed_or_generated() {
    let env = Env::new();
    let server = env.start();
    let mine = server
        .client
        .get(format!("{}/api/v1/version", server.url))
        .header("x-request-id", "trace-abc.123")
        .send()
        .expect("send");
    assert_eq!(mine.headers()["x-request-id"], "trace-abc.123");
    let hostile = server
        .client
        .get(format!("{}/api/v1/version", server.url))
        .header("x-request-id", "x".repeat(300))
        .send()
        .expect("send");
    let generated = hostile.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(generated.len(), 36, "an unusable client id is replaced by a UUID: {generated}");
    let error = server.get("/api/v1/nope", None);
    assert!(error.headers.contains_key("x-request-id"), "errors carry it too");
}

#[test]
fn lists_page_with_opaque_cursors() {
    let env = Env::new();
    let server = env.start();
    for i in 0..7 {
        assert_eq!(server.post("/api/v1/keys", None, &format!(r#"{{"name": "k{i}", "scope": "read"}}"#)).status, 201);
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/keys?limit=3&cursor={c}"),
            None => "/api/v1/keys?limit=3".to_owned(),
        };
        let reply = server.get(&path, None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["provenance"]["aggregation"], "list");
        let items = reply.body["data"]["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        names.extend(items.iter().filter_map(|k| k["name"].as_str().map(str::to_owned)));
        pages += 1;
        match reply.body["data"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["k6", "k5", "k4", "k3", "k2", "k1", "k0"]);
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    let env = Env::new();
    let server = env.start();
    server.get("/api/v1/keys/0123456789abcdef", None);
    server.get("/api/v1/version", None);
    let text = server.client.get(format!("{}/metrics", server.url)).send().expect("send").text().expect("text");
    assert!(
        text.contains(r#"vigil_http_requests_total{method="GET",route="/api/v1/keys/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"vigil_http_request_duration_seconds_bucket{le="#), "{text}");
    assert!(text.contains("vigil_build_info"), "{text}");
}

#[test]
fn openapi_documents_every_route_with_schemas() {
    let env = Env::new();
    let server = env.start();
    let doc = server.get("/api/v1/openapi.json", None).body;
    assert_eq!(doc["openapi"], "3.1.0");
    let ops: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|m| m.as_object().expect("methods").values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for op in [
        "health.live",
        "health.ready",
        "metrics",
        "version",
        "openapi",
        "keys.list",
        "keys.create",
        "keys.get",
        "keys.revoke",
        "audit.list",
        "audit.verify",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    let create = &doc["paths"]["/api/v1/keys"]["post"];
    assert!(create["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string());
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    // Every $ref in the document resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap_or_default();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    let audit_params: Vec<&str> = doc["paths"]["/api/v1/audit"]["get"]["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(audit_params.contains(&"cursor") && audit_params.contains(&"outcome"), "{audit_params:?}");
    assert_eq!(doc["components"]["securitySchemes"]["apiKey"]["name"], "X-API-Key");
}

#[test]
fn ingested_vitals_are_stored_and_discovered_and_bad_items_are_named() {
    let mut env = Env::new();
    env.key("admin", "admin");
    let writer = env.key("agent-sdk", "write");
    let reader = env.key("viewer", "read");
    env.set("VIGIL_MODE", "production");
    let server = env.start();
    // The summarizer's input tokens come as a whole float, as JavaScript sends numbers.
    let batch = serde_json::json!({ "vitals": [
        { "agent_id": "planner", "model": "gpt-4o-mini", "latency_ms": 812.5, "input_tokens": 120, "output_tokens": 40,
          "tool_names": ["search", "search"], "cost_usd": 0.0012, "system_prompt_sha256": "ab".repeat(32) },
        { "agent_id": "planner", "latency_ms": 90, "error": "rate_limit", "retries": 2 },
        { "agent_id": "writer", "latency_ms": "slow" },
        { "latency_ms": 5 },
        { "agent_id": "summarizer", "model": "claude-sonnet-4-5", "latency_ms": 300, "input_tokens": 2000.0,
          "cached_tokens": 1000, "cache_write_tokens": 500, "cache_write_1h_tokens": 200, "output_tokens": 100 }
    ]});
    assert_eq!(
        server.post("/api/v1/ingest", Some(&reader), &batch.to_string()).status,
        403,
        "a read key cannot report"
    );
    let reply = server.post("/api/v1/ingest", Some(&writer), &batch.to_string());
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let data = &reply.body["data"];
    assert_eq!((data["accepted"].as_u64(), data["rejected"].as_u64()), (Some(3), Some(2)));
    assert_eq!(
        data["errors"][0],
        serde_json::json!({ "index": 2, "field": "latency_ms", "message": data["errors"][0]["message"] })
    );
    assert_eq!(data["errors"][1]["field"], "agent_id");

    let vitals = server.get("/api/v1/vitals?agent_id=planner", Some(&reader)).body["data"]["items"].clone();
    let vitals = vitals.as_array().expect("items");
    assert_eq!(vitals.len(), 2, "{vitals:?}");
    let agent = server.get("/api/v1/agents/planner", Some(&reader)).body["data"].clone();
    assert_eq!((agent["calls"].as_u64(), agent["errors"].as_u64()), (Some(2), Some(1)), "{agent}");
    let failed = vitals.iter().find(|v| v["error_class"] == "rate_limit").expect("the failed call");
    assert_eq!(
        (&failed["usage"], failed["unpriced"].as_bool()),
        (&serde_json::Value::Null, Some(true)),
        "no tokens: no usage, no cost"
    );
    let reported = vitals.iter().find(|v| v["model_served"] == "gpt-4o-mini").expect("the priced call");
    // The agent's figure wins; the table's (120 × 150 + 40 × 600 nano-dollars) is kept beside it.
    assert_eq!(
        (reported["cost_nanos"].as_i64(), reported["table_cost_nanos"].as_i64()),
        (Some(1_200_000), Some(42_000))
    );

    // No cost reported: the built-in table prices it, cache reads and writes at their own
    // prices: 500 plain × 3,000 + 1,000 read × 300 + 300 written for five minutes × 3,750
    // + 200 written for an hour × 6,000 + 100 out × 15,000.
    let v = &server.get("/api/v1/vitals?agent_id=summarizer", Some(&reader)).body["data"]["items"][0];
    assert_eq!((v["cost_nanos"].as_i64(), v["unpriced"].as_bool()), (Some(5_625_000), Some(false)), "{v}");
    assert_eq!((&v["usage"]["cache_write_tokens"], &v["usage"]["cache_write_1h_tokens"]), (&500.into(), &200.into()));

    // The gateway's figures sum every part of the usage, and the table's cost beside the reported.
    let stats = server.get("/api/v1/gateway/stats", Some(&reader)).body["data"].clone();
    let sums = ["input_tokens", "cached_tokens", "cache_write_tokens", "cache_write_1h_tokens", "cost_reported_calls"]
        .map(|k| stats[k].as_u64());
    assert_eq!(sums, [Some(2120), Some(1000), Some(500), Some(200), Some(1)], "{stats}");
    assert_eq!(stats["table_cost_nanos"].as_i64(), Some(42_000 + 5_625_000), "{stats}");
    let sonnet = stats["models"].as_array().and_then(|m| m.iter().find(|m| m["model"] == "claude-sonnet-4-5"));
    assert_eq!(sonnet.map(|m| &m["cache_write_1h_tokens"]), Some(&200.into()), "{stats}");

    let nothing = server.post(
        "/api/v1/ingest",
        Some(&writer),
        &serde_json::json!({ "vitals": [{ "latency_ms": 1 }] }).to_string(),
    );
    assert_eq!(nothing.status, 422);
    assert_eq!(nothing.body["error"]["details"]["errors"][0]["field"], "agent_id");
    let long_writes = serde_json::json!({ "vitals": [{ "agent_id": "a", "latency_ms": 1, "input_tokens": 10,
        "cache_write_tokens": 2, "cache_write_1h_tokens": 3 }] });
    let refused = server.post("/api/v1/ingest", Some(&writer), &long_writes.to_string());
    assert_eq!(refused.body["error"]["details"]["errors"][0]["field"], "cache_write_1h_tokens", "{:?}", refused.body);
}
