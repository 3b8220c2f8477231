//! `/api/v1/immune/...`: agents' health, incidents, approvals, immune memory, operator
//! commands and the replayable export.
//!
//! Reads come from the engine's state in memory. Operator commands (quarantine, release,
//! approve, reject, heal-now, feedback) are inputs to the engine: they are answered once
//! the engine has applied and logged them, with the decisions they led to; the gate's
//! audit entry records who gave them.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, body::Body};
use serde::{Deserialize, Serialize};
use vigil_core::id::{AgentId, IncidentId};
use vigil_core::page::PageRequest;
use vigil_core::provenance::Aggregation;
use vigil_core::time::Timestamp;
use vigil_immune::diagnosis::Diagnosis;
use vigil_immune::engine::{Approval, ApprovalStatus, Decision, EngineError, Incident, IncidentStatus, Input};
use vigil_immune::healing::Action;
use vigil_immune::lifecycle::{State as LifeState, Transition};
use vigil_immune::sentinel::Metric;

use crate::api::{ApiError, ApiJson, ApiQuery, ListPage, envelope};
use crate::auth::Principal;
use crate::state::AppState;
use vigil_services::immune::ImmuneError;

const SOURCE: &str = "immune";

impl From<ImmuneError> for ApiError {
    fn from(e: ImmuneError) -> Self {
        match e {
            ImmuneError::Refused(e) => {
                let message = e.to_string();
                match e {
                    EngineError::UnknownApproval(_)
                    | EngineError::UnknownIncident(_)
                    | EngineError::UnknownAction(_) => ApiError::not_found(message),
                    EngineError::ApprovalNotOpen { .. } | EngineError::WrongState { .. } => {
                        ApiError::new(StatusCode::CONFLICT, "conflict", message)
                    }
                    EngineError::EmptyAgent => {
                        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
                    }
                }
            }
            ImmuneError::Disabled | ImmuneError::Stopped => ApiError::unavailable("immune_unavailable", e.to_string()),
            ImmuneError::Store(e) => e.into(),
        }
    }
}

/// One agent as the immune system sees it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AgentHealth {
    pub agent_id: AgentId,
    pub state: LifeState,
    /// Whether the gateway lets its new calls through.
    pub accepts_calls: bool,
    pub observations: u64,
    pub anomalies: u64,
    pub last_seen: Timestamp,
    pub incident_id: Option<IncidentId>,
    pub pending_approval: Option<String>,
    /// Normal calls so far in probation, out of `probation_calls`.
    pub probation_progress: Option<u32>,
    pub probation_calls: u32,
    /// Actions that did not cure it in the current incident.
    pub failed_actions: Vec<Action>,
}

/// One learned baseline, in the metric's unit.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BaselineView {
    pub metric: Metric,
    pub samples: u64,
    /// Learned on the logarithm (latency, tokens, cost): `mean` is then the geometric mean
    /// and `spread` a factor (×/÷); otherwise the mean and the standard deviation.
    pub log_scale: bool,
    pub mean: f64,
    pub spread: f64,
    /// Recent level against the long-run one, in standard deviations.
    pub drift: f64,
    pub warm: bool,
}

/// One agent in full.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AgentDetail {
    #[serde(flatten)]
    pub health: AgentHealth,
    pub baselines: Vec<BaselineView>,
    pub prompt_sha256: Option<String>,
    /// Lifecycle transitions, oldest first (the newest 200).
    pub history: Vec<Transition>,
    pub control_url: Option<vigil_store::ControlUrl>,
}

fn health(engine: &vigil_immune::engine::Engine, id: &str, a: &vigil_immune::engine::AgentState) -> AgentHealth {
    AgentHealth {
        agent_id: AgentId::new(id),
        state: a.state(),
        accepts_calls: a.state().accepts_calls(),
        observations: a.observations,
        anomalies: a.anomalies,
        last_seen: Timestamp::from_unix_micros(a.last_seen_us),
        incident_id: a.incident_id.clone(),
        pending_approval: a.pending_approval().map(str::to_owned),
        probation_progress: a.probation_progress(),
        probation_calls: engine.config().probation_calls,
        failed_actions: a.failed.clone(),
    }
}

/// The number in an id such as `inc-0000000042`.
fn id_number(id: &str) -> i64 {
    id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Items newest first, after the cursor (the number of the last id of the previous page),
/// one page of them: new items arriving meanwhile shift nothing.
fn paged_by_id<T>(items: impl Iterator<Item = T>, id: impl Fn(&T) -> &str, page: PageRequest) -> ListPage<T> {
    let before = page.after.map(|c| c.position());
    let rows: Vec<T> =
        items.filter(|t| before.is_none_or(|b| id_number(id(t)) < b)).take(page.fetch_limit() as usize).collect();
    let (rows, next) = page.finish(rows, |t| id_number(id(t)));
    ListPage::new((rows, next))
}

/// Items after the cursor (an index into `items`), one page of them.
fn paged<T>(items: impl Iterator<Item = T>, page: PageRequest) -> ListPage<T> {
    let start = page.after.map_or(0, |c| usize::try_from(c.position()).unwrap_or(0) + 1);
    let rows: Vec<(usize, T)> = items.enumerate().skip(start).take(page.fetch_limit() as usize).collect();
    let (rows, next) = page.finish(rows, |(i, _)| i64::try_from(*i).unwrap_or(i64::MAX));
    ListPage::new((rows.into_iter().map(|(_, t)| t).collect(), next))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsQuery {
    /// Only agents in this state.
    pub state: Option<LifeState>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

pub async fn list_agents(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AgentsQuery>,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let data = state.immune.read(|engine| {
        let items = engine
            .agents()
            .filter(|(_, a)| q.state.is_none_or(|s| a.state() == s))
            .map(|(id, a)| health(engine, id, a));
        paged(items, page)
    });
    Ok(envelope(data, Aggregation::List, SOURCE).into_response())
}

pub async fn get_agent(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let detail = state.immune.read(|engine| {
        let a = engine.agent(&id)?;
        let config = engine.config().baseline;
        Some(AgentDetail {
            health: health(engine, &id, a),
            baselines: Metric::ALL
                .into_iter()
                .map(|metric| {
                    let b = a.baseline(metric);
                    let log_scale = metric.log_scale();
                    BaselineView {
                        metric,
                        samples: b.samples,
                        log_scale,
                        mean: if log_scale { b.mean.exp() } else { b.mean },
                        spread: if log_scale { b.std_dev().exp() } else { b.std_dev() },
                        drift: b.drift(),
                        warm: b.is_warm(&config),
                    }
                })
                .collect(),
            prompt_sha256: a.prompt_sha256.clone(),
            history: a.lifecycle.history().to_vec(),
            control_url: None,
        })
    });
    let Some(mut detail) = detail else {
        return Err(ApiError::not_found(format!("the immune system has not seen agent {id:?}")));
    };
    detail.control_url = state.store.control_url(AgentId::new(id)).await?.map(|mut c| {
        c.url = vigil_services::immune::redact_url(&c.url);
        c
    });
    Ok(envelope(detail, Aggregation::Detail, SOURCE).into_response())
}

/// What an operator command led to.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CommandResult {
    pub decisions: Vec<Decision>,
}

async fn operate(state: &AppState, input: Input) -> Result<Response, ApiError> {
    let decisions = state.immune.operate(input).await?;
    Ok(envelope(CommandResult { decisions }, Aggregation::Detail, SOURCE).into_response())
}

pub async fn quarantine(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    operate(&state, Input::Quarantine { agent_id: AgentId::new(id), by: principal.label() }).await
}

pub async fn release(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    operate(&state, Input::Release { agent_id: AgentId::new(id), by: principal.label() }).await
}

/// Where the agent receives healing actions.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// An `http` or `https` URL; Vigil POSTs each action to it as JSON
    /// (`action_id`, `agent_id`, `incident_id`, `action`, `diagnosis`) and counts a 2xx answer
    /// as done.
    #[schemars(length(min = 1, max = 2048), extend("format" = "uri"))]
    pub url: String,
}

/// Longest control URL accepted.
const CONTROL_URL_MAX: usize = 2_048;

pub async fn set_control(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ControlBody>,
) -> Result<Response, ApiError> {
    let url = body.url.trim().to_owned();
    if url.chars().count() > CONTROL_URL_MAX {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("url must be at most {CONTROL_URL_MAX} characters"),
        ));
    }
    // Checked again (with the addresses its host resolves to) before every call.
    if let Err(e) = state.config.egress.check_url(&url) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "url_refused", format!("url: {e}"))
            .with_details(serde_json::json!({ "field": "url" })));
    }
    if id.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "an empty agent id"));
    }
    let control = state.store.set_control_url(AgentId::new(id), url, principal.label()).await?;
    Ok(envelope(control, Aggregation::Detail, SOURCE).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    pub status: Option<IncidentStatus>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

/// An incident without its timeline (see `GET /api/v1/immune/incidents/{id}`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IncidentSummary {
    pub incident_id: IncidentId,
    pub agents: Vec<AgentId>,
    pub diagnosis: Diagnosis,
    pub confidence: f64,
    pub status: IncidentStatus,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub attempts: usize,
}

fn summary(i: &Incident) -> IncidentSummary {
    IncidentSummary {
        incident_id: i.incident_id.clone(),
        agents: i.agents.clone(),
        diagnosis: i.diagnosis(),
        confidence: i.hypotheses.first().map_or(0.0, |h| h.confidence),
        status: i.status,
        opened_at: Timestamp::from_unix_micros(i.opened_at_us),
        closed_at: i.closed_at_us.map(Timestamp::from_unix_micros),
        attempts: i.attempts.len(),
    }
}

pub async fn list_incidents(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<IncidentsQuery>,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let data = state.immune.read(|engine| {
        let items = engine.incidents().filter(|i| q.status.is_none_or(|s| i.status == s)).map(summary);
        paged_by_id(items, |i: &IncidentSummary| i.incident_id.as_str(), page)
    });
    Ok(envelope(data, Aggregation::List, SOURCE).into_response())
}

pub async fn get_incident(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let incident = state.immune.read(|engine| engine.incident(&id).cloned());
    let incident = incident.ok_or_else(|| ApiError::not_found(format!("no incident {id:?}")))?;
    Ok(envelope(incident, Aggregation::Detail, SOURCE).into_response())
}

/// An operator's verdict on an incident's diagnosis.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// The diagnosis judged (usually the incident's top one).
    pub diagnosis: Diagnosis,
    /// True: it was right; false: it was wrong.
    pub confirmed: bool,
}

pub async fn feedback(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<Response, ApiError> {
    let input = Input::Feedback {
        incident_id: IncidentId::new(id),
        diagnosis: body.diagnosis,
        confirmed: body.confirmed,
        by: principal.label(),
    };
    operate(&state, input).await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsQuery {
    pub status: Option<ApprovalStatus>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

pub async fn list_approvals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ApprovalsQuery>,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let data: ListPage<Approval> = state.immune.read(|engine| {
        let items = engine.approvals().filter(|a| q.status.is_none_or(|s| a.status == s)).cloned();
        paged_by_id(items, |a: &Approval| a.approval_id.as_str(), page)
    });
    Ok(envelope(data, Aggregation::List, SOURCE).into_response())
}

pub async fn get_approval(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let approval = state.immune.read(|engine| engine.approval(&id).cloned());
    let approval = approval.ok_or_else(|| ApiError::not_found(format!("no approval {id:?}")))?;
    Ok(envelope(approval, Aggregation::Detail, SOURCE).into_response())
}

pub async fn approve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    operate(&state, Input::Approve { approval_id: id, by: principal.label() }).await
}

pub async fn reject(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    operate(&state, Input::Reject { approval_id: id, by: principal.label() }).await
}

pub async fn heal_now(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    operate(&state, Input::HealNow { approval_id: id, by: principal.label() }).await
}

/// What healing has taught the fleet, and what operators said of diagnoses.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Memory {
    pub actions: Vec<ActionRecord>,
    pub feedback: Vec<FeedbackRecord>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ActionRecord {
    pub diagnosis: Diagnosis,
    pub action: Action,
    pub attempts: u32,
    pub successes: u32,
    /// Laplace-smoothed, as the ladder orders by.
    pub success_rate: f64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FeedbackRecord {
    pub diagnosis: Diagnosis,
    pub confirmed: u32,
    pub refuted: u32,
    /// What future confidence in this diagnosis is multiplied by.
    pub factor: f64,
}

pub async fn memory(State(state): State<AppState>) -> Result<Response, ApiError> {
    let data = state.immune.read(|engine| Memory {
        actions: engine
            .memory()
            .records()
            .map(|(diagnosis, action, r)| ActionRecord {
                diagnosis,
                action,
                attempts: r.attempts,
                successes: r.successes,
                success_rate: r.rate(),
            })
            .collect(),
        feedback: Diagnosis::ALL
            .into_iter()
            .filter_map(|d| {
                let (confirmed, refuted) = engine.feedback().counts(d);
                (confirmed + refuted > 0).then(|| FeedbackRecord {
                    diagnosis: d,
                    confirmed,
                    refuted,
                    factor: engine.feedback().factor(d),
                })
            })
            .collect(),
    });
    Ok(envelope(data, Aggregation::Summary, SOURCE).into_response())
}

/// The replay file: the oldest kept snapshot, then every logged input after it, one JSON
/// object per line (see `vigil immune replay`).
pub async fn export(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.store.export_immune().await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from(text)).into_response())
}
