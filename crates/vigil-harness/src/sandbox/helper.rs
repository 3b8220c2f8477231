//! `vigil __sandbox-exec`: the single-threaded steps between the server and a plugin.
//!
//! The binary dispatches here before it starts any runtime or thread, so building the
//! Landlock ruleset and the seccomp programs (both allocate) happens in a process with one
//! thread, never in a `pre_exec` closure of the multithreaded server. Two processes:
//!
//! - The *supervisor* (this helper as the runner starts it) starts the confining step,
//!   seizes it with ptrace before it confines itself, and then follows it and every process
//!   it starts, recording the denials they survive ([`super::trace`]). When the command ends
//!   it reports the exit, the CPU time and peak memory (`getrusage(RUSAGE_CHILDREN)`), what
//!   was enforced and what was denied. It confines nothing of its own: it runs no plugin code.
//! - The *confining step* (`__sandbox-exec --confine`) stops itself until it is seized,
//!   confines itself step by step, recording each protection as it takes effect, writes that
//!   account to a file it opened first, and replaces itself with the plugin, which inherits
//!   every restriction.
//!
//! Order matters: the network namespace and `chown` of the writable folders need root, so
//! they come before the switch to the unprivileged user; Landlock and seccomp need
//! `no_new_privs` and come last, seccomp after Landlock because its filter is the narrower.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, UsageWho, getrusage, setrlimit};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use serde::{Deserialize, Serialize};

use super::trace::{self, Denials};
use super::{
    Enforcement, HELPER_SETUP_FAILED, HELPER_SUBCOMMAND, HelperReport, Limits, POLICY_ENV, Policy, Protection,
};

/// Device files every command may read and write; they hold no data worth protecting.
const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];
/// Device files every command may read.
const DEVICES_RO: &[&str] = &["/dev/urandom", "/dev/random"];
/// The Landlock ABI this helper asks for; older kernels get the best they support.
const LANDLOCK_ABI: ABI = ABI::V7;
/// The argument that makes the helper the confining step.
const CONFINE: &str = "--confine";

/// Entry point of `vigil __sandbox-exec`. Never returns.
pub fn main(args: &[String]) -> ! {
    if args.iter().any(|a| a == "--hold-netns") {
        hold_network_namespace();
    }
    if args.iter().any(|a| a == "--probe") {
        let enforced = probe();
        let json = serde_json::to_string(&enforced).unwrap_or_default();
        println!("{json}");
        std::process::exit(0);
    }
    let policy: Policy = match std::env::var(POLICY_ENV)
        .map_err(|e| e.to_string())
        .and_then(|raw| serde_json::from_str(&raw).map_err(|e| format!("invalid sandbox policy in {POLICY_ENV}: {e}")))
    {
        Ok(policy) => policy,
        Err(why) => {
            eprintln!("vigil __sandbox-exec: {why}");
            std::process::exit(HELPER_SETUP_FAILED);
        }
    };
    if args.iter().any(|a| a == CONFINE) {
        confine_and_exec(&policy);
    }
    let mut report_file = match File::create(&policy.report_path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("vigil __sandbox-exec: cannot create {}: {e}", policy.report_path.display());
            std::process::exit(HELPER_SETUP_FAILED);
        }
    };
    let code = execute(&policy, &mut report_file);
    // Processes the command left behind (daemonised children) are still in this process
    // group, which the runner created for this helper alone: end them all, ourselves last.
    if nix::unistd::getpgrp() == nix::unistd::getpid() {
        let _ = nix::sys::signal::killpg(nix::unistd::getpgrp(), Signal::SIGKILL);
    }
    std::process::exit(code)
}

/// `vigil __sandbox-exec --hold-netns`: moves into a new, empty network namespace, says
/// `ready` on stdout, and keeps the namespace alive until stdin closes (the runner that
/// started it dropped it or died). Sandboxed commands join this namespace.
fn hold_network_namespace() -> ! {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
        eprintln!("vigil __sandbox-exec --hold-netns: {e}");
        std::process::exit(HELPER_SETUP_FAILED);
    }
    println!("ready");
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    std::process::exit(0)
}

/// Runs the command through the confining step, watches it, and writes the report.
/// Returns the exit code.
fn execute(policy: &Policy, report_file: &mut File) -> i32 {
    let report = supervise(policy);
    let code = if report.setup_error.is_some() { HELPER_SETUP_FAILED } else { 0 };
    let written = serde_json::to_vec(&report).map_err(std::io::Error::other).and_then(|json| {
        report_file.write_all(&json)?;
        report_file.flush()
    });
    if let Err(e) = written {
        eprintln!("vigil __sandbox-exec: cannot write the report: {e}");
        return HELPER_SETUP_FAILED;
    }
    code
}

/// What the confining step says it enforced, written to [`account_path`] before it starts
/// the command (or instead, when it could not).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    enforced: Enforcement,
    setup_error: Option<String>,
}

/// Where the confining step writes its [`Account`]: beside the report.
fn account_path(report_path: &Path) -> PathBuf {
    let mut name = report_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".confined");
    report_path.with_file_name(name)
}

/// The supervisor: starts the confining step, seizes it, follows the command to its end.
fn supervise(policy: &Policy) -> HelperReport {
    // If the server dies, its helpers die with it, and the traced command with them.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let mut report = HelperReport::default();
    let account_path = account_path(&policy.report_path);
    let started = serde_json::to_string(policy)
        .map_err(|e| format!("cannot pass the policy on: {e}"))
        .and_then(|json| {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find the vigil binary: {e}"))?;
            Command::new(exe)
                .args([HELPER_SUBCOMMAND, CONFINE])
                .env_clear()
                .env(POLICY_ENV, json)
                .env(SUPERVISOR_ENV, std::process::id().to_string())
                .spawn()
                .map_err(|e| format!("cannot start the confining step: {e}"))
        })
        .and_then(|child| {
            let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
            // It stops itself first, so it can be seized before it confines itself.
            match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => Ok(pid),
                other => Err(format!("the confining step did not wait to be watched: {other:?}")),
            }
        });
    let pid = match started {
        Ok(pid) => pid,
        Err(why) => {
            report.setup_error = Some(why);
            return report;
        }
    };
    let seized = trace::supported()
        .map_err(str::to_owned)
        .and_then(|()| nix::sys::ptrace::seize(pid, trace::options()).map_err(|e| format!("ptrace: {e}")));
    let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
    let mut denials = Denials::default();
    // Unseized (where ptrace is refused), the same loop only waits for the command's end.
    let exit = trace::supervise(pid, denied_name, &mut denials);
    let account = std::fs::read(&account_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice::<Account>(&bytes).map_err(|e| e.to_string()));
    let _ = std::fs::remove_file(&account_path);
    match account {
        Ok(account) => {
            report.enforced = account.enforced;
            report.setup_error = account.setup_error;
        }
        Err(why) => {
            report.setup_error =
                Some(format!("the confining step ended ({exit:?}) without saying what it enforced: {why}"));
        }
    }
    if let Err(why) = seized {
        report.enforced.denials = Protection::off(format!("not recorded: {why}"));
    }
    if report.setup_error.is_none() {
        report.exit = Some(exit);
        if let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) {
            report.cpu_user_us = micros(usage.user_time());
            report.cpu_system_us = micros(usage.system_time());
            report.max_rss_kib = u64::try_from(usage.max_rss()).unwrap_or(0);
        }
    }
    report.denials = denials.kept;
    report.denials_dropped = denials.dropped;
    report
}

/// The supervisor's pid, which the confining step checks is still its parent.
const SUPERVISOR_ENV: &str = "VIGIL_SANDBOX_SUPERVISOR";

/// The confining step: waits to be seized, confines itself, says what it enforced, and
/// becomes the command. Never returns.
fn confine_and_exec(policy: &Policy) -> ! {
    // Dies with its supervisor from the first moment: it is about to stop itself until
    // seized, and a supervisor killed in between (its server killed with it) would otherwise
    // leave it stopped forever. A supervisor already gone before the death signal was armed
    // is seen as a new parent.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let supervisor = std::env::var(SUPERVISOR_ENV).ok().and_then(|pid| pid.parse::<i32>().ok());
    if supervisor != Some(nix::unistd::getppid().as_raw()) {
        eprintln!("vigil __sandbox-exec: the supervisor is gone; nothing runs");
        std::process::exit(HELPER_SETUP_FAILED);
    }
    // Opened before anything is confined: the sandbox user may not reach it afterwards.
    let mut account_file = match File::create(account_path(&policy.report_path)) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("vigil __sandbox-exec: cannot create the account beside {}: {e}", policy.report_path.display());
            std::process::exit(HELPER_SETUP_FAILED);
        }
    };
    let _ = nix::sys::signal::raise(Signal::SIGSTOP);
    let mut account = Account::default();
    let confined = confine(policy, &mut account.enforced, is_traced()).and_then(|()| {
        let mut missing = account.enforced.missing();
        // A network the manifest asked for is a permission, not a missing protection.
        missing.retain(|name| !(policy.network && *name == "network"));
        if policy.strict && !missing.is_empty() {
            return Err(format!("strict sandbox: not enforced on this system: {}", missing.join(", ")));
        }
        Ok(())
    });
    if let Err(why) = confined {
        account.setup_error = Some(why);
        write_account(&mut account_file, &account);
        std::process::exit(HELPER_SETUP_FAILED);
    }
    write_account(&mut account_file, &account);
    let error = Command::new(&policy.program)
        .args(&policy.args)
        .env_clear()
        .envs(policy.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&policy.cwd)
        .exec();
    account.setup_error = Some(format!("could not start {}: {error}", policy.program.display()));
    write_account(&mut account_file, &account);
    std::process::exit(HELPER_SETUP_FAILED)
}

/// Replaces the account file's content (it is written again when the start fails).
fn write_account(file: &mut File, account: &Account) {
    let written = serde_json::to_vec(account).map_err(std::io::Error::other).and_then(|json| {
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(&json)
    });
    if let Err(e) = written {
        eprintln!("vigil __sandbox-exec: cannot write what was enforced: {e}");
    }
}

/// Whether a tracer holds this process (the supervisor seized it).
fn is_traced() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().find_map(|line| line.strip_prefix("TracerPid:")).is_some_and(|pid| pid.trim() != "0")
    })
}

fn micros(tv: nix::sys::time::TimeVal) -> u64 {
    let us = i128::from(tv.tv_sec()) * 1_000_000 + i128::from(tv.tv_usec());
    u64::try_from(us).unwrap_or(0)
}

/// Runs `/bin/true` through the whole sandbox and reports what took effect: what
/// `vigil version` shows as this system's sandbox.
fn probe() -> Enforcement {
    let root = std::env::temp_dir();
    let policy = Policy {
        program: PathBuf::from("/bin/true"),
        args: Vec::new(),
        cwd: root.clone(),
        env: Vec::new(),
        network: false,
        read_paths: super::system_read_paths(),
        write_paths: Vec::new(),
        limits: Limits::default(),
        uid: Some(super::UidPool::DEFAULT_BASE),
        strict: false,
        netns: None,
        report_path: root.join(format!("vigil-sandbox-probe-{}", std::process::id())),
    };
    let report = supervise(&policy);
    let mut enforced = report.enforced;
    if let Some(why) = report.setup_error {
        enforced.syscalls = Protection::off(why);
    }
    enforced
}

/// Confines the calling process according to `policy`, recording each protection in
/// `enforced`. `traced`: the supervisor holds this process, so refusals can be handed to it.
/// An error means the sandbox is in an unknown state and nothing may run.
fn confine(policy: &Policy, enforced: &mut Enforcement, traced: bool) -> Result<(), String> {
    // If the server dies, its helpers die with it rather than linger.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let is_root = Uid::effective().is_root();

    let netns = match (policy.network, &policy.netns) {
        (true, _) => None,
        (false, Some(path)) => Some(join_network_namespace(path).or_else(|_| new_network_namespace(is_root))),
        (false, None) => Some(new_network_namespace(is_root)),
    };

    let drop_to = policy.uid.filter(|_| is_root).map(|id| (Uid::from_raw(id), Gid::from_raw(id)));
    if let Some((uid, gid)) = drop_to {
        for path in &policy.write_paths {
            nix::unistd::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to the sandbox user: {e}", path.display()))?;
        }
    }

    enforced.limits = apply_limits(&policy.limits, drop_to.is_some());

    enforced.user = match drop_to {
        Some((uid, gid)) => {
            nix::unistd::setgroups(&[gid]).map_err(|e| format!("setgroups: {e}"))?;
            nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
            nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
            Protection::on(format!("runs as unprivileged user {uid}"))
        }
        None if is_root => Protection::off(
            "runs as root: no sandbox user was assigned (the run folders are not reachable by other users)",
        ),
        None => Protection::on(format!("runs as the server's own unprivileged user {}", Uid::effective())),
    };

    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("cannot set no_new_privs: {e}"))?;

    let (filesystem, landlock_tcp) = apply_landlock(policy);
    enforced.filesystem = filesystem;

    let socket_filter = if policy.network { None } else { Some(apply_socket_filter()) };
    enforced.syscalls = apply_syscall_filter(traced);
    enforced.denials = if traced { watch() } else { Protection::off("not recorded: the supervisor could not trace") };

    enforced.network = if policy.network {
        Protection::off("network permitted by the plugin's manifest")
    } else {
        network_protection(netns, landlock_tcp, socket_filter)
    };
    Ok(())
}

/// Joins the runner's empty network namespace.
fn join_network_namespace(path: &Path) -> Result<&'static str, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
    Ok("network namespace (shared, empty)")
}

/// Puts the process in a new, empty network namespace (only a loopback that is down).
fn new_network_namespace(is_root: bool) -> Result<&'static str, String> {
    match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => Ok("network namespace"),
        Err(e) if !is_root => {
            // Without root, a user namespace grants the capability for the network namespace.
            let uid = Uid::effective();
            let gid = Gid::effective();
            unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
                .map_err(|e2| format!("unshare(CLONE_NEWNET): {e}; with a user namespace: {e2}"))?;
            std::fs::write("/proc/self/setgroups", "deny")
                .and_then(|()| std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")))
                .and_then(|()| std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")))
                .map_err(|e| format!("user namespace id maps: {e}"))?;
            Ok("network namespace (in a user namespace)")
        }
        Err(e) => Err(format!("unshare(CLONE_NEWNET): {e}")),
    }
}

fn network_protection(
    netns: Option<Result<&'static str, String>>,
    landlock_tcp: bool,
    socket_filter: Option<Result<(), String>>,
) -> Protection {
    let mut layers = Vec::new();
    let mut gaps = Vec::new();
    match netns {
        Some(Ok(how)) => layers.push(how.to_owned()),
        Some(Err(why)) => gaps.push(why),
        None => {}
    }
    if landlock_tcp {
        layers.push("Landlock denies TCP bind/connect".to_owned());
    }
    match socket_filter {
        Some(Ok(())) => layers.push("seccomp kills on opening an internet socket".to_owned()),
        Some(Err(why)) => gaps.push(why),
        None => {}
    }
    let detail =
        if gaps.is_empty() { layers.join("; ") } else { format!("{} (not: {})", layers.join("; "), gaps.join("; ")) };
    // Either the namespace or the socket filter alone keeps the command off the network.
    if layers.iter().any(|l| l.starts_with("network namespace") || l.starts_with("seccomp")) {
        Protection::on(detail)
    } else {
        Protection::off(detail)
    }
}

fn apply_limits(limits: &Limits, own_user: bool) -> Protection {
    // A process limit counts every process of the user. With a user of its own, the
    // command's processes are all that count; otherwise it gets its budget on top of what
    // the user already runs.
    let processes = if own_user { limits.processes } else { limits.processes + processes_of_current_user() };
    let cpu_hard = limits.cpu_seconds.saturating_add(1);
    let applied = [
        ("memory", Resource::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        ("cpu", Resource::RLIMIT_CPU, limits.cpu_seconds, cpu_hard),
        ("open files", Resource::RLIMIT_NOFILE, limits.open_files, limits.open_files),
        ("processes", Resource::RLIMIT_NPROC, processes, processes),
        ("file size", Resource::RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
        ("core dumps", Resource::RLIMIT_CORE, 0, 0),
    ]
    .into_iter()
    .map(|(name, resource, soft, hard)| (name, setrlimit(resource, soft, hard)))
    .collect::<Vec<_>>();
    let failed: Vec<String> =
        applied.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}"))).collect();
    if failed.is_empty() {
        Protection::on(format!(
            "memory {} MiB, CPU {} s, {} open files, {} processes{}, file size {} MiB, no core dumps",
            limits.memory_bytes >> 20,
            limits.cpu_seconds,
            limits.open_files,
            limits.processes,
            if own_user { "" } else { " beyond the user's own" },
            limits.file_size_bytes >> 20,
        ))
    } else {
        Protection::off(format!("setrlimit failed: {}", failed.join("; ")))
    }
}

/// How many processes the current user runs now (for a per-user process limit).
fn processes_of_current_user() -> u64 {
    processes_of(Uid::current().as_raw(), u64::MAX)
}

/// Whether any process runs as `uid`.
pub(super) fn user_has_processes(uid: u32) -> bool {
    processes_of(uid, 1) > 0
}

/// Counts the processes running as `uid`, stopping at `enough`.
fn processes_of(uid: u32, enough: u64) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut count = 0;
    for entry in entries.flatten() {
        let is_pid = entry.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if is_pid && entry.metadata().is_ok_and(|m| m.uid() == uid) {
            count += 1;
            if count >= enough {
                break;
            }
        }
    }
    count
}

/// Restricts the filesystem to the policy's paths with Landlock, and TCP when the network
/// is off. Returns the filesystem protection and whether TCP rules were enforced.
fn apply_landlock(policy: &Policy) -> (Protection, bool) {
    let abi = LANDLOCK_ABI;
    let read: Vec<&Path> =
        policy.read_paths.iter().map(PathBuf::as_path).chain(DEVICES_RO.iter().map(Path::new)).collect();
    let write: Vec<&Path> =
        policy.write_paths.iter().map(PathBuf::as_path).chain(DEVICES_RW.iter().map(Path::new)).collect();
    let attempt = || -> Result<_, landlock::RulesetError> {
        let mut ruleset =
            Ruleset::default().set_compatibility(CompatLevel::BestEffort).handle_access(AccessFs::from_all(abi))?;
        if !policy.network {
            ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
        }
        ruleset
            .scope(Scope::from_all(abi))?
            .create()?
            .add_rules(path_beneath_rules(&read, AccessFs::from_read(abi)))?
            .add_rules(path_beneath_rules(&write, AccessFs::from_all(abi)))?
            .restrict_self()
    };
    match attempt() {
        Ok(status) => {
            let kernel = match status.landlock {
                LandlockStatus::Available { effective_abi, .. } => format!("Landlock ABI {}", effective_abi as i32),
                LandlockStatus::NotEnabled => "Landlock is not enabled in this kernel".to_owned(),
                LandlockStatus::NotImplemented => "this kernel has no Landlock".to_owned(),
            };
            let scope = format!("{kernel}: read {} paths, read-write {} paths", read.len(), write.len());
            match status.ruleset {
                RulesetStatus::FullyEnforced => (Protection::on(scope), !policy.network),
                RulesetStatus::PartiallyEnforced => {
                    (Protection::off(format!("{scope}, only partially enforced by this kernel")), false)
                }
                _ => (Protection::off(format!("not enforced: {kernel}")), false),
            }
        }
        Err(e) => (Protection::off(format!("Landlock failed: {e}")), false),
    }
}

fn install(rules: BTreeMap<i64, Vec<SeccompRule>>, on_match: SeccompAction) -> Result<(), String> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, on_match, target_arch()).map_err(|e| e.to_string())?;
    let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter(&program).map_err(|e| e.to_string())
}

fn target_arch() -> seccompiler::TargetArch {
    #[cfg(target_arch = "aarch64")]
    return seccompiler::TargetArch::aarch64;
    #[cfg(target_arch = "riscv64")]
    return seccompiler::TargetArch::riscv64;
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    seccompiler::TargetArch::x86_64
}

/// Kills the process on `socket(AF_INET | AF_INET6 | AF_PACKET, ...)`. A kill (SIGSYS)
/// rather than an error code makes the attempt unmistakable in the exit status.
fn apply_socket_filter() -> Result<(), String> {
    let domain = |family: i32| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, family as u64)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(|e| e.to_string())
    };
    let rules =
        [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET].into_iter().map(domain).collect::<Result<Vec<_>, _>>()?;
    install(BTreeMap::from([(libc::SYS_socket, rules)]), SeccompAction::KillProcess)
        .map_err(|e| format!("seccomp socket filter: {e}"))
}

/// System calls a plugin never needs: they change the system, escape the sandbox or the
/// process group, or inspect other processes. They fail with EPERM.
const DENIED_SYSCALLS: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("kexec_load", libc::SYS_kexec_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("setsid", libc::SYS_setsid),
    ("setpgid", libc::SYS_setpgid),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("syslog", libc::SYS_syslog),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("fanotify_init", libc::SYS_fanotify_init),
];

/// The name of a system call the sandbox forbids.
fn denied_name(nr: i64) -> Option<&'static str> {
    DENIED_SYSCALLS.iter().find(|&&(_, n)| n == nr).map(|&(name, _)| name)
}

/// Forbids [`DENIED_SYSCALLS`]. Traced, they trap, and the supervisor records the attempt
/// and answers `EPERM`; untraced, the kernel answers `EPERM` itself.
fn apply_syscall_filter(traced: bool) -> Protection {
    let rules = DENIED_SYSCALLS.iter().map(|&(_, nr)| (nr, Vec::new())).collect();
    let action = if traced { SeccompAction::Trap } else { SeccompAction::Errno(libc::EPERM as u32) };
    match install(rules, action) {
        Ok(()) => Protection::on(format!(
            "seccomp denies {} system calls (ptrace, mount, unshare, setsid, bpf, ...)",
            DENIED_SYSCALLS.len()
        )),
        Err(e) => Protection::off(format!("seccomp filter failed: {e}")),
    }
}

/// Hands the calls that can be refused to the supervisor (see [`super::trace`]).
fn watch() -> Protection {
    let installed = trace::watch_filter(target_arch())
        .and_then(|program| seccompiler::apply_filter(&program).map_err(|e| format!("seccomp watch filter: {e}")));
    match installed {
        Ok(()) => Protection::on(
            "ptrace records refused opens, writes, executions and process starts, and calls to forbidden system calls",
        ),
        // Nothing is watched then; every protection stands.
        Err(why) => Protection::off(format!("not recorded: {why}")),
    }
}
