//! The governance record in the store: alerts, cases, requests, policies and the
//! decision chain.
//!
//! Every decision goes through [`Store::decide`], which serialises the writing of
//! decisions twice over: an in-process lock keeps this process's commits in single file,
//! and each decision transaction compares and rewrites the chain head (`meta:chain`), so
//! decisions from other processes sharing the database conflict instead of forking the
//! chain. A decision is planned (facts read, rules evaluated, effects written as
//! statements) before it takes the lock, so plans overlap; the effects check the facts
//! they relied on (a record's `rev`, an alert's status) and throw `STALE` if another
//! decision changed them first, and a stale plan, like one whose chain head moved, is
//! thrown away and made again on fresh facts. This is what makes snapshot isolation safe here: two approvals of the
//! same request cannot both commit, because both write the head. The head this process
//! committed last is kept under the lock, so a decision usually costs no extra read of
//! it; a stale copy only makes the compare-and-set fail and the head be read again.

mod alerts;
mod baseline;
mod campaigns;
mod cases;
mod changes;
mod control_facts;
mod controls;
mod decisions;
mod guards;
mod requests;
mod tokens;

use std::collections::HashSet;

use chrono::Utc;
use serde::Deserialize;
use tracing::{debug, warn};

pub(crate) use super::dt;
use super::events::{EventDraft, RECORD_EVENT};
use super::{Result, Store, StoreError, Vars, rid, take};
use crate::domain::*;

pub use alerts::{AlertFilter, IngestOutcome, ScanSummary};
pub use baseline::Ungoverned;
pub use campaigns::{ItemFilter, ReviewSweep};
pub use cases::{CaseFilter, EvidenceFilter, TimelineEntry};
pub use changes::{Actor, Governed, SERVER_PRINCIPAL};
pub(crate) use controls::evaluating;
pub use controls::{ControlResult, EvaluationReport, Finding, FindingFilter};
pub use decisions::{DecisionFilter, DigestReport};
pub use requests::RequestFilter;
pub use tokens::{ApiToken, TOKEN_PREFIX, TokenPrincipal, new_token};

/// A decision ready to commit: the record to seal, and the statements that carry out
/// its effect in the same transaction (empty for a refused attempt).
pub(crate) struct Plan {
    pub draft: DecisionDraft,
    pub effects: String,
    pub vars: Vars,
}

impl Plan {
    /// An attempt a rule refused: only the record of the refusal is written.
    pub fn refused(mut draft: DecisionDraft, violation: Violation) -> Plan {
        draft.outcome = Outcome::Refused;
        draft.violation = Some(violation);
        Plan { draft, effects: String::new(), vars: Vars::new() }
    }
}

/// A boxed, sendable future of a plan (or of a part of one).
pub(crate) type PlanFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How many times a decision is re-planned when another process moved the chain.
const PLAN_ATTEMPTS: u32 = 16;

/// Who owns a node: the owning people and teams in force, and the people behind them
/// (direct owners and the members of owning teams).
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnerFacts {
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

#[derive(Deserialize)]
struct PersonActive {
    id: NodeId,
    active: bool,
}

impl Store {
    /// Plan and commit one decision. `plan` reads the facts and returns the decision
    /// with its effects; it is called again if another process committed a decision
    /// in between. A plan that carries a violation is recorded as a refused attempt
    /// and answered with [`StoreError::Refused`].
    pub(crate) async fn decide<'a>(
        &'a self,
        mut plan: impl FnMut() -> PlanFuture<'a, Plan> + Send,
    ) -> Result<Decision> {
        for attempt in 1..=PLAN_ATTEMPTS {
            // Planning reads facts only, so it runs outside the lock, beside other
            // decisions being planned or written; a plan whose facts changed before it
            // committed fails its own checks (`STALE`) and is made again.
            let Plan { draft, effects, vars } = plan().await?;
            let mut known_head = self.chain_lock.lock().await;
            // The head this process committed last saves a round trip; if another
            // process has moved the chain since, the compare-and-set below fails and the
            // head is read afresh.
            let head = match known_head.take() {
                Some(head) => head,
                None => self.chain_head().await?,
            };
            let decision = draft.seal(NodeId::generate(Table::Decision), &head, Utc::now());
            let sql = format!(
                "BEGIN;
                 LET $head = (SELECT seq, hash FROM ONLY meta:chain) ?? {{ seq: 0, hash: $genesis }};
                 IF $head.seq != $expected_seq OR $head.hash != $expected_hash {{
                     THROW 'CHAIN_MOVED: another decision was recorded first'
                 }};
                 {effects}
                 CREATE ONLY $decision_id CONTENT $decision;
                 UPSERT meta:chain SET seq = $seq, hash = $hash;
                 {RECORD_EVENT}
                 COMMIT;"
            );
            let event = EventDraft {
                kind: EventKind::Decision,
                case: decision
                    .case
                    .clone()
                    .or_else(|| (decision.subject.table() == Table::Case).then(|| decision.subject.clone())),
                record: decision.id.clone(),
                actor: Some(decision.actor.clone()),
                also: None,
                summary: format!("{} {}: {}", decision.kind, decision.outcome, decision.rationale),
                detail: Some(format!("{} {}", decision.kind, decision.outcome)),
            };
            let vars = event
                .bind(vars)
                .set("genesis", GENESIS_HASH)
                .set("expected_seq", head.seq as i64)
                .set("expected_hash", head.hash.as_str())
                .set("decision_id", rid(&decision.id))
                .set("decision", decisions::content(&decision)?)
                .set("seq", decision.seq as i64)
                .set("hash", decision.hash.as_str());
            match self.write(&sql, &vars).await {
                Ok(_) => {
                    *known_head = Some(ChainHead { seq: decision.seq, hash: decision.hash.clone() });
                    self.metrics
                        .decision(decision.outcome.as_str(), decision.violation.as_ref().map(|v| v.rule.as_str()));
                    return match &decision.violation {
                        Some(v) => Err(StoreError::Refused { violation: v.clone(), decision: decision.id.clone() }),
                        None => Ok(decision),
                    };
                }
                Err(StoreError::Stale(_)) => {
                    // The facts moved, not the chain: the head is still good.
                    *known_head = Some(head);
                    debug!(attempt, "a decision's facts changed while it was planned; planning again");
                }
                Err(StoreError::ChainMoved) => {
                    warn!(attempt, "decision chain moved; planning again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("the decision chain is too busy; try again".into()))
    }

    /// The head of the decision chain as stored now.
    pub async fn chain_head(&self) -> Result<ChainHead> {
        let mut resp = self.read("SELECT seq, hash FROM ONLY meta:chain", &Vars::new()).await?;
        let head: Option<ChainHead> = take(&mut resp, 0)?;
        Ok(head.unwrap_or_else(ChainHead::genesis))
    }

    /// Records of one table by id, in one query; missing ids are absent.
    pub(crate) async fn records_by_id<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        ids: &[NodeId],
    ) -> Result<Vec<T>> {
        let rids: Vec<surrealdb::types::RecordId> = ids.iter().filter(|i| i.table() == table).map(rid).collect();
        if rids.is_empty() {
            return Ok(vec![]);
        }
        let mut resp = self.read("SELECT * FROM $ids", &Vars::new().set("ids", rids)).await?;
        take(&mut resp, 0)
    }

    /// Who owns `node`, in force now.
    pub(crate) async fn owner_facts(&self, node: &NodeId) -> Result<OwnerFacts> {
        let in_force = super::nodes::IN_FORCE;
        let sql = format!(
            "LET $owners = (SELECT VALUE in FROM $node<-owns WHERE {in_force});
             LET $members = array::flatten(SELECT VALUE (SELECT VALUE in FROM $parent.in<-member_of WHERE {in_force})
                 FROM $node<-owns WHERE {in_force} AND record::tb(in) = 'team');
             LET $people = array::distinct(array::concat(array::filter($owners, |$v| record::tb($v) = 'person'), $members));
             RETURN $owners;
             SELECT id, active FROM $people;"
        );
        let mut resp = self.read(&sql, &Vars::new().set("node", rid(node))).await?;
        let owners: Vec<NodeId> = take(&mut resp, 3)?;
        let people: Vec<PersonActive> = take(&mut resp, 4)?;
        Ok(OwnerFacts { owners, people: people.into_iter().map(|p| (p.id, p.active)).collect() })
    }

    /// A person, or `NOT_FOUND`.
    pub(crate) async fn person(&self, id: &NodeId) -> Result<Person> {
        if id.table() != Table::Person {
            return Err(StoreError::Invalid(ValueError::new("id", format!("{id} is not a person"))));
        }
        self.nodes_by_id::<Person>(std::slice::from_ref(id))
            .await?
            .remove(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// A person who can be named on a case or task: existing and active.
    pub(crate) async fn active_person(&self, id: &NodeId, field: &str) -> Result<Person> {
        let p = self.person(id).await.map_err(|e| match e {
            StoreError::NotFound(what) => StoreError::Invalid(ValueError::new(field, format!("no person {what}"))),
            e => e,
        })?;
        if !p.active {
            return Err(StoreError::Invalid(ValueError::new(field, format!("{} is not active", p.email))));
        }
        Ok(p)
    }
}

/// Distinct ids, in first-seen order.
pub(crate) fn distinct(ids: impl IntoIterator<Item = NodeId>) -> Vec<NodeId> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(id.clone())).collect()
}

/// Framework references as stored text.
pub(crate) fn refs_text(refs: &[FrameworkRef]) -> Vec<String> {
    refs.iter().map(|r| r.as_str().to_owned()).collect()
}
