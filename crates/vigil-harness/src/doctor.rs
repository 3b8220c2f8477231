//! `vigil plugins doctor`: every manifest and schema valid, the dependency graph sound, and
//! each plugin's self-test passing on its fixture, run in the real sandbox.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};
use vigil_core::run::ExecStatus;

use crate::exec::{self, ExecConfig, ExecSpec};
use crate::manifest::{Plugin, Source};
use crate::plan::layer;
use crate::protocol::{InputRef, RunContext};
use crate::registry::Registry;
use crate::sandbox::Runner;

/// The fixture built-ins test themselves on.
const BUILTIN_FIXTURE: &[u8] = b"id,name,amount\n1,Ada,10.50\n2,Grace,20.00\n3,Linus,7.25\n";

/// One plugin's self-test.
#[derive(Clone, Debug, Serialize)]
pub struct SelfTest {
    pub plugin_id: String,
    pub status: ExecStatus,
    pub detail: String,
}

/// What the doctor found.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    pub plugins: usize,
    /// Manifests that failed validation, as `location: problems`.
    pub invalid: Vec<String>,
    /// Missing dependencies and cycles.
    pub graph: Vec<String>,
    pub self_tests: Vec<SelfTest>,
}

impl DoctorReport {
    /// No invalid manifest, no graph problem, and no self-test that ran and failed (a
    /// plugin without a fixture is reported as `skipped`, a warning).
    pub fn healthy(&self) -> bool {
        self.invalid.is_empty()
            && self.graph.is_empty()
            && self.self_tests.iter().all(|t| t.status.succeeded() || t.status == ExecStatus::Skipped)
    }
}

/// Checks everything; self-tests run in folders under `work`.
pub async fn doctor(registry: &Registry, runner: &Runner, config: &ExecConfig, work: &Path) -> DoctorReport {
    let mut report = DoctorReport {
        plugins: registry.plugins().len(),
        invalid: registry.problems().iter().map(ToString::to_string).collect(),
        graph: registry.graph_problems(),
        self_tests: Vec::new(),
    };
    if !report.graph.is_empty() {
        return report;
    }
    for plugin in registry.plugins() {
        let test = self_test(registry, plugin, runner, config, &work.join(&plugin.id)).await;
        report.self_tests.push(test);
    }
    report
}

async fn self_test(registry: &Registry, plugin: &Plugin, runner: &Runner, config: &ExecConfig, dir: &Path) -> SelfTest {
    let fail = |status, detail: String| SelfTest { plugin_id: plugin.id.clone(), status, detail };
    let (fixture, fixture_config) = match (&plugin.self_test, &plugin.source) {
        (Some((path, cfg)), _) => (std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())), cfg.clone()),
        (None, Source::Builtin) => (Ok(BUILTIN_FIXTURE.to_vec()), json!({})),
        (None, Source::Folder(_)) => return fail(ExecStatus::Skipped, "no self_test fixture declared".to_owned()),
    };
    let fixture = match fixture {
        Ok(bytes) => bytes,
        Err(e) => return fail(ExecStatus::Error, format!("cannot read the fixture: {e}")),
    };
    let input_dir = dir.join("input");
    if let Err(e) = std::fs::create_dir_all(&input_dir) {
        return fail(ExecStatus::Error, format!("cannot create {}: {e}", input_dir.display()));
    }
    let name = plugin
        .self_test
        .as_ref()
        .and_then(|(p, _)| p.file_name())
        .map_or_else(|| "fixture.csv".to_owned(), |n| n.to_string_lossy().into_owned());
    let input_path = input_dir.join(&name);
    if let Err(e) = std::fs::write(&input_path, &fixture) {
        return fail(ExecStatus::Error, format!("cannot write the fixture: {e}"));
    }
    let format = crate::format::detect(&fixture[..fixture.len().min(crate::format::SNIFF_BYTES)], &name);
    let input = InputRef {
        path: input_path,
        file_name: name,
        format: format.to_string(),
        sha256: vigil_core::digest::Sha256Digest::of(&fixture).to_string(),
        size_bytes: fixture.len() as u64,
    };

    // The plugin and everything it depends on, in dependency order.
    let mut needed = vec![plugin.id.as_str()];
    let mut i = 0;
    while i < needed.len() {
        if let Some(p) = registry.get(needed[i]) {
            for d in &p.depends_on {
                if !needed.contains(&d.as_str()) {
                    needed.push(d);
                }
            }
        }
        i += 1;
    }
    let layers = match layer(&needed, |id| {
        registry.get(id).map(|p| p.depends_on.iter().map(String::as_str).collect()).unwrap_or_default()
    }) {
        Ok(layers) => layers,
        Err(e) => return fail(ExecStatus::Error, e.to_string()),
    };
    let mut order: Vec<&str> = needed.clone();
    order.sort_by_key(|id| (layers.get(id).copied().unwrap_or(0), id.to_string()));

    for id in order {
        let Some(p) = registry.get(id) else { return fail(ExecStatus::Error, format!("dependency {id} is missing")) };
        let dependencies = exec::dependencies(dir, &p.depends_on);
        let cfg = if p.id == plugin.id { fixture_config.clone() } else { Value::Object(Default::default()) };
        let spec = ExecSpec {
            plugin: p,
            run_dir: dir,
            input: input.clone(),
            dependencies,
            config: cfg,
            seed: 0,
            run: RunContext { run_id: "self-test".into(), fingerprint: "self-test".into() },
            cancel: None,
            on_stderr_line: None,
        };
        let result = exec::execute(runner, config, spec).await;
        if !result.status.succeeded() {
            let what = if p.id == plugin.id { String::new() } else { format!("dependency {id}: ") };
            return fail(result.status, format!("{what}{}", result.error.unwrap_or_default()));
        }
        if p.id == plugin.id {
            let findings = result.response.map_or(0, |r| r.findings.len());
            return SelfTest {
                plugin_id: plugin.id.clone(),
                status: ExecStatus::Ok,
                detail: format!("ok in {} ms, {findings} findings", result.duration.as_millis()),
            };
        }
    }
    fail(ExecStatus::Error, "the plugin did not run".to_owned())
}
