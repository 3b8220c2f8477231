//! [`AppState`]: what every handler and middleware shares.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::http::Method;
use vigil_core::config::Config;
use vigil_core::digest::Sha256Digest;
use vigil_store::ports::{Blobs, Storage};

use crate::auth::KeyCache;
use crate::metrics::Metrics;
use crate::routes::RouteSpec;
use vigil_services::limit::KeyedLimiter;

/// Facts about the binary, supplied by the binary crate (which knows its git revision).
#[derive(Clone, Copy, Debug)]
pub struct BuildInfo {
    pub version: &'static str,
    pub git_sha: &'static str,
}

/// The engines the handlers drive: the gateway (model calls), the harness (runs) and the
/// immune system (agents' health).
#[derive(Debug)]
pub(crate) struct Services {
    pub gateway: vigil_gateway::Gateway,
    pub harness: vigil_harness::Harness,
    pub immune: Arc<vigil_services::immune::Immune>,
    pub policies: vigil_services::governance::PolicyService,
    pub budgets: Arc<dyn vigil_store::ports::Budgets>,
    pub tasks: vigil_services::tasks::Tasks,
}

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    /// Every record, through the storage ports.
    pub store: Arc<dyn Storage>,
    pub blobs: Arc<dyn Blobs>,
    pub build: BuildInfo,
    pub metrics: Metrics,
    /// The per-caller rate limit (`rate_limit`), keyed by key id or client address.
    pub limiter: Option<KeyedLimiter>,
    /// Hash of the bootstrap admin key from the environment, compared in constant time.
    pub env_admin_key: Option<Sha256Digest>,
    pub keys: KeyCache,
    pub gateway: vigil_gateway::Gateway,
    pub harness: vigil_harness::Harness,
    pub immune: Arc<vigil_services::immune::Immune>,
    pub policies: vigil_services::governance::PolicyService,
    /// Budgets as the gateway's meter admits against them.
    pub budgets: Arc<dyn vigil_store::ports::Budgets>,
    /// Long-lived tasks (runs, healing actions, upkeep), ended at shutdown.
    pub tasks: vigil_services::tasks::Tasks,
    /// The last readiness result and when it was taken (see `handlers::health::ready`).
    pub readiness: tokio::sync::Mutex<Option<(Instant, Vec<crate::handlers::health::Check>)>>,
    pub started: Instant,
    /// The OpenAPI document, built once at start.
    pub openapi: serde_json::Value,
    specs: HashMap<&'static str, Vec<RouteSpec>>,
}

impl AppState {
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn Storage>,
        blobs: Arc<dyn Blobs>,
        build: BuildInfo,
        specs: &[RouteSpec],
        metrics: Metrics,
        services: Services,
    ) -> Self {
        let Services { gateway, harness, immune, policies, budgets, tasks } = services;
        let limiter = config.rate_limit.map(|r| KeyedLimiter::per_second(r.per_second, r.burst));
        let env_admin_key = config.admin_key.as_ref().map(|k| Sha256Digest::of(k.expose().as_bytes()));
        AppState(Arc::new(Shared {
            metrics,
            gateway,
            harness,
            immune,
            policies,
            budgets,
            tasks,
            openapi: crate::openapi::document(specs, build.version),
            specs: specs.iter().fold(HashMap::new(), |mut map, spec| {
                map.entry(spec.path).or_insert_with(Vec::new).push(spec.clone());
                map
            }),
            config,
            store,
            blobs,
            build,
            limiter,
            env_admin_key,
            keys: KeyCache::default(),
            readiness: tokio::sync::Mutex::new(None),
            started: Instant::now(),
        }))
    }

    /// Reloads the key cache if keys changed; call after creating or revoking one.
    pub async fn refresh_keys(&self) -> Result<(), crate::api::ApiError> {
        Ok(self.keys.refresh(self.store.as_ref()).await?)
    }

    /// The route declared for this method and matched path, if any.
    /// HEAD requests are answered by the GET handler, so they resolve to the GET route.
    pub fn route(&self, method: &Method, matched_path: &str) -> Option<&RouteSpec> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.specs.get(matched_path)?.iter().find(|spec| spec.method == method)
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
