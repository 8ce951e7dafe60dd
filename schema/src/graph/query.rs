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
use crate::principal::{READ_INVENTORY, RoleGuard};

#[derive(Default)]
pub struct GraphQuery;

/// Where a blast radius may start.
pub(crate) const BLAST_ORIGINS: [Table; 2] = [Table::Nhi, Table::Secret];
/// What a who-can-reach may ask about.
pub(crate) const REACH_TARGETS: [Table; 3] = [Table::System, Table::Secret, Table::Nhi];

/// A shortest path within `max_hops` (checked against the hop cap).
pub(crate) async fn shortest_path(
    ctx: &Context<'_>,
    from: &NodeId,
    to: &NodeId,
    max_hops: u32,
    as_of: Option<DateTime<Utc>>,
) -> ApiResult<Option<Vec<graph_model::graph::Step>>> {
    let max_hops = hops(ctx, max_hops)?;
    Ok(ctx.data::<Store>()?.shortest_path(from, to, max_hops, as_of).await?)
}

fn hops(ctx: &Context<'_>, asked: u32) -> Result<u32, ApiError> {
    let limits = ctx.data::<GraphLimits>().map_err(|_| ApiError::internal("graph limits missing"))?;
    if asked == 0 || asked > limits.max_hops {
        return Err(ApiError::bad_input("maxHops", format!("between 1 and {}", limits.max_hops)));
    }
    Ok(asked)
}

/// Walk from `origin` (named `field` in errors), which must be a node of `tables`. A
/// read: recording a walk on a case is the `recordTraversal` mutation.
pub(crate) async fn reach(
    ctx: &Context<'_>,
    origin: &ID,
    field: &str,
    tables: &[Table],
    direction: Direction,
    max_hops: u32,
    as_of: Option<DateTime<Utc>>,
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
    Ok(Reach { origin: origin.clone(), max_hops, as_of, traversal })
}

#[Object]
impl GraphQuery {
    /// Everything an NHI or a secret can reach within `maxHops` through holds,
    /// authenticates_to, can_access, assumes and depends_on: each node with its hop
    /// distance, one witness path and the highest privilege on it, and totals. With
    /// `asOf`, the graph as it was then. A read: `recordTraversal` keeps a walk on a
    /// case.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn blast_radius(
        &self,
        ctx: &Context<'_>,
        from: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Reach> {
        reach(ctx, &from, "from", &BLAST_ORIGINS, Direction::Forward, max_hops, as_of).await
    }

    /// Who can reach a system, secret or NHI within `maxHops`, and by which paths.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn who_can_reach(
        &self,
        ctx: &Context<'_>,
        target: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Reach> {
        reach(ctx, &target, "target", &REACH_TARGETS, Direction::Reverse, max_hops, as_of).await
    }

    /// A shortest path from one node to another within `maxHops`, or null.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn path(
        &self,
        ctx: &Context<'_>,
        from: ID,
        to: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Option<Vec<PathStep>>> {
        let (a, b) = (node_id(&from, "from")?, node_id(&to, "to")?);
        let p = shortest_path(ctx, &a, &b, max_hops, as_of).await?;
        Ok(p.map(|p| p.iter().map(PathStep::of).collect()))
    }
}
