//! Events: what happened to a case, a decision or an alert, as subscriptions and
//! webhooks see it.
//!
//! An event is written in the same transaction as the change it reports, so it exists
//! exactly when the change does, whichever replica made it. Its `queue` names the
//! people whose work list the change touches (the case's assignee and whoever it is
//! escalated to, and a task's assignee), which is what a per-user subscription filters
//! on.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::ids::NodeId;
use super::values::text_enum;

text_enum!(
    /// What an event reports.
    EventKind, "kind" {
        Decision => "decision",
        Evidence => "evidence",
        TaskAdded => "task_added",
        TaskFinished => "task_finished",
        AlertRaised => "alert_raised",
        ReviewReminder => "review_reminder",
    }
);

/// One committed change, as read back from the store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// `event:<uuidv7>`; unique, in creation order.
    pub id: String,
    pub kind: EventKind,
    /// The case it happened on, if any.
    pub case: Option<NodeId>,
    /// People whose queue it concerns.
    #[serde(default)]
    pub queue: Vec<NodeId>,
    /// The record written: the decision, evidence, task or alert.
    pub record: NodeId,
    pub actor: Option<NodeId>,
    /// One line for people: what happened, by whom, why.
    pub summary: String,
    /// For decisions, `kind outcome` (`close_case closed`); for alerts, their severity.
    pub detail: Option<String>,
    /// The database's time at commit.
    pub at: DateTime<Utc>,
}

impl Event {
    /// Whether this event belongs in `person`'s queue.
    pub fn in_queue_of(&self, person: &NodeId) -> bool {
        self.queue.iter().any(|p| p == person)
    }
}
