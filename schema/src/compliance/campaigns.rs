//! Certification campaigns over GraphQL: an admin starts one, owners answer the review
//! items of what they own, GRC reads the report. Each start, answer and escalation is
//! one decision in the chain.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::InventoryNode;
use graph_model::domain::campaign::{self as campaign, CampaignDraft};
use graph_model::store::{ItemFilter, Store};

use super::mutation::{ControlScopeInput, scope_of};
use super::types::ControlScope;
use crate::cases::mutation::{node_id, text};
use crate::cases::query::EvidenceBundle;
use crate::cases::types::{gid, person};
use crate::decisions::types::{Decision, Request};
use crate::enums::Privilege;
use crate::error::{ApiError, ApiResult};
use crate::governance::mutation::actor;
use crate::inventory::loaders::nodes;
use crate::inventory::types::{Nhi, Person, Team};
use crate::principal::{ADMINISTER, READ_CASES, READ_EVIDENCE, RoleGuard, principal};

/// A reviewer's answer: keep it (CERTIFY), take it away (REVOKE: files a REVOKE_NHI
/// request), or keep less of it (REDUCE: files a REDUCE_PRIVILEGE request).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAnswer {
    Certify,
    Revoke,
    Reduce,
}

impl From<ReviewAnswer> for campaign::ReviewAnswer {
    fn from(a: ReviewAnswer) -> Self {
        match a {
            ReviewAnswer::Certify => campaign::ReviewAnswer::Certify,
            ReviewAnswer::Revoke => campaign::ReviewAnswer::Revoke,
            ReviewAnswer::Reduce => campaign::ReviewAnswer::Reduce,
        }
    }
}

/// Where a review item stands. REVOKE_REQUESTED and REDUCE_REQUESTED: the answer filed
/// its request, which an approver decides.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewItemStatus {
    Pending,
    Certified,
    RevokeRequested,
    ReduceRequested,
}

impl From<campaign::ItemStatus> for ReviewItemStatus {
    fn from(s: campaign::ItemStatus) -> Self {
        match s {
            campaign::ItemStatus::Pending => ReviewItemStatus::Pending,
            campaign::ItemStatus::Certified => ReviewItemStatus::Certified,
            campaign::ItemStatus::RevokeRequested => ReviewItemStatus::RevokeRequested,
            campaign::ItemStatus::ReduceRequested => ReviewItemStatus::ReduceRequested,
        }
    }
}

impl From<ReviewItemStatus> for campaign::ItemStatus {
    fn from(s: ReviewItemStatus) -> Self {
        match s {
            ReviewItemStatus::Pending => campaign::ItemStatus::Pending,
            ReviewItemStatus::Certified => campaign::ItemStatus::Certified,
            ReviewItemStatus::RevokeRequested => campaign::ItemStatus::RevokeRequested,
            ReviewItemStatus::ReduceRequested => campaign::ItemStatus::ReduceRequested,
        }
    }
}

/// A certification campaign.
pub struct Campaign(pub campaign::Campaign);

#[Object]
impl Campaign {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The NHIs it covers (active ones, when it started).
    async fn scope(&self) -> ControlScope {
        ControlScope::from(&self.0.scope)
    }
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    /// The control it serves; its owner receives what is overdue.
    async fn control_key(&self) -> Option<&str> {
        self.0.control.as_deref()
    }
    async fn started_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.started_by)).await
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// The decision that started it.
    async fn decision_id(&self) -> ID {
        gid(&self.0.decision)
    }
    /// Where its items stand now, in all and by owning team.
    async fn report(&self, ctx: &Context<'_>) -> ApiResult<CampaignReport> {
        let r = ctx.data::<Store>()?.campaign_report(&self.0.id, Utc::now()).await.map_err(ApiError::from)?;
        Ok(CampaignReport {
            all: r.all.into(),
            complete: r.complete,
            by_team: r
                .by_team
                .into_iter()
                .map(|(t, tally)| TeamTally { team_id: t.as_ref().map(gid), tally: tally.into() })
                .collect(),
        })
    }
    /// Its items, by status.
    async fn items(&self, ctx: &Context<'_>, status: Option<ReviewItemStatus>) -> ApiResult<Vec<ReviewItem>> {
        let f = ItemFilter { campaign: Some(self.0.id.clone()), status: status.map(Into::into), answerable_by: None };
        let items = ctx.data::<Store>()?.review_items(&f).await.map_err(ApiError::from)?;
        Ok(items.into_iter().map(ReviewItem).collect())
    }
}

/// Counts of a campaign's items.
#[derive(SimpleObject)]
pub struct Tally {
    pub total: u32,
    pub certified: u32,
    /// Answered REVOKE (a request filed).
    pub revoked: u32,
    /// Answered REDUCE (a request filed).
    pub reduced: u32,
    pub pending: u32,
    /// Pending past the due date.
    pub overdue: u32,
    pub escalated: u32,
}

impl From<campaign::Tally> for Tally {
    fn from(t: campaign::Tally) -> Self {
        Tally {
            total: t.total,
            certified: t.certified,
            revoked: t.revoked,
            reduced: t.reduced,
            pending: t.pending,
            overdue: t.overdue,
            escalated: t.escalated,
        }
    }
}

/// One team's share of a campaign (items of NHIs no team owns: `teamId` null).
#[derive(SimpleObject)]
pub struct TeamTally {
    pub team_id: Option<ID>,
    pub tally: Tally,
}

/// A campaign's report for GRC.
#[derive(SimpleObject)]
pub struct CampaignReport {
    pub all: Tally,
    /// Every item answered.
    pub complete: bool,
    pub by_team: Vec<TeamTally>,
}

/// One NHI of a campaign for its owner to review, with the facts beside it.
pub struct ReviewItem(pub campaign::ReviewItem);

#[Object]
impl ReviewItem {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn campaign(&self, ctx: &Context<'_>) -> ApiResult<Option<Campaign>> {
        let found = ctx
            .data::<Store>()?
            .campaigns_by_id(std::slice::from_ref(&self.0.campaign))
            .await
            .map_err(ApiError::from)?;
        Ok(found.into_iter().next().map(Campaign))
    }
    async fn nhi(&self, ctx: &Context<'_>) -> ApiResult<Option<Nhi>> {
        Ok(nodes(ctx, [self.0.nhi.clone()]).await?.into_iter().find_map(|n| match n {
            InventoryNode::Nhi(n) => Some(Nhi(n)),
            _ => None,
        }))
    }
    /// The person answerable (an active owner); null when the item went to a team or
    /// the admins.
    async fn reviewer(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.reviewer.as_ref()).await
    }
    /// The owning team, when no owner is active: any member answers.
    async fn team(&self, ctx: &Context<'_>) -> ApiResult<Option<Team>> {
        let Some(t) = &self.0.team else { return Ok(None) };
        Ok(nodes(ctx, [t.clone()]).await?.into_iter().find_map(|n| match n {
            InventoryNode::Team(t) => Some(Team(t)),
            _ => None,
        }))
    }
    /// What the reviewer decides on, as JSON: last use, access in force (privilege,
    /// criticality, whether privileged and governed), secrets held, open alerts, active
    /// owners, last certification.
    async fn facts(&self) -> &str {
        &self.0.facts
    }
    async fn status(&self) -> ReviewItemStatus {
        self.0.status.into()
    }
    async fn answered_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.answered_by.as_ref()).await
    }
    async fn answered_at(&self) -> Option<DateTime<Utc>> {
        self.0.answered_at
    }
    /// The decision that answered it.
    async fn decision_id(&self) -> Option<ID> {
        self.0.decision.as_ref().map(gid)
    }
    /// The request a revoke or reduction filed.
    async fn request(&self, ctx: &Context<'_>) -> ApiResult<Option<Request>> {
        let Some(id) = &self.0.request else { return Ok(None) };
        let found = ctx.data::<Store>()?.requests_by_id(std::slice::from_ref(id)).await.map_err(ApiError::from)?;
        Ok(found.into_iter().next().map(Request))
    }
    async fn reminded_at(&self) -> Option<DateTime<Utc>> {
        self.0.reminded_at
    }
    /// Whom it went to once overdue: the owner of the campaign's control (null when it
    /// went to the admins).
    async fn escalated_to(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.escalated_to.as_ref()).await
    }
    async fn escalated_at(&self) -> Option<DateTime<Utc>> {
        self.0.escalated_at
    }
}

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    /// Every campaign, newest first.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn campaigns(&self, ctx: &Context<'_>) -> ApiResult<Vec<Campaign>> {
        Ok(ctx.data::<Store>()?.campaigns().await.map_err(ApiError::from)?.into_iter().map(Campaign).collect())
    }

    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Campaign>> {
        let id = node_id(&id, "id")?;
        let found = ctx.data::<Store>()?.campaigns_by_id(&[id]).await.map_err(ApiError::from)?;
        Ok(found.into_iter().next().map(Campaign))
    }

    /// A campaign's evidence bundle, as `nhigov export --campaign` writes it: the
    /// campaign, its items (the facts each reviewer saw, the answer), its report, the
    /// requests the answers filed, every decision of it in chain order with the policy
    /// versions used, the people named, and a manifest of SHA-256 digests. Write each
    /// file's `content` to its `path` and `nhigov verify-bundle` checks it offline.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn campaign_bundle(&self, ctx: &Context<'_>, campaign_id: ID) -> ApiResult<EvidenceBundle> {
        let campaign = node_id(&campaign_id, "campaignId")?;
        let files = ctx.data::<Store>()?.campaign_bundle(&campaign).await.map_err(ApiError::from)?;
        Ok(EvidenceBundle::of(files))
    }

    /// The evidence bundle of a period, as `nhigov export --period` writes it: every
    /// decision taken from `from` (included) to `to` (not) and every piece of evidence
    /// collected then, under `framework` when given (a reference such as RS.AN-03, a NIST
    /// CSF category such as RS.AN or function such as RS, or NHI), with the cases of that
    /// evidence, the policy versions used, the people named and a manifest of SHA-256
    /// digests. "Everything for Q3 under RS.AN."
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn period_bundle(
        &self,
        ctx: &Context<'_>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        framework: Option<String>,
    ) -> ApiResult<EvidenceBundle> {
        let under = framework.map(|f| graph_model::FrameworkScope::parse(&f)).transpose()?;
        let period = graph_model::bundle::Period { from, to, under };
        let files = ctx.data::<Store>()?.period_bundle(&period).await.map_err(ApiError::from)?;
        Ok(EvidenceBundle::of(files))
    }

    /// The review items the caller may answer (theirs, their teams', escalated to
    /// them), pending ones unless `status` says otherwise.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn my_review_items(&self, ctx: &Context<'_>, status: Option<ReviewItemStatus>) -> ApiResult<Vec<ReviewItem>> {
        let f = ItemFilter {
            campaign: None,
            status: Some(status.unwrap_or(ReviewItemStatus::Pending).into()),
            answerable_by: Some(principal(ctx)?.id().clone()),
        };
        let items = ctx.data::<Store>()?.review_items(&f).await.map_err(ApiError::from)?;
        Ok(items.into_iter().map(ReviewItem).collect())
    }
}

/// A campaign to start.
#[derive(InputObject)]
pub struct CampaignInput {
    pub name: String,
    /// Which NHIs: environments, criticalities, kinds, an owning team.
    pub scope: ControlScopeInput,
    pub due_at: DateTime<Utc>,
    /// The control it serves (`NHI-CERT-01`): its owner receives what is overdue.
    pub control_key: Option<String>,
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    /// Start a certification campaign: one decision writing one review item per active
    /// NHI in scope, each for an active owner, else the owning team, else the admins.
    #[graphql(guard = "RoleGuard(ADMINISTER)")]
    async fn start_campaign(&self, ctx: &Context<'_>, input: CampaignInput, rationale: String) -> ApiResult<Campaign> {
        let draft = CampaignDraft {
            name: input.name,
            scope: scope_of(input.scope)?,
            due_at: input.due_at,
            control: input.control_key,
        };
        let rationale = text(&rationale, "rationale")?;
        let (c, _) = ctx
            .data::<Store>()?
            .start_campaign(&actor(principal(ctx)?), &draft, &rationale, Utc::now())
            .await
            .map_err(ApiError::from)?;
        Ok(Campaign(c))
    }

    /// Answer a review item: a decision of the caller, who must be its reviewer, a
    /// member of its team, whom it was escalated to, or (for an item nobody owns) an
    /// admin. REDUCE names the system (`targetId`) and the lower `privilege`.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn answer_review_item(
        &self,
        ctx: &Context<'_>,
        id: ID,
        answer: ReviewAnswer,
        rationale: String,
        target_id: Option<ID>,
        privilege: Option<Privilege>,
    ) -> ApiResult<Decision> {
        let id = node_id(&id, "id")?;
        let rationale = text(&rationale, "rationale")?;
        let reduce = match (target_id, privilege) {
            (Some(t), Some(p)) => Some((node_id(&t, "targetId")?, gm::Privilege::from(p))),
            (None, None) => None,
            _ => return Err(ApiError::bad_input("privilege", "a reduction names both targetId and privilege")),
        };
        let d = ctx
            .data::<Store>()?
            .answer_review(&actor(principal(ctx)?), &id, answer.into(), &rationale, reduce)
            .await
            .map_err(ApiError::from)?;
        Ok(Decision(d))
    }
}
