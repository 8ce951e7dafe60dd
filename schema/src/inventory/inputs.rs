//! Input objects of the inventory mutations and filters, and their parsing into the
//! domain's validated types. A field that fails names itself in `extensions.field`.

use async_graphql::{ID, InputObject};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::{Label, Name, Text, ValueError};

use crate::enums::*;
use crate::error::{ApiError, ApiResult};

fn opt<T>(
    v: Option<String>,
    field: &str,
    parse: impl Fn(&str) -> Result<T, ValueError>,
) -> Result<Option<T>, ValueError> {
    v.map(|s| parse(&s).map_err(|e| e.at(field))).transpose()
}

fn req<T>(v: &str, field: &str, parse: impl Fn(&str) -> Result<T, ValueError>) -> Result<T, ValueError> {
    parse(v).map_err(|e| e.at(field))
}

/// Parse a global id of one of the `tables`.
pub fn node_id(id: &ID, field: &str, tables: &[gm::Table]) -> Result<gm::NodeId, ValueError> {
    gm::NodeId::parse_in(id.as_str(), tables).map_err(|e| e.at(field))
}

/// Roles in the order given, each once.
fn distinct_roles(roles: Vec<Role>) -> Vec<gm::Role> {
    let mut out: Vec<gm::Role> = Vec::new();
    for r in roles {
        let r = r.into();
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// A person to create.
#[derive(InputObject)]
///
/// A person is created without roles; give them roles with `updatePerson` (a governed
/// change: the admin, approver and auditor roles wait for a second admin).
pub struct CreatePersonInput {
    pub name: String,
    pub email: String,
    #[graphql(default = true)]
    pub active: bool,
    /// A machine principal (a scanner, a pipeline, a GRC tool): it acts through API
    /// tokens only, cannot sign in, and never holds ADMIN or APPROVER. Fixed for life.
    #[graphql(default = false)]
    pub machine: bool,
}

impl CreatePersonInput {
    pub fn parse(self) -> Result<gm::NewPerson, ValueError> {
        Ok(gm::NewPerson {
            name: req(&self.name, "name", Name::parse)?,
            email: req(&self.email, "email", gm::Email::parse)?,
            active: self.active,
            machine: self.machine,
        })
    }
}

/// Changes to a person; absent fields stay as they are. `roles` and `active` are
/// governed: each is a decision, and one call changes at most one of them.
#[derive(InputObject, Default)]
pub struct UpdatePersonInput {
    pub name: Option<String>,
    /// The roles the person should hold: the difference from what they hold is
    /// granted and revoked.
    pub roles: Option<Vec<Role>>,
    /// Set false when the person leaves: what they own becomes orphaned. Setting it
    /// true again waits for a second admin.
    pub active: Option<bool>,
}

/// A person's update, parsed: what describes them, and the governed facts asked for.
pub struct PersonUpdate {
    pub patch: gm::PersonPatch,
    pub roles: Option<Vec<gm::Role>>,
    pub active: Option<bool>,
}

impl UpdatePersonInput {
    pub fn parse(self) -> Result<PersonUpdate, ValueError> {
        if self.roles.is_some() && self.active.is_some() {
            return Err(ValueError::new("roles", "change roles and active in separate calls: each is a decision"));
        }
        Ok(PersonUpdate {
            patch: gm::PersonPatch { name: opt(self.name, "name", Name::parse)? },
            roles: self.roles.map(distinct_roles),
            active: self.active,
        })
    }
}

/// A team to create.
#[derive(InputObject)]
pub struct CreateTeamInput {
    pub name: String,
    pub description: Option<String>,
}

impl CreateTeamInput {
    pub fn parse(self) -> Result<gm::NewTeam, ValueError> {
        Ok(gm::NewTeam {
            name: req(&self.name, "name", Name::parse)?,
            description: opt(self.description, "description", Text::parse)?,
        })
    }
}

/// Changes to a team.
#[derive(InputObject, Default)]
pub struct UpdateTeamInput {
    pub name: Option<String>,
    pub description: Option<String>,
}

impl UpdateTeamInput {
    pub fn parse(self) -> Result<gm::TeamPatch, ValueError> {
        Ok(gm::TeamPatch {
            name: opt(self.name, "name", Name::parse)?,
            description: opt(self.description, "description", Text::parse)?,
        })
    }
}

/// A non-human identity to create.
#[derive(InputObject)]
pub struct CreateNhiInput {
    pub kind: NhiKind,
    pub name: String,
    pub provider: Option<String>,
    pub external_id: Option<String>,
    pub environment: Environment,
    #[graphql(default_with = "NhiStatus::Active")]
    pub status: NhiStatus,
    pub description: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl CreateNhiInput {
    pub fn parse(self) -> Result<gm::NewNhi, ValueError> {
        Ok(gm::NewNhi {
            kind: self.kind.into(),
            name: req(&self.name, "name", Name::parse)?,
            provider: opt(self.provider, "provider", Label::parse)?,
            external_id: opt(self.external_id, "externalId", Label::parse)?,
            environment: self.environment.into(),
            status: self.status.into(),
            description: opt(self.description, "description", Text::parse)?,
            last_used_at: self.last_used_at,
        })
    }
}

/// Changes to an NHI.
#[derive(InputObject, Default)]
pub struct UpdateNhiInput {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub external_id: Option<String>,
    pub environment: Option<Environment>,
    /// Governed: a decision; reactivating a disabled, revoked or decommissioned NHI waits
    /// for a second admin.
    pub status: Option<NhiStatus>,
    pub description: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl UpdateNhiInput {
    /// What describes the NHI, and the status change asked for.
    pub fn parse(self) -> Result<(gm::NhiPatch, Option<gm::NhiStatus>), ValueError> {
        let status = self.status.map(Into::into);
        Ok((self.describe()?, status))
    }

    fn describe(self) -> Result<gm::NhiPatch, ValueError> {
        Ok(gm::NhiPatch {
            name: opt(self.name, "name", Name::parse)?,
            provider: opt(self.provider, "provider", Label::parse)?,
            external_id: opt(self.external_id, "externalId", Label::parse)?,
            environment: self.environment.map(Into::into),
            description: opt(self.description, "description", Text::parse)?,
            last_used_at: self.last_used_at,
        })
    }
}

/// A secret's metadata to record. Send its fingerprint, never its value.
#[derive(InputObject)]
pub struct CreateSecretInput {
    pub kind: SecretKind,
    pub name: String,
    pub fingerprint: String,
    pub issued_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<i32>,
}

impl CreateSecretInput {
    pub fn parse(self) -> Result<gm::NewSecret, ValueError> {
        Ok(gm::NewSecret {
            kind: self.kind.into(),
            name: req(&self.name, "name", Name::parse)?,
            fingerprint: req(&self.fingerprint, "fingerprint", gm::Fingerprint::parse)?,
            issued_at: self.issued_at,
            last_rotated_at: self.last_rotated_at,
            expires_at: self.expires_at,
            rotation_period_days: self
                .rotation_period_days
                .map(|d| gm::RotationDays::parse(i64::from(d)).map_err(|e| e.at("rotationPeriodDays")))
                .transpose()?,
        })
    }
}

/// Changes to a secret's metadata.
#[derive(InputObject, Default)]
pub struct UpdateSecretInput {
    pub name: Option<String>,
    pub fingerprint: Option<String>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_period_days: Option<i32>,
}

impl UpdateSecretInput {
    pub fn parse(self) -> Result<gm::SecretPatch, ValueError> {
        Ok(gm::SecretPatch {
            name: opt(self.name, "name", Name::parse)?,
            fingerprint: opt(self.fingerprint, "fingerprint", gm::Fingerprint::parse)?,
            last_rotated_at: self.last_rotated_at,
            expires_at: self.expires_at,
            rotation_period_days: self
                .rotation_period_days
                .map(|d| gm::RotationDays::parse(i64::from(d)).map_err(|e| e.at("rotationPeriodDays")))
                .transpose()?,
        })
    }
}

/// A system to create.
#[derive(InputObject)]
pub struct CreateSystemInput {
    pub kind: SystemKind,
    pub name: String,
    pub environment: Environment,
    #[graphql(default_with = "Criticality::Tier3")]
    pub criticality: Criticality,
    pub description: Option<String>,
}

impl CreateSystemInput {
    pub fn parse(self) -> Result<gm::NewSystem, ValueError> {
        Ok(gm::NewSystem {
            kind: self.kind.into(),
            name: req(&self.name, "name", Name::parse)?,
            environment: self.environment.into(),
            criticality: self.criticality.into(),
            description: opt(self.description, "description", Text::parse)?,
        })
    }
}

/// Changes to a system.
#[derive(InputObject, Default)]
pub struct UpdateSystemInput {
    pub name: Option<String>,
    /// Governed: taking a system out of production waits for a second admin.
    pub environment: Option<Environment>,
    /// Governed: lowering it waits for a second admin.
    pub criticality: Option<Criticality>,
    pub description: Option<String>,
}

/// A governed change to a system's criticality and environment, as asked for.
pub type SystemRisk = (Option<gm::Criticality>, Option<gm::Environment>);

impl UpdateSystemInput {
    /// What describes the system, and the governed change to its criticality and
    /// environment if one is asked for.
    pub fn parse(self) -> Result<(gm::SystemPatch, Option<SystemRisk>), ValueError> {
        let patch = gm::SystemPatch {
            name: opt(self.name, "name", Name::parse)?,
            description: opt(self.description, "description", Text::parse)?,
        };
        let risk = (self.criticality.is_some() || self.environment.is_some())
            .then(|| (self.criticality.map(Into::into), self.environment.map(Into::into)));
        Ok((patch, risk))
    }
}

/// An edge to open between two nodes.
#[derive(InputObject)]
pub struct RelateInput {
    pub kind: EdgeKind,
    pub from: ID,
    pub to: ID,
    /// `CAN_ACCESS` only, and required there.
    pub privilege: Option<Privilege>,
    /// `ASSUMES` only; role assumption when absent.
    pub mechanism: Option<AssumeMechanism>,
    /// When the relation lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
}

impl RelateInput {
    pub fn parse(self) -> Result<gm::NewEdge, ValueError> {
        let kind: gm::EdgeKind = self.kind.into();
        let from = node_id(&self.from, "from", kind.sources())?;
        let to = node_id(&self.to, "to", kind.targets())?;
        gm::NewEdge::parse(
            kind,
            from,
            to,
            gm::EdgeAttrs {
                privilege: self.privilege.map(Into::into),
                mechanism: self.mechanism.map(Into::into),
                expires_at: self.expires_at,
            },
        )
    }
}

/// Filters for `nhis`.
#[derive(InputObject, Default)]
pub struct NhiFilter {
    pub kind: Option<NhiKind>,
    pub environment: Option<Environment>,
    pub status: Option<NhiStatus>,
    /// A person or team id: what they own directly, or a person through their teams.
    pub owner: Option<ID>,
    /// Case-insensitive part of the name.
    pub name_contains: Option<String>,
    /// Only NHIs unused for more than this many days (never used: created that long ago).
    pub stale_days: Option<u32>,
    /// Only NHIs without (true) or with (false) an active owner; see `Nhi.orphaned`.
    /// Evaluated per NHI: on a large inventory, combine it with narrower filters.
    pub orphaned: Option<bool>,
    /// Only NHIs with (true) or without (false) admin access to tier0 or production;
    /// see `Nhi.overPrivileged`.
    pub over_privileged: Option<bool>,
}

/// Filters for `secrets`.
#[derive(InputObject, Default)]
pub struct SecretFilter {
    pub kind: Option<SecretKind>,
    pub owner: Option<ID>,
    pub name_contains: Option<String>,
}

/// Filters for `systems`.
#[derive(InputObject, Default)]
pub struct SystemFilter {
    pub kind: Option<SystemKind>,
    pub environment: Option<Environment>,
    pub criticality: Option<Criticality>,
    pub owner: Option<ID>,
    pub name_contains: Option<String>,
}

/// Filters for `people`.
#[derive(InputObject, Default)]
pub struct PersonFilter {
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Case-insensitive part of the name or e-mail.
    pub name_contains: Option<String>,
}

/// Filters for `teams`.
#[derive(InputObject, Default)]
pub struct TeamFilter {
    pub name_contains: Option<String>,
}

/// Check a name search and an owner id.
pub fn search(s: Option<String>) -> Result<Option<String>, ValueError> {
    match s {
        Some(s) if s.chars().count() > 200 => Err(ValueError::new("nameContains", "at most 200 characters")),
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other.map(|s| s.trim().to_owned())),
    }
}

pub fn owner(id: Option<ID>) -> Result<Option<gm::NodeId>, ValueError> {
    id.map(|id| node_id(&id, "owner", &[gm::Table::Person, gm::Table::Team])).transpose()
}

/// A lookup key: trimmed, not empty, at most 200 characters.
pub(crate) fn lookup_text<'a>(argument: &str, text: &'a str) -> ApiResult<&'a str> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(ApiError::bad_input(argument, "1 to 200 characters"));
    }
    Ok(text)
}

/// The kinds of node `search` looks through.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Nhi,
    Secret,
    System,
    Person,
    Team,
}

impl SearchKind {
    pub const ALL: [SearchKind; 5] =
        [SearchKind::Nhi, SearchKind::Secret, SearchKind::System, SearchKind::Person, SearchKind::Team];

    pub fn table(self) -> graph_model::Table {
        match self {
            SearchKind::Nhi => graph_model::Table::Nhi,
            SearchKind::Secret => graph_model::Table::Secret,
            SearchKind::System => graph_model::Table::System,
            SearchKind::Person => graph_model::Table::Person,
            SearchKind::Team => graph_model::Table::Team,
        }
    }
}
