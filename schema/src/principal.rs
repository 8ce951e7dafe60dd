//! Who is calling: the authenticated principal, put into each request's context by the
//! server after it checked the bearer token, and the guards resolvers use.

use async_graphql::{Context, Guard};
use graph_model::{NodeId, Person, Role};

use crate::error::ApiError;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub person: Person,
}

impl Principal {
    pub fn id(&self) -> &NodeId {
        &self.person.id
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.person.has_role(role)
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
