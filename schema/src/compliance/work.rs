//! `myWork`: everything waiting on the caller in one listing, overdue first (see
//! `graph_model::store::Work`).

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};
use graph_model::store::{self as gm, Store, WorkKind as Kind, WorkRecord as Record};

use super::campaigns::ReviewItem;
use super::types::Finding;
use crate::cases::types::{Task, gid};
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_CASES, RoleGuard, principal};
use crate::records::{Alert, Case};
use crate::relay::MAX_PAGE;

/// Which listing a row of `myWork` comes from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    /// An open case assigned or escalated to the caller.
    Case,
    /// An open task assigned to the caller.
    Task,
    /// A pending review item the caller may answer.
    ReviewItem,
    /// An open finding on what the caller owns.
    Finding,
    /// A new alert about what the caller owns.
    Alert,
}

impl From<Kind> for WorkKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Case => WorkKind::Case,
            Kind::Task => WorkKind::Task,
            Kind::ReviewItem => WorkKind::ReviewItem,
            Kind::Finding => WorkKind::Finding,
            Kind::Alert => WorkKind::Alert,
        }
    }
}

/// The record behind a row of `myWork`.
#[derive(Union)]
pub enum WorkRecord {
    Case(Case),
    Task(Task),
    ReviewItem(ReviewItem),
    Finding(Finding),
    Alert(Alert),
}

/// One row of `myWork`.
pub struct WorkItem {
    item: gm::WorkItem,
    now: DateTime<Utc>,
}

#[Object]
impl WorkItem {
    async fn kind(&self) -> WorkKind {
        self.item.kind().into()
    }

    /// When it reached the caller: a case's opening, a task's creation, a campaign's
    /// start (or the item's escalation), a finding's opening, an alert's last sighting.
    async fn at(&self) -> DateTime<Utc> {
        self.item.at
    }

    /// A case's due time, a task's case's, a review item's campaign's.
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.item.due
    }

    async fn overdue(&self) -> bool {
        self.item.overdue(self.now)
    }

    /// The identity it is about, when it is about one.
    async fn subject_id(&self) -> Option<ID> {
        self.item.subject.as_ref().map(gid)
    }

    async fn record(&self) -> WorkRecord {
        match self.item.record.clone() {
            Record::Case(c) => WorkRecord::Case(Case(c)),
            Record::Task(t) => WorkRecord::Task(Task(t)),
            Record::ReviewItem(i) => WorkRecord::ReviewItem(ReviewItem(i)),
            Record::Finding(f) => WorkRecord::Finding(Finding(f)),
            Record::Alert(a) => WorkRecord::Alert(Alert(a)),
        }
    }
}

/// How much is open of each kind, all of it, not only the rows returned.
#[derive(SimpleObject)]
pub struct WorkCounts {
    pub cases: u64,
    pub tasks: u64,
    pub review_items: u64,
    pub findings: u64,
    pub alerts: u64,
    /// Past their due date, of every kind.
    pub overdue: u64,
    pub total: u64,
}

/// The caller's work: the first rows in order, and the counts of all of it.
#[derive(SimpleObject)]
pub struct Work {
    pub items: Vec<WorkItem>,
    pub counts: WorkCounts,
}

#[derive(Default)]
pub struct WorkQuery;

#[Object]
impl WorkQuery {
    /// Everything waiting on the caller in one listing: open cases assigned or
    /// escalated to them, their open tasks, the review items they may answer, and the
    /// open findings and new alerts on what they own (directly or through a team).
    /// Overdue first, the longest overdue first; then the rest, newest first. `first`
    /// rows, 1 to 100 (default 100).
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn my_work(&self, ctx: &Context<'_>, first: Option<i32>) -> ApiResult<Work> {
        let first = first.unwrap_or(MAX_PAGE);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input("first", format!("must be between 1 and {MAX_PAGE}")));
        }
        let now = Utc::now();
        let me = principal(ctx)?.id().clone();
        let work = ctx.data::<Store>()?.work_of(&me, first as usize, now).await.map_err(ApiError::from)?;
        let count = |k: Kind| work.counts.get(&k).copied().unwrap_or(0);
        let counts = WorkCounts {
            cases: count(Kind::Case),
            tasks: count(Kind::Task),
            review_items: count(Kind::ReviewItem),
            findings: count(Kind::Finding),
            alerts: count(Kind::Alert),
            overdue: work.overdue,
            total: work.counts.values().sum(),
        };
        Ok(Work { items: work.items.into_iter().map(|item| WorkItem { item, now }).collect(), counts })
    }
}
