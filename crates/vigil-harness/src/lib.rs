//! The harness: running analysis plugins against an input, and proving what ran.
//!
//! An upload ([`uploads`]) becomes a run: [`plan`] picks the plugins from the
//! [`registry`] (built-ins from [`builtin`] plus plugin folders, each described by a
//! [`manifest`]) and orders them in layers; [`runs::Harness`] fingerprints the run, executes
//! each plugin through [`exec`] in the [`sandbox`] (speaking the JSON [`protocol`]), reuses
//! identical earlier results, writes the [`report`] and records lineage; [`known`] issues
//! declared per dataset kind are previewed and evaluated. [`format`] detects
//! what an input is; [`fsutil`] holds the atomic-write and containment helpers. The
//! built-ins' code identity is the digest of their source, taken at build time by
//! `build.rs` (`source_digest`).

pub mod artifacts;
pub mod builtin;
pub mod bundle;
pub mod doctor;
pub mod exec;
pub mod format;
pub mod fsutil;
pub mod gc;
pub mod install;
pub mod known;
pub mod manifest;
pub mod plan;
pub mod registry;
pub mod report;
pub mod runs;
pub mod sandbox;
#[cfg(test)]
mod source_digest;
pub mod uploads;

pub use runs::{Harness, HarnessError, HarnessOptions, Prepared, RunEvent, RunRequest, Submitted};
pub use vigil_pack::protocol;
