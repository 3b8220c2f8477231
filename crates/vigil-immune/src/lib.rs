//! The immune system's deterministic core: no clock, no IO, no async.
//!
//! Everything here is a plain function of timestamped inputs, so a recorded event stream
//! replays to exactly the same decisions and property tests can drive it.
//!
//! - [`baseline::Baseline`]: per agent and metric, an exponentially weighted mean and
//!   variance with a warm-up, a half-life, drift tracking, and acceleration or reset after
//!   healing.
//! - [`sentinel`]: judges one observation against its baseline, with a standard-deviation
//!   floor and a cap on the reported deviation; each [`sentinel::Anomaly`] explains itself.
//! - [`lifecycle::Lifecycle`]: an agent's state (healthy → suspected → draining →
//!   quarantined → healing → probation → healthy, or exhausted) moved only through the
//!   legal transitions in [`lifecycle::TRANSITIONS`], with its history.
//! - [`diagnosis`]: ranked hypotheses with confidence and evidence from an episode of
//!   anomalies, adjusted by operator feedback.
//! - [`correlation`]: one agent, part of the fleet, or the whole fleet (an external cause).
//! - [`injection`]: a lexical prompt-injection signal (with decoding of hidden text) that
//!   the gateway computes per call and diagnosis weighs.
//! - [`healing`]: the action ladder per diagnosis and the fleet's immune memory.
//! - [`engine::Engine`]: all of the above as one deterministic state machine fed
//!   timestamped [`engine::Input`]s, returning [`engine::Decision`]s; serializable for
//!   snapshots and replay.
//! - [`replay`]: the replay file format and a replayer that checks recorded decisions.
//! - [`stream`]: a context detector for a metric's time series (k nearest trajectories,
//!   conformal scores, rest periods), for anomalies of shape the sentinel cannot see.
//! - [`rhythm`]: each agent's calls and tokens per bucket judged by that detector against
//!   its daily shape and weekly peaks, so a runaway of ordinary calls is still caught.
//! - [`nab`]: the Numenta Anomaly Benchmark scorer the detectors are measured with.
//! - [`simulation`]: the faults `vigil demo` and the immune benchmark inject, and their cures.

pub mod baseline;
pub mod correlation;
pub mod diagnosis;
pub mod engine;
pub mod healing;
pub mod injection;
pub mod lifecycle;
pub mod nab;
pub mod replay;
pub mod rhythm;
pub mod sentinel;
pub mod simulation;
pub mod stream;
