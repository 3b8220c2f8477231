//! `vigil db backup`: an online, consistent copy of a live database.
//!
//! The source is read inside one read transaction, so in WAL mode writers carry on while the
//! copy sees a single snapshot. The copy is written next to the destination, synced,
//! checked with `integrity_check`, and only then renamed into place.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::db::open_connection;
use crate::{Result, StoreError, StoreOptions};

/// Pages copied per step; between steps the progress callback runs.
const PAGES_PER_STEP: i32 = 256;

/// Copies the database at `source` to `dest`, which must not exist yet. `progress` is called
/// with (pages copied, total pages) after every step.
pub fn backup(source: &Path, dest: &Path, mut progress: impl FnMut(u64, u64)) -> Result<u64> {
    if dest.exists() {
        return Err(StoreError::Conflict(format!("{} already exists; choose a new file name", dest.display())));
    }
    let src = open_connection(source, StoreOptions::default(), OpenFlags::empty())?;
    src.execute_batch("BEGIN DEFERRED; SELECT COUNT(*) FROM sqlite_master;")?;

    let tmp = PathBuf::from(format!("{}.partial", dest.display()));
    let _ = std::fs::remove_file(&tmp);
    let result = copy(&src, &tmp, &mut progress).and_then(|pages| {
        let copy = Connection::open(&tmp)?;
        let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Invalid(format!("backup failed its integrity check: {check}")));
        }
        drop(copy);
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(StoreError::io(format!("syncing {}", tmp.display())))?;
        std::fs::rename(&tmp, dest).map_err(StoreError::io(format!("renaming to {}", dest.display())))?;
        // The rename itself must survive a crash before we report success.
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io(format!("syncing {}", dir.display())))?;
        Ok(pages)
    });
    let _ = src.execute_batch("COMMIT");
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn copy(src: &Connection, tmp: &Path, progress: &mut impl FnMut(u64, u64)) -> Result<u64> {
    let mut dst = Connection::open(tmp)?;
    {
        let backup = Backup::new(src, &mut dst)?;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let remaining = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(remaining), total);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => std::thread::sleep(std::time::Duration::from_millis(10)),
                _ => {}
            }
        }
    }
    // A backup of a WAL database is itself in WAL mode; fold it into one file.
    dst.execute_batch("PRAGMA journal_mode = DELETE;")?;
    let pages: i64 = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    Ok(u64::try_from(pages).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use vigil_core::scope::Scope;

    #[test]
    fn backup_while_writing_is_consistent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, StoreOptions::default()).expect("open");
        for i in 0..50 {
            store.create_key(&format!("k{i}"), Scope::Read, "test", None).expect("key");
        }
        let dest = dir.path().join("backup.db");
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 50..150 {
                    store.create_key(&format!("k{i}"), Scope::Read, "test", None).expect("key");
                }
            })
        };
        let mut calls = 0;
        backup(&path, &dest, |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .expect("backup");
        writer.join().expect("writer");
        assert!(calls >= 1);
        assert!(matches!(backup(&path, &dest, |_, _| {}), Err(StoreError::Conflict(_))), "never overwrites");

        let copy = Store::open(&dest, StoreOptions::default()).expect("open backup");
        let n = copy.list_keys(true).expect("list").len();
        assert!((50..=150).contains(&n), "{n}");
    }
}
