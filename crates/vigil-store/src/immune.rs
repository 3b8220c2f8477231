//! The immune system's durable state: the log of engine inputs with their decisions, the
//! engine snapshots, and the control URLs agents register.
//!
//! The store keeps these as JSON text and does not interpret them (the engine's types live
//! in `vigil-immune`). The engine's state is the newest snapshot plus every logged input
//! after it; [`Store::save_immune_snapshot`] keeps the newest [`SNAPSHOTS_KEPT`] and drops
//! the log up to the oldest of them, so an export (oldest snapshot + the log after it)
//! always replays.

use rusqlite::{OptionalExtension, params};
use vigil_core::id::AgentId;
use vigil_core::time::Timestamp;

use crate::{Result, Store};

/// Snapshots kept; the log reaches back to the oldest of them.
pub const SNAPSHOTS_KEPT: usize = 3;

/// One logged input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImmuneLogEntry {
    pub seq: i64,
    pub at_us: i64,
    /// The input, as JSON.
    pub input: String,
    /// The decisions it led to, as a JSON array.
    pub decisions: String,
}

/// A saved engine state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImmuneSnapshot {
    /// The last logged input the state includes.
    pub seq: i64,
    pub taken_at: Timestamp,
    pub state: String,
}

/// Where an agent receives healing actions.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ControlUrl {
    pub agent_id: AgentId,
    pub url: String,
    pub registered_at: Timestamp,
    pub registered_by: String,
}

impl Store {
    /// Appends inputs (their `seq`s continue the log) in one transaction.
    pub fn append_immune_log(&self, entries: &[ImmuneLogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt =
                tx.prepare_cached("INSERT INTO immune_log (seq, at_us, input, decisions) VALUES (?1, ?2, ?3, ?4)")?;
            for e in entries {
                stmt.execute(params![e.seq, e.at_us, e.input, e.decisions])?;
            }
            Ok(())
        })
    }

    /// Up to `limit` logged inputs after `seq`, oldest first.
    pub fn immune_log_after(&self, seq: i64, limit: usize) -> Result<Vec<ImmuneLogEntry>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at_us, input, decisions FROM immune_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![seq, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(ImmuneLogEntry { seq: row.get(0)?, at_us: row.get(1)?, input: row.get(2)?, decisions: row.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The highest logged `seq` (0 when the log is empty and no snapshot was taken).
    pub fn last_immune_seq(&self) -> Result<i64> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM immune_log), 0), COALESCE((SELECT MAX(seq) FROM immune_snapshots), 0))",
                [],
                |row| row.get(0),
            )?)
        })
    }

    /// Saves the state after input `seq`, keeps the newest [`SNAPSHOTS_KEPT`], and drops
    /// the log no kept snapshot needs.
    pub fn save_immune_snapshot(&self, seq: i64, state: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO immune_snapshots (seq, taken_at, state) VALUES (?1, ?2, ?3)",
                params![seq, Timestamp::now().as_unix_micros(), state],
            )?;
            tx.execute(
                "DELETE FROM immune_snapshots WHERE seq NOT IN
                    (SELECT seq FROM immune_snapshots ORDER BY seq DESC LIMIT ?1)",
                [i64::try_from(SNAPSHOTS_KEPT).unwrap_or(i64::MAX)],
            )?;
            tx.execute("DELETE FROM immune_log WHERE seq <= (SELECT MIN(seq) FROM immune_snapshots)", [])?;
            Ok(())
        })
    }

    /// Every kept snapshot, newest first (a restore falls back to older ones).
    pub fn immune_snapshots(&self) -> Result<Vec<ImmuneSnapshot>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq, taken_at, state FROM immune_snapshots ORDER BY seq DESC")?;
            let rows = stmt.query_map([], |row| {
                Ok(ImmuneSnapshot {
                    seq: row.get(0)?,
                    taken_at: Timestamp::from_unix_micros(row.get(1)?),
                    state: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The replay file in one read transaction, so a snapshot taken meanwhile cannot prune
    /// the log out from under it: `line` gets the oldest kept snapshot (as `{"seq", "snapshot"}`)
    /// and then every logged input after it (`{"seq", "input", "decisions"}`), one JSON
    /// text each. Returns the number of inputs.
    pub fn export_immune(&self, line: &mut dyn FnMut(String) -> std::io::Result<()>) -> Result<u64> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let io = crate::StoreError::io("writing the immune export");
            let oldest: Option<(i64, String)> = tx
                .query_row("SELECT seq, state FROM immune_snapshots ORDER BY seq ASC LIMIT 1", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let start = match oldest {
                Some((seq, state)) => {
                    line(format!("{{\"seq\":{seq},\"snapshot\":{state}}}")).map_err(io)?;
                    seq
                }
                None => 0,
            };
            let mut stmt = tx.prepare("SELECT seq, input, decisions FROM immune_log WHERE seq > ?1 ORDER BY seq")?;
            let mut rows = stmt.query([start])?;
            let mut inputs = 0;
            while let Some(row) = rows.next()? {
                let (seq, input, decisions): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
                line(format!("{{\"seq\":{seq},\"input\":{input},\"decisions\":{decisions}}}"))
                    .map_err(crate::StoreError::io("writing the immune export"))?;
                inputs += 1;
            }
            Ok(inputs)
        })
    }

    /// The newest snapshot, or the oldest kept one (the start of a complete export).
    pub fn immune_snapshot(&self, newest: bool) -> Result<Option<ImmuneSnapshot>> {
        let order = if newest { "DESC" } else { "ASC" };
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT seq, taken_at, state FROM immune_snapshots ORDER BY seq {order} LIMIT 1"),
                    [],
                    |row| {
                        Ok(ImmuneSnapshot {
                            seq: row.get(0)?,
                            taken_at: Timestamp::from_unix_micros(row.get(1)?),
                            state: row.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    pub fn set_control_url(&self, agent_id: &str, url: &str, by: &str) -> Result<ControlUrl> {
        let at = Timestamp::now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO immune_controls (agent_id, url, registered_at, registered_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (agent_id) DO UPDATE SET url = ?2, registered_at = ?3, registered_by = ?4",
                params![agent_id, url, at.as_unix_micros(), by],
            )?;
            Ok(())
        })?;
        Ok(ControlUrl {
            agent_id: AgentId::new(agent_id),
            url: url.to_owned(),
            registered_at: at,
            registered_by: by.to_owned(),
        })
    }

    /// Forgets an agent's control URL; whether there was one.
    pub fn remove_control_url(&self, agent_id: &str) -> Result<bool> {
        self.write(|tx| Ok(tx.execute("DELETE FROM immune_controls WHERE agent_id = ?1", [agent_id])? > 0))
    }

    pub fn control_url(&self, agent_id: &str) -> Result<Option<ControlUrl>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT agent_id, url, registered_at, registered_by FROM immune_controls WHERE agent_id = ?1",
                    [agent_id],
                    |row| {
                        Ok(ControlUrl {
                            agent_id: AgentId::new(row.get::<_, String>(0)?),
                            url: row.get(1)?,
                            registered_at: Timestamp::from_unix_micros(row.get(2)?),
                            registered_by: row.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn entry(seq: i64) -> ImmuneLogEntry {
        ImmuneLogEntry { seq, at_us: seq * 10, input: format!("{{\"n\":{seq}}}"), decisions: "[]".into() }
    }

    #[test]
    fn log_snapshots_and_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("v.db"), StoreOptions::default()).expect("store");
        assert_eq!(store.last_immune_seq().expect("seq"), 0);
        assert_eq!(store.immune_snapshot(true).expect("snapshot"), None);
        store.append_immune_log(&(1..=10).map(entry).collect::<Vec<_>>()).expect("append");
        assert_eq!(store.last_immune_seq().expect("seq"), 10);
        assert_eq!(store.immune_log_after(7, 100).expect("after"), vec![entry(8), entry(9), entry(10)]);
        assert_eq!(store.immune_log_after(0, 2).expect("limit").len(), 2);
        // A repeated seq is refused, and nothing of the batch is kept.
        assert!(store.append_immune_log(&[entry(11), entry(10)]).is_err());
        assert_eq!(store.last_immune_seq().expect("seq"), 10);

        for (i, seq) in [2, 4, 6, 8].into_iter().enumerate() {
            store.save_immune_snapshot(seq, &format!("state {i}")).expect("snapshot");
        }
        let newest = store.immune_snapshot(true).expect("newest").expect("some");
        let oldest = store.immune_snapshot(false).expect("oldest").expect("some");
        assert_eq!((newest.seq, newest.state.as_str()), (8, "state 3"));
        // Three kept: 4, 6, 8; the log starts right after the oldest.
        assert_eq!(oldest.seq, 4);
        assert_eq!(store.immune_log_after(0, 100).expect("log").first().map(|e| e.seq), Some(5));
    }

    #[test]
    fn control_urls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("v.db"), StoreOptions::default()).expect("store");
        assert_eq!(store.control_url("a").expect("get"), None);
        store.set_control_url("a", "http://127.0.0.1:9/one", "ops").expect("set");
        store.set_control_url("a", "http://127.0.0.1:9/two", "lead").expect("replace");
        let url = store.control_url("a").expect("get").expect("some");
        assert_eq!((url.url.as_str(), url.registered_by.as_str()), ("http://127.0.0.1:9/two", "lead"));
        assert!(store.remove_control_url("a").expect("remove"));
        assert!(!store.remove_control_url("a").expect("again"));
    }
}
