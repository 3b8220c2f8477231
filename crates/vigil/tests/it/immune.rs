//! The immune system through the real binary: vitals in, detection, quarantine enforced by
//! the gateway, approvals, healing through a control URL, probation, audit, restart
//! mid-incident, and replay of the exported log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Env, Server};

fn env() -> Env {
    let mut env = Env::new();
    env.set("VIGIL_IMMUNE_DRAIN_GRACE_MS", "200")
        .set("VIGIL_IMMUNE_PROBATION_CALLS", "5")
        .set("VIGIL_IMMUNE_APPROVAL_MIN_SEVERITY", "3")
        // The tests' control servers listen on loopback.
        .set("VIGIL_EGRESS_ALLOW", "127.0.0.1");
    env
}

fn healthy(agent: &str, i: usize) -> Value {
    json!({
        "agent_id": agent,
        "latency_ms": 800 + (i % 7) * 20,
        "input_tokens": 1200 + (i % 5) * 30,
        "output_tokens": 300 + (i % 3) * 15,
        "tool_names": if i.is_multiple_of(2) { vec!["search"] } else { vec![] },
        "cost_usd": 0.004 + (i % 4) as f64 * 0.0002,
    })
}

fn ingest(server: &Server, vitals: Vec<Value>) {
    let reply = server.post("/api/v1/ingest", None, &json!({ "vitals": vitals }).to_string());
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

fn agent(server: &Server, id: &str) -> Value {
    let reply = server.get(&format!("/api/v1/immune/agents/{id}"), None);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["data"].clone()
}

/// Polls until `f` gives `Some`, for up to 10 s.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn state_is(server: &Server, id: &str, state: &str) -> Option<Value> {
    let a = agent(server, id);
    (a["state"] == state).then_some(a)
}

/// A control URL that answers 200 and keeps what it was sent.
fn control_server() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/control", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(value) = serde_json::from_slice(&body)
            {
                keep.lock().expect("lock").push(value);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

fn call_through_gateway(server: &Server, agent: &str) -> crate::support::Reply {
    let body = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "hi" }] }).to_string();
    let resp = server
        .client
        .post(format!("{}/v1/chat/completions", server.url))
        .header("content-type", "application/json")
        .header("x-agent-id", agent)
        .body(body)
        .send()
        .expect("send");
    crate::support::reply(resp)
}

#[test]
fn an_infection_is_quarantined_approved_healed_and_replayable() {
    let env = env();
    let server = env.start();
    let (url, seen) = control_server();
    let reply =
        server.request("PUT", "/api/v1/immune/agents/mem/control", None, Some(&json!({ "url": url }).to_string()));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let bad = server.request("PUT", "/api/v1/immune/agents/mem/control", None, Some(r#"{"url":"file:///etc/passwd"}"#));
    assert_eq!(bad.status, 422);

    ingest(&server, (0..40).map(|i| healthy("mem", i)).collect());
    ingest(&server, (0..40).map(|i| healthy("calm", i)).collect());
    wait_for("baselines", || (agent(&server, "mem")["observations"] == 40).then_some(()));
    // Context blow-up: input tokens far above the baseline.
    ingest(&server, vec![json!({ "agent_id": "mem", "latency_ms": 820, "input_tokens": 30000, "output_tokens": 310 })]);

    let quarantined = wait_for("quarantine", || {
        state_is(&server, "mem", "quarantined").filter(|a| a["pending_approval"].is_string())
    });
    assert_eq!(quarantined["accepts_calls"], false);
    let incident_id = quarantined["incident_id"].as_str().expect("incident").to_owned();
    let approval_id = quarantined["pending_approval"].as_str().expect("approval").to_owned();
    let incident = server.get(&format!("/api/v1/immune/incidents/{incident_id}"), None).body["data"].clone();
    assert_eq!(incident["hypotheses"][0]["diagnosis"], "memory_corruption", "{incident}");
    assert!(incident["hypotheses"][0]["evidence"][0].as_str().is_some_and(|e| e.starts_with("input_tokens +")));
    assert_eq!(agent(&server, "calm")["state"], "healthy", "one agent's sickness is its own");

    // The gateway refuses the quarantined agent's calls, with the reason; others pass the guard.
    let refused = call_through_gateway(&server, "mem");
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.error_code(), "agent_quarantined");
    let message = refused.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(&incident_id) && message.contains("memory_corruption"), "{message}");
    assert_ne!(call_through_gateway(&server, "calm").error_code(), "agent_quarantined");

    let approval = server.get(&format!("/api/v1/immune/approvals/{approval_id}"), None).body["data"].clone();
    assert_eq!((approval["action"].as_str(), approval["status"].as_str()), (Some("reset_memory"), Some("pending")));
    let early = server.post(&format!("/api/v1/immune/approvals/{approval_id}/heal-now"), None, "");
    assert_eq!(early.status, 409, "heal-now is for rejected approvals: {:?}", early.body);
    let rejected = server.post(&format!("/api/v1/immune/approvals/{approval_id}/reject"), None, "");
    assert_eq!(rejected.status, 200, "{:?}", rejected.body);
    assert_eq!(agent(&server, "mem")["state"], "quarantined");
    assert!(seen.lock().expect("lock").is_empty(), "nothing ran after a rejection");

    let healed = server.post(&format!("/api/v1/immune/approvals/{approval_id}/heal-now"), None, "");
    assert_eq!(healed.status, 200, "{:?}", healed.body);
    wait_for("probation", || state_is(&server, "mem", "probation"));
    let sent = seen.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0]["action"].as_str(), sent[0]["agent_id"].as_str()), (Some("reset_memory"), Some("mem")));
    assert_eq!(sent[0]["incident_id"], incident_id.as_str());

    ingest(&server, (0..5).map(|i| healthy("mem", i)).collect());
    wait_for("healthy", || state_is(&server, "mem", "healthy"));
    let incident = server.get(&format!("/api/v1/immune/incidents/{incident_id}"), None).body["data"].clone();
    assert_eq!(incident["status"], "healed");
    assert_eq!(incident["attempts"][0]["cured"], true);
    let memory = server.get("/api/v1/immune/memory", None).body["data"].clone();
    assert_eq!(memory["actions"][0]["action"], "reset_memory");
    assert_eq!(memory["actions"][0]["successes"], 1);

    let feedback = server.post(
        &format!("/api/v1/immune/incidents/{incident_id}/feedback"),
        None,
        r#"{"diagnosis":"memory_corruption","confirmed":true}"#,
    );
    assert_eq!(feedback.status, 200, "{:?}", feedback.body);
    assert_eq!(server.get("/api/v1/immune/memory", None).body["data"]["feedback"][0]["confirmed"], 1);

    // Every human decision and every action the engine took is in the audit log.
    let audit = server.get("/api/v1/audit?limit=500", None).body["data"]["items"].clone();
    let actions: Vec<&str> = audit.as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "immune.approvals.reject",
        "immune.approvals.heal_now",
        "immune.incidents.feedback",
        "immune.incident_opened",
        "immune.approval_requested",
        "immune.action_finished",
        "immune.incident_closed",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }

    // The exported log replays to exactly the recorded decisions.
    let export = server.client.get(format!("{}/api/v1/immune/export", server.url)).send().expect("export");
    assert_eq!(export.status(), 200);
    let export = export.text().expect("text");
    assert!(export.lines().count() > 80, "{export}");
    let file = env.dir.path().join("events.ndjson");
    std::fs::write(&file, &export).expect("write");
    let out = env.run(&["immune", "replay", file.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(", 0 differ"), "{text}");

    // Tampering with one recorded input is caught.
    let tampered = export.replacen("\"input_tokens\":30000", "\"input_tokens\":1200", 1);
    assert_ne!(tampered, export);
    std::fs::write(&file, tampered).expect("write");
    let out = env.run(&["immune", "replay", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    server.stop();
}

#[test]
fn a_restart_mid_incident_restores_the_state() {
    let env = env();
    let server = env.start();
    ingest(&server, (0..40).map(|i| healthy("a", i)).collect());
    ingest(&server, vec![json!({ "agent_id": "a", "latency_ms": 820, "input_tokens": 30000, "output_tokens": 310 })]);
    let before =
        wait_for("quarantine", || state_is(&server, "a", "quarantined").filter(|a| a["pending_approval"].is_string()));
    // A clean stop writes a snapshot.
    assert!(server.stop().success());

    let server = env.start();
    let after = agent(&server, "a");
    for field in ["state", "pending_approval", "incident_id", "observations", "history"] {
        assert_eq!(after[field], before[field], "{field} after a clean restart");
    }
    assert_eq!(call_through_gateway(&server, "a").error_code(), "agent_quarantined");
    // What happens next is only in the log when the process is killed.
    let quarantined = server.post("/api/v1/immune/agents/b/quarantine", None, "");
    assert_eq!(quarantined.status, 200, "{:?}", quarantined.body);
    assert_eq!(server.post("/api/v1/immune/agents/b/quarantine", None, "").status, 409, "already quarantined");
    server.kill();

    let server = env.start();
    assert_eq!(agent(&server, "a")["pending_approval"], before["pending_approval"]);
    assert_eq!(agent(&server, "b")["state"], "quarantined", "restored from the log alone");
    assert_eq!(call_through_gateway(&server, "b").error_code(), "agent_quarantined");
    let approval = before["pending_approval"].as_str().expect("approval");
    let approved = server.post(&format!("/api/v1/immune/approvals/{approval}/approve"), None, "");
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    // No control URL: resetting memory fails, and the ladder moves on to its next action.
    let next = wait_for("the next approval", || {
        let a = agent(&server, "a");
        (a["pending_approval"].is_string() && a["pending_approval"] != before["pending_approval"]).then_some(a)
    });
    assert_eq!(next["failed_actions"], json!(["reset_memory"]));
    let incident =
        server.get(&format!("/api/v1/immune/incidents/{}", before["incident_id"].as_str().unwrap_or("")), None);
    let detail = incident.body["data"]["attempts"][0]["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("no control URL"), "{detail}");
    let released = server.post("/api/v1/immune/agents/b/release", None, "");
    assert_eq!(released.status, 200, "{:?}", released.body);
    assert_ne!(call_through_gateway(&server, "b").error_code(), "agent_quarantined");
    assert!(server.stop().success());
}

/// clients/python: buffered batches with an API key, a retry after a 503, a refused item
/// reported back, and the calls stored and judged (an injected input included).
#[test]
fn the_python_client_reports_calls_with_buffering_and_retries() {
    let env = env();
    let key = env.key("py-agent", "write");
    let server = env.start();
    let python = std::env::var("VIGIL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/client_test.py");
    let out = std::process::Command::new(python).args([script, &server.url, &key]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    let flaky = summary["flaky_requests"].as_array().expect("requests");
    assert_eq!(flaky.len(), 2, "one 503, then the retry: {summary}");
    assert!(flaky.iter().all(|r| r["key"] == "vgl_test" && r["items"] == 3));
    assert_eq!(summary["flaky_stats"]["retries"], 1);
    assert_eq!(summary["stats"]["accepted"], 60, "{summary}");
    assert_eq!(summary["stats"]["rejected"], 1);
    assert!(summary["problems"][0]["errors"][0]["field"] == "latency_ms", "{summary}");

    let a = wait_for("all calls judged", || {
        let a = agent(&server, "py-agent");
        (a["observations"] == 60).then_some(a)
    });
    assert_ne!(a["state"], "healthy", "the injected input was caught: {a}");
    let incident = server.get(&format!("/api/v1/immune/incidents/{}", a["incident_id"].as_str().unwrap_or("")), None);
    assert_eq!(incident.body["data"]["hypotheses"][0]["diagnosis"], "prompt_injection", "{:?}", incident.body);
}

/// `vigil demo`: a live fleet through the real gateway, every injected fault detected and
/// diagnosed as expected, the single-agent ones healed (approvals given along the way) and
/// the provider outage recognised as an external cause that nobody is healed for.
#[test]
fn the_demo_detects_diagnoses_and_heals_every_injected_fault() {
    let env = Env::new();
    let out = env.run(&["demo", "--fast", "--exit", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&text).expect("summary json");
    let faults = summary["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 6);
    for f in faults {
        assert_eq!(f["diagnosis"], f["expected"], "{f}");
        if f["fault"] == "provider_outage" {
            assert_eq!(f["actions"], json!([]), "an outage is not healed agent by agent: {f}");
            assert_eq!(f["outcome"], "recovered", "{f}");
        } else {
            assert_eq!(f["outcome"], "healed", "{f}");
            assert_eq!(f["cured"], true, "{f}");
        }
    }
    let approved = faults.iter().any(|f| f["actions"].as_array().is_some_and(|a| a.contains(&json!("reset_memory"))));
    assert!(approved, "the token blow-up's memory reset waited for, and got, an approval");
}
