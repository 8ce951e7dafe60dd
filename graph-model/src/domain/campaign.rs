//! Certification campaigns: owners review what they own.
//!
//! An admin starts a campaign over a scope (the same bounds a control has: environments,
//! criticalities, NHI kinds, an owning team) with a due date. Each NHI in scope becomes
//! one [`ReviewItem`] for the person answerable for it: an active owner; when no owner
//! is active, the owning team (any member answers); when it has no team either, the
//! admins. Each item carries the facts a reviewer decides on (last use, access in force,
//! what it holds, open alerts). Each answer is a decision; a revoke or a reduction files
//! a governed request, decided like any other. Items still open near the due date are
//! reminded; past it, escalated to the owner of the campaign's control (or the admins).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::control::{ControlScope, NhiFacts};
use super::ids::{NodeId, Table};
use super::values::{Privilege, ValueError, text_enum};

text_enum!(
    /// A reviewer's answer.
    ReviewAnswer, "answer" {
        Certify => "certify",
        Revoke => "revoke",
        Reduce => "reduce",
    }
);

text_enum!(
    /// Where a review item stands: `pending` until answered; a revoke or a reduction
    /// answered files a request (its outcome is the request's).
    ItemStatus, "status" {
        Pending => "pending",
        Certified => "certified",
        RevokeRequested => "revoke_requested",
        ReduceRequested => "reduce_requested",
    }
);

impl ReviewAnswer {
    pub fn status(self) -> ItemStatus {
        match self {
            ReviewAnswer::Certify => ItemStatus::Certified,
            ReviewAnswer::Revoke => ItemStatus::RevokeRequested,
            ReviewAnswer::Reduce => ItemStatus::ReduceRequested,
        }
    }
}

/// How long before the due date an open item's reviewer is reminded.
pub const REMIND_BEFORE: Duration = Duration::hours(48);

/// A campaign to start.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignDraft {
    pub name: String,
    pub scope: ControlScope,
    pub due_at: DateTime<Utc>,
    /// The control the campaign serves (its owner receives what is overdue).
    pub control: Option<String>,
}

impl CampaignDraft {
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValueError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ValueError::new("name", "a campaign has a name of 1 to 200 characters"));
        }
        if self.due_at <= now {
            return Err(ValueError::new("dueAt", "the due date is in the future"));
        }
        if let Some(t) = &self.scope.team
            && t.table() != Table::Team
        {
            return Err(ValueError::new("scope.teamId", format!("{t} is not a team")));
        }
        if let Some(key) = &self.control {
            super::values::check_control_key(key).map_err(|e| e.at("controlKey"))?;
        }
        Ok(())
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: NodeId,
    pub name: String,
    pub scope: ControlScope,
    pub due_at: DateTime<Utc>,
    pub control: Option<String>,
    pub started_by: NodeId,
    pub started_at: DateTime<Utc>,
    /// The decision that started it.
    pub decision: NodeId,
    pub items: u32,
}

/// One NHI to review, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub id: NodeId,
    pub campaign: NodeId,
    pub nhi: NodeId,
    /// The person answerable, when one is active.
    pub reviewer: Option<NodeId>,
    /// The owning team, when no owner is active.
    pub team: Option<NodeId>,
    /// What the reviewer decides on, as JSON (see [`item_facts`]).
    pub facts: String,
    pub status: ItemStatus,
    pub answered_by: Option<NodeId>,
    pub answered_at: Option<DateTime<Utc>>,
    pub decision: Option<NodeId>,
    pub request: Option<NodeId>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub escalated_to: Option<NodeId>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub rev: u64,
}

impl ReviewItem {
    /// Who may answer it: its reviewer, a member of its team (`teams` are the actor's),
    /// whom it was escalated to, and an admin when no person or team is answerable or it
    /// was escalated to the admins.
    pub fn answerable_by(&self, person: &NodeId, teams: &[NodeId], admin: bool) -> bool {
        self.reviewer.as_ref() == Some(person)
            || self.team.as_ref().is_some_and(|t| teams.contains(t))
            || self.escalated_to.as_ref() == Some(person)
            || (admin && ((self.reviewer.is_none() && self.team.is_none()) || self.escalated_at.is_some()))
    }
}

/// Whom a new item goes to: the first active direct owner, else the first owning team
/// (any member answers), else nobody (the admins).
pub fn reviewer_of(n: &NhiFacts) -> (Option<NodeId>, Option<NodeId>) {
    match n.direct_owners.iter().filter(|(_, active)| *active).map(|(p, _)| p).min() {
        Some(p) => (Some(p.clone()), None),
        None => (None, n.teams.iter().min().cloned()),
    }
}

/// The facts beside an item, as the reviewer sees them.
pub fn item_facts(n: &NhiFacts, open_alerts: u32) -> serde_json::Value {
    let access: Vec<serde_json::Value> = n
        .access
        .iter()
        .map(|a| {
            serde_json::json!({
                "system": a.system.to_string(), "privilege": a.privilege, "criticality": a.target.criticality,
                "privileged": a.target.privileged(a.privilege), "governed": a.governed,
            })
        })
        .collect();
    serde_json::json!({
        "name": n.name, "kind": n.kind, "environment": n.environment, "status": n.status,
        "last_used_at": n.last_used_at, "access": access, "holds": n.holds, "open_alerts": open_alerts,
        "active_owners": n.owners.iter().filter(|(_, a)| *a).count(), "last_certified_at": n.certified_at,
    })
}

/// A reduction must name access the NHI holds, with a lower privilege than it has.
pub fn check_reduction(n: &NhiFacts, system: &NodeId, privilege: Privilege) -> Result<(), ValueError> {
    match n.access.iter().filter(|a| &a.system == system).map(|a| a.privilege).max() {
        Some(held) if held > privilege => Ok(()),
        Some(held) => Err(ValueError::new("privilege", format!("{} holds {held} on {system}: ask for less", n.id))),
        None => Err(ValueError::new("targetId", format!("{} has no access to {system} in force", n.id))),
    }
}

/// Counts of items by where they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub total: u32,
    pub certified: u32,
    pub revoked: u32,
    pub reduced: u32,
    pub pending: u32,
    /// Pending past the due date.
    pub overdue: u32,
    pub escalated: u32,
}

impl Tally {
    fn add(&mut self, item: &ReviewItem, overdue: bool) {
        self.total += 1;
        match item.status {
            ItemStatus::Certified => self.certified += 1,
            ItemStatus::RevokeRequested => self.revoked += 1,
            ItemStatus::ReduceRequested => self.reduced += 1,
            ItemStatus::Pending => {
                self.pending += 1;
                self.overdue += u32::from(overdue);
            }
        }
        self.escalated += u32::from(item.escalated_at.is_some());
    }
}

/// A campaign's report for GRC: the whole, and by owning team (items answerable by a
/// person are counted under the first team of the NHI's facts, or none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignReport {
    pub all: Tally,
    /// Every item answered.
    pub complete: bool,
    pub by_team: Vec<(Option<NodeId>, Tally)>,
}

/// Count `items` of a campaign due at `due`, as of `now`; `team_of` names the team an
/// item is counted under.
pub fn report(
    items: &[ReviewItem],
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    team_of: impl Fn(&ReviewItem) -> Option<NodeId>,
) -> CampaignReport {
    let overdue = now > due;
    let mut all = Tally::default();
    let mut by_team: std::collections::BTreeMap<Option<NodeId>, Tally> = Default::default();
    for item in items {
        all.add(item, overdue);
        by_team.entry(team_of(item)).or_default().add(item, overdue);
    }
    CampaignReport { complete: all.pending == 0, all, by_team: by_team.into_iter().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Environment, NhiKind, NhiStatus};

    fn nhi(direct_owners: Vec<(NodeId, bool)>, teams: Vec<NodeId>) -> NhiFacts {
        NhiFacts {
            id: NodeId::generate(Table::Nhi),
            name: "ci-deployer".into(),
            kind: NhiKind::ServiceAccount,
            environment: Environment::Production,
            status: NhiStatus::Active,
            last_used_at: None,
            created_at: Utc::now(),
            owners: vec![],
            direct_owners,
            teams,
            access: vec![],
            holds: 0,
            secret_kinds: vec![],
            certified_at: None,
        }
    }

    #[test]
    fn an_item_goes_to_an_active_owner_then_the_team_then_the_admins() {
        let (ada, bo) = (NodeId::generate(Table::Person), NodeId::generate(Table::Person));
        let team = NodeId::generate(Table::Team);
        let both = nhi(vec![(ada.clone(), false), (bo.clone(), true)], vec![team.clone()]);
        assert_eq!(reviewer_of(&both), (Some(bo), None));
        let left = nhi(vec![(ada, false)], vec![team.clone()]);
        assert_eq!(reviewer_of(&left), (None, Some(team)));
        assert_eq!(reviewer_of(&nhi(vec![], vec![])), (None, None));
    }

    fn item(status: ItemStatus) -> ReviewItem {
        ReviewItem {
            id: NodeId::generate(Table::ReviewItem),
            campaign: NodeId::generate(Table::Campaign),
            nhi: NodeId::generate(Table::Nhi),
            reviewer: Some(NodeId::generate(Table::Person)),
            team: None,
            facts: "{}".into(),
            status,
            answered_by: None,
            answered_at: None,
            decision: None,
            request: None,
            reminded_at: None,
            escalated_to: None,
            escalated_at: None,
            rev: 0,
        }
    }

    #[test]
    fn only_the_reviewer_the_team_or_whom_it_was_escalated_to_answers() {
        let i = item(ItemStatus::Pending);
        let stranger = NodeId::generate(Table::Person);
        assert!(i.answerable_by(i.reviewer.as_ref().unwrap(), &[], false));
        assert!(!i.answerable_by(&stranger, &[], true), "an admin does not answer for an active owner");
        let mut escalated = i.clone();
        escalated.escalated_to = Some(stranger.clone());
        escalated.escalated_at = Some(Utc::now());
        assert!(escalated.answerable_by(&stranger, &[], false));
        let team = NodeId::generate(Table::Team);
        let mut orphan = item(ItemStatus::Pending);
        orphan.reviewer = None;
        orphan.team = Some(team.clone());
        assert!(orphan.answerable_by(&stranger, std::slice::from_ref(&team), false));
        assert!(!orphan.answerable_by(&stranger, &[], true));
        orphan.team = None;
        assert!(orphan.answerable_by(&stranger, &[], true), "nobody answerable: the admins");
    }

    #[test]
    fn the_report_counts_answers_and_what_is_overdue() {
        let items = vec![
            item(ItemStatus::Certified),
            item(ItemStatus::RevokeRequested),
            item(ItemStatus::Pending),
            item(ItemStatus::ReduceRequested),
        ];
        let due = Utc::now();
        let before = report(&items, due, due - Duration::hours(1), |_| None);
        assert_eq!((before.all.pending, before.all.overdue, before.complete), (1, 0, false));
        let after = report(&items, due, due + Duration::hours(1), |_| None);
        assert_eq!(
            after.all,
            Tally { total: 4, certified: 1, revoked: 1, reduced: 1, pending: 1, overdue: 1, escalated: 0 }
        );
        assert_eq!(after.by_team.len(), 1);
    }
}
