//! A document read against the store before it is written: which of its nodes are
//! already stored (matched by natural key), which of its edges are already open, and
//! which open edges a complete run of its source no longer holds.
//!
//! Natural keys: a person's e-mail, a secret's fingerprint, an NHI's provider and
//! external id (both given), a team's name, a system's name and environment. A key that
//! matches more than one stored node is a fault of the item, not a guess: the document
//! must name the node it means by id.
//!
//! A matched node is refreshed with what describes it (names, kinds, rotation dates...),
//! never with what governs it: a person's roles and active flag, an NHI's status and a
//! system's criticality change through decisions, not through a feed.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use surrealdb::types::RecordId;

use super::nodes::node_content;
use super::{Content, Result, Store, StoreError, Vars, edge_rid, rid, take};
use crate::domain::inventory::{ImportEdge, ImportNode, Inventory, ItemError, NodeSpec};
use crate::domain::*;

/// What writing a document will do.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Nodes not stored yet.
    pub create: Vec<ImportNode>,
    /// Nodes already stored, under their stored ids.
    pub update: Vec<ImportNode>,
    /// Edges to open (or history to record), their ends mapped to stored ids.
    pub open: Vec<ImportEdge>,
    /// Open edges the document holds as they are.
    pub kept: Vec<RecordId>,
    /// Open edges to close: replaced by the document's (other attributes), or absent
    /// from a complete run of their source.
    pub close: Vec<RecordId>,
    /// Of `close`, those closed because a complete run did not hold them.
    pub absent: usize,
    /// The document's source was stale when it arrived (see `domain::feeds`): its
    /// absent edges are left open, and no alert is raised from it.
    pub source_stale: bool,
    /// Open edges a complete run no longer holds that were left open because its source
    /// was stale.
    pub absent_paused: usize,
    /// The id each node ref resolves to, in document order.
    pub ids: Vec<(String, NodeId)>,
}

#[derive(serde::Deserialize)]
struct Keyed {
    id: NodeId,
    key: String,
}

#[derive(serde::Deserialize)]
struct Matches {
    people: Vec<Keyed>,
    secrets: Vec<Keyed>,
    nhis: Vec<Keyed>,
    teams: Vec<Keyed>,
    systems: Vec<Keyed>,
}

/// The natural key of a node, when its kind has one.
fn natural_key(spec: &NodeSpec) -> Option<String> {
    match spec {
        NodeSpec::Person(p) => Some(p.email.as_str().to_owned()),
        NodeSpec::Secret(s) => Some(s.fingerprint.as_str().to_owned()),
        NodeSpec::Nhi(n) => match (&n.provider, &n.external_id) {
            (Some(p), Some(x)) => Some(format!("{}|{}", p.as_str(), x.as_str())),
            _ => None,
        },
        NodeSpec::Team(t) => Some(t.name.as_str().to_owned()),
        NodeSpec::System(s) => Some(format!("{}|{}", s.name.as_str(), s.environment.as_str())),
    }
}

fn key_name(spec: &NodeSpec) -> &'static str {
    match spec {
        NodeSpec::Person(_) => "e-mail",
        NodeSpec::Secret(_) => "fingerprint",
        NodeSpec::Nhi(_) => "provider and external id",
        NodeSpec::Team(_) => "name",
        NodeSpec::System(_) => "name and environment",
    }
}

/// The fields of a stored node a refresh rewrites (see the module docs).
pub(crate) fn refresh_content(spec: &NodeSpec, now: DateTime<Utc>) -> Content {
    let fields: &[&str] = match spec {
        NodeSpec::Person(_) => &["name"],
        NodeSpec::Team(_) => &["description"],
        NodeSpec::Nhi(_) => &["kind", "name", "environment", "description", "last_used_at"],
        NodeSpec::Secret(_) => &["kind", "name", "issued_at", "last_rotated_at", "expires_at", "rotation_period_days"],
        NodeSpec::System(_) => &["kind", "description"],
    };
    node_content(spec, now).keep(fields).set("updated_at", surrealdb::types::Datetime::from(now))
}

/// Stored nodes by their table and natural key (several when a key is not unique).
type StoredByKey = HashMap<(Table, String), Vec<NodeId>>;
/// Stored open and closed edges by kind and ends.
type EdgesByEnds = HashMap<(EdgeKind, NodeId, NodeId), Vec<Edge>>;

impl Store {
    /// Read the store for what `inv` matches (two round trips, three for a complete
    /// run) and plan the write. Faults a document cannot be written with are reported
    /// by item.
    pub(crate) async fn plan_import(&self, inv: &Inventory) -> Result<Plan> {
        let mut errors = Vec::new();
        let mut plan = Plan::default();
        let stored = self.stored_by_key(inv).await?;
        let remap = plan_nodes(inv, &stored, &mut plan, &mut errors);

        // Edges, their ends mapped; those between stored nodes may exist already.
        let ends_stored: HashSet<NodeId> =
            remap.values().cloned().chain(inv.external_ids.iter().map(|(_, id)| id.clone())).collect();
        let edges: Vec<ImportEdge> = inv.edges.iter().map(|e| remapped(e, &remap)).collect();
        let existing = self.existing_edges(&edges, &ends_stored).await?;
        let (kept, replaced) = plan_edges(edges, &existing, &mut plan);
        plan.kept = kept.iter().map(edge_rid).collect();

        if let Some(source) = &inv.source {
            plan.source_stale = self.feed_freshness(source.as_str(), Utc::now()).await?.is_stale();
        }
        // A complete run closes its source's open edges that it no longer holds, unless
        // the source was stale: then the run repairs it, and the next one closes them.
        if let (true, Some(source)) = (inv.complete, &inv.source) {
            for id in self.open_edges_of(source.as_str()).await? {
                if kept.contains(&id) || replaced.contains(&id) {
                    continue;
                }
                if plan.source_stale {
                    plan.absent_paused += 1;
                } else {
                    plan.close.push(edge_rid(&id));
                    plan.absent += 1;
                }
            }
        }

        if errors.is_empty() { Ok(plan) } else { Err(StoreError::Import(errors)) }
    }

    /// The stored nodes the document's natural keys match, in one round trip.
    async fn stored_by_key(&self, inv: &Inventory) -> Result<StoredByKey> {
        let mut wanted: HashMap<Table, Vec<String>> = HashMap::new();
        for n in &inv.nodes {
            if let Some(key) = natural_key(&n.spec) {
                let key = match &n.spec {
                    // Stored NHIs and systems are looked up by one field, then keyed whole.
                    NodeSpec::Nhi(x) => x.external_id.as_ref().map_or(key, |e| e.as_str().to_owned()),
                    NodeSpec::System(s) => s.name.as_str().to_owned(),
                    _ => key,
                };
                wanted.entry(n.spec.table()).or_default().push(key);
            }
        }
        let mut list = |t: Table| wanted.remove(&t).unwrap_or_default();
        let vars = Vars::new()
            .set("emails", list(Table::Person))
            .set("fingerprints", list(Table::Secret))
            .set("external_ids", list(Table::Nhi))
            .set("teams", list(Table::Team))
            .set("systems", list(Table::System));
        let mut resp = self
            .read(
                "RETURN {
                    people: (SELECT id, email AS key FROM person WHERE email IN $emails),
                    secrets: (SELECT id, fingerprint AS key FROM secret WHERE fingerprint IN $fingerprints),
                    nhis: (SELECT id, provider + '|' + external_id AS key FROM nhi
                           WHERE external_id IN $external_ids AND provider != NONE),
                    teams: (SELECT id, name AS key FROM team WHERE name IN $teams),
                    systems: (SELECT id, name + '|' + environment AS key FROM system WHERE name IN $systems)
                };",
                &vars,
            )
            .await?;
        let found: Matches = take(&mut resp, 0)?;
        let mut stored = StoredByKey::new();
        for (table, rows) in [
            (Table::Person, found.people),
            (Table::Secret, found.secrets),
            (Table::Nhi, found.nhis),
            (Table::Team, found.teams),
            (Table::System, found.systems),
        ] {
            for row in rows {
                stored.entry((table, row.key)).or_default().push(row.id);
            }
        }
        Ok(stored)
    }

    /// The stored edges leaving the ends of `edges` that are both stored, by kind and
    /// ends: one query per kind, in one round trip.
    async fn existing_edges(&self, edges: &[ImportEdge], ends_stored: &HashSet<NodeId>) -> Result<EdgesByEnds> {
        let mut from_by_kind: HashMap<EdgeKind, HashSet<NodeId>> = HashMap::new();
        for e in edges {
            if ends_stored.contains(&e.edge.from) && ends_stored.contains(&e.edge.to) {
                from_by_kind.entry(e.edge.kind).or_default().insert(e.edge.from.clone());
            }
        }
        let kinds: Vec<EdgeKind> = EdgeKind::ALL.into_iter().filter(|k| from_by_kind.contains_key(k)).collect();
        let mut existing = EdgesByEnds::new();
        if kinds.is_empty() {
            return Ok(existing);
        }
        let mut sql = String::new();
        let mut vars = Vars::new();
        for kind in &kinds {
            sql.push_str(&format!(
                "LET $x_{kind} = array::flatten(SELECT VALUE ->{kind} FROM $f_{kind});\nSELECT * FROM $x_{kind};\n"
            ));
            let from: Vec<RecordId> = from_by_kind[kind].iter().map(rid).collect();
            vars = vars.set(&format!("f_{kind}"), from);
        }
        let mut resp = self.read(&sql, &vars).await?;
        for (i, kind) in kinds.iter().enumerate() {
            let rows: Vec<Edge> = take(&mut resp, 2 * i + 1)?;
            for edge in rows {
                existing.entry((*kind, edge.from.clone(), edge.to.clone())).or_default().push(edge);
            }
        }
        Ok(existing)
    }

    /// The open edges a feed recorded, of every kind.
    async fn open_edges_of(&self, source: &str) -> Result<Vec<EdgeId>> {
        let sql: String = EdgeKind::ALL
            .iter()
            .map(|k| format!("SELECT VALUE id FROM {k} WHERE source = $source AND valid_to = NONE;\n"))
            .collect();
        let mut resp = self.read(&sql, &Vars::new().set("source", source)).await?;
        let mut open = Vec::new();
        for i in 0..EdgeKind::ALL.len() {
            open.extend(take::<Vec<EdgeId>>(&mut resp, i)?);
        }
        Ok(open)
    }
}

/// Match the document's nodes to stored ones: new nodes are created, matched ones
/// updated (and their document ids mapped to the stored ids, which are returned); a
/// node matching several stored ones, or one another node matched, is a fault.
fn plan_nodes(
    inv: &Inventory,
    stored: &StoredByKey,
    plan: &mut Plan,
    errors: &mut Vec<ItemError>,
) -> HashMap<NodeId, NodeId> {
    let mut remap: HashMap<NodeId, NodeId> = HashMap::new();
    let mut claimed: HashMap<NodeId, String> = HashMap::new();
    for n in &inv.nodes {
        let hits = natural_key(&n.spec).and_then(|k| stored.get(&(n.spec.table(), k)));
        match hits.map(Vec::as_slice) {
            None | Some([]) => {
                plan.ids.push((n.reference.clone(), n.id.clone()));
                plan.create.push(n.clone());
            }
            Some([id]) => {
                if let Some(earlier) = claimed.insert(id.clone(), n.item.clone()) {
                    errors.push(item_fault(
                        &n.item,
                        Some(&n.reference),
                        "ref",
                        format!("matches {id}, as {earlier} does; a node appears once in a document"),
                    ));
                    continue;
                }
                remap.insert(n.id.clone(), id.clone());
                plan.ids.push((n.reference.clone(), id.clone()));
                plan.update.push(ImportNode { id: id.clone(), ..n.clone() });
            }
            Some(many) => errors.push(item_fault(
                &n.item,
                Some(&n.reference),
                "ref",
                format!(
                    "{} stored {}s have this {}; refer to the one meant by its id in the edges instead",
                    many.len(),
                    n.spec.table(),
                    key_name(&n.spec)
                ),
            )),
        }
    }
    remap
}

/// An edge with its ends mapped to the stored nodes they matched.
fn remapped(e: &ImportEdge, remap: &HashMap<NodeId, NodeId>) -> ImportEdge {
    let mut e = e.clone();
    for end in [&mut e.edge.from, &mut e.edge.to] {
        if let Some(id) = remap.get(end) {
            *end = id.clone();
        }
    }
    e
}

/// Plan each edge against the stored ones between the same ends: history is recorded
/// once; an open relation with the same attributes is kept, with others it is replaced
/// (closed and opened again). Returns the kept and the replaced stored edges.
fn plan_edges(edges: Vec<ImportEdge>, existing: &EdgesByEnds, plan: &mut Plan) -> (HashSet<EdgeId>, HashSet<EdgeId>) {
    let mut kept: HashSet<EdgeId> = HashSet::new();
    let mut replaced: HashSet<EdgeId> = HashSet::new();
    for e in edges {
        let same = existing.get(&(e.edge.kind, e.edge.from.clone(), e.edge.to.clone()));
        let same = same.map(Vec::as_slice).unwrap_or_default();
        match e.valid_to {
            // History: recorded once, matched by when it ended (and began, if given).
            Some(to) => {
                let recorded =
                    same.iter().any(|s| s.valid_to == Some(to) && e.valid_from.is_none_or(|from| s.valid_from == from));
                if !recorded {
                    plan.open.push(e);
                }
            }
            None => match same.iter().find(|s| s.valid_to.is_none()) {
                Some(s)
                    if s.privilege == e.edge.attrs.privilege
                        && s.mechanism == e.edge.attrs.mechanism
                        && s.expires_at == e.edge.attrs.expires_at =>
                {
                    kept.insert(s.id.clone());
                }
                // The relation goes on with other attributes: the old edge is closed
                // and the new one opened, so history shows when it changed.
                Some(s) => {
                    replaced.insert(s.id.clone());
                    plan.close.push(edge_rid(&s.id));
                    plan.open.push(e);
                }
                None => plan.open.push(e),
            },
        }
    }
    (kept, replaced)
}

/// A fault of one item of a document, at a field.
pub(super) fn item_fault(item: &str, reference: Option<&str>, field: &str, message: String) -> ItemError {
    ItemError { item: item.to_owned(), reference: reference.map(str::to_owned), field: Some(field.to_owned()), message }
}
