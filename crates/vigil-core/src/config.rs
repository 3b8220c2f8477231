//! Configuration: a TOML file plus `VIGIL_*` environment overrides, validated once at
//! start-up into a [`Config`].
//!
//! The raw types ([`RawConfig`] and its sections) mirror the file and reject unknown keys;
//! [`RawConfig::validate`] checks every value and reports *all* problems at once, each naming
//! the key and where its value came from (the file, or which environment variable). Every
//! setting has one environment variable, listed in [`SETTINGS`]; each may also be given as
//! `<NAME>_FILE` holding a path to read the value from, which wins over the plain variable
//! (the usual way to pass secrets from a secret store). Nothing here reads the process
//! environment or the disk: [`Sources`] carries both in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a running Vigil accepts calls from, and how strict it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Binds loopback only; loopback callers need no key.
    #[default]
    Local,
    /// Binds where told; every route but the health probes needs a key of the right scope.
    Production,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::Production => "production",
        }
    }
}

/// How hard the store works to survive power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged.
    #[default]
    Safe,
    /// `synchronous=NORMAL`: in WAL mode the last commits may be lost on power loss (never
    /// on a process crash), the database stays consistent.
    Fast,
}

/// The default listen address: loopback, so a fresh install is never reachable from outside.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7700";

/// Bounds for numeric settings, units last.
pub const BODY_BYTES_MIN: u64 = 1024;
pub const BODY_BYTES_MAX: u64 = 1 << 30;
pub const BLOB_BYTES_MAX: u64 = 1 << 40;
pub const BUSY_TIMEOUT_MS_MAX: u64 = 60_000;
pub const REQUEST_TIMEOUT_MS_MIN: u64 = 100;
pub const REQUEST_TIMEOUT_MS_MAX: u64 = 3_600_000;
pub const SHUTDOWN_GRACE_MS_MAX: u64 = 600_000;
pub const HEADER_READ_TIMEOUT_MS_MIN: u64 = 100;
pub const HEADER_READ_TIMEOUT_MS_MAX: u64 = 600_000;
pub const CONNECTIONS_MIN: u64 = 8;
pub const CONNECTIONS_MAX: u64 = 1_000_000;
pub const RATE_PER_SECOND_MAX: u64 = 1_000_000;
pub const RATE_BURST_MAX: u64 = 10_000_000;
pub const ADMIN_KEY_LEN_MIN: usize = 32;
pub const ADMIN_KEY_LEN_MAX: usize = 512;
/// Largest `*_FILE` secret file read.
pub const SECRET_FILE_BYTES_MAX: usize = 64 * 1024;
pub const VITALS_QUEUE_MAX: u64 = 1_000_000;
pub const UPSTREAM_TIMEOUT_MS_MAX: u64 = 3_600_000;
pub const PARALLELISM_MAX: u64 = 64;
pub const PLUGIN_OUTPUT_BYTES_MAX: u64 = 1 << 30;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub mode: Mode,
    pub listen: Option<String>,
    pub store: RawStore,
    pub blobs: RawBlobs,
    pub http: RawHttp,
    pub rate_limit: RawRateLimit,
    pub auth: RawAuth,
    pub gateway: RawGateway,
    pub harness: RawHarness,
    pub immune: RawImmune,
}

/// `[immune]`: baselines, detection, healing and approvals.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawImmune {
    /// Watch agents and heal them. Off: vitals are still recorded, nothing is judged.
    pub enabled: bool,
    /// Calls after which an old call weighs half in a baseline.
    pub half_life_calls: u64,
    /// Calls a baseline learns before it judges.
    pub warmup_calls: u64,
    /// Deviations (in standard deviations, floored) at which a value is anomalous.
    pub threshold: f64,
    /// Healing actions at least this severe (1 throttle … 4 reset agent) wait for a
    /// person's approval; 5 means never.
    pub approval_min_severity: u64,
    /// Normal calls that pass probation after a healing action.
    pub probation_calls: u64,
    /// How long a confirmed agent drains (in-flight calls finish) before quarantine.
    pub drain_grace_ms: u64,
    /// Share of active agents anomalous together that makes a fleet-wide (external) cause.
    pub fleet_share: f64,
    /// Window for correlating agents, in seconds.
    pub correlation_window_secs: u64,
    /// Calls per minute a throttled agent keeps.
    pub throttle_calls_per_minute: u64,
    /// How long a throttle or a tool revocation stands, in seconds.
    pub restriction_secs: u64,
    /// How long the quarantine action keeps an agent isolated before probation.
    pub quarantine_cooldown_ms: u64,
    /// How often the engine's state is saved, in seconds.
    pub snapshot_every_secs: u64,
    /// How long an agent's control URL has to answer a healing action.
    pub control_timeout_ms: u64,
    /// Judge each agent's calls and tokens per bucket against its daily shape.
    pub rhythm: bool,
    /// Length of a rhythm bucket, in seconds.
    pub rhythm_bucket_secs: u64,
    /// Buckets a rhythm learns before it judges (two days of the default buckets).
    pub rhythm_learn_buckets: u64,
}

impl Default for RawImmune {
    fn default() -> Self {
        RawImmune {
            enabled: true,
            half_life_calls: 50,
            warmup_calls: 20,
            threshold: 4.0,
            approval_min_severity: 3,
            probation_calls: 10,
            drain_grace_ms: 2_000,
            fleet_share: 0.5,
            correlation_window_secs: 60,
            throttle_calls_per_minute: 6,
            restriction_secs: 3_600,
            quarantine_cooldown_ms: 60_000,
            snapshot_every_secs: 60,
            control_timeout_ms: 10_000,
            rhythm: true,
            rhythm_bucket_secs: 300,
            rhythm_learn_buckets: 576,
        }
    }
}

/// `[harness]`: plugins and runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHarness {
    /// Folder of external plugins (one sub-folder with a `plugin.toml` each). Relative
    /// paths are inside the data directory.
    pub plugins_dir: String,
    /// Plugins of one layer run at most this many at a time.
    pub parallelism: u64,
    /// Refuse to run a plugin unless every sandbox protection is enforced. Defaults to on
    /// in production mode and off in local mode (where what was enforced is still recorded).
    pub sandbox_strict: Option<bool>,
    /// Largest response a plugin may write to stdout.
    pub stdout_max_bytes: u64,
    /// Largest stderr log kept per plugin execution.
    pub stderr_max_bytes: u64,
}

impl Default for RawHarness {
    fn default() -> Self {
        RawHarness {
            plugins_dir: "plugins".to_owned(),
            parallelism: 2,
            sandbox_strict: None,
            stdout_max_bytes: 16 << 20,
            stderr_max_bytes: 1 << 20,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    pub durability: Durability,
    pub busy_timeout_ms: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore { durability: Durability::Safe, busy_timeout_ms: 5_000 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBlobs {
    pub max_bytes: u64,
}

impl Default for RawBlobs {
    fn default() -> Self {
        RawBlobs { max_bytes: 1 << 30 }
    }
}

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

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub admin_key: Option<String>,
}

impl fmt::Debug for RawAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.admin_key.as_ref().map(|_| "<redacted>");
        f.debug_struct("RawAuth").field("admin_key", &shown).finish()
    }
}

/// Which wire protocol an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI's API (`/chat/completions`, `/embeddings`, `/models`, ...), and the many
    /// servers that copy it.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    /// Forward a caller's own provider key (`Authorization: Bearer ...` that is not a Vigil
    /// key) upstream instead of the configured one.
    pub passthrough_client_key: bool,
    /// Vitals waiting to be written; when storage falls behind, newer ones are dropped and
    /// counted rather than slowing calls down.
    pub vitals_queue: u64,
    /// Extra attempts per provider on connection errors, 429 and 5xx (before anything
    /// reached the client).
    pub retries: u64,
    /// First backoff between attempts; doubles each time (an upstream's Retry-After wins).
    pub retry_backoff_ms: u64,
    /// Consecutive failures that open a provider's circuit breaker.
    pub breaker_failures: u64,
    /// How long an open breaker refuses calls before letting a trial through.
    pub breaker_cooldown_ms: u64,
    pub policy: RawPolicy,
    /// Prices that add to or override the built-in table.
    pub prices: Vec<RawPrice>,
    pub providers: Vec<RawProvider>,
}

/// One `[[gateway.prices]]` entry. Prices in US dollars per million tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    /// Model-name glob.
    pub model: String,
    pub input_per_mtok: f64,
    /// Defaults to the input price.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// Input written to the prompt cache (five-minute lifetime); defaults to the input
    /// price. Anthropic's is 1.25x input.
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    /// Input written to the prompt cache for one hour; defaults to the cache-write price.
    /// Anthropic's is 2x input.
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<f64>,
    pub output_per_mtok: f64,
    /// RFC 3339 time (or a date, `2026-06-01`) from which this price applies.
    #[serde(default)]
    pub since: Option<String>,
}

/// What the gateway lets through, checked before anything is forwarded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    /// Model-name globs callers may use; empty means any model not blocked.
    pub allow_models: Vec<String>,
    /// Model-name globs refused even when allowed.
    pub block_models: Vec<String>,
    /// Calls per minute each agent may make; 0 means no per-agent limit.
    pub agent_calls_per_minute: u64,
}

impl Default for RawGateway {
    fn default() -> Self {
        RawGateway {
            passthrough_client_key: false,
            vitals_queue: 10_000,
            retries: 2,
            retry_backoff_ms: 200,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            policy: RawPolicy::default(),
            prices: Vec::new(),
            providers: Vec::new(),
        }
    }
}

/// One upstream, as written in `[[gateway.providers]]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: ProviderKind,
    /// For example `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Path of a file holding the API key (wins over `api_key_env`).
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// Model-name globs this provider serves; empty means "any model" (a fallback).
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default = "default_upstream_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Another provider's name to try when this one fails (after its retries) or its
    /// breaker is open.
    #[serde(default)]
    pub fallback: Option<String>,
}

fn default_upstream_timeout_ms() -> u64 {
    600_000
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

/// The type of value an environment variable carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Integer,
    Boolean,
}

/// One configuration key and the environment variable that overrides it.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// Dotted path in the TOML file, e.g. `rate_limit.per_second`.
    pub key: &'static str,
    pub env: &'static str,
    pub kind: ValueKind,
    /// Secrets are never echoed back, not even in error messages.
    pub secret: bool,
}

const fn setting(key: &'static str, env: &'static str, kind: ValueKind) -> Setting {
    Setting { key, env, kind, secret: false }
}

/// Every setting Vigil reads. An unknown `VIGIL_*` variable is an error, so a typo never
/// silently leaves a default in place.
pub const SETTINGS: &[Setting] = &[
    setting("mode", "VIGIL_MODE", ValueKind::Text),
    setting("listen", "VIGIL_LISTEN", ValueKind::Text),
    setting("store.durability", "VIGIL_STORE_DURABILITY", ValueKind::Text),
    setting("store.busy_timeout_ms", "VIGIL_STORE_BUSY_TIMEOUT_MS", ValueKind::Integer),
    setting("blobs.max_bytes", "VIGIL_BLOBS_MAX_BYTES", ValueKind::Integer),
    setting("http.max_body_bytes", "VIGIL_HTTP_MAX_BODY_BYTES", ValueKind::Integer),
    setting("harness.plugins_dir", "VIGIL_HARNESS_PLUGINS_DIR", ValueKind::Text),
    setting("harness.parallelism", "VIGIL_HARNESS_PARALLELISM", ValueKind::Integer),
    setting("harness.sandbox_strict", "VIGIL_HARNESS_SANDBOX_STRICT", ValueKind::Boolean),
    setting("harness.stdout_max_bytes", "VIGIL_HARNESS_STDOUT_MAX_BYTES", ValueKind::Integer),
    setting("harness.stderr_max_bytes", "VIGIL_HARNESS_STDERR_MAX_BYTES", ValueKind::Integer),
    setting("immune.enabled", "VIGIL_IMMUNE_ENABLED", ValueKind::Boolean),
    setting("immune.approval_min_severity", "VIGIL_IMMUNE_APPROVAL_MIN_SEVERITY", ValueKind::Integer),
    setting("immune.probation_calls", "VIGIL_IMMUNE_PROBATION_CALLS", ValueKind::Integer),
    setting("immune.drain_grace_ms", "VIGIL_IMMUNE_DRAIN_GRACE_MS", ValueKind::Integer),
    setting("immune.quarantine_cooldown_ms", "VIGIL_IMMUNE_QUARANTINE_COOLDOWN_MS", ValueKind::Integer),
    setting("immune.snapshot_every_secs", "VIGIL_IMMUNE_SNAPSHOT_EVERY_SECS", ValueKind::Integer),
    setting("immune.rhythm", "VIGIL_IMMUNE_RHYTHM", ValueKind::Boolean),
    setting("immune.rhythm_bucket_secs", "VIGIL_IMMUNE_RHYTHM_BUCKET_SECS", ValueKind::Integer),
    setting("http.request_timeout_ms", "VIGIL_HTTP_REQUEST_TIMEOUT_MS", ValueKind::Integer),
    setting("http.shutdown_grace_ms", "VIGIL_HTTP_SHUTDOWN_GRACE_MS", ValueKind::Integer),
    setting("http.header_read_timeout_ms", "VIGIL_HTTP_HEADER_READ_TIMEOUT_MS", ValueKind::Integer),
    setting("http.max_connections", "VIGIL_HTTP_MAX_CONNECTIONS", ValueKind::Integer),
    setting("rate_limit.enabled", "VIGIL_RATE_LIMIT_ENABLED", ValueKind::Boolean),
    setting("rate_limit.per_second", "VIGIL_RATE_LIMIT_PER_SECOND", ValueKind::Integer),
    setting("rate_limit.burst", "VIGIL_RATE_LIMIT_BURST", ValueKind::Integer),
    Setting { key: "auth.admin_key", env: "VIGIL_ADMIN_KEY", kind: ValueKind::Text, secret: true },
];

/// `VIGIL_*` variables that belong to the command line or the build, not to the
/// configuration. `VIGIL_GIT_SHA` is read by the binary's build script, which also sets it
/// for the program it builds: `cargo run -- serve` runs with it in the environment.
pub const CLI_VARIABLES: &[&str] = &["VIGIL_DATA", "VIGIL_CONFIG", "VIGIL_LOG", "VIGIL_GIT_SHA"];

/// Suffix that turns a setting's variable into "read the value from this file".
pub const FILE_SUFFIX: &str = "_FILE";

/// Everything configuration is read from, handed in by the caller.
pub struct Sources<'a> {
    /// The config file's path (for messages) and its text, if there is one.
    pub file: Option<(&'a str, &'a str)>,
    /// The process environment (only `VIGIL_*` entries matter).
    pub env: &'a BTreeMap<String, String>,
    /// Reads a `*_FILE` secret; returns the contents or a message saying why not.
    pub read_file: &'a dyn Fn(&str) -> Result<String, String>,
}

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources").field("file", &self.file.map(|(path, _)| path)).finish_non_exhaustive()
    }
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(String),
    Env(String),
}

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, or the variable name when the variable itself is the problem.
    pub key: String,
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Default => write!(f, "{}: {}", self.key, self.message),
            Origin::File(path) => write!(f, "{} (in {path}): {}", self.key, self.message),
            Origin::Env(var) if *var == self.key => write!(f, "{var}: {}", self.message),
            Origin::Env(var) => write!(f, "{} (from {var}): {}", self.key, self.message),
        }
    }
}

/// All problems found in one pass, so an operator fixes them in one go.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// A secret value: never printed by `Debug` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// Validated configuration, ready to run with.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub mode: Mode,
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub blobs: BlobsConfig,
    pub http: HttpConfig,
    /// `None` when rate limiting is disabled.
    pub rate_limit: Option<RateLimitConfig>,
    /// A bootstrap admin key from the environment, in addition to keys in the store.
    pub admin_key: Option<Secret>,
    pub gateway: GatewayConfig,
    pub harness: HarnessConfig,
    pub immune: ImmuneConfig,
}

/// Validated `[immune]`.
#[derive(Clone, Debug, Serialize)]
pub struct ImmuneConfig {
    pub enabled: bool,
    pub half_life_calls: u64,
    pub warmup_calls: u64,
    pub threshold: f64,
    pub approval_min_severity: u8,
    pub probation_calls: u32,
    pub drain_grace: Duration,
    pub fleet_share: f64,
    pub correlation_window: Duration,
    pub throttle_calls_per_minute: NonZeroU32,
    pub restriction: Duration,
    pub quarantine_cooldown: Duration,
    pub snapshot_every: Duration,
    pub control_timeout: Duration,
    pub rhythm: bool,
    pub rhythm_bucket: Duration,
    pub rhythm_learn_buckets: usize,
}

/// Validated `[harness]`.
#[derive(Clone, Debug, Serialize)]
pub struct HarnessConfig {
    /// As configured; relative paths are inside the data directory.
    pub plugins_dir: std::path::PathBuf,
    pub parallelism: usize,
    pub sandbox_strict: bool,
    pub stdout_max_bytes: usize,
    pub stderr_max_bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GatewayConfig {
    pub passthrough_client_key: bool,
    pub vitals_queue: usize,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub policy: PolicyConfig,
    pub prices: Vec<PriceConfig>,
    pub providers: Vec<ProviderConfig>,
}

/// A validated price entry, in integer nano-dollars per million tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PriceConfig {
    pub model: String,
    pub input_nanos_per_mtok: u64,
    pub cached_input_nanos_per_mtok: u64,
    pub cache_write_nanos_per_mtok: u64,
    pub cache_write_1h_nanos_per_mtok: u64,
    pub output_nanos_per_mtok: u64,
    pub since: Option<crate::time::Timestamp>,
}

/// Validated gateway policy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicyConfig {
    pub allow_models: Vec<String>,
    pub block_models: Vec<String>,
    pub agent_calls_per_minute: Option<NonZeroU32>,
}

/// A validated upstream.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub models: Vec<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub fallback: Option<String>,
}

impl GatewayConfig {
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The provider of `kind` serving `model`: the first whose globs match, else the first
    /// without globs.
    pub fn provider_for(&self, model: &str, kind: ProviderKind) -> Option<&ProviderConfig> {
        let of_kind = || self.providers.iter().filter(move |p| p.kind == kind);
        of_kind()
            .find(|p| p.models.iter().any(|g| crate::glob::glob_match(g, model)))
            .or_else(|| of_kind().find(|p| p.models.is_empty()))
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct StoreConfig {
    pub durability: Durability,
    pub busy_timeout: Duration,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct BlobsConfig {
    pub max_bytes: u64,
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

impl Default for Config {
    fn default() -> Self {
        let mut origins = Origins::default();
        let env = BTreeMap::new();
        let no_files = |_: &str| Err("no files".to_owned());
        let sources = Sources { file: None, env: &env, read_file: &no_files };
        match RawConfig::default().validate(&mut origins, &sources) {
            Ok(config) => config,
            Err(e) => unreachable!("defaults are valid: {e}"),
        }
    }
}

/// Reads the file and the environment and validates the result.
pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let mut origins = Origins::default();
    let mut problems = Vec::new();
    let mut table = toml::Table::new();

    if let Some((path, text)) = sources.file {
        match text.parse::<toml::Table>() {
            Ok(parsed) => {
                record_origins(&parsed, "", &Origin::File(path.to_owned()), &mut origins);
                table = parsed;
            }
            Err(e) => problems.push(Problem {
                key: path.to_owned(),
                origin: Origin::File(path.to_owned()),
                message: format!("not valid TOML: {}", toml_error_without_source(&e)),
            }),
        }
    }

    overlay_env(&mut table, sources, &mut origins, &mut problems);

    // Keep going after problems so far: the operator sees every one in a single run.
    let raw: RawConfig = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
        Ok(raw) => raw,
        Err(e) => {
            let key = e.path().to_string();
            let secret = SETTINGS.iter().any(|s| s.secret && s.key == key);
            let message = if secret {
                "has the wrong type (the value is a secret and is not shown): expected a string".to_owned()
            } else {
                e.inner().to_string().lines().next().unwrap_or_default().trim().to_owned()
            };
            problems.push(origins.problem(&key, message));
            return Err(ConfigError { problems });
        }
    };
    match raw.validate(&mut origins, sources) {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(ConfigError { problems }),
        Err(more) => {
            problems.extend(more.problems);
            Err(ConfigError { problems })
        }
    }
}

/// The parse error's position and message, without the quoted source line the TOML crate
/// adds: that line could be a secret (an unquoted `admin_key = ...`).
fn toml_error_without_source(e: &toml::de::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines();
    let position = lines.next().unwrap_or_default().trim();
    let message = lines.last().unwrap_or_default().trim();
    format!("{position}: {message}")
}

/// Where each key's value came from.
#[derive(Debug, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    fn origin(&self, key: &str) -> Origin {
        self.0.get(key).cloned().unwrap_or(Origin::Default)
    }

    fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        Problem { key: key.to_owned(), origin: self.origin(key), message: message.into() }
    }
}

fn record_origins(table: &toml::Table, prefix: &str, origin: &Origin, origins: &mut Origins) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if let toml::Value::Table(inner) = value {
            record_origins(inner, &key, origin, origins);
        }
        origins.0.insert(key, origin.clone());
    }
}

fn overlay_env(table: &mut toml::Table, sources: &Sources<'_>, origins: &mut Origins, problems: &mut Vec<Problem>) {
    for (name, value) in sources.env.range("VIGIL_".to_owned()..) {
        if !name.starts_with("VIGIL_") {
            break;
        }
        if CLI_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let (plain, from_file) = match name.strip_suffix(FILE_SUFFIX) {
            Some(plain) if SETTINGS.iter().any(|s| s.env == plain) => (plain, true),
            _ => (name.as_str(), false),
        };
        let Some(setting) = SETTINGS.iter().find(|s| s.env == plain) else {
            problems.push(Problem {
                key: name.clone(),
                origin: Origin::Env(name.clone()),
                message: format!(
                    "unknown setting; known variables are {} (each also as ..._FILE)",
                    SETTINGS.iter().map(|s| s.env).collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        };
        // The `_FILE` form wins over the plain variable when both are set.
        if !from_file && sources.env.contains_key(&format!("{name}{FILE_SUFFIX}")) {
            continue;
        }
        let text = if from_file {
            match read_secret_file(sources, value) {
                Ok(text) => text,
                Err(message) => {
                    problems.push(Problem { key: name.clone(), origin: Origin::Env(name.clone()), message });
                    continue;
                }
            }
        } else {
            value.clone()
        };
        let origin = Origin::Env(name.clone());
        match parse_env_value(setting, &text) {
            Ok(value) => {
                insert_path(table, setting.key, value);
                origins.0.insert(setting.key.to_owned(), origin);
            }
            Err(message) => problems.push(Problem { key: setting.key.to_owned(), origin, message }),
        }
    }
}

fn read_secret_file(sources: &Sources<'_>, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("names no file (the variable is empty)".to_owned());
    }
    let text = (sources.read_file)(path).map_err(|why| format!("cannot read {path}: {why}"))?;
    if text.len() > SECRET_FILE_BYTES_MAX {
        return Err(format!("{path} is larger than {SECRET_FILE_BYTES_MAX} bytes"));
    }
    // Files written by editors and `echo` end in a newline that is not part of the secret.
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.trim().is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(trimmed.to_owned())
}

fn parse_env_value(setting: &Setting, text: &str) -> Result<toml::Value, String> {
    let shown = |t: &str| if setting.secret { "<redacted>".to_owned() } else { format!("{t:?}") };
    match setting.kind {
        ValueKind::Text => Ok(toml::Value::String(text.to_owned())),
        ValueKind::Integer => text
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {}", shown(text))),
        ValueKind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {}", shown(text))),
        },
    }
}

fn insert_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else { unreachable!("just made a table") };
        current = inner;
    }
    current.insert(last.to_owned(), value);
}

fn check_range(
    problems: &mut Vec<Problem>,
    origins: &Origins,
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> bool {
    if range.contains(&value) {
        return true;
    }
    problems.push(origins.problem(key, format!("must be between {} and {}, got {value}", range.start(), range.end())));
    false
}

impl RawConfig {
    /// Checks every value, returning the runtime [`Config`] or every problem found.
    pub fn validate(self, origins: &mut Origins, sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let p = &mut problems;

        let listen_text = self.listen.as_deref().unwrap_or(LISTEN_DEFAULT);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => {
                if self.mode == Mode::Local && !addr.ip().is_loopback() {
                    p.push(origins.problem(
                        "listen",
                        format!(
                            "local mode binds loopback only, got {addr}; set mode = \"production\" \
                             (with an admin key) to listen on other interfaces"
                        ),
                    ));
                }
                addr
            }
            Err(_) => {
                p.push(origins.problem(
                    "listen",
                    format!("expected an address and port such as 127.0.0.1:7700, got {listen_text:?}"),
                ));
                LISTEN_DEFAULT.parse().unwrap_or_else(|_| unreachable!("default parses"))
            }
        };

        check_range(p, origins, "store.busy_timeout_ms", self.store.busy_timeout_ms, 0..=BUSY_TIMEOUT_MS_MAX);
        check_range(p, origins, "blobs.max_bytes", self.blobs.max_bytes, 1..=BLOB_BYTES_MAX);
        check_range(p, origins, "http.max_body_bytes", self.http.max_body_bytes, BODY_BYTES_MIN..=BODY_BYTES_MAX);
        check_range(
            p,
            origins,
            "http.request_timeout_ms",
            self.http.request_timeout_ms,
            REQUEST_TIMEOUT_MS_MIN..=REQUEST_TIMEOUT_MS_MAX,
        );
        check_range(p, origins, "http.shutdown_grace_ms", self.http.shutdown_grace_ms, 0..=SHUTDOWN_GRACE_MS_MAX);
        check_range(
            p,
            origins,
            "http.header_read_timeout_ms",
            self.http.header_read_timeout_ms,
            HEADER_READ_TIMEOUT_MS_MIN..=HEADER_READ_TIMEOUT_MS_MAX,
        );
        check_range(p, origins, "http.max_connections", self.http.max_connections, CONNECTIONS_MIN..=CONNECTIONS_MAX);
        let rate_ok =
            check_range(p, origins, "rate_limit.per_second", self.rate_limit.per_second, 1..=RATE_PER_SECOND_MAX)
                & check_range(p, origins, "rate_limit.burst", self.rate_limit.burst, 1..=RATE_BURST_MAX);

        let admin_key = match self.auth.admin_key {
            None => None,
            Some(key) => {
                let printable = key.bytes().all(|b| b.is_ascii_graphic());
                if !(ADMIN_KEY_LEN_MIN..=ADMIN_KEY_LEN_MAX).contains(&key.len()) || !printable {
                    p.push(origins.problem(
                        "auth.admin_key",
                        format!(
                            "must be {ADMIN_KEY_LEN_MIN} to {ADMIN_KEY_LEN_MAX} printable ASCII characters \
                             without spaces (for example the output of `openssl rand -hex 32`)"
                        ),
                    ));
                }
                Some(Secret(key))
            }
        };

        let gateway = validate_gateway(self.gateway, origins, sources, p);
        check_range(p, origins, "harness.parallelism", self.harness.parallelism, 1..=PARALLELISM_MAX);
        check_range(
            p,
            origins,
            "harness.stdout_max_bytes",
            self.harness.stdout_max_bytes,
            1024..=PLUGIN_OUTPUT_BYTES_MAX,
        );
        check_range(p, origins, "harness.stderr_max_bytes", self.harness.stderr_max_bytes, 0..=PLUGIN_OUTPUT_BYTES_MAX);
        if self.harness.plugins_dir.trim().is_empty() {
            p.push(origins.problem("harness.plugins_dir", "must name a folder".to_owned()));
        }
        let harness = HarnessConfig {
            plugins_dir: self.harness.plugins_dir.into(),
            parallelism: usize::try_from(self.harness.parallelism).unwrap_or(1),
            sandbox_strict: self.harness.sandbox_strict.unwrap_or(self.mode == Mode::Production),
            stdout_max_bytes: usize::try_from(self.harness.stdout_max_bytes).unwrap_or(usize::MAX),
            stderr_max_bytes: self.harness.stderr_max_bytes,
        };

        let immune = validate_immune(self.immune, origins, p);

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let nonzero = |n: u64| NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        Ok(Config {
            mode: self.mode,
            listen,
            store: StoreConfig {
                durability: self.store.durability,
                busy_timeout: Duration::from_millis(self.store.busy_timeout_ms),
            },
            blobs: BlobsConfig { max_bytes: self.blobs.max_bytes },
            http: HttpConfig {
                max_body_bytes: usize::try_from(self.http.max_body_bytes).unwrap_or(usize::MAX),
                request_timeout: Duration::from_millis(self.http.request_timeout_ms),
                shutdown_grace: Duration::from_millis(self.http.shutdown_grace_ms),
                header_read_timeout: Duration::from_millis(self.http.header_read_timeout_ms),
                max_connections: usize::try_from(self.http.max_connections).unwrap_or(usize::MAX),
            },
            rate_limit: (self.rate_limit.enabled && rate_ok).then(|| RateLimitConfig {
                per_second: nonzero(self.rate_limit.per_second),
                burst: nonzero(self.rate_limit.burst),
            }),
            admin_key,
            gateway,
            harness,
            immune,
        })
    }
}

fn validate_immune(raw: RawImmune, origins: &Origins, p: &mut Vec<Problem>) -> ImmuneConfig {
    check_range(p, origins, "immune.half_life_calls", raw.half_life_calls, 1..=1_000_000);
    check_range(p, origins, "immune.warmup_calls", raw.warmup_calls, 1..=1_000_000);
    check_range(p, origins, "immune.approval_min_severity", raw.approval_min_severity, 1..=5);
    check_range(p, origins, "immune.probation_calls", raw.probation_calls, 1..=100_000);
    check_range(p, origins, "immune.drain_grace_ms", raw.drain_grace_ms, 0..=3_600_000);
    check_range(p, origins, "immune.correlation_window_secs", raw.correlation_window_secs, 1..=86_400);
    check_range(p, origins, "immune.throttle_calls_per_minute", raw.throttle_calls_per_minute, 1..=1_000_000);
    check_range(p, origins, "immune.restriction_secs", raw.restriction_secs, 1..=30 * 86_400);
    check_range(p, origins, "immune.quarantine_cooldown_ms", raw.quarantine_cooldown_ms, 0..=86_400_000);
    check_range(p, origins, "immune.snapshot_every_secs", raw.snapshot_every_secs, 1..=86_400);
    check_range(p, origins, "immune.control_timeout_ms", raw.control_timeout_ms, 100..=600_000);
    check_range(p, origins, "immune.rhythm_bucket_secs", raw.rhythm_bucket_secs, 1..=86_400);
    check_range(p, origins, "immune.rhythm_learn_buckets", raw.rhythm_learn_buckets, 100..=100_000);
    if !(raw.threshold.is_finite() && (1.0..=100.0).contains(&raw.threshold)) {
        p.push(origins.problem("immune.threshold", format!("must be between 1 and 100, got {}", raw.threshold)));
    }
    if !(raw.fleet_share.is_finite() && raw.fleet_share > 0.0 && raw.fleet_share <= 1.0) {
        p.push(
            origins.problem("immune.fleet_share", format!("must be above 0 and at most 1, got {}", raw.fleet_share)),
        );
    }
    ImmuneConfig {
        enabled: raw.enabled,
        half_life_calls: raw.half_life_calls,
        warmup_calls: raw.warmup_calls,
        threshold: raw.threshold,
        approval_min_severity: u8::try_from(raw.approval_min_severity).unwrap_or(5),
        probation_calls: u32::try_from(raw.probation_calls).unwrap_or(u32::MAX),
        drain_grace: Duration::from_millis(raw.drain_grace_ms),
        fleet_share: raw.fleet_share,
        correlation_window: Duration::from_secs(raw.correlation_window_secs),
        throttle_calls_per_minute: NonZeroU32::new(u32::try_from(raw.throttle_calls_per_minute).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN),
        restriction: Duration::from_secs(raw.restriction_secs),
        quarantine_cooldown: Duration::from_millis(raw.quarantine_cooldown_ms),
        snapshot_every: Duration::from_secs(raw.snapshot_every_secs),
        control_timeout: Duration::from_millis(raw.control_timeout_ms),
        rhythm: raw.rhythm,
        rhythm_bucket: Duration::from_secs(raw.rhythm_bucket_secs),
        rhythm_learn_buckets: usize::try_from(raw.rhythm_learn_buckets).unwrap_or(usize::MAX),
    }
}

/// Largest price accepted: $1,000,000 per million tokens.
const PRICE_USD_PER_MTOK_MAX: f64 = 1_000_000.0;

fn validate_prices(raw: Vec<RawPrice>, origins: &Origins, p: &mut Vec<Problem>) -> Vec<PriceConfig> {
    let origin = origins.origin("gateway.prices");
    let mut prices = Vec::new();
    for (i, price) in raw.into_iter().enumerate() {
        let mut problem = |field: &str, message: String| {
            p.push(Problem { key: format!("gateway.prices[{i}].{field}"), origin: origin.clone(), message });
        };
        if price.model.is_empty() || price.model.len() > 256 {
            problem("model", "must be a model-name glob of 1 to 256 characters".to_owned());
        }
        let mut nanos = |field: &str, usd: f64| -> u64 {
            if !(0.0..=PRICE_USD_PER_MTOK_MAX).contains(&usd) {
                problem(
                    field,
                    format!("must be between 0 and {PRICE_USD_PER_MTOK_MAX} dollars per million tokens, got {usd}"),
                );
                return 0;
            }
            // Dollars per million tokens to nano-dollars per million tokens, exact to 1e-9 $.
            (usd * 1e9).round() as u64
        };
        let input = nanos("input_per_mtok", price.input_per_mtok);
        let cached = nanos("cached_input_per_mtok", price.cached_input_per_mtok.unwrap_or(price.input_per_mtok));
        let write_usd = price.cache_write_per_mtok.unwrap_or(price.input_per_mtok);
        let cache_write = nanos("cache_write_per_mtok", write_usd);
        let cache_write_1h = nanos("cache_write_1h_per_mtok", price.cache_write_1h_per_mtok.unwrap_or(write_usd));
        let output = nanos("output_per_mtok", price.output_per_mtok);
        let since = match price.since.as_deref() {
            None => None,
            Some(text) => {
                let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_owned() };
                match crate::time::Timestamp::parse_rfc3339(&full) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problem("since", e.to_string());
                        None
                    }
                }
            }
        };
        prices.push(PriceConfig {
            model: price.model,
            input_nanos_per_mtok: input,
            cached_input_nanos_per_mtok: cached,
            cache_write_nanos_per_mtok: cache_write,
            cache_write_1h_nanos_per_mtok: cache_write_1h,
            output_nanos_per_mtok: output,
            since,
        });
    }
    prices
}

fn validate_gateway(raw: RawGateway, origins: &Origins, sources: &Sources<'_>, p: &mut Vec<Problem>) -> GatewayConfig {
    check_range(p, origins, "gateway.vitals_queue", raw.vitals_queue, 1..=VITALS_QUEUE_MAX);
    check_range(p, origins, "gateway.retries", raw.retries, 0..=10);
    check_range(p, origins, "gateway.retry_backoff_ms", raw.retry_backoff_ms, 0..=60_000);
    check_range(p, origins, "gateway.breaker_failures", raw.breaker_failures, 1..=1_000);
    check_range(p, origins, "gateway.breaker_cooldown_ms", raw.breaker_cooldown_ms, 0..=3_600_000);
    check_range(p, origins, "gateway.policy.agent_calls_per_minute", raw.policy.agent_calls_per_minute, 0..=10_000_000);
    for (field, globs) in [("allow_models", &raw.policy.allow_models), ("block_models", &raw.policy.block_models)] {
        if globs.iter().any(|g| g.is_empty() || g.len() > 256) {
            p.push(origins.problem(&format!("gateway.policy.{field}"), "patterns must be 1 to 256 characters"));
        }
    }
    let names: Vec<String> = raw.providers.iter().map(|p| p.name.clone()).collect();
    let prices = validate_prices(raw.prices, origins, p);
    let mut providers = Vec::new();
    for (i, provider) in raw.providers.into_iter().enumerate() {
        let key = |field: &str| format!("gateway.providers[{i}].{field}");
        let origin = origins.origin("gateway.providers");
        let mut problem = |field: &str, message: String| {
            p.push(Problem { key: key(field), origin: origin.clone(), message });
        };
        let name_ok = !provider.name.is_empty()
            && provider.name.len() <= 64
            && provider.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            problem("name", "must be 1 to 64 characters of letters, digits, '-' or '_'".to_owned());
        }
        if providers.iter().any(|q: &ProviderConfig| q.name == provider.name) {
            problem("name", format!("{:?} is used by another provider", provider.name));
        }
        let base_url = provider.base_url.trim_end_matches('/').to_owned();
        let scheme_ok = base_url.starts_with("http://") || base_url.starts_with("https://");
        if !scheme_ok || base_url.len() <= "https://".len() || base_url.contains(char::is_whitespace) {
            problem("base_url", format!("expected an http:// or https:// URL, got {:?}", provider.base_url));
        } else if let Err(e) = url::Url::parse(&base_url) {
            // Checked here, as the gateway will parse it, so `vigil config check` says so too.
            problem("base_url", format!("{:?} is not a valid URL: {e}", provider.base_url));
        }
        let api_key = match (&provider.api_key_file, &provider.api_key_env) {
            (Some(path), _) => match read_secret_file(sources, path) {
                Ok(text) => Some(Secret(text)),
                Err(message) => {
                    problem("api_key_file", message);
                    None
                }
            },
            (None, Some(var)) => match sources.env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                Some(value) => Some(Secret(value.to_owned())),
                None => {
                    problem("api_key_env", format!("environment variable {var} is not set or empty"));
                    None
                }
            },
            (None, None) => None,
        };
        for (field, value, max) in [
            ("timeout_ms", provider.timeout_ms, UPSTREAM_TIMEOUT_MS_MAX),
            ("connect_timeout_ms", provider.connect_timeout_ms, 60_000),
        ] {
            if !(1..=max).contains(&value) {
                problem(field, format!("must be between 1 and {max}, got {value}"));
            }
        }
        if let Some(fallback) = &provider.fallback
            && (fallback == &provider.name || !names.contains(fallback))
        {
            problem("fallback", format!("{fallback:?} is not another configured provider"));
        }
        providers.push(ProviderConfig {
            fallback: provider.fallback,
            name: provider.name,
            kind: provider.kind,
            base_url,
            api_key,
            models: provider.models,
            timeout: Duration::from_millis(provider.timeout_ms),
            connect_timeout: Duration::from_millis(provider.connect_timeout_ms),
        });
    }
    GatewayConfig {
        passthrough_client_key: raw.passthrough_client_key,
        vitals_queue: usize::try_from(raw.vitals_queue).unwrap_or(usize::MAX),
        retries: u32::try_from(raw.retries).unwrap_or(u32::MAX),
        retry_backoff: Duration::from_millis(raw.retry_backoff_ms),
        breaker_failures: u32::try_from(raw.breaker_failures).unwrap_or(1).max(1),
        breaker_cooldown: Duration::from_millis(raw.breaker_cooldown_ms),
        policy: PolicyConfig {
            agent_calls_per_minute: NonZeroU32::new(
                u32::try_from(raw.policy.agent_calls_per_minute).unwrap_or(u32::MAX),
            ),
            allow_models: raw.policy.allow_models,
            block_models: raw.policy.block_models,
        },
        prices,
        providers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let read = |path: &str| match path {
            "/secrets/admin" => Ok(format!("{}\n", "k".repeat(40))),
            "/secrets/empty" => Ok("\n".to_owned()),
            _ => Err("No such file or directory".to_owned()),
        };
        load(&Sources { file: file.map(|text| ("vigil.toml", text)), env: &env, read_file: &read })
    }

    fn messages(err: ConfigError) -> Vec<String> {
        err.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_local_and_loopback() {
        let config = load_with(None, &[]).expect("defaults valid");
        assert_eq!(config.mode, Mode::Local);
        assert!(config.listen.ip().is_loopback());
        assert!(config.rate_limit.is_some());
        assert!(config.admin_key.is_none());
    }

    #[test]
    fn env_overrides_file() {
        let config = load_with(
            Some("[rate_limit]\nper_second = 5\n"),
            &[("VIGIL_RATE_LIMIT_PER_SECOND", "7"), ("VIGIL_STORE_DURABILITY", "fast")],
        )
        .expect("valid");
        assert_eq!(config.rate_limit.map(|r| r.per_second.get()), Some(7));
        assert_eq!(config.store.durability, Durability::Fast);
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = load_with(Some("[http]\nmax_body = 5\n"), &[]).expect_err("unknown key");
        let text = messages(err).join("\n");
        assert!(text.contains("http"), "{text}");
        assert!(text.contains("max_body"), "{text}");
    }

    #[test]
    fn bad_enum_value_names_key_and_variable() {
        let err = load_with(None, &[("VIGIL_MODE", "prod")]).expect_err("bad mode");
        let text = messages(err).join("\n");
        assert!(text.starts_with("mode (from VIGIL_MODE)"), "{text}");
        assert!(text.contains("prod"), "{text}");
        assert!(text.contains("local"), "{text}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = load_with(
            Some("listen = \"0.0.0.0:80\"\n[http]\nmax_body_bytes = 1\n"),
            &[("VIGIL_RATE_LIMIT_BURST", "0")],
        )
        .expect_err("three problems");
        let text = messages(err);
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("listen (in vigil.toml): local mode binds loopback only"), "{text:?}");
        assert!(text.iter().any(|m| m.starts_with("http.max_body_bytes (in vigil.toml)")), "{text:?}");
        assert!(text.iter().any(|m| m.starts_with("rate_limit.burst (from VIGIL_RATE_LIMIT_BURST)")), "{text:?}");
    }

    #[test]
    fn the_build_revision_variable_is_not_a_setting() {
        // `cargo run` hands the build script's VIGIL_GIT_SHA to the program it runs.
        assert!(load_with(None, &[("VIGIL_GIT_SHA", "0123abcd")]).is_ok());
    }

    #[test]
    fn unknown_variable_is_an_error() {
        let err = load_with(None, &[("VIGIL_RATELIMIT", "5")]).expect_err("typo");
        assert!(messages(err)[0].starts_with("VIGIL_RATELIMIT: unknown setting"));
    }

    #[test]
    fn cli_variables_are_not_settings() {
        load_with(None, &[("VIGIL_DATA", "/tmp/x"), ("VIGIL_LOG", "debug")]).expect("ignored");
    }

    #[test]
    fn file_variable_wins_and_is_trimmed() {
        let config = load_with(None, &[("VIGIL_ADMIN_KEY", "short"), ("VIGIL_ADMIN_KEY_FILE", "/secrets/admin")])
            .expect("file wins over the too-short plain value");
        assert_eq!(config.admin_key.map(|k| k.expose().to_owned()), Some("k".repeat(40)));
    }

    #[test]
    fn missing_or_empty_secret_file_stops_start() {
        let err = load_with(None, &[("VIGIL_ADMIN_KEY_FILE", "/secrets/missing")]).expect_err("missing");
        let text = messages(err).join("\n");
        assert!(text.contains("VIGIL_ADMIN_KEY_FILE: cannot read /secrets/missing"), "{text}");

        let err = load_with(None, &[("VIGIL_ADMIN_KEY_FILE", "/secrets/empty")]).expect_err("empty");
        assert!(messages(err)[0].contains("/secrets/empty is empty"));
    }

    #[test]
    fn secrets_never_echoed() {
        let err = load_with(None, &[("VIGIL_ADMIN_KEY", "tooshort-secret")]).expect_err("short");
        let text = messages(err).join("\n");
        assert!(!text.contains("tooshort-secret"), "{text}");
        let config = load_with(None, &[("VIGIL_ADMIN_KEY", &"s".repeat(40))]).expect("valid");
        assert!(!format!("{config:?}").contains(&"s".repeat(40)));
    }

    #[test]
    fn toml_errors_do_not_quote_the_source() {
        let secret = "0123456789abcdef0123456789abcdef-not-quoted";
        let err = load_with(Some(&format!("[auth]\nadmin_key = {secret}\n")), &[]).expect_err("invalid TOML");
        let text = messages(err).join("\n");
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("line 2"), "the position is kept: {text}");

        let err = load_with(Some("[auth]\nadmin_key = 918273645546372819\n"), &[]).expect_err("wrong type");
        let text = messages(err).join("\n");
        assert!(text.starts_with("auth.admin_key (in vigil.toml)") && !text.contains("918273645546372819"), "{text}");
    }

    #[test]
    fn gateway_providers_are_validated_and_routed() {
        let file = r#"
[[gateway.providers]]
name = "anthropic"
kind = "anthropic"
base_url = "https://api.anthropic.com/v1/"
api_key_file = "/secrets/admin"
models = ["claude-*"]

[[gateway.providers]]
name = "openai"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
"#;
        let config = load_with(Some(file), &[("OPENAI_API_KEY", "sk-test")]).expect("valid");
        let gw = &config.gateway;
        let by = |model: &str, kind| gw.provider_for(model, kind).map(|p| p.name.as_str());
        assert_eq!(by("claude-sonnet-4-5", ProviderKind::Anthropic), Some("anthropic"));
        assert_eq!(by("gpt-4o", ProviderKind::Openai), Some("openai"));
        assert_eq!(by("gpt-4o", ProviderKind::Anthropic), None, "the Anthropic provider serves claude-* only");
        assert_eq!(gw.providers[0].base_url, "https://api.anthropic.com/v1", "trailing slash trimmed");
        assert_eq!(gw.providers[1].api_key.as_ref().map(Secret::expose), Some("sk-test"));

        let err = load_with(Some(file), &[]).expect_err("key variable missing");
        let text = messages(err).join("\n");
        assert!(text.contains("gateway.providers[1].api_key_env") && text.contains("OPENAI_API_KEY"), "{text}");

        let bad = "[[gateway.providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"ftp://x\"\n";
        let err = load_with(Some(bad), &[]).expect_err("bad url");
        assert!(messages(err)[0].starts_with("gateway.providers[0].base_url (in vigil.toml)"));
        for bad in ["https://host:70000/v1", "https://ap|i.example.com/v1", "http://[::1/v1"] {
            let text = format!("[[gateway.providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"{bad}\"\n");
            let err = load_with(Some(&text), &[]).expect_err(bad);
            assert!(messages(err)[0].contains("is not a valid URL"), "{bad}");
        }
    }

    #[test]
    fn prices_are_validated_and_converted_exactly() {
        let file = "[[gateway.prices]]\nmodel = \"llama-*\"\ninput_per_mtok = 0.0375\noutput_per_mtok = 1.5\nsince = \"2026-06-01\"\n";
        let config = load_with(Some(file), &[]).expect("valid");
        let price = &config.gateway.prices[0];
        assert_eq!((price.input_nanos_per_mtok, price.cached_input_nanos_per_mtok), (37_500_000, 37_500_000));
        assert_eq!(price.output_nanos_per_mtok, 1_500_000_000);
        assert_eq!(price.since.map(|t| t.to_rfc3339()), Some("2026-06-01T00:00:00Z".to_owned()));
        // Cache writes default to input; the one-hour lifetime to the (given) write price.
        assert_eq!((price.cache_write_nanos_per_mtok, price.cache_write_1h_nanos_per_mtok), (37_500_000, 37_500_000));
        let file = "[[gateway.prices]]\nmodel = \"c*\"\ninput_per_mtok = 1\ncache_write_per_mtok = 1.25\noutput_per_mtok = 5\n";
        let price = &load_with(Some(file), &[]).expect("valid").gateway.prices[0];
        assert_eq!(
            (price.cache_write_nanos_per_mtok, price.cache_write_1h_nanos_per_mtok),
            (1_250_000_000, 1_250_000_000)
        );
        let bad = "[[gateway.prices]]\nmodel = \"x\"\ninput_per_mtok = -1.0\noutput_per_mtok = 1.0\nsince = \"soon\"\n";
        let text = messages(load_with(Some(bad), &[]).expect_err("bad")).join("\n");
        assert!(
            text.contains("gateway.prices[0].input_per_mtok") && text.contains("gateway.prices[0].since"),
            "{text}"
        );
    }

    #[test]
    fn bad_integer_from_env() {
        let err = load_with(None, &[("VIGIL_HTTP_MAX_BODY_BYTES", "lots")]).expect_err("nan");
        assert_eq!(
            messages(err)[0],
            "http.max_body_bytes (from VIGIL_HTTP_MAX_BODY_BYTES): expected a whole number, got \"lots\""
        );
    }

    #[test]
    fn every_setting_is_a_real_key() {
        let defaults = toml::Value::try_from(RawConfig::default()).expect("serializes");
        for setting in SETTINGS {
            if ["listen", "auth.admin_key", "harness.sandbox_strict"].contains(&setting.key) {
                continue; // optional, absent from the serialized defaults
            }
            let mut value = &defaults;
            for part in setting.key.split('.') {
                value = value.get(part).unwrap_or_else(|| panic!("{} is not a config key", setting.key));
            }
        }
    }
}
