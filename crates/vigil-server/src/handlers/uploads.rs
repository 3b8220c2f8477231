//! `/api/v1/uploads`: content streamed into the blob store, one upload per distinct sha256.
//!
//! The body is never held in memory: it streams from the socket through a bridge into
//! [`vigil_harness::uploads::store_upload`], read on the blocking pool; the blob store hashes, caps
//! and verifies it.
//! The first bytes decide the detected format. Content that already exists is reused, and
//! the answer says so in words as well as in `reused`; the attempt is recorded either way.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_store::UploadAttempt;

use crate::api::{ApiError, ApiQuery, ListPage, audited, envelope};
use crate::auth::Principal;
use crate::gate::AuditContext;
use crate::state::AppState;

const SOURCE: &str = "store:uploads";

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    /// The file name (its last path component is kept). Used for format detection too.
    pub name: Option<String>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

/// The answer to an upload.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    pub attempt: UploadAttempt,
    /// What happened, in words: a new upload, or which earlier upload was reused.
    pub message: String,
}

impl Uploaded {
    pub fn new(attempt: UploadAttempt) -> Self {
        let u = &attempt.upload;
        let message = if attempt.reused {
            format!(
                "matched existing content, reusing upload {} from {} (first uploaded as {:?})",
                u.id,
                u.created_at.to_rfc3339(),
                u.file_name
            )
        } else {
            format!("stored new upload {} ({} bytes, {})", u.id, u.size_bytes, u.format)
        };
        Uploaded { attempt, message }
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiQuery(q): ApiQuery<CreateQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let failed = Arc::new(OnceLock::new());
    let reader = BodyReader { inner: SyncIoBridge::new(StreamReader::new(stream)), failed: Arc::clone(&failed) };
    let file_name = q.name.unwrap_or_else(|| "upload".to_owned());
    let entry = |digest| {
        let mut audit = audit.clone();
        audit.body_sha256 = digest;
        audit.entry(StatusCode::CREATED)
    };
    let stored = state.harness.upload(Box::new(reader), &file_name, &principal.label(), Some(&entry)).await;
    let attempt = match (stored, failed.get().cloned()) {
        (Ok(attempt), _) => attempt,
        // The client went away or sent a broken body: their problem, not a storage failure.
        (Err(_), Some(why)) => {
            return Err(ApiError::bad_request("invalid_body", format!("could not read the request body: {why}")));
        }
        (Err(e), None) => return Err(e.into()),
    };
    let answer = envelope(Uploaded::new(attempt), Aggregation::Detail, SOURCE);
    Ok(audited((StatusCode::CREATED, answer)))
}

/// The request body as a blocking reader that remembers why reading it failed.
struct BodyReader<R> {
    inner: R,
    failed: Arc<OnceLock<String>>,
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let _ = self.failed.set(e.to_string());
        })
    }
}

pub async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let data = ListPage::new(state.store.list_uploads_page(page).await?);
    Ok(envelope(data, Aggregation::List, SOURCE).into_response())
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let upload = state.store.get_upload(vigil_core::id::UploadId::new(id)).await?;
    Ok(envelope(upload, Aggregation::Detail, SOURCE).into_response())
}
