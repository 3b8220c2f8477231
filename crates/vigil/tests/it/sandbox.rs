//! The plugin sandbox through the real `vigil __sandbox-exec` helper: a well-behaved
//! command runs and sees only its scrubbed environment; each malicious command (network,
//! writing or reading outside the allowlist, fork bomb, endless loop, stdout flood,
//! unbounded allocation) is stopped and recorded as a violation with a clear reason.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_harness::sandbox::{
    Job, Limits, Outcome, Policy, Runner, UidPool, Verdict, ViolationKind, system_read_paths,
};

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    runner: Runner,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        // The sandbox user must be able to reach the scratch folder through its parents.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["scratch", "outside", "exec"] {
            std::fs::create_dir(root.join(sub)).expect("mkdir");
            std::fs::set_permissions(root.join(sub), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        let runner =
            Runner::new(PathBuf::from(env!("CARGO_BIN_EXE_vigil")), Some(UidPool::new(UidPool::DEFAULT_BASE, 4)));
        Sandbox { _dir: dir, root, runner }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }

    fn python(&self, script: &str) -> Job {
        let scratch = self.path("scratch");
        Job {
            policy: Policy {
                program: PathBuf::from("python3"),
                args: vec!["-c".into(), script.into()],
                cwd: scratch.clone(),
                env: vec![
                    ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                    ("TZ".into(), "UTC".into()),
                    ("LC_ALL".into(), "C".into()),
                    ("HOME".into(), scratch.display().to_string()),
                    ("VIGIL_SEED".into(), "42".into()),
                ],
                network: false,
                read_paths: system_read_paths(),
                write_paths: vec![scratch],
                limits: Limits { memory_bytes: 256 << 20, cpu_seconds: 10, processes: 16, ..Limits::default() },
                uid: None,
                strict: true,
                netns: None,
                report_path: self.path("exec/report.json"),
            },
            stdin: br#"{"hello": "world"}"#.to_vec(),
            wall: Duration::from_secs(5),
            stdout_cap_bytes: 1 << 20,
            stderr_log: self.path("exec/stderr.log"),
            stderr_cap_bytes: 64 * 1024,
            cancel: None,
            on_stderr_line: None,
        }
    }

    fn run(&self, job: Job) -> Outcome {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(self.runner.run(job)).expect("the helper starts")
    }
}

fn violation(outcome: &Outcome, expected: ViolationKind) -> String {
    match &outcome.verdict {
        Verdict::Violation(v) if v.kind == expected => v.reason.clone(),
        other => panic!("expected a {expected:?} violation, got {other:?}"),
    }
}

fn all_enforced(outcome: &Outcome) {
    let missing = outcome.enforced.missing();
    assert!(missing.is_empty(), "not enforced: {missing:?} ({:?})", outcome.enforced);
}

#[test]
fn a_well_behaved_command_runs_with_a_scrubbed_environment() {
    let sandbox = Sandbox::new();
    let script = r#"
import json, os, sys
request = json.load(sys.stdin)
open("out.txt", "w").write("ok")
print(json.dumps({"request": request, "cwd": os.getcwd(), "env": dict(os.environ), "uid": os.getuid()}))
"#;
    let outcome = sandbox.run(sandbox.python(script));
    assert_eq!(outcome.verdict, Verdict::Ok, "stderr: {:?}", std::fs::read_to_string(sandbox.path("exec/stderr.log")));
    all_enforced(&outcome);
    let answer: serde_json::Value = serde_json::from_slice(&outcome.stdout).expect("json on stdout");
    assert_eq!(answer["request"]["hello"], "world");
    assert_eq!(Path::new(answer["cwd"].as_str().expect("cwd")), sandbox.path("scratch"));
    let env = answer["env"].as_object().expect("env");
    assert_eq!(env["TZ"], "UTC");
    assert_eq!(env["VIGIL_SEED"], "42");
    assert!(!env.contains_key("CARGO_PKG_NAME"), "the test's environment leaked: {env:?}");
    if nix::unistd::Uid::effective().is_root() {
        assert_ne!(answer["uid"], 0, "the command ran as root");
    }
    assert_eq!(std::fs::read_to_string(sandbox.path("scratch/out.txt")).expect("output written"), "ok");
    assert!(outcome.cpu_us > 0 && outcome.max_rss_kib > 0, "usage recorded: {outcome:?}");
}

#[test]
fn opening_a_tcp_connection_is_a_network_violation() {
    let sandbox = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let script =
        format!("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')");
    let outcome = sandbox.run(sandbox.python(&script));
    let reason = violation(&outcome, ViolationKind::Network);
    assert!(reason.contains("network permission"), "{reason}");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "a connection got through");
}

#[test]
fn writing_outside_the_allowlist_is_a_filesystem_violation() {
    let sandbox = Sandbox::new();
    let target = sandbox.path("outside/pwned.txt");
    let script = format!("open({:?}, 'w').write('pwned')", target.display().to_string());
    let outcome = sandbox.run(sandbox.python(&script));
    let reason = violation(&outcome, ViolationKind::Filesystem);
    assert!(reason.contains("Permission denied") && reason.contains("pwned.txt"), "{reason}");
    assert!(!target.exists(), "the write went through");
}

#[test]
fn reading_a_secret_outside_the_allowlist_is_a_filesystem_violation() {
    let sandbox = Sandbox::new();
    let secret = sandbox.path("outside/secret.txt");
    std::fs::write(&secret, "hunter2").expect("write secret");
    // Readable by everyone: only the sandbox's allowlist stands between the command and it.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let script = format!("print(open({:?}).read())", secret.display().to_string());
    let outcome = sandbox.run(sandbox.python(&script));
    violation(&outcome, ViolationKind::Filesystem);
    assert!(!String::from_utf8_lossy(&outcome.stdout).contains("hunter2"));
}

#[test]
fn a_fork_bomb_hits_the_process_limit() {
    let sandbox = Sandbox::new();
    let script = "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n";
    let outcome = sandbox.run(sandbox.python(script));
    let reason = violation(&outcome, ViolationKind::Processes);
    assert!(reason.contains("16 processes"), "{reason}");
    assert!(outcome.wall < Duration::from_secs(5), "the bomb was stopped by the limit, not the clock");
}

#[test]
fn an_endless_loop_is_killed_at_the_wall_clock_limit() {
    let sandbox = Sandbox::new();
    let mut job = sandbox.python("while True:\n    pass\n");
    job.wall = Duration::from_millis(700);
    let outcome = sandbox.run(job);
    match &outcome.verdict {
        Verdict::Timeout(v) => {
            assert_eq!(v.kind, ViolationKind::Time);
            assert!(v.reason.contains("700 ms"), "{}", v.reason);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(outcome.wall < Duration::from_secs(3), "killed promptly: {:?}", outcome.wall);
}

#[test]
fn flooding_stdout_is_an_output_violation() {
    let sandbox = Sandbox::new();
    let mut job = sandbox.python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n");
    job.stdout_cap_bytes = 256 * 1024;
    let outcome = sandbox.run(job);
    let reason = violation(&outcome, ViolationKind::Output);
    assert!(reason.contains("262144 bytes"), "{reason}");
    assert!(outcome.stdout.len() <= 256 * 1024);
}

#[test]
fn allocating_without_bound_is_a_memory_violation() {
    let sandbox = Sandbox::new();
    let outcome = sandbox.run(sandbox.python("blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n"));
    let reason = violation(&outcome, ViolationKind::Memory);
    assert!(reason.contains("256 MiB"), "{reason}");
}

#[test]
fn stderr_is_logged_up_to_its_cap() {
    let sandbox = Sandbox::new();
    let mut job = sandbox.python("import sys\nsys.stderr.write('e' * 100000)\n");
    job.stderr_cap_bytes = 1000;
    let outcome = sandbox.run(job);
    assert_eq!(outcome.verdict, Verdict::Ok);
    assert_eq!(outcome.stderr_bytes, 100_000);
    assert!(outcome.stderr_truncated);
    assert_eq!(std::fs::metadata(sandbox.path("exec/stderr.log")).expect("log").len(), 1000);
}

/// The denials a command catches and survives are recorded, each with what was attempted:
/// a read outside the allowlist, a write outside it, a fork past the process limit and a
/// forbidden system call. The command still ends `ok`.
#[test]
fn denials_a_command_survives_are_recorded() {
    let sandbox = Sandbox::new();
    let secret = sandbox.path("outside/secret.txt");
    std::fs::write(&secret, "hunter2").expect("write secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let target = sandbox.path("outside/pwned.txt");
    let script = format!(
        r#"
import os, time
for attempt in (lambda: open({secret:?}).read(), lambda: open({target:?}, "w"), os.setsid):
    try:
        attempt()
    except OSError:
        pass
children = 0
try:
    while children < 40:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        children += 1
except OSError:
    pass
print("survived")
"#,
        secret = secret.display().to_string(),
        target = target.display().to_string(),
    );
    let outcome = sandbox.run(sandbox.python(&script));
    assert_eq!(outcome.verdict, Verdict::Ok, "stderr: {:?}", std::fs::read_to_string(sandbox.path("exec/stderr.log")));
    assert!(outcome.enforced.denials.enforced, "{:?}", outcome.enforced.denials);
    let find = |kind: ViolationKind, needle: &str| {
        outcome
            .denials
            .iter()
            .find(|v| v.kind == kind && v.reason.contains(needle))
            .unwrap_or_else(|| panic!("no {kind:?} denial mentioning {needle:?} in {:#?}", outcome.denials))
            .reason
            .clone()
    };
    let read = find(ViolationKind::Filesystem, "secret.txt");
    assert!(read.contains("reading") && read.contains("EACCES"), "{read}");
    let write = find(ViolationKind::Filesystem, "pwned.txt");
    assert!(write.contains("writing"), "{write}");
    find(ViolationKind::Syscall, "setsid");
    let fork = find(ViolationKind::Processes, "EAGAIN");
    assert!(fork.contains("16 processes"), "{fork}");
    assert!(!target.exists(), "the write went through");
    // A process reading its own /proc entries (every runtime does) is not a denial worth
    // recording; nothing but the four attempts above is listed.
    assert_eq!(outcome.denials.len(), 4, "{:#?}", outcome.denials);
}

/// A command that does nothing outside its allowlist leaves no denials: Python's start-up,
/// imports and a write to its scratch folder are not mistaken for breaches.
#[test]
fn a_well_behaved_command_records_no_denials() {
    let sandbox = Sandbox::new();
    let script = "import json, csv, sqlite3, subprocess, threading\nopen('out.txt', 'w').write('ok')\nsubprocess.run(['true'], check=True)\nthreading.Thread(target=lambda: None).start()\n";
    let outcome = sandbox.run(sandbox.python(script));
    assert_eq!(outcome.verdict, Verdict::Ok, "stderr: {:?}", std::fs::read_to_string(sandbox.path("exec/stderr.log")));
    assert!(outcome.denials.is_empty(), "{:#?}", outcome.denials);
}

/// The confining step stops itself until its supervisor seizes it. It arms its death signal
/// first, and one whose supervisor is already gone (here: a supervisor pid that is not its
/// parent) refuses to run at once instead of stopping, so a server killed at that moment
/// leaves no stopped process behind.
#[test]
fn a_confining_step_without_its_supervisor_exits_instead_of_waiting() {
    let dir = tempfile::tempdir().expect("dir");
    let policy = Policy {
        program: PathBuf::from("/bin/true"),
        args: Vec::new(),
        cwd: dir.path().to_owned(),
        env: Vec::new(),
        network: false,
        read_paths: system_read_paths(),
        write_paths: vec![dir.path().to_owned()],
        limits: Limits::default(),
        uid: None,
        strict: false,
        netns: None,
        report_path: dir.path().join("report.json"),
    };
    let started = std::time::Instant::now();
    let status = std::process::Command::new(crate::support::BIN)
        .args([vigil_harness::sandbox::HELPER_SUBCOMMAND, "--confine"])
        .env_clear()
        .env(vigil_harness::sandbox::POLICY_ENV, serde_json::to_string(&policy).expect("policy"))
        .env("VIGIL_SANDBOX_SUPERVISOR", "none")
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(vigil_harness::sandbox::HELPER_SETUP_FAILED), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "it did not stop to wait");
}
