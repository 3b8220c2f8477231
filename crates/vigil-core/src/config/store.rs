//! `[store]` and `[blobs]`: how hard the database works to survive power loss
//! ([`Durability`]), how long it waits on a lock, and the largest blob it keeps. Validated
//! into [`StoreConfig`] and [`BlobsConfig`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, Setting, ValueKind, setting};

/// Bounds for `[store]` and `[blobs]`, units last.
pub const BLOB_BYTES_MAX: u64 = 1 << 40;
pub const BUSY_TIMEOUT_MS_MAX: u64 = 60_000;

pub(super) const SETTINGS: &[Setting] = &[
    setting("store.durability", "VIGIL_STORE_DURABILITY", ValueKind::Text),
    setting("store.busy_timeout_ms", "VIGIL_STORE_BUSY_TIMEOUT_MS", ValueKind::Integer),
    setting("blobs.max_bytes", "VIGIL_BLOBS_MAX_BYTES", ValueKind::Integer),
];

/// How hard the store works to survive power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged.
    #[default]
    Safe,
    /// `synchronous=NORMAL`: in WAL mode the last commits may be lost on power loss (never
    /// on a process crash), the database stays consistent.
    Fast,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    pub durability: Durability,
    pub busy_timeout_ms: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore { durability: Durability::Safe, busy_timeout_ms: 5_000 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBlobs {
    pub max_bytes: u64,
}

impl Default for RawBlobs {
    fn default() -> Self {
        RawBlobs { max_bytes: 1 << 30 }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct StoreConfig {
    pub durability: Durability,
    pub busy_timeout: Duration,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct BlobsConfig {
    pub max_bytes: u64,
}

impl RawStore {
    pub(super) fn validate(self, check: &mut Check<'_>) -> StoreConfig {
        check.range("store.busy_timeout_ms", self.busy_timeout_ms, 0..=BUSY_TIMEOUT_MS_MAX);
        StoreConfig { durability: self.durability, busy_timeout: Duration::from_millis(self.busy_timeout_ms) }
    }
}

impl RawBlobs {
    pub(super) fn validate(self, check: &mut Check<'_>) -> BlobsConfig {
        check.range("blobs.max_bytes", self.max_bytes, 1..=BLOB_BYTES_MAX);
        BlobsConfig { max_bytes: self.max_bytes }
    }
}
