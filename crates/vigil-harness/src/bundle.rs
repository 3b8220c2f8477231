//! Bundles and replay: a run packed as one zip that reproduces it elsewhere.
//!
//! `bundle.zip` holds `bundle.json` (the run, its plugins' identities), everything in the
//! run folder except scratch space (manifest, input, requests, responses, sandbox records,
//! logs, artifacts, reports), and under `plugin-sources/<id>/` the folder of every external
//! plugin the run used. Entries are written in path order with a fixed timestamp, so the
//! same run gives the same bytes.
//!
//! [`replay`] unpacks a bundle (refusing unsafe names, links and sizes past a cap),
//! uploads its input, installs its plugin sources in a folder of their own, re-runs the
//! same plan with the same settings and seed, and compares: the fingerprint before running,
//! the findings and the normalized `report.json` after.

use std::collections::BTreeSet;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use vigil_core::id::RunId;
use vigil_store::RunRecord;
use vigil_store::ports::{Blobs, Storage};
use zip::write::SimpleFileOptions;

use crate::fsutil::off_thread;
use crate::manifest::{Source, check_relative};
use crate::registry::Registry;
use crate::runs::{Harness, HarnessError, HarnessOptions, RunRequest, pretty_json};

/// The bundle format this Vigil writes and reads.
pub const BUNDLE_FORMAT: &str = "vigil.bundle/1";
/// Entries a bundle may hold.
const BUNDLE_ENTRIES_MAX: usize = 100_000;

fn zip_error(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io(format!("bundle: {e}"))
}

/// Files of a run folder that go into its bundle, relative to it, in order.
fn run_files(dir: &Path) -> Result<Vec<PathBuf>, HarnessError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HarnessError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HarnessError::Io(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
        // Scratch and shared space are not results; links are never followed out of the run.
        if kind.is_dir() && !crate::exec::is_transient(&rel) {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// Writes the bundle of a finished run to `out`, and hands `out` back.
pub async fn write_bundle<W>(harness: &Harness, run_id: &str, out: W) -> Result<W, HarnessError>
where
    W: Write + Seek + Send + 'static,
{
    let run = harness.store().get_run(RunId::new(run_id)).await?;
    if !run.status.is_final() {
        return Err(HarnessError::Conflict(format!("run {run_id} is {}; bundle it once it has ended", run.status)));
    }
    let registry = harness.registry().await;
    let dir = harness.run_dir(&run);
    off_thread(move || zip_run(&run, &registry, &dir, out)).await
}

/// The bundle of a finished run as an open, unlinked temporary file, positioned at its
/// start: all a response streaming it needs, and nothing is left behind if it is dropped.
pub async fn write_bundle_to_temp(harness: &Harness, run_id: &str) -> Result<std::fs::File, HarnessError> {
    let tmp = harness.tmp_dir();
    let path = tmp.join(format!("bundle-{run_id}-{}-{}.zip", std::process::id(), crate::install::uuid_like()));
    let file = off_thread(move || {
        std::fs::create_dir_all(&tmp).map_err(|e| HarnessError::Io(format!("{}: {e}", tmp.display())))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| HarnessError::Io(format!("{}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&path);
        Ok::<_, HarnessError>(file)
    })
    .await?;
    let mut file = write_bundle(harness, run_id, file).await?;
    file.seek(std::io::SeekFrom::Start(0)).map_err(|e| HarnessError::Io(format!("rewinding the bundle: {e}")))?;
    Ok(file)
}

/// Zips a finished run's folder and the sources of its folder plugins. Blocking.
fn zip_run<W: Write + Seek>(run: &RunRecord, registry: &Registry, dir: &Path, out: W) -> Result<W, HarnessError> {
    let manifest: Value = std::fs::read(dir.join("run_manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| HarnessError::NotFound(format!("run_manifest.json of run {}", run.id)))?;
    let mut sources = Vec::new();
    let mut plugins = Vec::new();
    for id in manifest["plugins"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        let source = registry.get(&id).map(|p| p.source.clone());
        if let Some(Source::Folder(folder)) = &source {
            sources.push((id.clone(), folder.clone()));
        }
        plugins.push(json!({ "id": id, "identity": manifest["plugins"][&id], "builtin": matches!(source, Some(Source::Builtin)) }));
    }
    let description = json!({
        "format": BUNDLE_FORMAT,
        "run": run,
        "plugins": plugins,
        "vigil_version": manifest["vigil_version"],
    });

    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut zip = zip::ZipWriter::new(out);
    zip.start_file("bundle.json", options).map_err(zip_error)?;
    zip.write_all(&pretty_json("bundle.json", &description)?).map_err(zip_error)?;
    for rel in run_files(dir)? {
        add_file(&mut zip, &dir.join(&rel), &rel.to_string_lossy(), options)?;
    }
    for (id, folder) in sources {
        let mut files = Vec::new();
        walk(&folder, &folder, &mut files)?;
        files.sort();
        for rel in files {
            add_file(&mut zip, &folder.join(&rel), &format!("plugin-sources/{id}/{}", rel.to_string_lossy()), options)?;
        }
    }
    zip.finish().map_err(zip_error)
}

fn add_file<W: Write + Seek>(
    zip: &mut zip::ZipWriter<W>,
    path: &Path,
    name: &str,
    options: SimpleFileOptions,
) -> Result<(), HarnessError> {
    let mut file = std::fs::File::open(path).map_err(|e| HarnessError::Io(format!("{}: {e}", path.display())))?;
    zip.start_file(name, options).map_err(zip_error)?;
    std::io::copy(&mut file, zip).map_err(zip_error)?;
    Ok(())
}

/// What a replay found.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayOutcome {
    pub original_run: String,
    pub replay_run: String,
    pub fingerprint_matches: bool,
    pub original_fingerprint: String,
    pub replay_fingerprint: String,
    /// Findings (by id) in the original and not the replay, and the other way round.
    pub missing_findings: Vec<String>,
    pub extra_findings: Vec<String>,
    /// The two `report.json` are identical once run id and time are normalized.
    pub report_matches: bool,
    pub status: String,
}

impl ReplayOutcome {
    pub fn matches(&self) -> bool {
        self.fingerprint_matches
            && self.missing_findings.is_empty()
            && self.extra_findings.is_empty()
            && self.report_matches
    }
}

/// Unpacks `bundle` into `work` (which must be empty), refusing unsafe entries and more
/// than `max_bytes` of content.
pub fn unpack(bundle: impl Read + Seek, work: &Path, max_bytes: u64) -> Result<(), HarnessError> {
    let mut archive = zip::ZipArchive::new(bundle).map_err(zip_error)?;
    if archive.len() > BUNDLE_ENTRIES_MAX {
        return Err(HarnessError::Invalid(format!("bundle has more than {BUNDLE_ENTRIES_MAX} entries")));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.into_owned();
        if entry.is_symlink() {
            return Err(HarnessError::Invalid(format!("bundle entry {name:?} is a link; bundles hold files only")));
        }
        let rel = check_relative(name.trim_end_matches('/'))
            .map_err(|e| HarnessError::Invalid(format!("bundle entry {e}")))?;
        let target = work.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| HarnessError::Io(format!("{}: {e}", target.display())))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HarnessError::Io(format!("{}: {e}", parent.display())))?;
        }
        let mut out =
            std::fs::File::create(&target).map_err(|e| HarnessError::Io(format!("{}: {e}", target.display())))?;
        // The declared size may lie; count what actually comes out.
        let copied =
            std::io::copy(&mut (&mut entry).take(max_bytes.saturating_sub(total) + 1), &mut out).map_err(zip_error)?;
        total += copied;
        if total > max_bytes {
            return Err(HarnessError::Invalid(format!("bundle content exceeds {max_bytes} bytes")));
        }
    }
    Ok(())
}

/// Replays an unpacked bundle in `work` on this machine's store and sandbox.
pub async fn replay(
    store: Arc<dyn Storage>,
    blobs: Arc<dyn Blobs>,
    options: HarnessOptions,
    work: &Path,
) -> Result<ReplayOutcome, HarnessError> {
    let read_json = |name: &str| -> Result<Value, HarnessError> {
        let bytes =
            std::fs::read(work.join(name)).map_err(|_| HarnessError::Invalid(format!("bundle has no {name}")))?;
        serde_json::from_slice(&bytes).map_err(|e| HarnessError::Invalid(format!("{name}: {e}")))
    };
    let description = read_json("bundle.json")?;
    if description["format"] != BUNDLE_FORMAT {
        return Err(HarnessError::Invalid(format!("not a {BUNDLE_FORMAT} bundle (format {})", description["format"])));
    }
    let manifest = read_json("run_manifest.json")?;
    let original_report = read_json("report.json")?;
    let file_name = manifest["input"]["file_name"].as_str().unwrap_or("input").to_owned();
    let input = std::fs::File::open(work.join("input").join(&file_name))
        .map_err(|_| HarnessError::Invalid(format!("bundle has no input/{file_name}")))?;
    let input = Box::new(input);
    let attempt =
        crate::uploads::store_upload(store.as_ref(), blobs.as_ref(), input, &file_name, "replay", None).await?;
    if attempt.upload.sha256 != manifest["input"]["sha256"].as_str().unwrap_or("") {
        return Err(HarnessError::Invalid("the bundled input does not match the hash its manifest records".into()));
    }

    // The known issues the original was evaluated against, so the replay is too (pinned
    // for this run only: the store's own declarations stay as they are).
    let pinned: Option<vigil_store::KnownIssueSet> = match manifest.get("known_issues").filter(|k| !k.is_null()) {
        Some(set) => Some(
            serde_json::from_value(set.clone())
                .map_err(|e| HarnessError::Invalid(format!("run_manifest.json known_issues: {e}")))?,
        ),
        None => None,
    };
    // The bundle's external plugins, and nothing else, beside the built-ins.
    let options = HarnessOptions { plugins_dir: work.join("plugin-sources"), ..options };
    let harness = Harness::new(options, store, blobs).await?;
    // The same request as the original: its pipeline (or none, for the recommended plan)
    // and its deselections, so the plan comes out the same, reasons included.
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let pipeline = manifest["plan"]["pipeline"].is_array().then(|| strings(&manifest["plan"]["pipeline"]));
    let deselect: Vec<String> = manifest["plan"]["excluded"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == "deselected")
        .filter_map(|e| e["plugin_id"].as_str().map(str::to_owned))
        .collect();
    let settings = manifest["settings"].as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
    let request = RunRequest {
        upload_id: attempt.upload.id.into(),
        pipeline,
        deselect,
        settings,
        seed: manifest["seed"].as_u64(),
        fresh: true,
        dataset_kind: pinned.as_ref().map(|k| k.dataset_kind.clone()),
    };
    let original_fingerprint = manifest["fingerprint"].as_str().unwrap_or("").to_owned();
    let submitted = harness.submit_pinned(&request, "replay", None, pinned.as_ref()).await?;
    let run = harness.execute(submitted.run.id.as_str()).await?;
    let replay_report: Value = std::fs::read(harness.run_dir(&run).join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let ids = |report: &Value| -> BTreeSet<String> {
        report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["finding_id"].as_str().map(str::to_owned))
            .collect()
    };
    let (before, after) = (ids(&original_report), ids(&replay_report));
    Ok(ReplayOutcome {
        original_run: manifest["run_id"].as_str().unwrap_or("").to_owned(),
        replay_run: run.id.to_string(),
        fingerprint_matches: run.fingerprint == original_fingerprint,
        original_fingerprint,
        replay_fingerprint: run.fingerprint.clone(),
        missing_findings: before.difference(&after).cloned().collect(),
        extra_findings: after.difference(&before).cloned().collect(),
        report_matches: normalize(&original_report) == normalize(&replay_report),
        status: run.status.to_string(),
    })
}

/// A report with its run id and time replaced, for comparison.
pub fn normalize(report: &Value) -> Value {
    let mut report = report.clone();
    report["run"]["id"] = json!("RUN");
    report["run"]["created_at"] = json!("TIME");
    report["input"]["upload_id"] = json!("UPLOAD");
    report
}
