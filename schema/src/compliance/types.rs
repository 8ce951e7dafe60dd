//! GraphQL objects of controls, results and findings.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::NodeId;
use graph_model::domain::control::{self as control, Check};
use graph_model::store::Store;

use crate::cases::loaders::{Record, records};
use crate::cases::types::{Case, Evidence, gid, person, refs};
use crate::decisions::types::{Decision, Request};
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::inventory::types::Person;

/// A published, immutable control version: a check over the graph with parameters,
/// a scope, and the person answerable for it.
pub struct Control(pub control::Control);

#[Object]
impl Control {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    /// The stable id the control keeps across versions (`NHI-OWN-01`).
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn version(&self) -> u32 {
        self.0.version
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The person answerable for the control.
    async fn owner(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.owner)).await
    }
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
    async fn scope(&self) -> ControlScope {
        ControlScope::from(&self.0.scope)
    }
    async fn check(&self) -> ControlCheck {
        let c = &self.0.check;
        let (max_age_days, days, tier) = match *c {
            Check::SecretRotated { max_age_days } | Check::Certified { max_age_days } => {
                (Some(max_age_days), None, None)
            }
            Check::UnusedAccess { days } => (None, Some(days), None),
            Check::PrivilegedAccessGoverned { tier } => (None, None, Some(tier.into())),
            _ => (None, None, None),
        };
        ControlCheck { kind: c.kind().into(), max_age_days, days, tier, description: c.describe() }
    }
    /// SHA-256 over the canonical encoding of the version; every result decision names it.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Does the stored version still match its digest?
    async fn intact(&self) -> bool {
        self.0.draft().sha256(self.0.version) == self.0.sha256
    }
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
    async fn published_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.published_by.as_ref()).await
    }
    /// How many subjects stand where, now.
    async fn counts(&self, ctx: &Context<'_>) -> ApiResult<ControlCounts> {
        let rows = ctx.data::<Store>()?.control_results(&self.0.key, None, None).await.map_err(ApiError::from)?;
        let n = |s: control::ControlStatus| rows.iter().filter(|r| r.status == s).count() as u64;
        Ok(ControlCounts {
            pass: n(control::ControlStatus::Pass),
            fail: n(control::ControlStatus::Fail),
            passed_by_exception: n(control::ControlStatus::PassedByException),
            not_applicable: n(control::ControlStatus::NotApplicable),
        })
    }
}

/// Which subjects a control covers; an empty list puts no bound.
#[derive(SimpleObject)]
pub struct ControlScope {
    pub environments: Vec<Environment>,
    /// For an NHI, the criticality of the most critical system it can access.
    pub criticalities: Vec<Criticality>,
    pub nhi_kinds: Vec<NhiKind>,
    /// Only the NHIs holding a secret of one of these kinds, and such secrets.
    pub secret_kinds: Vec<SecretKind>,
    /// Only what this team owns.
    pub team_id: Option<ID>,
    /// The scope in words.
    pub description: String,
}

impl From<&control::ControlScope> for ControlScope {
    fn from(s: &control::ControlScope) -> Self {
        ControlScope {
            environments: s.environments.iter().map(|e| (*e).into()).collect(),
            criticalities: s.criticalities.iter().map(|c| (*c).into()).collect(),
            nhi_kinds: s.nhi_kinds.iter().map(|k| (*k).into()).collect(),
            secret_kinds: s.secret_kinds.iter().map(|k| (*k).into()).collect(),
            team_id: s.team.as_ref().map(gid),
            description: s.describe(),
        }
    }
}

/// A control's check and its parameters.
#[derive(SimpleObject)]
pub struct ControlCheck {
    pub kind: CheckKind,
    /// SECRET_ROTATED: the most days since the last rotation.
    pub max_age_days: Option<u32>,
    /// UNUSED_ACCESS: the most days unused while holding access.
    pub days: Option<u32>,
    /// PRIVILEGED_ACCESS_GOVERNED: systems of this tier or more critical.
    pub tier: Option<Criticality>,
    /// The check as a sentence.
    pub description: String,
}

#[derive(SimpleObject)]
pub struct ControlCounts {
    pub pass: u64,
    pub fail: u64,
    pub passed_by_exception: u64,
    pub not_applicable: u64,
}

/// One subject's standing against a control.
pub struct ControlResult(pub gm::store::ControlResult);

#[Object]
impl ControlResult {
    async fn control_key(&self) -> &str {
        &self.0.control
    }
    /// The control version that judged it.
    async fn control_version(&self) -> u32 {
        self.0.version
    }
    /// The NHI, secret, exception or request judged.
    async fn subject_id(&self) -> ID {
        gid(&self.0.subject)
    }
    async fn status(&self) -> ControlStatus {
        self.0.status.into()
    }
    /// The facts that decided the status, in words, as they were when it changed.
    async fn facts(&self) -> &str {
        &self.0.facts
    }
    /// When the subject entered this status.
    async fn since(&self) -> DateTime<Utc> {
        self.0.since
    }
    /// When the control first judged the subject.
    async fn first_judged_at(&self) -> DateTime<Utc> {
        self.0.first_at
    }
    /// The finding its failure opened (open, or remediated and awaiting closure).
    async fn finding(&self, ctx: &Context<'_>) -> ApiResult<Option<Finding>> {
        finding(ctx, self.0.finding.as_ref()).await
    }
}

/// A page of results.
#[derive(SimpleObject)]
pub struct ControlResultPage {
    /// Results matching, over every page.
    pub total_count: u64,
    pub results: Vec<ControlResult>,
    /// Pass as `after` for the next page; null on the last.
    pub end_cursor: Option<ID>,
}

pub(crate) async fn finding(ctx: &Context<'_>, id: Option<&NodeId>) -> ApiResult<Option<Finding>> {
    let Some(id) = id else { return Ok(None) };
    let found = ctx.data::<Store>()?.findings_by_id(std::slice::from_ref(id)).await.map_err(ApiError::from)?;
    Ok(found.into_iter().next().map(Finding))
}

async fn decision(ctx: &Context<'_>, id: Option<&NodeId>) -> ApiResult<Option<Decision>> {
    let Some(id) = id else { return Ok(None) };
    Ok(records(ctx, [id.clone()]).await?.into_iter().find_map(|r| match r {
        Record::Decision(d) => Some(Decision(d)),
        _ => None,
    }))
}

/// A control failure followed from the decision that recorded it, through the cases,
/// requests and decisions linked as its remediation and the decision that saw the check
/// pass again, to its closing by a person with evidence. Remediated is not closed: the
/// risk can be gone while the finding still waits for its evidence.
pub struct Finding(pub gm::store::Finding);

#[Object]
impl Finding {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn control_key(&self) -> &str {
        &self.0.control
    }
    /// The control version whose failure opened it.
    async fn control(&self, ctx: &Context<'_>) -> ApiResult<Option<Control>> {
        let versions = ctx.data::<Store>()?.control_versions(&self.0.control).await.map_err(ApiError::from)?;
        Ok(versions.into_iter().find(|c| c.version == self.0.control_version).map(Control))
    }
    async fn subject_id(&self) -> ID {
        gid(&self.0.subject)
    }
    async fn status(&self) -> FindingStatus {
        self.0.status.into()
    }
    /// The facts of the failure that opened it.
    async fn facts(&self) -> &str {
        &self.0.facts
    }
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }
    /// The decision in the chain that recorded the failure.
    async fn failure(&self, ctx: &Context<'_>) -> ApiResult<Option<Decision>> {
        decision(ctx, self.0.opened_by.as_ref()).await
    }
    /// Cases linked as its remediation.
    async fn cases(&self, ctx: &Context<'_>) -> ApiResult<Vec<Case>> {
        let ids = self.0.links.iter().filter(|l| l.table() == gm::Table::Case).cloned();
        Ok(records(ctx, ids)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Case(c) => Some(Case(c)),
                _ => None,
            })
            .collect())
    }
    /// Requests linked as its remediation (a revocation, a rotation, an exception).
    async fn requests(&self, ctx: &Context<'_>) -> ApiResult<Vec<Request>> {
        let ids = self.0.links.iter().filter(|l| l.table() == gm::Table::Request).cloned();
        Ok(records(ctx, ids)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Request(q) => Some(Request(*q)),
                _ => None,
            })
            .collect())
    }
    /// Decisions linked as its remediation.
    async fn decisions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Decision>> {
        let ids = self.0.links.iter().filter(|l| l.table() == gm::Table::Decision).cloned();
        Ok(records(ctx, ids)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Decision(d) => Some(Decision(d)),
                _ => None,
            })
            .collect())
    }
    /// When the check stopped failing (null while it fails).
    async fn remediated_at(&self) -> Option<DateTime<Utc>> {
        self.0.remediated_at
    }
    /// The decision that saw the check pass again: the verification.
    async fn verification(&self, ctx: &Context<'_>) -> ApiResult<Option<Decision>> {
        decision(ctx, self.0.remediated_by.as_ref()).await
    }
    /// How often it failed again while open.
    async fn recurrences(&self) -> u32 {
        self.0.recurrences
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    async fn closed_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.closed_by.as_ref()).await
    }
    async fn closing_decision(&self, ctx: &Context<'_>) -> ApiResult<Option<Decision>> {
        decision(ctx, self.0.closing_decision.as_ref()).await
    }
    /// The evidence it was closed on.
    async fn evidence(&self, ctx: &Context<'_>) -> ApiResult<Vec<Evidence>> {
        Ok(records(ctx, self.0.evidence.iter().cloned())
            .await?
            .into_iter()
            .filter_map(|r| match r {
                Record::Evidence(e) => Some(Evidence(e)),
                _ => None,
            })
            .collect())
    }
}
