//! Executing a run: its plugins layer by layer in the sandbox (or from the cache), then its
//! reports, lineage and final status.
//!
//! The run's task is async: it awaits plugins and the storage ports. Folder moves, file
//! writes and their fsyncs run on tokio's blocking pool ([`off_thread`]), never on the
//! async workers that also serve requests; only path checks (a stat) stay on the task.

use super::*;

/// What a run's execution starts from, read and prepared by [`Harness::begin`].
struct Begun {
    run: RunRecord,
    upload: UploadRecord,
    plan: Plan,
    /// The plugins' settings, by plugin id.
    settings: Value,
    fresh: bool,
    registry: Arc<Registry>,
    /// Each planned plugin's identity when the run was planned.
    identities: BTreeMap<String, Value>,
    /// The run's partial folder.
    dir: PathBuf,
    input: InputRef,
    cache_keys: BTreeMap<String, String>,
    statuses: BTreeMap<String, ExecStatus>,
}

impl Harness {
    /// Executes a queued run to the end and returns its final record.
    pub async fn execute(&self, run_id: &str) -> Result<RunRecord, HarnessError> {
        let (cancel, events) = self.activate(run_id);
        let result = self.execute_inner(run_id, cancel, &events).await;
        let final_record = match result {
            Ok(run) => Ok(run),
            Err(e) => {
                let why = e.to_string();
                tracing::error!(run_id, error = %why, "run failed");
                let dir = self.partial_dir(run_id);
                exec::remove_shared_off_thread(dir).await?;
                Ok(self.0.store.set_run_status(RunId::new(run_id), RunStatus::Failed, Some(why), None).await?)
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
        let begun = self.begin(run_id, events).await?;
        let Begun { run, upload, plan, settings, fresh, registry, identities, dir, input, cache_keys, mut statuses } =
            begun;
        let total = plan.steps.len();
        let semaphore = Arc::new(Semaphore::new(self.0.parallelism));
        let context = RunContext { run_id: run.id.to_string(), fingerprint: run.fingerprint.clone() };

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
                    (None, Some(p)) if Some(&p.identity()) != identities.get(plugin_id) => Some((
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
                    settle(self.0.store.as_ref(), events, &run.id, plugin_id, status, why).await?;
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

        let canceled = *cancel.borrow();
        self.finish(&run, &upload, &plan, &dir, &statuses, canceled).await
    }

    /// Reads the run and its upload, reopens or creates its partial folder, marks it
    /// running, writes its manifest, puts its input in place, and reads its executions.
    async fn begin(&self, run_id: &str, events: &broadcast::Sender<RunEvent>) -> Result<Begun, HarnessError> {
        let store = self.0.store.as_ref();
        let run = store.get_run(RunId::new(run_id)).await?;
        if run.status != RunStatus::Queued {
            return Err(HarnessError::Conflict(format!("run {run_id} is {}, not queued", run.status)));
        }
        let upload = store.get_upload(run.upload_id.clone()).await?;
        let plan: Plan = serde_json::from_value(run.plan.clone())
            .map_err(|e| HarnessError::Invalid(format!("stored plan of run {run_id} is unreadable: {e}")))?;
        let settings = run.settings["plugins"].clone();
        let fresh = run.settings["fresh"].as_bool().unwrap_or(false);
        let registry = self.registry().await;

        // A finished run being retried goes back to its partial folder until it ends again.
        let dir = self.partial_dir(run_id);
        let (done, partial) = (self.0.runs_dir.join(&run.dir), dir.clone());
        off_thread(move || {
            if done.is_dir() {
                std::fs::rename(&done, &partial)
                    .map_err(|e| HarnessError::Io(format!("cannot reopen {}: {e}", done.display())))?;
            }
            std::fs::create_dir_all(partial.join("input"))
                .map_err(|e| HarnessError::Io(format!("cannot create {}: {e}", partial.display())))
        })
        .await?;
        store.set_run_status(run.id.clone(), RunStatus::Running, None, None).await?;

        let identities: BTreeMap<String, Value> = plan
            .steps
            .iter()
            .map(|s| (s.plugin_id.clone(), registry.get(&s.plugin_id).map(|p| p.identity()).unwrap_or(Value::Null)))
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
        let (manifest, path) = (pretty_json("run_manifest.json", &manifest)?, dir.join("run_manifest.json"));
        off_thread(move || write_atomic(&path, &manifest).map_err(HarnessError::Io)).await?;
        let _ = events.send(RunEvent::Plan { run_id: run_id.to_owned(), plan: plan.clone() });

        let digest: Sha256Digest = upload
            .sha256
            .parse()
            .map_err(|_| HarnessError::Invalid(format!("upload {} has a malformed sha256", upload.id)))?;
        // The sandbox opens its input by path: the one place a blob becomes a local file.
        let input_path = dir.join("input").join(&upload.file_name);
        self.0.blobs.materialize(digest, input_path.clone()).await?;
        let input = InputRef {
            path: input_path,
            file_name: upload.file_name.clone(),
            format: upload.format.clone(),
            sha256: upload.sha256.clone(),
            size_bytes: upload.size_bytes,
        };

        let executions = store.list_executions(run.id.clone()).await?;
        let cache_keys: BTreeMap<String, String> =
            executions.iter().map(|e| (e.plugin_id.clone(), e.cache_key.clone())).collect();
        let statuses: BTreeMap<String, ExecStatus> = executions.into_iter().map(|e| (e.plugin_id, e.status)).collect();

        Ok(Begun { run, upload, plan, settings, fresh, registry, identities, dir, input, cache_keys, statuses })
    }

    /// Ends a run whose plugins are done: its reports, lineage and final status, and its
    /// folder under its own name.
    async fn finish(
        &self,
        run: &RunRecord,
        upload: &UploadRecord,
        plan: &Plan,
        dir: &Path,
        statuses: &BTreeMap<String, ExecStatus>,
        canceled: bool,
    ) -> Result<RunRecord, HarnessError> {
        let store = self.0.store.as_ref();
        let executions = store.list_executions(run.id.clone()).await?;
        let kinds = finding_kinds(&*self.registry().await);
        let (this, run_, upload_, plan_, dir_) =
            (self.clone(), run.clone(), upload.clone(), plan.clone(), dir.to_owned());
        let (results, report_written) = off_thread(move || {
            // What plugins shared with their dependents served its purpose.
            exec::remove_shared(&dir_);
            let results = plugin_results(executions, &dir_);
            let written = this.write_report(&run_, &upload_, &plan_, &dir_, &results, &kinds)?;
            Ok::<_, HarnessError>((results, written))
        })
        .await?;
        let edges = lineage(run, upload, plan, &results);
        store.clear_lineage(run.id.clone()).await?;
        store.add_lineage(run.id.clone(), edges).await?;
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
        let (runs_dir, partial) = (self.0.runs_dir.clone(), dir.to_owned());
        let final_dir = runs_dir.join(&run.dir);
        off_thread(move || {
            std::fs::rename(&partial, &final_dir)
                .map_err(|e| HarnessError::Io(format!("cannot finalize {}: {e}", final_dir.display())))?;
            let _ = std::fs::File::open(&runs_dir).and_then(|d| d.sync_all());
            Ok::<_, HarnessError>(())
        })
        .await?;
        Ok(store.set_run_status(run.id.clone(), status, error, None).await?)
    }

    async fn run_plugin(
        &self,
        job: PluginJob,
        events: &broadcast::Sender<RunEvent>,
    ) -> Result<ExecStatus, HarnessError> {
        let PluginJob { run_id, layer, plugin, cache_key, dir, input, dependencies, config, seed, run, fresh, cancel } =
            job;
        let cached = self.start_step(&run_id, (&plugin, layer), cache_key, &dir, fresh, events).await?;
        let (run_id, plugin, dir) = (run_id.as_str(), &plugin, dir.as_path());
        if cached {
            let _ = events.send(RunEvent::PluginFinished {
                run_id: run_id.to_owned(),
                plugin_id: plugin.id.clone(),
                status: ExecStatus::Cached,
                error: None,
                duration_ms: 0,
            });
            return Ok(ExecStatus::Cached);
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
        self.0.store.finish_execution(RunId::new(run_id), plugin.id.clone(), end).await?;
        let _ = events.send(RunEvent::PluginFinished {
            run_id: run_id.to_owned(),
            plugin_id: plugin.id.clone(),
            status: result.status,
            error: result.error,
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
        });
        Ok(result.status)
    }

    /// Marks a step started (and says so on `events`) and, unless `fresh`, reuses an
    /// identical earlier result (its files linked in, still valid by today's rules, recorded
    /// as cached). Whether it did.
    async fn start_step(
        &self,
        run_id: &str,
        (plugin, layer): (&crate::manifest::Plugin, u32),
        cache_key: String,
        dir: &Path,
        fresh: bool,
        events: &broadcast::Sender<RunEvent>,
    ) -> Result<bool, HarnessError> {
        let (store, id) = (self.0.store.as_ref(), RunId::new(run_id));
        store.start_execution(id.clone(), plugin.id.clone()).await?;
        let _ = events.send(RunEvent::PluginStarted { run_id: run_id.to_owned(), plugin_id: plugin.id.clone(), layer });
        let earlier = if fresh { None } else { store.cached_execution(cache_key, id.clone()).await? };
        let Some((from_run, from_dir)) = earlier else { return Ok(false) };
        let source = exec_dir(&self.0.runs_dir.join(&from_dir), &plugin.id);
        let target = exec_dir(dir, &plugin.id);
        let checked = plugin.clone();
        let reused = off_thread(move || {
            let _ = std::fs::remove_dir_all(&target);
            let linked = link_tree(&source, &target);
            Ok::<_, HarnessError>(linked.is_ok() && still_valid(&checked, &target.join("response.json")))
        })
        .await?;
        if !reused {
            return Ok(false);
        }
        let end = ExecutionEnd {
            status: Some(ExecStatus::Cached),
            cached_from: Some(from_run.into()),
            duration_us: Some(0),
            ..ExecutionEnd::default()
        };
        store.finish_execution(id, plugin.id.clone(), end).await?;
        Ok(true)
    }

    /// Writes `report.json`, `report.md` and `evaluation.json`. Returns whether all three
    /// exist afterwards. Blocking.
    fn write_report(
        &self,
        run: &RunRecord,
        upload: &UploadRecord,
        plan: &Plan,
        dir: &Path,
        results: &BTreeMap<String, report::PluginResult>,
        kinds: &BTreeMap<String, Vec<String>>,
    ) -> Result<bool, HarnessError> {
        let input = report::ReportInput {
            run_id: run.id.as_str(),
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
        let succeeded = results.iter().filter(|(_, r)| r.status.succeeded()).map(|(id, _)| id.as_str()).collect();
        let reporters = known::reporters(kinds, &plan.plugin_ids(), &succeeded);
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

/// How each plugin of a run ended, with the responses of those that succeeded (read once,
/// for the report and the lineage). Blocking.
fn plugin_results(executions: Vec<ExecutionRecord>, dir: &Path) -> BTreeMap<String, report::PluginResult> {
    let mut results = BTreeMap::new();
    for e in executions {
        let response: Option<Response> = e
            .status
            .succeeded()
            .then(|| std::fs::read(exec_dir(dir, &e.plugin_id).join("response.json")).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let violations = e.violations.as_array().cloned().unwrap_or_default();
        let result = report::PluginResult { status: e.status, error: e.error, violations, response };
        results.insert(e.plugin_id, result);
    }
    results
}

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
        edges.push(edge("run", run.id.as_str(), "plugin_result", &result_id, "produced"));
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
            head.push(edge("upload", upload.id.as_str(), "dataset_version", hash, "ingested_as"));
            head.push(edge("dataset_version", hash, "run", run.id.as_str(), "input_of"));
        }
        None => head.push(edge("upload", upload.id.as_str(), "run", run.id.as_str(), "input_of")),
    }
    for name in REQUIRED_ARTIFACTS {
        edges.push(edge("run", run.id.as_str(), "artifact", name, "wrote"));
    }
    head.extend(edges);
    head
}

/// Ends an execution that never started, recording why and telling watchers.
async fn settle(
    store: &dyn Storage,
    events: &broadcast::Sender<RunEvent>,
    run_id: &RunId,
    plugin_id: &str,
    status: ExecStatus,
    why: String,
) -> Result<(), HarnessError> {
    let end = ExecutionEnd { status: Some(status), error: Some(why.clone()), ..ExecutionEnd::default() };
    store.finish_execution(run_id.clone(), plugin_id.to_owned(), end).await?;
    let _ = events.send(RunEvent::PluginFinished {
        run_id: run_id.to_string(),
        plugin_id: plugin_id.to_owned(),
        status,
        error: Some(why),
        duration_ms: 0,
    });
    Ok(())
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
