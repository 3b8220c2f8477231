//! Taking in an upload: stream it into the blob store, detect its format from its first
//! bytes, and record the attempt (a new upload, or a reuse of the same content).

use std::io::{Cursor, Read};

use vigil_core::digest::Sha256Digest;
use vigil_store::ports::{Blobs, Runs};
use vigil_store::{NewAuditEntry, NewUpload, StoreError, UploadAttempt};

use crate::format::{self, SNIFF_BYTES};
use crate::fsutil::{TaskFailed, off_thread};

impl From<TaskFailed> for StoreError {
    fn from(e: TaskFailed) -> Self {
        StoreError::Io { context: "reading the upload".into(), source: std::io::Error::other(String::from(e)) }
    }
}

/// Reads up to [`SNIFF_BYTES`] from the start of `content`: what its format is detected
/// from. Blocking.
fn read_head(content: &mut dyn Read) -> Result<Vec<u8>, StoreError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    content
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| StoreError::Io { context: "reading the upload's first bytes".into(), source })?;
    Ok(head)
}

/// Stores `content` under `file_name` for `by`. `audit` builds the audit entry from the
/// content's digest; it is written in the same transaction as the upload's record.
pub async fn store_upload(
    store: &dyn Runs,
    blobs: &dyn Blobs,
    content: Box<dyn Read + Send>,
    file_name: &str,
    by: &str,
    audit: Option<&(dyn Fn(Sha256Digest) -> NewAuditEntry + Sync)>,
) -> Result<UploadAttempt, StoreError> {
    // The content may be a blocking reader (a bridge from the request body): its first
    // bytes are read on the blocking pool, as the blob store reads the rest.
    let (head, content) = off_thread(move || {
        let mut content = content;
        let head = read_head(&mut content)?;
        Ok::<_, StoreError>((head, content))
    })
    .await?;
    // An empty body is a mistake (a client that sent no file), not a dataset: refuse it
    // before anything is stored.
    if head.is_empty() {
        return Err(StoreError::Invalid("the upload is empty: send the file's content as the body".into()));
    }
    let file_name = vigil_store::uploads::clean_file_name(file_name);
    let detected = format::detect(&head, &file_name);
    let info = blobs.put(Box::new(Cursor::new(head).chain(content))).await?;
    let new = NewUpload {
        sha256: info.digest.to_string(),
        size_bytes: info.size_bytes,
        file_name,
        format: detected.as_str().to_owned(),
        by: by.to_owned(),
    };
    let entry = audit.map(|build| build(info.digest));
    store.record_upload(new, entry).await
}
