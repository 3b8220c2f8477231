//! Versioned documents (known issues per dataset kind, policies per tenant): a save that
//! changes the document is the next version, numbered from 1 per key; saving what the
//! latest version already holds adds none.

use rusqlite::{OptionalExtension, Transaction};

use crate::Result;

/// Where a save lands.
#[derive(Debug)]
pub(crate) struct NextVersion {
    /// The latest version before this save, if any.
    pub latest: Option<u32>,
    /// The version the save is (the latest, when nothing changed).
    pub version: u32,
    /// Whether the save adds a version.
    pub created: bool,
}

/// Reads the latest version of `key` in `table` (keyed by `key_column`, with `version` and
/// `sha256` columns) and decides where a document with `sha256` lands.
pub(crate) fn next_version(
    tx: &Transaction<'_>,
    table: &str,
    key_column: &str,
    key: &str,
    sha256: &str,
) -> Result<NextVersion> {
    let sql = format!("SELECT version, sha256 FROM {table} WHERE {key_column} = ?1 ORDER BY version DESC LIMIT 1");
    let latest: Option<(u32, String)> =
        tx.prepare_cached(&sql)?.query_row([key], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
    let (version, created) = match &latest {
        Some((version, same)) if same == sha256 => (*version, false),
        Some((version, _)) => (version + 1, true),
        None => (1, true),
    };
    Ok(NextVersion { latest: latest.map(|(version, _)| version), version, created })
}
