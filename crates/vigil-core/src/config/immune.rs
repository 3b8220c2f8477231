//! `[immune]`: the immune engine's baselines (half-life, warm-up, threshold), its daily
//! rhythms, how it heals (throttle, revoke, quarantine, reset) and which actions wait for a
//! person's approval. Validated into [`ImmuneConfig`].

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, Setting, ValueKind, setting};

pub(super) const SETTINGS: &[Setting] = &[
    setting("immune.enabled", "VIGIL_IMMUNE_ENABLED", ValueKind::Boolean),
    setting("immune.approval_min_severity", "VIGIL_IMMUNE_APPROVAL_MIN_SEVERITY", ValueKind::Integer),
    setting("immune.probation_calls", "VIGIL_IMMUNE_PROBATION_CALLS", ValueKind::Integer),
    setting("immune.drain_grace_ms", "VIGIL_IMMUNE_DRAIN_GRACE_MS", ValueKind::Integer),
    setting("immune.quarantine_cooldown_ms", "VIGIL_IMMUNE_QUARANTINE_COOLDOWN_MS", ValueKind::Integer),
    setting("immune.snapshot_every_secs", "VIGIL_IMMUNE_SNAPSHOT_EVERY_SECS", ValueKind::Integer),
    setting("immune.rhythm", "VIGIL_IMMUNE_RHYTHM", ValueKind::Boolean),
    setting("immune.rhythm_bucket_secs", "VIGIL_IMMUNE_RHYTHM_BUCKET_SECS", ValueKind::Integer),
];

/// `[immune]`: baselines, detection, healing and approvals.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawImmune {
    /// Watch agents and heal them. Off: vitals are still recorded, nothing is judged.
    pub enabled: bool,
    /// Calls after which an old call weighs half in a baseline.
    pub half_life_calls: u64,
    /// Calls a baseline learns before it judges.
    pub warmup_calls: u64,
    /// Deviations (in standard deviations, floored) at which a value is anomalous.
    pub threshold: f64,
    /// Healing actions at least this severe (1 throttle … 4 reset agent) wait for a
    /// person's approval; 5 means never.
    pub approval_min_severity: u64,
    /// Normal calls that pass probation after a healing action.
    pub probation_calls: u64,
    /// How long a confirmed agent drains (in-flight calls finish) before quarantine.
    pub drain_grace_ms: u64,
    /// Share of active agents anomalous together that makes a fleet-wide (external) cause.
    pub fleet_share: f64,
    /// Window for correlating agents, in seconds.
    pub correlation_window_secs: u64,
    /// Calls per minute a throttled agent keeps.
    pub throttle_calls_per_minute: u64,
    /// How long a throttle or a tool revocation stands, in seconds.
    pub restriction_secs: u64,
    /// How long the quarantine action keeps an agent isolated before probation.
    pub quarantine_cooldown_ms: u64,
    /// How often the engine's state is saved, in seconds.
    pub snapshot_every_secs: u64,
    /// How long an agent's control URL has to answer a healing action.
    pub control_timeout_ms: u64,
    /// Judge each agent's calls and tokens per bucket against its daily shape.
    pub rhythm: bool,
    /// Length of a rhythm bucket, in seconds.
    pub rhythm_bucket_secs: u64,
    /// Buckets a rhythm learns before it judges (two days of the default buckets).
    pub rhythm_learn_buckets: u64,
}

impl Default for RawImmune {
    fn default() -> Self {
        RawImmune {
            enabled: true,
            half_life_calls: 50,
            warmup_calls: 20,
            threshold: 4.0,
            approval_min_severity: 3,
            probation_calls: 10,
            drain_grace_ms: 2_000,
            fleet_share: 0.5,
            correlation_window_secs: 60,
            throttle_calls_per_minute: 6,
            restriction_secs: 3_600,
            quarantine_cooldown_ms: 60_000,
            snapshot_every_secs: 60,
            control_timeout_ms: 10_000,
            rhythm: true,
            rhythm_bucket_secs: 300,
            rhythm_learn_buckets: 576,
        }
    }
}

/// Validated `[immune]`.
#[derive(Clone, Debug, Serialize)]
pub struct ImmuneConfig {
    pub enabled: bool,
    pub half_life_calls: u64,
    pub warmup_calls: u64,
    pub threshold: f64,
    pub approval_min_severity: u8,
    pub probation_calls: u32,
    pub drain_grace: Duration,
    pub fleet_share: f64,
    pub correlation_window: Duration,
    pub throttle_calls_per_minute: NonZeroU32,
    pub restriction: Duration,
    pub quarantine_cooldown: Duration,
    pub snapshot_every: Duration,
    pub control_timeout: Duration,
    pub rhythm: bool,
    pub rhythm_bucket: Duration,
    pub rhythm_learn_buckets: usize,
}

impl RawImmune {
    pub(super) fn validate(self, check: &mut Check<'_>) -> ImmuneConfig {
        check.range("immune.half_life_calls", self.half_life_calls, 1..=1_000_000);
        check.range("immune.warmup_calls", self.warmup_calls, 1..=1_000_000);
        check.range("immune.approval_min_severity", self.approval_min_severity, 1..=5);
        check.range("immune.probation_calls", self.probation_calls, 1..=100_000);
        check.range("immune.drain_grace_ms", self.drain_grace_ms, 0..=3_600_000);
        check.range("immune.correlation_window_secs", self.correlation_window_secs, 1..=86_400);
        check.range("immune.throttle_calls_per_minute", self.throttle_calls_per_minute, 1..=1_000_000);
        check.range("immune.restriction_secs", self.restriction_secs, 1..=30 * 86_400);
        check.range("immune.quarantine_cooldown_ms", self.quarantine_cooldown_ms, 0..=86_400_000);
        check.range("immune.snapshot_every_secs", self.snapshot_every_secs, 1..=86_400);
        check.range("immune.control_timeout_ms", self.control_timeout_ms, 100..=600_000);
        check.range("immune.rhythm_bucket_secs", self.rhythm_bucket_secs, 1..=86_400);
        check.range("immune.rhythm_learn_buckets", self.rhythm_learn_buckets, 100..=100_000);
        if !(self.threshold.is_finite() && (1.0..=100.0).contains(&self.threshold)) {
            check.problem("immune.threshold", format!("must be between 1 and 100, got {}", self.threshold));
        }
        if !(self.fleet_share.is_finite() && self.fleet_share > 0.0 && self.fleet_share <= 1.0) {
            check.problem("immune.fleet_share", format!("must be above 0 and at most 1, got {}", self.fleet_share));
        }
        ImmuneConfig {
            enabled: self.enabled,
            half_life_calls: self.half_life_calls,
            warmup_calls: self.warmup_calls,
            threshold: self.threshold,
            approval_min_severity: u8::try_from(self.approval_min_severity).unwrap_or(5),
            probation_calls: u32::try_from(self.probation_calls).unwrap_or(u32::MAX),
            drain_grace: Duration::from_millis(self.drain_grace_ms),
            fleet_share: self.fleet_share,
            correlation_window: Duration::from_secs(self.correlation_window_secs),
            throttle_calls_per_minute: NonZeroU32::new(
                u32::try_from(self.throttle_calls_per_minute).unwrap_or(u32::MAX),
            )
            .unwrap_or(NonZeroU32::MIN),
            restriction: Duration::from_secs(self.restriction_secs),
            quarantine_cooldown: Duration::from_millis(self.quarantine_cooldown_ms),
            snapshot_every: Duration::from_secs(self.snapshot_every_secs),
            control_timeout: Duration::from_millis(self.control_timeout_ms),
            rhythm: self.rhythm,
            rhythm_bucket: Duration::from_secs(self.rhythm_bucket_secs),
            rhythm_learn_buckets: usize::try_from(self.rhythm_learn_buckets).unwrap_or(usize::MAX),
        }
    }
}
