//! Policies through the API: validated with every problem at once, checked statically with
//! example requests, saved as versions with diffs, protected against lost updates, rolled
//! back, audited, and only an admin may change them.

use serde_json::json;

use crate::support::Env;

#[test]
fn a_policy_is_checked_versioned_diffed_guarded_and_rolled_back() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let admin = env.key("admin", "admin");
    let writer = env.key("writer", "write");
    let server = env.start();
    let put = |body: serde_json::Value, key: &str| server.put("/api/v1/policy", Some(key), &body.to_string());

    let none = server.get("/api/v1/policy", Some(&writer));
    assert_eq!(none.status, 404, "{:?}", none.body);
    assert!(none.body["error"]["message"].as_str().is_some_and(|m| m.contains("allowed")), "{:?}", none.body);

    // Every problem at once, each at its path.
    let bad = put(
        json!({ "document": {
            "rules": [{ "id": "a", "effect": "perhaps" }, { "id": "B!", "effect": "deny" }],
            "budgets": [{ "id": "m", "period": "month", "limit_usd": -5 }]
        } }),
        &admin,
    );
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    let paths: Vec<&str> = bad.body["error"]["details"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(paths, ["rules[0].effect", "rules[1].id", "budgets[0].limit_usd"], "{:?}", bad.body);

    // Checking saves nothing and shows findings with an example each.
    let shadowed = json!({
        "rules": [
            { "id": "no-gpt", "effect": "deny", "priority": 10, "match": { "models": ["gpt-*"] } },
            { "id": "mini", "effect": "allow", "match": { "models": ["gpt-4o-mini"] } }
        ]
    });
    let checked = server.post("/api/v1/policy/check", Some(&writer), &json!({ "document": shadowed }).to_string());
    assert_eq!(checked.status, 200, "{:?}", checked.body);
    let finding = &checked.body["data"]["findings"][0];
    assert_eq!((finding["kind"].as_str(), finding["entries"][0].as_str()), (Some("unreachable_rule"), Some("mini")));
    assert_eq!(finding["example"]["model"], "gpt-4o-mini");
    assert_eq!(server.get("/api/v1/policy", Some(&writer)).status, 404, "a check saves nothing");

    // Only an admin saves; a writer is refused.
    assert_eq!(put(json!({ "document": shadowed }), &writer).status, 403);
    let v1 = put(json!({ "document": shadowed }), &admin);
    assert_eq!(v1.status, 200, "{:?}", v1.body);
    assert_eq!(
        (v1.body["data"]["policy"]["version"].as_u64(), v1.body["data"]["changed"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(v1.body["data"]["findings"][0]["kind"], "unreachable_rule");

    let fixed = json!({
        "rules": [
            { "id": "no-gpt", "effect": "deny", "priority": 10, "match": { "models": ["gpt-*"] } },
            { "id": "mini", "effect": "allow", "priority": 20, "match": { "models": ["gpt-4o-mini"] } }
        ]
    });
    let v2 = put(json!({ "document": fixed, "based_on": 1 }), &admin);
    assert_eq!(v2.status, 200, "{:?}", v2.body);
    assert_eq!(v2.body["data"]["policy"]["version"], 2);
    assert_eq!(v2.body["data"]["changes"], json!([{ "path": "rules[mini].priority", "after": 20 }]));
    assert_eq!(v2.body["data"]["findings"][0]["kind"], "allow_deny_overlap", "{:?}", v2.body);

    // An edit based on a version that is no longer the latest is refused, not lost.
    let stale = put(json!({ "document": {}, "based_on": 1 }), &admin);
    assert_eq!(stale.status, 409, "{:?}", stale.body);

    // Rollback: a new version with the old document, saying which it restored.
    let back =
        server.post("/api/v1/policy/rollback", Some(&admin), &json!({ "version": 1, "based_on": 2 }).to_string());
    assert_eq!(back.status, 200, "{:?}", back.body);
    assert_eq!(back.body["data"]["policy"]["version"], 3);
    assert_eq!(back.body["data"]["policy"]["rolled_back_from"], 1);
    assert_eq!(back.body["data"]["policy"]["document"], shadowed);

    let current = server.get("/api/v1/policy", Some(&writer));
    assert_eq!(current.body["data"]["version"], 3);
    let old = server.get("/api/v1/policy/versions/2", Some(&writer));
    assert_eq!(old.body["data"]["document"], fixed);
    assert_eq!(server.get("/api/v1/policy/versions/nine", Some(&writer)).status, 404);
    let history = server.get("/api/v1/policy/versions?limit=2", Some(&writer));
    let versions: Vec<u64> =
        history.body["data"]["items"].as_array().expect("items").iter().filter_map(|v| v["version"].as_u64()).collect();
    assert_eq!(versions, [3, 2]);
    assert!(history.body["data"]["next_cursor"].is_string(), "{:?}", history.body);

    // Each change is on the record with its outcome.
    let audit = server.get("/api/v1/audit?action=policy.save", Some(&admin));
    let outcomes: Vec<&str> =
        audit.body["data"]["items"].as_array().expect("audit").iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 2, "{:?}", audit.body);
    assert!(outcomes.len() >= 4, "refusals are recorded too: {:?}", audit.body);
}

/// A kill switch for runs stops new runs and retries (403, naming it and the version) for
/// the keys it matches, and nothing else; switched off, runs are judged as before.
#[test]
fn a_kill_switch_for_runs_stops_new_runs_for_the_keys_it_matches() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let admin = env.key("admin", "admin");
    let writer = env.key("writer", "write");
    let writer_id = writer.split('_').nth(1).expect("id").to_owned();
    let other = env.key("other", "write");
    let server = env.start();
    let run = |key: &str| server.post("/api/v1/runs", Some(key), &json!({ "upload_id": "upl_missing" }).to_string());
    assert_eq!(run(&writer).status, 404, "no switch: the request is judged (an unknown upload)");

    let switch = |on: bool, based_on: Option<u64>| {
        let document = json!({ "kill_switches": [{ "id": "freeze", "on": on, "domains": ["runs"], "match": { "keys": [writer_id.clone()] } }] });
        let saved = server.put(
            "/api/v1/policy",
            Some(&admin),
            &json!({ "document": document, "based_on": based_on }).to_string(),
        );
        assert_eq!(saved.status, 200, "{:?}", saved.body);
        assert!(
            saved.body["data"]["findings"].as_array().is_some_and(|f| f.is_empty()),
            "runs are enforced: {:?}",
            saved.body
        );
    };
    switch(true, None);
    let refused = run(&writer);
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "policy_kill_switch");
    let message = refused.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("freeze") && message.contains("policy version 1"), "{message}");
    let retry = server.post("/api/v1/runs/run_x/retry", Some(&writer), "");
    assert_eq!(retry.status, 403, "retries too: {:?}", retry.body);
    assert_eq!(run(&other).status, 404, "another key is not switched off");
    switch(false, Some(1));
    assert_eq!(run(&writer).status, 404, "switched off: judged as before");
}
