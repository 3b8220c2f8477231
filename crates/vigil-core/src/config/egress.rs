//! `[egress]`: where Vigil may send requests on a caller's behalf (agents' control URLs).
//! Public addresses are allowed; private, loopback, link-local and other special ones only
//! when listed here. Validated into an [`EgressPolicy`](crate::egress::EgressPolicy).

use serde::{Deserialize, Serialize};

use super::{Check, Setting, ValueKind, setting};
use crate::egress::{Allowed, EgressPolicy};

/// Most entries `egress.allow` may hold.
pub const EGRESS_ALLOW_MAX: usize = 1_000;

pub(super) const SETTINGS: &[Setting] = &[setting("egress.allow", "VIGIL_EGRESS_ALLOW", ValueKind::List)];

/// `[egress]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEgress {
    /// Addresses (`10.1.2.3`), networks (`10.0.0.0/8`, `fd00::/8`) and host names
    /// (`agents.internal`) that may be called although they are not public. In the
    /// environment: comma-separated.
    pub allow: Vec<String>,
}

impl RawEgress {
    pub(super) fn validate(self, check: &mut Check<'_>) -> EgressPolicy {
        if self.allow.len() > EGRESS_ALLOW_MAX {
            check.problem("egress.allow", format!("at most {EGRESS_ALLOW_MAX} entries, got {}", self.allow.len()));
        }
        let mut allow = Vec::new();
        for entry in &self.allow {
            match Allowed::parse(entry) {
                Ok(allowed) => allow.push(allowed),
                Err(message) => check.problem("egress.allow", message),
            }
        }
        EgressPolicy { allow, own: None }
    }
}
