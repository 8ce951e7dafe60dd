//! The command line, one module per command: `serve`, `import`, `verify` and
//! `verify-bundle`, `export`, `backup` and `restore`, `bootstrap` and `db-user`,
//! `fixtures generate`; `schema`, `token` and `checkpoint-key` are a few lines here.

mod admin;
mod backup;
mod export;
use export::ExportArgs;
mod fixtures;
mod import;
mod serve;
mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::{Parser, Subcommand};
use graph_model::store::{BulkLoad, SettlePass, Settled, Store, StoreError};

use crate::auth::Authenticator;
use crate::config::{Config, LogFormat, Mode};
pub use import::{Imported, import};

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
    /// one transaction each, several side by side (a document smaller than a batch is one
    /// transaction). A load that stopped resumes with the batches it did not store when
    /// run again on the same file. Stop a server using the same embedded store first, or
    /// use the importInventory mutation.
    Import {
        /// The document to import.
        file: PathBuf,
        /// Items (nodes and edges) per transaction.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        /// Batches written side by side (default: the machine's cores, at most 4).
        #[arg(long)]
        parallel: Option<usize>,
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
        #[command(flatten)]
        remote: ServerArgs,
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
    Export(ExportArgs),
    /// Back up a store to FILE while its server runs: one consistent snapshot, as a
    /// SurrealQL dump (SurrealDB's export format) with a closing line that proves it
    /// whole. `--server` asks a running server, with an admin's token; `--db` reads a
    /// store directly (its server stopped, or a remote SurrealDB).
    Backup {
        /// The file to write (refused if it exists; written as FILE.partial until whole).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        remote: ServerArgs,
        #[arg(long)]
        db: Option<String>,
    },
    /// Rebuild a store from a backup, into an empty database only, then verify it as
    /// `verify` does. Exits 1 when the file is cut short or damaged, the database is not
    /// empty, or the restored store does not verify.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The store to rebuild (a new directory, or an empty database on a server).
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

/// A running server whose store a command reads, through a backup taken with an admin's
/// token (`GET /admin/backup`), instead of opening a store itself.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// A running server's base URL, such as http://127.0.0.1:8080.
    #[arg(long, conflicts_with = "db")]
    pub server: Option<String>,
    /// An admin's bearer token (a sign-in token or an API token), for --server.
    #[arg(long, env = "NHIGOV_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    let cfg = Config::load(cli.config.as_deref()).map_err(|e| anyhow!(e))?;
    match cli.command {
        Command::Schema => {
            print!("{}", nhigov_schema::sdl());
            Ok(())
        }
        Command::Bootstrap { admins, roles, db } => {
            let cfg = with_db(cfg, db);
            admin::bootstrap(&cfg, &admins, roles.as_deref()).await
        }
        Command::Token { subject, ttl, db } => admin::token(&with_db(cfg, db), &subject, &ttl),
        Command::Fixtures { action: FixturesCommand::Generate { nhis, seed, out } } => {
            fixtures::generate(nhis, seed, &out)
        }
        Command::Verify { db, remote, checkpoints, public_key } => {
            let cfg = with_db(cfg, db);
            let pinned = public_key
                .map(|k| graph_model::checkpoint::parse_public_key(&k))
                .transpose()
                .map_err(|e| anyhow!("--public-key: {e}"))?;
            let (cfg, _snapshot) = from_server(cfg, &remote).await?;
            verify::verify(&cfg, checkpoints.as_deref(), pinned.as_ref()).await
        }
        Command::CheckpointKey { file } => crate::checkpoints::write_new_key(&file),
        Command::Export(args) => {
            let cfg = with_db(cfg, args.db.clone());
            let (cfg, _snapshot) = from_server(cfg, &args.remote).await?;
            export::export(&cfg, args).await
        }
        Command::Backup { out, remote, db } => backup::take(&with_db(cfg, db), &remote, &out).await,
        Command::Restore { file, db } => {
            let cfg = with_db(cfg, db);
            backup::restore(&cfg, &file).await
        }
        Command::VerifyBundle { dir } => verify::verify_bundle(&dir),
        Command::DbUser { user, apply, db } => {
            let cfg = with_db(cfg, db);
            admin::db_user(&cfg, &user, apply).await
        }
        Command::Import { file, batch, parallel, db } => {
            let cfg = with_db(cfg, db);
            if batch == 0 {
                bail!("--batch: at least 1");
            }
            if parallel == Some(0) {
                bail!("--parallel: at least 1");
            }
            let mut load = BulkLoad::new(batch);
            load.parallel = parallel.unwrap_or(load.parallel);
            import::import(&cfg, &file, load).await.map(|_| ())
        }
        Command::Serve { bind, db, demo, production } => {
            let mut cfg = with_db(cfg, db);
            if let Some(bind) = bind {
                cfg.bind = bind;
            }
            if production {
                cfg.mode = Mode::Production;
            }
            serve::serve(cfg, demo).await
        }
    }
}

/// `cfg` with the store `--db` names, when it names one.
fn with_db(mut cfg: Config, db: Option<String>) -> Config {
    if let Some(db) = db {
        cfg.db.url = db;
    }
    cfg
}

/// With `--server`, the configuration of a temporary copy of that server's store (and
/// the directory holding it, removed when dropped); without it, `cfg` as it is.
async fn from_server(cfg: Config, remote: &ServerArgs) -> Result<(Config, Option<tempfile::TempDir>)> {
    match (remote.server.as_deref(), remote.token.as_deref()) {
        (Some(url), Some(token)) => {
            progress(&format!("copying the store of {url}"));
            let (local, dir) = backup::snapshot(&cfg, url, token).await?;
            Ok((local, Some(dir)))
        }
        (Some(_), None) => bail!("--server needs an admin's --token (or NHIGOV_TOKEN)"),
        _ => Ok((cfg, None)),
    }
}

fn authenticator(cfg: &Config) -> Result<Authenticator> {
    let secret_file = cfg.data_dir().map(|d| d.join("jwt-secret"));
    Authenticator::from_config(&cfg.auth, cfg.mode, secret_file.as_deref()).map_err(|e| anyhow!(e))
}

async fn open_store(cfg: &Config) -> Result<Store> {
    Store::open(&cfg.store_config()).await.map_err(|e| match e {
        StoreError::SchemaTooNew { .. } => anyhow!("{e}"),
        e => anyhow!("cannot open the store at {}: {e}", cfg.db.url),
    })
}

/// After a bulk write into an embedded store (a bulk load, a restore), let the engine
/// run the merges the write left it owing (see `Store::settle`), so the server's first
/// start does not. The data is stored already: a failure here is reported, not fatal.
async fn settle(cfg: &Config) -> Option<Settled> {
    let live = std::io::stderr().is_terminal();
    let mut on_pass = |p: SettlePass| {
        if live {
            eprint!(
                "\rsettling the store: pass {}, {} MiB of files changed in {:.1}s   ",
                p.pass,
                p.bytes >> 20,
                p.secs
            );
        }
    };
    match Store::settle(&cfg.store_config(), &mut on_pass).await {
        Ok(Some(s)) => {
            if live {
                eprintln!();
            }
            if s.done {
                println!(
                    "the store settled: {} merge(s), {} MiB of files changed, in {:.2}s",
                    s.merges,
                    s.bytes >> 20,
                    s.secs
                );
            } else {
                println!(
                    "the store had not settled after {} merges ({} MiB, {:.2}s); the server's first start runs the rest",
                    s.merges,
                    s.bytes >> 20,
                    s.secs
                );
            }
            Some(s)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!(
                "settling the store after the load failed (the data is stored; the server's first start merges instead): {e}"
            );
            None
        }
    }
}

/// One line of progress on a terminal; nothing when piped.
fn progress(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{msg}");
    }
}

/// A record id given as `flag`.
fn parse_id(flag: &str, id: &str) -> Result<graph_model::NodeId> {
    graph_model::NodeId::parse(id).map_err(|e| anyhow!("{flag}: {}", e.message))
}
