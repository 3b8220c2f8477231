//! The budgets port for a SQLite store, decided in memory and written behind.
//!
//! One process owns a SQLite database, so it can hold the budgets' state itself: what each
//! budget spent per hour and holds, and every reservation in flight. Admission and
//! settlement then decide under a lock in microseconds, without waiting for the disk, and
//! append an event; a writer thread (`vigil-budgets`) commits the events every
//! [`FLUSH_EVERY`] (or sooner when [`FLUSH_EVENTS`] are waiting) in one transaction, with
//! the same rows and ledger entries the store's own `admit`/`settle` write, so reads,
//! `verify_ledger` and a restart see one truth. A reservation admitted and settled before
//! the next flush writes only its two ledger entries and its spend.
//!
//! What is decided here is durable once flushed: a process killed between a decision and
//! the next flush loses at most that interval's admissions and settlements, together with
//! their ledger entries, so the counters still equal the ledger; the calls of those
//! admissions were not charged. Reservations the last process left held are read at start
//! and expire when their lease ends. State is loaded per counter on first use (its spend
//! buckets of the longest window a budget can have).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde_json::json;
use vigil_core::id::{ReservationId, TenantId};
use vigil_core::time::Timestamp;

use crate::budgets::{
    Admission, BudgetScope, BudgetState, Charge, NewReservation, SETTLED_RESERVATION_RETENTION_MICROS, Settled,
    Settlement, Swept, add_spend, hour_of, record_charge, record_reserved, reserved_body, scope_keys,
};
use crate::{Result, Store, StoreError};

/// How often decided events are committed, at most.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Events that trigger a commit before [`FLUSH_EVERY`].
pub const FLUSH_EVENTS: usize = 1_024;
/// Settled reservation ids remembered for idempotency before the database is asked.
const SETTLED_REMEMBERED: usize = 100_000;
/// Hours of spend kept per counter: the longest rolling window a budget can have.
const HOURS_KEPT: i64 = 8_784;

type Key = (String, String, String);

#[derive(Default)]
struct Counter {
    /// Hour → spent.
    spent: BTreeMap<i64, i64>,
    held: i64,
}

impl Counter {
    fn spent_since(&self, since: Timestamp) -> i64 {
        self.spent.range(hour_of(since)..).map(|(_, v)| *v).fold(0, i64::saturating_add)
    }
}

struct Held {
    tenant: String,
    keys: Vec<(String, String)>,
    amount: i64,
    input: i64,
    lease_until: Timestamp,
}

enum Event {
    Reserved { new: NewReservation, scopes: String },
    Charged { charge: OwnedCharge },
    Purge { before: Timestamp },
}

struct OwnedCharge {
    id: String,
    tenant: String,
    keys: Vec<(String, String)>,
    at: Timestamp,
    charged: i64,
    kind: &'static str,
    row_nanos: i64,
    body: serde_json::Value,
}

/// A reservation settled or expired: an expired one may still learn its actual cost, so it
/// keeps what charging the rest needs.
struct Done {
    expired: Option<Box<Expired>>,
}

struct Expired {
    charged: i64,
    tenant: String,
    keys: Vec<(String, String)>,
    amount: i64,
}

#[derive(Default)]
struct State {
    counters: HashMap<Key, Counter>,
    held: HashMap<String, Held>,
    /// Reservations settled or expired lately, by id.
    settled: HashMap<String, Done>,
    settled_order: VecDeque<String>,
    pending: Vec<Event>,
    closing: bool,
}

struct Inner {
    store: Store,
    state: Mutex<State>,
    wake: Condvar,
    /// Set by the writer after each commit, for [`MemoryBudgets::flush`].
    flushed: Condvar,
    flushes: Mutex<u64>,
}

/// The budgets of one SQLite store, decided in memory and written behind. Cheap to clone.
#[derive(Clone)]
pub struct MemoryBudgets {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBudgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudgets").finish_non_exhaustive()
    }
}

impl MemoryBudgets {
    /// Reads the reservations the last process left held and starts the writer thread.
    pub fn start(store: Store) -> Result<MemoryBudgets> {
        let inner = Arc::new(Inner {
            store,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            flushed: Condvar::new(),
            flushes: Mutex::new(0),
        });
        let budgets = MemoryBudgets { inner: inner.clone() };
        budgets.recover()?;
        std::thread::Builder::new()
            .name("vigil-budgets".to_owned())
            .spawn(move || write_behind(&inner))
            .map_err(|source| StoreError::Io { context: "starting the budget writer".to_owned(), source })?;
        Ok(budgets)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recover(&self) -> Result<()> {
        let rows: Vec<(String, String, i64, i64, i64, i64, String)> = self.inner.store.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, tenant_id, created_at, lease_until, amount_nanos, input_nanos, scopes
                 FROM reservations WHERE state = 'held'",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        let mut state = self.lock();
        for (id, tenant, _created, lease_until, amount, input, scopes) in rows {
            let keys = scope_keys(&scopes)?;
            for (budget, subject) in &keys {
                let key = (tenant.clone(), budget.clone(), subject.clone());
                let counter = self.counter(&mut state, &key)?;
                counter.held = counter.held.saturating_add(amount);
            }
            let lease_until = Timestamp::from_unix_micros(lease_until);
            state.held.insert(id, Held { tenant, keys, amount, input, lease_until });
        }
        Ok(())
    }

    /// The counter of `key`, loaded from the database on first use.
    fn counter<'s>(&self, state: &'s mut State, key: &Key) -> Result<&'s mut Counter> {
        if !state.counters.contains_key(key) {
            let (tenant, budget, subject) = key;
            let from = hour_of(Timestamp::now()) - HOURS_KEPT;
            let spent: BTreeMap<i64, i64> = self.inner.store.read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT hour, spent_nanos FROM budget_spend WHERE tenant_id = ?1 AND budget = ?2 AND subject = ?3 AND hour >= ?4",
                )?;
                let rows = stmt.query_map(params![tenant, budget, subject, from], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })?;
            state.counters.insert(key.clone(), Counter { spent, held: 0 });
        }
        state.counters.get_mut(key).ok_or_else(|| StoreError::Invalid("a budget counter vanished".to_owned()))
    }

    fn push(&self, state: &mut State, event: Event) {
        state.pending.push(event);
        if state.pending.len() >= FLUSH_EVENTS {
            self.inner.wake.notify_one();
        }
    }

    pub(crate) fn admit(&self, new: NewReservation) -> Result<Admission> {
        if new.amount_nanos < 0 || new.input_nanos < 0 {
            return Err(StoreError::Invalid("a reservation's amounts cannot be negative".to_owned()));
        }
        let scopes = serde_json::to_string(&new.scopes)
            .map_err(|e| StoreError::Invalid(format!("a reservation's scopes cannot be written: {e}")))?;
        let tenant = new.tenant_id.to_string();
        let mut state = self.lock();
        // Ids are minted fresh (UUIDv7): only one seen here lately can come twice.
        if state.held.contains_key(new.id.as_str()) || state.settled.contains_key(new.id.as_str()) {
            return Err(StoreError::Conflict(format!("reservation {} was already admitted", new.id)));
        }
        // Every counter is loaded before any changes, so a failed load changes nothing.
        for scope in &new.scopes {
            self.counter(&mut state, &(tenant.clone(), scope.budget.clone(), scope.subject.clone()))?;
        }
        for scope in new.scopes.iter().filter(|s| s.hard) {
            let key = (tenant.clone(), scope.budget.clone(), scope.subject.clone());
            let counter = self.counter(&mut state, &key)?;
            if let Some(refused) = scope.refusal(counter.spent_since(scope.since), counter.held, new.amount_nanos) {
                return Ok(Admission::Refused(refused));
            }
        }
        let mut keys: Vec<(String, String)> = Vec::with_capacity(new.scopes.len());
        for scope in &new.scopes {
            if keys.iter().any(|(b, s)| b == &scope.budget && s == &scope.subject) {
                continue;
            }
            let key = (tenant.clone(), scope.budget.clone(), scope.subject.clone());
            let counter = self.counter(&mut state, &key)?;
            counter.held = counter.held.saturating_add(new.amount_nanos);
            keys.push((scope.budget.clone(), scope.subject.clone()));
        }
        let held =
            Held { tenant, keys, amount: new.amount_nanos, input: new.input_nanos, lease_until: new.lease_until };
        state.held.insert(new.id.to_string(), held);
        self.push(&mut state, Event::Reserved { new, scopes });
        Ok(Admission::Admitted)
    }

    /// Whether the database's ledger names this reservation (it was admitted by an
    /// earlier process, or its memory here was let go).
    fn in_ledger(&self, id: &ReservationId) -> Result<bool> {
        self.inner.store.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM ledger WHERE reservation = ?1 LIMIT 1")?
                .query_row(params![id.as_str()], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    pub(crate) fn settle(&self, settlements: Vec<Settlement>) -> Result<Vec<Settled>> {
        let mut state = self.lock();
        settlements.into_iter().map(|s| self.settle_one(&mut state, s)).collect()
    }

    fn settle_one(&self, state: &mut State, s: Settlement) -> Result<Settled> {
        let id = s.id.to_string();
        if let Some(held) = state.held.remove(&id) {
            let actual = s.actual_nanos.unwrap_or(held.input).max(0);
            let overran = actual > held.amount;
            let body = json!({
                "actual_nanos": s.actual_nanos,
                "reserved_nanos": held.amount,
                "overran": overran,
                "after_expiry": false,
                "note": s.note,
            });
            self.charge(state, &id, held, s.at, actual, "settled", actual, body)?;
            return Ok(Settled::Charged { charged_nanos: actual, overran });
        }
        // Not held: settled before, or expired (charged its input) and now learning its
        // actual cost, whose rest is charged now.
        let expired = match state.settled.get(&id) {
            Some(done) => done.expired.as_deref().map(|e| (e.charged, e.tenant.clone(), e.keys.clone(), e.amount)),
            // Not remembered: flushed long ago, or by an earlier process.
            None => match self.done_in_store(&id)? {
                Some(done) => done.expired.map(|e| (e.charged, e.tenant, e.keys, e.amount)),
                None if self.in_ledger(&s.id)? => None,
                None => return Ok(Settled::Unknown),
            },
        };
        let (Some((already, tenant, keys, amount)), Some(actual)) = (expired, s.actual_nanos) else {
            return Ok(Settled::AlreadySettled);
        };
        let actual = actual.max(0);
        let charged = actual - already;
        let body = json!({
            "actual_nanos": s.actual_nanos,
            "reserved_nanos": amount,
            "overran": actual > amount,
            "after_expiry": true,
            "note": s.note,
        });
        let held = Held { tenant, keys, amount: 0, input: 0, lease_until: s.at };
        self.charge(state, &id, held, s.at, charged, "settled", actual, body)?;
        Ok(Settled::Charged { charged_nanos: charged, overran: actual > amount })
    }

    /// The store's row of a settled or expired reservation, if it keeps one.
    fn done_in_store(&self, id: &str) -> Result<Option<Done>> {
        let row: Option<(String, Option<i64>, String, String, i64)> = self.inner.store.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT state, settled_nanos, tenant_id, scopes, amount_nanos FROM reservations WHERE id = ?1 AND state <> 'held'",
                )?
                .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()?)
        })?;
        let Some((state, charged, tenant, scopes, amount)) = row else { return Ok(None) };
        if state != "expired" {
            return Ok(Some(Done { expired: None }));
        }
        let keys = scope_keys(&scopes)?;
        Ok(Some(Done { expired: Some(Box::new(Expired { charged: charged.unwrap_or(0), tenant, keys, amount })) }))
    }

    /// Releases `held`'s holds, adds `charged` to its budgets and queues the charge.
    #[allow(clippy::too_many_arguments, reason = "one call site per kind of charge, each naming every part")]
    fn charge(
        &self,
        state: &mut State,
        id: &str,
        held: Held,
        at: Timestamp,
        charged: i64,
        kind: &'static str,
        row_nanos: i64,
        body: serde_json::Value,
    ) -> Result<()> {
        let hour = hour_of(at);
        let amount = held.amount;
        // Every counter is loaded before any changes, so a failed load changes nothing.
        for (budget, subject) in &held.keys {
            self.counter(state, &(held.tenant.clone(), budget.clone(), subject.clone()))?;
        }
        for (budget, subject) in &held.keys {
            let key = (held.tenant.clone(), budget.clone(), subject.clone());
            let counter = self.counter(state, &key)?;
            counter.held = counter.held.saturating_sub(held.amount);
            let spent = counter.spent.entry(hour).or_default();
            *spent = spent.saturating_add(charged);
            // Hours older than any window are let go.
            while counter.spent.first_key_value().is_some_and(|(h, _)| *h < hour - HOURS_KEPT) {
                counter.spent.pop_first();
            }
        }
        let expired = (kind == "expired")
            .then(|| Box::new(Expired { charged, tenant: held.tenant.clone(), keys: held.keys.clone(), amount }));
        let done = Done { expired };
        state.settled.insert(id.to_owned(), done);
        state.settled_order.push_back(id.to_owned());
        while state.settled_order.len() > SETTLED_REMEMBERED {
            if let Some(old) = state.settled_order.pop_front() {
                state.settled.remove(&old);
            }
        }
        let charge =
            OwnedCharge { id: id.to_owned(), tenant: held.tenant, keys: held.keys, at, charged, kind, row_nanos, body };
        self.push(state, Event::Charged { charge });
        Ok(())
    }

    pub(crate) fn sweep(&self, now: Timestamp) -> Result<Swept> {
        let mut state = self.lock();
        let mut expired: Vec<String> =
            state.held.iter().filter(|(_, h)| h.lease_until < now).map(|(id, _)| id.clone()).collect();
        expired.sort();
        let mut swept = Swept::default();
        for id in expired {
            let Some(held) = state.held.remove(&id) else { continue };
            let input = held.input;
            self.charge(&mut state, &id, held, now, input, "expired", input, json!({ "note": "lease_expired" }))?;
            swept.expired += 1;
            swept.charged_nanos = swept.charged_nanos.saturating_add(input);
        }
        let before = now.plus_micros(-SETTLED_RESERVATION_RETENTION_MICROS);
        self.push(&mut state, Event::Purge { before });
        Ok(swept)
    }

    pub(crate) fn held_count(&self) -> u64 {
        self.lock().held.len() as u64
    }

    pub(crate) fn states(&self, tenant: &TenantId, scopes: Vec<BudgetScope>) -> Result<Vec<BudgetState>> {
        let mut state = self.lock();
        scopes
            .into_iter()
            .map(|s| {
                let key = (tenant.to_string(), s.budget.clone(), s.subject.clone());
                let counter = self.counter(&mut state, &key)?;
                Ok(BudgetState {
                    spent_nanos: counter.spent_since(s.since),
                    held_nanos: counter.held,
                    budget: s.budget,
                    subject: s.subject,
                    since: s.since,
                })
            })
            .collect()
    }

    /// Commits what is decided, and returns once it is.
    pub fn flush(&self) -> Result<()> {
        let target = {
            let flushes = self.inner.flushes.lock().unwrap_or_else(|e| e.into_inner());
            *flushes + 2
        };
        self.inner.wake.notify_one();
        let mut flushes = self.inner.flushes.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Two commits from now: the one that may be running holds older events only.
        while *flushes < target {
            if std::time::Instant::now() > deadline {
                return Err(StoreError::Io {
                    context: "the budget writer".to_owned(),
                    source: std::io::Error::other("decided budget events could not be committed within 10 s"),
                });
            }
            self.inner.wake.notify_one();
            let (next, _) =
                self.inner.flushed.wait_timeout(flushes, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner());
            flushes = next;
        }
        Ok(())
    }

    /// Commits what is decided and stops the writer.
    pub fn close(&self) -> Result<()> {
        self.flush()?;
        self.lock().closing = true;
        self.inner.wake.notify_one();
        Ok(())
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// The writer thread: commits pending events every [`FLUSH_EVERY`], or sooner when many
/// wait or a flush is asked for; a failed commit keeps its events for the next attempt.
fn write_behind(inner: &Inner) {
    let mut retry: Vec<Event> = Vec::new();
    loop {
        let (events, closing) = {
            let state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let (mut state, _) = inner.wake.wait_timeout(state, FLUSH_EVERY).unwrap_or_else(|e| e.into_inner());
            let mut events = std::mem::take(&mut retry);
            events.append(&mut state.pending);
            (events, state.closing)
        };
        if !events.is_empty()
            && let Err(e) = commit(&inner.store, &events)
        {
            tracing::error!(error = %e, events = events.len(), "writing budget events failed; retrying");
            retry = events;
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut flushes = inner.flushes.lock().unwrap_or_else(|e| e.into_inner());
        if retry.is_empty() {
            *flushes += 1;
        }
        inner.flushed.notify_all();
        drop(flushes);
        if closing {
            return;
        }
    }
}

/// Writes events in order in one transaction, the spend of all charges added once per
/// budget and hour at the end. A reservation admitted and settled within the same events
/// gets no row, no holds and no `reserved` entry: its `settled` entry carries what the
/// admission was (`reserved`).
fn commit(store: &Store, events: &[Event]) -> Result<()> {
    let reserved: HashMap<&str, &NewReservation> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reserved { new, .. } => Some((new.id.as_str(), new)),
            _ => None,
        })
        .collect();
    let settled_here: HashSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            // An expiry keeps its row, so a late settlement finds what it was charged.
            Event::Charged { charge } if charge.kind == "settled" && reserved.contains_key(charge.id.as_str()) => {
                Some(charge.id.as_str())
            }
            _ => None,
        })
        .collect();
    let mut spend: BTreeMap<(&str, &str, &str, i64), i64> = BTreeMap::new();
    store.write(|tx| {
        for event in events {
            match event {
                Event::Reserved { new, scopes } => {
                    if !settled_here.contains(new.id.as_str()) {
                        record_reserved(tx, new, scopes, true)?;
                    }
                }
                Event::Charged { charge } => {
                    let here = reserved.get(charge.id.as_str()).filter(|_| settled_here.contains(charge.id.as_str()));
                    let mut body = charge.body.clone();
                    if let (Some(new), Some(fields)) = (here, body.as_object_mut()) {
                        fields.insert("reserved".to_owned(), reserved_body(new));
                    }
                    let c = Charge {
                        id: &charge.id,
                        tenant: &charge.tenant,
                        keys: &charge.keys,
                        at: charge.at,
                        charged: charge.charged,
                        kind: charge.kind,
                        row_nanos: charge.row_nanos,
                        body,
                    };
                    record_charge(tx, &c, here.is_none(), false)?;
                    let hour = hour_of(charge.at);
                    for (budget, subject) in &charge.keys {
                        *spend.entry((&charge.tenant, budget, subject, hour)).or_default() += charge.charged;
                    }
                }
                Event::Purge { before } => {
                    tx.prepare_cached("DELETE FROM reservations WHERE state <> 'held' AND settled_at < ?1")?
                        .execute(params![before.as_unix_micros()])?;
                }
            }
        }
        for ((tenant, budget, subject, hour), nanos) in &spend {
            add_spend(tx, tenant, budget, subject, *hour, *nanos)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temp_store as store;

    fn reservation(lease_micros: i64) -> NewReservation {
        let now = Timestamp::now();
        NewReservation {
            id: ReservationId::mint(),
            tenant_id: TenantId::default_tenant(),
            at: now,
            lease_until: now.plus_micros(lease_micros),
            amount_nanos: 500,
            input_nanos: 40,
            scopes: vec![BudgetScope {
                budget: "org".into(),
                subject: "*".into(),
                since: now.plus_micros(-1_000_000),
                limit_nanos: 1_000,
                hard: true,
            }],
            summary: json!({}),
        }
    }

    fn settlement(id: &ReservationId, actual: Option<i64>) -> Settlement {
        Settlement { id: id.clone(), at: Timestamp::now(), actual_nanos: actual, note: "ok".into() }
    }

    /// What one process decided and wrote is what the next one starts from: its held
    /// reservations expire after their lease, a late settlement adds the rest of the actual
    /// cost, and the counters equal the ledger throughout.
    #[test]
    fn a_restart_picks_up_held_reservations_and_late_settlements_from_the_store() {
        let (_dir, store) = store();
        let first = MemoryBudgets::start(store.clone()).expect("start");
        let abandoned = reservation(1_000);
        assert_eq!(first.admit(abandoned.clone()).expect("admit"), Admission::Admitted);
        first.flush().expect("flush");
        first.close().expect("close");

        let second = MemoryBudgets::start(store.clone()).expect("restart");
        assert_eq!(second.held_count(), 1, "the dead process's reservation is held");
        let scope = abandoned.scopes[0].clone();
        let held = second.states(&TenantId::default_tenant(), vec![scope.clone()]).expect("states");
        assert_eq!((held[0].spent_nanos, held[0].held_nanos), (0, 500));
        // The hold counts: a second call of 600 does not fit beside it.
        let mut big = reservation(60_000_000);
        big.amount_nanos = 600;
        assert!(matches!(second.admit(big).expect("admit"), Admission::Refused(_)));
        let swept = second.sweep(Timestamp::now().plus_micros(2_000)).expect("sweep");
        assert_eq!((swept.expired, swept.charged_nanos), (1, 40));
        second.flush().expect("flush");
        second.close().expect("close");

        let third = MemoryBudgets::start(store.clone()).expect("restart");
        assert_eq!(third.held_count(), 0);
        let late = third.settle(vec![settlement(&abandoned.id, Some(300))]).expect("settle");
        assert_eq!(late, [Settled::Charged { charged_nanos: 260, overran: false }], "the rest of the actual cost");
        assert_eq!(
            third.settle(vec![settlement(&abandoned.id, Some(300))]).expect("settle"),
            [Settled::AlreadySettled]
        );
        let unknown = third.settle(vec![settlement(&ReservationId::mint(), Some(1))]).expect("settle");
        assert_eq!(unknown, [Settled::Unknown]);
        let spent = third.states(&TenantId::default_tenant(), vec![scope]).expect("states");
        assert_eq!((spent[0].spent_nanos, spent[0].held_nanos), (300, 0));
        third.flush().expect("flush");
        let verified = store.verify_ledger().expect("verify");
        assert!(verified.intact(), "{verified:?}");
    }
}
