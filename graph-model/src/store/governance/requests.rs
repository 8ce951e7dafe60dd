//! Requests, approvals, risk acceptances, emergency access and exceptions.
//!
//! Deciding a request gathers the facts the policy needs (the request as it is now, the
//! actor's roles, who owns the subject, how critical the target is), lets the policy in
//! force say yes or name the rule that says no, and then writes the decision and its
//! effect in one transaction: an approved grant opens the access edge with its expiry,
//! a revocation changes the NHI and closes its access, an exception is created, a
//! rejected emergency access is closed again. A refusal writes only its own record.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use surrealdb::types::RecordId;

use super::guards::{Actor, Guards};
use super::{Plan, distinct, dt, refs_text};
use crate::domain::*;
use crate::store::STALE;
use crate::store::edges::{edge_content, open_key};
use crate::store::{
    Content, Page, PageRequest, Result, Store, StoreError, Vars, Where, edge_rid, json_value, rid, take,
};

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub kind: Option<RequestKind>,
    pub requester: Option<NodeId>,
    pub subject: Option<NodeId>,
    pub case: Option<NodeId>,
    /// Approved requests whose approval has lapsed and needs revalidation.
    pub revalidation_due: bool,
    /// Emergency access still unapproved past its window.
    pub post_approval_overdue: bool,
}

/// What rules look at of a request's target, `system` being its record if there is one.
fn target_facts(target: &NodeId, system: Option<&System>) -> Result<TargetFacts> {
    let s = system.ok_or_else(|| StoreError::Invalid(ValueError::new("target", format!("no system {target}"))))?;
    Ok(TargetFacts { criticality: s.criticality, environment: s.environment })
}

/// The facts about a request's subject and target that rules look at.
struct Stakes {
    owners: OwnerFacts,
    target: Option<TargetFacts>,
}

impl Store {
    pub async fn requests_by_id(&self, ids: &[NodeId]) -> Result<Vec<Request>> {
        self.records_by_id(Table::Request, ids).await
    }

    pub async fn request(&self, id: &NodeId) -> Result<Request> {
        self.requests_by_id(std::slice::from_ref(id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// The requests filed within each of `cases`.
    pub async fn requests_of_cases(&self, cases: &[NodeId]) -> Result<Vec<Request>> {
        let rids: Vec<RecordId> = cases.iter().map(rid).collect();
        self.read_in("SELECT * FROM request WHERE case IN $cases ORDER BY id", "cases", rids).await
    }

    pub async fn requests(&self, f: &RequestFilter, page: &PageRequest) -> Result<Page<Request>> {
        let w = Where::default()
            .eq("status", f.status.map(|s| s.as_str()))
            .eq("kind", f.kind.map(|k| k.as_str()))
            .eq("requester", f.requester.as_ref().map(rid))
            .eq("subject", f.subject.as_ref().map(rid))
            .eq("case", f.case.as_ref().map(rid))
            .flag(
                f.revalidation_due,
                "status = 'approved' AND approval_expires_at != NONE AND approval_expires_at <= time::now()",
            )
            .flag(
                f.post_approval_overdue,
                "status = 'emergency_active' AND post_approval_due != NONE AND post_approval_due <= time::now()",
            );
        self.page_where(Table::Request, "request", w, page).await
    }

    async fn stakes(&self, subject: &NodeId, target: Option<&NodeId>) -> Result<Stakes> {
        let target_facts = async {
            let Some(t) = target else { return Ok(None) };
            let systems = self.nodes_by_id::<System>(std::slice::from_ref(t)).await?;
            target_facts(t, systems.get(t)).map(Some)
        };
        let (owners, target) = futures::try_join!(self.owner_facts(subject), target_facts)?;
        Ok(Stakes { owners, target })
    }

    /// What a decision on `request` is judged on besides the request itself: the policy
    /// in force, the actor's standing, and the subject's owners and target, read in one
    /// query. Read one by one they were four transactions, and SurrealDB 3.3 compiles the
    /// field definitions of each table a transaction reads (a tenth of the server's CPU
    /// under a burst of approvals at 100,000 NHIs).
    async fn approval_context(
        &self,
        actor: &Actor,
        request: &Request,
    ) -> Result<(Policy, (PersonFacts, Vec<Role>), Stakes)> {
        if actor.id.table() != Table::Person {
            return Err(StoreError::Invalid(ValueError::new("id", format!("{} is not a person", actor.id))));
        }
        let target = request.target.as_ref().filter(|t| t.table() == Table::System);
        // Who owns the subject from the graph index when a first plan may (the commit
        // checks it against the store); else from the store, in the same round trip.
        let indexed = self.indexed_owner_facts(&request.subject)?;
        let sql = format!(
            "{owners}
             SELECT * FROM (SELECT VALUE current FROM meta:policy);
             SELECT * FROM $actor;
             {target}",
            owners = if indexed.is_some() { String::new() } else { super::owner_facts_sql() },
            target = if target.is_some() { "SELECT * FROM $target;" } else { "RETURN [];" },
        );
        let mut vars = Vars::new().set("node", rid(&request.subject)).set("actor", rid(&actor.id));
        if let Some(t) = target {
            vars = vars.set("target", rid(t));
        }
        let mut resp = self.read(&sql, &vars).await?;
        let (owners, first) = match indexed {
            Some(owners) => (owners, 0),
            None => (super::owner_facts_at(&mut resp, 0)?, super::OWNER_FACTS_STATEMENTS),
        };
        let policy: Vec<Policy> = take(&mut resp, first)?;
        let person: Vec<Person> = take(&mut resp, first + 1)?;
        let system: Vec<System> = take(&mut resp, first + 2)?;
        let policy = super::decisions::in_force(policy)?;
        let person = person.into_iter().next().ok_or_else(|| StoreError::NotFound(actor.id.to_string()))?;
        let target = request.target.as_ref().map(|t| target_facts(t, system.first())).transpose()?;
        Ok((policy, actor.standing(person)?, Stakes { owners, target }))
    }

    /// A reduction names access in force with a higher privilege than the one it asks.
    pub(super) async fn check_reduction(&self, new: &NewRequest) -> Result<()> {
        let (Some(target), Some(privilege)) = (&new.target, new.privilege) else { return Ok(()) };
        let sql = "SELECT VALUE privilege FROM can_access WHERE open_key = $key";
        let mut resp = self.read(sql, &Vars::new().set("key", format!("{}|{target}", new.subject))).await?;
        let current: Vec<Privilege> = take(&mut resp, 0)?;
        match current.into_iter().max() {
            Some(c) if c > privilege => Ok(()),
            Some(c) => Err(ValueError::new(
                "privilege",
                format!("{} holds {c} on {target}; a reduction asks for less than that", new.subject),
            )
            .into()),
            None => {
                Err(ValueError::new("target", format!("{} has no access to {target} in force", new.subject)).into())
            }
        }
    }

    /// File a request as `requester`. A grant the policy denies automatically (an NHI
    /// without an active owner) is recorded as denied, with the decision that denied
    /// it; emergency access is granted at once and must be approved afterwards.
    pub async fn create_request(&self, requester: &NodeId, new: &NewRequest) -> Result<Request> {
        if new.kind == RequestKind::Change {
            return Err(
                ValueError::new("kind", "a change request is filed by the mutation that makes the change").into()
            );
        }
        new.check()?;
        if self.nodes_any(std::slice::from_ref(&new.subject)).await?.is_empty() {
            return Err(StoreError::Invalid(ValueError::new("subject", format!("no {}", new.subject))));
        }
        if let Some(c) = &new.case {
            self.case(c).await.map_err(|_| StoreError::Invalid(ValueError::new("case", format!("no case {c}"))))?;
        }
        if new.kind == RequestKind::ReducePrivilege {
            self.check_reduction(new).await?;
        }
        let id = &NodeId::generate(Table::Request);
        let policy = self.current_policy().await?;
        let stakes = self.stakes(&new.subject, new.target.as_ref()).await?;
        let high = stakes.target.is_some_and(|t| new.privilege.is_some_and(|p| t.privileged(p)));
        let needed = policy.approvals_needed(new.kind, high);
        let deny = policy.automated_deny(new.kind, stakes.owners.has_active_owner());
        // Break-glass access passes the same automatic checks as a grant; when they
        // pass, it is in force at once.
        if new.kind == RequestKind::EmergencyAccess && deny.is_none() {
            return self.emergency_access(requester, id, new).await;
        }
        let status = if deny.is_some() { RequestStatus::Denied } else { RequestStatus::Pending };
        let content = request_content(new, requester, status, needed, Utc::now())
            .opt("denied_by_rule", deny.as_ref().map(|v| v.rule.as_str()))
            .into_value();
        match deny {
            None => {
                let sql = "CREATE ONLY $id CONTENT $content;";
                self.write_beside_signins(sql, &Vars::new().set("id", rid(id)).set("content", content)).await?;
            }
            Some(ref violation) => {
                let (policy, stakes) = (&policy, &stakes);
                // The deny is a decision like any other: recorded, with the rule and
                // policy version, so the override that may follow has something to cite.
                let content = &content;
                self.decide(|| {
                    Box::pin(async move {
                        Ok(Plan {
                            leaves_signins: false,
                            draft: DecisionDraft {
                                kind: DecisionKind::AutomatedDeny,
                                outcome: Outcome::Denied,
                                actor: requester.clone(),
                                subject: id.clone(),
                                case: new.case.clone(),
                                rationale: violation.message.clone(),
                                signals: vec![],
                                policy: Some(policy.reference()),
                                violation: None,
                                refs: new.refs.clone(),
                                inputs: json!({
                                    "rule": violation.rule,
                                    "subject_owners": stakes.owners.owners,
                                    "policy_text": policy.text(),
                                }),
                            },
                            effects: "CREATE ONLY $id CONTENT $content;".into(),
                            vars: Vars::new().set("id", rid(id)).set("content", content.clone()),
                        })
                    })
                })
                .await?;
            }
        }
        self.request(id).await
    }

    /// Break-glass access: the access edge opens now, with the decision that opened
    /// it, and the request waits for approval after the fact.
    async fn emergency_access(&self, requester: &NodeId, id: &NodeId, new: &NewRequest) -> Result<Request> {
        let (Some(target), Some(privilege)) = (&new.target, new.privilege) else {
            return Err(ValueError::new("target", "emergency access names a system and a privilege").into());
        };
        self.decide(|| {
            Box::pin(async move {
                let policy = self.current_policy().await?;
                let stakes = self.stakes(&new.subject, Some(target)).await?;
                if let Some(v) = policy.automated_deny(new.kind, stakes.owners.has_active_owner()) {
                    // The owner left between the check and this plan.
                    return Err(StoreError::Conflict(format!("{}: file the request again", v.message)));
                }
                let high = stakes.target.is_some_and(|t| t.privileged(privilege));
                let now = Utc::now();
                // It lasts no longer than the window in which it must be approved; an
                // approval extends it to the approved lifetime.
                let due = policy.emergency_window().map(|w| now + w);
                let asked = now + policy.approval_lifetime(new.duration_days).unwrap_or(Duration::days(1));
                let lifetime = due.map_or(asked, |d| asked.min(d)) - now;
                let edge = NewEdge {
                    kind: EdgeKind::CanAccess,
                    from: new.subject.clone(),
                    to: target.clone(),
                    attrs: EdgeAttrs { privilege: Some(privilege), mechanism: None, expires_at: Some(now + lifetime) },
                };
                let edge_id = EdgeId::generate(EdgeKind::CanAccess);
                let content = request_content(
                    new,
                    requester,
                    RequestStatus::EmergencyActive,
                    policy.approvals_needed(new.kind, high),
                    now,
                )
                .opt("post_approval_due", due.map(dt))
                .set("granted_edge", edge_id.to_string())
                .into_value();
                let mut vars = Vars::new().set("id", rid(id)).set("content", content);
                let grant = grant_statements(&edge, &edge_id, now, &mut vars);
                let mut guards = Guards::default().policy(&policy).owners(&new.subject, &stakes.owners);
                if let Some(t) = &stakes.target {
                    guards = guards.system(target, t);
                }
                let (checks, vars) = guards.finish(vars);
                let effects = format!("{checks}{grant}");
                Ok(Plan {
                    leaves_signins: false,
                    draft: DecisionDraft {
                        kind: DecisionKind::EmergencyAccess,
                        outcome: Outcome::Granted,
                        actor: requester.clone(),
                        subject: id.clone(),
                        case: new.case.clone(),
                        rationale: new.justification.as_str().to_owned(),
                        signals: vec![],
                        policy: Some(policy.reference()),
                        violation: None,
                        refs: new.refs.clone(),
                        inputs: json!({
                            "subject": new.subject,
                            "target": target,
                            "privilege": privilege,
                            "access_expires_at": now + lifetime,
                            "post_approval_due": due,
                            "policy_text": policy.text(),
                        }),
                    },
                    effects: format!(
                        "CREATE ONLY $id CONTENT $content;\n{effects}\nUPDATE $id SET replaced_edge = $replaced;"
                    ),
                    vars,
                })
            })
        })
        .await?;
        self.request(id).await
    }

    /// Decide a request: approve, reject or escalate, with a rationale and the alerts
    /// and evidence relied on. Every rule of the policy in force is checked first; a
    /// refusal is recorded and answered with [`StoreError::Refused`].
    pub async fn decide_request(
        &self,
        actor: &Actor,
        id: &NodeId,
        outcome: DecideOutcome,
        rationale: &Text,
        signals: &[NodeId],
    ) -> Result<(Decision, Request)> {
        let decision = self.decide_request_alone(actor, id, outcome, rationale, signals).await?;
        Ok((decision, self.request(id).await?))
    }

    /// [`Store::decide_request`], answering the decision alone: for a caller that may
    /// not need the request again (reading it is a transaction of its own).
    pub async fn decide_request_alone(
        &self,
        actor: &Actor,
        id: &NodeId,
        outcome: DecideOutcome,
        rationale: &Text,
        signals: &[NodeId],
    ) -> Result<Decision> {
        if outcome == DecideOutcome::Escalate {
            return Err(ValueError::new("escalateTo", "an escalation names whom it goes to").into());
        }
        self.decide_request_as(actor, id, outcome, None, rationale, signals).await
    }

    /// Escalate a request to a person or to the holders of a role: only they decide it
    /// next, and the one escalating cannot approve it afterwards.
    pub async fn escalate_request(
        &self,
        actor: &Actor,
        id: &NodeId,
        to: &EscalationTarget,
        rationale: &Text,
        signals: &[NodeId],
    ) -> Result<(Decision, Request)> {
        if let EscalationTarget::Person(p) = to {
            self.active_person(p, "escalateTo").await?;
        }
        let decision = self.decide_request_as(actor, id, DecideOutcome::Escalate, Some(to), rationale, signals).await?;
        Ok((decision, self.request(id).await?))
    }

    async fn decide_request_as(
        &self,
        actor: &Actor,
        id: &NodeId,
        outcome: DecideOutcome,
        escalate_to: Option<&EscalationTarget>,
        rationale: &Text,
        signals: &[NodeId],
    ) -> Result<Decision> {
        if id.table() != Table::Request {
            return Err(ValueError::new("id", format!("{id} is not a request")).into());
        }
        self.check_signals(signals).await?;
        self.decide(|| Box::pin(self.plan_request_decision(actor, id, outcome, escalate_to, rationale, signals))).await
    }

    /// Plan one decision on a request from what the store holds now: the rules' facts,
    /// the decision's record and its effects, guarded at commit by every fact the rules
    /// read. A change request is planned by `plan_change_decision`.
    async fn plan_request_decision(
        &self,
        actor: &Actor,
        id: &NodeId,
        outcome: DecideOutcome,
        escalate_to: Option<&EscalationTarget>,
        rationale: &Text,
        signals: &[NodeId],
    ) -> Result<Plan> {
        let request = self.request(id).await?;
        if !request.status.is_open() {
            return Err(StoreError::Conflict(format!("{id} is {} and can no longer be decided", request.status)));
        }
        if request.kind == RequestKind::Change {
            return self.plan_change_decision(actor, request, outcome, escalate_to, rationale, signals.to_vec()).await;
        }
        let (policy, (actor_facts, actor_roles), stakes) = self.approval_context(actor, &request).await?;
        let actor = &actor.id;
        let facts = approval_facts(&request, actor, &actor_roles, &stakes, outcome);
        let case_alerts: Vec<NodeId> = match &request.case {
            Some(c) => self.alerts_of_cases(std::slice::from_ref(c)).await?.into_iter().map(|a| a.id).collect(),
            None => vec![],
        };
        let draft = DecisionDraft {
            kind: DecisionKind::DecideRequest,
            outcome: outcome.into(),
            actor: actor.clone(),
            subject: id.clone(),
            case: request.case.clone(),
            rationale: rationale.as_str().to_owned(),
            signals: distinct(signals.iter().cloned().chain(case_alerts)),
            policy: Some(policy.reference()),
            violation: None,
            refs: distinct_refs(&request.refs, &policy.refs),
            inputs: json!({
                "request": request,
                "actor_roles": actor_roles,
                "actor_owns_subject": facts.actor_owns_subject,
                "subject_owners": stakes.owners.owners,
                "subject_has_active_owner": facts.subject_has_active_owner,
                "target": stakes.target.map(|t| json!({"criticality": t.criticality, "environment": t.environment})),
                "privileged": facts.privileged,
                "approvals_before": facts.prior_approvers,
                "policy_text": policy.text(),
            }),
        };
        // Every fact the rules read, checked again at commit: the actor's roles
        // and activity, the policy version, the target, the subject's owners. A refusal
        // is checked too: it may rest on owners read from the graph index.
        let mut guards = Guards::default()
            .request_rev()
            .person(actor, &actor_facts)
            .policy(&policy)
            .owners(&request.subject, &stakes.owners);
        if let (Some(t), Some(facts)) = (&request.target, &stakes.target) {
            guards = guards.system(t, facts);
        }
        let vars = Vars::new().set("request", rid(id)).set("rev", request.rev as i64);
        if let Err(violation) = policy.check_decision(&facts) {
            let (checks, vars) = guards.finish(vars);
            return Ok(Plan::refused(draft, violation).guarded(checks, vars));
        }
        let (RequestChange { set, before }, vars) =
            request_change(&request, &policy, outcome, escalate_to, actor, vars)?;
        let (checks, vars) = guards.finish(vars);
        // A request other than a change writes itself and the access it grants or
        // closes (`request_change`): no person, no token.
        Ok(Plan {
            leaves_signins: true,
            draft,
            effects: format!(
                "{checks}
                 {before}
                 UPDATE $request SET {}, rev += 1 RETURN NONE;",
                set.join(", ")
            ),
            vars,
        })
    }

    /// The control owner accepts the risk of a denied grant, so approvers may approve
    /// it despite the rule that denied it.
    pub async fn accept_risk(&self, actor: &NodeId, id: &NodeId, rationale: &Text) -> Result<(Decision, Request)> {
        let decision = self
            .decide(|| {
                Box::pin(async move {
                    let request = self.request(id).await?;
                    if request.status != RequestStatus::Denied {
                        return Err(StoreError::Conflict(format!(
                            "{id} is {}; only a request denied by an automated check takes a risk acceptance",
                            request.status
                        )));
                    }
                    let policy = self.current_policy().await?;
                    let control = request.target.clone().unwrap_or_else(|| request.subject.clone());
                    let control_owners = self.owner_facts(&control).await?;
                    let draft = DecisionDraft {
                        kind: DecisionKind::AcceptRisk,
                        outcome: Outcome::Accepted,
                        actor: actor.clone(),
                        subject: id.clone(),
                        case: request.case.clone(),
                        rationale: rationale.as_str().to_owned(),
                        signals: vec![],
                        policy: Some(policy.reference()),
                        violation: None,
                        refs: request.refs.clone(),
                        inputs: json!({
                            "request": request,
                            "denied_by_rule": request.denied_by_rule,
                            "control": control,
                            "control_owners": control_owners.owners,
                            "policy_text": policy.text(),
                        }),
                    };
                    if let Err(v) = policy.check_risk_acceptance(control_owners.includes(actor)) {
                        return Ok(Plan::refused(draft, v));
                    }
                    Ok(Plan {
                        leaves_signins: false,
                        draft,
                        effects: format!(
                            "IF $request.rev != $rev {{ THROW '{STALE}' }};
                         UPDATE $request SET status = 'pending', risk_accepted_by = $actor, rev += 1;"
                        ),
                        vars: Vars::new()
                            .set("request", rid(id))
                            .set("rev", request.rev as i64)
                            .set("actor", rid(actor)),
                    })
                })
            })
            .await?;
        Ok((decision, self.request(id).await?))
    }

    /// Raise one alert for each break-glass access past its post-approval window, once
    /// per request (later sweeps find the alert and leave it). Returns how many were
    /// raised. The server runs this periodically; queries flag such requests
    /// (`postApprovalOverdue`) whether or not it has run.
    pub async fn raise_overdue_emergency_alerts(&self) -> Result<usize> {
        let filter = RequestFilter { post_approval_overdue: true, ..Default::default() };
        let overdue = self
            .requests(&filter, &PageRequest { first: 1000, after: None, count: false, ..Default::default() })
            .await?
            .items;
        let keys: Vec<String> = overdue.iter().map(|r| format!("emergency-overdue:{}", r.id)).collect();
        let known: Vec<String> =
            self.read_in("SELECT VALUE dedupe_key FROM alert WHERE dedupe_key IN $keys", "keys", keys).await?;
        let mut raised = 0;
        for r in overdue {
            let key = format!("emergency-overdue:{}", r.id);
            if known.contains(&key) {
                continue;
            }
            let alert = NewAlert {
                source: Label::parse("nhigov")?,
                rule: Label::parse("emergency_access_unapproved")?,
                severity: Severity::High,
                title: Text::parse(&format!("emergency access {} was not approved within its window", r.id))?,
                detail: Some(Text::parse(&r.justification)?),
                detected_at: Utc::now(),
                subject: SubjectRef::Id(r.subject.clone()),
                refs: vec![FrameworkRef::parse("NHI-05")?],
                dedupe_key: key,
            };
            if self.ingest_alert(&alert).await?.1 == super::IngestOutcome::Created {
                raised += 1;
            }
        }
        Ok(raised)
    }

    /// Close every break-glass access still unapproved past its window, each as a
    /// decision of the server's principal: the access it opened closes, what it
    /// replaced is restored, and the request ends `expired`. Returns how many.
    pub async fn close_overdue_emergency_access(&self) -> Result<usize> {
        let filter = RequestFilter { post_approval_overdue: true, ..Default::default() };
        let overdue = self
            .requests(&filter, &PageRequest { first: 1000, after: None, count: false, ..Default::default() })
            .await?
            .items;
        if overdue.is_empty() {
            return Ok(0);
        }
        let server = self.server_principal().await?;
        let mut closed = 0;
        for r in overdue {
            let (server, id) = (&server, &r.id);
            let outcome = self
                .decide(|| {
                    Box::pin(async move {
                        let request = self.request(id).await?;
                        if !request.post_approval_overdue_at(Utc::now()) {
                            return Err(StoreError::Conflict(format!("{id} was decided meanwhile")));
                        }
                        let policy = self.current_policy().await?;
                        let mut vars = Vars::new().set("request", rid(id)).set("rev", request.rev as i64);
                        let rollback = match &request.granted_edge {
                            Some(edge) => rollback_emergency(&request, edge, &mut vars)?,
                            None => String::new(),
                        };
                        let why = "break-glass access not approved within its window: closed by the server";
                        Ok(Plan {
                            leaves_signins: false,
                            draft: DecisionDraft {
                                case: request.case.clone(),
                                refs: distinct_refs(&request.refs, &policy.refs),
                                inputs: json!({ "request": request, "policy_text": policy.text() }),
                                ..DecisionDraft::under(
                                    &policy,
                                    DecisionKind::ExpireEmergency,
                                    Outcome::Revoked,
                                    server,
                                    id,
                                    why,
                                )
                            },
                            effects: format!(
                                "IF $request.rev != $rev {{ THROW '{STALE}' }};
                                 {rollback}
                                 UPDATE $request SET status = 'expired', decided_at = time::now(), rev += 1;"
                            ),
                            vars,
                        })
                    })
                })
                .await;
            match outcome {
                Ok(_) => closed += 1,
                // Approved or rejected while the sweep ran: nothing left to close.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }

    /// Close every approved rotation whose secret has been seen rotated since its
    /// approval (by an import, the API or a scanner), each as a decision of the server's
    /// principal linked to the approval it fulfils. Returns how many. Run after writes
    /// that can move a rotation time, and by the server's sweep.
    pub async fn observe_rotations(&self) -> Result<usize> {
        let mut resp = self
            .read(
                "SELECT * FROM request WHERE kind = 'rotate_secret' AND status = 'approved'
                   AND subject.last_rotated_at != NONE AND subject.last_rotated_at > decided_at",
                &Vars::new(),
            )
            .await?;
        let done: Vec<Request> = take(&mut resp, 0)?;
        if done.is_empty() {
            return Ok(0);
        }
        let server = self.server_principal().await?;
        let mut closed = 0;
        for r in done {
            let (server, id) = (&server, &r.id);
            let outcome = self
                .decide(|| {
                    Box::pin(async move {
                        let request = self.request(id).await?;
                        if request.status != RequestStatus::Approved {
                            return Err(StoreError::Conflict(format!("{id} is {} now", request.status)));
                        }
                        let secret = self.nodes_by_id::<Secret>(std::slice::from_ref(&request.subject)).await?;
                        let rotated = secret.get(&request.subject).and_then(|s| s.last_rotated_at);
                        let policy = self.current_policy().await?;
                        let approval = request.approvals.last().map(|a| a.decision.clone());
                        Ok(Plan {
                            leaves_signins: false,
                            draft: DecisionDraft {
                                case: request.case.clone(),
                                refs: distinct_refs(&request.refs, &policy.refs),
                                inputs: json!({
                                    "request": request, "fulfils": approval, "secret_rotated_at": rotated,
                                }),
                                ..DecisionDraft::under(
                                    &policy,
                                    DecisionKind::FulfilRequest,
                                    Outcome::Completed,
                                    server,
                                    id,
                                    "the secret was seen rotated after the approval",
                                )
                            },
                            effects: format!(
                                "IF $request.rev != $rev OR $request.status != 'approved' {{ THROW '{STALE}' }};
                                 UPDATE $request SET status = 'fulfilled', fulfilled_at = time::now(), rev += 1;"
                            ),
                            vars: Vars::new().set("request", rid(id)).set("rev", request.rev as i64),
                        })
                    })
                })
                .await;
            match outcome {
                Ok(_) => closed += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }

    /// Alerts and evidence cited as signals must exist.
    async fn check_signals(&self, signals: &[NodeId]) -> Result<()> {
        if signals.is_empty() {
            return Ok(());
        }
        if let Some(bad) = signals.iter().find(|s| !matches!(s.table(), Table::Alert | Table::Evidence)) {
            return Err(ValueError::new("signals", format!("{bad} is neither an alert nor evidence")).into());
        }
        let found: Vec<NodeId> = {
            let rids: Vec<RecordId> = signals.iter().map(rid).collect();
            let mut resp = self.read("SELECT VALUE id FROM $ids", &Vars::new().set("ids", rids)).await?;
            take(&mut resp, 0)?
        };
        if let Some(missing) = signals.iter().find(|s| !found.contains(s)) {
            return Err(ValueError::new("signals", format!("no {missing}")).into());
        }
        Ok(())
    }

    /// End an active exception before its expiry, with a rationale: a decision.
    pub async fn revoke_exception(
        &self,
        actor: &NodeId,
        id: &NodeId,
        rationale: &Text,
    ) -> Result<(Decision, Exception)> {
        if id.table() != Table::Exception {
            return Err(ValueError::new("id", format!("{id} is not an exception")).into());
        }
        let decision = self
            .decide(|| {
                Box::pin(async move {
                    let exception = self
                        .exceptions_by_id(std::slice::from_ref(id))
                        .await?
                        .pop()
                        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
                    if exception.status != ExceptionStatus::Active {
                        return Err(StoreError::Conflict(format!("{id} is already {}", exception.status)));
                    }
                    Ok(Plan {
                        leaves_signins: false,
                        draft: DecisionDraft {
                            kind: DecisionKind::RevokeException,
                            outcome: Outcome::Revoked,
                            actor: actor.clone(),
                            subject: id.clone(),
                            case: None,
                            rationale: rationale.as_str().to_owned(),
                            signals: vec![],
                            policy: Some(self.current_policy().await?.reference()),
                            violation: None,
                            refs: exception.refs.clone(),
                            inputs: json!({ "exception": exception }),
                        },
                        effects: format!(
                            "IF $exception.status != 'active' {{ THROW '{STALE}' }};
                             UPDATE $exception SET status = 'revoked';"
                        ),
                        vars: Vars::new().set("exception", rid(id)),
                    })
                })
            })
            .await?;
        let exception = self
            .exceptions_by_id(std::slice::from_ref(id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        Ok((decision, exception))
    }

    pub async fn exceptions_by_id(&self, ids: &[NodeId]) -> Result<Vec<Exception>> {
        self.records_by_id(Table::Exception, ids).await
    }

    /// Exceptions, optionally only those due for revalidation (expired or past review).
    pub async fn exceptions(
        &self,
        subject: Option<&NodeId>,
        revalidation_due: bool,
        page: &PageRequest,
    ) -> Result<Page<Exception>> {
        let mut conds = Vec::new();
        let mut vars = Vars::new();
        if let Some(s) = subject {
            conds.push("subject = $subject");
            vars = vars.set("subject", rid(s));
        }
        if revalidation_due {
            conds.push("status = 'active' AND (expires_at <= time::now() OR review_due <= time::now())");
        }
        self.page_of(Table::Exception, "", "exception", conds, vars, page).await
    }
}

/// Statements rolling back break-glass access: the edge it opened closes; access it
/// replaced is restored as a new edge (so history shows the gap). `$request` is bound.
fn rollback_emergency(request: &Request, edge: &str, vars: &mut Vars) -> Result<String> {
    let target = request.target.clone().unwrap_or_else(|| request.subject.clone());
    *vars = std::mem::take(vars)
        .set("edge", edge_rid(&EdgeId::parse(edge)?))
        .set("restore_id", edge_rid(&EdgeId::generate(EdgeKind::CanAccess)))
        .set("restore_key", format!("{}|{target}", request.subject));
    Ok("UPDATE $edge SET valid_to = time::now(), open_key = NONE WHERE valid_to = NONE;
     LET $old = $request.replaced_edge;
     IF $old != NONE {
         INSERT RELATION INTO can_access {
             id: $restore_id, in: $old.in, out: $old.out, privilege: $old.privilege,
             expires_at: $old.expires_at, valid_from: time::now(), open_key: $restore_key,
             created_at: time::now(), granted_by: $old.granted_by, granted_at: $old.granted_at, source: $old.source
         };
     };
"
    .into())
}

/// Days an approved rotation has to be done, when the request names none.
const ROTATION_DAYS: u32 = 7;

/// The stored form of an escalation: whom it goes to, and who escalated.
pub(super) fn escalation(
    to: Option<&EscalationTarget>,
    by: &NodeId,
) -> Result<(surrealdb::types::Value, surrealdb::types::RecordId)> {
    let to = to.ok_or_else(|| ValueError::new("escalateTo", "an escalation names whom it goes to"))?;
    Ok((json_value(to)?, rid(by)))
}

/// What a decision writes on its request (`SET` clauses) and the statements on other
/// records that run before that update.
#[derive(Default)]
struct RequestChange {
    set: Vec<String>,
    before: String,
}

/// The facts the policy judges a decision on a request by.
fn approval_facts(
    request: &Request,
    actor: &NodeId,
    actor_roles: &[Role],
    stakes: &Stakes,
    outcome: DecideOutcome,
) -> ApprovalFacts {
    ApprovalFacts {
        outcome,
        kind: request.kind,
        requester: request.requester.clone(),
        actor: actor.clone(),
        actor_roles: actor_roles.to_vec(),
        actor_owns_subject: stakes.owners.includes(actor),
        privileged: stakes.target.is_some_and(|t| request.privilege.is_some_and(|p| t.privileged(p))),
        prior_approvers: request.approvals.iter().map(|a| a.approver.clone()).collect(),
        subject_has_active_owner: stakes.owners.has_active_owner(),
        risk_accepted: request.risk_accepted_by.is_some(),
        escalated_to: request.escalated_to.clone(),
        escalated_by: request.escalated_by.clone(),
    }
}

/// What a decision the policy allows changes on the request, and on other records
/// before it; `$request` and `$rev` are bound in `vars`.
fn request_change(
    request: &Request,
    policy: &Policy,
    outcome: DecideOutcome,
    escalate_to: Option<&EscalationTarget>,
    actor: &NodeId,
    mut vars: Vars,
) -> Result<(RequestChange, Vars)> {
    let now = Utc::now();
    let mut change = RequestChange::default();
    match outcome {
        DecideOutcome::Escalate => {
            let (to, by) = escalation(escalate_to, actor)?;
            vars = vars.set("escalated_to", to).set("escalated_by", by);
            change.set.push("status = 'escalated', escalated_to = $escalated_to, escalated_by = $escalated_by".into());
        }
        DecideOutcome::Reject => {
            change.set.push("status = 'rejected', decided_at = time::now()".into());
            if let (RequestKind::EmergencyAccess, Some(edge)) = (request.kind, &request.granted_edge) {
                change.before.push_str(&rollback_emergency(request, edge, &mut vars)?);
            }
        }
        DecideOutcome::Approve => {
            change.set.push("approvals += { approver: $actor, at: time::now(), decision: $decision_id }".into());
            vars = vars.set("actor", rid(actor));
            if request.approvals.len() as u32 + 1 >= request.approvals_needed {
                let expires = policy.approval_lifetime(request.duration_days).map(|d| now + d);
                vars = vars.set("expires", expires.map(dt));
                change.set.push("status = 'approved', decided_at = time::now(), approval_expires_at = $expires".into());
                approval_effect(request, policy, expires, now, &mut vars, &mut change)?;
            } else if request.status == RequestStatus::Escalated {
                // The one it was escalated to has approved; the approvals
                // still needed may come from anyone but the escalator.
                change.set.push("status = 'pending', escalated_to = NONE".into());
            }
        }
    }
    Ok((change, vars))
}

/// What a final approval changes besides the request's status: more `SET` clauses on
/// the request and statements on other records, added to `change`.
fn approval_effect(
    request: &Request,
    policy: &Policy,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    vars: &mut Vars,
    change: &mut RequestChange,
) -> Result<()> {
    let subject = rid(&request.subject);
    match request.kind {
        RequestKind::GrantAccess => {
            open_granted_access(request, expires, now, vars, change)?;
        }
        RequestKind::RevokeNhi | RequestKind::Offboard => {
            // Either way every outgoing access closes: its grants, the identities it can
            // assume and the secrets it holds.
            let status = if request.kind == RequestKind::RevokeNhi { "revoked" } else { "decommissioned" };
            let kinds = "->can_access, ->holds, ->assumes";
            *vars = std::mem::take(vars).set("subject", subject).set("nhi_status", status);
            change.before.push_str(&format!(
                "UPDATE $subject SET status = $nhi_status, updated_at = time::now();
                     LET $open = array::flatten((SELECT VALUE [{kinds}] FROM ONLY $subject));
                     UPDATE $open SET valid_to = time::now(), open_key = NONE WHERE valid_to = NONE;"
            ));
        }
        // The access in force is replaced by one with the lower privilege, if it still
        // has a higher one: an approval never opens access that was closed meanwhile.
        RequestKind::ReducePrivilege => {
            reduce_still_higher(request, vars, change)?;
            open_granted_access(request, expires, now, vars, change)?;
        }
        // The rotation itself happens outside: the request stays open (approved) until the
        // secret is seen rotated after the approval, and is overdue past its due date;
        // within a case, a mandatory task to do it blocks closing until someone has.
        RequestKind::RotateSecret => rotation_due(request, now, vars, change),
        RequestKind::Exception => open_exception(request, policy, expires, now, vars, change),
        // In force since it was granted: the approval makes it regular and extends it to
        // the approved lifetime. One denied at first (no active owner) and approved after
        // a risk acceptance opens only now.
        RequestKind::EmergencyAccess => match &request.granted_edge {
            Some(edge) => {
                *vars = std::mem::take(vars)
                    .set("emergency_edge", edge_rid(&EdgeId::parse(edge)?))
                    .set("emergency_expires", expires.map(dt));
                change.before.push_str(
                    "UPDATE $emergency_edge SET expires_at = $emergency_expires WHERE valid_to = NONE RETURN NONE;",
                );
            }
            None => open_granted_access(request, expires, now, vars, change)?,
        },
        // Planned by `plan_change_decision`, never here.
        RequestKind::Change => {
            return Err(StoreError::Database(format!("{} is a change request", request.id)));
        }
    }
    Ok(())
}

/// The guard of a privilege reduction: the access it reduces is still in force with
/// a higher privilege.
fn reduce_still_higher(request: &Request, vars: &mut Vars, change: &mut RequestChange) -> Result<()> {
    let (Some(target), Some(privilege)) = (&request.target, request.privilege) else {
        return Err(StoreError::Database(format!("{} lacks its target", request.id)));
    };
    let higher: Vec<&str> = Privilege::ALL.iter().filter(|p| **p > privilege).map(|p| p.as_str()).collect();
    *vars =
        std::mem::take(vars).set("reduce_key", format!("{}|{}", request.subject, target)).set("reduce_higher", higher);
    change.before.push_str(
        "IF count(SELECT VALUE id FROM can_access WHERE open_key = $reduce_key AND privilege IN $reduce_higher) = 0 {
             THROW 'CONFLICT: the access this request reduces is no longer in force with a higher privilege'
         };",
    );
    Ok(())
}

/// An approved rotation's due date, and within a case the mandatory task to do it.
fn rotation_due(request: &Request, now: DateTime<Utc>, vars: &mut Vars, change: &mut RequestChange) {
    let due = now + Duration::days(i64::from(request.duration_days.unwrap_or(ROTATION_DAYS)));
    *vars = std::mem::take(vars).set("rotation_due", dt(due));
    change.set.push("rotation_due_at = $rotation_due".into());
    let Some(case) = &request.case else { return };
    let task = Content::new()
        .set("case", rid(case))
        .set("kind", TaskKind::Rotate.as_str())
        .set("title", format!("Rotate {} as approved in {}", request.subject, request.id))
        .set("mandatory", true)
        .set("status", TaskStatus::Open.as_str())
        .set("created_by", rid(&request.requester))
        .set("created_at", dt(now))
        .into_value();
    *vars = std::mem::take(vars)
        .set("task", rid(&NodeId::generate(Table::Task)))
        .set("task_content", task)
        .set("task_case", rid(case));
    change.before.push_str(
        "CREATE ONLY $task CONTENT $task_content;
         UPDATE $task_case SET rev += 1, updated_at = time::now();",
    );
}

/// The exception an approved exception request opens, until the approval expires
/// (or the requested days), reviewed by its review date.
fn open_exception(
    request: &Request,
    policy: &Policy,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    vars: &mut Vars,
    change: &mut RequestChange,
) {
    let expires = expires.unwrap_or(now + Duration::days(i64::from(request.duration_days.unwrap_or(30))));
    let review = request.review_days.map(|d| now + Duration::days(i64::from(d))).unwrap_or(expires).min(expires);
    let approvers: Vec<RecordId> = request.approvals.iter().map(|a| rid(&a.approver)).collect();
    let exception = Content::new()
        .set("request", rid(&request.id))
        .set("subject", rid(&request.subject))
        .set("justification", request.justification.as_str())
        .set("compensating_controls", request.compensating_controls.clone())
        .set("waives", request.waives.clone())
        .set("status", ExceptionStatus::Active.as_str())
        .set("expires_at", dt(expires))
        .set("review_due", dt(review))
        .set("created_at", dt(now))
        .set("refs", refs_text(&distinct_refs(&request.refs, &policy.refs)))
        .into_value();
    *vars = std::mem::take(vars)
        .set("exception", rid(&NodeId::generate(Table::Exception)))
        .set("exception_content", exception)
        .set("prior_approvers", approvers);
    change.before.push_str(
        "CREATE ONLY $exception CONTENT $exception_content;
         UPDATE $exception SET approved_by = array::append($prior_approvers, $actor);",
    );
}

/// The access a final approval opens: the request's grant, with the approval's expiry,
/// recorded on the request (`granted_edge`, `replaced_edge`).
fn open_granted_access(
    request: &Request,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    vars: &mut Vars,
    change: &mut RequestChange,
) -> Result<()> {
    let (Some(target), Some(privilege)) = (&request.target, request.privilege) else {
        return Err(StoreError::Database(format!("{} lacks its target", request.id)));
    };
    let edge = NewEdge {
        kind: EdgeKind::CanAccess,
        from: request.subject.clone(),
        to: target.clone(),
        attrs: EdgeAttrs { privilege: Some(privilege), mechanism: None, expires_at: expires },
    };
    let edge_id = EdgeId::generate(EdgeKind::CanAccess);
    let statements = grant_statements(&edge, &edge_id, now, vars);
    *vars = std::mem::take(vars).set("granted_edge", edge_id.to_string());
    change.set.push("granted_edge = $granted_edge, replaced_edge = $replaced".into());
    change.before.push_str(&statements);
    Ok(())
}

/// Statements that open an access edge, closing an open one between the same nodes
/// first (a new grant replaces the old access, with its own privilege and expiry);
/// `$replaced` holds the edge it replaced, if any. The new edge names the decision being
/// sealed as the one that granted it.
fn grant_statements(edge: &NewEdge, id: &EdgeId, now: DateTime<Utc>, vars: &mut Vars) -> String {
    let content = edge_content(id, edge, now, None, now).into_value();
    *vars = std::mem::take(vars).set("grant_open_key", open_key(edge)).set("grant", content);
    "LET $replaced = (UPDATE can_access SET valid_to = time::now(), open_key = NONE
         WHERE open_key = $grant_open_key RETURN id)[0].id;
     INSERT RELATION INTO can_access object::extend($grant, { granted_by: $decision_id, granted_at: time::now() }) RETURN NONE;"
        .into()
}

pub(super) fn request_content(
    new: &NewRequest,
    requester: &NodeId,
    status: RequestStatus,
    needed: u32,
    now: DateTime<Utc>,
) -> Content {
    Content::new()
        .set("kind", new.kind.as_str())
        .set("status", status.as_str())
        .set("requester", rid(requester))
        .set("subject", rid(&new.subject))
        .opt("target", new.target.as_ref().map(rid))
        .opt("privilege", new.privilege.map(|p| p.as_str()))
        .opt("duration_days", new.duration_days.map(i64::from))
        .set("justification", new.justification.as_str())
        .opt("ticket_ref", new.ticket_ref.as_ref().map(|t| t.as_str().to_owned()))
        .opt("case", new.case.as_ref().map(rid))
        .set(
            "compensating_controls",
            new.compensating_controls.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>(),
        )
        .opt("review_days", new.review_days.map(i64::from))
        .set("refs", refs_text(&new.refs))
        .set("waives", new.waives.clone())
        .set("approvals_needed", i64::from(needed))
        .set("requested_at", dt(now))
        .set("rev", 0i64)
}

fn distinct_refs(a: &[FrameworkRef], b: &[FrameworkRef]) -> Vec<FrameworkRef> {
    let mut out = a.to_vec();
    for r in b {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}
