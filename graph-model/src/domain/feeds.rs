//! Feed freshness: whether what a source last reported can still be trusted to drive
//! automation.
//!
//! A feed (an inventory collector, an OpenGraph export, a scanner) is named by the
//! `source` of its documents. Each run that commits is recorded against its source
//! ([`FeedState`]). A source configured with a freshness window is *stale* when its last
//! committed run is older than the window, or when it has never run: its data may be
//! incomplete or delayed, so the actions that trust it pause until a run repairs it
//! ([`PAUSED_WHEN_STALE`]). A run is judged by the state its source was in when the run
//! arrived: the first run after a gap is written as facts, and only the next one,
//! from a source then fresh, closes what it no longer reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The actions a stale source's data does not drive.
pub const PAUSED_WHEN_STALE: &[&str] = &["closing absent edges", "ungoverned-access alerts"];

/// Freshness windows by source; a source not named has none and is never stale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFreshness(BTreeMap<String, Duration>);

impl FeedFreshness {
    /// Windows from hours per source.
    pub fn from_hours<'a>(hours: impl IntoIterator<Item = (&'a str, u32)>) -> FeedFreshness {
        FeedFreshness(hours.into_iter().map(|(s, h)| (s.to_owned(), Duration::hours(i64::from(h)))).collect())
    }

    pub fn window(&self, source: &str) -> Option<Duration> {
        self.0.get(source).copied()
    }

    /// The sources that have a window, in name order.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// What is recorded of a source's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedState {
    pub source: String,
    /// When its last run committed.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Runs committed.
    pub runs: u64,
    /// The last run held the whole of what the source sees (`"complete": true`).
    pub last_run_complete: bool,
}

/// Whether a source's data may drive automation now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No window is configured for it.
    Unwatched,
    /// Its last run is within the window, until `until`.
    Fresh { until: DateTime<Utc> },
    /// Past its window since `since` (`None`: it never ran).
    Stale { since: Option<DateTime<Utc>> },
}

impl Freshness {
    pub fn is_stale(self) -> bool {
        matches!(self, Freshness::Stale { .. })
    }
}

/// How fresh a source is at `now`, given its window and its last committed run.
pub fn freshness(window: Option<Duration>, last_run_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Freshness {
    let Some(window) = window else { return Freshness::Unwatched };
    match last_run_at {
        None => Freshness::Stale { since: None },
        Some(at) if at + window > now => Freshness::Fresh { until: at + window },
        Some(at) => Freshness::Stale { since: Some(at + window) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_without_a_window_is_never_stale() {
        let now = Utc::now();
        assert_eq!(freshness(None, None, now), Freshness::Unwatched);
        assert_eq!(freshness(None, Some(now - Duration::days(400)), now), Freshness::Unwatched);
    }

    #[test]
    fn a_watched_source_is_stale_past_its_window_or_before_its_first_run() {
        let now = Utc::now();
        let day = Some(Duration::hours(24));
        assert_eq!(freshness(day, None, now), Freshness::Stale { since: None });
        let recent = now - Duration::hours(2);
        assert_eq!(freshness(day, Some(recent), now), Freshness::Fresh { until: recent + Duration::hours(24) });
        let old = now - Duration::hours(30);
        assert_eq!(freshness(day, Some(old), now), Freshness::Stale { since: Some(old + Duration::hours(24)) });
        // The window's end itself is past it.
        assert!(freshness(day, Some(now - Duration::hours(24)), now).is_stale());
    }

    #[test]
    fn windows_are_read_by_source() {
        let f = FeedFreshness::from_hours([("hr", 24), ("aws", 2)]);
        assert_eq!(f.window("hr"), Some(Duration::hours(24)));
        assert_eq!(f.window("github"), None);
        assert_eq!(f.sources().collect::<Vec<_>>(), ["aws", "hr"]);
    }
}
