//! The immune system at work: the pure [`Engine`] driven by one task, its inputs logged,
//! its state snapshotted, and its decisions carried out.
//!
//! Every vital (from the gateway's recorder tap and from `/api/v1/ingest`) becomes an
//! observation on a bounded queue (full: dropped and counted, never slowing a call).
//! Operator commands and executor results travel the same queue, so the engine sees one
//! ordered stream. The task stamps each input with the time and applies it. Lifecycle
//! transitions reach [`ImmuneGuard`], the gateway's [`CallGuard`], in the same step, under
//! the engine's lock, so the state the API shows is the state the gateway enforces: it
//! refuses the calls of draining, quarantined, healing and exhausted agents with the
//! reason. The accepted inputs and their decisions are then appended to `immune_log`, and
//! only then acted on:
//!
//! - `execute` decisions run on an [`Executor`]: the gateway itself (throttle and revoke
//!   tools, which the guard then enforces; quarantine cool-down), or the agent's registered
//!   control URL (reset memory, switch model, reset agent); the result comes back as an
//!   input, so an agent reaches probation only once its cure is in force;
//! - decisions the engine made on its own are audit entries (principal `immune`).
//!
//! At start the state is the newest snapshot plus the log after it (a restart mid-incident
//! resumes it, and actions that were running are run again); at shutdown, and every
//! `snapshot_every`, a snapshot is written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{broadcast, oneshot};
use vigil_core::config::ImmuneConfig;
use vigil_core::digest::Sha256Digest;
use vigil_core::egress::EgressPolicy;
use vigil_core::id::{AgentId, IncidentId};
use vigil_core::policy::{CallFacts, CallGuard, Refusal, RefusalKind};
use vigil_core::time::Timestamp;
use vigil_core::vitals::{CallOutcome, Vital};
use vigil_immune::baseline::BaselineConfig;
use vigil_immune::correlation::CorrelationConfig;
use vigil_immune::diagnosis::Diagnosis;
use vigil_immune::engine::{Decision, DecisionKind, Engine, EngineConfig, EngineError, Input, Observation, Stamped};
use vigil_immune::healing::Action;
use vigil_immune::lifecycle::{Event, State};
use vigil_immune::rhythm::RhythmConfig;
use vigil_immune::sentinel::SentinelConfig;
use vigil_immune::stream::ContextConfig;
use vigil_store::ports::{ImmuneLog, KeysAudit};
use vigil_store::{ImmuneLogEntry, NewAuditEntry, Store, StoreError};

use crate::batch::{self, Batches, Feeder};
use crate::outbound::{self, ControlSender, Post};
#[cfg(test)]
use crate::outbound::{BoxFuture, SendError};
use crate::tasks::Tasks;

mod executor;
mod guard;

pub use executor::{ControlRequest, Executor, redact_url};
pub use guard::ImmuneGuard;

/// Inputs waiting for the engine.
const QUEUE: usize = 65_536;
/// Most inputs applied (and logged) together.
const BATCH_MAX: usize = 2_048;
/// While observations keep coming, at most one batch is applied (and logged) per this
/// long: at high call rates one log transaction per window instead of one per call or two,
/// each a WAL write that competed with the calls for the CPU. The task sleeps through the
/// window instead of waking for each observation (a wake-up per call cost the calls' tail
/// latency). An observation after a quiet spell is applied at once, and any other command
/// (an operator's, an executor's result, shutdown) ends the wait; the engine's timers and
/// the snapshot tick may wait out the rest of the window.
const FILL_WINDOW: Duration = Duration::from_millis(20);
/// Decisions buffered for each live subscriber (a slow one misses the oldest).
const EVENTS: usize = 4_096;
/// Log entries read at once while restoring.
const RESTORE_PAGE: usize = 10_000;

/// The engine's settings from `[immune]`.
pub fn engine_config(config: &ImmuneConfig) -> EngineConfig {
    let defaults = EngineConfig::default();
    let bucket_us = i64::try_from(config.rhythm_bucket.as_micros()).unwrap_or(i64::MAX);
    EngineConfig {
        baseline: BaselineConfig {
            half_life: config.half_life_calls as f64,
            warmup: config.warmup_calls,
            ..BaselineConfig::default()
        },
        sentinel: SentinelConfig { threshold: config.threshold, ..SentinelConfig::default() },
        correlation: CorrelationConfig {
            window_us: i64::try_from(config.correlation_window.as_micros()).unwrap_or(i64::MAX),
            fleet_share: config.fleet_share,
            // Surges are seen as buckets close: two buckets back.
            rate_window_us: bucket_us.saturating_mul(2),
            ..CorrelationConfig::default()
        },
        rhythm: RhythmConfig {
            enabled: config.rhythm,
            bucket_us,
            context: ContextConfig { learn: config.rhythm_learn_buckets, ..defaults.rhythm.context },
            ..defaults.rhythm
        },
        drain_grace_us: i64::try_from(config.drain_grace.as_micros()).unwrap_or(i64::MAX),
        probation_calls: config.probation_calls,
        approval_min_severity: config.approval_min_severity,
        ..defaults
    }
}

/// What the engine sees of a recorded call; `None` for calls that say nothing about the
/// agent (refused by Vigil itself, or abandoned by the client).
pub fn observation(vital: &Vital) -> Option<Observation> {
    if matches!(vital.outcome, CallOutcome::Refused | CallOutcome::Cancelled) {
        return None;
    }
    let usage = vital.usage.unwrap_or_default();
    Some(Observation {
        agent_id: vital.agent_id.clone(),
        latency_ms: vital.latency_us as f64 / 1_000.0,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        tool_calls: vital.tool_calls,
        tool_names: vital.tool_names.clone(),
        cost_usd: vital.cost_nanos.map(|n| n as f64 / 1e9),
        retries: vital.retries,
        error: vital.outcome != CallOutcome::Ok || vital.error_class.is_some(),
        prompt_sha256: vital.system_prompt_sha256.map(|d| d.to_string()),
        injection: vital.injection_score.unwrap_or(0.0),
        injection_patterns: vital.injection_rules.clone(),
        started_us: Some(vital.at.as_unix_micros()),
    })
}

/// Why the immune system refused an operator's command.
#[derive(Debug, thiserror::Error)]
pub enum ImmuneError {
    #[error(transparent)]
    Refused(#[from] EngineError),
    #[error("the immune system is off ([immune] enabled = false)")]
    Disabled,
    #[error("the immune system is not running")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The engine task's queue ([`batch`]). Observations are pushed quietly; every other
/// command is urgent and cuts short a batch's fill window.
#[derive(Clone, Debug)]
struct Inbox(Feeder<Command>);

impl Inbox {
    /// Queues an observation unless the queue is full; never blocks.
    fn observe(&self, observation: Observation) -> bool {
        self.0.push(Command::Observe(observation)).is_ok()
    }

    /// Queues any other command, waiting for room, and has it applied without delay.
    async fn send(&self, command: Command) -> Result<(), ImmuneError> {
        self.0.push_urgent(command).await.map_err(|_| ImmuneError::Stopped)
    }
}

enum Command {
    Observe(Observation),
    /// An operator's input; answered once it is logged.
    Operator(Input, oneshot::Sender<Result<Vec<Decision>, ImmuneError>>),
    /// An executor's result.
    Result(Input),
    /// Log, snapshot and stop.
    Shutdown(oneshot::Sender<()>),
}

/// The running immune system; cheap to share.
#[derive(Debug)]
pub struct Immune {
    engine: Arc<Mutex<Engine>>,
    inbox: Inbox,
    guard: Arc<ImmuneGuard>,
    dropped: Counter,
    enabled: bool,
    events: broadcast::Sender<Decision>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Immune {
    /// Restores the engine (newest snapshot plus the log after it) from `log` and starts
    /// its task, which logs its inputs and snapshots there and audits its own decisions in
    /// `audit`.
    pub async fn start(
        (log, audit): (Arc<dyn ImmuneLog>, Arc<dyn KeysAudit>),
        config: ImmuneConfig,
        egress: EgressPolicy,
        sender: Arc<dyn ControlSender>,
        dropped: Counter,
        tasks: &Tasks,
    ) -> Result<Arc<Immune>, ImmuneError> {
        Immune::start_with_window((log, audit), config, (egress, sender), dropped, tasks, FILL_WINDOW).await
    }

    /// [`Immune::start`] with another fill window, so tests can tell a cut-short wait from
    /// a full one.
    async fn start_with_window(
        (log, audit): (Arc<dyn ImmuneLog>, Arc<dyn KeysAudit>),
        config: ImmuneConfig,
        (egress, sender): (EgressPolicy, Arc<dyn ControlSender>),
        dropped: Counter,
        tasks: &Tasks,
        fill_window: Duration,
    ) -> Result<Arc<Immune>, ImmuneError> {
        let guard = Arc::new(ImmuneGuard::default());
        let (engine, seq) = restore(log.as_ref(), engine_config(&config)).await?;
        // Switched off, nothing is enforced: no agent stays refused with no way to release it.
        for (id, agent) in engine.agents().filter(|_| config.enabled) {
            if !agent.state().accepts_calls() {
                guard.set_state(id, agent.state(), refusal_reason(&engine, id, agent.state()));
            }
        }
        let running = engine.running();
        let engine = Arc::new(Mutex::new(engine));
        let (feeder, batches) = batch::queue(QUEUE, BATCH_MAX);
        let inbox = Inbox(feeder);
        let executor = Executor { log: log.clone(), guard: guard.clone(), config: config.clone(), egress, sender };
        let (events, _) = broadcast::channel(EVENTS);
        let worker = Worker {
            engine: engine.clone(),
            log,
            audit,
            executor,
            inbox: inbox.clone(),
            seq,
            config: config.clone(),
            events: events.clone(),
            fill_window,
            tasks: tasks.clone(),
        };
        // Actions a previous process started and never reported on are run again.
        if config.enabled {
            for (action_id, agent_id, action, incident_id, diagnosis) in running {
                worker.spawn_action(action_id, agent_id, action, incident_id, diagnosis);
            }
        }
        #[allow(clippy::disallowed_methods, reason = "the handle is kept and joined by Immune::shutdown")]
        let task = if config.enabled { Some(tokio::spawn(worker.run(batches))) } else { None };
        Ok(Arc::new(Immune { engine, inbox, guard, dropped, enabled: config.enabled, events, task: Mutex::new(task) }))
    }

    pub fn guard(&self) -> Arc<ImmuneGuard> {
        self.guard.clone()
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Queues a recorded call for judgement; never blocks.
    pub fn observe(&self, vital: &Vital) {
        if !self.enabled {
            return;
        }
        if let Some(o) = observation(vital)
            && !self.inbox.observe(o)
        {
            self.dropped.inc();
        }
    }

    /// Every decision from now on, as the engine makes it (after it is logged).
    pub fn subscribe(&self) -> broadcast::Receiver<Decision> {
        self.events.subscribe()
    }

    /// Whether `n` more observations fit in the queue with a tenth of it to spare; receivers
    /// of bulk input answer "retry later" when not.
    pub fn has_room(&self, n: usize) -> bool {
        !self.enabled || self.inbox.0.room() >= n.saturating_add(QUEUE / 10)
    }

    /// Applies an operator's input; answers once it is logged.
    pub async fn operate(&self, input: Input) -> Result<Vec<Decision>, ImmuneError> {
        if !self.enabled {
            return Err(ImmuneError::Disabled);
        }
        let (reply, answer) = oneshot::channel();
        self.inbox.send(Command::Operator(input, reply)).await?;
        answer.await.map_err(|_| ImmuneError::Stopped)?
    }

    /// Reads the engine's state.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.engine.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Logs what is queued, writes a snapshot and stops the task.
    pub async fn shutdown(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(task) = task else { return };
        let (done, wait) = oneshot::channel();
        if self.inbox.send(Command::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
        if let Err(e) = task.await {
            tracing::error!(error = %e, "immune task failed");
        }
    }
}

/// Writes the replay file: the oldest kept snapshot (if any), then every logged input
/// after it with its decisions, one JSON object per line (`vigil_immune::replay::Line`),
/// read in one transaction.
pub fn export(store: &Store, out: &mut impl std::io::Write) -> Result<u64, StoreError> {
    store.export_immune(&mut |line| writeln!(out, "{line}"))
}

/// The newest snapshot plus every logged input after it.
async fn restore(log: &dyn ImmuneLog, config: EngineConfig) -> Result<(Engine, i64), StoreError> {
    // The newest snapshot that parses; the log reaches back to the oldest kept one.
    let mut restored = None;
    let snapshots = log.immune_snapshots().await?;
    for s in &snapshots {
        match serde_json::from_str::<Engine>(&s.state) {
            Ok(engine) => {
                restored = Some((engine, s.seq));
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, seq = s.seq, "an immune snapshot does not parse; trying an older one")
            }
        }
    }
    let (mut engine, mut seq) = match restored {
        Some(found) => found,
        None => {
            if !snapshots.is_empty() {
                tracing::error!("no immune snapshot parses: the immune state starts over and agents relearn");
            }
            (Engine::new(config.clone()), 0)
        }
    };
    let (mut replayed, mut differing) = (0u64, 0u64);
    loop {
        let page = log.immune_log_after(seq, RESTORE_PAGE).await?;
        let Some(last) = page.last() else { break };
        seq = last.seq;
        for entry in &page {
            let Ok(input) = serde_json::from_str::<Stamped>(&entry.input) else {
                tracing::warn!(seq = entry.seq, "skipping an immune log entry that does not parse");
                continue;
            };
            replayed += 1;
            match engine.apply(&input) {
                Ok(decisions) => {
                    if serde_json::to_string(&decisions).ok().as_deref() != Some(entry.decisions.as_str()) {
                        differing += 1;
                    }
                }
                Err(e) => {
                    differing += 1;
                    tracing::warn!(seq = entry.seq, error = %e, "a logged immune input was refused on restore");
                }
            }
        }
    }
    if differing > 0 {
        tracing::warn!(replayed, differing, "restoring the immune state: some replayed decisions differ from the log");
    } else if replayed > 0 {
        tracing::info!(replayed, "immune state restored from its snapshot and log");
    }
    engine.set_config(config);
    Ok((engine, seq.max(log.last_immune_seq().await?)))
}

/// The reason a refused call is given.
fn refusal_reason(engine: &Engine, agent_id: &str, state: State) -> String {
    let incident = engine.agent(agent_id).and_then(|a| a.incident_id.as_deref()).and_then(|i| engine.incident(i));
    let why =
        incident.map(|i| format!(" (incident {}: {})", i.incident_id, i.diagnosis().as_str())).unwrap_or_default();
    let what = match state {
        State::Draining => "is draining before quarantine",
        State::Healing => "is being healed",
        State::Exhausted => "exhausted its healing ladder and waits for an operator",
        _ => "is quarantined",
    };
    format!("the immune system refuses calls from agent {agent_id:?}: it {what}{why}")
}

/// The engine task.
struct Worker {
    engine: Arc<Mutex<Engine>>,
    /// Where the input log and snapshots are written (the binary gives it the store on a
    /// lane of its own: in order, off the async workers).
    log: Arc<dyn ImmuneLog>,
    /// Where the engine's own decisions are audited.
    audit: Arc<dyn KeysAudit>,
    executor: Executor,
    inbox: Inbox,
    seq: i64,
    config: ImmuneConfig,
    events: broadcast::Sender<Decision>,
    /// [`FILL_WINDOW`], but for tests.
    fill_window: Duration,
    /// Where healing actions run, tracked to shutdown.
    tasks: Tasks,
}

impl Worker {
    async fn run(mut self, mut batches: Batches<Command>) {
        let mut snapshot_tick = tokio::time::interval(self.config.snapshot_every);
        snapshot_tick.tick().await;
        let mut snapshot_seq = self.seq;
        let mut last_batch: Option<tokio::time::Instant> = None;
        loop {
            let deadline = self.engine.lock().unwrap_or_else(|e| e.into_inner()).next_deadline();
            let wait = deadline.map(|at| {
                let now = Timestamp::now().as_unix_micros();
                Duration::from_micros(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
            });
            let mut commands = Vec::new();
            tokio::select! {
                command = batches.recv() => match command {
                    Some(command) => commands.push(command),
                    None => break,
                },
                () = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {
                    self.apply(vec![Command::Result(Input::Tick)]).await;
                    continue;
                }
                _ = snapshot_tick.tick() => {
                    if self.seq != snapshot_seq {
                        self.snapshot().await;
                        snapshot_seq = self.seq;
                    }
                    continue;
                }
            }
            // An observation soon after the last batch waits for the rest of the window.
            let busy = last_batch.filter(|at| at.elapsed() < self.fill_window);
            let until = busy.filter(|_| matches!(&commands[..], [Command::Observe(_)])).map(|at| at + self.fill_window);
            batches.fill(&mut commands, until, std::future::pending()).await;
            last_batch = Some(tokio::time::Instant::now());
            if let Some(done) = self.apply(commands).await {
                self.snapshot().await;
                let _ = done.send(());
                return;
            }
        }
        self.snapshot().await;
    }

    /// Applies a batch (lifecycle changes reach the guard as they are made), logs what was
    /// accepted, then acts on it. Returns the shutdown
    /// request if the batch held one.
    async fn apply(&mut self, commands: Vec<Command>) -> Option<oneshot::Sender<()>> {
        let mut log = Vec::new();
        let mut acts = Vec::new();
        let mut published = Vec::new();
        let mut replies = Vec::new();
        let mut shutdown = None;
        {
            let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            for command in commands {
                let (input, reply) = match command {
                    Command::Observe(o) => (Input::Observe(o), None),
                    Command::Result(input) => (input, None),
                    Command::Operator(input, reply) => (input, Some(reply)),
                    Command::Shutdown(done) => {
                        shutdown = Some(done);
                        continue;
                    }
                };
                let stamped = Stamped { at_us: Timestamp::now().as_unix_micros(), input };
                match engine.apply(&stamped) {
                    Ok(decisions) => {
                        self.seq += 1;
                        // Inputs and decisions are plain data (string keys, finite numbers):
                        // one that does not serialize is a bug, and an empty log entry would
                        // silently break every later replay.
                        let entry = ImmuneLogEntry {
                            seq: self.seq,
                            at_us: stamped.at_us,
                            input: serde_json::to_string(&stamped).expect("an engine input serializes"),
                            decisions: serde_json::to_string(&decisions).expect("engine decisions serialize"),
                        };
                        log.push(entry);
                        for d in &decisions {
                            acts.extend(self.enforce(&engine, d));
                            acts.extend(act_for(d));
                        }
                        published.extend(decisions.iter().cloned());
                        if let Some(reply) = reply {
                            replies.push((reply, Ok(decisions)));
                        }
                    }
                    Err(e) => {
                        if let Some(reply) = reply {
                            replies.push((reply, Err(ImmuneError::Refused(e))));
                        } else {
                            tracing::debug!(error = %e, "the immune engine refused an input");
                        }
                    }
                }
            }
        }
        if let Err(e) = self.log.append_immune_log(log).await {
            tracing::error!(error = %e, "could not log immune inputs; saving a snapshot instead");
            // The snapshot holds the state these inputs led to, so a restart still restores it.
            self.snapshot().await;
        }
        for act in acts {
            self.act(act);
        }
        if self.events.receiver_count() > 0 {
            for d in published {
                let _ = self.events.send(d);
            }
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        shutdown
    }

    async fn snapshot(&self) {
        let (state, seq) = {
            let engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            (serde_json::to_string(&*engine), self.seq)
        };
        let Ok(state) = state else { return };
        match self.log.save_immune_snapshot(seq, state).await {
            Ok(()) => tracing::debug!(seq, "immune snapshot saved"),
            Err(e) => tracing::error!(error = %e, "could not save the immune snapshot"),
        }
    }

    /// Carries a lifecycle transition to the gateway's guard at once, while the engine's
    /// lock is held: whoever reads an agent's state (the API) finds the gateway already
    /// enforcing it, never the state before. Returns the audit of an isolation, which
    /// waits for the log like every other act.
    fn enforce(&self, engine: &Engine, decision: &Decision) -> Option<Act> {
        let DecisionKind::Transition { agent_id, to, event, .. } = &decision.kind else { return None };
        let guard = &self.executor.guard;
        let released = *event == Event::OperatorRelease;
        if released {
            guard.clear(agent_id);
        }
        // Only refusing states carry a reason; the guard drops it otherwise.
        let reason = if to.accepts_calls() { String::new() } else { refusal_reason(engine, agent_id, *to) };
        let audit = (matches!(to, State::Quarantined | State::Exhausted) && !released).then(|| Act::Audit {
            // Isolating an agent is an act of governance: on the record.
            action: if *to == State::Quarantined { "immune.quarantined" } else { "immune.exhausted" },
            target: format!("/api/v1/immune/agents/{agent_id}"),
            decision: reason.clone(),
        });
        guard.set_state(agent_id, *to, reason);
        audit
    }

    fn act(&self, act: Act) {
        match act {
            Act::Execute { action_id, agent_id, action, incident_id, diagnosis } => {
                self.act(Act::Audit {
                    action: "immune.execute",
                    target: format!("/api/v1/immune/incidents/{incident_id}#{action_id}"),
                    decision: format!("{} for {agent_id} ({})", action.as_str(), diagnosis.as_str()),
                });
                self.spawn_action(action_id, agent_id, action, incident_id, diagnosis);
            }
            Act::Audit { action, target, decision } => {
                let entry = NewAuditEntry {
                    principal: "immune".to_owned(),
                    action: action.to_owned(),
                    target,
                    request_id: None,
                    body_sha256: Sha256Digest::of(decision.as_bytes()),
                    status: 0,
                };
                let audit = self.audit.clone();
                self.tasks.spawn("immune audit".to_owned(), async move {
                    if let Err(e) = audit.append_audit(entry).await {
                        tracing::error!(error = %e, "could not audit an immune decision");
                    }
                });
            }
        }
    }

    fn spawn_action(
        &self,
        action_id: String,
        agent_id: AgentId,
        action: Action,
        incident_id: IncidentId,
        diagnosis: Diagnosis,
    ) {
        let name = format!("heal {action_id}");
        let executor = self.executor.clone();
        let inbox = self.inbox.clone();
        let span = tracing::info_span!(
            parent: None,
            "heal",
            agent_id = %agent_id,
            incident_id = %incident_id,
            action = action.as_str()
        );
        let task = async move {
            let request = ControlRequest {
                action_id: &action_id,
                agent_id: &agent_id,
                incident_id: &incident_id,
                action,
                diagnosis,
            };
            let (ok, detail) = executor.run(request).await;
            tracing::info!(ok, %detail, "healing action finished");
            let _ = inbox.send(Command::Result(Input::ActionResult { action_id, ok, detail })).await;
        };
        self.tasks.spawn(name, tracing::Instrument::instrument(task, span));
    }
}

/// Something to do about a decision, once it is logged.
enum Act {
    Execute { action_id: String, agent_id: AgentId, action: Action, incident_id: IncidentId, diagnosis: Diagnosis },
    Audit { action: &'static str, target: String, decision: String },
}

fn act_for(decision: &Decision) -> Option<Act> {
    let audit = |action: &'static str, target: String| {
        Some(Act::Audit { action, target, decision: serde_json::to_string(decision).expect("a decision serializes") })
    };
    match &decision.kind {
        DecisionKind::Execute { action_id, agent_id, action, incident_id, diagnosis } => Some(Act::Execute {
            action_id: action_id.clone(),
            agent_id: agent_id.clone(),
            action: *action,
            incident_id: incident_id.clone(),
            diagnosis: *diagnosis,
        }),
        DecisionKind::IncidentOpened { incident_id, .. } => {
            audit("immune.incident_opened", format!("/api/v1/immune/incidents/{incident_id}"))
        }
        DecisionKind::IncidentClosed { incident_id, .. } => {
            audit("immune.incident_closed", format!("/api/v1/immune/incidents/{incident_id}"))
        }
        DecisionKind::ApprovalRequested { approval_id, .. } => {
            audit("immune.approval_requested", format!("/api/v1/immune/approvals/{approval_id}"))
        }
        DecisionKind::ActionFinished { action_id, incident_id, .. } => {
            audit("immune.action_finished", format!("/api/v1/immune/incidents/{incident_id}#{action_id}"))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests spawn work they await")]
mod tests {
    use super::*;
    use vigil_store::background::Background;

    /// The tests' agents have no control URLs: nothing is ever sent.
    #[derive(Debug)]
    struct NoSender;

    impl ControlSender for NoSender {
        fn post_json<'a>(&'a self, _: Post<'a>) -> BoxFuture<'a, Result<u16, SendError>> {
            Box::pin(async { Err(SendError::Failed("the tests send nothing".into())) })
        }
    }

    fn facts<'a>(agent: &'a str, tools: bool) -> CallFacts<'a> {
        CallFacts {
            agent_id: agent,
            model: "m",
            endpoint: "chat.completions",
            offers_tools: tools,
            key_id: None,
            feature: None,
            user: None,
        }
    }

    #[test]
    fn the_guard_follows_the_lifecycle_and_enforces_restrictions() {
        let guard = ImmuneGuard::default();
        assert!(guard.check(&facts("a", true)).is_none());
        guard.set_state("a", State::Quarantined, "quarantined: inc-1".into());
        let refusal = guard.check(&facts("a", false)).expect("refused");
        assert_eq!(
            (refusal.kind, refusal.code, refusal.reason.as_str()),
            (RefusalKind::Denied, "agent_quarantined", "quarantined: inc-1")
        );
        assert!(guard.check(&facts("b", false)).is_none());
        guard.set_state("a", State::Probation, String::new());
        assert!(guard.check(&facts("a", false)).is_none());
        assert!(!guard.any.load(Ordering::Acquire), "nothing left to enforce");

        guard.revoke_tools("a", Duration::from_secs(60));
        assert_eq!(guard.check(&facts("a", true)).map(|r| r.code), Some("agent_tools_revoked"));
        assert!(guard.check(&facts("a", false)).is_none());

        guard.throttle("a", 1, Duration::from_secs(60));
        assert!(guard.check(&facts("a", false)).is_none(), "the first call goes");
        let throttled = guard.check(&facts("a", false)).expect("throttled");
        assert_eq!((throttled.code, throttled.retry_after_secs.is_some()), ("agent_throttled", true));
        guard.clear("a");
        assert!(guard.check(&facts("a", true)).is_none());
        assert!(!guard.any.load(Ordering::Acquire));
    }

    #[test]
    fn control_urls_lose_their_credentials_in_details() {
        assert_eq!(redact_url("https://user:pw@agent.example:9000/ctl?token=abc#x"), "https://agent.example:9000/ctl");
        assert_eq!(redact_url("http://10.0.0.5/control/a"), "http://10.0.0.5/control/a");
        assert_eq!(redact_url("http://host"), "http://host/");
    }

    fn vital(agent_id: &str) -> Vital {
        Vital {
            agent_type: "t".into(),
            provider: "p".into(),
            status: 200,
            outcome: CallOutcome::Ok,
            latency_us: 1_500,
            tool_calls: 2,
            tool_names: vec!["x".into()],
            cost_nanos: Some(2_000_000),
            retries: 1,
            ..Vital::received(Timestamp::now(), agent_id.into(), "chat.completions")
        }
    }

    #[test]
    fn refused_and_cancelled_calls_are_not_observed() {
        let mut vital = vital("a");
        let o = observation(&vital).expect("observed");
        assert_eq!((o.latency_ms, o.cost_usd, o.error, o.tool_calls), (1.5, Some(0.002), false, 2));
        vital.outcome = CallOutcome::Refused;
        assert!(observation(&vital).is_none());
        vital.outcome = CallOutcome::Unreachable;
        assert!(observation(&vital).is_some_and(|o| o.error));
    }

    /// The store on the writer's lane, as the immune service's ports.
    fn ports(store: Store, writer: Background) -> (Arc<dyn ImmuneLog>, Arc<dyn KeysAudit>) {
        let laned = Arc::new(store.on_lane(writer));
        (laned.clone(), laned)
    }

    /// A fresh store (in the returned folder, as `vigil.db`) and a writer thread for it.
    fn storage() -> (tempfile::TempDir, Store, Background) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), vigil_store::StoreOptions::default()).expect("open");
        let writer = Background::start("vigil-test-imm", vigil_store::background::Priority::Normal).expect("writer");
        (dir, store, writer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn observations_wait_out_the_fill_window_but_an_operator_cuts_it_short() {
        let (_dir, store, writer) = storage();
        let config = vigil_core::config::Config::default().immune;
        assert!(config.enabled);
        let window = Duration::from_secs(30);
        let immune = Immune::start_with_window(
            ports(store, writer),
            config,
            (EgressPolicy::default(), Arc::new(NoSender)),
            Counter::default(),
            &Tasks::new(),
            window,
        )
        .await
        .expect("start");
        let observed = || immune.read(|engine| engine.agent("a").map_or(0, |a| a.observations));

        // The first observation after a quiet spell is applied at once.
        immune.observe(&vital("a"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while observed() < 1 {
            assert!(Instant::now() < deadline, "the first observation was not applied");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The next ones wait for the batch to fill...
        immune.observe(&vital("a"));
        immune.observe(&vital("a"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(observed(), 1, "observations during the window wait for it");

        // ...unless an operator's command comes: it is applied after them, long before the
        // window would end.
        let asked = Instant::now();
        let decisions =
            immune.operate(Input::Quarantine { agent_id: "a".into(), by: "test".into() }).await.expect("quarantined");
        assert!(asked.elapsed() < window / 3, "the operator waited {:?}", asked.elapsed());
        assert!(!decisions.is_empty());
        assert_eq!(observed(), 3, "the queued observations were applied first");
        immune.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_mid_window_applies_and_keeps_what_was_queued() {
        let (dir, store, writer) = storage();
        let path = dir.path().join("vigil.db");
        let config = vigil_core::config::Config::default().immune;
        let window = Duration::from_secs(30);
        let immune = Immune::start_with_window(
            ports(store, writer.clone()),
            config.clone(),
            (EgressPolicy::default(), Arc::new(NoSender)),
            Counter::default(),
            &Tasks::new(),
            window,
        )
        .await
        .expect("start");
        let observed = |immune: &Immune| immune.read(|engine| engine.agent("a").map_or(0, |a| a.observations));
        immune.observe(&vital("a"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while observed(&immune) < 1 {
            assert!(Instant::now() < deadline, "the first observation was not applied");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Two more wait in the window when the server stops.
        immune.observe(&vital("a"));
        immune.observe(&vital("a"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(observed(&immune), 1);
        let asked = Instant::now();
        immune.shutdown().await;
        assert!(asked.elapsed() < window / 3, "shutdown waited out the window: {:?}", asked.elapsed());
        assert_eq!(observed(&immune), 3, "what was queued is applied before stopping");

        // And it is kept: a restart restores all three.
        let store = Store::open(&path, vigil_store::StoreOptions::default()).expect("reopen");
        let restarted = Immune::start(
            ports(store, writer),
            config,
            EgressPolicy::default(),
            Arc::new(NoSender),
            Counter::default(),
            &Tasks::new(),
        )
        .await
        .expect("restart");
        assert_eq!(observed(&restarted), 3);
        restarted.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gateway_enforces_a_state_as_soon_as_the_api_can_read_it() {
        let (_dir, store, writer) = storage();
        let config = vigil_core::config::Config::default().immune;
        let immune = Immune::start(
            ports(store, writer.clone()),
            config,
            EgressPolicy::default(),
            Arc::new(NoSender),
            Counter::default(),
            &Tasks::new(),
        )
        .await
        .expect("start");
        // Hold the log writer, as a slow disk would, until the test has looked.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (holding, held_now) = oneshot::channel();
        let held = tokio::spawn(async move {
            writer
                .run(move || {
                    let _ = holding.send(());
                    gate.recv()
                })
                .await
        });
        held_now.await.expect("the writer is held");
        let operator = immune.clone();
        let quarantine =
            tokio::spawn(
                async move { operator.operate(Input::Quarantine { agent_id: "a".into(), by: "t".into() }).await },
            );

        let state = || immune.read(|engine| engine.agent("a").map(|a| a.state()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while state() != Some(State::Quarantined) {
            assert!(Instant::now() < deadline, "the quarantine was never applied");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(!quarantine.is_finished(), "the log write is still held");
        let refusal = immune.guard().check(&facts("a", false)).expect("refused while the API shows it quarantined");
        assert_eq!(refusal.code, "agent_quarantined");

        open.send(()).expect("release the writer");
        held.await.expect("join").expect("writer ran").expect("gate opened");
        quarantine.await.expect("join").expect("quarantined");
        immune.shutdown().await;
    }
}
