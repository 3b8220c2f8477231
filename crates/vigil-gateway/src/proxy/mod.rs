//! Forwarding a call upstream and relaying the answer, measuring it on the way.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::{Value, json};
use vigil_core::config::{GatewayConfig, ProviderConfig, ProviderKind};
use vigil_core::time::Timestamp;
use vigil_core::vitals::{CallOutcome, Usage, Vital};

use vigil_services::budgets::{CostBound, Hold, Meter};
use vigil_services::governance::PolicyGuard;

use crate::breaker::{Admission, Breaker};
use crate::openai::{Answer, RequestFacts, estimate_usage};
use crate::policy::{CallFacts, Policy, Refusal, RefusalKind};
use crate::price::PriceTable;
use crate::recorder::Recorder;
use crate::sse::Scanner;

mod relay;
use relay::{Cut, OwnedFacts, Relay, StreamRecord, finish_vital};

/// Largest non-streamed answer relayed.
pub const UPSTREAM_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Who made a call, as the server worked it out. Its `Debug` never shows the caller's
/// provider key.
#[derive(Clone)]
pub struct Caller {
    /// When the request reached Vigil, for measuring Vigil's own overhead.
    pub received: Instant,
    pub request_id: Option<String>,
    pub agent_id: vigil_core::id::AgentId,
    pub agent_type: String,
    /// The id of the Vigil key the call was made with, if any (never the secret).
    pub key_id: Option<String>,
    /// The caller's own provider key, forwarded when `passthrough_client_key` is on.
    pub client_key: Option<String>,
    pub feature: Option<String>,
    pub user: Option<String>,
    pub client_ip: Option<std::net::IpAddr>,
    /// The client's `anthropic-version` and `anthropic-beta` headers, passed on to Anthropic.
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
    /// A cost the caller computed itself (`X-Vigil-Reported-Cost-Usd`), in nano-dollars; it
    /// wins over the price table.
    pub reported_cost_nanos: Option<i64>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("received", &self.received)
            .field("request_id", &self.request_id)
            .field("agent_id", &self.agent_id)
            .field("agent_type", &self.agent_type)
            .field("client_key", &self.client_key.as_ref().map(|_| "<redacted>"))
            .field("feature", &self.feature)
            .field("user", &self.user)
            .field("client_ip", &self.client_ip)
            .field("anthropic_version", &self.anthropic_version)
            .field("anthropic_beta", &self.anthropic_beta)
            .field("reported_cost_nanos", &self.reported_cost_nanos)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("building the HTTP client for provider {provider}: {source}")]
    Client {
        provider: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("provider {provider}: {url:?} is not a valid URL: {source}")]
    Url {
        provider: String,
        url: String,
        #[source]
        source: url::ParseError,
    },
}

/// One provider's HTTP client and the URLs of the operations forwarded to it, parsed once
/// (parsing them per call, host name checks included, was a measurable share of a call).
#[derive(Debug)]
struct Upstream {
    client: reqwest::Client,
    urls: Vec<(&'static str, reqwest::Url)>,
}

impl Upstream {
    /// The URL of `path` (one of [`UPSTREAM_PATHS`]) under the provider's base URL.
    fn url(&self, path: &str) -> reqwest::Url {
        match self.urls.iter().find(|(p, _)| *p == path) {
            Some((_, url)) => url.clone(),
            None => unreachable!("{path} is not one of UPSTREAM_PATHS"),
        }
    }
}

/// The gateway: one HTTP client per provider, the routing table and the recorder.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    upstreams: HashMap<String, Upstream>,
    breakers: HashMap<String, Mutex<Breaker>>,
    recorder: Recorder,
    policy: Policy,
    /// Budgets: admission before a call is sent, settlement when it ends.
    meter: Option<Arc<Meter>>,
    /// The policy in force, watched by every stream so a kill switch cuts it at once.
    governance: Option<Arc<PolicyGuard>>,
    prices: Arc<PriceTable>,
    /// Time Vigil adds to a call: everything but waiting for the provider.
    overhead: Histogram,
}

/// Response header carrying Vigil's own time on the call, in microseconds.
pub const OVERHEAD_HEADER: &str = "x-vigil-overhead-us";

/// Which wire protocol a call speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// Chat completions and embeddings.
    OpenAi,
    /// OpenAI's Responses API: same provider and error shape, typed stream events.
    OpenAiResponses,
    Anthropic,
}

impl Dialect {
    fn provider_kind(self) -> ProviderKind {
        match self {
            Dialect::OpenAi | Dialect::OpenAiResponses => ProviderKind::Openai,
            Dialect::Anthropic => ProviderKind::Anthropic,
        }
    }

    /// An error in this dialect's shape, which its SDKs turn into typed exceptions.
    fn error(self, status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Response {
        match self {
            Dialect::OpenAi | Dialect::OpenAiResponses => openai_error(status, kind, code, message),
            Dialect::Anthropic => anthropic_error(status, kind, message),
        }
    }
}

/// An error in Anthropic's shape.
pub fn anthropic_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({ "type": "error", "error": { "type": kind, "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

/// One upstream API operation the gateway forwards.
#[derive(Clone, Copy, Debug)]
struct Endpoint {
    /// Vitals `endpoint` name, e.g. `chat.completions`.
    name: &'static str,
    /// Path after the provider's base URL.
    path: &'static str,
    /// Whether the operation can stream.
    streams: bool,
    dialect: Dialect,
}

const CHAT_COMPLETIONS: Endpoint =
    Endpoint { name: "chat.completions", path: "/chat/completions", streams: true, dialect: Dialect::OpenAi };
const EMBEDDINGS: Endpoint =
    Endpoint { name: "embeddings", path: "/embeddings", streams: false, dialect: Dialect::OpenAi };
const RESPONSES: Endpoint =
    Endpoint { name: "responses", path: "/responses", streams: true, dialect: Dialect::OpenAiResponses };
const MESSAGES: Endpoint = Endpoint { name: "messages", path: "/messages", streams: true, dialect: Dialect::Anthropic };

/// Path of the model list after an OpenAI provider's base URL.
const MODELS_PATH: &str = "/models";

/// Every path the gateway calls under a provider's base URL.
const UPSTREAM_PATHS: [&str; 5] = [CHAT_COMPLETIONS.path, EMBEDDINGS.path, RESPONSES.path, MESSAGES.path, MODELS_PATH];

/// The Anthropic API version sent when the client names none.
pub const ANTHROPIC_VERSION_DEFAULT: &str = "2023-06-01";

/// An error in OpenAI's shape, which every OpenAI SDK knows how to read.
pub fn openai_error(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "message": message.into(), "type": kind, "param": null, "code": code } });
    (status, axum::Json(body)).into_response()
}

impl Gateway {
    pub fn new(config: GatewayConfig, recorder: Recorder, overhead: Histogram) -> Result<Gateway, GatewayError> {
        let mut upstreams = HashMap::new();
        for provider in &config.providers {
            let client = reqwest::Client::builder()
                .connect_timeout(provider.connect_timeout)
                .pool_idle_timeout(std::time::Duration::from_secs(90))
                .build()
                .map_err(|source| GatewayError::Client { provider: provider.name.clone(), source })?;
            let urls = UPSTREAM_PATHS
                .iter()
                .map(|path| {
                    let url = format!("{}{path}", provider.base_url);
                    match reqwest::Url::parse(&url) {
                        Ok(parsed) => Ok((*path, parsed)),
                        Err(source) => Err(GatewayError::Url { provider: provider.name.clone(), url, source }),
                    }
                })
                .collect::<Result<_, _>>()?;
            upstreams.insert(provider.name.clone(), Upstream { client, urls });
        }
        let breakers = config
            .providers
            .iter()
            .map(|p| (p.name.clone(), Mutex::new(Breaker::new(config.breaker_failures, config.breaker_cooldown))))
            .collect();
        let policy = Policy::new(config.policy.clone());
        let prices = Arc::new(PriceTable::new(&config.prices));
        Ok(Gateway { config, upstreams, breakers, recorder, policy, meter: None, governance: None, prices, overhead })
    }

    /// The price table in force, for vitals that arrive by other paths (ingest, OTLP).
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Periodic upkeep: drops idle per-agent rate buckets.
    pub fn prune(&self) {
        self.policy.prune();
    }

    /// Plugs in a rule from another part of Vigil (see [`CallGuard`]).
    pub fn add_guard(&mut self, guard: Arc<dyn crate::policy::CallGuard>) {
        self.policy.add_guard(guard);
    }

    /// Judges every call by the policy in force (`guard`), and cuts a stream in flight
    /// when a kill switch that stops it comes on.
    pub fn set_governance(&mut self, guard: Arc<PolicyGuard>) {
        self.policy.add_guard(guard.clone());
        self.governance = Some(guard);
    }

    /// Admits every call a budget applies to through `meter` before sending it.
    pub fn set_meter(&mut self, meter: Arc<Meter>) {
        self.meter = Some(meter);
    }

    /// `POST /v1/chat/completions`, streamed or not.
    pub async fn chat_completions(&self, caller: Caller, body: Bytes) -> Response {
        self.forward(CHAT_COMPLETIONS, caller, body).await
    }

    /// `POST /v1/responses` (OpenAI's Responses API), streamed or not.
    pub async fn responses(&self, caller: Caller, body: Bytes) -> Response {
        self.forward(RESPONSES, caller, body).await
    }

    /// `POST /v1/messages` (Anthropic), streamed or not.
    pub async fn messages(&self, caller: Caller, body: Bytes) -> Response {
        self.forward(MESSAGES, caller, body).await
    }

    /// `POST /v1/embeddings`.
    pub async fn embeddings(&self, caller: Caller, body: Bytes) -> Response {
        self.forward(EMBEDDINGS, caller, body).await
    }

    async fn forward(&self, endpoint: Endpoint, caller: Caller, body: Bytes) -> Response {
        let started = caller.received;
        let mut vital = base_vital(&caller, endpoint.name);
        let refuse = |vital: &mut Vital, status: StatusCode, code: &str, message: String| {
            vital.status = status.as_u16();
            vital.error_class = Some(code.to_owned());
            vital.latency_us = elapsed_us(started);
            self.recorder.record(vital.clone());
            endpoint.dialect.error(status, "invalid_request_error", code, message)
        };
        let mut value: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let message = format!("request body is not valid JSON: {e}");
                return refuse(&mut vital, StatusCode::BAD_REQUEST, "invalid_json", message);
            }
        };
        let facts = match endpoint.dialect {
            Dialect::OpenAi => RequestFacts::from_chat_request(&value),
            Dialect::OpenAiResponses => crate::responses::request_facts(&value),
            Dialect::Anthropic => crate::anthropic::request_facts(&value),
        };
        let facts = match facts {
            Ok(facts) => facts,
            Err(e) => return refuse(&mut vital, StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
        };
        if facts.stream && !endpoint.streams {
            let message = format!("{} does not stream; remove \"stream\"", endpoint.name);
            return refuse(&mut vital, StatusCode::BAD_REQUEST, "invalid_request", message);
        }
        vital.model_requested = Some(facts.model.clone());
        vital.streamed = facts.stream;
        vital.system_prompt_sha256 = facts.system_prompt_sha256;
        vigil_services::vitals::mark_injection(&mut vital, &facts.newest_input);
        let offers_tools = value.get("tools").and_then(Value::as_array).is_some_and(|tools| !tools.is_empty());
        let call = CallFacts {
            agent_id: &caller.agent_id,
            model: &facts.model,
            endpoint: endpoint.name,
            offers_tools,
            key_id: caller.key_id.as_deref(),
            feature: caller.feature.as_deref(),
            user: caller.user.as_deref(),
        };
        if let Some(refusal) = self.policy.check(&call) {
            return self.refused(endpoint, vital, &refusal, started);
        }
        let Some(provider) = self.config.provider_for(&facts.model, endpoint.dialect.provider_kind()) else {
            let message = format!("no configured provider serves model {:?}", facts.model);
            return refuse(&mut vital, StatusCode::NOT_FOUND, "model_not_found", message);
        };
        vital.provider = provider.name.clone();

        // Ask for usage in the stream when the client did not, and drop the usage-only chunk
        // it adds on the way back, so every streamed call is measured. (Chunks then carry
        // `"usage": null`, which OpenAI's own streams also send and SDKs ignore.)
        let inject_usage = endpoint.dialect == Dialect::OpenAi && facts.stream && !facts.client_wants_stream_usage;
        if inject_usage {
            // Add to the client's stream_options rather than replace them.
            match value.get_mut("stream_options").and_then(Value::as_object_mut) {
                Some(options) => {
                    options.insert("include_usage".to_owned(), Value::Bool(true));
                }
                None => value["stream_options"] = json!({ "include_usage": true }),
            }
        }
        // A call a budget applies to is admitted with an upper bound of its cost, so it needs
        // an output cap: the client's, or one written in.
        let metered = self
            .meter
            .as_ref()
            .filter(|meter| meter.applies(&call))
            .map(|meter| (meter, output_cap(endpoint, &mut value, self.config.budget_output_tokens_default)));
        let upstream_body = match metered {
            _ if inject_usage => Bytes::from(value.to_string()),
            // Written into the client's own bytes: re-serializing the whole body cost more.
            Some((_, OutputCap { tokens, written: Some(field) })) => {
                crate::bound::with_member(&body, field, tokens).unwrap_or_else(|| Bytes::from(value.to_string()))
            }
            _ => body,
        };
        let hold = match metered {
            Some((meter, cap)) => {
                let input_ceiling = crate::bound::input_token_ceiling(&value);
                let mut cost = self.cost_bound(&facts.model, input_ceiling, facts.prompt_chars, cap.tokens);
                if let Some(why) = unseen_input(&value) {
                    cost.upper_nanos = None;
                    cost.unbounded = Some(why);
                }
                match meter.admit(&call, cost, caller.request_id.as_deref()).await {
                    Ok(hold) => hold,
                    Err(refusal) => return self.refused(endpoint, vital, &refusal, started),
                }
            }
            None => None,
        };

        let sent = Instant::now();
        let waiting = CancelGuard::hold(vital, &self.recorder, started);
        let (sent_result, retries) = self.send_resilient(provider, &caller, endpoint.path, upstream_body).await;
        let mut vital = waiting.release();
        vital.retries = retries;
        let (response, provider) = match sent_result {
            Ok(answered) => answered,
            Err(failure) => {
                vital.latency_us = elapsed_us(started);
                if let Some(hold) = hold {
                    // An open breaker sent nothing; an unreachable provider may have seen the
                    // prompt (a timeout), so its input is charged.
                    match failure {
                        Failure::CircuitOpen { .. } => hold.settle(Some(0), "circuit_open"),
                        Failure::Unreachable { .. } => hold.settle(None, "unreachable"),
                    }
                }
                let response = match failure {
                    Failure::Unreachable { provider, reason, timeout } => {
                        vital.provider = provider.clone();
                        vital.outcome = CallOutcome::Unreachable;
                        vital.status = StatusCode::BAD_GATEWAY.as_u16();
                        vital.error_class = Some(if timeout { "timeout" } else { "connect" }.to_owned());
                        let message = format!("upstream {provider} is unreachable: {reason}");
                        endpoint.dialect.error(StatusCode::BAD_GATEWAY, "api_error", "upstream_unreachable", message)
                    }
                    Failure::CircuitOpen { provider, retry_after } => {
                        vital.provider = provider.clone();
                        vital.status = StatusCode::SERVICE_UNAVAILABLE.as_u16();
                        vital.error_class = Some("circuit_open".to_owned());
                        // The provider is failing: the agent's call failed because of it.
                        vital.outcome = CallOutcome::Unreachable;
                        let secs = retry_after.as_secs().max(1);
                        let message =
                            format!("upstream {provider} is failing; its circuit breaker is open for {secs} s");
                        let mut response = openai_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "api_error",
                            "upstream_circuit_open",
                            message,
                        );
                        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                        response
                    }
                };
                self.recorder.record(vital);
                return response;
            }
        };
        vital.provider = provider.name.clone();
        let status = response.status();
        vital.status = status.as_u16();
        let answered = Instant::now();
        // Vigil's share so far: before sending, and since the provider's headers arrived.
        let before = sent.duration_since(started);

        if !facts.stream || !status.is_success() {
            let response = self.relay_whole(response, vital, hold, started, &facts, endpoint.dialect).await;
            return self.with_overhead(response, before, answered);
        }
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let relay = Relay {
            upstream: Box::pin(response.bytes_stream()),
            scanner: Scanner::new(),
            pending: VecDeque::new(),
            strip_usage: inject_usage,
            dialect: endpoint.dialect,
            done: false,
            truncated: false,
            record: Some(StreamRecord {
                vital,
                answer: Answer::default(),
                started,
                prompt_chars: facts.prompt_chars,
                recorder: self.recorder.clone(),
                prices: self.prices.clone(),
                hold,
            }),
            cut: self.governance.as_ref().map(|guard| {
                Cut::new(
                    guard.clone(),
                    OwnedFacts {
                        model: facts.model.clone(),
                        agent: caller.agent_id.to_string(),
                        key: caller.key_id.clone(),
                        feature: caller.feature.clone(),
                        user: caller.user.clone(),
                        endpoint: endpoint.name,
                    },
                )
            }),
        };
        let mut response = Response::new(Body::from_stream(relay));
        *response.status_mut() = status;
        let content_type = content_type.unwrap_or(HeaderValue::from_static("text/event-stream"));
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        self.with_overhead(response, before, answered)
    }

    /// Answers a refused call in its dialect's error shape and records it.
    fn refused(&self, endpoint: Endpoint, mut vital: Vital, refusal: &Refusal, started: Instant) -> Response {
        let (status, kind) = match refusal.kind {
            RefusalKind::Denied => (StatusCode::FORBIDDEN, "permission_error"),
            RefusalKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            RefusalKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "permission_error"),
        };
        vital.status = status.as_u16();
        vital.error_class = Some(format!("policy:{}", refusal.code));
        vital.latency_us = elapsed_us(started);
        self.recorder.record(vital);
        let mut response = endpoint.dialect.error(status, kind, refusal.code, refusal.reason.clone());
        if let Some(secs) = refusal.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    /// The most a call can cost, from the price table: its input token ceiling (see
    /// [`crate::bound`]) at the dearest input rate (cache writes cost more than plain
    /// input), plus the output cap at the output rate; and what its input alone costs,
    /// estimated.
    fn cost_bound(&self, model: &str, input_ceiling: u64, prompt_chars: usize, output_cap: u64) -> CostBound {
        let Some(price) = self.prices.price_for(model, Timestamp::now()) else {
            return CostBound { upper_nanos: None, input_nanos: 0, unbounded: Some("its model has no price") };
        };
        let per_mtok = |tokens: u64, rate: u64| u128::from(tokens) * u128::from(rate) / 1_000_000;
        let input_rate = price.input.max(price.cache_write).max(price.cache_write_1h);
        let upper = per_mtok(input_ceiling, input_rate) + per_mtok(output_cap, price.output);
        let input_tokens = estimate_usage(prompt_chars, 0).input_tokens.min(input_ceiling);
        let nanos = |value: u128| i64::try_from(value).unwrap_or(i64::MAX);
        CostBound {
            upper_nanos: Some(nanos(upper)),
            input_nanos: nanos(per_mtok(input_tokens, price.input)),
            unbounded: None,
        }
    }

    /// Records and reports Vigil's own time on a call: `before` (parsing, routing) plus the
    /// time since the provider answered (reading, measuring, relaying a whole answer; for
    /// streams, setting up the relay). Time spent waiting for the provider is excluded.
    fn with_overhead(&self, mut response: Response, before: std::time::Duration, answered: Instant) -> Response {
        let overhead = before + answered.elapsed();
        self.overhead.observe(overhead.as_secs_f64());
        let micros = u64::try_from(overhead.as_micros()).unwrap_or(u64::MAX);
        response.headers_mut().insert(OVERHEAD_HEADER, HeaderValue::from(micros));
        response
    }

    /// `GET /v1/models`: the union of every OpenAI-kind provider's model list. A provider
    /// that fails is skipped (and logged); if all fail, 502.
    pub async fn models(&self, caller: &Caller) -> Response {
        let mut data: Vec<Value> = Vec::new();
        let mut reached = false;
        for provider in self.config.providers.iter().filter(|p| p.kind == ProviderKind::Openai) {
            let upstream = &self.upstreams[&provider.name];
            let mut request = upstream.client.get(upstream.url(MODELS_PATH)).timeout(provider.timeout);
            // Listing asks every provider, so only configured keys are used here.
            if let Some(key) = self.key_for(provider, caller, false) {
                request = request.bearer_auth(key);
            }
            let listed = match request.send().await {
                Ok(response) if response.status().is_success() => read_capped(response).await,
                Ok(response) => Err(format!("status {}", response.status())),
                Err(e) => Err(without_url(&e)),
            };
            match listed.map(|bytes| serde_json::from_slice::<Value>(&bytes)) {
                Ok(Ok(list)) => {
                    reached = true;
                    data.extend(list.get("data").and_then(Value::as_array).into_iter().flatten().cloned());
                }
                Ok(Err(e)) => tracing::warn!(provider = %provider.name, error = %e, "model list is not JSON"),
                Err(e) => tracing::warn!(provider = %provider.name, error = %e, "could not list models"),
            }
        }
        if !reached && !self.config.providers.is_empty() {
            return openai_error(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "upstream_unreachable",
                "no provider answered the model list",
            );
        }
        axum::Json(json!({ "object": "list", "data": data })).into_response()
    }

    /// The key to send to `provider`. A caller's own key (with passthrough on) goes only to
    /// the provider its model was routed to, never to a fallback or any other provider.
    fn key_for<'a>(&'a self, provider: &'a ProviderConfig, caller: &'a Caller, routed: bool) -> Option<&'a str> {
        match (&caller.client_key, self.config.passthrough_client_key && routed) {
            (Some(own), true) => Some(own.as_str()),
            _ => provider.api_key.as_ref().map(|k| k.expose()),
        }
    }

    /// Sends to `primary`, retrying connection errors, 429 and 5xx with backoff, then each
    /// fallback in turn; skips providers whose breaker is open. A retryable answer from the
    /// last candidate is returned as it is, to be relayed faithfully. Returns the answer and
    /// the provider that gave it, plus the number of extra attempts made.
    async fn send_resilient<'a>(
        &'a self,
        primary: &'a ProviderConfig,
        caller: &Caller,
        path: &str,
        body: Bytes,
    ) -> (Result<(reqwest::Response, &'a ProviderConfig), Failure>, u32) {
        let mut chain = vec![primary];
        while let Some(next) = chain.last().and_then(|p| p.fallback.as_deref()).and_then(|n| self.config.provider(n)) {
            if chain.iter().any(|p| p.name == next.name) || chain.len() >= FALLBACK_CHAIN_MAX {
                break;
            }
            chain.push(next);
        }
        let mut extra_attempts = 0u32;
        let mut failure = None;
        for (position, provider) in chain.iter().copied().enumerate() {
            let last_candidate = position + 1 == chain.len();
            let mut backoff = self.config.retry_backoff;
            for attempt in 0..=self.config.retries {
                let now = Instant::now();
                let Some(admission) = self.breaker(provider, |b| b.admit(now)) else {
                    let retry_after = self.breaker(provider, |b| b.retry_after(now));
                    failure.get_or_insert(Failure::CircuitOpen { provider: provider.name.clone(), retry_after });
                    break;
                };
                if attempt > 0 || position > 0 {
                    extra_attempts += 1;
                }
                let more = attempt < self.config.retries;
                // If this future is dropped mid-send (the client went away) while holding a
                // half-open breaker's trial, the next call must be allowed to try instead.
                let trial = AbandonOnDrop { gateway: self, provider, armed: admission == Admission::Trial };
                let sent = self.send(provider, caller, position == 0, path, body.clone()).await;
                trial.disarm();
                match sent {
                    Err(e) => {
                        self.breaker(provider, |b| b.failure(Instant::now()));
                        let connect = e.is_connect();
                        failure = Some(Failure::Unreachable {
                            provider: provider.name.clone(),
                            reason: without_url(&e),
                            timeout: e.is_timeout(),
                        });
                        // Only a failed connection is safe to repeat: after a timeout or a
                        // broken answer the provider may have done (and billed) the work.
                        if !connect {
                            return (Err(failure.unwrap_or_else(|| unreachable!("just set"))), extra_attempts);
                        }
                    }
                    Ok(response) if is_retryable(response.status()) => {
                        if response.status().is_server_error() {
                            self.breaker(provider, |b| b.failure(Instant::now()));
                        } else if admission == Admission::Trial {
                            // A 429 says "busy", not "broken": the trial found the upstream alive.
                            self.breaker(provider, |b| b.success());
                        }
                        if !more && last_candidate {
                            return (Ok((response, provider)), extra_attempts);
                        }
                        if let Some(wait) = retry_after(response.headers()) {
                            backoff = wait;
                        }
                    }
                    Ok(response) => {
                        self.breaker(provider, |b| b.success());
                        return (Ok((response, provider)), extra_attempts);
                    }
                }
                if more {
                    tokio::time::sleep(backoff.min(RETRY_AFTER_MAX)).await;
                    backoff = backoff.saturating_mul(2).min(RETRY_AFTER_MAX);
                }
            }
        }
        let failure = failure.unwrap_or(Failure::Unreachable {
            provider: primary.name.clone(),
            reason: "no attempt was possible".to_owned(),
            timeout: false,
        });
        (Err(failure), extra_attempts)
    }

    fn breaker<T>(&self, provider: &ProviderConfig, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mutex = &self.breakers[&provider.name];
        f(&mut mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    async fn send(
        &self,
        provider: &ProviderConfig,
        caller: &Caller,
        routed: bool,
        path: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let upstream = &self.upstreams[&provider.name];
        let mut request = upstream
            .client
            .post(upstream.url(path))
            .timeout(provider.timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        let key = self.key_for(provider, caller, routed);
        match provider.kind {
            ProviderKind::Openai => {
                if let Some(key) = key {
                    request = request.bearer_auth(key);
                }
            }
            ProviderKind::Anthropic => {
                if let Some(key) = key {
                    request = request.header("x-api-key", key);
                }
                let version = caller.anthropic_version.as_deref().unwrap_or(ANTHROPIC_VERSION_DEFAULT);
                request = request.header("anthropic-version", version);
                if let Some(beta) = &caller.anthropic_beta {
                    request = request.header("anthropic-beta", beta);
                }
            }
        }
        request.send().await
    }

    async fn relay_whole(
        &self,
        response: reqwest::Response,
        vital: Vital,
        hold: Option<Hold>,
        started: Instant,
        facts: &RequestFacts,
        dialect: Dialect,
    ) -> Response {
        let status = response.status();
        let relayed = relayed_headers(response.headers());
        let reading = CancelGuard::hold(vital, &self.recorder, started);
        let read = read_capped(response).await;
        let mut vital = reading.release();
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(message) => {
                vital.status = StatusCode::BAD_GATEWAY.as_u16();
                vital.outcome = CallOutcome::Interrupted;
                vital.error_class = Some("upstream_body".to_owned());
                vital.latency_us = elapsed_us(started);
                if let Some(hold) = hold {
                    hold.settle(None, "interrupted");
                }
                self.recorder.record(vital);
                return dialect.error(StatusCode::BAD_GATEWAY, "api_error", "upstream_interrupted", message);
            }
        };
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            let answer = match (dialect, parsed.as_ref()) {
                (Dialect::OpenAi, Some(body)) => Answer::from_completion(body),
                (Dialect::OpenAiResponses, Some(body)) => crate::responses::answer_from_response(body),
                (Dialect::Anthropic, Some(body)) => crate::anthropic::answer_from_message(body),
                (_, None) => Answer::default(),
            };
            vital.outcome = CallOutcome::Ok;
            finish_vital(&mut vital, &answer, facts.prompt_chars, true, &self.prices);
            if let Some(hold) = hold {
                hold.settle(settled_cost(&vital), "ok");
            }
        } else {
            vital.outcome = CallOutcome::UpstreamError;
            let class = parsed.as_ref().and_then(|v| v.pointer("/error/type")).and_then(Value::as_str);
            vital.error_class = Some(class.map_or_else(|| format!("http_{}", status.as_u16()), str::to_owned));
            // Providers do not bill a call they refused.
            if let Some(hold) = hold {
                hold.settle(Some(0), "upstream_error");
            }
        }
        vital.latency_us = elapsed_us(started);
        self.recorder.record(vital);
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = status;
        out.headers_mut().extend(relayed);
        out
    }
}

/// Upstream answer headers passed on to the client: the content type, and what SDKs use to
/// back off and to report (`Retry-After`, `x-ratelimit-*`; the provider's own request id as
/// `x-upstream-request-id`, since `x-request-id` is Vigil's).
fn relayed_headers(upstream: &axum::http::HeaderMap) -> axum::http::HeaderMap {
    let mut out = axum::http::HeaderMap::new();
    for (name, value) in upstream {
        let name_text = name.as_str();
        if name == header::CONTENT_TYPE || name == header::RETRY_AFTER || name_text.starts_with("x-ratelimit-") {
            out.append(name.clone(), value.clone());
        } else if name_text == "x-request-id" {
            out.insert(axum::http::HeaderName::from_static("x-upstream-request-id"), value.clone());
        }
    }
    out
}

/// Holds a call's vital while waiting on the provider, and records it as `cancelled` if
/// that wait is dropped (the client went away); `release` hands it back once the wait ends.
struct CancelGuard<'a> {
    vital: Option<Vital>,
    recorder: &'a Recorder,
    started: Instant,
}

impl<'a> CancelGuard<'a> {
    fn hold(vital: Vital, recorder: &'a Recorder, started: Instant) -> Self {
        CancelGuard { vital: Some(vital), recorder, started }
    }

    fn release(mut self) -> Vital {
        self.vital.take().unwrap_or_else(|| unreachable!("a held vital is taken only here or in drop"))
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut vital) = self.vital.take() {
            vital.outcome = CallOutcome::Cancelled;
            vital.error_class = Some("client_gone".to_owned());
            vital.latency_us = elapsed_us(self.started);
            self.recorder.record(vital);
        }
    }
}

/// Releases a breaker's half-open trial if the attempt is dropped before it has an outcome.
struct AbandonOnDrop<'a> {
    gateway: &'a Gateway,
    provider: &'a ProviderConfig,
    armed: bool,
}

impl AbandonOnDrop<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gateway.breaker(self.provider, Breaker::abandon);
        }
    }
}

/// Longest fallback chain followed (primary included).
const FALLBACK_CHAIN_MAX: usize = 4;
/// Longest wait honoured from an upstream's Retry-After.
const RETRY_AFTER_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Why no provider answered.
#[derive(Debug)]
enum Failure {
    Unreachable { provider: String, reason: String, timeout: bool },
    CircuitOpen { provider: String, retry_after: std::time::Duration },
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// An upstream's `Retry-After` in seconds (the HTTP-date form is not used by providers).
fn retry_after(headers: &axum::http::HeaderMap) -> Option<std::time::Duration> {
    let secs: f64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    // Clamped before converting: a huge value would overflow a Duration.
    Some(std::time::Duration::from_secs_f64(secs.min(RETRY_AFTER_MAX.as_secs_f64())))
}

/// A call's output cap, and the field Vigil wrote it into, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OutputCap {
    tokens: u64,
    written: Option<&'static str>,
}

/// The request's output cap in the field its API reads (`max_completion_tokens` or the
/// older `max_tokens` for chat, `max_output_tokens` for responses, `max_tokens` for
/// messages), writing `default` into the request when it names none. Embeddings produce
/// no output tokens.
fn output_cap(endpoint: Endpoint, value: &mut Value, default: u64) -> OutputCap {
    let fields: &[&str] = match endpoint.name {
        "chat.completions" => &["max_completion_tokens", "max_tokens"],
        "responses" => &["max_output_tokens"],
        "messages" => &["max_tokens"],
        _ => return OutputCap { tokens: 0, written: None },
    };
    // Each of `n` choices may write up to the cap.
    let choices = value.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
    if let Some(tokens) = fields.iter().find_map(|f| value.get(*f).and_then(Value::as_u64)) {
        return OutputCap { tokens: tokens.saturating_mul(choices), written: None };
    }
    if let Some(object) = value.as_object_mut() {
        object.insert(fields[0].to_owned(), Value::from(default));
    }
    OutputCap { tokens: default.saturating_mul(choices), written: Some(fields[0]) }
}

/// Why a request's input cannot be bounded from its bytes: it names input stored with the
/// provider (an earlier response or conversation, an uploaded file), billed but unseen.
fn unseen_input(value: &Value) -> Option<&'static str> {
    if ["previous_response_id", "conversation"].iter().any(|f| value.get(*f).is_some_and(|v| !v.is_null())) {
        return Some("it continues a conversation the provider keeps, whose input Vigil cannot see");
    }
    let text = value.get("input").or_else(|| value.get("messages")).map(Value::to_string).unwrap_or_default();
    text.contains("\"file_id\"").then_some("it names an uploaded file, whose input Vigil cannot see")
}

/// What a finished call is charged against its budgets: the larger of a cost the caller
/// reported and the price table's (so under-reporting cannot stretch a budget); `None`
/// when neither is known.
fn settled_cost(vital: &Vital) -> Option<i64> {
    match (vital.cost_nanos, vital.table_cost_nanos) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn base_vital(caller: &Caller, endpoint: &str) -> Vital {
    Vital {
        request_id: caller.request_id.clone(),
        agent_type: caller.agent_type.clone(),
        cost_nanos: caller.reported_cost_nanos,
        cost_reported: caller.reported_cost_nanos.is_some(),
        feature: caller.feature.clone(),
        user: caller.user.clone(),
        client_ip: caller.client_ip.map(|ip| ip.to_string()),
        ..Vital::received(Timestamp::now(), caller.agent_id.clone(), endpoint)
    }
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A reqwest error without its URL (URLs may carry credentials): the kind, then the chain
/// of causes.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer broke off"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

async fn read_capped(mut response: reqwest::Response) -> Result<Bytes, String> {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > UPSTREAM_BODY_BYTES_MAX {
                    return Err(format!("upstream answer exceeds {UPSTREAM_BODY_BYTES_MAX} bytes"));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(out)),
            Err(e) => return Err(format!("upstream answer broke off: {}", without_url(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_debug_never_shows_its_provider_key() {
        let caller = Caller {
            received: Instant::now(),
            request_id: None,
            agent_id: "a".into(),
            agent_type: "t".into(),
            key_id: None,
            client_key: Some("sk-secret-provider-key".into()),
            feature: None,
            user: None,
            client_ip: None,
            anthropic_version: None,
            anthropic_beta: None,
            reported_cost_nanos: None,
        };
        let shown = format!("{caller:?}");
        assert!(!shown.contains("sk-secret") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn the_output_bound_counts_every_choice_and_input_kept_upstream_cannot_be_bounded() {
        let mut asked = json!({ "model": "m", "n": 3, "max_tokens": 100 });
        assert_eq!(output_cap(CHAT_COMPLETIONS, &mut asked, 4096), OutputCap { tokens: 300, written: None });
        let mut uncapped = json!({ "model": "m", "n": 2 });
        let cap = output_cap(CHAT_COMPLETIONS, &mut uncapped, 50);
        assert_eq!(cap, OutputCap { tokens: 100, written: Some("max_completion_tokens") });
        assert_eq!(uncapped["max_completion_tokens"], 50, "the cap is per choice");
        assert!(unseen_input(&json!({ "input": "hi", "previous_response_id": "resp_1" })).is_some());
        assert!(unseen_input(&json!({ "input": [{ "type": "input_file", "file_id": "file-1" }] })).is_some());
        assert!(unseen_input(&json!({ "messages": [{ "role": "user", "content": "hi" }] })).is_none());
    }

    #[test]
    fn retry_after_is_clamped_and_never_panics() {
        let mut headers = axum::http::HeaderMap::new();
        for (text, expected) in [
            ("2", Some(std::time::Duration::from_secs(2))),
            ("1e20", Some(RETRY_AFTER_MAX)),
            ("-1", None),
            ("NaN", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ] {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(text));
            assert_eq!(retry_after(&headers), expected, "{text}");
        }
    }

    #[test]
    fn only_safe_headers_are_relayed() {
        let mut upstream = axum::http::HeaderMap::new();
        upstream.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        upstream.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("9"));
        upstream.insert("x-request-id", HeaderValue::from_static("req_123"));
        upstream.insert(header::SET_COOKIE, HeaderValue::from_static("session=secret"));
        let relayed = relayed_headers(&upstream);
        assert_eq!(relayed.get("x-upstream-request-id").map(|v| v.as_bytes()), Some(&b"req_123"[..]));
        assert!(relayed.contains_key("x-ratelimit-remaining-requests"));
        assert!(!relayed.contains_key(header::SET_COOKIE) && !relayed.contains_key("x-request-id"));
    }
}
