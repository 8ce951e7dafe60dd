//! What the governance pipeline shows: the access feeds reported that no decision
//! stands behind, and how fresh each feed is.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model::domain::feeds::{Freshness, PAUSED_WHEN_STALE};
use graph_model::store::{FeedStatus, Store};

use crate::error::{ApiError, ApiResult};
use crate::node::Relation;
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

/// A feed source: what is recorded of its runs, and whether its data may drive
/// automation now.
#[derive(SimpleObject)]
pub struct Feed {
    /// The `source` its documents name.
    pub source: String,
    /// When its last run committed.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Runs committed.
    pub runs: u64,
    /// Its last run held the whole of what it sees (`"complete": true`).
    pub last_run_complete: bool,
    /// The configured window (`feeds.<source>.freshness_hours`); none: never stale.
    pub freshness_hours: Option<i64>,
    /// Past its window, or never run while it has one.
    pub stale: bool,
    /// When it became stale (absent when it is fresh, or has never run).
    pub stale_since: Option<DateTime<Utc>>,
    /// When it goes stale without another run.
    pub fresh_until: Option<DateTime<Utc>>,
    /// The automation waiting for it while it is stale.
    pub paused: Vec<String>,
}

impl From<FeedStatus> for Feed {
    fn from(f: FeedStatus) -> Feed {
        let (stale, stale_since, fresh_until) = match f.freshness {
            Freshness::Stale { since } => (true, since, None),
            Freshness::Fresh { until } => (false, None, Some(until)),
            Freshness::Unwatched => (false, None, None),
        };
        Feed {
            source: f.state.source,
            last_run_at: f.state.last_run_at,
            runs: f.state.runs,
            last_run_complete: f.state.last_run_complete,
            freshness_hours: f.freshness_hours,
            stale,
            stale_since,
            fresh_until,
            paused: if stale { PAUSED_WHEN_STALE.iter().map(|s| (*s).to_owned()).collect() } else { vec![] },
        }
    }
}

#[Object]
impl GovernanceQuery {
    /// Every feed source that has run or has a freshness window, by name: a stale one
    /// pauses the automation its data drives until a run repairs it.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn feeds(&self, ctx: &Context<'_>) -> ApiResult<Vec<Feed>> {
        let feeds = ctx.data::<Store>()?.feeds(Utc::now()).await.map_err(ApiError::from)?;
        Ok(feeds.into_iter().map(Feed::from).collect())
    }

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
            return Err(ApiError::bad_input("first", "between 0 and 1000"));
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
