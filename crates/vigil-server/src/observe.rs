//! The outermost middleware: assigns the request id, opens the tracing span every log line
//! of the request is written in, and records metrics. (The request deadline is enforced
//! inside [`crate::gate`], so a request that runs out of time is still audited.)

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use vigil_core::id::RequestId;

use crate::metrics::HttpLabels;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Request extension: when the request reached Vigil.
#[derive(Clone, Copy, Debug)]
pub struct Received(pub Instant);

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(|| RequestId::from_uuid(uuid::Uuid::now_v7()));
    req.extensions_mut().insert(request_id.clone());
    req.extensions_mut().insert(Received(started));

    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| state.route(&method, m.as_str()))
        .map_or("unmatched", |spec| spec.path);
    // `agent_id` is filled in by the gateway once a model call's agent is known.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %req.uri().path(),
        agent_id = tracing::field::Empty
    );

    let mut response = next.run(req).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe_request(HttpLabels { method: method_label(&method), route, status }, elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(status, latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), "request");
    });
    response
}
