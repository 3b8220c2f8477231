//! Vigil's services: the runtimes between the HTTP adapter and storage.
//!
//! A service owns tasks, queues and executors, and talks to the outside through ports: the
//! store, and [`outbound::ControlSender`] for requests sent on a caller's behalf. No HTTP
//! framework or HTTP stack is in this crate's dependency tree (`scripts/test.sh` checks),
//! so the server translates HTTP to calls on these services and their refusals to
//! statuses, and the binary composes them.
//!
//! - [`batch`]: the one batching queue writers drain (the vitals recorder, the immune
//!   engine task): a fill window, cut short by urgent pushes and a half-full queue.
//! - [`governance`]: each tenant's policy document, validated and statically checked
//!   before it is saved as an immutable version; rollback to any version.
//! - [`immune`]: the immune service. Its engine task applies timestamped inputs to the pure
//!   [`vigil_immune::engine::Engine`], logs them with their decisions, snapshots the state,
//!   restores it at start, and carries out healing actions through its [`immune::Executor`];
//!   its [`immune::ImmuneGuard`] is the gateway's lifecycle rule.
//! - [`vitals`]: the one road a reported call takes to become a vital, with its bounds and
//!   injection signal; [`ingest`] items and [`otlp`] spans are read into it.
//! - [`ingest`]: items of `POST /api/v1/ingest`, each read by its own fields' rules.
//! - [`limit`]: the one keyed rate limiter (per caller, per agent).
//! - [`otlp`]: OpenTelemetry trace exports (protobuf or JSON) decoded into vitals.
//! - [`outbound`]: where a call on a caller's behalf may go (the egress policy, resolved
//!   and pinned), and the port that sends it.
//! - [`tasks`]: the long-lived tasks (runs, healing actions, upkeep), named and ended at
//!   shutdown.

pub mod batch;
pub mod budgets;
pub mod governance;
pub mod immune;
pub mod ingest;
pub mod limit;
pub mod otlp;
pub mod outbound;
pub mod tasks;
pub mod vitals;
