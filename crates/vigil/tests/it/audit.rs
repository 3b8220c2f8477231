//! The audit log end to end: what gets recorded, and that tampering is detected.

use vigil_core::digest::Sha256Digest;

use crate::support::Env;

#[test]
fn mutating_requests_are_recorded_with_principal_body_hash_and_outcome() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let admin = env.key("admin", "admin");
    let admin_id = admin.split('_').nth(1).expect("id").to_owned();
    let reader = env.key("reader", "read");
    let server = env.start();

    let body = r#"{"name": "svc", "scope": "write"}"#;
    assert_eq!(server.post("/api/v1/keys", Some(&admin), body).status, 201);
    assert_eq!(server.post("/api/v1/keys", Some(&reader), body).status, 403);
    assert_eq!(server.post("/api/v1/keys", None, body).status, 401);
    assert_eq!(server.post("/api/v1/keys", Some(&admin), "{oops").status, 400);
    server.get("/api/v1/keys", Some(&admin)); // reads are not audited

    let reply = server.get("/api/v1/audit?action=keys.create", Some(&admin));
    let items = reply.body["data"]["items"].as_array().expect("items").clone();
    // Newest first: the malformed body, the anonymous attempt, the read key's, the success,
    // then the two CLI creations from before the server started.
    let summary: Vec<(String, String, u64)> = items
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
                e["status"].as_u64().unwrap_or(999),
            )
        })
        .collect();
    let reader_id = reader.split('_').nth(1).expect("id");
    let expected = [
        (format!("key:{admin_id}"), "rejected".to_owned(), 400),
        ("anonymous".to_owned(), "denied".to_owned(), 401),
        (format!("key:{reader_id}"), "denied".to_owned(), 403),
        (format!("key:{admin_id}"), "success".to_owned(), 201),
        ("cli".to_owned(), "success".to_owned(), 0),
        ("cli".to_owned(), "success".to_owned(), 0),
    ];
    assert_eq!(summary, expected);
    assert_eq!(items[3]["body_sha256"], Sha256Digest::of(body.as_bytes()).to_hex(), "hash of the body as sent");
    assert_eq!(items[3]["target"], "/api/v1/keys");
    assert!(items[3]["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    let verify = server.get("/api/v1/audit/verify", Some(&admin));
    assert_eq!(verify.body["data"]["entries"], 6);
    assert_eq!(verify.body["data"]["first_break"], serde_json::Value::Null);

    let filtered = server.get("/api/v1/audit?outcome=denied&limit=1", Some(&admin));
    assert_eq!(filtered.body["data"]["items"].as_array().map(Vec::len), Some(1));
    assert!(filtered.body["data"]["next_cursor"].is_string());
    let windowed = server.get("/api/v1/audit?from=2000-01-01T00:00:00Z", Some(&admin));
    assert_eq!(windowed.body["provenance"]["period"]["from"], "2000-01-01T00:00:00Z");
}

#[test]
fn editing_a_row_is_refused_and_a_forced_edit_is_detected() {
    let env = Env::new();
    for name in ["a", "b", "c", "d"] {
        env.key(name, "read");
    }
    assert!(env.ok(&["audit", "verify"]).contains("audit log intact: 4 entries"));

    let conn = rusqlite::Connection::open(env.db()).expect("open");
    let err = conn.execute("UPDATE audit_log SET principal = 'mallory' WHERE seq = 2", []).expect_err("trigger");
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(conn.execute("DELETE FROM audit_log WHERE seq = 4", []).is_err());

    // Someone with file access drops the guard and rewrites history.
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET principal = 'mallory' WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BROKEN at entry 2") && text.contains("edited"), "{text}");
}
