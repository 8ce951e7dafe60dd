//! The SurrealDB graph store: the one place that speaks SurrealQL.
//!
//! [`Store`] wraps a connection (embedded SurrealKV, `mem://`, or a remote server over
//! `ws://`/`wss://`), applies the schema at open, and exposes typed operations. Results
//! come back as JSON values and are read into the domain types with serde; writes bind
//! typed SurrealDB values, so datetimes and record ids are stored as such.
//!
//! Every statement batch sent to the database counts one round trip in
//! [`Store::round_trips`], which the API's tests use to prove that batch loaders keep the
//! number of queries constant.

mod backup;
mod conn;
mod document;
mod edges;
pub(crate) mod events;
mod export;
mod feeds;
mod governance;
mod graph;
mod import;
pub mod metrics;
mod nodes;
mod paging;
mod reconcile;
mod retention;
mod schema;
mod settle;
mod signins;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use surrealdb::opt::auth::{Database, Root};
use surrealdb::types::{Object, RecordId, SurrealValue, Value};
use tracing::{Instrument, debug, info, warn};

use crate::domain::inventory::ItemError;
use crate::domain::{EdgeId, NodeId, ValueError};
use conn::Conn;
pub use conn::EmbeddedMemory;

pub use backup::{BackupFile, Restored, check_backup, check_backup_file, restore};
pub use document::{ImportFailure, ImportKind, ImportReport, ImportStep};
pub use edges::EdgeDirection;
pub use feeds::FeedStatus;
pub use governance::*;
pub use graph::TraversalRecord;
pub use import::{BulkLoad, BulkProgress, BulkSummary, ImportPlan, ImportRun, ImportSummary};
pub use nodes::{NodeFilter, NodeRecord};
pub use paging::{Cursor, Order, OrderBy, Page, PageRequest};
pub use retention::{PruneReport, Retention};
pub use schema::SCHEMA_VERSION;
pub use settle::{DirState, SettlePass, Settled};
pub use webhooks::{Attempt, Delivery, DeliveryCounts};

/// Where the store lives and how to reach it.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `surrealkv://PATH` (embedded, the default), `mem://`, or `ws://HOST:PORT` /
    /// `wss://HOST:PORT` for a SurrealDB server. A bare path means SurrealKV there.
    pub url: String,
    pub namespace: String,
    pub database: String,
    /// Credentials for a remote server; embedded engines need none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Whom the credentials name on a remote server: a user of the store's database
    /// (what `nhigov db-user` creates, the least a running service needs), or root.
    pub user_level: UserLevel,
    /// How stale the graph index may be about other processes' writes: a traversal
    /// re-reads the store's changes when this much time has passed since the last look.
    /// This process's own writes are seen by the next traversal regardless.
    pub graph_refresh: std::time::Duration,
    /// How far back each look at the store's changes (the graph index's, the control
    /// evaluator's) reads again, so that a transaction that committed a little after
    /// the time it stamped, or a replica whose clock runs behind by less, is not missed.
    pub change_margin: std::time::Duration,
    /// Freshness windows of feed sources: a source past its window pauses the
    /// automation its data drives (see `domain::feeds`).
    pub feed_freshness: crate::domain::feeds::FeedFreshness,
    /// What an embedded SurrealKV store may keep in memory.
    pub memory: EmbeddedMemory,
    /// At most this many subjects per transaction of a control version's first
    /// evaluation: each part is a decision of its own, so that no transaction outgrows
    /// the embedded store's memtable (see `governance::controls`).
    pub evaluation_part: usize,
}

/// The level of SurrealDB user a remote store signs in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserLevel {
    /// A user defined on the store's database with the EDITOR role: it can define and
    /// change the schema and records of that database, and nothing else on the server
    /// (no other database, no users, no namespaces). The database must exist.
    #[default]
    Database,
    /// The server's root user: it can create the namespace and database itself.
    Root,
}

/// Create the namespace and database of `cfg` when missing, and (re)define `user` on
/// that database with the EDITOR role and `password`, signed in with `cfg`'s root
/// credentials. What `nhigov db-user --apply` runs, before a service signs in as `user`.
pub async fn define_database_user(cfg: &StoreConfig, user: &str, password: &str) -> Result<()> {
    if !cfg.is_remote() {
        return Err(StoreError::Invalid(ValueError::new(
            "db.url",
            "database users exist on a SurrealDB server (ws://, wss://)",
        )));
    }
    let (Some(username), Some(root_password)) = (&cfg.username, &cfg.password) else {
        return Err(StoreError::Database(
            "defining a database user needs the server's root credentials (db.username, db.password)".into(),
        ));
    };
    let db = surrealdb::engine::any::connect(cfg.url.as_str()).await?;
    db.signin(Root { username: username.clone(), password: root_password.clone() }).await?;
    let sql = database_user_sql(&cfg.namespace, &cfg.database, user, password)?;
    let mut resp = db.query(sql).await?;
    let errors = resp.take_errors();
    if let Some((_, e)) = errors.into_iter().next() {
        return Err(StoreError::Database(format!("defining the database user: {e}")));
    }
    Ok(())
}

/// The statements that make `user` the store's database user. SurrealQL takes the
/// password as a literal (not a parameter), so it is 16 to 128 printable ASCII
/// characters without quotes or backslashes.
pub fn database_user_sql(namespace: &str, database: &str, user: &str, password: &str) -> Result<String> {
    let plain = |b: u8| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'\\');
    if !(16..=128).contains(&password.len()) || !password.bytes().all(plain) {
        return Err(StoreError::Invalid(ValueError::new(
            "password",
            "16 to 128 printable ASCII characters, without quotes or backslashes",
        )));
    }
    Ok(format!(
        "DEFINE NAMESPACE IF NOT EXISTS {ns};\nUSE NS {ns};\nDEFINE DATABASE IF NOT EXISTS {db};\nUSE DB {db};\n\
         DEFINE USER OVERWRITE {user} ON DATABASE PASSWORD '{password}' ROLES EDITOR;\n",
        ns = ident(namespace)?,
        db = ident(database)?,
        user = ident(user)?,
    ))
}

impl StoreConfig {
    /// The default [`StoreConfig::change_margin`].
    pub const CHANGE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

    /// The default [`StoreConfig::evaluation_part`]: at 100,000 NHIs a part's
    /// transaction holds some tens of MiB, well within the default memtable.
    pub const EVALUATION_PART: usize = 10_000;

    /// An in-memory store, for tests.
    pub fn memory() -> StoreConfig {
        StoreConfig {
            url: "mem://".into(),
            namespace: "nhigov".into(),
            database: "main".into(),
            username: None,
            password: None,
            user_level: UserLevel::Database,
            graph_refresh: std::time::Duration::from_millis(500),
            change_margin: StoreConfig::CHANGE_MARGIN,
            feed_freshness: Default::default(),
            memory: EmbeddedMemory::DEFAULT,
            evaluation_part: StoreConfig::EVALUATION_PART,
        }
    }

    /// The store a test runs on: in memory, or, when `NHIGOV_TEST_STORE` names a SurrealDB
    /// server (`ws://127.0.0.1:8000`), a database of its own on that server, so one suite
    /// runs against both. The server's root credentials come from
    /// `NHIGOV_TEST_STORE_USER` and `NHIGOV_TEST_STORE_PASS` (default `root`/`root`).
    pub fn for_tests() -> StoreConfig {
        let memory = StoreConfig::memory();
        let Some(url) = std::env::var("NHIGOV_TEST_STORE").ok().filter(|u| !u.trim().is_empty()) else {
            return memory;
        };
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "root".into());
        StoreConfig {
            url,
            namespace: "nhigov_test".into(),
            database: format!("t{}", uuid::Uuid::new_v4().simple()),
            username: Some(var("NHIGOV_TEST_STORE_USER")),
            password: Some(var("NHIGOV_TEST_STORE_PASS")),
            user_level: UserLevel::Root,
            ..memory
        }
    }

    /// The URL the SurrealDB client is given: embedded SurrealKV syncs every commit to
    /// disk before it returns, so an answered write survives a crash.
    fn engine_url(&self) -> String {
        let url = self.url.trim();
        if url.starts_with("mem://") || url == "memory" || url.starts_with("ws://") || url.starts_with("wss://") {
            return url.to_owned();
        }
        let path = url.strip_prefix("surrealkv://").unwrap_or(url);
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("sync=")).collect();
        params.push("sync=every");
        format!("surrealkv://{path}?{}", params.join("&"))
    }

    pub fn is_remote(&self) -> bool {
        self.url.starts_with("ws://") || self.url.starts_with("wss://")
    }
}

/// What can go wrong in the store, in terms the API maps to error codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A fact the write was planned on changed before it committed (a guard's
    /// `STALE:` throw): plan again.
    #[error("stale: {0}")]
    Stale(String),
    /// Another decision took the chain's next place first: plan again on the new head.
    #[error("the decision chain moved")]
    ChainMoved,
    /// A unique index refused a second record with the same key.
    #[error("a record with the same key exists (index {index})")]
    Unique { index: String },
    /// The database aborted the transaction for a concurrent write; it can be retried.
    #[error("a concurrent write aborted the transaction")]
    Retryable,
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("the inventory document has {} fault(s)", .0.len())]
    Import(Vec<ItemError>),
    #[error(
        "this database was written by a newer nhigov (schema version {found}; this build knows up to {supported}); upgrade nhigov"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    /// A policy rule refused a decision; the refusal itself was recorded.
    #[error("refused by {}: {}", .violation.rule, .violation.message)]
    Refused { violation: crate::domain::Violation, decision: NodeId },
    #[error("database error: {0}")]
    Database(String),
}

impl From<surrealdb::Error> for StoreError {
    fn from(e: surrealdb::Error) -> Self {
        database_error(e.to_string())
    }
}

/// A fault of the database, with what to do about it where there is something.
fn database_error(msg: String) -> StoreError {
    if msg.contains("Memtable arena is full") {
        return StoreError::Database(format!(
            "{msg}: one transaction wrote more than the embedded store's memtable holds; raise db.memtable_mb"
        ));
    }
    StoreError::Database(msg)
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection to the graph store. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Store {
    /// Shared, not cloned: cloning a `Surreal` handle opens a new server session and
    /// replays `attach`, `use` and `signin` on it (and `detach` when it drops), a round
    /// trip per clone over `ws://` that can also fail under load.
    db: Arc<Conn>,
    round_trips: Arc<AtomicU64>,
    /// Of those, the chain-head reads a decision commit makes while its write is applied
    /// (see `commit_batch`): their number follows the scheduler, not the request.
    commit_probes: Arc<AtomicU64>,
    metrics: Arc<metrics::StoreMetrics>,
    remote: bool,
    /// A remote server's HTTP routes, for backups (see `backup`).
    remote_http: Option<Arc<backup::RemoteHttp>>,
    /// The embedded engine's lock file, released once the engine has shut down.
    lock_file: Option<std::path::PathBuf>,
    /// Decisions from this process take turns (see `governance`); the lock holds the
    /// chain head as this process last committed it, when nothing has cast doubt on it.
    chain_lock: Arc<tokio::sync::Mutex<Option<crate::domain::ChainHead>>>,
    /// Decisions planned and waiting for the committer, which seals all that are ready
    /// in one transaction (see `governance`).
    chain_queue: Arc<std::sync::Mutex<Vec<governance::Pending>>>,
    /// Told of each plan that joins the queue (see `governance`).
    chain_queued: Arc<tokio::sync::Notify>,
    /// The owners the committer last checked in full, by node (see `governance::guards`).
    owners_seen: Arc<std::sync::Mutex<governance::OwnersSeen>>,
    /// The in-process adjacency index (see `graph`).
    graph: Arc<graph::LiveGraph>,
    /// Events for this process's subscribers (see `events`).
    feed: Arc<events::Feed>,
    /// Freshness windows of feed sources (see `feeds`).
    feeds: Arc<crate::domain::feeds::FeedFreshness>,
    /// Woken by every write except the control evaluator's own (see `governance::controls`).
    controls_wake: Arc<tokio::sync::Notify>,
    /// Control evaluations of this process take turns (the lease orders replicas); it
    /// holds how far they have judged the changes (see `governance::control_facts`).
    controls_turn: Arc<tokio::sync::Mutex<governance::Seen>>,
    /// Subjects per part of a control version's first evaluation.
    evaluation_part: usize,
    /// Who requests sign in as, remembered until this process writes (see `signins`).
    signins: Arc<signins::SignIns>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("remote", &self.remote).finish()
    }
}

impl Store {
    /// Connect, select the namespace and database (creating them when missing), and
    /// bring the schema up to this build's version.
    pub async fn open(cfg: &StoreConfig) -> Result<Store> {
        let lock_file = embedded_lock(cfg)?;
        let db = connect(cfg).await?;
        let store = Store {
            db: Arc::new(db),
            round_trips: Arc::new(AtomicU64::new(0)),
            commit_probes: Arc::new(AtomicU64::new(0)),
            metrics: Arc::default(),
            remote: cfg.is_remote(),
            remote_http: backup::RemoteHttp::of(cfg).map(Arc::new),
            lock_file,
            chain_lock: Arc::new(tokio::sync::Mutex::new(None)),
            chain_queue: Arc::default(),
            chain_queued: Arc::default(),
            owners_seen: Arc::default(),
            controls_wake: Arc::new(tokio::sync::Notify::new()),
            controls_turn: Arc::default(),
            graph: Store::new_live_graph(cfg.graph_refresh, cfg.change_margin),
            feed: Arc::default(),
            feeds: Arc::new(cfg.feed_freshness.clone()),
            evaluation_part: cfg.evaluation_part.max(1),
            signins: Arc::new(if cfg.is_remote() { signins::SignIns::shared() } else { signins::SignIns::default() }),
        };
        // Retried on conflict: stores opening side by side on one server race to define
        // the namespace they share. A database user cannot, and needs not: its database
        // exists.
        if !(cfg.is_remote() && cfg.user_level == UserLevel::Database) {
            store
                .write(
                    &format!(
                        "DEFINE NAMESPACE IF NOT EXISTS {ns}; USE NS {ns}; DEFINE DATABASE IF NOT EXISTS {db};",
                        ns = ident(&cfg.namespace)?,
                        db = ident(&cfg.database)?
                    ),
                    &Vars::new(),
                )
                .await?;
        }
        store.db.use_database(&cfg.namespace, &cfg.database).await?;
        schema::migrate(&store).await?;
        store.ensure_baseline_policy().await?;
        if let Some(d) = store.adopt_roles().await? {
            info!(decision = %d.id, "roles held before they were governed adopted by one decision");
        }
        if let Some(d) = store.revoke_tokens_for_people().await? {
            info!(decision = %d.id, "tokens held for another person revoked by one decision");
        }
        info!(url = %redact(&cfg.url), schema_version = SCHEMA_VERSION, "store open");
        Ok(store)
    }

    /// A handle on the same database that shares none of this one's state in process
    /// (chain lock, graph index, event feed; only the connection), as a second API
    /// replica would: only the chain head's compare-and-set keeps their decisions apart,
    /// and its graph index learns of writes from the database alone. For tests of
    /// exactly that.
    #[doc(hidden)]
    pub fn as_replica(&self) -> Store {
        // Two handles now write the one database: neither may trust its own writes alone
        // to tell it when a person changed.
        self.signins.share();
        Store {
            chain_lock: Arc::new(tokio::sync::Mutex::new(None)),
            chain_queue: Arc::default(),
            chain_queued: Arc::default(),
            owners_seen: Arc::default(),
            controls_wake: Arc::new(tokio::sync::Notify::new()),
            controls_turn: Arc::default(),
            graph: Store::new_live_graph(self.graph.refresh, self.graph.margin),
            feed: Arc::default(),
            ..self.clone()
        }
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<()> {
        let mut resp = self.send("RETURN 1".into(), None).await?;
        check(&mut resp)
    }

    /// How many statement batches this store has sent to the database.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// How many of [`Store::round_trips`] were a decision commit looking whether its
    /// write has been applied yet, so that the next group can be sealed behind it. The
    /// number depends on how the threads were scheduled: a test that counts the queries
    /// a request costs leaves these out.
    pub fn commit_probes(&self) -> u64 {
        self.commit_probes.load(Ordering::Relaxed)
    }

    pub(crate) fn count_commit_probe(&self) {
        self.commit_probes.fetch_add(1, Ordering::Relaxed);
    }

    /// Database latency and decisions recorded, for `/metrics`.
    pub fn metrics(&self) -> &metrics::StoreMetrics {
        &self.metrics
    }

    /// Cases not closed, and those of them past their due time, across all replicas.
    pub async fn case_counts(&self) -> Result<(u64, u64)> {
        let mut resp = self
            .read(
                "RETURN [(SELECT count() FROM case WHERE status != 'closed' GROUP ALL)[0].count ?? 0,
                         (SELECT count() FROM case WHERE status != 'closed' AND due_at < time::now() GROUP ALL)[0].count ?? 0];",
                &Vars::new(),
            )
            .await?;
        let [open, overdue]: [u64; 2] = take(&mut resp, 0)?;
        Ok((open, overdue))
    }

    /// Release the store. Embedded engines sync every commit already; closing lets the
    /// engine shut down and, once the last handle is gone, waits (up to ten seconds) for
    /// it to release its directory, so the same directory can be opened again at once.
    pub async fn close(self) {
        if let Err(e) = self.db.invalidate().await {
            debug!(error = %e, "invalidate on close");
        }
        let lock_file = self.lock_file.clone();
        drop(self);
        if let Some(lock) = lock_file {
            released(&lock).await;
        }
        info!("store closed");
    }

    /// Let the embedded store `cfg` names finish the merges a bulk write left it owing,
    /// so that the next process to open it (a server) does not run them beside its own
    /// start (see `settle`); `on_pass` hears of each time it is opened. `None` for
    /// other engines, whose compaction is the server's. The store must be closed.
    pub async fn settle(cfg: &StoreConfig, on_pass: &mut (dyn FnMut(SettlePass) + Send)) -> Result<Option<Settled>> {
        let Some(lock) = embedded_lock(cfg)? else { return Ok(None) };
        settle::settle(&cfg.engine_url(), &lock, cfg.memory, on_pass).await.map(Some)
    }

    /// Run SurrealQL as it is and return the last statement's result, for tests that
    /// tamper with records underneath the API. Built only with the `test-support`
    /// feature: the service has no way to run it.
    #[cfg(feature = "test-support")]
    pub async fn execute_raw(&self, sql: &str) -> Result<serde_json::Value> {
        let mut resp = self.send(sql.to_owned(), None).await?;
        self.wrote();
        check(&mut resp)?;
        let last = resp.num_statements().saturating_sub(1);
        take(&mut resp, last)
    }

    /// Send one batch of statements, with its variables.
    pub(crate) async fn send(&self, sql: String, vars: Option<Value>) -> surrealdb::Result<surrealdb::IndexedResults> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.db.query(sql, vars).await
    }

    /// Stream the rows of statements that read (see [`conn::Conn::stream_rows`]).
    pub(crate) fn stream_rows(
        &self,
        sql: String,
    ) -> Result<futures::stream::BoxStream<'static, Result<(usize, surrealdb::types::Value)>>> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.db.stream_rows(sql)
    }

    /// What this process must do once it has sent a write, before anyone hears of it:
    /// the graph index and the sign-ins read before it are no longer fresh.
    fn wrote(&self) {
        self.graph.mark_dirty();
        self.signins.wrote();
    }

    /// Run a statement batch that writes, retrying the whole batch when the database
    /// reports a transaction conflict (snapshot isolation: the loser must start over).
    pub(crate) async fn write(&self, sql: &str, vars: &Vars) -> Result<surrealdb::IndexedResults> {
        self.write_waking(sql, vars, !governance::evaluating()).await
    }

    /// [`Store::write`] of statements that write no person and no API token: the sign-ins
    /// this process remembers stay (see `signins`).
    pub(crate) async fn write_beside_signins(&self, sql: &str, vars: &Vars) -> Result<surrealdb::IndexedResults> {
        self.write_with(sql, vars, !governance::evaluating(), false).await
    }

    /// [`Store::write`], saying whether the write wakes the control evaluator (the
    /// evaluator's own writes do not): for a batch written on behalf of other tasks.
    pub(crate) async fn write_waking(&self, sql: &str, vars: &Vars, wake: bool) -> Result<surrealdb::IndexedResults> {
        self.write_with(sql, vars, wake, true).await
    }

    /// [`Store::write_waking`], saying whether the write may change a person or an API
    /// token; when it cannot, the sign-ins this process remembers stay (see `signins`).
    /// False only where the statements are known: a wrong false lets a changed person
    /// sign in as they were until this process next writes.
    pub(crate) async fn write_with(
        &self,
        sql: &str,
        vars: &Vars,
        wake: bool,
        signins: bool,
    ) -> Result<surrealdb::IndexedResults> {
        const ATTEMPTS: u32 = 8;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let span = tracing::info_span!("db", db.system.name = "surrealdb", db.operation.name = "write", attempt);
            let sent = self.send(sql.to_owned(), Some(vars.value())).instrument(span).await;
            self.metrics.db_latency.observe(started.elapsed());
            let mut resp = sent?;
            // Whatever it wrote, the next traversal and sign-in from this process must
            // see it, and this process's subscribers should hear of it without waiting
            // for a tick.
            self.graph.mark_dirty();
            if signins {
                self.signins.wrote();
            }
            self.feed.poke();
            if wake {
                self.controls_wake.notify_one();
            }
            match check(&mut resp) {
                Err(StoreError::Retryable) if attempt < ATTEMPTS => {
                    warn!(attempt, "write conflict, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(2u64 << attempt)).await;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(resp),
            }
        }
    }

    /// The rows of `select`, which reads the list `$list`, for `values`: read 32 values
    /// at a time ([`IN_LIST`]) in one statement, so that `field IN $list` is read from
    /// the field's index whatever the number of values; rows come in order within each
    /// chunk.
    pub(crate) async fn read_in<T: DeserializeOwned, V: SurrealValue + Clone>(
        &self,
        select: &str,
        list: &str,
        values: Vec<V>,
    ) -> Result<Vec<T>> {
        if values.is_empty() {
            return Ok(vec![]);
        }
        let (sql, vars) = in_chunks(select, list, &values);
        let mut resp = self.read(&sql, &vars).await?;
        take(&mut resp, 0)
    }

    /// Run a read-only statement batch.
    pub(crate) async fn read(&self, sql: &str, vars: &Vars) -> Result<surrealdb::IndexedResults> {
        let started = std::time::Instant::now();
        let span = tracing::info_span!("db", db.system.name = "surrealdb", db.operation.name = "read");
        let sent = self.send(sql.to_owned(), Some(vars.value())).instrument(span).await;
        self.metrics.db_latency.observe(started.elapsed());
        let mut resp = sent?;
        check(&mut resp)?;
        Ok(resp)
    }
}

/// A time as SurrealDB stores it.
pub(crate) fn dt(t: chrono::DateTime<chrono::Utc>) -> surrealdb::types::Datetime {
    surrealdb::types::Datetime::from(t)
}

/// The marker a guard throws when a fact a write was planned on changed before it
/// committed (`THROW '{STALE}'`); it comes back as [`StoreError::Stale`].
pub(crate) const STALE: &str = "STALE: a fact the write was planned on changed before it committed";

/// Errors a statement batch reported, as one [`StoreError`]: the one place SurrealDB's
/// words are read.
///
/// Errors thrown by our own `THROW` statements start with a code (`NOT_FOUND:`,
/// `CONFLICT:`, `INVALID:field:`, `STALE:`, `CHAIN_MOVED:`) and are mapped back to their
/// variant; a unique index's refusal names its index; a transaction aborted by a
/// concurrent write can be retried; anything else is a database error.
fn check(resp: &mut surrealdb::IndexedResults) -> Result<()> {
    let errors = resp.take_errors();
    if errors.is_empty() {
        return Ok(());
    }
    let mut errors: Vec<(usize, surrealdb::Error)> = errors.into_iter().collect();
    errors.sort_by_key(|(i, _)| *i);
    // A failed transaction reports the cause on one statement and "not executed" on
    // the rest: report the cause.
    let msg = errors
        .iter()
        .map(|(_, e)| e.to_string())
        .find(|m| !m.contains("not executed") && !m.contains("cancelled transaction"))
        .unwrap_or_else(|| errors[0].1.to_string());
    Err(classify(&msg))
}

fn classify(msg: &str) -> StoreError {
    let thrown = msg.split_once("An error occurred: ").map(|(_, rest)| rest).unwrap_or(msg);
    if let Some(rest) = thrown.strip_prefix("NOT_FOUND:") {
        return StoreError::NotFound(rest.trim().to_owned());
    }
    if let Some(rest) = thrown.strip_prefix("CONFLICT:") {
        return StoreError::Conflict(rest.trim().to_owned());
    }
    if let Some(rest) = thrown.strip_prefix("INVALID:") {
        let (field, message) = rest.split_once(':').unwrap_or(("input", rest));
        return StoreError::Invalid(ValueError::new(field.trim(), message.trim()));
    }
    if thrown.starts_with("STALE:") {
        return StoreError::Stale(thrown.trim().to_owned());
    }
    if thrown.starts_with("CHAIN_MOVED:") {
        return StoreError::ChainMoved;
    }
    // "Database index `person_email` already contains 'a@b.c', with record `person:x`"
    if msg.contains("already contains") {
        let index = msg.split('`').nth(1).unwrap_or("unknown").to_owned();
        return StoreError::Unique { index };
    }
    // "Database record `person:x` already exists": a write that creates a record whose
    // id is taken. A conflict the caller can act on, not a database fault.
    if msg.contains("Database record `") && msg.contains("` already exists") {
        let record = msg.split('`').nth(1).unwrap_or("the record");
        return StoreError::Conflict(format!("{record} exists already"));
    }
    if is_retryable(msg) {
        return StoreError::Retryable;
    }
    database_error(msg.to_owned())
}

fn is_retryable(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("transaction conflict") || m.contains("write conflict") || m.contains("can be retried")
}

/// The embedded store's lock file, its directory created; `None` for other engines.
fn embedded_lock(cfg: &StoreConfig) -> Result<Option<std::path::PathBuf>> {
    let url = cfg.engine_url();
    let Some(path) = url.strip_prefix("surrealkv://") else {
        return Ok(None);
    };
    let dir = path.split('?').next().unwrap_or(path);
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Database(format!("cannot create the data directory {dir}: {e}")))?;
    Ok(Some(std::path::Path::new(dir).join("LOCK")))
}

/// Wait (two minutes at most) until the embedded engine that held `lock` has let go of
/// it, so the same process can open the store again.
async fn released(lock: &std::path::Path) {
    // Closing flushes the memtable (up to `db.memtable_mb`) to a table file; after a bulk
    // import on a busy disk that took longer than 10 s, and whoever opened the store
    // next found it locked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let free = std::fs::File::open(lock).map(|f| f.try_lock().is_ok()).unwrap_or(true);
        if free {
            return;
        }
        if std::time::Instant::now() > deadline {
            warn!(lock = %lock.display(), "the embedded store has not released its lock yet");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A connection to the engine `cfg` names, signed in as its user on a remote server;
/// no namespace or database chosen yet.
async fn connect(cfg: &StoreConfig) -> Result<Conn> {
    let url = cfg.engine_url();
    if url.starts_with("surrealkv://") {
        return Conn::embedded(&url, cfg.memory).await;
    }
    let db = surrealdb::engine::any::connect(url.as_str()).await?;
    if cfg.is_remote() {
        let (Some(username), Some(password)) = (&cfg.username, &cfg.password) else {
            return Err(StoreError::Database(
                "a remote SurrealDB needs a username and password (db.username, db.password)".into(),
            ));
        };
        match cfg.user_level {
            UserLevel::Root => {
                db.signin(Root { username: username.clone(), password: password.clone() }).await?;
            }
            UserLevel::Database => {
                let user = Database {
                    namespace: cfg.namespace.clone(),
                    database: cfg.database.clone(),
                    username: username.clone(),
                    password: password.clone(),
                };
                db.signin(user).await.map_err(|e| {
                    StoreError::Database(format!(
                        "signing in as `{username}`, a user of database {}/{}: {e} (`nhigov db-user` creates \
                         one; db.user_level = \"root\" signs in as the server's root instead)",
                        cfg.namespace, cfg.database
                    ))
                })?;
            }
        }
    }
    Ok(Conn::Any(db))
}

fn ident(s: &str) -> Result<&str> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s)
    } else {
        Err(StoreError::Invalid(ValueError::new("namespace", "namespace and database names are letters, digits and _")))
    }
}

/// A URL safe to log: credentials in it are hidden.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The conditions of a filtered list and the variables they bind.
#[derive(Default)]
pub(crate) struct Where {
    pub conds: Vec<String>,
    pub vars: Vars,
}

impl Where {
    /// `field = $field`, when a value is given.
    pub fn eq(mut self, field: &str, value: Option<impl SurrealValue>) -> Where {
        if let Some(v) = value {
            self.conds.push(format!("{field} = ${field}"));
            self.vars = self.vars.set(field, v);
        }
        self
    }

    /// A condition over one bound variable, when a value is given.
    pub fn when(mut self, cond: &str, var: &str, value: Option<impl SurrealValue>) -> Where {
        if let Some(v) = value {
            self.conds.push(cond.to_owned());
            self.vars = self.vars.set(var, v);
        }
        self
    }

    /// A condition that binds nothing, when `on`.
    pub fn flag(mut self, on: bool, cond: &str) -> Where {
        if on {
            self.conds.push(cond.to_owned());
        }
        self
    }
}

/// Bound variables for a statement batch, and the owner checks among them that a
/// decision's committer may answer from what it has seen (`governance::guards`).
#[derive(Default, Clone)]
pub(crate) struct Vars(Object, Vec<governance::OwnerCheck>);

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    /// These variables, with an owner check (`Guards::owners`) whose bindings they hold.
    pub(crate) fn with_owner_check(mut self, check: governance::OwnerCheck) -> Vars {
        self.1.push(check);
        self
    }

    /// Is `key` bound?
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The owner checks these variables hold bindings for.
    pub(crate) fn owner_checks(&self) -> &[governance::OwnerCheck] {
        &self.1
    }

    pub fn set(mut self, key: &str, value: impl SurrealValue) -> Vars {
        self.0.insert(key.to_owned(), value.into_value());
        self
    }

    /// These variables, with `key` bound to `value` unless it is bound already.
    pub fn or_set(mut self, key: &str, value: impl SurrealValue) -> Vars {
        if !self.0.contains_key(key) {
            self.0.insert(key.to_owned(), value.into_value());
        }
        self
    }

    /// These variables and `other`'s; `other` wins where both bind a name.
    pub fn merge(mut self, other: Vars) -> Vars {
        self.0.extend(other.0);
        self.1.extend(other.1);
        self
    }

    fn value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// These variables with `prefix` before each name, and `sql` with every `$name` they
    /// bind renamed to match, so that the statements of several plans can share one
    /// batch without seeing each other's bindings; the names `sql` declares itself
    /// (`LET`) are renamed as well. Other names are left as they are.
    pub fn prefixed(self, sql: &str, prefix: &str) -> (String, Vars) {
        let bound = self.0.into_inner();
        // The names the statements bind themselves (`LET $name`) are theirs too: left
        // alone, one plan's value would be what the next plan in a batch reads where it
        // expects a name it did not bind.
        let declared: std::collections::HashSet<&str> = sql
            .match_indices("LET $")
            .map(|(at, _)| {
                let rest = &sql[at + 5..];
                &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
            })
            .collect();
        let out = rename_params(sql, |name| {
            (bound.contains_key(name) || declared.contains(name)).then(|| format!("{prefix}{name}"))
        });
        let mut vars = Object::new();
        for (k, v) in bound {
            vars.insert(format!("{prefix}{k}"), v);
        }
        let checks = self.1.into_iter().map(|c| c.prefixed(prefix)).collect();
        (out, Vars(vars, checks))
    }
}

/// The most values SurrealDB 3.3 reads `field IN $list` for from the field's index
/// (its `MAX_IN_EXPANSION_SIZE`, checked with `EXPLAIN`): past it, the whole table.
pub(crate) const IN_LIST: usize = 32;

/// One statement returning the rows of `select` (which reads `$list`) for every chunk of
/// `values` of at most [`IN_LIST`], and the chunks bound as `$list_0`, `$list_1`, ...
pub(crate) fn in_chunks<V: SurrealValue + Clone>(select: &str, list: &str, values: &[V]) -> (String, Vars) {
    let (rows, vars) = in_chunks_expr(select, list, values);
    (format!("RETURN {rows};"), vars)
}

/// [`in_chunks`]'s rows as an expression (`array::flatten([...])`, the empty array for
/// no values), for a statement that goes on to order, cut or count them.
pub(crate) fn in_chunks_expr<V: SurrealValue + Clone>(select: &str, list: &str, values: &[V]) -> (String, Vars) {
    let parts: Vec<String> = (0..values.len().div_ceil(IN_LIST))
        .map(|i| format!("({})", rename_params(select, |p| (p == list).then(|| format!("{list}_{i}")))))
        .collect();
    (format!("array::flatten([{}])", parts.join(", ")), chunk_vars(list, values))
}

/// `values` in chunks of at most [`IN_LIST`], bound as `$list_0`, `$list_1`, ...: what
/// the statements of [`in_chunks`] read.
pub(crate) fn chunk_vars<V: SurrealValue + Clone>(list: &str, values: &[V]) -> Vars {
    let mut vars = Vars::new();
    for (i, chunk) in values.chunks(IN_LIST).enumerate() {
        vars = vars.set(&format!("{list}_{i}"), chunk.to_vec());
    }
    vars
}

/// `sql` with each `$name` that `to` renames written `$` and the new name; other
/// parameters, and names that only begin like one, are left as they are.
fn rename_params(sql: &str, to: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..len];
        out.push_str(&to(name).unwrap_or_else(|| name.to_owned()));
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// The SurrealDB record id of a node.
pub(crate) fn rid(id: &NodeId) -> RecordId {
    RecordId::new(id.table().as_str(), id.key().to_owned())
}

/// The SurrealDB record id of an edge.
pub(crate) fn edge_rid(id: &EdgeId) -> RecordId {
    RecordId::new(id.kind.as_str(), id.key.clone())
}

/// Read statement `index` of a response into `T`.
pub(crate) fn take<T: DeserializeOwned>(resp: &mut surrealdb::IndexedResults, index: usize) -> Result<T> {
    let value: Value = resp.take(index)?;
    let json = value.into_json_value();
    serde_json::from_value(json).map_err(|e| StoreError::Database(format!("unexpected result shape: {e}")))
}

/// A domain value as a SurrealDB value, through its serde form.
pub(crate) fn json_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v)
        .map(SurrealValue::into_value)
        .map_err(|e| StoreError::Database(format!("cannot encode a record field: {e}")))
}

/// Builds the object a record is written from, skipping absent optional fields (so the
/// schema's NONE applies rather than a null).
#[derive(Default)]
pub(crate) struct Content(Object);

impl Content {
    pub fn new() -> Content {
        Content(Object::new())
    }

    pub fn set(mut self, key: &str, value: impl SurrealValue) -> Content {
        self.0.insert(key.to_owned(), value.into_value());
        self
    }

    pub fn opt<T: SurrealValue>(self, key: &str, value: Option<T>) -> Content {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Only the fields named.
    pub fn keep(mut self, keys: &[&str]) -> Content {
        self.0.retain(|k, _| keys.contains(&k.as_str()));
        self
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_urls_always_sync_every_commit() {
        let cfg = |url: &str| StoreConfig { url: url.into(), ..StoreConfig::memory() };
        assert_eq!(cfg("data").engine_url(), "surrealkv://data?sync=every");
        assert_eq!(cfg("surrealkv://./data?sync=never").engine_url(), "surrealkv://./data?sync=every");
        assert_eq!(cfg("mem://").engine_url(), "mem://");
        assert_eq!(cfg("ws://db:8000").engine_url(), "ws://db:8000");
    }

    #[test]
    fn prefixed_variables_rename_what_they_bind_or_declare_and_nothing_else() {
        let vars = Vars::new().set("a", 1).set("ab", 2);
        let (sql, vars) = vars.prefixed("LET $x = $a + $ab; RETURN [$x, $abc, $a_b, $a, $xy];", "d3_");
        assert_eq!(sql, "LET $d3_x = $d3_a + $d3_ab; RETURN [$d3_x, $abc, $a_b, $d3_a, $xy];");
        let names: Vec<&String> = vars.0.keys().collect();
        assert_eq!(names, ["d3_a", "d3_ab"]);
    }

    #[test]
    fn a_long_list_is_read_in_chunks_an_index_serves() {
        let values: Vec<i64> = (0..70).collect();
        let (sql, vars) = in_chunks("SELECT * FROM t WHERE f IN $xs AND g = $xsg", "xs", &values);
        assert_eq!(
            sql,
            "RETURN array::flatten([(SELECT * FROM t WHERE f IN $xs_0 AND g = $xsg), \
             (SELECT * FROM t WHERE f IN $xs_1 AND g = $xsg), (SELECT * FROM t WHERE f IN $xs_2 AND g = $xsg)]);"
        );
        let sizes: Vec<usize> = vars.0.values().map(|v| if let Value::Array(a) = v { a.len() } else { 0 }).collect();
        assert_eq!(sizes, [32, 32, 6]);
    }

    #[test]
    fn thrown_codes_map_to_store_errors() {
        assert!(matches!(classify("An error occurred: NOT_FOUND: nhi:x"), StoreError::NotFound(_)));
        assert!(matches!(classify("An error occurred: CONFLICT: open edge"), StoreError::Conflict(_)));
        match classify("An error occurred: INVALID:to: not a vault") {
            StoreError::Invalid(e) => assert_eq!((e.field.as_str(), e.message.as_str()), ("to", "not a vault")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify("Database index `person_email` already contains 'a@b.c'"),
            StoreError::Unique { index } if index == "person_email"
        ));
        assert!(matches!(classify(&format!("An error occurred: {STALE}")), StoreError::Stale(_)));
        assert!(matches!(classify("An error occurred: CHAIN_MOVED: another decision first"), StoreError::ChainMoved));
        assert!(matches!(classify("Transaction conflict: write conflict, can be retried"), StoreError::Retryable));
        assert!(matches!(
            classify("Database record `person:x` already exists"),
            StoreError::Conflict(m) if m == "person:x exists already"
        ));
        assert!(matches!(classify("something else"), StoreError::Database(_)));
    }

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(redact("wss://root:pw@db:8000"), "wss://***@db:8000");
        assert_eq!(redact("mem://"), "mem://");
    }
}
