//! The content-addressed [`BlobStore`].
//!
//! Layout: `<root>/sha256/<first two hex>/<64 hex>` for blobs, `<root>/tmp/` for writes in
//! progress (same filesystem, so the final step is a link, not a copy). A write streams
//! into a temp file while hashing and counting against the size cap, fsyncs it, re-reads it
//! to verify the hash on disk, then hard-links it into place. Linking fails if the blob
//! already exists, which makes "first writer wins, everyone else learns it was a duplicate"
//! atomic even between processes. The parent directories are fsynced so the new name
//! survives a crash. Blobs are made read-only once in place.
//!
//! A writer creates its temp file as `<id>.new`, locks it, and only then renames it to
//! `<id>.part`; it holds the lock to the end, and the kernel drops the lock when the process
//! dies, however it dies. So a `.part` file is locked from the moment it has that name, and
//! one that can be locked belongs to no live write, in this process or any other: the
//! server's start-up and garbage collection remove those
//! ([`BlobStore::remove_stale_temps`]). A `.new` file is never judged by its lock (the
//! cleaner could open it before its writer locks it); one is only left by a writer that died
//! in the microseconds between creating and renaming it, and is removed once older than
//! [`UNNAMED_TEMP_GRACE`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use vigil_core::digest::{Sha256Digest, Sha256Hasher};

use crate::{Result, StoreError};

/// Buffer size for streaming writes and verification reads.
const CHUNK_BYTES: usize = 64 * 1024;
/// Age after which a `.new` temp file (created, not yet locked and renamed) is taken as
/// left by a writer that died: the step takes microseconds.
pub const UNNAMED_TEMP_GRACE: std::time::Duration = std::time::Duration::from_secs(600);
/// Suffix of a temp file being created (not yet locked).
const NEW_SUFFIX: &str = "new";
/// Suffix of a locked temp file of a live or dead write.
const PART_SUFFIX: &str = "part";

/// What [`BlobStore::remove_stale_temps`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StaleTemps {
    /// Temp files of writes that no live process holds (removed unless a dry run).
    pub files: u64,
    pub bytes: u64,
}

/// Result of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct BlobInfo {
    pub digest: Sha256Digest,
    pub size_bytes: u64,
    /// True when the content was already stored; nothing was rewritten.
    pub existed: bool,
}

/// Content-addressed files under one root directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    max_bytes: u64,
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io(format!("syncing directory {}", dir.display())))
}

fn hash_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hasher.finish(), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Removes the temp file on every path out of [`BlobStore::put`] unless disarmed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl BlobStore {
    /// Opens (creating) a blob store rooted at `root`, with a per-blob size cap.
    pub fn open(root: &Path, max_bytes: u64) -> Result<BlobStore> {
        for dir in [root.join("sha256"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(StoreError::io(format!("creating {}", dir.display())))?;
        }
        // Make the directories themselves durable before anything is stored in them.
        fsync_dir(root)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
        Ok(BlobStore { root: root.to_owned(), max_bytes })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the blob with this digest lives (whether or not it exists). Private: callers
    /// read blobs by stream, or ask for a local file with [`BlobStore::materialize`].
    fn path_of(&self, digest: &Sha256Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    pub fn contains(&self, digest: &Sha256Digest) -> bool {
        self.path_of(digest).is_file()
    }

    /// Streams `reader` into the store. Fails with [`StoreError::TooLarge`] as soon as the
    /// cap is passed, leaving nothing behind.
    pub fn put(&self, mut reader: impl Read) -> Result<BlobInfo> {
        // `file` holds the temp file's lock until this function returns, whichever way.
        let (mut file, tmp_path, mut guard) = self.create_temp()?;

        let mut hasher = Sha256Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::Io { context: "reading blob content".into(), source: e }),
            };
            size += n as u64;
            if size > self.max_bytes {
                return Err(StoreError::TooLarge { cap_bytes: self.max_bytes });
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(StoreError::io(format!("writing {}", tmp_path.display())))?;
        }
        file.sync_all().map_err(StoreError::io(format!("syncing {}", tmp_path.display())))?;
        let digest = hasher.finish();

        let final_path = self.path_of(&digest);
        if final_path.exists() {
            return self.existing(digest, size, &final_path);
        }

        // Verify what reached the disk before it becomes visible under its name.
        let (on_disk, on_disk_size) =
            hash_file(&tmp_path).map_err(StoreError::io(format!("re-reading {}", tmp_path.display())))?;
        if on_disk != digest || on_disk_size != size {
            return Err(StoreError::Corrupt {
                path: tmp_path,
                reason: format!(
                    "wrote {size} bytes hashing to {digest}, read back {on_disk_size} hashing to {on_disk}"
                ),
            });
        }
        let mut perms =
            fs::metadata(&tmp_path).map_err(StoreError::io(format!("reading {}", tmp_path.display())))?.permissions();
        perms.set_readonly(true);
        fs::set_permissions(&tmp_path, perms).map_err(StoreError::io(format!("protecting {}", tmp_path.display())))?;

        let fanout = final_path.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&fanout).map_err(StoreError::io(format!("creating {}", fanout.display())))?;
        match fs::hard_link(&tmp_path, &final_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return self.existing(digest, size, &final_path),
            Err(e) => return Err(StoreError::io(format!("linking {}", final_path.display()))(e)),
        }
        self.sync_names(&final_path)?;
        drop(guard.0.take().map(fs::remove_file));
        Ok(BlobInfo { digest, size_bytes: size, existed: false })
    }

    /// A new temp file, locked before it takes the `.part` name a cleaner judges by its
    /// lock.
    fn create_temp(&self) -> Result<(File, PathBuf, TempGuard)> {
        let id = uuid::Uuid::now_v7();
        let (new, part) = (
            self.root.join("tmp").join(format!("{id}.{NEW_SUFFIX}")),
            self.root.join("tmp").join(format!("{id}.{PART_SUFFIX}")),
        );
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&new)
            .map_err(StoreError::io(format!("creating {}", new.display())))?;
        let mut guard = TempGuard(Some(new.clone()));
        file.lock().map_err(StoreError::io(format!("locking {}", new.display())))?;
        fs::rename(&new, &part).map_err(StoreError::io(format!("naming {}", part.display())))?;
        guard.0 = Some(part.clone());
        Ok((file, part, guard))
    }

    /// Stores an in-memory value.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobInfo> {
        self.put(bytes)
    }

    fn existing(&self, digest: Sha256Digest, size: u64, path: &Path) -> Result<BlobInfo> {
        let stored = fs::metadata(path).map_err(StoreError::io(format!("reading {}", path.display())))?.len();
        if stored != size {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: format!("stored blob is {stored} bytes but its content is {size} bytes"),
            });
        }
        // The writer that linked it may not have synced the names yet; "already stored"
        // must mean durably stored.
        self.sync_names(path)?;
        Ok(BlobInfo { digest, size_bytes: size, existed: true })
    }

    /// Makes a blob's directory entries durable: its fan-out directory's entry for it, and
    /// `sha256/`'s entry for the fan-out directory (which a concurrent writer may have just
    /// created).
    fn sync_names(&self, blob_path: &Path) -> Result<()> {
        if let Some(fanout) = blob_path.parent() {
            fsync_dir(fanout)?;
        }
        fsync_dir(&self.root.join("sha256"))
    }

    /// Puts the blob's bytes at `dest` as a local file, for a process that can only open a
    /// path (a sandboxed plugin reading its input, an unzip of a plugin bundle), replacing
    /// what was there: a hard link when `dest` is on the blob folder's filesystem (a blob's
    /// file is never written again), else a copy. `NotFound` when it is not stored.
    pub fn materialize(&self, digest: &Sha256Digest, dest: &Path) -> Result<()> {
        let from = self.path_of(digest);
        if !from.is_file() {
            return Err(StoreError::NotFound(format!("blob {digest}")));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(StoreError::io(format!("creating {}", parent.display())))?;
        }
        match fs::remove_file(dest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StoreError::Io { context: format!("replacing {}", dest.display()), source: e });
            }
            _ => {}
        }
        fs::hard_link(&from, dest)
            .or_else(|_| fs::copy(&from, dest).map(|_| ()))
            .map_err(StoreError::io(format!("placing blob {digest} at {}", dest.display())))
    }

    /// Opens a blob for streaming reads, or `None` if it is not stored.
    pub fn open_blob(&self, digest: &Sha256Digest) -> Result<Option<File>> {
        let path = self.path_of(digest);
        match File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { context: format!("opening {}", path.display()), source: e }),
        }
    }

    /// Every stored blob: its digest, size and last modification time. Files whose names are
    /// not digests are skipped.
    pub fn list(&self) -> Result<Vec<(Sha256Digest, u64, SystemTime)>> {
        let mut out = Vec::new();
        let top = self.root.join("sha256");
        let fanouts = fs::read_dir(&top).map_err(StoreError::io(format!("listing {}", top.display())))?;
        for fanout in fanouts.flatten() {
            let Ok(entries) = fs::read_dir(fanout.path()) else { continue };
            for entry in entries.flatten() {
                let Some(digest) = entry.file_name().to_str().and_then(|n| n.parse::<Sha256Digest>().ok()) else {
                    continue;
                };
                if let Ok(meta) = entry.metadata() {
                    out.push((digest, meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
                }
            }
        }
        out.sort_by_key(|(d, _, _)| *d.as_bytes());
        Ok(out)
    }

    /// Deletes a blob; returns its size, or 0 if it was not stored.
    pub fn remove(&self, digest: &Sha256Digest) -> Result<u64> {
        let path = self.path_of(digest);
        let size = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::Io { context: format!("reading {}", path.display()), source: e }),
        };
        fs::remove_file(&path).map_err(StoreError::io(format!("removing {}", path.display())))?;
        if let Some(fanout) = path.parent() {
            fsync_dir(fanout)?;
        }
        Ok(size)
    }

    /// Re-hashes a stored blob and checks it still matches its address.
    pub fn verify(&self, digest: &Sha256Digest) -> Result<bool> {
        let path = self.path_of(digest);
        let (found, _) = hash_file(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(format!("blob {digest}")),
            _ => StoreError::Io { context: format!("reading {}", path.display()), source: e },
        })?;
        Ok(found == *digest)
    }

    /// Proves the temp directory accepts a synced write.
    pub fn check_writable(&self) -> Result<()> {
        let probe = self.root.join("tmp").join(format!("probe-{}", uuid::Uuid::now_v7()));
        let _guard = TempGuard(Some(probe.clone()));
        let mut file = File::create(&probe).map_err(StoreError::io(format!("creating {}", probe.display())))?;
        file.write_all(b"probe")
            .and_then(|()| file.sync_all())
            .map_err(StoreError::io(format!("writing {}", probe.display())))
    }

    /// Removes the temp files of writes whose writer is gone (a crash, `kill -9`), or in a
    /// dry run only counts them. A live write's file is locked and left alone, whichever
    /// process holds it; a file still being created is left alone for
    /// [`UNNAMED_TEMP_GRACE`].
    pub fn remove_stale_temps(&self, dry_run: bool) -> Result<StaleTemps> {
        let dir = self.root.join("tmp");
        let entries = fs::read_dir(&dir).map_err(StoreError::io(format!("listing {}", dir.display())))?;
        let mut stale = StaleTemps::default();
        for entry in entries {
            let entry = entry.map_err(StoreError::io(format!("listing {}", dir.display())))?;
            let path = entry.path();
            // Gone already (its write finished), or not ours to open: not stale.
            let Ok(file) = File::open(&path) else { continue };
            if path.extension().is_some_and(|e| e == NEW_SUFFIX) {
                let age = file.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                if age.is_none_or(|age| age <= UNNAMED_TEMP_GRACE) {
                    continue;
                }
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => continue,
                    Err(fs::TryLockError::Error(e)) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot tell whether a temp file is in use");
                        continue;
                    }
                }
            }
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            if !dry_run {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(StoreError::Io { context: format!("removing {}", path.display()), source: e });
                    }
                }
            }
            stale.files += 1;
            stale.bytes += bytes;
        }
        Ok(stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn blobs(max_bytes: u64) -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(&dir.path().join("blobs"), max_bytes).expect("open");
        (dir, store)
    }

    fn read_all(store: &BlobStore, digest: &Sha256Digest) -> Vec<u8> {
        let mut out = Vec::new();
        store.open_blob(digest).expect("open").expect("exists").read_to_end(&mut out).expect("read");
        out
    }

    fn tmp_is_empty(store: &BlobStore) -> bool {
        fs::read_dir(store.root().join("tmp")).expect("tmp").next().is_none()
    }

    #[test]
    fn layout_is_fanned_out_by_prefix() {
        let (_dir, store) = blobs(1024);
        let info = store.put_bytes(b"abc").expect("put");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(info.digest.to_hex(), hex);
        assert!(store.root().join("sha256/ba").join(hex).is_file());
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn cap_is_enforced_and_leaves_nothing() {
        let (_dir, store) = blobs(10);
        assert!(store.put_bytes(&[7; 10]).is_ok());
        assert!(matches!(store.put_bytes(&[7; 11]), Err(StoreError::TooLarge { cap_bytes: 10 })));
        assert!(tmp_is_empty(&store));
        assert!(!store.contains(&Sha256Digest::of(&[7; 11])));
    }

    /// A file still being created is never judged by its lock, which its writer may not
    /// have taken yet: it is kept until it is older than any creation takes.
    #[test]
    fn a_temp_file_being_created_is_kept_until_it_is_surely_abandoned() {
        let (_dir, store) = blobs(1 << 20);
        let tmp = store.root().join("tmp");
        fs::write(tmp.join("young.new"), b"just created").expect("write");
        let old = File::create(tmp.join("old.new")).expect("create");
        let long_ago = SystemTime::now() - UNNAMED_TEMP_GRACE - std::time::Duration::from_secs(1);
        old.set_modified(long_ago).expect("age it");
        assert_eq!(store.remove_stale_temps(false).expect("remove"), StaleTemps { files: 1, bytes: 0 });
        assert!(tmp.join("young.new").exists(), "an unlocked file in creation is not stale");
        assert!(!tmp.join("old.new").exists(), "one left by a writer that died is");
        // A write names its file .part only once it holds the lock.
        let (file, part, _guard) = store.create_temp().expect("temp");
        assert_eq!(part.extension().and_then(|e| e.to_str()), Some(PART_SUFFIX));
        assert!(matches!(File::open(&part).expect("open").try_lock(), Err(fs::TryLockError::WouldBlock)));
        drop(file);
    }

    /// A temp file whose writer is gone is removed; a live writer's is kept, whoever holds
    /// it, and a dry run only counts.
    #[test]
    fn only_temp_files_no_live_writer_holds_are_removed() {
        let (_dir, store) = blobs(1 << 20);
        let tmp = store.root().join("tmp");
        fs::write(tmp.join("dead.part"), b"left by a crash").expect("write");
        let live = File::create(tmp.join("live.part")).expect("create");
        live.lock().expect("lock");

        let counted = store.remove_stale_temps(true).expect("dry run");
        assert_eq!(counted, StaleTemps { files: 1, bytes: 15 });
        assert!(tmp.join("dead.part").exists(), "a dry run removes nothing");
        assert_eq!(store.remove_stale_temps(false).expect("remove"), counted);
        assert!(!tmp.join("dead.part").exists());
        assert!(tmp.join("live.part").exists(), "a locked file belongs to a live write");
        drop(live);
        assert_eq!(store.remove_stale_temps(false).expect("remove").files, 1, "its writer is gone now");
    }

    /// Cleaning up while writes are in flight never breaks one of them.
    #[test]
    fn cleaning_up_during_writes_leaves_them_whole() {
        let (_dir, store) = blobs(1 << 24);
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4u8)
                .map(|w| {
                    let store = store.clone();
                    scope.spawn(move || {
                        for i in 0..50u8 {
                            let data = vec![w.wrapping_mul(31).wrapping_add(i); 200_000];
                            let info = store.put(&data[..]).expect("a write survives cleanup");
                            assert_eq!(read_all(&store, &info.digest), data);
                        }
                    })
                })
                .collect();
            while !writers.iter().all(|w| w.is_finished()) {
                store.remove_stale_temps(false).expect("cleanup");
            }
        });
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn missing_blob_is_none() {
        let (_dir, store) = blobs(10);
        assert!(store.open_blob(&Sha256Digest::of(b"nope")).expect("open").is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_bytes_round_trip_and_dedup(data in proptest::collection::vec(any::<u8>(), 0..200_000)) {
            let (_dir, store) = blobs(1 << 20);
            let first = store.put_bytes(&data).expect("put");
            prop_assert_eq!(first.digest, Sha256Digest::of(&data));
            prop_assert_eq!(first.size_bytes, data.len() as u64);
            prop_assert!(!first.existed);
            let second = store.put(io::Cursor::new(&data)).expect("put again");
            prop_assert_eq!(second, BlobInfo { existed: true, ..first });
            prop_assert_eq!(read_all(&store, &first.digest), data);
            prop_assert!(store.verify(&first.digest).expect("verify"));
            prop_assert!(tmp_is_empty(&store));
        }

        #[test]
        fn concurrent_writers_of_same_content(data in proptest::collection::vec(any::<u8>(), 1..100_000), writers in 2usize..6) {
            let (_dir, store) = blobs(1 << 20);
            let results: Vec<BlobInfo> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..writers).map(|_| s.spawn(|| store.put_bytes(&data).expect("put"))).collect();
                handles.into_iter().map(|h| h.join().expect("join")).collect()
            });
            prop_assert_eq!(results.iter().filter(|r| !r.existed).count(), 1, "exactly one writer creates the blob");
            prop_assert!(results.iter().all(|r| r.digest == Sha256Digest::of(&data)));
            prop_assert_eq!(read_all(&store, &results[0].digest), data);
            prop_assert!(tmp_is_empty(&store));
        }
    }
}
