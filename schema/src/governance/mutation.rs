//! The governed mutations. Each parses its input, splits what merely describes a node
//! (a name, a description: written at once) from the governed facts it changes, and
//! sends each governed fact through `Store::govern`, one decision per call.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{Duration, Utc};
use graph_model as gm;
use graph_model::store::{Governed, Store};
use graph_model::{EdgeId, InventoryNode, NodeId, Table};

use crate::cases::mutation::text;
use crate::decisions::mutation::{PolicyInput, RequestDecision, policy_draft};
use crate::decisions::types::{ApiToken, Decision, Request};
use crate::enums::Role;
use crate::error::{ApiError, ApiResult};
use crate::events::{ChangeAction, EventBus};
use crate::inventory::inputs::{RelateInput, UpdateNhiInput, UpdatePersonInput, UpdateSystemInput};
use crate::inventory::types::{Nhi, Person, System};
use crate::node::Relation;
use crate::principal::{ADMINISTER, Authenticated, MANAGE_PEOPLE, Principal, RoleGuard, WRITE_INVENTORY, principal};

#[derive(Default)]
pub struct GovernanceMutation;

/// What `updatePerson` did.
#[derive(SimpleObject)]
pub struct PersonChange {
    /// The person as stored after the call (a change waiting for a second person is not
    /// in it yet).
    pub person: Person,
    /// The decision that recorded the change to roles or activity; null when only the
    /// name changed.
    pub decision: Option<Decision>,
    /// The request filed instead of the change, when it waits for a second admin.
    pub request: Option<Request>,
}

/// What `updateNhi` did.
#[derive(SimpleObject)]
pub struct NhiChange {
    pub nhi: Nhi,
    /// The decision that recorded a status change; null when none was asked for.
    pub decision: Option<Decision>,
    /// The request filed instead, when the change waits for a second admin.
    pub request: Option<Request>,
}

/// What `updateSystem` did.
#[derive(SimpleObject)]
pub struct SystemChange {
    pub system: System,
    /// The decision that recorded a change of criticality or environment; null when
    /// none was asked for.
    pub decision: Option<Decision>,
    /// The request filed instead, when the change waits for a second admin.
    pub request: Option<Request>,
}

/// What `relate` or `closeRelation` did.
#[derive(SimpleObject)]
pub struct RelationChange {
    /// The edge opened or closed; null while the change waits in `request`.
    pub relation: Option<Relation>,
    /// The decision that recorded it; null for edges that carry no governed fact
    /// (`authenticates_to`, `stored_in`, `depends_on`).
    pub decision: Option<Decision>,
    /// The request filed instead, when a second person must approve (privileged access
    /// is an ordinary `GRANT_ACCESS` request; `ASSUMES` a `CHANGE` request).
    pub request: Option<Request>,
}

/// A new API token. `token` is shown only here; while `request` waits for a second
/// admin the token exists but does not work.
#[derive(SimpleObject)]
pub struct NewApiToken {
    pub token: String,
    /// The token's record; null while it waits for approval.
    pub api_token: Option<ApiToken>,
    pub decision: Decision,
    pub request: Option<Request>,
}

/// The caller as the store's actor: their id and the roles this request acts with.
pub(crate) fn actor(p: &Principal) -> gm::store::Actor {
    gm::store::Actor { id: p.id().clone(), roles: p.roles.clone() }
}

/// Governed facts are changed by admins; other roles that reach the mutation (an
/// ingest token) may not even ask.
fn admin_only(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.has_role(gm::Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("{what} is a governed change: it needs the admin role")))
    }
}

/// Send one governed change through the pipeline, with the caller's rationale or, when
/// none is given, the change's own description.
pub(crate) async fn govern(ctx: &Context<'_>, change: gm::Change, rationale: Option<String>) -> ApiResult<Governed> {
    let p = principal(ctx)?;
    let rationale = match rationale {
        Some(r) => text(&r, "rationale")?,
        None => gm::Text::parse(&change.describe()).map_err(|e| ApiError::from(e.at("rationale")))?,
    };
    ctx.data::<Store>()?.govern(&actor(p), &change, &rationale).await.map_err(ApiError::from)
}

/// The decision and request of a governed change, as GraphQL objects.
fn parts(g: Option<Governed>) -> (Option<Decision>, Option<Request>) {
    match g {
        Some(g) => (Some(Decision(g.decision)), g.request.map(Request)),
        None => (None, None),
    }
}

async fn node(ctx: &Context<'_>, id: &NodeId) -> ApiResult<InventoryNode> {
    let found = ctx.data::<Store>()?.node(id).await.map_err(ApiError::from)?;
    found.ok_or_else(|| ApiError::NotFound(id.to_string()))
}

fn id_in(id: &ID, table: Table) -> Result<NodeId, ApiError> {
    Ok(crate::inventory::inputs::node_id(id, "id", &[table])?)
}

fn changed(ctx: &Context<'_>, action: ChangeAction, id: impl ToString) -> ApiResult<()> {
    ctx.data::<EventBus>()?.inventory_changed(action, Some(id.to_string()));
    Ok(())
}

#[Object]
impl GovernanceMutation {
    /// Change a person: name, roles, or `active`. Roles and activity are governed:
    /// each change is a decision, and granting ADMIN, APPROVER or AUDITOR, granting
    /// oneself any role, or reactivating someone waits for a second admin (see
    /// `request`). `active: false` when someone leaves applies at once, and what they
    /// owned alone raises ownership alerts.
    #[graphql(guard = "RoleGuard(MANAGE_PEOPLE)")]
    async fn update_person(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePersonInput,
        rationale: Option<String>,
    ) -> ApiResult<PersonChange> {
        let id = id_in(&id, Table::Person)?;
        let update = input.parse().map_err(ApiError::from)?;
        let store = ctx.data::<Store>()?;
        if update.patch.name.is_some() {
            store.update_person(&id, &update.patch).await.map_err(ApiError::from)?;
        }
        let change = match (update.roles, update.active) {
            (Some(roles), _) => {
                let Some(InventoryNode::Person(held)) = store.node(&id).await.map_err(ApiError::from)? else {
                    return Err(ApiError::NotFound(id.to_string()));
                };
                let grant = roles.iter().copied().filter(|r| !held.roles.contains(r)).collect();
                let revoke = held.roles.iter().copied().filter(|r| !roles.contains(r)).collect();
                Some(gm::Change::Roles { person: id.clone(), grant, revoke })
            }
            (None, Some(active)) => Some(gm::Change::Active { person: id.clone(), active }),
            (None, None) => None,
        };
        let governed = match change {
            Some(c) => Some(govern(ctx, c, rationale).await?),
            None => None,
        };
        changed(ctx, ChangeAction::Updated, &id)?;
        let InventoryNode::Person(person) = node(ctx, &id).await? else {
            return Err(ApiError::internal(format!("{id} is not a person")));
        };
        let (decision, request) = parts(governed);
        Ok(PersonChange { person: Person(person), decision, request })
    }

    /// Change an NHI. Its status is governed (admins only): a decision, and
    /// reactivating a disabled, revoked or decommissioned NHI waits for a second admin.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn update_nhi(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateNhiInput,
        rationale: Option<String>,
    ) -> ApiResult<NhiChange> {
        let id = id_in(&id, Table::Nhi)?;
        let (patch, status) = input.parse().map_err(ApiError::from)?;
        if status.is_some() {
            admin_only(principal(ctx)?, "an NHI's status")?;
        }
        let store = ctx.data::<Store>()?;
        store.update_nhi(&id, &patch).await.map_err(ApiError::from)?;
        let governed = match status {
            Some(status) => Some(govern(ctx, gm::Change::NhiStatus { nhi: id.clone(), status }, rationale).await?),
            None => None,
        };
        changed(ctx, ChangeAction::Updated, &id)?;
        let InventoryNode::Nhi(nhi) = node(ctx, &id).await? else {
            return Err(ApiError::internal(format!("{id} is not an NHI")));
        };
        let (decision, request) = parts(governed);
        Ok(NhiChange { nhi: Nhi(nhi), decision, request })
    }

    /// Change a system. Its criticality and environment are governed (admins only):
    /// a decision, and lowering the criticality or taking it out of production waits
    /// for a second admin.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn update_system(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateSystemInput,
        rationale: Option<String>,
    ) -> ApiResult<SystemChange> {
        let id = id_in(&id, Table::System)?;
        let (patch, risk) = input.parse().map_err(ApiError::from)?;
        if risk.is_some() {
            admin_only(principal(ctx)?, "a system's criticality or environment")?;
        }
        let store = ctx.data::<Store>()?;
        store.update_system(&id, &patch).await.map_err(ApiError::from)?;
        let governed = match risk {
            Some((criticality, environment)) => {
                let change = gm::Change::SystemRisk { system: id.clone(), criticality, environment };
                Some(govern(ctx, change, rationale).await?)
            }
            None => None,
        };
        changed(ctx, ChangeAction::Updated, &id)?;
        let InventoryNode::System(system) = node(ctx, &id).await? else {
            return Err(ApiError::internal(format!("{id} is not a system")));
        };
        let (decision, request) = parts(governed);
        Ok(SystemChange { system: System(system), decision, request })
    }

    /// Open an edge between two nodes; refused when the same edge is already open.
    /// Access (`CAN_ACCESS`, `ASSUMES`, `HOLDS`), ownership and membership are governed
    /// (admins only): each is a decision; privileged access (ADMIN anywhere, WRITE or
    /// more on tier0, tier1 or production) files a `GRANT_ACCESS` request and `ASSUMES`
    /// a `CHANGE` request instead, and access to an NHI with no active owner is refused.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn relate(
        &self,
        ctx: &Context<'_>,
        input: RelateInput,
        rationale: Option<String>,
    ) -> ApiResult<RelationChange> {
        let edge = input.parse().map_err(ApiError::from)?;
        let store = ctx.data::<Store>()?;
        if !gm::GOVERNED_EDGES.contains(&edge.kind) {
            let stored = store.relate(&edge).await.map_err(ApiError::from)?;
            changed(ctx, ChangeAction::Related, &stored.id)?;
            return Ok(RelationChange { relation: Some(Relation(stored)), decision: None, request: None });
        }
        admin_only(principal(ctx)?, &format!("a {} edge", edge.kind))?;
        let g = govern(ctx, gm::Change::Relate { edge: edge.clone() }, rationale).await?;
        let relation = if g.applied() {
            let open = store.edges_between(&edge).await.map_err(ApiError::from)?;
            if let Some(e) = &open {
                changed(ctx, ChangeAction::Related, &e.id)?;
            }
            open.map(Relation)
        } else {
            None
        };
        let (decision, request) = parts(Some(g));
        Ok(RelationChange { relation, decision, request })
    }

    /// Close an open edge; it stays in history with `validTo` set. Closing access,
    /// ownership or membership is governed (admins only) and recorded as a decision;
    /// closing a grant is its rollback: the decision names the one that granted it
    /// (`change.rolls_back` in its inputs) and stands in the subject's trail beside it.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn close_relation(&self, ctx: &Context<'_>, id: ID, rationale: Option<String>) -> ApiResult<RelationChange> {
        let id = EdgeId::parse(id.as_str()).map_err(ApiError::from)?;
        let store = ctx.data::<Store>()?;
        if !gm::GOVERNED_EDGES.contains(&id.kind) {
            let closed = store.close_edge(&id).await.map_err(ApiError::from)?;
            changed(ctx, ChangeAction::Closed, &closed.id)?;
            return Ok(RelationChange { relation: Some(Relation(closed)), decision: None, request: None });
        }
        admin_only(principal(ctx)?, &format!("a {} edge", id.kind))?;
        let edge = store.edge(&id).await.map_err(ApiError::from)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        let change = gm::Change::Unrelate {
            edge: id.clone(),
            kind: id.kind,
            from: edge.from.clone(),
            to: edge.to.clone(),
            rolls_back: edge.granted_by.clone(),
        };
        let g = govern(ctx, change, rationale).await?;
        changed(ctx, ChangeAction::Closed, &id)?;
        let closed = store.edge(&id).await.map_err(ApiError::from)?;
        let (decision, request) = parts(Some(g));
        Ok(RelationChange { relation: closed.map(Relation), decision, request })
    }

    /// Ask for an API token for a principal, limited to `scopes` (roles it holds). The
    /// token text is answered now and never again. Anyone may ask for a token for their
    /// own use, signed in (not through another token); only an admin for someone else's
    /// (a machine principal's). A token for
    /// oneself with only the INGEST scope works at once; any other waits for a second
    /// admin, and works from the moment that admin approves `request`.
    #[graphql(guard = "Authenticated")]
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        principal_id: ID,
        name: String,
        scopes: Vec<Role>,
        ttl_days: Option<u32>,
        rationale: Option<String>,
    ) -> ApiResult<NewApiToken> {
        let who = crate::inventory::inputs::node_id(&principal_id, "principalId", &[Table::Person])?;
        let caller = principal(ctx)?;
        if caller.via_token {
            return Err(ApiError::Forbidden("an API token cannot make tokens: sign in to ask for one".into()));
        }
        if &who != caller.id() && !caller.has_any(ADMINISTER) {
            return Err(ApiError::Forbidden("a token for someone else needs the admin role".into()));
        }
        let name = gm::Name::parse(&name).map_err(|e| ApiError::from(e.at("name")))?;
        let mut scopes: Vec<gm::Role> = scopes.into_iter().map(Into::into).collect();
        scopes.dedup();
        let expires_at = match ttl_days {
            Some(0) => return Err(ApiError::bad_input("ttlDays", "at least one day")),
            Some(d) => Some(Utc::now() + Duration::days(i64::from(d.min(3650)))),
            None => None,
        };
        let (key, token, token_sha256) = gm::store::new_token();
        let change = gm::Change::Token {
            key: key.clone(),
            principal: who,
            name: name.as_str().to_owned(),
            scopes,
            expires_at,
            token_sha256,
        };
        let g = govern(ctx, change, rationale).await?;
        let api_token = if g.applied() {
            ctx.data::<Store>()?.api_token_by_key(&key).await.map_err(ApiError::from)?.map(ApiToken)
        } else {
            None
        };
        Ok(NewApiToken { token, api_token, decision: Decision(g.decision), request: g.request.map(Request) })
    }

    /// Revoke an API token at once (recorded as a decision).
    #[graphql(guard = "RoleGuard(ADMINISTER)")]
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: String, rationale: Option<String>) -> ApiResult<ApiToken> {
        let store = ctx.data::<Store>()?;
        let token = store.api_token_by_key(&id).await.map_err(ApiError::from)?;
        let token = token.ok_or_else(|| ApiError::NotFound(format!("api token {id}")))?;
        let change = gm::Change::RevokeToken { key: id.clone(), principal: token.principal.clone() };
        govern(ctx, change, rationale).await?;
        let token = store.api_token_by_key(&id).await.map_err(ApiError::from)?;
        Ok(ApiToken(token.ok_or_else(|| ApiError::NotFound(format!("api token {id}")))?))
    }

    /// Propose adopting a feed's ungoverned edges (see `ungovernedAccess`) as the
    /// governed baseline, naming them by the digest read there. It always waits for a
    /// second admin; when approved, exactly those edges are adopted (if they changed
    /// meanwhile, the approval is refused and the digest must be read again), each
    /// naming the decision as the one behind it.
    #[graphql(guard = "RoleGuard(ADMINISTER)")]
    async fn adopt_baseline(
        &self,
        ctx: &Context<'_>,
        source: Option<String>,
        digest: String,
        rationale: String,
    ) -> ApiResult<RequestDecision> {
        let store = ctx.data::<Store>()?;
        let now = store.ungoverned_access(source.as_deref(), 0).await.map_err(ApiError::from)?;
        let id = NodeId::generate(Table::Baseline);
        let change = gm::Change::AdoptBaseline { id, source, edges: now.total, digest };
        let g = govern(ctx, change, Some(rationale)).await?;
        let request = g.request.ok_or_else(|| ApiError::internal("a baseline was adopted without a request"))?;
        Ok(RequestDecision::new(g.decision, request))
    }

    /// Propose a new, immutable policy version. Publishing always waits for a second
    /// admin, who approves `request`; from then on the version governs every decision.
    /// The engine's floor (requester cannot approve, role grants and policy need two
    /// people, a token never exceeds its principal) holds whatever a version says.
    #[graphql(guard = "RoleGuard(ADMINISTER)")]
    async fn publish_policy(
        &self,
        ctx: &Context<'_>,
        input: PolicyInput,
        rationale: String,
    ) -> ApiResult<RequestDecision> {
        let draft = policy_draft(input)?;
        let change = gm::Change::Policy { id: NodeId::generate(Table::Policy), draft };
        let g = govern(ctx, change, Some(rationale)).await?;
        let request = g.request.ok_or_else(|| ApiError::internal("a policy change was applied without a request"))?;
        Ok(RequestDecision::new(g.decision, request))
    }
}
