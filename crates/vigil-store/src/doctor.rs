//! `vigil db doctor`: inspects a database without migrating or changing its contents.
//!
//! It reports rather than fails: a check that cannot run (the disk is full, say) is a
//! problem in the report, and the others still run.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError, StoreOptions, migrations};

/// Health of one database file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DoctorReport {
    pub path: PathBuf,
    /// `["ok"]` when intact, otherwise SQLite's list of problems.
    pub integrity: Vec<String>,
    pub journal_mode: String,
    pub wal: WalState,
    pub schema_version: i64,
    pub schema_head: i64,
    pub page_count: i64,
    pub page_size: i64,
    pub freelist_count: i64,
    /// Bytes free to Vigil on the filesystem holding the database, when it can be read.
    pub free_bytes: Option<u64>,
}

/// Below this much free space the disk counts as full: writes are about to fail.
pub const FREE_BYTES_MIN: u64 = 1 << 20;

/// What a passive checkpoint found in the write-ahead log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WalState {
    /// Bytes in the `-wal` file before the checkpoint.
    pub wal_bytes: u64,
    /// Frames in the WAL.
    pub log_frames: i64,
    /// Frames copied back into the database file.
    pub checkpointed_frames: i64,
    /// Whether the checkpoint could not finish because of readers or writers.
    pub busy: bool,
    /// Why the checkpoint could not run at all (a full disk, say).
    pub error: Option<String>,
}

impl DoctorReport {
    /// True when the database is intact, in WAL mode, at a schema this binary knows, and
    /// has room to write.
    pub fn healthy(&self) -> bool {
        self.problems().is_empty()
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.integrity != ["ok"] {
            problems.extend(self.integrity.iter().map(|p| format!("integrity: {p}")));
        }
        if self.journal_mode != "wal" {
            problems.push(format!("journal mode is {}, expected wal", self.journal_mode));
        }
        if self.schema_version > self.schema_head {
            problems.push(format!(
                "schema version {} is newer than this binary ({})",
                self.schema_version, self.schema_head
            ));
        }
        if let Some(error) = &self.wal.error {
            problems.push(format!("the WAL could not be checkpointed: {error}"));
        }
        if let Some(free) = self.free_bytes.filter(|free| *free < FREE_BYTES_MIN) {
            problems.push(format!("the disk is full: {free} bytes free; free space before writes fail"));
        }
        problems
    }
}

/// Examines the database at `path`. It must already exist.
pub fn doctor(path: &Path) -> Result<DoctorReport> {
    let wal_path = PathBuf::from(format!("{}-wal", path.display()));
    let wal_bytes = std::fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
    // Opened as found: no journal-mode switch, no migration, no file created.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::CannotOpen) => StoreError::Missing(path.to_owned()),
        _ => StoreError::from(e),
    })?;
    conn.busy_timeout(StoreOptions::default().busy_timeout)?;
    let integrity = (|| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        stmt.query_map([], |r| r.get::<_, String>(0))?.collect()
    })()
    .unwrap_or_else(|e| vec![format!("could not run: {}", StoreError::from(e))]);
    let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    // A passive checkpoint reports the WAL's state and copies back what no reader needs; it
    // never changes the database's content. Only meaningful in WAL mode.
    let mut checkpoint_error = None;
    let (busy, log_frames, checkpointed_frames): (i64, i64, i64) = if journal_mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap_or_else(
            |e| {
                checkpoint_error = Some(StoreError::from(e).to_string());
                (0, 0, 0)
            },
        )
    } else {
        (0, 0, 0)
    };
    let pragma = |name: &str| -> Result<i64> { Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?) };
    Ok(DoctorReport {
        path: path.to_owned(),
        integrity,
        journal_mode: journal_mode.to_ascii_lowercase(),
        wal: WalState { wal_bytes, log_frames, checkpointed_frames, busy: busy != 0, error: checkpoint_error },
        schema_version: migrations::current_version(&conn)?,
        schema_head: migrations::head_version(),
        page_count: pragma("page_count")?,
        page_size: pragma("page_size")?,
        freelist_count: pragma("freelist_count")?,
        free_bytes: free_bytes(path),
    })
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stats = rustix::fs::statvfs(dir).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn healthy_store_reports_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, StoreOptions::default()).expect("open");
        store.check_writable().expect("write");
        let report = doctor(&path).expect("doctor");
        assert!(report.healthy(), "{:?}", report.problems());
        assert_eq!(report.schema_version, migrations::head_version());
    }

    #[test]
    fn inspecting_does_not_change_the_journal_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plain.db");
        Connection::open(&path).expect("create").execute_batch("CREATE TABLE t (x)").expect("table");
        let report = doctor(&path).expect("doctor");
        assert_eq!(report.journal_mode, "delete");
        assert!(!report.healthy(), "not a Vigil database in WAL mode");
        let mode: String =
            Connection::open(&path).expect("open").query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "delete", "doctor left the file as it found it");
    }

    #[test]
    fn missing_database_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.db");
        assert!(matches!(doctor(&path), Err(StoreError::Missing(p)) if p == path));
        assert!(!path.exists(), "doctor must not create a database");
    }
}
