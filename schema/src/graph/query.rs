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

fn hops(ctx: &Context<'_>, asked: u32) -> Result<u32, ApiError> {
    let limits = ctx.data::<GraphLimits>().map_err(|_| ApiError::internal("graph limits missing"))?;
    if asked == 0 || asked > limits.max_hops {
        return Err(ApiError::bad_input("maxHops", format!("between 1 and {}", limits.max_hops)));
    }
    Ok(asked)
}

async fn reach(
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
        return Err(ApiError::bad_input(field, format!("starts at a {}", names.join(" or "))).into());
    }
    let max_hops = hops(ctx, max_hops)?;
    let cap = ctx.data::<GraphLimits>()?.node_cap;
    let traversal = ctx
        .data::<Store>()?
        .traverse(&id, direction, max_hops, cap, as_of)
        .await
        .map_err(ApiError::from)?
        .unwrap_or(graph_model::graph::Traversal { reached: vec![], truncated: false });
    Ok(Reach { origin: origin.clone(), max_hops, as_of, traversal })
}

#[Object]
impl GraphQuery {
    /// Everything an NHI or a secret can reach within `maxHops` through holds,
    /// authenticates_to, can_access, assumes and depends_on: each node with its hop
    /// distance, one witness path and the highest privilege on it, and totals. With
    /// `asOf`, the graph as it was then.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn blast_radius(
        &self,
        ctx: &Context<'_>,
        from: ID,
        #[graphql(default = 3)] max_hops: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> ApiResult<Reach> {
        reach(ctx, &from, "from", &[Table::Nhi, Table::Secret], Direction::Forward, max_hops, as_of).await
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
        reach(ctx, &target, "target", &[Table::System, Table::Secret, Table::Nhi], Direction::Reverse, max_hops, as_of)
            .await
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
        let max_hops = hops(ctx, max_hops)?;
        let p = ctx.data::<Store>()?.shortest_path(&a, &b, max_hops, as_of).await.map_err(ApiError::from)?;
        Ok(p.map(|p| p.iter().map(PathStep::of).collect()))
    }
}
