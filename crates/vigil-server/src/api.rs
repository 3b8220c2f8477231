//! The API conventions every endpoint follows.
//!
//! Success bodies are an [`Envelope`]: `{"data": ..., "provenance": {...}}`. Lists put a
//! [`ListPage`] in `data` (`items` plus an opaque `next_cursor`). Failures are an
//! [`ApiError`], rendered as `{"error": {"code", "message", "details"}}` with the status that
//! fits. Request bodies go through [`ApiJson`], which tells a syntax error (400, with line
//! and column) from a shape error (422, with the JSON path), and query strings through
//! [`ApiQuery`].

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vigil_core::page::{Cursor, PageError};
use vigil_core::provenance::{Aggregation, Period, Provenance};
use vigil_core::time::Timestamp;
use vigil_store::StoreError;

/// A success body.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Envelope<T> {
    pub data: T,
    pub provenance: Provenance,
}

/// `data` of a list answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListPage<T> {
    /// A page of items and the cursor (if any) for the next one.
    pub fn new((items, next): (Vec<T>, Option<Cursor>)) -> Self {
        ListPage { items, next_cursor: next.map(Cursor::encode) }
    }
}

/// Marks a response as already audited: its handler wrote the audit entry in the same
/// transaction as its change, so the gate does not append another.
pub fn audited(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(crate::gate::Audited);
    response
}

/// Wraps `data` with a fresh provenance block.
pub fn envelope<T: Serialize>(data: T, aggregation: Aggregation, source: &str) -> Json<Envelope<T>> {
    envelope_with_period(data, aggregation, source, None)
}

/// Like [`envelope`], for an answer covering `period`.
pub fn envelope_with_period<T: Serialize>(
    data: T,
    aggregation: Aggregation,
    source: &str,
    period: Option<Period>,
) -> Json<Envelope<T>> {
    let mut provenance = Provenance::new(Timestamp::now(), aggregation, source);
    provenance.period = period;
    Json(Envelope { data, provenance })
}

/// The period of a listing filtered by the `from`/`to` query parameters, when either was given.
pub fn window(from: Option<Timestamp>, to: Option<Timestamp>) -> Option<Period> {
    (from.is_some() || to.is_some()).then_some(Period { from, to })
}

/// An error answer. `code` is a stable snake_case identifier clients can branch on;
/// `message` is for people; `details` carries structured context (a JSON path, a line and
/// column, the failing checks).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    pub retry_after_secs: Option<u64>,
}

/// The error body, for the OpenAPI document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Value::Null, retry_after_secs: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn payload_too_large(cap_bytes: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than the {cap_bytes}-byte limit"),
        )
        .with_details(json!({ "limit_bytes": cap_bytes }))
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("rate limit exceeded; retry after {retry_after_secs} s"),
        );
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// 507: the disk is full. Nothing stored was lost; the same request works once space is
    /// freed, so it carries a `Retry-After`.
    pub fn storage_full(what: &str) -> Self {
        tracing::error!(what, "the disk is full: refusing writes until space is freed");
        let message = format!("{what}: the disk is full; nothing stored was lost, retry once space is freed");
        let mut e = Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", message);
        e.retry_after_secs = Some(STORAGE_FULL_RETRY_SECS);
        e
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        e.retry_after_secs = Some(1);
        e
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has details under this request's X-Request-Id",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::Invalid(message) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message),
            StoreError::TooLarge { cap_bytes } => ApiError::payload_too_large(cap_bytes),
            StoreError::Busy => ApiError::unavailable("store_busy", "the database is busy; retry shortly"),
            StoreError::StorageFull { what } => ApiError::storage_full(&what),
            e @ StoreError::SchemaTooNew { .. } => ApiError::unavailable("store_unavailable", e.to_string()),
            e => {
                tracing::error!(error = %e, "storage failure");
                ApiError::internal()
            }
        }
    }
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        let field = match e {
            PageError::Cursor => "cursor",
            PageError::Limit(_) => "limit",
        };
        ApiError::bad_request("invalid_query", e.to_string()).with_details(json!({ "parameter": field }))
    }
}

/// When a client should retry a write refused because the disk is full.
pub const STORAGE_FULL_RETRY_SECS: u64 = 60;

/// A JSON request body with Vigil's error conventions.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A `Content-Type`'s essence (`type/subtype`, lowercase, parameters dropped), as browsers
/// and servers compare them; `None` when the value is not text.
pub fn mime_essence(content_type: &HeaderValue) -> Option<String> {
    let mime = content_type.to_str().ok()?;
    Some(mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(essence) = content_type.and_then(mime_essence) else { return false };
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body, mapping syntax errors to 400 and shape errors to 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let syntax_error = |e: serde_json::Error| {
        ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}"))
            .with_details(json!({ "line": e.line(), "column": e.column() }))
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = (inner.line(), inner.column());
        if inner.is_data() {
            let message = match path.as_str() {
                "." => format!("request body does not match the expected shape: {inner}"),
                _ => format!("invalid value at {path}: {inner}"),
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
                .with_details(json!({ "path": path, "line": line, "column": column }))
        } else {
            syntax_error(inner)
        }
    })?;
    // Trailing bytes after the value are a syntax error too.
    de.end().map_err(syntax_error)?;
    Ok(value)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            ApiError::bad_request("invalid_body", format!("could not read the request body: {rejection}"))
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses an optional RFC 3339 query parameter, naming it in the error.
pub fn time_param(name: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t).map_err(|e| {
            ApiError::bad_request("invalid_query", e.to_string()).with_details(json!({ "parameter": name }))
        })
    })
    .transpose()
}

/// A query string with Vigil's error conventions.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn syntax_error_is_400_with_location() {
        let err = parse_json::<Body>(b"{\n  \"name\": \"x\",\n  \"count\": }").expect_err("syntax");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "invalid_json");
        assert_eq!(err.details["line"], 3);
        assert!(err.details["column"].as_u64().is_some_and(|c| c > 0));
    }

    #[test]
    fn shape_error_is_422_with_path() {
        let err = parse_json::<Body>(br#"{"name": "x", "count": -1}"#).expect_err("shape");
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.details["path"], "count");

        let err = parse_json::<Body>(br#"{"name": "x", "count": 1, "extra": true}"#).expect_err("unknown");
        assert!(err.message.contains("extra"), "{}", err.message);
    }

    #[test]
    fn trailing_garbage_is_a_syntax_error() {
        let err = parse_json::<Body>(br#"{"name": "x", "count": 1} x"#).expect_err("trailing");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn content_types() {
        assert!(is_json(Some(&HeaderValue::from_static("application/json; charset=utf-8"))));
        assert!(is_json(Some(&HeaderValue::from_static("application/merge-patch+json"))));
        assert!(!is_json(Some(&HeaderValue::from_static("text/plain"))));
        assert!(!is_json(None));
    }
}
