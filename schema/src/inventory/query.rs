//! Inventory queries: `node`, the lists an inventory screen pages through, and `me`.

use async_graphql::{Context, ID, Object};
use graph_model::NodeId;
use graph_model::store::{NodeFilter, Store};

use super::inputs::{self, *};
use super::types::*;
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_INVENTORY, RoleGuard, principal};
use crate::relay::{List, connection, page_request};

#[derive(Default)]
pub struct InventoryQuery;

#[Object]
impl InventoryQuery {
    /// Any node by its global id; null when there is none.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Node>> {
        let id = NodeId::parse(id.as_str()).map_err(ApiError::from)?;
        let store = ctx.data::<Store>()?;
        Ok(store.node(&id).await.map_err(ApiError::from)?.map(Node::from))
    }

    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Person> {
        Ok(Person(principal(ctx)?.person.clone()))
    }

    /// Non-human identities, in creation order.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn nhis(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<NhiFilter>,
    ) -> ApiResult<List<Nhi>> {
        let filter = filter.unwrap_or_default();
        let filter = NodeFilter {
            kind: filter.kind.map(|k| graph_model::NhiKind::from(k).as_str()),
            environment: filter.environment.map(Into::into),
            status: filter.status.map(Into::into),
            owner: inputs::owner(filter.owner).map_err(ApiError::from)?,
            name_contains: search(filter.name_contains).map_err(ApiError::from)?,
            stale_before: match filter.stale_days {
                Some(d) => Some(
                    chrono::Utc::now() - chrono::Duration::days(i64::from(crate::limits::days("filter.staleDays", d)?)),
                ),
                None => None,
            },
            orphaned: filter.orphaned,
            over_privileged: filter.over_privileged,
            ..Default::default()
        };
        list(ctx, filter, first, after, Nhi).await
    }

    /// Secrets (metadata only), in creation order.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn secrets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SecretFilter>,
    ) -> ApiResult<List<Secret>> {
        let filter = filter.unwrap_or_default();
        let filter = NodeFilter {
            kind: filter.kind.map(|k| graph_model::SecretKind::from(k).as_str()),
            owner: inputs::owner(filter.owner).map_err(ApiError::from)?,
            name_contains: search(filter.name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, first, after, Secret).await
    }

    /// Systems, in creation order.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn systems(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SystemFilter>,
    ) -> ApiResult<List<System>> {
        let filter = filter.unwrap_or_default();
        let filter = NodeFilter {
            kind: filter.kind.map(|k| graph_model::SystemKind::from(k).as_str()),
            environment: filter.environment.map(Into::into),
            criticality: filter.criticality.map(Into::into),
            owner: inputs::owner(filter.owner).map_err(ApiError::from)?,
            name_contains: search(filter.name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, first, after, System).await
    }

    /// People, in creation order.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn people(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PersonFilter>,
    ) -> ApiResult<List<Person>> {
        let filter = filter.unwrap_or_default();
        let filter = NodeFilter {
            role: filter.role.map(Into::into),
            active: filter.active,
            name_contains: search(filter.name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, first, after, Person).await
    }

    /// Teams, in creation order.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn teams(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<TeamFilter>,
    ) -> ApiResult<List<Team>> {
        let filter = NodeFilter {
            name_contains: search(filter.unwrap_or_default().name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, first, after, Team).await
    }
}

async fn list<T, N>(
    ctx: &Context<'_>,
    filter: NodeFilter,
    first: Option<i32>,
    after: Option<String>,
    wrap: fn(T) -> N,
) -> ApiResult<List<N>>
where
    T: graph_model::store::NodeRecord,
    N: async_graphql::OutputType,
{
    let had_cursor = after.is_some();
    let page = page_request(first, after)?;
    let store = ctx.data::<Store>()?;
    let found = store.list::<T>(&filter, &page).await.map_err(ApiError::from)?;
    Ok(connection(found, had_cursor, |t: &T| t.id().clone(), wrap))
}
