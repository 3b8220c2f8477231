//! Ordered schema migrations. Each runs once, in its own transaction, and is recorded in
//! `schema_migrations`. Migrations are append-only: never edit one that has shipped.

use rusqlite::{Connection, OptionalExtension};
use vigil_core::time::Timestamp;

use crate::{Result, StoreError};

/// One schema change.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys and audit log",
        sql: r#"
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    salt        BLOB NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at          INTEGER NOT NULL,
    principal   TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    request_id  TEXT,
    body_sha256 TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'rejected', 'error')),
    status      INTEGER NOT NULL,
    prev_hash   TEXT NOT NULL,
    entry_hash  TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_principal ON audit_log (principal, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be changed'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted'); END;

CREATE TABLE health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL) STRICT;
"#,
    },
    Migration {
        version: 2,
        name: "gateway vitals",
        sql: r#"
CREATE TABLE vitals (
    seq                  INTEGER PRIMARY KEY,
    at                   INTEGER NOT NULL,
    request_id           TEXT,
    agent_id             TEXT NOT NULL,
    agent_type           TEXT NOT NULL,
    provider             TEXT NOT NULL,
    endpoint             TEXT NOT NULL,
    model_requested      TEXT,
    model_served         TEXT,
    streamed             INTEGER NOT NULL,
    status               INTEGER NOT NULL,
    outcome              TEXT NOT NULL,
    latency_us           INTEGER NOT NULL,
    ttft_us              INTEGER,
    input_tokens         INTEGER,
    output_tokens        INTEGER,
    cached_tokens        INTEGER,
    reasoning_tokens     INTEGER,
    usage_estimated      INTEGER NOT NULL,
    tool_calls           INTEGER NOT NULL,
    tool_names           TEXT NOT NULL,
    cost_nanos           INTEGER,
    unpriced             INTEGER NOT NULL,
    cost_reported        INTEGER NOT NULL,
    retries              INTEGER NOT NULL,
    error_class          TEXT,
    system_prompt_sha256 TEXT,
    feature              TEXT,
    user_tag             TEXT,
    client_ip            TEXT
) STRICT;
CREATE INDEX vitals_agent ON vitals (agent_id, seq);
CREATE INDEX vitals_at ON vitals (at);

-- Discovery: one row per agent, maintained as vitals are written.
CREATE TABLE agents (
    seq          INTEGER PRIMARY KEY,
    agent_id     TEXT NOT NULL UNIQUE,
    agent_type   TEXT NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    calls        INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    models       TEXT NOT NULL,
    ips          TEXT NOT NULL
) STRICT;
"#,
    },
    Migration {
        version: 3,
        name: "harness: uploads, runs, plugin executions, lineage",
        sql: r#"
-- One row per distinct content; each attempt to upload it is its own row below.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    size_bytes  INTEGER NOT NULL,
    file_name   TEXT NOT NULL,
    format      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
) STRICT;

CREATE TABLE upload_attempts (
    id          TEXT PRIMARY KEY,
    upload_id   TEXT NOT NULL REFERENCES uploads (id),
    file_name   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    by          TEXT NOT NULL,
    reused      INTEGER NOT NULL
) STRICT;
CREATE INDEX upload_attempts_upload ON upload_attempts (upload_id, at);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    upload_id    TEXT NOT NULL REFERENCES uploads (id),
    status       TEXT NOT NULL CHECK (status IN
                     ('queued', 'running', 'completed', 'completed_with_errors', 'failed', 'canceled', 'crashed')),
    seed         INTEGER NOT NULL,
    fingerprint  TEXT NOT NULL,
    pipeline     TEXT,
    plan         TEXT NOT NULL,
    settings     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    heartbeat_at INTEGER,
    owner_pid    INTEGER,
    error        TEXT,
    pinned       INTEGER NOT NULL DEFAULT 0,
    dir          TEXT NOT NULL
) STRICT;
CREATE INDEX runs_fingerprint ON runs (fingerprint, status);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE plugin_executions (
    run_id        TEXT NOT NULL REFERENCES runs (id),
    plugin_id     TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    layer         INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN
                      ('pending', 'running', 'ok', 'error', 'timeout', 'violation', 'skipped', 'cached', 'blocked')),
    cache_key     TEXT NOT NULL,
    cached_from   TEXT,
    started_at    INTEGER,
    finished_at   INTEGER,
    duration_us   INTEGER,
    cpu_us        INTEGER,
    max_rss_kib   INTEGER,
    error         TEXT,
    violations    TEXT NOT NULL DEFAULT '[]',
    enforced      TEXT,
    PRIMARY KEY (run_id, plugin_id)
) STRICT;
CREATE INDEX plugin_executions_cache ON plugin_executions (cache_key, status);

-- upload → dataset version → run → plugin result → artifact
CREATE TABLE lineage (
    seq       INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL REFERENCES runs (id),
    from_kind TEXT NOT NULL,
    from_id   TEXT NOT NULL,
    to_kind   TEXT NOT NULL,
    to_id     TEXT NOT NULL,
    relation  TEXT NOT NULL
) STRICT;
CREATE INDEX lineage_run ON lineage (run_id, seq);

-- What garbage collection removed, so a removed run or upload is explained, not just gone.
CREATE TABLE tombstones (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('run', 'upload', 'blob')),
    id         TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    removed_by TEXT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT NOT NULL
) STRICT;
CREATE INDEX tombstones_id ON tombstones (id);

-- Installed plugin bundles, content-addressed by the hash of their folder.
CREATE TABLE plugin_installs (
    seq           INTEGER PRIMARY KEY,
    plugin_id     TEXT NOT NULL,
    version       TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    permissions   TEXT NOT NULL,
    installed_at  INTEGER NOT NULL,
    installed_by  TEXT NOT NULL,
    approved_at   INTEGER,
    approved_by   TEXT,
    UNIQUE (plugin_id, bundle_sha256)
) STRICT;

-- Which install of each plugin is active, whether it is enabled, and what a rollback
-- returns to.
CREATE TABLE plugin_state (
    plugin_id        TEXT PRIMARY KEY,
    active_install   INTEGER NOT NULL REFERENCES plugin_installs (seq),
    previous_install INTEGER REFERENCES plugin_installs (seq),
    enabled          INTEGER NOT NULL
) STRICT;
"#,
    },
    Migration {
        version: 4,
        name: "immune system: input log, snapshots, control URLs",
        sql: r#"
-- Every input the immune engine accepted, in order, with the decisions it made: the
-- engine's state is the latest snapshot plus the inputs logged after it.
CREATE TABLE immune_log (
    seq        INTEGER PRIMARY KEY,
    at_us      INTEGER NOT NULL,
    input      TEXT NOT NULL,
    decisions  TEXT NOT NULL
) STRICT;

-- The engine's whole state after the input `seq`.
CREATE TABLE immune_snapshots (
    seq        INTEGER PRIMARY KEY,
    taken_at   INTEGER NOT NULL,
    state      TEXT NOT NULL
) STRICT;

-- Where an agent receives healing actions.
CREATE TABLE immune_controls (
    agent_id      TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    registered_by TEXT NOT NULL
) STRICT;
"#,
    },
    Migration {
        version: 5,
        name: "vitals: prompt-injection signal",
        sql: r#"
ALTER TABLE vitals ADD COLUMN injection_score REAL;
ALTER TABLE vitals ADD COLUMN injection_rules TEXT;
"#,
    },
    Migration {
        version: 6,
        name: "known issues per dataset kind, versioned",
        sql: r#"
-- What a kind of dataset is expected to show: every change is a new version, so the
-- history stays and a run records exactly the version it was evaluated against.
CREATE TABLE known_issue_sets (
    dataset_kind TEXT NOT NULL,
    version      INTEGER NOT NULL,
    issues       TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    PRIMARY KEY (dataset_kind, version)
) STRICT;
"#,
    },
    Migration {
        version: 7,
        name: "vitals: prompt-cache writes, the price table's cost beside a reported one",
        sql: r#"
ALTER TABLE vitals ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE vitals ADD COLUMN cache_write_1h_tokens INTEGER;
ALTER TABLE vitals ADD COLUMN table_cost_nanos INTEGER;
-- Before this version a cost not reported by the caller was the table's own figure.
UPDATE vitals SET table_cost_nanos = cost_nanos WHERE cost_reported = 0;
"#,
    },
    Migration {
        version: 8,
        name: "policy documents per tenant, versioned",
        sql: r#"
-- Every save is a new version; none is ever changed or removed, so any can be restored and
-- every decision can name the version it was made under.
CREATE TABLE policy_versions (
    tenant_id        TEXT NOT NULL,
    version          INTEGER NOT NULL,
    document         TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    created_by       TEXT NOT NULL,
    rolled_back_from INTEGER,
    PRIMARY KEY (tenant_id, version)
) STRICT;
"#,
    },
    Migration {
        version: 9,
        name: "budget reservations, hourly spend, the ledger",
        sql: r#"
-- One row per admitted reservation; `scopes` is the JSON list of budgets it counts against.
-- Settled and expired rows are removed after a retention; their ledger entries stay.
CREATE TABLE reservations (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    lease_until   INTEGER NOT NULL,
    amount_nanos  INTEGER NOT NULL,
    input_nanos   INTEGER NOT NULL,
    scopes        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('held', 'settled', 'expired')),
    settled_nanos INTEGER,
    settled_at    INTEGER
) STRICT;
CREATE INDEX reservations_lease ON reservations (lease_until) WHERE state = 'held';
CREATE INDEX reservations_settled ON reservations (settled_at) WHERE state <> 'held';

-- What each unsettled reservation holds on each budget.
CREATE TABLE budget_holds (
    tenant_id    TEXT NOT NULL,
    budget       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    reservation  TEXT NOT NULL,
    amount_nanos INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, budget, subject, reservation)
) STRICT, WITHOUT ROWID;
CREATE INDEX budget_holds_reservation ON budget_holds (reservation);

-- Settled spend per budget and subject, in hourly buckets (hour = unix time / 3600).
CREATE TABLE budget_spend (
    tenant_id   TEXT NOT NULL,
    budget      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    spent_nanos INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, budget, subject, hour)
) STRICT, WITHOUT ROWID;

-- Admissions, settlements and expiries, append-only and hash-chained like the audit log.
CREATE TABLE ledger (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at          INTEGER NOT NULL,
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    reservation TEXT,
    body        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    entry_hash  TEXT NOT NULL
) STRICT;
CREATE INDEX ledger_reservation ON ledger (reservation);
CREATE INDEX ledger_tenant ON ledger (tenant_id, seq);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: entries cannot be changed'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: entries cannot be deleted'); END;
"#,
    },
];

/// The schema version this binary writes and expects.
pub fn head_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT";

/// The highest applied migration, 0 for an empty database.
pub fn current_version(conn: &Connection) -> Result<i64> {
    let has_table: bool = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", [], |_| Ok(true))
        .optional()?
        .unwrap_or(false);
    if !has_table {
        return Ok(0);
    }
    Ok(conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}

/// Applies every pending migration. Refuses a database newer than this binary.
pub fn migrate(conn: &mut Connection) -> Result<i64> {
    let found = current_version(conn)?;
    let supported = head_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(CREATE_MIGRATIONS_TABLE)?;
        // Another process may have migrated while we waited for the write lock.
        if current_version(&tx)? >= migration.version {
            continue;
        }
        tx.execute_batch(migration.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![migration.version, migration.name, Timestamp::now().as_unix_micros()],
        )?;
        tx.commit()?;
        tracing::info!(version = migration.version, name = migration.name, "applied schema migration");
    }
    current_version(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        assert_eq!(MIGRATIONS.first().map(|m| m.version), Some(1));
    }

    #[test]
    fn migrate_is_idempotent_and_refuses_newer() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut conn).expect("first"), head_version());
        assert_eq!(migrate(&mut conn).expect("second"), head_version());
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)", []).expect("insert");
        match migrate(&mut conn) {
            Err(StoreError::SchemaTooNew { found: 999, supported }) => assert_eq!(supported, head_version()),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
