//! `/api/v1/keys`: create, list, show and revoke API keys.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vigil_core::id::KeyId;
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_core::scope::Scope;
use vigil_store::KeyRecord;

use crate::api::{ApiError, ApiJson, ApiQuery, ListPage, audited, envelope};
use crate::auth::Principal;
use crate::gate::AuditContext;
use crate::state::AppState;

const SOURCE: &str = "store:api_keys";

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A unique name among active keys: letters, digits, space, `.`, `_`, `-`.
    #[schemars(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9 ._-]*[A-Za-z0-9._-][A-Za-z0-9 ._-]*$"))]
    pub name: String,
    pub scope: Scope,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Include revoked keys.
    #[serde(default)]
    pub include_revoked: bool,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

fn parse_id(text: &str) -> Result<KeyId, ApiError> {
    text.parse().map_err(|e: vigil_core::id::KeyIdParseError| ApiError::not_found(format!("key: {e}")))
}

pub async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let data = ListPage::new(state.store.list_keys_page(q.include_revoked, page).await?);
    Ok(envelope(data, Aggregation::List, SOURCE).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    let entry = audit.entry(StatusCode::CREATED);
    let created = state.store.create_key(body.name, body.scope, principal.label(), Some(entry)).await?;
    refresh_keys(&state).await;
    Ok(audited((StatusCode::CREATED, envelope(created, Aggregation::Detail, SOURCE))))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let key: KeyRecord = state.store.get_key(id).await?;
    Ok(envelope(key, Aggregation::Detail, SOURCE).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(audit): Extension<AuditContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let entry = audit.entry(StatusCode::OK);
    let key = state.store.revoke_key(id, Some(entry)).await?;
    refresh_keys(&state).await;
    Ok(audited(envelope(key, Aggregation::Detail, SOURCE)))
}

/// Applies a key change to the cache now. The change is committed whatever happens here, so
/// a failure only delays it until the next poll; the caller must still get its answer (a
/// new key's secret is shown only once).
async fn refresh_keys(state: &AppState) {
    if let Err(e) = state.refresh_keys().await {
        tracing::warn!(error = ?e, "key cache refresh failed; the next poll will pick the change up");
    }
}
