//! `/api/v1/known-issues`: what each kind of dataset is expected to show, versioned, with a
//! preview of the checks a declaration becomes before it is saved or run.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vigil_core::provenance::Aggregation;
use vigil_harness::known::{Declaration, IssuePreview};
use vigil_harness::runs::PreviewRequest;
use vigil_store::KnownIssueSet;

use crate::api::{ApiError, ApiJson, ApiQuery, audited, envelope};
use crate::auth::Principal;
use crate::gate::AuditContext;
use crate::state::AppState;

const SOURCE: &str = "store:known_issue_sets";

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// A past version; the latest when omitted.
    pub version: Option<u32>,
}

/// One version of a dataset kind's known issues, with the versions it has had.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KnownIssues {
    pub set: KnownIssueSet,
    /// Every version, newest first (without their issues).
    pub history: Vec<Version>,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Version {
    pub version: u32,
    pub sha256: String,
    pub created_at: vigil_core::time::Timestamp,
    pub created_by: String,
}

/// A saved version and the checks it becomes.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Saved {
    pub set: KnownIssueSet,
    /// False when the latest version already held exactly these issues.
    pub changed: bool,
    pub preview: Vec<IssuePreview>,
}

pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sets = state.store.list_known_issues().await?;
    Ok(envelope(sets, Aggregation::List, SOURCE).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> Result<Response, ApiError> {
    let set = state.store.known_issues(kind.clone(), q.version).await?;
    let history = state
        .store
        .known_issue_history(kind)
        .await?
        .into_iter()
        .map(|s| Version { version: s.version, sha256: s.sha256, created_at: s.created_at, created_by: s.created_by })
        .collect();
    Ok(envelope(KnownIssues { set, history }, Aggregation::Detail, SOURCE).into_response())
}

pub async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    Path(kind): Path<String>,
    ApiJson(declaration): ApiJson<Declaration>,
) -> Result<Response, ApiError> {
    let harness = &state.harness;
    let entry = Some(audit.entry(StatusCode::OK));
    let (set, changed) = harness.save_known_issues(&kind, &declaration, &principal.label(), entry).await?;
    let request = PreviewRequest { dataset_kind: Some(kind), ..PreviewRequest::default() };
    let preview = harness.preview_known_issues(&request).await?;
    let saved = Saved { set, changed, preview };
    Ok(audited(envelope(saved, Aggregation::Detail, SOURCE)))
}

pub async fn preview(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Response, ApiError> {
    let preview = state.harness.preview_known_issues(&request).await?;
    Ok(envelope(preview, Aggregation::List, "harness:known_issues").into_response())
}
