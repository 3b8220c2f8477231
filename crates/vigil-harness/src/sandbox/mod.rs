//! Running one untrusted command under a [`Policy`], and saying truthfully what was enforced.
//!
//! Two halves, two processes. The server (multithreaded, async) calls [`Runner::run`], which
//! starts the `vigil` binary itself as `vigil __sandbox-exec` with the policy in an
//! environment variable, in a new process group. That helper ([`helper::main`]) is small and
//! single-threaded: it restricts *itself* (network namespace, rlimits, an unprivileged user
//! when started as root, `no_new_privs`, Landlock filesystem and TCP rules, seccomp), then
//! starts the plugin, which inherits every restriction, waits for it, and writes a
//! [`HelperReport`] (what was enforced, how the plugin ended, its CPU time and peak memory)
//! to a file it opened before the restrictions applied. Nothing allocates between `fork` and
//! `exec` in the server, and nothing of the sandbox is set up inside it.
//!
//! The runner enforces what a process cannot enforce on itself: the wall-clock limit (the
//! whole process group is killed), the stdout cap and the size-capped stderr log. It then
//! [`classify`]s the ending into an [`Outcome`]: ok, error, timeout or violation, each
//! violation with its kind and a reason a person can act on.

mod classify;
pub mod helper;
mod runner;
mod trace;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use classify::{Ending, Verdict, Violation, ViolationKind, classify, denials};
pub use runner::{Job, LineSink, Outcome, Runner, RunnerError, UidPool};

/// The environment variable carrying the JSON [`Policy`] to `vigil __sandbox-exec`.
pub const POLICY_ENV: &str = "VIGIL_SANDBOX_POLICY";
/// The hidden subcommand that runs [`helper::main`].
pub const HELPER_SUBCOMMAND: &str = "__sandbox-exec";
/// Exit code of the helper when it could not set the sandbox up (the plugin never ran).
pub const HELPER_SETUP_FAILED: i32 = 125;

/// Asks the helper binary what this system enforces: it applies every protection to a
/// throwaway process of its own and reports what took effect (`vigil version` shows it).
pub fn probe(helper: &std::path::Path) -> Result<Enforcement, String> {
    let output = std::process::Command::new(helper)
        .args([HELPER_SUBCOMMAND, "--probe"])
        .env_clear()
        .output()
        .map_err(|e| format!("cannot start {}: {e}", helper.display()))?;
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!("the sandbox probe gave no report ({e}): {}", String::from_utf8_lossy(&output.stderr).trim())
    })
}

/// Folders and files every command may read (and execute): the system's programs and
/// libraries and the few files the dynamic loader and language runtimes look at. Paths that
/// do not exist on a system are skipped.
pub fn system_read_paths() -> Vec<PathBuf> {
    [
        "/usr",
        "/lib",
        "/lib64",
        "/lib32",
        "/bin",
        "/sbin",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/alternatives",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/ssl/certs",
        "/etc/mime.types",
    ]
    .into_iter()
    .map(PathBuf::from)
    // Debian's Python reads its site customisation from /etc/python3.X.
    .chain(
        std::fs::read_dir("/etc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("python")))
            .map(|e| e.path()),
    )
    .filter(|p| p.exists())
    .collect()
}

/// Everything the helper needs to confine and start one command.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    /// The program to start (absolute, or looked up on `env`'s `PATH`).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Working directory: the execution's scratch folder.
    pub cwd: PathBuf,
    /// The complete environment of the command; nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Whether the command may use the network.
    pub network: bool,
    /// Readable (and executable) paths: system folders, the plugin's own files, its inputs.
    pub read_paths: Vec<PathBuf>,
    /// Readable and writable paths: the scratch and output folders.
    pub write_paths: Vec<PathBuf>,
    pub limits: Limits,
    /// When the helper starts as root, the user and group it drops to before starting the
    /// command (so per-user limits such as the process count apply). Ignored otherwise.
    pub uid: Option<u32>,
    /// Refuse to start the command unless every protection was enforced.
    pub strict: bool,
    /// An existing empty network namespace to join (`/proc/<pid>/ns/net` of the runner's
    /// holder process) instead of creating one: joining takes microseconds, creating one
    /// about two milliseconds. `None`, or a failure to join, creates a fresh one.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// Where the helper writes its [`HelperReport`].
    pub report_path: PathBuf,
}

/// Resource limits applied with `setrlimit` (the wall-clock limit is the runner's).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
    pub open_files: u64,
    pub processes: u64,
    pub file_size_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 1 << 30, cpu_seconds: 60, open_files: 256, processes: 64, file_size_bytes: 1 << 30 }
    }
}

/// Whether one protection took effect, and how. Never claims more than happened.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Protection {
    pub enforced: bool,
    /// How it was enforced, or why not.
    pub detail: String,
}

impl Protection {
    pub fn on(detail: impl Into<String>) -> Self {
        Protection { enforced: true, detail: detail.into() }
    }

    pub fn off(detail: impl Into<String>) -> Self {
        Protection { enforced: false, detail: detail.into() }
    }
}

/// What the helper actually enforced for one execution.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Enforcement {
    /// No network: a network namespace, Landlock TCP rules and a seccomp socket filter.
    pub network: Protection,
    /// The filesystem allowlist (Landlock).
    pub filesystem: Protection,
    /// The seccomp filter on privileged and escape-prone system calls.
    pub syscalls: Protection,
    /// rlimits: memory, CPU time, open files, processes, file size, no core dumps.
    pub limits: Protection,
    /// Running as an unprivileged user rather than root.
    pub user: Protection,
    /// Whether denials the command survives (a refused open, a failed fork, a denied system
    /// call) are recorded. Not a protection: strict mode does not require it.
    #[serde(default)]
    pub denials: Protection,
}

impl Enforcement {
    /// Every protection, by name, for display.
    pub fn entries(&self) -> [(&'static str, &Protection); 5] {
        [
            ("network", &self.network),
            ("filesystem", &self.filesystem),
            ("syscalls", &self.syscalls),
            ("limits", &self.limits),
            ("user", &self.user),
        ]
    }

    /// Names of the protections that were requested but not enforced (recording denials
    /// is not one of them).
    pub fn missing(&self) -> Vec<&'static str> {
        self.entries().into_iter().filter(|(_, p)| !p.enforced).map(|(name, _)| name).collect()
    }
}

/// How the command ended, as the helper saw it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// The helper's account of one execution, written as JSON to [`Policy::report_path`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HelperReport {
    pub enforced: Enforcement,
    /// Set when the sandbox could not be set up or the command could not be started.
    pub setup_error: Option<String>,
    pub exit: Option<Exit>,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    /// Peak resident set of the largest process in the command's tree, in KiB.
    pub max_rss_kib: u64,
    /// Denials the command's processes ran into, in the order first seen, one entry per
    /// distinct attempt (see [`Enforcement::denials`] for whether they were watched).
    #[serde(default)]
    pub denials: Vec<Denial>,
    /// Distinct denials beyond the [`DENIALS_MAX`] kept.
    #[serde(default)]
    pub denials_dropped: u64,
}

/// Distinct denials one execution's report keeps.
pub const DENIALS_MAX: usize = 64;

/// One attempt the sandbox refused and the command survived, as the helper saw it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Denial {
    pub kind: ViolationKind,
    /// The system call, as named in its manual page (`openat`, `clone3`, `ptrace`).
    pub call: String,
    /// What was attempted (`reading`, `creating the folder`, `starting a process`).
    pub doing: String,
    /// What it was aimed at, for calls on paths (`/etc/shadow`).
    pub target: Option<String>,
    /// The error the command got (`EACCES`, `EAGAIN`, `EPERM`).
    pub errno: String,
    /// What that error says (`Permission denied`).
    pub message: String,
    /// How many times this same attempt was refused.
    pub count: u64,
}
