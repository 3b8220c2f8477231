//! The gate every request passes after routing: identify the caller, rate-limit, check the
//! route's [`Access`], and record mutating requests in the audit log.
//!
//! Default-deny: a request that matched no declared route (a 404 or 405 to be) still needs
//! a read key, so unauthenticated callers cannot probe which paths exist. Mutating requests
//! (POST, PUT, PATCH, DELETE) are audited whatever their outcome, including refusals, with
//! the SHA-256 of the body as received.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vigil_core::digest::Sha256Digest;
use vigil_core::id::RequestId;
use vigil_core::scope::Scope;
use vigil_store::NewAuditEntry;

use crate::api::ApiError;
use crate::auth::{Principal, authorize, identify};
use crate::routes::Access;
use crate::state::AppState;

fn is_mutating(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// Reads the whole body (up to the cap) so it can be hashed, then puts it back.
async fn buffer_body(req: Request, cap: usize) -> Result<(Request, Sha256Digest), ApiError> {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(ApiError::payload_too_large(cap as u64));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, cap).await.map_err(|_| ApiError::payload_too_large(cap as u64))?;
    let digest = Sha256Digest::of(&bytes);
    Ok((Request::from_parts(parts, Body::from(bytes)), digest))
}

pub async fn gate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let spec = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| state.route(req.method(), m.as_str()))
        .map(|s| (s.access, s.operation));
    let access = spec.map_or(Access::Scope(Scope::Read), |(access, _)| access);
    let deadline = state.config.http.request_timeout;
    if access == Access::Public {
        return tokio::time::timeout(deadline, next.run(req)).await.unwrap_or_else(|_| timed_out(deadline));
    }

    let mutating = is_mutating(req.method());
    let action = spec.map_or("unrouted", |(_, operation)| operation);
    let target = req.uri().path().to_owned();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.as_str().to_owned());

    let identity = identify(&state, req.headers(), peer.ip()).await;
    let principal = identity.as_ref().ok().and_then(Option::as_ref).cloned();
    // The deadline covers reading the body too, so a client trickling bytes cannot hold a
    // request open forever. The audit entry below is written even when it expires.
    let (response, body_sha256) =
        tokio::time::timeout(deadline, admit_and_run(&state, req, peer, identity, access, mutating, next))
            .await
            .unwrap_or_else(|_| (timed_out(deadline), None));

    if mutating {
        let entry = NewAuditEntry {
            principal: principal.as_ref().map_or_else(|| "anonymous".to_owned(), Principal::label),
            action: action.to_owned(),
            target,
            request_id,
            body_sha256: body_sha256.unwrap_or_else(|| Sha256Digest::of(b"")),
            status: response.status().as_u16(),
        };
        let store = state.store.clone();
        match tokio::task::spawn_blocking(move || store.append_audit(&entry)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                state.metrics.audit_failures.inc();
                tracing::error!(error = %e, "could not append audit entry");
            }
            Err(e) => {
                state.metrics.audit_failures.inc();
                tracing::error!(error = %e, "audit task failed");
            }
        }
    }
    response
}

async fn admit_and_run(
    state: &AppState,
    req: Request,
    peer: SocketAddr,
    identity: Result<Option<Principal>, ApiError>,
    access: Access,
    mutating: bool,
    next: Next,
) -> (Response, Option<Sha256Digest>) {
    // Callers with a valid key are limited per key; everyone else (no key, a bad key, or a
    // loopback caller in local mode) per IP, which also slows down key guessing.
    if let Some(limiter) = &state.limiter {
        let bucket = match &identity {
            Ok(Some(p @ (Principal::Key(_) | Principal::EnvAdmin))) => p.label(),
            _ => format!("ip:{}", peer.ip()),
        };
        if let Err(retry_after) = limiter.check(&bucket) {
            state.metrics.rate_limited.inc();
            return (ApiError::too_many_requests(retry_after).into_response(), None);
        }
    }
    let (mut req, body_sha256) = if mutating {
        match buffer_body(req, state.config.http.max_body_bytes).await {
            Ok((req, digest)) => (req, Some(digest)),
            Err(e) => return (e.into_response(), None),
        }
    } else {
        (req, None)
    };
    let principal = match identity {
        Ok(principal) => principal,
        Err(e) => return (e.into_response(), body_sha256),
    };
    if let Access::Scope(needed) = access
        && let Err(e) = authorize(principal.as_ref(), needed)
    {
        return (e.into_response(), body_sha256);
    }
    if let Some(principal) = principal {
        req.extensions_mut().insert(principal);
    }
    (next.run(req).await, body_sha256)
}

fn timed_out(deadline: std::time::Duration) -> Response {
    let message = format!("the request did not finish within {} ms", deadline.as_millis());
    ApiError::unavailable("timeout", message).into_response()
}
