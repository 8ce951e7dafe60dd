//! Ungoverned access: open edges carrying governed facts (access, delegation, secrets
//! held, ownership, membership) that a feed reported and no decision stands behind.
//!
//! Feeds describe; they do not grant. An edge a decision opened names it
//! (`granted_by`); one an import opened does not, until a baseline adopts it: the
//! genesis of a bootstrap document adopts what the document holds, and afterwards a
//! source's edges are adopted by one `AdoptBaseline` change that a second admin approves,
//! naming exactly the edges it adopts (their count and the SHA-256 of their sorted ids).
//! Once the chain has begun, access a feed reports that nobody approved raises one alert
//! per NHI, counted again (not raised again) on each later run.

use serde::Deserialize;

use crate::domain::change::GOVERNED_EDGES;
use crate::domain::*;
use crate::store::{Result, Store, Vars, edge_rid, take};

/// The edge kinds whose ungoverned edges raise alerts: who can reach what.
const ACCESS_EDGES: [EdgeKind; 2] = [EdgeKind::CanAccess, EdgeKind::Assumes];

/// What [`Store::ungoverned_access`] found.
#[derive(Debug, Clone)]
pub struct Ungoverned {
    /// How many open edges no decision stands behind.
    pub total: u64,
    /// SHA-256 of their sorted ids, one per line: what an adoption must name.
    pub digest: String,
    /// The first of them, in id order.
    pub edges: Vec<Edge>,
}

/// The condition selecting one feed's open, ungoverned edges (`$source`), or those no
/// feed opened.
pub(crate) fn ungoverned_where(source: Option<&str>) -> &'static str {
    match source {
        Some(_) => "valid_to = NONE AND granted_by = NONE AND source = $source",
        None => "valid_to = NONE AND granted_by = NONE AND source = NONE",
    }
}

/// An expression counting the edges `cond` selects across the governed kinds.
pub(crate) fn count_expression(cond: &str) -> String {
    let parts: Vec<String> =
        GOVERNED_EDGES.iter().map(|k| format!("(SELECT VALUE id FROM {k} WHERE {cond})")).collect();
    format!("array::len(array::concat({}))", parts.join(", "))
}

/// Statements that make the decision being sealed (`$decision_id`) the one behind every
/// edge `cond` selects, across the governed kinds.
pub(crate) fn adopt_statements(cond: &str) -> String {
    GOVERNED_EDGES
        .iter()
        .map(|k| {
            format!("UPDATE {k} SET granted_by = $decision_id, granted_at = time::now() WHERE {cond} RETURN NONE;\n")
        })
        .collect()
}

impl Store {
    /// The open edges carrying governed facts that no decision stands behind, of the
    /// feed `source` (or, with `None`, those no feed opened): how many, their digest,
    /// and the first `first` of them.
    pub async fn ungoverned_access(&self, source: Option<&str>, first: usize) -> Result<Ungoverned> {
        let cond = ungoverned_where(source);
        let sql: String =
            GOVERNED_EDGES.iter().map(|k| format!("SELECT VALUE id FROM {k} WHERE {cond} ORDER BY id;\n")).collect();
        let mut vars = Vars::new();
        if let Some(s) = source {
            vars = vars.set("source", s);
        }
        let mut resp = self.read(&sql, &vars).await?;
        let mut ids: Vec<EdgeId> = Vec::new();
        for i in 0..GOVERNED_EDGES.len() {
            ids.extend(take::<Vec<EdgeId>>(&mut resp, i)?);
        }
        let mut text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        text.sort();
        let digest = sha256_hex(text.join("\n").as_bytes());
        ids.sort_by_key(ToString::to_string);
        let shown: Vec<surrealdb::types::RecordId> = ids.iter().take(first).map(edge_rid).collect();
        let edges: Vec<Edge> = if shown.is_empty() {
            vec![]
        } else {
            let mut resp = self.read("SELECT * FROM $ids", &Vars::new().set("ids", shown)).await?;
            let mut edges: Vec<Edge> = take(&mut resp, 0)?;
            edges.sort_by_key(|e| e.id.to_string());
            edges
        };
        Ok(Ungoverned { total: ids.len() as u64, digest, edges })
    }

    /// Once the chain has begun, raise one alert per NHI holding access (`can_access`,
    /// `assumes`) that the feed `source` reported and no decision stands behind; an NHI
    /// already alerted has its alert counted again. Returns how many NHIs were flagged.
    pub async fn raise_ungoverned_alerts(&self, source: Option<&str>) -> Result<usize> {
        if !self.has_genesis().await? {
            return Ok(0);
        }
        let cond = ungoverned_where(source);
        let sql: String = ACCESS_EDGES
            .iter()
            .map(|k| format!("SELECT in AS nhi, count() AS n FROM {k} WHERE {cond} GROUP BY nhi;\n"))
            .collect();
        let mut vars = Vars::new();
        if let Some(s) = source {
            vars = vars.set("source", s);
        }
        let mut resp = self.read(&sql, &vars).await?;
        #[derive(Deserialize)]
        struct Row {
            nhi: NodeId,
            n: u64,
        }
        let mut per_nhi: std::collections::BTreeMap<NodeId, u64> = Default::default();
        for i in 0..ACCESS_EDGES.len() {
            for r in take::<Vec<Row>>(&mut resp, i)? {
                *per_nhi.entry(r.nhi).or_default() += r.n;
            }
        }
        let feed = source.unwrap_or("a feed");
        for (nhi, n) in &per_nhi {
            let alert = NewAlert {
                source: Label::parse("nhigov")?,
                rule: Label::parse("ungoverned_access")?,
                severity: Severity::High,
                title: Text::parse(&format!("{n} access edge(s) reported by {feed} that no decision granted"))?,
                detail: Some(Text::parse(
                    "Approve the access (relate or a GRANT_ACCESS request), close it, or adopt the source's baseline.",
                )?),
                detected_at: chrono::Utc::now(),
                subject: SubjectRef::Id(nhi.clone()),
                refs: vec![],
                dedupe_key: format!("ungoverned-access:{nhi}"),
            };
            self.ingest_alert(&alert).await?;
        }
        Ok(per_nhi.len())
    }
}
