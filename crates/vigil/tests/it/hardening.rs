//! What an outside reliability and security probe broke, kept fixed: each test drives the
//! real binary on loopback the way the probe did, bounded in count and time.

use serde_json::json;

use crate::support::Env;

/// Any write key could store counts near 2^64 and make every later stats read answer 500.
/// Counted fields are bounded at ingest (a 422 naming the field), and sums no longer fail
/// even where bounded values add up past `i64` (10,000 calls of the largest cost do).
#[test]
fn counted_fields_are_bounded_and_sums_cannot_break_stats() {
    let env = Env::new();
    let server = env.start();
    for (field, value) in [("input_tokens", json!(u64::MAX)), ("output_tokens", json!(5_000_000_000_000_000_000u64))] {
        let mut item = json!({ "agent_id": "probe", "latency_ms": 1 });
        item[field] = value;
        let reply = server.post("/api/v1/ingest", None, &json!({ "vitals": [item] }).to_string());
        assert_eq!(reply.status, 422, "{field}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["details"]["errors"][0]["field"], field, "{:?}", reply.body);
    }

    let item = json!({ "agent_id": "probe", "latency_ms": 1, "input_tokens": 1_000_000_000u64, "cost_usd": 1e6 });
    let batch = json!({ "vitals": vec![item; 10_000] });
    let reply = server.post("/api/v1/ingest", None, &batch.to_string());
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["accepted"], 10_000);

    let stats = server.get("/api/v1/gateway/stats", None);
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    let data = &stats.body["data"];
    assert_eq!(data["input_tokens"], 10_000_000_000_000u64, "exact: {data}");
    assert_eq!(data["cost_nanos"], i64::MAX, "10,000 × 10^15 nano-dollars saturates: {data}");
    assert_eq!(data["models"].as_array().map(Vec::len), Some(0), "no model named: {data}");
}

/// Every mutating route, sent each request a web page can make without a CORS preflight,
/// is refused in local mode, and DNS rebinding (a foreign `Host`) reads nothing. The same
/// change sent as a script would send it still works, so the refusals are not an accident.
#[test]
fn local_mode_refuses_what_a_web_page_can_send_on_every_mutating_route() {
    let env = Env::new();
    let server = env.start();
    let doc = server.get("/api/v1/openapi.json", None).body;
    let paths = doc["paths"].as_object().expect("paths");
    let boundary = "----vigil";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\na,b\n1,2\n\r\n--{boundary}--\r\n"
    );
    let evil = Some("http://evil.example.com");
    let forms: [(&str, Option<&str>, Option<String>, String); 5] = [
        ("text/plain from another site", evil, Some("text/plain".into()), "{}".into()),
        ("a form", None, Some("application/x-www-form-urlencoded".into()), "enabled=true".into()),
        ("a multipart form", None, Some(format!("multipart/form-data; boundary={boundary}")), multipart),
        ("no body", None, None, String::new()),
        ("JSON from another site", evil, Some("application/json".into()), "{}".into()),
    ];
    let mut checked = 0;
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            let path_filled: Vec<&str> =
                path.split('/').map(|part| if part.starts_with('{') { "x0000000000000000" } else { part }).collect();
            let url = format!("{}{}", server.url, path_filled.join("/"));
            let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");

            let rebound = server.client.request(method.clone(), &url).header("host", "evil.example.com:7700");
            let reply = crate::support::reply(rebound.send().expect("send"));
            assert_eq!((reply.status, reply.error_code()), (403, "host_not_allowed"), "{method} {path} rebound");

            if !matches!(
                method,
                reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH | reqwest::Method::DELETE
            ) {
                continue;
            }
            for (form, origin, content_type, body) in &forms {
                let mut req = server.client.request(method.clone(), &url).body(body.clone());
                if let Some(origin) = origin {
                    req = req.header("origin", *origin);
                }
                if let Some(content_type) = content_type {
                    req = req.header("content-type", content_type);
                }
                let reply = crate::support::reply(req.send().expect("send"));
                assert_eq!(reply.status, 403, "{method} {path} as {form}: {:?}", reply.body);
                let expected = if origin.is_some() { "cross_origin" } else { "intent_required" };
                assert_eq!(reply.error_code(), expected, "{method} {path} as {form}: {:?}", reply.body);
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "the route table has its mutating routes: {checked}");

    // Nothing was changed, and a script's upload (a non-simple type, its own origin) works.
    assert_eq!(server.get("/api/v1/uploads", None).body["data"]["items"], json!([]));
    let origin = server.url.clone();
    let upload = server
        .client
        .post(format!("{}/api/v1/uploads?name=a.csv", server.url))
        .header("origin", origin)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .expect("send");
    let upload = crate::support::reply(upload);
    assert_eq!(upload.status, 201, "{:?}", upload.body);
}

/// Production mode needs a key, which no page can send without asking, and still refuses a
/// change that a browser says comes from another origin or site.
#[test]
fn production_mode_refuses_changes_from_another_origin_even_with_a_key() {
    let mut env = Env::new();
    let admin = env.key("admin", "admin");
    env.set("VIGIL_MODE", "production");
    let server = env.start();
    let create = |headers: &[(&str, &str)]| {
        let mut req = server
            .client
            .post(format!("{}/api/v1/keys", server.url))
            .header("x-api-key", &admin)
            .header("content-type", "application/json")
            .body(r#"{"name": "ci", "scope": "read"}"#);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        crate::support::reply(req.send().expect("send"))
    };
    for refused in [[("origin", "http://evil.example.com")], [("sec-fetch-site", "cross-site")]] {
        let reply = create(&refused);
        assert_eq!((reply.status, reply.error_code()), (403, "cross_origin"), "{refused:?}");
    }
    let own = server.url.clone();
    assert_eq!(create(&[("origin", own.as_str())]).status, 201);
    assert_eq!(env.ok(&["keys", "list"]).lines().filter(|l| l.contains("ci")).count(), 1, "only the allowed change");
}
