//! What the store counts for the API's `/metrics`: how long database round trips take,
//! and the decisions this process recorded, by outcome, with SoD refusals by rule.
//! Counters are per process; a Prometheus server sums them over replicas.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the latency histograms' buckets (+Inf is implied).
pub const LATENCY_BUCKETS: [f64; 13] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is +Inf.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram as read at one moment, in Prometheus's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound, cumulative count) for each bucket, +Inf last.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_secs: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            buckets.push((LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), cumulative));
        }
        HistogramSnapshot { buckets, count: cumulative, sum_secs: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9 }
    }
}

/// The store's own counters.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// Every statement batch sent to the database, reads and writes.
    pub db_latency: Histogram,
    decisions: Mutex<BTreeMap<String, u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    /// Transactions that committed decisions: decisions over commits is the group size.
    commits: std::sync::atomic::AtomicU64,
}

impl StoreMetrics {
    pub(crate) fn decision(&self, outcome: &str, refused_by: Option<&str>) {
        *self.decisions.lock().unwrap_or_else(|p| p.into_inner()).entry(outcome.to_owned()).or_default() += 1;
        if let Some(rule) = refused_by {
            *self.refusals.lock().unwrap_or_else(|p| p.into_inner()).entry(rule.to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn commit(&self) {
        self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Transactions that committed this process's decisions (several each under load).
    pub fn decision_commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Decisions recorded by this process, by outcome.
    pub fn decisions(&self) -> BTreeMap<String, u64> {
        self.decisions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Refused decision attempts recorded by this process, by the rule that refused.
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        self.refusals.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_adds_up() {
        let h = Histogram::default();
        for ms in [0, 3, 3, 40, 20_000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(s.buckets.len(), LATENCY_BUCKETS.len() + 1);
        let at = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.0005), 1);
        assert_eq!(at(0.005), 3);
        assert_eq!(at(0.05), 4);
        assert_eq!(at(10.0), 4);
        assert_eq!(at(f64::INFINITY), 5);
        assert!((s.sum_secs - 20.046).abs() < 1e-9);
    }
}
