//! `/api/v1/budgets` and `/api/v1/ledger`: where each budget of the policy in force stands
//! (spent and held, per subject, in its current window), and the hash-chained ledger of
//! admissions, settlements and expiries it is counted from.

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use vigil_core::id::TenantId;
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_core::time::Timestamp;
use vigil_services::budgets::BudgetStatus;
use vigil_store::LedgerEntry;

use crate::api::{ApiError, ApiQuery, ListPage, envelope};
use crate::auth::Principal;
use crate::state::AppState;

/// The tenant whose budgets and ledger a caller reads. Keys belong to the default tenant
/// until tenants exist.
fn tenant_of(_principal: &Principal) -> TenantId {
    TenantId::default_tenant()
}

pub async fn statuses(State(state): State<AppState>) -> Result<Response, ApiError> {
    let guard = state.policies.guard();
    let found: Vec<BudgetStatus> =
        vigil_services::budgets::statuses(&guard, state.budgets.as_ref(), Timestamp::now()).await?;
    Ok(envelope(found, Aggregation::Summary, "store:budget_spend").into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

pub async fn ledger(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let entries = state.budgets.ledger(tenant_of(&principal), page).await?;
    Ok(envelope(ListPage::<LedgerEntry>::new(entries), Aggregation::List, "store:ledger").into_response())
}
