//! Benchmark (not a test): the cost of the sandbox, and of a whole run.
//!
//! 1. Plugin start-up: one no-op plugin (`sh` reading its request, printing a response),
//!    started through the full sandbox (`vigil __sandbox-exec`: network namespace, rlimits,
//!    own user, Landlock, seccomp) versus the same command spawned bare by tokio. The
//!    difference is what the sandbox costs per plugin (target ≤ 5 ms).
//! 2. A 10-plugin no-op DAG end to end through `Harness` (plan, run folder, manifest,
//!    sandboxed executions by layer, report, finalize), `fresh` so nothing is cached
//!    (target ≤ 100 ms).
//!
//! Run with `scripts/bench-harness.sh`, which builds the release binary and also times a
//! Python `subprocess.run` of the same command as the peer (how the harness Vigil replaces
//! started plugins). Prints medians and percentiles in milliseconds as JSON lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_harness::sandbox::{Job, Limits, Policy, Runner, UidPool, Verdict, system_read_paths};
use vigil_harness::{Harness, HarnessOptions, RunRequest};
use vigil_store::{BlobStore, Store, StoreOptions};

const NOOP: &str = "cat > /dev/null; printf '{\"status\": \"ok\"}'";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!(
        "{{\"bench\": \"{name}\", \"n\": {}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}}}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99)
    );
}

fn main() {
    let vigil = PathBuf::from(std::env::var("VIGIL_BIN").unwrap_or_else(|_| "target/release/vigil".to_owned()));
    let vigil = std::fs::canonicalize(&vigil).unwrap_or_else(|e| panic!("VIGIL_BIN {}: {e}", vigil.display()));
    let iterations: usize = std::env::var("BENCH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    runtime.block_on(startup(&vigil, root.path(), iterations));
    runtime.block_on(dag(&vigil, root.path(), (iterations / 10).max(10)));
}

async fn startup(vigil: &Path, root: &Path, iterations: usize) {
    let scratch = root.join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch");
    std::fs::set_permissions(&scratch, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let runner = Runner::new(vigil.to_owned(), Some(UidPool::new(UidPool::DEFAULT_BASE, 4)));
    let job = || Job {
        policy: Policy {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), NOOP.into()],
            cwd: scratch.clone(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            network: false,
            read_paths: system_read_paths(),
            write_paths: vec![scratch.clone()],
            limits: Limits::default(),
            uid: None,
            strict: true,
            netns: None,
            report_path: root.join("report.json"),
        },
        stdin: b"{}".to_vec(),
        wall: Duration::from_secs(10),
        stdout_cap_bytes: 1 << 20,
        stderr_log: root.join("stderr.log"),
        stderr_cap_bytes: 1 << 16,
        cancel: None,
        on_stderr_line: None,
    };
    // Warm the page cache and the binary.
    for _ in 0..10 {
        let outcome = runner.run(job()).await.expect("run");
        assert_eq!(outcome.verdict, Verdict::Ok, "{outcome:?}");
    }
    let mut sandboxed = Vec::with_capacity(iterations);
    let mut bare = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let outcome = runner.run(job()).await.expect("run");
        sandboxed.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(outcome.verdict, Verdict::Ok);

        let started = Instant::now();
        let mut child = tokio::process::Command::new("/bin/sh")
            .args(["-c", NOOP])
            .current_dir(&scratch)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(mut stdin) = child.stdin.take() {
            tokio::io::AsyncWriteExt::write_all(&mut stdin, b"{}").await.expect("stdin");
        }
        let output = child.wait_with_output().await.expect("wait");
        bare.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(output.status.success());
    }
    report("plugin_start_sandboxed", sandboxed);
    report("plugin_start_bare", bare);
}

async fn dag(vigil: &Path, root: &Path, iterations: usize) {
    let data = root.join("data");
    let plugins = data.join("plugins");
    // Ten no-op plugins: a root, three layers of three, each depending on the layer above.
    for i in 0..10 {
        let id = format!("noop.p{i}");
        let deps: Vec<String> = match i {
            0 => Vec::new(),
            1..=3 => vec!["\"noop.p0\"".into()],
            4..=6 => vec![format!("\"noop.p{}\"", i - 3)],
            _ => vec![format!("\"noop.p{}\"", i - 3)],
        };
        let folder = plugins.join(&id);
        std::fs::create_dir_all(&folder).expect("plugin folder");
        let manifest = format!(
            "id = {id:?}\nname = {id:?}\nversion = \"1.0.0\"\ntype = \"analysis\"\nentrypoint = [\"/bin/sh\", \"-c\", {NOOP:?}]\ndepends_on = [{}]\n",
            deps.join(", ")
        );
        std::fs::write(folder.join("plugin.toml"), manifest).expect("manifest");
    }
    let store = Store::open(&data.join("vigil.db"), StoreOptions::default()).expect("store");
    let blobs = BlobStore::open(&data.join("blobs"), 1 << 30).expect("blobs");
    let options = HarnessOptions {
        data_dir: data.clone(),
        plugins_dir: plugins,
        vigil_exe: vigil.to_owned(),
        vigil_version: env!("CARGO_PKG_VERSION").to_owned(),
        parallelism: 3,
        strict: true,
        stdout_max_bytes: 1 << 20,
        stderr_max_bytes: 1 << 16,
    };
    let harness = Harness::new(options, Arc::new(store), Arc::new(blobs)).await.expect("harness");
    let upload = harness.upload(Box::new(&b"a,b\n1,2\n"[..]), "t.csv", "bench", None).await.expect("upload");
    let pipeline: Vec<String> = (0..10).map(|i| format!("noop.p{i}")).collect();
    let request = RunRequest {
        upload_id: upload.upload.id.to_string(),
        pipeline: Some(pipeline),
        fresh: true,
        ..RunRequest::default()
    };
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + 2 {
        let started = Instant::now();
        let submitted = harness.submit(&request, "bench", None).await.expect("submit");
        let run = harness.execute(submitted.run.id.as_str()).await.expect("execute");
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(run.status, vigil_core::run::RunStatus::Completed, "{run:?}");
        if i >= 2 {
            samples.push(elapsed);
        }
    }
    report("dag_10_noop_plugins_end_to_end", samples);
}
