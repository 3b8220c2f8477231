//! `/api/v1/version`, `/api/v1/openapi.json` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use vigil_core::config::Mode;
use vigil_core::provenance::Aggregation;

use crate::api::{ApiError, Envelope, envelope};
use crate::state::AppState;

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Version {
    pub version: &'static str,
    pub git_sha: &'static str,
    pub schema_version: i64,
    pub mode: Mode,
}

pub async fn version(State(state): State<AppState>) -> Result<Json<Envelope<Version>>, ApiError> {
    let schema_version = state.store.schema_version().await?;
    let data =
        Version { version: state.build.version, git_sha: state.build.git_sha, schema_version, mode: state.config.mode };
    Ok(envelope(data, Aggregation::Detail, "process"))
}

pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.openapi.clone())
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
