//! The gateway's routes: model calls (`/v1/...`, OpenAI-compatible) and the vitals they
//! leave behind (`/api/v1/vitals`).

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vigil_core::id::{AgentId, RequestId};
use vigil_core::page::PageRequest;
use vigil_core::provenance::{Aggregation, Period};
use vigil_gateway::fingerprint::{agent_id, agent_type};
use vigil_gateway::{Caller, openai_error};
use vigil_store::VitalsFilter;

use crate::api::{ApiError, ApiQuery, ListPage, envelope, envelope_with_period, time_param, window};
use crate::auth::{Principal, is_vigil_token};
use crate::observe::Received;
use crate::state::AppState;

/// Longest `X-Vigil-Feature` / `X-Vigil-User` tag kept.
const TAG_LEN_MAX: usize = 128;

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn tag(headers: &HeaderMap, name: &str) -> Option<String> {
    header_text(headers, name).map(|v| v.chars().take(TAG_LEN_MAX).collect())
}

/// Largest cost a caller may report for one call: $1,000.
const REPORTED_COST_USD_MAX: f64 = 1_000.0;

/// `X-Vigil-Reported-Cost-Usd: 0.00123` as nano-dollars; ignored unless a finite,
/// non-negative amount within [`REPORTED_COST_USD_MAX`].
fn reported_cost(headers: &HeaderMap) -> Option<i64> {
    let usd: f64 = header_text(headers, "x-vigil-reported-cost-usd")?.parse().ok()?;
    (usd <= REPORTED_COST_USD_MAX).then(|| vigil_core::vitals::cost_nanos_from_usd(usd)).flatten()
}

/// Works out who is calling from the headers.
fn caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    request_id: Option<&RequestId>,
    received: Option<Received>,
    principal: Option<&Principal>,
) -> Caller {
    // A bearer token (OpenAI's SDKs) or X-API-Key (Anthropic's) that is not a Vigil
    // credential is the caller's own provider key.
    let bearer = header_text(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let client_key = bearer
        .into_iter()
        .chain(header_text(headers, "x-api-key"))
        .find(|token| !token.is_empty() && !is_vigil_token(state, token));
    let user_agent = header_text(headers, header::USER_AGENT.as_str());
    let agent_id = agent_id(header_text(headers, "x-agent-id"), client_key, peer.ip(), user_agent);
    // The request's span (and so every log line of the call) carries the agent.
    tracing::Span::current().record("agent_id", tracing::field::display(&agent_id));
    Caller {
        received: received.map_or_else(Instant::now, |r| r.0),
        request_id: request_id.map(|id| id.as_str().to_owned()),
        agent_id,
        agent_type: agent_type(user_agent).to_owned(),
        key_id: principal.and_then(Principal::key_id),
        client_key: client_key.map(str::to_owned),
        feature: tag(headers, "x-vigil-feature"),
        user: tag(headers, "x-vigil-user"),
        client_ip: Some(peer.ip()),
        anthropic_version: tag(headers, "anthropic-version"),
        anthropic_beta: tag(headers, "anthropic-beta"),
        reported_cost_nanos: reported_cost(headers),
    }
}

/// The parts of a model-call request every gateway route needs, extracted with errors in
/// the provider's shape.
#[derive(Debug)]
pub struct ModelCall {
    caller: Caller,
    body: Bytes,
}

impl FromRequest<AppState> for ModelCall {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let request_id = req.extensions().get::<RequestId>().cloned();
        let received = req.extensions().get::<Received>().copied();
        let principal = req.extensions().get::<Principal>().cloned();
        let caller = caller(state, req.headers(), peer, request_id.as_ref(), received, principal.as_ref());
        // Model calls have no API deadline (the provider's timeout bounds them), but the
        // upload of the request body does: a trickling client cannot hold a connection.
        let deadline = state.config.http.request_timeout;
        let body = match tokio::time::timeout(deadline, Bytes::from_request(req, state)).await {
            Ok(Ok(body)) => body,
            Ok(Err(rejection)) => {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "request_too_large" } else { "invalid_body" };
                return Err(openai_error(status, "invalid_request_error", code, rejection.body_text()));
            }
            Err(_) => {
                let message = format!("the request body did not arrive within {} ms", deadline.as_millis());
                return Err(openai_error(StatusCode::REQUEST_TIMEOUT, "invalid_request_error", "timeout", message));
            }
        };
        Ok(ModelCall { caller, body })
    }
}

pub async fn chat_completions(State(state): State<AppState>, call: ModelCall) -> Response {
    state.gateway.chat_completions(call.caller, call.body).await
}

pub async fn responses(State(state): State<AppState>, call: ModelCall) -> Response {
    state.gateway.responses(call.caller, call.body).await
}

pub async fn messages(State(state): State<AppState>, call: ModelCall) -> Response {
    state.gateway.messages(call.caller, call.body).await
}

pub async fn embeddings(State(state): State<AppState>, call: ModelCall) -> Response {
    state.gateway.embeddings(call.caller, call.body).await
}

pub async fn models(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    received: Option<Extension<Received>>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Response {
    let caller = caller(&state, &headers, peer, None, received.map(|e| e.0), principal.as_ref().map(|p| &p.0));
    state.gateway.models(&caller).await
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VitalsQuery {
    pub agent_id: Option<String>,
    /// Calls at or after this RFC 3339 time.
    #[schemars(extend("format" = "date-time"))]
    pub from: Option<String>,
    /// Calls before this RFC 3339 time.
    #[schemars(extend("format" = "date-time"))]
    pub to: Option<String>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u64>,
}

pub async fn list_vitals(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VitalsQuery>,
) -> Result<Response, ApiError> {
    let page = PageRequest::new(q.cursor.as_deref(), q.limit)?;
    let from = time_param("from", q.from.as_deref())?;
    let to = time_param("to", q.to.as_deref())?;
    let filter = VitalsFilter { agent_id: q.agent_id.map(AgentId::new), from, to };
    let data = ListPage::new(state.store.list_vitals(filter, page).await?);
    Ok(envelope_with_period(data, Aggregation::List, "store:vitals", window(from, to)).into_response())
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsQuery {
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
    let data = ListPage::new(state.store.list_agents(page).await?);
    Ok(envelope(data, Aggregation::List, "store:agents").into_response())
}

pub async fn get_agent(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let agent = state.store.get_agent(AgentId::new(id)).await?;
    Ok(envelope(agent, Aggregation::Detail, "store:agents").into_response())
}

/// The window `GET /api/v1/gateway/stats` sums when it is given no `from`: one day.
pub const STATS_DEFAULT_WINDOW_US: i64 = 24 * 3600 * 1_000_000;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Calls at or after this RFC 3339 time; by default 24 hours before `to` (the answer's
    /// `provenance.period` says which window was summed).
    #[schemars(extend("format" = "date-time"))]
    pub from: Option<String>,
    /// Calls before this RFC 3339 time.
    #[schemars(extend("format" = "date-time"))]
    pub to: Option<String>,
}

pub async fn stats(State(state): State<AppState>, ApiQuery(q): ApiQuery<StatsQuery>) -> Result<Response, ApiError> {
    let to = time_param("to", q.to.as_deref())?;
    // Unbounded, the sum scans every vital ever stored (seconds at a million rows): without
    // a `from`, the last day before `to` (or now) is summed.
    let from = time_param("from", q.from.as_deref())?.or_else(|| {
        let end = to.unwrap_or_else(vigil_core::time::Timestamp::now).as_unix_micros();
        Some(vigil_core::time::Timestamp::from_unix_micros(end.saturating_sub(STATS_DEFAULT_WINDOW_US)))
    });
    let stats = state.store.gateway_stats(from, to).await?;
    Ok(envelope_with_period(stats, Aggregation::Summary, "store:vitals", Some(Period { from, to })).into_response())
}
