//! Budgets that hold: the admission primitive every metered model call goes through.
//!
//! Before a call is sent, [`Meter::admit`] reserves an upper bound of its cost (the gateway
//! computes it from the price table, the request's size and its output cap) on every budget
//! of the policy in force that the call falls under, atomically, through the [`Budgets`]
//! port; a hard budget without room refuses the call, naming the budget, its subject and
//! the policy version. The [`Hold`] it returns is settled once with the call's actual cost
//! however the call ends: explicitly, or, when it is dropped unsettled (the client went
//! away mid-call), with the input cost. Settlements go through one queue to a worker that
//! writes them in batches and retries until the store takes them, and drains the queue at
//! shutdown; a sweeper expires reservations whose lease ran out (their process died).
//!
//! Hard budgets fail closed: when their state cannot be read the call is refused (503
//! `budget_unavailable`); soft budgets only count, so a failure there lets the call through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use serde_json::json;
use tokio::sync::mpsc;
use vigil_core::id::{ReservationId, TenantId};
use vigil_core::policy::{CallFacts, Refusal, RefusalKind};
use vigil_core::time::Timestamp;
use vigil_governance::Subject;
use vigil_governance::budget::{Applicable, any_applies, applicable, usd_to_nanos, window};
use vigil_governance::document::{Mode, Per, Period};
use vigil_store::ports::Budgets;
use vigil_store::{Admission, BudgetRefusal, BudgetScope, NewReservation, Settlement, StoreError};

use crate::governance::PolicyGuard;
use crate::tasks::Tasks;

/// Settlements written per transaction, at most.
const SETTLE_BATCH_MAX: usize = 256;
/// The longest wait between attempts to write settlements the store refused.
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(5);

/// What admission needs to know of a call's cost, in nano-dollars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostBound {
    /// The most the call can cost; `None` when its model has no price.
    pub upper_nanos: Option<i64>,
    /// What it costs even if no answer comes: its input.
    pub input_nanos: i64,
    /// Why `upper_nanos` is `None`, in words that finish "it cannot be bounded because ...".
    pub unbounded: Option<&'static str>,
}

/// The most one call may reserve or be charged: $1,000,000. A cost computed past it (a
/// runaway usage report) is held there, so no counter can overflow.
pub const CALL_NANOS_MAX: i64 = 1_000_000_000_000_000;

/// Admits metered calls against the budgets of the policy in force.
#[derive(Debug)]
pub struct Meter {
    policy: Arc<PolicyGuard>,
    port: Arc<dyn Budgets>,
    lease: Duration,
    timings: MeterTimings,
    settlements: mpsc::UnboundedSender<Settlement>,
    queue: Mutex<Option<mpsc::UnboundedReceiver<Settlement>>>,
}

/// Where the meter reports how long it takes: admitting a call, writing a batch of
/// settlements.
#[derive(Clone, Debug)]
pub struct MeterTimings {
    pub admission: Histogram,
    pub settlement: Histogram,
}

impl Default for MeterTimings {
    /// Histograms registered nowhere (for tests and tools).
    fn default() -> Self {
        let buckets = || prometheus_client::metrics::histogram::exponential_buckets(0.000_01, 2.0, 16);
        MeterTimings { admission: Histogram::new(buckets()), settlement: Histogram::new(buckets()) }
    }
}

/// A reservation admitted for one call. Settle it with [`Hold::settle`]; dropped unsettled,
/// it settles itself with the call's input cost.
#[derive(Debug)]
pub struct Hold {
    id: ReservationId,
    port: Arc<dyn Budgets>,
    settlements: mpsc::UnboundedSender<Settlement>,
    took: Histogram,
    settled: bool,
}

impl Hold {
    pub fn id(&self) -> &ReservationId {
        &self.id
    }

    /// Settles with the call's actual cost (`None`: not known, so its input cost), noting
    /// how the call ended.
    pub fn settle(mut self, actual_nanos: Option<i64>, note: &str) {
        self.settled = true;
        self.send(actual_nanos, note);
    }

    fn send(&self, actual_nanos: Option<i64>, note: &str) {
        let actual_nanos = actual_nanos.map(|n| n.clamp(0, CALL_NANOS_MAX));
        let settlement = Settlement { id: self.id.clone(), at: Timestamp::now(), actual_nanos, note: note.to_owned() };
        // A backend deciding in memory settles here; the queue's worker is for the others,
        // and for a settlement that failed here.
        let started = std::time::Instant::now();
        match self.port.settle_now(&settlement) {
            Some(Ok(_)) => {
                self.took.observe(started.elapsed().as_secs_f64());
                return;
            }
            Some(Err(e)) => tracing::warn!(reservation = %self.id, error = %e, "settling failed; queued to retry"),
            None => {}
        }
        // The worker ends only after every sender is gone; if it is gone anyway (the
        // runtime is ending), the lease expires and the sweeper charges the input cost.
        if self.settlements.send(settlement).is_err() {
            tracing::warn!(reservation = %self.id, "the settlement worker is gone; the sweeper will expire this reservation");
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.settled {
            self.send(None, "abandoned");
        }
    }
}

impl Meter {
    /// A meter over the `policy` in force and the `port`; `lease` is how long a reservation
    /// may stay unsettled before the sweeper expires it (longer than any call may last).
    pub fn new(policy: Arc<PolicyGuard>, port: Arc<dyn Budgets>, lease: Duration, timings: MeterTimings) -> Meter {
        let (settlements, queue) = mpsc::unbounded_channel();
        Meter { policy, port, lease, timings, settlements, queue: Mutex::new(Some(queue)) }
    }

    /// Starts the settlement worker and the sweeper. Once only; later calls do nothing.
    pub fn start(&self, tasks: &Tasks) {
        let Some(queue) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let took = self.timings.settlement.clone();
        tasks.spawn("budget-settlements", settle_all(Arc::clone(&self.port), queue, tasks.stopping(), took));
        let port = Arc::clone(&self.port);
        let every = (self.lease / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
        tasks.spawn_until_shutdown("budget-sweeper", async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match port.sweep_reservations(Timestamp::now()).await {
                    Ok(swept) if swept.expired > 0 => tracing::warn!(
                        expired = swept.expired,
                        charged_nanos = swept.charged_nanos,
                        "reservations expired unsettled and were charged their input cost"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "sweeping budget reservations failed"),
                }
            }
        });
    }

    /// Whether any budget applies to the call: when none does, it needs no admission (and
    /// the gateway need not bound its cost).
    pub fn applies(&self, call: &CallFacts<'_>) -> bool {
        self.policy.current().is_some_and(|policy| any_applies(&policy.document, &subject_of(call)))
    }

    /// Reserves the call's cost bound on every budget that applies, or refuses it. `None`
    /// when no budget applies.
    pub async fn admit(
        &self,
        call: &CallFacts<'_>,
        cost: CostBound,
        request_id: Option<&str>,
    ) -> Result<Option<Hold>, Refusal> {
        let Some(policy) = self.policy.current() else { return Ok(None) };
        let now = Timestamp::now();
        let found = applicable(&policy.document, &subject_of(call), now);
        if found.is_empty() {
            return Ok(None);
        }
        let hard = found.iter().find(|a| a.hard());
        let amount = match (cost.upper_nanos, hard) {
            (Some(amount), _) => amount.clamp(0, CALL_NANOS_MAX),
            (None, Some(hard)) => {
                let why = cost.unbounded.unwrap_or("its model has no price");
                let (code, advice) = if cost.unbounded.is_none_or(|w| w.contains("no price")) {
                    ("budget_unpriced", "; add a [[gateway.prices]] entry for it")
                } else {
                    ("budget_unbounded", "")
                };
                return Err(Refusal {
                    kind: RefusalKind::Denied,
                    code,
                    reason: format!(
                        "hard budget {:?} of policy version {} cannot bound what this call to {:?} costs: {why}{advice}",
                        hard.budget.id, policy.version, call.model
                    ),
                    retry_after_secs: None,
                });
            }
            // Soft budgets only count: an unpriced call counts what is known of it.
            (None, None) => cost.input_nanos,
        };
        let lease = i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX);
        let new = NewReservation {
            id: ReservationId::mint(),
            tenant_id: TenantId::default_tenant(),
            at: now,
            lease_until: now.plus_micros(lease),
            amount_nanos: amount,
            input_nanos: cost.input_nanos.clamp(0, amount),
            scopes: found.iter().map(scope_of).collect(),
            summary: json!({
                "agent_id": call.agent_id,
                "model": call.model,
                "endpoint": call.endpoint,
                "key_id": call.key_id,
                "feature": call.feature,
                "user": call.user,
                "request_id": request_id,
                "policy_version": policy.version,
            }),
        };
        let id = new.id.clone();
        let started = std::time::Instant::now();
        let admitted = self.port.admit(new).await;
        self.timings.admission.observe(started.elapsed().as_secs_f64());
        match admitted {
            Ok(Admission::Admitted) => Ok(Some(Hold {
                id,
                port: Arc::clone(&self.port),
                settlements: self.settlements.clone(),
                took: self.timings.settlement.clone(),
                settled: false,
            })),
            Ok(Admission::Refused(refused)) => {
                let budget = found.iter().find(|a| a.budget.id == refused.budget && a.subject == refused.subject);
                Err(exceeded(&refused, budget, policy.version, now))
            }
            Err(e) => match hard {
                Some(hard) => Err(Refusal {
                    kind: RefusalKind::Unavailable,
                    code: "budget_unavailable",
                    reason: format!(
                        "the state of hard budget {:?} of policy version {} cannot be read ({e}), so the call is refused rather than let past it",
                        hard.budget.id, policy.version
                    ),
                    retry_after_secs: Some(5),
                }),
                None => {
                    tracing::warn!(error = %e, "soft budgets could not count a call");
                    Ok(None)
                }
            },
        }
    }
}

/// Where one budget of the policy in force stands, counter by counter.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct BudgetStatus {
    pub id: String,
    pub per: Per,
    pub period: Period,
    pub mode: Mode,
    pub limit_usd: f64,
    pub limit_nanos: i64,
    /// The window's start, and its end for a calendar period.
    pub since: Timestamp,
    pub until: Option<Timestamp>,
    /// Alert thresholds, percent of the limit.
    pub alerts: Vec<u8>,
    pub policy_version: u32,
    /// One per subject counted in the window (for `per: tenant`, the one subject `*`), at
    /// most 1,000.
    pub counters: Vec<BudgetCounter>,
}

/// One subject's counter of a budget.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct BudgetCounter {
    pub subject: String,
    /// Settled spend in the window.
    pub spent_nanos: i64,
    /// Held by calls in flight.
    pub held_nanos: i64,
    pub spent_usd: f64,
    /// Spent as a percentage of the limit (above 100 when a call overran its reservation).
    pub used_percent: f64,
}

/// Every budget of the policy in force with its counters; empty without a policy.
pub async fn statuses(
    policy: &PolicyGuard,
    port: &dyn Budgets,
    now: Timestamp,
) -> Result<Vec<BudgetStatus>, StoreError> {
    let Some(in_force) = policy.current() else { return Ok(Vec::new()) };
    let tenant = TenantId::default_tenant();
    let mut out = Vec::new();
    for budget in &in_force.document.budgets {
        let (since, until) = window(budget.period, now);
        let subjects = match budget.per {
            Per::Tenant => vec![vigil_governance::budget::TENANT.to_owned()],
            _ => port.budget_subjects(tenant.clone(), budget.id.clone(), since).await?,
        };
        let limit_nanos = usd_to_nanos(budget.limit_usd);
        let scopes: Vec<BudgetScope> = subjects
            .into_iter()
            .map(|subject| BudgetScope {
                budget: budget.id.clone(),
                subject,
                since,
                limit_nanos,
                hard: budget.mode == Mode::Hard,
            })
            .collect();
        let states = port.budget_states(tenant.clone(), scopes).await?;
        let counters = states
            .into_iter()
            .map(|s| BudgetCounter {
                used_percent: if limit_nanos > 0 { s.spent_nanos as f64 * 100.0 / limit_nanos as f64 } else { 0.0 },
                spent_usd: s.spent_nanos as f64 / 1e9,
                subject: s.subject,
                spent_nanos: s.spent_nanos,
                held_nanos: s.held_nanos,
            })
            .collect();
        out.push(BudgetStatus {
            id: budget.id.clone(),
            per: budget.per,
            period: budget.period,
            mode: budget.mode,
            limit_usd: budget.limit_usd,
            limit_nanos,
            since,
            until,
            alerts: budget.alerts.clone(),
            policy_version: in_force.version,
            counters,
        });
    }
    Ok(out)
}

fn subject_of<'a>(call: &CallFacts<'a>) -> Subject<'a> {
    Subject {
        model: Some(call.model),
        agent: Some(call.agent_id),
        key: call.key_id,
        feature: call.feature,
        user: call.user,
        endpoint: Some(call.endpoint),
    }
}

fn scope_of(found: &Applicable<'_>) -> BudgetScope {
    BudgetScope {
        budget: found.budget.id.clone(),
        subject: found.subject.clone(),
        since: found.since,
        limit_nanos: found.limit_nanos(),
        hard: found.hard(),
    }
}

/// Nano-dollars as dollars for a message: `$0.001234`.
fn dollars(nanos: i64) -> String {
    format!("${:.6}", nanos as f64 / 1e9)
}

/// The refusal of a call a hard budget has no room for.
fn exceeded(refused: &BudgetRefusal, budget: Option<&Applicable<'_>>, version: u32, now: Timestamp) -> Refusal {
    let window = match budget.map(|b| b.budget.period) {
        Some(Period::Day) => "today (UTC)".to_owned(),
        Some(Period::Week) => "this week (UTC)".to_owned(),
        Some(Period::Month) => "this month (UTC)".to_owned(),
        Some(Period::RollingHours(h)) => format!("in the last {h} hours"),
        None => "in its window".to_owned(),
    };
    let subject = if refused.subject == vigil_governance::budget::TENANT {
        String::new()
    } else {
        format!(" for {:?}", refused.subject)
    };
    let retry_after_secs = budget
        .and_then(|b| b.until)
        .map(|until| u64::try_from((until.as_unix_micros() - now.as_unix_micros()) / 1_000_000).unwrap_or(0).max(1));
    Refusal {
        kind: RefusalKind::RateLimited,
        code: "budget_exceeded",
        reason: format!(
            "budget {:?}{subject} of policy version {version} is spent: {} spent and {} held by calls in flight of {} {window}; this call may cost up to {}",
            refused.budget,
            dollars(refused.spent_nanos),
            dollars(refused.held_nanos),
            dollars(refused.limit_nanos),
            dollars(refused.asked_nanos),
        ),
        retry_after_secs,
    }
}

/// The settlement worker: writes what the queue holds in batches, retrying until the store
/// takes each batch; at shutdown it writes what is queued and ends.
async fn settle_all(
    port: Arc<dyn Budgets>,
    mut queue: mpsc::UnboundedReceiver<Settlement>,
    stopping: impl Future<Output = ()> + Send,
    took: Histogram,
) {
    tokio::pin!(stopping);
    let mut stopped = false;
    loop {
        let first = if stopped {
            match queue.try_recv() {
                Ok(settlement) => settlement,
                Err(_) => {
                    // Everything settled is made durable before the process ends.
                    if let Err(e) = port.flush().await {
                        tracing::error!(error = %e, "budget decisions not written at shutdown");
                    }
                    return;
                }
            }
        } else {
            tokio::select! {
                next = queue.recv() => match next {
                    Some(settlement) => settlement,
                    None => return,
                },
                () = &mut stopping => {
                    stopped = true;
                    continue;
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH_MAX {
            match queue.try_recv() {
                Ok(settlement) => batch.push(settlement),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(50);
        loop {
            let started = std::time::Instant::now();
            let written = port.settle(batch.clone()).await;
            took.observe(started.elapsed().as_secs_f64());
            match written {
                Ok(results) => {
                    let overran = results
                        .iter()
                        .filter(|r| matches!(r, vigil_store::Settled::Charged { overran: true, .. }))
                        .count();
                    if overran > 0 {
                        tracing::warn!(overran, "calls cost more than their reservation (the ledger flags each)");
                    }
                    break;
                }
                Err(e) if stopped && wait >= SETTLE_RETRY_MAX => {
                    tracing::error!(error = %e, settlements = batch.len(), "settlements not written at shutdown; their leases will expire");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, settlements = batch.len(), "writing settlements failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(SETTLE_RETRY_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_store::ports::{Page, StoreFuture};
    use vigil_store::{BudgetState, LedgerEntry, LedgerVerification, Settled, Swept};

    fn guard_with(document: serde_json::Value) -> Arc<PolicyGuard> {
        let guard = Arc::new(PolicyGuard::default());
        guard.set(1, vigil_governance::parse(&document).expect("valid"));
        guard
    }

    fn call<'a>(agent: &'a str, model: &'a str) -> CallFacts<'a> {
        CallFacts {
            agent_id: agent,
            model,
            endpoint: "chat.completions",
            offers_tools: false,
            key_id: None,
            feature: None,
            user: None,
        }
    }

    /// A backend whose state cannot be read.
    #[derive(Debug)]
    struct Unreadable;

    impl Budgets for Unreadable {
        fn admit(&self, _: NewReservation) -> StoreFuture<'_, Admission> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn settle(&self, _: Vec<Settlement>) -> StoreFuture<'_, Vec<Settled>> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn sweep_reservations(&self, _: Timestamp) -> StoreFuture<'_, Swept> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn held_reservations(&self) -> StoreFuture<'_, u64> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn budget_states(&self, _: TenantId, _: Vec<BudgetScope>) -> StoreFuture<'_, Vec<BudgetState>> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn budget_subjects(&self, _: TenantId, _: String, _: Timestamp) -> StoreFuture<'_, Vec<String>> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn ledger(&self, _: TenantId, _: vigil_core::page::PageRequest) -> StoreFuture<'_, Page<LedgerEntry>> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn verify_ledger(&self) -> StoreFuture<'_, LedgerVerification> {
            Box::pin(async { Err(StoreError::Busy) })
        }
        fn flush(&self) -> StoreFuture<'_, ()> {
            Box::pin(async { Err(StoreError::Busy) })
        }
    }

    const BOUND: CostBound = CostBound { upper_nanos: Some(1_000), input_nanos: 100, unbounded: None };

    #[tokio::test]
    async fn a_hard_budget_whose_state_cannot_be_read_refuses_and_a_soft_one_lets_through() {
        let hard = guard_with(json!({ "budgets": [{ "id": "org", "period": "day", "limit_usd": 10 }] }));
        let meter = Meter::new(hard, Arc::new(Unreadable), Duration::from_secs(60), MeterTimings::default());
        let refused = meter.admit(&call("a", "gpt-4o"), BOUND, None).await.expect_err("fails closed");
        assert_eq!((refused.kind, refused.code), (RefusalKind::Unavailable, "budget_unavailable"));
        assert!(refused.reason.contains("\"org\"") && refused.reason.contains("version 1"), "{}", refused.reason);

        let soft =
            guard_with(json!({ "budgets": [{ "id": "org", "period": "day", "limit_usd": 10, "mode": "soft" }] }));
        let meter = Meter::new(soft, Arc::new(Unreadable), Duration::from_secs(60), MeterTimings::default());
        assert!(meter.admit(&call("a", "gpt-4o"), BOUND, None).await.expect("soft lets through").is_none());
    }

    #[tokio::test]
    async fn an_unpriced_call_under_a_hard_budget_is_refused_and_unmatched_calls_need_no_admission() {
        let guard = guard_with(
            json!({ "budgets": [{ "id": "o1", "match": { "models": ["o1*"] }, "period": "day", "limit_usd": 10 }] }),
        );
        let meter = Meter::new(guard, Arc::new(Unreadable), Duration::from_secs(60), MeterTimings::default());
        let unpriced = CostBound { upper_nanos: None, input_nanos: 0, unbounded: None };
        let refused = meter.admit(&call("a", "o1-preview"), unpriced, None).await.expect_err("cannot bound");
        assert_eq!(refused.code, "budget_unpriced");
        assert!(!meter.applies(&call("a", "gpt-4o")));
        assert!(meter.admit(&call("a", "gpt-4o"), unpriced, None).await.expect("no budget").is_none());
    }

    #[test]
    fn a_refusal_names_the_budget_its_subject_the_version_and_when_to_come_back() {
        let doc = vigil_governance::parse(
            &json!({ "budgets": [{ "id": "per-agent", "per": "agent", "period": "day", "limit_usd": 1 }] }),
        )
        .expect("valid");
        let now = Timestamp::parse_rfc3339("2026-12-08T23:00:00Z").expect("time");
        let subject = Subject { agent: Some("bot"), ..Subject::default() };
        let found = applicable(&doc, &subject, now);
        let refused = BudgetRefusal {
            budget: "per-agent".into(),
            subject: "bot".into(),
            limit_nanos: 1_000_000_000,
            spent_nanos: 900_000_000,
            held_nanos: 50_000_000,
            asked_nanos: 80_000_000,
        };
        let refusal = exceeded(&refused, found.first(), 4, now);
        assert_eq!(
            (refusal.kind, refusal.code, refusal.retry_after_secs),
            (RefusalKind::RateLimited, "budget_exceeded", Some(3600))
        );
        assert_eq!(
            refusal.reason,
            "budget \"per-agent\" for \"bot\" of policy version 4 is spent: $0.900000 spent and $0.050000 held by calls in flight of $1.000000 today (UTC); this call may cost up to $0.080000"
        );
    }
}
