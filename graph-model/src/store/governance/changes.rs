//! Governed changes in the store: one path for every change to a governed fact.
//!
//! [`Store::govern`] reads the facts a change is assessed on, lets the domain route it
//! ([`assess`]: apply at once, wait for a second person, or refuse), and writes one
//! decision that either applies the change or files the request a second person must
//! decide. A filed change is decided through [`Store::decide_request`], which hands it
//! to [`Store::plan_change_decision`]. [`Store::genesis`] gives the first people their
//! roles, once, on an empty chain.
//!
//! Every fact a route relied on (the actor's roles and active flag, the person, NHI or
//! system changed, the owners of an NHI given access, the policy version) is checked
//! again inside the transaction that seals the decision ([`Guards`]): a fact that moved
//! since it was read makes the plan stale, and it is made again on fresh facts. Every
//! governed change is itself a decision, so every such write also moves the chain head,
//! and two of them can never commit on one snapshot.

use chrono::Utc;
use serde_json::json;

use super::guards::Guards;
pub use super::guards::{Actor, SERVER_PRINCIPAL};
use super::requests::request_content;
use super::{Plan, dt};
use crate::domain::*;
use crate::store::edges::{open_edge_conflict, relate_statements};
use crate::store::{Content, Result, Store, StoreError, Vars, edge_rid, json_value, rid, take};

/// What a governed mutation did: the decision it recorded and, when a second person is
/// needed, the request it filed instead of the change.
#[derive(Debug, Clone)]
pub struct Governed {
    pub decision: Decision,
    pub request: Option<Request>,
}

impl Governed {
    /// Did the change take effect?
    pub fn applied(&self) -> bool {
        self.decision.outcome == Outcome::Applied
    }
}

/// The facts read for a change, with the guards that re-check them at commit.
struct Read {
    facts: ChangeFacts,
    guards: Guards,
}

impl Store {
    /// The roles `actor` acts with: those given that the person still holds, read now;
    /// refused when the person is gone or inactive. The server's own principal (inactive,
    /// so nobody signs in as it) acts with no role, for what the server does itself.
    pub(crate) async fn acting(&self, actor: &Actor) -> Result<(PersonFacts, Vec<Role>)> {
        actor.standing(self.person(&actor.id).await?)
    }

    /// Read what `change` is assessed on, and the guards that check it again at commit.
    async fn read_change(&self, change: &Change) -> Result<Read> {
        let mut facts = ChangeFacts::default();
        let mut guards = Guards::default();
        match change {
            Change::Roles { person, .. } | Change::Active { person, .. } | Change::Token { principal: person, .. } => {
                let field = if matches!(change, Change::Token { .. }) { "principalId" } else { "id" };
                let p = self.person(person).await.map_err(|e| as_field(e, field))?;
                let f = PersonFacts { roles: p.roles, active: p.active, machine: p.machine };
                guards = guards.person(person, &f);
                facts.person = Some(f);
            }
            Change::NhiStatus { nhi, .. } => {
                let n = self.nodes_by_id::<Nhi>(std::slice::from_ref(nhi)).await?.remove(nhi);
                let n = n.ok_or_else(|| StoreError::NotFound(nhi.to_string()))?;
                guards = guards.nhi_status(nhi, n.status);
                facts.nhi_status = Some(n.status);
            }
            Change::SystemRisk { system, .. } => {
                let t = self.target_facts(system, "id").await?;
                guards = guards.system(system, &t);
                facts.system = Some(t);
            }
            Change::Relate { edge } if edge.kind == EdgeKind::CanAccess => {
                let ends = [edge.from.clone(), edge.to.clone()];
                let (found, owners) = futures::try_join!(self.nodes_any(&ends), self.owner_facts(&edge.from))?;
                if let Some(missing) = ends.iter().find(|e| !found.contains_key(*e)) {
                    return Err(StoreError::NotFound(missing.to_string()));
                }
                let Some(InventoryNode::System(s)) = found.get(&edge.to) else {
                    return Err(ValueError::new("to", format!("{} is not a system", edge.to)).into());
                };
                let t = TargetFacts { criticality: s.criticality, environment: s.environment };
                guards = guards.system(&edge.to, &t).owners(&edge.from, &owners);
                facts.system = Some(t);
                facts.subject_has_active_owner = Some(owners.has_active_owner());
            }
            Change::AdoptBaseline { source, .. } => {
                let now = self.ungoverned_access(source.as_deref(), 0).await?;
                let cond = super::baseline::ungoverned_where(source.as_deref());
                let count = super::baseline::count_expression(cond);
                let (total, source) = (now.total as i64, source.clone());
                guards = guards.check(format!("{count} != $guard_ungoverned"), |v| {
                    let v = v.set("guard_ungoverned", total);
                    match source {
                        Some(s) => v.set("source", s),
                        None => v,
                    }
                });
                facts.ungoverned = Some((now.total, now.digest));
            }
            Change::Control { draft, .. } => {
                self.active_person(&draft.owner, "ownerId").await?;
                if let Some(team) = &draft.scope.team
                    && self.nodes_any(std::slice::from_ref(team)).await?.is_empty()
                {
                    return Err(ValueError::new("scope.teamId", format!("no team {team}")).into());
                }
                let latest = self.latest_control_version(&draft.key).await?;
                let key = draft.key.clone();
                guards = guards.check(
                    "((SELECT VALUE version FROM control WHERE key = $guard_control_key ORDER BY version DESC LIMIT 1)[0] ?? 0) != $guard_control_version".into(),
                    |v| v.set("guard_control_key", key).set("guard_control_version", i64::from(latest)),
                );
                facts.control_version = Some(latest);
            }
            Change::Relate { .. } | Change::Unrelate { .. } | Change::RevokeToken { .. } | Change::Policy { .. } => {}
        }
        Ok(Read { facts, guards })
    }

    /// A system's criticality and environment, or `BAD_USER_INPUT` at `field`.
    pub(crate) async fn target_facts(&self, id: &NodeId, field: &str) -> Result<TargetFacts> {
        let s = self.nodes_by_id::<System>(std::slice::from_ref(id)).await?.remove(id);
        let s = s.ok_or_else(|| StoreError::Invalid(ValueError::new(field, format!("no system {id}"))))?;
        Ok(TargetFacts { criticality: s.criticality, environment: s.environment })
    }

    /// Make a governed change as `actor`: applied at once and recorded, or filed as a
    /// request for a second person (with the decision that filed it), or refused by a
    /// rule (recorded, and answered with [`StoreError::Refused`]).
    pub async fn govern(&self, actor: &Actor, change: &Change, rationale: &Text) -> Result<Governed> {
        let request_id = &NodeId::generate(Table::Request);
        let decision = self
            .decide(|| {
                Box::pin(async move {
                    let ((actor_facts, roles), policy, read) =
                        futures::try_join!(self.acting(actor), self.current_policy(), self.read_change(change))?;
                    let route = assess(change, &actor.id, &read.facts, &policy);
                    let mut draft = DecisionDraft {
                        inputs: json!({
                            "change": change,
                            "summary": change.describe(),
                            "actor_roles": roles,
                            "facts": facts_json(&read.facts),
                            "policy_version": policy.version,
                        }),
                        ..DecisionDraft::under(
                            &policy,
                            DecisionKind::Change,
                            Outcome::Applied,
                            &actor.id,
                            change.subject(),
                            rationale.as_str(),
                        )
                    };
                    let guards = read.guards.person(&actor.id, &actor_facts).policy(&policy);
                    match route {
                        Err(Refusal::Invalid(e)) => Err(e.into()),
                        Err(Refusal::Rule(v)) => Ok(Plan::refused(draft, v)),
                        Ok(Route::Apply) => {
                            let (apply, vars) = apply_statements(change, &read.facts, &actor.id, &policy, Vars::new())?;
                            let (checks, vars) = guards.finish(vars);
                            Ok(Plan { leaves_signins: false, draft, effects: format!("{checks}{apply}"), vars })
                        }
                        Ok(Route::SecondPerson { reason, decider }) => {
                            draft.outcome = Outcome::Requested;
                            draft.subject = request_id.clone();
                            draft.inputs["route"] = json!({ "reason": reason, "decider": decider });
                            let content = filed_request(change, &actor.id, rationale, &read.facts, &policy)?;
                            let vars = Vars::new().set("filed", rid(request_id)).set("filed_content", content);
                            let (checks, vars) = guards.finish(vars);
                            Ok(Plan {
                                leaves_signins: false,
                                draft,
                                effects: format!("{checks}CREATE ONLY $filed CONTENT $filed_content;"),
                                vars,
                            })
                        }
                    }
                })
            })
            .await
            .map_err(|e| match change {
                Change::Relate { edge } => open_edge_conflict(e, edge),
                _ => e,
            })?;
        let request = match decision.outcome {
            Outcome::Requested => Some(self.request(request_id).await?),
            _ => None,
        };
        if let (Outcome::Applied, Change::Active { person, active: false }) = (decision.outcome, change) {
            self.ownership_went_stale(person).await;
        }
        Ok(Governed { decision, request })
    }

    /// After `person` left, what they owned may have no active owner: that is an alert
    /// per NHI. The deactivation has committed and the alerts are idempotent, so a
    /// failure here is logged, and the next deactivation raises them.
    async fn ownership_went_stale(&self, person: &NodeId) {
        match self.raise_stale_ownership_alerts(person).await {
            Ok(n) if n > 0 => tracing::info!(person = %person, alerts = n, "ownership went stale"),
            Ok(_) => {}
            Err(e) => tracing::warn!(person = %person, error = %e, "raising stale-ownership alerts failed"),
        }
    }

    /// The leaver path of a feed: each stored person a document reports inactive
    /// (`"active": false`) who is active is deactivated by `actor`, one governed
    /// decision each (which raises the stale-ownership alerts). A feed never makes
    /// anyone active again: that waits for a second admin. Nor does it take away anyone
    /// holding ADMIN, APPROVER or AUDITOR: a leaked feed token must not be able to
    /// remove the people who govern; they are listed in what it returns, and an admin
    /// deactivates them with `updatePerson`. Returns how many left, and who was kept.
    pub async fn apply_leavers(
        &self,
        actor: &NodeId,
        inv: &crate::domain::inventory::Inventory,
        summary: &crate::store::ImportSummary,
    ) -> Result<(usize, Vec<String>)> {
        use crate::domain::inventory::NodeSpec;
        let reported: Vec<NodeId> = inv
            .nodes
            .iter()
            .filter(|n| matches!(&n.spec, NodeSpec::Person(p) if !p.active))
            .filter_map(|n| summary.ids.iter().find(|(r, _)| *r == n.reference).map(|(_, id)| id.clone()))
            .collect();
        if reported.is_empty() {
            return Ok((0, vec![]));
        }
        let stored = self.nodes_by_id::<Person>(&reported).await?;
        let source = inv.source.as_ref().map_or("a feed", |s| s.as_str());
        let rationale = Text::parse(&format!("reported gone by {source}"))?;
        let actor = Actor { id: actor.clone(), roles: Role::ALL.to_vec() };
        let (mut left, mut held) = (0, Vec::new());
        for p in reported.iter().filter_map(|id| stored.get(id)).filter(|p| p.active) {
            if p.roles.iter().any(|r| crate::domain::change::GUARDED_ROLES.contains(r)) {
                tracing::warn!(person = %p.id, source, "a feed reports gone a person who governs; kept active");
                held.push(p.email.clone());
                continue;
            }
            self.govern(&actor, &Change::Active { person: p.id.clone(), active: false }, &rationale).await?;
            left += 1;
        }
        Ok((left, held))
    }

    /// Plan the decision on a filed change (approve, reject or escalate). The floor
    /// names who may decide ([`check_decider`]); an approval assesses the change again
    /// on the facts as they are now and applies it, with the same guards as a change
    /// applied at once.
    pub(crate) async fn plan_change_decision(
        &self,
        actor: &Actor,
        request: Request,
        outcome: DecideOutcome,
        escalate_to: Option<&EscalationTarget>,
        rationale: &Text,
        signals: Vec<NodeId>,
    ) -> Result<Plan> {
        let change = request
            .change
            .clone()
            .ok_or_else(|| StoreError::Database(format!("{} is a change request without its change", request.id)))?;
        let ((actor_facts, roles), policy, read) =
            futures::try_join!(self.acting(actor), self.current_policy(), self.read_change(&change))?;
        let draft = DecisionDraft {
            case: request.case.clone(),
            signals,
            inputs: json!({
                "request": request,
                "change": change,
                "summary": change.describe(),
                "actor_roles": roles,
                "facts": facts_json(&read.facts),
                "policy_version": policy.version,
            }),
            ..DecisionDraft::under(
                &policy,
                DecisionKind::DecideRequest,
                outcome.into(),
                &actor.id,
                &request.id,
                rationale.as_str(),
            )
        };
        let floor = policy
            .check_escalation(request.escalated_to.as_ref(), request.escalated_by.as_ref(), outcome, &actor.id, &roles)
            .and_then(|()| check_decider(&change, outcome, &request.requester, &actor.id, &roles, &policy));
        if let Err(v) = floor {
            return Ok(Plan::refused(draft, v));
        }
        let guards = read.guards.person(&actor.id, &actor_facts).policy(&policy);
        let vars = Vars::new().set("request", rid(&request.id)).set("rev", request.rev as i64);
        let (set, apply, vars) = match outcome {
            DecideOutcome::Escalate => {
                let (to, by) = super::requests::escalation(escalate_to, &actor.id)?;
                (
                    "status = 'escalated', escalated_to = $escalated_to, escalated_by = $escalated_by",
                    String::new(),
                    vars.set("escalated_to", to).set("escalated_by", by),
                )
            }
            DecideOutcome::Reject => ("status = 'rejected', decided_at = time::now()", String::new(), vars),
            DecideOutcome::Approve => match approved_change(&change, &request.requester, &read.facts, &policy, vars)? {
                Ok((apply, vars)) => (
                    "status = 'approved', decided_at = time::now(),
                     approvals += { approver: $actor, at: time::now(), decision: $decision_id }",
                    apply,
                    vars.set("actor", rid(&actor.id)),
                ),
                Err(v) => return Ok(Plan::refused(draft, v)),
            },
        };
        let (checks, vars) = guards.request_rev().finish(vars);
        Ok(Plan {
            leaves_signins: false,
            draft,
            effects: format!(
                "{checks}{apply}
                 UPDATE $request SET {set}, rev += 1;"
            ),
            vars,
        })
    }

    /// Give the first people their roles: one genesis decision holding every grant,
    /// allowed only while the decision chain is empty. After it, roles change only
    /// through governed changes.
    ///
    /// With `adopt_access`, the genesis also adopts every open edge carrying a governed
    /// fact that no decision stands behind as its baseline: the access a bootstrap
    /// document holds is what the first people state to be true.
    pub async fn genesis(
        &self,
        grants: &[(NodeId, Vec<Role>)],
        rationale: &Text,
        adopt_access: bool,
    ) -> Result<Decision> {
        // Its actor is the first admin named (the first person, where a test world has
        // none); `nhigov bootstrap` asks for two admins in production.
        let actor = grants
            .iter()
            .find(|(_, roles)| roles.contains(&Role::Admin))
            .or(grants.first())
            .map(|(p, _)| p.clone())
            .ok_or_else(|| ValueError::new("people", "a genesis grants roles to at least one person"))?;
        let ids: Vec<NodeId> = grants.iter().map(|(p, _)| p.clone()).collect();
        let people = self.nodes_by_id::<Person>(&ids).await?;
        if let Some(missing) = ids.iter().find(|id| !people.contains_key(*id)) {
            return Err(ValueError::new("people", format!("no person {missing}")).into());
        }
        if let Some((p, r)) = grants.iter().find_map(|(p, roles)| {
            let deciding = roles.iter().find(|r| crate::domain::change::DECIDING_ROLES.contains(r));
            deciding.filter(|_| people[p].machine).map(|r| (p, r))
        }) {
            return Err(ValueError::new(
                "people",
                format!("{} is a machine principal and cannot hold {r}: decisions are made by people", people[p].email),
            )
            .into());
        }
        let rows: Vec<surrealdb::types::Value> = grants
            .iter()
            .map(|(p, roles)| {
                Content::new()
                    .set("person", rid(p))
                    .set("roles", roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
                    .into_value()
            })
            .collect();
        let listed: Vec<serde_json::Value> =
            grants.iter().map(|(p, roles)| json!({ "person": p, "email": people[p].email, "roles": roles })).collect();
        let adopt = match adopt_access {
            true => super::baseline::adopt_statements("valid_to = NONE AND granted_by = NONE"),
            false => String::new(),
        };
        let (actor, rows, listed, adopt) = (&actor, &rows, &listed, &adopt);
        self.decide(|| {
            Box::pin(async move {
                let policy = self.current_policy().await?;
                Ok(Plan { leaves_signins: false,
                    draft: DecisionDraft {
                        inputs: json!({ "grants": listed, "policy_version": policy.version }),
                        ..DecisionDraft::under(&policy, DecisionKind::Genesis, Outcome::Granted, actor, actor, rationale.as_str())
                    },
                    effects: "IF $decision.seq != 1 {
                             THROW 'CONFLICT: the decision chain has begun: roles are now granted by governed changes'
                         };
                         FOR $g IN $genesis_grants { UPDATE $g.person SET roles = $g.roles, updated_at = time::now() RETURN NONE; };
                         UPSERT meta:governance SET genesis = $decision_id;\n"
                        .to_owned()
                        + adopt,
                    vars: Vars::new().set("genesis_grants", rows.clone()),
                })
            })
        })
        .await
    }

    /// Load a bootstrap document (the demo, a test world): its inventory imported as a
    /// feed would send it, then one genesis decision giving its people the roles it
    /// names beside them ([`crate::domain::inventory::take_roles`]) and adopting the
    /// access it holds as the governed baseline. The genesis needs an empty chain.
    pub async fn bootstrap(
        &self,
        doc: &serde_json::Value,
        now: chrono::DateTime<Utc>,
        rationale: &Text,
    ) -> Result<(crate::store::ImportSummary, Option<Decision>)> {
        let mut doc = doc.clone();
        let roles = crate::domain::inventory::take_roles(&mut doc).map_err(StoreError::Import)?;
        let inv = crate::domain::inventory::Inventory::parse(&doc, now).map_err(StoreError::Import)?;
        let summary = self.import(&inv).await?;
        let grants: Vec<(NodeId, Vec<Role>)> = roles
            .into_iter()
            .filter_map(|(r, roles)| summary.ids.iter().find(|(k, _)| *k == r).map(|(_, id)| (id.clone(), roles)))
            .collect();
        let decision = match grants.is_empty() {
            true => None,
            false => Some(self.genesis(&grants, rationale, true).await?),
        };
        Ok((summary, decision))
    }

    /// Has the chain a genesis (or an adoption of roles held before governed changes)?
    pub async fn has_genesis(&self) -> Result<bool> {
        let mut resp = self.read("RETURN (SELECT VALUE genesis FROM ONLY meta:governance);", &Vars::new()).await?;
        let g: Option<serde_json::Value> = take(&mut resp, 0)?;
        Ok(g.is_some_and(|v| !v.is_null()))
    }

    /// A store written before roles were governed holds roles no decision granted:
    /// record one decision that adopts them as they are, and revoke the API tokens the
    /// rules now forbid (for another principal, or with more than the ingest scope).
    /// Does nothing on a store with a genesis, or where nobody holds a role.
    pub(crate) async fn adopt_roles(&self) -> Result<Option<Decision>> {
        if self.has_genesis().await? {
            return Ok(None);
        }
        let mut resp = self
            .read("SELECT id, email, roles FROM person WHERE array::len(roles) > 0 ORDER BY email", &Vars::new())
            .await?;
        #[derive(serde::Deserialize)]
        struct Holder {
            id: NodeId,
            email: String,
            roles: Vec<Role>,
        }
        let holders: Vec<Holder> = take(&mut resp, 0)?;
        let Some(actor) = holders.iter().find(|h| h.roles.contains(&Role::Admin)).or(holders.first()) else {
            return Ok(None);
        };
        let listed: Vec<serde_json::Value> =
            holders.iter().map(|h| json!({ "person": h.id, "email": h.email, "roles": h.roles })).collect();
        let (actor, listed) = (&actor.id, &listed);
        let decision = self
            .decide(|| {
                Box::pin(async move {
                    let policy = self.current_policy().await?;
                    let why = "roles held before roles were governed, adopted as they stood at the upgrade";
                    Ok(Plan { leaves_signins: false,
                        draft: DecisionDraft {
                            inputs: json!({ "adopted": listed, "policy_version": policy.version }),
                            ..DecisionDraft::under(&policy, DecisionKind::Genesis, Outcome::Accepted, actor, actor, why)
                        },
                        effects: "UPDATE api_token SET revoked_at = time::now()
                                 WHERE revoked_at = NONE
                                   AND (principal != created_by OR array::len(array::complement(scopes, ['ingest'])) > 0)
                                 RETURN NONE;
                             UPSERT meta:governance SET genesis = $decision_id;"
                            .into(),
                        vars: Vars::new(),
                    })
                })
            })
            .await?;
        Ok(Some(decision))
    }

    /// Tokens one person holds for another person were allowed, with a second admin,
    /// before tokens for others became machine principals' alone: revoke those still
    /// open, by one decision of the server naming each. Does nothing when there are none.
    pub(crate) async fn revoke_tokens_for_people(&self) -> Result<Option<Decision>> {
        const FORBIDDEN: &str = "revoked_at = NONE AND principal != created_by AND principal.machine != true";
        let sql = format!("SELECT VALUE record::id(id) FROM api_token WHERE {FORBIDDEN} ORDER BY id");
        let mut resp = self.read(&sql, &Vars::new()).await?;
        let keys: Vec<String> = take(&mut resp, 0)?;
        if keys.is_empty() {
            return Ok(None);
        }
        let server = self.server_principal().await?;
        let (server, keys) = (&server, &keys);
        let decision = self
            .decide(|| {
                Box::pin(async move {
                    let policy = self.current_policy().await?;
                    let why = "tokens one person held for another, revoked at the upgrade: a person's tokens are made by that person";
                    Ok(Plan { leaves_signins: false,
                        draft: DecisionDraft {
                            inputs: json!({ "revoked_tokens": keys, "policy_version": policy.version }),
                            ..DecisionDraft::under(&policy, DecisionKind::Change, Outcome::Applied, server, server, why)
                        },
                        effects: format!("UPDATE api_token SET revoked_at = time::now() WHERE {FORBIDDEN} RETURN NONE;"),
                        vars: Vars::new(),
                    })
                })
            })
            .await?;
        Ok(Some(decision))
    }
}

/// A store error about a record the caller named, said at the field they named it in.
fn as_field(e: StoreError, field: &str) -> StoreError {
    match e {
        StoreError::NotFound(what) => StoreError::Invalid(ValueError::new(field, format!("no {what}"))),
        StoreError::Invalid(v) => StoreError::Invalid(ValueError::new(field, v.message)),
        e => e,
    }
}

fn facts_json(f: &ChangeFacts) -> serde_json::Value {
    json!({
        "person": f.person,
        "nhi_status": f.nhi_status,
        "system": f.system.map(|t| json!({ "criticality": t.criticality, "environment": t.environment })),
        "subject_has_active_owner": f.subject_has_active_owner,
    })
}

/// The request a change that waits for a second person files: privileged access is an
/// ordinary access grant (decided under every access rule of the policy); everything
/// else is a `change` request holding the change.
fn filed_request(
    change: &Change,
    requester: &NodeId,
    rationale: &Text,
    facts: &ChangeFacts,
    policy: &Policy,
) -> Result<surrealdb::types::Value> {
    let now = Utc::now();
    if let Change::Relate { edge } = change
        && edge.kind == EdgeKind::CanAccess
    {
        let new = NewRequest {
            target: Some(edge.to.clone()),
            privilege: edge.attrs.privilege,
            duration_days: edge
                .attrs
                .expires_at
                .map(|t| u32::try_from((t - now).num_days().clamp(1, 3650)).unwrap_or(1)),
            ..NewRequest::new(RequestKind::GrantAccess, edge.from.clone(), rationale.clone())
        };
        let high = facts.system.is_some_and(|t| new.privilege.is_some_and(|p| t.privileged(p)));
        let needed = policy.approvals_needed(RequestKind::GrantAccess, high);
        return Ok(request_content(&new, requester, RequestStatus::Pending, needed, now).into_value());
    }
    Ok(Content::new()
        .set("kind", RequestKind::Change.as_str())
        .set("status", RequestStatus::Pending.as_str())
        .set("requester", rid(requester))
        .set("subject", rid(change.subject()))
        .set("justification", rationale.as_str())
        .set("change", json_value(change)?)
        .set("approvals_needed", 1i64)
        .set("requested_at", dt(now))
        .set("rev", 0i64)
        .into_value())
}

/// A filed change assessed again at its approval, on the facts as they are now: the
/// statements that carry it out, or the rule that refuses it now; one that no longer
/// applies is a conflict.
fn approved_change(
    change: &Change,
    requester: &NodeId,
    facts: &ChangeFacts,
    policy: &Policy,
    vars: Vars,
) -> Result<std::result::Result<(String, Vars), Violation>> {
    match assess(change, requester, facts, policy) {
        Err(Refusal::Invalid(e)) => Err(StoreError::Conflict(format!("the change no longer applies: {}", e.message))),
        Err(Refusal::Rule(v)) => Ok(Err(v)),
        Ok(_) => apply_statements(change, facts, requester, policy, vars).map(Ok),
    }
}

/// The statements that carry a change out, run after its guards. `by` is who asked for
/// it (a token records its maker).
fn apply_statements(
    change: &Change,
    facts: &ChangeFacts,
    by: &NodeId,
    policy: &Policy,
    vars: Vars,
) -> Result<(String, Vars)> {
    let now = Utc::now();
    Ok(match change {
        Change::Roles { person, grant, revoke } => {
            let held = facts.person.as_ref().map(|p| p.roles.as_slice()).unwrap_or_default();
            (
                "UPDATE $change_person SET roles = $change_roles, updated_at = time::now() RETURN NONE;".into(),
                vars.set("change_person", rid(person)).set("change_roles", roles_after(held, grant, revoke)),
            )
        }
        Change::Active { person, active } => (
            "UPDATE $change_person SET active = $change_active, updated_at = time::now() RETURN NONE;".into(),
            vars.set("change_person", rid(person)).set("change_active", *active),
        ),
        Change::NhiStatus { nhi, status } => (
            "UPDATE $change_nhi SET status = $change_status, updated_at = time::now() RETURN NONE;".into(),
            vars.set("change_nhi", rid(nhi)).set("change_status", status.as_str()),
        ),
        Change::SystemRisk { system, criticality, environment } => {
            let set = Content::new()
                .opt("criticality", criticality.map(|c| c.as_str()))
                .opt("environment", environment.map(|e| e.as_str()))
                .set("updated_at", dt(now));
            (
                "UPDATE $change_system MERGE $change_set RETURN NONE;".into(),
                vars.set("change_system", rid(system)).set("change_set", set.into_value()),
            )
        }
        Change::Relate { edge } => relate_statements(edge, &EdgeId::generate(edge.kind), vars, true),
        Change::Unrelate { edge, .. } => (
            "IF !record::exists($change_edge) { THROW 'NOT_FOUND: ' + <string>$change_edge };
             IF $change_edge.valid_to != NONE {
                 THROW 'CONFLICT: ' + <string>$change_edge + ' was already closed at ' + <string>$change_edge.valid_to
             };
             UPDATE $change_edge SET valid_to = time::now(), open_key = NONE RETURN NONE;"
                .into(),
            vars.set("change_edge", edge_rid(edge)),
        ),
        Change::Token { key, principal, name, scopes, expires_at, token_sha256 } => {
            let content = Content::new()
                .set("name", name.as_str())
                .set("principal", rid(principal))
                .set("token_sha256", token_sha256.as_str())
                .set("scopes", scopes.iter().map(|r| r.as_str()).collect::<Vec<_>>())
                .set("created_at", dt(now))
                .set("created_by", rid(by))
                .opt("expires_at", expires_at.map(dt));
            (
                "CREATE ONLY $change_token CONTENT $change_token_content RETURN NONE;".into(),
                vars.set("change_token", token_rid(key)).set("change_token_content", content.into_value()),
            )
        }
        Change::RevokeToken { key, .. } => (
            "IF !record::exists($change_token) { THROW 'NOT_FOUND: api token ' + record::id($change_token) };
             IF $change_token.revoked_at != NONE { THROW 'CONFLICT: the token was revoked already' };
             UPDATE $change_token SET revoked_at = time::now() RETURN NONE;"
                .into(),
            vars.set("change_token", token_rid(key)),
        ),
        Change::AdoptBaseline { id, source, edges, digest } => {
            baseline_statements(id, source.as_deref(), *edges, digest, by, vars)
        }
        Change::Policy { .. } | Change::Control { .. } => publish_statements(change, facts, by, policy, vars)?,
    })
}

/// The statements publishing a policy or control version, the next after the latest.
fn publish_statements(
    change: &Change,
    facts: &ChangeFacts,
    by: &NodeId,
    policy: &Policy,
    vars: Vars,
) -> Result<(String, Vars)> {
    Ok(match change {
        Change::Policy { id, draft } => {
            draft.check()?;
            let content = super::decisions::policy_content(draft, policy.version + 1, Some(by))?;
            (
                "CREATE ONLY $change_policy CONTENT $change_policy_content RETURN NONE;".into(),
                vars.set("change_policy", rid(id)).set("change_policy_content", content),
            )
        }
        Change::Control { id, draft } => {
            draft.check()?;
            let latest = facts
                .control_version
                .ok_or_else(|| StoreError::Database("the control's version was not read".into()))?;
            let content = super::controls::control_content(draft, latest + 1, by)?;
            (
                "CREATE ONLY $change_control CONTENT $change_control_content RETURN NONE;".into(),
                vars.set("change_control", rid(id)).set("change_control_content", content),
            )
        }
        _ => return Err(StoreError::Database(format!("{} publishes no version", change.describe()))),
    })
}

/// The roles a person holds after a change: those held, less those revoked, plus
/// those granted, sorted, each once.
fn roles_after(held: &[Role], grant: &[Role], revoke: &[Role]) -> Vec<&'static str> {
    let mut roles: Vec<Role> = held.iter().filter(|r| !revoke.contains(r)).chain(grant).copied().collect();
    roles.sort();
    roles.dedup();
    roles.iter().map(|r| r.as_str()).collect()
}

fn token_rid(key: &str) -> surrealdb::types::RecordId {
    surrealdb::types::RecordId::new("api_token", key.to_owned())
}

/// The statements adopting a source's ungoverned edges (or those no feed opened) as
/// the governed baseline, recorded as one baseline record.
fn baseline_statements(
    id: &NodeId,
    source: Option<&str>,
    edges: u64,
    digest: &str,
    by: &NodeId,
    vars: Vars,
) -> (String, Vars) {
    let content = Content::new()
        .opt("source", source.map(str::to_owned))
        .set("edges", edges as i64)
        .set("digest", digest)
        .set("adopted_by", rid(by))
        .set("adopted_at", dt(Utc::now()))
        .into_value();
    let cond = super::baseline::ungoverned_where(source);
    let vars = vars.set("baseline", rid(id)).set("baseline_content", content);
    let vars = match source {
        Some(s) => vars.set("source", s),
        None => vars,
    };
    (
        format!(
            "CREATE ONLY $baseline CONTENT $baseline_content RETURN NONE;\n{}",
            super::baseline::adopt_statements(cond)
        ),
        vars,
    )
}

impl Store {
    /// The server's principal ([`SERVER_PRINCIPAL`]), created the first time it acts.
    pub async fn server_principal(&self) -> Result<NodeId> {
        let id = NodeId::parse(SERVER_PRINCIPAL)?;
        let content = Content::new()
            .set("name", "nhigov server")
            .set("email", "server@nhigov.invalid")
            .set("roles", Vec::<String>::new())
            .set("active", false)
            .into_value();
        let sql = "IF !record::exists($id) { CREATE ONLY $id CONTENT $content RETURN NONE };";
        match self.write(sql, &Vars::new().set("id", rid(&id)).set("content", content)).await {
            // Two replicas creating it at once: one wins, and it exists.
            Ok(_) | Err(StoreError::Conflict(_) | StoreError::Unique { .. }) => Ok(id),
            Err(e) => Err(e),
        }
    }

    /// Record one phase of an import run (started, completed, failed) as a decision of
    /// `actor` about `import_run:<document digest>`, with what the run was or did.
    pub async fn record_import(
        &self,
        actor: &NodeId,
        digest: &str,
        outcome: Outcome,
        inputs: serde_json::Value,
    ) -> Result<Decision> {
        let run = NodeId::new(Table::ImportRun, digest)?;
        let summary = match outcome {
            Outcome::Started => "an import run started",
            Outcome::Completed => "an import run completed",
            _ => "an import run failed",
        };
        let (run, inputs) = (&run, &inputs);
        self.decide(|| {
            Box::pin(async move {
                let policy = self.current_policy().await?;
                Ok(Plan {
                    leaves_signins: false,
                    draft: DecisionDraft {
                        inputs: inputs.clone(),
                        ..DecisionDraft::under(&policy, DecisionKind::ImportRun, outcome, actor, run, summary)
                    },
                    effects: String::new(),
                    vars: Vars::new(),
                })
            })
        })
        .await
    }

    /// Import a feed's document as `actor`, recorded as a run in the chain: a decision
    /// when it starts (source, digest, size) and one when it completes (what it wrote)
    /// or fails (why). The write itself is [`Store::import`].
    pub async fn import_recorded(
        &self,
        actor: &NodeId,
        inv: &crate::domain::inventory::Inventory,
        digest: &str,
    ) -> Result<crate::store::ImportSummary> {
        let source = inv.source.as_ref().map(|s| s.as_str());
        let started = json!({
            "source": source, "digest": digest, "nodes": inv.nodes.len(), "edges": inv.edges.len(),
            "complete": inv.complete,
        });
        self.record_import(actor, digest, Outcome::Started, started).await?;
        match self.import(inv).await {
            Ok(mut s) => {
                // The people the feed reports gone leave, each a decision of their own.
                match self.apply_leavers(actor, inv, &s).await {
                    Ok((_, held)) => s.leavers_held = held,
                    Err(e) => tracing::warn!(error = %e, "deactivating the people a feed reports gone failed"),
                }
                let done = json!({
                    "source": source, "digest": digest, "nodes_created": s.nodes, "nodes_updated": s.nodes_updated,
                    "edges_opened": s.edges, "edges_kept": s.edges_kept, "edges_closed": s.edges_closed,
                });
                self.record_import(actor, digest, Outcome::Completed, done).await?;
                Ok(s)
            }
            Err(e) => {
                let failed = json!({ "source": source, "digest": digest, "error": e.to_string() });
                if let Err(record) = self.record_import(actor, digest, Outcome::Failed, failed).await {
                    tracing::warn!(error = %record, "recording a failed import run failed");
                }
                Err(e)
            }
        }
    }
}
