//! What an outside reliability and security probe broke, kept fixed: each test drives the
//! real binary on loopback the way the probe did, bounded in count and time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// The host and port a server listens on, for raw sockets.
fn address(server: &crate::support::Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; returns what it sent, or `None` if it is
/// still open after `wait`.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    stream.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(got),
        }
    }
    None
}

/// Headers sent a line at a time never finished before; now the head has a deadline, and
/// the same deadline closes a kept-alive connection that sends nothing more.
#[test]
fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let mut env = Env::new();
    env.set("VIGIL_HTTP_HEADER_READ_TIMEOUT_MS", "700");
    let server = env.start();

    let mut slow = TcpStream::connect(address(&server)).expect("connect");
    let started = Instant::now();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n").expect("write");
    let closed = loop {
        assert!(started.elapsed() < Duration::from_secs(5), "a head sent a line every 200 ms was never cut off");
        if slow.write_all(b"X-Slow: 1\r\n").is_err()
            || read_until_closed(&mut slow, Duration::from_millis(200)).is_some()
        {
            break started.elapsed();
        }
    };
    assert!(closed >= Duration::from_millis(600), "closed after {closed:?}, before the deadline");

    let mut idle = TcpStream::connect(address(&server)).expect("connect");
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let sent = Instant::now();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5)).expect("an idle kept-alive connection is closed");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    let after = sent.elapsed();
    assert!(after >= Duration::from_millis(600) && after < Duration::from_secs(4), "closed after {after:?}");
}

/// Hundreds of half-open connections (the probe used 20,000 to exhaust file handles) are
/// shed from the idle end: file handles stay bounded by the cap, and health probes and
/// callers are still answered.
#[test]
fn a_flood_of_half_open_connections_is_shed_and_the_server_keeps_answering() {
    const FLOOD: usize = 400;
    let mut env = Env::new();
    env.set("VIGIL_HTTP_MAX_CONNECTIONS", "64").set("VIGIL_HTTP_HEADER_READ_TIMEOUT_MS", "60000");
    let server = env.start();
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", server.child.id())).expect("fd dir").count();
    let before = fds();

    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| {
            let mut s = TcpStream::connect(address(&server)).expect("connect");
            s.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n").expect("write");
            s
        })
        .collect();
    let fresh = || reqwest::blocking::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    for _ in 0..5 {
        let started = Instant::now();
        let live = fresh().get(format!("{}/health/live", server.url)).send().expect("health under a flood");
        assert_eq!(live.status().as_u16(), 200);
        assert!(started.elapsed() < Duration::from_secs(2), "health took {:?}", started.elapsed());
    }
    let key = env.key("reader", "read");
    let version = fresh().get(format!("{}/api/v1/version", server.url)).header("x-api-key", &key).send();
    assert_eq!(version.expect("a keyed call under a flood").status().as_u16(), 200);

    let during = fds();
    assert!(during <= before + 64 + 8, "file handles grew from {before} to {during} with a cap of 64");
    let shed =
        flood.iter_mut().map(|s| read_until_closed(s, Duration::from_millis(20))).filter(Option::is_some).count();
    assert!(shed >= FLOOD - 64, "only {shed} of {FLOOD} idle connections were shed");
    let metrics = server.get("/metrics", Some(&key)).body;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metrics.contains("vigil_http_connections_shed_total{how=\"evicted\"}"), "{metrics}");
}

/// When every connection is busy with a request, a new one is refused at once with a 503
/// that says why, instead of waiting in the kernel's queue; room returns as requests end.
#[test]
fn when_every_connection_is_busy_a_new_one_is_refused_clearly() {
    const CAP: usize = 8;
    let mut env = Env::new();
    env.set("VIGIL_HTTP_MAX_CONNECTIONS", CAP.to_string());
    let server = env.start();
    // Each upload asks to continue, so the server's "100 Continue" says its handler is
    // reading the body: the connection is busy.
    let head = "POST /api/v1/uploads?name=slow.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/octet-stream\r\nContent-Length: 8\r\nExpect: 100-continue\r\n\r\n";
    let mut uploads: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut s = TcpStream::connect(address(&server)).expect("connect");
            s.write_all(head.as_bytes()).expect("write");
            let mut continued = [0u8; 25];
            s.read_exact(&mut continued).expect("100 Continue");
            assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
            s.write_all(b"a,b\n").expect("half the body");
            s
        })
        .collect();

    let mut refused = TcpStream::connect(address(&server)).expect("connect");
    let _ = refused.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let answer = read_until_closed(&mut refused, Duration::from_secs(3)).expect("refused at once");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1") && answer.contains("too_many_connections"), "{answer}");

    // One upload ends: its connection goes idle and makes room.
    uploads[0].write_all(b"1,2\n").expect("finish the upload");
    let mut buf = [0u8; 12];
    uploads[0].read_exact(&mut buf).expect("answer");
    assert_eq!(&buf, b"HTTP/1.1 201");
    let live = reqwest::blocking::get(format!("{}/health/live", server.url)).expect("health");
    assert_eq!(live.status().as_u16(), 200);
}

/// The partial files in `blobs/tmp`.
fn partial_files(env: &Env) -> Vec<std::path::PathBuf> {
    let tmp = env.data().join("blobs/tmp");
    std::fs::read_dir(tmp).expect("tmp").map(|e| e.expect("entry").path()).collect()
}

/// Starts an upload that sends half its body and stalls, and waits for its partial file.
fn stalled_upload(server: &crate::support::Server, env: &Env) -> TcpStream {
    let mut s = TcpStream::connect(address(server)).expect("connect");
    let head = "POST /api/v1/uploads?name=big.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n";
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&vec![b'x'; 200_000]).expect("half the body");
    let deadline = Instant::now() + Duration::from_secs(10);
    while partial_files(env).is_empty() {
        assert!(Instant::now() < deadline, "the upload's partial file never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

/// `kill -9` in the middle of an upload left its partial file forever. Start-up and gc now
/// remove partial files no live writer holds, and never one a live upload is writing.
#[test]
fn partial_files_of_dead_writes_are_removed_and_live_ones_kept() {
    let env = Env::new();
    let server = env.start();
    let _stalled = stalled_upload(&server, &env);
    server.kill();
    assert_eq!(partial_files(&env).len(), 1, "kill -9 leaves the partial file");

    let server = env.start();
    assert_eq!(partial_files(&env), Vec::<std::path::PathBuf>::new(), "start-up removed it");

    // A live upload's partial file survives gc; a dead one's (left by another process) does not.
    let mut live = stalled_upload(&server, &env);
    std::fs::write(env.data().join("blobs/tmp/dead.part"), b"left by a crash").expect("write");
    let gc = server.post("/api/v1/gc", None, &json!({ "older_than": "30d" }).to_string());
    assert_eq!(gc.status, 200, "{:?}", gc.body);
    assert_eq!(gc.body["data"]["partial_files"], json!({ "files": 1, "bytes": 15 }), "{:?}", gc.body);
    assert_eq!(partial_files(&env).len(), 1, "the live upload's file is kept");

    live.write_all(&vec![b'x'; 800_000]).expect("the rest of the body");
    let mut status = [0u8; 12];
    live.read_exact(&mut status).expect("answer");
    assert_eq!(&status, b"HTTP/1.1 201", "the upload completed after gc");
}

/// An upload with no body was stored as an empty file; it is refused, naming the problem.
#[test]
fn an_empty_upload_is_refused() {
    let env = Env::new();
    let server = env.start();
    let empty = server
        .client
        .post(format!("{}/api/v1/uploads?name=a.csv", server.url))
        .header("content-type", "application/octet-stream")
        .send()
        .expect("send");
    let reply = crate::support::reply(empty);
    assert_eq!((reply.status, reply.error_code()), (422, "invalid_request"), "{:?}", reply.body);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("empty")), "{:?}", reply.body);
    assert_eq!(server.get("/api/v1/uploads", None).body["data"]["items"], json!([]));
}

/// A write key could point an agent's control URL at loopback, cloud metadata, `[::1]`,
/// `0.0.0.0`, a decimal IP or Vigil itself, and credentials in the URL were sent as Basic
/// auth. Now only public addresses, or what `egress.allow` lists, and never Vigil itself.
#[test]
fn control_urls_may_not_point_inside_or_carry_credentials() {
    let put = |server: &crate::support::Server, url: &str| {
        let body = json!({ "url": url }).to_string();
        server.request("PUT", "/api/v1/immune/agents/a1/control", None, Some(&body))
    };
    let env = Env::new();
    let server = env.start();
    for url in [
        "http://127.0.0.1:9000/control",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/",
        "http://0.0.0.0:9000/",
        "http://2130706433:9000/",
        "http://10.0.0.5/control",
        "http://user:secret@93.184.216.34/control",
        "gopher://93.184.216.34/",
    ] {
        let reply = put(&server, url);
        assert_eq!((reply.status, reply.error_code()), (422, "url_refused"), "{url}: {:?}", reply.body);
    }
    assert_eq!(
        put(&server, "https://agents.example.com/control/a1").status,
        200,
        "a public name is judged at call time"
    );
    drop(server);

    let mut env = Env::new();
    env.set("VIGIL_EGRESS_ALLOW", "127.0.0.0/8");
    let server = env.start();
    assert_eq!(put(&server, "http://127.0.0.1:9000/control").status, 200, "allowed by network");
    let own = format!("{}/api/v1/keys", server.url);
    let reply = put(&server, &own);
    assert_eq!(reply.status, 422, "never Vigil itself: {:?}", reply.body);
    assert!(reply.body["error"]["message"].as_str().is_some_and(|m| m.contains("Vigil itself")), "{:?}", reply.body);
}

/// Stats without a window scanned every vital ever stored; they now sum the last day and
/// say so in `provenance.period`, and an explicit `from` still reaches further back.
#[test]
fn gateway_stats_default_to_the_last_day() {
    let env = Env::new();
    let server = env.start();
    use vigil_core::time::Timestamp;
    const HOUR_US: i64 = 3600 * 1_000_000;
    let now = Timestamp::now().as_unix_micros();
    let old = Timestamp::from_unix_micros(now - 48 * HOUR_US).to_rfc3339();
    let batch = json!({ "vitals": [
        { "agent_id": "old", "latency_ms": 1, "input_tokens": 5, "at": old },
        { "agent_id": "new", "latency_ms": 1, "input_tokens": 7 },
    ]});
    assert_eq!(server.post("/api/v1/ingest", None, &batch.to_string()).status, 200);

    let recent = server.get("/api/v1/gateway/stats", None).body;
    assert_eq!((recent["data"]["calls"].as_u64(), recent["data"]["input_tokens"].as_u64()), (Some(1), Some(7)));
    let from = recent["provenance"]["period"]["from"].as_str().expect("the window's start is stated");
    let age = now - Timestamp::parse_rfc3339(from).expect("time").as_unix_micros();
    assert!((23 * HOUR_US..25 * HOUR_US).contains(&age), "the window starts {age} µs ago");

    let all = server.get("/api/v1/gateway/stats?from=2000-01-01T00:00:00Z", None).body;
    assert_eq!(all["data"]["calls"].as_u64(), Some(2), "an explicit from reaches back");
    // A page of vitals is bounded by its limit: listing keeps every vital, old ones too.
    let listed = server.get("/api/v1/vitals", None).body;
    assert_eq!(listed["data"]["items"].as_array().map(Vec::len), Some(2), "{listed}");
}

/// A tmpfs of `bytes` mounted on a new folder, unmounted when dropped (root only).
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        if nix::unistd::geteuid().as_raw() != 0 {
            eprintln!("skipped: mounting a small disk needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mkdir");
        let size = format!("size={bytes}");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(mounted.success(), "root could not mount a tmpfs");
        Some(SmallDisk { _dir: dir, path })
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        let ballast = self.path.join("ballast");
        let mut file = std::fs::File::create(&ballast).expect("ballast");
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A full disk answered a generic 500, and `vigil db doctor` failed. Now writes answer 507
/// with `Retry-After` naming the cause, the refusal is counted when the audit log cannot
/// take it, doctor reports the full disk, and everything acknowledged is intact once space
/// is freed.
#[test]
fn a_full_disk_is_answered_507_reported_and_recovered_from() {
    let Some(disk) = SmallDisk::mount(16 << 20) else { return };
    let mut env = Env::new();
    env.set("VIGIL_DATA", disk.path.join("data").display().to_string());
    let server = env.start();
    let upload = |name: &str, bytes: Vec<u8>| {
        let sent = server
            .client
            .post(format!("{}/api/v1/uploads?name={name}", server.url))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .expect("send");
        crate::support::reply(sent)
    };
    assert_eq!(upload("first.csv", b"a,b\n1,2\n".to_vec()).status, 201);

    let ballast = disk.fill();
    let refused = upload("second.bin", vec![7u8; 300_000]);
    assert_eq!((refused.status, refused.error_code()), (507, "storage_full"), "{:?}", refused.body);
    assert!(refused.headers.contains_key("retry-after"), "{:?}", refused.headers);
    let ingest = json!({ "vitals": [{ "agent_id": "a", "latency_ms": 1 }] }).to_string();
    let ingested = server.post("/api/v1/ingest", None, &ingest);
    assert_eq!((ingested.status, ingested.error_code()), (507, "storage_full"), "{:?}", ingested.body);
    let metrics = server.get("/metrics", None).body.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.lines().any(|l| l.starts_with("vigil_audit_append_failures_total") && !l.ends_with(" 0")),
        "a refusal the audit log could not take is counted: {metrics}"
    );

    let doctor = env.run(&["db", "doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap_or_else(|e| {
        panic!("doctor reports instead of failing ({e}): {}", String::from_utf8_lossy(&doctor.stderr))
    });
    assert_eq!(report["healthy"], false);
    assert!(report["free_bytes"].as_u64().is_some_and(|free| free < 1 << 20), "{report}");

    std::fs::remove_file(ballast).expect("free the space");
    assert_eq!(upload("second.bin", vec![7u8; 300_000]).status, 201, "writes work again");
    assert_eq!(server.post("/api/v1/ingest", None, &ingest).status, 200);
    let uploads = server.get("/api/v1/uploads", None).body;
    assert_eq!(uploads["data"]["items"].as_array().map(Vec::len), Some(2), "nothing acknowledged was lost");
    drop(server);
}

/// Runs the built-in `name` as the sandbox does (`vigil __plugin NAME`, the request on
/// stdin) under an address-space limit of `limit_bytes`; returns its exit status and stdout.
fn builtin_under_limit(name: &str, input: &std::path::Path, limit_bytes: u64) -> (bool, serde_json::Value) {
    use vigil_harness::protocol::{InputRef, PROTOCOL_VERSION, PluginRef, Request, RunContext};
    let dir = input.parent().expect("dir").to_owned();
    let request = Request {
        protocol: PROTOCOL_VERSION,
        run: RunContext { run_id: "r".into(), fingerprint: "f".into() },
        plugin: PluginRef { id: name.into(), version: "1.0.0".into() },
        config: json!({}),
        input: InputRef {
            path: input.to_owned(),
            file_name: "long.csv".into(),
            format: "csv".into(),
            sha256: "raw".into(),
            size_bytes: std::fs::metadata(input).expect("size").len(),
        },
        dependencies: Default::default(),
        output_dir: dir.clone(),
        scratch_dir: dir,
        share_dir: None,
        seed: 1,
        budgets: Default::default(),
    };
    let limit = if limit_bytes == u64::MAX { "unlimited".to_owned() } else { limit_bytes.to_string() };
    let mut child = std::process::Command::new("prlimit")
        .arg(format!("--as={limit}"))
        .arg("--")
        .arg(crate::support::BIN)
        .args(["__plugin", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the plugin");
    let request = serde_json::to_vec(&request).expect("request");
    child.stdin.take().expect("stdin").write_all(&request).expect("request");
    let out = child.wait_with_output().expect("wait");
    let response = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
    (out.status.success(), response)
}

/// A CSV with one very long line made `core.inspect` abort allocating (it held the line
/// whole), and every plugin after it was skipped. Both text built-ins now read lines in
/// pieces: under an address-space limit well below the line's size they finish, with the
/// long line counted.
#[test]
fn one_long_line_fits_in_a_small_memory_budget() {
    const LINE_BYTES: usize = 96 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("long.csv");
    let mut csv = b"id,note\n1,ok\n2,".to_vec();
    csv.resize(csv.len() + LINE_BYTES, b'x');
    csv.extend_from_slice(b"\n3,fine\n");
    std::fs::write(&input, &csv).expect("write");
    drop(csv);
    // What the binary needs on a short input, plus far less than the long line's size.
    let (ok, response) = builtin_under_limit("inspect", &input, u64::MAX);
    assert!(ok, "inspect runs without a limit: {response}");
    let baseline = {
        let short = dir.path().join("short.csv");
        std::fs::write(&short, b"id,note\n1,ok\n").expect("write");
        (64..=2048u64).step_by(32).map(|mb| mb << 20).find(|limit| builtin_under_limit("inspect", &short, *limit).0)
    }
    .expect("inspect runs on a short input under some limit");
    let limit = baseline + (32 << 20);

    for name in ["inspect", "text_profile"] {
        let (ok, response) = builtin_under_limit(name, &input, limit);
        assert!(ok && response["status"] == "ok", "{name} under {limit} bytes: {response}");
        let lines = response["metrics"]["lines"].as_u64();
        assert_eq!(lines, Some(4), "{name}: {response}");
    }
}
