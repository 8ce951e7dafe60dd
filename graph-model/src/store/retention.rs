//! Retention: what the store prunes after its period, and what it keeps for ever.
//!
//! Decisions, evidence, policy and control versions, control results and their changes,
//! and findings are the record an auditor relies on (and the decision chain must always
//! verify): they are never pruned. What is pruned, each after its own configured period
//! (none: kept), is operational: events (what subscriptions resume from and webhooks
//! carry; one with a delivery still pending is kept), webhook deliveries that are done
//! (delivered or failed for good), and the traversal logs kept on cases.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::{Result, Store, Vars, dt, take};

/// How long each prunable record class is kept, in days; `None` keeps it for ever.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default)]
    pub events_days: Option<u32>,
    #[serde(default)]
    pub deliveries_days: Option<u32>,
    #[serde(default)]
    pub traversals_days: Option<u32>,
}

impl Retention {
    /// Whether anything is ever pruned.
    pub fn prunes(&self) -> bool {
        self.events_days.is_some() || self.deliveries_days.is_some() || self.traversals_days.is_some()
    }
}

/// How many records of each class one prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PruneReport {
    pub events: u64,
    pub deliveries: u64,
    pub traversals: u64,
}

impl Store {
    /// Remove what `retention` says has outlived its period at `now`, in one transaction.
    pub async fn prune(&self, now: DateTime<Utc>, retention: &Retention) -> Result<PruneReport> {
        let before = |days: Option<u32>| days.map(|d| dt(now - Duration::days(i64::from(d))));
        let sql = "BEGIN;
             LET $deliveries = IF $deliveries_before = NONE { [] } ELSE {
                 (SELECT VALUE id FROM webhook_delivery WHERE status != 'pending' AND created_at < $deliveries_before)
             };
             DELETE $deliveries RETURN NONE;
             LET $pending = (SELECT VALUE event FROM webhook_delivery WHERE status = 'pending');
             LET $events = IF $events_before = NONE { [] } ELSE {
                 (SELECT VALUE id FROM event WHERE at < $events_before AND id NOTINSIDE $pending)
             };
             DELETE $events RETURN NONE;
             LET $traversals = IF $traversals_before = NONE { [] } ELSE {
                 (SELECT VALUE id FROM traversal WHERE at < $traversals_before)
             };
             DELETE $traversals RETURN NONE;
             RETURN { events: array::len($events), deliveries: array::len($deliveries), traversals: array::len($traversals) };
             COMMIT;";
        let vars = Vars::new()
            .set("events_before", before(retention.events_days))
            .set("deliveries_before", before(retention.deliveries_days))
            .set("traversals_before", before(retention.traversals_days));
        let mut resp = self.write(sql, &vars).await?;
        // The RETURN is the statement before COMMIT.
        let returned = resp.num_statements().saturating_sub(2);
        take(&mut resp, returned)
    }
}
