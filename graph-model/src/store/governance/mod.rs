//! The governance record in the store: alerts, cases, requests, policies and the
//! decision chain.
//!
//! Every decision goes through [`Store::decide`]. A decision is planned (facts read,
//! rules evaluated, effects written as statements) outside any lock, so plans overlap;
//! the plan then joins a queue, and one committer at a time (an in-process lock holding
//! the chain head as this process last committed it) seals every plan waiting, in
//! order, each after the one before, and writes them, their effects, their events and
//! the new head in one transaction: under load one fsync carries many decisions. The
//! transaction compares and rewrites the chain head (`meta:chain`), so decisions from
//! other processes sharing the database conflict instead of forking the chain. Each
//! plan's effects check the facts it relied on (a record's `rev`, an alert's status)
//! and throw `STALE` if another decision changed them first, and they run after the
//! effects of the plans sealed before them in the same transaction, so two approvals of
//! the same request cannot both commit, in one batch or in two. When a batch fails, its
//! plans are committed one by one, and only a stale plan (or every plan, when the chain
//! moved) is thrown away and made again on fresh facts. Each plan's variables are
//! renamed apart in a batch (`Vars::prefixed`). The commit runs as a task of its own,
//! so a caller that goes away cannot cut short a batch that holds others' decisions, on
//! a thread of its own (`committer`), so that the serial part of every decision is not
//! queued behind the requests being planned and answered.

mod alerts;
mod baseline;
mod campaigns;
mod cases;
mod changes;
mod control_facts;
mod controls;
mod decisions;
pub(crate) mod guards;
mod requests;
mod tokens;
mod work;

use std::collections::HashSet;

use chrono::Utc;
use serde::Deserialize;
use tracing::{debug, warn};

pub(crate) use super::dt;
use super::events::{EventDraft, RECORD_EVENT};
use super::{Result, Store, StoreError, Vars, rid, take};
use crate::domain::*;
pub(crate) use control_facts::Seen;
pub(crate) use guards::{OwnerCheck, OwnersSeen};

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
pub use work::{Work, WorkItem, WorkKind, WorkRecord};

/// A decision ready to commit: the record to seal, and the statements that carry out
/// its effect in the same transaction (empty for a refused attempt).
pub(crate) struct Plan {
    pub draft: DecisionDraft,
    pub effects: String,
    pub vars: Vars,
    /// Its effects write no person and no API token, so the sign-ins this process
    /// remembers stay fresh when it commits (see `signins`). False unless the planner
    /// knows: a plan that might change who signs in as what must leave it false.
    pub leaves_signins: bool,
}

impl Plan {
    /// An attempt a rule refused: only the record of the refusal is written.
    pub fn refused(mut draft: DecisionDraft, violation: Violation) -> Plan {
        draft.outcome = Outcome::Refused;
        draft.violation = Some(violation);
        // Only its guards' checks, which read, join the record and its event.
        Plan { leaves_signins: true, draft, effects: String::new(), vars: Vars::new() }
    }

    /// The plan, with checks of the facts it rests on run first at its commit.
    pub fn guarded(mut self, checks: String, vars: Vars) -> Plan {
        self.effects = format!("{checks}\n{}", self.effects);
        self.vars = self.vars.merge(vars);
        self
    }
}

tokio::task_local! {
    /// Set for a decision's plan that follows a stale one (see [`plan_reads_store`]).
    static PLAN_READS_STORE: bool;
}

/// Run `plan` (a decision's plan) so that it reads its facts from the store when
/// `from_store`, and from the graph index where it may otherwise. A plan made again
/// after its facts went stale reads the store: the index may not have seen the change
/// yet, and the plan would go stale again.
async fn planning<F: Future>(from_store: bool, plan: F) -> F::Output {
    PLAN_READS_STORE.scope(from_store, plan).await
}

/// Must the plan being made read its facts from the store (see [`planning`])?
fn plan_reads_store() -> bool {
    PLAN_READS_STORE.try_with(|b| *b).unwrap_or(true)
}

/// A boxed, sendable future of a plan (or of a part of one).
pub(crate) type PlanFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How many times a decision is re-planned when another process moved the chain.
const PLAN_ATTEMPTS: u32 = 16;

#[derive(Deserialize)]
struct PersonActive {
    id: NodeId,
    active: bool,
}

/// A planned decision waiting for the committer, and where its outcome goes.
pub(crate) struct Pending {
    plan: Plan,
    /// Filed by the control evaluator, whose own writes do not wake it again.
    evaluating: bool,
    done: tokio::sync::oneshot::Sender<Result<Decision>>,
}

/// The most decisions sealed in one transaction.
const GROUP_MAX: usize = 64;

/// The most reads of the chain head while a group's transaction runs (see
/// [`Store::commit_batch`]).
const HEAD_READS: u32 = 64;

/// A group of decisions sealed into the transaction that writes them
/// ([`Store::seal`]).
struct Sealed {
    sql: String,
    vars: Vars,
    decisions: Vec<Decision>,
    /// The head the group follows, and the head it writes.
    start: ChainHead,
    head: ChainHead,
    /// The owner checks among its guards, whose readings it returns.
    checks: Vec<OwnerCheck>,
    /// Whether it wakes the control evaluator.
    wake: bool,
    /// Whether it may change who signs in as what (see [`Plan::leaves_signins`]).
    signins: bool,
}

/// Where decision commits run: a thread of their own, with its own runtime.
///
/// An embedded engine executes a query on whichever task awaits it. The commits are
/// serial (one chain), so every decision waits for each commit before it; on the
/// server's runtime a commit's task queued behind the requests being planned and
/// answered at each of its awaits, and its turn stretched with the load. On its own
/// thread it is scheduled by the kernel beside them. A remote server's commits only
/// wait here. Falls back to the caller's runtime if the thread cannot be started.
fn committer() -> tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nhigov-commit")
            // The embedded engine runs on this thread: it needs the stack its queries
            // need on the server's own threads.
            .thread_stack_size(16 << 20)
            .enable_all()
            .build()
            .inspect_err(|e| warn!(error = %e, "no thread for decision commits; they run on the caller's runtime"))
            .ok()
    });
    match runtime {
        Some(rt) => rt.handle().clone(),
        None => tokio::runtime::Handle::current(),
    }
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
            // The first plan may take facts from the graph index, which its commit
            // checks against the store; a plan made again reads the store.
            let planned = planning(attempt > 1, plan()).await?;
            let (done, outcome) = tokio::sync::oneshot::channel();
            let pending = Pending { plan: planned, evaluating: controls::evaluating(), done };
            self.chain_queue.lock().unwrap_or_else(|e| e.into_inner()).push(pending);
            self.chain_queued.notify_waiters();
            self.commit_queued().await;
            let decision = match outcome.await {
                Ok(outcome) => outcome,
                Err(_) => Err(StoreError::Database("the decision's commit stopped before it finished".into())),
            };
            match decision {
                Ok(decision) => {
                    return match &decision.violation {
                        Some(v) => Err(StoreError::Refused { violation: v.clone(), decision: decision.id.clone() }),
                        None => Ok(decision),
                    };
                }
                Err(StoreError::Stale(_)) => {
                    debug!(attempt, "a decision's facts changed while it was planned; planning again")
                }
                Err(StoreError::ChainMoved) => warn!(attempt, "decision chain moved; planning again"),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("the decision chain is too busy; try again".into()))
    }

    /// Take the chain's turn and commit every decision waiting (this caller's among
    /// them, unless a committer before took it). The commit runs as a task of its own,
    /// so a caller that goes away cannot cut short a batch holding others' decisions.
    async fn commit_queued(&self) {
        let store = self.clone();
        let turn = committer().spawn(async move {
            let mut known_head = store.chain_lock.lock().await;
            loop {
                let batch: Vec<Pending> = {
                    let mut queue = store.chain_queue.lock().unwrap_or_else(|e| e.into_inner());
                    let n = queue.len().min(GROUP_MAX);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    return;
                }
                store.commit_batch(&mut known_head, batch).await;
            }
        });
        if let Err(e) = turn.await {
            warn!(error = %e, "a decision commit task failed");
        }
    }

    /// Commit `batch` in one transaction, in order, the chain linear through it; if the
    /// transaction fails (one plan's facts went stale, the chain moved), each is
    /// committed alone, so that only the plans at fault are made again.
    ///
    /// On an embedded store the next batch does not wait for this one's fsync. The
    /// engine applies a commit (makes it visible to transactions that start after) and
    /// then waits for the grouped fsync of its write-ahead log; the transaction runs as a
    /// task of its own, and once the chain head it writes can be read, the next batch
    /// is sealed and run while this one's fsync goes on, as soon as as many plans wait
    /// as this batch held ([`Store::gather`]). Nothing is acknowledged
    /// before its own fsync: each batch's task answers its callers when its write
    /// returns. The next batch starts from a snapshot that holds this one, so it checks
    /// its facts against everything sealed before it, as when batches ran one after the
    /// other; a batch that fails is seen to finish before anything follows it.
    async fn commit_batch(&self, known_head: &mut Option<ChainHead>, batch: Vec<Pending>) {
        if self.remote {
            return self.commit_batch_waiting(known_head, batch).await;
        }
        let plans: Vec<(&Plan, bool)> = batch.iter().map(|p| (&p.plan, p.evaluating)).collect();
        let sealed = match self.seal(known_head, &plans).await {
            Ok(sealed) => sealed,
            Err(e) => {
                debug!(error = %e, decisions = batch.len(), "a group of decisions could not be sealed; committing each alone");
                return self.commit_each(known_head, batch).await;
            }
        };
        let (start, head, size) = (sealed.start.clone(), sealed.head.clone(), batch.len());
        let store = self.clone();
        let mut task = tokio::spawn(async move {
            match store.write_sealed(&sealed).await {
                Ok(decisions) => {
                    for (p, d) in batch.into_iter().zip(decisions) {
                        let _ = p.done.send(Ok(d));
                    }
                    Ok(())
                }
                Err(e) => Err((e, batch)),
            }
        });
        // Until the transaction is applied, or over: each time its task yields, the
        // head is read (about as much as one record's fetch). A task that yields that
        // often without its head in sight is waiting on something else (a retry's
        // pause), and is waited for.
        let mut reads = 0;
        let outcome = loop {
            if reads == HEAD_READS {
                break (&mut task).await;
            }
            tokio::select! {
                biased;
                out = &mut task => break out,
                _ = tokio::task::yield_now() => {}
            }
            reads += 1;
            self.count_commit_probe();
            if self.chain_head().await.is_ok_and(|h| h == head) {
                *known_head = Some(head);
                return self.gather(size, task).await;
            }
        };
        match outcome {
            Ok(Ok(())) => *known_head = Some(head),
            Ok(Err((e, batch))) => {
                // Stale: nothing was written, and the head is as it was.
                *known_head = matches!(e, StoreError::Stale(_)).then_some(start);
                if batch.len() > 1 {
                    debug!(error = %e, decisions = batch.len(), "a group of decisions did not commit; committing each alone");
                    self.commit_each(known_head, batch).await;
                } else if let Some(p) = batch.into_iter().next() {
                    let _ = p.done.send(Err(e));
                }
            }
            Err(e) => warn!(error = %e, "a decision commit task failed"),
        }
    }

    /// Once a group of `size` decisions is applied, wait until as many plans are queued
    /// as it held, or until its write (`task`) returns, whichever comes first: a group
    /// started with fewer would share its fixed cost (the chain's compare-and-set, the
    /// head's write, the commit) among fewer decisions.
    async fn gather<T>(&self, size: usize, mut task: tokio::task::JoinHandle<T>) {
        loop {
            let queued = self.chain_queued.notified();
            tokio::pin!(queued);
            // Listening before looking: a plan queued in between still wakes it.
            queued.as_mut().enable();
            if self.chain_queue.lock().unwrap_or_else(|e| e.into_inner()).len() >= size {
                return;
            }
            tokio::select! {
                _ = &mut task => return,
                _ = queued => {}
            }
        }
    }

    /// [`Store::commit_batch`] for a remote server: each transaction waited for.
    async fn commit_batch_waiting(&self, known_head: &mut Option<ChainHead>, batch: Vec<Pending>) {
        if batch.len() > 1 {
            let plans: Vec<(&Plan, bool)> = batch.iter().map(|p| (&p.plan, p.evaluating)).collect();
            match self.commit_group(known_head, &plans).await {
                Ok(decisions) => {
                    for (p, d) in batch.into_iter().zip(decisions) {
                        let _ = p.done.send(Ok(d));
                    }
                    return;
                }
                // `commit_group` kept the head if the chain did not move.
                Err(e) => {
                    debug!(error = %e, decisions = batch.len(), "a group of decisions did not commit; committing each alone")
                }
            }
        }
        self.commit_each(known_head, batch).await;
    }

    /// Commit each plan of `batch` alone, one after the other.
    async fn commit_each(&self, known_head: &mut Option<ChainHead>, batch: Vec<Pending>) {
        for p in batch {
            let outcome = self.commit_group(known_head, &[(&p.plan, p.evaluating)]).await.map(|mut d| d.remove(0));
            let _ = p.done.send(outcome);
        }
    }

    /// Seal `plans` after the head and write them, with their effects and events and
    /// the new head, in one transaction. On success `known_head` is the new head; when a
    /// plan went stale it is the head as it was (nothing was written); otherwise it is
    /// unknown and read again next time.
    async fn commit_group(&self, known_head: &mut Option<ChainHead>, plans: &[(&Plan, bool)]) -> Result<Vec<Decision>> {
        let sealed = self.seal(known_head, plans).await?;
        match self.write_sealed(&sealed).await {
            Ok(decisions) => {
                *known_head = Some(sealed.head);
                Ok(decisions)
            }
            Err(e) => {
                if matches!(e, StoreError::Stale(_)) {
                    *known_head = Some(sealed.start);
                }
                Err(e)
            }
        }
    }

    /// Seal `plans` after the head (`known_head`, taken, or read when unknown) into the
    /// one transaction that writes them, with their effects and events and the new head.
    async fn seal(&self, known_head: &mut Option<ChainHead>, plans: &[(&Plan, bool)]) -> Result<Sealed> {
        // The head this process committed last saves a round trip; if another process
        // has moved the chain since, the compare-and-set below fails and the head is
        // read afresh.
        let start = match known_head.take() {
            Some(head) => head,
            None => self.chain_head().await?,
        };
        let mut sql = String::from(
            "BEGIN;
             LET $head = (SELECT seq, hash FROM ONLY meta:chain) ?? { seq: 0, hash: $genesis };
             IF $head.seq != $expected_seq OR $head.hash != $expected_hash {
                 THROW 'CHAIN_MOVED: another decision was recorded first'
             };\n",
        );
        let mut vars = Vars::new()
            .set("genesis", GENESIS_HASH)
            .set("expected_seq", start.seq as i64)
            .set("expected_hash", start.hash.as_str());
        let mut head = start.clone();
        let mut decisions = Vec::with_capacity(plans.len());
        for (i, (plan, _)) in plans.iter().enumerate() {
            let decision = plan.draft.clone().seal(NodeId::generate(Table::Decision), &head, Utc::now());
            let (statements, bound) = decision_statements(plan, &decision)?;
            let bound = self.answer_owner_checks(bound);
            // One plan alone keeps its names; in a group each plan's are its own.
            let (statements, bound) =
                if plans.len() == 1 { (statements, bound) } else { bound.prefixed(&statements, &format!("d{i}_")) };
            sql.push_str(&statements);
            vars = vars.merge(bound);
            head = ChainHead { seq: decision.seq, hash: decision.hash.clone() };
            decisions.push(decision);
        }
        sql.push_str("UPSERT meta:chain SET seq = $seq, hash = $hash RETURN NONE;\n");
        // What the owner checks that ran in full saw, for the next decisions' checks.
        let checks = vars.owner_checks().to_vec();
        let seen: Vec<String> = checks.iter().map(|c| format!("${}_seen", c.key)).collect();
        sql.push_str(&format!("RETURN {{ owners_seen: [{}] }};\nCOMMIT;", seen.join(", ")));
        let vars = vars.set("seq", head.seq as i64).set("hash", head.hash.as_str());
        let wake = plans.iter().any(|(_, evaluating)| !evaluating);
        let signins = plans.iter().any(|(plan, _)| !plan.leaves_signins);
        Ok(Sealed { sql, vars, decisions, start, head, checks, wake, signins })
    }

    /// Write a sealed group: its decisions once it committed.
    async fn write_sealed(&self, sealed: &Sealed) -> Result<Vec<Decision>> {
        let mut resp = self.write_with(&sealed.sql, &sealed.vars, sealed.wake, sealed.signins).await?;
        self.remember_owners(&sealed.checks, &mut resp);
        self.metrics.commit();
        for d in &sealed.decisions {
            self.metrics.decision(d.outcome.as_str(), d.violation.as_ref().map(|v| v.rule.as_str()));
        }
        Ok(sealed.decisions.clone())
    }

    /// `vars` with the quick path of each owner check opened where this committer has
    /// seen the very owners it relies on (`Guards::owners`).
    fn answer_owner_checks(&self, vars: Vars) -> Vars {
        if vars.owner_checks().is_empty() {
            return vars;
        }
        let seen = self.owners_seen.lock().unwrap_or_else(|e| e.into_inner());
        let checks = vars.owner_checks().to_vec();
        checks.iter().fold(vars, |v, c| c.answered(&seen, v))
    }

    /// Remember what the owner checks of a committed transaction read in full (its
    /// statement `RETURN { owners_seen }`, the last before `COMMIT`). A reply that does
    /// not read as expected is logged and forgotten: the next checks run in full.
    fn remember_owners(&self, checks: &[guards::OwnerCheck], resp: &mut surrealdb::IndexedResults) {
        if checks.is_empty() {
            return;
        }
        #[derive(Deserialize)]
        struct Returned {
            owners_seen: Vec<Option<guards::SeenRow>>,
        }
        let n = resp.num_statements();
        let returned = (n.saturating_sub(3)..n).rev().find_map(|i| take::<Returned>(resp, i).ok());
        let Some(Returned { owners_seen }) = returned.filter(|r| r.owners_seen.len() == checks.len()) else {
            warn!("a decision commit's owner readings did not come back; the next checks run in full");
            return;
        };
        let mut seen = self.owners_seen.lock().unwrap_or_else(|e| e.into_inner());
        for (check, row) in checks.iter().zip(owners_seen) {
            if let Some(row) = row {
                seen.remember(check, row);
            }
        }
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
        let mut resp = self.read(&owner_facts_sql(), &Vars::new().set("node", rid(node))).await?;
        owner_facts_at(&mut resp, 0)
    }

    /// Who owns `node` as the graph index last read it, for a decision's first plan
    /// (see [`planning`]), whose commit checks the same facts against the store
    /// (`Guards::owners`) and, when they moved, throws the plan away as stale. `None`
    /// when the plan must read the store, or the index cannot answer. Read from the
    /// store, these facts were most of an approval's plan (2.9 of its 3.3 ms of wall
    /// time under eight writers at 100,000 NHIs).
    pub(crate) fn indexed_owner_facts(&self, node: &NodeId) -> Result<Option<OwnerFacts>> {
        if plan_reads_store() {
            return Ok(None);
        }
        self.indexed_owners(node)
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

/// The statements that read who owns `$node` ([`Store::owner_facts`]); their answer is
/// read by [`owner_facts_at`] from the response's statement `first` on.
pub(crate) fn owner_facts_sql() -> String {
    let in_force = super::nodes::IN_FORCE;
    format!(
        "LET $owners = (SELECT VALUE in FROM $node<-owns WHERE {in_force});
         LET $members = array::flatten(SELECT VALUE (SELECT VALUE in FROM $parent.in<-member_of WHERE {in_force})
             FROM $node<-owns WHERE {in_force} AND record::tb(in) = 'team');
         LET $people = array::distinct(array::concat(array::filter($owners, |$v| record::tb($v) = 'person'), $members));
         RETURN $owners;
         SELECT id, active FROM $people;\n"
    )
}

/// How many statements [`owner_facts_sql`] writes.
pub(crate) const OWNER_FACTS_STATEMENTS: usize = 5;

/// The statements of [`owner_facts_sql`] in a response, from statement `first` on; the
/// next statement after them is `first + OWNER_FACTS_STATEMENTS`.
pub(crate) fn owner_facts_at(resp: &mut surrealdb::IndexedResults, first: usize) -> Result<OwnerFacts> {
    let owners: Vec<NodeId> = take(resp, first + 3)?;
    let people: Vec<PersonActive> = take(resp, first + 4)?;
    Ok(OwnerFacts { owners, people: people.into_iter().map(|p| (p.id, p.active)).collect() })
}

/// One sealed decision's statements (its effects, its record, its event) and their
/// bindings, for a commit's transaction.
fn decision_statements(plan: &Plan, decision: &Decision) -> Result<(String, Vars)> {
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
        .bind(plan.vars.clone())
        .set("decision_id", rid(&decision.id))
        .set("decision", decisions::content(decision)?);
    let sql = format!("{}\nCREATE ONLY $decision_id CONTENT $decision RETURN NONE;\n{RECORD_EVENT}\n", plan.effects);
    Ok((sql, vars))
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::StoreConfig;

    fn text(s: &str) -> Text {
        Text::parse(s).unwrap()
    }

    async fn world() -> (Store, HashMap<String, NodeId>) {
        world_at(&StoreConfig::memory()).await
    }

    async fn world_at(cfg: &StoreConfig) -> (Store, HashMap<String, NodeId>) {
        let store = Store::open(cfg).await.unwrap();
        let doc = serde_json::json!({
            "nodes": [
                {"type": "person", "ref": "req", "name": "Requester", "email": "req@x.example", "roles": ["investigator", "approver"]},
                {"type": "person", "ref": "a1", "name": "Approver One", "email": "a1@x.example", "roles": ["approver"]},
                {"type": "person", "ref": "a2", "name": "Approver Two", "email": "a2@x.example", "roles": ["approver"]},
                {"type": "person", "ref": "owner", "name": "Owner", "email": "owner@x.example"},
                {"type": "team", "ref": "ops", "name": "ops"},
                {"type": "nhi", "ref": "bot", "kind": "service_account", "name": "bot", "environment": "production"},
                {"type": "system", "ref": "db0", "kind": "database", "name": "ledger", "environment": "production", "criticality": "tier2"},
                {"type": "system", "ref": "db1", "kind": "database", "name": "billing", "environment": "production", "criticality": "tier2"},
                {"type": "system", "ref": "db2", "kind": "database", "name": "reports", "environment": "production", "criticality": "tier2"}
            ],
            "edges": [{"type": "owns", "from": "owner", "to": "bot"}]
        });
        let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
        (store, summary.ids.into_iter().collect())
    }

    fn actor(ids: &HashMap<String, NodeId>, r: &str) -> Actor {
        Actor { id: ids[r].clone(), roles: Role::ALL.to_vec() }
    }

    async fn grant(store: &Store, ids: &HashMap<String, NodeId>, target: &str) -> Request {
        let new = NewRequest {
            target: Some(ids[target].clone()),
            privilege: Some(Privilege::Read),
            duration_days: Some(30),
            ..NewRequest::new(RequestKind::GrantAccess, ids["bot"].clone(), text("reports need it"))
        };
        store.create_request(&ids["req"], &new).await.unwrap()
    }

    /// Hold the committer's turn until `n` plans wait, then let it go.
    async fn release_when_waiting(store: &Store, turn: tokio::sync::MutexGuard<'_, Option<ChainHead>>, n: usize) {
        while store.chain_queue.lock().unwrap().len() < n {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        drop(turn);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn decisions_waiting_together_are_sealed_in_one_transaction() {
        let (store, ids) = world().await;
        let r = grant(&store, &ids, "db0").await;
        let (head, commits) = (store.chain_head().await.unwrap(), store.metrics().decision_commits());
        let turn = store.chain_lock.lock().await;
        // Eight self-approvals, each a refused attempt recorded in the chain.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, a, id) = (store.clone(), actor(&ids, "req"), r.id.clone());
                tokio::spawn(async move { s.decide_request(&a, &id, DecideOutcome::Approve, &text("mine"), &[]).await })
            })
            .collect();
        release_when_waiting(&store, turn, 8).await;
        let mut refused = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Err(StoreError::Refused { decision, .. }) => refused.push(decision),
                other => panic!("a self-approval: {other:?}"),
            }
        }
        assert_eq!(store.metrics().decision_commits(), commits + 1, "eight decisions, one transaction");
        let recorded = store.decisions_by_id(&refused).await.unwrap();
        let mut seqs: Vec<u64> = recorded.iter().map(|d| d.seq).collect();
        seqs.sort();
        assert_eq!(seqs, (head.seq + 1..=head.seq + 8).collect::<Vec<_>>(), "each in its own place in the chain");
        let report = store.verify_decision_chain().await.unwrap();
        assert!(report.ok() && report.length == head.seq + 8, "{report:?}");
    }

    /// On an embedded store each group is sealed as soon as the one before it is
    /// applied, while that one still waits for its fsync (`commit_batch`). Two approvers
    /// racing over each of a dozen requests: each request approved once, the other
    /// approval refused as too late; the chain whole, with nothing but the approvals in
    /// it; every answered approval stored, and its access opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_sealed_while_the_one_before_is_synced_keep_every_guarantee() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
        let (store, ids) = world_at(&cfg).await;
        let mut requests = Vec::new();
        for i in 0..12 {
            requests.push(grant(&store, &ids, &format!("db{}", i % 3)).await.id);
        }
        let head = store.chain_head().await.unwrap();
        let tasks: Vec<_> = requests
            .iter()
            .flat_map(|r| ["a1", "a2"].map(|who| (r.clone(), who)))
            .map(|(id, who)| {
                let (s, a) = (store.clone(), actor(&ids, who));
                tokio::spawn(async move { s.decide_request(&a, &id, DecideOutcome::Approve, &text("ok"), &[]).await })
            })
            .collect();
        let mut approved = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok((d, r)) => {
                    assert_eq!((d.outcome, r.status), (Outcome::Approved, RequestStatus::Approved));
                    approved.push(d);
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        let mut subjects: Vec<&NodeId> = approved.iter().map(|d| &d.subject).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!((approved.len(), subjects.len()), (12, 12), "each request approved once");
        let report = store.verify_decision_chain().await.unwrap();
        assert!(report.ok() && report.length == head.seq + 12, "{report:?}");
        let ids: Vec<NodeId> = approved.iter().map(|d| d.id.clone()).collect();
        assert_eq!(store.decisions_by_id(&ids).await.unwrap().len(), 12, "every answered approval stored");
        for r in &requests {
            let r = store.request(r).await.unwrap();
            assert_eq!(r.status, RequestStatus::Approved);
            assert!(r.granted_edge.is_some(), "{}: its access opened", r.id);
        }
        store.close().await;
    }

    /// A grant of admin access, which an owner of its subject may not approve.
    async fn admin_grant(store: &Store, ids: &HashMap<String, NodeId>) -> Request {
        let new = NewRequest {
            target: Some(ids["db0"].clone()),
            privilege: Some(Privilege::Admin),
            duration_days: Some(30),
            ..NewRequest::new(RequestKind::GrantAccess, ids["bot"].clone(), text("migrations need it"))
        };
        store.create_request(&ids["req"], &new).await.unwrap()
    }

    /// Who owns `node` as a first plan would read it from the graph index.
    async fn indexed_owners(store: &Store, node: &NodeId) -> Vec<NodeId> {
        let facts = planning(false, async { store.indexed_owner_facts(node) }).await;
        facts.unwrap().expect("the index has loaded").owners
    }

    /// An approver who became an owner after the graph index last looked is still
    /// refused the owner's approval: the plan read the index, the commit's check read
    /// the store, and the plan made again read the store.
    #[tokio::test]
    async fn an_owner_the_graph_index_has_not_seen_cannot_approve() {
        let (store, ids) = world().await;
        store.sync_graph().await.unwrap();
        let r = admin_grant(&store, &ids).await;
        let owns = NewEdge::parse(EdgeKind::Owns, ids["a1"].clone(), ids["bot"].clone(), EdgeAttrs::default()).unwrap();
        store.relate(&owns).await.unwrap();
        assert!(!indexed_owners(&store, &ids["bot"]).await.contains(&ids["a1"]), "the index has not looked since");
        let head = store.chain_head().await.unwrap();
        match store.decide_request(&actor(&ids, "a1"), &r.id, DecideOutcome::Approve, &text("ok"), &[]).await {
            Err(StoreError::Refused { violation, .. }) => assert_eq!(violation.rule, RuleKind::OwnerCannotApprove),
            other => panic!("an owner's approval of admin access: {other:?}"),
        }
        assert_eq!(store.chain_head().await.unwrap().seq, head.seq + 1, "one decision: the refusal");
        assert_eq!(store.request(&r.id).await.unwrap().status, RequestStatus::Pending);
    }

    /// An approver whose ownership ended after the graph index last looked is not
    /// refused for it: a refusal is checked at its commit like an approval.
    #[tokio::test]
    async fn an_ownership_ended_after_the_index_looked_refuses_nothing() {
        let (store, ids) = world().await;
        let owns = NewEdge::parse(EdgeKind::Owns, ids["a1"].clone(), ids["bot"].clone(), EdgeAttrs::default()).unwrap();
        let edge = store.relate(&owns).await.unwrap();
        store.sync_graph().await.unwrap();
        let r = admin_grant(&store, &ids).await;
        store.close_edge(&edge.id).await.unwrap();
        assert!(indexed_owners(&store, &ids["bot"]).await.contains(&ids["a1"]), "the index has not looked since");
        let head = store.chain_head().await.unwrap();
        let (d, _) =
            store.decide_request(&actor(&ids, "a1"), &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
        assert_eq!(d.outcome, Outcome::Approved);
        assert_eq!(store.chain_head().await.unwrap().seq, head.seq + 1, "no refusal recorded before the approval");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_approvals_of_one_request_in_one_batch_cannot_both_commit() {
        let (store, ids) = world().await;
        for round in 0..3 {
            let r = grant(&store, &ids, &format!("db{round}")).await;
            assert_eq!(r.status, RequestStatus::Pending, "round {round}");
            let turn = store.chain_lock.lock().await;
            let tasks: Vec<_> = ["a1", "a2"]
                .iter()
                .map(|who| {
                    let (s, a, id) = (store.clone(), actor(&ids, who), r.id.clone());
                    tokio::spawn(
                        async move { s.decide_request(&a, &id, DecideOutcome::Approve, &text("ok"), &[]).await },
                    )
                })
                .collect();
            release_when_waiting(&store, turn, 2).await;
            let mut approved = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok((d, _)) => {
                        assert_eq!(d.outcome, Outcome::Approved);
                        approved += 1;
                    }
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => panic!("round {round}: {e:?}"),
                }
            }
            assert_eq!(approved, 1, "round {round}: the second plan's guard saw the first's effects");
            let r = store.request(&r.id).await.unwrap();
            assert_eq!((r.status, r.approvals.len()), (RequestStatus::Approved, 1), "round {round}");
        }
        let report = store.verify_decision_chain().await.unwrap();
        assert!(report.ok(), "{report:?}");
    }

    /// Commit a decision on `node` whose one check is that its owners are `stale` on
    /// its first plan, and as the store has them on any plan after; how many plans it
    /// took (2: the first one's facts had changed).
    async fn commit_checked(store: &Store, actor: &NodeId, node: &NodeId, stale: &OwnerFacts) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let attempts = AtomicUsize::new(0);
        let attempts = &attempts;
        store
            .decide(move || {
                Box::pin(async move {
                    let facts = match attempts.fetch_add(1, SeqCst) {
                        0 => stale.clone(),
                        _ => store.owner_facts(node).await?,
                    };
                    let draft = DecisionDraft {
                        kind: DecisionKind::DecideRequest,
                        outcome: Outcome::Approved,
                        actor: actor.clone(),
                        subject: node.clone(),
                        case: None,
                        rationale: "owners checked".into(),
                        signals: vec![],
                        policy: None,
                        violation: None,
                        refs: vec![],
                        inputs: serde_json::json!({ "owners": facts.owners }),
                    };
                    let (effects, vars) = guards::Guards::default().owners(node, &facts).finish(Vars::new());
                    Ok(Plan { leaves_signins: false, draft, effects, vars })
                })
            })
            .await
            .unwrap();
        attempts.load(SeqCst)
    }

    /// Has the committer seen `facts` as `node`'s owners in a full check?
    fn knows(store: &Store, node: &NodeId, facts: &OwnerFacts) -> bool {
        store.owners_seen.lock().unwrap().knows(node, facts)
    }

    /// An owner check the committer answers from the revisions it saw still catches
    /// every change of the owners, from any write path and by time: an owner added, a
    /// team given ownership, a member added to it, a member deactivated, an ownership
    /// closed, and an ownership that expired with no write at all. Each change is made
    /// after the committer saw the owners in full (so the plan's facts are the ones it
    /// knows, and its quick path is open), by a plain write that no decision made.
    #[tokio::test]
    async fn owner_checks_answered_from_revisions_still_catch_every_change() {
        let (store, ids) = world().await;
        let (bot, me) = (&ids["bot"], &ids["req"]);
        let owns = |from: &str, expires_at| {
            let attrs = EdgeAttrs { expires_at, ..EdgeAttrs::default() };
            NewEdge::parse(EdgeKind::Owns, ids[from].clone(), bot.clone(), attrs).unwrap()
        };
        let mut facts = store.owner_facts(bot).await.unwrap();
        assert_eq!(commit_checked(&store, me, bot, &facts).await, 1, "the owners as read");
        assert!(knows(&store, bot, &facts), "a full check that committed is remembered");
        assert_eq!(commit_checked(&store, me, bot, &facts).await, 1, "nothing changed: the quick path holds");

        let ops = NewEdge::parse(EdgeKind::Owns, ids["ops"].clone(), bot.clone(), EdgeAttrs::default()).unwrap();
        let joins = NewEdge::parse(EdgeKind::MemberOf, ids["a2"].clone(), ids["ops"].clone(), EdgeAttrs::default());
        let mut a1_owns = None;
        let steps = [
            "an owner added",
            "a team given ownership",
            "a member added",
            "a member deactivated",
            "an ownership closed",
        ];
        for change in steps {
            match change {
                "an owner added" => a1_owns = Some(store.relate(&owns("a1", None)).await.unwrap()),
                "a team given ownership" => drop(store.relate(&ops).await.unwrap()),
                "a member added" => drop(store.relate(joins.as_ref().unwrap()).await.unwrap()),
                "a member deactivated" => {
                    let vars = Vars::new().set("p", rid(&ids["a2"]));
                    store.write("UPDATE $p SET active = false RETURN NONE", &vars).await.unwrap();
                }
                _ => drop(store.close_edge(&a1_owns.as_ref().unwrap().id).await.unwrap()),
            }
            assert!(knows(&store, bot, &facts), "{change}: the plan's facts are the ones the committer saw");
            assert_eq!(commit_checked(&store, me, bot, &facts).await, 2, "{change}: the first plan was stale");
            let now = store.owner_facts(bot).await.unwrap();
            assert!(knows(&store, bot, &now), "{change}: the second plan's full check is remembered");
            facts = now;
        }

        // An ownership that ends by itself: nothing is written when it does.
        let until = Utc::now() + chrono::Duration::milliseconds(1500);
        store.relate(&owns("a2", Some(until))).await.unwrap();
        assert_eq!(commit_checked(&store, me, bot, &facts).await, 2, "an expiring owner added");
        facts = store.owner_facts(bot).await.unwrap();
        assert!(facts.owners.contains(&ids["a2"]) && knows(&store, bot, &facts));
        assert_eq!(commit_checked(&store, me, bot, &facts).await, 1, "before the expiry the quick path holds");
        tokio::time::sleep((until - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200))
            .await;
        assert_eq!(commit_checked(&store, me, bot, &facts).await, 2, "after the expiry the first plan was stale");
        assert!(!store.owner_facts(bot).await.unwrap().owners.contains(&ids["a2"]));
        let report = store.verify_decision_chain().await.unwrap();
        assert!(report.ok(), "{report:?}");
    }
}
