//! Controls as versioned data, and their evaluation over the graph.
//!
//! A control (`NHI-OWN-01`, "every active NHI has an active owner") is a check with
//! parameters, a scope and a person answerable for it. Like a policy, each version is
//! immutable once published (two people), and its SHA-256 over a canonical encoding is
//! named by every result taken under it.
//!
//! Evaluation is pure: the store gathers one snapshot of the facts every check reads
//! ([`ComplianceFacts`]), and [`evaluate`] answers, for each subject the check applies to,
//! pass, fail or passed by exception, with the facts that decided it in words. A subject
//! the check once applied to and no longer does (an NHI decommissioned, an exception
//! revoked) is *not applicable*; the store records that change like any other.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::canonical;
use super::edges::EdgeId;
use super::framework::FrameworkRef;
use super::ids::{NodeId, Table};
use super::request::{ExceptionStatus, RequestStatus};
pub use super::values::check_control_key as check_key;
use super::values::{
    Criticality, Environment, NhiKind, NhiStatus, Privilege, SecretKind, TargetFacts, ValueError, text_enum,
};

text_enum!(
    /// Where a subject stands against a control.
    ControlStatus, "status" {
        Pass => "pass",
        Fail => "fail",
        PassedByException => "passed_by_exception",
        NotApplicable => "not_applicable",
    }
);

impl ControlStatus {
    /// Whether the status is a failure nobody has accepted.
    pub fn failing(self) -> bool {
        self == ControlStatus::Fail
    }
}

text_enum!(
    /// Whether a finding is still open. A finding's remediation (the check passes
    /// again) is recorded apart from its closing (a person closes it, with evidence).
    FindingStatus, "status" {
        Open => "open",
        Closed => "closed",
    }
);

text_enum!(
    /// The kinds of check a control can run.
    CheckKind, "check" {
        SecretRotated => "secret_rotated",
        ActiveOwner => "active_owner",
        PrivilegedAccessGoverned => "privileged_access_governed",
        UnusedAccess => "unused_access",
        Certified => "certified",
        ExceptionReviewed => "exception_reviewed",
        EmergencyApproved => "emergency_approved",
    }
);

/// One check with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// Each secret was rotated (or, never rotated, issued) within `max_age_days`.
    SecretRotated { max_age_days: u32 },
    /// Each active NHI has an active owner, directly or through a team.
    ActiveOwner,
    /// Each privileged access (as [`TargetFacts::privileged`] defines it) to a system of
    /// criticality `tier` or more critical has an approved decision behind it whose
    /// approval has not lapsed. Access nobody approved fails it.
    PrivilegedAccessGoverned { tier: Criticality },
    /// No NHI unused for more than `days` still holds access.
    UnusedAccess { days: u32 },
    /// Each active NHI in scope was certified by a review within `max_age_days`.
    Certified { max_age_days: u32 },
    /// Each active exception is reviewed (decided again) before its review date.
    ExceptionReviewed,
    /// Each break-glass access is approved within its window.
    EmergencyApproved,
}

impl Check {
    pub fn kind(&self) -> CheckKind {
        match self {
            Check::SecretRotated { .. } => CheckKind::SecretRotated,
            Check::ActiveOwner => CheckKind::ActiveOwner,
            Check::PrivilegedAccessGoverned { .. } => CheckKind::PrivilegedAccessGoverned,
            Check::UnusedAccess { .. } => CheckKind::UnusedAccess,
            Check::Certified { .. } => CheckKind::Certified,
            Check::ExceptionReviewed => CheckKind::ExceptionReviewed,
            Check::EmergencyApproved => CheckKind::EmergencyApproved,
        }
    }

    /// The table of the records the check judges.
    pub fn subject_table(&self) -> Table {
        match self {
            Check::SecretRotated { .. } => Table::Secret,
            Check::ActiveOwner
            | Check::PrivilegedAccessGoverned { .. }
            | Check::UnusedAccess { .. }
            | Check::Certified { .. } => Table::Nhi,
            Check::ExceptionReviewed => Table::Exception,
            Check::EmergencyApproved => Table::Request,
        }
    }

    /// The check as a sentence.
    pub fn describe(&self) -> String {
        match self {
            Check::SecretRotated { max_age_days } => {
                format!("Each secret in scope was rotated within the last {max_age_days} days.")
            }
            Check::ActiveOwner => "Each active NHI in scope has an active owner, directly or through a team.".into(),
            Check::PrivilegedAccessGoverned { tier } => format!(
                "Each privileged access to a system of {tier} or more critical has an approved decision behind it whose approval has not lapsed."
            ),
            Check::UnusedAccess { days } => {
                format!("No NHI in scope unused for more than {days} days still holds access.")
            }
            Check::Certified { max_age_days } => {
                format!("Each active NHI in scope was certified by its owner within the last {max_age_days} days.")
            }
            Check::ExceptionReviewed => "Each active exception is reviewed before its review date.".into(),
            Check::EmergencyApproved => "Each break-glass access is approved within its window.".into(),
        }
    }

    fn check(&self) -> Result<(), ValueError> {
        let range = |what: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ValueError::new("check", format!("{}: {what} is between {lo} and {hi}", self.kind())))
            }
        };
        match *self {
            Check::SecretRotated { max_age_days } => range("maxAgeDays", max_age_days, 1, 3650),
            Check::UnusedAccess { days } => range("days", days, 1, 3650),
            Check::Certified { max_age_days } => range("maxAgeDays", max_age_days, 1, 3650),
            _ => Ok(()),
        }
    }
}

/// Which subjects a control covers. An empty list puts no bound; a subject matches when
/// every bound holds. A secret's environments and kinds are those of the NHIs holding
/// it; an exception's and a request's are those of their subject. An NHI's criticality
/// is that of the most critical system it can access. Secret kinds reach an NHI through
/// the secrets it holds and a secret through its own kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlScope {
    #[serde(default)]
    pub environments: Vec<Environment>,
    #[serde(default)]
    pub criticalities: Vec<Criticality>,
    #[serde(default)]
    pub nhi_kinds: Vec<NhiKind>,
    /// Only the holders of a secret of one of these kinds (and such secrets). Left out
    /// of the record when empty, so that versions published before it keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_kinds: Vec<SecretKind>,
    /// Only what this team owns.
    #[serde(default)]
    pub team: Option<NodeId>,
}

impl ControlScope {
    fn covers(&self, s: &ScopeFacts) -> bool {
        (self.environments.is_empty() || s.environments.iter().any(|e| self.environments.contains(e)))
            && (self.criticalities.is_empty() || s.criticality.is_some_and(|c| self.criticalities.contains(&c)))
            && (self.nhi_kinds.is_empty() || s.nhi_kinds.iter().any(|k| self.nhi_kinds.contains(k)))
            && (self.secret_kinds.is_empty() || s.secret_kinds.iter().any(|k| self.secret_kinds.contains(k)))
            && self.team.as_ref().is_none_or(|t| s.teams.contains(t))
    }

    /// The scope in words, for the control's page.
    pub fn describe(&self) -> String {
        let list = |items: Vec<&str>| items.join(" or ");
        let mut parts = vec![];
        if !self.environments.is_empty() {
            parts.push(format!("in {}", list(self.environments.iter().map(|e| e.as_str()).collect())));
        }
        if !self.criticalities.is_empty() {
            parts.push(format!("reaching {}", list(self.criticalities.iter().map(|c| c.as_str()).collect())));
        }
        if !self.nhi_kinds.is_empty() {
            parts.push(format!("of kind {}", list(self.nhi_kinds.iter().map(|k| k.as_str()).collect())));
        }
        if !self.secret_kinds.is_empty() {
            parts.push(format!(
                "holding a secret of kind {}",
                list(self.secret_kinds.iter().map(|k| k.as_str()).collect())
            ));
        }
        if let Some(t) = &self.team {
            parts.push(format!("owned by {t}"));
        }
        if parts.is_empty() { "everything".into() } else { parts.join(", ") }
    }
}

/// A control to publish. The version is assigned by the store (one more than the
/// latest of the same key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlDraft {
    /// The stable id the control keeps across versions: `NHI-ROT-01`.
    pub key: String,
    pub title: String,
    pub description: String,
    /// The person answerable for the control.
    pub owner: NodeId,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    pub scope: ControlScope,
    pub check: Check,
}

impl ControlDraft {
    pub fn check(&self) -> Result<(), ValueError> {
        check_key(&self.key)?;
        if self.title.trim().is_empty() || self.title.len() > 200 {
            return Err(ValueError::new("title", "a control has a title of 1 to 200 characters"));
        }
        if self.description.len() > 10_000 {
            return Err(ValueError::new("description", "at most 10,000 characters"));
        }
        if self.owner.table() != Table::Person {
            return Err(ValueError::new("ownerId", format!("{} is not a person", self.owner)));
        }
        if let Some(t) = &self.scope.team
            && t.table() != Table::Team
        {
            return Err(ValueError::new("scope.teamId", format!("{t} is not a team")));
        }
        self.check.check()
    }

    /// The canonical text of a version: what its SHA-256 is computed over.
    pub fn canonical(&self, version: u32) -> String {
        canonical::encode(&serde_json::json!({
            "key": self.key,
            "version": version,
            "title": self.title,
            "description": self.description,
            "owner": self.owner.to_string(),
            "refs": self.refs,
            "scope": self.scope,
            "check": self.check,
        }))
    }

    pub fn sha256(&self, version: u32) -> String {
        super::case::sha256_hex(self.canonical(version).as_bytes())
    }
}

/// A published, immutable control version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    pub id: NodeId,
    pub key: String,
    pub version: u32,
    pub title: String,
    pub description: String,
    pub owner: NodeId,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    pub scope: ControlScope,
    pub check: Check,
    pub sha256: String,
    pub published_at: DateTime<Utc>,
    pub published_by: Option<NodeId>,
}

impl Control {
    pub fn draft(&self) -> ControlDraft {
        ControlDraft {
            key: self.key.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            owner: self.owner.clone(),
            refs: self.refs.clone(),
            scope: self.scope.clone(),
            check: self.check.clone(),
        }
    }
}

/// What a scope is matched against, for one subject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeFacts {
    pub environments: Vec<Environment>,
    pub criticality: Option<Criticality>,
    pub nhi_kinds: Vec<NhiKind>,
    /// For an NHI, the kinds of the secrets it holds; for a secret, its own.
    pub secret_kinds: Vec<SecretKind>,
    /// The teams owning the subject (for a secret: owning it or an NHI holding it).
    pub teams: Vec<NodeId>,
}

/// An NHI's access to a system, in force now.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessFacts {
    pub edge: EdgeId,
    pub system: NodeId,
    pub target: TargetFacts,
    pub privilege: Privilege,
    /// A decision stands behind the edge.
    pub governed: bool,
    /// The approval behind it has lapsed and awaits revalidation.
    pub approval_lapsed: bool,
}

/// What the checks read of an NHI.
#[derive(Debug, Clone, PartialEq)]
pub struct NhiFacts {
    pub id: NodeId,
    pub name: String,
    pub kind: NhiKind,
    pub environment: Environment,
    pub status: NhiStatus,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The people behind it (direct owners and members of owning teams), and whether
    /// each is active.
    pub owners: Vec<(String, bool)>,
    /// The people who own it directly (not through a team), and whether each is active.
    pub direct_owners: Vec<(NodeId, bool)>,
    pub teams: Vec<NodeId>,
    pub access: Vec<AccessFacts>,
    /// Secrets or identities it holds or assumes, in force.
    pub holds: u32,
    /// The kinds of the secrets it holds, each once.
    pub secret_kinds: Vec<SecretKind>,
    /// When a review last certified it.
    pub certified_at: Option<DateTime<Utc>>,
}

impl NhiFacts {
    /// Whether `scope` reaches this NHI.
    pub fn in_scope(&self, scope: &ControlScope) -> bool {
        scope.covers(&self.scope())
    }

    fn scope(&self) -> ScopeFacts {
        ScopeFacts {
            environments: vec![self.environment],
            criticality: self.access.iter().map(|a| a.target.criticality).min(),
            nhi_kinds: vec![self.kind],
            secret_kinds: self.secret_kinds.clone(),
            teams: self.teams.clone(),
        }
    }
}

/// What the checks read of a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretFacts {
    pub id: NodeId,
    pub name: String,
    /// When it was last rotated, or issued, or recorded.
    pub rotated_at: DateTime<Utc>,
    /// Whether that time is a rotation (not an issue or creation date).
    pub ever_rotated: bool,
    pub scope: ScopeFacts,
}

/// What the checks read of an exception.
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionFacts {
    pub id: NodeId,
    pub subject: NodeId,
    pub status: ExceptionStatus,
    pub expires_at: DateTime<Utc>,
    pub review_due: DateTime<Utc>,
    /// The control keys it waives.
    pub waives: Vec<String>,
    pub scope: ScopeFacts,
}

impl ExceptionFacts {
    fn waives_at(&self, key: &str, subject: &NodeId, now: DateTime<Utc>) -> bool {
        self.status == ExceptionStatus::Active
            && self.expires_at > now
            && &self.subject == subject
            && self.waives.iter().any(|k| k == key)
    }
}

/// What the checks read of a break-glass request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmergencyFacts {
    pub id: NodeId,
    pub status: RequestStatus,
    pub requested_at: DateTime<Utc>,
    pub post_approval_due: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub scope: ScopeFacts,
}

/// One snapshot of everything the checks read.
#[derive(Debug, Clone, Default)]
pub struct ComplianceFacts {
    pub nhis: Vec<NhiFacts>,
    pub secrets: Vec<SecretFacts>,
    pub exceptions: Vec<ExceptionFacts>,
    pub emergencies: Vec<EmergencyFacts>,
}

/// One subject's standing against a control, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlOutcome {
    pub status: ControlStatus,
    pub facts: String,
}

/// Every subject the control applies to now, with its outcome, in subject order. A
/// failure an active exception waives for this control passes by exception.
pub fn evaluate(control: &Control, facts: &ComplianceFacts, now: DateTime<Utc>) -> BTreeMap<NodeId, ControlOutcome> {
    judge(control, facts, now)
        .into_iter()
        .map(|(subject, status, text)| {
            let waiver = (status == ControlStatus::Fail)
                .then(|| facts.exceptions.iter().find(|x| x.waives_at(&control.key, subject, now)))
                .flatten();
            let outcome = match waiver {
                Some(x) => ControlOutcome {
                    status: ControlStatus::PassedByException,
                    facts: format!("{text}; waived by {} until {}", x.id, day(x.expires_at)),
                },
                None => ControlOutcome { status, facts: text },
            };
            (subject.clone(), outcome)
        })
        .collect()
}

/// A subject's standing before exceptions, and why.
type Judgement = (ControlStatus, String);

/// Every subject in the control's scope judged by its check, before exceptions.
fn judge<'a>(
    control: &Control,
    facts: &'a ComplianceFacts,
    now: DateTime<Utc>,
) -> Vec<(&'a NodeId, ControlStatus, String)> {
    let scope = &control.scope;
    let nhis = || facts.nhis.iter().filter(|n| scope.covers(&n.scope()));
    let active = || nhis().filter(|n| n.status == NhiStatus::Active);
    let each = |id: &'a NodeId, j: Option<Judgement>| j.map(|(status, text)| (id, status, text));
    match &control.check {
        Check::SecretRotated { max_age_days } => facts
            .secrets
            .iter()
            .filter(|s| scope.covers(&s.scope))
            .filter_map(|s| each(&s.id, Some(secret_rotated(s, *max_age_days, now))))
            .collect(),
        Check::ActiveOwner => active().filter_map(|n| each(&n.id, Some(active_owner(n)))).collect(),
        Check::PrivilegedAccessGoverned { tier } => {
            nhis().filter_map(|n| each(&n.id, privileged_access_governed(n, *tier))).collect()
        }
        Check::UnusedAccess { days } => {
            active().filter_map(|n| each(&n.id, Some(unused_access(n, *days, now)))).collect()
        }
        Check::Certified { max_age_days } => {
            active().filter_map(|n| each(&n.id, Some(certified(n, *max_age_days, now)))).collect()
        }
        Check::ExceptionReviewed => facts
            .exceptions
            .iter()
            .filter(|x| x.status == ExceptionStatus::Active && x.expires_at > now && scope.covers(&x.scope))
            .filter_map(|x| each(&x.id, Some(exception_reviewed(x, now))))
            .collect(),
        Check::EmergencyApproved => facts
            .emergencies
            .iter()
            .filter(|e| scope.covers(&e.scope))
            .filter_map(|e| each(&e.id, emergency_approved(e, now)))
            .collect(),
    }
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn pass_or_fail(ok: bool) -> ControlStatus {
    if ok { ControlStatus::Pass } else { ControlStatus::Fail }
}

/// Rotated (or issued, if never rotated) within `max_age_days`.
fn secret_rotated(s: &SecretFacts, max_age_days: u32, now: DateTime<Utc>) -> Judgement {
    let age = (now - s.rotated_at).num_days();
    let what = if s.ever_rotated { "last rotated" } else { "never rotated; issued" };
    let text = format!("{what} {} ({age} days ago; at most {max_age_days})", day(s.rotated_at));
    (pass_or_fail(now - s.rotated_at <= Duration::days(i64::from(max_age_days))), text)
}

/// At least one of its owners is active.
fn active_owner(n: &NhiFacts) -> Judgement {
    let active: Vec<&str> = n.owners.iter().filter(|(_, a)| *a).map(|(e, _)| e.as_str()).collect();
    if let Some(first) = active.first() {
        (ControlStatus::Pass, format!("active owner {first}"))
    } else if n.owners.is_empty() {
        (ControlStatus::Fail, "no owner".into())
    } else {
        let gone: Vec<&str> = n.owners.iter().map(|(e, _)| e.as_str()).collect();
        (ControlStatus::Fail, format!("every owner is inactive: {}", gone.join(", ")))
    }
}

/// Each privileged access to a system at `tier` or above stands on an approval that
/// has not lapsed; an NHI with none is not judged.
fn privileged_access_governed(n: &NhiFacts, tier: Criticality) -> Option<Judgement> {
    let held: Vec<&AccessFacts> =
        n.access.iter().filter(|a| a.target.criticality <= tier && a.target.privileged(a.privilege)).collect();
    if held.is_empty() {
        return None;
    }
    let bad: Vec<String> = held
        .iter()
        .filter_map(|a| {
            let why = if !a.governed {
                "no decision stands behind it"
            } else if a.approval_lapsed {
                "its approval has lapsed"
            } else {
                return None;
            };
            Some(format!("{} on {} ({}): {why}", a.privilege, a.system, a.edge))
        })
        .collect();
    Some(if bad.is_empty() {
        (ControlStatus::Pass, format!("{} privileged access, each approved", held.len()))
    } else {
        (ControlStatus::Fail, bad.join("; "))
    })
}

/// Unused for over `days` (or never used since created that long ago) and still
/// holding access or secrets.
fn unused_access(n: &NhiFacts, days: u32, now: DateTime<Utc>) -> Judgement {
    let since = n.last_used_at.unwrap_or(n.created_at);
    let used = match n.last_used_at {
        Some(t) => format!("last used {}", day(t)),
        None => format!("never used; created {}", day(n.created_at)),
    };
    let holding = n.access.len() as u32 + n.holds;
    let stale = now - since > Duration::days(i64::from(days));
    match (stale, holding) {
        (true, h) if h > 0 => (ControlStatus::Fail, format!("{used}, still holding {h} access")),
        (true, _) => (ControlStatus::Pass, format!("{used}, holding no access")),
        (false, _) => (ControlStatus::Pass, format!("{used} (within {days} days)")),
    }
}

/// Certified by a review within `max_age_days`.
fn certified(n: &NhiFacts, max_age_days: u32, now: DateTime<Utc>) -> Judgement {
    match n.certified_at {
        Some(t) if now - t <= Duration::days(i64::from(max_age_days)) => {
            (ControlStatus::Pass, format!("certified {}", day(t)))
        }
        Some(t) => (ControlStatus::Fail, format!("last certified {}, over {max_age_days} days ago", day(t))),
        None => (ControlStatus::Fail, "never certified by a review".into()),
    }
}

/// An active exception reviewed before its review date.
fn exception_reviewed(x: &ExceptionFacts, now: DateTime<Utc>) -> Judgement {
    if x.review_due <= now {
        (ControlStatus::Fail, format!("review was due {} and has not been done", day(x.review_due)))
    } else {
        (ControlStatus::Pass, format!("review due {}", day(x.review_due)))
    }
}

/// Break-glass access approved within its window; one still pending is not judged.
fn emergency_approved(e: &EmergencyFacts, now: DateTime<Utc>) -> Option<Judgement> {
    let due = e.post_approval_due;
    Some(match e.status {
        RequestStatus::EmergencyActive if due.is_some_and(|d| d <= now) => {
            (ControlStatus::Fail, format!("in use past its approval window (due {})", due.map(day).unwrap_or_default()))
        }
        RequestStatus::EmergencyActive => {
            (ControlStatus::Pass, format!("within its approval window (due {})", due.map(day).unwrap_or_default()))
        }
        RequestStatus::Approved | RequestStatus::Fulfilled => match (e.decided_at, due) {
            (Some(at), Some(d)) if at > d => {
                (ControlStatus::Fail, format!("approved {} after its window closed {}", day(at), day(d)))
            }
            _ => (ControlStatus::Pass, "approved within its window".into()),
        },
        RequestStatus::Expired => {
            (ControlStatus::Fail, "closed by the server: nobody approved it within its window".into())
        }
        RequestStatus::Rejected | RequestStatus::Denied => {
            (ControlStatus::Pass, format!("{}: the access was taken back", e.status))
        }
        RequestStatus::Pending | RequestStatus::Escalated => return None,
    })
}

/// Counts of a full evaluation, by status.
pub fn counts(results: &BTreeMap<NodeId, ControlOutcome>) -> BTreeMap<&'static str, u64> {
    let mut c: BTreeMap<&'static str, u64> = ControlStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for o in results.values() {
        *c.entry(o.status.as_str()).or_default() += 1;
    }
    c
}

/// SHA-256 over `subject status` lines in subject order: what a full evaluation's
/// record names, so its results can be proved later from the result history.
pub fn digest(results: &BTreeMap<NodeId, ControlOutcome>) -> String {
    let mut text = String::new();
    for (s, o) in results {
        text.push_str(&format!("{s} {}\n", o.status));
    }
    super::case::sha256_hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(check: Check) -> Control {
        let draft = ControlDraft {
            key: "NHI-TEST-01".into(),
            title: "test".into(),
            description: String::new(),
            owner: NodeId::generate(Table::Person),
            refs: vec![],
            scope: ControlScope::default(),
            check,
        };
        Control {
            id: NodeId::generate(Table::Control),
            key: draft.key.clone(),
            version: 1,
            title: draft.title.clone(),
            description: String::new(),
            owner: draft.owner.clone(),
            refs: vec![],
            scope: draft.scope.clone(),
            sha256: draft.sha256(1),
            check: draft.check,
            published_at: Utc::now(),
            published_by: None,
        }
    }

    fn nhi(owners: Vec<(&str, bool)>) -> NhiFacts {
        NhiFacts {
            id: NodeId::generate(Table::Nhi),
            name: "svc".into(),
            kind: NhiKind::ServiceAccount,
            environment: Environment::Production,
            status: NhiStatus::Active,
            last_used_at: None,
            created_at: Utc::now() - Duration::days(10),
            owners: owners.into_iter().map(|(e, a)| (e.to_owned(), a)).collect(),
            teams: vec![],
            access: vec![],
            holds: 0,
            secret_kinds: vec![],
            direct_owners: vec![],
            certified_at: None,
        }
    }

    fn access(criticality: Criticality, privilege: Privilege, governed: bool, lapsed: bool) -> AccessFacts {
        AccessFacts {
            edge: EdgeId::parse("can_access:x").unwrap(),
            system: NodeId::generate(Table::System),
            target: TargetFacts { criticality, environment: Environment::Production },
            privilege,
            governed,
            approval_lapsed: lapsed,
        }
    }

    #[test]
    fn keys_are_upper_case_parts() {
        assert!(check_key("NHI-ROT-01").is_ok());
        for bad in ["nhi-rot-01", "NHI", "NHI--01", "-NHI-01", "01-NHI", "NHI-ROT-01 ", &"A-".repeat(30)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_nhi_without_an_active_owner_fails_and_an_exception_waives_it() {
        let c = control(Check::ActiveOwner);
        let (ok, none, gone) = (nhi(vec![("a@x", true)]), nhi(vec![]), nhi(vec![("b@x", false)]));
        let mut facts = ComplianceFacts { nhis: vec![ok.clone(), none.clone(), gone.clone()], ..Default::default() };
        let now = Utc::now();
        let r = evaluate(&c, &facts, now);
        assert_eq!(r[&ok.id].status, ControlStatus::Pass);
        assert_eq!(r[&none.id], ControlOutcome { status: ControlStatus::Fail, facts: "no owner".into() });
        assert_eq!(r[&gone.id].facts, "every owner is inactive: b@x");
        let x = ExceptionFacts {
            id: NodeId::generate(Table::Exception),
            subject: gone.id.clone(),
            status: ExceptionStatus::Active,
            expires_at: now + Duration::days(3),
            review_due: now + Duration::days(1),
            waives: vec!["NHI-TEST-01".into()],
            scope: ScopeFacts::default(),
        };
        facts.exceptions.push(x.clone());
        assert_eq!(evaluate(&c, &facts, now)[&gone.id].status, ControlStatus::PassedByException);
        // Once it expires, the failure is back.
        assert_eq!(evaluate(&c, &facts, now + Duration::days(4))[&gone.id].status, ControlStatus::Fail);
        // An exception for another control waives nothing here.
        facts.exceptions[0].waives = vec!["NHI-OTHER-01".into()];
        assert_eq!(evaluate(&c, &facts, now)[&gone.id].status, ControlStatus::Fail);
    }

    #[test]
    fn inactive_nhis_and_those_out_of_scope_are_not_judged() {
        let mut c = control(Check::ActiveOwner);
        let mut off = nhi(vec![]);
        off.status = NhiStatus::Decommissioned;
        let mut staging = nhi(vec![]);
        staging.environment = Environment::Staging;
        c.scope.environments = vec![Environment::Production];
        let r = evaluate(&c, &ComplianceFacts { nhis: vec![off, staging], ..Default::default() }, Utc::now());
        assert!(r.is_empty());
    }

    #[test]
    fn privileged_access_without_a_live_approval_fails() {
        let c = control(Check::PrivilegedAccessGoverned { tier: Criticality::Tier0 });
        let mut approved = nhi(vec![]);
        approved.access = vec![access(Criticality::Tier0, Privilege::Admin, true, false)];
        let mut ungoverned = nhi(vec![]);
        ungoverned.access = vec![access(Criticality::Tier0, Privilege::Write, false, false)];
        let mut lapsed = nhi(vec![]);
        lapsed.access = vec![access(Criticality::Tier0, Privilege::Admin, true, true)];
        let mut reader = nhi(vec![]);
        reader.access = vec![access(Criticality::Tier0, Privilege::Read, false, false)];
        let mut tier2 = nhi(vec![]);
        tier2.access = vec![access(Criticality::Tier2, Privilege::Write, false, false)];
        let facts = ComplianceFacts {
            nhis: vec![approved.clone(), ungoverned.clone(), lapsed.clone(), reader.clone(), tier2.clone()],
            ..Default::default()
        };
        let r = evaluate(&c, &facts, Utc::now());
        assert_eq!(r[&approved.id].status, ControlStatus::Pass);
        assert_eq!(r[&ungoverned.id].status, ControlStatus::Fail);
        assert!(r[&ungoverned.id].facts.contains("no decision stands behind it"));
        assert!(r[&lapsed.id].facts.contains("approval has lapsed"));
        assert!(!r.contains_key(&reader.id) && !r.contains_key(&tier2.id));
    }

    #[test]
    fn certification_follows_the_clock() {
        let now = Utc::now();
        let c = control(Check::Certified { max_age_days: 90 });
        let mut n = nhi(vec![("a@x", true)]);
        let status = |n: &NhiFacts| {
            let facts =
                ComplianceFacts { nhis: vec![n.clone()], secrets: vec![], exceptions: vec![], emergencies: vec![] };
            evaluate(&c, &facts, now)[&n.id].status
        };
        assert_eq!(status(&n), ControlStatus::Fail, "never certified");
        n.certified_at = Some(now - Duration::days(10));
        assert_eq!(status(&n), ControlStatus::Pass);
        n.certified_at = Some(now - Duration::days(91));
        assert_eq!(status(&n), ControlStatus::Fail);
    }

    #[test]
    fn unused_access_and_rotation_follow_the_clock() {
        let now = Utc::now();
        let c = control(Check::UnusedAccess { days: 30 });
        let mut n = nhi(vec![]);
        n.last_used_at = Some(now - Duration::days(20));
        n.holds = 1;
        let facts = ComplianceFacts { nhis: vec![n.clone()], ..Default::default() };
        assert_eq!(evaluate(&c, &facts, now)[&n.id].status, ControlStatus::Pass);
        let later = evaluate(&c, &facts, now + Duration::days(11));
        assert_eq!(later[&n.id].status, ControlStatus::Fail);
        assert!(later[&n.id].facts.contains("still holding 1 access"));

        let c = control(Check::SecretRotated { max_age_days: 90 });
        let s = SecretFacts {
            id: NodeId::generate(Table::Secret),
            name: "k".into(),
            rotated_at: now - Duration::days(80),
            ever_rotated: true,
            scope: ScopeFacts::default(),
        };
        let facts = ComplianceFacts { secrets: vec![s.clone()], ..Default::default() };
        assert_eq!(evaluate(&c, &facts, now)[&s.id].status, ControlStatus::Pass);
        assert_eq!(evaluate(&c, &facts, now + Duration::days(11))[&s.id].status, ControlStatus::Fail);
    }

    #[test]
    fn exceptions_and_break_glass_are_judged_on_their_dates() {
        let now = Utc::now();
        let x = ExceptionFacts {
            id: NodeId::generate(Table::Exception),
            subject: NodeId::generate(Table::Nhi),
            status: ExceptionStatus::Active,
            expires_at: now + Duration::days(30),
            review_due: now + Duration::days(5),
            waives: vec![],
            scope: ScopeFacts::default(),
        };
        let facts = ComplianceFacts { exceptions: vec![x.clone()], ..Default::default() };
        let c = control(Check::ExceptionReviewed);
        assert_eq!(evaluate(&c, &facts, now)[&x.id].status, ControlStatus::Pass);
        assert_eq!(evaluate(&c, &facts, now + Duration::days(6))[&x.id].status, ControlStatus::Fail);

        let e = EmergencyFacts {
            id: NodeId::generate(Table::Request),
            status: RequestStatus::EmergencyActive,
            requested_at: now,
            post_approval_due: Some(now + Duration::hours(24)),
            decided_at: None,
            scope: ScopeFacts::default(),
        };
        let c = control(Check::EmergencyApproved);
        let facts = ComplianceFacts { emergencies: vec![e.clone()], ..Default::default() };
        assert_eq!(evaluate(&c, &facts, now)[&e.id].status, ControlStatus::Pass);
        assert_eq!(evaluate(&c, &facts, now + Duration::hours(25))[&e.id].status, ControlStatus::Fail);
        let expired = ComplianceFacts {
            emergencies: vec![EmergencyFacts { status: RequestStatus::Expired, ..e.clone() }],
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &expired, now)[&e.id].status, ControlStatus::Fail);
    }

    #[test]
    fn the_digest_names_every_result() {
        let c = control(Check::ActiveOwner);
        let facts = ComplianceFacts { nhis: vec![nhi(vec![]), nhi(vec![("a@x", true)])], ..Default::default() };
        let r = evaluate(&c, &facts, Utc::now());
        let mut other = r.clone();
        other.values_mut().next().unwrap().status = ControlStatus::Pass;
        assert_ne!(digest(&r), digest(&other));
        assert_eq!(counts(&r)["fail"], 1);
        assert_eq!(counts(&r)["pass"], 1);
    }
}
