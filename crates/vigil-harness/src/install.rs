//! Installing plugins: from a folder or a zip, as a content-addressed bundle under
//! `<data>/plugins-installed/<sha256>/`, disabled until its permissions are approved.
//!
//! The bundle's address is the plugin's code hash (every file, by path), so installing the
//! same content twice is one bundle, and what runs is exactly what was approved: a changed
//! file is a different bundle, which needs approving again unless it asks for the same
//! permissions an earlier install of the plugin had approved.

use std::path::{Path, PathBuf};

use vigil_core::digest::Sha256Digest;
use vigil_store::{InstalledPlugin, NewAuditEntry, UploadRecord};

use crate::bundle::unpack;
use crate::fsutil::off_thread;
use crate::manifest::MANIFEST_FILE;
use crate::registry::load_folder;
use crate::runs::{Harness, HarnessError};

/// Largest plugin bundle unpacked.
const PLUGIN_BUNDLE_BYTES_MAX: u64 = 512 << 20;

/// The folder installed bundles live in.
pub fn installed_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("plugins-installed")
}

/// Installs the plugin in `source` (a folder holding `plugin.toml`, or a zip of one) and
/// makes it the plugin's active install.
pub async fn install(
    harness: &Harness,
    source: &Path,
    by: &str,
    audit: Option<NewAuditEntry>,
) -> Result<InstalledPlugin, HarnessError> {
    let staging = harness.tmp_dir().join(format!("install-{}-{}", std::process::id(), uuid_like()));
    let (source, data_dir, vigil_version) =
        (source.to_owned(), harness.data_dir().to_owned(), harness.vigil_version().to_owned());
    let staged = off_thread(move || {
        let result = std::fs::create_dir_all(&staging)
            .map_err(|e| HarnessError::Io(format!("{}: {e}", staging.display())))
            .and_then(|()| stage(&source, &staging, &data_dir, &vigil_version));
        let _ = std::fs::remove_dir_all(&staging);
        result
    })
    .await?;
    let Staged { plugin_id, version, bundle_sha256, permissions } = staged;
    let store = harness.store();
    let state = store.record_install(plugin_id, version, bundle_sha256, permissions, by.to_owned(), audit).await?;
    // Recorded and audited: a failed reload now is retried by the next use of the plugins.
    if let Err(e) = harness.reload_plugins().await {
        tracing::warn!(error = %e, "the plugins will be reloaded on their next use");
    }
    Ok(state)
}

/// Installs the plugin bundle (a zip) an upload holds. The unzip reads a local file: the
/// blob is materialized as one in the harness's scratch folder, and removed afterwards.
pub async fn install_upload(
    harness: &Harness,
    upload: &UploadRecord,
    by: &str,
    audit: Option<NewAuditEntry>,
) -> Result<InstalledPlugin, HarnessError> {
    let digest: Sha256Digest = upload
        .sha256
        .parse()
        .map_err(|_| HarnessError::Invalid(format!("upload {} has a malformed hash", upload.id)))?;
    let bundle = harness.tmp_dir().join(format!("bundle-{}-{}.zip", std::process::id(), uuid_like()));
    harness.blobs().materialize(digest, bundle.clone()).await?;
    let result = install(harness, &bundle, by, audit).await;
    let removed = bundle.clone();
    if let Err(e) = off_thread(move || std::fs::remove_file(&removed).map_err(|e| e.to_string())).await {
        tracing::warn!(error = %e, path = %bundle.display(), "could not remove a materialized bundle");
    }
    result
}

pub(crate) fn uuid_like() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// A plugin bundle in place under the installed folder, to be recorded.
struct Staged {
    plugin_id: String,
    version: String,
    bundle_sha256: String,
    permissions: serde_json::Value,
}

/// Copies or unzips `source` into `staging`, checks the plugin, and moves it to its
/// content address under the installed folder (unless that bundle is already there).
/// Blocking.
fn stage(source: &Path, staging: &Path, data_dir: &Path, vigil_version: &str) -> Result<Staged, HarnessError> {
    let meta = std::fs::metadata(source).map_err(|e| HarnessError::Invalid(format!("{}: {e}", source.display())))?;
    if meta.is_dir() {
        copy_files(source, staging)?;
    } else {
        let file =
            std::fs::File::open(source).map_err(|e| HarnessError::Invalid(format!("{}: {e}", source.display())))?;
        unpack(file, staging, PLUGIN_BUNDLE_BYTES_MAX)?;
    }
    // A zip may hold the plugin folder itself rather than its contents.
    let root = if staging.join(MANIFEST_FILE).is_file() {
        staging.to_owned()
    } else {
        let mut subfolders = std::fs::read_dir(staging)
            .map_err(|e| HarnessError::Io(e.to_string()))?
            .flatten()
            .filter(|e| e.path().join(MANIFEST_FILE).is_file())
            .map(|e| e.path());
        match (subfolders.next(), subfolders.next()) {
            (Some(only), None) => only,
            _ => {
                return Err(HarnessError::Invalid(format!(
                    "{} holds no single plugin folder with a {MANIFEST_FILE}",
                    source.display()
                )));
            }
        }
    };
    let plugin = load_folder(&root, vigil_version).map_err(|e| HarnessError::Invalid(e.to_string()))?;
    let sha = plugin.code_hash.to_string();
    let target = installed_dir(data_dir).join(&sha);
    if !target.is_dir() {
        std::fs::create_dir_all(installed_dir(data_dir)).map_err(|e| HarnessError::Io(e.to_string()))?;
        std::fs::rename(&root, &target)
            .map_err(|e| HarnessError::Io(format!("installing into {}: {e}", target.display())))?;
        readable_by_all(&target)?;
    }
    let permissions = serde_json::to_value(&plugin.permissions)
        .map_err(|e| HarnessError::Invalid(format!("the permissions of {} cannot be recorded: {e}", plugin.id)))?;
    Ok(Staged { plugin_id: plugin.id, version: plugin.version, bundle_sha256: sha, permissions })
}

/// Copies regular files and folders; links are refused (a bundle is self-contained).
fn copy_files(from: &Path, to: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(to).map_err(|e| HarnessError::Io(format!("{}: {e}", to.display())))?;
    for entry in std::fs::read_dir(from).map_err(|e| HarnessError::Invalid(format!("{}: {e}", from.display())))? {
        let entry = entry.map_err(|e| HarnessError::Io(e.to_string()))?;
        let kind = entry.file_type().map_err(|e| HarnessError::Io(e.to_string()))?;
        let target = to.join(entry.file_name());
        if kind.is_symlink() {
            return Err(HarnessError::Invalid(format!(
                "{} is a link; a plugin folder holds files only",
                entry.path().display()
            )));
        } else if kind.is_dir() {
            copy_files(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| HarnessError::Io(format!("{}: {e}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Makes an installed bundle readable (and its folders enterable) by the sandbox user,
/// keeping executables executable.
fn readable_by_all(dir: &Path) -> Result<(), HarnessError> {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &Path, extra: u32| -> Result<(), HarnessError> {
        let mode = std::fs::metadata(path).map_err(|e| HarnessError::Io(e.to_string()))?.permissions().mode();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode((mode | extra) & 0o755))
            .map_err(|e| HarnessError::Io(format!("{}: {e}", path.display())))
    };
    set(dir, 0o755)?;
    for entry in std::fs::read_dir(dir).map_err(|e| HarnessError::Io(e.to_string()))?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            readable_by_all(&path)?;
        } else {
            let executable = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o100 != 0).unwrap_or(false);
            set(&path, if executable { 0o755 } else { 0o644 })?;
        }
    }
    Ok(())
}
