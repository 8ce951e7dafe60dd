//! Record identifiers.
//!
//! Every node and edge is addressed as `table:key`, the same text SurrealDB prints, and
//! that text is also the GraphQL `ID`. Keys are UUIDv7 in simple (hex) form, so ids sort
//! in creation order and cursors over them are stable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::values::ValueError;

/// The node tables of the identity graph and case record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Person,
    Team,
    Nhi,
    Secret,
    System,
    Alert,
    Case,
    Task,
    Evidence,
    Request,
    Exception,
    Policy,
    Decision,
    /// Access a feed reported, adopted as the governed baseline by one decision.
    Baseline,
    /// One import of a document, keyed by the document's SHA-256.
    ImportRun,
    /// A published control version.
    Control,
    /// A control failure followed to its remediation and closure.
    Finding,
    /// A certification campaign.
    Campaign,
    /// One NHI of a campaign, for its owner to review.
    ReviewItem,
}

impl Table {
    pub const ALL: [Table; 19] = [
        Table::Person,
        Table::Team,
        Table::Nhi,
        Table::Secret,
        Table::System,
        Table::Alert,
        Table::Case,
        Table::Task,
        Table::Evidence,
        Table::Request,
        Table::Exception,
        Table::Policy,
        Table::Decision,
        Table::Baseline,
        Table::ImportRun,
        Table::Control,
        Table::Finding,
        Table::Campaign,
        Table::ReviewItem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Table::Person => "person",
            Table::Team => "team",
            Table::Nhi => "nhi",
            Table::Secret => "secret",
            Table::System => "system",
            Table::Alert => "alert",
            Table::Case => "case",
            Table::Task => "task",
            Table::Evidence => "evidence",
            Table::Request => "request",
            Table::Exception => "exception",
            Table::Policy => "policy",
            Table::Decision => "decision",
            Table::Baseline => "baseline",
            Table::ImportRun => "import_run",
            Table::Control => "control",
            Table::Finding => "finding",
            Table::Campaign => "campaign",
            Table::ReviewItem => "review_item",
        }
    }

    pub fn parse(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of a node: its table and its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    table: Table,
    key: String,
}

impl NodeId {
    /// A fresh id in `table`, ordered after every id made before it.
    pub fn generate(table: Table) -> NodeId {
        NodeId { table, key: uuid::Uuid::now_v7().simple().to_string() }
    }

    /// The id `name` always gets under `seed` (a bulk load keyed by its document's
    /// digest), so a load that stopped half-way can be resumed with the same ids.
    pub fn derived(table: Table, seed: &str, name: &str) -> NodeId {
        NodeId { table, key: derived_key(seed, name) }
    }

    /// An id from parts already known to be valid (read back from the store).
    pub fn new(table: Table, key: impl Into<String>) -> Result<NodeId, ValueError> {
        let key = key.into();
        if !valid_key(&key) {
            return Err(ValueError::new("id", "the key of an id is 1 to 64 letters, digits or _"));
        }
        Ok(NodeId { table, key })
    }

    pub fn table(&self) -> Table {
        self.table
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Parse `table:key`, accepting the escaped forms SurrealDB prints for keys that
    /// would otherwise read as numbers (`table:⟨123⟩`, ``table:`123` ``).
    pub fn parse(s: &str) -> Result<NodeId, ValueError> {
        let bad = || ValueError::new("id", format!("`{}` is not an id of the form table:key", truncate(s)));
        let (table, key) = s.split_once(':').ok_or_else(bad)?;
        let table = Table::parse(table).ok_or_else(bad)?;
        let key = key
            .strip_prefix('⟨')
            .and_then(|k| k.strip_suffix('⟩'))
            .or_else(|| key.strip_prefix('`').and_then(|k| k.strip_suffix('`')))
            .unwrap_or(key);
        NodeId::new(table, key).map_err(|_| bad())
    }

    /// Parse and require the id to be in one of `tables`.
    pub fn parse_in(s: &str, tables: &[Table]) -> Result<NodeId, ValueError> {
        let id = NodeId::parse(s)?;
        if tables.contains(&id.table) {
            Ok(id)
        } else {
            let names: Vec<&str> = tables.iter().map(|t| t.as_str()).collect();
            Err(ValueError::new("id", format!("`{s}` is a {}, expected a {}", id.table, names.join(" or "))))
        }
    }
}

pub(super) fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.table, self.key)
    }
}

impl FromStr for NodeId {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse(s)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// 128 bits of SHA-256 over seed and name, in hex: a valid key, stable across runs.
pub(super) fn derived_key(seed: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(seed).chain_update([0u8]).chain_update(name).finalize();
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prints_as_table_colon_key_and_parses_back() {
        let id = NodeId::generate(Table::Nhi);
        let text = id.to_string();
        assert!(text.starts_with("nhi:"));
        assert_eq!(NodeId::parse(&text).unwrap(), id);
    }

    #[test]
    fn escaped_keys_parse_to_the_plain_key() {
        assert_eq!(NodeId::parse("nhi:⟨123⟩").unwrap().key(), "123");
        assert_eq!(NodeId::parse("nhi:`123`").unwrap().key(), "123");
    }

    #[test]
    fn ids_of_unknown_tables_or_bad_keys_are_refused() {
        assert!(NodeId::parse("users:abc").is_err());
        assert!(NodeId::parse("nhi:").is_err());
        assert!(NodeId::parse("nhi:a-b").is_err());
        assert!(NodeId::parse("nhi").is_err());
        assert!(NodeId::parse_in("team:abc", &[Table::Person]).is_err());
    }

    #[test]
    fn generated_ids_sort_in_creation_order() {
        let a = NodeId::generate(Table::Nhi);
        let b = NodeId::generate(Table::Nhi);
        assert!(a < b);
    }
}
