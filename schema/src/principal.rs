//! Who is calling: the authenticated principal, put into each request's context by the
//! server after it checked the bearer token, and the guards resolvers use.

use async_graphql::{Context, Guard};
use graph_model::{NodeId, Person, Role};

use crate::error::ApiError;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub person: Person,
    /// The roles this request acts with: the person's roles, or for an API token the
    /// person's roles limited to the token's scopes.
    pub roles: Vec<Role>,
    /// The caller presented an API token rather than signing in: it may not make more
    /// tokens (a leaked one would otherwise outlive its own revocation).
    pub via_token: bool,
}

impl Principal {
    /// A person acting with all their roles (a signed-in user).
    pub fn person(person: Person) -> Principal {
        let roles = person.roles.clone();
        Principal { person, roles, via_token: false }
    }

    /// A caller acting through an API token, with the roles its scopes leave them.
    pub fn token(person: Person, roles: Vec<Role>) -> Principal {
        Principal { person, roles, via_token: true }
    }

    pub fn id(&self) -> &NodeId {
        &self.person.id
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has_role(*r))
    }
}

/// The caller, or `UNAUTHENTICATED`.
pub fn principal<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    ctx.data::<Principal>().map_err(|_| ApiError::Unauthenticated)
}

/// Admits a caller holding at least one of the roles.
pub struct RoleGuard(pub &'static [Role]);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let p = principal(ctx)?;
        if p.has_any(self.0) {
            Ok(())
        } else {
            let names: Vec<&str> = self.0.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!("this needs one of the roles: {}", names.join(", "))).into())
        }
    }
}

/// Admits any authenticated caller.
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        principal(ctx)?;
        Ok(())
    }
}

/// Roles that may read the inventory.
pub const READ_INVENTORY: &[Role] =
    &[Role::Viewer, Role::Investigator, Role::Approver, Role::Admin, Role::Auditor, Role::Ingest];
/// Roles that may change the inventory.
pub const WRITE_INVENTORY: &[Role] = &[Role::Admin, Role::Ingest];
/// Roles that may manage people and teams.
pub const MANAGE_PEOPLE: &[Role] = &[Role::Admin];
/// Roles that may see alerts, cases, tasks and requests.
pub const READ_CASES: &[Role] = &[Role::Viewer, Role::Investigator, Role::Approver, Role::Admin, Role::Auditor];
/// Roles that may see evidence content, decisions, their explanations and the chain.
pub const READ_EVIDENCE: &[Role] = &[Role::Investigator, Role::Approver, Role::Admin, Role::Auditor];
/// Roles that may push alerts.
pub const INGEST_ALERTS: &[Role] = &[Role::Investigator, Role::Admin, Role::Ingest];
/// Roles that work cases: promote, merge and dismiss alerts, move cases, add tasks and
/// evidence.
pub const WORK_CASES: &[Role] = &[Role::Investigator, Role::Admin];
/// Roles that may file requests.
pub const FILE_REQUESTS: &[Role] = &[Role::Investigator, Role::Approver, Role::Admin];
/// Roles that may decide requests. The policy's own rules (approver role required,
/// requester cannot approve...) apply on top and answer `SOD_VIOLATION`.
pub const DECIDE_REQUESTS: &[Role] = &[Role::Approver, Role::Admin];
/// Roles that may accept a risk; the policy then requires the control owner.
pub const ACCEPT_RISK: &[Role] = &[Role::Viewer, Role::Investigator, Role::Approver, Role::Admin];
/// Roles that may publish policy versions and manage API tokens.
pub const ADMINISTER: &[Role] = &[Role::Admin];
