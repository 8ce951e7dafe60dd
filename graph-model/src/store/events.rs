//! The event feed: events are written in the transactions that make the changes they
//! report ([`EventDraft`]), and read back by a poller that fans them out to this
//! process's subscribers ([`Store::subscribe_events`]).
//!
//! Reading from the database rather than hearing of this process's own writes is what
//! lets a subscriber on one replica see what another replica committed. The poller runs
//! only while someone listens. It looks every `POLL` and at once after this process
//! writes, and re-reads a margin (`MARGIN`) behind the database's clock, so an event
//! whose transaction committed a little after the time it wrote is still seen; ids
//! already delivered are remembered for as long as the margin, so nothing is sent twice.
//!
//! A subscriber that falls more than `CAPACITY` events behind loses the oldest and is
//! told so (`RecvError::Lagged`); it should refetch what it shows.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use surrealdb::types::RecordId;
use tokio::sync::{Mutex, Notify, broadcast};
use tracing::warn;

use super::dt;
use super::{Result, Store, Vars, rid, take};
use crate::domain::*;

/// How often the poller looks when this process has not written.
const POLL: Duration = Duration::from_millis(250);
/// How far behind the last look each look re-reads.
const MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// Events a subscriber may fall behind before it loses the oldest.
const CAPACITY: usize = 4096;

/// The statement that records an event inside a write transaction; [`EventDraft::bind`]
/// supplies its values. The queue is read after the change, so an assignment puts the
/// event in the new assignee's queue.
pub(crate) const RECORD_EVENT: &str = "CREATE ONLY $ev_id CONTENT {
    kind: $ev_kind, case: $ev_case, record: $ev_record, actor: $ev_actor,
    summary: $ev_summary, detail: $ev_detail, at: time::now(),
    queue: array::distinct(array::filter(
        array::concat([$ev_case.assignee, $ev_case.escalated_to, $ev_also], $ev_owners ?? []), |$p| $p != NONE)),
} RETURN NONE;";

/// An event about to be written with the change it reports. A plan may also bind
/// `$ev_owners` (people): the owners of what the change concerns, whose queues it
/// reaches too.
pub(crate) struct EventDraft {
    pub kind: EventKind,
    pub case: Option<NodeId>,
    pub record: NodeId,
    pub actor: Option<NodeId>,
    /// Someone besides the case's assignee whose queue it concerns.
    pub also: Option<NodeId>,
    pub summary: String,
    pub detail: Option<String>,
}

impl EventDraft {
    /// Add the values [`RECORD_EVENT`] reads. `$ev_owners` is bound (to `NONE`) when the
    /// plan has not bound it: SurrealDB looks a name no query binds up in the database's
    /// `DEFINE PARAM`s, a read of the catalog and an error made and dropped each time.
    pub fn bind(&self, vars: Vars) -> Vars {
        vars.or_set("ev_owners", None::<Vec<RecordId>>)
            .set("ev_id", RecordId::new("event", uuid::Uuid::now_v7().simple().to_string()))
            .set("ev_kind", self.kind.as_str())
            .set("ev_case", self.case.as_ref().map(rid))
            .set("ev_record", rid(&self.record))
            .set("ev_actor", self.actor.as_ref().map(rid))
            .set("ev_also", self.also.as_ref().map(rid))
            .set("ev_summary", self.summary.as_str())
            .set("ev_detail", self.detail.clone())
    }
}

/// The fan-out of one process.
pub(crate) struct Feed {
    tx: broadcast::Sender<Event>,
    wake: Notify,
    /// Whether a poller runs; taken by whoever starts or stops it.
    running: Mutex<bool>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed { tx: broadcast::channel(CAPACITY).0, wake: Notify::new(), running: Mutex::new(false) }
    }
}

impl Feed {
    /// This process committed something: look now rather than at the next tick.
    pub(crate) fn poke(&self) {
        self.wake.notify_one();
    }
}

/// What the poller has delivered.
struct Cursor {
    /// The database's clock at the last look.
    to: DateTime<Utc>,
    /// Ids delivered within the margin, with their time.
    seen: HashMap<String, DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Seen {
    id: String,
    at: DateTime<Utc>,
}

impl Store {
    /// Events committed from now on, by this process or any other sharing the database.
    pub async fn subscribe_events(&self) -> Result<broadcast::Receiver<Event>> {
        let mut running = self.feed.running.lock().await;
        let rx = self.feed.tx.subscribe();
        if !*running {
            // The baseline is read before this returns, so whatever commits after the
            // subscription is delivered and nothing before it is.
            let cursor = self.event_baseline().await?;
            *running = true;
            let store = self.clone();
            tokio::spawn(async move { store.poll_events(cursor).await });
        }
        Ok(rx)
    }

    /// Events committed after `since`, oldest first: for webhooks catching up after a
    /// restart, and for tests.
    pub async fn events_since(&self, since: DateTime<Utc>, limit: usize) -> Result<Vec<Event>> {
        let mut resp = self
            .read(
                "SELECT * FROM event WHERE at > $since ORDER BY at, id LIMIT $limit",
                &Vars::new().set("since", dt(since)).set("limit", limit as i64),
            )
            .await?;
        take(&mut resp, 0)
    }

    async fn event_baseline(&self) -> Result<Cursor> {
        let mut resp = self
            .read(
                &format!(
                    "LET $now = time::now(); RETURN $now; SELECT id, at FROM event WHERE at >= $now - {}s;",
                    MARGIN.num_seconds()
                ),
                &Vars::new(),
            )
            .await?;
        let to: DateTime<Utc> = take(&mut resp, 1)?;
        let seen: Vec<Seen> = take(&mut resp, 2)?;
        Ok(Cursor { to, seen: seen.into_iter().map(|s| (s.id, s.at)).collect() })
    }

    async fn poll_events(self, mut cursor: Cursor) {
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = self.feed.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            {
                let mut running = self.feed.running.lock().await;
                if self.feed.tx.receiver_count() == 0 {
                    *running = false;
                    return;
                }
            }
            match self.poll_once(&mut cursor).await {
                Ok(events) => {
                    failures = 0;
                    for e in events {
                        // No receiver left is not an error; the next tick stops.
                        let _ = self.feed.tx.send(e);
                    }
                }
                Err(e) => {
                    failures += 1;
                    warn!(error = %e, failures, "reading events failed; retrying");
                    tokio::time::sleep(POLL * failures.min(20)).await;
                }
            }
        }
    }

    /// One look: the events not yet delivered, oldest first.
    async fn poll_once(&self, cursor: &mut Cursor) -> Result<Vec<Event>> {
        let since = cursor.to - MARGIN;
        let mut resp = self
            .read(
                "RETURN time::now(); SELECT id, at FROM event WHERE at >= $since;",
                &Vars::new().set("since", dt(since)),
            )
            .await?;
        let now: DateTime<Utc> = take(&mut resp, 0)?;
        let rows: Vec<Seen> = take(&mut resp, 1)?;
        cursor.seen.retain(|_, at| *at >= since);
        let fresh: Vec<String> = rows.into_iter().filter(|r| !cursor.seen.contains_key(&r.id)).map(|r| r.id).collect();
        cursor.to = now;
        if fresh.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<RecordId> = fresh.iter().filter_map(|id| event_rid(id)).collect();
        let mut resp = self.read("SELECT * FROM $ids", &Vars::new().set("ids", ids)).await?;
        let mut events: Vec<Event> = take(&mut resp, 0)?;
        events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        for e in &events {
            cursor.seen.insert(e.id.clone(), e.at);
        }
        Ok(events)
    }
}

/// The record id of an event from its text (`event:key`, the key possibly in ⟨⟩).
fn event_rid(id: &str) -> Option<RecordId> {
    id.starts_with("event:").then(|| RecordId::new("event", super::webhooks::event_key(id)))
}
