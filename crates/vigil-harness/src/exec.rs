//! Executing one plugin: build its request and sandbox policy, run it, and judge the answer.
//!
//! The execution folder (`<run>/plugins/<id>/`) holds `request.json`, `response.json`,
//! `stderr.log`, `sandbox.json` (what was enforced and how it ended), and three folders the
//! plugin may write: `scratch/` (its working directory), `artifacts/` (its output) and
//! `share/` (files for its dependents in this run, removed when the run ends).
//! The execution folder itself is not writable by the plugin, so the record of what it did
//! cannot be forged from inside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_core::run::ExecStatus;

use crate::fsutil::{inside, off_thread, write_atomic};
use crate::manifest::{Entrypoint, Plugin, PluginKind, check_relative};
use crate::protocol::{
    DependencyRef, InputRef, PROTOCOL_VERSION, PluginRef, Request, Response, RunContext, check_findings,
};
use crate::sandbox::{Enforcement, Job, Limits, Policy, Runner, Verdict, Violation, system_read_paths};

/// Processes a plugin may run at once.
const PLUGIN_PROCESSES_MAX: u64 = 64;
/// Open files a plugin may hold.
const PLUGIN_OPEN_FILES_MAX: u64 = 1024;
/// Largest file a plugin may write.
const PLUGIN_FILE_BYTES_MAX: u64 = 4 << 30;

/// Settings shared by every execution.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// The `vigil` binary: the sandbox helper and the built-in plugins.
    pub vigil_exe: PathBuf,
    pub strict: bool,
    pub stdout_max_bytes: usize,
    pub stderr_max_bytes: u64,
    /// The database file, for plugins that declare `database_read`.
    pub database: Option<PathBuf>,
}

/// One plugin to execute.
pub struct ExecSpec<'a> {
    pub plugin: &'a Plugin,
    pub run_dir: &'a Path,
    pub input: InputRef,
    pub dependencies: BTreeMap<String, DependencyRef>,
    pub config: Value,
    pub seed: u64,
    pub run: RunContext,
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// Receives the plugin's stderr lines as they come (live log events).
    pub on_stderr_line: Option<crate::sandbox::LineSink>,
}

impl std::fmt::Debug for ExecSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSpec").field("plugin", &self.plugin.id).field("run", &self.run).finish_non_exhaustive()
    }
}

/// How an execution went.
#[derive(Clone, Debug)]
pub struct ExecResult {
    pub status: ExecStatus,
    pub error: Option<String>,
    pub violations: Vec<Violation>,
    pub response: Option<Response>,
    pub enforced: Option<Enforcement>,
    pub duration: Duration,
    pub cpu_us: Option<u64>,
    pub max_rss_kib: Option<u64>,
}

impl ExecResult {
    fn failed(status: ExecStatus, error: String, started: Instant) -> ExecResult {
        ExecResult {
            status,
            error: Some(error),
            violations: Vec::new(),
            response: None,
            enforced: None,
            duration: started.elapsed(),
            cpu_us: None,
            max_rss_kib: None,
        }
    }
}

/// The folder of an execution that holds what it shares with its dependents.
pub const SHARE_DIR: &str = "share";

/// [`remove_shared`] on the blocking pool.
pub async fn remove_shared_off_thread(run_dir: PathBuf) -> Result<(), crate::runs::HarnessError> {
    off_thread(move || {
        remove_shared(&run_dir);
        Ok(())
    })
    .await
}

/// Removes what every plugin of a run shared with its dependents (the run has ended, or
/// will be retried from the start). Missing folders are no error.
pub fn remove_shared(run_dir: &Path) {
    let Ok(plugins) = std::fs::read_dir(run_dir.join("plugins")) else { return };
    for plugin in plugins.flatten() {
        let share = plugin.path().join(SHARE_DIR);
        if let Err(e) = std::fs::remove_dir_all(&share)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %share.display(), error = %e, "could not remove a plugin's shared files");
        }
    }
}

/// Whether `rel` (a path inside a run folder) is a plugin's scratch or shared folder,
/// neither of which is a result: never listed, served or bundled.
pub fn is_transient(rel: &Path) -> bool {
    let parts: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
    parts.len() >= 3 && parts[0] == "plugins" && (parts[2] == "scratch" || parts[2] == SHARE_DIR)
}

/// What a plugin is told about each plugin it depends on in a run: where their responses
/// and artifacts are, and what they shared when it is still there.
pub fn dependencies(run_dir: &Path, depends_on: &[String]) -> BTreeMap<String, DependencyRef> {
    depends_on
        .iter()
        .map(|id| {
            let dir = exec_dir(run_dir, id);
            let dependency = DependencyRef {
                response_path: dir.join("response.json"),
                artifacts_dir: dir.join("artifacts"),
                share_dir: Some(dir.join(SHARE_DIR)).filter(|d| d.is_dir()),
            };
            (id.clone(), dependency)
        })
        .collect()
}

/// The execution folder of `plugin_id` in a run.
pub fn exec_dir(run_dir: &Path, plugin_id: &str) -> PathBuf {
    run_dir.join("plugins").join(plugin_id)
}

/// Executes one plugin in the sandbox and judges its response.
pub async fn execute(runner: &Runner, config: &ExecConfig, spec: ExecSpec<'_>) -> ExecResult {
    let started = Instant::now();
    let plugin = spec.plugin;
    let dir = exec_dir(spec.run_dir, &plugin.id);
    let scratch = dir.join("scratch");
    let artifacts = dir.join("artifacts");
    let share = dir.join(SHARE_DIR);
    let request = Request {
        protocol: PROTOCOL_VERSION,
        run: spec.run.clone(),
        plugin: PluginRef { id: plugin.id.clone(), version: plugin.version.clone() },
        config: spec.config.clone(),
        input: spec.input.clone(),
        dependencies: spec.dependencies.clone(),
        output_dir: artifacts.clone(),
        scratch_dir: scratch.clone(),
        share_dir: Some(share.clone()),
        seed: spec.seed,
        budgets: plugin.budgets,
    };
    let request_json = match serde_json::to_vec_pretty(&request) {
        Ok(json) => json,
        Err(e) => return ExecResult::failed(ExecStatus::Error, format!("cannot encode the request: {e}"), started),
    };
    // A retry starts from a clean slate: the folders made anew, the request written.
    let set_up = {
        let (dir, request_json) = (dir.clone(), request_json.clone());
        let folders = [scratch.join("tmp"), artifacts.clone(), share.clone()];
        off_thread(move || {
            let _ = std::fs::remove_dir_all(&dir);
            for d in &folders {
                std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            }
            write_atomic(&dir.join("request.json"), &request_json)
        })
        .await
    };
    if let Err(e) = set_up {
        return ExecResult::failed(ExecStatus::Error, e, started);
    }
    if let Err(problems) = plugin.config_schema.check(&spec.config) {
        return ExecResult::failed(
            ExecStatus::Error,
            format!("settings do not match the plugin's config schema: {}", problems.join("; ")),
            started,
        );
    }
    let policy = match policy(runner, config, &spec, &dir, &scratch, &[&artifacts, &share]) {
        Ok(policy) => policy,
        Err(e) => return ExecResult::failed(ExecStatus::Blocked, e, started),
    };
    let job = Job {
        policy,
        stdin: request_json,
        wall: Duration::from_millis(plugin.budgets.time_limit_ms),
        stdout_cap_bytes: config.stdout_max_bytes,
        stderr_log: dir.join("stderr.log"),
        stderr_cap_bytes: config.stderr_max_bytes,
        cancel: spec.cancel.clone(),
        on_stderr_line: spec.on_stderr_line.clone(),
    };
    let outcome = match runner.run(job).await {
        Ok(outcome) => outcome,
        Err(e) => return ExecResult::failed(ExecStatus::Error, e.to_string(), started),
    };

    let mut result = ExecResult {
        status: ExecStatus::Ok,
        error: None,
        violations: Vec::new(),
        response: None,
        enforced: Some(outcome.enforced.clone()),
        duration: outcome.wall,
        cpu_us: Some(outcome.cpu_us),
        max_rss_kib: Some(outcome.max_rss_kib),
    };
    match &outcome.verdict {
        Verdict::Ok => match judge_response(plugin, &outcome.stdout, &artifacts) {
            Ok(response) => {
                if let Some(why) =
                    response.error.clone().filter(|_| response.status == crate::protocol::ResponseStatus::Error)
                {
                    result.status = ExecStatus::Error;
                    result.error = Some(format!("the plugin reported an error: {why}"));
                }
                result.response = Some(response);
            }
            Err(why) => {
                result.status = ExecStatus::Error;
                result.error = Some(why);
            }
        },
        Verdict::Error(why) if why.starts_with("canceled") => {
            result.status = ExecStatus::Skipped;
            result.error = Some(format!("run canceled: {why}"));
        }
        Verdict::Error(why) if why.starts_with("sandbox: strict sandbox") => {
            result.status = ExecStatus::Blocked;
            result.error = Some(why.clone());
        }
        Verdict::Error(why) => {
            result.status = ExecStatus::Error;
            result.error = Some(why.clone());
        }
        Verdict::Timeout(v) => {
            result.status = ExecStatus::Timeout;
            result.error = Some(v.reason.clone());
            result.violations.push(v.clone());
        }
        Verdict::Violation(v) => {
            result.status = ExecStatus::Violation;
            let others = outcome.denials.len().saturating_sub(1) as u64 + outcome.denials_dropped;
            result.error = Some(match others {
                0 => v.reason.clone(),
                1 => format!("{} (and 1 more denial, listed under violations)", v.reason),
                n => format!("{} (and {n} more denials, listed under violations)", v.reason),
            });
            result.violations.push(v.clone());
        }
    }
    // Every denial is kept, not just the one the verdict names.
    for denial in &outcome.denials {
        if !result.violations.contains(denial) {
            result.violations.push(denial.clone());
        }
    }
    if outcome.stderr_truncated {
        let note =
            format!("stderr was {} bytes; the log keeps the first {}", outcome.stderr_bytes, config.stderr_max_bytes);
        result.error = Some(result.error.map_or(note.clone(), |e| format!("{e} ({note})")));
    }
    let response_json = result.response.as_ref().and_then(|r| serde_json::to_vec_pretty(r).ok());
    let written = {
        let dir = dir.clone();
        off_thread(move || match response_json {
            Some(json) => write_atomic(&dir.join("response.json"), &json),
            None => Ok(()),
        })
        .await
    };
    if let Err(e) = written {
        result.status = ExecStatus::Error;
        result.error = Some(e);
    }
    let record = json!({
        "status": result.status,
        "error": result.error,
        "violations": result.violations,
        "enforced": outcome.enforced,
        "exit": outcome.exit.map(|e| json!({ "code": e.code, "signal": e.signal })),
        "stdout_bytes": outcome.stdout.len(),
        "stderr_bytes": outcome.stderr_bytes,
        "stderr_truncated": outcome.stderr_truncated,
        "denials_dropped": outcome.denials_dropped,
    });
    if let Ok(json) = serde_json::to_vec_pretty(&record)
        && let Err(e) = off_thread(move || write_atomic(&dir.join("sandbox.json"), &json)).await
    {
        tracing::warn!(error = %e, "could not write the execution's sandbox.json");
    }
    result
}

/// The sandbox policy for one execution.
fn policy(
    runner: &Runner,
    config: &ExecConfig,
    spec: &ExecSpec<'_>,
    dir: &Path,
    scratch: &Path,
    outputs: &[&Path],
) -> Result<Policy, String> {
    let plugin = spec.plugin;
    let mut read_paths = system_read_paths();
    read_paths.push(spec.input.path.clone());
    for dep in spec.dependencies.values() {
        read_paths.push(dep.response_path.clone());
        read_paths.push(dep.artifacts_dir.clone());
        read_paths.extend(dep.share_dir.clone());
    }
    let (program, args) = match &plugin.entrypoint {
        Entrypoint::Builtin(name) => {
            read_paths.push(config.vigil_exe.clone());
            (config.vigil_exe.clone(), vec![crate::builtin::PLUGIN_SUBCOMMAND.to_owned(), name.clone()])
        }
        Entrypoint::Command(cmd) => {
            let folder = match &plugin.source {
                crate::manifest::Source::Folder(folder) => folder.clone(),
                crate::manifest::Source::Builtin => {
                    return Err("a built-in plugin without a built-in entry point".into());
                }
            };
            if runner.drops_user() {
                crate::fsutil::reachable_by_others(&folder).map_err(|e| {
                    format!("the sandbox user cannot read the plugin's folder: {e}; make it readable (chmod -R o+rX)")
                })?;
            }
            read_paths.push(folder.clone());
            // Words naming files in the plugin's folder become absolute paths, so
            // `["python3", "plugin.py"]` works from the scratch folder.
            let resolve = |word: &String| {
                let candidate = folder.join(word);
                if !word.starts_with('-') && check_relative(word).is_ok() && candidate.exists() {
                    candidate.display().to_string()
                } else {
                    word.clone()
                }
            };
            let mut words = cmd.iter().map(resolve);
            let program = PathBuf::from(words.next().unwrap_or_default());
            (program, words.collect())
        }
    };
    let mut write_paths: Vec<PathBuf> =
        std::iter::once(scratch).chain(outputs.iter().copied()).map(Path::to_path_buf).collect();
    // `database_read`: the database and its WAL, readable only (open it read-only).
    let mut database = None;
    if plugin.permissions.database_read
        && let Some(db) = &config.database
    {
        for suffix in ["", "-wal", "-shm"] {
            read_paths.push(PathBuf::from(format!("{}{suffix}", db.display())));
        }
        database = Some(db.display().to_string());
    }
    for (paths, target) in
        [(&plugin.permissions.fs_read, &mut read_paths), (&plugin.permissions.fs_write, &mut write_paths)]
    {
        for rel in paths {
            let rel = check_relative(rel)?;
            let path = spec.run_dir.join(rel);
            // Declared paths must stay inside the run, symbolic links included.
            if path.exists() {
                inside(spec.run_dir, &path)?;
                target.push(path);
            }
        }
    }
    let seed = spec.seed.to_string();
    let env = vec![
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME".to_owned(), scratch.display().to_string()),
        ("TMPDIR".to_owned(), scratch.join("tmp").display().to_string()),
        ("TZ".to_owned(), "UTC".to_owned()),
        ("LC_ALL".to_owned(), "C".to_owned()),
        ("LANG".to_owned(), "C".to_owned()),
        ("SOURCE_DATE_EPOCH".to_owned(), "0".to_owned()),
        ("PYTHONHASHSEED".to_owned(), (spec.seed % (u64::from(u32::MAX) + 1)).to_string()),
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ("VIGIL_SEED".to_owned(), seed),
        ("VIGIL_RUN_ID".to_owned(), spec.run.run_id.clone()),
        ("VIGIL_PLUGIN_ID".to_owned(), plugin.id.clone()),
        ("VIGIL_PROTOCOL".to_owned(), PROTOCOL_VERSION.to_string()),
    ];
    let mut env = env;
    if let Some(db) = database {
        env.push(("VIGIL_DATABASE".to_owned(), db));
    }
    let budgets = plugin.budgets;
    Ok(Policy {
        program,
        args,
        cwd: scratch.to_owned(),
        env,
        network: plugin.permissions.network,
        read_paths,
        write_paths,
        limits: Limits {
            memory_bytes: budgets.memory_mb << 20,
            cpu_seconds: budgets.time_limit_ms.div_ceil(1000) + 1,
            open_files: PLUGIN_OPEN_FILES_MAX,
            processes: PLUGIN_PROCESSES_MAX,
            file_size_bytes: PLUGIN_FILE_BYTES_MAX,
        },
        uid: None,
        strict: config.strict,
        netns: None,
        report_path: dir.join("sandbox-report.json"),
    })
}

/// Only an ingest plugin reports a dataset version: the report takes the run's from them.
/// Also asked of a result reused from an earlier run, which may predate the rule.
pub(crate) fn check_dataset(plugin: &Plugin, response: &Response) -> Result<(), String> {
    if response.dataset.is_some() && plugin.kind != PluginKind::Ingest {
        return Err(format!(
            "the response reports a dataset version, which only ingest plugins do (this one's type is {})",
            serde_json::to_value(plugin.kind).ok().and_then(|k| k.as_str().map(str::to_owned)).unwrap_or_default()
        ));
    }
    Ok(())
}

/// Checks a plugin's stdout: JSON, the plugin's output schema, the protocol's shape, the
/// findings' discipline, that only an ingest plugin reports a dataset version (the report
/// takes the run's from them), and that every artifact it names exists in its output
/// folder.
fn judge_response(plugin: &Plugin, stdout: &[u8], artifacts: &Path) -> Result<Response, String> {
    let value: Value = serde_json::from_slice(stdout).map_err(|e| {
        let shown = String::from_utf8_lossy(&stdout[..stdout.len().min(200)]).into_owned();
        format!("the response on stdout is not JSON ({e}); it began: {shown:?}")
    })?;
    plugin
        .output_schema
        .check(&value)
        .map_err(|problems| format!("the response does not match the output schema: {}", problems.join("; ")))?;
    let response: Response =
        serde_json::from_value(value).map_err(|e| format!("the response does not follow the plugin protocol: {e}"))?;
    check_findings(&response.findings).map_err(|problems| format!("invalid findings: {}", problems.join("; ")))?;
    check_dataset(plugin, &response)?;
    for artifact in &response.artifacts {
        let rel = check_relative(&artifact.path).map_err(|e| format!("artifact {e}"))?;
        let path = artifacts.join(rel);
        if !path.is_file() {
            return Err(format!("artifact {:?} is named in the response but was not written", artifact.path));
        }
        inside(artifacts, &path).map_err(|e| format!("artifact {:?}: {e}", artifact.path))?;
    }
    Ok(response)
}
