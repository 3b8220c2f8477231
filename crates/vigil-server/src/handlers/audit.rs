//! `/api/v1/audit`: list entries with filters, and verify the hash chain.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_store::{AuditFilter, AuditOutcome};

use crate::api::{ApiError, ApiQuery, ListPage, envelope, envelope_with_period, time_param, window};
use crate::state::AppState;

const SOURCE: &str = "store:audit_log";

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `local`, `cli`, `anonymous`, `env-admin` or `key:<id>`.
    pub principal: Option<String>,
    /// Operation name, e.g. `keys.create`.
    pub action: Option<String>,
    pub outcome: Option<AuditOutcome>,
    /// Entries at or after this RFC 3339 time.
    #[schemars(extend("format" = "date-time"))]
    pub from: Option<String>,
    /// Entries before this RFC 3339 time.
    #[schemars(extend("format" = "date-time"))]
    pub to: Option<String>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

pub async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let from = time_param("from", q.from.as_deref())?;
    let to = time_param("to", q.to.as_deref())?;
    let filter = AuditFilter { principal: q.principal, action: q.action, outcome: q.outcome, from, to };
    let data = ListPage::new(state.store.list_audit(filter, page).await?);
    Ok(envelope_with_period(data, Aggregation::List, SOURCE, window(from, to)).into_response())
}

pub async fn verify(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = state.store.verify_audit().await?;
    Ok(envelope(report, Aggregation::Summary, SOURCE).into_response())
}
