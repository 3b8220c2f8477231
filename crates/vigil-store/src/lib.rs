//! Vigil's storage: the embedded SQLite [`Store`] and the content-addressed [`BlobStore`].
//!
//! [`Store`] owns one SQLite database in WAL mode: a single writer connection (SQLite allows
//! one writer at a time anyway) and a small pool of read-only connections, so readers never
//! wait for writers. Schema changes are ordered [`migrations`] recorded in
//! `schema_migrations`; a database newer than this binary is refused rather than guessed at.
//! On top sit the tables the foundation needs: API keys ([`keys`]), stored only as salted
//! hashes, and the append-only, hash-chained audit log ([`audit`]); vitals and agents,
//! harness runs and plugins, known issues per dataset kind ([`known_issues`]), and the
//! immune engine's input log and snapshots ([`immune`]). [`doctor`] inspects a
//! database without changing it and [`backup`] copies one while it is in use.
//! [`background::Background`] is a writer thread of its own (the vitals one at a lower CPU
//! priority) for the vitals batches and the immune log.
//!
//! The boundary is deliberately narrow: callers use domain methods (`create_key`,
//! `append_audit`, `list_audit`, ...) and never see SQL or `rusqlite` types. [`ports`]
//! states that boundary as async traits per domain, which `Store` and `BlobStore`
//! implement and which a Postgres store or an object store will implement next;
//! [`conformance`] (feature `conformance`) is the behaviour every backend must show.
//!
//! [`BlobStore`] keeps bytes under `blobs/sha256/ab/<hex>`: written to a temp file, fsynced,
//! re-read and verified, then linked into place and the directory fsynced, so a blob path
//! that exists always holds exactly the bytes its name promises.

pub mod agents;
pub mod audit;
pub mod background;
pub mod backup;
pub mod blob;
pub mod budget_memory;
pub mod budgets;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod db;
pub mod doctor;
pub mod immune;
pub mod keys;
pub mod known_issues;
pub mod migrations;
pub mod plugins;
pub mod policies;
pub mod ports;
pub mod runs;
pub mod uploads;
mod versioned;
pub mod vitals;

use std::path::PathBuf;

pub use agents::{AgentRecord, GatewayStats, ModelStats, TokenTotals};
pub use audit::{AuditEntry, AuditFilter, AuditOutcome, AuditVerification, NewAuditEntry};
pub use blob::{BlobInfo, BlobStore, StaleTemps};
pub use budget_memory::MemoryBudgets;
pub use budgets::{
    Admission, BudgetRefusal, BudgetScope, BudgetState, LedgerEntry, LedgerVerification, NewReservation, Settled,
    Settlement, Swept,
};
pub use db::{Store, StoreOptions};
pub use immune::{ControlUrl, ImmuneLogEntry, ImmuneSnapshot};
pub use keys::{ActiveKey, CreatedKey, KeyRecord, KeysVersion};
pub use known_issues::KnownIssueSet;
pub use plugins::{InstalledPlugin, PluginInstall};
pub use policies::{NewPolicyVersion, PolicyVersion};
pub use runs::{
    CollectableUpload, ExecutionEnd, ExecutionRecord, LineageEdge, NewExecution, NewRun, RunRecord, Tombstone,
};
pub use uploads::{NewUpload, UploadAttempt, UploadRecord};
pub use vigil_core::config::Durability;
pub use vitals::{StoredVital, VitalsFilter};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "vigil.db";

/// Everything that can go wrong in storage, in kinds callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database schema version {found} is newer than this vigil binary supports ({supported}); \
         run a newer vigil, or restore a backup taken before the upgrade"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("no Vigil database at {0}; start `vigil serve` once to create it")]
    Missing(PathBuf),
    #[error("the database is busy (locked by another writer); retry shortly")]
    Busy,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("blob is larger than the {cap_bytes}-byte cap")]
    TooLarge { cap_bytes: u64 },
    #[error("blob at {path} does not match its address: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The filesystem is out of space (or over quota): `what` could not be written.
    /// Nothing already stored is lost; writes work again once space is freed.
    #[error("{what}: the disk is full")]
    StorageFull { what: String },
}

impl StoreError {
    /// The error for a failed filesystem call: a full disk (or quota) is `StorageFull`,
    /// which callers answer differently from other IO failures. Every write goes through it.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let context = context.into();
        move |source| match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                StoreError::StorageFull { what: context }
            }
            _ => StoreError::Io { context, source },
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => StoreError::Busy,
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::StorageFull { what: "writing the database".to_owned() },
            // A uniqueness or key rule of the schema: the write clashes with what is stored.
            Some(rusqlite::ErrorCode::ConstraintViolation) => {
                StoreError::Conflict(format!("conflicts with what is stored: {e}"))
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A fresh store in a temporary folder, for this crate's tests.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
    (dir, store)
}
