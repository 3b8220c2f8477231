//! The command line: help, config validation, database doctor and backup, shutdown.

use std::time::Duration;

use crate::support::{ChannelReader, Env, write_file};

#[test]
fn help_lists_every_command() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    // The names in the "Commands:" section, each at the start of its own line: exactly the
    // commands Vigil has, so a command added, lost or renamed fails here.
    let section = help.split("Commands:").nth(1).and_then(|rest| rest.split("Options:").next()).unwrap_or("");
    let listed: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let expected = [
        "serve",
        "keys",
        "audit",
        "ledger",
        "db",
        "config",
        "upload",
        "run",
        "plugins",
        "demo",
        "immune",
        "bundle",
        "pin",
        "unpin",
        "gc",
        "replay",
        "version",
        "mock-upstream",
        "help",
    ];
    assert_eq!(listed, expected, "{help}");
    for command in expected.iter().filter(|c| **c != "help") {
        let out = env.run(&[command, "--help"]);
        assert!(out.status.success(), "vigil {command} --help failed");
        let usage = String::from_utf8_lossy(&out.stdout);
        assert!(usage.contains(&format!("Usage: vigil {command}")), "vigil {command} --help:\n{usage}");
    }
    let keys = env.ok(&["keys", "create", "--help"]);
    assert!(keys.contains("--scope") && keys.contains("read, write"), "{keys}");
    let bad = env.run(&["keys", "create", "--name", "x", "--scope", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope"));
}

#[test]
fn config_errors_name_the_key_and_its_source() {
    let mut env = Env::new();
    let file = env.data().join("vigil.toml");
    write_file(&file, "[rate_limit]\nper_sec = 5\n[store]\ndurability = \"fast\"\n");
    let out = env.run(&["config", "check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("per_sec"), "{stderr}");

    write_file(&file, "[store]\ndurability = \"fast\"\n");
    env.set("VIGIL_HTTP_MAX_BODY_BYTES", "1").set("VIGIL_RATE_LIMT_BURST", "3");
    let out = env.run(&["config", "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http.max_body_bytes (from VIGIL_HTTP_MAX_BODY_BYTES): must be between"), "{stderr}");
    assert!(stderr.contains("VIGIL_RATE_LIMT_BURST: unknown setting"), "{stderr}");
    assert!(env.try_start().is_err(), "serve validates the same way");

    env.vars.remove("VIGIL_HTTP_MAX_BODY_BYTES");
    env.vars.remove("VIGIL_RATE_LIMT_BURST");
    env.set("VIGIL_ADMIN_KEY", "a-secret-that-must-not-be-printed-0000000");
    let effective: serde_json::Value = serde_json::from_str(&env.ok(&["config", "check"])).expect("json");
    assert_eq!(effective["store"]["durability"], "fast", "file value applies");
    assert_eq!(effective["admin_key"], "<redacted>");
}

#[test]
fn doctor_and_backup_on_a_live_database() {
    let env = Env::new();
    let server = env.start();
    for i in 0..20 {
        assert_eq!(server.post("/api/v1/keys", None, &format!(r#"{{"name": "k{i}", "scope": "read"}}"#)).status, 201);
    }
    let doctor: serde_json::Value = serde_json::from_str(&env.ok(&["db", "doctor", "--json"])).expect("json");
    assert_eq!(doctor["healthy"], true, "{doctor}");
    assert_eq!(doctor["integrity"], serde_json::json!(["ok"]));
    assert_eq!(doctor["journal_mode"], "wal");
    assert_eq!(doctor["schema_version"], doctor["schema_head"]);
    let text = env.ok(&["db", "doctor"]);
    assert!(text.contains("integrity_check: ok") && text.contains("status:          healthy"), "{text}");

    let dest = env.dir.path().join("backup.db");
    let out = env.ok(&["db", "backup", dest.to_str().expect("utf8")]);
    assert!(out.contains("backed up"), "{out}");
    let copy = rusqlite::Connection::open(&dest).expect("open backup");
    let keys: i64 = copy.query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0)).expect("count");
    assert_eq!(keys, 20);
    let again = env.run(&["db", "backup", dest.to_str().expect("utf8")]);
    assert!(!again.status.success(), "never overwrites an existing file");
    drop(server);
}

#[test]
fn doctor_names_a_missing_database() {
    let env = Env::new();
    let out = env.run(&["db", "doctor"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Vigil database at"));
    assert!(!env.db().exists(), "doctor must not create one");
    for args in [&["audit", "verify"][..], &["keys", "list"], &["keys", "revoke", "0123456789abcdef"]] {
        let out = env.run(args);
        assert!(!out.status.success(), "{args:?} on a missing database");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no Vigil database at"), "{args:?}");
    }
    assert!(!env.db().exists(), "no command but serve and keys create makes a database");
}

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let env = Env::new();
    env.key("k", "read");
    let conn = rusqlite::Connection::open(env.db()).expect("open");
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)", []).expect("insert");
    drop(conn);
    let stderr = env.try_start().err().expect("refused");
    assert!(stderr.contains("schema version 99 is newer than this vigil binary supports"), "{stderr}");
}

#[test]
fn sigterm_drains_and_leaves_a_checkpointed_database() {
    let env = Env::new();
    let server = env.start();
    for i in 0..10 {
        server.post("/api/v1/keys", None, &format!(r#"{{"name": "k{i}", "scope": "read"}}"#));
    }
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let wal = std::fs::metadata(env.data().join("vigil.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the WAL is checkpointed and truncated on shutdown");
    let doctor: serde_json::Value = serde_json::from_str(&env.ok(&["db", "doctor", "--json"])).expect("json");
    assert_eq!(doctor["healthy"], true);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let env = Env::new();
    let server = env.start();
    // A request whose body arrives slowly is in flight when SIGTERM lands.
    let url = format!("{}/api/v1/keys", server.url);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let body = reqwest::blocking::Body::new(ChannelReader::new(rx));
    let client = server.client.clone();
    let handle = std::thread::spawn(move || {
        client.post(url).header("content-type", "application/json").body(body).send().map(|r| r.status().as_u16())
    });
    tx.send(br#"{"name": "slow", "#.to_vec()).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    crate::support::signal(&server.child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    tx.send(br#""scope": "read"}"#.to_vec()).expect("send");
    drop(tx);
    let status = handle.join().expect("join").expect("response");
    assert_eq!(status, 201, "the in-flight request completes");
    assert!(server.stop().success());
    assert!(env.ok(&["keys", "list"]).contains("slow"));
}

/// `vigil serve --listen ADDR` is where a new user looks first; it wins over VIGIL_LISTEN
/// and is checked like it.
#[test]
fn serve_listens_where_the_flag_says() {
    use std::io::BufRead;
    let mut env = Env::new();
    env.set("VIGIL_LISTEN", "not an address");
    let mut child = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("vigil listening on http://127.0.0.1:"), "{line}");

    let refused = env.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("local mode binds loopback only"), "{stderr}");
}
