//! Inventory nodes: create, change, fetch by id in batches, and list in pages.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use surrealdb::types::RecordId;

use super::paging::{Page, PageRequest};
use super::{Content, Result, Store, StoreError, Vars, rid, take};
use crate::domain::inventory::NodeSpec;
use crate::domain::*;

/// A node type the store can read back.
pub trait NodeRecord: DeserializeOwned + Send + Sync + 'static {
    const TABLE: Table;
    fn id(&self) -> &NodeId;
}

macro_rules! node_record {
    ($($ty:ty => $table:expr),+) => {$(
        impl NodeRecord for $ty {
            const TABLE: Table = $table;
            fn id(&self) -> &NodeId { &self.id }
        }
    )+};
}
node_record!(Person => Table::Person, Team => Table::Team, Nhi => Table::Nhi, Secret => Table::Secret, System => Table::System);

/// Filters an inventory screen needs. Fields that do not apply to a table are refused.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    pub kind: Option<&'static str>,
    pub environment: Option<Environment>,
    pub status: Option<NhiStatus>,
    pub criticality: Option<Criticality>,
    /// Only nodes owned by this person or team: directly, or (for a person) through a
    /// team they belong to.
    pub owner: Option<NodeId>,
    /// Case-insensitive substring of the name (or e-mail, for people).
    pub name_contains: Option<String>,
    pub active: Option<bool>,
    pub role: Option<Role>,
    /// Only NHIs unused (or, never used, created) longer ago than this.
    pub stale_before: Option<DateTime<Utc>>,
    /// NHIs with (true) or without (false) an active owner: no active person owns it
    /// directly, and no owning team has an active member.
    pub orphaned: Option<bool>,
    /// NHIs that do (true) or do not (false) hold admin access to a tier0 system or to
    /// anything in production.
    pub over_privileged: Option<bool>,
}

/// An NHI has no active owner (ownership and membership edges in force). Evaluated per
/// row: a filter on it reads the graph around every NHI of the table.
macro_rules! orphaned {
    () => {
        "(count(<-owns[WHERE valid_to = NONE AND (expires_at = NONE OR expires_at > time::now())]<-person[WHERE active = true]) = 0
    AND count(<-owns[WHERE valid_to = NONE AND (expires_at = NONE OR expires_at > time::now())]<-team<-member_of[WHERE valid_to = NONE AND (expires_at = NONE OR expires_at > time::now())]<-person[WHERE active = true]) = 0)"
    };
}

/// An NHI holds admin access, in force, to a tier0 or production system.
macro_rules! over_privileged {
    () => {
        "(count(->can_access[WHERE privilege = 'admin' AND valid_to = NONE AND (expires_at = NONE OR expires_at > time::now())]->system[WHERE criticality = 'tier0' OR environment = 'production']) > 0)"
    };
}

/// An open edge, in force now: not closed and not expired.
pub(crate) const IN_FORCE: &str = "valid_to = NONE AND (expires_at = NONE OR expires_at > time::now())";

/// The records of what `$person` owns, directly or through a team in force: `$teams`,
/// then `$owned`. Two statements. A statement that reads `subject IN $owned` from an
/// index reads it from [`Store::ownership_of`] instead, in chunks ([`in_chunks_expr`](super::in_chunks_expr)):
/// past 32 values SurrealDB 3.3 reads the whole table for it.
fn owned_by_person() -> String {
    format!(
        "LET $teams = (SELECT VALUE out FROM $person->member_of WHERE {IN_FORCE});
         LET $owned = array::distinct((SELECT VALUE out FROM array::flatten(
             SELECT VALUE ->owns FROM array::concat([$person], $teams)) WHERE {IN_FORCE}));\n"
    )
}

impl Store {
    /// The teams `person` is a member of and everything they own, directly or through
    /// those teams (memberships and ownership in force now).
    pub(crate) async fn ownership_of(&self, person: &NodeId) -> Result<(Vec<NodeId>, Vec<NodeId>)> {
        let sql = format!("{}RETURN [$teams, $owned];", owned_by_person());
        let mut resp = self.read(&sql, &Vars::new().set("person", rid(person))).await?;
        take(&mut resp, 2)
    }

    /// Fetch nodes of one table by id; missing ids are simply absent from the map.
    pub async fn nodes_by_id<T: NodeRecord>(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, T>> {
        let rids: Vec<RecordId> = ids.iter().filter(|id| id.table() == T::TABLE).map(rid).collect();
        if rids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut resp = self.read("SELECT * FROM $ids", &Vars::new().set("ids", rids)).await?;
        let rows: Vec<T> = take(&mut resp, 0)?;
        Ok(rows.into_iter().map(|r| (r.id().clone(), r)).collect())
    }

    /// Fetch nodes of any inventory tables by id in one query; missing ids are absent.
    pub async fn nodes_any(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, InventoryNode>> {
        let rids: Vec<RecordId> = ids.iter().filter(|id| is_inventory(id.table())).map(rid).collect();
        if rids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut resp = self.read("SELECT * FROM $ids", &Vars::new().set("ids", rids)).await?;
        let rows: Vec<serde_json::Value> = take(&mut resp, 0)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let node = inventory_node(row)?;
            out.insert(node.id().clone(), node);
        }
        Ok(out)
    }

    /// Fetch one node of any inventory table.
    pub async fn node(&self, id: &NodeId) -> Result<Option<InventoryNode>> {
        let ids = std::slice::from_ref(id);
        Ok(match id.table() {
            Table::Person => self.nodes_by_id::<Person>(ids).await?.into_values().next().map(InventoryNode::Person),
            Table::Team => self.nodes_by_id::<Team>(ids).await?.into_values().next().map(InventoryNode::Team),
            Table::Nhi => self.nodes_by_id::<Nhi>(ids).await?.into_values().next().map(InventoryNode::Nhi),
            Table::Secret => self.nodes_by_id::<Secret>(ids).await?.into_values().next().map(InventoryNode::Secret),
            Table::System => self.nodes_by_id::<System>(ids).await?.into_values().next().map(InventoryNode::System),
            _ => None,
        })
    }

    /// The person with this e-mail address: as read since this process last wrote,
    /// where no other process writes the database (see `signins`), or read now.
    pub async fn person_by_email(&self, email: &Email) -> Result<Option<Person>> {
        if let Some(person) = self.signins.person(email.as_str()) {
            return Ok(Some(person));
        }
        let seen = self.signins.before_read();
        let mut resp = self
            .read("SELECT * FROM person WHERE email = $email LIMIT 1", &Vars::new().set("email", email.as_str()))
            .await?;
        let mut rows: Vec<Person> = take(&mut resp, 0)?;
        let person = rows.pop();
        if let (Some(seen), Some(p)) = (seen, &person) {
            self.signins.remember_person(seen, email.as_str(), p);
        }
        Ok(person)
    }

    /// The secret stored under any of these fingerprints (the forms of one digest, see
    /// [`Fingerprint::lookup_forms`]), each an equality read of the unique index.
    pub async fn secret_by_fingerprint(&self, forms: &[Fingerprint]) -> Result<Option<Secret>> {
        for fp in forms {
            let mut resp = self
                .read("SELECT * FROM secret WHERE fingerprint = $fp LIMIT 1", &Vars::new().set("fp", fp.as_str()))
                .await?;
            let mut rows: Vec<Secret> = take(&mut resp, 0)?;
            if let Some(found) = rows.pop() {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The NHI a provider knows by this id (the `nhi_external` index).
    pub async fn nhi_by_external_id(&self, provider: &str, external_id: &str) -> Result<Option<Nhi>> {
        let mut resp = self
            .read(
                "SELECT * FROM nhi WHERE provider = $provider AND external_id = $external_id LIMIT 1",
                &Vars::new().set("provider", provider).set("external_id", external_id),
            )
            .await?;
        let mut rows: Vec<Nhi> = take(&mut resp, 0)?;
        Ok(rows.pop())
    }

    /// Nodes of the given inventory tables whose name starts with `prefix`, ignoring
    /// case: at most `limit`, by name. Each table answers from its `name_key` index with
    /// a range read of at most `limit` entries, however many names match.
    pub async fn search_names(&self, prefix: &str, tables: &[Table], limit: usize) -> Result<Vec<InventoryNode>> {
        let low = prefix.to_lowercase();
        let high = format!("{low}{}", char::MAX);
        let tables: Vec<Table> = tables.iter().copied().filter(|t| is_inventory(*t)).collect();
        if tables.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql: String = tables
            .iter()
            .map(|t| {
                format!("SELECT * FROM {t} WHERE page_set = 0 AND name_key >= $low AND name_key < $high LIMIT $limit;")
            })
            .collect();
        let vars = Vars::new().set("low", low).set("high", high).set("limit", limit as i64);
        let mut resp = self.read(&sql, &vars).await?;
        let mut found = Vec::new();
        for i in 0..tables.len() {
            let rows: Vec<serde_json::Value> = take(&mut resp, i)?;
            for row in rows {
                found.push(inventory_node(row)?);
            }
        }
        found.sort_by_cached_key(|n| (n.name().to_lowercase(), n.id().to_string()));
        found.truncate(limit);
        Ok(found)
    }

    /// Whether the inventory holds no person, NHI, secret or system yet.
    pub async fn inventory_is_empty(&self) -> Result<bool> {
        let mut resp = self
            .read(
                "RETURN count(SELECT VALUE id FROM person LIMIT 1) + count(SELECT VALUE id FROM nhi LIMIT 1)
                     + count(SELECT VALUE id FROM secret LIMIT 1) + count(SELECT VALUE id FROM system LIMIT 1) = 0",
                &Vars::new(),
            )
            .await?;
        take(&mut resp, 0)
    }

    /// One page of a table, filtered, with the filtered total.
    pub async fn list<T: NodeRecord>(&self, filter: &NodeFilter, page: &PageRequest) -> Result<Page<T>> {
        let table = T::TABLE;
        let mut conds: Vec<&str> = Vec::new();
        let mut vars = Vars::new();
        let mut prelude = String::new();
        let mut source = table.as_str().to_owned();
        if let Some(kind) = filter.kind {
            conds.push("kind = $kind");
            vars = vars.set("kind", kind);
        }
        if let Some(env) = filter.environment {
            refuse_unless(table, &[Table::Nhi, Table::System], "environment")?;
            conds.push("environment = $environment");
            vars = vars.set("environment", env.as_str());
        }
        if let Some(status) = filter.status {
            refuse_unless(table, &[Table::Nhi], "status")?;
            conds.push("status = $status");
            vars = vars.set("status", status.as_str());
        }
        if let Some(c) = filter.criticality {
            refuse_unless(table, &[Table::System], "criticality")?;
            conds.push("criticality = $criticality");
            vars = vars.set("criticality", c.as_str());
        }
        if let Some(active) = filter.active {
            refuse_unless(table, &[Table::Person], "active")?;
            conds.push("active = $active");
            vars = vars.set("active", active);
        }
        if let Some(role) = filter.role {
            refuse_unless(table, &[Table::Person], "role")?;
            conds.push("$role IN roles");
            vars = vars.set("role", role.as_str());
        }
        if let Some(t) = filter.stale_before {
            refuse_unless(table, &[Table::Nhi], "staleDays")?;
            conds.push("(last_used_at < $stale_before OR (last_used_at = NONE AND created_at < $stale_before))");
            vars = vars.set("stale_before", dt(t));
        }
        if let Some(o) = filter.orphaned {
            refuse_unless(table, &[Table::Nhi], "orphaned")?;
            conds.push(if o { orphaned!() } else { concat!("!", orphaned!()) });
        }
        if let Some(o) = filter.over_privileged {
            refuse_unless(table, &[Table::Nhi], "overPrivileged")?;
            conds.push(if o { over_privileged!() } else { concat!("!", over_privileged!()) });
        }
        if let Some(q) = &filter.name_contains {
            conds.push(if table == Table::Person {
                "(string::contains(string::lowercase(name), $q) OR string::contains(email, $q))"
            } else {
                "string::contains(string::lowercase(name), $q)"
            });
            vars = vars.set("q", q.to_lowercase());
        }
        if let Some(owner) = &filter.owner {
            refuse_unless(table, &[Table::Nhi, Table::Secret, Table::System], "owner")?;
            if !matches!(owner.table(), Table::Person | Table::Team) {
                return Err(StoreError::Invalid(ValueError::new("owner", "an owner is a person or a team")));
            }
            // Direct ownership, and ownership through the teams a person belongs to.
            prelude = format!(
                "LET $owned = array::distinct(array::concat(
                    (SELECT VALUE out FROM $owner->owns WHERE {IN_FORCE}),
                    array::flatten(SELECT VALUE (SELECT VALUE out FROM $parent.out->owns WHERE {IN_FORCE})
                        FROM $owner->member_of WHERE {IN_FORCE})
                 ));
                 LET $owned = array::filter($owned, |$v| record::tb($v) = '{t}');",
                t = table.as_str()
            );
            vars = vars.set("owner", rid(owner));
            source = "$owned".into();
        }
        self.page_of(table, &prelude, &source, conds, vars, page).await
    }

    /// Create a node from a validated spec.
    pub async fn create_node(&self, spec: &NodeSpec) -> Result<InventoryNode> {
        let id = NodeId::generate(spec.table());
        let content = node_content(spec, Utc::now());
        let mut resp = self
            .write(
                "CREATE ONLY $id CONTENT $content RETURN AFTER",
                &Vars::new().set("id", rid(&id)).set("content", content.into_value()),
            )
            .await
            .map_err(|e| unique_conflict(e, spec))?;
        read_node(id.table(), &mut resp, 0)?.ok_or_else(|| StoreError::Database("create returned nothing".into()))
    }

    /// Apply changes to a node; fields not in `changes` are kept.
    async fn update_node(&self, id: &NodeId, changes: Content) -> Result<InventoryNode> {
        let changes = changes.set("updated_at", surrealdb::types::Datetime::from(Utc::now()));
        let mut resp = self
            .write(
                "IF !record::exists($id) { THROW 'NOT_FOUND: ' + <string>$id };
                 UPDATE ONLY $id MERGE $changes RETURN AFTER;",
                &Vars::new().set("id", rid(id)).set("changes", changes.into_value()),
            )
            .await?;
        read_node(id.table(), &mut resp, 1)?.ok_or_else(|| StoreError::NotFound(id.to_string()))
    }
}

impl Store {
    pub async fn update_person(&self, id: &NodeId, patch: &PersonPatch) -> Result<InventoryNode> {
        self.update_node(&expect(id, Table::Person)?, person_changes(patch)).await
    }

    pub async fn update_team(&self, id: &NodeId, patch: &TeamPatch) -> Result<InventoryNode> {
        self.update_node(&expect(id, Table::Team)?, team_changes(patch)).await
    }

    pub async fn update_nhi(&self, id: &NodeId, patch: &NhiPatch) -> Result<InventoryNode> {
        self.update_node(&expect(id, Table::Nhi)?, nhi_changes(patch)).await
    }

    pub async fn update_secret(&self, id: &NodeId, patch: &SecretPatch) -> Result<InventoryNode> {
        self.update_node(&expect(id, Table::Secret)?, secret_changes(patch)).await
    }

    pub async fn update_system(&self, id: &NodeId, patch: &SystemPatch) -> Result<InventoryNode> {
        self.update_node(&expect(id, Table::System)?, system_changes(patch)).await
    }
}

fn expect(id: &NodeId, table: Table) -> Result<NodeId> {
    if id.table() == table {
        Ok(id.clone())
    } else {
        Err(StoreError::Invalid(ValueError::new("id", format!("{id} is not a {table}"))))
    }
}

fn is_inventory(t: Table) -> bool {
    matches!(t, Table::Person | Table::Team | Table::Nhi | Table::Secret | Table::System)
}

/// Read a row of any inventory table into its type, by the table of its id.
pub(super) fn inventory_node(row: serde_json::Value) -> Result<InventoryNode> {
    let shape = |e: serde_json::Error| StoreError::Database(format!("unexpected row shape: {e}"));
    let id: NodeId = row
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|s| NodeId::parse(s).ok())
        .ok_or_else(|| StoreError::Database("a row without a readable id".into()))?;
    Ok(match id.table() {
        Table::Person => InventoryNode::Person(serde_json::from_value(row).map_err(shape)?),
        Table::Team => InventoryNode::Team(serde_json::from_value(row).map_err(shape)?),
        Table::Nhi => InventoryNode::Nhi(serde_json::from_value(row).map_err(shape)?),
        Table::Secret => InventoryNode::Secret(serde_json::from_value(row).map_err(shape)?),
        Table::System => InventoryNode::System(serde_json::from_value(row).map_err(shape)?),
        other => return Err(StoreError::Database(format!("{other} is not an inventory table"))),
    })
}

fn refuse_unless(table: Table, allowed: &[Table], field: &str) -> Result<()> {
    if allowed.contains(&table) {
        Ok(())
    } else {
        Err(StoreError::Invalid(ValueError::new(field, format!("a {table} list cannot be filtered by {field}"))))
    }
}

/// A uniqueness violation, said in the user's terms.
fn unique_conflict(e: StoreError, spec: &NodeSpec) -> StoreError {
    match (e, spec) {
        (StoreError::Unique { index }, NodeSpec::Person(p)) if index == "person_email" => {
            StoreError::Conflict(format!("a person with e-mail {} already exists", p.email))
        }
        (StoreError::Unique { index }, NodeSpec::Secret(s)) if index == "secret_fingerprint" => {
            StoreError::Conflict(format!("a secret with fingerprint {} already exists", s.fingerprint))
        }
        (e, _) => e,
    }
}

fn read_node(table: Table, resp: &mut surrealdb::IndexedResults, index: usize) -> Result<Option<InventoryNode>> {
    Ok(match table {
        Table::Person => take::<Option<Person>>(resp, index)?.map(InventoryNode::Person),
        Table::Team => take::<Option<Team>>(resp, index)?.map(InventoryNode::Team),
        Table::Nhi => take::<Option<Nhi>>(resp, index)?.map(InventoryNode::Nhi),
        Table::Secret => take::<Option<Secret>>(resp, index)?.map(InventoryNode::Secret),
        Table::System => take::<Option<System>>(resp, index)?.map(InventoryNode::System),
        _ => None,
    })
}

fn dt(t: DateTime<Utc>) -> surrealdb::types::Datetime {
    surrealdb::types::Datetime::from(t)
}

/// The fields a new node is written with.
pub(crate) fn node_content(spec: &NodeSpec, now: DateTime<Utc>) -> Content {
    let c = Content::new().set("created_at", dt(now)).set("updated_at", dt(now));
    match spec {
        NodeSpec::Person(p) => c
            .set("name", p.name.as_str())
            .set("email", p.email.as_str())
            .set("roles", Vec::<String>::new())
            .set("active", p.active)
            .set("machine", p.machine),
        NodeSpec::Team(t) => {
            c.set("name", t.name.as_str()).opt("description", t.description.as_ref().map(Text::as_str))
        }
        NodeSpec::Nhi(n) => c
            .set("kind", n.kind.as_str())
            .set("name", n.name.as_str())
            .opt("provider", n.provider.as_ref().map(Label::as_str))
            .opt("external_id", n.external_id.as_ref().map(Label::as_str))
            .set("environment", n.environment.as_str())
            .set("status", n.status.as_str())
            .opt("description", n.description.as_ref().map(Text::as_str))
            .opt("last_used_at", n.last_used_at.map(dt)),
        NodeSpec::Secret(s) => c
            .set("kind", s.kind.as_str())
            .set("name", s.name.as_str())
            .set("fingerprint", s.fingerprint.as_str())
            .opt("issued_at", s.issued_at.map(dt))
            .opt("last_rotated_at", s.last_rotated_at.map(dt))
            .opt("expires_at", s.expires_at.map(dt))
            .opt("rotation_period_days", s.rotation_period_days.map(|d| i64::from(d.days()))),
        NodeSpec::System(s) => c
            .set("kind", s.kind.as_str())
            .set("name", s.name.as_str())
            .set("environment", s.environment.as_str())
            .set("criticality", s.criticality.as_str())
            .opt("description", s.description.as_ref().map(Text::as_str)),
    }
}

/// The fields a patch changes.
fn person_changes(p: &PersonPatch) -> Content {
    Content::new().opt("name", p.name.as_ref().map(Name::as_str))
}

fn team_changes(p: &TeamPatch) -> Content {
    Content::new()
        .opt("name", p.name.as_ref().map(Name::as_str))
        .opt("description", p.description.as_ref().map(Text::as_str))
}

fn nhi_changes(p: &NhiPatch) -> Content {
    Content::new()
        .opt("name", p.name.as_ref().map(Name::as_str))
        .opt("provider", p.provider.as_ref().map(Label::as_str))
        .opt("external_id", p.external_id.as_ref().map(Label::as_str))
        .opt("environment", p.environment.map(Environment::as_str))
        .opt("description", p.description.as_ref().map(Text::as_str))
        .opt("last_used_at", p.last_used_at.map(dt))
}

fn secret_changes(p: &SecretPatch) -> Content {
    Content::new()
        .opt("name", p.name.as_ref().map(Name::as_str))
        .opt("fingerprint", p.fingerprint.as_ref().map(Fingerprint::as_str))
        .opt("last_rotated_at", p.last_rotated_at.map(dt))
        .opt("expires_at", p.expires_at.map(dt))
        .opt("rotation_period_days", p.rotation_period_days.map(|d| i64::from(d.days())))
}

fn system_changes(p: &SystemPatch) -> Content {
    Content::new()
        .opt("name", p.name.as_ref().map(Name::as_str))
        .opt("description", p.description.as_ref().map(Text::as_str))
}
