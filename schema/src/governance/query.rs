//! What the governance pipeline shows: the access feeds reported that no decision
//! stands behind.

use async_graphql::{Context, Object, SimpleObject};
use graph_model::store::Store;

use crate::error::{ApiError, ApiResult};
use crate::inventory::types::Relation;
use crate::principal::{READ_CASES, RoleGuard};

#[derive(Default)]
pub struct GovernanceQuery;

/// Open edges carrying governed facts (access, delegation, secrets held, ownership,
/// membership) that a feed reported and no decision stands behind.
#[derive(SimpleObject)]
pub struct UngovernedAccess {
    /// How many.
    pub total: u64,
    /// SHA-256 of their sorted ids, one per line: what `adoptBaseline` names to adopt
    /// exactly these.
    pub digest: String,
    /// The first of them, in id order.
    pub edges: Vec<Relation>,
}

#[Object]
impl GovernanceQuery {
    /// The ungoverned edges of one feed (`source`, as its documents name it), or with
    /// no source those opened without one.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn ungoverned_access(
        &self,
        ctx: &Context<'_>,
        source: Option<String>,
        #[graphql(default = 100)] first: i32,
    ) -> ApiResult<UngovernedAccess> {
        if !(0..=1000).contains(&first) {
            return Err(ApiError::bad_input("first", "between 0 and 1000").into());
        }
        let found =
            ctx.data::<Store>()?.ungoverned_access(source.as_deref(), first as usize).await.map_err(ApiError::from)?;
        Ok(UngovernedAccess {
            total: found.total,
            digest: found.digest,
            edges: found.edges.into_iter().map(Relation).collect(),
        })
    }
}
