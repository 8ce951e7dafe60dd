//! Publishing controls and working findings. Each is one decision in the chain.

use async_graphql::{Context, ID, InputObject, Object};
use graph_model as gm;
use graph_model::domain::control::{Check, ControlDraft, ControlScope};
use graph_model::store::Store;
use graph_model::{NodeId, Table};

use crate::cases::mutation::{framework_refs, node_id, node_ids, text};
use crate::decisions::mutation::RequestDecision;
use crate::decisions::types::Decision;
use crate::enums::{CheckKind, Criticality, Environment, NhiKind, SecretKind};
use crate::error::{ApiError, ApiResult};
use crate::governance::mutation::{actor, govern};
use crate::principal::{ADMINISTER, DECIDE_REQUESTS, FILE_REQUESTS, RoleGuard, principal};

#[derive(Default)]
pub struct ComplianceMutation;

/// A control version to publish.
#[derive(InputObject)]
pub struct ControlInput {
    /// The stable id (`NHI-ROT-01`): upper-case letters and digits in parts joined by `-`.
    pub key: String,
    pub title: String,
    #[graphql(default)]
    pub description: String,
    /// The person answerable for the control.
    pub owner_id: ID,
    pub refs: Option<Vec<String>>,
    pub scope: Option<ControlScopeInput>,
    pub check: ControlCheckInput,
}

/// Which subjects the control covers; an empty list puts no bound.
#[derive(InputObject, Default)]
pub struct ControlScopeInput {
    #[graphql(default)]
    pub environments: Vec<Environment>,
    #[graphql(default)]
    pub criticalities: Vec<Criticality>,
    #[graphql(default)]
    pub nhi_kinds: Vec<NhiKind>,
    /// Only the NHIs holding a secret of one of these kinds, and such secrets.
    #[graphql(default)]
    pub secret_kinds: Vec<SecretKind>,
    pub team_id: Option<ID>,
}

/// The check and its parameters: `maxAgeDays` for SECRET_ROTATED and CERTIFIED, `days` for
/// UNUSED_ACCESS, `tier` for PRIVILEGED_ACCESS_GOVERNED.
#[derive(InputObject)]
pub struct ControlCheckInput {
    pub kind: CheckKind,
    pub max_age_days: Option<u32>,
    pub days: Option<u32>,
    pub tier: Option<Criticality>,
}

/// The scope given, checked.
pub(crate) fn scope_of(s: ControlScopeInput) -> Result<ControlScope, ApiError> {
    Ok(ControlScope {
        environments: s.environments.into_iter().map(Into::into).collect(),
        criticalities: s.criticalities.into_iter().map(Into::into).collect(),
        nhi_kinds: s.nhi_kinds.into_iter().map(Into::into).collect(),
        secret_kinds: s.secret_kinds.into_iter().map(Into::into).collect(),
        team: s.team_id.map(|t| node_id(&t, "scope.teamId")).transpose()?,
    })
}

fn control_draft(input: ControlInput) -> Result<ControlDraft, ApiError> {
    let c = input.check;
    let need = |v: Option<u32>, p: &str| {
        v.ok_or_else(|| ApiError::bad_input(format!("check.{p}"), format!("{:?} needs `{p}`", c.kind).to_lowercase()))
    };
    let check = match gm::domain::control::CheckKind::from(c.kind) {
        gm::domain::control::CheckKind::SecretRotated => {
            Check::SecretRotated { max_age_days: need(c.max_age_days, "maxAgeDays")? }
        }
        gm::domain::control::CheckKind::ActiveOwner => Check::ActiveOwner,
        gm::domain::control::CheckKind::PrivilegedAccessGoverned => Check::PrivilegedAccessGoverned {
            tier: c.tier.map(Into::into).ok_or_else(|| ApiError::bad_input("check.tier", "needs `tier`"))?,
        },
        gm::domain::control::CheckKind::UnusedAccess => Check::UnusedAccess { days: need(c.days, "days")? },
        gm::domain::control::CheckKind::Certified => {
            Check::Certified { max_age_days: need(c.max_age_days, "maxAgeDays")? }
        }
        gm::domain::control::CheckKind::ExceptionReviewed => Check::ExceptionReviewed,
        gm::domain::control::CheckKind::EmergencyApproved => Check::EmergencyApproved,
    };
    let draft = ControlDraft {
        key: input.key,
        title: input.title,
        description: input.description,
        owner: node_id(&input.owner_id, "ownerId")?,
        refs: framework_refs(&input.refs)?,
        scope: scope_of(input.scope.unwrap_or_default())?,
        check,
    };
    draft.check()?;
    Ok(draft)
}

#[Object]
impl ComplianceMutation {
    /// Propose a new, immutable control version. Publishing always waits for a second
    /// admin, who approves `request`; from then on the version judges its subjects, and
    /// its first evaluation is one decision naming the digest and counts of its results.
    #[graphql(guard = "RoleGuard(ADMINISTER)")]
    async fn publish_control(
        &self,
        ctx: &Context<'_>,
        input: ControlInput,
        rationale: String,
    ) -> ApiResult<RequestDecision> {
        let draft = control_draft(input)?;
        let change = gm::Change::Control { id: NodeId::generate(Table::Control), draft };
        let g = govern(ctx, change, Some(rationale)).await?;
        let request = g.request.ok_or_else(|| ApiError::internal("a control was published without a request"))?;
        Ok(RequestDecision::new(g.decision, request))
    }

    /// Link a case, request or decision to a finding as part of its remediation.
    #[graphql(guard = "RoleGuard(FILE_REQUESTS)")]
    async fn link_finding(&self, ctx: &Context<'_>, id: ID, to_id: ID, rationale: String) -> ApiResult<Decision> {
        let (id, to) = (node_id(&id, "id")?, node_id(&to_id, "toId")?);
        let rationale = text(&rationale, "rationale")?;
        let d = ctx
            .data::<Store>()?
            .link_finding(&actor(principal(ctx)?), &id, &to, &rationale)
            .await
            .map_err(ApiError::from)?;
        Ok(Decision(d))
    }

    /// Close a finding on evidence. Only once its check passes again (or an exception
    /// waives it); never by an owner of its subject (refused and recorded).
    #[graphql(guard = "RoleGuard(DECIDE_REQUESTS)")]
    async fn close_finding(
        &self,
        ctx: &Context<'_>,
        id: ID,
        evidence_ids: Vec<ID>,
        rationale: String,
    ) -> ApiResult<Decision> {
        let id = node_id(&id, "id")?;
        let evidence = node_ids(&evidence_ids, "evidenceIds")?;
        let rationale = text(&rationale, "rationale")?;
        let d = ctx
            .data::<Store>()?
            .close_finding(&actor(principal(ctx)?), &id, &evidence, &rationale)
            .await
            .map_err(ApiError::from)?;
        Ok(Decision(d))
    }
}
