//! The harness's closed sets: a run's status and a plugin execution's status, with the
//! rules for how a run's outcome follows from its executions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    /// Every plugin succeeded (or reused an identical earlier result) and the report exists.
    Completed,
    /// Some plugins failed, others succeeded; the report covers what succeeded.
    CompletedWithErrors,
    /// Nothing succeeded, or the run could not produce its report.
    Failed,
    Canceled,
    /// The process running it died; it can be retried.
    Crashed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::CompletedWithErrors,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Crashed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::CompletedWithErrors => "completed_with_errors",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
            RunStatus::Crashed => "crashed",
        }
    }

    /// Whether the run will not change any more by itself.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// Whether failed plugins of a run in this status may be retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, RunStatus::CompletedWithErrors | RunStatus::Failed | RunStatus::Canceled | RunStatus::Crashed)
    }
}

/// How one plugin execution went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    /// Not started yet.
    Pending,
    Running,
    Ok,
    /// The plugin failed: bad exit, invalid response, or it reported an error.
    Error,
    /// It ran past its wall-clock limit and was killed.
    Timeout,
    /// The sandbox stopped something it tried (network, files, memory, processes, output).
    Violation,
    /// Not run because something it depends on did not succeed, or the run was canceled.
    Skipped,
    /// An identical earlier execution's result was reused.
    Cached,
    /// Not allowed to run: the sandbox could not enforce what strict mode requires.
    Blocked,
}

impl ExecStatus {
    pub const ALL: [ExecStatus; 9] = [
        ExecStatus::Pending,
        ExecStatus::Running,
        ExecStatus::Ok,
        ExecStatus::Error,
        ExecStatus::Timeout,
        ExecStatus::Violation,
        ExecStatus::Skipped,
        ExecStatus::Cached,
        ExecStatus::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecStatus::Pending => "pending",
            ExecStatus::Running => "running",
            ExecStatus::Ok => "ok",
            ExecStatus::Error => "error",
            ExecStatus::Timeout => "timeout",
            ExecStatus::Violation => "violation",
            ExecStatus::Skipped => "skipped",
            ExecStatus::Cached => "cached",
            ExecStatus::Blocked => "blocked",
        }
    }

    /// Produced a usable result.
    pub fn succeeded(self) -> bool {
        matches!(self, ExecStatus::Ok | ExecStatus::Cached)
    }
}

/// The outcome of a run whose executions ended in `statuses`, given whether its report
/// artifacts were all written.
pub fn outcome(statuses: &[ExecStatus], report_written: bool) -> RunStatus {
    let succeeded = statuses.iter().filter(|s| s.succeeded()).count();
    if !report_written || succeeded == 0 {
        RunStatus::Failed
    } else if succeeded == statuses.len() {
        RunStatus::Completed
    } else {
        RunStatus::CompletedWithErrors
    }
}

macro_rules! text_enum {
    ($ty:ty, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    let known: Vec<&str> = <$ty>::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {s:?}; expected one of {}", $what, known.join(", "))
                })
            }
        }
    };
}

text_enum!(RunStatus, "run status");
text_enum!(ExecStatus, "execution status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        use ExecStatus::*;
        assert_eq!(outcome(&[Ok, Cached], true), RunStatus::Completed);
        assert_eq!(outcome(&[Ok, Error, Skipped], true), RunStatus::CompletedWithErrors);
        assert_eq!(outcome(&[Violation, Skipped], true), RunStatus::Failed);
        assert_eq!(outcome(&[Ok], false), RunStatus::Failed, "no report, not completed");
    }

    #[test]
    fn text_round_trips() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        }
        for s in ExecStatus::ALL {
            assert_eq!(s.as_str().parse::<ExecStatus>(), Ok(s));
        }
        assert!("done".parse::<RunStatus>().expect_err("unknown").contains("completed_with_errors"));
    }
}
