//! The [`Store`] handle: connection management, pragmas and transactions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use vigil_core::config::Durability;

use crate::{Result, StoreError, migrations};

/// How to open the database.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    pub durability: Durability,
    /// How long a writer waits for another process's write lock before giving up.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { durability: Durability::Safe, busy_timeout: Duration::from_secs(5) }
    }
}

/// Idle read connections kept for reuse; more are opened under load and closed after.
const READERS_IDLE_MAX: usize = 64;

/// A handle to the embedded database. Cheap to clone; all clones share the connections.
///
/// Methods are blocking: async callers run them on a blocking thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Whether reads wait (up to the busy timeout) when SQLite reports the database busy.
    wait_when_busy: bool,
    /// Where its port calls run: a thread of its own, or (`None`) tokio's blocking pool.
    lane: Option<crate::background::Background>,
}

struct Inner {
    path: PathBuf,
    options: StoreOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves no half-done transaction behind (rusqlite
    // rolls back on drop), so the connection is still safe to use.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema to head.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::io(format!("creating {}", dir.display())))?;
        }
        let mut writer = open_connection(path, options, OpenFlags::SQLITE_OPEN_CREATE)?;
        migrations::migrate(&mut writer)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                options,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
            wait_when_busy: true,
            lane: None,
        })
    }

    /// A handle whose reads fail at once with [`StoreError::Busy`] instead of waiting when
    /// the database is busy (a rare event for WAL readers: recovery or a truncating
    /// checkpoint). For callers that must not block, such as async tasks reading inline;
    /// they retry on a blocking thread with a normal handle.
    pub fn nowait(&self) -> Store {
        Store { wait_when_busy: false, ..self.clone() }
    }

    /// This store with its port calls run one at a time on `lane`, a thread of its own at
    /// its own priority, instead of tokio's blocking pool: how the vitals recorder and the
    /// immune log keep their writes off the threads that serve calls. (Bounded reads still
    /// try the caller's thread first, as on any store: `ports::bounded_read`.)
    pub fn on_lane(&self, lane: crate::background::Background) -> Store {
        Store { lane: Some(lane), ..self.clone() }
    }

    pub(crate) fn lane(&self) -> Option<&crate::background::Background> {
        self.lane.as_ref()
    }

    /// Opens an existing database (and brings its schema to head); never creates one, so a
    /// mistyped data directory is an error rather than a fresh, empty database.
    pub fn open_existing(path: &Path, options: StoreOptions) -> Result<Store> {
        if !path.is_file() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        Store::open(path, options)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in an immediate (write-locked) transaction and commits if it returns `Ok`.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` on a read-only connection from the pool.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = open_connection(&self.inner.path, self.inner.options, OpenFlags::empty())?;
                conn.execute_batch("PRAGMA query_only = ON")?;
                conn
            }
        };
        let result = if self.wait_when_busy {
            f(&conn)
        } else {
            conn.busy_timeout(Duration::ZERO)?;
            let result = f(&conn);
            conn.busy_timeout(self.inner.options.busy_timeout)?;
            result
        };
        let mut readers = lock(&self.inner.readers);
        if readers.len() < READERS_IDLE_MAX {
            readers.push(conn);
        }
        result
    }

    /// The applied schema version.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(migrations::current_version)
    }

    /// Proves the database accepts writes by taking the write lock and releasing it.
    pub fn check_writable(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO health_probe (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                [vigil_core::time::Timestamp::now().as_unix_micros()],
            )?;
            Ok(())
        })
    }

    /// Checkpoints the WAL into the main file and truncates it. Called at shutdown so the
    /// database is a single self-contained file afterwards.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = lock(&self.inner.writer);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Flushes and closes every connection. Other clones of this handle keep working on
    /// freshly opened connections, so call this last.
    pub fn close(&self) -> Result<()> {
        lock(&self.inner.readers).clear();
        self.checkpoint()
    }
}

pub(crate) fn open_connection(path: &Path, options: StoreOptions, extra: OpenFlags) -> Result<Connection> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI | extra;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::CannotOpen) => StoreError::Missing(path.to_owned()),
        _ => StoreError::from(e),
    })?;
    conn.busy_timeout(options.busy_timeout)?;
    let synchronous = match options.durability {
        Durability::Safe => "FULL",
        Durability::Fast => "NORMAL",
    };
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "{} could not be switched to WAL mode (it reports {mode}); is it on a network filesystem?",
            path.display()
        )));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;"
    ))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_in_wal_with_requested_durability() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/vigil.db");
        for (durability, expected) in [(Durability::Safe, 2), (Durability::Fast, 1)] {
            let store = Store::open(&path, StoreOptions { durability, ..StoreOptions::default() }).expect("open");
            let sync: i64 =
                store.write(|tx| Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?)).expect("pragma");
            assert_eq!(sync, expected);
            assert_eq!(store.schema_version().expect("version"), migrations::head_version());
            store.check_writable().expect("writable");
            store.close().expect("close");
        }
    }

    #[test]
    fn nowait_reads_do_not_wait_and_leave_the_pool_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = StoreOptions { busy_timeout: Duration::from_millis(300), ..StoreOptions::default() };
        let store = Store::open(&dir.path().join("vigil.db"), options).expect("open");
        let timeout = |store: &Store| -> i64 {
            store.read(|conn| Ok(conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?)).expect("pragma")
        };
        assert_eq!(timeout(&store), 300);
        assert_eq!(timeout(&store.nowait()), 0, "a nowait read gives up at once on a lock");
        assert_eq!(timeout(&store), 300, "the pooled connection is restored afterwards");
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, StoreOptions::default()).expect("open");
        store
            .write(|tx| Ok(tx.execute("INSERT INTO schema_migrations VALUES (4242, 'from the future', 0)", [])?))
            .expect("insert");
        drop(store);
        let err = Store::open(&path, StoreOptions::default()).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("4242") && text.contains("newer than this vigil"), "{text}");
    }
}
