//! `/api/v1/runs` and `/api/v1/plugins`: plan, submit, watch, cancel and retry runs; read
//! their executions, lineage and report; list plugins.
//!
//! A submitted run executes on its own task, so the request returns as soon as the run is
//! recorded. Watchers follow it over `GET /api/v1/runs/{id}/events` (server-sent events):
//! the current state first, then live events until the run ends.

use std::convert::Infallible;
use std::time::Duration;
use tracing::Instrument;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{Value, json};
use vigil_core::id::{RunId, UploadId};
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_core::run::RunStatus;
use vigil_harness::{HarnessError, RunEvent, RunRequest};
use vigil_store::{ExecutionRecord, RunRecord};

use vigil_services::governance::{Domain, Subject};

use crate::api::{ApiError, ApiJson, ApiQuery, ListPage, audited, envelope};
use crate::auth::Principal;
use crate::gate::AuditContext;
use crate::state::AppState;

const SOURCE: &str = "store:runs";

/// How often an idle event stream sends a keep-alive comment.
const EVENTS_KEEPALIVE: Duration = Duration::from_secs(15);

impl From<HarnessError> for ApiError {
    fn from(e: HarnessError) -> Self {
        match e {
            HarnessError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            HarnessError::Invalid(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
            }
            HarnessError::Plan(e) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_plan", e.to_string()),
            HarnessError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            HarnessError::Store(e) => e.into(),
            HarnessError::Io(message) => {
                tracing::error!(error = %message, "harness failure");
                ApiError::internal()
            }
        }
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<RunStatus>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

/// A run with its plugin executions.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct RunDetail {
    pub run: RunRecord,
    pub executions: Vec<ExecutionRecord>,
}

/// A run with its executions.
async fn run_detail(state: &AppState, id: &str) -> Result<RunDetail, ApiError> {
    let run = state.store.get_run(RunId::new(id)).await?;
    let executions = state.store.list_executions(run.id.clone()).await?;
    Ok(RunDetail { run, executions })
}

/// Refuses (403, naming the switch and the policy version) when a kill switch of the policy
/// in force stops runs for this caller.
fn runs_not_switched_off(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    let key = principal.key_id();
    let subject = Subject { key: key.as_deref(), ..Subject::default() };
    match state.policies.guard().switched_off(Domain::Runs, &subject) {
        Some(refusal) => Err(ApiError::new(StatusCode::FORBIDDEN, refusal.code, refusal.reason)),
        None => Ok(()),
    }
}

/// Starts executing a queued run on its own task.
fn spawn_execution(state: &AppState, run_id: String) {
    let harness = state.harness.clone();
    // Every log line of the run carries its id, whichever request started it.
    let span = tracing::info_span!(parent: None, "run", run_id = %run_id);
    state.tasks.spawn(
        format!("run {run_id}"),
        async move {
            if let Err(e) = harness.execute(&run_id).await {
                tracing::error!(error = %e, "run did not execute");
            }
        }
        .instrument(span),
    );
}

pub async fn plan(State(state): State<AppState>, ApiJson(request): ApiJson<RunRequest>) -> Result<Response, ApiError> {
    let prepared = state.harness.prepare(&request).await?;
    Ok(envelope(prepared, Aggregation::Detail, "harness:plan").into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    runs_not_switched_off(&state, &principal)?;
    let entry = audit.entry(StatusCode::CREATED);
    let submitted = state.harness.submit(&request, &principal.label(), Some(entry)).await?;
    if !submitted.reused {
        spawn_execution(&state, submitted.run.id.to_string());
    }
    let status = if submitted.reused { StatusCode::OK } else { StatusCode::CREATED };
    Ok(audited((status, envelope(submitted, Aggregation::Detail, SOURCE))))
}

pub async fn list(State(state): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let data = ListPage::new(state.store.list_runs_page(q.status, page).await?);
    Ok(envelope(data, Aggregation::List, SOURCE).into_response())
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let detail = run_detail(&state, &id).await;
    match detail {
        Ok(detail) => Ok(envelope(detail, Aggregation::Detail, SOURCE).into_response()),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(gone_or(&state, &id, e).await),
        Err(e) => Err(e),
    }
}

/// A removed run answers 410 with its tombstone instead of a bare 404.
async fn gone_or(state: &AppState, id: &str, not_found: ApiError) -> ApiError {
    match state.store.tombstone(id.to_owned()).await {
        Ok(Some(t)) => ApiError::new(
            StatusCode::GONE,
            "removed",
            format!("{} {id} was removed by {} at {}: {}", t.kind, t.removed_by, t.removed_at.to_rfc3339(), t.reason),
        )
        .with_details(json!({ "tombstone": t })),
        _ => not_found,
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// Age such as `30d`, `12h`, `90m`: unpinned runs older than this are removed.
    #[schemars(pattern(r"^[0-9]{1,6}[dhms]$"))]
    pub older_than: String,
    /// Only report what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

pub async fn pin(
    State(state): State<AppState>,
    Extension(audit): Extension<AuditContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_pinned(state, audit, id, true).await
}

pub async fn unpin(
    State(state): State<AppState>,
    Extension(audit): Extension<AuditContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_pinned(state, audit, id, false).await
}

async fn set_pinned(state: AppState, audit: AuditContext, id: String, pinned: bool) -> Result<Response, ApiError> {
    let run = state.store.set_run_pinned(RunId::new(id), pinned, Some(audit.entry(StatusCode::OK))).await?;
    Ok(audited(envelope(run, Aggregation::Detail, SOURCE)))
}

pub async fn gc(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiJson(request): ApiJson<GcRequest>,
) -> Result<Response, ApiError> {
    let older_than = vigil_harness::gc::parse_age(&request.older_than)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e))?;
    let entry = |target: &str| {
        let mut context = audit.clone();
        context.action = "gc.remove";
        context.target = target.to_owned();
        context.entry(StatusCode::OK)
    };
    let by = principal.label();
    let report = vigil_harness::gc::collect(&state.harness, older_than, &by, request.dry_run, &entry).await?;
    // Each removal carries its own audit entry; a dry run or an empty collection is
    // recorded by the gate.
    let response = envelope(report, Aggregation::Summary, "harness:gc").into_response();
    Ok(response)
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(audit): Extension<AuditContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.harness.cancel(&id, Some(audit.entry(StatusCode::OK))).await?;
    Ok(audited(envelope(run, Aggregation::Detail, SOURCE)))
}

pub async fn retry(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    runs_not_switched_off(&state, &principal)?;
    let run = state.harness.retry(&id, Some(audit.entry(StatusCode::OK))).await?;
    spawn_execution(&state, id);
    Ok(audited(envelope(run, Aggregation::Detail, SOURCE)))
}

pub async fn lineage(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = state.store.get_run(RunId::new(id)).await?;
    let edges = state.store.list_lineage(run.id).await?;
    Ok(envelope(edges, Aggregation::List, "store:lineage").into_response())
}

pub async fn report(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let report = state.harness.read_report(&id).await?;
    Ok(envelope(report, Aggregation::Detail, "run:report.json").into_response())
}

/// `GET /api/v1/runs/{id}/events`: server-sent events, or a WebSocket when the request
/// asks to upgrade. Either way: the run's state first, then live events until it ends.
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let wants_websocket = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_websocket {
        let (mut parts, _) = req.into_parts();
        let upgrade =
            <WebSocketUpgrade as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
                .await
                .map_err(|r| ApiError::bad_request("invalid_upgrade", r.body_text()))?;
        return websocket_events(state, id, upgrade).await;
    }
    // Subscribe before reading the state, so nothing happens unseen in between.
    let live = state.harness.subscribe(&id);
    let detail = run_detail(&state, &id).await?;
    let snapshot = Event::default().event("state").json_data(&detail).unwrap_or_default();
    let finished = detail.run.status.is_final() || live.is_none();
    let first = stream::iter([Ok::<_, Infallible>(snapshot)]);
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = match live {
        Some(rx) if !finished => Box::pin(first.chain(live_events(rx))),
        _ => {
            let end = json!({ "event": "run_finished", "run_id": id, "status": detail.run.status });
            let last = Event::default().event("run_finished").json_data(end).unwrap_or_default();
            Box::pin(first.chain(stream::iter([Ok(last)])))
        }
    };
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(EVENTS_KEEPALIVE)).into_response())
}

async fn websocket_events(state: AppState, id: String, upgrade: WebSocketUpgrade) -> Result<Response, ApiError> {
    let live = state.harness.subscribe(&id);
    let detail = run_detail(&state, &id).await?;
    let finished = detail.run.status.is_final() || live.is_none();
    let status = detail.run.status;
    let snapshot = json!({ "event": "state", "run": detail.run, "executions": detail.executions }).to_string();
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        if socket.send(Message::Text(snapshot.into())).await.is_err() {
            return;
        }
        match live {
            Some(mut rx) if !finished => loop {
                let text = match rx.recv().await {
                    Ok(event) => {
                        let last = matches!(event, RunEvent::RunFinished { .. });
                        let text = serde_json::to_string(&event).unwrap_or_default();
                        if socket.send(Message::Text(text.into())).await.is_err() || last {
                            break;
                        }
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        json!({ "event": "lagged", "missed": missed }).to_string()
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            },
            _ => {
                let end = json!({ "event": "run_finished", "run_id": id, "status": status }).to_string();
                let _ = socket.send(Message::Text(end.into())).await;
            }
        }
        let _ = socket.send(Message::Close(None)).await;
    }))
}

/// Live events until the run finishes (a lagging watcher is told how many it missed).
fn live_events(rx: tokio::sync::broadcast::Receiver<RunEvent>) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        match rx.recv().await {
            Ok(event) => {
                let name = match &event {
                    RunEvent::Plan { .. } => "plan",
                    RunEvent::PluginStarted { .. } => "plugin_started",
                    RunEvent::PluginFinished { .. } => "plugin_finished",
                    RunEvent::Log { .. } => "log",
                    RunEvent::Progress { .. } => "progress",
                    RunEvent::RunFinished { .. } => "run_finished",
                };
                let last = matches!(event, RunEvent::RunFinished { .. });
                let sse = Event::default().event(name).json_data(&event).unwrap_or_default();
                Some((Ok(sse), (rx, last)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                let sse = Event::default().event("lagged").data(format!("{missed} events were dropped"));
                Some((Ok(sse), (rx, false)))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactQuery {
    /// Bytes to return at most (default 1 MiB, at most 64 MiB); a longer file is cut and
    /// `X-Vigil-Truncated: true` says so.
    pub max_bytes: Option<u64>,
    /// Replace secrets (bearer tokens, API keys, cookies, passwords) with `[REDACTED]`
    /// (default true); `X-Vigil-Redactions` counts them.
    pub redact: Option<bool>,
}

/// Default size of an artifact read.
const ARTIFACT_READ_BYTES_DEFAULT: u64 = 1 << 20;

pub async fn artifacts(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let run = state.store.get_run(RunId::new(id)).await?;
    let entries = state.harness.artifacts(&run).await?;
    Ok(envelope(entries, Aggregation::List, "run:files").into_response())
}

pub async fn artifact(
    State(state): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ArtifactQuery>,
) -> Result<Response, ApiError> {
    let max_bytes = q.max_bytes.unwrap_or(ARTIFACT_READ_BYTES_DEFAULT);
    let redact = q.redact.unwrap_or(true);
    let name = path.clone();
    let run = state.store.get_run(RunId::new(id)).await?;
    let read = state.harness.read_artifact(&run, path, max_bytes, redact).await?;
    let media = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("json") => "application/json",
        Some("md") => "text/markdown; charset=utf-8",
        Some("txt" | "log" | "csv" | "tsv") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    let headers = [
        (axum::http::header::CONTENT_TYPE, media.to_owned()),
        (axum::http::HeaderName::from_static("x-vigil-total-bytes"), read.total_bytes.to_string()),
        (axum::http::HeaderName::from_static("x-vigil-truncated"), read.truncated.to_string()),
        (axum::http::HeaderName::from_static("x-vigil-redactions"), read.redactions.to_string()),
        // A run's files are data, never a page to render.
        (axum::http::header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'".to_owned()),
        (axum::http::HeaderName::from_static("x-content-type-options"), "nosniff".to_owned()),
    ];
    Ok((headers, read.bytes).into_response())
}

pub async fn bundle(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let file = vigil_harness::bundle::write_bundle_to_temp(&state.harness, &id).await?;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let headers = [
        (axum::http::header::CONTENT_TYPE, "application/zip".to_owned()),
        (axum::http::header::CONTENT_LENGTH, length.to_string()),
        (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}.zip\"")),
    ];
    Ok((headers, axum::body::Body::from_stream(stream)).into_response())
}

/// A plugin's manifest with whether it may run.
fn describe(registry: &vigil_harness::registry::Registry, plugin: &vigil_harness::manifest::Plugin) -> Value {
    let mut value = plugin.describe();
    let (enabled, approved) = registry.install_state(&plugin.id).unwrap_or((true, true));
    value["enabled"] = json!(enabled);
    value["permissions_approved"] = json!(approved);
    value["installed"] = json!(registry.install_state(&plugin.id).is_some());
    value
}

pub async fn list_plugins(State(state): State<AppState>) -> Result<Response, ApiError> {
    let registry = state.harness.registry().await;
    let plugins: Vec<Value> = registry.plugins().iter().map(|p| describe(&registry, p)).collect();
    let invalid: Vec<String> = registry.problems().iter().map(ToString::to_string).collect();
    Ok(envelope(json!({ "items": plugins, "invalid": invalid }), Aggregation::List, "harness:plugins").into_response())
}

pub async fn get_plugin(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let registry = state.harness.registry().await;
    let plugin = registry.get(&id).ok_or_else(|| ApiError::not_found(format!("plugin {id} not found")))?;
    Ok(envelope(describe(&registry, plugin), Aggregation::Detail, "harness:plugins").into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// An upload holding a zip of the plugin folder.
    pub upload_id: String,
}

pub async fn install_plugin(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(audit): Extension<AuditContext>,
    ApiJson(request): ApiJson<InstallRequest>,
) -> Result<Response, ApiError> {
    let upload = state.store.get_upload(UploadId::new(request.upload_id)).await?;
    let entry = audit.entry(StatusCode::CREATED);
    let installed =
        vigil_harness::install::install_upload(&state.harness, &upload, &principal.label(), Some(entry)).await?;
    Ok(audited((StatusCode::CREATED, envelope(installed, Aggregation::Detail, "store:plugin_installs"))))
}

/// What an installed-plugin change does.
#[derive(Clone, Copy, Debug)]
enum PluginChange {
    Approve,
    Enable,
    Disable,
    Rollback,
}

async fn change_plugin(
    state: AppState,
    principal: Principal,
    audit: AuditContext,
    id: String,
    change: PluginChange,
) -> Result<Response, ApiError> {
    let entry = Some(audit.entry(StatusCode::OK));
    let store = &state.store;
    let installed = match change {
        PluginChange::Approve => store.approve_plugin(id, principal.label(), entry).await,
        PluginChange::Enable => store.set_plugin_enabled(id, true, entry).await,
        PluginChange::Disable => store.set_plugin_enabled(id, false, entry).await,
        PluginChange::Rollback => store.rollback_plugin(id, entry).await,
    }?;
    // The change is committed with its audit entry; the plugins are reloaded now, or by
    // the next call that sees the new plugins version.
    if let Err(e) = state.harness.reload_plugins().await {
        tracing::warn!(error = %e, "the plugins will be reloaded on their next use");
    }
    Ok(audited(envelope(installed, Aggregation::Detail, "store:plugin_installs")))
}

macro_rules! plugin_change {
    ($name:ident, $change:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Extension(principal): Extension<Principal>,
            Extension(audit): Extension<AuditContext>,
            Path(id): Path<String>,
        ) -> Result<Response, ApiError> {
            change_plugin(state, principal, audit, id, $change).await
        }
    };
}

plugin_change!(approve_plugin, PluginChange::Approve);
plugin_change!(enable_plugin, PluginChange::Enable);
plugin_change!(disable_plugin, PluginChange::Disable);
plugin_change!(rollback_plugin, PluginChange::Rollback);
