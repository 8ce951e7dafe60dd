//! Governed changes: the facts nobody changes alone, and how each change is routed.
//!
//! Who can reach what (`can_access`, `assumes`, `holds`), who holds which role and who is
//! active, an NHI's status, a system's criticality and environment, ownership and team
//! membership, the policy and API tokens are *governed facts*. Every change to one is a
//! [`Change`], whatever mutation asked for it. [`assess`] decides, from the facts as they
//! are now and the actor's roles, whether the change applies at once (and is recorded) or
//! waits for a second person; [`check_decider`] decides whether someone may decide such
//! a waiting change. Both are pure: the store reads the facts, and applies what they say
//! in the transaction that seals the decision.
//!
//! The rules here are the *floor*: no policy version can remove them. Granting ADMIN,
//! APPROVER or AUDITOR, granting oneself any role, reactivating a person or an NHI,
//! lowering a system's criticality or taking it out of production, privileged access,
//! delegation (`assumes`), a token with more than the INGEST scope or for a machine
//! principal, and every policy version all wait for a second person; the requester of a
//! change and the person it is about never decide it; role, person, token, system and
//! policy changes are decided by an admin, access by an approver. A token for another
//! person is refused (a person makes their own), and a machine principal never holds a
//! deciding role.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::control::ControlDraft;
use super::edges::{EdgeId, EdgeKind, NewEdge};
use super::ids::NodeId;
use super::policy::{Policy, PolicyDraft, RuleKind, Violation};
use super::values::{Criticality, DecideOutcome, Environment, NhiStatus, Privilege, Role, TargetFacts, ValueError};

/// The roles that only a second admin can grant.
pub const GUARDED_ROLES: &[Role] = &[Role::Admin, Role::Approver, Role::Auditor];

/// The roles that decide, which a machine principal never holds: decisions are made by
/// people.
pub const DECIDING_ROLES: &[Role] = &[Role::Admin, Role::Approver];

pub use super::edges::GOVERNED_EDGES;

/// One change to a governed fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Give a person roles and take others away.
    Roles { person: NodeId, grant: Vec<Role>, revoke: Vec<Role> },
    /// Mark a person active (back) or inactive (gone).
    Active { person: NodeId, active: bool },
    /// Change an NHI's lifecycle status.
    NhiStatus { nhi: NodeId, status: NhiStatus },
    /// Change how critical a system is, or its environment.
    SystemRisk { system: NodeId, criticality: Option<Criticality>, environment: Option<Environment> },
    /// Open a governed edge.
    Relate { edge: NewEdge },
    /// Close an open governed edge. `rolls_back` names the decision that stood behind
    /// it (the grant approved, the change applied, the baseline adopted): closing it is
    /// the rollback of that decision, and the record says so.
    Unrelate {
        edge: EdgeId,
        kind: EdgeKind,
        from: NodeId,
        to: NodeId,
        #[serde(default)]
        rolls_back: Option<NodeId>,
    },
    /// Issue an API token. The requester holds the token text already; only its
    /// SHA-256 is here, and the token works once the change is applied.
    Token {
        key: String,
        principal: NodeId,
        name: String,
        scopes: Vec<Role>,
        expires_at: Option<DateTime<Utc>>,
        token_sha256: String,
    },
    /// Adopt the open edges carrying governed facts that no decision stands behind (of
    /// one feed `source`, or those no feed opened) as the governed baseline, under a
    /// pre-assigned `baseline:` id. `edges` and `digest` (SHA-256 of their sorted ids)
    /// say exactly what is adopted: if the edges differ when it is applied, it is not.
    AdoptBaseline { id: NodeId, source: Option<String>, edges: u64, digest: String },
    /// Revoke an API token: applies at once, whoever asks may.
    RevokeToken { key: String, principal: NodeId },
    /// Publish a policy version under a pre-assigned id.
    Policy { id: NodeId, draft: PolicyDraft },
    /// Publish a control version under a pre-assigned id.
    Control { id: NodeId, draft: ControlDraft },
}

impl Change {
    /// The record the change is about: what its decision names as subject.
    pub fn subject(&self) -> &NodeId {
        match self {
            Change::Roles { person, .. } | Change::Active { person, .. } => person,
            Change::NhiStatus { nhi, .. } => nhi,
            Change::SystemRisk { system, .. } => system,
            // An edge is about the identity whose access it is, or about what is owned
            // (ownership) and the team joined (membership).
            Change::Relate { edge } => match edge.kind {
                EdgeKind::Owns | EdgeKind::MemberOf => &edge.to,
                _ => &edge.from,
            },
            Change::Unrelate { kind, from, to, .. } => match kind {
                EdgeKind::Owns | EdgeKind::MemberOf => to,
                _ => from,
            },
            Change::Token { principal, .. } | Change::RevokeToken { principal, .. } => principal,
            Change::Policy { id, .. } | Change::AdoptBaseline { id, .. } | Change::Control { id, .. } => id,
        }
    }

    /// The person the change is about, who may never decide it.
    pub fn about_person(&self) -> Option<&NodeId> {
        match self {
            Change::Roles { person, .. } | Change::Active { person, .. } => Some(person),
            Change::Token { principal, .. } => Some(principal),
            _ => None,
        }
    }

    /// The role that decides the change when it waits for a second person: access is
    /// for approvers, everything else for admins.
    pub fn decider(&self) -> Role {
        match self {
            Change::Relate { .. } | Change::Unrelate { .. } => Role::Approver,
            _ => Role::Admin,
        }
    }

    /// A short description, for the decision's summary and the request's justification.
    pub fn describe(&self) -> String {
        let roles = |r: &[Role]| r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
        match self {
            Change::Roles { person, grant, revoke } => match (grant.is_empty(), revoke.is_empty()) {
                (false, true) => format!("grant {} to {person}", roles(grant)),
                (true, false) => format!("revoke {} from {person}", roles(revoke)),
                _ => format!("grant {} to and revoke {} from {person}", roles(grant), roles(revoke)),
            },
            Change::Active { person, active: true } => format!("reactivate {person}"),
            Change::Active { person, active: false } => format!("deactivate {person}"),
            Change::NhiStatus { nhi, status } => format!("set {nhi} {status}"),
            Change::SystemRisk { system, criticality, environment } => {
                let mut parts = vec![];
                if let Some(c) = criticality {
                    parts.push(format!("criticality {c}"));
                }
                if let Some(e) = environment {
                    parts.push(format!("environment {e}"));
                }
                format!("set {system} {}", parts.join(", "))
            }
            Change::Relate { edge } => match edge.attrs.privilege {
                Some(p) => format!("open {} {} -> {} ({p})", edge.kind, edge.from, edge.to),
                None => format!("open {} {} -> {}", edge.kind, edge.from, edge.to),
            },
            Change::Unrelate { edge, rolls_back: Some(d), .. } => format!("close {edge}, rolling back {d}"),
            Change::Unrelate { edge, .. } => format!("close {edge}"),
            Change::Token { principal, scopes, name, .. } => {
                format!("issue API token '{name}' for {principal} with {}", roles(scopes))
            }
            Change::RevokeToken { key, principal } => format!("revoke API token {key} of {principal}"),
            Change::AdoptBaseline { source, edges, .. } => match source {
                Some(s) => format!("adopt {edges} ungoverned edge(s) of {s} as the governed baseline"),
                None => format!("adopt {edges} ungoverned edge(s) no feed opened as the governed baseline"),
            },
            Change::Policy { draft, .. } => format!("publish policy '{}'", draft.name),
            Change::Control { draft, .. } => format!("publish control {} '{}'", draft.key, draft.title),
        }
    }
}

/// A person's roles and whether they are active, as stored now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonFacts {
    pub roles: Vec<Role>,
    pub active: bool,
    /// A machine principal (fixed at creation, so read but never re-checked).
    pub machine: bool,
}

/// Who owns a node: the owning people and teams in force, and the people behind them
/// (direct owners and the members of owning teams) with whether each is active.
#[derive(Debug, Clone, Default)]
pub struct OwnerFacts {
    pub owners: Vec<NodeId>,
    pub people: Vec<(NodeId, bool)>,
}

impl OwnerFacts {
    pub fn includes(&self, person: &NodeId) -> bool {
        self.people.iter().any(|(p, _)| p == person)
    }

    pub fn has_active_owner(&self) -> bool {
        self.people.iter().any(|(_, active)| *active)
    }
}

/// What the store reads before a change is assessed. Each field is filled for the
/// changes that need it; the store re-checks each inside the transaction that applies
/// the change.
#[derive(Debug, Clone, Default)]
pub struct ChangeFacts {
    /// The person the change is about (roles, activity, a token's principal).
    pub person: Option<PersonFacts>,
    /// The NHI's status now.
    pub nhi_status: Option<NhiStatus>,
    /// The system changed, or the target of an access edge.
    pub system: Option<TargetFacts>,
    /// For an access edge: does its NHI have an active owner?
    pub subject_has_active_owner: Option<bool>,
    /// For a baseline: the ungoverned edges as they are now (count, digest).
    pub ungoverned: Option<(u64, String)>,
    /// For a control: the latest version of its key (0 for a new key).
    pub control_version: Option<u32>,
}

/// How a change goes ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Applied at once, with the decision that records it.
    Apply,
    /// Filed as a request that someone else holding `decider` must approve.
    SecondPerson { reason: String, decider: Role },
}

/// Why a change cannot even be asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The change is malformed or changes nothing: `BAD_USER_INPUT`.
    Invalid(ValueError),
    /// A rule forbids it outright: recorded as a refused decision.
    Rule(Violation),
}

impl From<ValueError> for Refusal {
    fn from(e: ValueError) -> Refusal {
        Refusal::Invalid(e)
    }
}

fn second(reason: impl Into<String>, decider: Role) -> Result<Route, Refusal> {
    Ok(Route::SecondPerson { reason: reason.into(), decider })
}

fn missing(what: &str) -> Refusal {
    Refusal::Invalid(ValueError::new("id", format!("no facts were read about the {what}")))
}

/// Decide how `change`, asked for by `actor`, goes ahead.
pub fn assess(change: &Change, actor: &NodeId, facts: &ChangeFacts, policy: &Policy) -> Result<Route, Refusal> {
    match change {
        Change::Roles { person, grant, revoke } => {
            let now = facts.person.as_ref().ok_or_else(|| missing("person"))?;
            assess_roles(person, grant, revoke, now, actor, policy)
        }
        Change::Active { active, .. } => {
            let now = facts.person.as_ref().ok_or_else(|| missing("person"))?;
            if now.active == *active {
                let state = if *active { "active" } else { "inactive" };
                return Err(ValueError::new("active", format!("the person is {state} already")).into());
            }
            if *active {
                return second("reactivating a person needs a second admin", Role::Admin);
            }
            Ok(Route::Apply)
        }
        Change::NhiStatus { status, .. } => {
            let now = facts.nhi_status.ok_or_else(|| missing("NHI"))?;
            if now == *status {
                return Err(ValueError::new("status", format!("the NHI is {status} already")).into());
            }
            if *status == NhiStatus::Active {
                return second(format!("reactivating a {now} NHI needs a second admin"), Role::Admin);
            }
            Ok(Route::Apply)
        }
        Change::SystemRisk { criticality, environment, .. } => {
            let now = facts.system.ok_or_else(|| missing("system"))?;
            assess_system_risk(*criticality, *environment, now)
        }
        Change::Relate { edge } => match edge.kind {
            EdgeKind::CanAccess => {
                let target = facts.system.ok_or_else(|| missing("target system"))?;
                let privilege = edge.attrs.privilege.unwrap_or(Privilege::Read);
                if let Some(v) = policy.automated_deny_access(facts.subject_has_active_owner.unwrap_or(false)) {
                    return Err(Refusal::Rule(v));
                }
                if target.privileged(privilege) {
                    return second("privileged access needs an approved request", Role::Approver);
                }
                Ok(Route::Apply)
            }
            EdgeKind::Assumes => second("one NHI acting as another needs an approver", Role::Approver),
            _ => Ok(Route::Apply),
        },
        Change::Unrelate { .. } | Change::RevokeToken { .. } => Ok(Route::Apply),
        Change::Token { principal, scopes, .. } => {
            let holder = facts.person.as_ref().ok_or_else(|| missing("principal"))?;
            assess_token(principal, scopes, holder, actor, policy)
        }
        Change::Policy { draft, .. } => {
            draft.check()?;
            second("a policy version needs a second admin", Role::Admin)
        }
        Change::Control { draft, .. } => {
            draft.check()?;
            second("a control version needs a second admin", Role::Admin)
        }
        Change::AdoptBaseline { edges, digest, .. } => {
            let now = facts.ungoverned.as_ref().ok_or_else(|| missing("ungoverned edges"))?;
            assess_baseline(*edges, digest, now)
        }
    }
}

/// A rule's refusal under `policy`, recorded as a refused decision.
fn refuse(policy: &Policy, rule: RuleKind, message: String) -> Refusal {
    Refusal::Rule(Violation { rule, policy_version: policy.version, message })
}

/// Roles change only where they would; a machine never holds a deciding role; a
/// guarded role, or any role granted to oneself, needs a second admin.
fn assess_roles(
    person: &NodeId,
    grant: &[Role],
    revoke: &[Role],
    now: &PersonFacts,
    actor: &NodeId,
    policy: &Policy,
) -> Result<Route, Refusal> {
    if grant.is_empty() && revoke.is_empty() {
        return Err(ValueError::new("roles", "the roles given are the roles held: nothing changes").into());
    }
    if let Some(r) = grant.iter().find(|r| now.roles.contains(r)) {
        return Err(ValueError::new("roles", format!("{person} holds {r} already")).into());
    }
    if let Some(r) = revoke.iter().find(|r| !now.roles.contains(r)) {
        return Err(ValueError::new("roles", format!("{person} does not hold {r}")).into());
    }
    if let Some(r) = grant.iter().find(|r| now.machine && DECIDING_ROLES.contains(r)) {
        return Err(refuse(
            policy,
            RuleKind::MachineCannotDecide,
            format!("{person} is a machine principal and cannot hold {r}: decisions are made by people"),
        ));
    }
    if let Some(r) = grant.iter().find(|r| GUARDED_ROLES.contains(r)) {
        return second(format!("granting {r} needs a second admin"), Role::Admin);
    }
    if !grant.is_empty() && person == actor {
        return second("nobody grants themselves a role", Role::Admin);
    }
    Ok(Route::Apply)
}

/// Lowering a system's criticality or taking it out of production needs a second admin.
fn assess_system_risk(
    criticality: Option<Criticality>,
    environment: Option<Environment>,
    now: TargetFacts,
) -> Result<Route, Refusal> {
    if criticality.is_none_or(|c| c == now.criticality) && environment.is_none_or(|e| e == now.environment) {
        return Err(ValueError::new("criticality", "the system is so already: nothing changes").into());
    }
    if criticality.is_some_and(|c| c > now.criticality) {
        return second("lowering a system's criticality needs a second admin", Role::Admin);
    }
    if now.environment == Environment::Production && environment.is_some_and(|e| e != Environment::Production) {
        return second("taking a system out of production needs a second admin", Role::Admin);
    }
    Ok(Route::Apply)
}

/// A token carries roles its active principal holds; a person's tokens are their own;
/// a machine's, or one beyond the ingest scope, needs a second admin.
fn assess_token(
    principal: &NodeId,
    scopes: &[Role],
    holder: &PersonFacts,
    actor: &NodeId,
    policy: &Policy,
) -> Result<Route, Refusal> {
    if scopes.is_empty() {
        return Err(ValueError::new("scopes", "a token needs at least one scope").into());
    }
    if !holder.active {
        return Err(ValueError::new("principalId", format!("{principal} is not active")).into());
    }
    if let Some(r) = scopes.iter().find(|r| !holder.roles.contains(r)) {
        return Err(ValueError::new("scopes", format!("{principal} does not hold the role {r}")).into());
    }
    if principal != actor && !holder.machine {
        return Err(refuse(
            policy,
            RuleKind::OwnTokenOnly,
            format!("{principal} is a person: a person's tokens are made by that person, for their own use"),
        ));
    }
    if principal != actor {
        return second("a token for a machine principal needs a second admin", Role::Admin);
    }
    if scopes.iter().any(|r| *r != Role::Ingest) {
        return second("a token with more than the ingest scope needs a second admin", Role::Admin);
    }
    Ok(Route::Apply)
}

/// A baseline adopts the ungoverned edges as they were read, if they are still so.
fn assess_baseline(edges: u64, digest: &str, now: &(u64, String)) -> Result<Route, Refusal> {
    let (now_edges, now_digest) = now;
    if edges == 0 || *now_edges == 0 {
        return Err(ValueError::new("source", "there are no ungoverned edges to adopt").into());
    }
    if (*now_edges, now_digest.as_str()) != (edges, digest) {
        return Err(ValueError::new(
            "digest",
            format!(
                "the ungoverned edges changed since they were read (now {now_edges}, digest {now_digest}): read ungovernedAccess again"
            ),
        )
        .into());
    }
    second("adopting a baseline needs a second admin", Role::Admin)
}

/// Who may decide a change that waits for a second person: someone holding the
/// change's decider role, who is neither its requester nor (to approve) the person it
/// is about. These rules are the floor, in force under every policy version.
pub fn check_decider(
    change: &Change,
    outcome: DecideOutcome,
    requester: &NodeId,
    actor: &NodeId,
    actor_roles: &[Role],
    policy: &Policy,
) -> Result<(), Violation> {
    let refuse = |rule, message: String| Violation { rule, policy_version: policy.version, message };
    let decider = change.decider();
    if !actor_roles.contains(&decider) {
        return Err(refuse(RuleKind::DeciderRoleRequired, format!("this change is decided by the {decider} role")));
    }
    if outcome != DecideOutcome::Approve {
        return Ok(());
    }
    if actor == requester {
        return Err(refuse(RuleKind::RequesterCannotApprove, "the requester cannot approve their own request".into()));
    }
    if change.about_person() == Some(actor) {
        return Err(refuse(RuleKind::SubjectCannotApprove, "nobody approves a change about themselves".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EdgeAttrs;
    use crate::domain::ids::Table;

    fn policy() -> Policy {
        let draft = PolicyDraft::baseline();
        Policy {
            id: NodeId::generate(Table::Policy),
            name: draft.name.clone(),
            version: 4,
            sha256: draft.sha256(4),
            description: draft.description,
            rules: draft.rules,
            refs: vec![],
            published_at: Utc::now(),
            published_by: None,
        }
    }

    fn person(roles: &[Role], active: bool) -> ChangeFacts {
        ChangeFacts {
            person: Some(PersonFacts { roles: roles.to_vec(), active, machine: false }),
            ..Default::default()
        }
    }

    fn system(criticality: Criticality, environment: Environment) -> ChangeFacts {
        ChangeFacts {
            system: Some(TargetFacts { criticality, environment }),
            subject_has_active_owner: Some(true),
            ..Default::default()
        }
    }

    fn waits(r: Result<Route, Refusal>) -> Role {
        match r {
            Ok(Route::SecondPerson { decider, .. }) => decider,
            other => panic!("expected a second person, got {other:?}"),
        }
    }

    fn id(t: Table) -> NodeId {
        NodeId::generate(t)
    }

    #[test]
    fn granting_a_guarded_role_waits_for_a_second_admin() {
        let (sam, p) = (id(Table::Person), policy());
        for role in GUARDED_ROLES {
            let c = Change::Roles { person: id(Table::Person), grant: vec![*role], revoke: vec![] };
            assert_eq!(waits(assess(&c, &sam, &person(&[], true), &p)), Role::Admin);
        }
        let viewer = Change::Roles { person: id(Table::Person), grant: vec![Role::Viewer], revoke: vec![] };
        assert_eq!(assess(&viewer, &sam, &person(&[], true), &p), Ok(Route::Apply));
    }

    #[test]
    fn nobody_grants_themselves_even_a_small_role() {
        let sam = id(Table::Person);
        let c = Change::Roles { person: sam.clone(), grant: vec![Role::Viewer], revoke: vec![] };
        assert_eq!(waits(assess(&c, &sam, &person(&[Role::Admin], true), &policy())), Role::Admin);
        let drop = Change::Roles { person: sam.clone(), grant: vec![], revoke: vec![Role::Admin] };
        assert_eq!(assess(&drop, &sam, &person(&[Role::Admin], true), &policy()), Ok(Route::Apply));
    }

    #[test]
    fn a_change_that_changes_nothing_is_bad_input() {
        let c = Change::Roles { person: id(Table::Person), grant: vec![Role::Viewer], revoke: vec![] };
        assert!(matches!(
            assess(&c, &id(Table::Person), &person(&[Role::Viewer], true), &policy()),
            Err(Refusal::Invalid(_))
        ));
        let a = Change::Active { person: id(Table::Person), active: true };
        assert!(matches!(assess(&a, &id(Table::Person), &person(&[], true), &policy()), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn leaving_applies_at_once_and_coming_back_waits() {
        let p = policy();
        let off = Change::Active { person: id(Table::Person), active: false };
        assert_eq!(assess(&off, &id(Table::Person), &person(&[], true), &p), Ok(Route::Apply));
        let on = Change::Active { person: id(Table::Person), active: true };
        assert_eq!(waits(assess(&on, &id(Table::Person), &person(&[], false), &p)), Role::Admin);
        let nhi = |from| ChangeFacts { nhi_status: Some(from), ..Default::default() };
        let revive = Change::NhiStatus { nhi: id(Table::Nhi), status: NhiStatus::Active };
        assert_eq!(waits(assess(&revive, &id(Table::Person), &nhi(NhiStatus::Revoked), &p)), Role::Admin);
        let revoke = Change::NhiStatus { nhi: id(Table::Nhi), status: NhiStatus::Revoked };
        assert_eq!(assess(&revoke, &id(Table::Person), &nhi(NhiStatus::Active), &p), Ok(Route::Apply));
    }

    #[test]
    fn lowering_a_system_waits_and_raising_it_applies() {
        let p = policy();
        let s = id(Table::System);
        let lower = Change::SystemRisk { system: s.clone(), criticality: Some(Criticality::Tier3), environment: None };
        let facts = system(Criticality::Tier0, Environment::Production);
        assert_eq!(waits(assess(&lower, &id(Table::Person), &facts, &p)), Role::Admin);
        let raise = Change::SystemRisk { system: s.clone(), criticality: Some(Criticality::Tier0), environment: None };
        let facts = system(Criticality::Tier2, Environment::Production);
        assert_eq!(assess(&raise, &id(Table::Person), &facts, &p), Ok(Route::Apply));
        let out = Change::SystemRisk { system: s, criticality: None, environment: Some(Environment::Test) };
        assert_eq!(waits(assess(&out, &id(Table::Person), &facts, &p)), Role::Admin);
    }

    fn access(privilege: Privilege) -> Change {
        let attrs = EdgeAttrs { privilege: Some(privilege), ..Default::default() };
        Change::Relate {
            edge: NewEdge { kind: EdgeKind::CanAccess, from: id(Table::Nhi), to: id(Table::System), attrs },
        }
    }

    #[test]
    fn privileged_access_waits_for_an_approver_and_ordinary_access_applies() {
        let p = policy();
        let vault = system(Criticality::Tier0, Environment::Production);
        assert_eq!(waits(assess(&access(Privilege::Admin), &id(Table::Person), &vault, &p)), Role::Approver);
        assert_eq!(assess(&access(Privilege::Read), &id(Table::Person), &vault, &p), Ok(Route::Apply));
        let orphan = ChangeFacts { subject_has_active_owner: Some(false), ..vault };
        match assess(&access(Privilege::Read), &id(Table::Person), &orphan, &p) {
            Err(Refusal::Rule(v)) => assert_eq!(v.rule, RuleKind::GrantNeedsActiveOwner),
            other => panic!("expected the active-owner rule, got {other:?}"),
        }
    }

    #[test]
    fn tokens_beyond_ingest_or_for_machines_wait_and_tokens_for_other_people_are_refused() {
        let (sam, p) = (id(Table::Person), policy());
        let token = |principal: &NodeId, scopes: &[Role]| Change::Token {
            key: "k".into(),
            principal: principal.clone(),
            name: "ci".into(),
            scopes: scopes.to_vec(),
            expires_at: None,
            token_sha256: "h".into(),
        };
        let me = person(&[Role::Admin, Role::Ingest], true);
        assert_eq!(assess(&token(&sam, &[Role::Ingest]), &sam, &me, &p), Ok(Route::Apply));
        assert_eq!(waits(assess(&token(&sam, &[Role::Admin]), &sam, &me, &p)), Role::Admin);
        let (jules, ci) = (id(Table::Person), id(Table::Person));
        let machine = |roles: &[Role]| ChangeFacts {
            person: Some(PersonFacts { roles: roles.to_vec(), active: true, machine: true }),
            ..Default::default()
        };
        assert_eq!(waits(assess(&token(&ci, &[Role::Ingest]), &sam, &machine(&[Role::Ingest]), &p)), Role::Admin);
        match assess(&token(&jules, &[Role::Approver]), &sam, &person(&[Role::Approver], true), &p) {
            Err(Refusal::Rule(v)) => assert_eq!(v.rule, RuleKind::OwnTokenOnly),
            other => panic!("a token for another person is refused, got {other:?}"),
        }
        assert!(matches!(
            assess(&token(&ci, &[Role::Approver]), &sam, &machine(&[Role::Ingest]), &p),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn a_machine_principal_never_holds_a_deciding_role() {
        let (sam, ci, p) = (id(Table::Person), id(Table::Person), policy());
        let facts = ChangeFacts {
            person: Some(PersonFacts { roles: vec![Role::Ingest], active: true, machine: true }),
            ..Default::default()
        };
        for role in DECIDING_ROLES {
            let grant = Change::Roles { person: ci.clone(), grant: vec![*role], revoke: vec![] };
            match assess(&grant, &sam, &facts, &p) {
                Err(Refusal::Rule(v)) => assert_eq!(v.rule, RuleKind::MachineCannotDecide),
                other => panic!("{role} for a machine is refused, got {other:?}"),
            }
        }
        // Reading evidence is a machine's job (a GRC tool): the auditor role waits as for anyone.
        let auditor = Change::Roles { person: ci, grant: vec![Role::Auditor], revoke: vec![] };
        assert_eq!(waits(assess(&auditor, &sam, &facts, &p)), Role::Admin);
    }

    #[test]
    fn every_policy_version_waits() {
        let c = Change::Policy { id: id(Table::Policy), draft: PolicyDraft::baseline() };
        assert_eq!(waits(assess(&c, &id(Table::Person), &ChangeFacts::default(), &policy())), Role::Admin);
    }

    #[test]
    fn a_baseline_waits_and_adopts_only_what_was_read() {
        let c = |edges, digest: &str| Change::AdoptBaseline {
            id: id(Table::Baseline),
            source: Some("aws".into()),
            edges,
            digest: digest.into(),
        };
        let now = ChangeFacts { ungoverned: Some((3, "d1".into())), ..Default::default() };
        assert_eq!(waits(assess(&c(3, "d1"), &id(Table::Person), &now, &policy())), Role::Admin);
        assert!(matches!(assess(&c(3, "d0"), &id(Table::Person), &now, &policy()), Err(Refusal::Invalid(_))));
        let none = ChangeFacts { ungoverned: Some((0, "e".into())), ..Default::default() };
        assert!(matches!(assess(&c(0, "e"), &id(Table::Person), &none, &policy()), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn the_floor_names_who_may_decide() {
        let p = policy();
        let (requester, jules, kim) = (id(Table::Person), id(Table::Person), id(Table::Person));
        let grant = Change::Roles { person: jules.clone(), grant: vec![Role::Approver], revoke: vec![] };
        let decide = |actor: &NodeId, roles: &[Role]| {
            check_decider(&grant, DecideOutcome::Approve, &requester, actor, roles, &p).err().map(|v| v.rule)
        };
        assert_eq!(decide(&kim, &[Role::Admin]), None);
        assert_eq!(decide(&kim, &[Role::Approver]), Some(RuleKind::DeciderRoleRequired));
        assert_eq!(decide(&requester, &[Role::Admin]), Some(RuleKind::RequesterCannotApprove));
        assert_eq!(decide(&jules, &[Role::Admin]), Some(RuleKind::SubjectCannotApprove));
        // The requester may still withdraw (reject) their own request.
        assert!(check_decider(&grant, DecideOutcome::Reject, &requester, &requester, &[Role::Admin], &p).is_ok());
    }

    #[test]
    fn a_change_round_trips_through_json() {
        let c = access(Privilege::Write);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), c);
    }
}
