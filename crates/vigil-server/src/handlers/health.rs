//! `/health/live` and `/health/ready`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vigil_core::provenance::Aggregation;

use crate::api::{ApiError, Envelope, envelope};
use crate::state::AppState;

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Live {
    pub status: &'static str,
    pub uptime_seconds: u64,
}

pub async fn live(State(state): State<AppState>) -> Json<Envelope<Live>> {
    let data = Live { status: "live", uptime_seconds: state.started.elapsed().as_secs() };
    envelope(data, Aggregation::Detail, "process")
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Why the check failed.
    pub message: Option<String>,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Ready {
    pub status: &'static str,
    pub checks: Vec<Check>,
}

fn check(name: &'static str, result: Result<(), String>) -> Check {
    match result {
        Ok(()) => Check { name, ok: true, message: None },
        Err(message) => Check { name, ok: false, message: Some(message) },
    }
}

/// How long a readiness result is reused. The checks write to the database and the blob
/// directory, and the route is public: without this, anyone could turn probes into a write
/// load.
pub const READINESS_CACHE_TTL: Duration = Duration::from_secs(1);

async fn run_checks(state: &AppState) -> Vec<Check> {
    let head = vigil_store::migrations::head_version();
    let (database, blobs, schema) =
        tokio::join!(state.store.check_writable(), state.blobs.check_writable(), state.store.schema_version());
    vec![
        check("database_writable", database.map_err(|e| e.to_string())),
        check("blobs_writable", blobs.map_err(|e| e.to_string())),
        check(
            "schema_at_head",
            match schema {
                Ok(v) if v == head => Ok(()),
                Ok(v) => Err(format!("schema version {v}, expected {head}")),
                Err(e) => Err(e.to_string()),
            },
        ),
    ]
}

/// Runs every check (none short-circuits the others) and answers 503 naming the failures.
/// Concurrent probes share one run; a result is reused for [`READINESS_CACHE_TTL`].
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut cached = state.readiness.lock().await;
    let checks = match cached.as_ref() {
        Some((at, checks)) if at.elapsed() < READINESS_CACHE_TTL => checks.clone(),
        _ => {
            let checks = run_checks(&state).await;
            *cached = Some((Instant::now(), checks.clone()));
            checks
        }
    };
    drop(cached);

    if checks.iter().all(|c| c.ok) {
        return envelope(Ready { status: "ready", checks }, Aggregation::Summary, "health").into_response();
    }
    let failing: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    ApiError::unavailable("not_ready", format!("not ready: {}", failing.join(", ")))
        .with_details(json!({ "checks": checks }))
        .into_response()
}
