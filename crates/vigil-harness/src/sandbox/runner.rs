//! The server's side of a sandboxed execution: start the helper, feed stdin, cap stdout and
//! the stderr log, enforce the wall clock, and classify the ending.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::classify::{Ending, Verdict, Violation, classify, denials};
use super::{Enforcement, Exit, HELPER_SUBCOMMAND, HelperReport, POLICY_ENV, Policy};

/// How much of the end of stderr is kept in memory to explain a failure.
const STDERR_TAIL_BYTES: usize = 8 * 1024;
/// Lines of stderr forwarded live per execution (the log file keeps the rest).
const LOG_LINES_MAX: usize = 1_000;
/// Longest stderr line forwarded live.
const LOG_LINE_BYTES_MAX: usize = 4 * 1024;

/// Receives each stderr line as it is written (for live progress).
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How long to wait for the pipes to drain once the process group is gone.
const DRAIN_MS: u64 = 2_000;

/// Errors that prevent an execution from being attempted at all.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot start the sandbox helper {helper}: {source}")]
    Spawn {
        helper: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the stderr log {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A pool of user ids, one per concurrent execution, so a per-user process limit counts
/// only that execution's processes.
///
/// Each pool takes a randomly placed block of `count` ids inside a range of
/// [`UidPool::SPAN`] ids, and skips an id that still has processes, so two Vigil processes
/// on one machine (a server and a `vigil run`) do not share a user by accident.
#[derive(Debug)]
pub struct UidPool {
    free: Mutex<Vec<u32>>,
}

impl UidPool {
    /// First id of the range: far above the ids distributions hand out.
    pub const DEFAULT_BASE: u32 = 2_100_000_000;
    /// Size of the range blocks are placed in.
    pub const SPAN: u32 = 1 << 24;

    pub fn new(base: u32, count: u32) -> Self {
        let mut seed = [0u8; 4];
        let _ = getrandom::fill(&mut seed);
        let blocks = (Self::SPAN / count.max(1)).max(1);
        let start = base.saturating_add((u32::from_le_bytes(seed) % blocks) * count);
        UidPool { free: Mutex::new((start..start.saturating_add(count)).rev().collect()) }
    }

    fn acquire(self: &Arc<Self>) -> Option<UidLease> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let at = free.iter().rposition(|&uid| !super::helper::user_has_processes(uid))?;
        let uid = free.remove(at);
        Some(UidLease { pool: Arc::clone(self), uid })
    }
}

struct UidLease {
    pool: Arc<UidPool>,
    uid: u32,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("policy", &self.policy).field("wall", &self.wall).finish_non_exhaustive()
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        self.pool.free.lock().unwrap_or_else(|e| e.into_inner()).push(self.uid);
    }
}

/// One command to run in the sandbox.
#[derive(Clone)]
pub struct Job {
    /// The policy; its `uid` is assigned by the runner.
    pub policy: Policy,
    /// Written to the command's stdin, which is then closed.
    pub stdin: Vec<u8>,
    pub wall: Duration,
    pub stdout_cap_bytes: usize,
    /// Where stderr is written, up to `stderr_cap_bytes`.
    pub stderr_log: PathBuf,
    pub stderr_cap_bytes: u64,
    /// Becomes `true` to stop the command early (the process group is killed).
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// Called with each stderr line as it arrives (the first thousand).
    pub on_stderr_line: Option<LineSink>,
}

/// How one execution went.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    pub stdout: Vec<u8>,
    /// Bytes the command wrote to stderr, including any beyond the log's cap.
    pub stderr_bytes: u64,
    pub stderr_truncated: bool,
    pub enforced: Enforcement,
    pub exit: Option<Exit>,
    pub wall: Duration,
    pub cpu_us: u64,
    pub max_rss_kib: u64,
    /// Every denial the helper recorded (the verdict names the first), in the order seen.
    pub denials: Vec<Violation>,
    /// Distinct denials beyond those kept.
    pub denials_dropped: u64,
}

/// Starts sandboxed executions through the `vigil __sandbox-exec` helper.
#[derive(Clone, Debug)]
pub struct Runner {
    helper: PathBuf,
    /// `None`: commands keep the server's user (see [`Runner::new`]).
    uids: Option<Arc<UidPool>>,
    /// The process holding an empty network namespace for commands to join.
    netns: Option<Arc<NetnsHolder>>,
}

/// A `vigil __sandbox-exec --hold-netns` child; it exits when this is dropped (its stdin
/// closes) or when the server dies (its parent-death signal).
#[derive(Debug)]
struct NetnsHolder {
    child: Mutex<std::process::Child>,
    path: PathBuf,
}

impl NetnsHolder {
    fn start(helper: &Path) -> Result<NetnsHolder, String> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(helper)
            .args([HELPER_SUBCOMMAND, "--hold-netns"])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the namespace holder did not start (no permission for network namespaces?)".to_owned());
        }
        let path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        Ok(NetnsHolder { child: Mutex::new(child), path })
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Runner {
    /// `helper` is the `vigil` binary (normally `std::env::current_exe()`). With `uids`,
    /// a helper started as root runs each command as a user of its own from the pool.
    ///
    /// When it may, the runner keeps one empty network namespace that commands join, which
    /// saves creating one per command; without it each command gets a fresh one.
    pub fn new(helper: PathBuf, uids: Option<UidPool>) -> Self {
        let netns = match NetnsHolder::start(&helper) {
            Ok(holder) => Some(Arc::new(holder)),
            Err(why) => {
                tracing::debug!(reason = %why, "each sandboxed command creates its own network namespace");
                None
            }
        };
        Runner { helper, uids: uids.map(Arc::new), netns }
    }

    /// Whether commands run as users of their own (when the helper starts as root).
    pub fn drops_user(&self) -> bool {
        self.uids.is_some() && nix::unistd::Uid::effective().is_root()
    }

    pub async fn run(&self, job: Job) -> Result<Outcome, RunnerError> {
        let Job { mut policy, stdin, wall, stdout_cap_bytes, stderr_log, stderr_cap_bytes, cancel, on_stderr_line } =
            job;
        let lease = self.uids.as_ref().and_then(UidPool::acquire);
        policy.uid = lease.as_ref().map(|l| l.uid);
        if policy.netns.is_none() {
            policy.netns = self.netns.as_ref().map(|h| h.path.clone());
        }
        let _ = std::fs::remove_file(&policy.report_path);
        let log = tokio::fs::File::create(&stderr_log)
            .await
            .map_err(|source| RunnerError::Log { path: stderr_log.clone(), source })?;
        let policy_json = serde_json::to_string(&policy).unwrap_or_default();

        let started = Instant::now();
        let mut child = Command::new(&self.helper)
            .arg(HELPER_SUBCOMMAND)
            .env_clear()
            .env(POLICY_ENV, policy_json)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RunnerError::Spawn { helper: self.helper.clone(), source })?;
        let group = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);

        if let Some(mut pipe) = child.stdin.take() {
            // A command that never reads its input must not block the runner.
            #[allow(
                clippy::disallowed_methods,
                reason = "ends when the command's stdin closes, at the latest when the runner kills its group"
            )]
            tokio::spawn(async move {
                let _ = pipe.write_all(&stdin).await;
            });
        }
        let (flood_tx, mut flood_rx) = tokio::sync::oneshot::channel();
        #[allow(clippy::disallowed_methods, reason = "the pipe readers are joined below")]
        let stdout = child.stdout.take().map(|pipe| tokio::spawn(read_capped(pipe, stdout_cap_bytes, flood_tx)));
        #[allow(clippy::disallowed_methods, reason = "the pipe readers are joined below")]
        let stderr =
            child.stderr.take().map(|pipe| tokio::spawn(log_capped(pipe, log, stderr_cap_bytes, on_stderr_line)));

        let mut ending = tokio::select! {
            _ = child.wait() => Ending::Exited,
            () = tokio::time::sleep(wall) => Ending::WallClock,
            Ok(()) = &mut flood_rx => Ending::StdoutFlood,
            () = canceled(cancel) => Ending::Canceled,
        };
        if ending != Ending::Exited {
            // The helper is alive (it has not been reaped), so its group id is still ours.
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = child.wait().await;
        } else if flood_rx.try_recv().is_ok() {
            // The flood is signalled before the stdout pipe closes, so a command that then
            // died of the closed pipe (and won the race above) still flooded.
            ending = Ending::StdoutFlood;
        }
        let elapsed = started.elapsed();
        drop(lease);

        let drain = Duration::from_millis(DRAIN_MS);
        let stdout = match stdout {
            Some(task) => tokio::time::timeout(drain, task).await.ok().and_then(Result::ok).unwrap_or_default(),
            None => Vec::new(),
        };
        let (stderr_bytes, stderr_truncated, tail) = match stderr {
            Some(task) => tokio::time::timeout(drain, task).await.ok().and_then(Result::ok).unwrap_or_default(),
            None => Default::default(),
        };

        let report = read_report(&policy.report_path);
        let tail = String::from_utf8_lossy(&tail);
        let verdict = classify(ending, report.as_ref(), &tail, &policy.limits, wall, stdout_cap_bytes);
        let report = report.unwrap_or_default();
        let denials = denials(&report, &policy.limits);
        Ok(Outcome {
            verdict,
            stdout,
            stderr_bytes,
            stderr_truncated,
            enforced: report.enforced,
            exit: report.exit,
            wall: elapsed,
            cpu_us: report.cpu_user_us + report.cpu_system_us,
            max_rss_kib: report.max_rss_kib,
            denials,
            denials_dropped: report.denials_dropped,
        })
    }
}

/// Resolves when `cancel` turns `true`; never, without one.
async fn canceled(cancel: Option<tokio::sync::watch::Receiver<bool>>) {
    match cancel {
        Some(mut rx) => {
            if rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn read_report(path: &Path) -> Option<HelperReport> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads up to `cap` bytes; on more, signals `flood` and stops reading.
async fn read_capped(mut pipe: impl AsyncRead + Unpin, cap: usize, flood: tokio::sync::oneshot::Sender<()>) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if kept.len() + n > cap {
                    let _ = flood.send(());
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
            }
        }
    }
    kept
}

/// Copies the stream into `log` up to `cap` bytes and keeps reading (so the command never
/// blocks on a full pipe) while remembering the last few KiB. Returns the total byte count,
/// whether the log was truncated, and the tail.
async fn log_capped(
    mut pipe: impl AsyncRead + Unpin,
    mut log: tokio::fs::File,
    cap: u64,
    on_line: Option<LineSink>,
) -> (u64, bool, Vec<u8>) {
    let mut total = 0u64;
    let mut tail: VecDeque<u8> = VecDeque::with_capacity(STDERR_TAIL_BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    let mut line = Vec::new();
    let mut lines_sent = 0usize;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if let Some(sink) = &on_line {
            for &b in chunk {
                if b == b'\n' {
                    if lines_sent < LOG_LINES_MAX {
                        sink(&String::from_utf8_lossy(&line));
                        lines_sent += 1;
                    }
                    line.clear();
                } else if line.len() < LOG_LINE_BYTES_MAX {
                    line.push(b);
                }
            }
        }
        let room = usize::try_from(cap.saturating_sub(total)).unwrap_or(usize::MAX).min(n);
        if room > 0 && log.write_all(&chunk[..room]).await.is_err() {
            break;
        }
        total += n as u64;
        for &b in chunk.iter().skip(n.saturating_sub(STDERR_TAIL_BYTES)) {
            if tail.len() == STDERR_TAIL_BYTES {
                tail.pop_front();
            }
            tail.push_back(b);
        }
    }
    let _ = log.flush().await;
    (total, total > cap, tail.into())
}
