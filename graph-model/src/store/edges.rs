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

impl Store {
    /// Open an edge. Both ends must exist, a `stored_in` edge must end at a vault, and
    /// there must be no open edge of the same kind between the same two nodes.
    pub async fn relate(&self, edge: &NewEdge) -> Result<Edge> {
        let id = EdgeId::generate(edge.kind);
        let now = Utc::now();
        let content = edge_content(&id, edge, now, None, now);
        let sql = format!(
            "BEGIN;
             IF !record::exists($from) {{ THROW 'NOT_FOUND: ' + <string>$from }};
             IF !record::exists($to) {{ THROW 'NOT_FOUND: ' + <string>$to }};
             IF $vault_only AND $to.kind != 'vault' {{ THROW 'INVALID:to: a stored_in edge ends at a vault, and ' + <string>$to + ' is a ' + $to.kind }};
             IF count(SELECT VALUE id FROM {table} WHERE open_key = $open_key) > 0 {{
                 THROW 'CONFLICT: an open {table} edge from ' + <string>$from + ' to ' + <string>$to + ' already exists'
             }};
             INSERT RELATION INTO {table} $content RETURN AFTER;
             COMMIT;",
            table = edge.kind.as_str()
        );
        let vars = Vars::new()
            .set("from", rid(&edge.from))
            .set("to", rid(&edge.to))
            .set("vault_only", edge.kind == EdgeKind::StoredIn)
            .set("open_key", open_key(edge))
            .set("content", content.into_value());
        let mut resp = self.write(&sql, &vars).await.map_err(|e| match e {
            StoreError::Conflict(m) if m.contains("_open") => StoreError::Conflict(format!(
                "an open {} edge from {} to {} already exists",
                edge.kind, edge.from, edge.to
            )),
            e => e,
        })?;
        let mut rows: Vec<Edge> = take(&mut resp, 5)?;
        rows.pop().ok_or_else(|| StoreError::Database("relate returned nothing".into()))
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
}
