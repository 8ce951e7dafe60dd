//! The case record: alerts, cases and their state machine, tasks and evidence.
//!
//! An alert is a signal; a case is the governed investigation that one or more alerts
//! become. The rules that need no database live here: which status may follow which,
//! when a case is due, what closing requires, and how evidence is fingerprinted.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::framework::FrameworkRef;
use super::ids::NodeId;
use super::values::{Label, Text, ValueError, text_enum};

text_enum!(
    /// How bad a signal or a case is.
    Severity, "severity" {
        Critical => "critical",
        High => "high",
        Medium => "medium",
        Low => "low",
    }
);

text_enum!(
    /// Where an alert stands.
    AlertStatus, "status" {
        New => "new",
        Promoted => "promoted",
        Dismissed => "dismissed",
    }
);

text_enum!(
    /// The states of a case. `closed` is reached only by closing (which has its own
    /// requirements) and left only by reopening (which needs a reason).
    CaseStatus, "status" {
        Open => "open",
        Triage => "triage",
        Investigating => "investigating",
        Escalated => "escalated",
        Contained => "contained",
        Remediated => "remediated",
        Closed => "closed",
    }
);

text_enum!(
    /// How a case ended.
    Resolution, "resolution" {
        TruePositive => "true_positive",
        FalsePositive => "false_positive",
        Benign => "benign",
        Duplicate => "duplicate",
        RiskAccepted => "risk_accepted",
    }
);

text_enum!(
    /// Work inside a case.
    TaskKind, "kind" {
        Contain => "contain",
        Rotate => "rotate",
        Revoke => "revoke",
        Verify => "verify",
        Notify => "notify",
        Investigate => "investigate",
        Other => "other",
    }
);

text_enum!(
    TaskStatus, "status" {
        Open => "open",
        Done => "done",
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// What an exhibit is.
    EvidenceKind, "kind" {
        TokenMetadata => "token_metadata",
        RotationStatus => "rotation_status",
        VaultConfigSnapshot => "vault_config_snapshot",
        AccessHistory => "access_history",
        RepositoryHistory => "repository_history",
        TicketReference => "ticket_reference",
        Note => "note",
        GraphSnapshot => "graph_snapshot",
    }
);

impl CaseStatus {
    /// The statuses an ordinary transition may move to from here. Closing and
    /// reopening are separate operations and never appear in this list.
    pub fn next(self) -> &'static [CaseStatus] {
        use CaseStatus::*;
        match self {
            Open => &[Triage, Investigating, Escalated],
            Triage => &[Investigating, Escalated],
            Investigating => &[Escalated, Contained, Remediated],
            Escalated => &[Investigating, Contained, Remediated],
            Contained => &[Investigating, Escalated, Remediated],
            Remediated => &[Investigating, Escalated],
            Closed => &[],
        }
    }

    /// Check an ordinary transition.
    pub fn check_transition(self, to: CaseStatus) -> Result<(), ValueError> {
        if to == CaseStatus::Closed {
            return Err(ValueError::new("status", "a case is closed with closeCase, which checks what closing needs"));
        }
        if self == CaseStatus::Closed {
            return Err(ValueError::new("status", "the case is closed; reopen it with a reason first"));
        }
        if self.next().contains(&to) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
        Err(ValueError::new(
            "status",
            format!("a case cannot move from {self} to {to}; from {self} it can move to: {}", allowed.join(", ")),
        ))
    }

    pub fn is_closed(self) -> bool {
        self == CaseStatus::Closed
    }
}

/// How long a case of each severity may stay open before it is overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaHours {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

impl Default for SlaHours {
    fn default() -> Self {
        SlaHours { critical: 4, high: 24, medium: 72, low: 168 }
    }
}

impl SlaHours {
    pub fn hours(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }

    /// When a case of `severity` opened at `opened_at` falls due.
    pub fn due_at(&self, severity: Severity, opened_at: DateTime<Utc>) -> DateTime<Utc> {
        opened_at + Duration::hours(i64::from(self.hours(severity)))
    }
}

/// The SHA-256 of an exhibit's content, in lower-case hex.
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// What closing a case needs, given what the case holds now.
#[derive(Debug, Clone)]
pub struct CloseFacts {
    pub status: CaseStatus,
    /// The exhibit offered as closure verification: does it belong to this case, and has
    /// it been superseded?
    pub verification: Option<VerificationFacts>,
    pub open_mandatory_tasks: Vec<NodeId>,
}

#[derive(Debug, Clone, Copy)]
pub struct VerificationFacts {
    pub same_case: bool,
    pub superseded: bool,
}

/// Check that a case may close: it is not closed already, the closure verification is
/// live evidence of this case, and no mandatory task is still open.
pub fn check_close(f: &CloseFacts) -> Result<(), ValueError> {
    if f.status.is_closed() {
        return Err(ValueError::new("status", "the case is already closed"));
    }
    match f.verification {
        None => return Err(ValueError::new("verificationEvidence", "no such evidence")),
        Some(v) if !v.same_case => {
            return Err(ValueError::new("verificationEvidence", "the evidence belongs to another case"));
        }
        Some(v) if v.superseded => {
            return Err(ValueError::new(
                "verificationEvidence",
                "the evidence has been superseded; cite the newer one",
            ));
        }
        Some(_) => {}
    }
    if !f.open_mandatory_tasks.is_empty() {
        let ids: Vec<String> = f.open_mandatory_tasks.iter().map(ToString::to_string).collect();
        return Err(ValueError::new(
            "tasks",
            format!("mandatory tasks are still open: {}; complete or cancel them first", ids.join(", ")),
        ));
    }
    Ok(())
}

/// How an alert names the identity it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRef {
    /// A node id (`nhi:...` or `secret:...`).
    Id(NodeId),
    /// The provider's own id of an NHI.
    ExternalId(String),
    /// The fingerprint of a secret.
    Fingerprint(String),
}

impl SubjectRef {
    /// The text kept on an alert whose subject could not be found.
    pub fn describe(&self) -> String {
        match self {
            SubjectRef::Id(id) => format!("id {id}"),
            SubjectRef::ExternalId(x) => format!("external id {x}"),
            SubjectRef::Fingerprint(f) => format!("fingerprint {f}"),
        }
    }
}

/// A validated alert, as a scanner or rule reports it.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub source: Label,
    pub rule: Label,
    pub severity: Severity,
    pub title: Text,
    pub detail: Option<Text>,
    pub detected_at: DateTime<Utc>,
    pub subject: SubjectRef,
    pub refs: Vec<FrameworkRef>,
    /// Given by the caller, or derived from source, rule and subject.
    pub dedupe_key: String,
}

impl NewAlert {
    /// The dedupe key used when the caller gives none: the same rule from the same
    /// source about the same identity is one alert.
    pub fn default_dedupe_key(source: &Label, rule: &Label, subject: &SubjectRef) -> String {
        let subject = match subject {
            SubjectRef::Id(id) => format!("id:{id}"),
            SubjectRef::ExternalId(x) => format!("ext:{x}"),
            SubjectRef::Fingerprint(f) => format!("fp:{f}"),
        };
        sha256_hex(format!("{source}\u{1f}{rule}\u{1f}{subject}").as_bytes())
    }
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: NodeId,
    pub source: String,
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    pub detail: Option<String>,
    pub dedupe_key: String,
    pub status: AlertStatus,
    pub detected_at: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub count: u64,
    /// The identity it is about, when it was found.
    pub subject: Option<NodeId>,
    /// How the scanner named the identity; kept when it could not be found.
    pub subject_ref: String,
    pub unknown_subject: bool,
    #[serde(default)]
    pub enrichment: Enrichment,
    pub case: Option<NodeId>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    pub dismissed_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Context added to an alert when it arrives: who owns the identity, which systems it
/// reaches, and when it was last used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    #[serde(default)]
    pub owners: Vec<NodeId>,
    #[serde(default)]
    pub systems: Vec<NodeId>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: NodeId,
    pub title: String,
    pub description: Option<String>,
    pub status: CaseStatus,
    pub severity: Severity,
    /// The NHIs, secrets and systems it concerns.
    #[serde(default)]
    pub subjects: Vec<NodeId>,
    pub assignee: Option<NodeId>,
    pub opened_by: NodeId,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    pub escalated_to: Option<NodeId>,
    pub escalation_reason: Option<String>,
    pub resolution: Option<Resolution>,
    pub summary: Option<String>,
    pub risk_remediated: Option<bool>,
    pub finding_closed: Option<bool>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<NodeId>,
    pub reopen_reason: Option<String>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    pub rev: u64,
    pub updated_at: DateTime<Utc>,
}

impl Case {
    /// Open past its due time.
    pub fn overdue_at(&self, now: DateTime<Utc>) -> bool {
        !self.status.is_closed() && now > self.due_at
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: NodeId,
    pub case: NodeId,
    pub kind: TaskKind,
    pub title: String,
    pub assignee: Option<NodeId>,
    pub mandatory: bool,
    pub status: TaskStatus,
    pub note: Option<String>,
    pub created_by: NodeId,
    pub created_at: DateTime<Utc>,
    pub completed_by: Option<NodeId>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The content of an exhibit: non-empty text of at most 4 MiB (a graph snapshot of a
/// large blast radius is big; a client's request is bounded by the body limit first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceContent(String);

impl EvidenceContent {
    pub const MAX_BYTES: usize = 4 * 1024 * 1024;

    pub fn parse(raw: &str) -> Result<EvidenceContent, ValueError> {
        if raw.trim().is_empty() {
            return Err(ValueError::new("content", "must not be empty"));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValueError::new("content", "must be at most 4 MiB"));
        }
        Ok(EvidenceContent(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated exhibit to attach.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub kind: EvidenceKind,
    pub content: EvidenceContent,
    pub source: Label,
    /// When the exhibit was collected at its source; defaults to now.
    pub collected_at: Option<DateTime<Utc>>,
    pub supersedes: Option<NodeId>,
    pub supersede_reason: Option<Text>,
    pub refs: Vec<FrameworkRef>,
}

impl NewEvidence {
    /// A superseding exhibit must say why; a reason without a predecessor is refused.
    pub fn check(&self) -> Result<(), ValueError> {
        match (&self.supersedes, &self.supersede_reason) {
            (Some(_), None) => Err(ValueError::new("supersedeReason", "say why the earlier evidence is superseded")),
            (None, Some(_)) => Err(ValueError::new("supersedes", "a reason was given but no evidence to supersede")),
            _ => Ok(()),
        }
    }
}

/// An exhibit as stored. Never edited, never deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub id: NodeId,
    pub case: NodeId,
    pub kind: EvidenceKind,
    pub content: String,
    pub sha256: String,
    pub source: String,
    pub collected_at: DateTime<Utc>,
    pub collected_by: NodeId,
    pub recorded_at: DateTime<Utc>,
    pub supersedes: Option<NodeId>,
    pub supersede_reason: Option<String>,
    pub superseded_by: Option<NodeId>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
}

impl Evidence {
    /// Does the stored digest still match the content?
    pub fn intact(&self) -> bool {
        sha256_hex(self.content.as_bytes()) == self.sha256
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_only_listed_moves() {
        use CaseStatus::*;
        assert!(Open.check_transition(Triage).is_ok());
        assert!(Investigating.check_transition(Contained).is_ok());
        let e = Open.check_transition(Remediated).unwrap_err();
        assert!(e.message.contains("cannot move from open to remediated"), "{}", e.message);
        assert!(Contained.check_transition(Closed).is_err(), "closing goes through closeCase");
        assert!(Closed.check_transition(Investigating).is_err(), "leaving closed needs a reopen");
        for s in CaseStatus::ALL {
            assert!(!s.next().contains(s), "{s} may not move to itself");
            assert!(!s.next().contains(&Closed));
        }
    }

    #[test]
    fn closing_needs_live_verification_and_no_open_mandatory_task() {
        let facts = |verification, tasks: Vec<NodeId>| CloseFacts {
            status: CaseStatus::Contained,
            verification,
            open_mandatory_tasks: tasks,
        };
        let live = Some(VerificationFacts { same_case: true, superseded: false });
        assert!(check_close(&facts(live, vec![])).is_ok());
        assert_eq!(check_close(&facts(None, vec![])).unwrap_err().field, "verificationEvidence");
        let other = Some(VerificationFacts { same_case: false, superseded: false });
        assert_eq!(check_close(&facts(other, vec![])).unwrap_err().field, "verificationEvidence");
        let old = Some(VerificationFacts { same_case: true, superseded: true });
        assert_eq!(check_close(&facts(old, vec![])).unwrap_err().field, "verificationEvidence");
        let task = NodeId::generate(crate::domain::Table::Task);
        assert_eq!(check_close(&facts(live, vec![task])).unwrap_err().field, "tasks");
    }

    #[test]
    fn due_time_follows_severity() {
        let sla = SlaHours::default();
        let t = Utc::now();
        assert_eq!(sla.due_at(Severity::Critical, t) - t, Duration::hours(4));
        assert_eq!(sla.due_at(Severity::Low, t) - t, Duration::hours(168));
    }

    #[test]
    fn dedupe_keys_are_stable_and_distinct() {
        let l = |s: &str| Label::parse(s).unwrap();
        let fp = SubjectRef::Fingerprint("abc".into());
        let a = NewAlert::default_dedupe_key(&l("gitleaks"), &l("aws-key"), &fp);
        assert_eq!(a, NewAlert::default_dedupe_key(&l("gitleaks"), &l("aws-key"), &fp));
        assert_ne!(a, NewAlert::default_dedupe_key(&l("gitleaks"), &l("gcp-key"), &fp));
    }

    #[test]
    fn superseding_needs_a_reason() {
        let base = NewEvidence {
            kind: EvidenceKind::Note,
            content: EvidenceContent::parse("x").unwrap(),
            source: Label::parse("analyst").unwrap(),
            collected_at: None,
            supersedes: None,
            supersede_reason: None,
            refs: vec![],
        };
        assert!(base.check().is_ok());
        let e = NewEvidence { supersedes: Some(NodeId::generate(crate::domain::Table::Evidence)), ..base.clone() };
        assert_eq!(e.check().unwrap_err().field, "supersedeReason");
    }
}

/// A validated request to open a case.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub title: Text,
    pub description: Option<Text>,
    /// Defaults to the highest severity among the alerts (or medium without any).
    pub severity: Option<Severity>,
    pub alerts: Vec<NodeId>,
    /// NHIs, secrets and systems the case concerns, besides its alerts' subjects.
    pub subjects: Vec<NodeId>,
    pub assignee: Option<NodeId>,
    pub refs: Vec<FrameworkRef>,
}

/// A validated request to close a case.
#[derive(Debug, Clone)]
pub struct CloseCase {
    pub resolution: Resolution,
    pub summary: Text,
    /// Was the risk itself dealt with?
    pub risk_remediated: bool,
    /// Is the audit finding closed? Recorded separately from the risk.
    pub finding_closed: bool,
    /// The evidence that verifies the closure.
    pub verification: NodeId,
}

/// A validated task to add to a case.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub kind: TaskKind,
    pub title: Text,
    pub assignee: Option<NodeId>,
    pub mandatory: bool,
}

impl Severity {
    /// Higher is worse.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Critical => 3,
            Severity::High => 2,
            Severity::Medium => 1,
            Severity::Low => 0,
        }
    }
}
