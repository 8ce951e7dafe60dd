//! The command line: `serve`, `import`, `verify`, `checkpoint-key`, `export`, `verify-bundle`, `fixtures
//! generate`, `schema`, `token`.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use graph_model::bundle::About;
use graph_model::inventory::{Inventory, NodeSpec};
use graph_model::store::{ImportPlan, Store, StoreError};
use graph_model::{Email, Name, NewPerson, Outcome, Role, Text};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::auth::{Authenticator, parse_ttl};
use crate::config::{Config, LogFormat, Mode};

/// nhigov: governance of non-human identities over GraphQL.
#[derive(Debug, Parser)]
#[command(name = "nhigov", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./nhigov.toml when present.
    #[arg(long, global = true, env = "NHIGOV_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The telemetry settings of `serve`, for `main` to start the exporter before it
    /// sets up logging; `None` for other commands, and when the configuration does not
    /// load (`run` reports why).
    pub fn telemetry_config(&self) -> Option<crate::telemetry::TelemetryConfig> {
        match self.command {
            Command::Serve { .. } => Config::load(self.config.as_deref()).ok().map(|c| c.telemetry),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GraphQL server (POST/GET /graphql, /graphql/ws, /healthz, /readyz).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 or 0.0.0.0:8080.
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// Store URL: a directory for the embedded store (default `data`), mem://,
        /// ws://HOST:PORT or wss://HOST:PORT.
        #[arg(long)]
        db: Option<String>,
        /// Load the demo graph into an empty store and print a token for its investigator.
        #[arg(long)]
        demo: bool,
        /// Production mode: no GraphiQL, and a configured JWT key is required.
        #[arg(long)]
        production: bool,
    },
    /// Import an inventory document (JSON nodes and edges). Every item is checked first
    /// and nothing is written when one fails; then the document is written in batches,
    /// one transaction each (a document smaller than a batch is one transaction). A load
    /// that stopped resumes after its last committed batch when run again on the same
    /// file. Stop a server using the same embedded store first, or use the
    /// importInventory mutation.
    Import {
        /// The document to import.
        file: PathBuf,
        /// Items (nodes and edges) per transaction.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        #[arg(long)]
        db: Option<String>,
    },
    /// Recompute the decision chain, policy digests and evidence digests of a store and
    /// report the first broken link. With `--checkpoints`, also prove the chain is the one
    /// the signed checkpoints saw: name the first decision that differs, or say the store
    /// was restored from an older backup. Exits 1 when anything fails to verify.
    Verify {
        #[arg(long)]
        db: Option<String>,
        /// A checkpoint file the server wrote (`[checkpoints] file`).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The public key the checkpoints must be signed with (hex, as `checkpoint-key`
        /// printed it). Without it, the key the file names is reported for you to compare.
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Create a checkpoint signing key: write its secret to FILE (owner-only) and print
    /// its public key. Point `[checkpoints] key_file` at it; keep it off the database host.
    CheckpointKey {
        /// The key file to create.
        file: PathBuf,
    },
    /// Export for auditors: the evidence bundle of a case (`--case ID --out DIR`) or of a
    /// certification campaign (`--campaign ID`), or decisions or evidence as CSV
    /// (`--csv decisions|evidence`), filtered by framework reference and time window.
    Export {
        /// The case whose evidence bundle to write.
        #[arg(long, conflicts_with_all = ["csv", "campaign"], required_unless_present_any = ["csv", "campaign"])]
        case: Option<String>,
        /// The certification campaign whose evidence bundle to write.
        #[arg(long, conflicts_with = "csv")]
        campaign: Option<String>,
        /// Write this table as CSV instead.
        #[arg(long, value_enum)]
        csv: Option<CsvTable>,
        /// For a bundle, the directory to create (default: bundle-<key>); for CSV, the
        /// file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only rows carrying this framework reference (CSV).
        #[arg(long, requires = "csv")]
        framework: Option<String>,
        /// Only rows at or after this time, RFC 3339 (CSV).
        #[arg(long, requires = "csv")]
        from: Option<chrono::DateTime<Utc>>,
        /// Only rows before this time, RFC 3339 (CSV).
        #[arg(long, requires = "csv")]
        to: Option<chrono::DateTime<Utc>>,
        #[arg(long)]
        db: Option<String>,
    },
    /// Check an evidence bundle offline: every file against the manifest, evidence and
    /// policy digests, decision hashes. Exits 1 naming each file at fault.
    VerifyBundle {
        /// The bundle's directory.
        dir: PathBuf,
    },
    /// Synthetic data for benchmarks and load tests.
    Fixtures {
        #[command(subcommand)]
        action: FixturesCommand,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Give the first people their roles: one genesis decision, the first record of the
    /// decision chain, allowed only while the chain is empty. People not stored yet are
    /// created, named after their e-mail. After it, roles change only through governed
    /// changes (`updatePerson`), where admin, approver and auditor grants need a second
    /// admin: in production mode at least two admins are required, or no such grant
    /// could ever be approved.
    Bootstrap {
        /// An administrator's e-mail; repeat it for each (two or more in production).
        #[arg(long = "admin", required = true)]
        admins: Vec<String>,
        /// A JSON file of other people's first roles: {"e-mail": ["investigator", ...]}.
        #[arg(long)]
        roles: Option<PathBuf>,
        #[arg(long)]
        db: Option<String>,
    },
    /// The SurrealDB user a running service should sign in as: a user of its own
    /// database with the EDITOR role (it can change that database's schema and records,
    /// and nothing else on the server). Prints the statements to run as root, or with
    /// --apply runs them on the configured server with its root credentials
    /// (db.username, db.password). The password comes from NHIGOV_DB_USER_PASSWORD, or
    /// is generated and printed once. Then run the service with db.username set to the
    /// new user, db.password to its password and db.user_level = "database".
    DbUser {
        /// The user's name.
        #[arg(long, default_value = "nhigov")]
        user: String,
        /// Run the statements on the server instead of printing them.
        #[arg(long)]
        apply: bool,
        #[arg(long)]
        db: Option<String>,
    },
    /// Mint a bearer token for a person, signed with the configured HS256 secret
    /// (development mode only: in production, tokens come from the identity provider).
    Token {
        /// The person's e-mail address.
        #[arg(long)]
        subject: String,
        /// Lifetime, such as 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long)]
        db: Option<String>,
    },
}

/// Tables `export --csv` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CsvTable {
    Decisions,
    Evidence,
}

#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Write a synthetic identity graph (an inventory document) of realistic shape:
    /// power-law degrees with hub systems and shared secrets, about ten edges per NHI.
    Generate {
        /// How many NHIs (100000 gives about a million edges).
        #[arg(long)]
        nhis: usize,
        /// The same seed always gives the same graph.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the document; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

/// Run a command to completion.
pub async fn run(cli: Cli) -> Result<()> {
    let mut cfg = Config::load(cli.config.as_deref()).map_err(|e| anyhow!(e))?;
    match cli.command {
        Command::Schema => {
            print!("{}", nhigov_schema::sdl());
            Ok(())
        }
        Command::Bootstrap { admins, roles, db } => {
            if let Some(db) = db {
                cfg.db.url = db;
            }
            bootstrap(&cfg, &admins, roles.as_deref()).await
        }
        Command::Token { subject, ttl, db } => {
            if let Some(db) = db {
                cfg.db.url = db;
            }
            if cfg.mode == Mode::Production {
                bail!(
                    "`nhigov token` works in development mode only: in production, tokens come from the identity provider"
                );
            }
            let email = Email::parse(&subject).map_err(|e| anyhow!("--subject: {}", e.message))?;
            let ttl = parse_ttl(&ttl).map_err(|e| anyhow!("--ttl: {e}"))?;
            let auth = authenticator(&cfg)?;
            println!("{}", auth.mint(&email, ttl).map_err(|e| anyhow!(e))?);
            Ok(())
        }
        Command::Fixtures { action: FixturesCommand::Generate { nhis, seed, out } } => generate(nhis, seed, &out),
        Command::Verify { db, checkpoints, public_key } => {
            if let Some(db) = db {
                cfg.db.url = db;
            }
            let pinned = public_key
                .map(|k| graph_model::checkpoint::parse_public_key(&k))
                .transpose()
                .map_err(|e| anyhow!("--public-key: {e}"))?;
            verify(&cfg, checkpoints.as_deref(), pinned.as_ref()).await
        }
        Command::CheckpointKey { file } => {
            let key = crate::checkpoints::new_key(&file)?;
            eprintln!("{}: checkpoint signing key written (keep it off the database host)", file.display());
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            Ok(())
        }
        Command::Export { case, campaign, csv, out, framework, from, to, db } => {
            if let Some(db) = db {
                cfg.db.url = db;
            }
            match (case, campaign, csv) {
                (Some(case), _, _) => export_bundle(&cfg, About::Case(parse_id("--case", &case)?), out).await,
                (None, Some(campaign), _) => {
                    export_bundle(&cfg, About::Campaign(parse_id("--campaign", &campaign)?), out).await
                }
                (None, None, Some(table)) => export_csv(&cfg, table, framework, from, to, out).await,
                (None, None, None) => bail!("give --case ID, --campaign ID or --csv decisions|evidence"),
            }
        }
        Command::VerifyBundle { dir } => verify_bundle(&dir),
        Command::DbUser { user, apply, db } => {
            if let Some(db) = db {
                cfg.db.url = db;
            }
            db_user(&cfg, &user, apply).await
        }
        Command::Import { file, batch, db } => {
            if let Some(db) = db {
                cfg.db.url = db;
            }
            if batch == 0 {
                bail!("--batch: at least 1");
            }
            import(&cfg, &file, batch).await.map(|_| ())
        }
        Command::Serve { bind, db, demo, production } => {
            if let Some(bind) = bind {
                cfg.bind = bind;
            }
            if let Some(db) = db {
                cfg.db.url = db;
            }
            if production {
                cfg.mode = Mode::Production;
            }
            serve(cfg, demo).await
        }
    }
}

/// See [`Command::DbUser`].
async fn db_user(cfg: &Config, user: &str, apply: bool) -> Result<()> {
    let (password, generated) = match std::env::var("NHIGOV_DB_USER_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()), true),
    };
    let (ns, db) = (&cfg.db.namespace, &cfg.db.database);
    let sql = graph_model::store::database_user_sql(ns, db, user, &password)
        .map_err(|e| anyhow!("NHIGOV_DB_USER_PASSWORD: {e}"))?;
    if !apply {
        println!("-- Run as the server's root user:");
        print!("{sql}");
    } else {
        let store_cfg =
            graph_model::store::StoreConfig { user_level: graph_model::store::UserLevel::Root, ..cfg.store_config() };
        graph_model::store::define_database_user(&store_cfg, user, &password)
            .await
            .with_context(|| format!("defining user `{user}` on {ns}/{db} at {}", cfg.db.url))?;
        println!("User `{user}` defined on database {ns}/{db} with the EDITOR role.");
    }
    if generated {
        println!("Its password (shown once): {password}");
    }
    println!(
        "Run the service with NHIGOV_DB__USERNAME={user} NHIGOV_DB__PASSWORD=<its password> NHIGOV_DB__USER_LEVEL=database"
    );
    Ok(())
}

fn authenticator(cfg: &Config) -> Result<Authenticator> {
    let secret_file = cfg.data_dir().map(|d| d.join("jwt-secret"));
    Authenticator::from_config(&cfg.auth, cfg.mode, secret_file.as_deref()).map_err(|e| anyhow!(e))
}

/// The genesis: every initial role in one decision (see `Command::Bootstrap`).
async fn bootstrap(cfg: &Config, admins: &[String], roles: Option<&Path>) -> Result<()> {
    if cfg.mode == Mode::Production && admins.len() < 2 {
        bail!("production needs at least two --admin: a role grant waits for a second admin");
    }
    let mut wanted: Vec<(String, Vec<Role>)> = admins.iter().map(|a| (a.clone(), vec![Role::Admin])).collect();
    if let Some(file) = roles {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let map: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(&text)
            .with_context(|| format!("{}: expected {{\"e-mail\": [\"role\", ...]}}", file.display()))?;
        for (email, names) in map {
            let mut roles = Vec::new();
            for n in names {
                roles.push(Role::parse(&n).map_err(|e| anyhow!("{}: {email}: {}", file.display(), e.message))?);
            }
            match wanted.iter_mut().find(|(e, _)| *e == email) {
                Some((_, held)) => held.extend(roles.into_iter().filter(|r| *r != Role::Admin)),
                None => wanted.push((email, roles)),
            }
        }
    }
    let store = open_store(cfg).await?;
    // Checked before anyone is created, so a refused bootstrap leaves nothing behind;
    // the genesis checks it again as it commits.
    if store.chain_head().await?.seq != 0 {
        bail!("the decision chain has begun: roles are now granted by governed changes (updatePerson)");
    }
    let mut grants = Vec::new();
    for (email, roles) in wanted {
        let parsed = Email::parse(&email).map_err(|e| anyhow!("{email}: {}", e.message))?;
        let id = match store.person_by_email(&parsed).await? {
            Some(p) => p.id,
            None => {
                let name = email.split('@').next().unwrap_or(&email).to_owned();
                let spec = NodeSpec::Person(NewPerson {
                    name: Name::parse(&name).map_err(|e| anyhow!("{email}: {}", e.message))?,
                    email: parsed,
                    active: true,
                    machine: false,
                });
                store.create_node(&spec).await?.id().clone()
            }
        };
        grants.push((id, roles));
    }
    let rationale = Text::parse("the first roles, given at bootstrap").map_err(|e| anyhow!(e.message))?;
    let decision = store.genesis(&grants, &rationale, false).await.map_err(|e| match e {
        StoreError::Conflict(m) => anyhow!("{m}"),
        e => anyhow!("the genesis failed: {e}"),
    })?;
    println!("genesis recorded as {} (seq {}): {} people given their roles", decision.id, decision.seq, grants.len());
    store.close().await;
    Ok(())
}

async fn open_store(cfg: &Config) -> Result<Store> {
    Store::open(&cfg.store_config()).await.map_err(|e| match e {
        StoreError::SchemaTooNew { .. } => anyhow!("{e}"),
        e => anyhow!("cannot open the store at {}: {e}", cfg.db.url),
    })
}

async fn serve(cfg: Config, demo: bool) -> Result<()> {
    for variable in crate::config::ignored_variables() {
        warn!(%variable, "ignored: an NHIGOV_ variable that names no configuration section");
    }
    let auth = authenticator(&cfg)?;
    let store = open_store(&cfg).await?;
    if demo {
        match crate::demo::load(&store).await {
            Ok(Some(s)) => info!(nodes = s.nodes, edges = s.edges, "demo graph loaded"),
            Ok(None) => info!("store not empty; demo graph not loaded again"),
            Err(e) => bail!("loading the demo graph: {e}"),
        }
        let token = auth.mint(&crate::demo::investigator(), chrono::Duration::hours(8)).map_err(|e| anyhow!(e))?;
        println!("Demo investigator: {}", crate::demo::DEMO_INVESTIGATOR);
        println!("Token (8h):        {token}");
        println!("Try:  curl -s http://{}/graphql -H 'Authorization: Bearer {token}' \\", cfg.bind);
        println!("        -H 'Content-Type: application/json' \\");
        println!(
            "        -d '{{\"query\":\"{{ nhis(first: 5) {{ totalCount edges {{ node {{ id name owners {{ ... on Person {{ name }} ... on Team {{ name }} }} }} }} }} }}\"}}'"
        );
        println!("Console:  http://{}/console  (paste the token to sign in)", cfg.bind);
        if cfg.mode == Mode::Development {
            println!("GraphiQL: http://{}/  (headers: {{\"Authorization\": \"Bearer <token>\"}})", cfg.bind);
        }
    }
    let listener = TcpListener::bind(cfg.bind).await.with_context(|| format!("cannot listen on {}", cfg.bind))?;
    // Traversals answer from the graph index: the app loads it now, while /readyz says
    // so, rather than in the first investigator's request.
    crate::app::App::start(&cfg, store.clone(), auth)?.serve(listener, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!(signal = "SIGINT", "shutting down"),
        _ = term => info!(signal = "SIGTERM", "shutting down"),
    }
}

/// One line of progress on a terminal; nothing when piped.
fn progress(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{msg}");
    }
}

/// What `nhigov import` did, for the benchmark's report.
#[derive(Debug, Clone)]
pub struct Imported {
    pub nodes: usize,
    pub edges: usize,
    /// Writing only, after reading, parsing and checking.
    pub write_secs: f64,
    /// The document's source, whose ungoverned access is flagged after the import.
    pub source: Option<String>,
    /// The source was stale when the document arrived: nothing is flagged from it.
    pub source_stale: bool,
}

/// Import the document at `file` into the configured store; see [`Command::Import`].
pub async fn import(cfg: &Config, file: &std::path::Path, batch: usize) -> Result<Imported> {
    let started = std::time::Instant::now();
    let shown = file.display();
    progress(&format!("reading {shown}"));
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {shown}"))?;
    let digest = graph_model::domain::sha256_hex(&bytes);
    let store = open_store(cfg).await?;
    // Once the chain has begun, a run is recorded in it, with the server as its actor:
    // a decision when it starts and one when it completes or fails. (A first load
    // before the genesis is what the genesis, or a baseline, then takes on.)
    let recorder = match store.has_genesis().await? {
        true => Some(store.server_principal().await?),
        false => None,
    };
    if let Some(server) = &recorder {
        let started = serde_json::json!({ "file": shown.to_string(), "digest": digest, "bytes": bytes.len() });
        store.record_import(server, &digest, Outcome::Started, started).await?;
    }
    let result = import_into(&store, &shown.to_string(), &bytes, &digest, batch).await;
    if let Some(server) = &recorder {
        let (outcome, inputs) = match &result {
            Ok(Some(i)) => (
                Outcome::Completed,
                serde_json::json!({ "digest": digest, "source": i.source, "nodes": i.nodes, "edges": i.edges }),
            ),
            Ok(None) => (Outcome::Completed, serde_json::json!({ "digest": digest, "already_imported": true })),
            Err(e) => (Outcome::Failed, serde_json::json!({ "digest": digest, "error": e.to_string() })),
        };
        if let Err(e) = store.record_import(server, &digest, outcome, inputs).await {
            eprintln!("{shown}: recording the end of the import run failed: {e}");
        }
    }
    // Access the source reported that no decision granted raises its alerts once the
    // chain has begun (a first load before the genesis raises none).
    let flagged = match &result {
        Ok(Some(imported)) if imported.source_stale => {
            println!("{shown}: its source was stale: ungoverned-access alerts wait for its next run");
            Ok(0)
        }
        Ok(Some(imported)) => store.raise_ungoverned_alerts(imported.source.as_deref()).await,
        _ => Ok(0),
    };
    store.close().await;
    match flagged {
        Ok(0) => {}
        Ok(n) => println!(
            "{n} NHI(s) hold access the source reported and no decision granted: each has an ungoverned_access alert"
        ),
        Err(e) => eprintln!("{shown}: raising ungoverned-access alerts failed: {e}"),
    }
    let Some(imported) = result? else {
        return Ok(Imported { nodes: 0, edges: 0, write_secs: 0.0, source: None, source_stale: false });
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} nodes and {} edges from {shown} in {secs:.2}s (writing {:.2}s, {:.0} items/s)",
        imported.nodes,
        imported.edges,
        imported.write_secs,
        (imported.nodes + imported.edges) as f64 / imported.write_secs.max(1e-9)
    );
    Ok(imported)
}

/// A document that matches what is stored, written in one transaction (see
/// `Store::import`): a refresh from a collector rather than a first load.
async fn refresh_into(store: &Store, shown: &str, inv: &Inventory, plan: ImportPlan) -> Result<Imported> {
    progress(&format!(
        "refreshing the store from {} nodes and {} edges{} (one transaction)",
        inv.nodes.len(),
        inv.edges.len(),
        if inv.complete { ", a complete run of its source" } else { "" }
    ));
    let writing = std::time::Instant::now();
    match store.import_planned(inv, plan).await {
        Ok(s) => {
            println!(
                "{shown}: {} nodes created, {} refreshed; {} edges opened, {} kept, {} closed",
                s.nodes, s.nodes_updated, s.edges, s.edges_kept, s.edges_closed
            );
            // The people the feed reports gone leave, as the server's decisions, once
            // the chain has begun.
            if store.has_genesis().await? {
                let server = store.server_principal().await?;
                match store.apply_leavers(&server, inv, &s).await {
                    Ok((n, held)) => {
                        if n > 0 {
                            println!("{shown}: {n} person(s) reported gone were deactivated, one decision each");
                        }
                        if !held.is_empty() {
                            println!(
                                "{shown}: reported gone but kept, as they govern (an admin deactivates them): {}",
                                held.join(", ")
                            );
                        }
                    }
                    Err(e) => eprintln!("{shown}: deactivating the people it reports gone failed: {e}"),
                }
            }
            if s.edges_absent_paused > 0 {
                println!(
                    "{shown}: its source was stale: {} edge(s) it no longer reports stay open until its next complete run",
                    s.edges_absent_paused
                );
            }
            Ok(Imported {
                nodes: s.nodes + s.nodes_updated,
                edges: s.edges,
                write_secs: writing.elapsed().as_secs_f64(),
                source: inv.source.as_ref().map(|s| s.as_str().to_owned()),
                source_stale: s.source_stale,
            })
        }
        Err(StoreError::Import(errors)) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len())
        }
        Err(e) => Err(anyhow!("{shown}: {e}")),
    }
}

/// Import, or `None` when this document was imported before.
async fn import_into(store: &Store, shown: &str, bytes: &[u8], digest: &str, batch: usize) -> Result<Option<Imported>> {
    let run = store.import_run(digest).await?;
    if let Some(run) = &run
        && let Some(at) = run.finished_at
    {
        println!("{shown}: this document (SHA-256 {}) was imported at {at}; nothing to do", &digest[..16]);
        return Ok(None);
    }
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| anyhow!("{shown}:{}:{}: not JSON: {e}", e.line(), e.column()))?;
    progress("validating");
    // A resumed load parses relative times against the first attempt's clock, so every
    // item comes out as it did then.
    let parsed_at = run.as_ref().map_or_else(Utc::now, |r| r.parsed_at);
    let inv = match Inventory::parse_keyed(&doc, parsed_at, Some(digest)) {
        Ok(inv) => inv,
        Err(errors) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len());
        }
    };
    drop(doc);
    // Judged before the run commits: the run that ends a gap repairs its source.
    let source_stale = match &inv.source {
        Some(s) => store.feed_freshness(s.as_str(), Utc::now()).await?.is_stale(),
        None => false,
    };
    if run.is_none() {
        let plan = match store.plan_inventory(&inv).await {
            Ok(plan) => plan,
            Err(StoreError::Import(errors)) => {
                for e in &errors {
                    eprintln!("{shown}: {e}");
                }
                bail!("{shown}: {} fault(s); nothing was imported", errors.len());
            }
            Err(e) => bail!("{shown}: {e}"),
        };
        if plan.is_refresh(&inv) {
            return refresh_into(store, shown, &inv, plan).await.map(Some);
        }
    }
    if let Some(run) = &run {
        progress(&format!(
            "resuming the load begun at {}: {} of {} batches are stored",
            run.started_at, run.done, run.batches
        ));
    } else {
        progress(&format!("writing {} nodes and {} edges in batches of {batch}", inv.nodes.len(), inv.edges.len()));
    }
    let writing = std::time::Instant::now();
    let live = std::io::stderr().is_terminal();
    // Ctrl-C stops the load after the batch in flight; running it again resumes there.
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
            }
        })
    };
    let total = inv.nodes.len() + inv.edges.len();
    let before = run.as_ref().map_or(0, |r| (r.done * r.batch_size).min(total));
    let result = store
        .import_bulk(digest, shown, parsed_at, &inv, batch, |p| {
            if live {
                let secs = writing.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\rbatch {}/{}: {}/{} nodes, {}/{} edges, {:.0} items/s   ",
                    p.batch,
                    p.batches,
                    p.nodes,
                    p.total_nodes,
                    p.edges,
                    p.total_edges,
                    (p.nodes + p.edges - before) as f64 / secs
                );
            }
            if interrupted.load(Ordering::SeqCst) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await;
    watcher.abort();
    if live {
        eprintln!();
    }
    match result {
        Ok(s) if s.stopped => bail!(
            "{shown}: interrupted; {} of {} batches are stored; run the same import again to resume",
            s.done,
            s.batches
        ),
        Ok(s) => Ok(Some(Imported {
            nodes: s.nodes,
            edges: s.edges,
            write_secs: writing.elapsed().as_secs_f64(),
            source: inv.source.as_ref().map(|s| s.as_str().to_owned()),
            source_stale,
        })),
        Err(StoreError::Import(errors)) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len())
        }
        Err(e) => Err(anyhow!("{shown}: {e}")),
    }
}

async fn verify(cfg: &Config, checkpoints: Option<&Path>, pinned: Option<&ed25519_dalek::VerifyingKey>) -> Result<()> {
    use graph_model::checkpoint::{self, Verdict};
    let started = std::time::Instant::now();
    let lines = match checkpoints {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some((path, checkpoint::parse_file(&text)))
        }
        None => None,
    };
    progress(&format!("opening {}", cfg.db.url));
    let store = open_store(cfg).await?;
    progress("recomputing the decision chain");
    let chain = store.verify_decision_chain_links().await;
    progress("checking policy and evidence digests");
    let digests = store.verify_digests().await;
    store.close().await;
    let (chain, links) = chain?;
    let digests = digests?;
    let compared = lines.map(|(path, lines)| (path, checkpoint::compare(&links, &lines, pinned)));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "decision chain: {} records, head {}{}",
        chain.length,
        &chain.head_hash[..16.min(chain.head_hash.len())],
        if chain.ok() { ", intact" } else { "" }
    );
    println!("policies: {} versions, {} altered", digests.policies, digests.altered_policies.len());
    println!("evidence: {} items, {} altered", digests.evidence, digests.altered_evidence.len());
    for id in digests.altered_policies.iter().chain(&digests.altered_evidence) {
        eprintln!("{id}: content no longer matches its SHA-256");
    }
    if let Some((path, report)) = &compared {
        let key = report.key.as_deref().unwrap_or("none");
        let pinned = if pinned.is_some() { "the key given" } else { "compare it with the key you trust" };
        println!("checkpoints: {} in {}, signed by {key} ({pinned})", report.checkpoints, path.display());
        match &report.verdict {
            Verdict::Consistent { checked, after } => {
                println!("checkpoints: decisions #1..=#{checked} are the ones they saw; {after} taken since")
            }
            Verdict::Restored { at, seen } => println!(
                "checkpoints: the chain is what they saw, cut short: restored at seq {at} (they saw #{seen}); decisions #{}..=#{seen} are missing",
                at + 1
            ),
            Verdict::Differs { .. } | Verdict::BadFile { .. } => {}
        }
    }
    println!("checked in {secs:.2}s");
    if let Some(b) = &chain.first_broken {
        let at = b.decision.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
        bail!("the decision chain is broken at #{}{at}: {}", b.seq, b.problem);
    }
    if !digests.altered_policies.is_empty() || !digests.altered_evidence.is_empty() {
        bail!("stored records no longer match their digests");
    }
    match compared.map(|(path, r)| (path, r.verdict)) {
        Some((_, Verdict::Differs { seq, decision, line })) => {
            let at = decision.map(|d| format!(" ({d})")).unwrap_or_default();
            bail!(
                "decision #{seq}{at} is not the one the checkpoint on line {line} saw: the chain was rewritten from #{seq} on"
            )
        }
        Some((path, Verdict::BadFile { line, problem })) => bail!("{}:{line}: {problem}", path.display()),
        Some((_, Verdict::Restored { at, .. })) => {
            bail!("the chain is a prefix of what the checkpoints saw: restored at seq {at}")
        }
        _ => Ok(()),
    }
}

/// A record id given as `flag`.
fn parse_id(flag: &str, id: &str) -> Result<graph_model::NodeId> {
    graph_model::NodeId::parse(id).map_err(|e| anyhow!("{flag}: {}", e.message))
}

/// Write the evidence bundle of a case or a campaign.
async fn export_bundle(cfg: &Config, about: About, out: Option<PathBuf>) -> Result<()> {
    let (About::Case(id) | About::Campaign(id)) = &about;
    let dir = out.unwrap_or_else(|| PathBuf::from(format!("bundle-{}", id.key())));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{}: exists and is not empty; name a new directory with --out", dir.display());
    }
    progress(&format!("opening {}", cfg.db.url));
    let store = open_store(cfg).await?;
    progress(&format!("collecting {id}"));
    let files = match &about {
        About::Case(id) => store.evidence_bundle(id).await,
        About::Campaign(id) => store.campaign_bundle(id).await,
    };
    store.close().await;
    let files = files.map_err(|e| anyhow!("{id}: {e}"))?;
    let total = files.len();
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &f.bytes).with_context(|| format!("writing {}", path.display()))?;
        progress(&format!("wrote {}/{total} files", i + 1));
    }
    let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    println!("{}: {total} files, {bytes} bytes; check it with `nhigov verify-bundle {}`", dir.display(), dir.display());
    Ok(())
}

async fn export_csv(
    cfg: &Config,
    table: CsvTable,
    framework: Option<String>,
    from: Option<chrono::DateTime<Utc>>,
    to: Option<chrono::DateTime<Utc>>,
    out: Option<PathBuf>,
) -> Result<()> {
    let reference = framework
        .map(|f| graph_model::FrameworkRef::parse(&f))
        .transpose()
        .map_err(|e| anyhow!("--framework: {}", e.message))?;
    let store = open_store(cfg).await?;
    let csv = match table {
        CsvTable::Decisions => {
            let f = graph_model::store::DecisionFilter { reference, from, to, ..Default::default() };
            store.decisions_csv(&f).await
        }
        CsvTable::Evidence => {
            let f = graph_model::store::EvidenceFilter {
                reference,
                collected_from: from,
                collected_to: to,
                ..Default::default()
            };
            store.evidence_csv(&f).await
        }
    };
    store.close().await;
    let csv = csv?;
    let rows = csv.lines().count().saturating_sub(1);
    match out {
        Some(path) => {
            std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{}: {rows} rows", path.display());
        }
        None => print!("{csv}"),
    }
    Ok(())
}

fn verify_bundle(dir: &std::path::Path) -> Result<()> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.insert(rel, bytes);
        }
    }
    let report = graph_model::bundle::verify(&files);
    for p in &report.problems {
        eprintln!("{}: {p}", dir.display());
    }
    println!(
        "{}: {} files, {} decisions, {} pieces of evidence, {} policy versions{}",
        dir.display(),
        report.files,
        report.decisions,
        report.evidence,
        report.policies,
        if report.ok() { ": intact" } else { "" }
    );
    if !report.ok() {
        bail!("the bundle does not verify ({} problems)", report.problems.len());
    }
    Ok(())
}

fn generate(nhis: usize, seed: u64, out: &std::path::Path) -> Result<()> {
    use std::io::Write;
    if nhis == 0 {
        bail!("--nhis: at least 1");
    }
    let started = std::time::Instant::now();
    progress(&format!("generating {nhis} NHIs (seed {seed})"));
    let (doc, shape) = crate::generate::generate(nhis, seed);
    let shown = out.display();
    progress(&format!("writing {} nodes and {} edges to {shown}", shape.nodes, shape.edges));
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, &doc)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    if out.as_os_str() == "-" {
        write(&mut std::io::BufWriter::new(std::io::stdout().lock())).context("writing to standard output")?;
    } else {
        let file = std::fs::File::create(out).with_context(|| format!("cannot create {shown}"))?;
        write(&mut std::io::BufWriter::new(file)).with_context(|| format!("cannot write {shown}"))?;
    }
    eprintln!(
        "generated {} nodes and {} edges ({nhis} NHIs, seed {seed}) in {:.2}s",
        shape.nodes,
        shape.edges,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
