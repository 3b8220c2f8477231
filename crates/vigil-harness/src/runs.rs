//! Runs: plan, fingerprint, execute layer by layer, report, finalize; cancel, retry and
//! crash recovery.
//!
//! [`Harness`] is the service the server and the CLI share. [`Harness::prepare`] turns a
//! [`RunRequest`] into a plan, a seed, normalized settings, a fingerprint and a cache key
//! per plugin, all pure functions of the input, the plugins and the settings.
//! [`Harness::submit`] records the run (or, unless `fresh`, returns the completed run with
//! the same fingerprint) and [`Harness::execute`] runs it:
//!
//! 1. the run folder is `runs/.partial/<id>/` until the run ends, and `run_manifest.json`
//!    is the first thing written in it;
//! 2. plugins run by topological layer, at most `parallelism` at once; a plugin whose
//!    dependency did not succeed is `skipped`; one whose cache key matches an earlier
//!    successful execution reuses that result (`cached`);
//! 3. `report.json`, `report.md` and `evaluation.json` are written; the run is
//!    `completed` only if they all exist and every plugin succeeded;
//! 4. the folder is renamed to `runs/<id>/` and lineage is recorded.
//!
//! A process that dies mid-run leaves the run `running` with a dead owner: at start-up
//! [`Harness::recover`] marks it `crashed`, and [`Harness::retry`] re-runs what did not
//! succeed, in the same folder.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, watch};
use vigil_core::digest::Sha256Digest;
use vigil_core::run::{ExecStatus, RunStatus, outcome};
use vigil_store::{
    BlobStore, ExecutionEnd, KnownIssueSet, LineageEdge, NewAuditEntry, NewExecution, NewRun, RunRecord, Store,
    StoreError, UploadRecord,
};

use crate::exec::{self, ExecConfig, ExecSpec, exec_dir};
use crate::format::Format;
use crate::fsutil::{link_or_copy, link_tree, write_atomic};
use crate::known::{self, Declaration, IssuePreview, KnownIssue};
use crate::plan::{Plan, PlanError, plan};
use crate::protocol::{DependencyRef, InputRef, Response, RunContext};
use crate::registry::Registry;
use crate::report;
use crate::sandbox::{Runner, UidPool};

/// Events buffered per run for live watchers; a slow watcher misses the oldest.
const EVENTS_BUFFER: usize = 1024;
/// Seeds stay below 2^53 so every JSON reader holds them exactly.
const SEED_MASK: u64 = (1 << 53) - 1;
/// The files a run must have written to be `completed`.
pub const REQUIRED_ARTIFACTS: [&str; 3] = ["report.json", "report.md", "evaluation.json"];

/// What can go wrong with a run request.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Io(String),
}

/// `value` as pretty JSON for the file `name`: a failure is an error of the run, never an
/// empty file written as if it were the report.
fn pretty_json(name: &str, value: &impl Serialize) -> Result<Vec<u8>, HarnessError> {
    serde_json::to_vec_pretty(value).map_err(|e| HarnessError::Io(format!("cannot write {name}: {e}")))
}

/// One plugin's execution within a run: what [`Harness::run_plugin`] is given.
#[derive(Debug)]
struct PluginJob {
    run_id: String,
    layer: u32,
    plugin: crate::manifest::Plugin,
    /// The step's cache key (computed when the run was prepared).
    cache_key: String,
    /// The run's partial folder.
    dir: PathBuf,
    input: InputRef,
    dependencies: BTreeMap<String, DependencyRef>,
    /// The plugin's validated settings.
    config: Value,
    seed: u64,
    run: RunContext,
    /// Skip the cache.
    fresh: bool,
    cancel: watch::Receiver<bool>,
}

impl From<StoreError> for HarnessError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => HarnessError::NotFound(what),
            other => HarnessError::Store(other),
        }
    }
}

/// A request to run plugins on an upload.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub upload_id: String,
    /// Plugin ids to run (their dependencies come along). Omit for the recommended plan:
    /// every plugin that applies to the input.
    #[serde(default)]
    pub pipeline: Option<Vec<String>>,
    /// Plugins to leave out (and everything that depends on them).
    #[serde(default)]
    pub deselect: Vec<String>,
    /// Settings per plugin id, each checked against that plugin's config schema.
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
    /// The seed handed to every plugin; derived from the input when omitted.
    #[serde(default, deserialize_with = "whole_number")]
    pub seed: Option<u64>,
    /// Run again even if an identical run completed, and reuse no earlier plugin results.
    #[serde(default)]
    pub fresh: bool,
    /// The kind of dataset this is (`erp.invoices`): the run is evaluated against the
    /// latest version of the known issues declared for it.
    #[serde(default)]
    pub dataset_kind: Option<String>,
}

/// A request turned into everything that defines the run.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Prepared {
    pub plan: Plan,
    pub seed: u64,
    pub fingerprint: String,
    /// Settings of every planned plugin (empty objects where none were given).
    pub settings: BTreeMap<String, Value>,
    /// Per planned plugin: the key under which its result can be reused.
    pub cache_keys: BTreeMap<String, String>,
    /// The known issues the run will be evaluated against, with a preview of each check.
    pub known_issues: Option<PreparedKnownIssues>,
    #[serde(skip)]
    pub upload: Option<UploadRecord>,
}

/// The known issues a run is evaluated against.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PreparedKnownIssues {
    pub set: KnownIssueSet,
    pub preview: Vec<IssuePreview>,
}

/// What `POST /api/v1/known-issues/preview` takes: issues (or a dataset kind's saved
/// ones), and optionally an upload to plan for and a run whose findings to match.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["issues"], "properties": { "issues": { "type": "array" } } },
    { "required": ["dataset_kind"], "properties": { "dataset_kind": { "type": "string" } } },
]))]
pub struct PreviewRequest {
    /// The issues to preview; omit to preview `dataset_kind`'s latest saved version.
    #[serde(default)]
    pub issues: Option<Vec<KnownIssue>>,
    #[serde(default)]
    pub dataset_kind: Option<String>,
    /// Plan for this upload (its format decides which plugins run).
    #[serde(default)]
    pub upload_id: Option<String>,
    /// Match against this run's findings.
    #[serde(default)]
    pub run_id: Option<String>,
}

/// A whole number as JSON clients send it: `42`, or `42.0` from a language whose numbers are
/// all floats (JSON Schema counts both as an integer); never a fraction or a negative.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    number
        .as_u64()
        .or_else(|| {
            // 2^64 as a float: the first value past u64::MAX.
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(f))
                .map(|f| f as u64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number from 0 to {}", u64::MAX)))
}

/// The answer to a submission.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Submitted {
    pub run: RunRecord,
    /// An identical run had completed; it is returned instead of running again.
    pub reused: bool,
    pub message: String,
}

/// Something that happened in a run, for live watchers.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    Plan { run_id: String, plan: Plan },
    PluginStarted { run_id: String, plugin_id: String, layer: u32 },
    PluginFinished { run_id: String, plugin_id: String, status: ExecStatus, error: Option<String>, duration_ms: u64 },
    Log { run_id: String, plugin_id: String, line: String },
    Progress { run_id: String, done: usize, total: usize },
    RunFinished { run_id: String, status: RunStatus, report: Option<String> },
}

/// Settings for [`Harness::new`].
#[derive(Clone, Debug)]
pub struct HarnessOptions {
    pub data_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub vigil_exe: PathBuf,
    pub vigil_version: String,
    pub parallelism: usize,
    pub strict: bool,
    pub stdout_max_bytes: usize,
    pub stderr_max_bytes: u64,
}

struct Active {
    cancel: watch::Sender<bool>,
    events: broadcast::Sender<RunEvent>,
}

struct Inner {
    data_dir: PathBuf,
    store: Store,
    blobs: BlobStore,
    runs_dir: PathBuf,
    plugins_dir: PathBuf,
    vigil_version: String,
    parallelism: usize,
    registry: RwLock<Arc<Registry>>,
    /// The store's plugins version the registry was loaded at (see `Store::plugins_version`).
    registry_version: Mutex<String>,
    runner: Runner,
    exec: ExecConfig,
    active: Mutex<HashMap<String, Active>>,
}

/// The harness service. Cheap to clone.
#[derive(Clone)]
pub struct Harness(Arc<Inner>);

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("runs_dir", &self.0.runs_dir).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Harness {
    pub fn new(options: HarnessOptions, store: Store, blobs: BlobStore) -> Result<Harness, HarnessError> {
        let runs_dir = options.data_dir.join("runs");
        std::fs::create_dir_all(runs_dir.join(".partial"))
            .map_err(|e| HarnessError::Io(format!("cannot create {}: {e}", runs_dir.display())))?;
        // Plugins work in other folders: every path they are given must be absolute.
        let runs_dir = std::fs::canonicalize(&runs_dir)
            .map_err(|e| HarnessError::Io(format!("cannot resolve {}: {e}", runs_dir.display())))?;
        let options = HarnessOptions {
            plugins_dir: std::path::absolute(&options.plugins_dir).unwrap_or(options.plugins_dir),
            ..options
        };
        let data_dir = runs_dir.parent().map_or_else(|| options.data_dir.clone(), Path::to_owned);
        let registry = load_registry(&store, &data_dir, &options.plugins_dir, &options.vigil_version);
        let database = Some(data_dir.join(vigil_store::DATABASE_FILE)).filter(|p| p.is_file());
        // Plugins run as users of their own only if such a user can reach the run folders;
        // otherwise they keep the server's user, and every execution records that.
        let uids = match crate::fsutil::reachable_by_others(&runs_dir) {
            Ok(()) => {
                Some(UidPool::new(UidPool::DEFAULT_BASE, u32::try_from(options.parallelism.max(1) * 2).unwrap_or(8)))
            }
            Err(why) => {
                tracing::warn!(
                    reason = %why,
                    "plugins will run as the server's own user: an unprivileged sandbox user could not reach the run folders"
                );
                None
            }
        };
        Ok(Harness(Arc::new(Inner {
            data_dir,
            store,
            blobs,
            runs_dir,
            plugins_dir: options.plugins_dir,
            vigil_version: options.vigil_version,
            parallelism: options.parallelism.max(1),
            registry: RwLock::new(Arc::new(registry)),
            registry_version: Mutex::new(String::new()),
            runner: Runner::new(options.vigil_exe.clone(), uids),
            exec: ExecConfig {
                vigil_exe: options.vigil_exe,
                strict: options.strict,
                stdout_max_bytes: options.stdout_max_bytes,
                stderr_max_bytes: options.stderr_max_bytes,
                database,
            },
            active: Mutex::new(HashMap::new()),
        })))
    }

    /// The plugins, reloaded first if installed plugins changed (in this process or another).
    pub fn registry(&self) -> Arc<Registry> {
        if let Ok(version) = self.0.store.plugins_version() {
            let mut seen = lock(&self.0.registry_version);
            if *seen != version {
                *seen = version;
                drop(seen);
                return self.reload_plugins();
            }
        }
        Arc::clone(&self.0.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the installed plugins and the plugins folder.
    pub fn reload_plugins(&self) -> Arc<Registry> {
        let fresh =
            Arc::new(load_registry(&self.0.store, &self.0.data_dir, &self.0.plugins_dir, &self.0.vigil_version));
        *self.0.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        fresh
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn data_dir(&self) -> &Path {
        &self.0.data_dir
    }

    pub fn vigil_version(&self) -> &str {
        &self.0.vigil_version
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.0.blobs
    }

    /// Validates every plugin and runs each one's self-test in folders under `work`.
    pub async fn doctor(&self, work: &Path) -> crate::doctor::DoctorReport {
        let registry = self.reload_plugins();
        crate::doctor::doctor(&registry, &self.0.runner, &self.0.exec, work).await
    }

    /// The folder of a run: finalized, or still partial.
    pub fn run_dir(&self, run: &RunRecord) -> PathBuf {
        let done = self.0.runs_dir.join(&run.dir);
        if done.is_dir() { done } else { self.partial_dir(&run.id) }
    }

    /// A folder for temporary files (bundles being built, replays), inside the data
    /// directory so the sandbox user can reach it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.0.runs_dir.parent().unwrap_or(&self.0.runs_dir).join("tmp")
    }

    fn partial_dir(&self, id: &str) -> PathBuf {
        self.0.runs_dir.join(".partial").join(id)
    }

    /// A run's `report.json`.
    pub fn read_report(&self, run_id: &str) -> Result<Value, HarnessError> {
        let run = self.0.store.get_run(run_id)?;
        let path = self.run_dir(&run).join("report.json");
        let bytes = std::fs::read(&path).map_err(|_| HarnessError::NotFound(format!("report of run {run_id}")))?;
        serde_json::from_slice(&bytes).map_err(|e| HarnessError::Io(format!("{}: {e}", path.display())))
    }

    /// Saves a dataset kind's known issues as its next version, once every issue is valid;
    /// true when a version was added (false: the latest already held these issues).
    pub fn save_known_issues(
        &self,
        dataset_kind: &str,
        declaration: &Declaration,
        by: &str,
        audit: Option<&NewAuditEntry>,
    ) -> Result<(KnownIssueSet, bool), HarnessError> {
        check_dataset_kind(dataset_kind)?;
        declaration
            .validate()
            .map_err(|p| HarnessError::Invalid(format!("known issues of {dataset_kind:?}: {}", p.join("; "))))?;
        let issues = serde_json::to_value(&declaration.issues).map_err(|e| HarnessError::Invalid(e.to_string()))?;
        Ok(self.0.store.save_known_issues(dataset_kind, &issues, by, audit)?)
    }

    /// Which check each known issue becomes and whether it can be found: for an upload's
    /// plan when one is given (else for every plugin), and matched against a run's
    /// findings when one is given.
    pub fn preview_known_issues(&self, request: &PreviewRequest) -> Result<Vec<IssuePreview>, HarnessError> {
        let issues = match (&request.issues, &request.dataset_kind) {
            (Some(issues), _) => {
                let declaration = Declaration { issues: issues.clone() };
                declaration.validate().map_err(|p| HarnessError::Invalid(p.join("; ")))?;
                declaration.issues
            }
            (None, Some(kind)) => {
                known::issues_of(&self.0.store.known_issues(kind, None)?).map_err(HarnessError::Invalid)?
            }
            (None, None) => {
                return Err(HarnessError::Invalid(
                    "give the issues to preview, or the dataset_kind whose saved issues to preview".into(),
                ));
            }
        };
        let registry = self.registry();
        let kinds = finding_kinds(&registry);
        let plan = match &request.upload_id {
            Some(id) => {
                let upload = self.0.store.get_upload(id)?;
                let format: Format = upload.format.parse().unwrap_or(Format::Binary);
                Some(plan(&registry.candidates(format), format, None, &[])?)
            }
            None => None,
        };
        let planned = match &plan {
            Some(plan) => plan.plugin_ids(),
            None => kinds.keys().map(String::as_str).collect(),
        };
        let report = request.run_id.as_deref().map(|id| self.read_report(id)).transpose()?;
        Ok(known::preview(&issues, &known::reporters(&kinds, &planned, &Default::default()), report.as_ref()))
    }

    /// Plans a request without running it: the plan, seed, fingerprint and cache keys.
    pub fn prepare(&self, request: &RunRequest) -> Result<Prepared, HarnessError> {
        self.prepare_pinned(request, None)
    }

    /// As [`Harness::prepare`], evaluating against `pinned` known issues (a replayed
    /// bundle's) instead of the store's latest for the request's dataset kind.
    fn prepare_pinned(&self, request: &RunRequest, pinned: Option<&KnownIssueSet>) -> Result<Prepared, HarnessError> {
        let upload = self.0.store.get_upload(&request.upload_id)?;
        let format: Format = upload.format.parse().unwrap_or(Format::Binary);
        let registry = self.registry();
        let plan = plan(&registry.candidates(format), format, request.pipeline.as_deref(), &request.deselect)?;
        for id in request.settings.keys() {
            if plan.step(id).is_none() {
                return Err(HarnessError::Invalid(format!("settings given for {id:?}, which is not in the plan")));
            }
        }
        let mut settings = BTreeMap::new();
        for step in &plan.steps {
            let plugin = registry
                .get(&step.plugin_id)
                .ok_or_else(|| HarnessError::NotFound(format!("plugin {}", step.plugin_id)))?;
            let config = request.settings.get(&step.plugin_id).cloned().unwrap_or_else(|| json!({}));
            plugin.config_schema.check(&config).map_err(|problems| {
                HarnessError::Invalid(format!("settings for {}: {}", step.plugin_id, problems.join("; ")))
            })?;
            settings.insert(step.plugin_id.clone(), config);
        }
        let seed = request.seed.unwrap_or_else(|| {
            let digest = Sha256Digest::of(format!("seed:{}", upload.sha256).as_bytes());
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest.as_bytes()[..8]);
            u64::from_le_bytes(bytes)
        }) & SEED_MASK;
        let identities: Vec<Value> =
            plan.steps.iter().filter_map(|s| registry.get(&s.plugin_id)).map(|p| p.identity()).collect();
        let set = match (pinned, &request.dataset_kind) {
            (Some(set), _) => Some(set.clone()),
            (None, Some(kind)) => Some(self.0.store.known_issues(kind, None).map_err(|e| match e {
                StoreError::NotFound(_) => HarnessError::Invalid(format!(
                    "no known issues are declared for dataset kind {kind:?}: declare them (PUT /api/v1/known-issues/{kind}) or leave dataset_kind out"
                )),
                other => other.into(),
            })?),
            (None, None) => None,
        };
        let known_issues = match set {
            Some(set) => {
                let issues = known::issues_of(&set).map_err(HarnessError::Invalid)?;
                let kinds = finding_kinds(&registry);
                let preview =
                    known::preview(&issues, &known::reporters(&kinds, &plan.plugin_ids(), &Default::default()), None);
                Some(PreparedKnownIssues { set, preview })
            }
            None => None,
        };
        // The evaluation is part of the run's output, so the version it uses is part of
        // what defines the run.
        let evaluated_against =
            known_issues.as_ref().map(|k| json!({ "dataset_kind": k.set.dataset_kind, "sha256": k.set.sha256 }));
        let fingerprint = Sha256Digest::of(
            json!({
                "input": { "sha256": upload.sha256 },
                "plugins": identities,
                "settings": settings,
                "seed": seed,
                "vigil_version": self.0.vigil_version,
                "known_issues": evaluated_against,
            })
            .to_string()
            .as_bytes(),
        )
        .to_string();
        let mut cache_keys: BTreeMap<String, String> = BTreeMap::new();
        for step in &plan.steps {
            let plugin = registry.get(&step.plugin_id).map(|p| p.identity()).unwrap_or(Value::Null);
            let deps: BTreeMap<&str, &str> =
                step.depends_on.iter().filter_map(|d| cache_keys.get(d).map(|k| (d.as_str(), k.as_str()))).collect();
            let key = Sha256Digest::of(
                json!({
                    "plugin": plugin,
                    "input_sha256": upload.sha256,
                    "settings": settings[&step.plugin_id],
                    "seed": seed,
                    "dependencies": deps,
                })
                .to_string()
                .as_bytes(),
            )
            .to_string();
            cache_keys.insert(step.plugin_id.clone(), key);
        }
        Ok(Prepared { plan, seed, fingerprint, settings, cache_keys, known_issues, upload: Some(upload) })
    }

    /// Records a run and starts it on the runtime, unless an identical run completed and
    /// `fresh` is not set: then that run is returned.
    pub fn submit(
        &self,
        request: &RunRequest,
        by: &str,
        audit: Option<&NewAuditEntry>,
    ) -> Result<Submitted, HarnessError> {
        self.submit_pinned(request, by, audit, None)
    }

    /// As [`Harness::submit`], with the known issues pinned (see [`Harness::prepare_pinned`]).
    pub(crate) fn submit_pinned(
        &self,
        request: &RunRequest,
        by: &str,
        audit: Option<&NewAuditEntry>,
        pinned: Option<&KnownIssueSet>,
    ) -> Result<Submitted, HarnessError> {
        let prepared = self.prepare_pinned(request, pinned)?;
        if !request.fresh
            && let Some(earlier) = self.0.store.completed_run_with_fingerprint(&prepared.fingerprint)?
        {
            if let Some(entry) = audit {
                self.0.store.append_audit(entry)?;
            }
            let message = format!(
                "identical input, plugins and settings: reusing run {} from {} (submit with fresh=true to run again)",
                earlier.id,
                earlier.created_at.to_rfc3339()
            );
            return Ok(Submitted { run: earlier, reused: true, message });
        }
        let run = self.create(&prepared, request, by, audit)?;
        let message = format!(
            "run {} queued: {} plugins in {} layers",
            run.id,
            prepared.plan.steps.len(),
            prepared.plan.layers().len()
        );
        Ok(Submitted { run, reused: false, message })
    }

    fn create(
        &self,
        prepared: &Prepared,
        request: &RunRequest,
        by: &str,
        audit: Option<&NewAuditEntry>,
    ) -> Result<RunRecord, HarnessError> {
        let plan_json = serde_json::to_value(&prepared.plan).unwrap_or(Value::Null);
        let settings = json!({
            "plugins": prepared.settings,
            "fresh": request.fresh,
            "known_issues": prepared.known_issues.as_ref().map(|k| &k.set),
        });
        let steps = prepared
            .plan
            .steps
            .iter()
            .map(|s| NewExecution {
                plugin_id: &s.plugin_id,
                plugin_version: &s.version,
                layer: s.layer,
                cache_key: prepared.cache_keys.get(&s.plugin_id).map_or("", String::as_str),
            })
            .collect();
        let new = NewRun {
            upload_id: &request.upload_id,
            seed: prepared.seed,
            fingerprint: &prepared.fingerprint,
            pipeline: request.pipeline.as_deref(),
            plan: &plan_json,
            settings: &settings,
            created_by: by,
            steps,
        };
        let run = self.0.store.create_run(&new, audit)?;
        self.activate(&run.id);
        Ok(run)
    }

    fn activate(&self, run_id: &str) -> (watch::Receiver<bool>, broadcast::Sender<RunEvent>) {
        let mut active = lock(&self.0.active);
        let entry = active
            .entry(run_id.to_owned())
            .or_insert_with(|| Active { cancel: watch::channel(false).0, events: broadcast::channel(EVENTS_BUFFER).0 });
        (entry.cancel.subscribe(), entry.events.clone())
    }

    /// Live events of a run that is queued or running here.
    pub fn subscribe(&self, run_id: &str) -> Option<broadcast::Receiver<RunEvent>> {
        lock(&self.0.active).get(run_id).map(|a| a.events.subscribe())
    }

    /// Asks a run to stop: running plugins are killed, the rest skipped. A run that is
    /// queued but not executing here (left by another process) is marked canceled directly.
    pub fn cancel(&self, run_id: &str, audit: Option<&NewAuditEntry>) -> Result<RunRecord, HarnessError> {
        let run = self.0.store.get_run(run_id)?;
        if run.status.is_final() {
            return Err(HarnessError::Conflict(format!("run {run_id} already ended ({})", run.status)));
        }
        let signalled = lock(&self.0.active).get(run_id).map(|a| a.cancel.send(true).is_ok()).unwrap_or(false);
        if signalled {
            if let Some(entry) = audit {
                self.0.store.append_audit(entry)?;
            }
            return Ok(run);
        }
        Ok(self.0.store.set_run_status(run_id, RunStatus::Canceled, Some("canceled"), audit)?)
    }

    /// Queues the plugins of a run that did not succeed to run again, keeping the results
    /// of those that did.
    pub fn retry(&self, run_id: &str, audit: Option<&NewAuditEntry>) -> Result<RunRecord, HarnessError> {
        let run = self.0.store.get_run(run_id)?;
        if !run.status.is_retryable() {
            return Err(HarnessError::Conflict(format!(
                "run {run_id} is {}; only failed, canceled, crashed or partly failed runs can be retried",
                run.status
            )));
        }
        let run = self.0.store.set_run_status(run_id, RunStatus::Queued, None, audit)?;
        self.activate(run_id);
        Ok(run)
    }

    /// Marks runs left `queued` or `running` by a process that is gone as `crashed`.
    /// Returns their ids.
    pub fn recover(&self) -> Result<Vec<String>, HarnessError> {
        let mut crashed = Vec::new();
        for run in self.0.store.unfinished_runs()? {
            let owner_alive = run.owner_pid.is_some_and(process_alive);
            let ours = lock(&self.0.active).contains_key(&run.id);
            if !owner_alive && !ours {
                let why = match run.owner_pid {
                    Some(pid) => format!("the process running it (pid {pid}) ended before the run finished"),
                    None => "it was queued by a process that ended before starting it".to_owned(),
                };
                self.0.store.set_run_status(&run.id, RunStatus::Crashed, Some(&why), None)?;
                exec::remove_shared(&self.partial_dir(&run.id));
                crashed.push(run.id);
            }
        }
        Ok(crashed)
    }

    /// Executes a queued run to the end and returns its final record.
    pub async fn execute(&self, run_id: &str) -> Result<RunRecord, HarnessError> {
        let (cancel, events) = self.activate(run_id);
        let result = self.execute_inner(run_id, cancel, &events).await;
        let final_record = match result {
            Ok(run) => Ok(run),
            Err(e) => {
                let why = e.to_string();
                tracing::error!(run_id, error = %why, "run failed");
                exec::remove_shared(&self.partial_dir(run_id));
                self.0.store.set_run_status(run_id, RunStatus::Failed, Some(&why), None).map_err(HarnessError::from)
            }
        };
        if let Ok(run) = &final_record {
            tracing::info!(status = %run.status, "run finished");
            let report =
                run.status.is_final().then(|| self.0.runs_dir.join(&run.dir).join("report.md").display().to_string());
            let _ = events.send(RunEvent::RunFinished { run_id: run_id.to_owned(), status: run.status, report });
        }
        lock(&self.0.active).remove(run_id);
        final_record
    }

    async fn execute_inner(
        &self,
        run_id: &str,
        cancel: watch::Receiver<bool>,
        events: &broadcast::Sender<RunEvent>,
    ) -> Result<RunRecord, HarnessError> {
        let store = &self.0.store;
        let run = store.get_run(run_id)?;
        if run.status != RunStatus::Queued {
            return Err(HarnessError::Conflict(format!("run {run_id} is {}, not queued", run.status)));
        }
        let upload = store.get_upload(&run.upload_id)?;
        let plan: Plan = serde_json::from_value(run.plan.clone())
            .map_err(|e| HarnessError::Invalid(format!("stored plan of run {run_id} is unreadable: {e}")))?;
        let settings = run.settings["plugins"].clone();
        let fresh = run.settings["fresh"].as_bool().unwrap_or(false);
        let registry = self.registry();

        // A finished run being retried goes back to its partial folder until it ends again.
        let dir = self.partial_dir(run_id);
        let done = self.0.runs_dir.join(&run.dir);
        if done.is_dir() {
            std::fs::rename(&done, &dir)
                .map_err(|e| HarnessError::Io(format!("cannot reopen {}: {e}", done.display())))?;
        }
        std::fs::create_dir_all(dir.join("input"))
            .map_err(|e| HarnessError::Io(format!("cannot create {}: {e}", dir.display())))?;
        store.set_run_status(run_id, RunStatus::Running, None, None)?;

        let identities: BTreeMap<&str, Value> = plan
            .steps
            .iter()
            .map(|s| (s.plugin_id.as_str(), registry.get(&s.plugin_id).map(|p| p.identity()).unwrap_or(Value::Null)))
            .collect();
        let manifest = json!({
            "run_id": run.id,
            "fingerprint": run.fingerprint,
            "seed": run.seed,
            "vigil_version": self.0.vigil_version,
            "created_at": run.created_at.to_rfc3339(),
            "input": { "upload_id": upload.id, "file_name": upload.file_name, "format": upload.format, "sha256": upload.sha256, "size_bytes": upload.size_bytes },
            "plan": plan,
            "settings": settings,
            "plugins": identities,
            // The whole declaration, so a bundle replays against the same issues.
            "known_issues": run.settings.get("known_issues").filter(|k| !k.is_null()),
        });
        write_atomic(&dir.join("run_manifest.json"), &pretty_json("run_manifest.json", &manifest)?)
            .map_err(HarnessError::Io)?;
        let _ = events.send(RunEvent::Plan { run_id: run_id.to_owned(), plan: plan.clone() });

        let digest: Sha256Digest = upload
            .sha256
            .parse()
            .map_err(|_| HarnessError::Invalid(format!("upload {} has a malformed sha256", upload.id)))?;
        let input_path = dir.join("input").join(&upload.file_name);
        link_or_copy(&self.0.blobs.path_of(&digest), &input_path).map_err(HarnessError::Io)?;
        let input = InputRef {
            path: input_path,
            file_name: upload.file_name.clone(),
            format: upload.format.clone(),
            sha256: upload.sha256.clone(),
            size_bytes: upload.size_bytes,
        };

        let executions = store.list_executions(run_id)?;
        let cache_keys: BTreeMap<String, String> =
            executions.iter().map(|e| (e.plugin_id.clone(), e.cache_key.clone())).collect();
        let mut statuses: BTreeMap<String, ExecStatus> =
            executions.into_iter().map(|e| (e.plugin_id, e.status)).collect();
        let total = plan.steps.len();
        let semaphore = Arc::new(Semaphore::new(self.0.parallelism));
        let context = RunContext { run_id: run.id.clone(), fingerprint: run.fingerprint.clone() };

        for layer in plan.layers() {
            let mut tasks = Vec::new();
            for plugin_id in layer {
                if statuses.get(plugin_id).is_some_and(|s| s.succeeded()) {
                    continue;
                }
                let step = plan
                    .step(plugin_id)
                    .cloned()
                    .ok_or_else(|| HarnessError::Invalid(format!("{plugin_id} is not in the plan")))?;
                let blocker =
                    step.depends_on.iter().find(|d| !statuses.get(*d).is_some_and(|s| s.succeeded())).cloned();
                let reason = if *cancel.borrow() {
                    Some("the run was canceled before it started".to_owned())
                } else {
                    blocker.map(|d| format!("dependency {d} did not succeed"))
                };
                // Reasons not to start it at all, each recorded like an ending.
                let refusal = match (reason, registry.get(plugin_id)) {
                    (Some(reason), _) => Some((ExecStatus::Skipped, reason)),
                    (None, None) => Some((ExecStatus::Error, format!("plugin {plugin_id} is no longer installed"))),
                    (None, Some(p)) if p.identity() != identities[plugin_id] => Some((
                        ExecStatus::Error,
                        format!("plugin {plugin_id} changed since the run was planned; submit a new run"),
                    )),
                    (None, Some(_)) if !registry.enabled(plugin_id) => Some((
                        ExecStatus::Blocked,
                        format!("plugin {plugin_id} was disabled after the run was planned"),
                    )),
                    (None, Some(_)) => None,
                };
                if let Some((status, why)) = refusal {
                    settle(store, events, run_id, plugin_id, status, why)?;
                    statuses.insert(plugin_id.to_owned(), status);
                    continue;
                }
                let Some(plugin) = registry.get(plugin_id).cloned() else { continue };
                let dependencies = exec::dependencies(&dir, &step.depends_on);
                let spec_parts = (plugin, dependencies, settings.get(plugin_id).cloned().unwrap_or_else(|| json!({})));
                let this = self.clone();
                let (semaphore, input, context, dir, events, cancel) = (
                    Arc::clone(&semaphore),
                    input.clone(),
                    context.clone(),
                    dir.clone(),
                    events.clone(),
                    cancel.clone(),
                );
                let (run_id, seed, layer_no) = (run_id.to_owned(), run.seed, step.layer);
                // Every planned plugin got its key when the run was prepared; an empty key
                // would let unrelated work share a cache entry.
                let cache_key = cache_keys.get(plugin_id).cloned().ok_or_else(|| {
                    HarnessError::Invalid(format!("run {run_id} has no cache key for planned plugin {plugin_id}"))
                })?;
                let span = tracing::info_span!("plugin", plugin_id = %plugin_id, layer = layer_no);
                #[allow(
                    clippy::disallowed_methods,
                    reason = "a layer's plugins are joined before the next layer starts"
                )]
                tasks.push(tokio::spawn(tracing::Instrument::instrument(
                    async move {
                        let _permit = semaphore.acquire_owned().await;
                        let (plugin, dependencies, config) = spec_parts;
                        let plugin_id = plugin.id.clone();
                        let job = PluginJob {
                            run_id,
                            layer: layer_no,
                            plugin,
                            cache_key,
                            dir,
                            input,
                            dependencies,
                            config,
                            seed,
                            run: context,
                            fresh,
                            cancel,
                        };
                        let status = this.run_plugin(job, &events).await;
                        match &status {
                            Ok(status) => tracing::info!(?status, "plugin finished"),
                            Err(e) => tracing::warn!(error = %e, "plugin could not be run"),
                        }
                        (plugin_id, status)
                    },
                    span,
                )));
            }
            for task in tasks {
                match task.await {
                    Ok((plugin_id, Ok(status))) => {
                        statuses.insert(plugin_id, status);
                    }
                    Ok((_, Err(e))) => return Err(e),
                    Err(e) => return Err(HarnessError::Io(format!("a plugin task failed: {e}"))),
                }
            }
            let done = statuses.values().filter(|s| !matches!(s, ExecStatus::Pending | ExecStatus::Running)).count();
            let _ = events.send(RunEvent::Progress { run_id: run_id.to_owned(), done, total });
        }

        // What plugins shared with their dependents served its purpose.
        exec::remove_shared(&dir);
        let canceled = *cancel.borrow();
        let results = self.plugin_results(&run.id, &dir)?;
        let report_written = self.write_report(&run, &upload, &plan, &dir, &results)?;
        let edges = lineage(&run, &upload, &plan, &results);
        store.clear_lineage(run_id)?;
        store.add_lineage(run_id, &edges)?;
        let ordered: Vec<ExecStatus> =
            plan.steps.iter().map(|s| statuses.get(&s.plugin_id).copied().unwrap_or(ExecStatus::Pending)).collect();
        let status = if canceled { RunStatus::Canceled } else { outcome(&ordered, report_written) };
        let error = match status {
            RunStatus::Completed => None,
            RunStatus::Canceled => Some("canceled".to_owned()),
            _ if !report_written => Some("the report could not be written".to_owned()),
            _ => {
                let failed: Vec<&str> = plan
                    .steps
                    .iter()
                    .filter(|s| !statuses.get(&s.plugin_id).is_some_and(|x| x.succeeded()))
                    .map(|s| s.plugin_id.as_str())
                    .collect();
                Some(format!("did not succeed: {}", failed.join(", ")))
            }
        };
        // Finalize: the folder appears under its own name only once everything is written.
        let final_dir = self.0.runs_dir.join(&run.dir);
        std::fs::rename(&dir, &final_dir)
            .map_err(|e| HarnessError::Io(format!("cannot finalize {}: {e}", final_dir.display())))?;
        let _ = std::fs::File::open(&self.0.runs_dir).and_then(|d| d.sync_all());
        Ok(store.set_run_status(run_id, status, error.as_deref(), None)?)
    }

    async fn run_plugin(
        &self,
        job: PluginJob,
        events: &broadcast::Sender<RunEvent>,
    ) -> Result<ExecStatus, HarnessError> {
        let PluginJob { run_id, layer, plugin, cache_key, dir, input, dependencies, config, seed, run, fresh, cancel } =
            job;
        let (run_id, plugin, cache_key, dir) = (run_id.as_str(), &plugin, cache_key.as_str(), dir.as_path());
        let store = &self.0.store;
        store.start_execution(run_id, &plugin.id)?;
        let _ = events.send(RunEvent::PluginStarted { run_id: run_id.to_owned(), plugin_id: plugin.id.clone(), layer });

        if !fresh && let Some((from_run, from_dir)) = store.cached_execution(cache_key, run_id)? {
            let source = exec_dir(&self.0.runs_dir.join(&from_dir), &plugin.id);
            let target = exec_dir(dir, &plugin.id);
            let _ = std::fs::remove_dir_all(&target);
            let reused = link_tree(&source, &target);
            if reused.is_ok() && still_valid(plugin, &target.join("response.json")) {
                let end = ExecutionEnd {
                    status: Some(ExecStatus::Cached),
                    cached_from: Some(from_run.clone()),
                    duration_us: Some(0),
                    ..ExecutionEnd::default()
                };
                store.finish_execution(run_id, &plugin.id, &end)?;
                let _ = events.send(RunEvent::PluginFinished {
                    run_id: run_id.to_owned(),
                    plugin_id: plugin.id.clone(),
                    status: ExecStatus::Cached,
                    error: None,
                    duration_ms: 0,
                });
                return Ok(ExecStatus::Cached);
            }
        }

        let sink: crate::sandbox::LineSink = {
            let (events, run_id, plugin_id) = (events.clone(), run_id.to_owned(), plugin.id.clone());
            Arc::new(move |line: &str| {
                let _ = events.send(RunEvent::Log {
                    run_id: run_id.clone(),
                    plugin_id: plugin_id.clone(),
                    line: line.to_owned(),
                });
            })
        };
        let spec = ExecSpec {
            plugin,
            run_dir: dir,
            input,
            dependencies,
            config,
            seed,
            run,
            cancel: Some(cancel),
            on_stderr_line: Some(sink),
        };
        let result = exec::execute(&self.0.runner, &self.0.exec, spec).await;
        let end = ExecutionEnd {
            status: Some(result.status),
            cached_from: None,
            duration_us: Some(u64::try_from(result.duration.as_micros()).unwrap_or(u64::MAX)),
            cpu_us: result.cpu_us,
            max_rss_kib: result.max_rss_kib,
            error: result.error.clone(),
            violations: Some(serde_json::to_value(&result.violations).unwrap_or(Value::Null)),
            enforced: result.enforced.as_ref().and_then(|e| serde_json::to_value(e).ok()),
        };
        store.finish_execution(run_id, &plugin.id, &end)?;
        let _ = events.send(RunEvent::PluginFinished {
            run_id: run_id.to_owned(),
            plugin_id: plugin.id.clone(),
            status: result.status,
            error: result.error,
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        });
        Ok(result.status)
    }

    /// How each plugin of a run ended, with the responses of those that succeeded (read
    /// once, for the report and the lineage).
    fn plugin_results(&self, run_id: &str, dir: &Path) -> Result<BTreeMap<String, report::PluginResult>, HarnessError> {
        let mut results = BTreeMap::new();
        for e in self.0.store.list_executions(run_id)? {
            let response: Option<Response> = e
                .status
                .succeeded()
                .then(|| std::fs::read(exec_dir(dir, &e.plugin_id).join("response.json")).ok())
                .flatten()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            let violations = e.violations.as_array().cloned().unwrap_or_default();
            let result = report::PluginResult { status: e.status, error: e.error.clone(), violations, response };
            results.insert(e.plugin_id.clone(), result);
        }
        Ok(results)
    }

    /// Writes `report.json`, `report.md` and `evaluation.json`. Returns whether all three
    /// exist afterwards.
    fn write_report(
        &self,
        run: &RunRecord,
        upload: &UploadRecord,
        plan: &Plan,
        dir: &Path,
        results: &BTreeMap<String, report::PluginResult>,
    ) -> Result<bool, HarnessError> {
        let input = report::ReportInput {
            run_id: &run.id,
            fingerprint: &run.fingerprint,
            seed: run.seed,
            vigil_version: &self.0.vigil_version,
            created_at: &run.created_at.to_rfc3339(),
            upload,
            plan,
            results,
        };
        let mut report_json = report::build(&input);
        // The evaluation matches the report's findings (by their ids), so it comes second.
        let set: Option<KnownIssueSet> =
            run.settings.get("known_issues").and_then(|k| serde_json::from_value(k.clone()).ok());
        let registry = self.registry();
        let kinds = finding_kinds(&registry);
        let succeeded = results.iter().filter(|(_, r)| r.status.succeeded()).map(|(id, _)| id.as_str()).collect();
        let reporters = known::reporters(&kinds, &plan.plugin_ids(), &succeeded);
        let evaluation = known::evaluate(set.as_ref(), &report_json, &reporters);
        report_json["evaluation"] = evaluation.clone();
        report::validate(&report_json).map_err(HarnessError::Invalid)?;
        let pretty = pretty_json("report.json", &report_json)?;
        write_atomic(&dir.join("report.json"), &pretty).map_err(HarnessError::Io)?;
        write_atomic(&dir.join("report.md"), report::markdown(&report_json).as_bytes()).map_err(HarnessError::Io)?;
        let evaluation = pretty_json("evaluation.json", &evaluation)?;
        write_atomic(&dir.join("evaluation.json"), &evaluation).map_err(HarnessError::Io)?;
        Ok(REQUIRED_ARTIFACTS.iter().all(|name| dir.join(name).is_file()))
    }
}

/// A dataset kind: a dotted name like `erp.invoices`.
/// Whether a response kept from an earlier run (at `path`) passes the checks a new one
/// must; they may have grown since it was written.
fn still_valid(plugin: &crate::manifest::Plugin, path: &Path) -> bool {
    let Some(response) = std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Response>(&b).ok()) else {
        return false;
    };
    match exec::check_dataset(plugin, &response) {
        Ok(()) => true,
        Err(e) => {
            tracing::info!(plugin = %plugin.id, reason = %e, "an earlier result is not reused");
            false
        }
    }
}

fn check_dataset_kind(kind: &str) -> Result<(), HarnessError> {
    let ok = !kind.is_empty()
        && kind.len() <= 100
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(HarnessError::Invalid(format!(
            "dataset kind {kind:?} must be 1 to 100 lowercase letters, digits, '.', '_' or '-' (like erp.invoices)"
        )))
    }
}

/// Every plugin's declared finding kinds, by id.
fn finding_kinds(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    registry.plugins().iter().map(|p| (p.id.clone(), p.finding_kinds.clone())).collect()
}

/// The run's lineage: upload → dataset version (when an ingest plugin reported one) → run
/// → plugin result → artifact.
fn lineage(
    run: &RunRecord,
    upload: &UploadRecord,
    plan: &Plan,
    results: &BTreeMap<String, report::PluginResult>,
) -> Vec<LineageEdge> {
    let edge = |fk: &str, fi: &str, tk: &str, ti: &str, rel: &str| LineageEdge {
        from_kind: fk.to_owned(),
        from_id: fi.to_owned(),
        to_kind: tk.to_owned(),
        to_id: ti.to_owned(),
        relation: rel.to_owned(),
    };
    let mut edges = Vec::new();
    let dataset = report::dataset_version(plan, results).map(|(_, d)| d.data_hash.clone());
    for step in &plan.steps {
        let Some(result) = results.get(&step.plugin_id).filter(|r| r.status.succeeded()) else { continue };
        let response = result.response.as_ref();
        let result_id = format!("{}/{}", run.id, step.plugin_id);
        edges.push(edge("run", &run.id, "plugin_result", &result_id, "produced"));
        for artifact in response.into_iter().flat_map(|r| &r.artifacts) {
            edges.push(edge(
                "plugin_result",
                &result_id,
                "artifact",
                &report::artifact_path(&step.plugin_id, &artifact.path),
                "wrote",
            ));
        }
    }
    let mut head = Vec::new();
    match &dataset {
        Some(hash) => {
            head.push(edge("upload", &upload.id, "dataset_version", hash, "ingested_as"));
            head.push(edge("dataset_version", hash, "run", &run.id, "input_of"));
        }
        None => head.push(edge("upload", &upload.id, "run", &run.id, "input_of")),
    }
    for name in REQUIRED_ARTIFACTS {
        edges.push(edge("run", &run.id, "artifact", name, "wrote"));
    }
    head.extend(edges);
    head
}

/// Ends an execution that never started, recording why and telling watchers.
fn settle(
    store: &Store,
    events: &broadcast::Sender<RunEvent>,
    run_id: &str,
    plugin_id: &str,
    status: ExecStatus,
    why: String,
) -> Result<(), HarnessError> {
    let end = ExecutionEnd { status: Some(status), error: Some(why.clone()), ..ExecutionEnd::default() };
    store.finish_execution(run_id, plugin_id, &end)?;
    let _ = events.send(RunEvent::PluginFinished {
        run_id: run_id.to_owned(),
        plugin_id: plugin_id.to_owned(),
        status,
        error: Some(why),
        duration_ms: 0,
    });
    Ok(())
}

/// The registry: built-ins, the active install of every installed plugin, the plugins folder.
fn load_registry(store: &Store, data_dir: &Path, plugins_dir: &Path, vigil_version: &str) -> Registry {
    let installed = match store.installed_plugins() {
        Ok(all) => all
            .into_iter()
            .map(|p| crate::registry::InstalledFolder {
                folder: crate::install::installed_dir(data_dir).join(&p.active.bundle_sha256),
                enabled: p.enabled,
                approved: p.active.approved_at.is_some(),
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read installed plugins");
            Vec::new()
        }
    };
    Registry::load_with(plugins_dir, &installed, vigil_version)
}

/// Whether another process with this pid exists (signal 0 probes without sending
/// anything). Our own pid counts as gone: a run recorded under it by an earlier process
/// (a restarted container reuses pids) is not running here unless it is active.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid == i32::try_from(std::process::id()).unwrap_or(0) {
        return false;
    }
    matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Ok(()) | Err(nix::errno::Errno::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_result_that_breaks_todays_rules_is_not_reused() {
        let plugins = crate::builtin::manifests("0.1.0");
        let (ingest, profile) = (&plugins[0], &plugins[1]);
        assert_eq!((ingest.id.as_str(), profile.id.as_str()), ("core.inspect", "core.text_profile"));
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("response.json");
        let dataset = json!({ "data_hash": "sha256:00", "rows": 1, "columns": 1 });
        std::fs::write(&path, json!({ "status": "ok", "summary": "", "dataset": dataset }).to_string()).expect("write");
        assert!(still_valid(ingest, &path));
        assert!(!still_valid(profile, &path), "a profile plugin reported a dataset version");
        std::fs::write(&path, json!({ "status": "ok", "summary": "" }).to_string()).expect("write");
        assert!(still_valid(profile, &path));
        std::fs::write(&path, "not json").expect("write");
        assert!(!still_valid(ingest, &path));
        assert!(!still_valid(ingest, &dir.path().join("missing.json")));
    }
}
