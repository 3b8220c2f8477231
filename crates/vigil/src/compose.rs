//! The composition root: every service a running Vigil needs, started and wired together.
//!
//! The gateway's recorder writes vitals and taps each one to the immune service, whose guard
//! the gateway obeys; healing actions run as tracked tasks and reach agents through the
//! reqwest sender; the harness keeps its records and blobs through the storage ports, and
//! runs a dead process left behind are marked crashed. The server then only routes HTTP to
//! these.

use std::sync::Arc;

use anyhow::Context;
use vigil_core::config::Config;
use vigil_core::vitals::Vital;
use vigil_server::metrics::Metrics;
use vigil_server::{App, BuildInfo, Services};
use vigil_services::immune::Immune;
use vigil_services::tasks::Tasks;
use vigil_store::background::{Background, Priority};
use vigil_store::ports::{Blobs, Storage};
use vigil_store::{BlobStore, Store};

/// Starts the services and builds the server over them (inside a tokio runtime).
pub async fn app(
    config: Config,
    store: Store,
    blobs: BlobStore,
    harness: vigil_harness::HarnessOptions,
    build: BuildInfo,
) -> anyhow::Result<App> {
    let storage: Arc<dyn Storage> = Arc::new(store.clone());
    let blobs: Arc<dyn Blobs> = Arc::new(blobs);
    let metrics = Metrics::new(build);
    let writer = |name: &str, priority| Background::start(name, priority).with_context(|| format!("starting {name}"));
    let (recorder, vitals_writer) = vigil_gateway::Recorder::start(
        Arc::new(store.on_lane(writer("vigil-vitals", Priority::Lower)?)),
        config.gateway.vitals_queue,
        metrics.vitals_dropped.clone(),
    );
    let tasks = Tasks::new();
    // Every recorded call is also judged by the immune system, which the gateway obeys.
    // Its log and snapshots are written on a lane of their own, in order.
    let immune_store = Arc::new(store.on_lane(writer("vigil-immune", Priority::Normal)?));
    let immune = Immune::start(
        (immune_store.clone(), immune_store),
        config.immune.clone(),
        config.egress.clone(),
        Arc::new(vigil_server::outbound::ReqwestSender),
        metrics.immune_dropped.clone(),
        &tasks,
    )
    .await?;
    let tap = immune.clone();
    let recorder = recorder.with_tap(Arc::new(move |vital: &Vital| tap.observe(vital)));
    let mut gateway = vigil_gateway::Gateway::new(config.gateway.clone(), recorder, metrics.gateway_overhead.clone())?;
    gateway.add_guard(immune.guard());
    // Governance: the policy in force judges every call too, naming its rule and version.
    let models = vigil_gateway::price::served_models(&config.gateway);
    let policies = vigil_services::governance::PolicyService::new(storage.clone(), storage.clone(), models);
    policies.refresh().await.context("reading the policy in force")?;
    gateway.set_governance(policies.guard());
    // Budgets: every call one applies to is admitted against it before it is sent.
    let timings = vigil_services::budgets::MeterTimings {
        admission: metrics.budget_admission.clone(),
        settlement: metrics.budget_settlement.clone(),
    };
    // Budgets are decided in memory and written behind, every few milliseconds.
    let budgets = vigil_store::MemoryBudgets::start(store.clone()).context("starting the budget writer")?;
    let budgets: Arc<dyn vigil_store::ports::Budgets> = Arc::new(budgets);
    let meter = vigil_services::budgets::Meter::new(
        policies.guard(),
        budgets.clone(),
        config.gateway.reservation_lease,
        timings,
    );
    meter.start(&tasks);
    gateway.set_meter(Arc::new(meter));
    // Runs left behind by a process that died are crashed, and can be retried.
    let harness = vigil_harness::Harness::new(harness, storage.clone(), blobs.clone()).await?;
    match harness.recover().await {
        Ok(crashed) if !crashed.is_empty() => {
            tracing::warn!(?crashed, "runs left running by a dead process are marked crashed")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not check for crashed runs"),
    }
    let services = Services { gateway, harness, immune, policies, budgets, tasks, vitals_writer };
    // The server reaches records and blobs through the storage ports only.
    Ok(App::new(config, storage, blobs, services, metrics, build).await?)
}
