//! Known issues: per kind of dataset (`erp.invoices`), what its runs are expected to find.
//!
//! Each save is a new version; older versions stay, so a run names the exact version it
//! was evaluated against and the history of a declaration can be read back. The store
//! keeps the issues as the harness validated them and their sha256; what they mean is
//! the harness's business.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;
use vigil_core::digest::Sha256Digest;
use vigil_core::time::Timestamp;

use crate::audit::{NewAuditEntry, append_in};
use crate::versioned::{NextVersion, next_version};
use crate::{Result, Store, StoreError};

/// One version of a dataset kind's known issues.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct KnownIssueSet {
    pub dataset_kind: String,
    /// 1 for the first save, then one more per change.
    pub version: u32,
    pub issues: Value,
    /// sha256 of the issues' canonical JSON.
    pub sha256: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

const COLUMNS: &str = "dataset_kind, version, issues, sha256, created_at, created_by";

fn from_row(row: &Row<'_>) -> rusqlite::Result<KnownIssueSet> {
    let issues: String = row.get(2)?;
    Ok(KnownIssueSet {
        dataset_kind: row.get(0)?,
        version: row.get(1)?,
        issues: serde_json::from_str(&issues)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
        sha256: row.get(3)?,
        created_at: Timestamp::from_unix_micros(row.get(4)?),
        created_by: row.get(5)?,
    })
}

impl Store {
    /// Saves `issues` as the next version of `dataset_kind`'s known issues, with its audit
    /// entry in the same transaction; true when a version was added. Saving what the latest
    /// version already holds adds none and returns that version (the request is still
    /// audited).
    pub fn save_known_issues(
        &self,
        dataset_kind: &str,
        issues: &Value,
        by: &str,
        audit: Option<&NewAuditEntry>,
    ) -> Result<(KnownIssueSet, bool)> {
        let text = issues.to_string();
        let sha256 = Sha256Digest::of(text.as_bytes()).to_string();
        self.write(|tx| {
            let NextVersion { version, created, .. } =
                next_version(tx, "known_issue_sets", "dataset_kind", dataset_kind, &sha256)?;
            if created {
                tx.execute(
                    &format!("INSERT INTO known_issue_sets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                    params![dataset_kind, version, text, sha256, Timestamp::now().as_unix_micros(), by],
                )?;
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok((get_in(tx, dataset_kind, Some(version))?, created))
        })
    }

    /// A version of `dataset_kind`'s known issues, the latest when `version` is `None`.
    pub fn known_issues(&self, dataset_kind: &str, version: Option<u32>) -> Result<KnownIssueSet> {
        self.read(|conn| get_in(conn, dataset_kind, version))
    }

    /// Every version of `dataset_kind`'s known issues, newest first.
    pub fn known_issue_history(&self, dataset_kind: &str) -> Result<Vec<KnownIssueSet>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM known_issue_sets WHERE dataset_kind = ?1 ORDER BY version DESC"
            ))?;
            let rows = stmt.query_map([dataset_kind], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The latest version of every dataset kind's known issues, by kind.
    pub fn list_known_issues(&self) -> Result<Vec<KnownIssueSet>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM known_issue_sets k WHERE version = \
                 (SELECT MAX(version) FROM known_issue_sets WHERE dataset_kind = k.dataset_kind) ORDER BY dataset_kind"
            ))?;
            let rows = stmt.query_map([], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }
}

fn get_in(conn: &rusqlite::Connection, dataset_kind: &str, version: Option<u32>) -> Result<KnownIssueSet> {
    let found = match version {
        Some(v) => conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM known_issue_sets WHERE dataset_kind = ?1 AND version = ?2"),
                params![dataset_kind, v],
                from_row,
            )
            .optional()?,
        None => conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM known_issue_sets WHERE dataset_kind = ?1 ORDER BY version DESC LIMIT 1"
                ),
                [dataset_kind],
                from_row,
            )
            .optional()?,
    };
    found.ok_or_else(|| {
        StoreError::NotFound(match version {
            Some(v) => format!("version {v} of the known issues of dataset kind {dataset_kind:?}"),
            None => format!("known issues of dataset kind {dataset_kind:?}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Store, StoreOptions};

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        (dir, store)
    }

    #[test]
    fn each_change_is_a_new_version_and_the_history_stays() {
        let (_dir, store) = temp_store();
        let first = json!([{ "id": "dup", "kind": "duplicate_keys" }]);
        let (v1, created) = store.save_known_issues("erp.invoices", &first, "alice", None).expect("save");
        assert_eq!((v1.version, v1.sha256.len(), created), (1, 64, true));
        let (again, created) = store.save_known_issues("erp.invoices", &first, "bob", None).expect("same again");
        assert_eq!(
            (again.version, again.created_by.as_str(), created),
            (1, "alice", false),
            "no new version for the same issues"
        );
        let second = json!([{ "id": "dup", "kind": "duplicate_keys", "column": "invoice_id" }]);
        let (v2, created) = store.save_known_issues("erp.invoices", &second, "bob", None).expect("change");
        assert_eq!((v2.version, created), (2, true));
        store.save_known_issues("erp.vendors", &first, "alice", None).expect("other kind");

        assert_eq!(store.known_issues("erp.invoices", None).expect("latest").issues, second);
        assert_eq!(store.known_issues("erp.invoices", Some(1)).expect("v1").issues, first);
        let history: Vec<u32> =
            store.known_issue_history("erp.invoices").expect("history").iter().map(|s| s.version).collect();
        assert_eq!(history, [2, 1]);
        let kinds: Vec<(String, u32)> =
            store.list_known_issues().expect("list").into_iter().map(|s| (s.dataset_kind, s.version)).collect();
        assert_eq!(kinds, [("erp.invoices".to_owned(), 2), ("erp.vendors".to_owned(), 1)]);
        let missing = store.known_issues("erp.invoices", Some(9)).expect_err("no v9");
        assert!(missing.to_string().contains("version 9"), "{missing}");
    }
}
