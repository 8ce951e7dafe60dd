//! GraphQL enums mirroring the domain's closed sets of values.
//!
//! The domain enums stay free of GraphQL; each one here converts both ways, and its
//! doc comment is the description the published schema carries.

use async_graphql::Enum;
use graph_model as gm;

macro_rules! gql_enum {
    ($(#[$meta:meta])* $name:ident => $domain:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl From<$name> for $domain {
            fn from(v: $name) -> $domain {
                match v { $($name::$variant => <$domain>::$variant),+ }
            }
        }

        impl From<$domain> for $name {
            fn from(v: $domain) -> $name {
                match v { $(<$domain>::$variant => $name::$variant),+ }
            }
        }
    };
}

gql_enum!(
    /// What kind of non-human identity.
    NhiKind => gm::NhiKind { ServiceAccount, ApiKey, OauthClient, Token, Certificate, SshKey, AiAgent, WorkloadIdentity }
);
gql_enum!(
    /// Lifecycle status of an NHI.
    NhiStatus => gm::NhiStatus { Active, Disabled, Revoked, Decommissioned }
);
gql_enum!(
    /// What kind of credential.
    SecretKind => gm::SecretKind { ApiKey, Password, Token, Certificate, SshKey, OauthSecret, PrivateKey, Other }
);
gql_enum!(
    /// What kind of system.
    SystemKind => gm::SystemKind { Application, Database, Vault, Repository, CloudAccount, Saas, Cluster, Pipeline }
);
gql_enum!(
    /// Deployment environment.
    Environment => gm::Environment { Production, Staging, Development, Test }
);
/// Business criticality; TIER0 is the most critical.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criticality {
    #[graphql(name = "TIER0")]
    Tier0,
    #[graphql(name = "TIER1")]
    Tier1,
    #[graphql(name = "TIER2")]
    Tier2,
    #[graphql(name = "TIER3")]
    Tier3,
}

impl From<Criticality> for gm::Criticality {
    fn from(v: Criticality) -> gm::Criticality {
        match v {
            Criticality::Tier0 => gm::Criticality::Tier0,
            Criticality::Tier1 => gm::Criticality::Tier1,
            Criticality::Tier2 => gm::Criticality::Tier2,
            Criticality::Tier3 => gm::Criticality::Tier3,
        }
    }
}

impl From<gm::Criticality> for Criticality {
    fn from(v: gm::Criticality) -> Criticality {
        match v {
            gm::Criticality::Tier0 => Criticality::Tier0,
            gm::Criticality::Tier1 => Criticality::Tier1,
            gm::Criticality::Tier2 => Criticality::Tier2,
            gm::Criticality::Tier3 => Criticality::Tier3,
        }
    }
}
gql_enum!(
    /// Level of access on a system, from least to most.
    Privilege => gm::Privilege { Read, Write, Admin }
);
gql_enum!(
    /// How one NHI acts as another.
    AssumeMechanism => gm::AssumeMechanism { RoleAssumption, Impersonation, Delegation }
);
gql_enum!(
    /// What a person or machine principal may do.
    Role => gm::Role { Viewer, Investigator, Approver, Admin, Auditor, Ingest }
);
gql_enum!(
    /// The kinds of relation in the identity graph.
    EdgeKind => gm::EdgeKind { Owns, MemberOf, Holds, CanAccess, AuthenticatesTo, StoredIn, Assumes, DependsOn }
);

gql_enum!(
    /// How bad a signal or a case is.
    Severity => gm::Severity { Critical, High, Medium, Low }
);
gql_enum!(
    /// Where an alert stands: new, promoted into a case, or dismissed with a reason.
    AlertStatus => gm::AlertStatus { New, Promoted, Dismissed }
);
gql_enum!(
    /// The states of a case. CLOSED is reached by `closeCase` and left by `reopenCase`.
    CaseStatus => gm::CaseStatus { Open, Triage, Investigating, Escalated, Contained, Remediated, Closed }
);
gql_enum!(
    /// How a case ended.
    Resolution => gm::Resolution { TruePositive, FalsePositive, Benign, Duplicate, RiskAccepted }
);
gql_enum!(
    /// Work inside a case.
    TaskKind => gm::TaskKind { Contain, Rotate, Revoke, Verify, Notify, Investigate, Other }
);
gql_enum!(
    TaskStatus => gm::TaskStatus { Open, Done, Cancelled }
);
gql_enum!(
    /// What an exhibit is.
    EvidenceKind => gm::EvidenceKind {
        TokenMetadata, RotationStatus, VaultConfigSnapshot, AccessHistory, RepositoryHistory, TicketReference, Note,
        GraphSnapshot
    }
);
gql_enum!(
    /// What a request proposes. CHANGE: a change to a governed fact (a role, a person's
    /// or an NHI's status, a system's criticality, access, a token, a policy) that waits
    /// for a second person; see `change` on the request.
    RequestKind => gm::RequestKind { GrantAccess, RotateSecret, RevokeNhi, ReducePrivilege, Offboard, Exception, EmergencyAccess, Change }
);
gql_enum!(
    /// Where a request stands. DENIED: refused by an automated check, open to a risk
    /// acceptance; EMERGENCY_ACTIVE: break-glass access in force, awaiting approval;
    /// EXPIRED: break-glass access the server closed, unapproved past its window;
    /// FULFILLED: an approved rotation seen done (the secret rotated after the approval).
    RequestStatus => gm::RequestStatus { Pending, Escalated, Denied, Approved, Rejected, EmergencyActive, Expired, Fulfilled }
);
gql_enum!(
    /// What an approver decides.
    DecideOutcome => gm::DecideOutcome { Approve, Reject, Escalate }
);
gql_enum!(
    ExceptionStatus => gm::ExceptionStatus { Active, Revoked }
);
gql_enum!(
    /// The kinds of policy rule. DECIDER_ROLE_REQUIRED, SUBJECT_CANNOT_APPROVE,
    /// ESCALATION_TARGET, ESCALATOR_CANNOT_APPROVE, MACHINE_CANNOT_DECIDE and
    /// OWN_TOKEN_ONLY, OWNER_CANNOT_CLOSE_FINDING belong to the engine's floor, in force
    /// under every policy version (as is REQUESTER_CANNOT_APPROVE); a policy cannot name them.
    RuleKind => gm::RuleKind {
        RequesterCannotApprove, OwnerCannotApprove, DistinctApprovers, ApproverRoleRequired, MaxApprovalLifetime,
        EmergencyPostApproval, GrantNeedsActiveOwner, OverrideNeedsControlOwner, DeciderRoleRequired,
        SubjectCannotApprove, EscalationTarget, EscalatorCannotApprove, MachineCannotDecide, OwnTokenOnly,
        OwnerCannotCloseFinding
    }
);
gql_enum!(
    /// What was decided.
    DecisionKind => gm::DecisionKind {
        OpenCase, DismissAlert, MergeAlerts, AssignCase, TransitionCase, EscalateCase, CloseCase, ReopenCase,
        DecideRequest, AutomatedDeny, EmergencyAccess, AcceptRisk, RevokeException, PublishPolicy, Genesis, Change,
        ImportRun, ExpireEmergency, FulfilRequest, EvaluateControl, ControlResult, LinkFinding, CloseFinding,
        StartCampaign, AnswerReview, EscalateReview
    }
);
gql_enum!(
    /// How a decision ended. REFUSED: a policy rule stopped it; nothing else was written.
    /// APPLIED: a governed change took effect at once; REQUESTED: it waits for a second
    /// person, in the request the decision filed. STARTED, COMPLETED, FAILED: an import
    /// run of a feed, or (COMPLETED) a control version's first evaluation. PASSED, FAILED,
    /// PASSED_BY_EXCEPTION, NOT_APPLICABLE: a subject's standing against a control changed.
    /// LINKED: a record was linked to a finding as its remediation.
    Outcome => gm::Outcome {
        Opened, Dismissed, Merged, Assigned, Transitioned, Escalated, Closed, Reopened, Approved, Rejected, Denied,
        Granted, Accepted, Revoked, Published, Applied, Requested, Started, Completed, Failed, Refused, Passed,
        PassedByException, NotApplicable, Linked, Certified
    }
);

gql_enum!(
    /// Where a subject stands against a control. PASSED_BY_EXCEPTION: it fails, and an
    /// active exception waives the control for it. NOT_APPLICABLE: the control judged it
    /// once and no longer reaches it (decommissioned, out of scope, revoked).
    ControlStatus => gm::domain::control::ControlStatus { Pass, Fail, PassedByException, NotApplicable }
);
gql_enum!(
    /// The kinds of check a control runs.
    CheckKind => gm::domain::control::CheckKind {
        SecretRotated, ActiveOwner, PrivilegedAccessGoverned, UnusedAccess, Certified, ExceptionReviewed, EmergencyApproved
    }
);
gql_enum!(
    /// OPEN until a person closes it (with evidence), which needs the check to pass
    /// again (remediated) or the failure to be waived by an exception.
    FindingStatus => gm::domain::control::FindingStatus { Open, Closed }
);
gql_enum!(
    /// A secret scanner's report format: gitleaks JSON, TruffleHog JSON lines,
    /// detect-secrets JSON.
    ScannerFormat => gm::scanners::ScannerFormat { Gitleaks, Trufflehog, DetectSecrets }
);
