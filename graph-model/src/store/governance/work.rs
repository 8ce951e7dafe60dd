//! An owner's work in one listing ([`Store::work_of`]): the open cases assigned or
//! escalated to them, their open tasks, the review items they may answer, the open findings on
//! what they own and the new alerts about it, ownership counted directly or through a
//! team they are a member of (both in force now).
//!
//! The order is the one a person works in: what is overdue first, the longest overdue
//! first; then the rest, newest first. A case is due at its `due_at`, a task at its
//! case's, a review item at its campaign's; findings and alerts carry no due date.
//! Each kind is read in that same order and cut at the limit, so the merged first `n`
//! are exact; the counts are of everything open, not only of the rows returned.

use std::cmp::Reverse;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use surrealdb::types::RecordId;

use super::campaigns::answerable_items;
use super::controls::Finding;
use super::distinct;
use crate::domain::campaign::ReviewItem;
use crate::domain::*;
use crate::store::{Result, Store, Vars, dt, in_chunks_expr, rid, take};

/// Which listing a row of an owner's work comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkKind {
    Case,
    Task,
    ReviewItem,
    Finding,
    Alert,
}

/// The record a row of an owner's work is.
#[derive(Debug, Clone)]
pub enum WorkRecord {
    Case(Case),
    Task(Task),
    ReviewItem(ReviewItem),
    Finding(Finding),
    Alert(Alert),
}

/// Where a row sorts: not overdue, when it was due (if overdue), when it arrived, its id.
type OrderKey = (bool, Option<DateTime<Utc>>, Reverse<DateTime<Utc>>, Reverse<String>);

/// One row of an owner's work.
#[derive(Debug, Clone)]
pub struct WorkItem {
    pub record: WorkRecord,
    /// When it reached them: a case's opening, a task's creation, a campaign's start
    /// (or the item's escalation), a finding's opening, an alert's last sighting.
    pub at: DateTime<Utc>,
    pub due: Option<DateTime<Utc>>,
    /// The identity it is about, when it is about one.
    pub subject: Option<NodeId>,
}

impl WorkItem {
    pub fn kind(&self) -> WorkKind {
        match self.record {
            WorkRecord::Case(_) => WorkKind::Case,
            WorkRecord::Task(_) => WorkKind::Task,
            WorkRecord::ReviewItem(_) => WorkKind::ReviewItem,
            WorkRecord::Finding(_) => WorkKind::Finding,
            WorkRecord::Alert(_) => WorkKind::Alert,
        }
    }

    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.due.is_some_and(|d| d < now)
    }

    /// The listing's order: overdue first (the earliest due first), then newest first;
    /// ties go to the greater record id (ids grow with time), so the order is total.
    fn order_key(&self, now: DateTime<Utc>) -> OrderKey {
        let overdue = self.overdue(now);
        (!overdue, if overdue { self.due } else { None }, Reverse(self.at), Reverse(self.id().to_string()))
    }

    /// The id of the record the row is.
    pub fn id(&self) -> &NodeId {
        match &self.record {
            WorkRecord::Case(c) => &c.id,
            WorkRecord::Task(t) => &t.id,
            WorkRecord::ReviewItem(i) => &i.id,
            WorkRecord::Finding(f) => &f.id,
            WorkRecord::Alert(a) => &a.id,
        }
    }
}

/// An owner's work: the first rows in order, and how much is open of each kind.
#[derive(Debug, Clone, Default)]
pub struct Work {
    pub items: Vec<WorkItem>,
    pub counts: HashMap<WorkKind, u64>,
    /// How many of all of it (not only the rows returned) are past their due date.
    pub overdue: u64,
}

/// The counts of what is open, read beside the rows.
#[derive(Deserialize)]
struct Counts {
    cases: u64,
    overdue_cases: u64,
    tasks: u64,
    items: u64,
    findings: u64,
    alerts: u64,
}

/// The largest number of open tasks and review items read for one person: both are
/// read whole to be ordered by the due date of their case or campaign (their counts
/// are counted apart, past this too; their overdue ones among those read).
const WHOLE_LIMIT: i64 = 5000;

impl Store {
    /// The work of `person` at `now`, its first `limit` rows (see the module's docs).
    pub async fn work_of(&self, person: &NodeId, limit: usize, now: DateTime<Utc>) -> Result<Work> {
        let (teams, owned) = self.ownership_of(person).await?;
        let owned: Vec<RecordId> = owned.iter().map(rid).collect();
        // The open cases assigned or escalated to them, each read through its index (one
        // statement with `OR` between them would read every case).
        let mine = |index: &str, whose: &str| {
            format!("(SELECT * FROM case WITH INDEX {index} WHERE {whose} = $person AND status != 'closed')")
        };
        let cases = format!(
            "array::distinct(array::concat({}, {}))",
            mine("case_assignee", "assignee"),
            mine("case_escalated_to", "escalated_to")
        );
        let tasks = "assignee = $person AND status = 'open'";
        let team_ids: Vec<RecordId> = teams.iter().map(rid).collect();
        let (items, item_vars) = answerable_items(&team_ids, "status = 'pending'");
        // Every open finding and new alert on what they own, read by subject 32 at a
        // time (the hint: by status the planner would walk every open one), then
        // ordered, cut and counted.
        let (findings, finding_vars) = in_chunks_expr(
            "SELECT * FROM finding WITH INDEX finding_subject WHERE subject IN $owned AND status = 'open'",
            "owned",
            &owned,
        );
        // The same chunks, bound under the same names as the findings'.
        let (alerts, _) = in_chunks_expr(
            "SELECT * FROM alert WITH INDEX alert_subject WHERE subject IN $owned AND status = 'new'",
            "owned",
            &owned,
        );
        let sql = format!(
            "LET $findings = {findings};
             LET $alerts = {alerts};
             LET $cases = {cases};
             LET $items = {items};
             SELECT * FROM $cases WHERE due_at < $now ORDER BY due_at LIMIT $limit;
             SELECT * FROM $cases WHERE due_at >= $now ORDER BY opened_at DESC LIMIT $limit;
             SELECT * FROM task WHERE {tasks} LIMIT $whole;
             SELECT * FROM $items LIMIT $whole;
             SELECT * FROM $findings ORDER BY id DESC LIMIT $limit;
             SELECT * FROM $alerts ORDER BY last_seen DESC LIMIT $limit;
             RETURN {{
                 cases: array::len($cases),
                 overdue_cases: array::len(SELECT VALUE id FROM $cases WHERE due_at < $now),
                 tasks: array::len(SELECT VALUE id FROM task WHERE {tasks}),
                 items: array::len($items),
                 findings: array::len($findings),
                 alerts: array::len($alerts),
             }};"
        );
        let vars = Vars::new()
            .set("person", rid(person))
            .set("now", dt(now))
            .set("limit", limit as i64)
            .set("whole", WHOLE_LIMIT)
            .merge(finding_vars)
            .merge(item_vars);
        let mut resp = self.read(&sql, &vars).await?;
        let mut cases: Vec<Case> = take(&mut resp, 4)?;
        cases.extend(take::<Vec<Case>>(&mut resp, 5)?);
        let open = Open {
            cases,
            tasks: take(&mut resp, 6)?,
            items: take(&mut resp, 7)?,
            findings: take(&mut resp, 8)?,
            alerts: take(&mut resp, 9)?,
            counts: take(&mut resp, 10)?,
        };
        let task_due = self.due_of_cases(&open.tasks).await?;
        let campaigns = self.campaigns_of(&open.items).await?;
        Ok(open.merge(&task_due, &campaigns, limit, now))
    }

    /// The due time of each case the tasks belong to.
    async fn due_of_cases(&self, tasks: &[Task]) -> Result<HashMap<NodeId, DateTime<Utc>>> {
        let ids = distinct(tasks.iter().map(|t| t.case.clone()));
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.cases_by_id(&ids).await?.into_iter().map(|c| (c.id, c.due_at)).collect())
    }

    /// The due and start times of each campaign the items belong to.
    async fn campaigns_of(&self, items: &[ReviewItem]) -> Result<HashMap<NodeId, (DateTime<Utc>, DateTime<Utc>)>> {
        let ids = distinct(items.iter().map(|i| i.campaign.clone()));
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.campaigns_by_id(&ids).await?.into_iter().map(|c| (c.id, (c.due_at, c.started_at))).collect())
    }
}

/// What [`Store::work_of`] read, before it is merged.
struct Open {
    cases: Vec<Case>,
    tasks: Vec<Task>,
    items: Vec<ReviewItem>,
    findings: Vec<Finding>,
    alerts: Vec<Alert>,
    counts: Counts,
}

impl Open {
    /// The rows in the listing's order, the first `limit` of them, and the counts.
    fn merge(
        self,
        task_due: &HashMap<NodeId, DateTime<Utc>>,
        campaigns: &HashMap<NodeId, (DateTime<Utc>, DateTime<Utc>)>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Work {
        let Open { cases, tasks, items, findings, alerts, counts } = self;
        let mut rows = Vec::with_capacity(cases.len() + tasks.len() + items.len() + findings.len() + alerts.len());
        rows.extend(cases.into_iter().map(|c| WorkItem {
            at: c.opened_at,
            due: Some(c.due_at),
            subject: c.subjects.first().cloned(),
            record: WorkRecord::Case(c),
        }));
        rows.extend(tasks.into_iter().map(|t| WorkItem {
            at: t.created_at,
            due: task_due.get(&t.case).copied(),
            subject: None,
            record: WorkRecord::Task(t),
        }));
        rows.extend(items.into_iter().map(|i| WorkItem {
            at: i.escalated_at.or_else(|| campaigns.get(&i.campaign).map(|c| c.1)).unwrap_or(now),
            due: campaigns.get(&i.campaign).map(|c| c.0),
            subject: Some(i.nhi.clone()),
            record: WorkRecord::ReviewItem(i),
        }));
        rows.extend(findings.into_iter().map(|f| WorkItem {
            at: f.opened_at,
            due: None,
            subject: Some(f.subject.clone()),
            record: WorkRecord::Finding(f),
        }));
        rows.extend(alerts.into_iter().map(|a| WorkItem {
            at: a.last_seen,
            due: None,
            subject: a.subject.clone(),
            record: WorkRecord::Alert(a),
        }));
        let overdue =
            counts.overdue_cases + rows.iter().filter(|r| r.kind() != WorkKind::Case && r.overdue(now)).count() as u64;
        rows.sort_by_cached_key(|r| r.order_key(now));
        rows.truncate(limit);
        let counts = HashMap::from([
            (WorkKind::Case, counts.cases),
            (WorkKind::Task, counts.tasks),
            (WorkKind::ReviewItem, counts.items),
            (WorkKind::Finding, counts.findings),
            (WorkKind::Alert, counts.alerts),
        ]);
        Work { items: rows, counts, overdue }
    }
}
