//! Vigil's pure domain model, shared by every other crate.
//!
//! This crate owns the vocabulary the rest of Vigil speaks: [`digest::Sha256Digest`] for
//! content addresses and hash chains, [`id`] newtypes ([`id::KeyId`], [`id::RequestId`]),
//! [`scope::Scope`] for what an API key may do, [`provenance::Provenance`] for the block every
//! API answer carries, [`page`] for cursor pagination, [`time::Timestamp`], and
//! [`config`], which turns a TOML file plus `VIGIL_*` variables into a validated
//! [`config::Config`].
//!
//! Invariant: no IO here. No files, sockets, SQL or async runtime; the environment and file
//! contents are passed in by the caller. That keeps everything in this crate testable with
//! plain values and makes later state machines replayable.

pub mod config;
pub mod digest;
pub mod egress;
pub mod glob;
pub mod id;
pub mod number;
pub mod page;
pub mod policy;
pub mod provenance;
pub mod run;
pub mod scope;
pub mod time;
pub mod vitals;
