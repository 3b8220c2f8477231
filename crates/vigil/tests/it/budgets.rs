//! Budgets that hold, through the real binary: many concurrent streamed calls against a
//! budget that fits a handful settle at or under it in every randomized trial while using
//! nearly all of it; a process killed mid-call leaks no reservation, and the counters equal
//! what the ledger derives.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mock_upstream::MockUpstream;
use crate::support::{Env, Server, write_file};

/// Calls in flight at once, per trial.
const CLIENTS: usize = 50;
/// The budget each trial gets, in dollars: about ten average calls.
const LIMIT_USD: f64 = 0.006;
/// Models with prices (dollars per million tokens: input, output), picked at random.
const MODELS: [(&str, f64, f64); 4] =
    [("trial-a", 1.0, 10.0), ("trial-b", 3.0, 15.0), ("trial-c", 0.5, 4.0), ("trial-d", 2.0, 8.0)];

fn budget_env(upstream: &str, lease_ms: u64) -> Env {
    budget_env_with(upstream, &format!("reservation_lease_ms = {lease_ms}"))
}

fn budget_env_with(upstream: &str, gateway: &str) -> Env {
    let env = Env::new();
    let prices: String = MODELS
        .iter()
        .map(|(model, input, output)| {
            format!("[[gateway.prices]]\nmodel = \"{model}*\"\ninput_per_mtok = {input}\noutput_per_mtok = {output}\n")
        })
        .collect();
    let config = format!(
        r#"
[gateway]
retry_backoff_ms = 10
{gateway}

{prices}
[[gateway.providers]]
name = "mock"
kind = "openai"
base_url = "{upstream}"
timeout_ms = 5000
connect_timeout_ms = 5000
"#
    );
    write_file(&env.data().join("vigil.toml"), &config);
    let mut env = env;
    // Fifty clients on one address would trip the per-caller limit of the HTTP gate.
    env.set("VIGIL_RATE_LIMIT_ENABLED", "false");
    env
}

/// One hard budget per feature tag, so every trial counts on a fresh counter.
fn save_budget_policy(server: &Server) {
    let policy = json!({ "document": { "budgets": [
        { "id": "per-trial", "per": "feature", "period": "day", "limit_usd": LIMIT_USD }
    ] } });
    let saved = server.put("/api/v1/policy", None, &policy.to_string());
    assert_eq!(saved.status, 200, "{:?}", saved.body);
}

/// A small deterministic generator (xorshift), so a failing trial can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    completed: u32,
    disconnected: u32,
    refused: u32,
}

/// One client: calls with random models, prompt sizes, output caps, latencies and
/// disconnects until the budget has refused it for longer than any call lasts (so what
/// calls in flight held has been settled and offered again), backing off a little after
/// each refusal as a client told 429 does.
fn client(url: &str, feature: &str, seed: u64) -> Seen {
    let http = reqwest::blocking::Client::new();
    let mut rng = Rng(seed | 1);
    let mut seen = Seen::default();
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 12 {
        let (model, _, _) = MODELS[rng.below(MODELS.len() as u64) as usize];
        // Output caps from 10 to about 1,000 tokens, evenly in log scale.
        let cap = (10.0 * 100f64.powf(rng.below(1_000) as f64 / 1_000.0)) as u64;
        let chunks = 2 + rng.below(8);
        let body = json!({
            "model": model,
            "stream": true,
            "max_tokens": cap,
            "messages": [{ "role": "user", "content": "x".repeat(20 + rng.below(300) as usize) }],
            "metadata": {
                "mock_output_tokens": (cap - rng.below(cap / 4 + 1)).to_string(),
                "mock_latency_ms": rng.below(15).to_string(),
                "mock_chunks": chunks.to_string(),
                "mock_chunk_ms": rng.below(4).to_string(),
            },
        });
        let response = http
            .post(format!("{url}/v1/chat/completions"))
            .header("x-vigil-feature", feature)
            .header("x-agent-id", format!("agent-{}", seed % 7))
            .json(&body)
            .send()
            .expect("send");
        match response.status().as_u16() {
            200 => {
                refused_in_a_row = 0;
                let disconnect_at = (rng.below(10) == 0).then(|| rng.below(chunks));
                let mut response = response;
                let mut buf = [0u8; 256];
                let mut reads = 0;
                loop {
                    if disconnect_at.is_some_and(|at| reads >= at) {
                        seen.disconnected += 1;
                        break; // dropping the response closes the connection mid-stream
                    }
                    match response.read(&mut buf) {
                        Ok(0) => {
                            seen.completed += 1;
                            break;
                        }
                        Ok(_) => reads += 1,
                        Err(e) => panic!("stream broke: {e}"),
                    }
                }
            }
            429 => {
                let error: Value = response.json().expect("an error body");
                assert_eq!(error["error"]["code"], "budget_exceeded", "{error}");
                let message = error["error"]["message"].as_str().unwrap_or("");
                assert!(message.contains("\"per-trial\"") && message.contains("policy version 1"), "{message}");
                seen.refused += 1;
                refused_in_a_row += 1;
                std::thread::sleep(Duration::from_millis(8));
            }
            status => panic!("unexpected status {status}: {:?}", response.text()),
        }
    }
    seen
}

/// The per-trial budget's counter for `feature`: (spent, held) in nano-dollars.
fn counter(server: &Server, feature: &str) -> (i64, i64) {
    let budgets = server.get("/api/v1/budgets", None);
    assert_eq!(budgets.status, 200, "{:?}", budgets.body);
    let counters = budgets.body["data"][0]["counters"].as_array().cloned().unwrap_or_default();
    counters
        .iter()
        .find(|c| c["subject"] == feature)
        .map(|c| (c["spent_nanos"].as_i64().unwrap_or(-1), c["held_nanos"].as_i64().unwrap_or(-1)))
        .unwrap_or((0, 0))
}

/// Waits until no reservation of `feature` is held (settlements are written off the
/// response path), and returns what was spent.
fn settled_spend(server: &Server, feature: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (spent, held) = counter(server, feature);
        if held == 0 {
            return spent;
        }
        assert!(Instant::now() < deadline, "{feature}: {held} nano-dollars still held");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn concurrent_streamed_calls_never_overspend_a_budget_and_use_nearly_all_of_it() {
    let trials: u64 = std::env::var("VIGIL_BUDGET_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(200);
    let upstream = MockUpstream::start();
    let env = budget_env(&upstream.url, 0);
    let server = env.start();
    save_budget_policy(&server);
    let limit = (LIMIT_USD * 1e9) as i64;
    let (mut lowest, mut calls, mut disconnects) = (f64::MAX, 0u32, 0u32);
    let started = Instant::now();
    for trial in 0..trials {
        let feature = format!("trial-{trial}");
        let seen: Vec<Seen> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let (url, feature) = (&server.url, &feature);
                    scope.spawn(move || client(url, feature, trial * 1_000 + c as u64 + 1))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("client")).collect()
        });
        let spent = settled_spend(&server, &feature);
        assert!(spent <= limit, "trial {trial}: spent {spent} of {limit} nano-dollars");
        let used = spent as f64 / limit as f64;
        assert!(used >= 0.95, "trial {trial}: only {:.1} % of the budget used at exhaustion", used * 100.0);
        lowest = lowest.min(used);
        calls += seen.iter().map(|s| s.completed + s.disconnected).sum::<u32>();
        disconnects += seen.iter().map(|s| s.disconnected).sum::<u32>();
    }
    eprintln!(
        "{trials} trials of {CLIENTS} clients in {:.1} s: {calls} admitted calls ({disconnects} disconnected mid-stream), every trial at or under its budget, the lowest using {:.1} % of it",
        started.elapsed().as_secs_f64(),
        lowest * 100.0
    );
    // The counters are what the ledger says they are.
    drop(server);
    let verified = env.run(&["ledger", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&verified.stdout).expect("a JSON report");
    assert!(verified.status.success() && report["intact"] == true, "{report}");
}

#[test]
fn a_process_killed_mid_call_leaks_no_reservation_and_its_counters_equal_the_ledger() {
    let upstream = MockUpstream::start();
    let env = budget_env(&upstream.url, 1_500);
    let server = env.start();
    save_budget_policy(&server);
    // Slow streams, so the kill lands while they are in flight.
    let url = server.url.clone();
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let body = json!({
                    "model": "trial-a", "stream": true, "max_tokens": 100,
                    "messages": [{ "role": "user", "content": "hello" }],
                    "metadata": { "mock_chunks": "50", "mock_chunk_ms": "100", "mock_output_tokens": "100" },
                });
                let sent = reqwest::blocking::Client::new()
                    .post(format!("{url}/v1/chat/completions"))
                    .header("x-vigil-feature", "killed")
                    .header("x-agent-id", format!("agent-{i}"))
                    .json(&body)
                    .send();
                if let Ok(mut response) = sent {
                    let _ = std::io::copy(&mut response, &mut std::io::sink());
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&server, "killed").1 == 0 {
        assert!(Instant::now() < deadline, "no call was admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let held_at_kill = counter(&server, "killed").1;
    server.kill();
    for caller in callers {
        caller.join().expect("caller");
    }
    // Restarted, the sweeper expires what the dead process held once the lease has run.
    let server = env.start();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (spent, held) = loop {
        let (spent, held) = counter(&server, "killed");
        if held == 0 {
            break (spent, held);
        }
        assert!(Instant::now() < deadline, "{held} nano-dollars still held after the lease");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(held_at_kill > 0 && held == 0, "held {held_at_kill} at the kill, {held} after the lease");
    assert!(spent > 0, "the calls that were sent are charged their input");
    let ledger = server.get("/api/v1/ledger?limit=500", None);
    let expired =
        ledger.body["data"]["items"].as_array().into_iter().flatten().filter(|e| e["kind"] == "expired").count();
    assert!(expired >= 1, "{:?}", ledger.body);
    drop(server);
    let verified = env.run(&["ledger", "verify"]);
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{text}");
    assert!(text.contains("counters equal what the ledger derives"), "{text}");
}

#[test]
fn a_budget_caps_uncapped_calls_names_itself_keeps_spend_across_edits_and_rolls_back() {
    let upstream = MockUpstream::start();
    let env = budget_env_with(&upstream.url, "budget_output_tokens_default = 50");
    let server = env.start();
    let policy = |limit: f64| json!({ "budgets": [{ "id": "org", "period": "day", "limit_usd": limit }] });
    let saved = server.put("/api/v1/policy", None, &json!({ "document": policy(0.001) }).to_string());
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let call = |model: &str| {
        let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hello there" }],
                           "metadata": { "mock_output_tokens": "500" } });
        server.post("/v1/chat/completions", None, &body.to_string())
    };

    // A call without an output cap gets one, so its reservation bounds it; the provider
    // writes no more than that.
    let first = call("trial-a");
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(upstream.last().body["max_completion_tokens"], 50, "the cap is written in");
    assert_eq!(first.body["usage"]["completion_tokens"], 50);
    let spent_before = settled_spend(&server, "*");
    assert!(spent_before > 500_000, "50 output tokens at $10/M and the input: {spent_before}");

    // The next one does not fit: refused in the provider's shape, naming the budget and
    // the version, with when to come back.
    let refused = call("trial-a");
    assert_eq!((refused.status, refused.error_code()), (429, "budget_exceeded"), "{:?}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("budget \"org\" of policy version 1"), "{message}");
    assert!(refused.headers.contains_key("retry-after"), "{:?}", refused.headers);

    // Raising the limit keeps what was spent today; the call now fits.
    let v2 = server.put("/api/v1/policy", None, &json!({ "document": policy(0.002), "based_on": 1 }).to_string());
    assert_eq!(v2.status, 200, "{:?}", v2.body);
    assert_eq!(counter(&server, "*").0, spent_before, "an edit keeps the period's spend");
    assert_eq!(call("trial-a").status, 200);

    // Rolling back restores the tighter limit, and the refusal names the new version.
    let rolled = server.post("/api/v1/policy/rollback", None, &json!({ "version": 1, "based_on": 2 }).to_string());
    assert_eq!(rolled.status, 200, "{:?}", rolled.body);
    let refused = call("trial-a");
    assert_eq!(refused.error_code(), "budget_exceeded");
    assert!(
        refused.body["error"]["message"].as_str().is_some_and(|m| m.contains("policy version 3")),
        "{:?}",
        refused.body
    );

    // A model without a price cannot be bounded, so a hard budget refuses it.
    let unpriced = call("no-price-model");
    assert_eq!((unpriced.status, unpriced.error_code()), (403, "budget_unpriced"), "{:?}", unpriced.body);

    // The budget's state, and the ledger it comes from.
    let budgets = server.get("/api/v1/budgets", None);
    let org = &budgets.body["data"][0];
    assert_eq!((org["id"].as_str(), org["policy_version"].as_u64()), (Some("org"), Some(3)), "{:?}", budgets.body);
    assert_eq!(budgets.body["provenance"]["aggregation"], "summary");
    let ledger = server.get("/api/v1/ledger", None);
    let entries: Vec<&Value> = ledger.body["data"]["items"].as_array().into_iter().flatten().collect();
    let count = |kind: &str| entries.iter().filter(|e| e["kind"] == kind).count();
    // Three versions saved; two calls admitted and settled, each admission in its own
    // `reserved` entry or inside its settlement's (refusals reserve nothing).
    assert_eq!((count("policy.saved"), count("settled")), (3, 2), "{:?}", ledger.body);
    let admissions = count("reserved")
        + entries.iter().filter(|e| e["kind"] == "settled" && e["body"]["reserved"].is_object()).count();
    assert_eq!(admissions, 2, "{:?}", ledger.body);
}
