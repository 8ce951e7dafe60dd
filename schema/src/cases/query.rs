//! Case queries: alerts, cases (with overdue and queue views), evidence by reference
//! and time window.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model::store::{AlertFilter, CaseFilter, EvidenceFilter, Store};

use super::mutation::{label, node_id};
use super::types::{Alert, Case, Evidence};
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_CASES, READ_EVIDENCE, RoleGuard, principal};
use crate::relay::{AlertOrder, CaseOrder, CreatedOrder, List, ListOrder, Paging, connection, page_request};

#[derive(InputObject, Default)]
pub struct AlertFilterInput {
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
    pub subject_id: Option<ID>,
    /// Only alerts whose identity could not be found (or only those that were).
    pub unknown_subject: Option<bool>,
    pub source: Option<String>,
}

#[derive(InputObject, Default)]
pub struct CaseFilterInput {
    pub status: Option<CaseStatus>,
    pub severity: Option<Severity>,
    pub assignee_id: Option<ID>,
    /// True: every status but CLOSED; false: only CLOSED.
    pub open: Option<bool>,
    /// Only open cases past their due time.
    #[graphql(default = false)]
    pub overdue: bool,
    /// A framework reference (GV.OC-01, NHI-03...).
    pub reference: Option<String>,
    /// Cases concerning this NHI, secret or system.
    pub subject_id: Option<ID>,
}

#[derive(InputObject, Default)]
pub struct EvidenceFilterInput {
    pub case_id: Option<ID>,
    pub kind: Option<EvidenceKind>,
    /// Evidence carrying this framework reference, or attached to a case that does.
    pub reference: Option<String>,
    /// Collected at or after.
    pub collected_from: Option<DateTime<Utc>>,
    /// Collected before.
    pub collected_to: Option<DateTime<Utc>>,
}

pub(crate) fn reference(r: Option<String>) -> Result<Option<graph_model::FrameworkRef>, ApiError> {
    Ok(r.map(|r| graph_model::FrameworkRef::parse(&r).map_err(|e| e.at("reference"))).transpose()?)
}

#[derive(Default)]
pub struct CaseQuery;

#[Object]
impl CaseQuery {
    /// Alerts, oldest first unless `orderBy` says otherwise.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<AlertOrder>,
        filter: Option<AlertFilterInput>,
    ) -> ApiResult<List<Alert>> {
        let f = filter.unwrap_or_default();
        let filter = AlertFilter {
            status: f.status.map(Into::into),
            severity: f.severity.map(Into::into),
            subject: f.subject_id.map(|s| node_id(&s, "subjectId")).transpose()?,
            unknown_subject: f.unknown_subject,
            source: f.source.map(|s| label(&s, "source")).transpose()?.map(|l| l.into_inner()),
        };
        let page = page_request(ctx, Paging { first, after, last, before, order: ListOrder::or_default(order_by) })?;
        let found = ctx.data::<Store>()?.alerts(&filter, &page).await.map_err(ApiError::from)?;
        Ok(connection(found, Alert))
    }

    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn alert(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Alert>> {
        let id = node_id(&id, "id")?;
        Ok(ctx.data::<Store>()?.alerts_by_id(&[id]).await.map_err(ApiError::from)?.pop().map(Alert))
    }

    /// Cases, oldest first unless `orderBy` says otherwise.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<CaseOrder>,
        filter: Option<CaseFilterInput>,
    ) -> ApiResult<List<Case>> {
        let f = filter.unwrap_or_default();
        let filter = CaseFilter {
            status: f.status.map(Into::into),
            severity: f.severity.map(Into::into),
            assignee: f.assignee_id.map(|a| node_id(&a, "assigneeId")).transpose()?,
            open: f.open,
            overdue: f.overdue,
            reference: reference(f.reference)?,
            subject: f.subject_id.map(|s| node_id(&s, "subjectId")).transpose()?,
        };
        cases(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }).await
    }

    /// The caller's queue: open cases assigned to them.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn my_queue(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<CaseOrder>,
    ) -> ApiResult<List<Case>> {
        let filter =
            CaseFilter { assignee: Some(principal(ctx)?.id().clone()), open: Some(true), ..Default::default() };
        cases(ctx, filter, Paging { first, after, last, before, order: ListOrder::or_default(order_by) }).await
    }

    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn case(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Case>> {
        let id = node_id(&id, "id")?;
        Ok(ctx.data::<Store>()?.cases_by_id(&[id]).await.map_err(ApiError::from)?.pop().map(Case))
    }

    /// Evidence by case, kind, framework reference and collection window.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    // The arguments are the field's GraphQL arguments: a struct would change the API.
    #[allow(clippy::too_many_arguments)]
    async fn evidence(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        order_by: Option<CreatedOrder>,
        filter: Option<EvidenceFilterInput>,
    ) -> ApiResult<List<Evidence>> {
        let filter = evidence_filter(filter)?;
        let page = page_request(ctx, Paging { first, after, last, before, order: ListOrder::or_default(order_by) })?;
        let found = ctx.data::<Store>()?.evidence(&filter, &page).await.map_err(ApiError::from)?;
        Ok(connection(found, Evidence))
    }

    /// Every piece of evidence the filter matches as CSV (RFC 4180, a header row), oldest
    /// first: what it is, who collected it when, and its SHA-256 (not its content); the
    /// case's title and the collector's e-mail and name last. Cells that start like a
    /// formula get a leading `'`.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn evidence_csv(&self, ctx: &Context<'_>, filter: Option<EvidenceFilterInput>) -> ApiResult<String> {
        let filter = evidence_filter(filter)?;
        Ok(ctx.data::<Store>()?.evidence_csv(&filter).await.map_err(ApiError::from)?)
    }

    /// A case's evidence bundle, as `nhigov export --case` writes it: the case, its
    /// timeline, evidence, decisions with their place in the chain, the policy versions
    /// they used, the traversals made for it, and a manifest of SHA-256 digests. Write
    /// each file's `content` to its `path` and `nhigov verify-bundle` checks it offline.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn evidence_bundle(&self, ctx: &Context<'_>, case_id: ID) -> ApiResult<EvidenceBundle> {
        let case = node_id(&case_id, "caseId")?;
        let files = ctx.data::<Store>()?.evidence_bundle(&case).await.map_err(ApiError::from)?;
        Ok(EvidenceBundle::of(files))
    }
}

/// An evidence bundle: its files and, parsed, its manifest.
#[derive(SimpleObject)]
pub struct EvidenceBundle {
    pub manifest: Json<serde_json::Value>,
    pub files: Vec<BundleFile>,
}

impl EvidenceBundle {
    /// From the store's files, the manifest among them.
    pub(crate) fn of(files: Vec<graph_model::bundle::BundleFile>) -> EvidenceBundle {
        let manifest = files
            .iter()
            .find(|f| f.path == graph_model::bundle::MANIFEST)
            .and_then(|f| serde_json::from_slice(&f.bytes).ok())
            .unwrap_or_default();
        EvidenceBundle {
            manifest: Json(manifest),
            files: files
                .into_iter()
                .map(|f| BundleFile {
                    sha256: graph_model::sha256_hex(&f.bytes),
                    path: f.path,
                    content: String::from_utf8_lossy(&f.bytes).into_owned(),
                })
                .collect(),
        }
    }
}

/// One file of a bundle.
#[derive(SimpleObject)]
pub struct BundleFile {
    /// Its path inside the bundle, such as `evidence/0197....json`.
    pub path: String,
    pub sha256: String,
    /// The file's text (JSON).
    pub content: String,
}

fn evidence_filter(filter: Option<EvidenceFilterInput>) -> Result<EvidenceFilter, ApiError> {
    let f = filter.unwrap_or_default();
    Ok(EvidenceFilter {
        case: f.case_id.map(|c| node_id(&c, "caseId")).transpose()?,
        kind: f.kind.map(Into::into),
        reference: reference(f.reference)?,
        collected_from: f.collected_from,
        collected_to: f.collected_to,
    })
}

async fn cases(ctx: &Context<'_>, filter: CaseFilter, paging: Paging) -> ApiResult<List<Case>> {
    let page = page_request(ctx, paging)?;
    let found = ctx.data::<Store>()?.cases(&filter, &page).await.map_err(ApiError::from)?;
    Ok(connection(found, Case))
}
