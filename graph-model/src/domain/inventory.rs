//! The inventory document: nodes and edges in one JSON file, as `importInventory` and
//! `nhigov import` take it.
//!
//! ```json
//! { "nodes": [ { "type": "nhi", "ref": "deployer", "kind": "token", "name": "gh-deploy",
//!                "environment": "production" } ],
//!   "edges": [ { "type": "can_access", "from": "deployer", "to": "system:0190...",
//!                "privilege": "admin" } ] }
//! ```
//!
//! A node's `ref` names it inside the document; an edge's `from` and `to` are either such
//! a ref or the id of a node already stored. Times are RFC 3339, or relative to the
//! moment of import (`now`, `now-30d`, `now+12h`, `now-90m`), which keeps fixtures true
//! to life whenever they are loaded.
//!
//! Parsing checks every item and reports every fault at once, each naming the item
//! (`nodes[3]`), its ref and its field, so a user fixes a file in one pass.
//!
//! A document is also a refresh of what the store holds. Its nodes are matched to stored
//! ones by natural key (a person's e-mail, a secret's fingerprint, an NHI's provider and
//! external id, a team's name, a system's name and environment) and update them; its
//! edges that are already open are kept. A collector that feeds the graph names itself
//! with `"source"`, and the edges it opens are marked with that source. Only a run that
//! says `"complete": true` closes that source's open edges the document no longer holds,
//! so a partial or failed collection never takes away what it did not see:
//!
//! ```json
//! { "source": "github-collector", "complete": true, "nodes": [ ... ], "edges": [ ... ] }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::error::Category;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::edges::{EdgeAttrs, EdgeKind, NewEdge};
use super::ids::{NodeId, Table};
use super::nodes::*;
use super::values::*;

/// At most this many nodes and edges in one document.
pub const MAX_ITEMS: usize = 2_000_000;

/// One fault in an inventory document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    /// Where: `nodes[3]`, `edges[0]`, or `document`.
    pub item: String,
    /// The item's `ref`, when it has one.
    pub reference: Option<String>,
    /// The field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.item)?;
        if let Some(r) = &self.reference {
            write!(f, " ({r})")?;
        }
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A node of the document, validated, with the id it will be stored under.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportNode {
    pub item: String,
    pub reference: String,
    pub id: NodeId,
    pub spec: NodeSpec,
}

/// What to create for a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeSpec {
    Person(NewPerson),
    Team(NewTeam),
    Nhi(NewNhi),
    Secret(NewSecret),
    System(NewSystem),
}

/// An edge of the document, validated, with both ends resolved to ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportEdge {
    pub item: String,
    pub edge: NewEdge,
    /// When the relation began (history); the import time when not given.
    pub valid_from: Option<DateTime<Utc>>,
    /// When the relation ended, for history that is already closed.
    pub valid_to: Option<DateTime<Utc>>,
}

/// A whole document, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub nodes: Vec<ImportNode>,
    pub edges: Vec<ImportEdge>,
    /// Ids that edges name but the document does not define: they must already exist.
    pub external_ids: Vec<(String, NodeId)>,
    /// The collector that produced the document; the edges it opens carry this source.
    pub source: Option<Label>,
    /// The document holds everything its source sees: the source's open edges that it
    /// does not hold are closed by the import.
    pub complete: bool,
}

impl Inventory {
    /// Parse a document, relative times taken against `now`.
    pub fn parse(doc: &Value, now: DateTime<Utc>) -> Result<Inventory, Vec<ItemError>> {
        Self::parse_keyed(doc, now, None)
    }

    /// Parse a document whose node ids derive from `seed` and each node's ref (see
    /// [`NodeId::derived`]) when a seed is given, or are fresh otherwise.
    pub fn parse_keyed(doc: &Value, now: DateTime<Utc>, seed: Option<&str>) -> Result<Inventory, Vec<ItemError>> {
        let Some(obj) = doc.as_object() else {
            return Err(vec![doc_error(NOT_AN_OBJECT)]);
        };
        let mut errors = Vec::new();
        let nodes = array(obj, "nodes", &mut errors);
        let edges = array(obj, "edges", &mut errors);
        Self::from_items(obj, nodes, edges, now, seed, errors)
    }

    /// Parse a document from its JSON text, as [`Inventory::parse_keyed`] does. Each item
    /// stays text (a slice of `text`) until it is checked, and is then parsed alone: a
    /// tree of JSON values for the whole document costs many times its size (two to three
    /// GiB for the 77 MB benchmark document of 100,000 NHIs), the text only its bytes.
    pub fn parse_text(text: &[u8], now: DateTime<Utc>, seed: Option<&str>) -> Result<Inventory, DocumentError> {
        let top: BTreeMap<String, &RawValue> = match serde_json::from_slice(text) {
            Ok(top) => top,
            Err(e) if e.classify() == Category::Data => {
                return Err(DocumentError::Faults(vec![doc_error(NOT_AN_OBJECT)]));
            }
            Err(e) => return Err(DocumentError::NotJson(e)),
        };
        // The document's own keys are few and small: read as values, as `parse_keyed`
        // reads them; the lists are left as text.
        let mut header = Map::new();
        for (key, raw) in &top {
            let value = match key.as_str() {
                "nodes" | "edges" => Value::Null,
                _ => serde_json::from_str(raw.get()).map_err(DocumentError::NotJson)?,
            };
            header.insert(key.clone(), value);
        }
        let mut errors = Vec::new();
        let nodes = raw_array(&top, "nodes", &mut errors);
        let edges = raw_array(&top, "edges", &mut errors);
        Self::from_items(&header, &nodes, &edges, now, seed, errors).map_err(DocumentError::Faults)
    }

    fn from_items<T: Item>(
        header: &Map<String, Value>,
        raw_nodes: &[T],
        raw_edges: &[T],
        now: DateTime<Utc>,
        seed: Option<&str>,
        mut errors: Vec<ItemError>,
    ) -> Result<Inventory, Vec<ItemError>> {
        let (source, complete) = parse_header(header, &mut errors);
        if raw_nodes.len() + raw_edges.len() > MAX_ITEMS {
            return Err(vec![doc_error(format!("a document holds at most {MAX_ITEMS} nodes and edges"))]);
        }
        let (nodes, refs) = parse_nodes(raw_nodes, now, seed, &mut errors);
        let (edges, external_ids) = parse_edges(raw_edges, now, &refs, &mut errors);
        let inv = Inventory { nodes, edges, external_ids, source, complete };
        if errors.is_empty() { Ok(inv) } else { Err(errors) }
    }
}

/// Why a document given as text was not parsed.
#[derive(Debug)]
pub enum DocumentError {
    /// Not JSON at all; the error names the line and column.
    NotJson(serde_json::Error),
    /// Items at fault, every one of them.
    Faults(Vec<ItemError>),
}

const NOT_AN_OBJECT: &str = "an inventory document is a JSON object with `nodes` and `edges`";

fn not_an_array(key: &str) -> ItemError {
    doc_error(format!("`{key}` must be an array"))
}

/// The document's list under `key`: none when absent or null.
fn array<'a>(obj: &'a Map<String, Value>, key: &str, errors: &mut Vec<ItemError>) -> &'a [Value] {
    match obj.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(not_an_array(key));
            &[]
        }
    }
}

/// [`array`], of a document read as text: each item a slice of it.
fn raw_array<'a>(top: &BTreeMap<String, &'a RawValue>, key: &str, errors: &mut Vec<ItemError>) -> Vec<&'a RawValue> {
    let Some(raw) = top.get(key) else { return Vec::new() };
    if raw.get() == "null" {
        return Vec::new();
    }
    match serde_json::from_str::<Vec<&'a RawValue>>(raw.get()) {
        Ok(items) => items,
        Err(_) => {
            errors.push(not_an_array(key));
            Vec::new()
        }
    }
}

/// One item of a document's `nodes` or `edges`, as a value or as its text.
trait Item {
    fn value(&self) -> Result<Cow<'_, Value>, String>;
}

impl Item for Value {
    fn value(&self) -> Result<Cow<'_, Value>, String> {
        Ok(Cow::Borrowed(self))
    }
}

impl Item for &RawValue {
    fn value(&self) -> Result<Cow<'_, Value>, String> {
        serde_json::from_str(self.get()).map(Cow::Owned).map_err(|e| format!("not JSON: {e}"))
    }
}

/// A document's own keys: its `source` and whether it is `complete` (which needs a
/// source); unknown keys are faults.
fn parse_header(obj: &serde_json::Map<String, Value>, errors: &mut Vec<ItemError>) -> (Option<Label>, bool) {
    for key in obj.keys() {
        if !["nodes", "edges", "source", "complete"].contains(&key.as_str()) {
            errors.push(doc_error(format!(
                "unknown key `{key}`; a document has `nodes`, `edges`, `source` and `complete`"
            )));
        }
    }
    let source = match obj.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Label::parse(s) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(item_error("document", None, Some("source"), e.message));
                None
            }
        },
        Some(_) => {
            errors.push(item_error("document", None, Some("source"), "must be a string naming the collector"));
            None
        }
    };
    let complete = match obj.get("complete") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(item_error("document", None, Some("complete"), "must be true or false"));
            false
        }
    };
    if complete && source.is_none() && obj.get("source").is_none_or(|v| v.is_null()) {
        errors.push(item_error(
            "document",
            None,
            Some("complete"),
            "a complete run names its `source`: only that source's edges can be closed by it",
        ));
    }
    (source, complete)
}

/// The document's nodes, each with its id, and the id of each ref; an e-mail,
/// fingerprint or ref that appears twice is a fault.
fn parse_nodes<T: Item>(
    raw_nodes: &[T],
    now: DateTime<Utc>,
    seed: Option<&str>,
    errors: &mut Vec<ItemError>,
) -> (Vec<ImportNode>, HashMap<String, NodeId>) {
    let mut nodes = Vec::new();
    let mut refs: HashMap<String, NodeId> = HashMap::new();
    let mut emails = HashSet::new();
    let mut fingerprints = HashSet::new();
    for (i, raw) in raw_nodes.iter().enumerate() {
        let item = format!("nodes[{i}]");
        let raw = match raw.value() {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(item_error(&item, None, None, e));
                continue;
            }
        };
        let (reference, spec) = match parse_node(&item, &raw, now) {
            Ok(parsed) => parsed,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        let dup_key = match &spec {
            NodeSpec::Person(p) => (!emails.insert(p.email.clone())).then_some("email"),
            NodeSpec::Secret(s) => (!fingerprints.insert(s.fingerprint.clone())).then_some("fingerprint"),
            _ => None,
        };
        if let Some(field) = dup_key {
            errors.push(item_error(&item, Some(&reference), Some(field), "appears twice in the document"));
            continue;
        }
        let id = match seed {
            Some(seed) => NodeId::derived(spec.table(), seed, &reference),
            None => NodeId::generate(spec.table()),
        };
        if refs.insert(reference.clone(), id.clone()).is_some() {
            errors.push(item_error(&item, Some(&reference), Some("ref"), "this ref is used by an earlier node"));
            continue;
        }
        nodes.push(ImportNode { item, reference, id, spec });
    }
    (nodes, refs)
}

/// The document's edges, and the stored ids they name that the document does not
/// define (sorted by how they are written); a relation opened twice is a fault.
fn parse_edges<T: Item>(
    raw_edges: &[T],
    now: DateTime<Utc>,
    refs: &HashMap<String, NodeId>,
    errors: &mut Vec<ItemError>,
) -> (Vec<ImportEdge>, Vec<(String, NodeId)>) {
    let mut edges = Vec::new();
    let mut external = HashMap::new();
    let mut open = HashSet::new();
    for (i, raw) in raw_edges.iter().enumerate() {
        let item = format!("edges[{i}]");
        let raw = match raw.value() {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(item_error(&item, None, None, e));
                continue;
            }
        };
        match parse_edge(&item, &raw, now, refs, &mut external) {
            Ok(edge) => {
                let key = (edge.edge.kind, edge.edge.from.clone(), edge.edge.to.clone());
                if edge.valid_to.is_none() && !open.insert(key) {
                    errors.push(item_error(&item, None, Some("to"), "an earlier edge already opens this relation"));
                } else {
                    edges.push(edge);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut external: Vec<(String, NodeId)> = external.into_iter().collect();
    external.sort_by(|a, b| a.0.cmp(&b.0));
    (edges, external)
}

impl NodeSpec {
    pub fn table(&self) -> Table {
        match self {
            NodeSpec::Person(_) => Table::Person,
            NodeSpec::Team(_) => Table::Team,
            NodeSpec::Nhi(_) => Table::Nhi,
            NodeSpec::Secret(_) => Table::Secret,
            NodeSpec::System(_) => Table::System,
        }
    }
}

fn doc_error(message: impl Into<String>) -> ItemError {
    ItemError { item: "document".into(), reference: None, field: None, message: message.into() }
}

fn item_error(item: &str, reference: Option<&str>, field: Option<&str>, message: impl Into<String>) -> ItemError {
    ItemError {
        item: item.to_owned(),
        reference: reference.map(str::to_owned),
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

/// Reads the fields of one item, collecting every fault.
struct Fields<'a> {
    item: &'a str,
    reference: Option<String>,
    obj: &'a Map<String, Value>,
    used: HashSet<&'static str>,
    errors: Vec<ItemError>,
    now: DateTime<Utc>,
}

impl<'a> Fields<'a> {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(item_error(self.item, self.reference.as_deref(), Some(field), message));
    }

    fn text(&mut self, field: &'static str) -> Option<&'a str> {
        self.used.insert(field);
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    fn required_text(&mut self, field: &'static str) -> Option<&'a str> {
        let v = self.text(field);
        if v.is_none() && !self.errors.iter().any(|e| e.field.as_deref() == Some(field)) {
            self.fail(field, "is required");
        }
        v
    }

    fn parsed<T>(
        &mut self,
        field: &'static str,
        required: bool,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        let raw = if required { self.required_text(field) } else { self.text(field) }?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(field, e.message);
                None
            }
        }
    }

    fn time(&mut self, field: &'static str) -> Option<DateTime<Utc>> {
        let now = self.now;
        self.parsed(field, false, |s| parse_time(s, now))
    }

    fn boolean(&mut self, field: &'static str, default: bool) -> bool {
        self.used.insert(field);
        match self.obj.get(field) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.fail(field, "must be true or false");
                default
            }
        }
    }

    fn integer(&mut self, field: &'static str) -> Option<i64> {
        self.used.insert(field);
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) => Some(n),
                None => {
                    self.fail(field, "must be a whole number");
                    None
                }
            },
        }
    }

    /// Feeds describe people; they never grant roles. A person item carrying `roles`
    /// is refused, so a leaked ingest token cannot make an administrator.
    fn refuse_roles(&mut self) {
        self.used.insert("roles");
        if self.obj.get("roles").is_some_and(|v| !v.is_null()) {
            self.fail("roles", "a feed does not grant roles: they are granted by a decision (updatePerson, bootstrap)");
        }
    }

    /// Report keys the item has but its type does not know, so typos are not dropped.
    fn finish(mut self) -> Vec<ItemError> {
        let mut unknown: Vec<&String> = self.obj.keys().filter(|k| !self.used.contains(k.as_str())).collect();
        unknown.sort();
        for key in unknown {
            self.errors.push(item_error(self.item, self.reference.as_deref(), Some(key), "unknown field"));
        }
        self.errors
    }
}

/// Each node type's fields; `None` when a required one is missing or wrong (the fault
/// is recorded).
impl Fields<'_> {
    fn person(&mut self) -> Option<NodeSpec> {
        let name = self.parsed("name", true, Name::parse);
        let email = self.parsed("email", true, Email::parse);
        self.refuse_roles();
        let active = self.boolean("active", true);
        let machine = self.boolean("machine", false);
        Some(NodeSpec::Person(NewPerson { name: name?, email: email?, active, machine }))
    }

    fn team(&mut self) -> Option<NodeSpec> {
        let name = self.parsed("name", true, Name::parse);
        let description = self.parsed("description", false, Text::parse);
        Some(NodeSpec::Team(NewTeam { name: name?, description }))
    }

    fn nhi(&mut self) -> Option<NodeSpec> {
        let kind = self.parsed("kind", true, NhiKind::parse);
        let name = self.parsed("name", true, Name::parse);
        let provider = self.parsed("provider", false, Label::parse);
        let external_id = self.parsed("external_id", false, Label::parse);
        let environment = self.parsed("environment", true, Environment::parse);
        let status = self.parsed("status", false, NhiStatus::parse).unwrap_or(NhiStatus::Active);
        let description = self.parsed("description", false, Text::parse);
        let last_used_at = self.time("last_used_at");
        Some(NodeSpec::Nhi(NewNhi {
            kind: kind?,
            name: name?,
            provider,
            external_id,
            environment: environment?,
            status,
            description,
            last_used_at,
        }))
    }

    fn secret(&mut self) -> Option<NodeSpec> {
        let kind = self.parsed("kind", true, SecretKind::parse);
        let name = self.parsed("name", true, Name::parse);
        let fingerprint = self.parsed("fingerprint", true, Fingerprint::parse);
        let issued_at = self.time("issued_at");
        let last_rotated_at = self.time("last_rotated_at");
        let expires_at = self.time("expires_at");
        let period = match self.integer("rotation_period_days").map(RotationDays::parse) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                self.fail("rotation_period_days", e.message);
                None
            }
            None => None,
        };
        Some(NodeSpec::Secret(NewSecret {
            kind: kind?,
            name: name?,
            fingerprint: fingerprint?,
            issued_at,
            last_rotated_at,
            expires_at,
            rotation_period_days: period,
        }))
    }

    fn system(&mut self) -> Option<NodeSpec> {
        let kind = self.parsed("kind", true, SystemKind::parse);
        let name = self.parsed("name", true, Name::parse);
        let environment = self.parsed("environment", true, Environment::parse);
        let criticality = self.parsed("criticality", false, Criticality::parse).unwrap_or(Criticality::Tier3);
        let description = self.parsed("description", false, Text::parse);
        Some(NodeSpec::System(NewSystem {
            kind: kind?,
            name: name?,
            environment: environment?,
            criticality,
            description,
        }))
    }
}

/// The first roles of a bootstrap document's people. A demo or a test world names its
/// people's roles beside them, which no feed may: this takes each person item's `roles`
/// out of `doc`, leaving a document any feed could send, and returns them by ref for
/// the genesis decision. Faults name the item and field.
pub fn take_roles(doc: &mut Value) -> Result<Vec<(String, Vec<Role>)>, Vec<ItemError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let Some(nodes) = doc.get_mut("nodes").and_then(Value::as_array_mut) else { return Ok(out) };
    for (i, node) in nodes.iter_mut().enumerate() {
        let Some(obj) = node.as_object_mut() else { continue };
        let Some(raw) = obj.remove("roles") else { continue };
        let item = format!("nodes[{i}]");
        let reference = obj.get("ref").and_then(Value::as_str).map(str::to_owned);
        let mut roles = Vec::new();
        for r in raw.as_array().map(Vec::as_slice).unwrap_or_default() {
            match r.as_str().map(Role::parse) {
                Some(Ok(role)) if !roles.contains(&role) => roles.push(role),
                Some(Ok(_)) => {}
                Some(Err(e)) => errors.push(item_error(&item, reference.as_deref(), Some("roles"), e.message)),
                None => errors.push(item_error(&item, reference.as_deref(), Some("roles"), "each role is a string")),
            }
        }
        if !raw.is_array() {
            errors.push(item_error(&item, reference.as_deref(), Some("roles"), "must be an array of role names"));
        }
        match reference {
            Some(r) if !roles.is_empty() => out.push((r, roles)),
            Some(_) => {}
            None => errors.push(item_error(&item, None, Some("ref"), "a person with roles has a ref")),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Parse a time as RFC 3339 or relative to `now` (`now`, `now-30d`, `now+2h`, `now-15m`).
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ValueError> {
    let bad = || {
        ValueError::new(
            "time",
            format!(
                "`{}` is not an RFC 3339 time or a relative time such as now-30d",
                s.chars().take(60).collect::<String>()
            ),
        )
    };
    if let Some(rest) = s.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now);
        }
        let (sign, rest) = match rest.as_bytes().first() {
            Some(b'-') => (-1, &rest[1..]),
            Some(b'+') => (1, &rest[1..]),
            _ => return Err(bad()),
        };
        let unit = rest.chars().last().ok_or_else(bad)?;
        let n: i64 = rest[..rest.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        if !(0..=36_500 * 24 * 60).contains(&n) {
            return Err(bad());
        }
        let d = match unit {
            'd' => Duration::days(n),
            'h' => Duration::hours(n),
            'm' => Duration::minutes(n),
            _ => return Err(bad()),
        };
        return Ok(if sign < 0 { now - d } else { now + d });
    }
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| bad())
}

fn parse_node(item: &str, raw: &Value, now: DateTime<Utc>) -> Result<(String, NodeSpec), Vec<ItemError>> {
    let Some(obj) = raw.as_object() else {
        return Err(vec![item_error(item, None, None, "a node is a JSON object")]);
    };
    let reference = obj.get("ref").and_then(Value::as_str).map(str::to_owned);
    let mut f = Fields { item, reference: reference.clone(), obj, used: HashSet::new(), errors: Vec::new(), now };
    let reference = f.required_text("ref").map(str::to_owned);
    if let Some(r) = &reference
        && (r.is_empty() || r.len() > 200)
    {
        f.fail("ref", "a ref is 1 to 200 characters");
    }
    let spec = match f.required_text("type") {
        Some("person") => f.person(),
        Some("team") => f.team(),
        Some("nhi") => f.nhi(),
        Some("secret") => f.secret(),
        Some("system") => f.system(),
        Some(other) => {
            f.fail("type", format!("`{other}` is not a node type; one of: person, team, nhi, secret, system"));
            None
        }
        None => None,
    };
    let errors = f.finish();
    match (errors.is_empty(), reference, spec) {
        (true, Some(reference), Some(spec)) => Ok((reference, spec)),
        _ => Err(errors),
    }
}

fn parse_edge(
    item: &str,
    raw: &Value,
    now: DateTime<Utc>,
    refs: &HashMap<String, NodeId>,
    external: &mut HashMap<String, NodeId>,
) -> Result<ImportEdge, Vec<ItemError>> {
    let Some(obj) = raw.as_object() else {
        return Err(vec![item_error(item, None, None, "an edge is a JSON object")]);
    };
    let mut f = Fields { item, reference: None, obj, used: HashSet::new(), errors: Vec::new(), now };
    let kind = f.parsed("type", true, EdgeKind::parse);
    let end = |f: &mut Fields, field: &'static str| -> Option<(String, NodeId)> {
        let raw = f.required_text(field)?;
        if let Some(id) = refs.get(raw) {
            return Some((raw.to_owned(), id.clone()));
        }
        match NodeId::parse(raw) {
            Ok(id) => Some((raw.to_owned(), id)),
            Err(_) => {
                f.fail(
                    field,
                    format!(
                        "`{}` is neither a ref defined in `nodes` nor a node id",
                        raw.chars().take(80).collect::<String>()
                    ),
                );
                None
            }
        }
    };
    let from = end(&mut f, "from");
    let to = end(&mut f, "to");
    let privilege = f.parsed("privilege", false, Privilege::parse);
    let mechanism = f.parsed("mechanism", false, AssumeMechanism::parse);
    let expires_at = f.time("expires_at");
    let valid_from = f.time("valid_from");
    let valid_to = f.time("valid_to");
    if let (Some(a), Some(b)) = (valid_from, valid_to)
        && b < a
    {
        f.fail("valid_to", "ends before valid_from");
    }
    let mut edge = None;
    if let (Some(kind), Some((from_raw, from)), Some((to_raw, to))) = (kind, from, to) {
        match NewEdge::parse(kind, from.clone(), to.clone(), EdgeAttrs { privilege, mechanism, expires_at }) {
            Ok(e) => {
                for (raw, id) in [(from_raw, from), (to_raw, to)] {
                    if !refs.contains_key(&raw) {
                        external.insert(raw, id);
                    }
                }
                edge = Some(e);
            }
            Err(e) => f.fail(&e.field.clone(), e.message),
        }
    }
    let errors = f.finish();
    match (errors.is_empty(), edge) {
        (true, Some(edge)) => Ok(ImportEdge { item: item.to_owned(), edge, valid_from, valid_to }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_valid_document_resolves_refs_to_generated_ids() {
        let doc = json!({
            "nodes": [
                {"type": "person", "ref": "alice", "name": "Alice", "email": "alice@example.com"},
                {"type": "nhi", "ref": "bot", "kind": "service_account", "name": "ci-bot", "environment": "production", "last_used_at": "now-3d"},
            ],
            "edges": [{"type": "owns", "from": "alice", "to": "bot"}]
        });
        let inv = Inventory::parse(&doc, now()).unwrap();
        assert_eq!(inv.nodes.len(), 2);
        assert_eq!(inv.edges[0].edge.from, inv.nodes[0].id);
        assert_eq!(inv.edges[0].edge.to, inv.nodes[1].id);
        assert!(inv.external_ids.is_empty());
        match &inv.nodes[1].spec {
            NodeSpec::Nhi(n) => assert_eq!(n.last_used_at, Some(now() - Duration::days(3))),
            other => panic!("expected an nhi, got {other:?}"),
        }
    }

    #[test]
    fn every_fault_is_reported_with_its_item_ref_and_field() {
        let doc = json!({
            "nodes": [
                {"type": "nhi", "ref": "a", "kind": "robot", "name": "", "environment": "production"},
                {"type": "person", "ref": "p", "name": "P", "email": "nope", "colour": "blue"},
                {"type": "planet", "ref": "x"},
            ],
            "edges": [
                {"type": "holds", "from": "a", "to": "nowhere"},
                {"type": "can_access", "from": "p", "to": "p"}
            ]
        });
        let errors = Inventory::parse(&doc, now()).unwrap_err();
        let has = |item: &str, field: &str| errors.iter().any(|e| e.item == item && e.field.as_deref() == Some(field));
        assert!(has("nodes[0]", "kind"), "{errors:?}");
        assert!(has("nodes[0]", "name"));
        assert!(has("nodes[1]", "email"));
        assert!(has("nodes[1]", "colour"));
        assert!(has("nodes[2]", "type"));
        assert!(has("edges[0]", "from"), "`a` was refused so it is not a ref: {errors:?}");
        assert!(has("edges[0]", "to"));
        assert!(has("edges[1]", "from"), "{errors:?}");
        assert_eq!(errors.iter().find(|e| e.item == "nodes[1]").unwrap().reference.as_deref(), Some("p"));
    }

    #[test]
    fn a_feed_cannot_grant_roles() {
        let doc = json!({"nodes": [
            {"type": "person", "ref": "m", "name": "Mallory", "email": "mallory@corvid.example", "roles": ["admin", "approver"]},
        ]});
        let errors = Inventory::parse(&doc, now()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].item.as_str(), errors[0].field.as_deref()), ("nodes[0]", Some("roles")));
    }

    #[test]
    fn edges_may_name_stored_nodes_by_id() {
        let stored = NodeId::generate(Table::System);
        let doc = json!({
            "nodes": [{"type": "nhi", "ref": "bot", "kind": "token", "name": "t", "environment": "staging"}],
            "edges": [{"type": "can_access", "from": "bot", "to": stored.to_string(), "privilege": "read"}]
        });
        let inv = Inventory::parse(&doc, now()).unwrap();
        assert_eq!(inv.external_ids, vec![(stored.to_string(), stored)]);
    }

    #[test]
    fn duplicate_refs_and_natural_keys_are_refused() {
        let doc = json!({"nodes": [
            {"type": "team", "ref": "t", "name": "A"},
            {"type": "team", "ref": "t", "name": "B"},
            {"type": "person", "ref": "p1", "name": "P", "email": "p@example.com"},
            {"type": "person", "ref": "p2", "name": "P", "email": "P@example.com"},
        ]});
        let errors = Inventory::parse(&doc, now()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].field.as_deref(), Some("ref"));
        assert_eq!(errors[1].field.as_deref(), Some("email"));
    }

    #[test]
    fn relative_and_absolute_times_parse() {
        assert_eq!(parse_time("now", now()).unwrap(), now());
        assert_eq!(parse_time("now+2h", now()).unwrap(), now() + Duration::hours(2));
        assert_eq!(parse_time("now-90m", now()).unwrap(), now() - Duration::minutes(90));
        assert_eq!(parse_time("2026-01-01T00:00:00Z", now()).unwrap().timestamp(), 1767225600);
        for bad in ["yesterday", "now-3x", "now-", "now*3d", "2026-13-01"] {
            assert!(parse_time(bad, now()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused() {
        let errors = Inventory::parse(&json!([1, 2]), now()).unwrap_err();
        assert_eq!(errors[0].item, "document");
    }

    /// A document read as text gives what the same document read as a value gives: the
    /// same inventory (ids derived from the same seed), or the same faults in the same
    /// order.
    #[test]
    fn a_document_read_as_text_parses_as_the_same_document_read_as_a_value() {
        let stored = NodeId::derived(Table::System, "seed", "stored");
        let docs = [
            json!({
                "source": "github-collector", "complete": true,
                "nodes": [
                    {"type": "person", "ref": "alice", "name": "Alice", "email": "alice@example.com"},
                    {"type": "team", "ref": "t", "name": "Platform"},
                    {"type": "nhi", "ref": "bot", "kind": "service_account", "name": "ci-bot",
                     "environment": "production", "last_used_at": "now-3d"},
                    {"type": "secret", "ref": "k", "kind": "api_key", "name": "key", "fingerprint": "sha256:ab"},
                ],
                "edges": [
                    {"type": "owns", "from": "alice", "to": "bot"},
                    {"type": "member_of", "from": "alice", "to": "t", "valid_from": "now-30d"},
                    {"type": "can_access", "from": "bot", "to": stored.to_string(), "privilege": "read"},
                    {"type": "holds", "from": "bot", "to": "k"},
                ]
            }),
            json!({"nodes": [{"type": "team", "ref": "t", "name": "A"}]}),
            json!({"nodes": null, "edges": null}),
            json!({}),
            // Faults of every kind, the document's own and the items'.
            json!({
                "colour": "blue", "complete": "yes", "source": 3,
                "nodes": [
                    {"type": "nhi", "ref": "a", "kind": "robot", "name": "", "environment": "production"},
                    {"type": "person", "ref": "p", "name": "P", "email": "nope", "colour": "blue"},
                    {"type": "planet", "ref": "x"},
                    "not an object",
                    {"type": "team", "ref": "t", "name": "A"},
                    {"type": "team", "ref": "t", "name": "B"},
                ],
                "edges": [
                    {"type": "holds", "from": "a", "to": "nowhere"},
                    {"type": "can_access", "from": "p", "to": "p"},
                    7,
                ]
            }),
            json!({"nodes": {"type": "team"}, "edges": "none"}),
            json!({"complete": true, "nodes": []}),
            json!([1, 2]),
            json!("a string"),
        ];
        for doc in docs {
            let text = serde_json::to_vec_pretty(&doc).unwrap();
            let from_value = Inventory::parse_keyed(&doc, now(), Some("seed"));
            let from_text = match Inventory::parse_text(&text, now(), Some("seed")) {
                Ok(inv) => Ok(inv),
                Err(DocumentError::Faults(faults)) => Err(faults),
                Err(DocumentError::NotJson(e)) => panic!("{doc}: {e}"),
            };
            assert_eq!(from_text, from_value, "{doc}");
        }
    }

    /// Text that is not JSON is refused at the line and column a JSON parser names.
    #[test]
    fn a_document_that_is_not_json_is_refused_with_its_line_and_column() {
        for text in [
            "{\n  \"nodes\": [\n    {\"type\": \"team\",}\n  ]\n}",
            "{\"nodes\": []",
            "{\"nodes\": []} trailing",
            "{\"nodes\": [{\"ref\": \"a\"}, {\"ref\": tru}]}",
            "{\"source\": \"unterminated}",
            "",
        ] {
            let expected = serde_json::from_str::<Value>(text).unwrap_err();
            match Inventory::parse_text(text.as_bytes(), now(), None) {
                Err(DocumentError::NotJson(e)) => {
                    assert_eq!((e.line(), e.column()), (expected.line(), expected.column()), "{text:?}: {e}");
                    assert!(e.line() > 0, "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
