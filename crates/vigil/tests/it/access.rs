//! Keys, modes and the route-coverage proof: in production mode every non-public route
//! answers 401 without a key and 403 with a too-weak one.

use serde_json::json;

use crate::support::{Env, write_file};

const SCOPES: [&str; 3] = ["read", "write", "admin"];

fn rank(scope: &str) -> usize {
    SCOPES.iter().position(|s| *s == scope).unwrap_or_else(|| panic!("unknown scope {scope}"))
}

/// Substitutes a syntactically valid value for every `{param}` in an OpenAPI path.
fn concrete(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "0000000000000000" } else { seg }).collect::<Vec<_>>().join("/")
}

#[test]
fn production_mode_guards_every_registered_route() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let keys: Vec<String> = SCOPES.iter().map(|s| env.key(&format!("{s}-key"), s)).collect();
    let server = env.start();
    let admin = Some(keys[2].as_str());

    let doc = server.get("/api/v1/openapi.json", admin).body;
    let paths = doc["paths"].as_object().expect("paths");
    let mut public = Vec::new();
    let mut guarded = 0;
    for (path, methods) in paths {
        for (method, op) in methods.as_object().expect("methods") {
            let method = method.to_ascii_uppercase();
            let url = concrete(path);
            let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then_some("{}");
            let what = format!("{method} {path}");
            if op["security"] == json!([]) {
                let reply = server.request(&method, &url, None, body);
                assert_eq!(reply.status, 200, "{what} is public and must answer without a key");
                public.push(path.clone());
                continue;
            }
            let needed = op["x-vigil-scope"].as_str().unwrap_or_else(|| panic!("{what} declares no scope"));
            guarded += 1;

            // Model-call routes answer in the provider's (OpenAI's) error shape.
            let model_call = op["x-vigil-model-call"] == json!(true);
            assert_eq!(model_call, path.starts_with("/v1/") && path != "/v1/traces", "{what}: model calls are /v1/");
            let (unauthorized, forbidden) =
                if model_call { ("invalid_api_key", "insufficient_scope") } else { ("unauthorized", "forbidden") };
            let anonymous = server.request(&method, &url, None, body);
            assert_eq!(anonymous.status, 401, "{what} without a key: {:?}", anonymous.body);
            assert_eq!(anonymous.error_code(), unauthorized);

            let bogus = format!("vgl_0123456789abcdef_{}", "0".repeat(64));
            assert_eq!(server.request(&method, &url, Some(&bogus), body).status, 401, "{what} with an unknown key");

            for (scope, key) in SCOPES.iter().zip(&keys) {
                let reply = server.request(&method, &url, Some(key), body);
                if rank(scope) < rank(needed) {
                    assert_eq!(reply.status, 403, "{what} with a {scope} key: {:?}", reply.body);
                    assert_eq!(reply.error_code(), forbidden);
                } else {
                    assert!(![401, 403].contains(&reply.status), "{what} with a {scope} key: {:?}", reply.body);
                }
            }

            // HEAD runs the GET handler, so it must be guarded exactly like GET.
            if method == "GET" {
                assert_eq!(server.request("HEAD", &url, None, None).status, 401, "HEAD {path} without a key");
                for (scope, key) in SCOPES.iter().zip(&keys) {
                    let status = server.request("HEAD", &url, Some(key), None).status;
                    if rank(scope) < rank(needed) {
                        assert_eq!(status, 403, "HEAD {path} with a {scope} key");
                    }
                }
            }
        }
    }
    public.sort();
    assert_eq!(public, ["/health/live", "/health/ready"], "only the health probes are public");
    assert!(guarded >= 9, "expected every API route in the document, saw {guarded}");

    // Paths nobody registered are denied too, so they cannot be probed without a key.
    assert_eq!(server.get("/api/v1/nothing-here", None).status, 401);
    assert_eq!(server.get("/api/v1/nothing-here", Some(&keys[0])).status, 404);
}

#[test]
fn production_mode_refuses_to_start_without_an_admin_key() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let stderr = env.try_start().err().expect("must not start");
    assert!(stderr.contains("production mode needs an admin key"), "{stderr}");

    // A read key is not enough.
    env.key("reader", "read");
    assert!(env.try_start().is_err());
}

#[test]
fn admin_key_file_wins_and_bad_files_stop_startup() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let secret = "file-admin-key-0123456789abcdefghijklmnop";
    let file = env.dir.path().join("secrets/admin");
    write_file(&file, &format!("{secret}\n"));
    env.set("VIGIL_ADMIN_KEY", "plain-variable-key-that-should-lose-000000");
    env.set("VIGIL_ADMIN_KEY_FILE", file.display().to_string());
    let server = env.start();

    let bearer = server
        .client
        .get(format!("{}/api/v1/keys", server.url))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .expect("send");
    assert_eq!(bearer.status().as_u16(), 200, "Authorization: Bearer carries the key");
    assert_eq!(server.get("/api/v1/keys", Some("plain-variable-key-that-should-lose-000000")).status, 401);
    drop(server);

    let missing = env.dir.path().join("secrets/missing");
    env.set("VIGIL_ADMIN_KEY_FILE", missing.display().to_string());
    let stderr = env.try_start().err().expect("missing file stops start-up");
    assert!(stderr.contains("VIGIL_ADMIN_KEY_FILE") && stderr.contains("missing"), "{stderr}");

    let empty = env.dir.path().join("secrets/empty");
    write_file(&empty, "\n");
    env.set("VIGIL_ADMIN_KEY_FILE", empty.display().to_string());
    let stderr = env.try_start().err().expect("empty file stops start-up");
    assert!(stderr.contains("VIGIL_ADMIN_KEY_FILE") && stderr.contains("is empty"), "{stderr}");
}

#[test]
fn local_mode_admits_loopback_without_a_key_but_checks_presented_ones() {
    let env = Env::new();
    let server = env.start();
    assert_eq!(server.get("/api/v1/keys", None).status, 200);
    let reply = server.get("/api/v1/keys", Some("not-a-key"));
    assert_eq!(reply.status, 401, "a wrong key is an error even in local mode");

    let read = env.key("reader", "read");
    assert_eq!(server.get("/api/v1/version", Some(&read)).status, 200);
    assert_eq!(server.get("/api/v1/keys", Some(&read)).status, 403);
}

#[test]
fn local_mode_refuses_a_public_listen_address() {
    let mut env = Env::new();
    env.set("VIGIL_LISTEN", "0.0.0.0:0");
    let stderr = env.try_start().err().expect("refused");
    assert!(stderr.contains("listen (from VIGIL_LISTEN): local mode binds loopback only"), "{stderr}");
}

#[test]
fn revoked_key_stops_working() {
    let mut env = Env::new();
    env.set("VIGIL_MODE", "production");
    let admin = env.key("admin", "admin");
    let server = env.start();
    let created = server.post("/api/v1/keys", Some(&admin), r#"{"name": "ci", "scope": "read"}"#);
    assert_eq!(created.status, 201);
    let secret = created.body["data"]["secret"].as_str().expect("secret").to_owned();
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(server.get("/api/v1/version", Some(&secret)).status, 200);

    // Revoked from the CLI (another process) while the server runs: picked up by the key
    // cache's poll, well within a second.
    env.ok(&["keys", "revoke", &id]);
    let revoked_at = std::time::Instant::now();
    while server.get("/api/v1/version", Some(&secret)).status != 401 {
        assert!(revoked_at.elapsed() < std::time::Duration::from_secs(1), "revocation not applied within 1 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Revoked through the API: applied before the answer.
    let other = server.post("/api/v1/keys", Some(&admin), r#"{"name": "ci2", "scope": "read"}"#);
    let other_secret = other.body["data"]["secret"].as_str().expect("secret").to_owned();
    let other_id = other.body["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(server.get("/api/v1/version", Some(&other_secret)).status, 200, "usable at once");
    assert_eq!(server.request("DELETE", &format!("/api/v1/keys/{other_id}"), Some(&admin), None).status, 200);
    assert_eq!(server.get("/api/v1/version", Some(&other_secret)).status, 401, "refused at once");
    assert_eq!(server.request("DELETE", &format!("/api/v1/keys/{id}"), Some(&admin), None).status, 409);
    // A revoked key stays on record, for the audit trail, and says when it was revoked.
    let kept = server.get(&format!("/api/v1/keys/{other_id}"), Some(&admin));
    assert_eq!(kept.status, 200);
    assert!(kept.body["data"]["revoked_at"].is_string(), "{:?}", kept.body);

    let listed = server.get("/api/v1/keys?include_revoked=true", Some(&admin));
    let items = listed.body["data"]["items"].as_array().expect("items");
    assert!(items.iter().all(|k| k.get("secret").is_none() && k.get("secret_hash").is_none()));
}
