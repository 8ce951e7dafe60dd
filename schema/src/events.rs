//! Live updates over `/graphql/ws`.
//!
//! Case, decision and alert events come from the store's event feed
//! (`Store::subscribe_events`): each is written in the transaction of the change it
//! reports and read back from the database, so a subscriber sees what every replica
//! commits. Inventory changes travel on an in-process bus ([`EventBus`]) and are seen
//! on the replica that made them.
//!
//! Neither source slows the writers: a subscriber that falls too far behind loses the
//! oldest events and is sent one `LAGGED` event instead; it should refetch what it shows.

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use graph_model as gm;
use graph_model::store::Store;
use tokio::sync::broadcast;

use crate::cases::loaders::{Record, case, records};
use crate::cases::mutation::node_id;
use crate::cases::types::{Alert, Case, Evidence, Task, person};
use crate::decisions::types::Decision;
use crate::enums::Severity;
use crate::error::{ApiError, ApiResult};
use crate::inventory::types::Person;
use crate::principal::{READ_CASES, READ_EVIDENCE, READ_INVENTORY, RoleGuard, principal};

/// What happened to the inventory.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Created,
    Updated,
    Related,
    Closed,
    Imported,
    /// This subscriber missed events; refetch what it shows.
    Lagged,
}

/// One change to the inventory.
#[derive(SimpleObject, Debug, Clone)]
pub struct InventoryEvent {
    pub action: ChangeAction,
    /// The node or edge changed; for an import, empty.
    pub id: Option<ID>,
    pub at: DateTime<Utc>,
}

/// The in-process event bus.
#[derive(Clone)]
pub struct EventBus {
    inventory: broadcast::Sender<InventoryEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { inventory: broadcast::channel(1024).0 }
    }
}

impl EventBus {
    pub fn inventory_changed(&self, action: ChangeAction, id: Option<String>) {
        // No subscriber is not an error.
        let _ = self.inventory.send(InventoryEvent { action, id: id.map(ID), at: Utc::now() });
    }
}

/// What a case event reports.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseEventKind {
    /// A decision was recorded (opening, assignment, transition, escalation, closing,
    /// an approval, a refusal...).
    Decision,
    /// Evidence was attached.
    Evidence,
    TaskAdded,
    /// A task was done or cancelled.
    TaskFinished,
    /// A new alert arrived (a repeat of a known one is not an event).
    AlertRaised,
    /// A review item of a certification campaign is due soon and still unanswered.
    ReviewReminder,
    /// This subscriber fell behind and missed events; refetch what it shows.
    Lagged,
}

impl From<gm::EventKind> for CaseEventKind {
    fn from(k: gm::EventKind) -> Self {
        match k {
            gm::EventKind::Decision => CaseEventKind::Decision,
            gm::EventKind::Evidence => CaseEventKind::Evidence,
            gm::EventKind::TaskAdded => CaseEventKind::TaskAdded,
            gm::EventKind::TaskFinished => CaseEventKind::TaskFinished,
            gm::EventKind::AlertRaised => CaseEventKind::AlertRaised,
            gm::EventKind::ReviewReminder => CaseEventKind::ReviewReminder,
        }
    }
}

/// Something that happened to a case, a request or an alert, as it committed.
pub struct CaseEvent(Option<gm::Event>);

#[Object]
impl CaseEvent {
    /// Unique, in commit order per replica; empty for `LAGGED`.
    async fn id(&self) -> Option<ID> {
        self.0.as_ref().map(|e| ID(e.id.clone()))
    }
    async fn kind(&self) -> CaseEventKind {
        self.0.as_ref().map(|e| e.kind.into()).unwrap_or(CaseEventKind::Lagged)
    }
    /// When it committed (the database's clock); for `LAGGED`, when the gap was noticed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.as_ref().map(|e| e.at).unwrap_or_else(Utc::now)
    }
    /// What happened, in one line.
    async fn summary(&self) -> String {
        match &self.0 {
            Some(e) => e.summary.clone(),
            None => "events were missed; refetch".into(),
        }
    }
    /// For a decision, its kind and outcome (`close_case closed`); for evidence and
    /// tasks, their kind or new status; for an alert, its severity.
    async fn detail(&self) -> Option<&str> {
        self.0.as_ref().and_then(|e| e.detail.as_deref())
    }
    /// The id of the record written: a decision, evidence, task or alert.
    async fn record_id(&self) -> Option<ID> {
        self.0.as_ref().map(|e| ID(e.record.to_string()))
    }
    async fn case_id(&self) -> Option<ID> {
        self.0.as_ref().and_then(|e| e.case.as_ref()).map(|c| ID(c.to_string()))
    }
    async fn case(&self, ctx: &Context<'_>) -> ApiResult<Option<Case>> {
        Ok(case(ctx, self.0.as_ref().and_then(|e| e.case.as_ref())).await?.map(Case))
    }
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<Person>> {
        person(ctx, self.0.as_ref().and_then(|e| e.actor.as_ref())).await
    }
    /// The decision, when the event is one.
    async fn decision(&self, ctx: &Context<'_>) -> ApiResult<Option<Decision>> {
        Ok(self.record(ctx, gm::Table::Decision).await?.and_then(|r| match r {
            Record::Decision(d) => Some(Decision(d)),
            _ => None,
        }))
    }
    /// The evidence, when the event is an attachment.
    async fn evidence(&self, ctx: &Context<'_>) -> ApiResult<Option<Evidence>> {
        Ok(self.record(ctx, gm::Table::Evidence).await?.and_then(|r| match r {
            Record::Evidence(e) => Some(Evidence(e)),
            _ => None,
        }))
    }
    /// The alert, when the event is a new one.
    async fn alert(&self, ctx: &Context<'_>) -> ApiResult<Option<Alert>> {
        Ok(self.record(ctx, gm::Table::Alert).await?.and_then(|r| match r {
            Record::Alert(a) => Some(Alert(a)),
            _ => None,
        }))
    }
    /// The task, when the event is about one.
    async fn task(&self, ctx: &Context<'_>) -> ApiResult<Option<Task>> {
        let Some(id) = self.0.as_ref().map(|e| &e.record).filter(|r| r.table() == gm::Table::Task) else {
            return Ok(None);
        };
        Ok(ctx.data::<Store>()?.tasks_by_id(std::slice::from_ref(id)).await?.pop().map(Task))
    }
}

impl CaseEvent {
    async fn record(&self, ctx: &Context<'_>, table: gm::Table) -> ApiResult<Option<Record>> {
        match self.0.as_ref().map(|e| &e.record).filter(|r| r.table() == table) {
            Some(id) => Ok(records(ctx, [id.clone()]).await?.pop()),
            None => Ok(None),
        }
    }
}

/// The store's events that `keep` accepts, with a `LAGGED` event for each gap.
async fn case_events(
    ctx: &Context<'_>,
    keep: impl Fn(&gm::Event) -> bool + Send + 'static,
) -> async_graphql::Result<BoxStream<'static, CaseEvent>> {
    let rx = ctx.data::<Store>()?.subscribe_events().await?;
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(event) => Some((Some(event), rx)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((None, rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    Ok(stream
        .filter_map(move |e| {
            let out = match e {
                Some(e) if keep(&e) => Some(CaseEvent(Some(e))),
                Some(_) => None,
                None => Some(CaseEvent(None)),
            };
            futures::future::ready(out)
        })
        .boxed())
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every change to the inventory, as it commits.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn inventory_changed(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = InventoryEvent>> {
        let rx = ctx.data::<EventBus>()?.inventory.subscribe();
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((event, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Some((InventoryEvent { action: ChangeAction::Lagged, id: None, at: Utc::now() }, rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        }))
    }

    /// Everything that happens on one case: decisions, evidence, tasks.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn case_events(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, CaseEvent>> {
        let id = node_id(&case_id, "caseId")?;
        if id.table() != gm::Table::Case {
            return Err(ApiError::BadInput { field: "caseId".into(), message: format!("{id} is not a case") }.into());
        }
        if case(ctx, Some(&id)).await?.is_none() {
            return Err(ApiError::NotFound(id.to_string()).into());
        }
        case_events(ctx, move |e| e.case.as_ref() == Some(&id)).await
    }

    /// What happens in the caller's queue: cases assigned or escalated to them
    /// (including the assignment itself), tasks assigned to them, and alerts and
    /// control results about what they own, directly or through a team.
    #[graphql(guard = "RoleGuard(READ_EVIDENCE)")]
    async fn queue_events(&self, ctx: &Context<'_>) -> async_graphql::Result<BoxStream<'static, CaseEvent>> {
        let me = principal(ctx)?.id().clone();
        case_events(ctx, move |e| e.in_queue_of(&me)).await
    }

    /// New alerts, at or above a severity (default: all).
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn alert_raised(
        &self,
        ctx: &Context<'_>,
        min_severity: Option<Severity>,
    ) -> async_graphql::Result<BoxStream<'static, CaseEvent>> {
        let min: Option<gm::Severity> = min_severity.map(Into::into);
        case_events(ctx, move |e| {
            e.kind == gm::EventKind::AlertRaised
                && min.is_none_or(|m| {
                    e.detail.as_deref().and_then(|d| gm::Severity::parse(d).ok()).is_some_and(|s| s <= m)
                })
        })
        .await
    }
}
