//! The harness: running analysis plugins against an input, and proving what ran.
//!
//! [`sandbox`] runs one untrusted command under a policy (no network, a filesystem
//! allowlist, rlimits, an unprivileged user, a seccomp filter) through the `vigil
//! __sandbox-exec` helper, and reports truthfully what was enforced and what the command
//! attempted.

pub mod builtin;
pub mod format;
pub mod manifest;
pub mod plan;
pub mod protocol;
pub mod sandbox;
pub mod uploads;
