//! `[harness]`: where external plugins live, how many run at once, how strictly they are
//! sandboxed (by default following the mode) and how much output each may write. Validated
//! into [`HarnessConfig`].

use serde::{Deserialize, Serialize};

use super::{Check, Mode, Setting, ValueKind, setting};

/// Bounds for `[harness]`, units last.
pub const PARALLELISM_MAX: u64 = 64;
pub const PLUGIN_OUTPUT_BYTES_MAX: u64 = 1 << 30;

pub(super) const SETTINGS: &[Setting] = &[
    setting("harness.plugins_dir", "VIGIL_HARNESS_PLUGINS_DIR", ValueKind::Text),
    setting("harness.parallelism", "VIGIL_HARNESS_PARALLELISM", ValueKind::Integer),
    setting("harness.sandbox_strict", "VIGIL_HARNESS_SANDBOX_STRICT", ValueKind::Boolean),
    setting("harness.stdout_max_bytes", "VIGIL_HARNESS_STDOUT_MAX_BYTES", ValueKind::Integer),
    setting("harness.stderr_max_bytes", "VIGIL_HARNESS_STDERR_MAX_BYTES", ValueKind::Integer),
];

/// `[harness]`: plugins and runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHarness {
    /// Folder of external plugins (one sub-folder with a `plugin.toml` each). Relative
    /// paths are inside the data directory.
    pub plugins_dir: String,
    /// Plugins of one layer run at most this many at a time.
    pub parallelism: u64,
    /// Refuse to run a plugin unless every sandbox protection is enforced. Defaults to on
    /// in production mode and off in local mode (where what was enforced is still recorded).
    pub sandbox_strict: Option<bool>,
    /// Largest response a plugin may write to stdout.
    pub stdout_max_bytes: u64,
    /// Largest stderr log kept per plugin execution.
    pub stderr_max_bytes: u64,
}

impl Default for RawHarness {
    fn default() -> Self {
        RawHarness {
            plugins_dir: "plugins".to_owned(),
            parallelism: 2,
            sandbox_strict: None,
            stdout_max_bytes: 16 << 20,
            stderr_max_bytes: 1 << 20,
        }
    }
}

/// Validated `[harness]`.
#[derive(Clone, Debug, Serialize)]
pub struct HarnessConfig {
    /// As configured; relative paths are inside the data directory.
    pub plugins_dir: std::path::PathBuf,
    pub parallelism: usize,
    pub sandbox_strict: bool,
    pub stdout_max_bytes: usize,
    pub stderr_max_bytes: u64,
}

impl RawHarness {
    pub(super) fn validate(self, check: &mut Check<'_>) -> HarnessConfig {
        check.range("harness.parallelism", self.parallelism, 1..=PARALLELISM_MAX);
        check.range("harness.stdout_max_bytes", self.stdout_max_bytes, 1024..=PLUGIN_OUTPUT_BYTES_MAX);
        check.range("harness.stderr_max_bytes", self.stderr_max_bytes, 0..=PLUGIN_OUTPUT_BYTES_MAX);
        if self.plugins_dir.trim().is_empty() {
            check.problem("harness.plugins_dir", "must name a folder".to_owned());
        }
        HarnessConfig {
            plugins_dir: self.plugins_dir.into(),
            parallelism: usize::try_from(self.parallelism).unwrap_or(1),
            sandbox_strict: self.sandbox_strict.unwrap_or(check.mode == Mode::Production),
            stdout_max_bytes: usize::try_from(self.stdout_max_bytes).unwrap_or(usize::MAX),
            stderr_max_bytes: self.stderr_max_bytes,
        }
    }
}
