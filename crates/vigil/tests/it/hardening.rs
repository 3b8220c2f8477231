//! What an outside reliability and security probe broke, kept fixed: each test drives the
//! real binary on loopback the way the probe did, bounded in count and time.

use serde_json::json;

use crate::support::Env;

/// Any write key could store counts near 2^64 and make every later stats read answer 500.
/// Counted fields are bounded at ingest (a 422 naming the field), and sums no longer fail
/// even where bounded values add up past `i64` (10,000 calls of the largest cost do).
#[test]
fn counted_fields_are_bounded_and_sums_cannot_break_stats() {
    let server = Env::new().start();
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
