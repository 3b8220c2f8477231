//! `POST /api/v1/ingest`: vitals reported by agents themselves (an SDK, a sidecar), for
//! calls that did not pass through the gateway.
//!
//! A batch is validated item by item: the good items are stored (and update discovery like
//! gateway calls do), each bad one is answered with its index, field and reason, and a
//! batch with nothing good is refused as a whole (422).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vigil_core::provenance::Aggregation;
use vigil_core::time::Timestamp;
use vigil_services::ingest::{IngestItem, to_vital};

use crate::api::{ApiError, ApiJson, envelope};
use crate::state::AppState;

/// Items one batch may carry.
pub const INGEST_ITEMS_MAX: usize = 10_000;

/// A batch of reported calls.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    /// Up to 10,000 items; each is checked on its own (see [`IngestItem`]).
    #[schemars(with = "Vec<IngestItem>", length(max = INGEST_ITEMS_MAX))]
    pub vitals: Vec<Value>,
}

/// What happened to a batch.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct IngestResult {
    pub accepted: usize,
    pub rejected: usize,
    /// One per rejected item: `{index, field, message}`.
    pub errors: Vec<Value>,
}

pub async fn ingest(State(state): State<AppState>, ApiJson(batch): ApiJson<IngestBatch>) -> Result<Response, ApiError> {
    if batch.vitals.len() > INGEST_ITEMS_MAX {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_items",
            format!("a batch holds at most {INGEST_ITEMS_MAX} vitals, this one {}", batch.vitals.len()),
        ));
    }
    let received = Timestamp::now();
    let mut vitals = Vec::with_capacity(batch.vitals.len());
    let mut errors = Vec::new();
    for (index, raw) in batch.vitals.iter().enumerate() {
        match to_vital(raw, received) {
            Ok(v) => vitals.push(v),
            Err(refused) => {
                errors.push(json!({ "index": index, "field": refused.field, "message": refused.message }));
            }
        }
    }
    if vitals.is_empty() && !errors.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_vitals", "no item in the batch is valid")
            .with_details(json!({ "errors": errors })));
    }
    vitals.iter_mut().for_each(|v| state.gateway.prices().price(v));
    let accepted = vitals.len();
    state.store.insert_vitals(vitals.clone()).await?;
    for vital in &vitals {
        state.immune.observe(vital);
    }
    let result = IngestResult { accepted, rejected: errors.len(), errors };
    Ok(envelope(result, Aggregation::Summary, "store:vitals").into_response())
}
