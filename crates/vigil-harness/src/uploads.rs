//! Taking in an upload: stream it into the blob store, detect its format from its first
//! bytes, and record the attempt (a new upload, or a reuse of the same content).

use std::io::Read;

use vigil_core::digest::Sha256Digest;
use vigil_store::{BlobStore, NewAuditEntry, NewUpload, Store, StoreError, UploadAttempt};

use crate::format::{self, SNIFF_BYTES};

/// Stores `content` under `file_name` for `by`. `audit` builds the audit entry from the
/// content's digest; it is written in the same transaction as the upload's record.
pub fn store_upload(
    store: &Store,
    blobs: &BlobStore,
    content: impl Read,
    file_name: &str,
    by: &str,
    audit: Option<&dyn Fn(Sha256Digest) -> NewAuditEntry>,
) -> Result<UploadAttempt, StoreError> {
    // An empty body is a mistake (a client that sent no file), not a dataset: refuse it
    // before anything is stored.
    let mut content = content;
    let mut first = [0u8; 1];
    let n = loop {
        match content.read(&mut first) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(StoreError::Io { context: "reading the upload".into(), source }),
        }
    };
    if n == 0 {
        return Err(StoreError::Invalid("the upload is empty: send the file's content as the body".into()));
    }
    let info = blobs.put(first[..n].chain(content))?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    if let Some(file) = blobs.open_blob(&info.digest)? {
        file.take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|source| StoreError::Io { context: "reading the upload's first bytes".into(), source })?;
    }
    let file_name = vigil_store::uploads::clean_file_name(file_name);
    let detected = format::detect(&head, &file_name);
    let sha = info.digest.to_string();
    let new = NewUpload {
        sha256: sha,
        size_bytes: info.size_bytes,
        file_name,
        format: detected.as_str().to_owned(),
        by: by.to_owned(),
    };
    let entry = audit.map(|build| build(info.digest));
    store.record_upload(&new, entry.as_ref())
}
