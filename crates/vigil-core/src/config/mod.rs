//! Configuration: a TOML file plus `VIGIL_*` environment overrides, validated once at
//! start-up into a [`Config`].
//!
//! The raw types ([`RawConfig`] and its sections) mirror the file and reject unknown keys;
//! [`RawConfig::validate`] checks every value and reports *all* problems at once, each naming
//! the key and where its value came from (the file, or which environment variable). Every
//! setting has one environment variable, listed by [`settings`]; each may also be given as
//! `<NAME>_FILE` holding a path to read the value from, which wins over the plain variable
//! (the usual way to pass secrets from a secret store). Nothing here reads the process
//! environment or the disk: [`Sources`] carries both in.
//!
//! This module is the framework: loading, origins, problems and the `Check` every section
//! validates with. Each section lives in its own file with its raw type, its validated type,
//! its bounds, its environment [`Setting`]s and its validation. Adding a section touches its
//! file and, here, its `mod`, its field in [`RawConfig`] and [`Config`], its `validate` call
//! and its line in [`settings`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

mod auth;
mod egress;
mod env;
mod gateway;
mod harness;
mod http;
mod immune;
mod store;
#[cfg(test)]
mod tests;

pub use auth::{ADMIN_KEY_LEN_MAX, ADMIN_KEY_LEN_MIN, RawAuth};
pub use egress::{EGRESS_ALLOW_MAX, RawEgress};
pub use gateway::{
    GatewayConfig, PolicyConfig, PriceConfig, ProviderConfig, ProviderKind, RawGateway, RawPolicy, RawPrice,
    RawProvider, UPSTREAM_TIMEOUT_MS_MAX, VITALS_QUEUE_MAX,
};
pub use harness::{HarnessConfig, PARALLELISM_MAX, PLUGIN_OUTPUT_BYTES_MAX, RawHarness};
pub use http::{
    BODY_BYTES_MAX, BODY_BYTES_MIN, CONNECTIONS_MAX, CONNECTIONS_MIN, HEADER_READ_TIMEOUT_MS_MAX,
    HEADER_READ_TIMEOUT_MS_MIN, HttpConfig, RATE_BURST_MAX, RATE_PER_SECOND_MAX, REQUEST_TIMEOUT_MS_MAX,
    REQUEST_TIMEOUT_MS_MIN, RateLimitConfig, RawHttp, RawRateLimit, SHUTDOWN_GRACE_MS_MAX,
};
pub use immune::{ImmuneConfig, RawImmune};
pub use store::{BLOB_BYTES_MAX, BUSY_TIMEOUT_MS_MAX, BlobsConfig, Durability, RawBlobs, RawStore, StoreConfig};

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

/// The default listen address: loopback, so a fresh install is never reachable from outside.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7700";

/// Largest `*_FILE` secret file read.
pub const SECRET_FILE_BYTES_MAX: usize = 64 * 1024;

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
    pub egress: RawEgress,
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
    /// Where Vigil may call on a caller's behalf; never its own listen address.
    pub egress: crate::egress::EgressPolicy,
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

/// The type of value an environment variable carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Integer,
    Boolean,
    /// Comma-separated text, each item trimmed; empty items are dropped.
    List,
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

/// The settings outside every section.
const TOP_LEVEL_SETTINGS: &[Setting] =
    &[setting("mode", "VIGIL_MODE", ValueKind::Text), setting("listen", "VIGIL_LISTEN", ValueKind::Text)];

/// Every setting Vigil reads, section by section. An unknown `VIGIL_*` variable is an error,
/// so a typo never silently leaves a default in place.
pub fn settings() -> impl Iterator<Item = &'static Setting> + Clone {
    [
        TOP_LEVEL_SETTINGS,
        store::SETTINGS,
        http::SETTINGS,
        auth::SETTINGS,
        gateway::SETTINGS,
        harness::SETTINGS,
        immune::SETTINGS,
        egress::SETTINGS,
    ]
    .into_iter()
    .flatten()
}

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

/// Reads the file and the environment and validates the result.
pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let mut origins = Origins::default();
    let mut problems = Vec::new();
    let mut table = toml::Table::new();

    if let Some((path, text)) = sources.file {
        match text.parse::<toml::Table>() {
            Ok(parsed) => {
                env::record_origins(&parsed, "", &Origin::File(path.to_owned()), &mut origins);
                table = parsed;
            }
            Err(e) => problems.push(Problem {
                key: path.to_owned(),
                origin: Origin::File(path.to_owned()),
                message: format!("not valid TOML: {}", toml_error_without_source(&e)),
            }),
        }
    }

    env::overlay_env(&mut table, sources, &mut origins, &mut problems);

    // Keep going after problems so far: the operator sees every one in a single run.
    let raw: RawConfig = match serde_path_to_error::deserialize(toml::Value::Table(table)) {
        Ok(raw) => raw,
        Err(e) => {
            let key = e.path().to_string();
            let secret = settings().any(|s| s.secret && s.key == key);
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

/// What a section's `validate` works with: where each value came from, the sources (for
/// secrets named by the file), the mode (some defaults follow it) and the problems found so
/// far. Sections report through it and keep going, so every problem is found in one pass.
#[derive(Debug)]
struct Check<'a> {
    origins: &'a Origins,
    sources: &'a Sources<'a>,
    mode: Mode,
    problems: Vec<Problem>,
}

impl Check<'_> {
    /// Reports `message` about `key`, naming where the key's value came from.
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(self.origins.problem(key, message));
    }

    /// Reports `message` about `field` of entry `index` of the array of tables `list` (such
    /// as `gateway.providers[1].base_url`); entries share the origin of their array.
    fn item_problem(&mut self, list: &str, index: usize, field: &str, message: impl Into<String>) {
        let origin = self.origins.origin(list);
        self.problems.push(Problem { key: format!("{list}[{index}].{field}"), origin, message: message.into() });
    }

    /// Checks that `value` of `key` is within `range`, reporting it if not; true when it is.
    fn range(&mut self, key: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> bool {
        if range.contains(&value) {
            return true;
        }
        self.problem(key, format!("must be between {} and {}, got {value}", range.start(), range.end()));
        false
    }
}

impl RawConfig {
    /// Checks every value, returning the runtime [`Config`] or every problem found.
    pub fn validate(self, origins: &mut Origins, sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let mut check = Check { origins, sources, mode: self.mode, problems: Vec::new() };
        // Fields are validated in the order written, which is the order problems are reported.
        let listen = validate_listen(self.listen.as_deref(), &mut check);
        let config = Config {
            mode: self.mode,
            listen,
            store: self.store.validate(&mut check),
            blobs: self.blobs.validate(&mut check),
            http: self.http.validate(&mut check),
            rate_limit: self.rate_limit.validate(&mut check),
            admin_key: self.auth.validate(&mut check),
            gateway: self.gateway.validate(&mut check),
            harness: self.harness.validate(&mut check),
            immune: self.immune.validate(&mut check),
            egress: crate::egress::EgressPolicy { own: Some(listen), ..self.egress.validate(&mut check) },
        };
        if check.problems.is_empty() { Ok(config) } else { Err(ConfigError { problems: check.problems }) }
    }
}

/// The listen address, which local mode keeps on loopback.
fn validate_listen(listen: Option<&str>, check: &mut Check<'_>) -> SocketAddr {
    let listen_text = listen.unwrap_or(LISTEN_DEFAULT);
    match listen_text.parse::<SocketAddr>() {
        Ok(addr) => {
            if check.mode == Mode::Local && !addr.ip().is_loopback() {
                check.problem(
                    "listen",
                    format!(
                        "local mode binds loopback only, got {addr}; set mode = \"production\" \
                         (with an admin key) to listen on other interfaces"
                    ),
                );
            }
            addr
        }
        Err(_) => {
            let message = format!("expected an address and port such as 127.0.0.1:7700, got {listen_text:?}");
            check.problem("listen", message);
            LISTEN_DEFAULT.parse().unwrap_or_else(|_| unreachable!("default parses"))
        }
    }
}
