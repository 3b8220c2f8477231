//! The gate every request passes after routing: identify the caller, rate-limit, check the
//! route's [`Access`], and record mutating requests in the audit log.
//!
//! Order matters. The caller is identified first, then rate-limited (per key, else per IP,
//! public routes included), then checked against the route's access **before** any body
//! is read into memory: a refused request's body is only streamed through a hash, so
//! unauthenticated callers cannot make the server hold large bodies. The deadline covers
//! all of it, body reading included.
//!
//! Default-deny: a request that matched no declared route (a 404 or 405 to be) still needs
//! a read key, so unauthenticated callers cannot probe which paths exist. HEAD is served by
//! the GET handler, so it needs GET's access.
//!
//! Every mutating request (POST, PUT, PATCH, DELETE) leaves exactly one audit entry,
//! whatever its outcome. A handler that changes state records the entry in the same
//! transaction as the change (from the [`AuditContext`] it is given) and marks its response
//! [`Audited`]; for everything else (refusals, bad input, failures) the gate appends the
//! entry after the response. Mutating requests run on their own task, so a client hanging
//! up cannot cancel one between its change and its audit entry.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tracing::Instrument;
use vigil_core::digest::{Sha256Digest, Sha256Hasher};
use vigil_core::id::RequestId;
use vigil_core::scope::Scope;
use vigil_store::NewAuditEntry;

use crate::api::ApiError;
use crate::auth::{Principal, authorize, identify};
use crate::origin;
use crate::routes::{Access, is_mutating};
use crate::state::AppState;

/// How long an upload may take, body included. Its size cap bounds it too.
pub const UPLOAD_DEADLINE: Duration = Duration::from_secs(60 * 60);

/// What a handler needs to write the audit entry for its request itself.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub principal: String,
    pub action: &'static str,
    pub target: String,
    pub request_id: Option<String>,
    /// SHA-256 of the body as received.
    pub body_sha256: Sha256Digest,
}

impl AuditContext {
    pub fn entry(&self, status: StatusCode) -> NewAuditEntry {
        NewAuditEntry {
            principal: self.principal.clone(),
            action: self.action.to_owned(),
            target: self.target.clone(),
            request_id: self.request_id.clone(),
            body_sha256: self.body_sha256,
            status: status.as_u16(),
        }
    }
}

/// Response extension: the handler already recorded this request in the audit log, in the
/// same transaction as its change.
#[derive(Clone, Copy, Debug)]
pub struct Audited;

enum BodyError {
    TooLarge,
    Read(String),
}

/// Reads a body up to `cap` bytes while hashing it; keeps the bytes only if `keep`.
async fn read_body(body: Body, cap: usize, keep: bool) -> Result<(Sha256Digest, Bytes), BodyError> {
    let mut body = body;
    let mut hasher = Sha256Hasher::new();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen > cap {
            return Err(BodyError::TooLarge);
        }
        hasher.update(&data);
        if keep {
            kept.extend_from_slice(&data);
        }
    }
    Ok((hasher.finish(), Bytes::from(kept)))
}

pub async fn gate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    // Looked up once here: what the gate enforces for this request.
    let route = RouteFacts::of(&state, &req);
    if !route.audited {
        return handle(state, peer, req, next, route).await;
    }
    // Its own task, so a client hanging up cannot cut an audited change off half-way; awaited here.
    #[allow(clippy::disallowed_methods, reason = "awaited at once: the request's own task")]
    let task = tokio::spawn(handle(state, peer, req, next, route).instrument(tracing::Span::current()));
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "request task failed");
        ApiError::internal().into_response()
    })
}

/// The declared route's facts the gate needs, with defaults for unrouted requests.
#[derive(Clone, Copy, Debug)]
struct RouteFacts {
    access: Access,
    action: &'static str,
    audited: bool,
    model_call: bool,
    streamed_body: bool,
}

impl RouteFacts {
    fn of(state: &AppState, req: &Request) -> Self {
        match req.extensions().get::<MatchedPath>().and_then(|m| state.route(req.method(), m.as_str())) {
            Some(spec) => RouteFacts {
                access: spec.access,
                action: spec.operation,
                audited: spec.audited(),
                model_call: spec.model_call,
                streamed_body: spec.streamed_body,
            },
            // Default-deny, and unrouted `/v1/...` paths are refused in the provider's shape.
            None => RouteFacts {
                access: Access::Scope(Scope::Read),
                action: "unrouted",
                audited: is_mutating(req.method()),
                model_call: crate::is_provider_path(req.uri().path()),
                streamed_body: false,
            },
        }
    }
}

async fn handle(state: AppState, peer: SocketAddr, req: Request, next: Next, route: RouteFacts) -> Response {
    let RouteFacts { access, action, audited: mutating, model_call, streamed_body } = route;
    // An upload of a large file takes longer than an API call; its size cap bounds it.
    let deadline = if streamed_body { UPLOAD_DEADLINE } else { state.config.http.request_timeout };

    let identity = identify(&state, req.headers(), peer.ip(), model_call).await;
    let principal = identity.as_ref().ok().and_then(Option::as_ref).cloned();
    let audit = mutating.then(|| AuditContext {
        principal: principal.as_ref().map_or_else(|| "anonymous".to_owned(), Principal::label),
        action,
        target: req.uri().path().to_owned(),
        request_id: req.extensions().get::<RequestId>().map(|id| id.as_str().to_owned()),
        body_sha256: Sha256Digest::of(b""),
    });

    let mutating = is_mutating(req.method());
    let guard = Guard { access, model_call, streamed_body, mutating };
    let admitted = admit_and_run(&state, req, peer, identity, guard, audit.clone(), next);
    // Model calls are bounded by their provider's own timeout instead: a long generation
    // must not be cut off at the API's deadline.
    let (response, body_sha256) = if model_call {
        admitted.await
    } else {
        tokio::time::timeout(deadline, admitted).await.unwrap_or_else(|_| (timed_out(deadline), None))
    };

    if let Some(mut audit) = audit
        && response.extensions().get::<Audited>().is_none()
    {
        if let Some(digest) = body_sha256 {
            audit.body_sha256 = digest;
        }
        let entry = audit.entry(response.status());
        if let Err(e) = state.store.append_audit(entry).await {
            state.metrics.audit_failures.inc();
            tracing::error!(error = %e, "could not append audit entry");
        }
    }
    response
}

/// What the gate enforces for the matched route.
#[derive(Clone, Copy, Debug)]
struct Guard {
    access: Access,
    /// Refusals go out in the provider's error shape.
    model_call: bool,
    /// The handler streams the body itself and records its hash.
    streamed_body: bool,
    /// POST, PUT, PATCH or DELETE (model calls included).
    mutating: bool,
}

/// Everything between identification and the handler. Returns the response and, for
/// mutating requests, the hash of the body as far as it was read.
async fn admit_and_run(
    state: &AppState,
    req: Request,
    peer: SocketAddr,
    identity: Result<Option<Principal>, ApiError>,
    guard: Guard,
    audit: Option<AuditContext>,
    next: Next,
) -> (Response, Option<Sha256Digest>) {
    let Guard { access, model_call, streamed_body, mutating } = guard;
    // Model-call clients are provider SDKs: refuse them in the provider's error shape.
    let render = |e: ApiError| if model_call { provider_error(e) } else { e.into_response() };
    // Before anything else: a request a web page may have sent on the operator's behalf.
    if let Err(refusal) = origin::check(state.config.mode, req.headers(), mutating) {
        state.metrics.browser_refused.inc();
        tracing::warn!(code = refusal.code(), "refused a request a web page may have sent");
        return (render(ApiError::new(StatusCode::FORBIDDEN, refusal.code(), refusal.message())), None);
    }
    // Callers with a valid key are limited per key; everyone else (no key, a bad key, or a
    // loopback caller in local mode) per IP, which also slows down key guessing.
    if let Some(limiter) = &state.limiter {
        let bucket = match &identity {
            Ok(Some(p @ (Principal::Key(_) | Principal::EnvAdmin))) => p.label(),
            _ => format!("ip:{}", peer.ip()),
        };
        if let Err(retry_after) = limiter.check(&bucket) {
            state.metrics.rate_limited.inc();
            return (render(ApiError::too_many_requests(retry_after)), None);
        }
    }

    let refusal = match (&identity, access) {
        // Public routes ignore whatever key comes along (a probe with a stale key still works).
        (_, Access::Public) => None,
        (Err(e), _) => Some(e.clone()),
        (Ok(principal), Access::Scope(needed)) => authorize(principal.as_ref(), needed).err(),
    };
    let cap = state.config.http.max_body_bytes;
    if let Some(refusal) = refusal {
        // Hash what the refused caller sent without keeping it (an upload is not read at all).
        let digest = match audit {
            Some(_) if !streamed_body => read_body(req.into_body(), cap, false).await.ok().map(|(digest, _)| digest),
            _ => None,
        };
        return (render(refusal), digest);
    }

    let (mut req, body_sha256) = match audit {
        None => (req, None),
        Some(audit) if streamed_body => {
            let mut req = req;
            req.extensions_mut().insert(audit);
            (req, None)
        }
        Some(mut audit) => {
            if declared_length(&req).is_some_and(|n| n > cap as u64) {
                return (ApiError::payload_too_large(cap as u64).into_response(), None);
            }
            let (parts, body) = req.into_parts();
            match read_body(body, cap, true).await {
                Ok((digest, bytes)) => {
                    audit.body_sha256 = digest;
                    let mut req = Request::from_parts(parts, Body::from(bytes));
                    req.extensions_mut().insert(audit);
                    (req, Some(digest))
                }
                Err(BodyError::TooLarge) => return (ApiError::payload_too_large(cap as u64).into_response(), None),
                Err(BodyError::Read(why)) => {
                    let e = ApiError::bad_request("invalid_body", format!("could not read the request body: {why}"));
                    return (e.into_response(), None);
                }
            }
        }
    };
    if let Ok(Some(principal)) = identity {
        req.extensions_mut().insert(principal);
    }
    (next.run(req).await, body_sha256)
}

/// An [`ApiError`] in OpenAI's error shape, which OpenAI-compatible SDKs turn into their
/// typed exceptions (authentication, permission, rate limit).
fn provider_error(e: ApiError) -> Response {
    let (kind, code) = match e.status {
        StatusCode::UNAUTHORIZED => ("invalid_request_error", "invalid_api_key"),
        StatusCode::FORBIDDEN if e.code == "forbidden" => ("permission_error", "insufficient_scope"),
        StatusCode::FORBIDDEN => ("permission_error", e.code),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", "rate_limit_exceeded"),
        _ => ("invalid_request_error", e.code),
    };
    let mut response = vigil_gateway::openai_error(e.status, kind, code, e.message);
    if let Some(secs) = e.retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
    }
    response
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn timed_out(deadline: Duration) -> Response {
    let message = format!("the request did not finish within {} ms", deadline.as_millis());
    ApiError::unavailable("timeout", message).into_response()
}
