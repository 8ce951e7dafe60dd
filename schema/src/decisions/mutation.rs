//! Requests and their decisions, risk acceptances, policy versions and API tokens.
//! No mutation takes "who approved" as an argument: the actor is the caller.

use async_graphql::{Context, ID, InputObject, Object};
use graph_model as gm;
use graph_model::store::Store;

use super::types::*;
use crate::cases::mutation::{framework_refs, label, node_id, node_ids, text};
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::principal::{ACCEPT_RISK, DECIDE_REQUESTS, FILE_REQUESTS, RoleGuard, principal};

/// A proposed change. What each kind needs: grants and emergency access name a
/// target system and a privilege; exceptions name compensating controls and a
/// duration; the others only a subject.
#[derive(InputObject)]
pub struct RequestInput {
    pub kind: RequestKind,
    /// The NHI (or, for rotation, the secret; for exceptions any node) concerned.
    pub subject_id: ID,
    pub target_id: Option<ID>,
    pub privilege: Option<Privilege>,
    /// How long the approval (and the access or exception) should last, capped by policy.
    pub duration_days: Option<u32>,
    pub justification: String,
    pub ticket_ref: Option<String>,
    pub case_id: Option<ID>,
    pub compensating_controls: Option<Vec<String>>,
    /// For exceptions: days until review (defaults to the expiry).
    pub review_days: Option<u32>,
    pub refs: Option<Vec<String>>,
    /// For exceptions: the keys of the controls (`NHI-OWN-01`) whose failures it waives
    /// for its subject while active.
    pub waives: Option<Vec<String>>,
}

/// A decision and the request as it stands after it. A decision on a request leaves the
/// request to be read only if the caller asks for it (a portal that files approvals in a
/// burst asks for the decision alone, and saves the read).
pub struct RequestDecision {
    decision: Decision,
    request: RequestAfter,
}

enum RequestAfter {
    Read(Box<gm::Request>),
    Unread(gm::NodeId),
}

impl RequestDecision {
    pub fn new(decision: gm::Decision, request: gm::Request) -> RequestDecision {
        RequestDecision { decision: Decision(decision), request: RequestAfter::Read(Box::new(request)) }
    }

    /// The request `id` is read after the decision, when the caller asks for it.
    fn unread(decision: gm::Decision, id: gm::NodeId) -> RequestDecision {
        RequestDecision { decision: Decision(decision), request: RequestAfter::Unread(id) }
    }
}

/// A decision and the request as it stands after it.
#[Object]
impl RequestDecision {
    async fn decision(&self) -> &Decision {
        &self.decision
    }

    async fn request(&self, ctx: &Context<'_>) -> ApiResult<Request> {
        match &self.request {
            RequestAfter::Read(r) => Ok(Request(r.as_ref().clone())),
            RequestAfter::Unread(id) => Ok(Request(ctx.data::<Store>()?.request(id).await.map_err(ApiError::from)?)),
        }
    }
}

/// One rule of a policy to publish. Parameters: `count` for DISTINCT_APPROVERS,
/// `days` for MAX_APPROVAL_LIFETIME, `hours` for EMERGENCY_POST_APPROVAL.
#[derive(InputObject)]
pub struct RuleInput {
    pub kind: RuleKind,
    pub count: Option<u32>,
    pub days: Option<u32>,
    pub hours: Option<u32>,
}

#[derive(InputObject)]
pub struct PolicyInput {
    pub name: String,
    #[graphql(default)]
    pub description: String,
    pub rules: Vec<RuleInput>,
    pub refs: Option<Vec<String>>,
}

/// A policy version to propose, parsed.
pub(crate) fn policy_draft(input: PolicyInput) -> Result<gm::PolicyDraft, ApiError> {
    Ok(gm::PolicyDraft {
        name: input.name,
        description: input.description,
        rules: input.rules.into_iter().map(rule).collect::<Result<_, _>>()?,
        refs: framework_refs(&input.refs)?,
    })
}

fn rule(r: RuleInput) -> Result<gm::Rule, ApiError> {
    let need = |v: Option<u32>, p: &str| {
        v.ok_or_else(|| ApiError::bad_input("rules", format!("{:?} needs `{p}`", r.kind).to_lowercase()))
    };
    Ok(match gm::RuleKind::from(r.kind) {
        gm::RuleKind::RequesterCannotApprove => gm::Rule::RequesterCannotApprove,
        gm::RuleKind::OwnerCannotApprove => gm::Rule::OwnerCannotApprove,
        gm::RuleKind::DistinctApprovers => gm::Rule::DistinctApprovers { count: need(r.count, "count")? },
        gm::RuleKind::ApproverRoleRequired => gm::Rule::ApproverRoleRequired,
        gm::RuleKind::MaxApprovalLifetime => gm::Rule::MaxApprovalLifetime { days: need(r.days, "days")? },
        gm::RuleKind::EmergencyPostApproval => gm::Rule::EmergencyPostApproval { hours: need(r.hours, "hours")? },
        gm::RuleKind::GrantNeedsActiveOwner => gm::Rule::GrantNeedsActiveOwner,
        gm::RuleKind::OverrideNeedsControlOwner => gm::Rule::OverrideNeedsControlOwner,
        floor @ (gm::RuleKind::DeciderRoleRequired
        | gm::RuleKind::SubjectCannotApprove
        | gm::RuleKind::EscalationTarget
        | gm::RuleKind::EscalatorCannotApprove
        | gm::RuleKind::MachineCannotDecide
        | gm::RuleKind::OwnTokenOnly
        | gm::RuleKind::OwnerCannotCloseFinding) => {
            return Err(ApiError::bad_input(
                "rules",
                format!("{floor} is part of the engine's floor: always in force, never named"),
            ));
        }
    })
}

#[derive(Default)]
pub struct DecisionMutation;

#[Object]
impl DecisionMutation {
    /// File a request as the caller. A grant to an NHI without an active owner is
    /// denied at once (recorded); emergency access is granted at once and must be
    /// approved within the policy's window.
    #[graphql(guard = "RoleGuard(FILE_REQUESTS)")]
    async fn create_request(&self, ctx: &Context<'_>, input: RequestInput) -> ApiResult<Request> {
        let new = gm::NewRequest {
            kind: input.kind.into(),
            subject: node_id(&input.subject_id, "subjectId")?,
            target: input.target_id.map(|t| node_id(&t, "targetId")).transpose()?,
            privilege: input.privilege.map(Into::into),
            duration_days: input.duration_days,
            justification: text(&input.justification, "justification")?,
            ticket_ref: input.ticket_ref.map(|t| label(&t, "ticketRef")).transpose()?,
            case: input.case_id.map(|c| node_id(&c, "caseId")).transpose()?,
            compensating_controls: input
                .compensating_controls
                .unwrap_or_default()
                .iter()
                .map(|c| text(c, "compensatingControls"))
                .collect::<Result<_, _>>()?,
            review_days: input.review_days,
            refs: framework_refs(&input.refs)?,
            waives: input.waives.unwrap_or_default(),
        };
        let r = ctx.data::<Store>()?.create_request(principal(ctx)?.id(), &new).await.map_err(ApiError::from)?;
        Ok(Request(r))
    }

    /// Approve, reject or escalate a request, citing the alerts and evidence relied on.
    /// Every rule of the policy in force is checked first; a refusal answers
    /// SOD_VIOLATION (naming the rule and policy version) and is itself recorded. An
    /// escalation names whom it goes to, a person (`escalateToId`) or the holders of a
    /// role (`escalateToRole`): only they decide the request next, and the one who
    /// escalated cannot approve it.
    #[graphql(guard = "RoleGuard(DECIDE_REQUESTS)")]
    #[allow(clippy::too_many_arguments)]
    async fn decide_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
        outcome: DecideOutcome,
        rationale: String,
        signals: Option<Vec<ID>>,
        escalate_to_id: Option<ID>,
        escalate_to_role: Option<Role>,
    ) -> ApiResult<RequestDecision> {
        let id = node_id(&id, "id")?;
        let rationale = text(&rationale, "rationale")?;
        let signals = node_ids(signals.as_deref().unwrap_or_default(), "signals")?;
        let target = match (escalate_to_id, escalate_to_role) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_input("escalateToId", "escalate to a person or to a role, not both"));
            }
            (Some(p), None) => Some(gm::EscalationTarget::Person(node_id(&p, "escalateToId")?)),
            (None, Some(r)) => Some(gm::EscalationTarget::Role(r.into())),
            (None, None) => None,
        };
        let p = principal(ctx)?;
        let actor = gm::store::Actor { id: p.id().clone(), roles: p.roles.clone() };
        let store = ctx.data::<Store>()?;
        let decided = match (outcome, target) {
            (DecideOutcome::Escalate, Some(to)) => {
                store.escalate_request(&actor, &id, &to, &rationale, &signals).await.map(|(d, _)| d)
            }
            (DecideOutcome::Escalate, None) => {
                return Err(ApiError::bad_input(
                    "escalateToId",
                    "an escalation names whom it goes to: escalateToId or escalateToRole",
                ));
            }
            (_, Some(_)) => {
                return Err(ApiError::bad_input("escalateToId", "only an escalation names whom it goes to"));
            }
            (outcome, None) => store.decide_request_alone(&actor, &id, outcome.into(), &rationale, &signals).await,
        };
        Ok(RequestDecision::unread(decided.map_err(ApiError::from)?, id))
    }

    /// The control owner accepts the risk of a request an automated check denied, so
    /// approvers may decide it.
    #[graphql(guard = "RoleGuard(ACCEPT_RISK)")]
    async fn accept_risk(&self, ctx: &Context<'_>, request_id: ID, rationale: String) -> ApiResult<RequestDecision> {
        let id = node_id(&request_id, "requestId")?;
        let rationale = text(&rationale, "rationale")?;
        let (d, r) =
            ctx.data::<Store>()?.accept_risk(principal(ctx)?.id(), &id, &rationale).await.map_err(ApiError::from)?;
        Ok(RequestDecision::new(d, r))
    }

    /// End an active exception before its expiry (approvers and admins), with a
    /// rationale. The revocation is a decision.
    #[graphql(guard = "RoleGuard(DECIDE_REQUESTS)")]
    async fn revoke_exception(&self, ctx: &Context<'_>, id: ID, rationale: String) -> ApiResult<Exception> {
        let id = node_id(&id, "id")?;
        let rationale = text(&rationale, "rationale")?;
        let (_, e) = ctx
            .data::<Store>()?
            .revoke_exception(principal(ctx)?.id(), &id, &rationale)
            .await
            .map_err(ApiError::from)?;
        Ok(Exception(e))
    }
}
