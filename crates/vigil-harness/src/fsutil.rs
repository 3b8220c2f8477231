//! Small filesystem helpers with the guarantees the harness relies on: atomic writes,
//! containment checks that see through symbolic links, and linking instead of copying.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A blocking task that ended without an answer (it panicked or the runtime shut down).
#[derive(Debug)]
pub struct TaskFailed(String);

impl From<TaskFailed> for String {
    fn from(e: TaskFailed) -> String {
        e.0
    }
}

/// Runs blocking work (folders, file writes and their fsyncs, reads of whole files) on
/// tokio's blocking pool, off the async workers that also serve requests. The harness's
/// one way off the async thread.
pub async fn off_thread<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(E::from(TaskFailed(format!("a blocking file task failed: {e}")))),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsynced, renamed into
/// place, and the folder fsynced. A reader sees the old content or the new, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let parent = path.parent().ok_or_else(|| format!("{} has no parent folder", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(parent)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Resolves `path` (following every symbolic link) and checks that it is inside `root`
/// (also resolved). Returns the resolved path.
pub fn inside(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let root = fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let resolved = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(format!("{} resolves outside {}", path.display(), root.display()))
    }
}

/// Makes `to` a hard link to `from`, or a copy when they are on different filesystems.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let _ = fs::remove_file(to);
    fs::hard_link(from, to)
        .or_else(|_| fs::copy(from, to).map(|_| ()))
        .map_err(|e| format!("cannot place {} at {}: {e}", from.display(), to.display()))
}

/// Recreates the tree under `from` at `to`, linking files. Symbolic links are skipped:
/// a reused result never points outside its own folder.
pub fn link_tree(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let kind = entry.file_type().map_err(|e| format!("{}: {e}", entry.path().display()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            link_or_copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Checks that a user with no relation to the owner could reach `path`: every folder on
/// the way is searchable by others, and `path` itself readable (and searchable, for a
/// folder). The sandbox's unprivileged user needs this for plugin folders and runs.
pub fn reachable_by_others(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let resolved = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = fs::metadata(&resolved).map_err(|e| format!("{}: {e}", resolved.display()))?;
    let needed = if meta.is_dir() { 0o005 } else { 0o004 };
    if meta.permissions().mode() & needed != needed {
        return Err(format!("{} is not readable by other users", resolved.display()));
    }
    for ancestor in resolved.ancestors().skip(1) {
        let mode = fs::metadata(ancestor).map_err(|e| format!("{}: {e}", ancestor.display()))?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(format!("{} cannot be entered by other users (mode {:o})", ancestor.display(), mode & 0o777));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_sees_through_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("run");
        fs::create_dir_all(root.join("a")).expect("mkdir");
        fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("a/link")).expect("symlink");
        assert!(inside(&root, &root.join("a")).is_ok());
        assert!(inside(&root, &root.join("a/link")).is_err());
        assert!(inside(&root, &root.join("a/../../secret")).is_err());
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json");
        write_atomic(&path, b"one").expect("first");
        write_atomic(&path, b"two").expect("second");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1, "no temporary files left");
    }
}
