//! Turning how a sandboxed command ended into a verdict: ok, error, timeout or violation.
//!
//! Pure: it reads the helper's report, what the runner had to do (kill on the wall clock or
//! on a stdout flood), and the tail of the command's stderr. Signals, the runner's own kills
//! and the denials the helper watched are unambiguous; the rest is read from the errors the
//! kernel gives a confined program (`EACCES` from Landlock, `EAGAIN` from the process limit,
//! `ENOMEM` from the address-space limit) as language runtimes print them. Each violation
//! names what was attempted, which limit stopped it, and the evidence.
//!
//! A command that failed after a recorded denial is a violation named by that denial. One
//! that survived its denials and succeeded stays `ok`: libraries routinely try and fall back
//! (SQLite opens a read-only database's WAL for writing first), so a survived denial is a
//! record, listed with the execution's violations, not a verdict.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Denial, HelperReport, Limits};

/// What the runner saw happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The helper exited by itself.
    Exited,
    /// The wall-clock limit passed; the runner killed the process group.
    WallClock,
    /// The command wrote more than the stdout cap; the runner killed the process group.
    StdoutFlood,
    /// The run was canceled; the runner killed the process group.
    Canceled,
}

/// The kind of protection a violation ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    Network,
    Filesystem,
    Memory,
    Cpu,
    Processes,
    FileSize,
    Output,
    Time,
    Syscall,
}

/// One attempt the sandbox stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Violation {
    pub kind: ViolationKind,
    pub reason: String,
}

/// The verdict on one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// The command failed on its own (or could not be started).
    Error(String),
    Timeout(Violation),
    Violation(Violation),
}

const SIGKILL: i32 = 9;
const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;
const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;
const SIGSYS: i32 = 31;

/// Classifies one execution. `stderr_tail` is the end of what the command wrote to stderr.
pub fn classify(
    ending: Ending,
    report: Option<&HelperReport>,
    stderr_tail: &str,
    limits: &Limits,
    wall: Duration,
    stdout_cap_bytes: usize,
) -> Verdict {
    let violation = |kind, reason: String| Violation { kind, reason };
    match ending {
        Ending::WallClock => {
            let reason =
                format!("ran past its wall-clock limit of {} ms; the process group was killed", wall.as_millis());
            return Verdict::Timeout(violation(ViolationKind::Time, reason));
        }
        Ending::StdoutFlood => {
            let reason = format!("wrote more than {stdout_cap_bytes} bytes to stdout; the process group was killed");
            return Verdict::Violation(violation(ViolationKind::Output, reason));
        }
        Ending::Canceled => return Verdict::Error("canceled while running; the process group was killed".to_owned()),
        Ending::Exited => {}
    }
    let Some(report) = report else {
        return Verdict::Error("the sandbox helper ended without a report".to_owned());
    };
    if let Some(why) = &report.setup_error {
        return Verdict::Error(format!("sandbox: {why}"));
    }
    let Some(exit) = report.exit else {
        return Verdict::Error("the sandbox helper reported no exit status".to_owned());
    };
    let verdict = judge_exit(exit, report, stderr_tail, limits);
    // A watched denial is firmer evidence than the stderr a failure is read from.
    match (verdict, report.denials.first()) {
        (Verdict::Error(_), Some(first)) => Verdict::Violation(denied(first, limits)),
        (Verdict::Violation(v), Some(first))
            if matches!(v.kind, ViolationKind::Filesystem | ViolationKind::Processes) =>
        {
            let same_kind = report.denials.iter().find(|d| d.kind == v.kind).unwrap_or(first);
            Verdict::Violation(denied(same_kind, limits))
        }
        (verdict, _) => verdict,
    }
}

/// Every denial the helper recorded, as violations.
pub fn denials(report: &HelperReport, limits: &Limits) -> Vec<Violation> {
    report.denials.iter().map(|d| denied(d, limits)).collect()
}

/// A recorded denial as a violation a person can act on.
fn denied(denial: &Denial, limits: &Limits) -> Violation {
    let times = if denial.count > 1 { format!(", {} times", denial.count) } else { String::new() };
    let evidence = format!("{}: {}, {}{times}", denial.call, denial.errno, denial.message);
    let what = match &denial.target {
        Some(target) => format!("{} {target}", denial.doing),
        None => denial.doing.clone(),
    };
    let reason = match denial.kind {
        ViolationKind::Processes => {
            format!("hit its limit of {} processes: {what} was refused ({evidence})", limits.processes)
        }
        ViolationKind::Syscall => format!("made a system call the sandbox forbids: {what} ({evidence})"),
        _ => format!("was denied access outside its allowlist: {what} ({evidence})"),
    };
    Violation { kind: denial.kind, reason }
}

/// The verdict from how the command ended and what it wrote to stderr.
fn judge_exit(exit: super::Exit, report: &HelperReport, stderr_tail: &str, limits: &Limits) -> Verdict {
    let violation = |kind, reason: String| Violation { kind, reason };
    let evidence = evidence_line(stderr_tail);
    let memory = || {
        let reason = format!("exceeded its memory limit of {} MiB{}", limits.memory_bytes >> 20, cite(&evidence));
        Verdict::Violation(violation(ViolationKind::Memory, reason))
    };
    match exit.signal {
        Some(SIGSYS) => {
            let reason =
                "tried to open an internet socket without the network permission; seccomp killed it".to_owned();
            return Verdict::Violation(violation(ViolationKind::Network, reason));
        }
        Some(SIGXCPU) | Some(SIGKILL)
            if report.cpu_user_us + report.cpu_system_us >= limits.cpu_seconds * 1_000_000 =>
        {
            let reason = format!("used up its CPU-time limit of {} s", limits.cpu_seconds);
            return Verdict::Violation(violation(ViolationKind::Cpu, reason));
        }
        Some(SIGXFSZ) => {
            let reason = format!("wrote a file larger than its limit of {} MiB", limits.file_size_bytes >> 20);
            return Verdict::Violation(violation(ViolationKind::FileSize, reason));
        }
        Some(SIGABRT | SIGSEGV) if mentions_memory(stderr_tail) => return memory(),
        Some(signal) => return Verdict::Error(format!("killed by signal {signal}{}", cite(&evidence))),
        None => {}
    }
    match exit.code {
        Some(0) => Verdict::Ok,
        code => {
            let code = code.map_or_else(|| "an unknown status".to_owned(), |c| format!("status {c}"));
            if mentions_memory(stderr_tail) {
                memory()
            } else if let Some(line) = find_line(stderr_tail, &["Resource temporarily unavailable", "EAGAIN"]) {
                let reason = format!("hit its limit of {} processes: {line}", limits.processes);
                Verdict::Violation(violation(ViolationKind::Processes, reason))
            } else if let Some(line) = find_line(stderr_tail, &["Network is unreachable", "ENETUNREACH"]) {
                let reason = format!("tried to reach the network without the network permission: {line}");
                Verdict::Violation(violation(ViolationKind::Network, reason))
            } else if let Some(line) = find_line(
                stderr_tail,
                &["Permission denied", "PermissionError", "EACCES", "Operation not permitted", "EPERM"],
            ) {
                let reason = format!("was denied access outside its allowlist: {line}");
                Verdict::Violation(violation(ViolationKind::Filesystem, reason))
            } else {
                Verdict::Error(format!("exited with {code}{}", cite(&evidence)))
            }
        }
    }
}

fn mentions_memory(text: &str) -> bool {
    find_line(text, &["MemoryError", "memory allocation of", "Cannot allocate memory", "out of memory", "bad_alloc"])
        .is_some()
}

/// The last line of `text` containing any of `needles`, trimmed.
fn find_line<'a>(text: &'a str, needles: &[&str]) -> Option<&'a str> {
    text.lines().rev().find(|l| needles.iter().any(|n| l.contains(n))).map(str::trim)
}

/// The last non-empty stderr line: usually the error a runtime ended with.
fn evidence_line(text: &str) -> Option<&str> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

fn cite(evidence: &Option<&str>) -> String {
    evidence.map(|line| format!(": {line}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::Exit;
    use super::*;

    fn report(code: Option<i32>, signal: Option<i32>) -> HelperReport {
        HelperReport { exit: Some(Exit { code, signal }), ..HelperReport::default() }
    }

    fn judge(ending: Ending, report: Option<&HelperReport>, stderr: &str) -> Verdict {
        classify(ending, report, stderr, &Limits::default(), Duration::from_secs(2), 1024)
    }

    fn kind(verdict: &Verdict) -> Option<ViolationKind> {
        match verdict {
            Verdict::Violation(v) | Verdict::Timeout(v) => Some(v.kind),
            _ => None,
        }
    }

    #[test]
    fn runner_kills_are_unambiguous() {
        assert!(matches!(judge(Ending::WallClock, None, ""), Verdict::Timeout(_)));
        assert_eq!(kind(&judge(Ending::StdoutFlood, None, "")), Some(ViolationKind::Output));
    }

    #[test]
    fn signals_map_to_their_limits() {
        assert_eq!(kind(&judge(Ending::Exited, Some(&report(None, Some(SIGSYS))), "")), Some(ViolationKind::Network));
        assert_eq!(kind(&judge(Ending::Exited, Some(&report(None, Some(SIGXFSZ))), "")), Some(ViolationKind::FileSize));
        let mut spun = report(None, Some(SIGXCPU));
        spun.cpu_user_us = 61_000_000;
        assert_eq!(kind(&judge(Ending::Exited, Some(&spun), "")), Some(ViolationKind::Cpu));
        // A SIGKILL from elsewhere, well inside the CPU budget, is not a CPU violation.
        assert!(matches!(judge(Ending::Exited, Some(&report(None, Some(SIGKILL))), ""), Verdict::Error(_)));
        let abort = report(None, Some(SIGABRT));
        assert_eq!(
            kind(&judge(Ending::Exited, Some(&abort), "memory allocation of 1073741824 bytes failed")),
            Some(ViolationKind::Memory)
        );
    }

    #[test]
    fn runtime_errors_are_read_from_stderr() {
        let failed = report(Some(1), None);
        let cases = [
            ("Traceback...\nMemoryError", Some(ViolationKind::Memory)),
            ("BlockingIOError: [Errno 11] Resource temporarily unavailable", Some(ViolationKind::Processes)),
            ("PermissionError: [Errno 13] Permission denied: '/etc/secret'", Some(ViolationKind::Filesystem)),
            ("OSError: [Errno 101] Network is unreachable", Some(ViolationKind::Network)),
            ("ValueError: bad column", None),
        ];
        for (stderr, expected) in cases {
            assert_eq!(kind(&judge(Ending::Exited, Some(&failed), stderr)), expected, "{stderr}");
        }
        assert_eq!(judge(Ending::Exited, Some(&report(Some(0), None)), "PermissionError"), Verdict::Ok);
    }

    #[test]
    fn reasons_cite_the_evidence() {
        let verdict = judge(
            Ending::Exited,
            Some(&report(Some(1), None)),
            "x\nPermissionError: [Errno 13] Permission denied: '/s'\n",
        );
        let Verdict::Violation(v) = verdict else { panic!("expected a violation") };
        assert!(v.reason.contains("'/s'"), "{}", v.reason);
        let Verdict::Error(why) = judge(Ending::Exited, Some(&report(Some(3), None)), "ValueError: bad\n") else {
            panic!("expected an error")
        };
        assert_eq!(why, "exited with status 3: ValueError: bad");
    }

    fn denial(kind: ViolationKind, call: &str, doing: &str, target: Option<&str>, errno: &str) -> Denial {
        Denial {
            kind,
            call: call.into(),
            doing: doing.into(),
            target: target.map(Into::into),
            errno: errno.into(),
            message: "Permission denied".into(),
            count: 2,
        }
    }

    #[test]
    fn a_failure_after_a_recorded_denial_is_named_by_it() {
        let mut failed = report(Some(1), None);
        failed.denials = vec![denial(ViolationKind::Filesystem, "openat", "reading", Some("/etc/shadow"), "EACCES")];
        let Verdict::Violation(v) = judge(Ending::Exited, Some(&failed), "Traceback ... KeyError: 'x'") else {
            panic!("expected a violation")
        };
        assert_eq!(v.kind, ViolationKind::Filesystem);
        assert_eq!(
            v.reason,
            "was denied access outside its allowlist: reading /etc/shadow (openat: EACCES, Permission denied, 2 times)"
        );
        // The denial names a stderr-read violation of its own kind more precisely.
        failed.denials.insert(0, denial(ViolationKind::Processes, "clone", "starting a process", None, "EAGAIN"));
        let Verdict::Violation(v) = judge(Ending::Exited, Some(&failed), "PermissionError: [Errno 13]") else {
            panic!("expected a violation")
        };
        assert!(v.reason.contains("/etc/shadow"), "{}", v.reason);
        // Other evidence is left alone: a network kill stays a network violation.
        let mut killed = report(None, Some(SIGSYS));
        killed.denials = failed.denials.clone();
        assert_eq!(kind(&judge(Ending::Exited, Some(&killed), "")), Some(ViolationKind::Network));
    }

    #[test]
    fn a_denial_survived_by_a_successful_command_is_a_record_not_a_verdict() {
        let mut survived = report(Some(0), None);
        survived.denials = vec![
            denial(ViolationKind::Filesystem, "openat", "reading and writing", Some("/data/vigil.db-shm"), "EACCES"),
            denial(ViolationKind::Syscall, "ptrace", "calling ptrace", None, "EPERM"),
        ];
        assert_eq!(judge(Ending::Exited, Some(&survived), ""), Verdict::Ok);
        let listed = denials(&survived, &Limits::default());
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].kind, ViolationKind::Syscall);
        assert!(listed[1].reason.starts_with("made a system call the sandbox forbids: calling ptrace"), "{listed:?}");
    }

    #[test]
    fn setup_failures_are_errors() {
        let failed = HelperReport {
            setup_error: Some("strict sandbox: not enforced: filesystem".into()),
            ..HelperReport::default()
        };
        assert!(matches!(judge(Ending::Exited, Some(&failed), ""), Verdict::Error(w) if w.contains("strict")));
        assert!(matches!(judge(Ending::Exited, None, ""), Verdict::Error(_)));
    }
}
