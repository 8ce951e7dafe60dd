//! Keeps the in-process [`GraphIndex`] in step with the store.
//!
//! The first traversal loads every edge of the kinds the index holds ([`HELD`]), the
//! meta of every NHI, secret and system, and the records of every secret, system, person
//! and team (the far ends of a page's relation fields: [`Store::current_nodes`]), unless
//! [`Store::warm_graph`] loaded them before (the server
//! does at start, and is not ready until it has: on a million edges the load takes
//! tens of seconds, longer than a request may). Later, the index reads what changed
//! since its last look (edges created, closed or adopted, nodes updated), by indexed range
//! queries in one round trip, and applies it. Reading the changes from the database, rather than hearing of this
//! process's own writes, is what lets several API replicas over one SurrealDB each see
//! the others' writes. Changes are re-read with a margin (`StoreConfig::change_margin`) so a
//! transaction that committed a little after the timestamp it wrote, or a replica whose
//! clock runs behind, is not missed; applying a change twice is harmless.
//!
//! When to look: before a traversal, if this process has written anything since the
//! last look (so a client always sees its own writes), or if the last look is older
//! than the refresh interval (`StoreConfig::graph_refresh`; other replicas' writes).
//! Otherwise a traversal costs no database round trip at all. Concurrent traversals
//! that need a look share one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Deserialize;

use super::{Result, Store, StoreError, Vars, take};
use surrealdb::types::{RecordId, RecordIdKey, Value};

use crate::domain::graph::{Direction, EdgeFact, GraphIndex, HELD, HeldEdge, NodeMeta, Step, Traversal};
use crate::domain::*;

/// The index and the time up to which it has read the store.
pub(crate) struct LiveGraph {
    index: RwLock<GraphIndex>,
    /// The records of the tables in [`RECORDED`], as fresh as the index.
    records: RwLock<HashMap<NodeId, InventoryNode>>,
    synced_to: tokio::sync::Mutex<Synced>,
    /// This process wrote since the last look.
    dirty: AtomicBool,
    /// A load started by [`Store::warm_graph`] is running.
    warming: AtomicBool,
    /// The index has loaded once (see [`Store::indexed_owners`]).
    loaded: AtomicBool,
    pub(crate) refresh: std::time::Duration,
    /// How far back each look re-reads changes (`StoreConfig::change_margin`).
    pub(crate) margin: std::time::Duration,
}

#[derive(Default)]
struct Synced {
    /// The database's clock at the last look.
    to: Option<DateTime<Utc>>,
    /// This process's clock at the last look.
    at: Option<Instant>,
}

impl LiveGraph {
    /// Where a look that follows one at `t` starts reading changes.
    pub(crate) fn look_back(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        Duration::from_std(self.margin).ok().and_then(|m| t.checked_sub_signed(m)).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// The tables whose whole records the index keeps beside it: the far ends of relation
/// fields (a page of identities names their owners, secrets and systems), few beside the
/// identities themselves.
const RECORDED: [Table; 4] = [Table::Secret, Table::System, Table::Person, Table::Team];

/// The statements that read the meta and records of the nodes updated since `$since`
/// (all of them with `WHERE` left out), in the order [`read_nodes`] takes them.
fn node_statements(filter: &str) -> String {
    let mut sql = format!("SELECT id, environment, status, kind FROM nhi{filter};\n");
    for t in RECORDED {
        sql.push_str(&format!("SELECT * FROM {t}{filter};\n"));
    }
    sql
}

/// Take what [`node_statements`] read, from statement `first` on, into the index and the
/// records.
fn read_nodes(
    resp: &mut surrealdb::IndexedResults,
    first: usize,
    index: &mut GraphIndex,
    records: &mut HashMap<NodeId, InventoryNode>,
) -> Result<()> {
    for m in take::<Vec<NhiMetaRow>>(resp, first)? {
        index.set_meta(&m.row.id, NodeMeta { nhi_kind: Some(m.kind), ..m.row.meta() });
    }
    for (i, table) in RECORDED.iter().enumerate() {
        for row in take::<Vec<serde_json::Value>>(resp, first + 1 + i)? {
            if matches!(table, Table::Secret | Table::System) {
                let m = MetaRow::deserialize(&row)
                    .map_err(|e| StoreError::Database(format!("a {table} the graph index cannot read: {e}")))?;
                index.set_meta(&m.id, m.meta());
            }
            let node = super::nodes::inventory_node(row)?;
            records.insert(node.id().clone(), node);
        }
    }
    Ok(())
}

/// The fields of an edge the index keeps ([`HeldEdge`]).
const HELD_FIELDS: &str = "id, in, out, privilege, valid_from, valid_to, expires_at, granted_by";

/// An edge's row of [`HELD_FIELDS`] as the index keeps it, read from SurrealDB's value
/// as it is: record ids stay parts, not text written out and parsed again (a fifth of
/// a large graph's load when they were).
fn held_edge(row: Value) -> std::result::Result<HeldEdge, String> {
    let Value::Object(row) = row else { return Err(format!("a row that is not an object: {row:?}")) };
    let mut row = row.into_inner();
    let mut field = |name: &str| row.remove(name).unwrap_or(Value::None);
    let id = field("id");
    let (kind, key) = record_parts(&id)?;
    let kind = EdgeKind::parse(kind).map_err(|e| e.to_string())?;
    let id = EdgeId::new(kind, key).map_err(|e| format!("{id:?}: {e}"))?;
    let node = |v: Value| -> std::result::Result<NodeId, String> {
        let (table, key) = record_parts(&v)?;
        let table = Table::parse(table).ok_or_else(|| format!("{v:?} is not in a table of nodes"))?;
        NodeId::new(table, key).map_err(|e| format!("{v:?}: {e}"))
    };
    let time = |v: Value, name: &str| match v {
        Value::Datetime(d) => Ok(Some(d.into_inner())),
        Value::None | Value::Null => Ok(None),
        v => Err(format!("`{name}` is not a datetime: {v:?}")),
    };
    Ok(HeldEdge {
        id,
        from: node(field("in"))?,
        to: node(field("out"))?,
        privilege: match field("privilege") {
            Value::String(p) => Some(Privilege::parse(&p).map_err(|e| e.to_string())?),
            Value::None | Value::Null => None,
            v => return Err(format!("`privilege` is not text: {v:?}")),
        },
        valid_from: time(field("valid_from"), "valid_from")?.ok_or("an edge without `valid_from`")?,
        valid_to: time(field("valid_to"), "valid_to")?,
        expires_at: time(field("expires_at"), "expires_at")?,
        granted: !matches!(field("granted_by"), Value::None | Value::Null),
    })
}

/// The table and the text key of a record id.
fn record_parts(v: &Value) -> std::result::Result<(&str, &str), String> {
    match v {
        Value::RecordId(RecordId { table, key: RecordIdKey::String(key) }) => Ok((table.as_str(), key.as_str())),
        v => Err(format!("{v:?} is not a record id with a text key")),
    }
}

/// A lock on the index that a panicking holder left poisoned, as an error.
fn poisoned<T>(_: T) -> StoreError {
    StoreError::Database("graph index poisoned".into())
}

#[derive(Deserialize)]
struct MetaRow {
    id: NodeId,
    environment: Option<Environment>,
    criticality: Option<Criticality>,
    status: Option<NhiStatus>,
}

/// An NHI's meta, with its kind (a secret's or a system's `kind` is of another type).
#[derive(Deserialize)]
struct NhiMetaRow {
    #[serde(flatten)]
    row: MetaRow,
    kind: NhiKind,
}

impl MetaRow {
    fn meta(&self) -> NodeMeta {
        NodeMeta {
            table: self.id.table(),
            environment: self.environment,
            criticality: self.criticality,
            nhi_kind: None,
            inactive: self.status.is_some_and(|s| s != NhiStatus::Active),
        }
    }
}

impl Store {
    pub(crate) fn new_live_graph(refresh: std::time::Duration, margin: std::time::Duration) -> Arc<LiveGraph> {
        Arc::new(LiveGraph {
            index: RwLock::default(),
            records: RwLock::default(),
            synced_to: tokio::sync::Mutex::default(),
            dirty: AtomicBool::new(true),
            warming: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            refresh,
            margin,
        })
    }

    /// Load the graph index in the background now, rather than in the first traversal
    /// that needs it. [`Store::graph_warming`] is true from this call until the load has
    /// finished (or failed: the next traversal then tries again).
    pub fn warm_graph(&self) -> tokio::task::JoinHandle<()> {
        self.graph.warming.store(true, Ordering::Release);
        let store = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            match store.sync_graph().await {
                Ok(()) => {
                    let (edges, nodes) = store.graph_size();
                    tracing::info!(nodes, edges, secs = started.elapsed().as_secs_f64(), "graph index loaded");
                }
                Err(e) => tracing::warn!(error = %e, "loading the graph index failed; the first traversal loads it"),
            }
            store.graph.warming.store(false, Ordering::Release);
        })
    }

    /// Whether a load started by [`Store::warm_graph`] is still running.
    pub fn graph_warming(&self) -> bool {
        self.graph.warming.load(Ordering::Acquire)
    }

    /// Bring the index up to date with the store now.
    pub async fn sync_graph(&self) -> Result<()> {
        let mut synced = self.graph.synced_to.lock().await;
        self.sync_locked(&mut synced).await
    }

    /// Bring the index up to date unless its last look began at or after `at` (the
    /// database's clock): then it has read every change committed before `at`.
    pub(crate) async fn sync_graph_to(&self, at: DateTime<Utc>) -> Result<()> {
        let mut synced = self.graph.synced_to.lock().await;
        if synced.to.is_some_and(|to| to >= at) { Ok(()) } else { self.sync_locked(&mut synced).await }
    }

    /// Bring the index up to date if this process wrote since the last look or the last
    /// look is older than the refresh interval.
    async fn refresh_graph(&self) -> Result<()> {
        let needed = |s: &Synced| {
            self.graph.dirty.load(Ordering::Acquire) || s.at.is_none_or(|at| at.elapsed() >= self.graph.refresh)
        };
        let mut synced = self.graph.synced_to.lock().await;
        // Whoever held the lock before may have just looked.
        if needed(&synced) { self.sync_locked(&mut synced).await } else { Ok(()) }
    }

    async fn sync_locked(&self, synced: &mut Synced) -> Result<()> {
        // Cleared before reading: a write that lands during the read marks it again.
        self.graph.dirty.store(false, Ordering::Release);
        let started = Instant::now();
        let Some(since) = synced.to.map(|t| self.graph.look_back(t)) else {
            return self.load_graph(synced, started).await;
        };
        let mut sql = String::from("RETURN time::now();\n");
        for kind in HELD {
            // Opened, closed or granted: each write stamps the edge's `changed_at`.
            sql.push_str(&format!("SELECT * FROM {} WHERE changed_at >= $since;\n", kind.as_str()));
        }
        sql.push_str(&node_statements(" WHERE updated_at >= $since"));
        let vars = Vars::new().set("since", surrealdb::types::Datetime::from(since));
        let mut resp = self.read(&sql, &vars).await?;
        let now: DateTime<Utc> = take(&mut resp, 0)?;
        let edge_statements = HELD.len();
        let mut edges: Vec<Edge> = Vec::new();
        for i in 0..edge_statements {
            edges.extend(take::<Vec<Edge>>(&mut resp, 1 + i)?);
        }
        {
            let mut index = self.graph.index.write().map_err(poisoned)?;
            let mut records = self.graph.records.write().map_err(poisoned)?;
            read_nodes(&mut resp, 1 + edge_statements, &mut index, &mut records)?;
            for e in &edges {
                index.upsert_edge(e);
            }
        }
        synced.to = Some(now);
        synced.at = Some(started);
        Ok(())
    }

    /// The first look: every node's meta, then every traversed edge, streamed so that
    /// the peak memory of a large graph's load stays bounded (one response holding
    /// 900,000 edges is several times their size in the index) and each table is read
    /// once (pages after a cursor each scanned from the table's start: 27.6 s for 909,569
    /// edges at 100,000 NHIs with pages of 1,000).
    async fn load_graph(&self, synced: &mut Synced, started: Instant) -> Result<()> {
        let sql = format!("RETURN time::now();\n{}", node_statements(""));
        let mut resp = self.read(&sql, &Vars::new()).await?;
        // Read before the edges: what commits while they load is read again next time.
        let now: DateTime<Utc> = take(&mut resp, 0)?;
        let mut index = GraphIndex::default();
        let mut records = HashMap::new();
        read_nodes(&mut resp, 1, &mut index, &mut records)?;
        // Every held edge in one streamed pass: rows are indexed as they arrive, so the
        // load holds the index and a channel's worth of rows, never a response of the
        // whole table.
        let sql: String = HELD.iter().map(|k| format!("SELECT {HELD_FIELDS} FROM {};\n", k.as_str())).collect();
        let mut rows = self.stream_rows(sql)?;
        while let Some(row) = rows.next().await {
            let (_, value) = row?;
            let edge = held_edge(value)
                .map_err(|e| StoreError::Database(format!("an edge the graph index cannot read: {e}")))?;
            index.upsert(edge);
        }
        *self.graph.index.write().map_err(poisoned)? = index;
        *self.graph.records.write().map_err(poisoned)? = records;
        self.graph.loaded.store(true, Ordering::Release);
        synced.to = Some(now);
        synced.at = Some(started);
        Ok(())
    }

    /// Walk the graph from `origin` (see [`GraphIndex::traverse`]) over the edges in
    /// force at `at` (now when absent), after refreshing the index when it needs it.
    pub async fn traverse(
        &self,
        origin: &NodeId,
        direction: Direction,
        max_hops: u32,
        node_cap: usize,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<Traversal>> {
        self.refresh_graph().await?;
        let index = self.graph.index.read().map_err(poisoned)?;
        Ok(index.traverse(origin, direction, max_hops, node_cap, at.unwrap_or_else(Utc::now)))
    }

    /// A shortest path, after refreshing the index when it needs it.
    pub async fn shortest_path(
        &self,
        from: &NodeId,
        to: &NodeId,
        max_hops: u32,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<Vec<Step>>> {
        self.refresh_graph().await?;
        let index = self.graph.index.read().map_err(poisoned)?;
        Ok(index.shortest_path(from, to, max_hops, at.unwrap_or_else(Utc::now)))
    }

    /// Read the index (refreshed when it needs it) with `f`.
    pub(crate) async fn with_graph<R>(&self, f: impl FnOnce(&GraphIndex) -> R) -> Result<R> {
        self.refresh_graph().await?;
        let index = self.graph.index.read().map_err(poisoned)?;
        Ok(f(&index))
    }

    /// The edges of `kind` in force now at `node`, leaving it (forward) or arriving at it
    /// (reverse), from the graph index (refreshed when it needs it, so a process reads
    /// its own writes), in id order: a relation field answered without reading an edge
    /// record. `None` for a kind the index does not hold (see [`HELD`]).
    pub async fn indexed_edges(
        &self,
        kind: EdgeKind,
        direction: Direction,
        node: &NodeId,
    ) -> Result<Option<Vec<EdgeFact>>> {
        if !HELD.contains(&kind) {
            return Ok(None);
        }
        let now = Utc::now();
        let mut found: Vec<EdgeFact> =
            self.with_graph(|g| g.edges_of_kind_at(node, kind, direction, now).map(EdgeFact::from).collect()).await?;
        found.sort_by(|a, b| a.id.key.cmp(&b.id.key));
        Ok(Some(found))
    }

    /// Who owns `node` as the graph index last read it, without a look for changes
    /// first: the owners in force, and the people behind them (direct owners and the
    /// members of owning teams) with their active flags. `None` until the index has
    /// loaded, or when a person behind the node is not among its records. For a
    /// decision's first plan, whose commit checks the same facts against the store.
    pub(crate) fn indexed_owners(&self, node: &NodeId) -> Result<Option<OwnerFacts>> {
        if !self.graph.loaded.load(Ordering::Acquire) {
            return Ok(None);
        }
        let now = Utc::now();
        let index = self.graph.index.read().map_err(poisoned)?;
        let records = self.graph.records.read().map_err(poisoned)?;
        let owners: Vec<NodeId> =
            index.edges_of_kind_at(node, EdgeKind::Owns, Direction::Reverse, now).map(|e| e.from.clone()).collect();
        let mut behind: Vec<&NodeId> = Vec::new();
        for owner in &owners {
            match owner.table() {
                Table::Person => behind.push(owner),
                _ => behind
                    .extend(index.edges_of_kind_at(owner, EdgeKind::MemberOf, Direction::Reverse, now).map(|e| e.from)),
            }
        }
        let mut people: Vec<(NodeId, bool)> = Vec::with_capacity(behind.len());
        for p in behind {
            if people.iter().any(|(q, _)| q == p) {
                continue;
            }
            match records.get(p) {
                Some(InventoryNode::Person(person)) => people.push((p.clone(), person.active)),
                _ => return Ok(None),
            }
        }
        Ok(Some(OwnerFacts { owners, people }))
    }

    /// Inventory nodes by id, as fresh as the graph index (this process's own writes,
    /// and other replicas' within the refresh interval): secrets, systems, people and
    /// teams from the records kept beside it, identities and any id it does not hold
    /// from the store. For what a page shows; decisions read the store
    /// ([`Store::nodes_any`]).
    pub async fn current_nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, InventoryNode>> {
        let (kept, read): (Vec<&NodeId>, Vec<&NodeId>) = ids.iter().partition(|id| RECORDED.contains(&id.table()));
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing: Vec<NodeId> = read.into_iter().cloned().collect();
        if !kept.is_empty() {
            self.refresh_graph().await?;
            let records = self.graph.records.read().map_err(poisoned)?;
            for id in kept {
                match records.get(id) {
                    Some(node) => {
                        out.insert(id.clone(), node.clone());
                    }
                    None => missing.push(id.clone()),
                }
            }
        }
        if !missing.is_empty() {
            out.extend(self.nodes_any(&missing).await?);
        }
        Ok(out)
    }

    /// How many edges and nodes the index holds.
    pub fn graph_size(&self) -> (usize, usize) {
        self.graph.index.read().map(|g| (g.edge_count(), g.node_count())).unwrap_or_default()
    }
}

/// A traversal run for a case, as recorded on it.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct TraversalRecord {
    pub case: NodeId,
    pub actor: NodeId,
    /// `blast_radius`, `who_can_reach` or `path`.
    pub query: String,
    pub origin: NodeId,
    pub target: Option<NodeId>,
    pub max_hops: u32,
    pub as_of: Option<DateTime<Utc>>,
    /// How many nodes it reached (path: its length).
    pub reached: u64,
    pub truncated: bool,
    pub at: DateTime<Utc>,
}

impl Store {
    /// Record a traversal on its case. The case must exist.
    pub async fn record_traversal(&self, t: &TraversalRecord) -> Result<()> {
        use super::{Content, rid};
        let content = Content::new()
            .set("case", rid(&t.case))
            .set("actor", rid(&t.actor))
            .set("query", t.query.as_str())
            .set("origin", rid(&t.origin))
            .opt("target", t.target.as_ref().map(rid))
            .set("max_hops", i64::from(t.max_hops))
            .opt("as_of", t.as_of.map(surrealdb::types::Datetime::from))
            .set("reached", t.reached as i64)
            .set("truncated", t.truncated)
            .set("at", surrealdb::types::Datetime::from(t.at))
            .into_value();
        let id = surrealdb::types::RecordId::new("traversal", uuid::Uuid::now_v7().simple().to_string());
        let sql = "BEGIN;
             IF !record::exists($case) { THROW 'NOT_FOUND: ' + <string>$case };
             CREATE ONLY $id CONTENT $content;
             COMMIT;";
        let vars = Vars::new().set("case", rid(&t.case)).set("id", id).set("content", content);
        self.write(sql, &vars).await?;
        Ok(())
    }

    /// The traversals recorded on `case`, oldest first.
    pub async fn traversals_of(&self, case: &NodeId) -> Result<Vec<TraversalRecord>> {
        let mut resp = self
            .read("SELECT * FROM traversal WHERE case = $case ORDER BY at", &Vars::new().set("case", super::rid(case)))
            .await?;
        take(&mut resp, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::Inventory;
    use crate::store::{EdgeDirection, StoreConfig};

    /// The streamed first load reads every edge of every traversed kind, closed ones
    /// too, and the meta of every node.
    #[tokio::test]
    async fn the_first_load_reads_every_edge() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        let mut nodes = vec![
            serde_json::json!({"type": "system", "ref": "s", "kind": "database", "name": "s", "environment": "production"}),
            serde_json::json!({"type": "secret", "ref": "k", "kind": "api_key", "name": "k", "fingerprint": "fp-0123456789"}),
        ];
        let mut edges = vec![serde_json::json!({"type": "authenticates_to", "from": "k", "to": "s"})];
        for i in 0..7 {
            nodes.push(serde_json::json!({"type": "nhi", "ref": format!("n{i}"), "kind": "token", "name": format!("n{i}"), "environment": "test"}));
            edges.push(
                serde_json::json!({"type": "can_access", "from": format!("n{i}"), "to": "s", "privilege": "read"}),
            );
        }
        edges.push(serde_json::json!({"type": "holds", "from": "n0", "to": "k"}));
        let doc = serde_json::json!({ "nodes": nodes, "edges": edges });
        store.import(&Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap();
        for _ in 0..2 {
            let mut synced = Synced::default();
            store.load_graph(&mut synced, Instant::now()).await.unwrap();
            assert_eq!(store.graph_size(), (9, 9));
            assert!(synced.to.is_some());
        }
    }

    /// A relation read from the index lists what the store's edge records list: the
    /// edges in force, in id order, with their privilege, expiry and start; a closed
    /// edge leaves it at once for the process that closed it.
    #[tokio::test]
    async fn indexed_edges_agree_with_the_edge_records() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        let mut nodes = vec![
            serde_json::json!({"type": "system", "ref": "a", "kind": "database", "name": "a", "environment": "production"}),
            serde_json::json!({"type": "system", "ref": "b", "kind": "database", "name": "b", "environment": "test"}),
        ];
        nodes.push(serde_json::json!({"type": "person", "ref": "p", "name": "P", "email": "p@example.com"}));
        nodes.push(serde_json::json!({"type": "team", "ref": "t", "name": "T"}));
        let mut edges = vec![serde_json::json!({"type": "member_of", "from": "p", "to": "t"})];
        for i in 0..6 {
            nodes.push(serde_json::json!({"type": "nhi", "ref": format!("n{i}"), "kind": "token", "name": format!("n{i}"), "environment": "test"}));
            edges.push(
                serde_json::json!({"type": "owns", "from": if i % 2 == 0 { "p" } else { "t" }, "to": format!("n{i}")}),
            );
            let privilege = ["read", "write", "admin"][i % 3];
            edges.push(
                serde_json::json!({"type": "can_access", "from": format!("n{i}"), "to": "a", "privilege": privilege}),
            );
            if i % 2 == 0 {
                edges.push(serde_json::json!({"type": "can_access", "from": format!("n{i}"), "to": "b", "privilege": "read", "expires_at": "2999-01-01T00:00:00Z"}));
            }
        }
        let doc = serde_json::json!({ "nodes": nodes, "edges": edges });
        let summary = store.import(&Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap();
        let ids: Vec<NodeId> = summary.ids.iter().map(|(_, id)| id.clone()).collect();
        let agree = |ids: Vec<NodeId>| {
            let store = store.clone();
            async move {
                for kind in [EdgeKind::CanAccess, EdgeKind::Owns, EdgeKind::MemberOf] {
                    for (walk, direction) in
                        [(Direction::Forward, EdgeDirection::Out), (Direction::Reverse, EdgeDirection::In)]
                    {
                        let mut records = store.edges_of(kind, direction, &ids, None).await.unwrap();
                        for id in &ids {
                            let indexed = store.indexed_edges(kind, walk, id).await.unwrap().unwrap();
                            let stored: Vec<EdgeFact> =
                                records.remove(id).unwrap_or_default().iter().map(EdgeFact::from).collect();
                            assert_eq!(indexed, stored, "{kind:?} at {id} {walk:?}");
                        }
                    }
                }
            }
        };
        agree(ids.clone()).await;
        let first = store.edges_of(EdgeKind::CanAccess, EdgeDirection::Out, &ids, None).await.unwrap();
        let closed = first.values().flatten().next().unwrap().id.clone();
        store.close_edge(&closed).await.unwrap();
        agree(ids.clone()).await;
        let a = ids.iter().find(|i| i.table() == Table::System).unwrap();
        let listed = store.indexed_edges(EdgeKind::CanAccess, Direction::Reverse, a).await.unwrap().unwrap();
        assert!(listed.iter().all(|e| e.id != closed), "the closed edge is gone at once");
        assert!(store.indexed_edges(EdgeKind::StoredIn, Direction::Forward, a).await.unwrap().is_none(), "not held");
        let owns = first.values().flatten().next().unwrap().from.clone();
        let owned = store.edges_of(EdgeKind::Owns, EdgeDirection::In, std::slice::from_ref(&owns), None).await.unwrap();
        store.close_edge(&owned[&owns][0].id).await.unwrap();
        agree(ids.clone()).await;

        // The first load reads only the fields the index keeps, straight from
        // SurrealDB's values: the same as the whole records say, for open and closed
        // edges, with and without expiry, with and without a decision behind them.
        let granted = first.values().flatten().nth(1).unwrap().id.clone();
        let vars = Vars::new().set("e", super::super::edge_rid(&granted));
        store.write("UPDATE ONLY $e SET granted_by = decision:behind", &vars).await.unwrap();
        let mut compared = 0;
        for kind in HELD {
            let mut resp =
                store.read(&format!("SELECT * FROM {} ORDER BY id", kind.as_str()), &Vars::new()).await.unwrap();
            let records: Vec<Edge> = take(&mut resp, 0).unwrap();
            let sql = format!("SELECT {HELD_FIELDS} FROM {} ORDER BY id", kind.as_str());
            let rows: Vec<Value> = store.stream_rows(sql).unwrap().map(|r| r.unwrap().1).collect().await;
            let held: Vec<HeldEdge> = rows.into_iter().map(|r| held_edge(r).unwrap()).collect();
            assert_eq!(held, records.iter().map(HeldEdge::from).collect::<Vec<_>>(), "{kind:?}");
            compared += held.len();
        }
        assert_eq!(compared, doc["edges"].as_array().unwrap().len(), "every edge compared");
        let mut synced = Synced::default();
        store.load_graph(&mut synced, Instant::now()).await.unwrap();
        let facts = store
            .indexed_edges(EdgeKind::CanAccess, Direction::Forward, &first.values().flatten().nth(1).unwrap().from)
            .await;
        let facts = facts.unwrap().unwrap();
        assert_eq!(facts.iter().find(|f| f.id == granted).map(|f| f.governed), Some(Some(true)), "{facts:?}");
        let row = Value::Object(surrealdb::types::Object::from_iter([(
            "id".to_owned(),
            Value::String("can_access:x".into()),
        )]));
        assert!(held_edge(row).unwrap_err().contains("not a record id"));
    }

    /// The records kept beside the index are what the store holds: this process's own
    /// update is read at once, another replica's within the refresh interval; an
    /// identity (not kept) is read from the store.
    #[tokio::test]
    async fn current_nodes_follow_writes_here_at_once_and_elsewhere_within_the_refresh() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        let doc = serde_json::json!({ "nodes": [
            {"type": "team", "ref": "t", "name": "payments"},
            {"type": "system", "ref": "s", "kind": "database", "name": "ledger", "environment": "production"},
            {"type": "nhi", "ref": "n", "kind": "token", "name": "deployer", "environment": "test"},
        ], "edges": [{"type": "can_access", "from": "n", "to": "s", "privilege": "read"}] });
        let summary = store.import(&Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap();
        let ids: Vec<NodeId> = summary.ids.iter().map(|(_, id)| id.clone()).collect();
        let replica = store.as_replica();
        let name = |nodes: &HashMap<NodeId, InventoryNode>, table: Table| {
            nodes.values().find(|n| n.id().table() == table).unwrap().name().to_owned()
        };
        let there = replica.current_nodes(&ids).await.unwrap();
        assert_eq!(there, store.nodes_any(&ids).await.unwrap(), "all three, as stored");
        let team = ids.iter().find(|i| i.table() == Table::Team).unwrap();
        let patch = TeamPatch { name: Some(Name::parse("payments-core").unwrap()), description: None };
        store.update_team(team, &patch).await.unwrap();
        let nhi = ids.iter().find(|i| i.table() == Table::Nhi).unwrap();
        let nhi_patch = NhiPatch { name: Some(Name::parse("deployer-2").unwrap()), ..NhiPatch::default() };
        replica.update_nhi(nhi, &nhi_patch).await.unwrap();
        let here = store.current_nodes(&ids).await.unwrap();
        assert_eq!(name(&here, Table::Team), "payments-core", "this process's write, at once");
        assert_eq!(name(&here, Table::Nhi), "deployer-2", "identities are read from the store");
        let waited = Instant::now();
        loop {
            let there = replica.current_nodes(&ids).await.unwrap();
            if name(&there, Table::Team) == "payments-core" {
                break;
            }
            assert!(waited.elapsed() < std::time::Duration::from_secs(5), "another replica's write never arrived");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
