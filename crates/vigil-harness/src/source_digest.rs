//! The digest of the source files the built-in plugins are compiled from: their code
//! identity in provenance and in the step cache key. `build.rs` includes this file and
//! bakes the digest into the crate as `VIGIL_BUILTIN_SOURCE_SHA256`; the library compiles it
//! only for its tests.
//!
//! Each file counts by its path relative to the root (with `/` separators) and its bytes, in
//! path order, so the digest does not depend on the order a directory lists in. A missing
//! entry counts as absent rather than failing: a crate built outside the workspace has no
//! lockfile beside it.

use std::io;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// What the built-ins are compiled from, relative to the workspace root: this crate, the
/// pack contract, the tabular pack, and the lockfile that pins their dependencies.
pub const SOURCES: [&str; 4] =
    ["crates/vigil-harness/src", "crates/vigil-pack/src", "crates/vigil-tabular/src", "Cargo.lock"];

/// SHA-256, as lowercase hex, of every file under `entries` (files or folders, relative to
/// `root`).
pub fn digest(root: &Path, entries: &[&str]) -> io::Result<String> {
    let mut files = Vec::new();
    let mut hasher = Sha256::new();
    for entry in entries {
        let path = root.join(entry);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => collect(&path, entry, &mut files)?,
            Ok(_) => files.push(((*entry).to_owned(), path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                hasher.update(entry.as_bytes());
                hasher.update(b"\0absent\0");
            }
            Err(e) => return Err(e),
        }
    }
    files.sort();
    for (name, path) in files {
        let bytes = std::fs::read(&path)?;
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn collect(dir: &Path, name: &str, out: &mut Vec<(String, std::path::PathBuf)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let child = format!("{name}/{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &child, out)?;
        } else {
            out.push((child, entry.path()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baked_digest_is_the_digest_of_the_source_as_it_is_now() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert_eq!(env!("VIGIL_BUILTIN_SOURCE_SHA256"), digest(&root, &SOURCES).expect("digest"));
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    #[test]
    fn any_change_to_a_file_its_name_or_the_set_changes_the_digest() {
        let base = [("src/a.rs", "fn a() {}"), ("src/b/c.rs", "fn c() {}"), ("Cargo.lock", "lock")];
        let entries = ["src", "Cargo.lock"];
        let of = |files: &[(&str, &str)]| digest(tree(files).path(), &entries).expect("digest");
        let original = of(&base);
        assert_eq!(original.len(), 64);
        assert_eq!(of(&base), original, "the same tree, the same digest");
        assert_ne!(of(&[base[0], ("src/b/c.rs", "fn c() { }"), base[2]]), original, "an edited file");
        assert_ne!(of(&[base[0], ("src/b/d.rs", "fn c() {}"), base[2]]), original, "a renamed file");
        assert_ne!(of(&[base[0], base[2]]), original, "a removed file");
        assert_ne!(of(&[base[0], base[1], base[2], ("src/e.rs", "")]), original, "an added file");
        assert_ne!(of(&[base[0], base[1], ("Cargo.lock", "lock2")]), original, "a changed lockfile");
        assert_ne!(of(&[base[0], base[1]]), original, "no lockfile");
        // Content cannot move between files unnoticed.
        assert_ne!(of(&[("src/a.rs", "fn a() {}fn c() {}"), ("src/b/c.rs", ""), base[2]]), original);
    }
}
