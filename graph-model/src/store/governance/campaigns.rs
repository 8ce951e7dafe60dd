//! Certification campaigns in the store (see [`crate::domain::campaign`]).
//!
//! - [`Store::start_campaign`] is one decision (`start_campaign`) that writes the
//!   campaign and every review item, with the facts each reviewer decides on, in one
//!   transaction. The reviewers hear of it in their queues.
//! - [`Store::answer_review`] is one decision (`answer_review`) per answer. A revoke or
//!   a reduction writes its request (`revoke_nhi`, `reduce_privilege`) in the same
//!   transaction; an approver decides it like any other request, and its approval
//!   closes or lowers the access.
//! - [`Store::sweep_reviews`] reminds the reviewers of items due within
//!   [`REMIND_BEFORE`] (an event in their queue, once) and escalates what is overdue:
//!   one decision (`escalate_review`) per campaign, to the owner of the campaign's
//!   control, or to the admins when it names none.

use chrono::{DateTime, Utc};
use serde_json::json;
use surrealdb::types::RecordId;

use super::requests::request_content;
use super::{Actor, Plan, dt};
use crate::domain::campaign::{self, *};
use crate::domain::*;
use crate::store::events::{EventDraft, RECORD_EVENT};
use crate::store::nodes::IN_FORCE;
use crate::store::{Content, Result, STALE, Store, StoreError, Vars, json_value, rid, take};

/// Which review items to list.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub campaign: Option<NodeId>,
    pub status: Option<ItemStatus>,
    /// Items this person may answer: theirs, their teams', escalated to them.
    pub answerable_by: Option<NodeId>,
}

/// The review items `$person` may answer (theirs, escalated to them, or for one of
/// `teams`) that meet `and` (a condition on an item), each once: an expression, and the
/// teams bound as `$team_0`, `$team_1`, ... Each way an item can be theirs is read
/// through its own index, a team at a time, each read by whom and status together
/// (`team IN $list` would read a team's answered items of every past campaign too); one
/// statement with `OR` between them reads every item of the status asked for.
pub(crate) fn answerable_items(teams: &[RecordId], and: &str) -> (String, Vars) {
    let by =
        |index: &str, whose: &str| format!("(SELECT * FROM review_item WITH INDEX {index} WHERE {whose} AND {and})");
    let mut parts =
        vec![by("review_item_reviewer", "reviewer = $person"), by("review_item_escalated", "escalated_to = $person")];
    let mut vars = Vars::new();
    for (i, team) in teams.iter().enumerate() {
        parts.push(by("review_item_team", &format!("team = $team_{i}")));
        vars = vars.set(&format!("team_{i}"), team.clone());
    }
    (format!("array::distinct(array::flatten([{}]))", parts.join(", ")), vars)
}

/// What a sweep of the campaigns did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewSweep {
    pub reminded: usize,
    pub escalated: usize,
}

impl Store {
    /// Start a campaign over the NHIs `draft.scope` reaches: one decision of `actor`
    /// writing the campaign and one review item per active NHI in scope.
    pub async fn start_campaign(
        &self,
        actor: &Actor,
        draft: &CampaignDraft,
        rationale: &Text,
        now: DateTime<Utc>,
    ) -> Result<(Campaign, Decision)> {
        draft.check(now)?;
        if let Some(key) = &draft.control
            && self.controls().await?.iter().all(|c| &c.key != key)
        {
            return Err(ValueError::new("controlKey", format!("no control {key}")).into());
        }
        let id = NodeId::generate(Table::Campaign);
        let decision = self.decide(|| Box::pin(self.plan_campaign(actor, &id, draft, rationale, now))).await?;
        let campaign = self.campaigns_by_id(std::slice::from_ref(&id)).await?.pop();
        Ok((campaign.ok_or_else(|| StoreError::NotFound(id.to_string()))?, decision))
    }

    async fn plan_campaign(
        &self,
        actor: &Actor,
        id: &NodeId,
        draft: &CampaignDraft,
        rationale: &Text,
        now: DateTime<Utc>,
    ) -> Result<Plan> {
        let ((_, roles), policy, facts, alerts) = futures::try_join!(
            self.acting(actor),
            self.current_policy(),
            self.compliance_facts(now),
            self.open_alerts_by_nhi()
        )?;
        let (items, reviewers) = review_items(id, draft, &facts, &alerts);
        if items.is_empty() {
            return Err(ValueError::new("scope", "no active NHI is in this scope").into());
        }
        let draft_decision = DecisionDraft {
            inputs: json!({
                "name": draft.name, "scope": draft.scope, "due_at": draft.due_at, "control": draft.control,
                "items": items.len(), "actor_roles": roles,
            }),
            ..DecisionDraft::under(
                &policy,
                DecisionKind::StartCampaign,
                Outcome::Started,
                &actor.id,
                id,
                rationale.as_str(),
            )
        };
        let content = Content::new()
            .set("name", draft.name.as_str())
            .set("scope", json_value(&draft.scope)?)
            .set("due_at", dt(draft.due_at))
            .set("control", draft.control.clone())
            .set("started_by", rid(&actor.id))
            .set("started_at", dt(now))
            .set("items", items.len() as i64)
            .into_value();
        // The campaign names the decision being sealed: set with it at creation,
        // as the record is fixed from then on.
        let effects = "LET $c = $campaign_content;
             CREATE ONLY $campaign SET name = $c.name, scope = $c.scope, due_at = $c.due_at,
                 control = $c.control, started_by = $c.started_by, started_at = $c.started_at,
                 items = $c.items, decision = $decision_id RETURN NONE;
             INSERT INTO review_item $items RETURN NONE;"
            .to_owned();
        let vars = Vars::new()
            .set("campaign", rid(id))
            .set("campaign_content", content)
            .set("items", items)
            .set("ev_owners", reviewers.iter().map(rid).collect::<Vec<_>>());
        Ok(Plan { leaves_signins: false, draft: draft_decision, effects, vars })
    }

    /// Open alerts (not dismissed) about each NHI.
    async fn open_alerts_by_nhi(&self) -> Result<std::collections::HashMap<NodeId, u32>> {
        #[derive(serde::Deserialize)]
        struct Row {
            subject: NodeId,
            n: u32,
        }
        let sql = "SELECT subject, count() AS n FROM alert
             WHERE status != 'dismissed' AND subject != NONE AND record::tb(subject) = 'nhi' GROUP BY subject";
        let mut resp = self.read(sql, &Vars::new()).await?;
        let rows: Vec<Row> = take(&mut resp, 0)?;
        Ok(rows.into_iter().map(|r| (r.subject, r.n)).collect())
    }

    /// Every campaign, newest first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        let mut resp = self.read("SELECT * FROM campaign ORDER BY started_at DESC", &Vars::new()).await?;
        take(&mut resp, 0)
    }

    pub async fn campaigns_by_id(&self, ids: &[NodeId]) -> Result<Vec<Campaign>> {
        self.records_by_id(Table::Campaign, ids).await
    }

    pub async fn review_items_by_id(&self, ids: &[NodeId]) -> Result<Vec<ReviewItem>> {
        self.records_by_id(Table::ReviewItem, ids).await
    }

    /// Review items, by campaign, status and who may answer them, oldest campaign first.
    pub async fn review_items(&self, f: &ItemFilter) -> Result<Vec<ReviewItem>> {
        let mut conditions = vec!["true".to_owned()];
        let mut vars = Vars::new();
        if let Some(c) = &f.campaign {
            conditions.push("campaign = $campaign".into());
            vars = vars.set("campaign", rid(c));
        }
        if let Some(s) = f.status {
            conditions.push("status = $status".into());
            vars = vars.set("status", s.as_str());
        }
        let conditions = conditions.join(" AND ");
        // The statement that returns the rows: after the items' `LET` when there is one.
        let (sql, rows) = match &f.answerable_by {
            Some(p) => {
                let teams: Vec<RecordId> = self.teams_of(p).await?.iter().map(rid).collect();
                let (items, by) = answerable_items(&teams, &conditions);
                vars = vars.set("person", rid(p)).merge(by);
                (format!("LET $items = {items}; SELECT * FROM $items ORDER BY campaign, id;"), 1)
            }
            None => (format!("SELECT * FROM review_item WHERE {conditions} ORDER BY campaign, id;"), 0),
        };
        let mut resp = self.read(&sql, &vars).await?;
        take(&mut resp, rows)
    }

    /// Answer a review item: one decision of `actor`. A revoke files a `revoke_nhi`
    /// request, a reduction a `reduce_privilege` request for `target` at `privilege`,
    /// in the same transaction; the request is decided like any other. Only whoever
    /// the item is for may answer it (see [`ReviewItem::answerable_by`]).
    pub async fn answer_review(
        &self,
        actor: &Actor,
        item: &NodeId,
        answer: ReviewAnswer,
        rationale: &Text,
        reduce: Option<(NodeId, Privilege)>,
    ) -> Result<Decision> {
        if (answer == ReviewAnswer::Reduce) != reduce.is_some() {
            return Err(ValueError::new(
                "privilege",
                "a reduction names the system (targetId) and the lower privilege, and only a reduction does",
            )
            .into());
        }
        let reduce = reduce.as_ref();
        self.decide(|| Box::pin(self.plan_answer(actor, item, answer, rationale, reduce))).await
    }

    async fn plan_answer(
        &self,
        actor: &Actor,
        item: &NodeId,
        answer: ReviewAnswer,
        rationale: &Text,
        reduce: Option<&(NodeId, Privilege)>,
    ) -> Result<Plan> {
        let ((_, roles), policy, found) = futures::try_join!(
            self.acting(actor),
            self.current_policy(),
            self.review_items_by_id(std::slice::from_ref(item))
        )?;
        let it = found.into_iter().next().ok_or_else(|| StoreError::NotFound(item.to_string()))?;
        if it.status != ItemStatus::Pending {
            return Err(StoreError::Conflict(format!("{item} was answered already ({})", it.status)));
        }
        let teams = self.teams_of(&actor.id).await?;
        if !it.answerable_by(&actor.id, &teams, roles.contains(&Role::Admin)) {
            return Err(ValueError::new(
                "id",
                format!("{item} is for its reviewer, their team or whom it was escalated to, not {}", actor.id),
            )
            .into());
        }
        let request = match answer {
            ReviewAnswer::Certify => None,
            ReviewAnswer::Revoke | ReviewAnswer::Reduce => {
                Some(self.answer_request(&actor.id, &it.nhi, reduce, rationale, &policy).await?)
            }
        };
        let outcome = if answer == ReviewAnswer::Certify { Outcome::Certified } else { Outcome::Requested };
        let draft = DecisionDraft {
            inputs: json!({
                "item": item.to_string(), "campaign": it.campaign.to_string(), "nhi": it.nhi.to_string(),
                "answer": answer, "facts": it.facts, "actor_roles": roles,
                "request": request.as_ref().map(|(id, _)| id.to_string()),
                "reduce_to": reduce.map(|(t, p)| json!({ "system": t.to_string(), "privilege": p })),
            }),
            ..DecisionDraft::under(&policy, DecisionKind::AnswerReview, outcome, &actor.id, &it.nhi, rationale.as_str())
        };
        let mut effects = format!(
            "IF $item.rev != $rev {{ THROW '{STALE}' }};
             UPDATE $item SET status = $status, answered_by = $actor, answered_at = time::now(),
                 decision = $decision_id, request = $request, rev += 1 RETURN NONE;"
        );
        let mut vars = Vars::new()
            .set("item", rid(item))
            .set("rev", it.rev as i64)
            .set("status", answer.status().as_str())
            .set("actor", rid(&actor.id))
            .set("request", request.as_ref().map(|(id, _)| rid(id)));
        if let Some((_, content)) = request {
            effects.insert_str(0, "CREATE ONLY $request CONTENT $request_content RETURN NONE;");
            vars = vars.set("request_content", content);
        }
        Ok(Plan { leaves_signins: false, draft, effects, vars })
    }

    /// The request a revoke (or, with `reduce`, a reduction) files: its id and record.
    async fn answer_request(
        &self,
        actor: &NodeId,
        nhi: &NodeId,
        reduce: Option<&(NodeId, Privilege)>,
        rationale: &Text,
        policy: &Policy,
    ) -> Result<(NodeId, surrealdb::types::Value)> {
        let (kind, target, privilege) = match reduce {
            Some((t, p)) => (RequestKind::ReducePrivilege, Some(t.clone()), Some(*p)),
            None => (RequestKind::RevokeNhi, None, None),
        };
        let new = NewRequest { target, privilege, ..NewRequest::new(kind, nhi.clone(), rationale.clone()) };
        new.check()?;
        if kind == RequestKind::ReducePrivilege {
            self.check_reduction(&new).await?;
        }
        let needed = policy.approvals_needed(kind, false);
        let content = request_content(&new, actor, RequestStatus::Pending, needed, Utc::now()).into_value();
        Ok((NodeId::generate(Table::Request), content))
    }

    /// The teams `person` belongs to now.
    pub(crate) async fn teams_of(&self, person: &NodeId) -> Result<Vec<NodeId>> {
        let sql = format!("SELECT VALUE out FROM $p->member_of WHERE {IN_FORCE}");
        let mut resp = self.read(&sql, &Vars::new().set("p", rid(person))).await?;
        take(&mut resp, 0)
    }

    /// A campaign's report as of `now`, items counted by the first team of their NHI's
    /// owners (or the item's team).
    pub async fn campaign_report(&self, id: &NodeId, now: DateTime<Utc>) -> Result<CampaignReport> {
        let c = self.campaigns_by_id(std::slice::from_ref(id)).await?.pop();
        let c = c.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let items = self.review_items(&ItemFilter { campaign: Some(id.clone()), ..Default::default() }).await?;
        // The owning teams of each NHI, read from the NHIs (not a scan of `owns`).
        let sql = format!(
            "SELECT id AS nhi, (SELECT VALUE in FROM $parent.id<-owns WHERE {IN_FORCE} AND record::tb(in) = 'team') AS teams
             FROM $nhis"
        );
        #[derive(serde::Deserialize)]
        struct Row {
            nhi: NodeId,
            teams: Vec<NodeId>,
        }
        let nhis: Vec<RecordId> = items.iter().map(|i| rid(&i.nhi)).collect();
        let mut resp = self.read(&sql, &Vars::new().set("nhis", nhis)).await?;
        let rows: Vec<Row> = take(&mut resp, 0)?;
        let team_of: std::collections::HashMap<NodeId, NodeId> =
            rows.into_iter().filter_map(|r| r.teams.into_iter().min().map(|t| (r.nhi, t))).collect();
        Ok(campaign::report(&items, c.due_at, now, |i| i.team.clone().or_else(|| team_of.get(&i.nhi).cloned())))
    }

    /// Remind the reviewers of items due within [`REMIND_BEFORE`] (once each) and
    /// escalate every overdue item (one decision per campaign) to the owner of the
    /// campaign's control, or the admins.
    pub async fn sweep_reviews(&self, now: DateTime<Utc>) -> Result<ReviewSweep> {
        let mut sweep = ReviewSweep::default();
        let sql = "SELECT * FROM campaign WHERE due_at <= $soon";
        let mut resp = self.read(sql, &Vars::new().set("soon", dt(now + REMIND_BEFORE))).await?;
        let campaigns: Vec<Campaign> = take(&mut resp, 0)?;
        for c in campaigns {
            let pending = self
                .review_items(&ItemFilter {
                    campaign: Some(c.id.clone()),
                    status: Some(ItemStatus::Pending),
                    ..Default::default()
                })
                .await?;
            let unreminded: Vec<&ReviewItem> = pending.iter().filter(|i| i.reminded_at.is_none()).collect();
            if !unreminded.is_empty() {
                sweep.reminded += self.remind(&c, &unreminded).await?;
            }
            let overdue: Vec<&ReviewItem> = pending.iter().filter(|i| i.escalated_at.is_none()).collect();
            if c.due_at < now && !overdue.is_empty() {
                sweep.escalated += self.escalate(&c, &overdue).await?;
            }
        }
        Ok(sweep)
    }

    /// One event per item, in the queue of its reviewer or its team's members.
    async fn remind(&self, c: &Campaign, items: &[&ReviewItem]) -> Result<usize> {
        for it in items {
            let event = EventDraft {
                kind: EventKind::ReviewReminder,
                case: None,
                record: it.id.clone(),
                actor: None,
                also: it.reviewer.clone(),
                summary: format!(
                    "review of {} for {} is due {}",
                    it.nhi,
                    c.name,
                    c.due_at.format("%Y-%m-%d %H:%M UTC")
                ),
                detail: Some(c.id.to_string()),
            };
            let sql = format!(
                "BEGIN;
                 LET $ev_owners = IF $team != NONE {{ (SELECT VALUE in FROM member_of WHERE out = $team AND {IN_FORCE}) }} ELSE {{ [] }};
                 UPDATE $item SET reminded_at = time::now() WHERE status = 'pending' AND reminded_at = NONE RETURN NONE;
                 {RECORD_EVENT}
                 COMMIT;"
            );
            let vars = event.bind(Vars::new().set("item", rid(&it.id)).set("team", it.team.as_ref().map(rid)));
            self.write(&sql, &vars).await?;
        }
        Ok(items.len())
    }

    async fn escalate(&self, c: &Campaign, items: &[&ReviewItem]) -> Result<usize> {
        let server = self.server_principal().await?;
        let owner = match &c.control {
            Some(key) => self.controls().await?.into_iter().find(|x| &x.key == key).map(|x| x.owner),
            None => None,
        };
        let (server, owner) = (&server, &owner);
        self.decide(|| {
            Box::pin(async move {
                let policy = self.current_policy().await?;
                let ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
                let to = owner.as_ref().map_or_else(|| "the admins".to_owned(), |o| o.to_string());
                let draft = DecisionDraft {
                    inputs: json!({ "campaign": c.id.to_string(), "due_at": c.due_at, "items": ids, "escalated_to": to }),
                    ..DecisionDraft::under(
                        &policy,
                        DecisionKind::EscalateReview,
                        Outcome::Escalated,
                        server,
                        &c.id,
                        format!("{} review item(s) of {} unanswered past {}: escalated to {to}", items.len(), c.name, c.due_at),
                    )
                };
                let effects = "FOR $i IN $items {
                         IF $i.status != 'pending' OR $i.escalated_at != NONE { THROW $stale };
                         UPDATE $i SET escalated_to = $to, escalated_at = time::now(), rev += 1 RETURN NONE;
                     };"
                .to_owned();
                let admins = "SELECT VALUE id FROM person WHERE roles CONTAINS 'admin' AND active = true";
                let mut resp = self.read(admins, &Vars::new()).await?;
                let admins: Vec<NodeId> = take(&mut resp, 0)?;
                let admins: Vec<RecordId> = admins.iter().map(rid).collect();
                let vars = Vars::new()
                    .set("items", items.iter().map(|i| rid(&i.id)).collect::<Vec<_>>())
                    .set("stale", STALE)
                    .set("to", owner.as_ref().map(rid))
                    .set("ev_owners", owner.as_ref().map_or(admins, |o| vec![rid(o)]));
                Ok(Plan { leaves_signins: false, draft, effects, vars })
            })
        })
        .await?;
        Ok(items.len())
    }
}

/// One review item per active NHI in the campaign's scope, for its reviewer (or team),
/// with the facts beside it; and the reviewers, who see their items in their queue.
fn review_items(
    campaign: &NodeId,
    draft: &CampaignDraft,
    facts: &crate::domain::control::ComplianceFacts,
    alerts: &std::collections::HashMap<NodeId, u32>,
) -> (Vec<surrealdb::types::Value>, std::collections::BTreeSet<NodeId>) {
    let mut items = Vec::new();
    let mut reviewers = std::collections::BTreeSet::new();
    for n in facts.nhis.iter().filter(|n| n.status == NhiStatus::Active && n.in_scope(&draft.scope)) {
        let (reviewer, team) = campaign::reviewer_of(n);
        let open = alerts.get(&n.id).copied().unwrap_or(0);
        if let Some(p) = &reviewer {
            reviewers.insert(p.clone());
        }
        items.push(
            Content::new()
                .set("id", rid(&NodeId::generate(Table::ReviewItem)))
                .set("campaign", rid(campaign))
                .set("nhi", rid(&n.id))
                .set("reviewer", reviewer.as_ref().map(rid))
                .set("team", team.as_ref().map(rid))
                .set("facts", campaign::item_facts(n, open).to_string())
                .set("status", ItemStatus::Pending.as_str())
                .into_value(),
        );
    }
    (items, reviewers)
}
