//! Feed freshness as stored: each run that commits advances its source's `feed:` record
//! in the run's own transaction, and what the record says, against the configured
//! windows, is whether the source's data may drive automation (see `domain::feeds`).

use chrono::{DateTime, Utc};
use surrealdb::types::RecordId;

use super::{Result, Store, Vars, take};
use crate::domain::feeds::{FeedState, Freshness, freshness};

/// A source with its window and how fresh it is now.
#[derive(Debug, Clone)]
pub struct FeedStatus {
    pub state: FeedState,
    /// The configured window, in hours.
    pub freshness_hours: Option<i64>,
    pub freshness: Freshness,
}

fn feed_id(source: &str) -> RecordId {
    RecordId::new("feed", source.to_owned())
}

/// The statement that records a committed run of `$feed_source` (a feed record id in
/// `$feed`), for inclusion in the run's transaction, and its variables.
pub(crate) fn run_statement(vars: Vars, source: &str, complete: bool) -> (&'static str, Vars) {
    (
        "UPSERT $feed SET source = $feed_source, last_run_at = time::now(), runs += 1, \
         last_run_complete = $feed_complete RETURN NONE;\n",
        vars.set("feed", feed_id(source)).set("feed_source", source).set("feed_complete", complete),
    )
}

impl Store {
    /// What is recorded of `source`'s runs (nothing before its first).
    pub async fn feed_state(&self, source: &str) -> Result<Option<FeedState>> {
        let mut resp = self.read("SELECT * OMIT id FROM ONLY $feed", &Vars::new().set("feed", feed_id(source))).await?;
        take(&mut resp, 0)
    }

    /// How fresh `source` is at `now`; without a configured window, without a read.
    pub async fn feed_freshness(&self, source: &str, now: DateTime<Utc>) -> Result<Freshness> {
        let Some(window) = self.feeds.window(source) else { return Ok(Freshness::Unwatched) };
        let last = self.feed_state(source).await?.and_then(|s| s.last_run_at);
        Ok(freshness(Some(window), last, now))
    }

    /// Every source that has run or has a window, in name order, with how fresh it is.
    pub async fn feeds(&self, now: DateTime<Utc>) -> Result<Vec<FeedStatus>> {
        let mut resp = self.read("SELECT * OMIT id FROM feed ORDER BY source", &Vars::new()).await?;
        let mut states: Vec<FeedState> = take(&mut resp, 0)?;
        for source in self.feeds.sources() {
            if !states.iter().any(|s| s.source == source) {
                states.push(FeedState {
                    source: source.to_owned(),
                    last_run_at: None,
                    runs: 0,
                    last_run_complete: false,
                });
            }
        }
        states.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(states
            .into_iter()
            .map(|state| {
                let window = self.feeds.window(&state.source);
                FeedStatus {
                    freshness_hours: window.map(|w| w.num_hours()),
                    freshness: freshness(window, state.last_run_at, now),
                    state,
                }
            })
            .collect())
    }
}
