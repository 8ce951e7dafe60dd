//! Reading controls, their results (now or at a past time) and findings.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use graph_model::store::{FindingFilter, Store};

use super::types::{Control, ControlResult, ControlResultPage, Finding};
use crate::cases::mutation::node_id;
use crate::cases::types::gid;
use crate::enums::{ControlStatus, FindingStatus};
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_CASES, RoleGuard, principal};

#[derive(Default)]
pub struct ComplianceQuery;

/// Which findings to list.
#[derive(InputObject, Default)]
pub struct FindingFilterInput {
    pub control_key: Option<String>,
    pub status: Option<FindingStatus>,
    pub subject_id: Option<ID>,
}

/// The most results one page holds.
const MAX_PAGE: usize = 1000;

#[Object]
impl ComplianceQuery {
    /// The latest version of every control, by key.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn controls(&self, ctx: &Context<'_>) -> ApiResult<Vec<Control>> {
        Ok(ctx.data::<Store>()?.controls().await.map_err(ApiError::from)?.into_iter().map(Control).collect())
    }

    /// One control: its latest version, or the version named.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn control(&self, ctx: &Context<'_>, key: String, version: Option<u32>) -> ApiResult<Option<Control>> {
        let versions = ctx.data::<Store>()?.control_versions(&key).await.map_err(ApiError::from)?;
        Ok(versions.into_iter().find(|c| version.is_none_or(|v| v == c.version)).map(Control))
    }

    /// What passed and failed under a control, in subject order: now, or as it stood
    /// at `asOf`. NOT_APPLICABLE subjects (judged once, no longer reached) are listed
    /// only when asked for by `status`.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn control_results(
        &self,
        ctx: &Context<'_>,
        control_key: String,
        status: Option<ControlStatus>,
        as_of: Option<DateTime<Utc>>,
        #[graphql(default = 100)] first: usize,
        after: Option<ID>,
    ) -> ApiResult<ControlResultPage> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input("first", format!("between 1 and {MAX_PAGE}")));
        }
        let after = after.map(|a| node_id(&a, "after")).transpose()?;
        let store = ctx.data::<Store>()?;
        let mut rows =
            store.control_results(&control_key, status.map(Into::into), as_of).await.map_err(ApiError::from)?;
        if status.is_none() {
            rows.retain(|r| r.status != graph_model::domain::control::ControlStatus::NotApplicable);
        }
        let total_count = rows.len() as u64;
        let start = after.map_or(0, |a| rows.partition_point(|r| r.subject <= a));
        let page: Vec<_> = rows.into_iter().skip(start).take(first + 1).collect();
        let more = page.len() > first;
        let results: Vec<ControlResult> = page.into_iter().take(first).map(ControlResult).collect();
        let end_cursor = if more { results.last().map(|r| gid(&r.0.subject)) } else { None };
        Ok(ControlResultPage { total_count, results, end_cursor })
    }

    /// Findings, newest first.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn findings(
        &self,
        ctx: &Context<'_>,
        filter: Option<FindingFilterInput>,
        #[graphql(default = 100)] first: usize,
    ) -> ApiResult<Vec<Finding>> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input("first", format!("between 1 and {MAX_PAGE}")));
        }
        let f = filter.unwrap_or_default();
        let filter = FindingFilter {
            control: f.control_key,
            status: f.status.map(Into::into),
            subject: f.subject_id.map(|s| node_id(&s, "filter.subjectId")).transpose()?,
            owned_by: None,
        };
        let found = ctx.data::<Store>()?.findings(&filter, first).await.map_err(ApiError::from)?;
        Ok(found.into_iter().map(Finding).collect())
    }

    /// Findings on what the caller owns, directly or through a team they are a member
    /// of, newest first: open ones unless `status` says otherwise. A failing control
    /// reaches its subject's owners here (and as a `queueEvents` event when it fails).
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn my_findings(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(FindingStatus::Open)")] status: Option<FindingStatus>,
        #[graphql(default = 100)] first: usize,
    ) -> ApiResult<Vec<Finding>> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input("first", format!("between 1 and {MAX_PAGE}")));
        }
        let filter = FindingFilter {
            status: status.map(Into::into),
            owned_by: Some(principal(ctx)?.id().clone()),
            ..Default::default()
        };
        let found = ctx.data::<Store>()?.findings(&filter, first).await.map_err(ApiError::from)?;
        Ok(found.into_iter().map(Finding).collect())
    }

    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn finding(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Finding>> {
        let id = node_id(&id, "id")?;
        super::types::finding(ctx, Some(&id)).await
    }
}
