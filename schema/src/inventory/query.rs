//! Inventory queries: `node`, the lists an inventory screen pages through, and `me`.

use async_graphql::{Context, Object};
use graph_model::store::{NodeFilter, Store};

use super::inputs::{self, *};
use super::types::*;
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_INVENTORY, RoleGuard, principal};
use crate::relay::{InventoryOrder, List, ListOrder, NhiOrder, Paging, connection, page_request};

#[derive(Default)]
pub struct InventoryQuery;

#[Object]
impl InventoryQuery {
    /// The secret whose value has this digest: hex SHA-256 or SHA-1 as scanners report
    /// it, with or without its algorithm (`sha256:<hex>`), or OpenSSH's
    /// `SHA256:<base64>`. Null when no secret is stored under it.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn secret_by_fingerprint(&self, ctx: &Context<'_>, fingerprint: String) -> ApiResult<Option<Secret>> {
        let forms = graph_model::Fingerprint::lookup_forms(&fingerprint)?;
        Ok(ctx.data::<Store>()?.secret_by_fingerprint(&forms).await?.map(Secret))
    }

    /// The NHI its provider knows by `externalId` (both as the inventory recorded them).
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn nhi_by_external_id(
        &self,
        ctx: &Context<'_>,
        provider: String,
        external_id: String,
    ) -> ApiResult<Option<Nhi>> {
        let provider = lookup_text("provider", &provider)?;
        let external_id = lookup_text("externalId", &external_id)?;
        Ok(ctx.data::<Store>()?.nhi_by_external_id(provider, external_id).await?.map(Nhi))
    }

    /// The person with this e-mail address, in any case.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn person_by_email(&self, ctx: &Context<'_>, email: String) -> ApiResult<Option<Person>> {
        let email = graph_model::Email::parse(&email)?;
        Ok(ctx.data::<Store>()?.person_by_email(&email).await?.map(Person))
    }

    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Person> {
        Ok(Person(principal(ctx)?.person.clone()))
    }

    /// Non-human identities, in creation order or as `orderBy` says.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn nhis(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<NhiOrder>,
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
        list(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }, Nhi).await
    }

    /// Secrets (metadata only), in creation order or as `orderBy` says.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn secrets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<InventoryOrder>,
        filter: Option<SecretFilter>,
    ) -> ApiResult<List<Secret>> {
        let filter = filter.unwrap_or_default();
        let filter = NodeFilter {
            kind: filter.kind.map(|k| graph_model::SecretKind::from(k).as_str()),
            owner: inputs::owner(filter.owner).map_err(ApiError::from)?,
            name_contains: search(filter.name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }, Secret).await
    }

    /// Systems, in creation order or as `orderBy` says.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn systems(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<InventoryOrder>,
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
        list(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }, System).await
    }

    /// People, in creation order or as `orderBy` says.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn people(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<InventoryOrder>,
        filter: Option<PersonFilter>,
    ) -> ApiResult<List<Person>> {
        let filter = filter.unwrap_or_default();
        let filter = NodeFilter {
            role: filter.role.map(Into::into),
            active: filter.active,
            name_contains: search(filter.name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }, Person).await
    }

    /// Teams, in creation order or as `orderBy` says.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn teams(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<InventoryOrder>,
        filter: Option<TeamFilter>,
    ) -> ApiResult<List<Team>> {
        let filter = NodeFilter {
            name_contains: search(filter.unwrap_or_default().name_contains).map_err(ApiError::from)?,
            ..Default::default()
        };
        list(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }, Team).await
    }
}

async fn list<T, N>(ctx: &Context<'_>, filter: NodeFilter, paging: Paging, wrap: fn(T) -> N) -> ApiResult<List<N>>
where
    T: graph_model::store::NodeRecord,
    N: async_graphql::OutputType,
{
    let page = page_request(ctx, paging)?;
    let store = ctx.data::<Store>()?;
    let found = store.list::<T>(&filter, &page).await.map_err(ApiError::from)?;
    Ok(connection(found, wrap))
}
