//! The node types of the identity graph: what the store returns (`Person`, `Nhi`...)
//! and the validated inputs that create or change them (`NewPerson`, `NhiPatch`...).
//!
//! Read types hold plain strings for text the store already validated on the way in;
//! input types hold the parsed newtypes, so nothing unvalidated reaches a write.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::NodeId;
use super::values::*;

/// A human: owner, investigator, approver, auditor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: NodeId,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    pub active: bool,
    /// A machine principal (a scanner, a pipeline): acts through API tokens only and
    /// never decides (see `change`).
    #[serde(default)]
    pub machine: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Person {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A group of people that can own things.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: NodeId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A non-human identity: service account, API key, token, certificate, AI agent...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nhi {
    pub id: NodeId,
    pub kind: NhiKind,
    pub name: String,
    pub provider: Option<String>,
    pub external_id: Option<String>,
    pub environment: Environment,
    pub status: NhiStatus,
    pub description: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Nhi {
    /// Unused for more than `days` (or, never used, created more than `days` ago).
    pub fn stale_at(&self, now: DateTime<Utc>, days: u32) -> bool {
        let since = self.last_used_at.unwrap_or(self.created_at);
        now - since > chrono::Duration::days(i64::from(days))
    }
}

/// Metadata about a credential. The value itself is never stored, only its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub id: NodeId,
    pub kind: SecretKind,
    pub name: String,
    pub fingerprint: String,
    pub issued_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Secret {
    /// When the secret is next due for rotation, if it has a rotation period.
    pub fn rotation_due_at(&self) -> Option<DateTime<Utc>> {
        let days = self.rotation_period_days?;
        let since = self.last_rotated_at.or(self.issued_at).unwrap_or(self.created_at);
        Some(since + chrono::Duration::days(i64::from(days)))
    }

    /// Whether the secret is past its rotation period at `now`.
    pub fn rotation_overdue(&self, now: DateTime<Utc>) -> bool {
        self.rotation_due_at().is_some_and(|due| due < now)
    }
}

/// An application, database, vault, repository, cloud account or SaaS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct System {
    pub id: NodeId,
    pub kind: SystemKind,
    pub name: String,
    pub environment: Environment,
    pub criticality: Criticality,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Any node of the inventory graph, for lookups that may return several kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum InventoryNode {
    Person(Person),
    Team(Team),
    Nhi(Nhi),
    Secret(Secret),
    System(System),
}

impl InventoryNode {
    pub fn id(&self) -> &NodeId {
        match self {
            InventoryNode::Person(n) => &n.id,
            InventoryNode::Team(n) => &n.id,
            InventoryNode::Nhi(n) => &n.id,
            InventoryNode::Secret(n) => &n.id,
            InventoryNode::System(n) => &n.id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            InventoryNode::Person(n) => &n.name,
            InventoryNode::Team(n) => &n.name,
            InventoryNode::Nhi(n) => &n.name,
            InventoryNode::Secret(n) => &n.name,
            InventoryNode::System(n) => &n.name,
        }
    }
}

/// A person to create.
#[derive(Debug, Clone, PartialEq)]
///
/// A person is created without roles: roles come from the genesis decision or from a
/// governed change (see [`crate::domain::change`]).
pub struct NewPerson {
    pub name: Name,
    pub email: Email,
    pub active: bool,
    /// A machine principal rather than someone who signs in; fixed at creation.
    pub machine: bool,
}

/// Changes to what describes a person; `None` leaves a field as it is. Roles and the
/// active flag are governed facts, changed through [`crate::domain::Change`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonPatch {
    pub name: Option<Name>,
}

/// A team to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTeam {
    pub name: Name,
    pub description: Option<Text>,
}

/// Changes to a team.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamPatch {
    pub name: Option<Name>,
    pub description: Option<Text>,
}

/// An NHI to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNhi {
    pub kind: NhiKind,
    pub name: Name,
    pub provider: Option<Label>,
    pub external_id: Option<Label>,
    pub environment: Environment,
    pub status: NhiStatus,
    pub description: Option<Text>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Changes to an NHI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NhiPatch {
    pub name: Option<Name>,
    pub provider: Option<Label>,
    pub external_id: Option<Label>,
    pub environment: Option<Environment>,
    pub description: Option<Text>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A secret to record (its metadata, never its value).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSecret {
    pub kind: SecretKind,
    pub name: Name,
    pub fingerprint: Fingerprint,
    pub issued_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<RotationDays>,
}

/// Changes to a secret's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretPatch {
    pub name: Option<Name>,
    pub fingerprint: Option<Fingerprint>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<RotationDays>,
}

/// A system to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSystem {
    pub kind: SystemKind,
    pub name: Name,
    pub environment: Environment,
    pub criticality: Criticality,
    pub description: Option<Text>,
}

/// Changes to a system.
#[derive(Debug, Clone, Default, PartialEq)]
///
/// Criticality and environment are governed facts, changed through
/// [`crate::domain::Change::SystemRisk`].
pub struct SystemPatch {
    pub name: Option<Name>,
    pub description: Option<Text>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Table;
    use chrono::TimeZone;

    fn secret(rotated: Option<DateTime<Utc>>, period: Option<u32>) -> Secret {
        let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Secret {
            id: NodeId::generate(Table::Secret),
            kind: SecretKind::ApiKey,
            name: "k".into(),
            fingerprint: "abcdef0123".into(),
            issued_at: None,
            last_rotated_at: rotated,
            expires_at: None,
            rotation_period_days: period,
            created_at: created,
            updated_at: created,
        }
    }

    #[test]
    fn a_secret_without_a_period_is_never_overdue() {
        let far = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        assert!(!secret(None, None).rotation_overdue(far));
    }

    #[test]
    fn rotation_is_due_a_period_after_the_last_rotation() {
        let rotated = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let s = secret(Some(rotated), Some(30));
        assert_eq!(s.rotation_due_at(), Some(rotated + chrono::Duration::days(30)));
        assert!(!s.rotation_overdue(rotated + chrono::Duration::days(29)));
        assert!(s.rotation_overdue(rotated + chrono::Duration::days(31)));
    }

    #[test]
    fn a_never_rotated_secret_counts_from_its_creation() {
        let s = secret(None, Some(90));
        assert_eq!(s.rotation_due_at(), Some(s.created_at + chrono::Duration::days(90)));
    }
}
