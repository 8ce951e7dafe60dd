//! GraphQL objects of the inventory. Each wraps a domain value; relation fields go
//! through the batch loaders.

use async_graphql::{ID, Interface, Object};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::store::EdgeDirection::{In, Out};
use graph_model::{EdgeKind as K, InventoryNode};

use super::loaders::{edges, indexed, neighbours, nodes, related};
use crate::enums::*;
use crate::error::ApiResult;
use crate::relay::{List, Paging, connection, filter_page, page_request, slice};

/// Who owns something: a person, or a team.
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID", desc = "The global id, `table:key`."),
    field(name = "name", ty = "String", desc = "The person's or team's name.")
)]
pub enum Owner {
    Person(Person),
    Team(Team),
}

/// Something a person or team owns: an NHI, a secret or a system.
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID", desc = "The global id, `table:key`."),
    field(name = "name", ty = "String", desc = "Its name.")
)]
pub enum Owned {
    Nhi(Nhi),
    Secret(Secret),
    System(System),
}

pub(crate) fn owners_of(found: Vec<InventoryNode>) -> Vec<Owner> {
    found
        .into_iter()
        .filter_map(|n| match n {
            InventoryNode::Person(p) => Some(Owner::Person(Person(p))),
            InventoryNode::Team(t) => Some(Owner::Team(Team(t))),
            _ => None,
        })
        .collect()
}

pub(crate) fn owned(found: Vec<InventoryNode>) -> Vec<Owned> {
    found.into_iter().filter_map(owned_one).collect()
}

fn owned_one(n: InventoryNode) -> Option<Owned> {
    match n {
        InventoryNode::Nhi(n) => Some(Owned::Nhi(Nhi(n))),
        InventoryNode::Secret(s) => Some(Owned::Secret(Secret(s))),
        InventoryNode::System(s) => Some(Owned::System(System(s))),
        _ => None,
    }
}

fn person(n: InventoryNode) -> Option<Person> {
    match n {
        InventoryNode::Person(p) => Some(Person(p)),
        _ => None,
    }
}

/// A page of what a person or team owns.
async fn owns(ctx: &async_graphql::Context<'_>, owner: &gm::NodeId, paging: Paging) -> ApiResult<List<Owned>> {
    let page = related(ctx, K::Owns, Out, owner, paging).await?;
    Ok(connection(filter_page(page, owned_one), |o| o))
}

/// The paging arguments of a relation list, which sorts by id only.
fn by_id(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> Paging {
    Paging { first, after, last, before, order: Default::default() }
}

macro_rules! only {
    ($found:expr, $variant:ident, $wrap:ident) => {
        $found
            .into_iter()
            .filter_map(|n| match n {
                InventoryNode::$variant(x) => Some($wrap(x)),
                _ => None,
            })
            .collect()
    };
}

/// A human: owner, investigator, approver, auditor.
pub struct Person(pub gm::Person);

#[Object]
impl Person {
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> String {
        self.0.name.clone()
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn roles(&self) -> Vec<Role> {
        self.0.roles.iter().map(|r| (*r).into()).collect()
    }
    /// False once the person has left: what they own becomes orphaned.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// A machine principal (a scanner, a pipeline): it acts through API tokens only,
    /// cannot sign in, and never holds ADMIN or APPROVER.
    async fn machine(&self) -> bool {
        self.0.machine
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Teams the person belongs to.
    async fn teams(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Team>> {
        Ok(only!(neighbours(ctx, K::MemberOf, Out, &self.0.id).await?, Team, Team))
    }
    /// What the person owns directly (not through teams), by id.
    async fn owns(
        &self,
        ctx: &async_graphql::Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<List<Owned>> {
        owns(ctx, &self.0.id, by_id(first, after, last, before)).await
    }
}

/// A group of people that can own things.
pub struct Team(pub gm::Team);

#[Object]
impl Team {
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> String {
        self.0.name.clone()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Current members, by id.
    async fn members(
        &self,
        ctx: &async_graphql::Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<List<Person>> {
        let page = related(ctx, K::MemberOf, In, &self.0.id, by_id(first, after, last, before)).await?;
        Ok(connection(filter_page(page, person), |p| p))
    }
    /// What the team owns, by id.
    async fn owns(
        &self,
        ctx: &async_graphql::Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<List<Owned>> {
        owns(ctx, &self.0.id, by_id(first, after, last, before)).await
    }
}

/// A non-human identity: service account, API key, OAuth client, token, certificate,
/// SSH key, AI agent or workload identity.
pub struct Nhi(pub gm::Nhi);

#[Object]
impl Nhi {
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> NhiKind {
        self.0.kind.into()
    }
    async fn name(&self) -> String {
        self.0.name.clone()
    }
    /// Where the identity lives: `aws`, `github`, `gcp`, `okta`...
    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }
    /// The identity's id at its provider.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    async fn status(&self) -> NhiStatus {
        self.0.status.into()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Direct owners: people and teams.
    async fn owners(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Owner>> {
        Ok(owners_of(neighbours(ctx, K::Owns, In, &self.0.id).await?))
    }
    /// Secrets the identity holds.
    async fn secrets(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Secret>> {
        Ok(only!(neighbours(ctx, K::Holds, Out, &self.0.id).await?, Secret, Secret))
    }
    /// Systems the identity can access, with the privilege of each grant.
    async fn access(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Access>> {
        Ok(indexed(ctx, K::CanAccess, Out, &self.0.id).await?.into_iter().map(Access).collect())
    }
    /// Identities this one can act as.
    async fn assumes(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Assumption>> {
        Ok(edges(ctx, K::Assumes, Out, &self.0.id).await?.into_iter().map(Assumption).collect())
    }
    /// Identities that can act as this one.
    async fn assumed_by(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Assumption>> {
        Ok(edges(ctx, K::Assumes, In, &self.0.id).await?.into_iter().map(Assumption).collect())
    }
    /// Unused for more than `days` days (never used: created that long ago).
    async fn stale(&self, #[graphql(default = 90)] days: u32) -> bool {
        self.0.stale_at(Utc::now(), days)
    }
    /// No active owner: no active person owns it directly, and no owning team has an
    /// active member.
    async fn orphaned(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<bool> {
        for owner in neighbours(ctx, K::Owns, In, &self.0.id).await? {
            match owner {
                InventoryNode::Person(p) if p.active => return Ok(false),
                InventoryNode::Team(t) => {
                    let members = neighbours(ctx, K::MemberOf, In, &t.id).await?;
                    if members.iter().any(|m| matches!(m, InventoryNode::Person(p) if p.active)) {
                        return Ok(false);
                    }
                }
                _ => {}
            }
        }
        Ok(true)
    }
    /// Admin access to a tier0 system or to anything in production.
    async fn over_privileged(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<bool> {
        let admin: Vec<gm::NodeId> = indexed(ctx, K::CanAccess, Out, &self.0.id)
            .await?
            .into_iter()
            .filter(|e| e.privilege == Some(gm::Privilege::Admin))
            .map(|e| e.to)
            .collect();
        Ok(nodes(ctx, admin).await?.iter().any(|n| {
            matches!(n, InventoryNode::System(s)
                if s.criticality == gm::Criticality::Tier0 || s.environment == gm::Environment::Production)
        }))
    }
    /// A held secret or an access grant expires within `days` days.
    async fn expiring_soon(
        &self,
        ctx: &async_graphql::Context<'_>,
        #[graphql(default = 30)] days: u32,
    ) -> ApiResult<bool> {
        let horizon = Utc::now() + chrono::Duration::days(i64::from(crate::limits::days("days", days)?));
        let grants = indexed(ctx, K::CanAccess, Out, &self.0.id).await?;
        if grants.iter().any(|e| e.expires_at.is_some_and(|t| t <= horizon)) {
            return Ok(true);
        }
        let secrets = neighbours(ctx, K::Holds, Out, &self.0.id).await?;
        Ok(secrets.iter().any(|n| matches!(n, InventoryNode::Secret(s) if s.expires_at.is_some_and(|t| t <= horizon))))
    }
}

/// Metadata about a credential. The value itself is never stored, only its fingerprint.
pub struct Secret(pub gm::Secret);

#[Object]
impl Secret {
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> SecretKind {
        self.0.kind.into()
    }
    async fn name(&self) -> String {
        self.0.name.clone()
    }
    /// A digest identifying the secret (never its value).
    async fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    async fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.0.issued_at
    }
    async fn last_rotated_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_rotated_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn rotation_period_days(&self) -> Option<u32> {
        self.0.rotation_period_days
    }
    /// When the next rotation is due, if the secret has a rotation period.
    async fn rotation_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.rotation_due_at()
    }
    /// Whether the secret is past its rotation period now.
    async fn rotation_overdue(&self) -> bool {
        self.0.rotation_overdue(Utc::now())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn owners(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Owner>> {
        Ok(owners_of(neighbours(ctx, K::Owns, In, &self.0.id).await?))
    }
    /// Identities that hold this secret.
    async fn held_by(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Nhi>> {
        Ok(only!(neighbours(ctx, K::Holds, In, &self.0.id).await?, Nhi, Nhi))
    }
    /// Systems the secret authenticates to.
    async fn authenticates_to(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<System>> {
        Ok(only!(neighbours(ctx, K::AuthenticatesTo, Out, &self.0.id).await?, System, System))
    }
    /// Vaults the secret is stored in.
    async fn stored_in(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<System>> {
        Ok(only!(neighbours(ctx, K::StoredIn, Out, &self.0.id).await?, System, System))
    }
}

/// An application, database, vault, repository, cloud account or SaaS.
pub struct System(pub gm::System);

#[Object]
impl System {
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> SystemKind {
        self.0.kind.into()
    }
    async fn name(&self) -> String {
        self.0.name.clone()
    }
    async fn environment(&self) -> Environment {
        self.0.environment.into()
    }
    async fn criticality(&self) -> Criticality {
        self.0.criticality.into()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn owners(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Owner>> {
        Ok(owners_of(neighbours(ctx, K::Owns, In, &self.0.id).await?))
    }
    /// Identities with access to this system, and their privilege, by the identity's id.
    async fn accessors(
        &self,
        ctx: &async_graphql::Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<List<Access>> {
        let request = page_request(ctx, by_id(first, after, last, before))?;
        let page = slice(indexed(ctx, K::CanAccess, In, &self.0.id).await?, |e| &e.from, &request)?;
        Ok(connection(page, Access))
    }
    /// Secrets that authenticate to this system.
    async fn secrets(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Secret>> {
        Ok(only!(neighbours(ctx, K::AuthenticatesTo, In, &self.0.id).await?, Secret, Secret))
    }
    /// For a vault: the secrets stored in it.
    async fn stored_secrets(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<Secret>> {
        Ok(only!(neighbours(ctx, K::StoredIn, In, &self.0.id).await?, Secret, Secret))
    }
    /// Systems this one depends on.
    async fn depends_on(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<System>> {
        Ok(only!(neighbours(ctx, K::DependsOn, Out, &self.0.id).await?, System, System))
    }
    /// Systems that depend on this one.
    async fn dependents(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Vec<System>> {
        Ok(only!(neighbours(ctx, K::DependsOn, In, &self.0.id).await?, System, System))
    }
}

/// An NHI's access to a system (a `can_access` edge), as the graph index holds it.
pub struct Access(pub gm::graph::EdgeFact);

#[Object]
impl Access {
    /// The id of the grant's edge; close it with `closeRelation`.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn privilege(&self) -> Option<Privilege> {
        self.0.privilege.map(Into::into)
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// Since when the access has been in force.
    async fn valid_from(&self) -> DateTime<Utc> {
        self.0.valid_from
    }
    /// Does a decision stand behind this access (a grant approved, a change applied, a
    /// baseline adopted)? False for access a feed reported that nobody approved.
    async fn governed(&self) -> bool {
        self.0.governed == Some(true)
    }
    async fn nhi(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Option<Nhi>> {
        let found: Vec<Nhi> = only!(nodes(ctx, [self.0.from.clone()]).await?, Nhi, Nhi);
        Ok(found.into_iter().next())
    }
    async fn system(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Option<System>> {
        let found: Vec<System> = only!(nodes(ctx, [self.0.to.clone()]).await?, System, System);
        Ok(found.into_iter().next())
    }
}

/// One NHI able to act as another (an `assumes` edge).
pub struct Assumption(pub gm::Edge);

#[Object]
impl Assumption {
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Does a decision stand behind this delegation? False when a feed reported it and
    /// nobody approved it.
    async fn governed(&self) -> bool {
        self.0.granted_by.is_some()
    }
    async fn mechanism(&self) -> Option<AssumeMechanism> {
        self.0.mechanism.map(Into::into)
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn valid_from(&self) -> DateTime<Utc> {
        self.0.valid_from
    }
    /// The identity that acts.
    async fn from(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Option<Nhi>> {
        let found: Vec<Nhi> = only!(nodes(ctx, [self.0.from.clone()]).await?, Nhi, Nhi);
        Ok(found.into_iter().next())
    }
    /// The identity acted as.
    async fn to(&self, ctx: &async_graphql::Context<'_>) -> ApiResult<Option<Nhi>> {
        let found: Vec<Nhi> = only!(nodes(ctx, [self.0.to.clone()]).await?, Nhi, Nhi);
        Ok(found.into_iter().next())
    }
}
