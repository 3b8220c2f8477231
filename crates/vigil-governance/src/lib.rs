//! Governance, pure: what a tenant's policy says and what follows from it.
//!
//! A [`document::PolicyDocument`] is read by [`document::parse`], which reports every problem
//! at once; [`checks::check`] finds what is valid but wrong (rules that never decide,
//! allows and denies that meet, budgets above their parent, references to nothing, limits
//! that never admit), each with an example request; [`decide::decide`] is the one decision
//! function: the gateway judges model calls by it today, and the harness and the immune
//! system's actions are to be judged by it next (their kill-switch domains exist already).
//! [`simulate::Simulation`] replays recorded calls through a proposal and the policy in force.
//! [`pattern`] reasons about glob patterns for the checks; [`budget`] says which budgets a
//! call counts against; [`approval`] binds an approval to the payload that executes. No IO,
//! no clock: the services layer holds the versions and the counters.

pub mod approval;
pub mod budget;
pub mod checks;
pub mod decide;
pub mod diff;
pub mod document;
pub mod pattern;
pub mod simulate;

pub use checks::{Example, Finding, Known, Severity, check};
pub use decide::{DecidedBy, Decision, Subject, decide};
pub use diff::{Change, changes};
pub use document::{Domain, Effect, PolicyDocument, Problem, parse};
pub use simulate::{RecordedCall, Report, Simulation};
