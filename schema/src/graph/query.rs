//! Graph queries.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use graph_model::graph::Direction;
use graph_model::store::Store;
use graph_model::{NodeId, Table};

use super::GraphLimits;
use super::types::{PathStep, Reach};
use crate::cases::mutation::node_id;
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_CASES, READ_INVENTORY, RoleGuard, principal};

#[derive(Default)]
pub struct GraphQuery;

fn hops(ctx: &Context<'_>, asked: u32) -> Result<u32, ApiError> {
    let limits = ctx.data::<GraphLimits>().map_err(|_| ApiError::internal("graph limits missing"))?;
    if asked == 0 || asked > limits.max_hops {
        return Err(ApiError::bad_input("maxHops", format!("between 1 and {}", limits.max_hops)));
    }
    Ok(asked)
}

/// Record a traversal made for a case on that case; the caller must be able to see cases.
#[allow(clippy::too_many_arguments)]
async fn record(
    ctx: &Context<'_>,
    case: Option<&ID>,
    query: &str,
    origin: &NodeId,
    target: Option<&NodeId>,
    max_hops: u32,
    as_of: Option<DateTime<Utc>>,
    reached: u64,
    truncated: bool,
) -> ApiResult<()> {
    let Some(case) = case else { return Ok(()) };
    let p = principal(ctx)?;
    if !p.has_any(READ_CASES) {
        return Err(ApiError::Forbidden("recording a traversal on a case needs a role that sees cases".into()));
    }
    let t = graph_model::store::TraversalRecord {
        case: node_id(case, "caseId")?,
        actor: p.id().clone(),
        query: query.into(),
        origin: origin.clone(),
        target: target.cloned(),
        max_hops,
        as_of,
        reached,
        truncated,
        at: Utc::now(),
    };
    ctx.data::<Store>()?.record_traversal(&t).await.map_err(ApiError::from)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn reach(
    ctx: &Context<'_>,
    origin: &ID,
    field: &str,
    tables: &[Table],
    direction: Direction,
    max_hops: u32,
    as_of: Option<DateTime<Utc>>,
    case: Option<&ID>,
) -> ApiResult<Reach> {
    let id: NodeId = node_id(origin, field)?;
    if !tables.contains(&id.table()) {
        let names: Vec<&str> = tables.iter().map(|t| t.as_str()).collect();
        return Err(ApiError::bad_input(field, format!("starts at a {}", names.join(" or "))));
    }
    let max_hops = hops(ctx, max_hops)?;
    let cap = ctx.data::<GraphLimits>()?.node_cap;
    let traversal = ctx
        .data::<Store>()?
        .traverse(&id, direction, max_hops, cap, as_of)
        .await
        .map_err(ApiError::from)?
        .unwrap_or_default();
    let query = if direction == Direction::Forward { "blast_radius" } else { "who_can_reach" };
    let (n, truncated) = (traversal.totals.nodes, traversal.truncated);
    record(ctx, case, query, &id, None, max_hops, as_of, n, truncated).await?;
    Ok(Reach { origin: origin.clone(), max_hops, as_of, traversal })
}

#[Object]
impl GraphQuery {
    /// Everything an NHI or a secret can reach within `maxHops` through holds,
    /// authenticates_to, can_access, assumes and depends_on: each node with its hop
    /// distance, one witness path and the highest privilege on it, and totals. With
    /// `asOf`, the graph as it was then. With `caseId`, the traversal is recorded on
    /// that case.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn blast_radius(
        &self,
        ctx: &Context<'_>,
        from: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
        case_id: Option<ID>,
    ) -> ApiResult<Reach> {
        let tables = [Table::Nhi, Table::Secret];
        reach(ctx, &from, "from", &tables, Direction::Forward, max_hops, as_of, case_id.as_ref()).await
    }

    /// Who can reach a system, secret or NHI within `maxHops`, and by which paths.
    /// With `caseId`, the traversal is recorded on that case.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn who_can_reach(
        &self,
        ctx: &Context<'_>,
        target: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
        case_id: Option<ID>,
    ) -> ApiResult<Reach> {
        let tables = [Table::System, Table::Secret, Table::Nhi];
        reach(ctx, &target, "target", &tables, Direction::Reverse, max_hops, as_of, case_id.as_ref()).await
    }

    /// A shortest path from one node to another within `maxHops`, or null. With
    /// `caseId`, the traversal is recorded on that case.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn path(
        &self,
        ctx: &Context<'_>,
        from: ID,
        to: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
        case_id: Option<ID>,
    ) -> ApiResult<Option<Vec<PathStep>>> {
        let (a, b) = (node_id(&from, "from")?, node_id(&to, "to")?);
        let max_hops = hops(ctx, max_hops)?;
        let p = ctx.data::<Store>()?.shortest_path(&a, &b, max_hops, as_of).await.map_err(ApiError::from)?;
        let len = p.as_ref().map(|p| p.len() as u64).unwrap_or(0);
        record(ctx, case_id.as_ref(), "path", &a, Some(&b), max_hops, as_of, len, false).await?;
        Ok(p.map(|p| p.iter().map(PathStep::of).collect()))
    }
}
