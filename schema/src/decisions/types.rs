//! GraphQL objects of requests, exceptions, policies, decisions and the chain.

use async_graphql::{Context, ID, Json, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};
use graph_model as gm;

use crate::cases::loaders::{Record, records};
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::inventory::loaders::nodes;
use crate::inventory::types::{Owned, Person, System, owned};
use crate::records::{Alert, Case, Evidence, gid, people, person, refs};
pub use crate::records::{Decision, Request};

#[Object]
impl Request {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn kind(&self) -> RequestKind {
        self.0.kind.into()
    }
    async fn status(&self) -> RequestStatus {
        self.0.status.into()
    }
    /// Who asked (always the caller who filed it).
    async fn requester(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.requester)).await
    }
    /// The NHI, secret or system concerned (null for a change about a person or a
    /// policy: see `subjectId`).
    async fn subject(&self, ctx: &Context<'_>) -> ApiResult<Option<Owned>> {
        if !matches!(self.0.subject.table(), gm::Table::Nhi | gm::Table::Secret | gm::Table::System) {
            return Ok(None);
        }
        Ok(owned(nodes(ctx, [self.0.subject.clone()]).await?).pop())
    }
    /// The id of what the request is about: an NHI, secret or system, or for a
    /// `CHANGE` request a person or the policy version it would publish.
    async fn subject_id(&self) -> ID {
        gid(&self.0.subject)
    }
    /// For a `CHANGE` request: the change that waits, as recorded (`change` names its
    /// kind: roles, active, nhi_status, system_risk, relate, token, policy).
    async fn change(&self) -> ApiResult<Option<Json<serde_json::Value>>> {
        let Some(c) = &self.0.change else { return Ok(None) };
        Ok(Some(Json(serde_json::to_value(c).map_err(ApiError::internal)?)))
    }
    /// The person an escalated request waits for, when it was escalated to a person.
    async fn escalated_to(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        match &self.0.escalated_to {
            Some(gm::EscalationTarget::Person(p)) => person(ctx, Some(p)).await,
            _ => Ok(None),
        }
    }
    /// The role whose holders an escalated request waits for, when it was escalated to
    /// a role.
    async fn escalated_to_role(&self) -> Option<Role> {
        match &self.0.escalated_to {
            Some(gm::EscalationTarget::Role(r)) => Some(Role::from(*r)),
            _ => None,
        }
    }
    /// Who escalated it (who may not approve it afterwards).
    async fn escalated_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.escalated_by.as_ref()).await
    }
    /// For a `CHANGE` request: the change in words.
    async fn summary(&self) -> Option<String> {
        self.0.change.as_ref().map(gm::Change::describe)
    }
    /// The system access is granted to.
    async fn target(&self, ctx: &Context<'_>) -> ApiResult<Option<System>> {
        let Some(t) = &self.0.target else { return Ok(None) };
        Ok(nodes(ctx, [t.clone()]).await?.into_iter().find_map(|n| match n {
            gm::InventoryNode::System(s) => Some(System(s)),
            _ => None,
        }))
    }
    async fn privilege(&self) -> Option<Privilege> {
        self.0.privilege.map(Into::into)
    }
    async fn duration_days(&self) -> Option<u32> {
        self.0.duration_days
    }
    async fn justification(&self) -> &str {
        &self.0.justification
    }
    async fn ticket_ref(&self) -> Option<&str> {
        self.0.ticket_ref.as_deref()
    }
    async fn case(&self, ctx: &Context<'_>) -> ApiResult<Option<Case>> {
        Ok(crate::cases::loaders::case(ctx, self.0.case.as_ref()).await?.map(Case))
    }
    async fn compensating_controls(&self) -> &[String] {
        &self.0.compensating_controls
    }

    /// The keys of the controls whose failures it waives.
    async fn waives(&self) -> &[String] {
        &self.0.waives
    }
    async fn review_days(&self) -> Option<u32> {
        self.0.review_days
    }
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
    /// Approvals given so far, each with the decision that recorded it.
    async fn approvals(&self, ctx: &Context<'_>) -> ApiResult<Vec<Approval>> {
        let approvers = people(ctx, self.0.approvals.iter().map(|a| a.approver.clone())).await?;
        Ok(self
            .0
            .approvals
            .iter()
            .map(|a| Approval {
                approver: approvers.iter().find(|p| p.0.id == a.approver).map(|p| Person(p.0.clone())),
                at: a.at,
                decision: gid(&a.decision),
            })
            .collect())
    }
    /// How many distinct approvals the policy requires.
    async fn approvals_needed(&self) -> u32 {
        self.0.approvals_needed
    }
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    /// When the approval lapses; afterwards it is due for revalidation.
    async fn approval_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.approval_expires_at
    }
    /// Approved, and the approval has lapsed.
    async fn revalidation_due(&self) -> bool {
        self.0.revalidation_due_at(Utc::now())
    }
    /// Emergency access must be approved by then.
    async fn post_approval_due(&self) -> Option<DateTime<Utc>> {
        self.0.post_approval_due
    }
    /// Emergency access still unapproved past its window.
    async fn post_approval_overdue(&self) -> bool {
        self.0.post_approval_overdue_at(Utc::now())
    }
    /// An approved rotation must be seen done by then (the secret's `lastRotatedAt`
    /// moving past the approval).
    async fn rotation_due_at(&self) -> Option<DateTime<Utc>> {
        self.0.rotation_due_at
    }
    /// An approved rotation not seen done by its due date.
    async fn rotation_overdue(&self) -> bool {
        self.0.rotation_overdue_at(Utc::now())
    }
    /// When the rotation was seen done, closing the request (`FULFILLED`).
    async fn fulfilled_at(&self) -> Option<DateTime<Utc>> {
        self.0.fulfilled_at
    }
    /// The rule of an automated deny.
    async fn denied_by_rule(&self) -> Option<&str> {
        self.0.denied_by_rule.as_deref()
    }
    async fn risk_accepted_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.risk_accepted_by.as_ref()).await
    }
    /// The access edge an approved grant (or emergency access) opened.
    async fn granted_edge(&self) -> Option<ID> {
        self.0.granted_edge.clone().map(ID)
    }
}

/// One approval of a request.
#[derive(SimpleObject)]
pub struct Approval {
    pub approver: Option<Person>,
    pub at: DateTime<Utc>,
    pub decision: ID,
}

/// An accepted deviation with compensating controls, an expiry and a review date.
pub struct Exception(pub gm::Exception);

#[Object]
impl Exception {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn request(&self) -> ID {
        gid(&self.0.request)
    }
    async fn subject(&self, ctx: &Context<'_>) -> ApiResult<Option<Owned>> {
        Ok(owned(nodes(ctx, [self.0.subject.clone()]).await?).pop())
    }
    async fn justification(&self) -> &str {
        &self.0.justification
    }
    async fn compensating_controls(&self) -> &[String] {
        &self.0.compensating_controls
    }

    /// The keys of the controls whose failures it waives.
    async fn waives(&self) -> &[String] {
        &self.0.waives
    }
    async fn status(&self) -> ExceptionStatus {
        self.0.status.into()
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn review_due(&self) -> DateTime<Utc> {
        self.0.review_due
    }
    async fn expired(&self) -> bool {
        self.0.expired_at(Utc::now())
    }
    /// Expired or past its review date: it needs a fresh decision.
    async fn revalidation_due(&self) -> bool {
        self.0.revalidation_due_at(Utc::now())
    }
    async fn approved_by(&self, ctx: &Context<'_>) -> ApiResult<Vec<Person>> {
        people(ctx, self.0.approved_by.clone()).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
}

/// An immutable, versioned set of rules.
pub struct Policy(pub gm::Policy);

#[Object]
impl Policy {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn version(&self) -> u32 {
        self.0.version
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn rules(&self) -> Vec<PolicyRule> {
        self.0.rules.iter().map(PolicyRule::from).collect()
    }
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
    /// SHA-256 over the canonical encoding of name, version, description, rules, refs.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Does the stored version still match its digest?
    async fn intact(&self) -> bool {
        self.0.intact()
    }
    /// The rules as sentences.
    async fn text(&self) -> String {
        self.0.text()
    }
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
    /// Null for the baseline version every database starts with.
    async fn published_by(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.published_by.as_ref()).await
    }
}

/// One rule of a policy with its parameters.
#[derive(SimpleObject)]
pub struct PolicyRule {
    pub kind: RuleKind,
    pub count: Option<u32>,
    pub days: Option<u32>,
    pub hours: Option<u32>,
    pub description: String,
}

impl From<&gm::Rule> for PolicyRule {
    fn from(r: &gm::Rule) -> PolicyRule {
        let (count, days, hours) = match *r {
            gm::Rule::DistinctApprovers { count } => (Some(count), None, None),
            gm::Rule::MaxApprovalLifetime { days } => (None, Some(days), None),
            gm::Rule::EmergencyPostApproval { hours } => (None, None, Some(hours)),
            _ => (None, None, None),
        };
        PolicyRule { kind: r.kind().into(), count, days, hours, description: r.describe() }
    }
}

/// A rule that refused a decision.
#[derive(SimpleObject)]
pub struct Violation {
    pub rule: RuleKind,
    pub policy_version: u32,
    pub message: String,
}

/// An alert or an exhibit a decision relied on.
#[derive(Union)]
pub enum Signal {
    Alert(Alert),
    Evidence(Evidence),
}

#[Object]
impl Decision {
    pub(crate) async fn id(&self) -> ID {
        gid(&self.0.id)
    }
    /// Its place in the chain, from 1, without gaps.
    async fn seq(&self) -> u64 {
        self.0.seq
    }
    async fn kind(&self) -> DecisionKind {
        self.0.kind.into()
    }
    async fn outcome(&self) -> Outcome {
        self.0.outcome.into()
    }
    /// Who decided: always the authenticated caller.
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.actor)).await
    }
    /// The id of what was decided on: a request, case, alert or policy.
    async fn subject(&self) -> ID {
        gid(&self.0.subject)
    }
    /// The request decided on, when it was one.
    async fn request(&self, ctx: &Context<'_>) -> ApiResult<Option<Request>> {
        Ok(records(ctx, [self.0.subject.clone()]).await?.into_iter().find_map(|r| match r {
            Record::Request(r) => Some(Request(*r)),
            _ => None,
        }))
    }
    async fn case(&self, ctx: &Context<'_>) -> ApiResult<Option<Case>> {
        Ok(crate::cases::loaders::case(ctx, self.0.case.as_ref()).await?.map(Case))
    }
    async fn rationale(&self) -> &str {
        &self.0.rationale
    }
    /// The alerts and evidence relied on.
    async fn signals(&self, ctx: &Context<'_>) -> ApiResult<Vec<Signal>> {
        signals(ctx, &self.0.signals).await
    }
    /// The policy version in force when the decision was taken.
    async fn policy(&self, ctx: &Context<'_>) -> ApiResult<Option<Policy>> {
        let Some(p) = &self.0.policy else { return Ok(None) };
        Ok(records(ctx, [p.clone()]).await?.into_iter().find_map(|r| match r {
            Record::Policy(p) => Some(Policy(p)),
            _ => None,
        }))
    }
    async fn policy_version(&self) -> Option<u32> {
        self.0.policy_version
    }
    async fn policy_sha256(&self) -> Option<&str> {
        self.0.policy_sha256.as_deref()
    }
    /// For a refused attempt: the rule that refused it.
    async fn violation(&self) -> Option<Violation> {
        self.0.violation.as_ref().map(|v| Violation {
            rule: v.rule.into(),
            policy_version: v.policy_version,
            message: v.message.clone(),
        })
    }
    async fn refs(&self) -> Vec<String> {
        refs(&self.0.refs)
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn prev_hash(&self) -> &str {
        &self.0.prev_hash
    }
    /// SHA-256 over the canonical encoding of every other field.
    async fn hash(&self) -> &str {
        &self.0.hash
    }
    /// Does the record still match its hash?
    async fn intact(&self) -> bool {
        self.0.compute_hash() == self.0.hash
    }
    /// The decision replayed: the inputs, the policy text and the rationale as they
    /// were when it was taken.
    async fn explain(&self, ctx: &Context<'_>) -> ApiResult<Explanation> {
        let policy = match &self.0.policy {
            Some(p) => records(ctx, [p.clone()]).await?.into_iter().find_map(|r| match r {
                Record::Policy(p) => Some(p),
                _ => None,
            }),
            None => None,
        };
        let inputs: serde_json::Value = serde_json::from_str(&self.0.inputs).unwrap_or(serde_json::Value::Null);
        Ok(Explanation {
            inputs: Json(inputs),
            policy_text: policy.as_ref().map(|p| p.text()),
            policy_matches_record: policy
                .as_ref()
                .map(|p| p.intact() && Some(&p.sha256) == self.0.policy_sha256.as_ref()),
            rationale: self.0.rationale.clone(),
            record_intact: self.0.compute_hash() == self.0.hash,
        })
    }
}

/// A decision replayed.
#[derive(SimpleObject)]
pub struct Explanation {
    /// The facts the decision was taken on, as recorded then (request, owners, roles,
    /// approvals before it, target criticality, the policy text...).
    pub inputs: Json<serde_json::Value>,
    /// The text of the policy version recorded with the decision.
    pub policy_text: Option<String>,
    /// The stored policy version still hashes to what the decision recorded.
    pub policy_matches_record: Option<bool>,
    pub rationale: String,
    /// The decision record still matches its hash.
    pub record_intact: bool,
}

pub(crate) async fn signals(ctx: &Context<'_>, ids: &[gm::NodeId]) -> ApiResult<Vec<Signal>> {
    Ok(records(ctx, ids.iter().cloned())
        .await?
        .into_iter()
        .filter_map(|r| match r {
            Record::Alert(a) => Some(Signal::Alert(Alert(a))),
            Record::Evidence(e) => Some(Signal::Evidence(Evidence(e))),
            _ => None,
        })
        .collect())
}

/// The result of recomputing the decision chain.
#[derive(SimpleObject)]
pub struct ChainReport {
    pub ok: bool,
    /// How many decision records were read.
    pub length: u64,
    pub head_hash: String,
    pub first_broken: Option<BrokenLink>,
}

/// Where the chain first fails to verify.
#[derive(SimpleObject)]
pub struct BrokenLink {
    pub seq: u64,
    pub decision: Option<ID>,
    pub problem: String,
}

impl From<gm::ChainReport> for ChainReport {
    fn from(r: gm::ChainReport) -> ChainReport {
        ChainReport {
            ok: r.ok(),
            length: r.length,
            head_hash: r.head_hash,
            first_broken: r.first_broken.map(|b| BrokenLink {
                seq: b.seq,
                decision: b.decision.as_ref().map(gid),
                problem: b.problem,
            }),
        }
    }
}

/// An API token of a machine principal (its secret is shown only when made).
pub struct ApiToken(pub gm::store::ApiToken);

#[Object]
impl ApiToken {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn principal(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, Some(&self.0.principal)).await
    }
    async fn scopes(&self) -> Vec<Role> {
        self.0.scopes.iter().map(|r| (*r).into()).collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}
