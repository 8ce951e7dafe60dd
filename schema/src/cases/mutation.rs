//! Case work: ingest alerts, open and merge cases, dismiss alerts, move, assign,
//! escalate, close and reopen cases, tasks and evidence. The actor is always the
//! caller; every decision is one transaction with its record in the chain.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::store::{IngestOutcome, Store};

use super::types::{Alert, Case, Evidence, Task};
use crate::decisions::types::Decision;
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::principal::{INGEST_ALERTS, RoleGuard, WORK_CASES, principal};

/// Parse a global id, naming the field at fault.
pub(crate) fn node_id(id: &ID, field: &str) -> Result<gm::NodeId, ApiError> {
    gm::NodeId::parse(id.as_str()).map_err(|e| e.at(field).into())
}

pub(crate) fn node_ids(ids: &[ID], field: &str) -> Result<Vec<gm::NodeId>, ApiError> {
    ids.iter().map(|i| node_id(i, field)).collect()
}

pub(crate) fn text(s: &str, field: &str) -> Result<gm::Text, ApiError> {
    gm::Text::parse(s).map_err(|e| e.at(field).into())
}

pub(crate) fn label(s: &str, field: &str) -> Result<gm::Label, ApiError> {
    gm::Label::parse(s).map_err(|e| e.at(field).into())
}

pub(crate) fn framework_refs(refs: &Option<Vec<String>>) -> Result<Vec<gm::FrameworkRef>, ApiError> {
    Ok(gm::FrameworkRef::parse_all(refs.as_deref().unwrap_or_default())?)
}

/// An alert from a scanner or rule. Name the identity by exactly one of `subjectId`,
/// `externalId` or `fingerprint`.
#[derive(InputObject)]
pub struct AlertInput {
    pub source: String,
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    pub detail: Option<String>,
    /// When the scanner saw it; defaults to now.
    pub detected_at: Option<DateTime<Utc>>,
    pub subject_id: Option<ID>,
    /// The provider's id of an NHI.
    pub external_id: Option<String>,
    /// The fingerprint of a secret.
    pub fingerprint: Option<String>,
    /// Repeats with the same key are counted, not filed anew. Defaults to a digest of
    /// source, rule and subject.
    pub dedupe_key: Option<String>,
    pub refs: Option<Vec<String>>,
}

impl AlertInput {
    fn parse(self) -> Result<gm::NewAlert, ApiError> {
        let subject = match (self.subject_id, self.external_id, self.fingerprint) {
            (Some(id), None, None) => gm::SubjectRef::Id(node_id(&id, "subjectId")?),
            (None, Some(x), None) => gm::SubjectRef::ExternalId(label(&x, "externalId")?.into_inner()),
            (None, None, Some(f)) => gm::SubjectRef::Fingerprint(label(&f, "fingerprint")?.into_inner()),
            _ => {
                return Err(ApiError::bad_input(
                    "subjectId",
                    "name the identity by exactly one of subjectId, externalId or fingerprint",
                ));
            }
        };
        let source = label(&self.source, "source")?;
        let rule = label(&self.rule, "rule")?;
        let dedupe_key = match self.dedupe_key {
            Some(k) => label(&k, "dedupeKey")?.into_inner(),
            None => gm::NewAlert::default_dedupe_key(&source, &rule, &subject),
        };
        Ok(gm::NewAlert {
            source,
            rule,
            severity: self.severity.into(),
            title: text(&self.title, "title")?,
            detail: self.detail.map(|d| text(&d, "detail")).transpose()?,
            detected_at: self.detected_at.unwrap_or_else(Utc::now),
            subject,
            refs: framework_refs(&self.refs)?,
            dedupe_key,
        })
    }
}

/// What an ingest did.
#[derive(SimpleObject)]
pub struct IngestResult {
    pub alert: Alert,
    /// False when it was a repeat of an alert already filed (its count went up).
    pub created: bool,
}

#[derive(InputObject)]
pub struct OpenCaseInput {
    pub title: String,
    pub description: Option<String>,
    /// Defaults to the highest severity among the alerts.
    pub severity: Option<Severity>,
    /// The alerts to promote into the case; they must be new.
    pub alert_ids: Option<Vec<ID>>,
    /// Further NHIs, secrets or systems the case concerns.
    pub subject_ids: Option<Vec<ID>>,
    pub assignee_id: Option<ID>,
    pub refs: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CloseCaseInput {
    pub resolution: Resolution,
    pub summary: String,
    /// Was the risk itself dealt with?
    pub risk_remediated: bool,
    /// Is the audit finding closed? Recorded separately from the risk.
    pub finding_closed: bool,
    /// Evidence of this case that verifies the closure.
    pub verification_evidence_id: ID,
}

#[derive(InputObject)]
pub struct TaskInput {
    pub kind: TaskKind,
    pub title: String,
    pub assignee_id: Option<ID>,
    /// A mandatory task must be done or cancelled before the case closes.
    #[graphql(default = false)]
    pub mandatory: bool,
}

#[derive(InputObject)]
pub struct EvidenceInput {
    pub kind: EvidenceKind,
    pub content: String,
    /// Where it came from: a system, a tool, a ticket.
    pub source: String,
    /// When it was collected at the source; defaults to now.
    pub collected_at: Option<DateTime<Utc>>,
    /// The evidence this one corrects or replaces.
    pub supersedes: Option<ID>,
    /// Why the earlier evidence is superseded (required with `supersedes`).
    pub supersede_reason: Option<String>,
    pub refs: Option<Vec<String>>,
}

#[derive(Default)]
pub struct CaseMutation;

fn store<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Store> {
    Ok(ctx.data::<Store>()?)
}

/// What a scanner report became.
#[derive(async_graphql::SimpleObject)]
pub struct ScanResult {
    pub findings: i32,
    /// New alerts.
    pub created: i32,
    /// Findings an earlier run already reported, counted on their alert.
    pub repeated: i32,
    /// Findings whose secret the inventory knows; the others are alerts with
    /// `unknownSubject`.
    pub matched: i32,
}

#[Object]
impl CaseMutation {
    /// Take in an alert from a scanner or rule: deduplicated by key, linked to its NHI
    /// or secret, enriched with owners, reached systems and last use.
    #[graphql(guard = "RoleGuard(INGEST_ALERTS)")]
    async fn ingest_alert(&self, ctx: &Context<'_>, input: AlertInput) -> ApiResult<IngestResult> {
        let alert = input.parse()?;
        let (a, outcome) = store(ctx)?.ingest_alert(&alert).await.map_err(ApiError::from)?;
        Ok(IngestResult { alert: Alert(a), created: outcome == IngestOutcome::Created })
    }

    /// Take in a secret scanner's report (gitleaks JSON, TruffleHog JSON lines, or
    /// detect-secrets JSON) as alerts: each finding matched to a secret by the hash of
    /// its value, deduplicated across runs (the same secret in the same file is a repeat).
    /// The report is checked whole first: a malformed finding is named and nothing is
    /// taken in.
    #[graphql(guard = "RoleGuard(INGEST_ALERTS)")]
    async fn ingest_scanner_report(
        &self,
        ctx: &Context<'_>,
        format: ScannerFormat,
        report: String,
    ) -> ApiResult<ScanResult> {
        let findings = gm::scanners::parse_report(format.into(), &report).map_err(|e| {
            let field = format!("report{}{}", if e.field.starts_with('[') { "" } else { "." }, e.field);
            ApiError::from(e.at(field))
        })?;
        let s = store(ctx)?.ingest_findings(&findings).await.map_err(ApiError::from)?;
        Ok(ScanResult {
            findings: s.findings as i32,
            created: s.created as i32,
            repeated: s.repeated as i32,
            matched: s.matched as i32,
        })
    }

    /// Open a case, promoting new alerts into it (one alert, or several merged).
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn open_case(&self, ctx: &Context<'_>, input: OpenCaseInput) -> ApiResult<Case> {
        let new = gm::NewCase {
            title: text(&input.title, "title")?,
            description: input.description.map(|d| text(&d, "description")).transpose()?,
            severity: input.severity.map(Into::into),
            alerts: node_ids(input.alert_ids.as_deref().unwrap_or_default(), "alertIds")?,
            subjects: node_ids(input.subject_ids.as_deref().unwrap_or_default(), "subjectIds")?,
            assignee: input.assignee_id.map(|a| node_id(&a, "assigneeId")).transpose()?,
            refs: framework_refs(&input.refs)?,
        };
        let sla = ctx.data::<gm::SlaHours>()?;
        let case = store(ctx)?.open_case(principal(ctx)?.id(), &new, sla).await.map_err(ApiError::from)?;
        Ok(Case(case))
    }

    /// Promote one new alert to a case of its own, titled after the alert.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn promote_alert(&self, ctx: &Context<'_>, id: ID, assignee_id: Option<ID>) -> ApiResult<Case> {
        let id = node_id(&id, "id")?;
        let s = store(ctx)?;
        let alert = s.alert(&id).await.map_err(ApiError::from)?;
        let new = gm::NewCase {
            title: text(&alert.title, "title")?,
            description: alert.detail.as_deref().map(|d| text(d, "description")).transpose()?,
            severity: None,
            alerts: vec![id],
            subjects: vec![],
            assignee: assignee_id.map(|a| node_id(&a, "assigneeId")).transpose()?,
            refs: vec![],
        };
        let sla = ctx.data::<gm::SlaHours>()?;
        Ok(Case(s.open_case(principal(ctx)?.id(), &new, sla).await.map_err(ApiError::from)?))
    }

    /// Group more new alerts into an open case.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn merge_alerts(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        alert_ids: Vec<ID>,
        rationale: String,
    ) -> ApiResult<Case> {
        let case = node_id(&case_id, "caseId")?;
        let alerts = node_ids(&alert_ids, "alertIds")?;
        let r = text(&rationale, "rationale")?;
        Ok(Case(store(ctx)?.merge_alerts(principal(ctx)?.id(), &case, &alerts, &r).await.map_err(ApiError::from)?))
    }

    /// Dismiss a new alert, with a reason. The dismissal is a decision.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn dismiss_alert(&self, ctx: &Context<'_>, id: ID, reason: String) -> ApiResult<Decision> {
        let id = node_id(&id, "id")?;
        let reason = text(&reason, "reason")?;
        Ok(Decision(store(ctx)?.dismiss_alert(principal(ctx)?.id(), &id, &reason).await.map_err(ApiError::from)?))
    }

    /// Move a case along its state machine; an illegal move is refused with BAD_USER_INPUT.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn transition_case(&self, ctx: &Context<'_>, id: ID, to: CaseStatus, rationale: String) -> ApiResult<Case> {
        let id = node_id(&id, "id")?;
        let r = text(&rationale, "rationale")?;
        let c = store(ctx)?.transition_case(principal(ctx)?.id(), &id, to.into(), &r).await.map_err(ApiError::from)?;
        Ok(Case(c))
    }

    /// Give a case to a named, active person.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn assign_case(&self, ctx: &Context<'_>, id: ID, assignee_id: ID, rationale: String) -> ApiResult<Case> {
        let id = node_id(&id, "id")?;
        let to = node_id(&assignee_id, "assigneeId")?;
        let r = text(&rationale, "rationale")?;
        Ok(Case(store(ctx)?.assign_case(principal(ctx)?.id(), &id, &to, &r).await.map_err(ApiError::from)?))
    }

    /// Escalate a case to someone, saying why.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn escalate_case(&self, ctx: &Context<'_>, id: ID, to_id: ID, reason: String) -> ApiResult<Case> {
        let id = node_id(&id, "id")?;
        let to = node_id(&to_id, "toId")?;
        let r = text(&reason, "reason")?;
        Ok(Case(store(ctx)?.escalate_case(principal(ctx)?.id(), &id, &to, &r).await.map_err(ApiError::from)?))
    }

    /// Close a case: a resolution, a summary, verification evidence and no open
    /// mandatory task; records separately whether the risk was remediated and whether
    /// the finding is closed.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn close_case(&self, ctx: &Context<'_>, id: ID, input: CloseCaseInput) -> ApiResult<Case> {
        let id = node_id(&id, "id")?;
        let close = gm::CloseCase {
            resolution: input.resolution.into(),
            summary: text(&input.summary, "summary")?,
            risk_remediated: input.risk_remediated,
            finding_closed: input.finding_closed,
            verification: node_id(&input.verification_evidence_id, "verificationEvidenceId")?,
        };
        Ok(Case(store(ctx)?.close_case(principal(ctx)?.id(), &id, &close).await.map_err(ApiError::from)?))
    }

    /// Reopen a closed case; a reason is required.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn reopen_case(&self, ctx: &Context<'_>, id: ID, reason: String) -> ApiResult<Case> {
        let id = node_id(&id, "id")?;
        let r = text(&reason, "reason")?;
        Ok(Case(store(ctx)?.reopen_case(principal(ctx)?.id(), &id, &r).await.map_err(ApiError::from)?))
    }

    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn add_task(&self, ctx: &Context<'_>, case_id: ID, input: TaskInput) -> ApiResult<Task> {
        let case = node_id(&case_id, "caseId")?;
        let new = gm::NewTask {
            kind: input.kind.into(),
            title: text(&input.title, "title")?,
            assignee: input.assignee_id.map(|a| node_id(&a, "assigneeId")).transpose()?,
            mandatory: input.mandatory,
        };
        Ok(Task(store(ctx)?.add_task(principal(ctx)?.id(), &case, &new).await.map_err(ApiError::from)?))
    }

    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn complete_task(&self, ctx: &Context<'_>, id: ID, note: Option<String>) -> ApiResult<Task> {
        let id = node_id(&id, "id")?;
        let note = note.map(|n| text(&n, "note")).transpose()?;
        let t = store(ctx)?
            .finish_task(principal(ctx)?.id(), &id, gm::TaskStatus::Done, note.as_ref())
            .await
            .map_err(ApiError::from)?;
        Ok(Task(t))
    }

    /// Cancel a task; a reason is required.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn cancel_task(&self, ctx: &Context<'_>, id: ID, reason: String) -> ApiResult<Task> {
        let id = node_id(&id, "id")?;
        let reason = text(&reason, "reason")?;
        let t = store(ctx)?
            .finish_task(principal(ctx)?.id(), &id, gm::TaskStatus::Cancelled, Some(&reason))
            .await
            .map_err(ApiError::from)?;
        Ok(Task(t))
    }

    /// Attach an exhibit to an open case; the server computes its SHA-256. Evidence
    /// cannot be edited or deleted, only superseded.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn attach_evidence(&self, ctx: &Context<'_>, case_id: ID, input: EvidenceInput) -> ApiResult<Evidence> {
        let case = node_id(&case_id, "caseId")?;
        let new = gm::NewEvidence {
            kind: input.kind.into(),
            content: gm::EvidenceContent::parse(&input.content)?,
            source: label(&input.source, "source")?,
            collected_at: input.collected_at,
            supersedes: input.supersedes.map(|s| node_id(&s, "supersedes")).transpose()?,
            supersede_reason: input.supersede_reason.map(|r| text(&r, "supersedeReason")).transpose()?,
            refs: framework_refs(&input.refs)?,
        };
        Ok(Evidence(store(ctx)?.attach_evidence(principal(ctx)?.id(), &case, &new).await.map_err(ApiError::from)?))
    }
}
