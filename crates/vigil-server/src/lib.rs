//! Vigil's HTTP API.
//!
//! [`routes::routes`] declares every endpoint once; [`App::new`] turns that table into an
//! axum `Router`, wrapped by two middlewares: [`observe`] (request id, tracing span,
//! deadline, metrics) and [`gate`] (identity, rate limit, access check, audit). Handlers in
//! [`handlers`] follow the conventions in [`api`]: envelopes with provenance, typed errors,
//! cursor pages. [`openapi`] renders the same table as an OpenAPI 3.1 document.
//!
//! [`serve`] runs the app on a listener ([`connections`] caps and times what clients
//! control) until a shutdown signal, then stops accepting, lets in-flight requests finish
//! (up to the configured grace period), and closes the store.

pub mod api;
pub mod auth;
pub mod connections;
pub mod gate;
pub mod handlers;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod origin;
pub mod outbound;
pub mod routes;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use vigil_core::config::{Config, Mode};
use vigil_store::StoreError;
use vigil_store::ports::{Blobs, Storage};

pub use state::{AppState, BuildInfo};

use crate::api::ApiError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "production mode needs an admin key: create one with `vigil keys create --name admin --scope admin`, \
         or set VIGIL_ADMIN_KEY_FILE (or VIGIL_ADMIN_KEY)"
    )]
    NoAdminKey,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether a path belongs to the provider-compatible API (`/v1/...`), whose clients are
/// provider SDKs and get errors in the provider's shape.
pub(crate) fn is_provider_path(path: &str) -> bool {
    path.starts_with("/v1/")
}

async fn unknown_route(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if is_provider_path(uri.path()) {
        let message = format!("Unknown request URL: {method} {}. See /api/v1/openapi.json.", uri.path());
        return vigil_gateway::openai_error(
            axum::http::StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            message,
        );
    }
    ApiError::not_found("no such route; see /api/v1/openapi.json").into_response()
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    if is_provider_path(uri.path()) {
        let message = format!("{method} is not supported on {}", uri.path());
        return vigil_gateway::openai_error(status, "invalid_request_error", "method_not_allowed", message);
    }
    ApiError::new(status, "method_not_allowed", "this route does not accept that method; see /api/v1/openapi.json")
        .into_response()
}

/// How often idle rate-limit buckets are dropped.
const LIMITER_PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// The services a server answers with, started and wired together by the composition root
/// (the `vigil` binary), which also keeps the metrics they count into.
#[derive(Debug)]
pub struct Services {
    pub gateway: vigil_gateway::Gateway,
    pub harness: vigil_harness::Harness,
    pub immune: Arc<vigil_services::immune::Immune>,
    /// Each tenant's policy document and its versions.
    pub policies: vigil_services::governance::PolicyService,
    /// Budgets as the gateway's meter admits against them (decided in memory for SQLite).
    pub budgets: Arc<dyn vigil_store::ports::Budgets>,
    pub tasks: vigil_services::tasks::Tasks,
    /// The vitals writer the gateway's recorder feeds, drained at shutdown before the store
    /// closes.
    pub vitals_writer: tokio::task::JoinHandle<()>,
}

/// A ready-to-serve application.
#[derive(Debug)]
pub struct App {
    pub state: AppState,
    pub router: Router,
    /// The vitals writer, drained at shutdown before the store closes.
    vitals_writer: tokio::task::JoinHandle<()>,
}

impl App {
    /// Builds the router over `services`. In production mode, refuses to start without an
    /// admin key.
    pub async fn new(
        config: Config,
        store: Arc<dyn Storage>,
        blobs: Arc<dyn Blobs>,
        services: Services,
        metrics: metrics::Metrics,
        build: BuildInfo,
    ) -> Result<App, ServerError> {
        let unguarded = config.mode == Mode::Production && config.admin_key.is_none();
        if unguarded && !store.has_active_admin_key().await? {
            return Err(ServerError::NoAdminKey);
        }
        let routes = routes::routes();
        let specs: Vec<_> = routes.iter().map(|r| r.spec.clone()).collect();
        let Services { gateway, harness, immune, policies, budgets, tasks, vitals_writer } = services;
        let services = state::Services { gateway, harness, immune, policies, budgets, tasks };
        let state = AppState::new(config, store, blobs, build, &specs, metrics, services);
        state.keys.refresh(state.store.as_ref()).await?;
        let body_limit = state.config.http.max_body_bytes;

        let mut router = Router::new();
        for route in routes {
            router = router.route(route.spec.path, route.handler);
        }
        let router = router
            .fallback(unknown_route)
            .method_not_allowed_fallback(wrong_method)
            .layer(from_fn_with_state(state.clone(), gate::gate))
            .layer(from_fn_with_state(state.clone(), observe::observe))
            .layer(DefaultBodyLimit::max(body_limit))
            .with_state(state.clone());
        Ok(App { state, router, vitals_writer })
    }
}

/// Periodic upkeep, until shutdown: picks up keys and policies changed by other processes and
/// prunes idle rate-limit buckets.
fn spawn_background(state: &AppState) {
    let upkeep = state.clone();
    state.tasks.spawn_until_shutdown("upkeep", async move {
        let state = upkeep;
        let mut keys_tick = tokio::time::interval(auth::KEYS_POLL_INTERVAL);
        let mut prune_tick = tokio::time::interval(LIMITER_PRUNE_INTERVAL);
        loop {
            tokio::select! {
                _ = keys_tick.tick() => {
                    if let Err(e) = state.refresh_keys().await {
                        tracing::warn!(error = ?e, "could not refresh the key cache");
                    }
                    // A policy saved by another process comes into force here too.
                    if let Err(e) = state.policies.refresh().await {
                        tracing::warn!(error = %e, "could not read the policy in force");
                    }
                }
                _ = prune_tick.tick() => {
                    if let Some(limiter) = &state.limiter {
                        limiter.prune();
                    }
                    state.gateway.prune();
                    state.policies.guard().prune();
                }
            }
        }
    });
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains and closes the store.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let App { state, router, vitals_writer } = app;
    let grace = state.config.http.shutdown_grace;

    spawn_background(&state);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = stop_tx.send(true);
    };
    connections::raise_open_file_limit(state.config.http.max_connections);
    let accepting = connections::accept_loop(listener, router, state.clone(), stop_rx.clone());
    let server = async {
        tokio::join!(signal, accepting);
    };
    let deadline = async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "in-flight requests did not finish in time; closing anyway");
        }
    }

    // Whatever ended serving, end the tasks (runs and actions get the grace period too), drain
    // the vitals queue and close the store before returning.
    state.tasks.shutdown(grace).await;
    state.gateway.recorder().shutdown();
    if let Err(e) = vitals_writer.await {
        tracing::error!(error = %e, "vitals writer failed");
    }
    state.immune.shutdown().await;
    state.store.close().await?;
    tracing::info!("store flushed and closed");
    Ok(())
}

#[cfg(test)]
mod tests {

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use tower::ServiceExt;
    use vigil_store::StoreOptions;
    use vigil_store::background::{Background, Priority};

    use super::*;
    use crate::routes::RouteSpec;

    async fn app() -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = vigil_store::Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("store");
        let blobs = vigil_store::BlobStore::open(&dir.path().join("blobs"), 1 << 20).expect("blobs");
        let build = BuildInfo { version: "test", git_sha: "test" };
        let options = vigil_harness::HarnessOptions {
            data_dir: dir.path().to_owned(),
            plugins_dir: dir.path().join("plugins"),
            vigil_exe: std::env::current_exe().expect("exe"),
            vigil_version: "0.1.0".to_owned(),
            parallelism: 1,
            strict: false,
            stdout_max_bytes: 1 << 20,
            stderr_max_bytes: 1 << 20,
        };
        let harness = vigil_harness::Harness::new(options, Arc::new(store.clone()), Arc::new(blobs.clone()))
            .await
            .expect("harness");
        // What the binary composes, with the immune system switched off.
        let mut config = Config::default();
        config.immune.enabled = false;
        let metrics = metrics::Metrics::new(build);
        let writer = |name: &str| Background::start(name, Priority::Normal).expect("writer");
        let (recorder, vitals_writer) = vigil_gateway::Recorder::start(
            Arc::new(store.on_lane(writer("test-vitals"))),
            64,
            metrics.vitals_dropped.clone(),
        );
        let tasks = vigil_services::tasks::Tasks::new();
        let immune_store = Arc::new(store.on_lane(writer("test-immune")));
        let immune = vigil_services::immune::Immune::start(
            (immune_store.clone(), immune_store),
            config.immune.clone(),
            config.egress.clone(),
            Arc::new(outbound::ReqwestSender),
            metrics.immune_dropped.clone(),
            &tasks,
        )
        .await
        .expect("immune");
        let gateway = vigil_gateway::Gateway::new(config.gateway.clone(), recorder, metrics.gateway_overhead.clone())
            .expect("gateway");
        let shared: Arc<vigil_store::Store> = Arc::new(store.clone());
        let policies = vigil_services::governance::PolicyService::new(shared.clone(), shared.clone(), Vec::new());
        let services = Services { gateway, harness, immune, policies, budgets: shared, tasks, vitals_writer };
        let app = App::new(config, Arc::new(store), Arc::new(blobs), services, metrics, build).await.expect("app");
        (dir, app)
    }

    /// The router serves exactly the table, and the OpenAPI document describes exactly the
    /// table: a route cannot be registered without being documented.
    #[tokio::test]
    async fn every_registered_route_is_served_and_documented() {
        let (_dir, app) = app().await;
        let doc = &app.state.openapi;
        let specs: Vec<RouteSpec> = routes::routes().into_iter().map(|r| r.spec).collect();
        let documented: usize =
            doc["paths"].as_object().map_or(0, |p| p.values().filter_map(|m| m.as_object()).map(|m| m.len()).sum());
        assert_eq!(documented, specs.len(), "the document has an operation per route, no more");

        for spec in &specs {
            let method = spec.method.as_str().to_ascii_lowercase();
            let op = &doc["paths"][openapi::document_path(spec.path)][&method];
            assert_eq!(op["operationId"], spec.operation, "{} {} missing from OpenAPI", spec.method, spec.path);

            let uri = spec.path.replace("{id}", "0000000000000000");
            let mut req = Request::builder().method(spec.method.clone()).uri(uri).body(Body::empty()).expect("request");
            req.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
            let response = app.router.clone().oneshot(req).await.expect("infallible");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("no such route") && !text.contains("method_not_allowed"),
                "{} {} is not routed: {text}",
                spec.method,
                spec.path
            );
        }
    }
}
