//! Crash safety: kill -9 the server at random moments while it acknowledges writes; every
//! acknowledged write must survive and the database must stay healthy.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::support::Env;

const TRIALS: u64 = 20;

/// A small xorshift generator: the kill moments differ per run, and the seed is printed so
/// a failing run can be reproduced with VIGIL_CRASH_SEED.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let env = Env::new();
    let mut seed = std::env::var("VIGIL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("crash test seed: {seed}");
    let mut acknowledged: Vec<String> = Vec::new();

    for trial in 0..TRIALS {
        let server = env.start();
        let url = format!("{}/api/v1/keys", server.url);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (url, acked, stop, client) = (url.clone(), acked.clone(), stop.clone(), server.client.clone());
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let body = format!(r#"{{"name": "t{trial}-w{w}-{i}", "scope": "read"}}"#);
                        let sent = client.post(&url).header("content-type", "application/json").body(body).send();
                        match sent {
                            Ok(resp) if resp.status().as_u16() == 201 => {
                                let json: serde_json::Value = resp.json().expect("json");
                                let id = json["data"]["id"].as_str().expect("id").to_owned();
                                acked.lock().expect("lock").push(id);
                            }
                            Ok(resp) => panic!("unexpected status {}", resp.status()),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + next(&mut seed) % 300));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().expect("writer");
        }
        acknowledged.extend(acked.lock().expect("lock").drain(..));

        let doctor: serde_json::Value =
            serde_json::from_str(&env.ok(&["db", "doctor", "--json"])).expect("doctor json");
        assert_eq!(doctor["healthy"], true, "trial {trial}: {doctor}");
        let stored: HashSet<String> = {
            let conn = rusqlite::Connection::open(env.db()).expect("open");
            let mut stmt = conn.prepare("SELECT id FROM api_keys").expect("prepare");
            stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
        };
        let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(lost.is_empty(), "trial {trial}: acknowledged keys lost after kill -9: {lost:?}");
        assert!(env.ok(&["audit", "verify"]).contains("audit log intact"), "trial {trial}");
        // A key and its audit entry commit together: never one without the other.
        let (keys, audited): (i64, i64) = rusqlite::Connection::open(env.db())
            .expect("open")
            .query_row(
                "SELECT (SELECT COUNT(*) FROM api_keys),
                        (SELECT COUNT(*) FROM audit_log WHERE action = 'keys.create' AND status = 201)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("count");
        assert_eq!(keys, audited, "trial {trial}: every created key has its audit entry");
    }
    assert!(acknowledged.len() as u64 >= TRIALS, "the writers made progress: {}", acknowledged.len());
}
