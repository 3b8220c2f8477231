//! Budgets that hold: reservations admitted atomically across every budget a call falls
//! under, settled once from what the call really cost, and the hash-chained ledger that
//! records both.
//!
//! A call is *admitted* with an upper bound of its cost: in one write transaction, every
//! hard budget it falls under must have room for the whole bound beside what was spent in
//! its window and what other reservations hold; then a hold is placed on each budget, or
//! on none (never a partial admit, never a reservation shrunk to what is left). *Settling*
//! removes the holds and adds the actual cost to each budget's spend, unconditionally (it
//! may exceed the bound; the ledger flags that), and only once: settling again changes
//! nothing. A reservation whose lease ran out unsettled (its process died) is *expired* by
//! the sweeper, which charges the call's input cost: admission is the last step before the
//! call is sent, so an expired reservation was sent, and its prompt was billed.
//!
//! Spend is kept in hourly buckets per budget and subject, so a budget's window (a
//! calendar day, week or month, or the last N hours) is a sum over buckets, and editing a
//! budget's limit or period keeps what was already spent. A window starts at the hour
//! holding its start, so a rolling window counts up to an hour more than it must, never
//! less.
//!
//! Every admission, settlement and expiry appends a ledger entry in the same transaction,
//! chained like the audit log (`entry_hash = sha256(prev_hash ‖ "\n" ‖ canonical JSON)`).
//! [`Store::verify_ledger`] walks the chain and recomputes every spend bucket and every
//! live hold from it, so counters are always re-derivable from the ledger.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Value, json};
use vigil_core::digest::Sha256Digest;
use vigil_core::id::{ReservationId, TenantId};
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;

use crate::audit::ChainBreak;
use crate::{Result, Store, StoreError};

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// How long a settled or expired reservation's row is kept (its ledger entries stay
/// forever); settling it again after that is still recognised, from the ledger.
pub const SETTLED_RESERVATION_RETENTION_MICROS: i64 = 2 * 24 * MICROS_PER_HOUR;

/// Most reservations one sweep expires.
pub const SWEEP_BATCH_MAX: u32 = 1_000;

/// The hour bucket an instant falls in.
pub fn hour_of(at: Timestamp) -> i64 {
    at.as_unix_micros().div_euclid(MICROS_PER_HOUR)
}

/// One budget a reservation counts against: a budget of the tenant's policy, for one
/// subject (the agent, key, feature or user it is kept per; the tenant for one shared
/// counter), over the window that starts at `since`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BudgetScope {
    pub budget: String,
    pub subject: String,
    pub since: Timestamp,
    pub limit_nanos: i64,
    /// A hard budget refuses a call that does not fit; a soft one only counts it.
    pub hard: bool,
}

impl BudgetScope {
    /// The refusal of `asked` when this budget is hard and `spent` and `held` leave no room
    /// for all of it.
    pub(crate) fn refusal(&self, spent: i64, held: i64, asked: i64) -> Option<BudgetRefusal> {
        let over = spent.saturating_add(held).saturating_add(asked) > self.limit_nanos;
        (self.hard && over).then(|| BudgetRefusal {
            budget: self.budget.clone(),
            subject: self.subject.clone(),
            limit_nanos: self.limit_nanos,
            spent_nanos: spent,
            held_nanos: held,
            asked_nanos: asked,
        })
    }
}

/// A reservation to admit.
#[derive(Clone, Debug, PartialEq)]
pub struct NewReservation {
    pub id: ReservationId,
    pub tenant_id: TenantId,
    pub at: Timestamp,
    /// When the sweeper may expire it unsettled.
    pub lease_until: Timestamp,
    /// The upper bound of the call's cost, in nano-dollars.
    pub amount_nanos: i64,
    /// What the call costs even if its answer never comes: its input.
    pub input_nanos: i64,
    pub scopes: Vec<BudgetScope>,
    /// What the ledger says about the call (who, which model, which policy version):
    /// identifiers only, never content or secrets.
    pub summary: Value,
}

/// A budget that had no room, and by how much.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct BudgetRefusal {
    pub budget: String,
    pub subject: String,
    pub limit_nanos: i64,
    /// Spent in the window so far.
    pub spent_nanos: i64,
    /// Held by reservations not yet settled.
    pub held_nanos: i64,
    /// What this call asked for.
    pub asked_nanos: i64,
}

/// What admission decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The first hard budget without room; nothing was held.
    Refused(BudgetRefusal),
}

/// A reservation's actual cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub id: ReservationId,
    pub at: Timestamp,
    /// The call's cost; `None` when it cannot be known (no usage, no price), and then the
    /// reservation's input cost is charged.
    pub actual_nanos: Option<i64>,
    /// How the call ended, for the ledger: `ok`, `client_gone`, `upstream_error`, ...
    pub note: String,
}

/// What settling one reservation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Charged now; `overran` when the actual cost exceeded the reservation.
    Charged { charged_nanos: i64, overran: bool },
    /// It was settled before: nothing changed.
    AlreadySettled,
    /// No reservation of that id was ever admitted.
    Unknown,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Reservations whose lease ran out, each charged its input cost.
    pub expired: u32,
    pub charged_nanos: i64,
    /// Settled rows past their retention, removed (their ledger entries stay).
    pub purged: u32,
}

/// Where a budget stands for one subject.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct BudgetState {
    pub budget: String,
    pub subject: String,
    pub since: Timestamp,
    pub spent_nanos: i64,
    pub held_nanos: i64,
}

/// One ledger entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    pub id: String,
    pub at: Timestamp,
    pub tenant_id: TenantId,
    /// `reserved`, `settled`, `expired` (budgets) or `policy.saved`.
    pub kind: String,
    pub reservation: Option<ReservationId>,
    pub body: Value,
    pub prev_hash: Sha256Digest,
    pub entry_hash: Sha256Digest,
}

/// The result of [`Store::verify_ledger`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct LedgerVerification {
    pub entries: u64,
    /// The newest entry's hash: keep it elsewhere to detect truncation later.
    pub head: Option<Sha256Digest>,
    pub first_break: Option<ChainBreak>,
    /// Spend buckets and holds whose stored value differs from what the ledger says, at
    /// most [`MISMATCHES_SHOWN`] of them.
    pub mismatches: Vec<String>,
    pub mismatch_count: u64,
}

impl LedgerVerification {
    /// The chain is whole and every counter equals what the ledger derives.
    pub fn intact(&self) -> bool {
        self.first_break.is_none() && self.mismatch_count == 0
    }
}

/// Most mismatches a verification lists.
pub const MISMATCHES_SHOWN: usize = 20;

const LEDGER_COLUMNS: &str = "seq, id, at, tenant_id, kind, reservation, body, prev_hash, entry_hash";

/// What an entry's hash covers, beside the previous entry's hash.
struct Chained<'a> {
    seq: i64,
    id: &'a str,
    at: Timestamp,
    tenant: &'a str,
    kind: &'a str,
    reservation: Option<&'a str>,
    body: &'a str,
}

impl Chained<'_> {
    fn hash(&self, prev: &Sha256Digest) -> Sha256Digest {
        let fields =
            json!([self.seq, self.id, self.at.as_unix_micros(), self.tenant, self.kind, self.reservation, self.body]);
        let mut text = prev.to_hex();
        text.push('\n');
        text.push_str(&fields.to_string());
        Sha256Digest::of(text.as_bytes())
    }
}

fn digest_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Sha256Digest> {
    let text: String = row.get(column)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, format!("{e}").into())
    })
}

fn ledger_from_row(row: &Row<'_>) -> rusqlite::Result<(LedgerEntry, String)> {
    let body: String = row.get(6)?;
    let parsed = serde_json::from_str(&body)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e)))?;
    let entry = LedgerEntry {
        seq: row.get(0)?,
        id: row.get(1)?,
        at: Timestamp::from_unix_micros(row.get(2)?),
        tenant_id: TenantId::new(row.get::<_, String>(3)?),
        kind: row.get(4)?,
        reservation: row.get::<_, Option<String>>(5)?.map(ReservationId::from),
        body: parsed,
        prev_hash: digest_at(row, 7)?,
        entry_hash: digest_at(row, 8)?,
    };
    Ok((entry, body))
}

/// Appends a ledger entry inside an open write transaction.
pub(crate) fn append_ledger(
    tx: &rusqlite::Transaction<'_>,
    at: Timestamp,
    tenant: &str,
    kind: &str,
    reservation: Option<&str>,
    body: &Value,
) -> Result<()> {
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((seq, hash)) => {
            let prev = hash
                .parse()
                .map_err(|e| StoreError::Invalid(format!("ledger entry {seq} has a malformed hash: {e}")))?;
            (seq + 1, prev)
        }
        None => (1, Sha256Digest::ZERO),
    };
    let id = uuid::Uuid::now_v7().to_string();
    let body = body.to_string();
    let hash = Chained { seq, id: &id, at, tenant, kind, reservation, body: &body }.hash(&prev);
    tx.prepare_cached(&format!("INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"))?
        .execute(params![seq, id, at.as_unix_micros(), tenant, kind, reservation, body, prev.to_hex(), hash.to_hex()])?;
    Ok(())
}

fn spent_in(conn: &rusqlite::Connection, tenant: &str, budget: &str, subject: &str, since: Timestamp) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(spent_nanos), 0) FROM budget_spend
             WHERE tenant_id = ?1 AND budget = ?2 AND subject = ?3 AND hour >= ?4",
        )?
        .query_row(params![tenant, budget, subject, hour_of(since)], |r| r.get(0))?)
}

fn held_in(conn: &rusqlite::Connection, tenant: &str, budget: &str, subject: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount_nanos), 0) FROM budget_holds WHERE tenant_id = ?1 AND budget = ?2 AND subject = ?3",
        )?
        .query_row(params![tenant, budget, subject], |r| r.get(0))?)
}

/// The (budget, subject) pairs a reservation holds, from its stored scopes.
pub(crate) fn scope_keys(scopes: &str) -> Result<Vec<(String, String)>> {
    let scopes: Vec<BudgetScope> = serde_json::from_str(scopes)
        .map_err(|e| StoreError::Invalid(format!("a reservation's stored scopes are unreadable: {e}")))?;
    Ok(scopes.into_iter().map(|s| (s.budget, s.subject)).collect())
}

/// Adds `nanos` to a budget's spend in `hour`.
pub(crate) fn add_spend(
    tx: &rusqlite::Transaction<'_>,
    tenant: &str,
    budget: &str,
    subject: &str,
    hour: i64,
    nanos: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO budget_spend (tenant_id, budget, subject, hour, spent_nanos) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, budget, subject, hour) DO UPDATE SET spent_nanos = spent_nanos + excluded.spent_nanos",
    )?
    .execute(params![tenant, budget, subject, hour, nanos])?;
    Ok(())
}

impl Store {
    /// Admits a reservation against every budget in its scopes, all or nothing.
    pub fn admit(&self, new: &NewReservation) -> Result<Admission> {
        self.write(|tx| admit_in(tx, new))
    }

    /// Settles reservations in one transaction, each at most once.
    pub fn settle(&self, settlements: &[Settlement]) -> Result<Vec<Settled>> {
        self.write(|tx| settlements.iter().map(|s| settle_in(tx, s)).collect())
    }

    /// Expires reservations whose lease ended before `now` (at most [`SWEEP_BATCH_MAX`]),
    /// charging each its input cost, and removes settled rows past their retention.
    pub fn sweep_reservations(&self, now: Timestamp) -> Result<Swept> {
        self.write(|tx| {
            let expired: Vec<(String, String, i64, String)> = tx
                .prepare_cached(
                    "SELECT id, tenant_id, input_nanos, scopes FROM reservations
                     WHERE state = 'held' AND lease_until < ?1 ORDER BY lease_until LIMIT ?2",
                )?
                .query_map(params![now.as_unix_micros(), SWEEP_BATCH_MAX], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut swept = Swept::default();
            for (id, tenant, input, scopes) in expired {
                let keys = scope_keys(&scopes)?;
                let body = json!({ "note": "lease_expired" });
                let charge = Charge {
                    id: &id,
                    tenant: &tenant,
                    keys: &keys,
                    at: now,
                    charged: input,
                    kind: "expired",
                    row_nanos: input,
                    body,
                };
                record_charge(tx, &charge, true, true)?;
                swept.expired += 1;
                swept.charged_nanos = swept.charged_nanos.saturating_add(input);
            }
            let purged = tx
                .prepare_cached("DELETE FROM reservations WHERE state <> 'held' AND settled_at < ?1")?
                .execute(params![now.as_unix_micros().saturating_sub(SETTLED_RESERVATION_RETENTION_MICROS)])?;
            swept.purged = u32::try_from(purged).unwrap_or(u32::MAX);
            Ok(swept)
        })
    }

    /// Reservations held now (not settled, not expired).
    pub fn held_reservations(&self) -> Result<u64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM reservations WHERE state = 'held'")?
                .query_row([], |r| r.get::<_, i64>(0))?
                .try_into()
                .unwrap_or(0))
        })
    }

    /// Where each of `scopes` stands: spent in its window and held.
    pub fn budget_states(&self, tenant: &TenantId, scopes: &[BudgetScope]) -> Result<Vec<BudgetState>> {
        self.read(|conn| {
            scopes
                .iter()
                .map(|s| {
                    Ok(BudgetState {
                        budget: s.budget.clone(),
                        subject: s.subject.clone(),
                        since: s.since,
                        spent_nanos: spent_in(conn, tenant.as_str(), &s.budget, &s.subject, s.since)?,
                        held_nanos: held_in(conn, tenant.as_str(), &s.budget, &s.subject)?,
                    })
                })
                .collect()
        })
    }

    /// The subjects a budget has counted since `since`, for listing per-agent (or per-key,
    /// ...) budgets without knowing their subjects.
    pub fn budget_subjects(&self, tenant: &TenantId, budget: &str, since: Timestamp) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT subject FROM budget_spend WHERE tenant_id = ?1 AND budget = ?2 AND hour >= ?3
                 UNION SELECT subject FROM budget_holds WHERE tenant_id = ?1 AND budget = ?2
                 ORDER BY 1 LIMIT 1000",
            )?;
            let rows = stmt.query_map(params![tenant.as_str(), budget, hour_of(since)], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A tenant's ledger, newest first.
    pub fn ledger(&self, tenant: &TenantId, page: PageRequest) -> Result<(Vec<LedgerEntry>, Option<Cursor>)> {
        let before = page.after.map_or(i64::MAX, Cursor::position);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {LEDGER_COLUMNS} FROM ledger WHERE tenant_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
            ))?;
            let limit = i64::try_from(page.fetch_limit()).unwrap_or(i64::MAX);
            let rows =
                stmt.query_map(params![tenant.as_str(), before, limit], |r| ledger_from_row(r).map(|(e, _)| e))?;
            Ok(page.finish(rows.collect::<rusqlite::Result<Vec<_>>>()?, |e| e.seq))
        })
    }

    /// Walks the ledger from its first entry, checking the chain, and recomputes every
    /// spend bucket and live hold from it to compare with the stored counters.
    pub fn verify_ledger(&self) -> Result<LedgerVerification> {
        self.read(|conn| {
            let mut report = LedgerVerification::default();
            let mut derived = Derived::default();
            let mut stmt = conn.prepare(&format!("SELECT {LEDGER_COLUMNS} FROM ledger ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            let mut expected_prev = Sha256Digest::ZERO;
            let mut expected_seq = 1;
            while let Some(row) = rows.next()? {
                let (entry, body) = match ledger_from_row(row) {
                    Ok(read) => read,
                    Err(e) => {
                        let seq = row.get(0).unwrap_or(expected_seq);
                        report.first_break = Some(ChainBreak { seq, reason: format!("unreadable entry: {e}") });
                        break;
                    }
                };
                let chained = Chained {
                    seq: entry.seq,
                    id: &entry.id,
                    at: entry.at,
                    tenant: entry.tenant_id.as_str(),
                    kind: &entry.kind,
                    reservation: entry.reservation.as_deref(),
                    body: &body,
                };
                let reason = if entry.seq != expected_seq {
                    Some(format!("expected entry {expected_seq} next, found {}: entries are missing", entry.seq))
                } else if entry.prev_hash != expected_prev {
                    Some("prev_hash does not match the previous entry's hash".to_owned())
                } else if chained.hash(&entry.prev_hash) != entry.entry_hash {
                    Some("entry content does not match its hash: it was edited".to_owned())
                } else {
                    derived.apply(&entry).err()
                };
                if let Some(reason) = reason {
                    report.first_break = Some(ChainBreak { seq: entry.seq, reason });
                    break;
                }
                report.entries += 1;
                expected_prev = entry.entry_hash;
                expected_seq += 1;
            }
            if report.first_break.is_some() {
                return Ok(report);
            }
            report.head = (report.entries > 0).then_some(expected_prev);
            derived.compare(conn, &mut report)?;
            Ok(report)
        })
    }
}

/// Counters as the ledger says they must be.
#[derive(Default)]
struct Derived {
    /// (tenant, budget, subject, hour) → spent.
    spend: BTreeMap<(String, String, String, i64), i64>,
    /// (tenant, budget, subject, reservation) → held.
    holds: BTreeMap<(String, String, String, String), i64>,
}

impl Derived {
    fn apply(&mut self, entry: &LedgerEntry) -> std::result::Result<(), String> {
        let tenant = entry.tenant_id.to_string();
        let reservation = entry.reservation.as_ref().map(ToString::to_string).unwrap_or_default();
        let body = &entry.body;
        match entry.kind.as_str() {
            "reserved" => {
                let amount = body["amount_nanos"].as_i64().ok_or("a reservation without its amount")?;
                let scopes: Vec<BudgetScope> = serde_json::from_value(body["scopes"].clone())
                    .map_err(|e| format!("a reservation's scopes are unreadable: {e}"))?;
                for scope in scopes {
                    self.holds.insert((tenant.clone(), scope.budget, scope.subject, reservation.clone()), amount);
                }
            }
            "settled" | "expired" => {
                let charged = body["charged_nanos"].as_i64().ok_or("a settlement without its charge")?;
                let hour = body["hour"].as_i64().ok_or("a settlement without its hour")?;
                let keys: Vec<(String, String)> = serde_json::from_value(body["scopes"].clone())
                    .map_err(|e| format!("a settlement's scopes are unreadable: {e}"))?;
                self.holds.retain(|(t, _, _, r), _| !(t == &tenant && r == &reservation));
                for (budget, subject) in keys {
                    *self.spend.entry((tenant.clone(), budget, subject, hour)).or_default() += charged;
                }
            }
            // Entries that move no counter.
            "policy.saved" => {}
            other => return Err(format!("unknown ledger entry kind {other:?}")),
        }
        Ok(())
    }

    fn compare(self, conn: &rusqlite::Connection, report: &mut LedgerVerification) -> Result<()> {
        let note = |report: &mut LedgerVerification, text: String| {
            report.mismatch_count += 1;
            if report.mismatches.len() < MISMATCHES_SHOWN {
                report.mismatches.push(text);
            }
        };
        let mut stored_spend = BTreeMap::new();
        let mut stmt = conn.prepare("SELECT tenant_id, budget, subject, hour, spent_nanos FROM budget_spend")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            stored_spend.insert((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?), r.get::<_, i64>(4)?);
        }
        let mut stored_holds = BTreeMap::new();
        let mut stmt =
            conn.prepare("SELECT tenant_id, budget, subject, reservation, amount_nanos FROM budget_holds")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            stored_holds.insert((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?), r.get::<_, i64>(4)?);
        }
        for (key, stored, derived) in outer_join(&stored_spend, &self.spend) {
            let (tenant, budget, subject, hour) = key;
            note(
                report,
                format!(
                    "spend of budget {budget} ({subject}, tenant {tenant}) in hour {hour}: stored {stored:?}, ledger {derived:?}"
                ),
            );
        }
        for (key, stored, derived) in outer_join(&stored_holds, &self.holds) {
            let (tenant, budget, subject, reservation) = key;
            note(
                report,
                format!(
                    "hold of reservation {reservation} on budget {budget} ({subject}, tenant {tenant}): stored {stored:?}, ledger {derived:?}"
                ),
            );
        }
        Ok(())
    }
}

/// Keys whose values differ between two maps (a zero spend equals a missing one).
fn outer_join<'a, K: Ord + Clone>(
    stored: &'a BTreeMap<K, i64>,
    derived: &'a BTreeMap<K, i64>,
) -> Vec<(K, Option<i64>, Option<i64>)> {
    let mut keys: Vec<&K> = stored.keys().chain(derived.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (s, d) = (stored.get(k).copied(), derived.get(k).copied());
            (s.unwrap_or(0) != d.unwrap_or(0)).then(|| (k.clone(), s, d))
        })
        .collect()
}

/// Admits a reservation inside an open write transaction (see [`Store::admit`]).
pub(crate) fn admit_in(tx: &rusqlite::Transaction<'_>, new: &NewReservation) -> Result<Admission> {
    if new.amount_nanos < 0 || new.input_nanos < 0 {
        return Err(StoreError::Invalid("a reservation's amounts cannot be negative".to_owned()));
    }
    let tenant = new.tenant_id.as_str();
    let scopes = serde_json::to_string(&new.scopes)
        .map_err(|e| StoreError::Invalid(format!("a reservation's scopes cannot be written: {e}")))?;
    let seen = tx
        .prepare_cached("SELECT 1 FROM ledger WHERE reservation = ?1 LIMIT 1")?
        .query_row(params![new.id.as_str()], |_| Ok(()))
        .optional()?;
    if seen.is_some() {
        return Err(StoreError::Conflict(format!("reservation {} was already admitted", new.id)));
    }
    for scope in new.scopes.iter().filter(|s| s.hard) {
        let spent = spent_in(tx, tenant, &scope.budget, &scope.subject, scope.since)?;
        let held = held_in(tx, tenant, &scope.budget, &scope.subject)?;
        if let Some(refused) = scope.refusal(spent, held, new.amount_nanos) {
            return Ok(Admission::Refused(refused));
        }
    }
    record_reserved(tx, new, &scopes, true)?;
    Ok(Admission::Admitted)
}

/// Writes what admitting `new` changes: its row and holds (unless `with_row` is false: it
/// is settled in the same transaction, so they would be removed at once) and its ledger
/// entry. `scopes` is `new.scopes` as JSON.
pub(crate) fn record_reserved(
    tx: &rusqlite::Transaction<'_>,
    new: &NewReservation,
    scopes: &str,
    with_row: bool,
) -> Result<()> {
    let tenant = new.tenant_id.as_str();
    if with_row {
        tx.prepare_cached(
            "INSERT INTO reservations (id, tenant_id, created_at, lease_until, amount_nanos, input_nanos, scopes, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'held')",
        )?
        .execute(params![
            new.id.as_str(),
            tenant,
            new.at.as_unix_micros(),
            new.lease_until.as_unix_micros(),
            new.amount_nanos,
            new.input_nanos,
            scopes
        ])?;
        let mut hold = tx.prepare_cached(
            "INSERT INTO budget_holds (tenant_id, budget, subject, reservation, amount_nanos) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
        )?;
        for scope in &new.scopes {
            hold.execute(params![tenant, scope.budget, scope.subject, new.id.as_str(), new.amount_nanos])?;
        }
    }
    append_ledger(tx, new.at, tenant, "reserved", Some(new.id.as_str()), &reserved_body(new))
}

/// What the ledger records of an admission: in its `reserved` entry, or inside the
/// `settled` entry of a call admitted and settled between two commits (see
/// [`crate::budget_memory`]).
pub(crate) fn reserved_body(new: &NewReservation) -> Value {
    json!({
        "amount_nanos": new.amount_nanos,
        "input_nanos": new.input_nanos,
        "lease_until": new.lease_until,
        "scopes": new.scopes,
        "call": new.summary,
    })
}

/// A charge to write: a settlement or an expiry.
pub(crate) struct Charge<'a> {
    pub(crate) id: &'a str,
    pub(crate) tenant: &'a str,
    pub(crate) keys: &'a [(String, String)],
    pub(crate) at: Timestamp,
    pub(crate) charged: i64,
    /// `settled` or `expired`: the ledger entry's kind and the row's new state.
    pub(crate) kind: &'static str,
    /// What the row records as settled (the actual cost, or the input cost charged).
    pub(crate) row_nanos: i64,
    /// The ledger entry's body beside `charged_nanos`, `hour` and `scopes`.
    pub(crate) body: Value,
}

/// Writes what a charge changes: the holds removed and the row updated (unless `with_row`
/// is false: the reservation was admitted in the same transaction without them), the spend
/// added to each budget in the charge's hour (unless `with_spend` is false: the caller adds
/// the spend of many charges at once with [`add_spend`]), and its ledger entry.
pub(crate) fn record_charge(
    tx: &rusqlite::Transaction<'_>,
    c: &Charge<'_>,
    with_row: bool,
    with_spend: bool,
) -> Result<()> {
    let hour = hour_of(c.at);
    if with_row {
        tx.prepare_cached("DELETE FROM budget_holds WHERE reservation = ?1")?.execute(params![c.id])?;
        tx.prepare_cached("UPDATE reservations SET state = ?2, settled_nanos = ?3, settled_at = ?4 WHERE id = ?1")?
            .execute(params![c.id, c.kind, c.row_nanos, c.at.as_unix_micros()])?;
    }
    if with_spend {
        for (budget, subject) in c.keys {
            add_spend(tx, c.tenant, budget, subject, hour, c.charged)?;
        }
    }
    let mut body = c.body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("charged_nanos".to_owned(), c.charged.into());
        fields.insert("hour".to_owned(), hour.into());
        fields.insert("scopes".to_owned(), json!(c.keys));
    }
    append_ledger(tx, c.at, c.tenant, c.kind, Some(c.id), &body)
}

/// Settles one reservation inside an open write transaction (see [`Store::settle`]).
pub(crate) fn settle_in(tx: &rusqlite::Transaction<'_>, s: &Settlement) -> Result<Settled> {
    let id = s.id.as_str();
    let row: Option<(String, String, i64, i64, String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT tenant_id, state, amount_nanos, input_nanos, scopes, settled_nanos FROM reservations WHERE id = ?1",
        )?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .optional()?;
    let Some((tenant, state, amount, input, scopes, already)) = row else {
        let settled_before = tx
            .prepare_cached("SELECT 1 FROM ledger WHERE reservation = ?1 LIMIT 1")?
            .query_row(params![id], |_| Ok(()))
            .optional()?
            .is_some();
        return Ok(if settled_before { Settled::AlreadySettled } else { Settled::Unknown });
    };
    let actual = s.actual_nanos.unwrap_or(input).max(0);
    // A reservation the sweeper expired (its lease ended while the call still ran) was
    // charged its input: the actual cost, now known, is charged on top of that.
    let (charged, after_expiry) = match state.as_str() {
        "held" => (actual, false),
        "expired" if s.actual_nanos.is_some() => (actual - already.unwrap_or(0), true),
        _ => return Ok(Settled::AlreadySettled),
    };
    let keys = scope_keys(&scopes)?;
    let overran = actual > amount;
    let body = json!({
        "actual_nanos": s.actual_nanos,
        "reserved_nanos": amount,
        "overran": overran,
        "after_expiry": after_expiry,
        "note": s.note,
    });
    let charge =
        Charge { id, tenant: &tenant, keys: &keys, at: s.at, charged, kind: "settled", row_nanos: actual, body };
    record_charge(tx, &charge, true, true)?;
    Ok(Settled::Charged { charged_nanos: charged, overran })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temp_store as store;

    fn admitted(store: &Store, amount: i64) -> ReservationId {
        let now = Timestamp::now();
        let new = NewReservation {
            id: ReservationId::mint(),
            tenant_id: TenantId::default_tenant(),
            at: now,
            lease_until: now.plus_micros(60_000_000),
            amount_nanos: amount,
            input_nanos: 1,
            scopes: vec![BudgetScope {
                budget: "org".into(),
                subject: "default".into(),
                since: now.plus_micros(-MICROS_PER_HOUR),
                limit_nanos: 1_000_000,
                hard: true,
            }],
            summary: json!({}),
        };
        assert_eq!(store.admit(&new).expect("admit"), Admission::Admitted);
        new.id
    }

    #[test]
    fn the_ledger_is_append_only() {
        let (_dir, store) = store();
        admitted(&store, 10);
        for sql in ["UPDATE ledger SET kind = 'settled'", "DELETE FROM ledger"] {
            let err = store.write(|tx| Ok(tx.execute(sql, [])?)).expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{err}");
        }
    }

    #[test]
    fn verify_finds_a_counter_that_disagrees_with_the_ledger_and_an_edited_entry() {
        let (_dir, store) = store();
        let first = admitted(&store, 10);
        admitted(&store, 20);
        let settled = Settlement { id: first, at: Timestamp::now(), actual_nanos: Some(7), note: "ok".into() };
        store.settle(&[settled]).expect("settle");
        assert!(store.verify_ledger().expect("verify").intact());

        store.write(|tx| Ok(tx.execute("UPDATE budget_spend SET spent_nanos = spent_nanos - 5", [])?)).expect("edit");
        let report = store.verify_ledger().expect("verify");
        assert_eq!(report.mismatch_count, 1, "{report:?}");
        assert!(report.mismatches[0].contains("stored Some(2), ledger Some(7)"), "{report:?}");
        store.write(|tx| Ok(tx.execute("UPDATE budget_spend SET spent_nanos = 7", [])?)).expect("undo");
        store.write(|tx| Ok(tx.execute("DELETE FROM budget_holds", [])?)).expect("drop a hold");
        assert_eq!(store.verify_ledger().expect("verify").mismatch_count, 1, "a lost hold shows");

        store
            .write(|tx| {
                tx.execute_batch("DROP TRIGGER ledger_no_update;")?;
                tx.execute("UPDATE ledger SET body = replace(body, '\"charged_nanos\":7', '\"charged_nanos\":1') WHERE seq = 3", [])?;
                Ok(())
            })
            .expect("tamper");
        let report = store.verify_ledger().expect("verify");
        assert_eq!(report.first_break.as_ref().map(|b| b.seq), Some(3), "{report:?}");
        assert!(!report.intact());
    }
}
