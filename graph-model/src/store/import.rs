//! Importing an inventory document: the document is read against the store (see
//! `reconcile`: stored nodes matched by natural key, open edges kept, a complete run's
//! absent edges closed), every item is checked and reported by item when it fails, and
//! then everything is written in one transaction, so a document lands whole or not at
//! all. A bulk load (`import_bulk`) writes a first load of a large document in batches,
//! several side by side, each marked done in its own transaction.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, Value};

use tracing::warn;

use super::edges::{edge_content, open_key};
use super::nodes::node_content;
use super::reconcile::{Plan, item_fault, refresh_content};
use super::{Content, Result, STALE, Store, StoreError, Vars, rid, take};
use crate::domain::inventory::{ImportEdge, ImportNode, Inventory, ItemError, NodeSpec};
use crate::domain::*;

/// The record of a bulk load (`import_run:<SHA-256 of the document>`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ImportRun {
    pub source: String,
    pub parsed_at: DateTime<Utc>,
    pub batch_size: usize,
    pub batches: usize,
    /// Batches committed (each leaves its marker, `import_batch:<digest>_<k>`).
    pub done: usize,
    pub nodes: usize,
    pub edges: usize,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a bulk load stands after a batch; counts include batches of earlier attempts.
/// Batches side by side finish in any order: `batch` counts the batches stored, and
/// `nodes` and `edges` what they hold.
#[derive(Debug, Clone, Copy)]
pub struct BulkProgress {
    pub batch: usize,
    pub batches: usize,
    pub nodes: usize,
    pub edges: usize,
    pub total_nodes: usize,
    pub total_edges: usize,
}

/// How a bulk load writes: `batch` items (nodes and edges) per transaction, `parallel`
/// transactions side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLoad {
    pub batch: usize,
    pub parallel: usize,
}

impl BulkLoad {
    /// Batches of `batch` items, as many side by side as the machine has cores, at most
    /// four: the engine's commits take turns, so more would only hold more in memory.
    pub fn new(batch: usize) -> BulkLoad {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        BulkLoad { batch, parallel: cores.clamp(1, 4) }
    }
}

/// What one call of [`Store::import_bulk`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkSummary {
    pub batches: usize,
    /// Batches stored by earlier attempts when this call began (0 for a fresh load).
    pub resumed_at: usize,
    /// Batches stored once this call returned, earlier attempts' included.
    pub done: usize,
    /// The progress callback asked to stop before the last batch; running the load
    /// again resumes it.
    pub stopped: bool,
    pub nodes: usize,
    pub edges: usize,
}

/// What importing a document will do, read from the store before the write.
#[derive(Debug)]
pub struct ImportPlan(Plan);

impl ImportPlan {
    /// Does the document touch what is stored (a node matched by natural key, an edge
    /// already open, a complete run that may close edges)? One that does not is a first
    /// load, which [`Store::import_bulk`] writes in batches; one that does is a refresh,
    /// which [`Store::import_planned`] writes in one transaction.
    pub fn is_refresh(&self, inv: &Inventory) -> bool {
        let p = &self.0;
        inv.complete || !p.update.is_empty() || !p.kept.is_empty() || !p.close.is_empty()
    }

    /// Was the document's source stale when it arrived (see `domain::feeds`)?
    pub fn source_stale(&self) -> bool {
        self.0.source_stale
    }
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Nodes created.
    pub nodes: usize,
    /// Nodes already stored (matched by natural key) and refreshed.
    pub nodes_updated: usize,
    /// Edges opened (and closed history recorded).
    pub edges: usize,
    /// Open edges the document holds as they are.
    pub edges_kept: usize,
    /// Open edges closed: replaced by the document's with other attributes, or absent
    /// from a complete run of their source.
    pub edges_closed: usize,
    /// The document's source was stale when it arrived: the automation its data drives
    /// (closing absent edges, ungoverned-access alerts) waits for its next run.
    pub source_stale: bool,
    /// Open edges a complete run no longer holds, left open because its source was stale.
    pub edges_absent_paused: usize,
    /// People the document reports gone who hold ADMIN, APPROVER or AUDITOR, kept
    /// active (see `Store::apply_leavers`), by e-mail.
    pub leavers_held: Vec<String>,
    /// The id each node ref was stored under, in document order.
    pub ids: Vec<(String, NodeId)>,
}

#[derive(serde::Deserialize)]
struct Existing {
    ids: Vec<ExternalNode>,
    emails: Vec<String>,
    fingerprints: Vec<String>,
    open: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ExternalNode {
    id: NodeId,
    kind: Option<String>,
}

impl Store {
    /// Write a validated inventory in one transaction: new nodes created, stored ones
    /// refreshed, open edges kept, new ones opened, and, for a complete run, the source's
    /// absent edges closed. When the store changes between the plan and the write (an
    /// edge kept was closed meanwhile, a node appeared), the import is planned again.
    pub async fn import(&self, inv: &Inventory) -> Result<ImportSummary> {
        let plan = self.plan_import(inv).await?;
        self.import_planned(inv, ImportPlan(plan)).await
    }

    /// Read `inv` against the store: what [`Store::import_planned`] will write, and
    /// whether it is a refresh (see [`ImportPlan::is_refresh`]).
    pub async fn plan_inventory(&self, inv: &Inventory) -> Result<ImportPlan> {
        Ok(ImportPlan(self.plan_import(inv).await?))
    }

    /// [`Store::import`] with a plan already made by [`Store::plan_inventory`], so a
    /// caller that looked at the plan does not pay for it twice.
    pub async fn import_planned(&self, inv: &Inventory, plan: ImportPlan) -> Result<ImportSummary> {
        const ATTEMPTS: u32 = 3;
        let mut plan = Some(plan.0);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = match plan.take() {
                Some(p) => p,
                None => self.plan_import(inv).await?,
            };
            match self.import_once(inv, current).await {
                Err(StoreError::Stale(_) | StoreError::Unique { .. }) if attempt < ATTEMPTS => {
                    warn!(attempt, "the store changed while an import was planned; planning it again");
                }
                other => return other,
            }
        }
    }

    async fn import_once(&self, inv: &Inventory, plan: Plan) -> Result<ImportSummary> {
        // Nodes matched by key are stored nodes too: edges to them are checked as such.
        let mut stored = inv.external_ids.clone();
        stored.extend(plan.update.iter().map(|n| (n.reference.clone(), n.id.clone())));
        self.check_against_store(&plan.create, &plan.open, &stored, false).await?;
        let now = Utc::now();
        let source = inv.source.as_ref().map(|s| s.as_str());
        let (body, vars) =
            insert_statements(&plan.create, &plan.open, now, source, |e| EdgeId::generate(e.edge.kind), Ends::Engine);
        let updates: Vec<Value> = plan
            .update
            .iter()
            .map(|n| {
                Content::new()
                    .set("id", rid(&n.id))
                    .set("content", refresh_content(&n.spec, now).into_value())
                    .into_value()
            })
            .collect();
        let mut sql = String::from("BEGIN;\n");
        if !plan.kept.is_empty() {
            sql.push_str(&format!(
                "IF array::len(SELECT VALUE id FROM $kept WHERE valid_to = NONE) != $n_kept {{ THROW '{STALE}' }};\n"
            ));
        }
        if !plan.close.is_empty() {
            sql.push_str(
                "UPDATE $close SET valid_to = time::now(), open_key = NONE WHERE valid_to = NONE RETURN NONE;\n",
            );
        }
        if !updates.is_empty() {
            sql.push_str("FOR $u IN $updates { UPDATE $u.id MERGE $u.content RETURN NONE; };\n");
        }
        sql.push_str(&body);
        let vars = match source {
            Some(s) => {
                let (statement, vars) = super::feeds::run_statement(vars, s, inv.complete);
                sql.push_str(statement);
                vars
            }
            None => vars,
        };
        sql.push_str("COMMIT;");
        let vars = vars
            .set("n_kept", plan.kept.len() as i64)
            .set("kept", plan.kept.clone())
            .set("close", plan.close.clone())
            .set("updates", updates);
        self.write(&sql, &vars).await?;
        Ok(ImportSummary {
            nodes: plan.create.len(),
            nodes_updated: plan.update.len(),
            edges: plan.open.len(),
            edges_kept: plan.kept.len(),
            edges_closed: plan.close.len(),
            source_stale: plan.source_stale,
            edges_absent_paused: plan.absent_paused,
            leavers_held: vec![],
            ids: plan.ids,
        })
    }

    /// The record of a bulk load of the document with this SHA-256, if one began, with
    /// the batches stored so far.
    pub async fn import_run(&self, digest: &str) -> Result<Option<ImportRun>> {
        let Some(mut run) = self.run_record(digest).await? else { return Ok(None) };
        if run.finished_at.is_none() {
            run.done = self.batches_done(digest, &run).await?.len();
        }
        Ok(Some(run))
    }

    async fn run_record(&self, digest: &str) -> Result<Option<ImportRun>> {
        let mut resp = self.read("SELECT * OMIT id FROM ONLY $run;", &Vars::new().set("run", run_id(digest))).await?;
        take(&mut resp, 0)
    }

    /// The batches of an unfinished load that are stored: those whose marker is, and
    /// those a run record counts in `done` (a load begun by a version that wrote its
    /// batches in order advanced it with each one).
    async fn batches_done(&self, digest: &str, run: &ImportRun) -> Result<HashSet<usize>> {
        let markers: Vec<RecordId> = (0..run.batches).map(|k| batch_marker(digest, k)).collect();
        let mut resp = self.read("SELECT VALUE k FROM $markers;", &Vars::new().set("markers", markers)).await?;
        let marked: Vec<i64> = take(&mut resp, 0)?;
        let mut done: HashSet<usize> = marked.into_iter().filter_map(|k| usize::try_from(k).ok()).collect();
        done.extend(0..run.done.min(run.batches));
        Ok(done)
    }

    /// Load a large document in batches of `load.batch` items (nodes, then edges), each
    /// batch one transaction that leaves its marker (`import_batch:<digest>_<k>`), up to
    /// `load.parallel` of them side by side; a batch with edges waits until every batch
    /// of nodes before it is stored, so each edge finds its ends. When every batch is
    /// stored, one more transaction completes the run record `import_run:<digest>` (and
    /// the feed's run). `inv` must have been parsed with [`Inventory::parse_keyed`]
    /// under the same digest and, when resuming, the run's `parsed_at`: then the ids are
    /// the same as in the first attempt and the load writes the batches that are not
    /// stored. Everything still to be written is checked against the store before the
    /// first batch; nothing is written when it fails. `progress` hears of each stored
    /// batch and may stop the load there: the batches in flight are stored, and no more
    /// begin.
    pub async fn import_bulk(
        &self,
        digest: &str,
        source: &str,
        parsed_at: DateTime<Utc>,
        inv: &Inventory,
        load: BulkLoad,
        mut progress: impl FnMut(&BulkProgress) -> std::ops::ControlFlow<()>,
    ) -> Result<BulkSummary> {
        let previous = self.run_record(digest).await?;
        if let Some(r) = &previous
            && r.finished_at.is_some()
        {
            return Ok(BulkSummary {
                batches: r.batches,
                resumed_at: r.batches,
                done: r.batches,
                ..Default::default()
            });
        }
        let (cut, mut done, todo) = self.plan_load(digest, inv, load, previous.as_ref()).await?;
        if previous.is_none() {
            self.begin_run(digest, source, parsed_at, inv, &cut).await?;
        }
        let mut summary =
            BulkSummary { batches: cut.batches, resumed_at: done.len(), done: done.len(), ..BulkSummary::default() };
        let mut queue = todo.into_iter().peekable();
        let mut running = tokio::task::JoinSet::new();
        let mut failed: Option<String> = None;
        loop {
            while failed.is_none()
                && !summary.stopped
                && running.len() < load.parallel.max(1)
                && let Some(&k) = queue.peek()
                && cut.ready(inv, k, &done)
            {
                queue.next();
                running.spawn(self.batch(digest, inv, &cut, k));
            }
            let Some(joined) = running.join_next().await else { break };
            match joined {
                Ok(Ok(k)) => {
                    done.insert(k);
                    let (nodes, edges) = cut.slice(inv, k, k + 1);
                    summary.done = done.len();
                    summary.nodes += nodes.len();
                    summary.edges += edges.len();
                    let (done_nodes, done_edges) = cut.counts(inv, &done);
                    let next = progress(&BulkProgress {
                        batch: done.len(),
                        batches: cut.batches,
                        nodes: done_nodes,
                        edges: done_edges,
                        total_nodes: inv.nodes.len(),
                        total_edges: inv.edges.len(),
                    });
                    summary.stopped |= next.is_break() && done.len() < cut.batches;
                }
                Ok(Err(e)) => {
                    failed.get_or_insert(e.to_string());
                }
                Err(e) => {
                    failed.get_or_insert(format!("a batch's task ended: {e}"));
                }
            }
        }
        if let Some(e) = failed {
            return Err(StoreError::Database(format!(
                "{e}; {} of {} batches are stored, and running the same import again writes the rest",
                done.len(),
                cut.batches
            )));
        }
        if done.len() < cut.batches {
            summary.stopped = true;
            return Ok(summary);
        }
        self.finish_run(digest, inv, cut.batches).await?;
        Ok(summary)
    }

    /// How a bulk load cuts `inv` (as the run `previous` did, when there is one), the
    /// batches stored already and those to write, checked against the store.
    async fn plan_load(
        &self,
        digest: &str,
        inv: &Inventory,
        load: BulkLoad,
        previous: Option<&ImportRun>,
    ) -> Result<(Cut, HashSet<usize>, Vec<usize>)> {
        let cut = Cut::of(inv, previous.map_or(load.batch, |r| r.batch_size).max(1));
        if let Some(r) = previous
            && (r.batches != cut.batches || r.nodes != inv.nodes.len() || r.edges != inv.edges.len())
        {
            return Err(StoreError::Conflict(format!(
                "a load of this document began with a different plan ({} batches of {}); it cannot be resumed",
                r.batches, r.batch_size
            )));
        }
        let done = match previous {
            Some(r) => self.batches_done(digest, r).await?,
            None => HashSet::new(),
        };
        let todo: Vec<usize> = (0..cut.batches).filter(|k| !done.contains(k)).collect();
        let (nodes, edges) = cut.items(inv, &todo);
        self.check_against_store(&nodes, &edges, &inv.external_ids, true).await?;
        Ok((cut, done, todo))
    }

    /// The run record of a fresh bulk load: its plan, nothing stored yet.
    async fn begin_run(
        &self,
        digest: &str,
        source: &str,
        parsed_at: DateTime<Utc>,
        inv: &Inventory,
        cut: &Cut,
    ) -> Result<()> {
        let content = Content::new()
            .set("source", source)
            .set("parsed_at", surrealdb::types::Datetime::from(parsed_at))
            .set("batch_size", cut.batch_size as i64)
            .set("batches", cut.batches as i64)
            .set("done", 0_i64)
            .set("nodes", inv.nodes.len() as i64)
            .set("edges", inv.edges.len() as i64)
            .set("started_at", surrealdb::types::Datetime::from(Utc::now()));
        self.write(
            "CREATE $run CONTENT $content RETURN NONE;",
            &Vars::new().set("run", run_id(digest)).set("content", content.into_value()),
        )
        .await?;
        Ok(())
    }

    /// Batch `k` of a bulk load as a task of its own (so batches side by side run on
    /// every core): one transaction that writes its items and its marker, refused when
    /// the marker is there already (another load of the same document wrote it).
    fn batch(
        &self,
        digest: &str,
        inv: &Inventory,
        cut: &Cut,
        k: usize,
    ) -> impl std::future::Future<Output = Result<usize>> + Send + 'static {
        let (nodes, edges) = cut.slice(inv, k, k + 1);
        let source = inv.source.as_ref().map(|s| s.as_str());
        let (body, vars) = insert_statements(
            nodes,
            edges,
            Utc::now(),
            source,
            |e| EdgeId::derived(e.edge.kind, digest, &e.item),
            Ends::Checked,
        );
        let sql = format!(
            "BEGIN;
             IF $marker.k != NONE {{ THROW 'CONFLICT: another load of this document is running' }};
             CREATE $marker SET k = $k, at = time::now() RETURN NONE;
             {body}
             COMMIT;"
        );
        let vars = vars.set("marker", batch_marker(digest, k)).set("k", k as i64);
        let what = format!("batch {} of {} ({})", k + 1, cut.batches, batch_items(nodes, edges));
        let store = self.clone();
        async move {
            store.write(&sql, &vars).await.map_err(|e| StoreError::Database(format!("{what} failed: {e}")))?;
            Ok(k)
        }
    }

    /// Complete a load whose batches are all stored: the run record says so, and the
    /// document's source records its run.
    async fn finish_run(&self, digest: &str, inv: &Inventory, batches: usize) -> Result<()> {
        let (feed, vars) = match inv.source.as_ref() {
            Some(s) => super::feeds::run_statement(Vars::new(), s.as_str(), inv.complete),
            None => ("", Vars::new()),
        };
        let markers: Vec<RecordId> = (0..batches).map(|k| batch_marker(digest, k)).collect();
        let sql = format!(
            "BEGIN;
             IF $run.finished_at != NONE {{ THROW 'CONFLICT: another load of this document completed it' }};
             IF array::len(SELECT VALUE id FROM $markers) + $run.done < $batches {{ THROW 'CONFLICT: a batch of this load is not stored' }};
             {feed}
             UPDATE $run SET done = $batches, finished_at = time::now() RETURN NONE;
             COMMIT;"
        );
        let vars = vars.set("run", run_id(digest)).set("markers", markers).set("batches", batches as i64);
        self.write(&sql, &vars).await?;
        Ok(())
    }

    /// Find what the store makes wrong in a document that is valid on its own: edges to
    /// ids that do not exist, e-mails and fingerprints already taken, `stored_in` edges to
    /// systems that are not vaults, and, with `open_check`, edges already open (a planned
    /// import has settled those already).
    async fn check_against_store(
        &self,
        nodes: &[ImportNode],
        edges: &[ImportEdge],
        external_ids: &[(String, NodeId)],
        open_check: bool,
    ) -> Result<()> {
        // Only edges between stored nodes can collide with an edge already open.
        let stored: HashSet<&NodeId> = external_ids.iter().map(|(_, id)| id).collect();
        let mut candidate_keys: HashMap<EdgeKind, Vec<String>> = HashMap::new();
        for e in edges {
            if open_check && e.valid_to.is_none() && stored.contains(&e.edge.from) && stored.contains(&e.edge.to) {
                candidate_keys.entry(e.edge.kind).or_default().push(open_key(&e.edge));
            }
        }
        let existing = self.existing(nodes, external_ids, &candidate_keys).await?;
        let errors = store_faults(nodes, edges, &stored, existing);
        if errors.is_empty() { Ok(()) } else { Err(StoreError::Import(errors)) }
    }

    /// What the store already holds of a document's keys, in one round trip: the stored
    /// ids it names (with a system's kind), e-mails and fingerprints taken, and the open
    /// edges with one of `candidate_keys` (as `kind|open_key`).
    async fn existing(
        &self,
        nodes: &[ImportNode],
        external_ids: &[(String, NodeId)],
        candidate_keys: &HashMap<EdgeKind, Vec<String>>,
    ) -> Result<Existing> {
        let external: Vec<RecordId> = external_ids.iter().map(|(_, id)| rid(id)).collect();
        let emails: Vec<String> = nodes
            .iter()
            .filter_map(|n| match &n.spec {
                NodeSpec::Person(p) => Some(p.email.as_str().to_owned()),
                _ => None,
            })
            .collect();
        let fingerprints: Vec<String> = nodes
            .iter()
            .filter_map(|n| match &n.spec {
                NodeSpec::Secret(s) => Some(s.fingerprint.as_str().to_owned()),
                _ => None,
            })
            .collect();
        let mut open_checks = Vec::new();
        let mut vars = Vars::new().set("ids", external).set("emails", emails).set("fingerprints", fingerprints);
        for (kind, keys) in candidate_keys {
            open_checks.push(format!("(SELECT VALUE '{kind}|' + open_key FROM {kind} WHERE open_key IN $k_{kind})"));
            vars = vars.set(&format!("k_{kind}"), keys.clone());
        }
        let open_sql = if open_checks.is_empty() {
            "[]".to_owned()
        } else {
            format!("array::flatten([{}])", open_checks.join(", "))
        };
        let sql = format!(
            "RETURN {{
                ids: (SELECT id, kind FROM $ids),
                emails: (SELECT VALUE email FROM person WHERE email IN $emails),
                fingerprints: (SELECT VALUE fingerprint FROM secret WHERE fingerprint IN $fingerprints),
                open: {open_sql}
            }};"
        );
        let mut resp = self.read(&sql, &vars).await?;
        take(&mut resp, 0)
    }
}

/// The faults of a document against what the store holds (see `check_against_store`).
fn store_faults(
    nodes: &[ImportNode],
    edges: &[ImportEdge],
    stored: &HashSet<&NodeId>,
    existing: Existing,
) -> Vec<ItemError> {
    let found: HashMap<NodeId, Option<String>> = existing.ids.into_iter().map(|n| (n.id, n.kind)).collect();
    let emails: HashSet<String> = existing.emails.into_iter().collect();
    let fingerprints: HashSet<String> = existing.fingerprints.into_iter().collect();
    let open: HashSet<String> = existing.open.into_iter().collect();
    let mut errors = Vec::new();
    let fail = item_fault;
    for n in nodes {
        match &n.spec {
            NodeSpec::Person(p) if emails.contains(p.email.as_str()) => errors.push(fail(
                &n.item,
                Some(&n.reference),
                "email",
                format!("a person with e-mail {} already exists", p.email),
            )),
            NodeSpec::Secret(s) if fingerprints.contains(s.fingerprint.as_str()) => errors.push(fail(
                &n.item,
                Some(&n.reference),
                "fingerprint",
                "a secret with this fingerprint already exists".to_owned(),
            )),
            _ => {}
        }
    }
    let kinds: HashMap<&NodeId, &NodeSpec> = nodes.iter().map(|n| (&n.id, &n.spec)).collect();
    for e in edges {
        for (field, id) in [("from", &e.edge.from), ("to", &e.edge.to)] {
            if stored.contains(id) && !found.contains_key(id) {
                errors.push(fail(&e.item, None, field, format!("{id} does not exist")));
            }
        }
        if e.edge.kind == EdgeKind::StoredIn {
            let is_vault = match kinds.get(&e.edge.to) {
                Some(NodeSpec::System(s)) => s.kind == SystemKind::Vault,
                Some(_) => false,
                None => found.get(&e.edge.to).is_some_and(|k| k.as_deref() == Some("vault")),
            };
            if !is_vault && (kinds.contains_key(&e.edge.to) || found.contains_key(&e.edge.to)) {
                errors.push(fail(&e.item, None, "to", "a stored_in edge ends at a vault".to_owned()));
            }
        }
        if e.valid_to.is_none() && open.contains(&format!("{}|{}", e.edge.kind, open_key(&e.edge))) {
            errors.push(fail(
                &e.item,
                None,
                "to",
                format!("an open {} edge between these nodes already exists", e.edge.kind),
            ));
        }
    }
    errors
}

/// How a bulk load cuts its document: nodes then edges, one sequence cut into batches,
/// so a document smaller than a batch is one transaction and a batch's nodes are
/// written before its edges.
struct Cut {
    batch_size: usize,
    batches: usize,
}

impl Cut {
    fn of(inv: &Inventory, batch_size: usize) -> Cut {
        Cut { batch_size, batches: (inv.nodes.len() + inv.edges.len()).div_ceil(batch_size).max(1) }
    }

    /// The nodes and edges of batches `from..to`.
    fn slice<'i>(&self, inv: &'i Inventory, from: usize, to: usize) -> (&'i [ImportNode], &'i [ImportEdge]) {
        let (n, e) = (inv.nodes.len(), inv.edges.len());
        let (from, to) = (from * self.batch_size, to * self.batch_size);
        (&inv.nodes[from.min(n)..to.min(n)], &inv.edges[from.saturating_sub(n).min(e)..to.saturating_sub(n).min(e)])
    }

    /// The nodes and edges of the batches `ks` (ascending), borrowed when they follow
    /// each other to the last batch (a fresh load, or one stopped in order).
    fn items<'i>(&self, inv: &'i Inventory, ks: &[usize]) -> (Cow<'i, [ImportNode]>, Cow<'i, [ImportEdge]>) {
        match ks.first() {
            None => (Cow::Borrowed(&[][..]), Cow::Borrowed(&[][..])),
            Some(&first) if ks.len() == self.batches - first => {
                let (nodes, edges) = self.slice(inv, first, self.batches);
                (Cow::Borrowed(nodes), Cow::Borrowed(edges))
            }
            Some(_) => {
                let (mut nodes, mut edges) = (Vec::new(), Vec::new());
                for &k in ks {
                    let (n, e) = self.slice(inv, k, k + 1);
                    nodes.extend_from_slice(n);
                    edges.extend_from_slice(e);
                }
                (Cow::Owned(nodes), Cow::Owned(edges))
            }
        }
    }

    /// How many nodes and edges the batches `ks` hold.
    fn counts(&self, inv: &Inventory, ks: &HashSet<usize>) -> (usize, usize) {
        ks.iter().fold((0, 0), |(n, e), &k| {
            let (nodes, edges) = self.slice(inv, k, k + 1);
            (n + nodes.len(), e + edges.len())
        })
    }

    /// May batch `k` begin once the batches `done` are stored? A batch of nodes may at
    /// any time; one with edges once every batch holding nodes before it is stored.
    fn ready(&self, inv: &Inventory, k: usize, done: &HashSet<usize>) -> bool {
        let (_, edges) = self.slice(inv, k, k + 1);
        let node_batches = inv.nodes.len().div_ceil(self.batch_size);
        edges.is_empty() || (0..k.min(node_batches)).all(|j| done.contains(&j))
    }
}

/// The id of the run record of a bulk load.
fn run_id(digest: &str) -> RecordId {
    RecordId::new("import_run", digest)
}

/// The id of the marker batch `k` of a bulk load leaves when it is stored.
fn batch_marker(digest: &str, k: usize) -> RecordId {
    RecordId::new("import_batch", format!("{digest}_{k}"))
}

/// Who makes sure the edges a write opens are sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// The engine, as for any write: both ends exist (`ENFORCED`), and the fields'
    /// clauses fill in the stamps and check the types.
    Engine,
    /// A bulk load, before its first batch: every end was found in the document or
    /// the store (nodes are never deleted, and a batch of edges waits for the batches
    /// of nodes before it), and every field is set here. The engine writes the edges
    /// as it restores a backup (`OPTION IMPORT`): no end lookups, no field clauses,
    /// about a tenth of a first load's time. Indexes are kept as always, the
    /// unique open key included.
    Checked,
}

/// `INSERT` statements (no transaction around them) for nodes and edges, grouped by table.
fn insert_statements(
    nodes: &[ImportNode],
    edges: &[ImportEdge],
    now: DateTime<Utc>,
    source: Option<&str>,
    edge_id: impl Fn(&ImportEdge) -> EdgeId,
    ends: Ends,
) -> (String, Vars) {
    let mut by_table: HashMap<Table, Vec<Value>> = HashMap::new();
    for node in nodes {
        let content = node_content(&node.spec, now).set("id", rid(&node.id));
        by_table.entry(node.spec.table()).or_default().push(content.into_value());
    }
    let mut by_kind: HashMap<EdgeKind, Vec<Value>> = HashMap::new();
    for e in edges {
        let mut content =
            edge_content(&edge_id(e), &e.edge, e.valid_from.unwrap_or(now), e.valid_to, now).opt("source", source);
        if ends == Ends::Checked {
            // What the field's `VALUE time::now()` would have set.
            content = content.set("changed_at", surrealdb::types::Datetime::from(now));
        }
        by_kind.entry(e.edge.kind).or_default().push(content.into_value());
    }
    let mut sql = String::new();
    let mut vars = Vars::new();
    for table in Table::ALL {
        if let Some(rows) = by_table.remove(&table) {
            sql.push_str(&format!("INSERT INTO {table} $n_{table} RETURN NONE;\n"));
            vars = vars.set(&format!("n_{table}"), rows);
        }
    }
    let as_restore = ends == Ends::Checked && !by_kind.is_empty();
    if as_restore {
        sql.push_str("OPTION IMPORT;\n");
    }
    for kind in EdgeKind::ALL {
        if let Some(rows) = by_kind.remove(&kind) {
            sql.push_str(&format!("INSERT RELATION INTO {kind} $e_{kind} RETURN NONE;\n"));
            vars = vars.set(&format!("e_{kind}"), rows);
        }
    }
    if as_restore {
        sql.push_str("OPTION IMPORT = false;\n");
        // What the schema's events would have written (`owners_rev`, `members_rev`):
        // under `OPTION IMPORT` they do not run, and a decision's owner check would
        // otherwise take owners it saw before these edges for the owners now.
        for (kind, rev) in [(EdgeKind::Owns, "owners_rev"), (EdgeKind::MemberOf, "members_rev")] {
            if vars.has(&format!("e_{kind}")) {
                sql.push_str(&format!("UPDATE array::distinct($e_{kind}.out) SET {rev} = rand::ulid() RETURN NONE;\n"));
            }
        }
    }
    (sql, vars)
}

/// "nodes[10]..nodes[19]" for the items of a batch.
fn batch_items(nodes: &[ImportNode], edges: &[ImportEdge]) -> String {
    let first_last = |first: Option<&String>, last: Option<&String>| match (first, last) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "no items".to_owned(),
    };
    let first = nodes.first().map(|n| &n.item).or(edges.first().map(|e| &e.item));
    let last = edges.last().map(|e| &e.item).or(nodes.last().map(|n| &n.item));
    first_last(first, last)
}
