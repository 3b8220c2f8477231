//! Runs and what they read and keep: uploads, plugins, runs from a file, bundles, pins,
//! garbage collection, replays.

use super::*;

use std::sync::Arc;

pub(super) fn upload(global: &Global, file: &Path, name: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let (config, store) = open_store(global, true)?;
    let blobs = BlobStore::open(&global.data.join("blobs"), config.blobs.max_bytes)?;
    let opened = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let name =
        name.unwrap_or_else(|| file.file_name().map_or_else(|| "upload".into(), |n| n.to_string_lossy().into_owned()));
    let bar = progress_bar(size);
    let target = format!("file:{name}");
    let audit = |digest: Sha256Digest| NewAuditEntry {
        principal: "cli".to_owned(),
        action: "uploads.create".to_owned(),
        target: target.clone(),
        request_id: None,
        body_sha256: digest,
        status: 0,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let content = Box::new(bar.wrap_read(opened));
    let attempt = runtime
        .block_on(vigil_harness::uploads::store_upload(&store, &blobs, content, &name, "cli", Some(&audit)))
        .with_context(|| format!("uploading {}", file.display()))?;
    bar.finish_and_clear();
    let u = &attempt.upload;
    if json {
        println!("{}", serde_json::to_string_pretty(&attempt)?);
    } else {
        if attempt.reused {
            eprintln!(
                "matched existing content, reusing upload {} from {} (first uploaded as {:?})",
                u.id,
                u.created_at.to_rfc3339(),
                u.file_name
            );
        }
        println!("upload {}\nsha256 {}\nsize   {} bytes\nformat {}", u.id, u.sha256, u.size_bytes, u.format);
    }
    Ok(ExitCode::SUCCESS)
}

/// The harness settings for this data directory and configuration.
pub fn harness_options(data: &Path, config: &Config) -> anyhow::Result<vigil_harness::HarnessOptions> {
    Ok(vigil_harness::HarnessOptions {
        data_dir: data.to_owned(),
        plugins_dir: data.join(&config.harness.plugins_dir),
        vigil_exe: std::env::current_exe().context("locating the vigil binary (the sandbox helper)")?,
        vigil_version: BUILD.version.to_owned(),
        parallelism: config.harness.parallelism,
        strict: config.harness.sandbox_strict,
        stdout_max_bytes: config.harness.stdout_max_bytes,
        stderr_max_bytes: config.harness.stderr_max_bytes,
    })
}

/// The harness of a data directory, with the runtime its async calls run on: the CLI is
/// otherwise synchronous.
pub(super) struct CliHarness {
    runtime: tokio::runtime::Runtime,
    harness: vigil_harness::Harness,
    /// The same store, for the plugin changes the CLI makes directly.
    store: Store,
}

impl CliHarness {
    fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }
}

pub(super) fn open_harness(global: &Global) -> anyhow::Result<CliHarness> {
    let (config, store) = open_store(global, true)?;
    let blobs = BlobStore::open(&global.data.join("blobs"), config.blobs.max_bytes)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let options = harness_options(&global.data, &config)?;
    let harness = runtime.block_on(vigil_harness::Harness::new(options, Arc::new(store.clone()), Arc::new(blobs)))?;
    Ok(CliHarness { runtime, harness, store })
}

pub(super) fn plugins(global: &Global, cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    let cli = open_harness(global)?;
    let (harness, store) = (&cli.harness, &cli.store);
    let registry = cli.block_on(harness.registry());
    let change =
        |action: &str, id: &str| cli_audit(action, format!("plugin:{id}"), &serde_json::json!({ "plugin": id }));
    let show_state = |state: vigil_store::InstalledPlugin| {
        let approved = if state.active.approved_at.is_some() { "approved" } else { "NOT approved" };
        let enabled = if state.enabled { "enabled" } else { "disabled" };
        println!(
            "{} {} (bundle {}): permissions {} {approved}; {enabled}",
            state.active.plugin_id,
            state.active.version,
            &state.active.bundle_sha256[..12],
            state.active.permissions
        );
    };
    match cmd {
        PluginsCommand::Install { path } => {
            let audit = cli_audit("plugins.install", format!("path:{}", path.display()), &serde_json::json!({}));
            show_state(cli.block_on(vigil_harness::install::install(harness, &path, "cli", Some(audit)))?);
        }
        PluginsCommand::Approve { id } => {
            show_state(store.approve_plugin(&id, "cli", Some(&change("plugins.approve", &id)))?)
        }
        PluginsCommand::Enable { id } => {
            show_state(store.set_plugin_enabled(&id, true, Some(&change("plugins.enable", &id)))?)
        }
        PluginsCommand::Disable { id } => {
            show_state(store.set_plugin_enabled(&id, false, Some(&change("plugins.disable", &id)))?)
        }
        PluginsCommand::Rollback { id } => {
            show_state(store.rollback_plugin(&id, Some(&change("plugins.rollback", &id)))?)
        }
        PluginsCommand::List { json } => {
            if json {
                let all: Vec<_> = registry.plugins().iter().map(|p| p.describe()).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!("{:<28} {:<9} {:<9} {:<12} depends on", "id", "version", "type", "source");
                for p in registry.plugins() {
                    let source = match (&p.source, registry.install_state(&p.id)) {
                        (vigil_harness::manifest::Source::Builtin, _) => "built-in",
                        (_, Some((true, _))) => "installed",
                        (_, Some((false, true))) => "disabled",
                        (_, Some((false, false))) => "unapproved",
                        (vigil_harness::manifest::Source::Folder(_), None) => "folder",
                    };
                    let kind = serde_json::to_value(p.kind)?.as_str().unwrap_or("").to_owned();
                    println!("{:<28} {:<9} {:<9} {:<12} {}", p.id, p.version, kind, source, p.depends_on.join(", "));
                }
                for problem in registry.problems() {
                    eprintln!("invalid: {problem}");
                }
            }
        }
        PluginsCommand::Show { id } => {
            let plugin = registry.get(&id).with_context(|| format!("no plugin {id:?}; see `vigil plugins list`"))?;
            println!("{}", serde_json::to_string_pretty(&plugin.describe())?);
        }
        PluginsCommand::Doctor { json } => {
            let work = tempfile_dir(&global.data)?;
            let report = cli.block_on(harness.doctor(&work))?;
            let _ = std::fs::remove_dir_all(&work);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{} plugins", report.plugins);
                for problem in &report.invalid {
                    println!("INVALID  {problem}");
                }
                for problem in &report.graph {
                    println!("GRAPH    {problem}");
                }
                for test in &report.self_tests {
                    let mark = match test.status {
                        s if s.succeeded() => "ok",
                        vigil_core::run::ExecStatus::Skipped => "WARN",
                        _ => "FAILED",
                    };
                    println!("{mark:<8} {:<28} {} {}", test.plugin_id, test.status, test.detail);
                }
            }
            return Ok(if report.healthy() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn bundle(global: &Global, run_id: &str, output: &Path) -> anyhow::Result<ExitCode> {
    let cli = open_harness(global)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(output)
        .with_context(|| format!("creating {} (it must not exist)", output.display()))?;
    if let Err(e) = cli.block_on(vigil_harness::bundle::write_bundle(&cli.harness, run_id, file)) {
        let _ = std::fs::remove_file(output);
        return Err(e.into());
    }
    eprintln!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

pub(super) fn pin(global: &Global, run_id: &str, pinned: bool) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(global, false)?;
    let action = if pinned { "runs.pin" } else { "runs.unpin" };
    let audit = cli_audit(action, format!("run:{run_id}"), &serde_json::json!({ "pinned": pinned }));
    let run = store.set_run_pinned(run_id, pinned, Some(&audit))?;
    eprintln!("run {} is {}", run.id, if run.pinned { "pinned: gc will keep it" } else { "unpinned" });
    Ok(ExitCode::SUCCESS)
}

pub(super) fn gc(
    global: &Global,
    older_than: std::time::Duration,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cli = open_harness(global)?;
    let body = serde_json::json!({ "older_than_secs": older_than.as_secs(), "dry_run": dry_run });
    let audit = |target: &str| cli_audit("gc.remove", target.to_owned(), &body);
    let report = cli.block_on(vigil_harness::gc::collect(&cli.harness, older_than, "cli", dry_run, &audit))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        println!(
            "{verb} {} runs, {} uploads, {} blobs, {} partial files ({} bytes); kept {} pinned runs; cutoff {}",
            report.runs_removed.len(),
            report.uploads_removed.len(),
            report.blobs_removed.len(),
            report.partial_files.files,
            report.bytes_freed,
            report.pinned_runs_kept,
            report.cutoff
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn replay(global: &Global, bundle: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (config, store) = open_store(global, true)?;
    let blobs = BlobStore::open(&global.data.join("blobs"), config.blobs.max_bytes)?;
    let options = harness_options(&global.data, &config)?;
    let work = tempfile_dir(&global.data)?;
    let file = std::fs::File::open(bundle).with_context(|| format!("opening {}", bundle.display()))?;
    let unpacked = vigil_harness::bundle::unpack(file, &work, config.blobs.max_bytes.saturating_mul(4));
    let outcome = unpacked.and_then(|()| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| vigil_harness::HarnessError::Io(e.to_string()))?;
        runtime.block_on(vigil_harness::bundle::replay(Arc::new(store), Arc::new(blobs), options, &work))
    });
    let _ = std::fs::remove_dir_all(&work);
    let outcome = outcome?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        let mark = |ok: bool| if ok { "matches" } else { "DIFFERS" };
        println!("replayed run {} as {} ({})", outcome.original_run, outcome.replay_run, outcome.status);
        println!(
            "fingerprint {}: {} / {}",
            mark(outcome.fingerprint_matches),
            outcome.original_fingerprint,
            outcome.replay_fingerprint
        );
        println!(
            "findings    {}: {} missing, {} new",
            mark(outcome.missing_findings.is_empty() && outcome.extra_findings.is_empty()),
            outcome.missing_findings.len(),
            outcome.extra_findings.len()
        );
        println!("report.json {}", mark(outcome.report_matches));
    }
    Ok(if outcome.matches() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A fresh scratch folder inside the data directory (so the sandbox user can reach it).
pub(super) fn tempfile_dir(data: &Path) -> anyhow::Result<PathBuf> {
    let dir = data.join("tmp").join(format!("work-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub(super) fn run_file(
    global: &Global,
    file: &Path,
    mut request: vigil_harness::RunRequest,
    plan_only: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cli = open_harness(global)?;
    let harness = &cli.harness;
    cli.block_on(harness.recover())?;
    let opened = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let name = file.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    let body = serde_json::json!({ "file": name, "pipeline": request.pipeline, "deselect": request.deselect, "seed": request.seed, "fresh": request.fresh });
    let audit_upload = |digest: Sha256Digest| NewAuditEntry {
        principal: "cli".to_owned(),
        action: "uploads.create".to_owned(),
        target: format!("file:{name}"),
        request_id: None,
        body_sha256: digest,
        status: 0,
    };
    let attempt = cli.block_on(harness.upload(Box::new(opened), &name, "cli", Some(&audit_upload)))?;
    request.upload_id = attempt.upload.id.to_string();
    if plan_only {
        let prepared = cli.block_on(harness.prepare(&request))?;
        println!("{}", serde_json::to_string_pretty(&prepared)?);
        return Ok(ExitCode::SUCCESS);
    }
    let audit = cli_audit("runs.create", format!("upload:{}", attempt.upload.id), &body);
    let submitted = cli.block_on(harness.submit(&request, "cli", Some(audit)))?;
    let run = if submitted.reused {
        eprintln!("{}", submitted.message);
        submitted.run
    } else {
        let plan: vigil_harness::plan::Plan = serde_json::from_value(submitted.run.plan.clone())?;
        let bar = ProgressBar::new(plan.steps.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} plugins {elapsed} {msg}") {
            bar.set_style(style);
        }
        let mut events = harness.subscribe(submitted.run.id.as_str());
        let run_id = submitted.run.id.clone();
        cli.block_on(async {
            let watcher = {
                let bar = bar.clone();
                async move {
                    let Some(events) = events.as_mut() else { return };
                    while let Ok(event) = events.recv().await {
                        match event {
                            vigil_harness::RunEvent::PluginStarted { plugin_id, .. } => bar.set_message(plugin_id),
                            vigil_harness::RunEvent::PluginFinished { plugin_id, status, .. } => {
                                bar.inc(1);
                                bar.println(format!("  {plugin_id}: {status}"));
                            }
                            vigil_harness::RunEvent::RunFinished { .. } => break,
                            _ => {}
                        }
                    }
                }
            };
            let (result, ()) = tokio::join!(harness.execute(run_id.as_str()), watcher);
            bar.finish_and_clear();
            result
        })?
    };
    let executions = cli.store.list_executions(run.id.as_str())?;
    let dir = harness.run_dir(&run);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "run": run, "executions": executions, "dir": dir }))?
        );
    } else {
        println!("run {} {}", run.id, run.status);
        for e in &executions {
            let detail = e.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            println!("  {:<28} {}{detail}", e.plugin_id, e.status);
        }
        let report: Option<serde_json::Value> =
            std::fs::read(dir.join("report.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(report) = report {
            let findings = report["findings"].as_array().map_or(0, Vec::len);
            println!("{findings} findings");
        }
        println!("report: {}", dir.join("report.md").display());
    }
    Ok(if run.status == vigil_core::run::RunStatus::Completed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A byte-progress bar on stderr (hidden when stderr is not a terminal).
pub(super) fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar
}
