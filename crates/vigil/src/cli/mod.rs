//! Subcommands and what each one does.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_core::config::{self, Config, SECRET_FILE_BYTES_MAX, Sources};
use vigil_core::digest::Sha256Digest;
use vigil_core::id::KeyId;
use vigil_core::scope::Scope;
use vigil_server::BuildInfo;
use vigil_store::{BlobStore, DATABASE_FILE, NewAuditEntry, Store, StoreOptions};

mod admin;
mod runs;

use admin::{audit_verify, db_backup, db_doctor, immune, keys, ledger_verify};
pub use runs::harness_options;
use runs::{bundle, gc, pin, plugins, replay, run_file, upload};

pub(crate) const BUILD: BuildInfo = BuildInfo { version: env!("CARGO_PKG_VERSION"), git_sha: env!("VIGIL_GIT_SHA") };

/// Vigil: observe, heal, run and govern AI workloads on your own machines.
///
/// Start with `vigil serve`: it creates its data directory, listens on 127.0.0.1:7700 and
/// lets local callers in without a key. Settings come from `<data>/vigil.toml` (or
/// --config) and `VIGIL_*` environment variables; see `vigil config check`.
#[derive(Debug, Parser)]
#[command(name = "vigil", version = VERSION, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VIGIL_GIT_SHA"), ")");

#[derive(Debug, Args)]
struct Global {
    /// Data directory: the database, blobs and default config file live here.
    #[arg(long, global = true, env = "VIGIL_DATA", default_value = "vigil-data", value_name = "DIR")]
    data: PathBuf,
    /// Config file (TOML). Defaults to <DATA>/vigil.toml when that file exists.
    #[arg(long, global = true, env = "VIGIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set by a command's own flags that stand for a setting (`serve --listen`): each wins
    /// over the file and over its `VIGIL_*` variable, as that variable would.
    #[arg(skip)]
    overrides: Vec<(&'static str, String)>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (API, health, metrics) until SIGTERM or Ctrl-C.
    Serve {
        /// Address and port to listen on, such as 127.0.0.1:7700 (the same as VIGIL_LISTEN,
        /// and wins over it and the config file). Local mode binds loopback only.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect the budget ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Check and back up the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Validate the configuration and print the effective settings (secrets redacted).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Store a file as an upload (content-addressed; identical content is reused) and print
    /// its id, sha256, size and detected format.
    Upload {
        file: PathBuf,
        /// The name to record (defaults to the file's name).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run plugins on a file: plan (recommended for its type unless --pipeline names
    /// plugins), execute in the sandbox, and write report.json and report.md.
    Run {
        file: PathBuf,
        /// Comma-separated plugin ids to run (their dependencies come along).
        #[arg(long, value_delimiter = ',')]
        pipeline: Option<Vec<String>>,
        /// Comma-separated plugin ids to leave out.
        #[arg(long, value_delimiter = ',')]
        deselect: Vec<String>,
        /// The seed handed to every plugin (derived from the input when omitted).
        #[arg(long)]
        seed: Option<u64>,
        /// Settings as JSON: {"plugin.id": {...}, ...}.
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
        /// Run again even if an identical run completed; reuse no earlier results.
        #[arg(long)]
        fresh: bool,
        /// The kind of dataset (`erp.invoices`): evaluate the run against its known issues.
        #[arg(long)]
        dataset_kind: Option<String>,
        /// Only show the plan.
        #[arg(long)]
        plan: bool,
        /// Print the run as JSON at the end instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// List, inspect and check plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Watch the immune system work: a real Vigil in front of a mock provider, a fleet of
    /// simulated agents calling through the gateway, and one fault after another (latency
    /// spike, token blow-up, tool loop, cost overrun, prompt injection, provider outage),
    /// with detection, diagnosis, approvals, healing and probation printed as they happen.
    /// Exits 1 unless every fault was diagnosed as expected.
    Demo {
        /// Simulated agents (at least 6).
        #[arg(long, default_value_t = 6)]
        agents: usize,
        /// Run the whole scenario in about half a minute.
        #[arg(long)]
        fast: bool,
        /// Stop after the scenario instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// Print only the summary, as JSON.
        #[arg(long)]
        json: bool,
        /// Leave approvals to you (the API or console) instead of approving after a pause.
        #[arg(long)]
        manual_approvals: bool,
        /// Where Vigil listens.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// The immune system: export its input log, replay one.
    #[command(subcommand)]
    Immune(ImmuneCommand),
    /// Write a finished run as a zip (its folder and its plugins' sources) that `vigil
    /// replay` reproduces elsewhere.
    Bundle {
        run_id: String,
        /// The zip to write (must not exist).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Keep a run forever: `vigil gc` never removes a pinned run (or what it uses).
    Pin { run_id: String },
    /// Let `vigil gc` remove a run again once it is old enough.
    Unpin { run_id: String },
    /// Remove unpinned runs older than an age, and the uploads and blobs nothing uses any
    /// more. Each removal leaves a tombstone and an audit entry.
    Gc {
        /// Age such as 30d, 12h, 90m.
        #[arg(long, value_parser = vigil_harness::gc::parse_age)]
        older_than: std::time::Duration,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Re-run a bundled run here and check that its fingerprint and findings match.
    /// Exits 1 if anything differs.
    Replay {
        bundle: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print version, git revision, supported schema version and the plugin sandbox this
    /// system enforces.
    Version,
    /// Run a mock OpenAI-compatible provider on loopback (for demos, tests and benchmarks).
    MockUpstream {
        /// Address to listen on; port 0 picks a free one (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Simulated provider latency per call, in milliseconds.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it. The key is shown once and cannot be recovered.
    Create {
        /// A unique name, e.g. the service or person using it.
        #[arg(long)]
        name: String,
        /// What the key may do: read, write (includes read) or admin (everything).
        #[arg(long, value_parser = parse_scope)]
        scope: Scope,
    },
    /// List keys (never their secrets).
    List {
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id. Requests using it fail from then on.
    Revoke {
        /// The key id (the 16 hex characters after `vgl_`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ImmuneCommand {
    /// Write the replay file: the oldest kept engine snapshot, then every input logged
    /// after it with the decisions it led to (NDJSON).
    Export {
        /// The file to write (must not exist); standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Feed a replay file to a fresh engine and check every recorded decision follows from
    /// the inputs alone. Exits 1 if any differs.
    Replay {
        file: PathBuf,
        /// Print the recomputed decisions (NDJSON) instead of a summary.
        #[arg(long)]
        decisions: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Every plugin: built-ins and the plugins folder.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One plugin's manifest, schemas, permissions and hashes.
    Show { id: String },
    /// Validate every manifest and schema, check dependencies for cycles, and run each
    /// plugin's self-test in the sandbox. Exits 1 if anything is wrong.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Install (or update) a plugin from a folder or a zip. It stays disabled until its
    /// permissions are approved, unless an earlier install asked for the same ones.
    Install { path: PathBuf },
    /// Approve the permissions the active install of a plugin asks for.
    Approve { id: String },
    /// Let an installed plugin run (its permissions must be approved).
    Enable { id: String },
    /// Stop an installed plugin from running.
    Disable { id: String },
    /// Return an installed plugin to the install before the current one.
    Rollback { id: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and report the first entry that was changed or removed.
    Verify,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Recompute the hash chain and every budget counter from the ledger; exits 1 when the
    /// chain is broken or a counter differs.
    Verify {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Integrity check, WAL and checkpoint state, schema version. Exits 1 if unhealthy.
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Take a consistent online backup into FILE (which must not exist).
    Backup { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate and print the effective configuration.
    Check,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse().map_err(|e: vigil_core::scope::ScopeParseError| e.to_string())
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { mut global, command } = cli;
    match command {
        Command::Serve { listen } => {
            global.overrides.extend(listen.map(|addr| ("VIGIL_LISTEN", addr)));
            serve(&global)
        }
        Command::Keys(cmd) => keys(&global, cmd),
        Command::Audit(AuditCommand::Verify) => audit_verify(&global),
        Command::Ledger(LedgerCommand::Verify { json }) => ledger_verify(&global, json),
        Command::Db(DbCommand::Doctor { json }) => db_doctor(&global, json),
        Command::Db(DbCommand::Backup { file }) => db_backup(&global, &file),
        Command::Config(ConfigCommand::Check) => {
            let config = load_config(&global)?;
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::MockUpstream { listen, delay_ms } => mock_upstream(listen, delay_ms),
        Command::Upload { file, name, json } => upload(&global, &file, name, json),
        Command::Run { file, pipeline, deselect, seed, settings, fresh, dataset_kind, plan, json } => {
            let settings = match settings {
                Some(text) => {
                    serde_json::from_str(&text).context("--settings must be a JSON object of plugin id to settings")?
                }
                None => BTreeMap::new(),
            };
            let request = vigil_harness::RunRequest {
                upload_id: String::new(),
                pipeline,
                deselect,
                settings,
                seed,
                fresh,
                dataset_kind,
            };
            run_file(&global, &file, request, plan, json)
        }
        Command::Plugins(cmd) => plugins(&global, cmd),
        Command::Bundle { run_id, output } => bundle(&global, &run_id, &output),
        Command::Pin { run_id } => pin(&global, &run_id, true),
        Command::Unpin { run_id } => pin(&global, &run_id, false),
        Command::Gc { older_than, dry_run, json } => gc(&global, older_than, dry_run, json),
        Command::Replay { bundle, json } => replay(&global, &bundle, json),
        Command::Immune(cmd) => immune(&global, cmd),
        Command::Demo { agents, fast, exit, json, manual_approvals, listen } => {
            if !json {
                init_logging("warn");
            }
            crate::demo::run(crate::demo::DemoOptions {
                agents,
                fast,
                exit,
                json,
                auto_approve: !manual_approvals,
                listen,
            })
        }
        Command::Version => {
            println!("vigil {}", BUILD.version);
            println!("git revision: {}", BUILD.git_sha);
            println!("schema version: {}", vigil_store::migrations::head_version());
            match std::env::current_exe().map_err(|e| e.to_string()).and_then(|exe| vigil_harness::sandbox::probe(&exe))
            {
                Ok(enforced) => {
                    println!("plugin sandbox on this system:");
                    for (name, protection) in enforced.entries() {
                        let state = if protection.enforced { "enforced" } else { "NOT enforced" };
                        println!("  {name:<10} {state}: {}", protection.detail);
                    }
                    let state = if enforced.denials.enforced { "recorded" } else { "NOT recorded" };
                    println!("  {:<10} {state}: {}", "denials", enforced.denials.detail);
                }
                Err(why) => println!("plugin sandbox: unknown ({why})"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_secret_file(path: &str) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(SECRET_FILE_BYTES_MAX as u64 + 1).read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

fn load_config(global: &Global) -> anyhow::Result<Config> {
    let default_path = global.data.join("vigil.toml");
    let path = match &global.config {
        Some(path) => Some(path.clone()),
        None => default_path.is_file().then_some(default_path),
    };
    let text = path
        .as_ref()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display())))
        .transpose()?;
    let path_text = path.as_ref().map(|p| p.display().to_string());
    // The whole environment: `VIGIL_*` settings, and the variables providers name for keys.
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    for (variable, value) in &global.overrides {
        env.remove(&format!("{variable}_FILE"));
        env.insert((*variable).to_owned(), value.clone());
    }
    let sources = Sources { file: path_text.as_deref().zip(text.as_deref()), env: &env, read_file: &read_secret_file };
    Ok(config::load(&sources)?)
}

fn store_options(config: &Config) -> StoreOptions {
    StoreOptions { durability: config.store.durability, busy_timeout: config.store.busy_timeout }
}

fn database_path(global: &Global) -> PathBuf {
    global.data.join(DATABASE_FILE)
}

/// Opens the store, creating the database only when `create` (serving, creating a key);
/// commands that inspect or change existing data refuse a data directory without one.
fn open_store(global: &Global, create: bool) -> anyhow::Result<(Config, Store)> {
    let config = load_config(global)?;
    let path = database_path(global);
    let options = store_options(&config);
    let store = if create { Store::open(&path, options) } else { Store::open_existing(&path, options) };
    let store = store.with_context(|| format!("opening {}", path.display()))?;
    Ok((config, store))
}

/// Logs to stderr, filtered by `VIGIL_LOG` or else `default` (`warn` for the demo, which
/// prints its own story).
fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VIGIL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

fn serve(global: &Global) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let (config, store) = open_store(global, true)?;
    let blobs = BlobStore::open(&global.data.join("blobs"), config.blobs.max_bytes)?;
    // Partial files of uploads a dead process was writing; live writers' files are locked.
    let stale = blobs.remove_stale_temps(false)?;
    if stale.files > 0 {
        tracing::info!(files = stale.files, bytes = stale.bytes, "removed partial files of writes that died");
    }
    let listen = config.listen;
    let mode = config.mode;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let harness = harness_options(&global.data, &config)?;
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let local = listener.local_addr()?;
        // Calls on a caller's behalf must never reach Vigil itself: the port it really got.
        let mut config = config;
        config.egress.own = Some(local);
        let app = crate::compose::app(config, store, blobs, harness, BUILD).await?;
        tracing::info!(%local, mode = mode.as_str(), data = %global.data.display(), "vigil listening");
        // Scripts and tests read the bound address (port 0 picks a free one) from stdout.
        println!("vigil listening on http://{local} (mode {})", mode.as_str());
        vigil_server::serve(app, listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn mock_upstream(listen: std::net::SocketAddr, delay_ms: u64) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        println!("mock upstream listening on http://{}/v1", listener.local_addr()?);
        let state = vigil_gateway::mock::MockState::with_delay(std::time::Duration::from_millis(delay_ms));
        axum::serve(listener, vigil_gateway::mock::router(state)).with_graceful_shutdown(shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn cli_audit(action: &str, target: String, body: &serde_json::Value) -> NewAuditEntry {
    NewAuditEntry {
        principal: "cli".to_owned(),
        action: action.to_owned(),
        target,
        request_id: None,
        body_sha256: Sha256Digest::of(body.to_string().as_bytes()),
        status: 0,
    }
}
