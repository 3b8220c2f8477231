//! The storage ports: one narrow async trait per domain, which the services and the HTTP
//! adapter program against, so a second backend (Postgres, an S3-compatible object store)
//! slots in without their callers changing.
//!
//! | port | what it holds |
//! |---|---|
//! | [`KeysAudit`] | API keys (salted hashes) and the hash-chained audit log |
//! | [`VitalsAgents`] | model-call vitals, what discovery learned per agent, gateway totals |
//! | [`ImmuneLog`] | the immune engine's input log, snapshots, agents' control URLs |
//! | [`Runs`] | uploads, runs with their executions and lineage, plugin installs, known issues, tombstones |
//! | [`Policies`] | each tenant's policy document, every save a version |
//! | [`Budgets`] | budget reservations, hourly spend, the hash-chained ledger |
//! | [`Blobs`] | content-addressed bytes, by stream |
//! | [`Operations`] | health probes, the schema version, closing cleanly |
//!
//! [`Storage`] is all the record ports as one object: what the HTTP adapter holds.
//!
//! The ports are async because the next backends answer over the network; the SQLite
//! [`Store`] and the local [`BlobStore`] implement them by running their blocking code on
//! tokio's blocking pool (or, for a store on a lane, [`Store::on_lane`], on that thread),
//! except bounded reads (a point lookup, or a page of at most [`INLINE_READ_ROWS_MAX`]
//! rows), which try the caller's thread first ([`bounded_read`]). Every backend must pass
//! the same behavioural suite, [`crate::conformance`] (ordering, pagination, filters, error
//! kinds, concurrency, atomicity); backend-specific checks (SQLite's re-prepare counters)
//! stay beside their code.

use std::fmt::Debug;
use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

use serde_json::Value;
use vigil_core::digest::Sha256Digest;
use vigil_core::id::{AgentId, KeyId, PresentedKey, RunId, TenantId, UploadId};
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::run::RunStatus;
use vigil_core::scope::Scope;
use vigil_core::time::Timestamp;
use vigil_core::vitals::Vital;

use crate::{
    ActiveKey, Admission, AgentRecord, AuditEntry, AuditFilter, AuditVerification, BlobInfo, BlobStore, BudgetScope,
    BudgetState, CollectableUpload, ControlUrl, CreatedKey, ExecutionEnd, ExecutionRecord, GatewayStats,
    ImmuneLogEntry, ImmuneSnapshot, InstalledPlugin, KeyRecord, KeysVersion, KnownIssueSet, LedgerEntry,
    LedgerVerification, LineageEdge, NewAuditEntry, NewPolicyVersion, NewReservation, NewRun, NewUpload, PolicyVersion,
    Result, RunRecord, Settled, Settlement, StaleTemps, Store, StoreError, StoredVital, Swept, Tombstone,
    UploadAttempt, UploadRecord, VitalsFilter,
};

/// What a port's method returns: a boxed future, so the ports can be trait objects.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A page of items and the cursor of the next one.
pub type Page<T> = (Vec<T>, Option<Cursor>);

/// API keys and the audit log: one port, because a key's creation or revocation commits
/// together with its audit entry.
pub trait KeysAudit: Send + Sync + Debug {
    /// Creates a key named `name` (1 to 64 letters, digits, space, `.`, `_`, `-`; else
    /// `Invalid`); an active key of that name is a `Conflict`. `audit`, when given, commits
    /// with it.
    fn create_key(
        &self,
        name: String,
        scope: Scope,
        created_by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, CreatedKey>;
    /// Keys, newest first.
    fn list_keys_page(&self, include_revoked: bool, page: PageRequest) -> StoreFuture<'_, Page<KeyRecord>>;
    /// `NotFound` for an unknown id.
    fn get_key(&self, id: KeyId) -> StoreFuture<'_, KeyRecord>;
    /// `NotFound` for an unknown id; `Conflict` if already revoked, or if it is the last
    /// active admin key.
    fn revoke_key(&self, id: KeyId, audit: Option<NewAuditEntry>) -> StoreFuture<'_, KeyRecord>;
    fn has_active_admin_key(&self) -> StoreFuture<'_, bool>;
    fn active_keys(&self) -> StoreFuture<'_, Vec<ActiveKey>>;
    /// Changes whenever a key is created or revoked.
    fn keys_version(&self) -> StoreFuture<'_, KeysVersion>;
    /// The key `text` (`vgl_<id>_<secret>`) names, if it is active and its secret matches.
    fn authenticate(&self, text: String) -> StoreFuture<'_, Option<KeyRecord>>;
    /// Appends to the chain; concurrent appends are serialized, never forked.
    fn append_audit(&self, entry: NewAuditEntry) -> StoreFuture<'_, AuditEntry>;
    /// Entries, newest first, matching every filter given.
    fn list_audit(&self, filter: AuditFilter, page: PageRequest) -> StoreFuture<'_, Page<AuditEntry>>;
    /// Walks the whole chain.
    fn verify_audit(&self) -> StoreFuture<'_, AuditVerification>;
}

/// Model-call vitals and what discovery learned about each agent.
pub trait VitalsAgents: Send + Sync + Debug {
    /// Stores a batch in one transaction and folds it into discovery.
    fn insert_vitals(&self, vitals: Vec<Vital>) -> StoreFuture<'_, ()>;
    /// Vitals, newest first, matching the filter (`from` inclusive, `to` exclusive).
    fn list_vitals(&self, filter: VitalsFilter, page: PageRequest) -> StoreFuture<'_, Page<StoredVital>>;
    /// Agents, most recently discovered first.
    fn list_agents(&self, page: PageRequest) -> StoreFuture<'_, Page<AgentRecord>>;
    /// `NotFound` for an agent never seen.
    fn get_agent(&self, agent_id: AgentId) -> StoreFuture<'_, AgentRecord>;
    /// Totals over `[from, to)`: exact where they fit, saturated beyond; never an error
    /// because of what is stored.
    fn gateway_stats(&self, from: Option<Timestamp>, to: Option<Timestamp>) -> StoreFuture<'_, GatewayStats>;
}

/// The immune engine's durable memory.
pub trait ImmuneLog: Send + Sync + Debug {
    /// Appends inputs whose `seq`s continue the log, in one transaction; a `seq` already
    /// logged is a `Conflict` and nothing of the batch is kept.
    fn append_immune_log(&self, entries: Vec<ImmuneLogEntry>) -> StoreFuture<'_, ()>;
    /// Up to `limit` inputs after `seq`, oldest first.
    fn immune_log_after(&self, seq: i64, limit: usize) -> StoreFuture<'_, Vec<ImmuneLogEntry>>;
    /// The newest logged `seq`, 0 for an empty log.
    fn last_immune_seq(&self) -> StoreFuture<'_, i64>;
    /// Saves the state after `seq`; keeps the newest [`crate::immune::SNAPSHOTS_KEPT`] and
    /// drops the log no kept snapshot needs.
    fn save_immune_snapshot(&self, seq: i64, state: String) -> StoreFuture<'_, ()>;
    /// Kept snapshots, newest first.
    fn immune_snapshots(&self) -> StoreFuture<'_, Vec<ImmuneSnapshot>>;
    /// Registers (or replaces) where an agent receives healing actions.
    fn set_control_url(&self, agent_id: AgentId, url: String, by: String) -> StoreFuture<'_, ControlUrl>;
    /// Whether there was one to remove.
    fn remove_control_url(&self, agent_id: AgentId) -> StoreFuture<'_, bool>;
    fn control_url(&self, agent_id: AgentId) -> StoreFuture<'_, Option<ControlUrl>>;
    /// The replay file, read consistently (a snapshot taken meanwhile cannot prune the log
    /// under it): the oldest kept snapshot as `{"seq", "snapshot"}`, then every logged input
    /// after it as `{"seq", "input", "decisions"}`, one JSON text per line.
    fn export_immune(&self) -> StoreFuture<'_, Vec<u8>>;
}

/// What the harness keeps about its work: uploads, runs (with a pending execution per
/// planned plugin, their results and lineage), plugin installs, known issues, and the
/// tombstones of what garbage collection removed. Every change that takes an `audit` entry
/// commits with it.
pub trait Runs: Send + Sync + Debug {
    /// Records an upload of stored content. The same content again is the same upload
    /// (`reused`), with a new attempt id; a file name is cleaned to a plain name.
    fn record_upload(&self, new: NewUpload, audit: Option<NewAuditEntry>) -> StoreFuture<'_, UploadAttempt>;
    /// `NotFound` for an unknown id.
    fn get_upload(&self, id: UploadId) -> StoreFuture<'_, UploadRecord>;
    /// Uploads, newest first.
    fn list_uploads_page(&self, page: PageRequest) -> StoreFuture<'_, Page<UploadRecord>>;

    /// A queued run with a pending execution per step.
    fn create_run(&self, new: NewRun, audit: Option<NewAuditEntry>) -> StoreFuture<'_, RunRecord>;
    /// `NotFound` for an unknown id.
    fn get_run(&self, id: RunId) -> StoreFuture<'_, RunRecord>;
    /// The newest completed run with this fingerprint.
    fn completed_run_with_fingerprint(&self, fingerprint: String) -> StoreFuture<'_, Option<RunRecord>>;
    /// Runs, newest first, of one status when given.
    fn list_runs_page(&self, status: Option<RunStatus>, page: PageRequest) -> StoreFuture<'_, Page<RunRecord>>;
    /// Moves a run to `status`: running stamps `started_at`, a final status `finished_at`.
    fn set_run_status(
        &self,
        id: RunId,
        status: RunStatus,
        error: Option<String>,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, RunRecord>;
    fn set_run_pinned(&self, id: RunId, pinned: bool, audit: Option<NewAuditEntry>) -> StoreFuture<'_, RunRecord>;
    /// Runs queued or running, for crash recovery.
    fn unfinished_runs(&self) -> StoreFuture<'_, Vec<RunRecord>>;
    /// A run's executions, by layer then plugin id.
    fn list_executions(&self, run_id: RunId) -> StoreFuture<'_, Vec<ExecutionRecord>>;
    fn start_execution(&self, run_id: RunId, plugin_id: String) -> StoreFuture<'_, ()>;
    fn finish_execution(&self, run_id: RunId, plugin_id: String, end: ExecutionEnd) -> StoreFuture<'_, ()>;
    /// The newest successful execution of another completed run with this cache key:
    /// (its run's id, its run's folder).
    fn cached_execution(&self, cache_key: String, exclude_run: RunId) -> StoreFuture<'_, Option<(RunId, String)>>;
    fn add_lineage(&self, run_id: RunId, edges: Vec<LineageEdge>) -> StoreFuture<'_, ()>;
    /// A run's lineage edges, in the order added.
    fn list_lineage(&self, run_id: RunId) -> StoreFuture<'_, Vec<LineageEdge>>;
    fn clear_lineage(&self, run_id: RunId) -> StoreFuture<'_, ()>;
    /// Finished, unpinned runs older than `cutoff`.
    fn collectable_runs(&self, cutoff: Timestamp) -> StoreFuture<'_, Vec<RunRecord>>;
    /// Removes a run, leaving its tombstone.
    fn remove_run(
        &self,
        id: RunId,
        by: String,
        reason: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, Tombstone>;
    /// How many runs are pinned (kept whatever their age).
    fn pinned_run_count(&self) -> StoreFuture<'_, u64>;
    /// Uploads created before `cutoff` that no run uses, oldest first.
    fn collectable_uploads(&self, cutoff: Timestamp) -> StoreFuture<'_, Vec<CollectableUpload>>;
    /// Removes an upload and its attempts, leaving its tombstone; `Conflict` while a run
    /// uses it, `NotFound` for an unknown id.
    fn remove_upload(
        &self,
        id: UploadId,
        by: String,
        reason: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, Tombstone>;
    /// Whether any upload holds this content.
    fn blob_in_use(&self, sha256: String) -> StoreFuture<'_, bool>;
    /// Records that a blob was removed.
    fn tombstone_blob(&self, sha256: String, size_bytes: u64, by: String, reason: String) -> StoreFuture<'_, ()>;
    /// What garbage collection removed under `id`, if anything.
    fn tombstone(&self, id: String) -> StoreFuture<'_, Option<Tombstone>>;

    /// Records a plugin bundle's install; installing the same bundle again changes nothing.
    fn record_install(
        &self,
        plugin_id: String,
        version: String,
        bundle_sha256: String,
        permissions: Value,
        by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, InstalledPlugin>;
    /// Approves the active install's permissions. `NotFound` for an unknown plugin.
    fn approve_plugin(
        &self,
        plugin_id: String,
        by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, InstalledPlugin>;
    /// Enabling needs approved permissions (else `Conflict`).
    fn set_plugin_enabled(
        &self,
        plugin_id: String,
        enabled: bool,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, InstalledPlugin>;
    /// Makes the previous install active again (`Conflict` when there is none).
    fn rollback_plugin(&self, plugin_id: String, audit: Option<NewAuditEntry>) -> StoreFuture<'_, InstalledPlugin>;
    /// Every installed plugin, by id.
    fn installed_plugins(&self) -> StoreFuture<'_, Vec<InstalledPlugin>>;
    /// Changes whenever an install, approval, enabling or rollback does.
    fn plugins_version(&self) -> StoreFuture<'_, String>;

    /// Saves the next version of a dataset kind's known issues; saving what the latest
    /// holds adds none and returns it (`false`).
    fn save_known_issues(
        &self,
        dataset_kind: String,
        issues: Value,
        by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, (KnownIssueSet, bool)>;
    /// A version, the latest when `None`. `NotFound` when there is none.
    fn known_issues(&self, dataset_kind: String, version: Option<u32>) -> StoreFuture<'_, KnownIssueSet>;
    /// Every version, newest first.
    fn known_issue_history(&self, dataset_kind: String) -> StoreFuture<'_, Vec<KnownIssueSet>>;
    /// The latest version of every dataset kind, by kind.
    fn list_known_issues(&self) -> StoreFuture<'_, Vec<KnownIssueSet>>;
}

/// Each tenant's policy document, every save an immutable version. A save commits with its
/// audit entry.
pub trait Policies: Send + Sync + Debug {
    /// Saves the next version; a document equal to the latest adds none and returns it
    /// (`false`). `Conflict` when `based_on` is not the latest version.
    fn save_policy(
        &self,
        new: NewPolicyVersion,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, (PolicyVersion, bool)>;
    /// A version, the latest when `None`. `NotFound` when there is none.
    fn policy(&self, tenant: TenantId, version: Option<u32>) -> StoreFuture<'_, PolicyVersion>;
    /// Every version, newest first.
    fn policy_history(&self, tenant: TenantId, page: PageRequest) -> StoreFuture<'_, Page<PolicyVersion>>;
}

/// Budgets that hold (see [`crate::budgets`]): reservations admitted across every budget
/// a call falls under, all or nothing; idempotent settlement; expiry of abandoned leases;
/// the ledger that records each and from which every counter can be recomputed.
pub trait Budgets: Send + Sync + Debug {
    /// Admits a reservation, or refuses it naming the first hard budget without room;
    /// concurrent admissions never together exceed a hard budget.
    fn admit(&self, new: NewReservation) -> StoreFuture<'_, Admission>;
    /// Settles each reservation at most once, all in one transaction.
    fn settle(&self, settlements: Vec<Settlement>) -> StoreFuture<'_, Vec<Settled>>;
    /// Expires reservations whose lease ended before `now`, charging their input cost.
    fn sweep_reservations(&self, now: Timestamp) -> StoreFuture<'_, Swept>;
    /// How many reservations are held (admitted, not settled, not expired).
    fn held_reservations(&self) -> StoreFuture<'_, u64>;
    /// Where each scope stands: spent in its window and held.
    fn budget_states(&self, tenant: TenantId, scopes: Vec<BudgetScope>) -> StoreFuture<'_, Vec<BudgetState>>;
    /// The subjects a budget counted since `since` (at most 1,000).
    fn budget_subjects(&self, tenant: TenantId, budget: String, since: Timestamp) -> StoreFuture<'_, Vec<String>>;
    /// A tenant's ledger, newest first.
    fn ledger(&self, tenant: TenantId, page: PageRequest) -> StoreFuture<'_, Page<LedgerEntry>>;
    /// Walks the whole ledger: the chain, and every counter recomputed from it.
    fn verify_ledger(&self) -> StoreFuture<'_, LedgerVerification>;
    /// Makes every decision so far durable (a backend that writes as it decides does
    /// nothing); called at shutdown, after the last settlement.
    fn flush(&self) -> StoreFuture<'_, ()>;
    /// Settles at once, on the caller's thread, when the backend can without waiting on IO
    /// (it decides in memory); `None` otherwise, and the caller settles through `settle`.
    fn settle_now(&self, _settlement: &Settlement) -> Option<Result<Settled>> {
        None
    }
}

/// What operating a backend needs beside its records.
pub trait Operations: Send + Sync + Debug {
    /// Proves a write reaches durable storage now (a readiness probe).
    fn check_writable(&self) -> StoreFuture<'_, ()>;
    /// The version of the schema the backend holds.
    fn schema_version(&self) -> StoreFuture<'_, i64>;
    /// Flushes what is pending; called once at shutdown, after the last write.
    fn close(&self) -> StoreFuture<'_, ()>;
}

/// Every record port as one object.
pub trait Storage: KeysAudit + VitalsAgents + ImmuneLog + Runs + Policies + Budgets + Operations {}

impl<T: KeysAudit + VitalsAgents + ImmuneLog + Runs + Policies + Budgets + Operations + ?Sized> Storage for T {}

/// Content-addressed bytes.
pub trait Blobs: Send + Sync + Debug {
    /// Streams `content` in: hashed, capped (`TooLarge` past the cap, leaving nothing),
    /// verified and made visible under its digest at once; `existed` says it was already
    /// there. Concurrent writers of the same content all succeed, exactly one writes.
    fn put(&self, content: Box<dyn Read + Send>) -> StoreFuture<'_, BlobInfo>;
    /// A reader of the blob, or `None` if it is not stored.
    fn open(&self, digest: Sha256Digest) -> StoreFuture<'_, Option<Box<dyn Read + Send>>>;
    /// The blob's bytes as the local file `dest` (replacing what was there), for a process
    /// that can only open a path: the one explicit way from a blob to a file. `NotFound`
    /// when it is not stored.
    fn materialize(&self, digest: Sha256Digest, dest: PathBuf) -> StoreFuture<'_, ()>;
    fn contains(&self, digest: Sha256Digest) -> StoreFuture<'_, bool>;
    /// Removes the blob; returns its size, 0 if it was not stored.
    fn remove(&self, digest: Sha256Digest) -> StoreFuture<'_, u64>;
    /// Every blob with its size and when it was written.
    fn list(&self) -> StoreFuture<'_, Vec<(Sha256Digest, u64, SystemTime)>>;
    /// Whether the stored bytes still hash to their address.
    fn verify(&self, digest: Sha256Digest) -> StoreFuture<'_, bool>;
    /// Removes what writers that died left behind (or, in a dry run, counts it).
    fn remove_stale_temps(&self, dry_run: bool) -> StoreFuture<'_, StaleTemps>;
    /// Proves a write reaches the store now (a readiness probe).
    fn check_writable(&self) -> StoreFuture<'_, ()>;
}

/// Runs blocking storage code on tokio's blocking pool.
fn blocking<S, T>(backend: &S, work: impl FnOnce(&S) -> Result<T> + Send + 'static) -> StoreFuture<'static, T>
where
    S: Clone + Send + 'static,
    T: Send + 'static,
{
    let backend = backend.clone();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || work(&backend)).await.map_err(|e| StoreError::Io {
            context: "a storage task".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
    })
}

/// Runs the SQLite store's blocking code where the store says: its lane, or the blocking
/// pool.
fn on_store<T>(store: &Store, work: impl FnOnce(&Store) -> Result<T> + Send + 'static) -> StoreFuture<'static, T>
where
    T: Send + 'static,
{
    let Some(lane) = store.lane().cloned() else { return blocking(store, work) };
    let store = store.clone();
    Box::pin(async move {
        lane.run(move || work(&store)).await.map_err(|e| StoreError::Io {
            context: "a storage lane".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
    })
}

/// Largest number of rows a read may return and still run on the caller's thread.
pub const INLINE_READ_ROWS_MAX: u32 = 100;

/// A bounded read of at most `rows` rows: on the caller's (async) thread when `rows` is at
/// most [`INLINE_READ_ROWS_MAX`], else on the blocking pool. Such reads hit SQLite's page
/// cache and take tens of microseconds, within tokio's guidance for time between awaits,
/// while handing them to the blocking pool costs about as much again in thread wake-ups
/// (measured: +17 % throughput on the audit list). The inline read never waits on a lock:
/// if SQLite reports the database busy it moves to the blocking pool, never to the store's
/// lane, where it would queue behind writes it does not need to wait for.
fn bounded_read<T>(
    store: &Store,
    rows: u32,
    work: impl Fn(&Store) -> Result<T> + Send + 'static,
) -> StoreFuture<'static, T>
where
    T: Send + 'static,
{
    let store = store.clone();
    Box::pin(async move {
        if rows <= INLINE_READ_ROWS_MAX {
            match work(&store.nowait()) {
                Err(StoreError::Busy) => {}
                done => return done,
            }
        }
        blocking(&store, work).await
    })
}

impl KeysAudit for Store {
    fn create_key(
        &self,
        name: String,
        scope: Scope,
        created_by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, CreatedKey> {
        on_store(self, move |s| s.create_key(&name, scope, &created_by, audit.as_ref()))
    }
    fn list_keys_page(&self, include_revoked: bool, page: PageRequest) -> StoreFuture<'_, Page<KeyRecord>> {
        bounded_read(self, page.limit, move |s| s.list_keys_page(include_revoked, page))
    }
    fn get_key(&self, id: KeyId) -> StoreFuture<'_, KeyRecord> {
        bounded_read(self, 1, move |s| s.get_key(id))
    }
    fn revoke_key(&self, id: KeyId, audit: Option<NewAuditEntry>) -> StoreFuture<'_, KeyRecord> {
        on_store(self, move |s| s.revoke_key(id, audit.as_ref()))
    }
    fn has_active_admin_key(&self) -> StoreFuture<'_, bool> {
        on_store(self, Store::has_active_admin_key)
    }
    fn active_keys(&self) -> StoreFuture<'_, Vec<ActiveKey>> {
        on_store(self, Store::active_keys)
    }
    fn keys_version(&self) -> StoreFuture<'_, KeysVersion> {
        on_store(self, Store::keys_version)
    }
    fn authenticate(&self, text: String) -> StoreFuture<'_, Option<KeyRecord>> {
        bounded_read(self, 1, move |s| match PresentedKey::parse(&text) {
            Some(presented) => s.authenticate(presented),
            None => Ok(None),
        })
    }
    fn append_audit(&self, entry: NewAuditEntry) -> StoreFuture<'_, AuditEntry> {
        on_store(self, move |s| s.append_audit(&entry))
    }
    fn list_audit(&self, filter: AuditFilter, page: PageRequest) -> StoreFuture<'_, Page<AuditEntry>> {
        bounded_read(self, page.limit, move |s| s.list_audit(&filter, page))
    }
    fn verify_audit(&self) -> StoreFuture<'_, AuditVerification> {
        on_store(self, Store::verify_audit)
    }
}

impl VitalsAgents for Store {
    fn insert_vitals(&self, vitals: Vec<Vital>) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.insert_vitals(&vitals))
    }
    fn list_vitals(&self, filter: VitalsFilter, page: PageRequest) -> StoreFuture<'_, Page<StoredVital>> {
        bounded_read(self, page.limit, move |s| s.list_vitals(&filter, page))
    }
    fn list_agents(&self, page: PageRequest) -> StoreFuture<'_, Page<AgentRecord>> {
        bounded_read(self, page.limit, move |s| s.list_agents(page))
    }
    fn get_agent(&self, agent_id: AgentId) -> StoreFuture<'_, AgentRecord> {
        bounded_read(self, 1, move |s| s.get_agent(&agent_id))
    }
    fn gateway_stats(&self, from: Option<Timestamp>, to: Option<Timestamp>) -> StoreFuture<'_, GatewayStats> {
        on_store(self, move |s| s.gateway_stats(from, to))
    }
}

impl ImmuneLog for Store {
    fn append_immune_log(&self, entries: Vec<ImmuneLogEntry>) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.append_immune_log(&entries))
    }
    fn immune_log_after(&self, seq: i64, limit: usize) -> StoreFuture<'_, Vec<ImmuneLogEntry>> {
        on_store(self, move |s| s.immune_log_after(seq, limit))
    }
    fn last_immune_seq(&self) -> StoreFuture<'_, i64> {
        on_store(self, Store::last_immune_seq)
    }
    fn save_immune_snapshot(&self, seq: i64, state: String) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.save_immune_snapshot(seq, &state))
    }
    fn immune_snapshots(&self) -> StoreFuture<'_, Vec<ImmuneSnapshot>> {
        on_store(self, Store::immune_snapshots)
    }
    fn set_control_url(&self, agent_id: AgentId, url: String, by: String) -> StoreFuture<'_, ControlUrl> {
        on_store(self, move |s| s.set_control_url(&agent_id, &url, &by))
    }
    fn remove_control_url(&self, agent_id: AgentId) -> StoreFuture<'_, bool> {
        on_store(self, move |s| s.remove_control_url(&agent_id))
    }
    fn control_url(&self, agent_id: AgentId) -> StoreFuture<'_, Option<ControlUrl>> {
        bounded_read(self, 1, move |s| s.control_url(&agent_id))
    }
    fn export_immune(&self) -> StoreFuture<'_, Vec<u8>> {
        on_store(self, |s| {
            let mut out = Vec::new();
            s.export_immune(&mut |line| {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
                Ok(())
            })?;
            Ok(out)
        })
    }
}

impl Runs for Store {
    fn record_upload(&self, new: NewUpload, audit: Option<NewAuditEntry>) -> StoreFuture<'_, UploadAttempt> {
        on_store(self, move |s| s.record_upload(&new, audit.as_ref()))
    }
    fn get_upload(&self, id: UploadId) -> StoreFuture<'_, UploadRecord> {
        bounded_read(self, 1, move |s| s.get_upload(id.as_str()))
    }
    fn list_uploads_page(&self, page: PageRequest) -> StoreFuture<'_, Page<UploadRecord>> {
        bounded_read(self, page.limit, move |s| s.list_uploads_page(page))
    }
    fn create_run(&self, new: NewRun, audit: Option<NewAuditEntry>) -> StoreFuture<'_, RunRecord> {
        on_store(self, move |s| s.create_run(&new, audit.as_ref()))
    }
    fn get_run(&self, id: RunId) -> StoreFuture<'_, RunRecord> {
        bounded_read(self, 1, move |s| s.get_run(id.as_str()))
    }
    fn completed_run_with_fingerprint(&self, fingerprint: String) -> StoreFuture<'_, Option<RunRecord>> {
        on_store(self, move |s| s.completed_run_with_fingerprint(&fingerprint))
    }
    fn list_runs_page(&self, status: Option<RunStatus>, page: PageRequest) -> StoreFuture<'_, Page<RunRecord>> {
        bounded_read(self, page.limit, move |s| s.list_runs_page(status, page))
    }
    fn set_run_status(
        &self,
        id: RunId,
        status: RunStatus,
        error: Option<String>,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, RunRecord> {
        on_store(self, move |s| s.set_run_status(id.as_str(), status, error.as_deref(), audit.as_ref()))
    }
    fn set_run_pinned(&self, id: RunId, pinned: bool, audit: Option<NewAuditEntry>) -> StoreFuture<'_, RunRecord> {
        on_store(self, move |s| s.set_run_pinned(id.as_str(), pinned, audit.as_ref()))
    }
    fn unfinished_runs(&self) -> StoreFuture<'_, Vec<RunRecord>> {
        on_store(self, Store::unfinished_runs)
    }
    fn list_executions(&self, run_id: RunId) -> StoreFuture<'_, Vec<ExecutionRecord>> {
        on_store(self, move |s| s.list_executions(run_id.as_str()))
    }
    fn start_execution(&self, run_id: RunId, plugin_id: String) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.start_execution(run_id.as_str(), &plugin_id))
    }
    fn finish_execution(&self, run_id: RunId, plugin_id: String, end: ExecutionEnd) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.finish_execution(run_id.as_str(), &plugin_id, &end))
    }
    fn cached_execution(&self, cache_key: String, exclude_run: RunId) -> StoreFuture<'_, Option<(RunId, String)>> {
        on_store(self, move |s| s.cached_execution(&cache_key, exclude_run.as_str()))
    }
    fn add_lineage(&self, run_id: RunId, edges: Vec<LineageEdge>) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.add_lineage(run_id.as_str(), &edges))
    }
    fn list_lineage(&self, run_id: RunId) -> StoreFuture<'_, Vec<LineageEdge>> {
        on_store(self, move |s| s.list_lineage(run_id.as_str()))
    }
    fn clear_lineage(&self, run_id: RunId) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.clear_lineage(run_id.as_str()))
    }
    fn collectable_runs(&self, cutoff: Timestamp) -> StoreFuture<'_, Vec<RunRecord>> {
        on_store(self, move |s| s.collectable_runs(cutoff))
    }
    fn remove_run(
        &self,
        id: RunId,
        by: String,
        reason: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, Tombstone> {
        on_store(self, move |s| s.remove_run(id.as_str(), &by, &reason, audit.as_ref()))
    }
    fn pinned_run_count(&self) -> StoreFuture<'_, u64> {
        on_store(self, Store::pinned_run_count)
    }
    fn collectable_uploads(&self, cutoff: Timestamp) -> StoreFuture<'_, Vec<CollectableUpload>> {
        on_store(self, move |s| s.collectable_uploads(cutoff))
    }
    fn remove_upload(
        &self,
        id: UploadId,
        by: String,
        reason: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, Tombstone> {
        on_store(self, move |s| s.remove_upload(id.as_str(), &by, &reason, audit.as_ref()))
    }
    fn blob_in_use(&self, sha256: String) -> StoreFuture<'_, bool> {
        bounded_read(self, 1, move |s| s.blob_in_use(&sha256))
    }
    fn tombstone_blob(&self, sha256: String, size_bytes: u64, by: String, reason: String) -> StoreFuture<'_, ()> {
        on_store(self, move |s| s.tombstone_blob(&sha256, size_bytes, &by, &reason))
    }
    fn tombstone(&self, id: String) -> StoreFuture<'_, Option<Tombstone>> {
        bounded_read(self, 1, move |s| s.tombstone(&id))
    }
    fn record_install(
        &self,
        plugin_id: String,
        version: String,
        bundle_sha256: String,
        permissions: Value,
        by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, InstalledPlugin> {
        on_store(self, move |s| {
            s.record_install(&plugin_id, &version, &bundle_sha256, &permissions, &by, audit.as_ref())
        })
    }
    fn approve_plugin(
        &self,
        plugin_id: String,
        by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, InstalledPlugin> {
        on_store(self, move |s| s.approve_plugin(&plugin_id, &by, audit.as_ref()))
    }
    fn set_plugin_enabled(
        &self,
        plugin_id: String,
        enabled: bool,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, InstalledPlugin> {
        on_store(self, move |s| s.set_plugin_enabled(&plugin_id, enabled, audit.as_ref()))
    }
    fn rollback_plugin(&self, plugin_id: String, audit: Option<NewAuditEntry>) -> StoreFuture<'_, InstalledPlugin> {
        on_store(self, move |s| s.rollback_plugin(&plugin_id, audit.as_ref()))
    }
    fn installed_plugins(&self) -> StoreFuture<'_, Vec<InstalledPlugin>> {
        on_store(self, Store::installed_plugins)
    }
    fn plugins_version(&self) -> StoreFuture<'_, String> {
        on_store(self, Store::plugins_version)
    }
    fn save_known_issues(
        &self,
        dataset_kind: String,
        issues: Value,
        by: String,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, (KnownIssueSet, bool)> {
        on_store(self, move |s| s.save_known_issues(&dataset_kind, &issues, &by, audit.as_ref()))
    }
    fn known_issues(&self, dataset_kind: String, version: Option<u32>) -> StoreFuture<'_, KnownIssueSet> {
        bounded_read(self, 1, move |s| s.known_issues(&dataset_kind, version))
    }
    fn known_issue_history(&self, dataset_kind: String) -> StoreFuture<'_, Vec<KnownIssueSet>> {
        on_store(self, move |s| s.known_issue_history(&dataset_kind))
    }
    fn list_known_issues(&self) -> StoreFuture<'_, Vec<KnownIssueSet>> {
        on_store(self, Store::list_known_issues)
    }
}

impl Policies for Store {
    fn save_policy(
        &self,
        new: NewPolicyVersion,
        audit: Option<NewAuditEntry>,
    ) -> StoreFuture<'_, (PolicyVersion, bool)> {
        on_store(self, move |s| s.save_policy(&new, audit.as_ref()))
    }
    fn policy(&self, tenant: TenantId, version: Option<u32>) -> StoreFuture<'_, PolicyVersion> {
        bounded_read(self, 1, move |s| s.policy(&tenant, version))
    }
    fn policy_history(&self, tenant: TenantId, page: PageRequest) -> StoreFuture<'_, Page<PolicyVersion>> {
        bounded_read(self, page.limit, move |s| s.policy_history(&tenant, page))
    }
}

impl Budgets for Store {
    fn admit(&self, new: NewReservation) -> StoreFuture<'_, Admission> {
        on_store(self, move |s| s.admit(&new))
    }
    fn settle(&self, settlements: Vec<Settlement>) -> StoreFuture<'_, Vec<Settled>> {
        on_store(self, move |s| s.settle(&settlements))
    }
    fn sweep_reservations(&self, now: Timestamp) -> StoreFuture<'_, Swept> {
        on_store(self, move |s| s.sweep_reservations(now))
    }
    fn held_reservations(&self) -> StoreFuture<'_, u64> {
        bounded_read(self, 1, Store::held_reservations)
    }
    fn budget_states(&self, tenant: TenantId, scopes: Vec<BudgetScope>) -> StoreFuture<'_, Vec<BudgetState>> {
        on_store(self, move |s| s.budget_states(&tenant, &scopes))
    }
    fn budget_subjects(&self, tenant: TenantId, budget: String, since: Timestamp) -> StoreFuture<'_, Vec<String>> {
        on_store(self, move |s| s.budget_subjects(&tenant, &budget, since))
    }
    fn ledger(&self, tenant: TenantId, page: PageRequest) -> StoreFuture<'_, Page<LedgerEntry>> {
        bounded_read(self, page.limit, move |s| s.ledger(&tenant, page))
    }
    fn verify_ledger(&self) -> StoreFuture<'_, LedgerVerification> {
        on_store(self, Store::verify_ledger)
    }
    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// Decided in memory, written behind (see [`crate::budget_memory`]); what reads the
/// database (subjects, the ledger, its verification) flushes first, off the async thread.
impl Budgets for crate::MemoryBudgets {
    fn admit(&self, new: NewReservation) -> StoreFuture<'_, Admission> {
        Box::pin(async move { crate::MemoryBudgets::admit(self, new) })
    }
    fn settle(&self, settlements: Vec<Settlement>) -> StoreFuture<'_, Vec<Settled>> {
        Box::pin(async move { crate::MemoryBudgets::settle(self, settlements) })
    }
    fn sweep_reservations(&self, now: Timestamp) -> StoreFuture<'_, Swept> {
        Box::pin(async move { self.sweep(now) })
    }
    fn held_reservations(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { Ok(self.held_count()) })
    }
    fn budget_states(&self, tenant: TenantId, scopes: Vec<BudgetScope>) -> StoreFuture<'_, Vec<BudgetState>> {
        Box::pin(async move { self.states(&tenant, scopes) })
    }
    fn budget_subjects(&self, tenant: TenantId, budget: String, since: Timestamp) -> StoreFuture<'_, Vec<String>> {
        flushed(self, move |s| s.budget_subjects(&tenant, &budget, since))
    }
    fn ledger(&self, tenant: TenantId, page: PageRequest) -> StoreFuture<'_, Page<LedgerEntry>> {
        flushed(self, move |s| s.ledger(&tenant, page))
    }
    fn verify_ledger(&self) -> StoreFuture<'_, LedgerVerification> {
        flushed(self, Store::verify_ledger)
    }
    fn flush(&self) -> StoreFuture<'_, ()> {
        flushed(self, |_| Ok(()))
    }
    fn settle_now(&self, settlement: &Settlement) -> Option<Result<Settled>> {
        let settled = crate::MemoryBudgets::settle(self, vec![settlement.clone()]);
        Some(settled.and_then(|mut all| all.pop().ok_or_else(|| StoreError::Invalid("no settlement".to_owned()))))
    }
}

/// Commits what the memory budgets decided, then runs `work` on the store, on the
/// blocking pool.
fn flushed<T: Send + 'static>(
    budgets: &crate::MemoryBudgets,
    work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> StoreFuture<'static, T> {
    let budgets = budgets.clone();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || {
            budgets.flush()?;
            work(budgets.store())
        })
        .await
        .map_err(|e| StoreError::Io {
            context: "the budget writer".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
    })
}

impl Operations for Store {
    fn check_writable(&self) -> StoreFuture<'_, ()> {
        on_store(self, Store::check_writable)
    }
    fn schema_version(&self) -> StoreFuture<'_, i64> {
        bounded_read(self, 1, Store::schema_version)
    }
    fn close(&self) -> StoreFuture<'_, ()> {
        on_store(self, Store::close)
    }
}

impl Blobs for BlobStore {
    fn put(&self, content: Box<dyn Read + Send>) -> StoreFuture<'_, BlobInfo> {
        blocking(self, move |b| b.put(content))
    }
    fn open(&self, digest: Sha256Digest) -> StoreFuture<'_, Option<Box<dyn Read + Send>>> {
        blocking(self, move |b| Ok(b.open_blob(&digest)?.map(|file| Box::new(file) as Box<dyn Read + Send>)))
    }
    fn materialize(&self, digest: Sha256Digest, dest: PathBuf) -> StoreFuture<'_, ()> {
        blocking(self, move |b| b.materialize(&digest, &dest))
    }
    fn contains(&self, digest: Sha256Digest) -> StoreFuture<'_, bool> {
        blocking(self, move |b| Ok(b.contains(&digest)))
    }
    fn remove(&self, digest: Sha256Digest) -> StoreFuture<'_, u64> {
        blocking(self, move |b| b.remove(&digest))
    }
    fn list(&self) -> StoreFuture<'_, Vec<(Sha256Digest, u64, SystemTime)>> {
        blocking(self, BlobStore::list)
    }
    fn verify(&self, digest: Sha256Digest) -> StoreFuture<'_, bool> {
        blocking(self, move |b| b.verify(&digest))
    }
    fn remove_stale_temps(&self, dry_run: bool) -> StoreFuture<'_, StaleTemps> {
        blocking(self, move |b| b.remove_stale_temps(dry_run))
    }
    fn check_writable(&self) -> StoreFuture<'_, ()> {
        blocking(self, BlobStore::check_writable)
    }
}

/// The SQLite store and the local blob folder against the conformance suite.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::conformance;

    use crate::temp_store as store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_keeps_keys_and_the_audit_log_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::keys_audit(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_keeps_vitals_and_agents_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::vitals_agents(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_keeps_the_immune_log_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::immune_log(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_keeps_runs_plugins_and_known_issues_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::runs(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_keeps_policy_versions_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::policies(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_holds_budgets_and_their_ledger_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::budgets(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn budgets_decided_in_memory_behave_as_every_backend_must() {
        let (_dir, store) = store();
        let budgets = crate::MemoryBudgets::start(store.clone()).expect("the budget writer");
        conformance::budgets(Arc::new(budgets.clone())).await;
        // What it wrote behind is what the store itself would have written.
        budgets.flush().expect("flush");
        assert!(store.verify_ledger().expect("verify").intact());
    }

    /// A bounded read runs on the caller's thread unless the database is busy; a larger
    /// one runs on the blocking pool.
    #[tokio::test]
    async fn bounded_reads_run_inline_and_fall_back_to_the_blocking_pool() {
        let (_dir, store) = store();
        let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = attempts.clone();
        let here = std::thread::current().id();
        let value = bounded_read(&store, 1, move |_| {
            // Busy on the first (inline) attempt, fine on the retry.
            match counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Err(StoreError::Busy),
                _ => Ok(std::thread::current().id()),
            }
        })
        .await
        .expect("retried");
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_ne!(value, here, "the retry left the caller's thread");
        let small = bounded_read(&store, INLINE_READ_ROWS_MAX, |_| Ok(std::thread::current().id())).await;
        assert_eq!(small.expect("read"), here, "a small read stays on the caller's thread");
        let big = bounded_read(&store, INLINE_READ_ROWS_MAX + 1, |_| Ok(std::thread::current().id())).await;
        assert_ne!(big.expect("read"), here, "a large read leaves the caller's thread");
    }

    /// A store on a lane runs its port calls there, and behaves as every backend must.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_on_a_lane_writes_there() {
        let (_dir, store) = store();
        let lane = crate::background::Background::start("test-lane", crate::background::Priority::Lower);
        let laned = store.on_lane(lane.expect("lane"));
        let name = on_store(&laned, |_| Ok(std::thread::current().name().map(str::to_owned))).await;
        assert_eq!(name.expect("ran").as_deref(), Some("test-lane"));
        let pooled = on_store(&store, |_| Ok(std::thread::current().name().map(str::to_owned))).await;
        assert_ne!(pooled.expect("ran").as_deref(), Some("test-lane"));
        conformance::vitals_agents(Arc::new(laned.clone())).await;
        conformance::immune_log(Arc::new(laned)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_is_operated_as_every_backend_must() {
        let (_dir, store) = store();
        conformance::operations(Arc::new(store), crate::migrations::head_version()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_blob_folder_keeps_blobs_as_every_backend_must() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(&dir.path().join("blobs"), 1 << 20).expect("blobs");
        let scratch = tempfile::tempdir().expect("scratch");
        conformance::blobs(Arc::new(blobs), 1 << 20, scratch.path()).await;
    }
}
