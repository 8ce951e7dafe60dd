//! Decision records and their hash chain.
//!
//! Every decision (approve, reject, escalate, dismiss, close, reopen, override...) is one
//! [`Decision`]: who, when, about what, under which policy version, on which signals, the
//! rationale and the outcome, and a snapshot of the inputs as they were. Records carry a
//! gapless `seq`, the previous record's hash and their own hash over a canonical
//! encoding of every other field, so an edit, a deletion or a reordering anywhere breaks
//! the chain at that point. [`verify_chain`] finds the first broken link.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::canonical;
use super::case::sha256_hex;
use super::framework::FrameworkRef;
use super::ids::NodeId;
use super::policy::{PolicyRef, Violation};
use super::values::text_enum;

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

text_enum!(
    /// What was decided.
    DecisionKind, "kind" {
        OpenCase => "open_case",
        DismissAlert => "dismiss_alert",
        MergeAlerts => "merge_alerts",
        AssignCase => "assign_case",
        TransitionCase => "transition_case",
        EscalateCase => "escalate_case",
        CloseCase => "close_case",
        ReopenCase => "reopen_case",
        DecideRequest => "decide_request",
        AutomatedDeny => "automated_deny",
        EmergencyAccess => "emergency_access",
        AcceptRisk => "accept_risk",
        RevokeException => "revoke_exception",
        PublishPolicy => "publish_policy",
        Genesis => "genesis",
        Change => "change",
        ImportRun => "import_run",
        ExpireEmergency => "expire_emergency",
        FulfilRequest => "fulfil_request",
        EvaluateControl => "evaluate_control",
        ControlResult => "control_result",
        LinkFinding => "link_finding",
        CloseFinding => "close_finding",
        StartCampaign => "start_campaign",
        AnswerReview => "answer_review",
        EscalateReview => "escalate_review",
    }
);

text_enum!(
    /// How it ended. `refused` is an attempt a rule stopped: it is recorded, and
    /// nothing else was written.
    Outcome, "outcome" {
        Opened => "opened",
        Dismissed => "dismissed",
        Merged => "merged",
        Assigned => "assigned",
        Transitioned => "transitioned",
        Escalated => "escalated",
        Closed => "closed",
        Reopened => "reopened",
        Approved => "approved",
        Rejected => "rejected",
        Denied => "denied",
        Granted => "granted",
        Accepted => "accepted",
        Revoked => "revoked",
        Published => "published",
        Applied => "applied",
        Requested => "requested",
        Started => "started",
        Completed => "completed",
        Failed => "failed",
        Refused => "refused",
        Passed => "passed",
        PassedByException => "passed_by_exception",
        NotApplicable => "not_applicable",
        Certified => "certified",
        Linked => "linked",
    }
);

impl From<super::values::DecideOutcome> for Outcome {
    /// What an approver's decision records.
    fn from(o: super::values::DecideOutcome) -> Outcome {
        use super::values::DecideOutcome;
        match o {
            DecideOutcome::Approve => Outcome::Approved,
            DecideOutcome::Reject => Outcome::Rejected,
            DecideOutcome::Escalate => Outcome::Escalated,
        }
    }
}

/// A decision about to be recorded: everything but its place in the chain.
#[derive(Debug, Clone)]
pub struct DecisionDraft {
    pub kind: DecisionKind,
    pub outcome: Outcome,
    pub actor: NodeId,
    pub subject: NodeId,
    pub case: Option<NodeId>,
    pub rationale: String,
    /// The alerts and evidence the decision relied on.
    pub signals: Vec<NodeId>,
    pub policy: Option<PolicyRef>,
    pub violation: Option<Violation>,
    pub refs: Vec<FrameworkRef>,
    /// The facts the decision was taken on, as they were then.
    pub inputs: serde_json::Value,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: NodeId,
    pub seq: u64,
    pub kind: DecisionKind,
    pub outcome: Outcome,
    pub actor: NodeId,
    pub subject: NodeId,
    pub case: Option<NodeId>,
    pub rationale: String,
    #[serde(default)]
    pub signals: Vec<NodeId>,
    pub policy: Option<NodeId>,
    pub policy_version: Option<u32>,
    pub policy_sha256: Option<String>,
    pub violation: Option<Violation>,
    #[serde(default)]
    pub refs: Vec<FrameworkRef>,
    /// Canonical JSON of the inputs.
    pub inputs: String,
    pub at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

/// The last link of the chain: its length and the hash of its last record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> ChainHead {
        ChainHead { seq: 0, hash: GENESIS_HASH.into() }
    }
}

/// Timestamps in the chain have microsecond precision (what every store keeps exactly).
pub fn chain_time(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

impl DecisionDraft {
    /// A decision taken under `policy` with no case, signals or violation yet; the
    /// caller adds its inputs (`DecisionDraft { inputs, ..DecisionDraft::under(...) }`).
    pub fn under(
        policy: &super::policy::Policy,
        kind: DecisionKind,
        outcome: Outcome,
        actor: &NodeId,
        subject: &NodeId,
        rationale: impl Into<String>,
    ) -> DecisionDraft {
        DecisionDraft {
            kind,
            outcome,
            actor: actor.clone(),
            subject: subject.clone(),
            case: None,
            rationale: rationale.into(),
            signals: vec![],
            policy: Some(policy.reference()),
            violation: None,
            refs: policy.refs.clone(),
            inputs: serde_json::Value::Null,
        }
    }

    /// Place the draft after `head`: the record to write.
    pub fn seal(self, id: NodeId, head: &ChainHead, at: DateTime<Utc>) -> Decision {
        let mut d = Decision {
            id,
            seq: head.seq + 1,
            kind: self.kind,
            outcome: self.outcome,
            actor: self.actor,
            subject: self.subject,
            case: self.case,
            rationale: self.rationale,
            signals: self.signals,
            policy: self.policy.as_ref().map(|p| p.id.clone()),
            policy_version: self.policy.as_ref().map(|p| p.version),
            policy_sha256: self.policy.map(|p| p.sha256),
            violation: self.violation,
            refs: self.refs,
            inputs: canonical::encode(&self.inputs),
            at: chain_time(at),
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        d.hash = d.compute_hash();
        d
    }
}

impl Decision {
    /// The canonical encoding of every field but `hash`.
    pub fn canonical(&self) -> String {
        let ids = |v: &[NodeId]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        canonical::encode(&json!({
            "id": self.id.to_string(),
            "seq": self.seq,
            "kind": self.kind.as_str(),
            "outcome": self.outcome.as_str(),
            "actor": self.actor.to_string(),
            "subject": self.subject.to_string(),
            "case": self.case.as_ref().map(ToString::to_string),
            "rationale": self.rationale,
            "signals": ids(&self.signals),
            "policy": self.policy.as_ref().map(ToString::to_string),
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "violation": self.violation,
            "refs": self.refs,
            "inputs": self.inputs,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "prev_hash": self.prev_hash,
        }))
    }

    pub fn compute_hash(&self) -> String {
        sha256_hex(self.canonical().as_bytes())
    }

    pub fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: self.hash.clone() }
    }
}

/// The first place a chain fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The position where the break was found (1-based, as `seq` should be).
    pub seq: u64,
    /// The record found there, if any.
    pub decision: Option<NodeId>,
    pub problem: String,
}

/// The result of recomputing a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub length: u64,
    pub head_hash: String,
    pub first_broken: Option<BrokenLink>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Recompute a chain: `records` ordered by `seq`, `head` as the store's chain head
/// recorded it. Reports the first broken link: a gap, a repeated or reordered `seq`, a
/// `prev_hash` that does not match its predecessor, a record whose content no longer
/// matches its hash, or records missing after the last one found.
pub fn verify_chain(records: &[Decision], head: &ChainHead) -> ChainReport {
    let mut prev = ChainHead::genesis();
    let broken = |seq: u64, d: Option<&Decision>, problem: String| BrokenLink {
        seq,
        decision: d.map(|d| d.id.clone()),
        problem,
    };
    for d in records {
        let expected = prev.seq + 1;
        let fault = if d.seq > expected {
            Some(broken(
                expected,
                Some(d),
                format!("decision #{expected} is missing: the next record found is #{}", d.seq),
            ))
        } else if d.seq < expected {
            Some(broken(
                expected,
                Some(d),
                format!("decision #{} appears again or out of order after #{}", d.seq, prev.seq),
            ))
        } else if d.prev_hash != prev.hash {
            Some(broken(
                expected,
                Some(d),
                format!(
                    "its prev_hash does not match the hash of decision #{}: records were reordered, removed or altered",
                    prev.seq
                ),
            ))
        } else if d.compute_hash() != d.hash {
            Some(broken(expected, Some(d), "its content no longer matches its hash: the record was altered".into()))
        } else {
            None
        };
        if let Some(fault) = fault {
            return ChainReport {
                length: records.len() as u64,
                head_hash: head.hash.clone(),
                first_broken: Some(fault),
            };
        }
        prev = d.head();
    }
    let first_broken = if head.seq > prev.seq {
        Some(broken(
            prev.seq + 1,
            None,
            format!(
                "the chain head records {} decisions, but only {} are present: the last ones were deleted",
                head.seq, prev.seq
            ),
        ))
    } else if head.seq < prev.seq || head.hash != prev.hash {
        Some(broken(prev.seq, None, "the chain head does not match the last decision".into()))
    } else {
        None
    };
    ChainReport { length: records.len() as u64, head_hash: head.hash.clone(), first_broken }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Table;

    fn chain(n: usize) -> (Vec<Decision>, ChainHead) {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        for i in 0..n {
            let d = DecisionDraft {
                kind: DecisionKind::DecideRequest,
                outcome: Outcome::Approved,
                actor: NodeId::generate(Table::Person),
                subject: NodeId::generate(Table::Request),
                case: None,
                rationale: format!("reason {i}"),
                signals: vec![],
                policy: None,
                violation: None,
                refs: vec![],
                inputs: json!({"i": i, "nested": {"b": 1, "a": 2}}),
            }
            .seal(NodeId::generate(Table::Decision), &head, Utc::now());
            head = d.head();
            out.push(d);
        }
        (out, head)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (c, head) = chain(5);
        let r = verify_chain(&c, &head);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.length, 5);
        assert!(verify_chain(&[], &ChainHead::genesis()).ok());
    }

    #[test]
    fn an_edit_is_caught_at_the_edited_record() {
        let (mut c, head) = chain(5);
        c[2].rationale = "rewritten".into();
        assert_eq!(verify_chain(&c, &head).first_broken.unwrap().seq, 3);
    }

    #[test]
    fn a_deletion_is_caught_in_the_middle_and_at_the_end() {
        let (mut c, head) = chain(5);
        let mut middle = c.clone();
        middle.remove(1);
        let b = verify_chain(&middle, &head).first_broken.unwrap();
        assert_eq!(b.seq, 2);
        assert!(b.problem.contains("missing"));
        c.pop();
        let b = verify_chain(&c, &head).first_broken.unwrap();
        assert_eq!(b.seq, 5);
        assert!(b.problem.contains("deleted"));
    }

    #[test]
    fn a_reordering_is_caught() {
        let (mut c, head) = chain(5);
        let (a, b) = (c[1].seq, c[3].seq);
        c[1].seq = b;
        c[3].seq = a;
        c.sort_by_key(|d| d.seq);
        assert_eq!(verify_chain(&c, &head).first_broken.unwrap().seq, 2);
    }

    #[test]
    fn timestamps_keep_microseconds_only() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z").unwrap().with_timezone(&Utc);
        assert_eq!(chain_time(t).to_rfc3339_opts(SecondsFormat::Nanos, true), "2026-01-02T03:04:05.123456000Z");
    }
}
