//! Runs, their plugin executions and lineage.
//!
//! A run row is created with its plan and one `pending` execution per planned plugin, in
//! one transaction with its audit entry. Executions are updated as they start and end;
//! the run's status follows. Lineage edges (upload → dataset version → run → plugin result
//! → artifact) are appended as they become known.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;
use vigil_core::id::{RunId, UploadId};
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::run::{ExecStatus, RunStatus};
use vigil_core::time::Timestamp;

use crate::audit::{NewAuditEntry, append_in};
use crate::uploads::new_id;
use crate::{Result, Store, StoreError};

/// A run as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct RunRecord {
    pub id: RunId,
    pub upload_id: UploadId,
    pub status: RunStatus,
    pub seed: u64,
    pub fingerprint: String,
    /// The plugins asked for, or `None` for the recommended plan.
    pub pipeline: Option<Vec<String>>,
    pub plan: Value,
    pub settings: Value,
    pub created_at: Timestamp,
    pub created_by: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    pub pinned: bool,
    /// The run's folder, relative to the runs directory.
    pub dir: String,
    #[serde(skip)]
    pub owner_pid: Option<u32>,
}

/// What a new run brings.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub upload_id: UploadId,
    pub seed: u64,
    pub fingerprint: String,
    pub pipeline: Option<Vec<String>>,
    pub plan: Value,
    pub settings: Value,
    pub created_by: String,
    /// One per planned plugin: id, version, layer, cache key.
    pub steps: Vec<NewExecution>,
}

#[derive(Clone, Debug)]
pub struct NewExecution {
    pub plugin_id: String,
    pub plugin_version: String,
    pub layer: u32,
    pub cache_key: String,
}

/// One plugin execution as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ExecutionRecord {
    pub run_id: RunId,
    pub plugin_id: String,
    pub plugin_version: String,
    pub layer: u32,
    pub status: ExecStatus,
    pub cache_key: String,
    /// For `cached`: the run whose result was reused.
    pub cached_from: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub duration_us: Option<u64>,
    pub cpu_us: Option<u64>,
    pub max_rss_kib: Option<u64>,
    pub error: Option<String>,
    pub violations: Value,
    /// What the sandbox enforced for this execution.
    pub enforced: Option<Value>,
}

/// How an execution ended.
#[derive(Clone, Debug, Default)]
pub struct ExecutionEnd {
    pub status: Option<ExecStatus>,
    pub cached_from: Option<String>,
    pub duration_us: Option<u64>,
    pub cpu_us: Option<u64>,
    pub max_rss_kib: Option<u64>,
    pub error: Option<String>,
    pub violations: Option<Value>,
    pub enforced: Option<Value>,
}

/// One lineage edge.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LineageEdge {
    pub from_kind: String,
    pub from_id: String,
    pub to_kind: String,
    pub to_id: String,
    pub relation: String,
}

const RUN_COLUMNS: &str = "id, upload_id, status, seed, fingerprint, pipeline, plan, settings, created_at, created_by, \
                           started_at, finished_at, error, pinned, dir, owner_pid";

fn parse<T: std::str::FromStr<Err = String>>(index: usize, text: &str) -> rusqlite::Result<T> {
    text.parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into()))
}

fn json(index: usize, text: &str) -> rusqlite::Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
}

fn time(value: Option<i64>) -> Option<Timestamp> {
    value.map(Timestamp::from_unix_micros)
}

fn unsigned(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let pipeline: Option<String> = row.get(5)?;
    Ok(RunRecord {
        id: RunId::new(row.get::<_, String>(0)?),
        upload_id: UploadId::new(row.get::<_, String>(1)?),
        status: parse(2, &row.get::<_, String>(2)?)?,
        seed: row.get::<_, i64>(3)? as u64,
        fingerprint: row.get(4)?,
        pipeline: pipeline
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?,
        plan: json(6, &row.get::<_, String>(6)?)?,
        settings: json(7, &row.get::<_, String>(7)?)?,
        created_at: Timestamp::from_unix_micros(row.get(8)?),
        created_by: row.get(9)?,
        started_at: time(row.get(10)?),
        finished_at: time(row.get(11)?),
        error: row.get(12)?,
        pinned: row.get(13)?,
        dir: row.get(14)?,
        owner_pid: row.get::<_, Option<i64>>(15)?.and_then(|p| u32::try_from(p).ok()),
    })
}

const EXEC_COLUMNS: &str = "run_id, plugin_id, plugin_version, layer, status, cache_key, cached_from, started_at, \
                            finished_at, duration_us, cpu_us, max_rss_kib, error, violations, enforced";

fn exec_from_row(row: &Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let enforced: Option<String> = row.get(14)?;
    Ok(ExecutionRecord {
        run_id: RunId::new(row.get::<_, String>(0)?),
        plugin_id: row.get(1)?,
        plugin_version: row.get(2)?,
        layer: row.get(3)?,
        status: parse(4, &row.get::<_, String>(4)?)?,
        cache_key: row.get(5)?,
        cached_from: row.get(6)?,
        started_at: time(row.get(7)?),
        finished_at: time(row.get(8)?),
        duration_us: unsigned(row.get(9)?),
        cpu_us: unsigned(row.get(10)?),
        max_rss_kib: unsigned(row.get(11)?),
        error: row.get(12)?,
        violations: json(13, &row.get::<_, String>(13)?)?,
        enforced: enforced.map(|e| json(14, &e)).transpose()?,
    })
}

fn get_run_in(conn: &rusqlite::Connection, id: &str) -> Result<RunRecord> {
    conn.query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), [id], run_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("run {id}")))
}

impl Store {
    /// Creates a queued run with a pending execution per step, and its audit entry.
    pub fn create_run(&self, new: &NewRun, audit: Option<&NewAuditEntry>) -> Result<RunRecord> {
        let id = new_id("run");
        let now = Timestamp::now();
        let pipeline = new.pipeline.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default());
        self.write(|tx| {
            tx.execute(
                "INSERT INTO runs (id, upload_id, status, seed, fingerprint, pipeline, plan, settings, created_at, created_by, dir)
                 VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?1)",
                params![
                    id,
                    new.upload_id.as_str(),
                    new.seed as i64,
                    new.fingerprint,
                    pipeline,
                    new.plan.to_string(),
                    new.settings.to_string(),
                    now.as_unix_micros(),
                    new.created_by
                ],
            )?;
            for step in &new.steps {
                tx.execute(
                    "INSERT INTO plugin_executions (run_id, plugin_id, plugin_version, layer, status, cache_key)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                    params![id, step.plugin_id, step.plugin_version, step.layer, step.cache_key],
                )?;
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            get_run_in(tx, &id)
        })
    }

    pub fn get_run(&self, id: &str) -> Result<RunRecord> {
        self.read(|conn| get_run_in(conn, id))
    }

    /// The newest run with this fingerprint that completed, for idempotent submission.
    pub fn completed_run_with_fingerprint(&self, fingerprint: &str) -> Result<Option<RunRecord>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE fingerprint = ?1 AND status = 'completed'
                         ORDER BY created_at DESC LIMIT 1"
                    ),
                    [fingerprint],
                    run_from_row,
                )
                .optional()?)
        })
    }

    /// One page of runs, newest first, optionally of one status.
    pub fn list_runs_page(
        &self,
        status: Option<RunStatus>,
        page: PageRequest,
    ) -> Result<(Vec<RunRecord>, Option<Cursor>)> {
        self.read(|conn| {
            let mut clauses = Vec::new();
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(status) = status {
                clauses.push("status = ?");
                values.push(status.as_str().to_owned().into());
            }
            if let Some(after) = page.after {
                clauses.push("rowid < ?");
                values.push(after.position().into());
            }
            let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
            let limit = page.fetch_limit();
            let sql = format!("SELECT {RUN_COLUMNS}, rowid FROM runs {filter} ORDER BY rowid DESC LIMIT {limit}");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |row| {
                Ok((run_from_row(row)?, row.get::<_, i64>(16)?))
            })?;
            let (items, next) = page.finish(rows.collect::<rusqlite::Result<Vec<_>>>()?, |(_, rowid)| *rowid);
            Ok((items.into_iter().map(|(r, _)| r).collect(), next))
        })
    }

    /// Moves a run to `status`. Starting stamps `started_at` and the owning process;
    /// a final status stamps `finished_at`. `audit` is appended in the same transaction.
    pub fn set_run_status(
        &self,
        id: &str,
        status: RunStatus,
        error: Option<&str>,
        audit: Option<&NewAuditEntry>,
    ) -> Result<RunRecord> {
        let now = Timestamp::now().as_unix_micros();
        self.write(|tx| {
            let changed = match status {
                RunStatus::Running => tx.execute(
                    "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?2), finished_at = NULL,
                     error = NULL, owner_pid = ?3, heartbeat_at = ?2 WHERE id = ?1",
                    params![id, now, std::process::id()],
                )?,
                RunStatus::Queued => tx.execute(
                    "UPDATE runs SET status = 'queued', finished_at = NULL, error = NULL WHERE id = ?1",
                    params![id],
                )?,
                _ => tx.execute(
                    "UPDATE runs SET status = ?2, finished_at = ?3, error = ?4, owner_pid = NULL WHERE id = ?1",
                    params![id, status.as_str(), now, error],
                )?,
            };
            if changed == 0 {
                return Err(StoreError::NotFound(format!("run {id}")));
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            get_run_in(tx, id)
        })
    }

    pub fn set_run_pinned(&self, id: &str, pinned: bool, audit: Option<&NewAuditEntry>) -> Result<RunRecord> {
        self.write(|tx| {
            if tx.execute("UPDATE runs SET pinned = ?2 WHERE id = ?1", params![id, pinned])? == 0 {
                return Err(StoreError::NotFound(format!("run {id}")));
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            get_run_in(tx, id)
        })
    }

    /// Runs in `queued` or `running` with their owning process, for crash recovery.
    pub fn unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') ORDER BY rowid"
            ))?;
            let rows = stmt.query_map([], run_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn list_executions(&self, run_id: &str) -> Result<Vec<ExecutionRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {EXEC_COLUMNS} FROM plugin_executions WHERE run_id = ?1 ORDER BY layer, plugin_id"
            ))?;
            let rows = stmt.query_map([run_id], exec_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Marks an execution started (clearing what an earlier attempt left).
    pub fn start_execution(&self, run_id: &str, plugin_id: &str) -> Result<()> {
        let now = Timestamp::now().as_unix_micros();
        self.write(|tx| {
            tx.execute(
                "UPDATE plugin_executions SET status = 'running', started_at = ?3, finished_at = NULL, duration_us = NULL,
                 cpu_us = NULL, max_rss_kib = NULL, error = NULL, violations = '[]', enforced = NULL, cached_from = NULL
                 WHERE run_id = ?1 AND plugin_id = ?2",
                params![run_id, plugin_id, now],
            )?;
            tx.execute("UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1", params![run_id, now])?;
            Ok(())
        })
    }

    /// Records how an execution ended.
    pub fn finish_execution(&self, run_id: &str, plugin_id: &str, end: &ExecutionEnd) -> Result<()> {
        let now = Timestamp::now().as_unix_micros();
        let status = end.status.unwrap_or(ExecStatus::Error);
        let signed = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        self.write(|tx| {
            tx.execute(
                "UPDATE plugin_executions SET status = ?3, finished_at = ?4, cached_from = ?5, duration_us = ?6, cpu_us = ?7,
                 max_rss_kib = ?8, error = ?9, violations = ?10, enforced = ?11 WHERE run_id = ?1 AND plugin_id = ?2",
                params![
                    run_id,
                    plugin_id,
                    status.as_str(),
                    now,
                    end.cached_from,
                    signed(end.duration_us),
                    signed(end.cpu_us),
                    signed(end.max_rss_kib),
                    end.error,
                    end.violations.clone().unwrap_or_else(|| Value::Array(Vec::new())).to_string(),
                    end.enforced.as_ref().map(Value::to_string),
                ],
            )?;
            tx.execute("UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1", params![run_id, now])?;
            Ok(())
        })
    }

    /// An earlier successful execution with this cache key, as (run id, run folder).
    pub fn cached_execution(&self, cache_key: &str, exclude_run: &str) -> Result<Option<(RunId, String)>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT e.run_id, r.dir FROM plugin_executions e JOIN runs r ON r.id = e.run_id
                     WHERE e.cache_key = ?1 AND e.status = 'ok' AND e.run_id != ?2
                       AND r.status IN ('completed', 'completed_with_errors')
                     ORDER BY e.finished_at DESC LIMIT 1",
                    params![cache_key, exclude_run],
                    |row| Ok((RunId::new(row.get::<_, String>(0)?), row.get(1)?)),
                )
                .optional()?)
        })
    }

    pub fn add_lineage(&self, run_id: &str, edges: &[LineageEdge]) -> Result<()> {
        self.write(|tx| {
            for e in edges {
                tx.execute(
                    "INSERT INTO lineage (run_id, from_kind, from_id, to_kind, to_id, relation) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![run_id, e.from_kind, e.from_id, e.to_kind, e.to_id, e.relation],
                )?;
            }
            Ok(())
        })
    }

    pub fn list_lineage(&self, run_id: &str) -> Result<Vec<LineageEdge>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT from_kind, from_id, to_kind, to_id, relation FROM lineage WHERE run_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([run_id], |row| {
                Ok(LineageEdge {
                    from_kind: row.get(0)?,
                    from_id: row.get(1)?,
                    to_kind: row.get(2)?,
                    to_id: row.get(3)?,
                    relation: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Removes a run's lineage (before a retry rebuilds it).
    pub fn clear_lineage(&self, run_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM lineage WHERE run_id = ?1", [run_id])?;
            Ok(())
        })
    }
}

/// A record of something garbage collection removed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Tombstone {
    pub kind: String,
    pub id: String,
    pub removed_at: Timestamp,
    pub removed_by: String,
    pub reason: String,
    pub detail: Value,
}

/// An upload garbage collection may remove: old, and used by no run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectableUpload {
    pub id: UploadId,
    pub sha256: String,
    pub size_bytes: u64,
}

/// Writes a tombstone and returns it as written (one timestamp for both).
fn insert_tombstone(
    tx: &rusqlite::Transaction<'_>,
    kind: &str,
    id: &str,
    by: &str,
    reason: &str,
    detail: Value,
) -> Result<Tombstone> {
    let removed_at = Timestamp::now();
    tx.execute(
        "INSERT INTO tombstones (kind, id, removed_at, removed_by, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![kind, id, removed_at.as_unix_micros(), by, reason, detail.to_string()],
    )?;
    Ok(Tombstone {
        kind: kind.to_owned(),
        id: id.to_owned(),
        removed_at,
        removed_by: by.to_owned(),
        reason: reason.to_owned(),
        detail,
    })
}

impl Store {
    /// Finished, unpinned runs created before `cutoff`: what garbage collection may remove.
    pub fn collectable_runs(&self, cutoff: Timestamp) -> Result<Vec<RunRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE pinned = 0 AND created_at < ?1
                 AND status NOT IN ('queued', 'running') ORDER BY created_at"
            ))?;
            let rows = stmt.query_map([cutoff.as_unix_micros()], run_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// How many runs are pinned.
    pub fn pinned_run_count(&self) -> Result<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM runs WHERE pinned = 1", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Removes a run's rows (the run, its executions and lineage), leaving a tombstone and
    /// `audit`, in one transaction. Refuses a pinned or unfinished run.
    pub fn remove_run(&self, id: &str, by: &str, reason: &str, audit: Option<&NewAuditEntry>) -> Result<Tombstone> {
        self.write(|tx| {
            let run = get_run_in(tx, id)?;
            if run.pinned {
                return Err(StoreError::Conflict(format!("run {id} is pinned")));
            }
            if !run.status.is_final() {
                return Err(StoreError::Conflict(format!("run {id} is {}", run.status)));
            }
            let detail = serde_json::json!({
                "upload_id": run.upload_id, "fingerprint": run.fingerprint, "status": run.status,
                "created_at": run.created_at.to_rfc3339(), "seed": run.seed,
            });
            tx.execute("DELETE FROM lineage WHERE run_id = ?1", [id])?;
            tx.execute("DELETE FROM plugin_executions WHERE run_id = ?1", [id])?;
            tx.execute("DELETE FROM runs WHERE id = ?1", [id])?;
            let tombstone = insert_tombstone(tx, "run", id, by, reason, detail)?;
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok(tombstone)
        })
    }

    /// Uploads created before `cutoff` that no remaining run uses, oldest first.
    pub fn collectable_uploads(&self, cutoff: Timestamp) -> Result<Vec<CollectableUpload>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.sha256, u.size_bytes FROM uploads u WHERE u.created_at < ?1
                 AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.upload_id = u.id) ORDER BY u.created_at",
            )?;
            let rows = stmt.query_map([cutoff.as_unix_micros()], |r| {
                Ok(CollectableUpload {
                    id: UploadId::new(r.get::<_, String>(0)?),
                    sha256: r.get(1)?,
                    size_bytes: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Removes an upload and its attempts, leaving a tombstone and `audit`. Refuses one a
    /// run still uses.
    pub fn remove_upload(&self, id: &str, by: &str, reason: &str, audit: Option<&NewAuditEntry>) -> Result<Tombstone> {
        self.write(|tx| {
            let used: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM runs WHERE upload_id = ?1)", [id], |r| r.get(0))?;
            if used {
                return Err(StoreError::Conflict(format!("upload {id} is used by a run")));
            }
            let (sha, size, name): (String, i64, String) = tx
                .query_row("SELECT sha256, size_bytes, file_name FROM uploads WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("upload {id}")))?;
            let detail = serde_json::json!({ "sha256": sha, "size_bytes": size, "file_name": name });
            tx.execute("DELETE FROM upload_attempts WHERE upload_id = ?1", [id])?;
            tx.execute("DELETE FROM uploads WHERE id = ?1", [id])?;
            let tombstone = insert_tombstone(tx, "upload", id, by, reason, detail)?;
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok(tombstone)
        })
    }

    /// Records a removed blob.
    pub fn tombstone_blob(&self, sha256: &str, size: u64, by: &str, reason: &str) -> Result<()> {
        self.write(|tx| {
            insert_tombstone(tx, "blob", sha256, by, reason, serde_json::json!({ "size_bytes": size })).map(drop)
        })
    }

    /// Whether any upload holds this content.
    pub fn blob_in_use(&self, sha256: &str) -> Result<bool> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM uploads WHERE sha256 = ?1)", [sha256], |r| r.get(0))?)
        })
    }

    /// The newest tombstone of `id`, if it was removed.
    pub fn tombstone(&self, id: &str) -> Result<Option<Tombstone>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT kind, id, removed_at, removed_by, reason, detail FROM tombstones WHERE id = ?1 ORDER BY seq DESC LIMIT 1",
                    [id],
                    |r| {
                        Ok(Tombstone {
                            kind: r.get(0)?,
                            id: r.get(1)?,
                            removed_at: Timestamp::from_unix_micros(r.get(2)?),
                            removed_by: r.get(3)?,
                            reason: r.get(4)?,
                            detail: json(5, &r.get::<_, String>(5)?)?,
                        })
                    },
                )
                .optional()?)
        })
    }
}
