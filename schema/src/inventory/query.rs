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

    /// Nodes whose name starts with `prefix`, in any case, for a search box: NHIs,
    /// secrets, systems, people and teams (or only `kinds`), by name, at most `first`
    /// (20 unless given, up to 100).
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        prefix: String,
        kinds: Option<Vec<SearchKind>>,
        first: Option<i32>,
    ) -> ApiResult<Vec<Node>> {
        let prefix = lookup_text("prefix", &prefix)?;
        let first = first.unwrap_or(20);
        if !(0..=100).contains(&first) {
            return Err(ApiError::bad_input("first", "must be between 0 and 100"));
        }
        let tables: Vec<graph_model::Table> =
            kinds.unwrap_or_else(|| SearchKind::ALL.to_vec()).into_iter().map(SearchKind::table).collect();
        let found = ctx.data::<Store>()?.search_names(prefix, &tables, first as usize).await?;
        Ok(found.into_iter().map(Node::from).collect())
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
    let page = page_request(ctx, first, after)?;
    let store = ctx.data::<Store>()?;
    let found = store.list::<T>(&filter, &page).await.map_err(ApiError::from)?;
    Ok(connection(found, had_cursor, |t: &T| t.id().clone(), wrap))
}

/// A lookup key: trimmed, not empty, at most 200 characters.
fn lookup_text<'a>(argument: &str, text: &'a str) -> ApiResult<&'a str> {
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
    const ALL: [SearchKind; 5] =
        [SearchKind::Nhi, SearchKind::Secret, SearchKind::System, SearchKind::Person, SearchKind::Team];

    fn table(self) -> graph_model::Table {
        match self {
            SearchKind::Nhi => graph_model::Table::Nhi,
            SearchKind::Secret => graph_model::Table::Secret,
            SearchKind::System => graph_model::Table::System,
            SearchKind::Person => graph_model::Table::Person,
            SearchKind::Team => graph_model::Table::Team,
        }
    }
}
