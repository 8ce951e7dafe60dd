//! Policy as versioned data: rule kinds with parameters, and their evaluation.
//!
//! A policy version is immutable once published; its SHA-256 over a canonical encoding
//! is recorded with every decision taken under it, so an auditor can prove which rules
//! applied. Evaluation is pure: the store gathers the facts ([`ApprovalFacts`]), the
//! policy says yes or names the rule that says no ([`Violation`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::canonical;
use super::framework::FrameworkRef;
use super::ids::NodeId;
use super::request::{DecideOutcome, EscalationTarget, RequestKind};
use super::values::{Role, ValueError, text_enum};

text_enum!(
    /// The kinds of rule a policy can hold.
    RuleKind, "kind" {
        RequesterCannotApprove => "requester_cannot_approve",
        OwnerCannotApprove => "owner_cannot_approve",
        DistinctApprovers => "distinct_approvers",
        ApproverRoleRequired => "approver_role_required",
        MaxApprovalLifetime => "max_approval_lifetime",
        EmergencyPostApproval => "emergency_post_approval",
        GrantNeedsActiveOwner => "grant_needs_active_owner",
        OverrideNeedsControlOwner => "override_needs_control_owner",
        DeciderRoleRequired => "decider_role_required",
        SubjectCannotApprove => "subject_cannot_approve",
        EscalationTarget => "escalation_target",
        EscalatorCannotApprove => "escalator_cannot_approve",
        MachineCannotDecide => "machine_cannot_decide",
        OwnTokenOnly => "own_token_only",
        OwnerCannotCloseFinding => "owner_cannot_close_finding",
    }
);

impl RuleKind {
    /// Rules of the engine's floor, in force under every policy version: no policy
    /// holds them, and publishing one that names them is refused.
    pub fn is_floor(self) -> bool {
        matches!(
            self,
            RuleKind::DeciderRoleRequired
                | RuleKind::SubjectCannotApprove
                | RuleKind::EscalationTarget
                | RuleKind::EscalatorCannotApprove
                | RuleKind::MachineCannotDecide
                | RuleKind::OwnTokenOnly
                | RuleKind::OwnerCannotCloseFinding
        )
    }
}

/// One rule with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// Whoever asked for a change cannot approve it.
    RequesterCannotApprove,
    /// The owner of the subject (directly or through a team) cannot approve its
    /// exception or a privileged grant to it.
    OwnerCannotApprove,
    /// Privileged grants need `count` distinct approvers.
    DistinctApprovers { count: u32 },
    /// Deciding a request needs the approver role.
    ApproverRoleRequired,
    /// An approval (and the access or exception it grants) lasts at most `days`.
    MaxApprovalLifetime { days: u32 },
    /// Break-glass access must be approved within `hours`.
    EmergencyPostApproval { hours: u32 },
    /// Access can be granted only to an NHI with an active owner.
    GrantNeedsActiveOwner,
    /// An automated deny can be overridden only by a risk acceptance of the control
    /// owner (the owner of the system access is requested to).
    OverrideNeedsControlOwner,
}

impl Rule {
    pub fn kind(&self) -> RuleKind {
        match self {
            Rule::RequesterCannotApprove => RuleKind::RequesterCannotApprove,
            Rule::OwnerCannotApprove => RuleKind::OwnerCannotApprove,
            Rule::DistinctApprovers { .. } => RuleKind::DistinctApprovers,
            Rule::ApproverRoleRequired => RuleKind::ApproverRoleRequired,
            Rule::MaxApprovalLifetime { .. } => RuleKind::MaxApprovalLifetime,
            Rule::EmergencyPostApproval { .. } => RuleKind::EmergencyPostApproval,
            Rule::GrantNeedsActiveOwner => RuleKind::GrantNeedsActiveOwner,
            Rule::OverrideNeedsControlOwner => RuleKind::OverrideNeedsControlOwner,
        }
    }

    /// The rule as a sentence, for the policy text shown with a decision.
    pub fn describe(&self) -> String {
        match self {
            Rule::RequesterCannotApprove => "The requester of a change cannot approve it.".into(),
            Rule::OwnerCannotApprove => {
                "The owner of the subject, directly or through a team, cannot approve its exception or a privileged grant to it."
                    .into()
            }
            Rule::DistinctApprovers { count } => format!(
                "Privileged grants (admin anywhere; write or more on tier0, tier1 or production) need {count} distinct approvers."
            ),
            Rule::ApproverRoleRequired => "Only holders of the approver role decide requests.".into(),
            Rule::MaxApprovalLifetime { days } => format!("An approval lasts at most {days} days."),
            Rule::EmergencyPostApproval { hours } => {
                format!("Emergency access must be approved within {hours} hours of being granted.")
            }
            Rule::GrantNeedsActiveOwner => "Access is granted only to an NHI with an active owner.".into(),
            Rule::OverrideNeedsControlOwner => {
                "An automated deny is overridden only by a risk acceptance of the control owner.".into()
            }
        }
    }

    fn check(&self) -> Result<(), ValueError> {
        let range = |what: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ValueError::new("rules", format!("{}: {what} is between {lo} and {hi}", self.kind())))
            }
        };
        match *self {
            Rule::DistinctApprovers { count } => range("count", count, 2, 10),
            Rule::MaxApprovalLifetime { days } => range("days", days, 1, 3650),
            Rule::EmergencyPostApproval { hours } => range("hours", hours, 1, 720),
            _ => Ok(()),
        }
    }
}

/// A policy to publish: its name, description and rules. The version is assigned by
/// the store (one more than the latest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDraft {
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
}

impl PolicyDraft {
    /// Each rule kind at most once, parameters in range, a name.
    pub fn check(&self) -> Result<(), ValueError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ValueError::new("name", "a policy has a name of 1 to 200 characters"));
        }
        if self.description.len() > 10_000 {
            return Err(ValueError::new("description", "at most 10,000 characters"));
        }
        let mut seen = Vec::new();
        for rule in &self.rules {
            rule.check()?;
            if seen.contains(&rule.kind()) {
                return Err(ValueError::new("rules", format!("{} appears twice", rule.kind())));
            }
            seen.push(rule.kind());
        }
        Ok(())
    }

    /// The policy every new database starts with: all rules, with the parameters the
    /// governance guide (docs/governance.md) documents.
    pub fn baseline() -> PolicyDraft {
        PolicyDraft {
            name: "nhigov baseline".into(),
            description: "Segregation of duties and ownership rules for NHI governance.".into(),
            rules: vec![
                Rule::RequesterCannotApprove,
                Rule::OwnerCannotApprove,
                Rule::DistinctApprovers { count: 2 },
                Rule::ApproverRoleRequired,
                Rule::MaxApprovalLifetime { days: 90 },
                Rule::EmergencyPostApproval { hours: 24 },
                Rule::GrantNeedsActiveOwner,
                Rule::OverrideNeedsControlOwner,
            ],
            refs: FrameworkRef::parse("GV.OC-01").into_iter().collect(),
        }
    }

    /// The canonical text of a version: what its SHA-256 is computed over.
    pub fn canonical(&self, version: u32) -> String {
        canonical::encode(&serde_json::json!({
            "name": self.name,
            "version": version,
            "description": self.description,
            "rules": self.rules,
            "refs": self.refs,
        }))
    }

    pub fn sha256(&self, version: u32) -> String {
        super::case::sha256_hex(self.canonical(version).as_bytes())
    }
}

/// A published, immutable policy version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: NodeId,
    pub name: String,
    pub version: u32,
    pub description: String,
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    pub sha256: String,
    pub published_at: DateTime<Utc>,
    pub published_by: Option<NodeId>,
}

/// Which policy a decision was taken under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: NodeId,
    pub version: u32,
    pub sha256: String,
}

/// A decision a rule refused: the rule, the policy version, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: RuleKind,
    pub policy_version: u32,
    pub message: String,
}

/// What the store knows when someone decides a request.
#[derive(Debug, Clone)]
pub struct ApprovalFacts {
    pub outcome: DecideOutcome,
    pub kind: RequestKind,
    pub requester: NodeId,
    pub actor: NodeId,
    pub actor_roles: Vec<Role>,
    /// The actor owns the subject, directly or through a team.
    pub actor_owns_subject: bool,
    /// Privileged access ([`super::request::TargetFacts::privileged`]).
    pub privileged: bool,
    pub prior_approvers: Vec<NodeId>,
    pub subject_has_active_owner: bool,
    pub risk_accepted: bool,
    /// Whom the request was escalated to, and by whom.
    pub escalated_to: Option<EscalationTarget>,
    pub escalated_by: Option<NodeId>,
}

impl Policy {
    pub fn reference(&self) -> PolicyRef {
        PolicyRef { id: self.id.clone(), version: self.version, sha256: self.sha256.clone() }
    }

    pub fn draft(&self) -> PolicyDraft {
        PolicyDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            rules: self.rules.clone(),
            refs: self.refs.clone(),
        }
    }

    /// Recompute the digest and compare it with the stored one.
    pub fn intact(&self) -> bool {
        self.draft().sha256(self.version) == self.sha256
    }

    /// The policy as readable text, one rule per line.
    pub fn text(&self) -> String {
        let mut out = format!("{} (version {})\n{}\n", self.name, self.version, self.description);
        for r in &self.rules {
            out.push_str("- ");
            out.push_str(&r.describe());
            out.push('\n');
        }
        out
    }

    fn has(&self, kind: RuleKind) -> bool {
        self.rules.iter().any(|r| r.kind() == kind)
    }

    fn violation(&self, rule: RuleKind, message: impl Into<String>) -> Violation {
        Violation { rule, policy_version: self.version, message: message.into() }
    }

    /// How many distinct approvals a request needs.
    pub fn approvals_needed(&self, kind: RequestKind, privileged: bool) -> u32 {
        if !(kind.grants_access() && privileged) {
            return 1;
        }
        self.rules
            .iter()
            .find_map(|r| match r {
                Rule::DistinctApprovers { count } => Some(*count),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// How long an approval lasts: what was asked, capped by the policy.
    pub fn approval_lifetime(&self, requested_days: Option<u32>) -> Option<Duration> {
        let cap = self.rules.iter().find_map(|r| match r {
            Rule::MaxApprovalLifetime { days } => Some(*days),
            _ => None,
        });
        let days = match (requested_days, cap) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        };
        days.map(|d| Duration::days(i64::from(d)))
    }

    /// The window within which break-glass access must be approved, if any.
    pub fn emergency_window(&self) -> Option<Duration> {
        self.rules.iter().find_map(|r| match r {
            Rule::EmergencyPostApproval { hours } => Some(Duration::hours(i64::from(*hours))),
            _ => None,
        })
    }

    /// [`Policy::automated_deny`] for access granted to an NHI: what a change that
    /// relates access directly answers to, as a grant request would.
    pub fn automated_deny_access(&self, subject_has_active_owner: bool) -> Option<Violation> {
        self.automated_deny(RequestKind::GrantAccess, subject_has_active_owner)
    }

    /// Would an automated check deny this grant (or break-glass access, which passes
    /// the same checks) when it is requested?
    pub fn automated_deny(&self, kind: RequestKind, subject_has_active_owner: bool) -> Option<Violation> {
        if kind.grants_access() && self.has(RuleKind::GrantNeedsActiveOwner) && !subject_has_active_owner {
            return Some(self.violation(
                RuleKind::GrantNeedsActiveOwner,
                "the NHI has no active owner, so access cannot be granted to it",
            ));
        }
        None
    }

    /// The floor's escalation rules: an escalated request is decided only by whom it was
    /// escalated to, and never approved by whoever escalated it.
    pub fn check_escalation(
        &self,
        to: Option<&EscalationTarget>,
        by: Option<&NodeId>,
        outcome: DecideOutcome,
        actor: &NodeId,
        actor_roles: &[Role],
    ) -> Result<(), Violation> {
        let allowed = match to {
            None => true,
            Some(EscalationTarget::Person(p)) => p == actor,
            Some(EscalationTarget::Role(r)) => actor_roles.contains(r),
        };
        if let (false, Some(to)) = (allowed, to) {
            return Err(self.violation(
                RuleKind::EscalationTarget,
                format!("the request was escalated to {to}: only they decide it now"),
            ));
        }
        if outcome == DecideOutcome::Approve && by == Some(actor) {
            return Err(
                self.violation(RuleKind::EscalatorCannotApprove, "whoever escalated a request cannot approve it")
            );
        }
        Ok(())
    }

    /// Check a decision on a request against every rule that applies to it.
    pub fn check_decision(&self, f: &ApprovalFacts) -> Result<(), Violation> {
        self.check_escalation(f.escalated_to.as_ref(), f.escalated_by.as_ref(), f.outcome, &f.actor, &f.actor_roles)?;
        if self.has(RuleKind::ApproverRoleRequired) && !f.actor_roles.contains(&Role::Approver) {
            return Err(self.violation(RuleKind::ApproverRoleRequired, "deciding a request needs the approver role"));
        }
        if f.outcome != DecideOutcome::Approve {
            return Ok(());
        }
        // The floor: whatever the policy in force says, nobody approves their own request.
        if f.actor == f.requester {
            return Err(
                self.violation(RuleKind::RequesterCannotApprove, "the requester cannot approve their own request")
            );
        }
        let owner_rule_applies = f.kind == RequestKind::Exception || (f.kind.grants_access() && f.privileged);
        if self.has(RuleKind::OwnerCannotApprove) && owner_rule_applies && f.actor_owns_subject {
            return Err(self.violation(
                RuleKind::OwnerCannotApprove,
                format!("the owner of the subject cannot approve its {}", describe_kind(f.kind)),
            ));
        }
        if f.prior_approvers.contains(&f.actor) {
            return Err(self.violation(
                RuleKind::DistinctApprovers,
                "you have already approved this request; the next approval must come from someone else",
            ));
        }
        if f.kind.grants_access()
            && self.has(RuleKind::GrantNeedsActiveOwner)
            && !f.subject_has_active_owner
            && !f.risk_accepted
        {
            return Err(self.violation(
                RuleKind::GrantNeedsActiveOwner,
                "the NHI has no active owner, and no control owner has accepted the risk",
            ));
        }
        Ok(())
    }

    /// Check a risk acceptance (the override of an automated deny).
    pub fn check_risk_acceptance(&self, actor_owns_control: bool) -> Result<(), Violation> {
        if self.has(RuleKind::OverrideNeedsControlOwner) && !actor_owns_control {
            return Err(self.violation(
                RuleKind::OverrideNeedsControlOwner,
                "only the owner of the target system (the control owner) can accept this risk",
            ));
        }
        Ok(())
    }
}

fn describe_kind(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Exception => "exception",
        _ => "privileged grant",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Table;

    fn policy(rules: Vec<Rule>) -> Policy {
        let draft = PolicyDraft { name: "p".into(), description: String::new(), rules, refs: vec![] };
        Policy {
            id: NodeId::generate(Table::Policy),
            name: draft.name.clone(),
            version: 3,
            sha256: draft.sha256(3),
            description: draft.description,
            rules: draft.rules,
            refs: vec![],
            published_at: Utc::now(),
            published_by: None,
        }
    }

    fn facts() -> ApprovalFacts {
        ApprovalFacts {
            outcome: DecideOutcome::Approve,
            kind: RequestKind::GrantAccess,
            requester: NodeId::generate(Table::Person),
            actor: NodeId::generate(Table::Person),
            actor_roles: vec![Role::Approver],
            actor_owns_subject: false,
            privileged: false,
            prior_approvers: vec![],
            subject_has_active_owner: true,
            risk_accepted: false,
            escalated_to: None,
            escalated_by: None,
        }
    }

    fn refused_by(p: &Policy, f: &ApprovalFacts) -> Option<RuleKind> {
        p.check_decision(f).err().map(|v| {
            assert_eq!(v.policy_version, 3);
            v.rule
        })
    }

    #[test]
    fn each_rule_stops_the_person_it_names() {
        let p = policy(PolicyDraft::baseline().rules);
        assert_eq!(refused_by(&p, &facts()), None);

        let f = facts();
        let own = ApprovalFacts { actor: f.requester.clone(), ..f };
        assert_eq!(refused_by(&p, &own), Some(RuleKind::RequesterCannotApprove));

        let owner = ApprovalFacts { actor_owns_subject: true, privileged: true, ..facts() };
        assert_eq!(refused_by(&p, &owner), Some(RuleKind::OwnerCannotApprove));
        let owner_plain = ApprovalFacts { actor_owns_subject: true, ..facts() };
        assert_eq!(refused_by(&p, &owner_plain), None, "an unprivileged grant may be approved by its owner");

        let f = facts();
        let twice = ApprovalFacts { prior_approvers: vec![f.actor.clone()], ..f };
        assert_eq!(refused_by(&p, &twice), Some(RuleKind::DistinctApprovers));

        let no_role = ApprovalFacts { actor_roles: vec![Role::Admin], outcome: DecideOutcome::Reject, ..facts() };
        assert_eq!(refused_by(&p, &no_role), Some(RuleKind::ApproverRoleRequired));

        let orphan = ApprovalFacts { subject_has_active_owner: false, ..facts() };
        assert_eq!(refused_by(&p, &orphan), Some(RuleKind::GrantNeedsActiveOwner));
        let accepted = ApprovalFacts { subject_has_active_owner: false, risk_accepted: true, ..facts() };
        assert_eq!(refused_by(&p, &accepted), None);

        assert_eq!(p.check_risk_acceptance(false).unwrap_err().rule, RuleKind::OverrideNeedsControlOwner);
        assert!(p.check_risk_acceptance(true).is_ok());
    }

    #[test]
    fn an_escalated_request_is_decided_by_its_target_and_not_approved_by_its_escalator() {
        let p = policy(PolicyDraft::baseline().rules);
        let f = facts();
        let to_someone = ApprovalFacts {
            escalated_to: Some(EscalationTarget::Person(NodeId::generate(Table::Person))),
            ..f.clone()
        };
        assert_eq!(refused_by(&p, &to_someone), Some(RuleKind::EscalationTarget));
        let to_me = ApprovalFacts { escalated_to: Some(EscalationTarget::Person(f.actor.clone())), ..f.clone() };
        assert_eq!(refused_by(&p, &to_me), None);
        let to_admins = ApprovalFacts { escalated_to: Some(EscalationTarget::Role(Role::Admin)), ..f.clone() };
        assert_eq!(refused_by(&p, &to_admins), Some(RuleKind::EscalationTarget));
        let mine = ApprovalFacts {
            escalated_to: Some(EscalationTarget::Role(Role::Approver)),
            escalated_by: Some(f.actor.clone()),
            ..f.clone()
        };
        assert_eq!(refused_by(&p, &mine), Some(RuleKind::EscalatorCannotApprove));
    }

    #[test]
    fn rejections_are_not_held_to_approval_rules() {
        let p = policy(PolicyDraft::baseline().rules);
        let f = facts();
        let own_reject = ApprovalFacts { actor: f.requester.clone(), outcome: DecideOutcome::Reject, ..f };
        assert_eq!(refused_by(&p, &own_reject), None);
    }

    #[test]
    fn a_policy_without_a_rule_does_not_apply_it() {
        let p = policy(vec![]);
        let other = ApprovalFacts { actor_roles: vec![], actor_owns_subject: true, privileged: true, ..facts() };
        assert_eq!(refused_by(&p, &other), None);
        assert_eq!(p.approvals_needed(RequestKind::GrantAccess, true), 1);
    }

    #[test]
    fn no_policy_lets_the_requester_approve() {
        let p = policy(vec![]);
        let f = facts();
        let own = ApprovalFacts { actor: f.requester.clone(), actor_roles: vec![], ..f };
        assert_eq!(refused_by(&p, &own), Some(RuleKind::RequesterCannotApprove));
    }

    #[test]
    fn parameters_shape_approvals() {
        let p = policy(PolicyDraft::baseline().rules);
        assert_eq!(p.approvals_needed(RequestKind::GrantAccess, true), 2);
        assert_eq!(p.approvals_needed(RequestKind::GrantAccess, false), 1);
        assert_eq!(p.approvals_needed(RequestKind::RevokeNhi, true), 1);
        assert_eq!(p.approval_lifetime(Some(365)), Some(Duration::days(90)));
        assert_eq!(p.approval_lifetime(Some(7)), Some(Duration::days(7)));
        assert_eq!(p.approval_lifetime(None), Some(Duration::days(90)));
        assert_eq!(p.emergency_window(), Some(Duration::hours(24)));
        assert!(p.automated_deny(RequestKind::GrantAccess, false).is_some());
        assert!(p.automated_deny(RequestKind::GrantAccess, true).is_none());
    }

    #[test]
    fn drafts_are_checked_and_hashed_canonically() {
        let mut d = PolicyDraft::baseline();
        assert!(d.check().is_ok());
        assert_eq!(d.refs.len(), 1, "the baseline carries its framework reference");
        assert_eq!(d.sha256(1), d.clone().sha256(1));
        assert_ne!(d.sha256(1), d.sha256(2), "the version is part of what is hashed");
        d.rules.push(Rule::ApproverRoleRequired);
        assert!(d.check().unwrap_err().message.contains("twice"));
        let bad = PolicyDraft { rules: vec![Rule::DistinctApprovers { count: 1 }], ..PolicyDraft::baseline() };
        assert!(bad.check().is_err());
    }

    #[test]
    fn rules_serialise_as_tagged_objects() {
        let json = serde_json::to_string(&Rule::DistinctApprovers { count: 2 }).unwrap();
        assert_eq!(json, r#"{"kind":"distinct_approvers","count":2}"#);
        let back: Rule = serde_json::from_str(r#"{"kind":"requester_cannot_approve"}"#).unwrap();
        assert_eq!(back, Rule::RequesterCannotApprove);
    }
}
