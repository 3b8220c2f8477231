//! The audit log: one entry per mutating request (or CLI action), append-only and
//! hash-chained.
//!
//! Each entry's `entry_hash` is `sha256(prev_hash ‖ "\n" ‖ canonical JSON of its fields)`,
//! and `prev_hash` is the previous entry's `entry_hash` (zeros for the first). Triggers
//! reject `UPDATE` and `DELETE`; someone who bypasses them (by dropping the triggers or
//! editing the file) breaks the chain, which [`Store::verify_audit`] reports with the first
//! entry that no longer matches. Sequence numbers are dense, so a deleted entry in the
//! middle shows as a gap. Truncating the newest entries leaves a valid shorter chain: keep
//! the head hash that `vigil audit verify` prints somewhere else to detect that too.

use rusqlite::{Row, params};
use vigil_core::digest::Sha256Digest;
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;

use crate::{Result, Store, StoreError};

/// How a mutating request ended, derived from its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// 2xx/3xx: the change happened.
    Success,
    /// 401, 403, 429: the caller was not allowed to try.
    Denied,
    /// Other 4xx: the request was wrong.
    Rejected,
    /// 5xx: Vigil failed.
    Error,
}

impl AuditOutcome {
    pub fn from_status(status: u16) -> Self {
        match status {
            401 | 403 | 429 => AuditOutcome::Denied,
            400..=499 => AuditOutcome::Rejected,
            500..=599 => AuditOutcome::Error,
            _ => AuditOutcome::Success,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Rejected => "rejected",
            AuditOutcome::Error => "error",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [AuditOutcome::Success, AuditOutcome::Denied, AuditOutcome::Rejected, AuditOutcome::Error]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// What the caller supplies; sequence, id, time and hashes are assigned on append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// `local`, `cli`, `anonymous`, `env-admin`, or `key:<id>`.
    pub principal: String,
    /// The operation, for example `keys.create`.
    pub action: String,
    /// What it acted on, for example `/api/v1/keys/0123456789abcdef`.
    pub target: String,
    pub request_id: Option<String>,
    pub body_sha256: Sha256Digest,
    /// HTTP status; 0 for actions taken outside HTTP (the CLI).
    pub status: u16,
}

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub id: String,
    pub at: Timestamp,
    pub principal: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub body_sha256: Sha256Digest,
    pub outcome: AuditOutcome,
    pub status: u16,
    pub prev_hash: Sha256Digest,
    pub entry_hash: Sha256Digest,
}

impl AuditEntry {
    fn compute_hash(&self) -> Sha256Digest {
        let fields = serde_json::json!([
            self.seq,
            self.id,
            self.at.as_unix_micros(),
            self.principal,
            self.action,
            self.target,
            self.request_id,
            self.body_sha256.to_hex(),
            self.outcome.as_str(),
            self.status,
        ]);
        let mut text = self.prev_hash.to_hex();
        text.push('\n');
        text.push_str(&fields.to_string());
        Sha256Digest::of(text.as_bytes())
    }
}

/// Filters for listing; all optional and combined with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// The result of walking the whole chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct AuditVerification {
    /// Entries verified intact: all of them, or those before the first break.
    pub entries: u64,
    /// The newest entry's hash: record it elsewhere to detect truncation later.
    pub head: Option<Sha256Digest>,
    /// The first entry that breaks the chain, and why. `None` means intact.
    pub first_break: Option<ChainBreak>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

const AUDIT_COLUMNS: &str =
    "seq, id, at, principal, action, target, request_id, body_sha256, outcome, status, prev_hash, entry_hash";

fn conversion_error(column: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, message.into())
}

fn digest_column(row: &Row<'_>, column: usize) -> rusqlite::Result<Sha256Digest> {
    let text: String = row.get(column)?;
    text.parse().map_err(|e| conversion_error(column, format!("{e}")))
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let outcome: String = row.get(8)?;
    Ok(AuditEntry {
        seq: row.get(0)?,
        id: row.get(1)?,
        at: Timestamp::from_unix_micros(row.get(2)?),
        principal: row.get(3)?,
        action: row.get(4)?,
        target: row.get(5)?,
        request_id: row.get(6)?,
        body_sha256: digest_column(row, 7)?,
        outcome: AuditOutcome::parse(&outcome).ok_or_else(|| conversion_error(8, format!("outcome {outcome:?}")))?,
        status: row.get(9)?,
        prev_hash: digest_column(row, 10)?,
        entry_hash: digest_column(row, 11)?,
    })
}

/// Appends inside an open write transaction, so an action and its audit entry commit
/// together.
pub(crate) fn append_in(tx: &rusqlite::Transaction<'_>, new: &NewAuditEntry) -> Result<AuditEntry> {
    let (last_seq, prev_hash): (i64, Option<String>) = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0), (SELECT entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1) FROM audit_log",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let prev_hash = match prev_hash {
        Some(text) => text
            .parse()
            .map_err(|e| StoreError::Invalid(format!("audit entry {last_seq} has a malformed hash: {e}")))?,
        None => Sha256Digest::ZERO,
    };
    let mut entry = AuditEntry {
        seq: last_seq + 1,
        id: uuid::Uuid::now_v7().to_string(),
        at: Timestamp::now(),
        principal: new.principal.clone(),
        action: new.action.clone(),
        target: new.target.clone(),
        request_id: new.request_id.clone(),
        body_sha256: new.body_sha256,
        outcome: AuditOutcome::from_status(new.status),
        status: new.status,
        prev_hash,
        entry_hash: Sha256Digest::ZERO,
    };
    entry.entry_hash = entry.compute_hash();
    tx.prepare_cached(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        entry.seq,
        entry.id,
        entry.at.as_unix_micros(),
        entry.principal,
        entry.action,
        entry.target,
        entry.request_id,
        entry.body_sha256.to_hex(),
        entry.outcome.as_str(),
        entry.status,
        entry.prev_hash.to_hex(),
        entry.entry_hash.to_hex(),
    ])?;
    Ok(entry)
}

/// The SQL and parameters for one page. Only the filters in use go into the SQL, and the
/// page limit (a validated integer) goes into its text: both `?n IS NULL OR ...` and
/// `LIMIT ?` make SQLite recompile a statement on every execution, which cost a fifth of
/// the list endpoint's time.
fn list_sql(filter: &AuditFilter, page: PageRequest) -> (String, Vec<rusqlite::types::Value>) {
    let mut conditions: Vec<&str> = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut add = |condition: &'static str, value: Option<rusqlite::types::Value>| {
        if let Some(value) = value {
            conditions.push(condition);
            values.push(value);
        }
    };
    add("seq < ?", page.after.map(|c| c.position().into()));
    add("principal = ?", filter.principal.clone().map(Into::into));
    add("action = ?", filter.action.clone().map(Into::into));
    add("outcome = ?", filter.outcome.map(|o| o.as_str().to_owned().into()));
    add("at >= ?", filter.from.map(|t| t.as_unix_micros().into()));
    add("at < ?", filter.to.map(|t| t.as_unix_micros().into()));
    let where_clause =
        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    // One extra row tells whether another page exists.
    let sql =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_log {where_clause} ORDER BY seq DESC LIMIT {}", page.fetch_limit());
    (sql, values)
}

impl Store {
    /// Appends one entry in its own transaction.
    pub fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        self.write(|tx| append_in(tx, entry))
    }

    /// Lists entries newest first. Returns the page and the cursor for the next one.
    pub fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<(Vec<AuditEntry>, Option<Cursor>)> {
        let (sql, values) = list_sql(filter, page);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), entry_from_row)?;
            Ok(page.finish(rows.collect::<rusqlite::Result<Vec<_>>>()?, |e| e.seq))
        })
    }

    /// Walks the whole chain from the first entry, recomputing every hash.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            let mut expected_prev = Sha256Digest::ZERO;
            let mut expected_seq = 1;
            let mut entries = 0u64;
            let mut first_break = None;
            while let Some(row) = rows.next()? {
                let entry = match entry_from_row(row) {
                    Ok(entry) => entry,
                    Err(e) => {
                        let seq = row.get(0).unwrap_or(expected_seq);
                        first_break = Some(ChainBreak { seq, reason: format!("unreadable entry: {e}") });
                        break;
                    }
                };
                let reason = if entry.seq != expected_seq {
                    Some(format!("expected entry {expected_seq} next, found {}: entries are missing", entry.seq))
                } else if entry.prev_hash != expected_prev {
                    Some("prev_hash does not match the previous entry's hash".to_owned())
                } else if entry.compute_hash() != entry.entry_hash {
                    Some("entry content does not match its hash: it was edited".to_owned())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    first_break = Some(ChainBreak { seq: entry.seq, reason });
                    break;
                }
                entries += 1;
                expected_prev = entry.entry_hash;
                expected_seq += 1;
            }
            let head = if first_break.is_none() && entries > 0 { Some(expected_prev) } else { None };
            Ok(AuditVerification { entries, head, first_break })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::page::PageRequest;

    fn entry(action: &str, status: u16) -> NewAuditEntry {
        NewAuditEntry {
            principal: "local".into(),
            action: action.into(),
            target: "/api/v1/keys".into(),
            request_id: Some("r1".into()),
            body_sha256: Sha256Digest::of(b"{}"),
            status,
        }
    }

    use crate::temp_store as store;

    #[test]
    fn chain_links_and_verifies() {
        let (_dir, store) = store();
        let a = store.append_audit(&entry("keys.create", 201)).expect("a");
        let b = store.append_audit(&entry("keys.revoke", 403)).expect("b");
        assert_eq!(a.prev_hash, Sha256Digest::ZERO);
        assert_eq!(b.prev_hash, a.entry_hash);
        assert_eq!(b.outcome, AuditOutcome::Denied);
        let report = store.verify_audit().expect("verify");
        assert_eq!(report, AuditVerification { entries: 2, head: Some(b.entry_hash), first_break: None });
    }

    #[test]
    fn triggers_reject_update_and_delete() {
        let (_dir, store) = store();
        store.append_audit(&entry("keys.create", 201)).expect("append");
        for sql in ["UPDATE audit_log SET status = 200", "DELETE FROM audit_log"] {
            let err = store.write(|tx| Ok(tx.execute(sql, [])?)).expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{err}");
        }
    }

    #[test]
    fn verify_finds_edit_and_gap() {
        let (_dir, store) = store();
        for _ in 0..5 {
            store.append_audit(&entry("keys.create", 201)).expect("append");
        }
        store
            .write(|tx| {
                tx.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")?;
                tx.execute("UPDATE audit_log SET principal = 'mallory' WHERE seq = 3", [])?;
                Ok(())
            })
            .expect("tamper");
        let report = store.verify_audit().expect("verify");
        assert_eq!(report.first_break.as_ref().map(|b| b.seq), Some(3), "{report:?}");
        assert_eq!(report.entries, 2, "entries before the break");
        assert!(report.first_break.as_ref().is_some_and(|b| b.reason.contains("edited")));

        store.write(|tx| Ok(tx.execute("UPDATE audit_log SET principal = 'local' WHERE seq = 3", [])?)).expect("undo");
        assert_eq!(store.verify_audit().expect("verify").first_break, None);
        store.write(|tx| Ok(tx.execute("DELETE FROM audit_log WHERE seq = 2", [])?)).expect("delete");
        let report = store.verify_audit().expect("verify");
        assert_eq!(report.first_break.map(|b| b.seq), Some(3));
    }

    #[test]
    fn list_statements_compile_once() {
        let (_dir, store) = store();
        for _ in 0..3 {
            store.append_audit(&entry("keys.create", 201)).expect("append");
        }
        let full = |principal: &str, micros: i64| AuditFilter {
            principal: Some(principal.into()),
            action: Some("keys.create".into()),
            outcome: Some(AuditOutcome::Success),
            from: Some(Timestamp::from_unix_micros(micros)),
            to: Some(Timestamp::from_unix_micros(i64::MAX - micros)),
        };
        // Each shape runs three times with different values bound.
        let shapes: [Vec<(AuditFilter, Option<Cursor>)>; 3] = [
            (1..=3).map(|_| (AuditFilter::default(), None)).collect(),
            (1..=3).map(|n| (AuditFilter::default(), Some(Cursor::after(n)))).collect(),
            (1..=3).map(|n| (full(["local", "cli", "x"][n as usize - 1], n), Some(Cursor::after(n)))).collect(),
        ];
        for runs in &shapes {
            let reprepared = store
                .read(|conn| {
                    let mut text = String::new();
                    for (filter, after) in runs {
                        let (sql, values) = list_sql(filter, PageRequest { after: *after, limit: 2 });
                        let mut stmt = conn.prepare_cached(&sql)?;
                        stmt.query_map(rusqlite::params_from_iter(values), entry_from_row)?.for_each(drop);
                        text = sql;
                    }
                    Ok(conn.prepare_cached(&text)?.get_status(rusqlite::StatementStatus::RePrepare))
                })
                .expect("run");
            assert_eq!(reprepared, 0, "statement recompiled on re-execution");
        }
    }

    #[test]
    fn pages_newest_first_with_filters() {
        let (_dir, store) = store();
        for i in 0..7 {
            store.append_audit(&entry(if i % 2 == 0 { "even" } else { "odd" }, 200)).expect("append");
        }
        let page = PageRequest::new(None, Some(3)).expect("page");
        let (first, next) = store.list_audit(&AuditFilter::default(), page).expect("list");
        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 6, 5]);
        let page = PageRequest { after: next, limit: 3 };
        let (second, next) = store.list_audit(&AuditFilter::default(), page).expect("list");
        assert_eq!(second.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3, 2]);
        let (third, next) =
            store.list_audit(&AuditFilter::default(), PageRequest { after: next, limit: 3 }).expect("list");
        assert_eq!(third.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(next, None);

        let filter = AuditFilter { action: Some("odd".into()), ..AuditFilter::default() };
        let (odd, _) = store.list_audit(&filter, PageRequest::new(None, None).expect("page")).expect("list");
        assert_eq!(odd.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 4, 2]);
    }
}
