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
use vigil_core::id::{RunId, UploadId};
use vigil_core::run::{ExecStatus, RunStatus, outcome};
use vigil_store::ports::{Blobs, Storage};
use vigil_store::{
    ExecutionEnd, ExecutionRecord, KnownIssueSet, LineageEdge, NewAuditEntry, NewExecution, NewRun, RunRecord,
    StoreError, UploadRecord,
};

use crate::exec::{self, ExecConfig, ExecSpec, exec_dir};
use crate::format::Format;
use crate::fsutil::{TaskFailed, link_tree, off_thread, write_atomic};
use crate::known::{self, Declaration, IssuePreview, KnownIssue};
use crate::plan::{Plan, PlanError, plan};
use crate::protocol::{DependencyRef, InputRef, Response, RunContext};
use crate::registry::Registry;
use crate::report;
use crate::sandbox::{Runner, UidPool};

mod execute;

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
pub(crate) fn pretty_json(name: &str, value: &impl Serialize) -> Result<Vec<u8>, HarnessError> {
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

impl From<TaskFailed> for HarnessError {
    fn from(e: TaskFailed) -> Self {
        HarnessError::Io(e.into())
    }
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
    #[serde(default, deserialize_with = "vigil_core::number::whole_opt")]
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
    store: Arc<dyn Storage>,
    blobs: Arc<dyn Blobs>,
    runs_dir: PathBuf,
    plugins_dir: PathBuf,
    vigil_version: String,
    parallelism: usize,
    registry: RwLock<Arc<Registry>>,
    /// The store's plugins version the registry was loaded at (see [`vigil_store::ports::Runs::plugins_version`]).
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
    /// The harness on its storage ports. Creates its folders under the data directory and
    /// loads the plugins.
    pub async fn new(
        options: HarnessOptions,
        store: Arc<dyn Storage>,
        blobs: Arc<dyn Blobs>,
    ) -> Result<Harness, HarnessError> {
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
        let registry = load_registry(store.as_ref(), &data_dir, &options.plugins_dir, &options.vigil_version).await?;
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

    /// The plugins, reloaded first if installed plugins changed (in this process or
    /// another). When the store cannot say, the plugins loaded last serve.
    pub async fn registry(&self) -> Arc<Registry> {
        match self.0.store.plugins_version().await {
            Ok(version) => {
                let stale = *lock(&self.0.registry_version) != version;
                if stale {
                    match self.reload_plugins().await {
                        Ok(fresh) => {
                            *lock(&self.0.registry_version) = version;
                            return fresh;
                        }
                        Err(e) => tracing::error!(error = %e, "cannot reload the plugins; the loaded ones serve"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the plugins version; the loaded plugins serve"),
        }
        Arc::clone(&self.0.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the installed plugins and the plugins folder.
    pub async fn reload_plugins(&self) -> Result<Arc<Registry>, HarnessError> {
        let fresh = load_registry(self.0.store.as_ref(), &self.0.data_dir, &self.0.plugins_dir, &self.0.vigil_version);
        let fresh = Arc::new(fresh.await?);
        *self.0.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Takes in an upload: `content` streamed into the blob store and recorded (see
    /// [`crate::uploads::store_upload`]).
    pub async fn upload(
        &self,
        content: Box<dyn std::io::Read + Send>,
        file_name: &str,
        by: &str,
        audit: Option<&(dyn Fn(Sha256Digest) -> NewAuditEntry + Sync)>,
    ) -> Result<vigil_store::UploadAttempt, StoreError> {
        crate::uploads::store_upload(self.0.store.as_ref(), self.0.blobs.as_ref(), content, file_name, by, audit).await
    }

    /// The storage the harness keeps its records in.
    pub fn store(&self) -> &dyn Storage {
        self.0.store.as_ref()
    }

    pub fn data_dir(&self) -> &Path {
        &self.0.data_dir
    }

    pub fn vigil_version(&self) -> &str {
        &self.0.vigil_version
    }

    /// The blobs uploads are kept in.
    pub fn blobs(&self) -> &dyn Blobs {
        self.0.blobs.as_ref()
    }

    /// Validates every plugin and runs each one's self-test in folders under `work`.
    pub async fn doctor(&self, work: &Path) -> Result<crate::doctor::DoctorReport, HarnessError> {
        let registry = self.reload_plugins().await?;
        Ok(crate::doctor::doctor(&registry, &self.0.runner, &self.0.exec, work).await)
    }

    /// The folder of a run: finalized, or still partial.
    pub fn run_dir(&self, run: &RunRecord) -> PathBuf {
        let done = self.0.runs_dir.join(&run.dir);
        if done.is_dir() { done } else { self.partial_dir(run.id.as_str()) }
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
    pub async fn read_report(&self, run_id: &str) -> Result<Value, HarnessError> {
        let run = self.0.store.get_run(RunId::new(run_id)).await?;
        let path = self.run_dir(&run).join("report.json");
        let missing = format!("report of run {run_id}");
        off_thread(move || {
            let bytes = std::fs::read(&path).map_err(|_| HarnessError::NotFound(missing))?;
            serde_json::from_slice(&bytes).map_err(|e| HarnessError::Io(format!("{}: {e}", path.display())))
        })
        .await
    }

    /// Saves a dataset kind's known issues as its next version, once every issue is valid;
    /// true when a version was added (false: the latest already held these issues).
    pub async fn save_known_issues(
        &self,
        dataset_kind: &str,
        declaration: &Declaration,
        by: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<(KnownIssueSet, bool), HarnessError> {
        check_dataset_kind(dataset_kind)?;
        declaration
            .validate()
            .map_err(|p| HarnessError::Invalid(format!("known issues of {dataset_kind:?}: {}", p.join("; "))))?;
        let issues = serde_json::to_value(&declaration.issues).map_err(|e| HarnessError::Invalid(e.to_string()))?;
        Ok(self.0.store.save_known_issues(dataset_kind.to_owned(), issues, by.to_owned(), audit).await?)
    }

    /// Which check each known issue becomes and whether it can be found: for an upload's
    /// plan when one is given (else for every plugin), and matched against a run's
    /// findings when one is given.
    pub async fn preview_known_issues(&self, request: &PreviewRequest) -> Result<Vec<IssuePreview>, HarnessError> {
        let issues = match (&request.issues, &request.dataset_kind) {
            (Some(issues), _) => {
                let declaration = Declaration { issues: issues.clone() };
                declaration.validate().map_err(|p| HarnessError::Invalid(p.join("; ")))?;
                declaration.issues
            }
            (None, Some(kind)) => known::issues_of(&self.0.store.known_issues(kind.clone(), None).await?)
                .map_err(HarnessError::Invalid)?,
            (None, None) => {
                return Err(HarnessError::Invalid(
                    "give the issues to preview, or the dataset_kind whose saved issues to preview".into(),
                ));
            }
        };
        let registry = self.registry().await;
        let kinds = finding_kinds(&registry);
        let plan = match &request.upload_id {
            Some(id) => {
                let upload = self.0.store.get_upload(UploadId::new(id.as_str())).await?;
                let format: Format = upload.format.parse().unwrap_or(Format::Binary);
                Some(plan(&registry.candidates(format), format, None, &[])?)
            }
            None => None,
        };
        let planned = match &plan {
            Some(plan) => plan.plugin_ids(),
            None => kinds.keys().map(String::as_str).collect(),
        };
        let report = match request.run_id.as_deref() {
            Some(id) => Some(self.read_report(id).await?),
            None => None,
        };
        Ok(known::preview(&issues, &known::reporters(&kinds, &planned, &Default::default()), report.as_ref()))
    }

    /// Plans a request without running it: the plan, seed, fingerprint and cache keys.
    pub async fn prepare(&self, request: &RunRequest) -> Result<Prepared, HarnessError> {
        self.prepare_pinned(request, None).await
    }

    /// As [`Harness::prepare`], evaluating against `pinned` known issues (a replayed
    /// bundle's) instead of the store's latest for the request's dataset kind.
    async fn prepare_pinned(
        &self,
        request: &RunRequest,
        pinned: Option<&KnownIssueSet>,
    ) -> Result<Prepared, HarnessError> {
        let upload = self.0.store.get_upload(UploadId::new(request.upload_id.as_str())).await?;
        let format: Format = upload.format.parse().unwrap_or(Format::Binary);
        let registry = self.registry().await;
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
            let mut config = request.settings.get(&step.plugin_id).cloned().unwrap_or_else(|| json!({}));
            // `5000.0` is the integer 5000, for the schema, the plugin and the fingerprint alike.
            vigil_pack::whole_numbers_as_integers(&mut config);
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
            (None, Some(kind)) => Some(self.0.store.known_issues(kind.clone(), None).await.map_err(|e| match e {
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
    pub async fn submit(
        &self,
        request: &RunRequest,
        by: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<Submitted, HarnessError> {
        self.submit_pinned(request, by, audit, None).await
    }

    /// As [`Harness::submit`], with the known issues pinned (see [`Harness::prepare_pinned`]).
    pub(crate) async fn submit_pinned(
        &self,
        request: &RunRequest,
        by: &str,
        audit: Option<NewAuditEntry>,
        pinned: Option<&KnownIssueSet>,
    ) -> Result<Submitted, HarnessError> {
        let prepared = self.prepare_pinned(request, pinned).await?;
        if !request.fresh
            && let Some(earlier) = self.0.store.completed_run_with_fingerprint(prepared.fingerprint.clone()).await?
        {
            if let Some(entry) = audit {
                self.0.store.append_audit(entry).await?;
            }
            let message = format!(
                "identical input, plugins and settings: reusing run {} from {} (submit with fresh=true to run again)",
                earlier.id,
                earlier.created_at.to_rfc3339()
            );
            return Ok(Submitted { run: earlier, reused: true, message });
        }
        let run = self.create(&prepared, request, by, audit).await?;
        let message = format!(
            "run {} queued: {} plugins in {} layers",
            run.id,
            prepared.plan.steps.len(),
            prepared.plan.layers().len()
        );
        Ok(Submitted { run, reused: false, message })
    }

    async fn create(
        &self,
        prepared: &Prepared,
        request: &RunRequest,
        by: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<RunRecord, HarnessError> {
        let plan_json = serde_json::to_value(&prepared.plan)
            .map_err(|e| HarnessError::Invalid(format!("the plan cannot be recorded: {e}")))?;
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
                plugin_id: s.plugin_id.clone(),
                plugin_version: s.version.clone(),
                layer: s.layer,
                cache_key: prepared.cache_keys.get(&s.plugin_id).cloned().unwrap_or_default(),
            })
            .collect();
        let new = NewRun {
            upload_id: UploadId::new(request.upload_id.clone()),
            seed: prepared.seed,
            fingerprint: prepared.fingerprint.clone(),
            pipeline: request.pipeline.clone(),
            plan: plan_json,
            settings,
            created_by: by.to_owned(),
            steps,
        };
        let run = self.0.store.create_run(new, audit).await?;
        self.activate(run.id.as_str());
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
    pub async fn cancel(&self, run_id: &str, audit: Option<NewAuditEntry>) -> Result<RunRecord, HarnessError> {
        let run = self.0.store.get_run(RunId::new(run_id)).await?;
        if run.status.is_final() {
            return Err(HarnessError::Conflict(format!("run {run_id} already ended ({})", run.status)));
        }
        let signalled = lock(&self.0.active).get(run_id).map(|a| a.cancel.send(true).is_ok()).unwrap_or(false);
        if signalled {
            if let Some(entry) = audit {
                self.0.store.append_audit(entry).await?;
            }
            return Ok(run);
        }
        Ok(self.0.store.set_run_status(run.id, RunStatus::Canceled, Some("canceled".into()), audit).await?)
    }

    /// Queues the plugins of a run that did not succeed to run again, keeping the results
    /// of those that did.
    pub async fn retry(&self, run_id: &str, audit: Option<NewAuditEntry>) -> Result<RunRecord, HarnessError> {
        let run = self.0.store.get_run(RunId::new(run_id)).await?;
        if !run.status.is_retryable() {
            return Err(HarnessError::Conflict(format!(
                "run {run_id} is {}; only failed, canceled, crashed or partly failed runs can be retried",
                run.status
            )));
        }
        let run = self.0.store.set_run_status(run.id, RunStatus::Queued, None, audit).await?;
        self.activate(run_id);
        Ok(run)
    }

    /// Marks runs left `queued` or `running` by a process that is gone as `crashed`.
    /// Returns their ids.
    pub async fn recover(&self) -> Result<Vec<String>, HarnessError> {
        let mut crashed = Vec::new();
        for run in self.0.store.unfinished_runs().await? {
            let owner_alive = run.owner_pid.is_some_and(process_alive);
            let ours = lock(&self.0.active).contains_key(run.id.as_str());
            if !owner_alive && !ours {
                let why = match run.owner_pid {
                    Some(pid) => format!("the process running it (pid {pid}) ended before the run finished"),
                    None => "it was queued by a process that ended before starting it".to_owned(),
                };
                self.0.store.set_run_status(run.id.clone(), RunStatus::Crashed, Some(why), None).await?;
                let dir = self.partial_dir(run.id.as_str());
                exec::remove_shared_off_thread(dir).await?;
                crashed.push(run.id.into());
            }
        }
        Ok(crashed)
    }
}

/// A dataset kind: a dotted name like `erp.invoices`.
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

/// The registry: built-ins, the active install of every installed plugin, the plugins
/// folder. A store that cannot list the installs is an error, not an empty list: the
/// plugins would silently vanish.
async fn load_registry(
    store: &dyn Storage,
    data_dir: &Path,
    plugins_dir: &Path,
    vigil_version: &str,
) -> Result<Registry, HarnessError> {
    let installed: Vec<crate::registry::InstalledFolder> = store
        .installed_plugins()
        .await?
        .into_iter()
        .map(|p| crate::registry::InstalledFolder {
            folder: crate::install::installed_dir(data_dir).join(&p.active.bundle_sha256),
            enabled: p.enabled,
            approved: p.active.approved_at.is_some(),
        })
        .collect();
    let (plugins_dir, vigil_version) = (plugins_dir.to_owned(), vigil_version.to_owned());
    off_thread(move || Ok(Registry::load_with(&plugins_dir, &installed, &vigil_version))).await
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
