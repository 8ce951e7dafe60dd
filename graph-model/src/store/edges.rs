//! Edges: relate two nodes, close an edge, and read the edges of many nodes at once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::types::RecordId;

use super::nodes::IN_FORCE;
use super::{Content, Result, Store, StoreError, Vars, edge_rid, rid, take};
use crate::domain::*;

/// Which way to follow edges from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeDirection {
    /// Edges that start at the node (`->kind`).
    Out,
    /// Edges that end at the node (`<-kind`).
    In,
}

/// The key that is set while an edge is open; a unique index on it forbids two open
/// edges of one kind between the same two nodes.
pub(crate) fn open_key(edge: &NewEdge) -> String {
    format!("{}|{}", edge.from, edge.to)
}

/// The fields an edge record is written with.
pub(crate) fn edge_content(
    id: &EdgeId,
    edge: &NewEdge,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Content {
    let dt = surrealdb::types::Datetime::from;
    Content::new()
        .set("id", edge_rid(id))
        .set("in", rid(&edge.from))
        .set("out", rid(&edge.to))
        .opt("privilege", edge.attrs.privilege.map(Privilege::as_str))
        .opt("mechanism", edge.attrs.mechanism.map(AssumeMechanism::as_str))
        .opt("expires_at", edge.attrs.expires_at.map(dt))
        .set("valid_from", dt(valid_from))
        .opt("valid_to", valid_to.map(dt))
        .opt("open_key", valid_to.is_none().then(|| open_key(edge)))
        .set("created_at", dt(now))
}

/// How many statements [`relate_statements`] writes without `granted`.
pub(crate) const RELATE_STATEMENTS: usize = 5;

/// The statements that open `edge` under `id`: both ends exist, a `stored_in` edge ends
/// at a vault, no open edge of the kind joins the two nodes, then the insert. Run inside
/// a transaction; the new edge is `$relate_id`. With `granted`, the edge names the
/// decision being sealed (`$decision_id`) as the one that stands behind it.
pub(crate) fn relate_statements(edge: &NewEdge, id: &EdgeId, vars: Vars, granted: bool) -> (String, Vars) {
    let now = Utc::now();
    let content = edge_content(id, edge, now, None, now);
    let sql = format!(
        "IF !record::exists($relate_from) {{ THROW 'NOT_FOUND: ' + <string>$relate_from }};
         IF !record::exists($relate_to) {{ THROW 'NOT_FOUND: ' + <string>$relate_to }};
         IF $relate_vault_only AND $relate_to.kind != 'vault' {{ THROW 'INVALID:to: a stored_in edge ends at a vault, and ' + <string>$relate_to + ' is a ' + $relate_to.kind }};
         IF count(SELECT VALUE id FROM {table} WHERE open_key = $relate_open_key) > 0 {{
             THROW 'CONFLICT: an open {table} edge from ' + <string>$relate_from + ' to ' + <string>$relate_to + ' already exists'
         }};
         INSERT RELATION INTO {table} $relate_content RETURN NONE;{grant}",
        table = edge.kind.as_str(),
        grant = if granted { "\n         UPDATE $relate_id SET granted_by = $decision_id, granted_at = time::now() RETURN NONE;" } else { "" }
    );
    let vars = vars
        .set("relate_id", edge_rid(id))
        .set("relate_from", rid(&edge.from))
        .set("relate_to", rid(&edge.to))
        .set("relate_vault_only", edge.kind == EdgeKind::StoredIn)
        .set("relate_open_key", open_key(edge))
        .set("relate_content", content.into_value());
    (sql, vars)
}

/// A unique-index refusal of a second open edge, said plainly.
pub(crate) fn open_edge_conflict(e: StoreError, edge: &NewEdge) -> StoreError {
    match e {
        StoreError::Unique { index } if index.ends_with("_open") => {
            StoreError::Conflict(format!("an open {} edge from {} to {} already exists", edge.kind, edge.from, edge.to))
        }
        e => e,
    }
}

impl Store {
    /// Open an edge. Both ends must exist, a `stored_in` edge must end at a vault, and
    /// there must be no open edge of the same kind between the same two nodes. For the
    /// edges that carry governed facts, see [`Store::govern`]: this is the store's
    /// primitive, which the API calls only for the others.
    pub async fn relate(&self, edge: &NewEdge) -> Result<Edge> {
        let id = EdgeId::generate(edge.kind);
        let (statements, vars) = relate_statements(edge, &id, Vars::new(), false);
        let sql = format!("BEGIN;\n{statements}\nSELECT * FROM ONLY $relate_id;\nCOMMIT;");
        let mut resp = self.write(&sql, &vars).await.map_err(|e| open_edge_conflict(e, edge))?;
        take::<Option<Edge>>(&mut resp, RELATE_STATEMENTS + 1)?
            .ok_or_else(|| StoreError::Database("relate returned nothing".into()))
    }

    /// Close an open edge now. The record stays, with `valid_to` set, for history.
    pub async fn close_edge(&self, id: &EdgeId) -> Result<Edge> {
        let sql = "BEGIN;
             IF !record::exists($id) { THROW 'NOT_FOUND: ' + <string>$id };
             IF $id.valid_to != NONE { THROW 'CONFLICT: ' + <string>$id + ' was already closed at ' + <string>$id.valid_to };
             UPDATE ONLY $id SET valid_to = time::now(), open_key = NONE RETURN AFTER;
             COMMIT;";
        let mut resp = self.write(sql, &Vars::new().set("id", edge_rid(id))).await?;
        take::<Option<Edge>>(&mut resp, 3)?.ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// The edges of `kind` at each of `nodes`, following `direction`: edges in force now,
    /// or, with `at`, edges that were in force at that time. One query for all nodes.
    pub async fn edges_of(
        &self,
        kind: EdgeKind,
        direction: EdgeDirection,
        nodes: &[NodeId],
        at: Option<DateTime<Utc>>,
    ) -> Result<HashMap<NodeId, Vec<Edge>>> {
        let rids: Vec<RecordId> = nodes.iter().map(rid).collect();
        if rids.is_empty() {
            return Ok(HashMap::new());
        }
        let arrow = match direction {
            EdgeDirection::Out => "->",
            EdgeDirection::In => "<-",
        };
        let when = if at.is_some() {
            "valid_from <= $at AND (valid_to = NONE OR valid_to > $at) AND (expires_at = NONE OR expires_at > $at)"
        } else {
            IN_FORCE
        };
        let sql = format!(
            "LET $edges = array::flatten(SELECT VALUE {arrow}{table} FROM $ids);
             SELECT * FROM $edges WHERE {when} ORDER BY id;",
            table = kind.as_str()
        );
        let mut vars = Vars::new().set("ids", rids);
        if let Some(at) = at {
            vars = vars.set("at", surrealdb::types::Datetime::from(at));
        }
        let mut resp = self.read(&sql, &vars).await?;
        let edges: Vec<Edge> = take(&mut resp, 1)?;
        let mut by_node: HashMap<NodeId, Vec<Edge>> = HashMap::new();
        for e in edges {
            let key = match direction {
                EdgeDirection::Out => e.from.clone(),
                EdgeDirection::In => e.to.clone(),
            };
            by_node.entry(key).or_default().push(e);
        }
        Ok(by_node)
    }

    /// One edge by id.
    pub async fn edge(&self, id: &EdgeId) -> Result<Option<Edge>> {
        let mut resp = self.read("SELECT * FROM ONLY $id", &Vars::new().set("id", edge_rid(id))).await?;
        take(&mut resp, 0)
    }

    /// The open edge of `edge`'s kind between its two nodes, if there is one.
    pub async fn edges_between(&self, edge: &NewEdge) -> Result<Option<Edge>> {
        let sql = format!("SELECT * FROM {} WHERE open_key = $key LIMIT 1", edge.kind.as_str());
        let mut resp = self.read(&sql, &Vars::new().set("key", open_key(edge))).await?;
        let mut rows: Vec<Edge> = take(&mut resp, 0)?;
        Ok(rows.pop())
    }
}
