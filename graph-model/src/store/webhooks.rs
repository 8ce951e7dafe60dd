//! The webhook outbox: deliveries of events to configured endpoints, kept in the store so
//! that none is lost to a restart and none is sent twice by two replicas.
//!
//! [`Store::enqueue_deliveries`] records one delivery per (webhook, event), keyed by both,
//! so a replica that sees an event another already enqueued changes nothing.
//! [`Store::lease_due_deliveries`] hands out deliveries whose time has come, each leased
//! to one caller for a while; [`Store::delivery_done`] records the outcome: delivered, or
//! rescheduled, or failed for good. Sending them is the API's job (`api/src/webhooks.rs`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use surrealdb::types::RecordId;

use super::dt;
use super::{Content, Result, Store, Vars, take};
use crate::domain::Event;

/// A delivery handed out to be sent.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub webhook: String,
    pub attempts: u32,
    pub event: Event,
}

/// How an attempt went.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    /// Try again at `retry_at`, or give up when `None`.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Deliveries by state, for one webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// The key of a delivery: the webhook's name and the event's key, so each pair has one.
fn delivery_rid(webhook: &str, event_id: &str) -> RecordId {
    let key = event_id.rsplit(':').next().unwrap_or(event_id).trim_matches(['⟨', '⟩', '`']);
    RecordId::new("webhook_delivery", format!("{webhook}_{key}"))
}

impl Store {
    /// Record a pending delivery of each event to each webhook named with it; pairs
    /// already recorded (by this or another replica) are left as they are.
    pub async fn enqueue_deliveries(&self, pairs: &[(String, Event)]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let rows: Vec<surrealdb::types::Value> = pairs
            .iter()
            .map(|(hook, e)| {
                Content::new()
                    .set("id", delivery_rid(hook, &e.id))
                    .set("webhook", hook.as_str())
                    .set("event", RecordId::new("event", event_key(&e.id)))
                    .into_value()
            })
            .collect();
        self.write(
            "INSERT IGNORE INTO webhook_delivery (SELECT *, 'pending' AS status, 0 AS attempts,
                time::now() AS next_at, time::now() AS created_at FROM $rows) RETURN NONE;",
            &Vars::new().set("rows", rows),
        )
        .await?;
        Ok(())
    }

    /// Up to `limit` deliveries that are due and not leased, each leased for `lease`.
    /// Two replicas asking at once conflict on the same records; one of them retries
    /// and finds them leased.
    pub async fn lease_due_deliveries(&self, limit: usize, lease: std::time::Duration) -> Result<Vec<Delivery>> {
        let mut resp = self
            .write(
                "BEGIN;
                 LET $due = (SELECT VALUE id FROM webhook_delivery
                     WHERE status = 'pending' AND next_at <= time::now()
                       AND (lease_until = NONE OR lease_until < time::now()) LIMIT $limit);
                 LET $leased = (UPDATE $due SET lease_until = time::now() + $lease RETURN VALUE id);
                 COMMIT;
                 SELECT id, webhook, attempts, event.* AS event FROM $leased;",
                &Vars::new().set("limit", limit as i64).set("lease", surrealdb::types::Duration::from_std(lease)),
            )
            .await?;
        let last = resp.num_statements() - 1;
        take(&mut resp, last)
    }

    /// Record how an attempt at `delivery` went.
    pub async fn delivery_done(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()> {
        let id = delivery_rid(&delivery.webhook, &delivery.event.id);
        let (sql, vars) = match attempt {
            Attempt::Delivered { status } => (
                "UPDATE $id SET status = 'delivered', attempts += 1, last_status = $status, last_error = NONE,
                     lease_until = NONE, delivered_at = time::now() RETURN NONE;",
                Vars::new().set("id", id).set("status", i64::from(*status)),
            ),
            Attempt::Failed { status, error, retry_at } => (
                "UPDATE $id SET status = IF $retry = NONE { 'failed' } ELSE { 'pending' }, attempts += 1,
                     last_status = $status, last_error = $error, lease_until = NONE,
                     next_at = $retry ?? next_at RETURN NONE;",
                Vars::new()
                    .set("id", id)
                    .set("status", status.map(i64::from))
                    .set("error", error.chars().take(500).collect::<String>())
                    .set("retry", retry_at.map(dt)),
            ),
        };
        self.write(sql, &vars).await?;
        Ok(())
    }

    /// The time of the last event the webhook enqueuer has handled, if it ever ran.
    pub async fn webhook_cursor(&self) -> Result<Option<DateTime<Utc>>> {
        let mut resp = self.read("RETURN (SELECT VALUE cursor FROM ONLY meta:webhooks);", &Vars::new()).await?;
        take(&mut resp, 0)
    }

    /// Move the enqueuer's cursor forward to `at` (never back: replicas share it).
    pub async fn set_webhook_cursor(&self, at: DateTime<Utc>) -> Result<()> {
        self.write(
            "UPSERT meta:webhooks SET cursor = IF cursor = NONE OR cursor < $at { $at } ELSE { cursor } RETURN NONE;",
            &Vars::new().set("at", dt(at)),
        )
        .await?;
        Ok(())
    }

    /// Deliveries of `webhook` by state.
    pub async fn delivery_counts(&self, webhook: &str) -> Result<DeliveryCounts> {
        let mut resp = self
            .read(
                "RETURN {
                    pending: count(SELECT VALUE id FROM webhook_delivery WHERE webhook = $w AND status = 'pending'),
                    delivered: count(SELECT VALUE id FROM webhook_delivery WHERE webhook = $w AND status = 'delivered'),
                    failed: count(SELECT VALUE id FROM webhook_delivery WHERE webhook = $w AND status = 'failed'),
                 };",
                &Vars::new().set("w", webhook),
            )
            .await?;
        take(&mut resp, 0)
    }
}

/// The key of an event id (`event:key`, the key possibly in ⟨⟩).
pub(crate) fn event_key(id: &str) -> String {
    id.strip_prefix("event:").unwrap_or(id).trim_matches(['⟨', '⟩', '`']).to_owned()
}
