//! The harness through the real binary: uploads over HTTP and the CLI.

use crate::support::{Env, Server, reply};

fn upload(server: &Server, name: &str, body: Vec<u8>, key: Option<&str>) -> crate::support::Reply {
    let mut req = server
        .client
        .post(format!("{}/api/v1/uploads?name={name}", server.url))
        .header("content-type", "application/octet-stream")
        .body(body);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    reply(req.send().expect("send"))
}

#[test]
fn uploads_are_stored_once_and_reuse_is_said_plainly() {
    let env = Env::new();
    let server = env.start();
    let csv = b"id,amount\n1,2.50\n2,3.75\n".to_vec();

    let first = upload(&server, "orders.csv", csv.clone(), None);
    assert_eq!(first.status, 201, "{:?}", first.body);
    let data = &first.body["data"];
    assert_eq!(data["reused"], false);
    assert_eq!(data["upload"]["format"], "csv");
    assert_eq!(data["upload"]["size_bytes"], csv.len());
    let sha = data["upload"]["sha256"].as_str().expect("sha").to_owned();
    let id = data["upload"]["id"].as_str().expect("id").to_owned();
    // The content is in the blob store under its hash.
    let blob = env.data().join("blobs/sha256").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(blob).expect("blob"), csv);

    let again = upload(&server, "orders-copy.csv", csv.clone(), None);
    assert_eq!(again.status, 201);
    let data = &again.body["data"];
    assert_eq!(data["reused"], true);
    assert_eq!(data["upload"]["id"], id.as_str());
    assert_ne!(data["attempt_id"], first.body["data"]["attempt_id"]);
    let message = data["message"].as_str().expect("message");
    assert!(message.starts_with(&format!("matched existing content, reusing upload {id} from ")), "{message}");

    // The CLI sees the same store and says the same.
    let path = env.dir.path().join("orders.csv");
    std::fs::write(&path, &csv).expect("write");
    let out = env.run(&["upload", path.to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let attempt: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(attempt["reused"], true);
    assert_eq!(attempt["upload"]["id"], id.as_str());

    let listed = server.get("/api/v1/uploads", None);
    assert_eq!(listed.body["data"]["items"].as_array().expect("items").len(), 1);
    let one = server.get(&format!("/api/v1/uploads/{id}"), None);
    assert_eq!(one.body["data"]["file_name"], "orders.csv");
    // Each attempt is an audit entry carrying the content's hash.
    let audit = server.get("/api/v1/audit?action=uploads.create", None);
    let entries = audit.body["data"]["items"].as_array().expect("audit items");
    assert_eq!(entries.len(), 3, "two over HTTP, one from the CLI: {:?}", audit.body);
    assert!(entries.iter().all(|e| e["body_sha256"] == sha.as_str()));
}

#[test]
fn an_upload_over_the_cap_is_refused_and_nothing_is_kept() {
    let mut env = Env::new();
    env.set("VIGIL_BLOBS_MAX_BYTES", "1000");
    let server = env.start();
    let reply = upload(&server, "big.bin", vec![b'x'; 5000], None);
    assert_eq!(reply.status, 413, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "payload_too_large");
    assert_eq!(server.get("/api/v1/uploads", None).body["data"]["items"].as_array().map(Vec::len), Some(0));
    let leftovers = std::fs::read_dir(env.data().join("blobs/tmp")).expect("tmp").count();
    assert_eq!(leftovers, 0);
}

#[test]
fn uploads_need_a_write_key_in_production() {
    let mut env = Env::new();
    let admin = env.key("admin", "admin");
    let reader = env.key("reader", "read");
    env.set("VIGIL_MODE", "production");
    let server = env.start();
    assert_eq!(upload(&server, "a.csv", b"a\n1\n".to_vec(), None).status, 401);
    assert_eq!(upload(&server, "a.csv", b"a\n1\n".to_vec(), Some(&reader)).status, 403);
    let ok = upload(&server, "a.csv", b"a\n1\n".to_vec(), Some(&admin));
    assert_eq!(ok.status, 201, "{:?}", ok.body);
}

#[test]
fn formats_are_detected_from_content() {
    let env = Env::new();
    let server = env.start();
    let cases: [(&str, &[u8], &str); 4] = [
        ("ledger.txt", b"account;amount\n4000;12,50\n4100;3,10\n", "csv"),
        ("events.json", b"{\"a\": 1}\n{\"a\": 2}\n", "ndjson"),
        ("book.csv", b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml xl/workbook.xml", "xlsx"),
        ("speech.bin", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", "wav"),
    ];
    for (name, body, expected) in cases {
        let reply = upload(&server, name, body.to_vec(), None);
        assert_eq!(reply.body["data"]["upload"]["format"], expected, "{name}");
    }
}
