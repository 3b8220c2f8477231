//! `[gateway]`: the LLM gateway's upstream providers (`[[gateway.providers]]`, with their
//! keys, timeouts, model globs and fallbacks), the price table additions
//! (`[[gateway.prices]]`), the policy checked before anything is forwarded, and retries,
//! circuit breakers and the vitals queue. Validated into [`GatewayConfig`].

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::env::read_secret_file;
use super::{Check, Secret, Setting};

/// Bounds for `[gateway]`, units last.
pub const VITALS_QUEUE_MAX: u64 = 1_000_000;
pub const UPSTREAM_TIMEOUT_MS_MAX: u64 = 3_600_000;

/// The gateway is configured in the file only: providers and prices are lists, and provider
/// keys are named by `api_key_env` or `api_key_file`.
pub(super) const SETTINGS: &[Setting] = &[];

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
    /// The output cap written into a call that names none when a budget applies to it, so
    /// its reservation is an upper bound.
    pub budget_output_tokens_default: u64,
    /// How long a budget reservation may stay unsettled before it is expired (its process
    /// died); 0: long enough for the slowest call the providers allow (twice the longest
    /// timeout, times the attempts, plus a minute).
    pub reservation_lease_ms: u64,
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
            budget_output_tokens_default: 4_096,
            reservation_lease_ms: 0,
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

#[derive(Clone, Debug, Default, Serialize)]
pub struct GatewayConfig {
    pub passthrough_client_key: bool,
    pub vitals_queue: usize,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub policy: PolicyConfig,
    pub budget_output_tokens_default: u64,
    pub reservation_lease: Duration,
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

/// Largest price accepted: $1,000,000 per million tokens.
const PRICE_USD_PER_MTOK_MAX: f64 = 1_000_000.0;

fn validate_prices(raw: Vec<RawPrice>, check: &mut Check<'_>) -> Vec<PriceConfig> {
    let mut prices = Vec::new();
    for (i, price) in raw.into_iter().enumerate() {
        let mut problem = |field: &str, message: String| check.item_problem("gateway.prices", i, field, message);
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

impl RawGateway {
    pub(super) fn validate(self, check: &mut Check<'_>) -> GatewayConfig {
        // Copied out: the per-provider `problem` closure below borrows `check`.
        let sources = check.sources;
        check.range("gateway.vitals_queue", self.vitals_queue, 1..=VITALS_QUEUE_MAX);
        check.range("gateway.retries", self.retries, 0..=10);
        check.range("gateway.retry_backoff_ms", self.retry_backoff_ms, 0..=60_000);
        check.range("gateway.breaker_failures", self.breaker_failures, 1..=1_000);
        check.range("gateway.breaker_cooldown_ms", self.breaker_cooldown_ms, 0..=3_600_000);
        check.range("gateway.budget_output_tokens_default", self.budget_output_tokens_default, 1..=10_000_000);
        check.range("gateway.reservation_lease_ms", self.reservation_lease_ms, 0..=7 * 86_400_000);
        check.range("gateway.policy.agent_calls_per_minute", self.policy.agent_calls_per_minute, 0..=10_000_000);
        for (field, globs) in [("allow_models", &self.policy.allow_models), ("block_models", &self.policy.block_models)]
        {
            if globs.iter().any(|g| g.is_empty() || g.len() > 256) {
                check.problem(&format!("gateway.policy.{field}"), "patterns must be 1 to 256 characters");
            }
        }
        let names: Vec<String> = self.providers.iter().map(|p| p.name.clone()).collect();
        let prices = validate_prices(self.prices, check);
        let mut providers = Vec::new();
        for (i, provider) in self.providers.into_iter().enumerate() {
            let mut problem = |field: &str, message: String| check.item_problem("gateway.providers", i, field, message);
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
        let attempts = u32::try_from(self.retries).unwrap_or(10).saturating_add(1);
        let slowest = providers.iter().map(|p| p.timeout).max().unwrap_or(Duration::from_secs(600));
        let reservation_lease = match self.reservation_lease_ms {
            0 => slowest.saturating_mul(2).saturating_mul(attempts).saturating_add(Duration::from_secs(60)),
            ms => Duration::from_millis(ms),
        };
        GatewayConfig {
            passthrough_client_key: self.passthrough_client_key,
            budget_output_tokens_default: self.budget_output_tokens_default,
            reservation_lease,
            vitals_queue: usize::try_from(self.vitals_queue).unwrap_or(usize::MAX),
            retries: u32::try_from(self.retries).unwrap_or(u32::MAX),
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
            breaker_failures: u32::try_from(self.breaker_failures).unwrap_or(1).max(1),
            breaker_cooldown: Duration::from_millis(self.breaker_cooldown_ms),
            policy: PolicyConfig {
                agent_calls_per_minute: NonZeroU32::new(
                    u32::try_from(self.policy.agent_calls_per_minute).unwrap_or(u32::MAX),
                ),
                allow_models: self.policy.allow_models,
                block_models: self.policy.block_models,
            },
            prices,
            providers,
        }
    }
}
