//! `POST /v1/traces`: an OTLP/HTTP trace receiver. OpenTelemetry SDKs and collectors export
//! here (protobuf or JSON on the same path, optionally gzipped); the model-call spans become
//! vitals, stored and judged like gateway calls (see [`vigil_services::otlp`]).
//!
//! Answers follow OTLP/HTTP: the request's content type; 200 with a partial success naming
//! rejected spans; 400 for a body that is not an export; 413 when the body (after
//! decompression) exceeds [`DECOMPRESSED_MAX`]; 415 for other content types or encodings;
//! 429 with `Retry-After` while too many exports are being processed at once and 503 while
//! the immune system's queue is nearly full (back-pressure the exporters retry on); errors
//! carry a `google.rpc.Status`.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use vigil_core::time::Timestamp;

use crate::state::AppState;
use vigil_services::otlp::{self, Encoding};

/// Largest export accepted once decompressed (OTLP recommends 20 MiB).
pub const DECOMPRESSED_MAX: usize = 20 * 1024 * 1024;
/// Exports written at the same time; more are told to retry.
const WRITERS: usize = 4;
static WRITING: Semaphore = Semaphore::const_new(WRITERS);

fn answer(status: StatusCode, encoding: Encoding, body: Vec<u8>, retry_after: Option<u64>) -> Response {
    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn error(status: StatusCode, encoding: Encoding, message: &str, retry_after: Option<u64>) -> Response {
    // google.rpc.Code: 3 invalid argument, 8 resource exhausted, 14 unavailable.
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 3,
    };
    answer(status, encoding, otlp::status_body(code, message, encoding), retry_after)
}

pub async fn traces(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(crate::api::mime_essence);
    let encoding = match content_type.as_deref() {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        other => {
            let message = format!("OTLP/HTTP takes application/x-protobuf or application/json, not {other:?}");
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, Encoding::Json, &message, None);
        }
    };
    let compression = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
    // One permit covers the whole export, decompression and decoding included: concurrent
    // exports cannot multiply the memory and CPU a large one takes.
    let Ok(_permit) = WRITING.try_acquire() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            encoding,
            "too many exports are being processed; retry shortly",
            Some(1),
        );
    };
    let work = tokio::task::spawn_blocking(move || -> Result<otlp::Mapped, (StatusCode, String)> {
        let body = match compression.as_deref() {
            None | Some("" | "identity") => {
                if body.len() > DECOMPRESSED_MAX {
                    return Err((StatusCode::PAYLOAD_TOO_LARGE, "the export is larger than 20 MiB".to_owned()));
                }
                body.to_vec()
            }
            Some(e) if e.eq_ignore_ascii_case("gzip") => {
                let mut out = Vec::new();
                let read =
                    flate2::read::GzDecoder::new(&body[..]).take(DECOMPRESSED_MAX as u64 + 1).read_to_end(&mut out);
                match read {
                    Err(e) => return Err((StatusCode::BAD_REQUEST, format!("the gzip body is corrupt: {e}"))),
                    Ok(n) if n > DECOMPRESSED_MAX => {
                        let message = "the export is larger than 20 MiB once decompressed".to_owned();
                        return Err((StatusCode::PAYLOAD_TOO_LARGE, message));
                    }
                    Ok(_) => out,
                }
            }
            Some(other) => {
                let message = format!("Content-Encoding {other:?} is not supported; use gzip or none");
                return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
            }
        };
        let request = otlp::decode(&body, encoding).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        Ok(otlp::to_vitals(&request, Timestamp::now()))
    });
    let mapped = match work.await {
        Ok(Ok(mapped)) => mapped,
        Ok(Err((status, message))) => return error(status, encoding, &message, None),
        Err(e) => {
            tracing::error!(error = %e, "decoding an OTLP export failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, encoding, "the export could not be read", None);
        }
    };
    if !mapped.vitals.is_empty() {
        if !state.immune.has_room(mapped.vitals.len()) {
            let message = "the immune system is catching up; retry shortly";
            return error(StatusCode::SERVICE_UNAVAILABLE, encoding, message, Some(1));
        }
        let mut vitals = mapped.vitals;
        vitals.iter_mut().for_each(|v| state.gateway.prices().price(v));
        match state.store.insert_vitals(vitals.clone()).await {
            Ok(()) => vitals.iter().for_each(|v| state.immune.observe(v)),
            Err(e) => {
                tracing::error!(error = %e, "could not store OTLP vitals");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    encoding,
                    "storage is unavailable; retry shortly",
                    Some(1),
                );
            }
        }
    }
    let message = if mapped.rejected > 0 { mapped.reasons.join("; ") } else { String::new() };
    answer(StatusCode::OK, encoding, otlp::response(mapped.rejected, message, encoding), None)
}
