//! The behaviour every storage backend must show, written against the [`crate::ports`]
//! traits only: a Postgres store or an object-store blob backend is done when it passes
//! these, unchanged. Each suite takes a fresh, empty backend and panics, naming the rule,
//! on the first one broken.
//!
//! Suites: [`keys_audit`], [`vitals_agents`], [`immune_log`], [`runs`], [`policies`],
//! [`budgets`], [`blobs`], [`operations`].
//!
//! What they check: round trips; the documented order of every list; that cursors walk a
//! list exactly once at every page size; each filter; error kinds (`NotFound`,
//! `Conflict`, `Invalid`, `TooLarge`) that callers branch on; that writes made together
//! commit together (a key with its audit entry, a log batch whole or not at all); and
//! concurrency: parallel writers lose nothing and never fork the audit chain.
//!
//! Compiled for this crate's tests and, with the `conformance` feature, for other
//! backends' tests.

// The suite spawns concurrent callers and awaits every one.
#![allow(clippy::disallowed_methods, reason = "concurrent callers, each awaited")]

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;

use vigil_core::digest::Sha256Digest;
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::scope::Scope;
use vigil_core::time::Timestamp;
use vigil_core::vitals::{CallOutcome, Usage, Vital};

use vigil_core::id::{ReservationId, RunId, TenantId, UploadId};
use vigil_core::run::{ExecStatus, RunStatus};

use crate::ports::{Blobs, Budgets, ImmuneLog, KeysAudit, Operations, Page, Policies, Runs, VitalsAgents};
use crate::{
    Admission, AuditFilter, AuditOutcome, BudgetScope, CollectableUpload, ExecutionEnd, ImmuneLogEntry, LineageEdge,
    NewAuditEntry, NewExecution, NewPolicyVersion, NewReservation, NewRun, NewUpload, Settled, Settlement, StoreError,
    VitalsFilter,
};

/// Page sizes every list is walked with.
const PAGE_SIZES: [u32; 4] = [1, 2, 3, 500];

fn page(after: Option<Cursor>, limit: u32) -> PageRequest {
    PageRequest { after, limit }
}

/// Walks a list page by page and returns everything in order, checking each page's size.
async fn walk<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = crate::Result<Page<T>>>,
{
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let (items, next) = fetch(page(after, limit)).await.expect("a page");
        assert!(items.len() <= limit as usize, "a page holds at most its limit");
        assert!(next.is_none() || items.len() == limit as usize, "only a full page has a next one");
        all.extend(items);
        match next {
            Some(cursor) => after = Some(cursor),
            None => return all,
        }
    }
    panic!("a list never ended");
}

fn audit_entry(principal: &str, action: &str, status: u16) -> NewAuditEntry {
    NewAuditEntry {
        principal: principal.to_owned(),
        action: action.to_owned(),
        target: format!("/api/v1/{action}"),
        request_id: None,
        body_sha256: Sha256Digest::of(action.as_bytes()),
        status,
    }
}

fn scope(budget: &str, subject: &str, since: Timestamp, limit_nanos: i64, hard: bool) -> BudgetScope {
    BudgetScope { budget: budget.to_owned(), subject: subject.to_owned(), since, limit_nanos, hard }
}

fn reservation(at: Timestamp, amount_nanos: i64, input_nanos: i64, scopes: Vec<BudgetScope>) -> NewReservation {
    NewReservation {
        id: ReservationId::mint(),
        tenant_id: TenantId::default_tenant(),
        at,
        lease_until: at.plus_micros(60_000_000),
        amount_nanos,
        input_nanos,
        scopes,
        summary: serde_json::json!({ "agent_id": "a" }),
    }
}

fn settlement(id: &ReservationId, at: Timestamp, actual_nanos: Option<i64>) -> Settlement {
    Settlement { id: id.clone(), at, actual_nanos, note: "ok".to_owned() }
}

/// Reservations, settlement, expiry and the ledger.
pub async fn budgets(port: Arc<dyn Budgets>) {
    let tenant = TenantId::default_tenant();
    let now = Timestamp::now();
    let day = now.plus_micros(-3_600_000_000);
    let org = |limit| scope("org", "default", day, limit, true);
    let agent = |subject: &str, limit| scope("per-agent", subject, day, limit, true);

    // All or nothing: a call that does not fit one budget holds nothing on the others.
    let first = reservation(now, 600, 100, vec![org(1_000), agent("a", 700)]);
    assert_eq!(port.admit(first.clone()).await.expect("admit"), Admission::Admitted);
    let refused = reservation(now, 200, 50, vec![org(1_000), agent("a", 700)]);
    match port.admit(refused).await.expect("admit") {
        Admission::Refused(r) => {
            assert_eq!((r.budget.as_str(), r.subject.as_str()), ("per-agent", "a"), "the budget without room is named");
            assert_eq!((r.limit_nanos, r.spent_nanos, r.held_nanos, r.asked_nanos), (700, 0, 600, 200));
        }
        Admission::Admitted => panic!("a reservation past a hard budget must be refused"),
    }
    let states = port.budget_states(tenant.clone(), vec![org(1_000), agent("a", 700)]).await.expect("states");
    assert_eq!(states.iter().map(|s| s.held_nanos).collect::<Vec<_>>(), [600, 600], "a refusal holds nothing");
    // Never shrunk to what is left: 400 would fit the org budget but not the agent's.
    let other_agent = reservation(now, 400, 10, vec![org(1_000), agent("b", 700)]);
    assert_eq!(port.admit(other_agent.clone()).await.expect("admit"), Admission::Admitted);
    assert!(matches!(port.admit(reservation(now, 1, 0, vec![org(1_000)])).await, Ok(Admission::Refused(_))));
    // A soft budget counts but never refuses.
    let soft = reservation(now, 5_000, 0, vec![scope("soft", "default", day, 10, false)]);
    assert_eq!(port.admit(soft.clone()).await.expect("admit"), Admission::Admitted);
    // The same id twice is a conflict, not a second hold.
    assert!(matches!(port.admit(first.clone()).await, Err(StoreError::Conflict(_))), "an id is admitted once");

    // Settling charges the actual cost once, even past the reservation.
    let settled = port.settle(vec![settlement(&first.id, now, Some(450))]).await.expect("settle");
    assert_eq!(settled, [Settled::Charged { charged_nanos: 450, overran: false }]);
    let again = port.settle(vec![settlement(&first.id, now, Some(999))]).await.expect("settle");
    assert_eq!(again, [Settled::AlreadySettled], "settling twice changes nothing");
    let over = port.settle(vec![settlement(&other_agent.id, now, Some(900))]).await.expect("settle");
    assert_eq!(over, [Settled::Charged { charged_nanos: 900, overran: true }], "an overrun is charged and flagged");
    let unknown = port.settle(vec![settlement(&ReservationId::mint(), now, Some(1))]).await.expect("settle");
    assert_eq!(unknown, [Settled::Unknown]);
    let states =
        port.budget_states(tenant.clone(), vec![org(1_000), agent("a", 700), agent("b", 700)]).await.expect("states");
    let spent: Vec<(i64, i64)> = states.iter().map(|s| (s.spent_nanos, s.held_nanos)).collect();
    assert_eq!(spent, [(1_350, 0), (450, 0), (900, 0)], "spend is the sum of settlements, holds are gone");
    // An overspent budget admits nothing more; a window starting later does not see it.
    assert!(matches!(port.admit(reservation(now, 1, 0, vec![org(1_000)])).await, Ok(Admission::Refused(_))));
    let later = scope("org", "default", now.plus_micros(3_600_000_000), 1_500, true);
    assert_eq!(port.admit(reservation(now, 1, 0, vec![later.clone()])).await.expect("admit"), Admission::Admitted);
    // A raised limit counts what was already spent in the window.
    assert_eq!(port.admit(reservation(now, 100, 0, vec![org(1_500)])).await.expect("admit"), Admission::Admitted);
    assert!(matches!(port.admit(reservation(now, 100, 0, vec![org(1_500)])).await, Ok(Admission::Refused(_))));

    // Expiry: a lease that ran out is charged its input cost, once; a late settlement adds
    // the rest of the actual cost.
    let mut abandoned = reservation(now, 300, 70, vec![agent("c", 10_000)]);
    abandoned.lease_until = now.plus_micros(1_000_000);
    port.admit(abandoned.clone()).await.expect("admit");
    let held_before = port.held_reservations().await.expect("held");
    let swept = port.sweep_reservations(now).await.expect("sweep");
    assert_eq!(swept.expired, 0, "a lease still running is kept");
    let swept = port.sweep_reservations(now.plus_micros(2_000_000)).await.expect("sweep");
    assert!(swept.expired >= 1 && swept.charged_nanos >= 70, "{swept:?}");
    assert_eq!(port.held_reservations().await.expect("held"), held_before - u64::from(swept.expired));
    let states = port.budget_states(tenant.clone(), vec![agent("c", 10_000)]).await.expect("states");
    assert_eq!((states[0].spent_nanos, states[0].held_nanos), (70, 0));
    let late = port.settle(vec![settlement(&abandoned.id, now, Some(250))]).await.expect("settle");
    assert_eq!(late, [Settled::Charged { charged_nanos: 180, overran: false }], "the rest of the actual cost");
    let states = port.budget_states(tenant.clone(), vec![agent("c", 10_000)]).await.expect("states");
    assert_eq!(states[0].spent_nanos, 250);
    assert_eq!(
        port.settle(vec![settlement(&abandoned.id, now, Some(250))]).await.expect("settle"),
        [Settled::AlreadySettled]
    );
    let subjects = port.budget_subjects(tenant.clone(), "per-agent".to_owned(), day).await.expect("subjects");
    assert_eq!(subjects, ["a", "b", "c"]);

    // Concurrent admissions never together exceed a hard budget.
    let tight = || scope("tight", "default", day, 1_000, true);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let port = port.clone();
        let new = reservation(now, 100, 10, vec![tight()]);
        tasks.push(tokio::spawn(async move { port.admit(new).await.expect("admit") }));
    }
    let mut admitted = 0;
    for task in tasks {
        if task.await.expect("task") == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "exactly as many as fit are admitted");
    let states = port.budget_states(tenant.clone(), vec![tight()]).await.expect("states");
    assert_eq!(states[0].held_nanos, 1_000);

    // The ledger: every admission, settlement and expiry, newest first, chained, and the
    // counters equal what it derives.
    let entries = walk(3, |p| port.ledger(tenant.clone(), p)).await;
    assert!(entries.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let kinds: BTreeSet<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["expired", "reserved", "settled"]));
    let overrun = entries.iter().find(|e| e.reservation.as_ref() == Some(&other_agent.id) && e.kind == "settled");
    assert_eq!(overrun.map(|e| e.body["overran"].clone()), Some(serde_json::json!(true)));
    let other = walk(10, |p| port.ledger(TenantId::new("other".to_owned()), p)).await;
    assert!(other.is_empty(), "a tenant sees only its own ledger");
    let verified = port.verify_ledger().await.expect("verify");
    assert!(verified.intact(), "{verified:?}");
    assert_eq!(verified.entries, entries.len() as u64);
    let _ = soft;
}

/// Keys and the audit log.
pub async fn keys_audit(port: Arc<dyn KeysAudit>) {
    // Empty.
    assert!(!port.has_active_admin_key().await.expect("admins"), "a new store has no admin key");
    let empty = port.verify_audit().await.expect("verify");
    assert_eq!((empty.entries, empty.head, empty.first_break), (0, None, None), "an empty chain is intact");

    // Create, read back, authenticate.
    let version = port.keys_version().await.expect("version");
    let created = port
        .create_key("ci".into(), Scope::Read, "cli".into(), Some(audit_entry("cli", "keys.create", 0)))
        .await
        .expect("create");
    assert_ne!(port.keys_version().await.expect("version"), version, "creating a key changes the version");
    assert_eq!(port.get_key(created.record.id).await.expect("get"), created.record);
    let found = port.authenticate(created.secret.clone()).await.expect("authenticate");
    assert_eq!(found.as_ref(), Some(&created.record), "the secret authenticates its key");
    let mut wrong = created.secret.clone();
    let last = wrong.pop().map_or('0', |c| if c == '0' { '1' } else { '0' });
    wrong.push(last);
    assert_eq!(port.authenticate(wrong).await.expect("authenticate"), None, "a wrong secret does not");
    assert_eq!(port.authenticate("not a key".into()).await.expect("authenticate"), None);
    let audited = port.list_audit(AuditFilter::default(), page(None, 10)).await.expect("audit").0;
    assert_eq!(audited.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["keys.create"], "committed together");

    // Error kinds.
    let duplicate = port.create_key("ci".into(), Scope::Write, "cli".into(), None).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "an active name is taken: {duplicate:?}");
    for bad in ["", "a/b", &"x".repeat(65)] {
        let refused = port.create_key(bad.into(), Scope::Read, "cli".into(), None).await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "name {bad:?}: {refused:?}");
    }
    let unknown = vigil_core::id::KeyId::from_bytes([7; 8]);
    assert!(matches!(port.get_key(unknown).await, Err(StoreError::NotFound(_))));
    assert!(matches!(port.revoke_key(unknown, None).await, Err(StoreError::NotFound(_))));
    let audited_after_refusals = port.list_audit(AuditFilter::default(), page(None, 10)).await.expect("audit").0;
    assert_eq!(audited_after_refusals.len(), 1, "a refused change leaves no entry of its own");

    // Revocation: the last admin is kept, a revoked key stops working, its name is free.
    let admin = port.create_key("admin".into(), Scope::Admin, "cli".into(), None).await.expect("admin");
    assert!(port.has_active_admin_key().await.expect("admins"));
    let last_admin = port.revoke_key(admin.record.id, None).await;
    assert!(matches!(last_admin, Err(StoreError::Conflict(_))), "the last admin stays: {last_admin:?}");
    let version = port.keys_version().await.expect("version");
    let revoked = port.revoke_key(created.record.id, Some(audit_entry("cli", "keys.revoke", 0))).await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    assert_ne!(port.keys_version().await.expect("version"), version, "revoking changes the version");
    assert_eq!(port.authenticate(created.secret).await.expect("authenticate"), None, "revoked keys fail");
    let again = port.revoke_key(created.record.id, None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "revoking twice: {again:?}");
    port.create_key("ci".into(), Scope::Read, "cli".into(), None).await.expect("a revoked key's name is free");
    let active: BTreeSet<String> =
        port.active_keys().await.expect("active").into_iter().map(|k| k.record.name).collect();
    assert_eq!(active, BTreeSet::from(["admin".to_owned(), "ci".to_owned()]));

    // Key pages: newest first, every key once at every page size, revoked ones on request.
    for i in 0..5 {
        port.create_key(format!("k{i}"), Scope::Read, "cli".into(), None).await.expect("create");
    }
    for limit in PAGE_SIZES {
        let all = walk(limit, |p| port.list_keys_page(true, p)).await;
        let names: Vec<&str> = all.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["k4", "k3", "k2", "k1", "k0", "ci", "admin", "ci"], "newest first, limit {limit}");
        let active = walk(limit, |p| port.list_keys_page(false, p)).await;
        assert_eq!(active.len(), 7, "revoked keys are left out unless asked for");
    }

    audit_log(port).await;
}

async fn audit_log(port: Arc<dyn KeysAudit>) {
    let before = port.list_audit(AuditFilter::default(), page(None, 500)).await.expect("audit").0.len();
    // Concurrent appends: nothing lost, the chain never forks.
    // 4 writers × 24 appends, cycling through the four outcomes: 24 of each in all.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let port = port.clone();
            tokio::spawn(async move {
                for i in 0..24 {
                    let status = [201, 403, 422, 500][i % 4];
                    port.append_audit(audit_entry(&format!("key:w{w}"), "runs.create", status)).await.expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let verified = port.verify_audit().await.expect("verify");
    assert_eq!(verified.first_break, None, "concurrent appends keep the chain intact");
    assert_eq!(verified.entries as usize, before + 96, "no append is lost");

    for limit in PAGE_SIZES {
        let all = walk(limit, |p| port.list_audit(AuditFilter::default(), p)).await;
        assert_eq!(all.len(), before + 96, "limit {limit}");
        assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first, limit {limit}");
        assert!(all.windows(2).all(|w| w[1].entry_hash == w[0].prev_hash), "each entry chains to the one before");
        assert_eq!(Some(all[0].entry_hash), verified.head, "the head is the newest entry");
    }
    let one_writer = AuditFilter { principal: Some("key:w2".into()), ..AuditFilter::default() };
    let mine = walk(7, |p| port.list_audit(one_writer.clone(), p)).await;
    assert_eq!(mine.len(), 24);
    assert!(mine.iter().all(|e| e.principal == "key:w2"));
    let denied = AuditFilter { outcome: Some(AuditOutcome::Denied), ..AuditFilter::default() };
    let refusals = walk(500, |p| port.list_audit(denied.clone(), p)).await;
    assert_eq!(refusals.len(), 24, "403s are denials");
    assert!(refusals.iter().all(|e| e.status == 403));
    let errors = AuditFilter {
        action: Some("runs.create".into()),
        outcome: Some(AuditOutcome::Error),
        ..AuditFilter::default()
    };
    assert_eq!(walk(3, |p| port.list_audit(errors.clone(), p)).await.len(), 24, "filters combine");
    let future = AuditFilter { from: Some(Timestamp::from_unix_micros(i64::MAX / 2)), ..AuditFilter::default() };
    assert!(walk(500, |p| port.list_audit(future.clone(), p)).await.is_empty(), "time windows filter");
}

fn vital(agent: &str, at: i64, model: &str, outcome: CallOutcome) -> Vital {
    let mut v = Vital::received(Timestamp::from_unix_micros(at), agent.into(), "chat.completions");
    v.agent_type = "openai-python".into();
    v.provider = "openai".into();
    v.model_requested = Some(model.to_owned());
    v.outcome = outcome;
    v.status = if outcome == CallOutcome::Ok { 200 } else { 500 };
    v.latency_us = 1_000;
    v.usage = Some(Usage { input_tokens: 10, output_tokens: 5, cached_tokens: 2, ..Usage::default() });
    v.cost_nanos = Some(100);
    v.client_ip = Some(format!("10.0.0.{}", at % 7));
    v
}

/// Vitals and discovery.
pub async fn vitals_agents(port: Arc<dyn VitalsAgents>) {
    assert!(matches!(port.get_agent("nobody".into()).await, Err(StoreError::NotFound(_))));
    let empty = port.gateway_stats(None, None).await.expect("stats");
    assert_eq!((empty.calls, empty.cost_nanos, empty.tokens.input_tokens), (0, 0, 0));

    // Round trip, and discovery folded in.
    let first = vec![
        vital("planner", 10, "gpt-4o", CallOutcome::Ok),
        vital("planner", 30, "o3", CallOutcome::UpstreamError),
        vital("writer", 20, "gpt-4o", CallOutcome::Ok),
    ];
    port.insert_vitals(first.clone()).await.expect("insert");
    let listed = walk(500, |p| port.list_vitals(VitalsFilter::default(), p)).await;
    let back: Vec<Vital> = listed.iter().rev().map(|s| s.vital.clone()).collect();
    assert_eq!(back, first, "vitals come back as stored, newest (last stored) first");
    let planner = port.get_agent("planner".into()).await.expect("planner");
    assert_eq!((planner.calls, planner.errors), (2, 1));
    assert_eq!((planner.first_seen.as_unix_micros(), planner.last_seen.as_unix_micros()), (10, 30));
    assert_eq!(
        planner.models.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&"gpt-4o".to_owned(), &"o3".to_owned()])
    );

    // Concurrent batches: nothing lost, discovery counts every call.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let port = port.clone();
            tokio::spawn(async move {
                for batch in 0..10 {
                    let at = 1_000 + w * 100 + batch;
                    let vitals = (0..5).map(|i| vital(&format!("agent-{i}"), at, "gpt-4o", CallOutcome::Ok)).collect();
                    port.insert_vitals(vitals).await.expect("insert");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    for i in 0..5 {
        let agent = port.get_agent(format!("agent-{i}").into()).await.expect("agent");
        assert_eq!(agent.calls, 40, "agent-{i} saw every concurrent call");
    }

    // Lists: every item once at every page size, in order; filters.
    for limit in PAGE_SIZES {
        let all = walk(limit, |p| port.list_vitals(VitalsFilter::default(), p)).await;
        assert_eq!(all.len(), 203, "limit {limit}");
        assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first, limit {limit}");
        let agents = walk(limit, |p| port.list_agents(p)).await;
        assert_eq!(agents.len(), 7, "limit {limit}");
        assert_eq!(agents.last().map(|a| a.agent_id.as_str()), Some("planner"), "most recently discovered first");
    }
    let filter = VitalsFilter {
        agent_id: Some("agent-3".into()),
        from: Some(Timestamp::from_unix_micros(1_100)),
        to: Some(Timestamp::from_unix_micros(1_300)),
    };
    let window = walk(4, |p| port.list_vitals(filter.clone(), p)).await;
    assert_eq!(window.len(), 20, "agent and [from, to) combine");
    assert!(
        window.iter().all(|v| v.vital.agent_id == "agent-3" && (1_100..1_300).contains(&v.vital.at.as_unix_micros()))
    );

    // Totals: exact, windowed, per model, and never an error for what is stored.
    let stats = port.gateway_stats(None, None).await.expect("stats");
    assert_eq!((stats.calls, stats.errors, stats.agents), (203, 1, 7));
    assert_eq!((stats.tokens.input_tokens, stats.tokens.cached_tokens, stats.cost_nanos), (2_030, 406, 20_300));
    let o3 = stats.models.iter().find(|m| m.model == "o3").expect("o3");
    assert_eq!((o3.calls, o3.tokens.output_tokens), (1, 5));
    let early = port
        .gateway_stats(Some(Timestamp::from_unix_micros(0)), Some(Timestamp::from_unix_micros(1_000)))
        .await
        .expect("window");
    assert_eq!(early.calls, 3, "[from, to)");
    let mut huge = vital("whale", 5_000, "gpt-4o", CallOutcome::Ok);
    huge.usage = Some(Usage { input_tokens: u64::MAX / 2, ..Usage::default() });
    huge.cost_nanos = Some(i64::MAX);
    port.insert_vitals(vec![huge.clone(), huge.clone(), huge]).await.expect("insert");
    let saturated = port.gateway_stats(None, None).await.expect("sums past 64 bits do not fail");
    assert_eq!(saturated.cost_nanos, i64::MAX, "cost saturates");
    assert_eq!(saturated.tokens.input_tokens, u64::MAX, "tokens saturate");
}

fn log_entry(seq: i64) -> ImmuneLogEntry {
    ImmuneLogEntry { seq, at_us: seq * 1_000, input: format!("{{\"n\":{seq}}}"), decisions: "[]".into() }
}

/// The immune engine's log, snapshots and control URLs.
pub async fn immune_log(port: Arc<dyn ImmuneLog>) {
    assert_eq!(port.last_immune_seq().await.expect("seq"), 0, "an empty log ends at 0");
    assert!(port.export_immune().await.expect("export").is_empty(), "an empty log exports nothing");
    assert!(port.immune_snapshots().await.expect("snapshots").is_empty());
    port.append_immune_log(Vec::new()).await.expect("an empty batch is nothing");

    port.append_immune_log((1..=10).map(log_entry).collect()).await.expect("append");
    assert_eq!(port.last_immune_seq().await.expect("seq"), 10);
    let after = port.immune_log_after(3, 4).await.expect("after");
    assert_eq!(after, (4..=7).map(log_entry).collect::<Vec<_>>(), "oldest first, after seq, at most limit");
    assert!(port.immune_log_after(10, 5).await.expect("after").is_empty());

    // A batch is kept whole or not at all; a logged seq is a conflict.
    let clash = port.append_immune_log(vec![log_entry(11), log_entry(5)]).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "seq 5 is logged already: {clash:?}");
    assert_eq!(port.last_immune_seq().await.expect("seq"), 10, "nothing of a refused batch is kept");

    // Snapshots: newest first, three kept, the log before the oldest kept one dropped.
    for seq in [2, 4, 6, 8] {
        port.save_immune_snapshot(seq, format!("state@{seq}")).await.expect("snapshot");
    }
    let kept: Vec<i64> = port.immune_snapshots().await.expect("snapshots").iter().map(|s| s.seq).collect();
    assert_eq!(kept, [8, 6, 4]);
    assert_eq!(port.immune_snapshots().await.expect("snapshots")[0].state, "state@8");
    let log = port.immune_log_after(0, 100).await.expect("log");
    assert_eq!(log.first().map(|e| e.seq), Some(5), "inputs the oldest kept snapshot includes are dropped");
    assert_eq!(port.last_immune_seq().await.expect("seq"), 10);

    // The export: the oldest kept snapshot, then every input after it, a line each.
    let export = String::from_utf8(port.export_immune().await.expect("export")).expect("text");
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.first().copied(), Some("{\"seq\":4,\"snapshot\":state@4}"), "{export}");
    let inputs: Vec<serde_json::Value> =
        lines[1..].iter().map(|l| serde_json::from_str(l).expect("an input line is JSON")).collect();
    assert_eq!(inputs.iter().map(|i| i["seq"].as_i64()).collect::<Vec<_>>(), (5..=10).map(Some).collect::<Vec<_>>());
    assert_eq!((inputs[0]["input"]["n"].as_i64(), inputs[0]["decisions"].clone()), (Some(5), serde_json::json!([])));

    // Control URLs: set, replace, read, remove.
    assert_eq!(port.control_url("a1".into()).await.expect("read"), None);
    port.set_control_url("a1".into(), "https://a.example/one".into(), "local".into()).await.expect("set");
    let replaced = port.set_control_url("a1".into(), "https://a.example/two".into(), "key:x".into()).await;
    let replaced = replaced.expect("replace");
    assert_eq!((replaced.url.as_str(), replaced.registered_by.as_str()), ("https://a.example/two", "key:x"));
    assert_eq!(port.control_url("a1".into()).await.expect("read"), Some(replaced));
    assert!(port.remove_control_url("a1".into()).await.expect("remove"));
    assert!(!port.remove_control_url("a1".into()).await.expect("remove again"), "nothing left to remove");
    assert_eq!(port.control_url("a1".into()).await.expect("read"), None);
}

async fn read_blob(port: &dyn Blobs, digest: Sha256Digest) -> Option<Vec<u8>> {
    let mut reader = port.open(digest).await.expect("open")?;
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map(|_| bytes)
    })
    .await
    .expect("read task")
    .ok()
}

/// Content-addressed blobs. `cap_bytes` is the backend's per-blob cap (at least 64 KiB).
///
/// `scratch` is an empty local folder for the files [`Blobs::materialize`] makes.
pub async fn blobs(port: Arc<dyn Blobs>, cap_bytes: u64, scratch: &std::path::Path) {
    let content = b"a,b\n1,2\n".to_vec();
    let digest = Sha256Digest::of(&content);
    assert!(!port.contains(digest).await.expect("contains"));
    assert_eq!(read_blob(port.as_ref(), digest).await, None, "absent blobs open as None");
    let stored = port.put(Box::new(std::io::Cursor::new(content.clone()))).await.expect("put");
    assert_eq!((stored.digest, stored.size_bytes, stored.existed), (digest, 8, false));
    assert_eq!(read_blob(port.as_ref(), digest).await, Some(content.clone()), "round trip");
    assert!(port.contains(digest).await.expect("contains"));
    assert!(port.verify(digest).await.expect("verify"));
    let again = port.put(Box::new(std::io::Cursor::new(content.clone()))).await.expect("put again");
    assert!(again.existed, "the same content is stored once");

    // A local file of a blob, replacing what was there; none of a blob not stored.
    let local = scratch.join("nested").join("input.csv");
    std::fs::create_dir_all(scratch.join("nested")).expect("scratch");
    std::fs::write(&local, b"stale").expect("a file to replace");
    port.materialize(digest, local.clone()).await.expect("materialize");
    assert_eq!(std::fs::read(&local).expect("the local file"), content, "the blob's bytes, whole");
    port.materialize(digest, local.clone()).await.expect("materialize again");
    let missing = port.materialize(Sha256Digest::of(b"absent"), scratch.join("absent")).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    assert!(!scratch.join("absent").exists(), "nothing is made of a blob not stored");

    // The cap: refused whole, nothing left behind.
    let over = vec![7u8; usize::try_from(cap_bytes + 1).unwrap_or(usize::MAX)];
    let refused = port.put(Box::new(std::io::Cursor::new(over.clone()))).await;
    assert!(matches!(refused, Err(StoreError::TooLarge { .. })), "{refused:?}");
    assert!(!port.contains(Sha256Digest::of(&over)).await.expect("contains"));
    assert_eq!(port.remove_stale_temps(true).await.expect("temps").files, 0, "a refused write leaves no part");

    // Concurrent writers of the same content: all succeed, exactly one wrote it.
    let shared = vec![42u8; 100_000];
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (port, shared) = (port.clone(), shared.clone());
            tokio::spawn(async move { port.put(Box::new(std::io::Cursor::new(shared))).await.expect("put") })
        })
        .collect();
    let mut wrote = 0;
    for writer in writers {
        wrote += usize::from(!writer.await.expect("writer").existed);
    }
    assert_eq!(wrote, 1, "exactly one concurrent writer stores the content");
    assert_eq!(read_blob(port.as_ref(), Sha256Digest::of(&shared)).await, Some(shared.clone()));

    // Listing (by digest), removal, and the empty blob.
    let empty = port.put(Box::new(std::io::empty())).await.expect("an empty blob");
    assert_eq!(empty.digest, Sha256Digest::of(b""));
    let listed = port.list().await.expect("list");
    assert_eq!(listed.len(), 3);
    assert!(listed.windows(2).all(|w| w[0].0.as_bytes() < w[1].0.as_bytes()), "sorted by digest");
    assert!(listed.iter().any(|(d, size, _)| *d == Sha256Digest::of(&shared) && *size == 100_000));
    assert_eq!(port.remove(digest).await.expect("remove"), 8);
    assert_eq!(port.remove(digest).await.expect("remove again"), 0, "removing what is gone is 0");
    assert_eq!(read_blob(port.as_ref(), digest).await, None);
    assert!(matches!(port.verify(digest).await, Err(StoreError::NotFound(_))), "verifying what is gone");
    port.check_writable().await.expect("a writable store says so");
    assert_eq!(port.remove_stale_temps(true).await.expect("temps").files, 0, "a probe leaves nothing behind");
}

fn new_policy(tenant: &str, rule: &str, based_on: Option<u32>) -> NewPolicyVersion {
    NewPolicyVersion {
        tenant_id: TenantId::new(tenant),
        document: serde_json::json!({ "rules": [{ "id": rule, "effect": "deny" }] }),
        created_by: "alice".into(),
        based_on,
        rolled_back_from: None,
    }
}

/// Policy versions: numbered per tenant, immutable, optimistic against lost updates.
pub async fn policies(port: Arc<dyn Policies>) {
    let acme = TenantId::new("acme");
    assert!(matches!(port.policy(acme.clone(), None).await, Err(StoreError::NotFound(_))), "no policy yet");
    let (v1, created) = port
        .save_policy(new_policy("acme", "a", None), Some(audit_entry("alice", "policy.save", 200)))
        .await
        .expect("first");
    assert!(created && v1.version == 1 && v1.tenant_id == acme && v1.rolled_back_from.is_none());
    assert_eq!(v1.document["rules"][0]["id"], "a");
    assert!(v1.sha256.len() >= 64, "the document's digest: {}", v1.sha256);
    let (same, created) = port.save_policy(new_policy("acme", "a", Some(1)), None).await.expect("unchanged");
    assert!(!created && same == v1, "the same document again adds no version");
    let (v2, _) = port.save_policy(new_policy("acme", "b", Some(1)), None).await.expect("second");
    assert_eq!((v2.version, v2.document["rules"][0]["id"].as_str()), (2, Some("b")));
    // A save based on a version that is no longer the latest loses nothing: it is refused.
    let stale = port.save_policy(new_policy("acme", "c", Some(1)), None).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "a lost update is refused: {stale:?}");
    let first_again = port.save_policy(new_policy("acme", "c", None), None).await;
    assert!(matches!(first_again, Err(StoreError::Conflict(_))), "so is a 'first' save once there is one");
    // A rollback is a new version that says what it restored.
    let restore = NewPolicyVersion { rolled_back_from: Some(1), ..new_policy("acme", "a", Some(2)) };
    let (v3, _) = port.save_policy(restore, None).await.expect("rollback");
    assert_eq!((v3.version, v3.rolled_back_from, v3.sha256.as_str()), (3, Some(1), v1.sha256.as_str()));
    assert_eq!(port.policy(acme.clone(), None).await.expect("latest"), v3);
    assert_eq!(port.policy(acme.clone(), Some(1)).await.expect("v1"), v1, "old versions stay as they were");
    assert!(matches!(port.policy(acme.clone(), Some(9)).await, Err(StoreError::NotFound(_))));
    // Tenants are apart.
    let (other, _) = port.save_policy(new_policy("globex", "z", None), None).await.expect("another tenant");
    assert_eq!(other.version, 1, "versions count per tenant");
    for limit in PAGE_SIZES {
        let all = walk(limit, |p| port.policy_history(acme.clone(), p)).await;
        assert_eq!(all.iter().map(|v| v.version).collect::<Vec<_>>(), [3, 2, 1], "newest first, page size {limit}");
    }
    // Concurrent editors of one version: exactly one wins.
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let port = Arc::clone(&port);
            tokio::spawn(async move { port.save_policy(new_policy("acme", &format!("r{i}"), Some(3)), None).await })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.expect("joined") {
            Ok((v, true)) => {
                assert_eq!(v.version, 4);
                won += 1;
            }
            Err(StoreError::Conflict(_)) => {}
            other => panic!("a racer got {other:?}"),
        }
    }
    assert_eq!(won, 1, "one save per version");
}

/// Operating the backend: probes, the schema version, closing.
pub async fn operations(port: Arc<dyn Operations>, head_schema: i64) {
    port.check_writable().await.expect("a writable backend says so");
    port.check_writable().await.expect("and says so again");
    assert_eq!(port.schema_version().await.expect("schema"), head_schema, "a new backend is at the head schema");
    port.close().await.expect("close");
}

fn new_upload(sha: char, name: &str) -> NewUpload {
    let sha256 = format!("sha256:{}", sha.to_string().repeat(64));
    NewUpload { sha256, size_bytes: 10, file_name: name.into(), format: "csv".into(), by: "alice".into() }
}

/// A run of two plugins in two layers, each with a cache key naming the run's fingerprint.
fn new_run(upload_id: &UploadId, fingerprint: &str) -> NewRun {
    let step = |plugin_id: &str, layer: u32| NewExecution {
        plugin_id: plugin_id.into(),
        plugin_version: "1.0.0".into(),
        layer,
        cache_key: format!("{fingerprint}/{plugin_id}"),
    };
    NewRun {
        upload_id: upload_id.clone(),
        seed: 7,
        fingerprint: fingerprint.into(),
        pipeline: Some(vec!["p.b".into(), "p.a".into()]),
        plan: serde_json::json!({ "layers": [["p.a"], ["p.b"]] }),
        settings: serde_json::json!({ "p.a": { "depth": 2 } }),
        created_by: "alice".into(),
        // Given out of order: executions list by layer, then plugin id.
        steps: vec![step("p.b", 1), step("p.a", 0)],
    }
}

fn edge(to_id: &str) -> LineageEdge {
    LineageEdge {
        from_kind: "upload".into(),
        from_id: "u".into(),
        to_kind: "artifact".into(),
        to_id: to_id.into(),
        relation: "derived".into(),
    }
}

/// Uploads, runs with their executions and lineage, plugin installs, known issues and
/// tombstones.
pub async fn runs(port: Arc<dyn Runs>) {
    // Uploads: the same content is the same upload, each attempt recorded; newest first.
    let a = port.record_upload(new_upload('a', "a.csv"), Some(audit_entry("alice", "upload", 201))).await;
    let a = a.expect("an upload");
    assert!(!a.reused && a.upload.file_name == "a.csv" && a.upload.size_bytes == 10);
    let again = port.record_upload(new_upload('a', "renamed.csv"), None).await.expect("the same content");
    assert!(again.reused && again.upload == a.upload, "the same content is the same upload");
    assert_ne!(again.attempt_id, a.attempt_id, "each attempt is its own");
    let b = port.record_upload(new_upload('b', "../../b.csv"), None).await.expect("another upload").upload;
    assert!(!b.file_name.contains('/'), "a file name is kept as a plain name: {:?}", b.file_name);
    assert_eq!(port.get_upload(a.upload.id.clone()).await.expect("get"), a.upload);
    assert!(matches!(port.get_upload(UploadId::new("nope")).await, Err(StoreError::NotFound(_))));
    for limit in PAGE_SIZES {
        let all = walk(limit, |p| port.list_uploads_page(p)).await;
        assert_eq!(all.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [b.id.as_str(), a.upload.id.as_str()]);
    }

    // Runs: queued with a pending execution per step, newest first, filtered by status.
    let r1 = port.create_run(new_run(&a.upload.id, "fp1"), None).await.expect("a run");
    assert_eq!((r1.status, r1.pinned, r1.seed, r1.started_at), (RunStatus::Queued, false, 7, None));
    assert_eq!(r1.pipeline.as_deref(), Some(&["p.b".to_owned(), "p.a".to_owned()][..]));
    assert_eq!(r1.settings["p.a"]["depth"], 2);
    let r2 = port.create_run(new_run(&b.id, "fp2"), None).await.expect("a run");
    let r3 = port.create_run(new_run(&a.upload.id, "fp1"), None).await.expect("the same work again");
    assert_eq!(port.get_run(r1.id.clone()).await.expect("get"), r1);
    assert!(matches!(port.get_run(RunId::new("nope")).await, Err(StoreError::NotFound(_))));
    for limit in PAGE_SIZES {
        let all = walk(limit, |p| port.list_runs_page(None, p)).await;
        assert_eq!(
            all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            [r3.id.as_str(), r2.id.as_str(), r1.id.as_str()]
        );
    }
    let executions = port.list_executions(r1.id.clone()).await.expect("executions");
    let listed: Vec<(&str, u32, ExecStatus)> =
        executions.iter().map(|e| (e.plugin_id.as_str(), e.layer, e.status)).collect();
    assert_eq!(listed, [("p.a", 0, ExecStatus::Pending), ("p.b", 1, ExecStatus::Pending)]);
    assert_eq!(port.unfinished_runs().await.expect("unfinished").len(), 3);

    // A run's life: running, its executions, completed; then it serves as a cache.
    let running = port.set_run_status(r1.id.clone(), RunStatus::Running, None, None).await.expect("running");
    assert!(running.started_at.is_some() && running.finished_at.is_none());
    port.start_execution(r1.id.clone(), "p.a".into()).await.expect("start");
    let started = port.list_executions(r1.id.clone()).await.expect("executions");
    assert!(started[0].status == ExecStatus::Running && started[0].started_at.is_some());
    let end = ExecutionEnd {
        status: Some(ExecStatus::Ok),
        duration_us: Some(1_500),
        violations: Some(serde_json::json!(["a denial"])),
        ..ExecutionEnd::default()
    };
    port.finish_execution(r1.id.clone(), "p.a".into(), end).await.expect("finish");
    let failed = ExecutionEnd { status: Some(ExecStatus::Error), error: Some("bad".into()), ..ExecutionEnd::default() };
    port.finish_execution(r1.id.clone(), "p.b".into(), failed).await.expect("finish");
    let finished = port.list_executions(r1.id.clone()).await.expect("executions");
    assert_eq!((finished[0].status, finished[0].duration_us), (ExecStatus::Ok, Some(1_500)));
    assert_eq!(finished[0].violations, serde_json::json!(["a denial"]));
    assert_eq!((finished[1].status, finished[1].error.as_deref()), (ExecStatus::Error, Some("bad")));
    assert_eq!(port.completed_run_with_fingerprint("fp1".into()).await.expect("lookup"), None, "not yet completed");
    let done = port.set_run_status(r1.id.clone(), RunStatus::CompletedWithErrors, Some("p.b failed".into()), None);
    let done = done.await.expect("completed");
    assert!(done.finished_at.is_some() && done.error.as_deref() == Some("p.b failed"));
    let queued = port.list_runs_page(Some(RunStatus::Queued), page(None, 10)).await.expect("queued").0;
    assert_eq!(
        queued.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [r3.id.as_str(), r2.id.as_str()],
        "filtered by status"
    );
    assert_eq!(port.unfinished_runs().await.expect("unfinished").len(), 2);
    let cached = port.cached_execution("fp1/p.a".into(), r3.id.clone()).await.expect("cache");
    assert_eq!(cached, Some((r1.id.clone(), r1.dir.clone())), "a successful step of a finished run serves");
    assert_eq!(port.cached_execution("fp1/p.a".into(), r1.id.clone()).await.expect("cache"), None, "not itself");
    assert_eq!(port.cached_execution("fp1/p.b".into(), r3.id.clone()).await.expect("cache"), None, "not a failure");

    // Lineage, in the order added.
    port.add_lineage(r1.id.clone(), vec![edge("x"), edge("y")]).await.expect("lineage");
    port.add_lineage(r1.id.clone(), vec![edge("z")]).await.expect("lineage");
    let edges = port.list_lineage(r1.id.clone()).await.expect("lineage");
    assert_eq!(edges.iter().map(|e| e.to_id.as_str()).collect::<Vec<_>>(), ["x", "y", "z"]);
    port.clear_lineage(r1.id.clone()).await.expect("clear");
    assert!(port.list_lineage(r1.id.clone()).await.expect("lineage").is_empty());

    // Removal: never a pinned or unfinished run; a removed run leaves its tombstone.
    let later = Timestamp::from_unix_micros(Timestamp::now().as_unix_micros() + 3_600_000_000);
    let pinned = port.set_run_pinned(r1.id.clone(), true, None).await.expect("pin");
    assert!(pinned.pinned);
    assert_eq!(port.pinned_run_count().await.expect("count"), 1);
    assert!(port.collectable_runs(later).await.expect("collectable").is_empty(), "a pinned run is kept");
    let refused = port.remove_run(r1.id.clone(), "gc".into(), "old".into(), None).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "a pinned run is not removed");
    port.set_run_pinned(r1.id.clone(), false, None).await.expect("unpin");
    assert_eq!(port.pinned_run_count().await.expect("count"), 0);
    let refused = port.remove_run(r2.id.clone(), "gc".into(), "old".into(), None).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "an unfinished run is not removed");
    let collectable = port.collectable_runs(later).await.expect("collectable");
    assert_eq!(collectable.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [r1.id.as_str()]);
    assert!(port.collectable_runs(r1.created_at).await.expect("collectable").is_empty(), "only older ones");
    assert_eq!(port.tombstone(r1.id.to_string()).await.expect("tombstone"), None);
    let tomb = port.remove_run(r1.id.clone(), "gc".into(), "old".into(), None).await.expect("remove");
    assert_eq!((tomb.kind.as_str(), tomb.id.as_str(), tomb.removed_by.as_str()), ("run", r1.id.as_str(), "gc"));
    assert_eq!(port.tombstone(r1.id.to_string()).await.expect("tombstone"), Some(tomb));
    assert!(matches!(port.get_run(r1.id.clone()).await, Err(StoreError::NotFound(_))));
    assert!(port.list_executions(r1.id.clone()).await.expect("executions").is_empty());

    // Uploads: only an old one no run uses is collectable; its content may still be held.
    assert!(port.collectable_uploads(later).await.expect("collectable").is_empty(), "runs use a and b");
    let c = port.record_upload(new_upload('c', "c.csv"), None).await.expect("an upload").upload;
    let collectable = port.collectable_uploads(later).await.expect("collectable");
    let expected = CollectableUpload { id: c.id.clone(), sha256: c.sha256.clone(), size_bytes: 10 };
    assert_eq!(collectable, [expected]);
    assert!(port.collectable_uploads(c.created_at).await.expect("collectable").is_empty(), "only older ones");
    let refused = port.remove_upload(a.upload.id.clone(), "gc".into(), "old".into(), None).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "an upload a run uses is not removed");
    let missing = port.remove_upload(UploadId::new("nope"), "gc".into(), "old".into(), None).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    assert!(port.blob_in_use(c.sha256.clone()).await.expect("in use"));
    let entry = audit_entry("gc", "uploads.remove", 200);
    let tomb = port.remove_upload(c.id.clone(), "gc".into(), "old".into(), Some(entry)).await.expect("remove");
    assert_eq!(
        (tomb.kind.as_str(), tomb.id.as_str(), tomb.detail["sha256"].as_str()),
        ("upload", c.id.as_str(), Some(c.sha256.as_str()))
    );
    assert!(matches!(port.get_upload(c.id.clone()).await, Err(StoreError::NotFound(_))));
    assert!(!port.blob_in_use(c.sha256.clone()).await.expect("in use"), "no upload holds it now");
    assert!(port.blob_in_use(a.upload.sha256.clone()).await.expect("in use"));
    port.tombstone_blob(c.sha256.clone(), 10, "gc".into(), "unused".into()).await.expect("tombstone");
    let blob = port.tombstone(c.sha256.clone()).await.expect("tombstone").expect("a blob tombstone");
    assert_eq!(
        (blob.kind.as_str(), blob.reason.as_str(), &blob.detail["size_bytes"]),
        ("blob", "unused", &serde_json::json!(10))
    );

    plugins(port.as_ref()).await;
    known_issues(port.as_ref()).await;
}

async fn plugins(port: &dyn Runs) {
    let install = |id: &str, version: &str, bundle: char| {
        port.record_install(
            id.into(),
            version.into(),
            bundle.to_string().repeat(64),
            serde_json::json!({ "network": false }),
            "alice".into(),
            None,
        )
    };
    let first = install("x.p", "1.0.0", 'a').await.expect("install");
    assert_eq!(
        (first.active.version.as_str(), first.active.approved_at, first.previous.clone()),
        ("1.0.0", None, None)
    );
    let refused = port.set_plugin_enabled("x.p".into(), true, None).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "enabling needs approved permissions");
    let before = port.plugins_version().await.expect("version");
    let approved = port.approve_plugin("x.p".into(), "bob".into(), None).await.expect("approve");
    assert!(approved.active.approved_at.is_some() && approved.active.approved_by.as_deref() == Some("bob"));
    let enabled = port.set_plugin_enabled("x.p".into(), true, None).await.expect("enable");
    assert!(enabled.enabled);
    assert_ne!(port.plugins_version().await.expect("version"), before, "a change changes the version");
    let same = install("x.p", "1.0.0", 'a').await.expect("the same bundle again");
    assert_eq!(same.active.seq, first.active.seq, "the same bundle is the same install");
    let second = install("x.p", "2.0.0", 'b').await.expect("an upgrade");
    assert_eq!(second.active.version, "2.0.0");
    assert_eq!(second.previous.as_ref().map(|p| p.version.as_str()), Some("1.0.0"));
    let back = port.rollback_plugin("x.p".into(), None).await.expect("rollback");
    assert_eq!(back.active.version, "1.0.0");
    let single = install("a.p", "0.1.0", 'c').await.expect("install");
    let refused = port.rollback_plugin("a.p".into(), None).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "nothing to roll back to");
    assert!(matches!(port.approve_plugin("nope".into(), "bob".into(), None).await, Err(StoreError::NotFound(_))));
    assert!(matches!(port.rollback_plugin("nope".into(), None).await, Err(StoreError::NotFound(_))));
    let all = port.installed_plugins().await.expect("installed");
    assert_eq!(all.iter().map(|p| p.active.plugin_id.as_str()).collect::<Vec<_>>(), ["a.p", "x.p"], "by id");
    assert_eq!(all[0], single);
}

async fn known_issues(port: &dyn Runs) {
    let save =
        |kind: &str, issues: serde_json::Value| port.save_known_issues(kind.into(), issues, "alice".into(), None);
    let (v1, added) = save("orders", serde_json::json!([{ "kind": "duplicate_keys" }])).await.expect("save");
    assert!(added && v1.version == 1);
    let (same, added) = save("orders", serde_json::json!([{ "kind": "duplicate_keys" }])).await.expect("save");
    assert!(!added && same == v1, "saving what the latest holds adds no version");
    let (v2, added) = save("orders", serde_json::json!([])).await.expect("save");
    assert!(added && v2.version == 2);
    save("ledger", serde_json::json!([])).await.expect("save");
    assert_eq!(port.known_issues("orders".into(), None).await.expect("latest"), v2);
    assert_eq!(port.known_issues("orders".into(), Some(1)).await.expect("v1"), v1);
    assert!(matches!(port.known_issues("orders".into(), Some(9)).await, Err(StoreError::NotFound(_))));
    assert!(matches!(port.known_issues("nope".into(), None).await, Err(StoreError::NotFound(_))));
    let history = port.known_issue_history("orders".into()).await.expect("history");
    assert_eq!(history.iter().map(|s| s.version).collect::<Vec<_>>(), [2, 1], "newest first");
    let latest = port.list_known_issues().await.expect("list");
    let kinds: Vec<(&str, u32)> = latest.iter().map(|s| (s.dataset_kind.as_str(), s.version)).collect();
    assert_eq!(kinds, [("ledger", 1), ("orders", 2)], "the latest of each kind, by kind");
}
