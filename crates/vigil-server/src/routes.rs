//! The route table: the single list every endpoint is declared in.
//!
//! Each [`Route`] carries its method, path, who may call it ([`Access`]), its operation name
//! (also the audit log's `action`), and the types of its body, query and answer. The axum
//! router, the access check in [`crate::gate`], and the OpenAPI document in
//! [`crate::openapi`] are all built from this one table, so a route cannot be served
//! without being documented and access-checked.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use schemars::{JsonSchema, SchemaGenerator};
use vigil_core::scope::Scope;

use crate::api::{Envelope, ListPage};
use crate::handlers::{
    audit, budgets, gateway, health, immune, ingest, keys, known_issues, meta, otlp, policies, runs, uploads,
};
use crate::state::AppState;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, in every mode. Only the health probes.
    Public,
    /// A key with at least this scope (or a loopback caller in local mode).
    Scope(Scope),
}

/// Produces a JSON Schema for a type, registering named sub-schemas with the generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

/// What a route answers with, for the OpenAPI document.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// `{"data": T, "provenance": ...}` with this JSON Schema.
    Json(SchemaFn),
    /// A raw document or text with this media type (OpenAPI, Prometheus metrics).
    Raw(&'static str),
    /// A protocol's own answer in the media type the request came in (OTLP).
    Media(&'static [&'static str]),
}

/// One endpoint.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub method: Method,
    /// axum path syntax, `{name}` for parameters; also the OpenAPI path.
    pub path: &'static str,
    /// Stable operation name, e.g. `keys.create`: OpenAPI `operationId` and audit `action`.
    pub operation: &'static str,
    pub summary: &'static str,
    pub access: Access,
    pub success_status: u16,
    pub body: Option<SchemaFn>,
    pub query: Option<SchemaFn>,
    pub answer: Answer,
    /// A model call through the gateway: recorded as a vital rather than an audit entry,
    /// and `Authorization: Bearer` may carry the caller's provider key instead of a Vigil key.
    pub model_call: bool,
    /// The body is raw content streamed by the handler to storage (an upload), not a JSON
    /// document: the gate neither buffers nor hashes it, the handler records the content's
    /// hash in the audit entry, and the handler enforces its own size cap.
    pub streamed_body: bool,
    /// A request body in a protocol's own encodings, documented by hand (OTLP's protobuf or
    /// JSON), for bodies no Rust type describes.
    pub documented_body: Option<fn() -> serde_json::Value>,
    /// Error answers in that protocol's own shape, documented by hand.
    pub documented_errors: Option<fn() -> serde_json::Value>,
}

impl RouteSpec {
    /// Whether requests to this route get an audit entry: every mutating request except
    /// model calls, which are recorded as vitals.
    pub fn audited(&self) -> bool {
        is_mutating(&self.method) && !self.model_call
    }
}

/// Whether a method changes state (and so is audited, unless it is a model call).
pub fn is_mutating(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// A [`RouteSpec`] and the handler serving it.
#[derive(Debug)]
pub struct Route {
    pub spec: RouteSpec,
    pub handler: MethodRouter<AppState>,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// What every model call's body has, whatever the provider's API: a JSON object naming the
/// model (the gateway routes by it); the rest is the provider's and passes through.
fn model_call_body(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "required": ["model"],
        "properties": { "model": { "type": "string", "minLength": 1 } },
    })
}

/// Builder for [`Route`] that keeps declarations short and the method stated once.
struct RouteBuilder(RouteSpec);

fn route(method: Method, path: &'static str, operation: &'static str, access: Access) -> RouteBuilder {
    RouteBuilder(RouteSpec {
        method,
        path,
        operation,
        summary: "",
        access,
        success_status: 200,
        body: None,
        query: None,
        answer: Answer::Raw("application/json"),
        model_call: false,
        streamed_body: false,
        documented_body: None,
        documented_errors: None,
    })
}

impl RouteBuilder {
    fn summary(mut self, summary: &'static str) -> Self {
        self.0.summary = summary;
        self
    }

    fn status(mut self, status: u16) -> Self {
        self.0.success_status = status;
        self
    }

    fn body<T: JsonSchema>(mut self) -> Self {
        self.0.body = Some(schema::<T>);
        self
    }

    fn query<T: JsonSchema>(mut self) -> Self {
        self.0.query = Some(schema::<T>);
        self
    }

    fn data<T: JsonSchema>(mut self) -> Self {
        self.0.answer = Answer::Json(schema::<Envelope<T>>);
        self
    }

    /// A gateway route: see [`RouteSpec::model_call`]. Bodies up to
    /// [`GATEWAY_BODY_BYTES_MAX`] (prompts with images are large); a POST's body is the
    /// provider's request, a JSON object naming its `model`.
    fn model_call(mut self) -> Self {
        self.0.model_call = true;
        if self.0.method == Method::POST {
            self.0.body = Some(model_call_body);
        }
        self
    }

    /// A raw body streamed to storage: see [`RouteSpec::streamed_body`].
    fn streamed(mut self) -> Self {
        self.0.streamed_body = true;
        self
    }

    /// A protocol endpoint: its request body and error answers as `body` and `errors`
    /// document them, its answer in one of `media_types`.
    fn protocol(
        mut self,
        body: fn() -> serde_json::Value,
        errors: fn() -> serde_json::Value,
        media_types: &'static [&'static str],
    ) -> Self {
        self.0.documented_body = Some(body);
        self.0.documented_errors = Some(errors);
        self.0.answer = Answer::Media(media_types);
        self
    }

    fn raw(mut self, media_type: &'static str) -> Self {
        self.0.answer = Answer::Raw(media_type);
        self
    }

    fn to<H: Handler<T, AppState>, T: 'static>(self, handler: H) -> Route {
        let filter = MethodFilter::try_from(self.0.method.clone())
            .unwrap_or_else(|_| unreachable!("route table uses standard methods only"));
        let mut handler = on(filter, handler);
        if self.0.model_call {
            handler = handler.layer(DefaultBodyLimit::max(GATEWAY_BODY_BYTES_MAX));
        }
        if self.0.streamed_body {
            // The handler streams to the blob store, which enforces the configured cap.
            handler = handler.layer(DefaultBodyLimit::disable());
        }
        Route { spec: self.0, handler }
    }
}

/// Largest request body a model call may send.
pub const GATEWAY_BODY_BYTES_MAX: usize = 32 * 1024 * 1024;

const READ: Access = Access::Scope(Scope::Read);
const WRITE: Access = Access::Scope(Scope::Write);
const ADMIN: Access = Access::Scope(Scope::Admin);

/// Every route Vigil serves.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/health/live", "health.live", Access::Public)
            .summary("Liveness: the process is up and serving")
            .data::<health::Live>()
            .to(health::live),
        route(Method::GET, "/health/ready", "health.ready", Access::Public)
            .summary("Readiness: database writable, blob directory writable, schema at head")
            .data::<health::Ready>()
            .to(health::ready),
        route(Method::GET, "/metrics", "metrics", READ)
            .summary("Prometheus metrics (OpenMetrics text)")
            .raw("application/openmetrics-text")
            .to(meta::metrics),
        route(Method::GET, "/api/v1/version", "version", READ)
            .summary("Version, git revision, schema version and mode")
            .data::<meta::Version>()
            .to(meta::version),
        route(Method::GET, "/api/v1/openapi.json", "openapi", READ)
            .summary("This API's OpenAPI 3.1 document, generated from the route table")
            .raw("application/json")
            .to(meta::openapi),
        route(Method::GET, "/api/v1/keys", "keys.list", ADMIN)
            .summary("List API keys (never their secrets)")
            .query::<keys::ListQuery>()
            .data::<ListPage<vigil_store::KeyRecord>>()
            .to(keys::list),
        route(Method::POST, "/api/v1/keys", "keys.create", ADMIN)
            .summary("Create an API key; the secret is in this answer only")
            .status(201)
            .body::<keys::CreateKey>()
            .data::<vigil_store::CreatedKey>()
            .to(keys::create),
        route(Method::GET, "/api/v1/keys/{id}", "keys.get", ADMIN)
            .summary("One API key")
            .data::<vigil_store::KeyRecord>()
            .to(keys::get),
        route(Method::DELETE, "/api/v1/keys/{id}", "keys.revoke", ADMIN)
            .summary("Revoke an API key")
            .data::<vigil_store::KeyRecord>()
            .to(keys::revoke),
        route(Method::GET, "/api/v1/audit", "audit.list", ADMIN)
            .summary("Audit log entries, newest first")
            .query::<audit::ListQuery>()
            .data::<ListPage<vigil_store::AuditEntry>>()
            .to(audit::list),
        route(Method::GET, "/api/v1/vitals", "vitals.list", READ)
            .summary("Recorded model calls, newest first, by agent and time window")
            .query::<gateway::VitalsQuery>()
            .data::<ListPage<vigil_store::StoredVital>>()
            .to(gateway::list_vitals),
        route(Method::POST, "/api/v1/ingest", "vitals.ingest", WRITE)
            .summary("Record model calls an agent reports itself: a batch of up to 10,000 vitals, each validated on its own")
            .body::<ingest::IngestBatch>()
            .data::<ingest::IngestResult>()
            .to(ingest::ingest),
        route(Method::GET, "/api/v1/agents", "agents.list", READ)
            .summary("Discovered agents: first and last seen, calls, errors, models, addresses")
            .query::<gateway::AgentsQuery>()
            .data::<ListPage<vigil_store::AgentRecord>>()
            .to(gateway::list_agents),
        route(Method::GET, "/api/v1/agents/{id}", "agents.get", READ)
            .summary("One discovered agent")
            .data::<vigil_store::AgentRecord>()
            .to(gateway::get_agent),
        route(Method::POST, "/v1/traces", "otlp.traces", WRITE)
            .summary("OTLP/HTTP trace receiver (protobuf or JSON, gzip): GenAI and OpenInference model-call spans become vitals; partial success names rejected spans")
            .protocol(
                crate::openapi::otlp_request_body,
                crate::openapi::otlp_error,
                &["application/x-protobuf", "application/json"],
            )
            .to(otlp::traces),
        route(Method::GET, "/api/v1/immune/agents", "immune.agents.list", READ)
            .summary("Agents as the immune system sees them: lifecycle state, incident, pending approval, probation")
            .query::<immune::AgentsQuery>()
            .data::<ListPage<immune::AgentHealth>>()
            .to(immune::list_agents),
        route(Method::GET, "/api/v1/immune/agents/{id}", "immune.agents.get", READ)
            .summary("One agent's health: baselines per metric, lifecycle history, control URL")
            .data::<immune::AgentDetail>()
            .to(immune::get_agent),
        route(Method::POST, "/api/v1/immune/agents/{id}/quarantine", "immune.agents.quarantine", ADMIN)
            .summary("Isolate an agent by hand: the gateway refuses its calls until it is released")
            .data::<immune::CommandResult>()
            .to(immune::quarantine),
        route(Method::POST, "/api/v1/immune/agents/{id}/release", "immune.agents.release", ADMIN)
            .summary("Return a quarantined or exhausted agent to service; closes its incident")
            .data::<immune::CommandResult>()
            .to(immune::release),
        route(Method::PUT, "/api/v1/immune/agents/{id}/control", "immune.agents.control", ADMIN)
            .summary("Register the URL where an agent receives healing actions (reset memory, switch model, reset)")
            .body::<immune::ControlBody>()
            .data::<vigil_store::ControlUrl>()
            .to(immune::set_control),
        route(Method::GET, "/api/v1/immune/incidents", "immune.incidents.list", READ)
            .summary("Incidents, newest first: agents, top diagnosis, status")
            .query::<immune::IncidentsQuery>()
            .data::<ListPage<immune::IncidentSummary>>()
            .to(immune::list_incidents),
        route(Method::GET, "/api/v1/immune/incidents/{id}", "immune.incidents.get", READ)
            .summary("One incident: ranked hypotheses with evidence, healing attempts, feedback, timeline")
            .data::<vigil_immune::engine::Incident>()
            .to(immune::get_incident),
        route(Method::POST, "/api/v1/immune/incidents/{id}/feedback", "immune.incidents.feedback", ADMIN)
            .summary("Confirm or refute a diagnosis; future confidence in it moves accordingly")
            .body::<immune::FeedbackBody>()
            .data::<immune::CommandResult>()
            .to(immune::feedback),
        route(Method::GET, "/api/v1/immune/approvals", "immune.approvals.list", READ)
            .summary("Healing actions waiting for (or given) a person's decision, newest first")
            .query::<immune::ApprovalsQuery>()
            .data::<ListPage<vigil_immune::engine::Approval>>()
            .to(immune::list_approvals),
        route(Method::GET, "/api/v1/immune/approvals/{id}", "immune.approvals.get", READ)
            .summary("One approval")
            .data::<vigil_immune::engine::Approval>()
            .to(immune::get_approval),
        route(Method::POST, "/api/v1/immune/approvals/{id}/approve", "immune.approvals.approve", ADMIN)
            .summary("Approve a pending healing action: it runs now")
            .data::<immune::CommandResult>()
            .to(immune::approve),
        route(Method::POST, "/api/v1/immune/approvals/{id}/reject", "immune.approvals.reject", ADMIN)
            .summary("Reject a pending healing action: the agent stays quarantined")
            .data::<immune::CommandResult>()
            .to(immune::reject),
        route(Method::POST, "/api/v1/immune/approvals/{id}/heal-now", "immune.approvals.heal_now", ADMIN)
            .summary("Run a rejected healing action after all")
            .data::<immune::CommandResult>()
            .to(immune::heal_now),
        route(Method::GET, "/api/v1/immune/memory", "immune.memory", READ)
            .summary("Immune memory: healing success per diagnosis and action across agents, and diagnosis feedback")
            .data::<immune::Memory>()
            .to(immune::memory),
        route(Method::GET, "/api/v1/immune/export", "immune.export", ADMIN)
            .summary("The replay file (NDJSON): the oldest kept engine snapshot and every input logged after it, with its decisions")
            .raw("application/x-ndjson")
            .to(immune::export),
        route(Method::GET, "/api/v1/gateway/stats", "gateway.stats", READ)
            .summary("Calls, errors, tokens and cost over a window, with the models in use")
            .query::<gateway::StatsQuery>()
            .data::<vigil_store::GatewayStats>()
            .to(gateway::stats),
        route(Method::POST, "/v1/chat/completions", "gateway.chat_completions", WRITE)
            .summary("OpenAI-compatible chat completions, forwarded to the provider serving the model")
            .raw("application/json")
            .model_call()
            .to(gateway::chat_completions),
        route(Method::POST, "/v1/responses", "gateway.responses", WRITE)
            .summary("OpenAI Responses API, forwarded to the provider serving the model")
            .raw("application/json")
            .model_call()
            .to(gateway::responses),
        route(Method::POST, "/v1/messages", "gateway.messages", WRITE)
            .summary("Anthropic-compatible messages, forwarded to the Anthropic provider serving the model")
            .raw("application/json")
            .model_call()
            .to(gateway::messages),
        route(Method::POST, "/v1/embeddings", "gateway.embeddings", WRITE)
            .summary("OpenAI-compatible embeddings, forwarded to the provider serving the model")
            .raw("application/json")
            .model_call()
            .to(gateway::embeddings),
        route(Method::GET, "/v1/models", "gateway.models", WRITE)
            .summary("OpenAI-compatible model list: every OpenAI-kind provider's models together")
            .raw("application/json")
            .model_call()
            .to(gateway::models),
        route(Method::POST, "/api/v1/uploads", "uploads.create", WRITE)
            .summary("Upload content (the raw body, streamed); `?name=` gives its file name. Content that already exists is reused, and the answer says so")
            .status(201)
            .query::<uploads::CreateQuery>()
            .data::<uploads::Uploaded>()
            .streamed()
            .to(uploads::create),
        route(Method::GET, "/api/v1/uploads", "uploads.list", READ)
            .summary("Uploads, newest first")
            .query::<uploads::ListQuery>()
            .data::<ListPage<vigil_store::UploadRecord>>()
            .to(uploads::list),
        route(Method::GET, "/api/v1/uploads/{id}", "uploads.get", READ)
            .summary("One upload")
            .data::<vigil_store::UploadRecord>()
            .to(uploads::get),
        route(Method::POST, "/api/v1/runs/plan", "runs.plan", WRITE)
            .summary("Preview a run without starting it: the plan (with why each plugin was selected), seed, fingerprint and cache keys")
            .body::<vigil_harness::RunRequest>()
            .data::<vigil_harness::Prepared>()
            .to(runs::plan),
        route(Method::POST, "/api/v1/runs", "runs.create", WRITE)
            .summary("Start a run on an upload; an identical completed run is returned instead (200) unless `fresh`")
            .status(201)
            .body::<vigil_harness::RunRequest>()
            .data::<vigil_harness::Submitted>()
            .to(runs::create),
        route(Method::GET, "/api/v1/runs", "runs.list", READ)
            .summary("Runs, newest first, optionally by status")
            .query::<runs::ListQuery>()
            .data::<ListPage<vigil_store::RunRecord>>()
            .to(runs::list),
        route(Method::GET, "/api/v1/runs/{id}", "runs.get", READ)
            .summary("One run with its plugin executions (status, duration, CPU time, peak memory, violations)")
            .data::<runs::RunDetail>()
            .to(runs::get),
        route(Method::POST, "/api/v1/runs/{id}/cancel", "runs.cancel", WRITE)
            .summary("Cancel a queued or running run: running plugins are killed, the rest skipped")
            .data::<vigil_store::RunRecord>()
            .to(runs::cancel),
        route(Method::POST, "/api/v1/runs/{id}/retry", "runs.retry", WRITE)
            .summary("Re-run the plugins of a failed, crashed, canceled or partly failed run that did not succeed")
            .data::<vigil_store::RunRecord>()
            .to(runs::retry),
        route(Method::POST, "/api/v1/runs/{id}/pin", "runs.pin", WRITE)
            .summary("Pin a run: retention never removes it, nor what it uses")
            .data::<vigil_store::RunRecord>()
            .to(runs::pin),
        route(Method::POST, "/api/v1/runs/{id}/unpin", "runs.unpin", WRITE)
            .summary("Unpin a run: retention may remove it once it is old enough")
            .data::<vigil_store::RunRecord>()
            .to(runs::unpin),
        route(Method::POST, "/api/v1/gc", "gc.run", ADMIN)
            .summary("Remove unpinned runs older than an age, and uploads and blobs nothing uses; tombstones and audit entries record each removal")
            .body::<runs::GcRequest>()
            .data::<serde_json::Value>()
            .to(runs::gc),
        route(Method::GET, "/api/v1/budgets", "budgets.list", READ)
            .summary("Every budget of the policy in force with its counters in the current window: spent, held by calls in flight, percent used, per subject")
            .data::<Vec<vigil_services::budgets::BudgetStatus>>()
            .to(budgets::statuses),
        route(Method::GET, "/api/v1/ledger", "ledger.list", READ)
            .summary("The budget ledger, newest first: every admission, settlement and expiry, hash-chained; `vigil ledger verify` recomputes the chain and every counter from it")
            .query::<budgets::LedgerQuery>()
            .data::<ListPage<vigil_store::LedgerEntry>>()
            .to(budgets::ledger),
        route(Method::GET, "/api/v1/policy", "policy.get", READ)
            .summary("The caller's tenant's policy: its latest version")
            .data::<vigil_store::PolicyVersion>()
            .to(policies::current),
        route(Method::PUT, "/api/v1/policy", "policy.save", ADMIN)
            .summary("Save the policy as a new version: refused with every problem at once when invalid, 409 when `based_on` is not the latest; answers with the static checks' findings and the changes")
            .body::<policies::PolicyRequest>()
            .data::<vigil_services::governance::Saved>()
            .to(policies::save),
        route(Method::POST, "/api/v1/policy/check", "policy.check", WRITE)
            .summary("Check a policy without saving it: its problems, or its findings (rules that never decide, allow/deny overlaps, budgets above their parent, unknown models or agents, limits that never admit), each with an example request, and what saving it would change")
            .body::<policies::PolicyRequest>()
            .data::<vigil_services::governance::Checked>()
            .to(policies::check),
        route(Method::POST, "/api/v1/policy/simulate", "policy.simulate", WRITE)
            .summary("Replay the calls recorded over the last days (7 by default, at most 30) through a proposed policy and the one in force: calls newly denied or allowed, the dollars refused, by agent, feature, day and rule, with example calls")
            .body::<policies::SimulateRequest>()
            .data::<vigil_services::governance::Simulated>()
            .to(policies::simulate),
        route(Method::GET, "/api/v1/policy/versions", "policy.versions", READ)
            .summary("Every version of the policy, newest first")
            .query::<policies::HistoryQuery>()
            .data::<ListPage<vigil_store::PolicyVersion>>()
            .to(policies::history),
        route(Method::GET, "/api/v1/policy/versions/{version}", "policy.version", READ)
            .summary("One version of the policy")
            .data::<vigil_store::PolicyVersion>()
            .to(policies::version),
        route(Method::POST, "/api/v1/policy/rollback", "policy.rollback", ADMIN)
            .summary("Restore an earlier version as the newest one (it records which it restored); 409 when `based_on` is not the latest")
            .body::<policies::RollbackRequest>()
            .data::<vigil_services::governance::Saved>()
            .to(policies::rollback),
        route(Method::GET, "/api/v1/known-issues", "known_issues.list", READ)
            .summary("The latest known issues of every dataset kind")
            .data::<Vec<vigil_store::KnownIssueSet>>()
            .to(known_issues::list),
        route(Method::GET, "/api/v1/known-issues/{kind}", "known_issues.get", READ)
            .summary("A dataset kind's known issues (the latest, or `?version=`) and its version history")
            .query::<known_issues::GetQuery>()
            .data::<known_issues::KnownIssues>()
            .to(known_issues::get),
        route(Method::PUT, "/api/v1/known-issues/{kind}", "known_issues.put", WRITE)
            .summary("Declare a dataset kind's known issues: a new version when they change; answers with the check each issue becomes")
            .body::<vigil_harness::known::Declaration>()
            .data::<known_issues::Saved>()
            .to(known_issues::put),
        route(Method::POST, "/api/v1/known-issues/preview", "known_issues.preview", WRITE)
            .summary("Preview known issues without saving them: the exact check each becomes, whether a plugin of the plan reports it, and which findings of a run it would match")
            .body::<vigil_harness::runs::PreviewRequest>()
            .data::<Vec<vigil_harness::known::IssuePreview>>()
            .to(known_issues::preview),
        route(Method::GET, "/api/v1/runs/{id}/lineage", "runs.lineage", READ)
            .summary("Lineage edges: upload → dataset version → run → plugin result → artifact")
            .data::<Vec<vigil_store::LineageEdge>>()
            .to(runs::lineage),
        route(Method::GET, "/api/v1/runs/{id}/report", "runs.report", READ)
            .summary("The run's report.json")
            .data::<serde_json::Value>()
            .to(runs::report),
        route(Method::GET, "/api/v1/runs/{id}/events", "runs.events", READ)
            .summary("Live events (server-sent events, or a WebSocket on upgrade): the run's state, then plan, plugin started/finished, progress, until it ends")
            .raw("text/event-stream")
            .to(runs::events),
        route(Method::GET, "/api/v1/runs/{id}/artifacts", "runs.artifacts", READ)
            .summary("Index of the run's files (manifest, input, requests, responses, logs, artifacts, reports)")
            .data::<Vec<vigil_harness::artifacts::ArtifactEntry>>()
            .to(runs::artifacts),
        route(Method::GET, "/api/v1/runs/{id}/artifacts/{*path}", "runs.artifact", READ)
            .summary("One file of a run: no traversal or link escapes, size-capped (X-Vigil-Truncated), secrets redacted by default")
            .query::<runs::ArtifactQuery>()
            .raw("application/octet-stream")
            .to(runs::artifact),
        route(Method::GET, "/api/v1/runs/{id}/bundle.zip", "runs.bundle", READ)
            .summary("The run as a zip that `vigil replay` reproduces elsewhere: its folder and its plugins' sources")
            .raw("application/zip")
            .to(runs::bundle),
        route(Method::GET, "/api/v1/plugins", "plugins.list", READ)
            .summary("Every plugin (built-in and from the plugins folder), and manifests that failed validation")
            .data::<serde_json::Value>()
            .to(runs::list_plugins),
        route(Method::GET, "/api/v1/plugins/{id}", "plugins.get", READ)
            .summary("One plugin: manifest, schemas, budgets, permissions, hashes")
            .data::<serde_json::Value>()
            .to(runs::get_plugin),
        route(Method::POST, "/api/v1/plugins/install", "plugins.install", ADMIN)
            .summary("Install or update a plugin from an uploaded zip; disabled until its permissions are approved")
            .status(201)
            .body::<runs::InstallRequest>()
            .data::<vigil_store::InstalledPlugin>()
            .to(runs::install_plugin),
        route(Method::POST, "/api/v1/plugins/{id}/approve", "plugins.approve", ADMIN)
            .summary("Approve the permissions the plugin's active install asks for")
            .data::<vigil_store::InstalledPlugin>()
            .to(runs::approve_plugin),
        route(Method::POST, "/api/v1/plugins/{id}/enable", "plugins.enable", ADMIN)
            .summary("Let an installed plugin run (its permissions must be approved)")
            .data::<vigil_store::InstalledPlugin>()
            .to(runs::enable_plugin),
        route(Method::POST, "/api/v1/plugins/{id}/disable", "plugins.disable", ADMIN)
            .summary("Stop an installed plugin from running")
            .data::<vigil_store::InstalledPlugin>()
            .to(runs::disable_plugin),
        route(Method::POST, "/api/v1/plugins/{id}/rollback", "plugins.rollback", ADMIN)
            .summary("Return an installed plugin to its previous install")
            .data::<vigil_store::InstalledPlugin>()
            .to(runs::rollback_plugin),
        route(Method::GET, "/api/v1/audit/verify", "audit.verify", ADMIN)
            .summary("Walk the audit hash chain and report the first break")
            .data::<vigil_store::AuditVerification>()
            .to(audit::verify),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn operations_and_paths_are_unique() {
        let routes = routes();
        let ops: HashSet<_> = routes.iter().map(|r| r.spec.operation).collect();
        assert_eq!(ops.len(), routes.len(), "duplicate operation name");
        let keys: HashSet<_> = routes.iter().map(|r| (r.spec.method.clone(), r.spec.path)).collect();
        assert_eq!(keys.len(), routes.len(), "duplicate method and path");
    }

    #[test]
    fn only_health_probes_are_public() {
        let public: Vec<_> = routes().iter().filter(|r| r.spec.access == Access::Public).map(|r| r.spec.path).collect();
        assert_eq!(public, ["/health/live", "/health/ready"]);
    }

    #[test]
    fn public_routes_only_read() {
        // The gate audits mutating requests only on guarded routes; keep it that way.
        for r in routes() {
            if r.spec.access == Access::Public {
                assert_eq!(r.spec.method, Method::GET, "{} is public and mutating", r.spec.path);
            }
        }
    }

    #[test]
    fn every_route_is_documented() {
        for r in routes() {
            assert!(!r.spec.summary.is_empty(), "{} has no summary", r.spec.operation);
        }
    }
}
