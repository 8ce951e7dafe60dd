//! Cases, their tasks and evidence.
//!
//! Opening, assigning, moving, escalating, closing and reopening a case are decisions
//! (see [`Store::decide`]). Tasks and evidence are records, not decisions, but every
//! write of one also bumps the case's `rev`: a decision planned on an older `rev` (a
//! close that saw no open mandatory task) conflicts with it and is planned again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use surrealdb::types::RecordId;

use super::{Plan, PlanFuture, distinct, dt, refs_text};
use crate::domain::*;
use crate::store::STALE;
use crate::store::events::{EventDraft, RECORD_EVENT};
use crate::store::{Content, Page, PageRequest, Result, Store, StoreError, Vars, Where, rid, take};

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<CaseStatus>,
    pub severity: Option<Severity>,
    pub assignee: Option<NodeId>,
    /// Only cases still open (any status but closed).
    pub open: Option<bool>,
    /// Only open cases past their due time.
    pub overdue: bool,
    pub reference: Option<FrameworkRef>,
    pub subject: Option<NodeId>,
}

/// Which evidence to list.
#[derive(Debug, Clone, Default)]
pub struct EvidenceFilter {
    pub case: Option<NodeId>,
    pub kind: Option<EvidenceKind>,
    /// Evidence carrying this reference, or attached to a case that carries it.
    pub reference: Option<FrameworkRef>,
    pub collected_from: Option<DateTime<Utc>>,
    pub collected_to: Option<DateTime<Utc>>,
}

/// One line of a case's history.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub actor: NodeId,
    /// `decision`, `evidence`, `task_added`, `task_done`, `task_cancelled`, `traversal`.
    pub event: &'static str,
    pub record: NodeId,
    pub summary: String,
}

/// Who decides what about which case, and why: a case decision's record.
struct CaseDecision<'a> {
    actor: &'a NodeId,
    case: &'a NodeId,
    kind: DecisionKind,
    outcome: Outcome,
    rationale: &'a str,
}

/// What a case decision changes, given the case as it is.
struct CaseChange {
    set: String,
    /// Statements run before the case is updated (on other records).
    extra: String,
    vars: Vars,
    inputs: serde_json::Value,
    signals: Vec<NodeId>,
}

impl Store {
    pub async fn cases_by_id(&self, ids: &[NodeId]) -> Result<Vec<Case>> {
        self.records_by_id(Table::Case, ids).await
    }

    pub async fn case(&self, id: &NodeId) -> Result<Case> {
        self.cases_by_id(std::slice::from_ref(id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    pub async fn cases(&self, f: &CaseFilter, page: &PageRequest) -> Result<Page<Case>> {
        let w = Where::default()
            .eq("status", f.status.map(|s| s.as_str()))
            .eq("severity", f.severity.map(|s| s.as_str()))
            .eq("assignee", f.assignee.as_ref().map(rid))
            .flag(f.open == Some(true), "status != 'closed'")
            .flag(f.open == Some(false), "status = 'closed'")
            .flag(f.overdue, "status != 'closed' AND due_at < time::now()")
            .when("refs CONTAINSANY $refs", "refs", f.reference.as_ref().map(FrameworkRef::forms))
            .when("$subject IN subjects", "subject", f.subject.as_ref().map(rid));
        self.page_where(Table::Case, "case", w, page).await
    }

    /// Open a case from alerts (promote, or merge several into one), as a decision.
    pub async fn open_case(&self, actor: &NodeId, new: &NewCase, sla: &SlaHours) -> Result<Case> {
        if let Some(a) = &new.assignee {
            self.active_person(a, "assignee").await?;
        }
        for s in &new.subjects {
            if !matches!(s.table(), Table::Nhi | Table::Secret | Table::System) {
                return Err(ValueError::new("subjects", format!("{s} is not an nhi, secret or system")).into());
            }
        }
        let id = &NodeId::generate(Table::Case);
        self.decide(|| Box::pin(async move {
            let alerts = self.alerts_by_id(&new.alerts).await?;
            if let Some(missing) = new.alerts.iter().find(|a| !alerts.iter().any(|x| &x.id == *a)) {
                return Err(StoreError::NotFound(missing.to_string()));
            }
            if let Some(taken) = alerts.iter().find(|a| a.status != AlertStatus::New) {
                return Err(StoreError::Conflict(format!("{} is already {}", taken.id, taken.status)));
            }
            let subjects = distinct(alerts.iter().filter_map(|a| a.subject.clone()).chain(new.subjects.iter().cloned()));
            let found = self.nodes_any(&subjects).await?;
            if let Some(missing) = subjects.iter().find(|s| !found.contains_key(s)) {
                return Err(StoreError::NotFound(missing.to_string()));
            }
            let severity = new
                .severity
                .or_else(|| alerts.iter().map(|a| a.severity).max_by_key(|s| s.rank()))
                .unwrap_or(Severity::Medium);
            let now = Utc::now();
            let refs = distinct_refs(new.refs.iter().chain(alerts.iter().flat_map(|a| a.refs.iter())));
            let content = Content::new()
                .set("title", new.title.as_str())
                .opt("description", new.description.as_ref().map(|d| d.as_str().to_owned()))
                .set("status", CaseStatus::Open.as_str())
                .set("severity", severity.as_str())
                .set("subjects", subjects.iter().map(rid).collect::<Vec<_>>())
                .opt("assignee", new.assignee.as_ref().map(rid))
                .set("opened_by", rid(actor))
                .set("opened_at", dt(now))
                .set("due_at", dt(sla.due_at(severity, now)))
                .set("status_changed_at", dt(now))
                .set("refs", refs_text(&refs))
                .set("rev", 0i64)
                .set("updated_at", dt(now))
                .into_value();
            Ok(Plan { leaves_signins: false,
                draft: DecisionDraft {
                    kind: DecisionKind::OpenCase,
                    outcome: Outcome::Opened,
                    actor: actor.clone(),
                    subject: id.clone(),
                    case: Some(id.clone()),
                    rationale: new.title.as_str().to_owned(),
                    signals: new.alerts.clone(),
                    policy: Some(self.current_policy().await?.reference()),
                    violation: None,
                    refs: refs.clone(),
                    inputs: serde_json::json!({ "alerts": alerts, "severity": severity, "due_in_hours": sla.hours(severity) }),
                },
                effects: format!(
                    "FOR $a IN $alerts {{ IF $a.status != 'new' {{ THROW '{STALE}' }} }};
                     CREATE ONLY $case CONTENT $content;
                     UPDATE $alerts SET status = 'promoted', case = $case;"
                ),
                vars: Vars::new()
                    .set("alerts", new.alerts.iter().map(rid).collect::<Vec<_>>())
                    .set("case", rid(id))
                    .set("content", content),
            })
        }))
        .await?;
        self.case(id).await
    }

    /// A decision about a case: plan it on the case as it is now, refuse it if the
    /// case moved on underneath.
    async fn case_decision<'a>(
        &'a self,
        what: CaseDecision<'a>,
        change: impl Fn(Case) -> PlanFuture<'a, CaseChange> + Send + Sync + 'a,
    ) -> Result<Case> {
        let CaseDecision { actor, case: id, kind, outcome, rationale } = what;
        let change = &change;
        if id.table() != Table::Case {
            return Err(ValueError::new("id", format!("{id} is not a case")).into());
        }
        self.decide(|| {
            Box::pin(async move {
                let case = self.case(id).await?;
                let CaseChange { set, extra, vars, inputs, signals } = change(case.clone()).await?;
                let alerts: Vec<NodeId> =
                    self.alerts_of_cases(std::slice::from_ref(id)).await?.into_iter().map(|a| a.id).collect();
                Ok(Plan {
                    leaves_signins: false,
                    draft: DecisionDraft {
                        kind,
                        outcome,
                        actor: actor.clone(),
                        subject: id.clone(),
                        case: Some(id.clone()),
                        rationale: rationale.to_owned(),
                        signals: distinct(alerts.into_iter().chain(signals)),
                        policy: Some(self.current_policy().await?.reference()),
                        violation: None,
                        refs: case.refs.clone(),
                        inputs: serde_json::json!({ "case": case, "change": inputs }),
                    },
                    effects: format!(
                        "IF $case.rev != $rev {{ THROW '{STALE}' }};
                     {extra}
                     UPDATE $case SET {set}, rev += 1, updated_at = time::now();"
                    ),
                    vars: vars.set("case", rid(id)).set("rev", case.rev as i64),
                })
            })
        })
        .await?;
        self.case(id).await
    }

    /// Move a case to another status of its state machine.
    pub async fn transition_case(&self, actor: &NodeId, id: &NodeId, to: CaseStatus, rationale: &Text) -> Result<Case> {
        self.case_decision(
            CaseDecision {
                actor,
                case: id,
                kind: DecisionKind::TransitionCase,
                outcome: Outcome::Transitioned,
                rationale: rationale.as_str(),
            },
            move |c: Case| {
                Box::pin(async move {
                    c.status.check_transition(to)?;
                    Ok(CaseChange {
                        extra: String::new(),
                        set: "status = $to, status_changed_at = time::now()".into(),
                        vars: Vars::new().set("to", to.as_str()),
                        inputs: serde_json::json!({ "from": c.status, "to": to }),
                        signals: vec![],
                    })
                })
            },
        )
        .await
    }

    /// Hand a case to a named person.
    pub async fn assign_case(&self, actor: &NodeId, id: &NodeId, assignee: &NodeId, rationale: &Text) -> Result<Case> {
        let person = &self.active_person(assignee, "assignee").await?;
        self.case_decision(
            CaseDecision {
                actor,
                case: id,
                kind: DecisionKind::AssignCase,
                outcome: Outcome::Assigned,
                rationale: rationale.as_str(),
            },
            move |c: Case| {
                Box::pin(async move {
                    if c.status.is_closed() {
                        return Err(ValueError::new("status", "the case is closed; reopen it first").into());
                    }
                    Ok(CaseChange {
                        extra: String::new(),
                        set: "assignee = $assignee".into(),
                        vars: Vars::new().set("assignee", rid(&person.id)),
                        inputs: serde_json::json!({ "from": c.assignee, "to": person.id }),
                        signals: vec![],
                    })
                })
            },
        )
        .await
    }

    /// Escalate a case to someone, saying why.
    pub async fn escalate_case(&self, actor: &NodeId, id: &NodeId, to: &NodeId, reason: &Text) -> Result<Case> {
        let person = &self.active_person(to, "to").await?;
        self.case_decision(
            CaseDecision { actor, case: id, kind: DecisionKind::EscalateCase, outcome: Outcome::Escalated, rationale: reason.as_str() },
            move |c: Case| Box::pin(async move {
            if c.status != CaseStatus::Escalated {
                c.status.check_transition(CaseStatus::Escalated)?;
            }
            Ok(CaseChange {
                extra: String::new(),
                set: "status = 'escalated', status_changed_at = time::now(), escalated_to = $to, escalation_reason = $reason"
                    .into(),
                vars: Vars::new().set("to", rid(&person.id)).set("reason", reason.as_str()),
                inputs: serde_json::json!({ "from": c.status, "escalated_to": person.id }),
                signals: vec![],
            })
        }))
        .await
    }

    /// Close a case: resolution, summary, live verification evidence, and no open
    /// mandatory task. Whether the risk was remediated and whether the finding is closed
    /// are recorded separately.
    pub async fn close_case(&self, actor: &NodeId, id: &NodeId, close: &CloseCase) -> Result<Case> {
        self.case_decision(
            CaseDecision {
                actor,
                case: id,
                kind: DecisionKind::CloseCase,
                outcome: Outcome::Closed,
                rationale: close.summary.as_str(),
            },
            move |c: Case| {
                Box::pin(async move {
                    let tasks = self.tasks_of_cases(std::slice::from_ref(id)).await?;
                    let open_mandatory: Vec<NodeId> = tasks
                        .iter()
                        .filter(|t| t.mandatory && t.status == TaskStatus::Open)
                        .map(|t| t.id.clone())
                        .collect();
                    let evidence = self.evidence_by_id(std::slice::from_ref(&close.verification)).await?;
                    let verification = evidence
                        .first()
                        .map(|e| VerificationFacts { same_case: e.case == *id, superseded: e.superseded_by.is_some() });
                    check_close(&CloseFacts { status: c.status, verification, open_mandatory_tasks: open_mandatory })?;
                    let live: Vec<NodeId> = self
                        .evidence_of_cases(std::slice::from_ref(id))
                        .await?
                        .into_iter()
                        .filter(|e| e.superseded_by.is_none())
                        .map(|e| e.id)
                        .collect();
                    Ok(CaseChange {
                extra: String::new(),
                set: "status = 'closed', status_changed_at = time::now(), resolution = $resolution, summary = $summary,
                      risk_remediated = $remediated, finding_closed = $finding_closed, closed_at = time::now(),
                      closed_by = $actor"
                    .into(),
                vars: Vars::new()
                    .set("resolution", close.resolution.as_str())
                    .set("summary", close.summary.as_str())
                    .set("remediated", close.risk_remediated)
                    .set("finding_closed", close.finding_closed)
                    .set("actor", rid(actor)),
                inputs: serde_json::json!({
                    "resolution": close.resolution,
                    "risk_remediated": close.risk_remediated,
                    "finding_closed": close.finding_closed,
                    "verification_evidence": evidence.first(),
                    "tasks": tasks,
                }),
                signals: distinct(std::iter::once(close.verification.clone()).chain(live)),
            })
                })
            },
        )
        .await
    }

    /// Reopen a closed case, with a reason.
    pub async fn reopen_case(&self, actor: &NodeId, id: &NodeId, reason: &Text) -> Result<Case> {
        self.case_decision(
            CaseDecision { actor, case: id, kind: DecisionKind::ReopenCase, outcome: Outcome::Reopened, rationale: reason.as_str() },
            move |c: Case| {
            Box::pin(async move {
                if !c.status.is_closed() {
                    return Err(ValueError::new(
                        "status",
                        format!("only a closed case is reopened; this one is {}", c.status),
                    )
                    .into());
                }
                Ok(CaseChange {
                    extra: String::new(),
                    set: "status = 'investigating', status_changed_at = time::now(), reopen_reason = $reason,
                      resolution = NONE, closed_at = NONE, closed_by = NONE"
                        .into(),
                    vars: Vars::new().set("reason", reason.as_str()),
                    inputs: serde_json::json!({ "previous_resolution": c.resolution, "previous_summary": c.summary }),
                    signals: vec![],
                })
            })
        })
        .await
    }

    /// Group more alerts into an open case.
    pub async fn merge_alerts(
        &self,
        actor: &NodeId,
        id: &NodeId,
        alert_ids: &[NodeId],
        rationale: &Text,
    ) -> Result<Case> {
        self.case_decision(
            CaseDecision {
                actor,
                case: id,
                kind: DecisionKind::MergeAlerts,
                outcome: Outcome::Merged,
                rationale: rationale.as_str(),
            },
            move |c: Case| {
                Box::pin(async move {
                    if c.status.is_closed() {
                        return Err(ValueError::new("status", "the case is closed; reopen it first").into());
                    }
                    let alerts = self.alerts_by_id(alert_ids).await?;
                    if let Some(missing) = alert_ids.iter().find(|a| !alerts.iter().any(|x| &x.id == *a)) {
                        return Err(StoreError::NotFound(missing.to_string()));
                    }
                    if let Some(taken) = alerts.iter().find(|a| a.status != AlertStatus::New) {
                        return Err(StoreError::Conflict(format!("{} is already {}", taken.id, taken.status)));
                    }
                    let subjects = distinct(c.subjects_with(alerts.iter().filter_map(|a| a.subject.clone())));
                    Ok(CaseChange {
                        set: "subjects = $subjects".into(),
                        extra: format!(
                            "FOR $a IN $alerts {{ IF $a.status != 'new' {{ THROW '{STALE}' }} }};
                     UPDATE $alerts SET status = 'promoted', case = $case;"
                        ),
                        vars: Vars::new()
                            .set("subjects", subjects.iter().map(rid).collect::<Vec<_>>())
                            .set("alerts", alert_ids.iter().map(rid).collect::<Vec<_>>()),
                        inputs: serde_json::json!({ "alerts": alerts }),
                        signals: alert_ids.to_vec(),
                    })
                })
            },
        )
        .await
    }
}

impl Case {
    fn subjects_with(&self, more: impl Iterator<Item = NodeId>) -> impl Iterator<Item = NodeId> {
        self.subjects.clone().into_iter().chain(more)
    }
}

fn distinct_refs<'a>(refs: impl Iterator<Item = &'a FrameworkRef>) -> Vec<FrameworkRef> {
    let mut out: Vec<FrameworkRef> = Vec::new();
    for r in refs {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

/// Evidence is read with `superseded_by` computed from the records that supersede it,
/// so nothing is ever written back to an exhibit.
const EVIDENCE_FIELDS: &str =
    "*, (SELECT VALUE id FROM evidence WHERE supersedes = $parent.id ORDER BY id LIMIT 1)[0] AS superseded_by";

impl Store {
    pub async fn tasks_by_id(&self, ids: &[NodeId]) -> Result<Vec<Task>> {
        self.records_by_id(Table::Task, ids).await
    }

    pub async fn tasks_of_cases(&self, cases: &[NodeId]) -> Result<Vec<Task>> {
        let rids: Vec<RecordId> = cases.iter().map(rid).collect();
        self.read_in("SELECT * FROM task WHERE case IN $cases ORDER BY id", "cases", rids).await
    }

    pub async fn evidence_by_id(&self, ids: &[NodeId]) -> Result<Vec<Evidence>> {
        let rids: Vec<RecordId> = ids.iter().filter(|i| i.table() == Table::Evidence).map(rid).collect();
        if rids.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!("SELECT {EVIDENCE_FIELDS} FROM $ids");
        let mut resp = self.read(&sql, &Vars::new().set("ids", rids)).await?;
        take(&mut resp, 0)
    }

    pub async fn evidence_of_cases(&self, cases: &[NodeId]) -> Result<Vec<Evidence>> {
        let rids: Vec<RecordId> = cases.iter().map(rid).collect();
        let sql = format!("SELECT {EVIDENCE_FIELDS} FROM evidence WHERE case IN $cases ORDER BY id");
        self.read_in(&sql, "cases", rids).await
    }

    /// Evidence by case, kind, framework reference and collection window.
    pub async fn evidence(&self, f: &EvidenceFilter, page: &PageRequest) -> Result<Page<Evidence>> {
        let mut conds = Vec::new();
        let mut vars = Vars::new();
        if let Some(c) = &f.case {
            conds.push("case = $case");
            vars = vars.set("case", rid(c));
        }
        if let Some(k) = f.kind {
            conds.push("kind = $kind");
            vars = vars.set("kind", k.as_str());
        }
        if let Some(r) = &f.reference {
            conds.push("(refs CONTAINSANY $refs OR case.refs CONTAINSANY $refs)");
            vars = vars.set("refs", r.forms());
        }
        if let Some(t) = f.collected_from {
            conds.push("collected_at >= $from");
            vars = vars.set("from", dt(t));
        }
        if let Some(t) = f.collected_to {
            conds.push("collected_at < $to");
            vars = vars.set("to", dt(t));
        }
        let prelude = format!("LET $rows = (SELECT {EVIDENCE_FIELDS} FROM evidence);");
        self.page_of(Table::Evidence, &prelude, "$rows", conds, vars, page).await
    }

    /// Attach an exhibit to an open case. The server computes its SHA-256; a
    /// superseding exhibit names the one it replaces (of the same case, not already
    /// superseded) and why.
    pub async fn attach_evidence(&self, actor: &NodeId, case: &NodeId, new: &NewEvidence) -> Result<Evidence> {
        new.check()?;
        let id = NodeId::generate(Table::Evidence);
        let now = Utc::now();
        let content = Content::new()
            .set("case", rid(case))
            .set("kind", new.kind.as_str())
            .set("content", new.content.as_str())
            .set("sha256", sha256_hex(new.content.as_str().as_bytes()))
            .set("source", new.source.as_str())
            .set("collected_at", dt(new.collected_at.unwrap_or(now)))
            .set("collected_by", rid(actor))
            .set("recorded_at", dt(now))
            .opt("supersedes", new.supersedes.as_ref().map(rid))
            .opt("supersede_reason", new.supersede_reason.as_ref().map(|r| r.as_str().to_owned()))
            .set("refs", refs_text(&new.refs))
            .into_value();
        let sql = format!(
            "BEGIN;
             IF !record::exists($case) {{ THROW 'NOT_FOUND: ' + <string>$case }};
             IF $case.status = 'closed' {{ THROW 'INVALID:case: the case is closed; reopen it to add evidence' }};
             IF $old != NONE {{
                 IF !record::exists($old) {{ THROW 'INVALID:supersedes: no evidence ' + <string>$old }};
                 IF $old.case != $case {{ THROW 'INVALID:supersedes: the evidence belongs to another case' }};
                 IF count(SELECT VALUE id FROM evidence WHERE supersedes = $old) > 0 {{
                     THROW 'CONFLICT: ' + <string>$old + ' has already been superseded'
                 }};
             }};
             CREATE ONLY $id CONTENT $content;
             UPDATE $case SET rev += 1, updated_at = time::now();
             {RECORD_EVENT}
             COMMIT;"
        );
        let event = EventDraft {
            kind: EventKind::Evidence,
            case: Some(case.clone()),
            record: id.clone(),
            actor: Some(actor.clone()),
            also: None,
            summary: format!(
                "{} from {} (sha256 {})",
                new.kind,
                new.source.as_str(),
                sha256_hex(new.content.as_str().as_bytes())
            ),
            detail: Some(new.kind.as_str().to_owned()),
        };
        let vars = event.bind(
            Vars::new()
                .set("case", rid(&expect_case(case)?))
                .set("old", new.supersedes.as_ref().map(rid))
                .set("id", rid(&id))
                .set("content", content),
        );
        self.write(&sql, &vars).await?;
        self.evidence_by_id(std::slice::from_ref(&id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("attached evidence not found".into()))
    }

    /// Add a task to an open case.
    pub async fn add_task(&self, actor: &NodeId, case: &NodeId, new: &NewTask) -> Result<Task> {
        if let Some(a) = &new.assignee {
            self.active_person(a, "assignee").await?;
        }
        let id = NodeId::generate(Table::Task);
        let content = Content::new()
            .set("case", rid(case))
            .set("kind", new.kind.as_str())
            .set("title", new.title.as_str())
            .opt("assignee", new.assignee.as_ref().map(rid))
            .set("mandatory", new.mandatory)
            .set("status", TaskStatus::Open.as_str())
            .set("created_by", rid(actor))
            .set("created_at", dt(Utc::now()))
            .into_value();
        let sql = format!(
            "BEGIN;
             IF !record::exists($case) {{ THROW 'NOT_FOUND: ' + <string>$case }};
             IF $case.status = 'closed' {{ THROW 'INVALID:case: the case is closed; reopen it to add tasks' }};
             CREATE ONLY $id CONTENT $content;
             UPDATE $case SET rev += 1, updated_at = time::now();
             {RECORD_EVENT}
             COMMIT;"
        );
        let event = EventDraft {
            kind: EventKind::TaskAdded,
            case: Some(case.clone()),
            record: id.clone(),
            actor: Some(actor.clone()),
            also: new.assignee.clone(),
            summary: format!(
                "{} task{}: {}",
                new.kind,
                if new.mandatory { " (mandatory)" } else { "" },
                new.title.as_str()
            ),
            detail: Some(new.kind.as_str().to_owned()),
        };
        let vars =
            event.bind(Vars::new().set("case", rid(&expect_case(case)?)).set("id", rid(&id)).set("content", content));
        self.write(&sql, &vars).await?;
        self.tasks_by_id(std::slice::from_ref(&id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Mark an open task done or cancelled, with a note.
    pub async fn finish_task(
        &self,
        actor: &NodeId,
        id: &NodeId,
        status: TaskStatus,
        note: Option<&Text>,
    ) -> Result<Task> {
        if status == TaskStatus::Open {
            return Err(ValueError::new("status", "a task is finished as done or cancelled").into());
        }
        if status == TaskStatus::Cancelled && note.is_none() {
            return Err(ValueError::new("note", "say why the task is cancelled").into());
        }
        // The event's case and the task's assignee are read in the transaction.
        let sql = format!(
            "BEGIN;
             IF !record::exists($id) {{ THROW 'NOT_FOUND: ' + <string>$id }};
             IF $id.status != 'open' {{ THROW 'CONFLICT: ' + <string>$id + ' is already ' + $id.status }};
             UPDATE $id SET status = $status, note = $note, completed_by = $actor, completed_at = time::now();
             UPDATE $id.case SET rev += 1, updated_at = time::now();
             LET $ev_case = $id.case;
             LET $ev_also = $id.assignee;
             LET $ev_summary = $id.title + ': ' + $status + (IF $note != NONE {{ ' (' + $note + ')' }} ELSE {{ '' }});
             {RECORD_EVENT}
             COMMIT;"
        );
        if id.table() != Table::Task {
            return Err(ValueError::new("id", format!("{id} is not a task")).into());
        }
        let event = EventDraft {
            kind: EventKind::TaskFinished,
            case: None,
            record: id.clone(),
            actor: Some(actor.clone()),
            also: None,
            summary: String::new(),
            detail: Some(status.as_str().to_owned()),
        };
        let vars = event.bind(
            Vars::new()
                .set("id", rid(id))
                .set("status", status.as_str())
                .set("note", note.map(|n| n.as_str().to_owned()))
                .set("actor", rid(actor)),
        );
        self.write(&sql, &vars).await?;
        self.tasks_by_id(std::slice::from_ref(id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// A case's history, oldest first: its decisions, evidence and tasks.
    pub async fn timeline(&self, case: &NodeId) -> Result<Vec<TimelineEntry>> {
        let decisions = self
            .decisions(
                &super::DecisionFilter { case: Some(case.clone()), ..Default::default() },
                &PageRequest { first: 1000, after: None, count: false, ..Default::default() },
            )
            .await?
            .items;
        let evidence = self.evidence_of_cases(std::slice::from_ref(case)).await?;
        let tasks = self.tasks_of_cases(std::slice::from_ref(case)).await?;
        let mut out = Vec::new();
        for d in decisions {
            out.push(TimelineEntry {
                at: d.at,
                actor: d.actor.clone(),
                event: "decision",
                summary: format!("{} {}: {}", d.kind, d.outcome, d.rationale),
                record: d.id,
            });
        }
        for e in evidence {
            out.push(TimelineEntry {
                at: e.recorded_at,
                actor: e.collected_by.clone(),
                event: "evidence",
                summary: format!("{} from {} (sha256 {})", e.kind, e.source, e.sha256),
                record: e.id,
            });
        }
        for t in self.traversals_of(case).await? {
            out.push(TimelineEntry {
                at: t.at,
                actor: t.actor.clone(),
                event: "traversal",
                summary: format!(
                    "{} from {}{} within {} hops{}: {} reached{}",
                    t.query,
                    t.origin,
                    t.target.as_ref().map(|x| format!(" to {x}")).unwrap_or_default(),
                    t.max_hops,
                    t.as_of.map(|a| format!(" as of {a}")).unwrap_or_default(),
                    t.reached,
                    if t.truncated { " (truncated)" } else { "" }
                ),
                record: t.case.clone(),
            });
        }
        for t in tasks {
            out.push(TimelineEntry {
                at: t.created_at,
                actor: t.created_by.clone(),
                event: "task_added",
                summary: format!("{} task{}: {}", t.kind, if t.mandatory { " (mandatory)" } else { "" }, t.title),
                record: t.id.clone(),
            });
            if let (Some(at), Some(by)) = (t.completed_at, t.completed_by.clone()) {
                out.push(TimelineEntry {
                    at,
                    actor: by,
                    event: if t.status == TaskStatus::Done { "task_done" } else { "task_cancelled" },
                    summary: format!("{}{}", t.title, t.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()),
                    record: t.id,
                });
            }
        }
        out.sort_by_key(|e| e.at);
        Ok(out)
    }
}

fn expect_case(id: &NodeId) -> Result<NodeId> {
    if id.table() == Table::Case {
        Ok(id.clone())
    } else {
        Err(ValueError::new("case", format!("{id} is not a case")).into())
    }
}
