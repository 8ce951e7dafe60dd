//! Requests (proposed changes), their approvals, and the exceptions they can grant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::framework::FrameworkRef;
use super::ids::NodeId;
pub use super::values::{DecideOutcome, TargetFacts};
use super::values::{Label, Privilege, Text, ValueError, text_enum};

text_enum!(
    /// What a request proposes. `reduce_privilege` lowers the privilege of an NHI's
    /// access in force to a system, as a review found it too broad.
    RequestKind, "kind" {
        GrantAccess => "grant_access",
        RotateSecret => "rotate_secret",
        RevokeNhi => "revoke_nhi",
        ReducePrivilege => "reduce_privilege",
        Offboard => "offboard",
        Exception => "exception",
        EmergencyAccess => "emergency_access",
        Change => "change",
    }
);

text_enum!(
    /// Where a request stands.
    ///
    /// `pending` waits for approvals (some may be in); `escalated` waits for a more
    /// senior decision; `denied` was refused by an automated check and can go on only
    /// after a risk acceptance; `emergency_active` is break-glass access in force that
    /// still needs approval after the fact; `expired` is break-glass access the server
    /// closed because no approval came within its window; `fulfilled` is an approved
    /// rotation whose secret was seen rotated after the approval.
    RequestStatus, "status" {
        Pending => "pending",
        Escalated => "escalated",
        Denied => "denied",
        Approved => "approved",
        Rejected => "rejected",
        EmergencyActive => "emergency_active",
        Expired => "expired",
        Fulfilled => "fulfilled",
    }
);

text_enum!(
    ExceptionStatus, "status" {
        Active => "active",
        Revoked => "revoked",
    }
);

impl RequestStatus {
    /// Can an approver still decide on it?
    pub fn is_open(self) -> bool {
        matches!(self, RequestStatus::Pending | RequestStatus::Escalated | RequestStatus::EmergencyActive)
    }
}

impl RequestKind {
    /// The tables a request of this kind may name as its subject.
    pub fn subject_tables(self) -> &'static [super::ids::Table] {
        use super::ids::Table;
        match self {
            RequestKind::GrantAccess
            | RequestKind::RevokeNhi
            | RequestKind::ReducePrivilege
            | RequestKind::Offboard
            | RequestKind::EmergencyAccess => &[Table::Nhi],
            RequestKind::RotateSecret => &[Table::Secret],
            RequestKind::Exception => &[Table::Nhi, Table::Secret, Table::System],
            // Filed by the governed-change pipeline only, never by `createRequest`.
            RequestKind::Change => &[],
        }
    }

    /// Does this kind grant access to a target system?
    pub fn grants_access(self) -> bool {
        matches!(self, RequestKind::GrantAccess | RequestKind::EmergencyAccess)
    }

    /// Does this kind name a target system and a privilege? Grants do, and a reduction
    /// names the system and the lower privilege.
    pub fn names_access(self) -> bool {
        self.grants_access() || self == RequestKind::ReducePrivilege
    }
}

/// A validated request, before it is stored. The requester is the caller.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub kind: RequestKind,
    pub subject: NodeId,
    /// The system access is granted to (grants and emergency access).
    pub target: Option<NodeId>,
    pub privilege: Option<Privilege>,
    /// How long the approval or access should last.
    pub duration_days: Option<u32>,
    pub justification: Text,
    pub ticket_ref: Option<Label>,
    pub case: Option<NodeId>,
    /// For exceptions: the controls that stand in for the one being waived.
    pub compensating_controls: Vec<Text>,
    /// For exceptions: when the exception must be reviewed.
    pub review_days: Option<u32>,
    pub refs: Vec<FrameworkRef>,
    /// For exceptions: the keys of the controls whose failures it waives for its
    /// subject while it is active (they read "passed by exception").
    pub waives: Vec<String>,
}

impl NewRequest {
    /// A request of `kind` about `subject`, every optional field empty: set what the
    /// kind needs with `NewRequest { target: .., ..NewRequest::new(..) }`.
    pub fn new(kind: RequestKind, subject: NodeId, justification: Text) -> NewRequest {
        NewRequest {
            kind,
            subject,
            target: None,
            privilege: None,
            duration_days: None,
            justification,
            ticket_ref: None,
            case: None,
            compensating_controls: vec![],
            review_days: None,
            refs: vec![],
            waives: vec![],
        }
    }

    /// Check the fields each kind needs and refuse those it does not take.
    pub fn check(&self) -> Result<(), ValueError> {
        if !self.kind.subject_tables().contains(&self.subject.table()) {
            let allowed: Vec<&str> = self.kind.subject_tables().iter().map(|t| t.as_str()).collect();
            return Err(ValueError::new(
                "subject",
                format!("a {} request is about a {}, not a {}", self.kind, allowed.join(" or "), self.subject.table()),
            ));
        }
        if self.kind.names_access() {
            match &self.target {
                Some(t) if t.table() == super::ids::Table::System => {}
                Some(_) => {
                    return Err(ValueError::new(
                        "target",
                        format!("the target of a {} request is a system", self.kind),
                    ));
                }
                None => return Err(ValueError::new("target", format!("a {} request names the system", self.kind))),
            }
            if self.privilege.is_none() {
                return Err(ValueError::new("privilege", format!("a {} request names the privilege", self.kind)));
            }
        } else if self.target.is_some() || self.privilege.is_some() {
            return Err(ValueError::new(
                "target",
                format!("a {} request grants no access; leave target and privilege out", self.kind),
            ));
        }
        if self.kind == RequestKind::Exception {
            if self.compensating_controls.is_empty() {
                return Err(ValueError::new("compensatingControls", "an exception names its compensating controls"));
            }
            if self.duration_days.is_none() {
                return Err(ValueError::new("durationDays", "an exception has an expiry: give its duration in days"));
            }
        } else if !self.compensating_controls.is_empty() || self.review_days.is_some() {
            return Err(ValueError::new("compensatingControls", "only exception requests carry compensating controls"));
        } else if !self.waives.is_empty() {
            return Err(ValueError::new("waives", "only exception requests waive controls"));
        }
        for key in &self.waives {
            super::values::check_control_key(key).map_err(|e| e.at("waives"))?;
        }
        if let Some(d) = self.duration_days
            && !(1..=3650).contains(&d)
        {
            return Err(ValueError::new("durationDays", "between 1 and 3650 days"));
        }
        if let Some(d) = self.review_days
            && !(1..=3650).contains(&d)
        {
            return Err(ValueError::new("reviewDays", "between 1 and 3650 days"));
        }
        Ok(())
    }
}

/// Whom an escalated request waits for: a named person, or anyone holding a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationTarget {
    Person(NodeId),
    Role(super::values::Role),
}

impl std::fmt::Display for EscalationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EscalationTarget::Person(p) => write!(f, "{p}"),
            EscalationTarget::Role(r) => write!(f, "the {r} role"),
        }
    }
}

/// One approval given to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: NodeId,
    pub at: DateTime<Utc>,
    pub decision: NodeId,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: NodeId,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub requester: NodeId,
    pub subject: NodeId,
    pub target: Option<NodeId>,
    pub privilege: Option<Privilege>,
    pub duration_days: Option<u32>,
    pub justification: String,
    pub ticket_ref: Option<String>,
    pub case: Option<NodeId>,
    #[serde(default)]
    pub compensating_controls: Vec<String>,
    pub review_days: Option<u32>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    #[serde(default)]
    pub waives: Vec<String>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    pub approvals_needed: u32,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// When an approval lapses and must be revalidated.
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// Break-glass access must be approved by then.
    pub post_approval_due: Option<DateTime<Utc>>,
    pub denied_by_rule: Option<String>,
    pub risk_accepted_by: Option<NodeId>,
    /// The access edge an approved grant or emergency access opened.
    pub granted_edge: Option<String>,
    /// The access edge a grant replaced (restored if break-glass access is rejected).
    pub replaced_edge: Option<String>,
    /// For a `change` request: the governed change it asks a second person to approve.
    #[serde(default)]
    pub change: Option<super::change::Change>,
    /// Whom the request was escalated to: only they decide it next.
    #[serde(default)]
    pub escalated_to: Option<EscalationTarget>,
    /// Who escalated it, who may not approve it afterwards.
    #[serde(default)]
    pub escalated_by: Option<NodeId>,
    /// An approved rotation must be seen done by then.
    #[serde(default)]
    pub rotation_due_at: Option<DateTime<Utc>>,
    /// When the rotation was seen done (the request is then `fulfilled`).
    #[serde(default)]
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub rev: u64,
}

impl Request {
    /// An approval that has lapsed and needs revalidation.
    pub fn revalidation_due_at(&self, now: DateTime<Utc>) -> bool {
        self.status == RequestStatus::Approved && self.approval_expires_at.is_some_and(|t| t <= now)
    }

    /// An approved rotation not seen done by its due date.
    pub fn rotation_overdue_at(&self, now: DateTime<Utc>) -> bool {
        self.kind == RequestKind::RotateSecret
            && self.status == RequestStatus::Approved
            && self.rotation_due_at.is_some_and(|t| t <= now)
    }

    /// Break-glass access still unapproved past its window.
    pub fn post_approval_overdue_at(&self, now: DateTime<Utc>) -> bool {
        self.status == RequestStatus::EmergencyActive && self.post_approval_due.is_some_and(|t| t <= now)
    }
}

/// An accepted deviation, created when an exception request is approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exception {
    pub id: NodeId,
    pub request: NodeId,
    pub subject: NodeId,
    pub justification: String,
    #[serde(default)]
    pub compensating_controls: Vec<String>,
    pub status: ExceptionStatus,
    pub expires_at: DateTime<Utc>,
    pub review_due: DateTime<Utc>,
    pub approved_by: Vec<NodeId>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    /// The controls whose failures it waives for its subject.
    #[serde(default)]
    pub waives: Vec<String>,
}

impl Exception {
    /// Expired, or past its review date: it needs a fresh decision.
    pub fn revalidation_due_at(&self, now: DateTime<Utc>) -> bool {
        self.status == ExceptionStatus::Active && (self.expires_at <= now || self.review_due <= now)
    }

    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Table;
    use crate::domain::values::{Criticality, Environment};

    fn request(kind: RequestKind, subject: Table) -> NewRequest {
        NewRequest {
            kind,
            subject: NodeId::generate(subject),
            target: None,
            privilege: None,
            duration_days: None,
            justification: Text::parse("because").unwrap(),
            ticket_ref: None,
            case: None,
            compensating_controls: vec![],
            review_days: None,
            waives: vec![],
            refs: vec![],
        }
    }

    #[test]
    fn a_grant_names_a_system_and_a_privilege() {
        let mut r = request(RequestKind::GrantAccess, Table::Nhi);
        assert_eq!(r.check().unwrap_err().field, "target");
        r.target = Some(NodeId::generate(Table::System));
        assert_eq!(r.check().unwrap_err().field, "privilege");
        r.privilege = Some(Privilege::Read);
        assert!(r.check().is_ok());
    }

    #[test]
    fn subjects_match_the_kind() {
        assert_eq!(request(RequestKind::RotateSecret, Table::Nhi).check().unwrap_err().field, "subject");
        assert!(request(RequestKind::RotateSecret, Table::Secret).check().is_ok());
        assert!(request(RequestKind::RevokeNhi, Table::Nhi).check().is_ok());
    }

    #[test]
    fn an_exception_has_controls_and_an_expiry() {
        let mut r = request(RequestKind::Exception, Table::Secret);
        assert_eq!(r.check().unwrap_err().field, "compensatingControls");
        r.compensating_controls = vec![Text::parse("IP allow-list").unwrap()];
        assert_eq!(r.check().unwrap_err().field, "durationDays");
        r.duration_days = Some(30);
        assert!(r.check().is_ok());
    }

    #[test]
    fn stakes_follow_tier_and_environment() {
        let t = |c, e| TargetFacts { criticality: c, environment: e };
        assert!(t(Criticality::Tier3, Environment::Test).privileged(Privilege::Admin));
        assert!(t(Criticality::Tier1, Environment::Staging).privileged(Privilege::Write));
        assert!(t(Criticality::Tier3, Environment::Production).privileged(Privilege::Write));
        assert!(!t(Criticality::Tier2, Environment::Staging).privileged(Privilege::Write));
        assert!(!t(Criticality::Tier0, Environment::Production).privileged(Privilege::Read));
    }
}
