//! Importing an inventory document: every item is checked against the store first, and
//! reported by item when it fails; then everything is written in one transaction, so a
//! document lands whole or not at all.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use surrealdb::types::{RecordId, Value};

use super::edges::{edge_content, open_key};
use super::nodes::node_content;
use super::{Result, Store, StoreError, Vars, rid, take};
use crate::domain::inventory::{Inventory, ItemError, NodeSpec};
use crate::domain::*;

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub nodes: usize,
    pub edges: usize,
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
    /// Write a validated inventory in one transaction.
    pub async fn import(&self, inv: &Inventory) -> Result<ImportSummary> {
        self.check_against_store(inv).await?;
        let now = Utc::now();
        let mut by_table: HashMap<Table, Vec<Value>> = HashMap::new();
        for node in &inv.nodes {
            let content = node_content(&node.spec, now).set("id", rid(&node.id));
            by_table.entry(node.spec.table()).or_default().push(content.into_value());
        }
        let mut by_kind: HashMap<EdgeKind, Vec<Value>> = HashMap::new();
        for e in &inv.edges {
            let id = EdgeId::generate(e.edge.kind);
            let content = edge_content(&id, &e.edge, e.valid_from.unwrap_or(now), e.valid_to, now);
            by_kind.entry(e.edge.kind).or_default().push(content.into_value());
        }
        let mut sql = String::from("BEGIN;\n");
        let mut vars = Vars::new();
        for table in Table::ALL {
            if let Some(rows) = by_table.remove(&table) {
                sql.push_str(&format!("INSERT INTO {table} $n_{table} RETURN NONE;\n"));
                vars = vars.set(&format!("n_{table}"), rows);
            }
        }
        for kind in EdgeKind::ALL {
            if let Some(rows) = by_kind.remove(&kind) {
                sql.push_str(&format!("INSERT RELATION INTO {kind} $e_{kind} RETURN NONE;\n"));
                vars = vars.set(&format!("e_{kind}"), rows);
            }
        }
        sql.push_str("COMMIT;");
        self.write(&sql, &vars).await?;
        Ok(ImportSummary {
            nodes: inv.nodes.len(),
            edges: inv.edges.len(),
            ids: inv.nodes.iter().map(|n| (n.reference.clone(), n.id.clone())).collect(),
        })
    }

    /// Find what the store makes wrong in a document that is valid on its own: edges to
    /// ids that do not exist, e-mails and fingerprints already taken, edges already open,
    /// `stored_in` edges to systems that are not vaults.
    async fn check_against_store(&self, inv: &Inventory) -> Result<()> {
        let external: Vec<RecordId> = inv.external_ids.iter().map(|(_, id)| rid(id)).collect();
        let emails: Vec<String> = inv
            .nodes
            .iter()
            .filter_map(|n| match &n.spec {
                NodeSpec::Person(p) => Some(p.email.as_str().to_owned()),
                _ => None,
            })
            .collect();
        let fingerprints: Vec<String> = inv
            .nodes
            .iter()
            .filter_map(|n| match &n.spec {
                NodeSpec::Secret(s) => Some(s.fingerprint.as_str().to_owned()),
                _ => None,
            })
            .collect();
        // Only edges between stored nodes can collide with an edge already open.
        let stored: HashSet<&NodeId> = inv.external_ids.iter().map(|(_, id)| id).collect();
        let mut candidate_keys: HashMap<EdgeKind, Vec<String>> = HashMap::new();
        for e in &inv.edges {
            if e.valid_to.is_none() && stored.contains(&e.edge.from) && stored.contains(&e.edge.to) {
                candidate_keys.entry(e.edge.kind).or_default().push(open_key(&e.edge));
            }
        }
        let mut open_checks = Vec::new();
        let mut vars = Vars::new().set("ids", external).set("emails", emails).set("fingerprints", fingerprints);
        for (kind, keys) in &candidate_keys {
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
        let existing: Existing = take(&mut resp, 0)?;

        let found: HashMap<NodeId, Option<String>> = existing.ids.into_iter().map(|n| (n.id, n.kind)).collect();
        let emails: HashSet<String> = existing.emails.into_iter().collect();
        let fingerprints: HashSet<String> = existing.fingerprints.into_iter().collect();
        let open: HashSet<String> = existing.open.into_iter().collect();
        let mut errors = Vec::new();
        let fail = |item: &str, reference: Option<&str>, field: &str, message: String| ItemError {
            item: item.to_owned(),
            reference: reference.map(str::to_owned),
            field: Some(field.to_owned()),
            message,
        };
        for n in &inv.nodes {
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
        let kinds: HashMap<&NodeId, &NodeSpec> = inv.nodes.iter().map(|n| (&n.id, &n.spec)).collect();
        for e in &inv.edges {
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
        if errors.is_empty() { Ok(()) } else { Err(StoreError::Import(errors)) }
    }
}
