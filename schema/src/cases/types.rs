//! GraphQL objects of the case record: alerts, cases, tasks, evidence, the timeline.
//! Each wraps a domain value; people, subjects and case parts come through batch loaders.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::{InventoryNode, NodeId};

use super::loaders::{Part, Parts, Record, part, records};
use crate::enums::*;
use crate::error::ApiResult;
use crate::inventory::loaders::nodes;
use crate::inventory::types::{Owned, Owner, Person, System, owned, owners_of};
use crate::principal::{READ_CASES, READ_EVIDENCE, RoleGuard};
pub use crate::records::{Alert, Case, Evidence};
use crate::records::{Decision, Request};
pub(crate) use crate::records::{gid, people, person, refs};

#[Object]
impl Alert {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn rule(&self) -> &str {
        &self.0.rule
    }
    async fn severity(&self) -> Severity {
        self.0.severity.into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// Repeats of the same key are counted on this alert rather than filed anew.
    async fn dedupe_key(&self) -> &str {
        &self.0.dedupe_key
    }
    async fn status(&self) -> AlertStatus {
        self.0.status.into()
    }
    async fn detected_at(&self) -> DateTime<Utc> {
        self.0.detected_at
    }
    async fn first_seen(&self) -> DateTime<Utc> {
        self.0.first_seen
    }
    async fn last_seen(&self) -> DateTime<Utc> {
        self.0.last_seen
    }
    /// How many times the scanners reported it.
    async fn count(&self) -> u64 {
        self.0.count
    }
    /// The NHI or secret it is about; null when it could not be found.
    async fn subject(&self, ctx: &Context<'_>) -> ApiResult<Option<Owned>> {
        match &self.0.subject {
            Some(s) => Ok(owned(nodes(ctx, [s.clone()]).await?).pop()),
            None => Ok(None),
        }
    }
    /// How the scanner named the identity (id, external id or fingerprint).
    async fn subject_ref(&self) -> &str {
        &self.0.subject_ref
    }
    /// True when no NHI or secret matched: the alert is kept, not lost.
    async fn unknown_subject(&self) -> bool {
        self.0.unknown_subject
    }
    /// The subject's owners when the alert arrived.
    async fn owners(&self, ctx: &Context<'_>) -> ApiResult<Vec<Owner>> {
        Ok(owners_of(nodes(ctx, self.0.enrichment.owners.clone()).await?))
    }
    /// The systems the subject reached when the alert arrived.
    async fn reaches(&self, ctx: &Context<'_>) -> ApiResult<Vec<System>> {
        Ok(nodes(ctx, self.0.enrichment.systems.clone())
            .await?
            .into_iter()
            .filter_map(|n| match n {
                InventoryNode::System(s) => Some(System(s)),
                _ => None,
            })
            .collect())
    }
    /// When the subject was last used, as known when the alert arrived.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.enrichment.last_used_at
    }
    /// The case it was promoted into (not shown to scanners pushing alerts).
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn case(&self, ctx: &Context<'_>) -> ApiResult<Option<Case>> {
        Ok(super::loaders::case(ctx, self.0.case.as_ref()).await?.map(Case))
    }
    /// Framework references (NIST CSF 2.0, OWASP NHI Top 10).
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
    async fn dismissed_reason(&self) -> Option<&str> {
        self.0.dismissed_reason.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[Object]
impl Case {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn status(&self) -> CaseStatus {
        self.0.status.into()
    }
    async fn severity(&self) -> Severity {
        self.0.severity.into()
    }
    /// The NHIs, secrets and systems the case concerns.
    async fn subjects(&self, ctx: &Context<'_>) -> ApiResult<Vec<Owned>> {
        Ok(owned(nodes(ctx, self.0.subjects.clone()).await?))
    }
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.assignee.as_ref()).await
    }
    async fn opened_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.opened_by)).await
    }
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }
    /// When the case is due, from its severity's SLA.
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    /// Open past its due time.
    async fn overdue(&self) -> bool {
        self.0.overdue_at(Utc::now())
    }
    async fn status_changed_at(&self) -> DateTime<Utc> {
        self.0.status_changed_at
    }
    async fn escalated_to(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.escalated_to.as_ref()).await
    }
    async fn escalation_reason(&self) -> Option<&str> {
        self.0.escalation_reason.as_deref()
    }
    async fn resolution(&self) -> Option<Resolution> {
        self.0.resolution.map(Into::into)
    }
    async fn summary(&self) -> Option<&str> {
        self.0.summary.as_deref()
    }
    /// Whether the risk itself was remediated (recorded at closing).
    async fn risk_remediated(&self) -> Option<bool> {
        self.0.risk_remediated
    }
    /// Whether the audit finding is closed (recorded at closing, separately from the risk).
    async fn finding_closed(&self) -> Option<bool> {
        self.0.finding_closed
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    async fn closed_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.closed_by.as_ref()).await
    }
    async fn reopen_reason(&self) -> Option<&str> {
        self.0.reopen_reason.as_deref()
    }
    /// Framework references (NIST CSF 2.0, OWASP NHI Top 10).
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The alerts grouped into this case.
    async fn alerts(&self, ctx: &Context<'_>) -> ApiResult<Vec<Alert>> {
        Ok(match part(ctx, Part::Alerts, &self.0.id).await? {
            Some(Parts::Alerts(v)) => v.into_iter().map(Alert).collect(),
            _ => vec![],
        })
    }
    async fn tasks(&self, ctx: &Context<'_>) -> ApiResult<Vec<Task>> {
        Ok(match part(ctx, Part::Tasks, &self.0.id).await? {
            Some(Parts::Tasks(v)) => v.into_iter().map(Task).collect(),
            _ => vec![],
        })
    }
    /// The evidence attached, superseded exhibits included (see `supersededBy`).
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn evidence(&self, ctx: &Context<'_>) -> ApiResult<Vec<Evidence>> {
        Ok(match part(ctx, Part::Evidence, &self.0.id).await? {
            Some(Parts::Evidence(v)) => v.into_iter().map(Evidence).collect(),
            _ => vec![],
        })
    }
    /// Requests filed within the case.
    async fn requests(&self, ctx: &Context<'_>) -> ApiResult<Vec<Request>> {
        Ok(match part(ctx, Part::Requests, &self.0.id).await? {
            Some(Parts::Requests(v)) => v.into_iter().map(Request).collect(),
            _ => vec![],
        })
    }
    /// Every decision taken on the case, in chain order.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn decisions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Decision>> {
        let store = ctx.data::<graph_model::store::Store>()?;
        let filter = graph_model::store::DecisionFilter { case: Some(self.0.id.clone()), ..Default::default() };
        let page = graph_model::store::PageRequest { first: 1000, after: None, count: false, ..Default::default() };
        let found = store.decisions(&filter, &page).await.map_err(crate::ApiError::from)?;
        Ok(found.items.into_iter().map(Decision).collect())
    }
    /// What an NHI or secret of the case reaches now, what it reached when the case
    /// opened, and what changed in between. A read: `recordTraversal` keeps a walk on
    /// the case.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn blast_radius(
        &self,
        ctx: &Context<'_>,
        from: ID,
        #[graphql(default = 3)] max_hops: u32,
    ) -> ApiResult<CaseBlastRadius> {
        use crate::graph::query::reach;
        use graph_model::graph::Direction::Forward;
        let tables = crate::graph::query::BLAST_ORIGINS;
        let then = reach(ctx, &from, "from", &tables, Forward, max_hops, Some(self.0.opened_at)).await?;
        let now = reach(ctx, &from, "from", &tables, Forward, max_hops, None).await?;
        let ids = |r: &crate::graph::types::Reach| -> std::collections::BTreeSet<String> {
            r.traversal.reached.iter().map(|n| n.node.to_string()).collect()
        };
        let (a, b) = (ids(&then), ids(&now));
        Ok(CaseBlastRadius {
            added: b.difference(&a).cloned().map(ID).collect(),
            removed: a.difference(&b).cloned().map(ID).collect(),
            at_opening: then,
            now,
        })
    }
    /// The traversals investigators ran for this case.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn traversals(&self, ctx: &Context<'_>) -> ApiResult<Vec<CaseTraversal>> {
        let store = ctx.data::<graph_model::store::Store>()?;
        let found = store.traversals_of(&self.0.id).await.map_err(crate::ApiError::from)?;
        let actors = people(ctx, found.iter().map(|t| t.actor.clone())).await?;
        Ok(found
            .into_iter()
            .map(|t| CaseTraversal {
                actor: actors.iter().find(|p| p.0.id == t.actor).map(|p| p.0.email.clone()).unwrap_or_default(),
                query: t.query,
                origin: gid(&t.origin),
                target: t.target.as_ref().map(gid),
                max_hops: t.max_hops,
                as_of: t.as_of,
                reached: t.reached,
                truncated: t.truncated,
                at: t.at,
            })
            .collect())
    }
    /// The case's history, oldest first: decisions, evidence, tasks and traversals, each
    /// attributed.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn timeline(&self, ctx: &Context<'_>) -> ApiResult<Vec<TimelineEntry>> {
        let store = ctx.data::<graph_model::store::Store>()?;
        let entries = store.timeline(&self.0.id).await.map_err(crate::ApiError::from)?;
        let actors = people(ctx, entries.iter().map(|e| e.actor.clone())).await?;
        Ok(entries
            .into_iter()
            .map(|e| TimelineEntry {
                actor: actors.iter().find(|p| p.0.id == e.actor).map(|p| p.0.email.clone()).unwrap_or_default(),
                at: e.at,
                event: e.event.to_owned(),
                record: gid(&e.record),
                summary: e.summary,
            })
            .collect())
    }
}

/// A case's blast radius at its opening and now.
#[derive(SimpleObject)]
pub struct CaseBlastRadius {
    pub at_opening: crate::graph::types::Reach,
    pub now: crate::graph::types::Reach,
    /// Reached now but not when the case opened.
    pub added: Vec<ID>,
    /// Reached when the case opened but not now.
    pub removed: Vec<ID>,
}

/// A traversal run for a case.
#[derive(SimpleObject)]
pub struct CaseTraversal {
    /// The e-mail of who ran it.
    pub actor: String,
    /// blast_radius, who_can_reach or path.
    pub query: String,
    pub origin: ID,
    pub target: Option<ID>,
    pub max_hops: u32,
    pub as_of: Option<DateTime<Utc>>,
    /// Nodes reached (for a path, its length).
    pub reached: u64,
    pub truncated: bool,
    pub at: DateTime<Utc>,
}

/// One line of a case's history.
#[derive(SimpleObject)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// The e-mail of the person who acted.
    pub actor: String,
    /// decision, evidence, task_added, task_done or task_cancelled.
    pub event: String,
    /// The decision, evidence or task the line is about.
    pub record: ID,
    pub summary: String,
}

/// Work inside a case.
pub struct Task(pub gm::Task);

#[Object]
impl Task {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn case(&self, ctx: &Context<'_>) -> ApiResult<Option<Case>> {
        Ok(super::loaders::case(ctx, Some(&self.0.case)).await?.map(Case))
    }
    async fn kind(&self) -> TaskKind {
        self.0.kind.into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.assignee.as_ref()).await
    }
    /// A mandatory task must be done or cancelled before the case can close.
    async fn mandatory(&self) -> bool {
        self.0.mandatory
    }
    async fn status(&self) -> TaskStatus {
        self.0.status.into()
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.created_by)).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn completed_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.completed_by.as_ref()).await
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}

#[Object]
impl Evidence {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn case(&self, ctx: &Context<'_>) -> ApiResult<Option<Case>> {
        Ok(super::loaders::case(ctx, Some(&self.0.case)).await?.map(Case))
    }
    async fn kind(&self) -> EvidenceKind {
        self.0.kind.into()
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// SHA-256 of the content, computed by the server when it was attached.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Does the content still match its digest?
    async fn intact(&self) -> bool {
        self.0.intact()
    }
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn collected_at(&self) -> DateTime<Utc> {
        self.0.collected_at
    }
    async fn collected_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.collected_by)).await
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    async fn supersedes(&self, ctx: &Context<'_>) -> ApiResult<Option<Evidence>> {
        evidence_one(ctx, self.0.supersedes.as_ref()).await
    }
    async fn supersede_reason(&self) -> Option<&str> {
        self.0.supersede_reason.as_deref()
    }
    async fn superseded_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Evidence>> {
        evidence_one(ctx, self.0.superseded_by.as_ref()).await
    }
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
}

async fn evidence_one(ctx: &Context<'_>, id: Option<&NodeId>) -> ApiResult<Option<Evidence>> {
    let Some(id) = id else { return Ok(None) };
    Ok(records(ctx, [id.clone()]).await?.into_iter().find_map(|r| match r {
        Record::Evidence(e) => Some(Evidence(e)),
        _ => None,
    }))
}
