//! `/api/v1/policy`: the caller's tenant's policy document, every save a version, checked
//! before it is saved (every problem at once, then the static checks' findings with an
//! example request each) and diffed against the version it replaces; rollback to any
//! version.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use vigil_core::id::TenantId;
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_services::governance::{Checked, PolicyError, SIMULATE_DAYS_DEFAULT, Saved, Simulated};
use vigil_store::PolicyVersion;

use crate::api::{ApiError, ApiJson, ApiQuery, ListPage, audited, envelope};
use crate::auth::Principal;
use crate::gate::AuditContext;
use crate::state::AppState;

const SOURCE: &str = "store:policy_versions";
/// Versions per page of the history, at most.
const HISTORY_PAGE_MAX: u32 = 20;

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Invalid(problems) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_policy",
                format!("the policy document has {} problem(s); see details.problems", problems.len()),
            )
            .with_details(serde_json::json!({ "problems": problems })),
            PolicyError::Store(e) => e.into(),
        }
    }
}

/// The tenant whose policy a caller reads and edits. Keys belong to the default tenant
/// until tenants exist.
fn tenant_of(_principal: &Principal) -> TenantId {
    TenantId::default_tenant()
}

/// A document to check or save.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// The whole document: `default`, `rules`, `kill_switches`, `budgets`, `rate_limits`.
    #[schemars(with = "vigil_services::governance::PolicyDocument")]
    pub document: Value,
    /// The version this edit started from (absent for the first policy). A save is refused
    /// with 409 when another one came first.
    #[serde(default, deserialize_with = "vigil_core::number::whole_opt")]
    pub based_on: Option<u32>,
}

/// A rollback: which version to restore, on top of which.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(deserialize_with = "vigil_core::number::whole")]
    pub version: u32,
    /// The latest version the caller saw.
    #[serde(deserialize_with = "vigil_core::number::whole")]
    pub based_on: u32,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub cursor: Option<String>,
    /// Page size, 1 to 500; pages hold at most 20 versions (and 20 by default).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

pub async fn current(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    let policy = state.policies.current(&tenant_of(&principal)).await.map_err(|e| match e {
        PolicyError::Store(vigil_store::StoreError::NotFound(_)) => ApiError::not_found(
            "no policy is saved yet: every call is allowed; PUT /api/v1/policy saves the first version",
        ),
        other => other.into(),
    })?;
    Ok(envelope(policy, Aggregation::Detail, SOURCE).into_response())
}

pub async fn version(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    let version: u32 = version
        .parse()
        .map_err(|_| ApiError::not_found(format!("policy version {version:?}: versions are numbers from 1")))?;
    let policy = state.policies.version(&tenant_of(&principal), version).await?;
    Ok(envelope(policy, Aggregation::Detail, SOURCE).into_response())
}

pub async fn history(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    // Each version holds its whole document: pages stay small.
    let mut page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    page.limit = page.limit.min(HISTORY_PAGE_MAX);
    let versions = state.policies.history(&tenant_of(&principal), page).await?;
    Ok(envelope(ListPage::<PolicyVersion>::new(versions), Aggregation::List, SOURCE).into_response())
}

pub async fn check(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<PolicyRequest>,
) -> Result<Response, ApiError> {
    let checked: Checked = state.policies.check(&tenant_of(&principal), &request.document).await?;
    Ok(envelope(checked, Aggregation::Summary, "governance:check").into_response())
}

pub async fn save(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiJson(request): ApiJson<PolicyRequest>,
) -> Result<Response, ApiError> {
    let entry = audit.entry(StatusCode::OK);
    let tenant = tenant_of(&principal);
    let saved: Saved =
        state.policies.save(&tenant, request.document, request.based_on, &principal.label(), Some(entry)).await?;
    Ok(audited(envelope(saved, Aggregation::Detail, SOURCE)))
}

pub async fn rollback(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Response, ApiError> {
    let entry = audit.entry(StatusCode::OK);
    let tenant = tenant_of(&principal);
    let saved = state
        .policies
        .rollback(&tenant, request.version, Some(request.based_on), &principal.label(), Some(entry))
        .await?;
    Ok(audited(envelope(saved, Aggregation::Detail, SOURCE)))
}

/// A proposal to replay against recorded calls.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    #[schemars(with = "vigil_services::governance::PolicyDocument")]
    pub document: Value,
    /// Days of recorded calls to replay, 1 to 30 (default 7).
    #[serde(default, deserialize_with = "vigil_core::number::whole_opt")]
    #[schemars(range(min = 1, max = 30))]
    pub days: Option<u32>,
}

pub async fn simulate(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<SimulateRequest>,
) -> Result<Response, ApiError> {
    let days = request.days.unwrap_or(SIMULATE_DAYS_DEFAULT);
    if !(1..=vigil_services::governance::SIMULATE_DAYS_MAX).contains(&days) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "days is 1 to 30"));
    }
    let simulated: Simulated = state.policies.simulate(&tenant_of(&principal), request.document, days).await?;
    Ok(envelope(simulated, Aggregation::Summary, "governance:simulate").into_response())
}
