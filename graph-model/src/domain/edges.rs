//! The edges of the identity graph and the rules on what each may connect.
//!
//! Edges are never deleted: closing one sets `valid_to`, so the graph as it was at any
//! time can still be read.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{NodeId, Table, derived_key, truncate, valid_key};
use super::values::*;

/// The edge kinds whose opening and closing are governed (see `change`).
pub const GOVERNED_EDGES: &[EdgeKind] =
    &[EdgeKind::CanAccess, EdgeKind::Assumes, EdgeKind::Holds, EdgeKind::Owns, EdgeKind::MemberOf];
/// The relation tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// person|team -> nhi|secret|system
    Owns,
    /// person -> team
    MemberOf,
    /// nhi -> secret
    Holds,
    /// nhi -> system, with a privilege and an optional expiry
    CanAccess,
    /// secret -> system
    AuthenticatesTo,
    /// secret -> system (a vault)
    StoredIn,
    /// nhi -> nhi: role assumption, impersonation, delegation
    Assumes,
    /// system -> system
    DependsOn,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 8] = [
        EdgeKind::Owns,
        EdgeKind::MemberOf,
        EdgeKind::Holds,
        EdgeKind::CanAccess,
        EdgeKind::AuthenticatesTo,
        EdgeKind::StoredIn,
        EdgeKind::Assumes,
        EdgeKind::DependsOn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Owns => "owns",
            EdgeKind::MemberOf => "member_of",
            EdgeKind::Holds => "holds",
            EdgeKind::CanAccess => "can_access",
            EdgeKind::AuthenticatesTo => "authenticates_to",
            EdgeKind::StoredIn => "stored_in",
            EdgeKind::Assumes => "assumes",
            EdgeKind::DependsOn => "depends_on",
        }
    }

    pub fn parse(s: &str) -> Result<EdgeKind, ValueError> {
        EdgeKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = EdgeKind::ALL.iter().map(|k| k.as_str()).collect();
            ValueError::new(
                "type",
                format!(
                    "`{}` is not an edge type; one of: {}",
                    s.chars().take(60).collect::<String>(),
                    names.join(", ")
                ),
            )
        })
    }

    /// The tables an edge of this kind may start from.
    pub fn sources(self) -> &'static [Table] {
        match self {
            EdgeKind::Owns => &[Table::Person, Table::Team],
            EdgeKind::MemberOf => &[Table::Person],
            EdgeKind::Holds | EdgeKind::CanAccess | EdgeKind::Assumes => &[Table::Nhi],
            EdgeKind::AuthenticatesTo | EdgeKind::StoredIn => &[Table::Secret],
            EdgeKind::DependsOn => &[Table::System],
        }
    }

    /// The tables an edge of this kind may point to.
    pub fn targets(self) -> &'static [Table] {
        match self {
            EdgeKind::Owns => &[Table::Nhi, Table::Secret, Table::System],
            EdgeKind::MemberOf => &[Table::Team],
            EdgeKind::Holds => &[Table::Secret],
            EdgeKind::CanAccess | EdgeKind::AuthenticatesTo | EdgeKind::StoredIn | EdgeKind::DependsOn => {
                &[Table::System]
            }
            EdgeKind::Assumes => &[Table::Nhi],
        }
    }

    /// Refuse endpoints of the wrong tables, and loops, which mean nothing here.
    pub fn check_endpoints(self, from: &NodeId, to: &NodeId) -> Result<(), ValueError> {
        let names = |ts: &[Table]| ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" or ");
        if !self.sources().contains(&from.table()) {
            return Err(ValueError::new(
                "from",
                format!("a {} edge starts at a {}, not at {from}", self, names(self.sources())),
            ));
        }
        if !self.targets().contains(&to.table()) {
            return Err(ValueError::new(
                "to",
                format!("a {} edge ends at a {}, not at {to}", self, names(self.targets())),
            ));
        }
        if from == to {
            return Err(ValueError::new("to", format!("a {self} edge cannot connect {from} to itself")));
        }
        Ok(())
    }

    /// Check the attributes given for an edge of this kind and fill in defaults.
    pub fn check_attrs(self, attrs: EdgeAttrs) -> Result<EdgeAttrs, ValueError> {
        let mut attrs = attrs;
        match self {
            EdgeKind::CanAccess if attrs.privilege.is_none() => {
                return Err(ValueError::new("privilege", "a can_access edge needs a privilege (read, write or admin)"));
            }
            EdgeKind::CanAccess => {}
            _ if attrs.privilege.is_some() => {
                return Err(ValueError::new("privilege", format!("a {self} edge has no privilege")));
            }
            _ => {}
        }
        match self {
            EdgeKind::Assumes => {
                attrs.mechanism.get_or_insert(AssumeMechanism::RoleAssumption);
            }
            _ if attrs.mechanism.is_some() => {
                return Err(ValueError::new("mechanism", format!("a {self} edge has no mechanism")));
            }
            _ => {}
        }
        Ok(attrs)
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Attributes an edge may carry, depending on its kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeAttrs {
    /// can_access only: the level of access.
    pub privilege: Option<Privilege>,
    /// assumes only: how the identity is assumed.
    pub mechanism: Option<AssumeMechanism>,
    /// When the relation stops being in force by itself (an access grant's expiry).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A validated edge to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEdge {
    pub kind: EdgeKind,
    pub from: NodeId,
    pub to: NodeId,
    pub attrs: EdgeAttrs,
}

impl NewEdge {
    pub fn parse(kind: EdgeKind, from: NodeId, to: NodeId, attrs: EdgeAttrs) -> Result<NewEdge, ValueError> {
        kind.check_endpoints(&from, &to)?;
        let attrs = kind.check_attrs(attrs)?;
        Ok(NewEdge { kind, from, to, attrs })
    }
}

/// An edge as stored: open while `valid_to` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub id: EdgeId,
    #[serde(rename = "in")]
    pub from: NodeId,
    #[serde(rename = "out")]
    pub to: NodeId,
    pub privilege: Option<Privilege>,
    pub mechanism: Option<AssumeMechanism>,
    pub expires_at: Option<DateTime<Utc>>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The feed whose import opened the edge, if one did.
    #[serde(default)]
    pub source: Option<String>,
    /// The decision that stands behind the edge: the grant approved, the change
    /// applied, or the baseline adopted.
    #[serde(default)]
    pub granted_by: Option<NodeId>,
}

/// Whether a decision stands behind an edge of `kind` that has (`granted`) or lacks
/// one: `None` for kinds that carry no governed fact.
pub fn governed(kind: EdgeKind, granted: bool) -> Option<bool> {
    GOVERNED_EDGES.contains(&kind).then_some(granted)
}

impl Edge {
    pub fn kind(&self) -> EdgeKind {
        self.id.kind
    }

    /// Does a decision stand behind the edge? `None` for kinds that carry no governed
    /// fact (`authenticates_to`, `stored_in`, `depends_on`).
    pub fn governed(&self) -> Option<bool> {
        governed(self.kind(), self.granted_by.is_some())
    }

    /// Whether the edge was in force at `at`: opened by then, not yet closed, not expired.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from <= at && self.valid_to.is_none_or(|to| at < to) && self.expires_at.is_none_or(|exp| at < exp)
    }
}

/// The id of an edge record (`owns:key`, `can_access:key`...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdgeId {
    pub kind: EdgeKind,
    pub key: String,
}

impl EdgeId {
    pub fn parse(s: &str) -> Result<EdgeId, ValueError> {
        let bad = || ValueError::new("id", format!("`{}` is not an edge id", truncate(s)));
        let (table, key) = s.split_once(':').ok_or_else(bad)?;
        let kind = EdgeKind::parse(table).map_err(|_| bad())?;
        let key = key
            .strip_prefix('⟨')
            .and_then(|k| k.strip_suffix('⟩'))
            .or_else(|| key.strip_prefix('`').and_then(|k| k.strip_suffix('`')))
            .unwrap_or(key);
        if !valid_key(key) {
            return Err(bad());
        }
        Ok(EdgeId { kind, key: key.to_owned() })
    }

    /// An id from parts read back from the store.
    pub fn new(kind: EdgeKind, key: impl Into<String>) -> Result<EdgeId, ValueError> {
        let key = key.into();
        if !valid_key(&key) {
            return Err(ValueError::new("id", "the key of an id is 1 to 64 letters, digits or _"));
        }
        Ok(EdgeId { kind, key })
    }

    pub fn generate(kind: EdgeKind) -> EdgeId {
        EdgeId { kind, key: uuid::Uuid::now_v7().simple().to_string() }
    }

    /// The id the edge `name` always gets under `seed`; see [`NodeId::derived`].
    pub fn derived(kind: EdgeKind, seed: &str, name: &str) -> EdgeId {
        EdgeId { kind, key: derived_key(seed, name) }
    }
}

impl fmt::Display for EdgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.key)
    }
}

impl Serialize for EdgeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EdgeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EdgeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(t: Table) -> NodeId {
        NodeId::generate(t)
    }

    #[test]
    fn each_edge_kind_accepts_only_its_endpoint_tables() {
        assert!(EdgeKind::Holds.check_endpoints(&id(Table::Nhi), &id(Table::Secret)).is_ok());
        assert!(EdgeKind::Holds.check_endpoints(&id(Table::Secret), &id(Table::Nhi)).is_err());
        assert!(EdgeKind::Owns.check_endpoints(&id(Table::Team), &id(Table::System)).is_ok());
        assert!(EdgeKind::Owns.check_endpoints(&id(Table::Nhi), &id(Table::System)).is_err());
        assert!(EdgeKind::MemberOf.check_endpoints(&id(Table::Person), &id(Table::Team)).is_ok());
    }

    #[test]
    fn an_edge_cannot_loop_back_to_its_start() {
        let n = id(Table::Nhi);
        let err = EdgeKind::Assumes.check_endpoints(&n, &n).unwrap_err();
        assert_eq!(err.field, "to");
    }

    #[test]
    fn access_needs_a_privilege_and_nothing_else_takes_one() {
        assert!(EdgeKind::CanAccess.check_attrs(EdgeAttrs::default()).is_err());
        let admin = EdgeAttrs { privilege: Some(Privilege::Admin), ..Default::default() };
        assert!(EdgeKind::CanAccess.check_attrs(admin.clone()).is_ok());
        assert!(EdgeKind::Holds.check_attrs(admin).is_err());
    }

    #[test]
    fn assumption_defaults_to_role_assumption() {
        let attrs = EdgeKind::Assumes.check_attrs(EdgeAttrs::default()).unwrap();
        assert_eq!(attrs.mechanism, Some(AssumeMechanism::RoleAssumption));
    }

    #[test]
    fn an_edge_is_in_force_between_its_opening_and_its_closing_or_expiry() {
        let t0 = Utc::now();
        let edge = Edge {
            id: EdgeId::generate(EdgeKind::CanAccess),
            from: id(Table::Nhi),
            to: id(Table::System),
            privilege: Some(Privilege::Read),
            mechanism: None,
            expires_at: Some(t0 + chrono::Duration::hours(2)),
            valid_from: t0,
            valid_to: None,
            created_at: t0,
            source: None,
            granted_by: None,
        };
        assert!(!edge.in_force_at(t0 - chrono::Duration::seconds(1)));
        assert!(edge.in_force_at(t0 + chrono::Duration::hours(1)));
        assert!(!edge.in_force_at(t0 + chrono::Duration::hours(3)));
        let closed = Edge { valid_to: Some(t0 + chrono::Duration::minutes(5)), ..edge };
        assert!(!closed.in_force_at(t0 + chrono::Duration::minutes(10)));
    }
}
