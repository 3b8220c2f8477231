//! `[http]` and `[rate_limit]`: the API server's limits (body size, request and header
//! deadlines, shutdown grace, open connections) and the per-client token bucket in front of
//! it. Validated into [`HttpConfig`] and, when enabled, a [`RateLimitConfig`].

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, Setting, ValueKind, setting};

/// Bounds for `[http]` and `[rate_limit]`, units last.
pub const BODY_BYTES_MIN: u64 = 1024;
pub const BODY_BYTES_MAX: u64 = 1 << 30;
pub const REQUEST_TIMEOUT_MS_MIN: u64 = 100;
pub const REQUEST_TIMEOUT_MS_MAX: u64 = 3_600_000;
pub const SHUTDOWN_GRACE_MS_MAX: u64 = 600_000;
pub const HEADER_READ_TIMEOUT_MS_MIN: u64 = 100;
pub const HEADER_READ_TIMEOUT_MS_MAX: u64 = 600_000;
pub const CONNECTIONS_MIN: u64 = 8;
pub const CONNECTIONS_MAX: u64 = 1_000_000;
pub const RATE_PER_SECOND_MAX: u64 = 1_000_000;
pub const RATE_BURST_MAX: u64 = 10_000_000;

pub(super) const SETTINGS: &[Setting] = &[
    setting("http.max_body_bytes", "VIGIL_HTTP_MAX_BODY_BYTES", ValueKind::Integer),
    setting("http.request_timeout_ms", "VIGIL_HTTP_REQUEST_TIMEOUT_MS", ValueKind::Integer),
    setting("http.shutdown_grace_ms", "VIGIL_HTTP_SHUTDOWN_GRACE_MS", ValueKind::Integer),
    setting("http.header_read_timeout_ms", "VIGIL_HTTP_HEADER_READ_TIMEOUT_MS", ValueKind::Integer),
    setting("http.max_connections", "VIGIL_HTTP_MAX_CONNECTIONS", ValueKind::Integer),
    setting("rate_limit.enabled", "VIGIL_RATE_LIMIT_ENABLED", ValueKind::Boolean),
    setting("rate_limit.per_second", "VIGIL_RATE_LIMIT_PER_SECOND", ValueKind::Integer),
    setting("rate_limit.burst", "VIGIL_RATE_LIMIT_BURST", ValueKind::Integer),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    pub max_body_bytes: u64,
    pub request_timeout_ms: u64,
    pub shutdown_grace_ms: u64,
    /// How long a connection may take to send a request's head, counted from when it opens
    /// or from the end of its previous answer: the keep-alive idle limit too.
    pub header_read_timeout_ms: u64,
    /// Connections open at once. Beyond it an idle connection is closed to make room, or,
    /// when every one is busy, the new one is refused with a 503.
    pub max_connections: u64,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            max_body_bytes: 1 << 20,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 10_000,
            header_read_timeout_ms: 10_000,
            max_connections: 4096,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRateLimit {
    pub enabled: bool,
    pub per_second: u64,
    pub burst: u64,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit { enabled: true, per_second: 100, burst: 200 }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct RateLimitConfig {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RawHttp {
    pub(super) fn validate(self, check: &mut Check<'_>) -> HttpConfig {
        check.range("http.max_body_bytes", self.max_body_bytes, BODY_BYTES_MIN..=BODY_BYTES_MAX);
        check.range(
            "http.request_timeout_ms",
            self.request_timeout_ms,
            REQUEST_TIMEOUT_MS_MIN..=REQUEST_TIMEOUT_MS_MAX,
        );
        check.range("http.shutdown_grace_ms", self.shutdown_grace_ms, 0..=SHUTDOWN_GRACE_MS_MAX);
        check.range(
            "http.header_read_timeout_ms",
            self.header_read_timeout_ms,
            HEADER_READ_TIMEOUT_MS_MIN..=HEADER_READ_TIMEOUT_MS_MAX,
        );
        check.range("http.max_connections", self.max_connections, CONNECTIONS_MIN..=CONNECTIONS_MAX);
        HttpConfig {
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

impl RawRateLimit {
    /// `None` when rate limiting is disabled (or its values are out of range, which is
    /// reported).
    pub(super) fn validate(self, check: &mut Check<'_>) -> Option<RateLimitConfig> {
        // `&`, not `&&`: both values are checked, so both problems are reported.
        let rate_ok = check.range("rate_limit.per_second", self.per_second, 1..=RATE_PER_SECOND_MAX)
            & check.range("rate_limit.burst", self.burst, 1..=RATE_BURST_MAX);
        let nonzero = |n: u64| NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        (self.enabled && rate_ok)
            .then(|| RateLimitConfig { per_second: nonzero(self.per_second), burst: nonzero(self.burst) })
    }
}
