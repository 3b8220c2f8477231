//! `[auth]`: the bootstrap admin key, a secret that works in addition to the keys kept in
//! the store (usually passed as `VIGIL_ADMIN_KEY_FILE`). Validated into `Config::admin_key`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Check, Secret, Setting, ValueKind};

/// Bounds for the admin key's length, in characters.
pub const ADMIN_KEY_LEN_MIN: usize = 32;
pub const ADMIN_KEY_LEN_MAX: usize = 512;

pub(super) const SETTINGS: &[Setting] =
    &[Setting { key: "auth.admin_key", env: "VIGIL_ADMIN_KEY", kind: ValueKind::Text, secret: true }];

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub admin_key: Option<String>,
}

impl fmt::Debug for RawAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.admin_key.as_ref().map(|_| "<redacted>");
        f.debug_struct("RawAuth").field("admin_key", &shown).finish()
    }
}

impl RawAuth {
    /// The admin key, if one is configured. A bad key is reported without being repeated.
    pub(super) fn validate(self, check: &mut Check<'_>) -> Option<Secret> {
        let key = self.admin_key?;
        let printable = key.bytes().all(|b| b.is_ascii_graphic());
        if !(ADMIN_KEY_LEN_MIN..=ADMIN_KEY_LEN_MAX).contains(&key.len()) || !printable {
            check.problem(
                "auth.admin_key",
                format!(
                    "must be {ADMIN_KEY_LEN_MIN} to {ADMIN_KEY_LEN_MAX} printable ASCII characters \
                     without spaces (for example the output of `openssl rand -hex 32`)"
                ),
            );
        }
        Some(Secret(key))
    }
}
