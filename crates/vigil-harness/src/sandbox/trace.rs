//! Watching a sandboxed command for the denials it survives.
//!
//! Landlock answers a refused open with `EACCES` and the process limit a refused fork with
//! `EAGAIN`; a plugin that catches the error runs on and ends `ok`, and nothing would say it
//! tried. So the helper traces the command with ptrace, from outside the sandbox, for just
//! the system calls that can be refused this way: a seccomp filter returns
//! `SECCOMP_RET_TRACE` for them (every other call passes untouched) and the tracer reads each
//! one's result when it returns. The calls the sandbox forbids outright trap instead
//! (`SECCOMP_RET_TRAP`): the kernel refuses them before the tracer hears of it, the tracer
//! records the attempt, makes the call return `EPERM` and swallows the signal, so the command
//! sees what an `EPERM` filter would give it.
//!
//! Tracing adds records, never permissions: without a tracer a traced call fails with
//! `ENOSYS` and a trapped one kills the process, and if the tracer dies the kernel kills
//! every tracee (`PTRACE_O_EXITKILL`).
//!
//! What this cannot see is listed in docs/plugin-protocol.md: refusals of calls outside the
//! watched set (a signal to a process outside the sandbox, an abstract Unix socket, a
//! `stat`). Register access is written for x86-64; elsewhere denials are not recorded.

use std::collections::BTreeMap;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};

use super::classify::ViolationKind;
use super::{DENIALS_MAX, Denial, Exit};

/// How a watched call names what it acts on, by argument position.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Opens `path` (relative to the folder open as `dirfd`, if any) with the flags in
    /// argument `flags` (`None`: flags not in a register).
    Open { dirfd: Option<usize>, path: usize, flags: Option<usize> },
    /// Creates, removes or truncates `path`; `from` is the other path of a rename or link.
    Change { doing: &'static str, dirfd: Option<usize>, path: usize, from: Option<(Option<usize>, usize)> },
    /// Executes `path`.
    Exec { dirfd: Option<usize>, path: usize },
    /// Starts a process or thread.
    Spawn,
}

const fn change(doing: &'static str, dirfd: Option<usize>, path: usize) -> Shape {
    Shape::Change { doing, dirfd, path, from: None }
}

const fn relink(doing: &'static str, from: (Option<usize>, usize), dirfd: Option<usize>, path: usize) -> Shape {
    Shape::Change { doing, dirfd, path, from: Some(from) }
}

/// The system calls the tracer watches: every one Landlock or the process limit can refuse
/// with an error the caller may survive.
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
const WATCHED: &[(&str, i64, Shape)] = &[
    ("open", libc::SYS_open, Shape::Open { dirfd: None, path: 0, flags: Some(1) }),
    ("openat", libc::SYS_openat, Shape::Open { dirfd: Some(0), path: 1, flags: Some(2) }),
    ("openat2", libc::SYS_openat2, Shape::Open { dirfd: Some(0), path: 1, flags: None }),
    ("creat", libc::SYS_creat, change("creating", None, 0)),
    ("truncate", libc::SYS_truncate, change("truncating", None, 0)),
    ("mkdir", libc::SYS_mkdir, change("creating the folder", None, 0)),
    ("mkdirat", libc::SYS_mkdirat, change("creating the folder", Some(0), 1)),
    ("mknod", libc::SYS_mknod, change("creating", None, 0)),
    ("mknodat", libc::SYS_mknodat, change("creating", Some(0), 1)),
    ("unlink", libc::SYS_unlink, change("removing", None, 0)),
    ("unlinkat", libc::SYS_unlinkat, change("removing", Some(0), 1)),
    ("rmdir", libc::SYS_rmdir, change("removing the folder", None, 0)),
    ("rename", libc::SYS_rename, relink("renaming", (None, 0), None, 1)),
    ("renameat", libc::SYS_renameat, relink("renaming", (Some(0), 1), Some(2), 3)),
    ("renameat2", libc::SYS_renameat2, relink("renaming", (Some(0), 1), Some(2), 3)),
    ("link", libc::SYS_link, relink("linking", (None, 0), None, 1)),
    ("linkat", libc::SYS_linkat, relink("linking", (Some(0), 1), Some(2), 3)),
    ("symlink", libc::SYS_symlink, change("creating the link", None, 1)),
    ("symlinkat", libc::SYS_symlinkat, change("creating the link", Some(1), 2)),
    ("execve", libc::SYS_execve, Shape::Exec { dirfd: None, path: 0 }),
    ("execveat", libc::SYS_execveat, Shape::Exec { dirfd: Some(0), path: 1 }),
    ("fork", libc::SYS_fork, Shape::Spawn),
    ("vfork", libc::SYS_vfork, Shape::Spawn),
    ("clone", libc::SYS_clone, Shape::Spawn),
    ("clone3", libc::SYS_clone3, Shape::Spawn),
];

#[cfg(not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")))]
const WATCHED: &[(&str, i64, Shape)] = &[];

/// Whether this build can trace: `Err` says why not.
pub(super) fn supported() -> Result<(), &'static str> {
    if WATCHED.is_empty() { Err("recording denials is implemented for x86-64 Linux only") } else { Ok(()) }
}

/// The ptrace options the helper seizes the command with.
pub(super) fn options() -> Options {
    Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_EXITKILL
}

/// The seccomp filter that hands every watched call to the tracer. Install it only in a
/// process that is already traced with [`options`]: untraced, the watched calls fail.
pub(super) fn watch_filter(arch: seccompiler::TargetArch) -> Result<BpfProgram, String> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> = WATCHED.iter().map(|&(_, nr, _)| (nr, Vec::new())).collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trace(0), arch)
        .map_err(|e| format!("seccomp watch filter: {e}"))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp watch filter: {e}"))
}

/// The distinct denials of one execution, bounded.
#[derive(Debug, Default)]
pub(super) struct Denials {
    pub kept: Vec<Denial>,
    pub dropped: u64,
}

impl Denials {
    fn add(&mut self, denial: Denial) {
        let same = |d: &&mut Denial| {
            d.call == denial.call && d.doing == denial.doing && d.target == denial.target && d.errno == denial.errno
        };
        if let Some(seen) = self.kept.iter_mut().find(same) {
            seen.count += 1;
        } else if self.kept.len() < DENIALS_MAX {
            self.kept.push(denial);
        } else {
            self.dropped += 1;
        }
    }
}

/// Follows the seized command `root` and every process it starts until `root` ends,
/// recording the denials they run into. `denied_name` names a system call the sandbox
/// forbids outright (the trapped ones). A command that could not be seized reports only
/// its end here, so this loop just waits for it.
pub(super) fn supervise(root: Pid, denied_name: fn(i64) -> Option<&'static str>, denials: &mut Denials) -> Exit {
    loop {
        let status = match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(status) => status,
            Err(Errno::EINTR) => continue,
            // A stop with a signal nix cannot name (a real-time signal) loses its process;
            // the wall clock ends the execution rather than a hang here.
            Err(Errno::EINVAL) => continue,
            Err(_) => return Exit { code: None, signal: None },
        };
        match status {
            WaitStatus::Exited(pid, code) if pid == root => return Exit { code: Some(code), signal: None },
            WaitStatus::Signaled(pid, signal, _) if pid == root => {
                return Exit { code: None, signal: Some(signal as i32) };
            }
            // A watched call is about to run: stop again when it returns.
            WaitStatus::PtraceEvent(pid, _, libc::PTRACE_EVENT_SECCOMP) => resume(ptrace::syscall(pid, None)),
            // Forks, execs, a new process's first stop, group stops: carry on.
            WaitStatus::PtraceEvent(pid, _, _) => resume(ptrace::cont(pid, None)),
            WaitStatus::PtraceSyscall(pid) => {
                if let Some(denial) = returned(pid) {
                    denials.add(denial);
                }
                resume(ptrace::cont(pid, None));
            }
            WaitStatus::Stopped(pid, Signal::SIGSYS) if trapped_by_seccomp(pid) => {
                match refuse_trapped(pid, denied_name) {
                    Some(denial) => {
                        denials.add(denial);
                        resume(ptrace::cont(pid, None));
                    }
                    // The result could not be set: let the signal end the process.
                    None => resume(ptrace::cont(pid, Signal::SIGSYS)),
                }
            }
            WaitStatus::Stopped(pid, signal) => resume(ptrace::cont(pid, signal)),
            _ => {}
        }
    }
}

/// A tracee that vanished between its stop and our request (killed by the runner or by a
/// signal) needs nothing more.
fn resume(result: nix::Result<()>) {
    let _ = result;
}

/// Reads a watched call's result at its exit stop and says whether it was a denial.
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn returned(pid: Pid) -> Option<Denial> {
    let regs = ptrace::getregs(pid).ok()?;
    let errno = i32::try_from(-(regs.rax as i64)).ok().filter(|e| *e > 0)?;
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let &(call, _, shape) = WATCHED.iter().find(|(_, nr, _)| *nr as u64 == regs.orig_rax)?;
    let denied = match shape {
        Shape::Spawn => errno == libc::EAGAIN,
        _ => errno == libc::EACCES || errno == libc::EPERM,
    };
    if !denied {
        return None;
    }
    let path = |dirfd: Option<usize>, at: usize| read_path(pid, dirfd.map(|i| args[i]), args[at]);
    let (kind, doing, target) = match shape {
        Shape::Spawn => (ViolationKind::Processes, "starting a process".to_owned(), None),
        Shape::Exec { dirfd, path: at } => (ViolationKind::Filesystem, "executing".to_owned(), Some(path(dirfd, at))),
        Shape::Open { dirfd, path: at, flags } => {
            let doing = opening(flags.map(|i| args[i]));
            let target = path(dirfd, at);
            if doing == "reading" && is_own_proc_entry(pid, &target) {
                return None;
            }
            (ViolationKind::Filesystem, doing.to_owned(), Some(target))
        }
        Shape::Change { doing, dirfd, path: at, from } => {
            let to = path(dirfd, at);
            let target = match from {
                Some((from_dirfd, from_at)) => format!("{} to {to}", path(from_dirfd, from_at)),
                None => to,
            };
            (ViolationKind::Filesystem, doing.to_owned(), Some(target))
        }
    };
    Some(Denial {
        kind,
        call: call.to_owned(),
        doing,
        target,
        errno: errno_name(errno),
        message: Errno::from_raw(errno).desc().to_owned(),
        count: 1,
    })
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")))]
fn returned(_pid: Pid) -> Option<Denial> {
    None
}

/// Whether `path` is one of the calling process's own `/proc` entries. Language runtimes
/// read them to learn about themselves (glibc finds the main thread's stack in
/// `/proc/self/maps`, Rust its CPU quota in `/proc/self/cgroup`); Landlock cannot allow them
/// without allowing every process's entries, so their refusal is expected, not a breach.
fn is_own_proc_entry(pid: Pid, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/proc/") else { return false };
    let own = format!("{pid}/");
    ["self/", "thread-self/", own.as_str()].iter().any(|prefix| rest.starts_with(prefix))
}

/// Whether a SIGSYS stop is seccomp refusing a forbidden call (not a SIGSYS sent by kill).
fn trapped_by_seccomp(pid: Pid) -> bool {
    const SYS_SECCOMP: i32 = 1;
    ptrace::getsiginfo(pid).is_ok_and(|info| info.si_code == SYS_SECCOMP)
}

/// Makes a trapped call return `EPERM` and records it. `None` when the registers could not
/// be read or written.
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn refuse_trapped(pid: Pid, denied_name: fn(i64) -> Option<&'static str>) -> Option<Denial> {
    let mut regs = ptrace::getregs(pid).ok()?;
    let nr = regs.orig_rax as i64;
    regs.rax = (-i64::from(libc::EPERM)) as u64;
    ptrace::setregs(pid, regs).ok()?;
    let call = denied_name(nr).map_or_else(|| format!("system call {nr}"), str::to_owned);
    Some(Denial {
        kind: ViolationKind::Syscall,
        doing: format!("calling {call}"),
        call,
        target: None,
        errno: errno_name(libc::EPERM),
        message: Errno::EPERM.desc().to_owned(),
        count: 1,
    })
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")))]
fn refuse_trapped(_pid: Pid, _denied_name: fn(i64) -> Option<&'static str>) -> Option<Denial> {
    None
}

fn errno_name(errno: i32) -> String {
    format!("{:?}", Errno::from_raw(errno))
}

/// What an open with `flags` was for.
fn opening(flags: Option<u64>) -> &'static str {
    let Some(flags) = flags.and_then(|f| i32::try_from(f & 0xffff_ffff).ok()) else { return "opening" };
    match flags & libc::O_ACCMODE {
        libc::O_WRONLY => "writing",
        libc::O_RDWR => "reading and writing",
        _ => "reading",
    }
}

/// Longest path read from a tracee (the kernel's own limit).
const PATH_MAX: usize = 4096;
/// Reads are split at this boundary so one unmapped page cannot fail a whole read.
const PAGE: usize = 4096;

/// The NUL-terminated path at `addr` in `pid`'s memory, made absolute against the folder
/// `dirfd` names (or the working folder) when it is relative. Never fails: what cannot be
/// read is said so.
fn read_path(pid: Pid, dirfd: Option<u64>, addr: u64) -> String {
    let Some(path) = read_c_string(pid, addr) else { return "an unreadable path".to_owned() };
    if path.starts_with('/') {
        return path;
    }
    let folder = match dirfd.map(|fd| fd as i32) {
        Some(fd) if fd != libc::AT_FDCWD => format!("/proc/{pid}/fd/{fd}"),
        _ => format!("/proc/{pid}/cwd"),
    };
    match std::fs::read_link(folder) {
        Ok(dir) => Path::new(&dir).join(&path).display().to_string(),
        Err(_) => path,
    }
}

fn read_c_string(pid: Pid, addr: u64) -> Option<String> {
    use nix::sys::uio::{RemoteIoVec, process_vm_readv};
    let mut bytes = Vec::new();
    let mut at = usize::try_from(addr).ok()?;
    while bytes.len() < PATH_MAX {
        let want = (PAGE - at % PAGE).min(PATH_MAX - bytes.len());
        let mut chunk = vec![0u8; want];
        let read =
            process_vm_readv(pid, &mut [std::io::IoSliceMut::new(&mut chunk)], &[RemoteIoVec { base: at, len: want }])
                .ok()?;
        if read == 0 {
            break;
        }
        if let Some(end) = chunk[..read].iter().position(|&b| b == 0) {
            bytes.extend_from_slice(&chunk[..end]);
            return Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        bytes.extend_from_slice(&chunk[..read]);
        at = at.checked_add(read)?;
    }
    Some(format!("{}…", String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_says_what_it_was_for() {
        assert_eq!(opening(Some(libc::O_RDONLY as u64)), "reading");
        assert_eq!(opening(Some((libc::O_WRONLY | libc::O_TRUNC) as u64)), "writing");
        assert_eq!(opening(Some((libc::O_RDWR | libc::O_CLOEXEC) as u64)), "reading and writing");
        assert_eq!(opening(Some((libc::O_WRONLY | libc::O_CREAT) as u64)), "writing");
        assert_eq!(opening(None), "opening");
    }

    #[test]
    fn a_process_reading_its_own_proc_entries_is_not_a_breach() {
        let pid = Pid::from_raw(4242);
        assert!(is_own_proc_entry(pid, "/proc/self/maps"));
        assert!(is_own_proc_entry(pid, "/proc/thread-self/stat"));
        assert!(is_own_proc_entry(pid, "/proc/4242/cgroup"));
        assert!(!is_own_proc_entry(pid, "/proc/1/environ"));
        assert!(!is_own_proc_entry(pid, "/proc/42420/maps"));
        assert!(!is_own_proc_entry(pid, "/proc/selfish"));
        assert!(!is_own_proc_entry(pid, "/etc/shadow"));
    }

    #[test]
    fn repeated_denials_are_counted_and_distinct_ones_bounded() {
        let denial = |target: usize| Denial {
            kind: ViolationKind::Filesystem,
            call: "openat".into(),
            doing: "reading".into(),
            target: Some(format!("/etc/{target}")),
            errno: "EACCES".into(),
            message: "Permission denied".into(),
            count: 1,
        };
        let mut denials = Denials::default();
        for _ in 0..3 {
            denials.add(denial(0));
        }
        assert_eq!(denials.kept.len(), 1);
        assert_eq!(denials.kept[0].count, 3);
        for target in 1..DENIALS_MAX + 10 {
            denials.add(denial(target));
        }
        assert_eq!(denials.kept.len(), DENIALS_MAX);
        assert_eq!(denials.dropped, 10);
    }

    #[test]
    fn watched_calls_are_distinct() {
        let mut numbers: Vec<i64> = WATCHED.iter().map(|&(_, nr, _)| nr).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), WATCHED.len());
    }
}
