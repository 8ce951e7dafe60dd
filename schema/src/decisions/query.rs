//! Decision queries: requests, exceptions, policies, decisions and their chain.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use graph_model::store::{DecisionFilter, RequestFilter, Store};

use super::types::*;
use crate::cases::mutation::node_id;
use crate::cases::query::reference;
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::principal::{ADMINISTER, READ_CASES, READ_EVIDENCE, RoleGuard};
use crate::relay::{CreatedOrder, ExceptionOrder, List, ListOrder, Paging, connection, page_request};

#[derive(InputObject, Default)]
pub struct RequestFilterInput {
    pub status: Option<RequestStatus>,
    pub kind: Option<RequestKind>,
    pub requester_id: Option<ID>,
    pub subject_id: Option<ID>,
    pub case_id: Option<ID>,
    /// Only approved requests whose approval has lapsed.
    #[graphql(default = false)]
    pub revalidation_due: bool,
    /// Only emergency access still unapproved past its window.
    #[graphql(default = false)]
    pub post_approval_overdue: bool,
}

#[derive(InputObject, Default)]
pub struct DecisionFilterInput {
    pub subject_id: Option<ID>,
    pub case_id: Option<ID>,
    pub actor_id: Option<ID>,
    pub kind: Option<DecisionKind>,
    pub outcome: Option<Outcome>,
    /// A framework reference (GV.OC-01, NHI-03...).
    pub reference: Option<String>,
    /// Decided at or after.
    pub from: Option<DateTime<Utc>>,
    /// Decided before.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct DecisionQuery;

#[Object]
impl DecisionQuery {
    /// Requests, oldest first unless `orderBy` says otherwise.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<CreatedOrder>,
        filter: Option<RequestFilterInput>,
    ) -> ApiResult<List<Request>> {
        let f = filter.unwrap_or_default();
        let filter = RequestFilter {
            status: f.status.map(Into::into),
            kind: f.kind.map(Into::into),
            requester: f.requester_id.map(|i| node_id(&i, "requesterId")).transpose()?,
            subject: f.subject_id.map(|i| node_id(&i, "subjectId")).transpose()?,
            case: f.case_id.map(|i| node_id(&i, "caseId")).transpose()?,
            revalidation_due: f.revalidation_due,
            post_approval_overdue: f.post_approval_overdue,
        };
        let page = page_request(ctx, Paging { first, after, last, before, order: ListOrder::or_default(order_by) })?;
        let found = ctx.data::<Store>()?.requests(&filter, &page).await.map_err(ApiError::from)?;
        Ok(connection(found, Request))
    }

    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn request(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Request>> {
        let id = node_id(&id, "id")?;
        Ok(ctx.data::<Store>()?.requests_by_id(&[id]).await.map_err(ApiError::from)?.pop().map(Request))
    }

    /// Exceptions, optionally only those due for revalidation (expired or past review).
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn exceptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<ExceptionOrder>,
        subject_id: Option<ID>,
        #[graphql(default = false)] revalidation_due: bool,
    ) -> ApiResult<List<Exception>> {
        let subject = subject_id.map(|i| node_id(&i, "subjectId")).transpose()?;
        let page = page_request(ctx, Paging { first, after, last, before, order: ListOrder::or_default(order_by) })?;
        let found =
            ctx.data::<Store>()?.exceptions(subject.as_ref(), revalidation_due, &page).await.map_err(ApiError::from)?;
        Ok(connection(found, Exception))
    }

    /// The policy in force: the latest published version.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn policy(&self, ctx: &Context<'_>) -> ApiResult<Policy> {
        Ok(Policy(ctx.data::<Store>()?.current_policy().await.map_err(ApiError::from)?))
    }

    /// Every policy version, newest first.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn policies(&self, ctx: &Context<'_>) -> ApiResult<Vec<Policy>> {
        Ok(ctx.data::<Store>()?.policies().await.map_err(ApiError::from)?.into_iter().map(Policy).collect())
    }

    /// Decision records in chain order.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn decisions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<CreatedOrder>,
        filter: Option<DecisionFilterInput>,
    ) -> ApiResult<List<Decision>> {
        let filter = decision_filter(filter)?;
        let page = page_request(ctx, Paging { first, after, last, before, order: ListOrder::or_default(order_by) })?;
        let found = ctx.data::<Store>()?.decisions(&filter, &page).await.map_err(ApiError::from)?;
        Ok(connection(found, Decision))
    }

    /// Every decision the filter matches as CSV (RFC 4180, a header row), in chain order,
    /// for spreadsheets: seq, time, kind, outcome, actor, subject, case, rationale, policy
    /// version and digest, violated rule, references, the chain hashes, and the actor's
    /// e-mail and name, the subject's name and the case's title. Cells that start like
    /// a formula get a leading `'`.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn decisions_csv(&self, ctx: &Context<'_>, filter: Option<DecisionFilterInput>) -> ApiResult<String> {
        let filter = decision_filter(filter)?;
        Ok(ctx.data::<Store>()?.decisions_csv(&filter).await.map_err(ApiError::from)?)
    }

    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn decision(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Decision>> {
        let id = node_id(&id, "id")?;
        Ok(ctx.data::<Store>()?.decisions_by_id(&[id]).await.map_err(ApiError::from)?.pop().map(Decision))
    }

    /// Every decision about an NHI, secret or system: on requests for it, cases that
    /// concern it and alerts about it, in chain order. Who approved access to it, when,
    /// under which policy version, on what evidence.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn decision_trail(&self, ctx: &Context<'_>, subject_id: ID) -> ApiResult<Vec<Decision>> {
        let id = node_id(&subject_id, "subjectId")?;
        Ok(ctx.data::<Store>()?.decisions_about(&id).await.map_err(ApiError::from)?.into_iter().map(Decision).collect())
    }

    /// Recompute the decision chain and report the first broken link.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn verify_decision_chain(&self, ctx: &Context<'_>) -> ApiResult<ChainReport> {
        Ok(ctx.data::<Store>()?.verify_decision_chain().await.map_err(ApiError::from)?.into())
    }

    /// API tokens of machine principals (never their secrets).
    #[graphql(guard = "RoleGuard(ADMINISTER)")]
    async fn api_tokens(&self, ctx: &Context<'_>) -> ApiResult<Vec<ApiToken>> {
        Ok(ctx.data::<Store>()?.api_tokens().await.map_err(ApiError::from)?.into_iter().map(ApiToken).collect())
    }
}

fn decision_filter(filter: Option<DecisionFilterInput>) -> Result<DecisionFilter, ApiError> {
    let f = filter.unwrap_or_default();
    Ok(DecisionFilter {
        subject: f.subject_id.map(|i| node_id(&i, "subjectId")).transpose()?,
        case: f.case_id.map(|i| node_id(&i, "caseId")).transpose()?,
        actor: f.actor_id.map(|i| node_id(&i, "actorId")).transpose()?,
        kind: f.kind.map(Into::into),
        outcome: f.outcome.map(Into::into),
        reference: reference(f.reference)?,
        from: f.from,
        to: f.to,
    })
}
