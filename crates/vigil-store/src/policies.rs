//! Policy documents: one per tenant, every save an immutable version.
//!
//! The store keeps a document as governance validated it, its sha256, who saved it and
//! when, and for a rollback the version it restored; what a document means is
//! `vigil-governance`'s business. A save names the version it was based on, and is
//! refused (`Conflict`) when another save came first, so two editors cannot silently
//! overwrite each other.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;
use vigil_core::digest::Sha256Digest;
use vigil_core::id::TenantId;
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;

use crate::audit::{NewAuditEntry, append_in};
use crate::versioned::{NextVersion, next_version};
use crate::{Result, Store, StoreError};

/// One version of a tenant's policy.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PolicyVersion {
    pub tenant_id: TenantId,
    /// 1 for the first save, then one more per change.
    pub version: u32,
    pub document: Value,
    /// sha256 of the document's JSON as stored.
    pub sha256: String,
    pub created_at: Timestamp,
    pub created_by: String,
    /// The version this one restored, when it was a rollback.
    pub rolled_back_from: Option<u32>,
}

/// A version to save.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPolicyVersion {
    pub tenant_id: TenantId,
    pub document: Value,
    pub created_by: String,
    /// The latest version the editor saw (`None`: the tenant has no policy yet). A save
    /// based on anything older is refused.
    pub based_on: Option<u32>,
    pub rolled_back_from: Option<u32>,
}

const COLUMNS: &str = "tenant_id, version, document, sha256, created_at, created_by, rolled_back_from";

fn from_row(row: &Row<'_>) -> rusqlite::Result<PolicyVersion> {
    let document: String = row.get(2)?;
    Ok(PolicyVersion {
        tenant_id: TenantId::new(row.get::<_, String>(0)?),
        version: row.get(1)?,
        document: serde_json::from_str(&document)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
        sha256: row.get(3)?,
        created_at: Timestamp::from_unix_micros(row.get(4)?),
        created_by: row.get(5)?,
        rolled_back_from: row.get(6)?,
    })
}

impl Store {
    /// Saves the next version of a tenant's policy with its audit entry, in one
    /// transaction; true when a version was added. A document equal to the latest adds
    /// none and returns the latest (the request is still audited). `Conflict` when
    /// `based_on` is not the latest version.
    pub fn save_policy(&self, new: &NewPolicyVersion, audit: Option<&NewAuditEntry>) -> Result<(PolicyVersion, bool)> {
        let text = new.document.to_string();
        let sha256 = Sha256Digest::of(text.as_bytes()).to_string();
        let tenant = new.tenant_id.as_str();
        self.write(|tx| {
            let NextVersion { latest, version, created } =
                next_version(tx, "policy_versions", "tenant_id", tenant, &sha256)?;
            if latest != new.based_on {
                let seen = new.based_on.map_or_else(|| "no policy".to_owned(), |v| format!("version {v}"));
                let now = latest.map_or_else(|| "none".to_owned(), |v| v.to_string());
                return Err(StoreError::Conflict(format!(
                    "the policy of tenant {tenant} changed since {seen} was read (the latest version is {now}); read it again and reapply the change"
                )));
            }
            if created {
                let at = Timestamp::now();
                let body = serde_json::json!({
                    "version": version,
                    "sha256": sha256,
                    "by": new.created_by,
                    "based_on": new.based_on,
                    "rolled_back_from": new.rolled_back_from,
                });
                crate::budgets::append_ledger(tx, at, tenant, "policy.saved", None, &body)?;
                tx.execute(
                    &format!("INSERT INTO policy_versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                    params![
                        tenant,
                        version,
                        text,
                        sha256,
                        Timestamp::now().as_unix_micros(),
                        new.created_by,
                        new.rolled_back_from
                    ],
                )?;
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok((get_in(tx, tenant, Some(version))?, created))
        })
    }

    /// A version of a tenant's policy, the latest when `version` is `None`.
    pub fn policy(&self, tenant: &TenantId, version: Option<u32>) -> Result<PolicyVersion> {
        self.read(|conn| get_in(conn, tenant.as_str(), version))
    }

    /// A tenant's policy versions, newest first, a page at a time.
    pub fn policy_history(&self, tenant: &TenantId, page: PageRequest) -> Result<(Vec<PolicyVersion>, Option<Cursor>)> {
        let before = page.after.map_or(i64::MAX, Cursor::position);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM policy_versions WHERE tenant_id = ?1 AND version < ?2 ORDER BY version DESC LIMIT ?3"
            ))?;
            let limit = i64::try_from(page.fetch_limit()).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![tenant.as_str(), before, limit], from_row)?;
            Ok(page.finish(rows.collect::<rusqlite::Result<Vec<_>>>()?, |v| i64::from(v.version)))
        })
    }
}

fn get_in(conn: &rusqlite::Connection, tenant: &str, version: Option<u32>) -> Result<PolicyVersion> {
    let found = match version {
        Some(v) => conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM policy_versions WHERE tenant_id = ?1 AND version = ?2"),
                params![tenant, v],
                from_row,
            )
            .optional()?,
        None => conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM policy_versions WHERE tenant_id = ?1 ORDER BY version DESC LIMIT 1"),
                [tenant],
                from_row,
            )
            .optional()?,
    };
    found.ok_or_else(|| match version {
        Some(v) => StoreError::NotFound(format!("version {v} of the policy of tenant {tenant}")),
        None => StoreError::NotFound(format!("a policy of tenant {tenant}")),
    })
}
