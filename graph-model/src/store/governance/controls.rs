//! Controls in the store: published versions, their results kept current, and the
//! findings a failure opens.
//!
//! [`Store::evaluate_controls`] reads one snapshot of the facts every check needs (a
//! handful of flat scans joined here, not a query per subject), evaluates each control's
//! latest version ([`control::evaluate`]) and writes what changed:
//!
//! - The first evaluation of a version is one decision (`evaluate_control`) naming the
//!   digest and counts of all its results, written with every block of results, a
//!   record of the subjects whose status changed and the findings opened, in one
//!   transaction; over more subjects than `StoreConfig::evaluation_part`, one such
//!   decision per part (whole blocks, in block order), the last naming the whole. A
//!   transaction must fit in the embedded store's memtable, and at 100,000 NHIs one
//!   holding every result did not fit in 128 MiB.
//! - After that, each subject whose status changed is one decision (`control_result`:
//!   the version, the subject, before, after, the facts), with its entry, history row
//!   and finding in the same transaction. Guards re-read the entry, so two evaluators
//!   that raced would record a change once.
//!
//! Each subject's latest standing is an entry of a block (`control_block`): the results
//! of one control whose subjects share the first byte of SHA-256 over their id, 256
//! blocks a control at most. A full evaluation writes blocks whole; a single change
//! edits one entry in place. (A row a subject, each with an index entry, was most of
//! what a full evaluation wrote; stores from before are moved at the upgrade.)
//!
//! A failure opens a finding, or joins the open one of the same control and subject
//! (a recurrence). When the subject stops failing, the finding records the remediation
//! (when, and the decision that saw it); a person closes it later, with evidence, as a
//! decision of their own. Evaluations run under a lease (`meta:control_lease`), so with
//! several replicas one evaluates at a time.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use surrealdb::types::{RecordId, Value};

use super::{Actor, Plan, PlanFuture, distinct, dt, refs_text};
use crate::domain::control::{self, *};
use crate::domain::*;
use crate::store::{Content, Result, STALE, Store, StoreError, Vars, in_chunks_expr, json_value, rid, take};

/// One subject's result row: the latest standing against a control.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ControlResult {
    pub control: String,
    pub version: u32,
    pub subject: NodeId,
    pub status: ControlStatus,
    pub facts: String,
    /// When the subject entered this status.
    pub since: DateTime<Utc>,
    /// When the control first judged the subject.
    pub first_at: DateTime<Utc>,
    pub finding: Option<NodeId>,
}

/// A change of a subject's status, as kept for `asOf` answers.
#[derive(Debug, Clone, Deserialize)]
struct StatusChange {
    subject: NodeId,
    version: u32,
    after: ControlStatus,
    facts: String,
    at: DateTime<Utc>,
}

/// What one part of a full evaluation changed (a `control_change_part`).
#[derive(Deserialize)]
struct ChangePart {
    version: u32,
    at: DateTime<Utc>,
    changes: Vec<PartChange>,
}

/// One entry of a [`ChangePart`].
#[derive(Deserialize)]
struct PartChange {
    subject: NodeId,
    after: ControlStatus,
    facts: String,
}

/// A control failure followed to remediation and closure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Finding {
    pub id: NodeId,
    pub control: String,
    pub control_version: u32,
    pub subject: NodeId,
    pub status: FindingStatus,
    /// The facts of the failure that opened it.
    pub facts: String,
    pub opened_at: DateTime<Utc>,
    /// The decision that recorded the failure.
    pub opened_by: Option<NodeId>,
    /// When the check stopped failing, and the decision that recorded it; cleared if
    /// it fails again before the finding is closed.
    pub remediated_at: Option<DateTime<Utc>>,
    pub remediated_by: Option<NodeId>,
    /// How often it failed again while open.
    #[serde(default)]
    pub recurrences: u32,
    /// The cases, requests and decisions linked as its remediation.
    #[serde(default)]
    pub links: Vec<NodeId>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<NodeId>,
    pub closing_decision: Option<NodeId>,
    #[serde(default)]
    pub evidence: Vec<NodeId>,
    pub rev: u64,
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub control: Option<String>,
    pub status: Option<FindingStatus>,
    pub subject: Option<NodeId>,
    /// Only findings on what this person owns, directly or through a team they are a
    /// member of (ownership and membership in force now).
    pub owned_by: Option<NodeId>,
}

/// What one evaluation pass did, per control key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationReport {
    /// Controls evaluated in full (their version's first evaluation).
    pub full: Vec<String>,
    /// Status changes recorded one by one.
    pub changes: u64,
    /// Another replica holds the lease: nothing was evaluated.
    pub skipped: bool,
    /// Subjects judged again in a pass between full evaluations (what changed touched).
    pub touched: usize,
}

/// How much a pass judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every subject, from one snapshot of the whole graph.
    Full,
    /// The subjects touched since the last pass.
    Changes,
}

tokio::task_local! {
    /// Set while the control evaluator writes, so its own writes do not wake it again.
    static EVALUATING: ();
}

/// Whether the current task is the control evaluator writing its results.
pub(crate) fn evaluating() -> bool {
    EVALUATING.try_with(|_| ()).is_ok()
}

/// This process's name on the evaluation lease.
fn lease_holder() -> &'static str {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER.get_or_init(|| uuid::Uuid::now_v7().simple().to_string())
}

/// Result changes of one pass planned at once.
const CHANGES_AT_ONCE: usize = 16;

/// How long a lease outlives a crashed holder.
const LEASE_SECS: i64 = 300;

/// The record of a control version's full evaluation.
fn evaluation_rid(control: &NodeId) -> RecordId {
    RecordId::new("control_evaluation", control.key().to_owned())
}

/// The block of a control's results that holds `subject`: the first byte of SHA-256 over
/// the subject's id, in hex (256 blocks a control at most, whatever the graph's size).
fn block_of(subject: &NodeId) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(subject.to_string().as_bytes())[..1])
}

/// The record of block `block` of control `key`'s results.
fn block_rid(key: &str, block: &str) -> RecordId {
    RecordId::new("control_block", format!("{key}|{block}"))
}

/// One result as a block holds it, under its subject's id.
#[derive(Deserialize)]
struct Entry {
    version: u32,
    status: ControlStatus,
    facts: String,
    since: DateTime<Utc>,
    first_at: DateTime<Utc>,
    finding: Option<NodeId>,
}

impl Entry {
    fn into_result(self, control: &str, subject: NodeId) -> ControlResult {
        let Entry { version, status, facts, since, first_at, finding } = self;
        ControlResult { control: control.to_owned(), version, subject, status, facts, since, first_at, finding }
    }
}

/// The stored form of an [`Entry`].
fn entry_value(r: &ControlResult) -> Value {
    Content::new()
        .set("version", i64::from(r.version))
        .set("status", r.status.as_str())
        .set("facts", r.facts.as_str())
        .set("since", dt(r.since))
        .set("first_at", dt(r.first_at))
        .opt("finding", r.finding.as_ref().map(rid))
        .into_value()
}

/// A block of results, as read.
#[derive(Deserialize)]
struct Block {
    control: String,
    results: HashMap<NodeId, Entry>,
}

impl Block {
    fn into_results(self) -> impl Iterator<Item = ControlResult> {
        let control = self.control;
        self.results.into_iter().map(move |(subject, e)| e.into_result(&control, subject))
    }
}

/// The record a control version is stored as.
pub(super) fn control_content(draft: &ControlDraft, version: u32, by: &NodeId) -> Result<Value> {
    Ok(Content::new()
        .set("key", draft.key.as_str())
        .set("version", i64::from(version))
        .set("title", draft.title.as_str())
        .set("description", draft.description.as_str())
        .set("owner", rid(&draft.owner))
        .set("refs", refs_text(&draft.refs))
        .set("scope", json_value(&draft.scope)?)
        .set("check", json_value(&draft.check)?)
        .set("sha256", draft.sha256(version))
        .set("published_at", dt(Utc::now()))
        .set("published_by", rid(by))
        .into_value())
}

fn decision_outcome(s: ControlStatus) -> Outcome {
    match s {
        ControlStatus::Pass => Outcome::Passed,
        ControlStatus::Fail => Outcome::Failed,
        ControlStatus::PassedByException => Outcome::PassedByException,
        ControlStatus::NotApplicable => Outcome::NotApplicable,
    }
}

impl Store {
    /// The latest version number of control `key`, 0 when none is published.
    pub(super) async fn latest_control_version(&self, key: &str) -> Result<u32> {
        let mut resp = self
            .read(
                "RETURN (SELECT VALUE version FROM control WHERE key = $key ORDER BY version DESC LIMIT 1)[0] ?? 0",
                &Vars::new().set("key", key),
            )
            .await?;
        take(&mut resp, 0)
    }

    /// Whether any control version is published.
    async fn any_control_published(&self) -> Result<bool> {
        let mut resp = self.read("RETURN array::len(SELECT VALUE id FROM control LIMIT 1) > 0", &Vars::new()).await?;
        take(&mut resp, 0)
    }

    /// The latest version of every control, by key.
    pub async fn controls(&self) -> Result<Vec<Control>> {
        let mut resp = self.read("SELECT * FROM control ORDER BY key, version DESC", &Vars::new()).await?;
        let all: Vec<Control> = take(&mut resp, 0)?;
        let mut latest: Vec<Control> = Vec::new();
        for c in all {
            if latest.last().is_none_or(|l| l.key != c.key) {
                latest.push(c);
            }
        }
        Ok(latest)
    }

    /// Every version of control `key`, newest first.
    pub async fn control_versions(&self, key: &str) -> Result<Vec<Control>> {
        let mut resp = self
            .read("SELECT * FROM control WHERE key = $key ORDER BY version DESC", &Vars::new().set("key", key))
            .await?;
        take(&mut resp, 0)
    }

    /// Control versions by id.
    pub async fn controls_by_id(&self, ids: &[NodeId]) -> Result<Vec<Control>> {
        self.records_by_id(Table::Control, ids).await
    }

    /// Evaluate every control's latest version at `now` over the whole graph, and
    /// record what changed. Runs under the evaluation lease; if another replica holds
    /// it, does nothing.
    pub async fn evaluate_controls(&self, now: DateTime<Utc>) -> Result<EvaluationReport> {
        EVALUATING.scope((), self.evaluate_controls_quietly(now, Pass::Full)).await
    }

    /// Judge again only the subjects that writes touched since this process's last
    /// pass (see `control_facts`), and record what changed: the cost of a change, not
    /// of the graph. A full evaluation instead when this process has made no pass yet
    /// or a control version awaits its first. What only the clock changes waits for
    /// the next [`Store::evaluate_controls`].
    pub async fn evaluate_control_changes(&self, now: DateTime<Utc>) -> Result<EvaluationReport> {
        EVALUATING.scope((), self.evaluate_controls_quietly(now, Pass::Changes)).await
    }

    /// Resolves at the next write of this process that the control evaluator did not
    /// make itself (at once if one came since the last call).
    pub async fn graph_changed(&self) {
        self.controls_wake.notified().await
    }

    async fn evaluate_controls_quietly(&self, now: DateTime<Utc>, pass: Pass) -> Result<EvaluationReport> {
        let mut seen = self.controls_turn.lock().await;
        // No control published: nothing to lease or read (most writes of a store
        // without controls wake the evaluator for nothing else).
        if !self.any_control_published().await? {
            return Ok(EvaluationReport::default());
        }
        if !self.take_control_lease().await? {
            return Ok(EvaluationReport { skipped: true, ..Default::default() });
        }
        let outcome = self.evaluate_controls_leased(now, pass, &mut seen).await;
        let release = self
            .write(
                "IF (SELECT VALUE holder FROM ONLY meta:control_lease) = $me { DELETE meta:control_lease };",
                &Vars::new().set("me", lease_holder()),
            )
            .await;
        if let Err(e) = release {
            tracing::warn!(error = %e, "releasing the control evaluation lease failed; it lapses by itself");
        }
        outcome
    }

    async fn take_control_lease(&self) -> Result<bool> {
        let sql = "BEGIN;
             LET $l = (SELECT holder, until FROM ONLY meta:control_lease);
             IF $l != NONE AND $l.until > time::now() AND $l.holder != $me { THROW 'CONFLICT: leased' };
             UPSERT meta:control_lease SET holder = $me, until = time::now() + $ttl RETURN NONE;
             COMMIT;";
        let vars = Vars::new()
            .set("me", lease_holder())
            .set("ttl", surrealdb::types::Duration::from_std(std::time::Duration::from_secs(LEASE_SECS as u64)));
        match self.write(sql, &vars).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_) | StoreError::Retryable) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One pass; `seen` is how far this process has judged the changes (the database's
    /// clock, and the stamps judged in the margin before it).
    async fn evaluate_controls_leased(
        &self,
        now: DateTime<Utc>,
        pass: Pass,
        seen: &mut super::Seen,
    ) -> Result<EvaluationReport> {
        let controls = self.controls().await?;
        let mut report = EvaluationReport::default();
        if controls.is_empty() {
            return Ok(report);
        }
        let evaluated = self.evaluated_versions(&controls).await?;
        let all_evaluated = controls.iter().all(|c| evaluated.contains(&c.id));
        if pass == Pass::Changes
            && all_evaluated
            && let Some(since) = seen.to
        {
            let touched = self.touched_since(self.graph.look_back(since), &seen.stamps).await?;
            report.touched = touched.subjects.len();
            if !touched.subjects.is_empty() {
                // The index as fresh as the changes read: what a subject is judged on
                // includes the write that touched it (a write of this process has made
                // it so already; another replica's may not have).
                self.sync_graph_to(touched.at).await?;
                let (facts, judged) = self.compliance_facts_of(&touched.subjects, now).await?;
                let mut stored = self.stored_results_of(&controls, &judged).await?;
                for c in &controls {
                    let results = control::evaluate(c, &facts, now);
                    let stored = stored.remove(&c.key).unwrap_or_default();
                    report.changes += self.record_changes(c, &results, &stored).await?;
                }
            }
            *seen = super::Seen { to: Some(touched.at), stamps: touched.stamps };
            return Ok(report);
        }
        // Read before the snapshot: what commits while it is read is judged next time.
        // So are the stamps of the margin before it: the next pass leaves them out,
        // where it would judge again every subject written in that margin. (Reading
        // more or fewer of them changes only how much the next pass judges again.)
        let (at, _, judged) = self.stamps_since(self.graph.look_back(Utc::now()), &Default::default()).await?;
        let facts = self.compliance_facts(now).await?;
        for c in &controls {
            let results = control::evaluate(c, &facts, now);
            let stored = self.stored_results(&c.key).await?;
            if evaluated.contains(&c.id) {
                report.changes += self.record_changes(c, &results, &stored).await?;
            } else {
                self.record_full_evaluation(c, &results, &stored).await?;
                report.full.push(c.key.clone());
            }
        }
        *seen = super::Seen { to: Some(at), stamps: judged };
        Ok(report)
    }

    async fn evaluated_versions(&self, controls: &[Control]) -> Result<Vec<NodeId>> {
        let ids: Vec<RecordId> = controls.iter().map(|c| evaluation_rid(&c.id)).collect();
        let mut resp = self.read("SELECT VALUE control FROM $ids", &Vars::new().set("ids", ids)).await?;
        take(&mut resp, 0)
    }

    /// Every stored result of control `key`, by subject: its blocks, read by the index.
    async fn stored_results(&self, key: &str) -> Result<HashMap<NodeId, ControlResult>> {
        let mut resp = self
            .read("SELECT control, results FROM control_block WHERE control = $key", &Vars::new().set("key", key))
            .await?;
        let blocks: Vec<Block> = take(&mut resp, 0)?;
        Ok(blocks.into_iter().flat_map(Block::into_results).map(|r| (r.subject.clone(), r)).collect())
    }

    /// The stored result of control `key` for `subject`.
    async fn stored_result(&self, key: &str, subject: &NodeId) -> Result<Option<ControlResult>> {
        let mut found = self.results_of(&[(key, subject)]).await?;
        Ok(found.pop().flatten())
    }

    /// The stored result of each (control key, subject), in order: only the entries
    /// asked for leave the database, each looked up in its block by record id.
    async fn results_of(&self, wanted: &[(&str, &NodeId)]) -> Result<Vec<Option<ControlResult>>> {
        let asked: Vec<Value> = wanted
            .iter()
            .map(|(key, s)| {
                Content::new().set("block", block_rid(key, &block_of(s))).set("subject", s.to_string()).into_value()
            })
            .collect();
        let mut resp = self
            .read("RETURN array::map($wanted, |$w| $w.block.results[$w.subject])", &Vars::new().set("wanted", asked))
            .await?;
        let entries: Vec<Option<Entry>> = take(&mut resp, 0)?;
        Ok(entries.into_iter().zip(wanted).map(|(e, (key, s))| e.map(|e| e.into_result(key, (*s).clone()))).collect())
    }

    /// The stored results of `controls` for `subjects`, by control key, in one round
    /// trip.
    async fn stored_results_of(
        &self,
        controls: &[Control],
        subjects: &std::collections::BTreeSet<NodeId>,
    ) -> Result<HashMap<String, HashMap<NodeId, ControlResult>>> {
        let wanted: Vec<(&str, &NodeId)> =
            controls.iter().flat_map(|c| subjects.iter().map(|s| (c.key.as_str(), s))).collect();
        let mut out: HashMap<String, HashMap<NodeId, ControlResult>> = HashMap::new();
        for r in self.results_of(&wanted).await?.into_iter().flatten() {
            out.entry(r.control.clone()).or_default().insert(r.subject.clone(), r);
        }
        Ok(out)
    }

    /// Results stored a row a subject (schema versions 11 to 22) moved into their
    /// blocks, `part` rows a transaction, and the old table removed once empty: the
    /// entries as they were, so an upgrade records no change of standing. Returns how
    /// many rows were moved.
    pub(crate) async fn move_result_rows(&self, part: usize) -> Result<usize> {
        let mut resp = self.read("RETURN (INFO FOR DB).tables.control_result != NONE", &Vars::new()).await?;
        if !take::<bool>(&mut resp, 0)? {
            return Ok(0);
        }
        let mut moved = 0;
        loop {
            let mut resp =
                self.read(&format!("SELECT * OMIT id FROM control_result LIMIT {part}"), &Vars::new()).await?;
            let rows: Vec<ControlResult> = take(&mut resp, 0)?;
            if rows.is_empty() {
                break;
            }
            let ids: Vec<RecordId> =
                rows.iter().map(|r| RecordId::new("control_result", format!("{}|{}", r.control, r.subject))).collect();
            let mut blocks: BTreeMap<(String, String), Content> = BTreeMap::new();
            for r in &rows {
                let block = blocks.entry((r.control.clone(), block_of(&r.subject))).or_default();
                *block = std::mem::take(block).set(&r.subject.to_string(), entry_value(r));
            }
            let blocks: Vec<Value> = blocks
                .into_iter()
                .map(|((key, block), results)| {
                    Content::new()
                        .set("id", block_rid(&key, &block))
                        .set("control", key)
                        .set("results", results.into_value())
                        .into_value()
                })
                .collect();
            let sql = "BEGIN;
                 FOR $b IN $blocks {
                     UPSERT $b.id SET control = $b.control, results = object::extend(results ?? {}, $b.results)
                         RETURN NONE;
                 };
                 DELETE $ids RETURN NONE;
                 COMMIT;";
            self.write(sql, &Vars::new().set("blocks", blocks).set("ids", ids)).await?;
            moved += rows.len();
        }
        self.write("REMOVE TABLE IF EXISTS control_result;", &Vars::new()).await?;
        Ok(moved)
    }

    /// The first evaluation of a version: one decision for all of its results, or, over
    /// more subjects than a part holds (`StoreConfig::evaluation_part`), one decision per
    /// part (whole blocks, in block order), the last holding the digest and counts of
    /// them all and marking the version evaluated. A pass stopped between parts leaves the version
    /// unmarked, and the next full pass judges every subject again: the parts already
    /// written are then unchanged, and their findings are joined, not opened twice.
    async fn record_full_evaluation(
        &self,
        c: &Control,
        results: &BTreeMap<NodeId, ControlOutcome>,
        stored: &HashMap<NodeId, ControlResult>,
    ) -> Result<()> {
        let server = self.server_principal().await?;
        let open = self.open_findings(&c.key).await?;
        let now = Utc::now();
        let mut judged: Vec<Judged<'_>> =
            results.iter().map(|(subject, o)| Judged { subject, status: o.status, facts: o.facts.as_str() }).collect();
        // Subjects judged before and no longer in the check's reach.
        for subject in stored.keys() {
            if !results.contains_key(subject) {
                judged.push(Judged { subject, status: ControlStatus::NotApplicable, facts: OUT_OF_REACH });
            }
        }
        let parts = parts_of(judged, self.evaluation_part);
        let of = parts.len();
        let (mut changed, mut opened) = (0, 0);
        for (i, part) in parts.into_iter().enumerate() {
            let mut writes = FullWrites::default();
            for (block, judged) in &part.blocks {
                let entries: Vec<(String, Value)> = judged
                    .iter()
                    .map(|j| {
                        (j.subject.to_string(), writes.add(c, *j, stored.get(j.subject), open.get(j.subject), now))
                    })
                    .collect();
                writes.block(c, block, entries);
            }
            let part = part.subjects();
            changed += writes.changes.len();
            opened += writes.opened.len();
            let (rationale, inputs, whole) = if i + 1 == of {
                let whole = Whole { digest: control::digest(results), counts: control::counts(results) };
                let mut inputs = json!({
                    "control": c.id.to_string(), "key": c.key, "version": c.version, "sha256": c.sha256,
                    "digest": whole.digest, "counts": whole.counts, "changed": changed, "findings_opened": opened,
                });
                let mut rationale = format!("{} v{} evaluated in full: {}", c.key, c.version, summary(&whole.counts));
                if of > 1 {
                    inputs["parts"] = json!(of);
                    rationale.push_str(&format!(" (in {of} parts)"));
                }
                (rationale, inputs, Some(whole))
            } else {
                let mine: BTreeMap<NodeId, ControlOutcome> = part
                    .iter()
                    .filter_map(|j| results.get_key_value(j.subject))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let counts = control::counts(&mine);
                let inputs = json!({
                    "control": c.id.to_string(), "key": c.key, "version": c.version, "sha256": c.sha256,
                    "part": i + 1, "parts": of, "subjects": part.len(), "digest": control::digest(&mine), "counts": counts,
                    "changed": writes.changes.len(), "findings_opened": writes.opened.len(),
                });
                let rationale =
                    format!("{} v{} evaluated in full, part {} of {of}: {}", c.key, c.version, i + 1, summary(&counts));
                (rationale, inputs, None)
            };
            let draft =
                DecisionDraft { refs: c.refs.clone(), inputs, ..self.evaluation_draft(c, &server, rationale).await? };
            self.record_full_part(c, writes, draft, whole, now).await?;
        }
        Ok(())
    }

    async fn evaluation_draft(&self, c: &Control, server: &NodeId, rationale: String) -> Result<DecisionDraft> {
        let policy = self.current_policy().await?;
        Ok(DecisionDraft::under(&policy, DecisionKind::EvaluateControl, Outcome::Completed, server, &c.id, rationale))
    }

    /// One part of a full evaluation, as one decision; the last (`whole`) also writes
    /// the record that marks the version evaluated.
    async fn record_full_part(
        &self,
        c: &Control,
        writes: FullWrites,
        draft: DecisionDraft,
        whole: Option<Whole>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut effects = "DELETE $block_ids RETURN NONE;
             IF array::len($blocks) > 0 { INSERT INTO control_block $blocks RETURN NONE };
             IF array::len($changes) > 0 {
                 CREATE control_change_part CONTENT { control: $part_key, version: $part_version, at: $part_at,
                     changes: $changes, decision: $decision_id } RETURN NONE;
             };
             IF array::len($opened) > 0 {
                 INSERT INTO finding array::map($opened, |$f| object::extend($f, { opened_by: $decision_id }))
                     RETURN NONE;
             };
             UPDATE $recurred SET remediated_at = NONE, remediated_by = NONE, recurrences += 1, rev += 1 RETURN NONE;
             UPDATE $remediated SET remediated_at = time::now(), remediated_by = $decision_id, rev += 1 RETURN NONE;"
            .to_owned();
        let mut vars = Vars::new()
            .set("block_ids", writes.block_ids)
            .set("blocks", writes.blocks)
            .set("changes", writes.changes)
            .set("part_key", c.key.as_str())
            .set("part_version", i64::from(c.version))
            .set("part_at", dt(now))
            .set("opened", writes.opened)
            .set("recurred", writes.recurred)
            .set("remediated", writes.remediated);
        if let Some(whole) = whole {
            effects.push_str(
                "CREATE ONLY $evaluation CONTENT $evaluation_content RETURN NONE;
                 UPDATE $evaluation SET decision = $decision_id RETURN NONE;",
            );
            let evaluation = Content::new()
                .set("control", rid(&c.id))
                .set("key", c.key.as_str())
                .set("version", i64::from(c.version))
                .set("digest", whole.digest.as_str())
                .set("counts", json_value(&whole.counts)?)
                .set("at", dt(now))
                .into_value();
            vars = vars.set("evaluation", evaluation_rid(&c.id)).set("evaluation_content", evaluation);
        }
        self.decide_once(Plan { leaves_signins: false, draft, effects, vars }, || {
            StoreError::Conflict("the evaluation changed while it was recorded".into())
        })
        .await
    }

    /// Record a decision planned once: if the plan goes stale it is not made again, and
    /// `stale` is the error.
    async fn decide_once(&self, plan: Plan, stale: impl Fn() -> StoreError + Send + Sync) -> Result<()> {
        let mut once = Some(plan);
        self.decide(|| {
            let planned = once.take().ok_or_else(&stale);
            Box::pin(async move { planned })
        })
        .await?;
        Ok(())
    }

    /// Each subject whose status changed since the last pass: one decision each.
    async fn record_changes(
        &self,
        c: &Control,
        results: &BTreeMap<NodeId, ControlOutcome>,
        stored: &HashMap<NodeId, ControlResult>,
    ) -> Result<u64> {
        let gone = ControlOutcome { status: ControlStatus::NotApplicable, facts: OUT_OF_REACH.into() };
        let mut changed: Vec<(&NodeId, &ControlOutcome)> = results
            .iter()
            .filter(|(s, o)| stored.get(*s).is_none_or(|r| r.status != o.status || r.version != c.version))
            .collect();
        for (s, r) in stored {
            if !results.contains_key(s) && r.status != ControlStatus::NotApplicable {
                changed.push((s, &gone));
            }
        }
        if changed.is_empty() {
            return Ok(0);
        }
        let server = self.server_principal().await?;
        // The policy the pass's changes are recorded under, read once for the pass like
        // the facts it judged.
        let policy = self.current_policy().await?;
        let by = (&server, &policy);
        // Side by side, so that the committer seals the pass's changes in few
        // transactions rather than one each.
        let mut changes: Vec<PlanFuture<'_, ()>> = Vec::with_capacity(changed.len());
        for (subject, outcome) in changed {
            let before = stored.get(subject);
            if before.map(|r| r.status) != Some(outcome.status) {
                changes.push(Box::pin(self.record_change(c, by, subject, before, outcome)));
            }
        }
        let mut recorded = futures::stream::iter(changes).buffer_unordered(CHANGES_AT_ONCE);
        let mut n = 0;
        while let Some(outcome) = recorded.next().await {
            match outcome {
                Ok(()) => n += 1,
                // Recorded meanwhile by another evaluator.
                Err(StoreError::Stale(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    async fn record_change(
        &self,
        c: &Control,
        (server, policy): (&NodeId, &Policy),
        subject: &NodeId,
        stored: Option<&ControlResult>,
        outcome: &ControlOutcome,
    ) -> Result<()> {
        let (before, first_at) = (stored.map(|r| r.status), stored.map(|r| r.first_at));
        let open = self.open_findings_of(&c.key, subject).await?;
        let from = before.map_or("unjudged", |b| b.as_str());
        let draft = DecisionDraft {
            refs: c.refs.clone(),
            inputs: json!({
                "control": c.id.to_string(), "key": c.key, "version": c.version, "sha256": c.sha256,
                "subject": subject.to_string(), "before": before, "after": outcome.status, "facts": outcome.facts,
            }),
            ..DecisionDraft::under(
                policy,
                DecisionKind::ControlResult,
                decision_outcome(outcome.status),
                server,
                subject,
                format!("{} v{}: {from} → {}: {}", c.key, c.version, outcome.status, outcome.facts),
            )
        };
        let now = Utc::now();
        let (finding_sql, finding, vars) = finding_effect(c, subject, outcome, open.as_ref(), now);
        // The guard re-reads the entry; its first judgement stands while its status does.
        let entry = entry_value(&ControlResult {
            control: c.key.clone(),
            version: c.version,
            subject: subject.clone(),
            status: outcome.status,
            facts: outcome.facts.clone(),
            since: now,
            first_at: first_at.unwrap_or(now),
            finding: finding.clone(),
        });
        let effects = format!(
            "IF ($result_block.results[$result_subject].status ?? 'unjudged') != $before {{ THROW '{STALE}' }};
             {finding_sql}
             UPSERT $result_block SET control = $key, results[$result_subject] = $entry RETURN NONE;
             CREATE control_change CONTENT {{ control: $key, version: $version, subject: $subject,
                 before: $before_status, after: $after, facts: $facts, at: time::now(), decision: $decision_id }} RETURN NONE;"
        );
        // The subject's owners (directly or through a team) see the change in their queue.
        let owners: Vec<RecordId> = self.owner_facts(subject).await?.people.iter().map(|(p, _)| rid(p)).collect();
        let vars = vars
            .set("ev_owners", owners)
            .set("result_block", block_rid(&c.key, &block_of(subject)))
            .set("result_subject", subject.to_string())
            .set("entry", entry)
            .set("before", from)
            .set("before_status", before.map(|b| b.as_str()))
            .set("key", c.key.as_str())
            .set("version", i64::from(c.version))
            .set("subject", rid(subject))
            .set("after", outcome.status.as_str())
            .set("facts", outcome.facts.as_str());
        // A plan that went stale is not made again: the next pass reads afresh.
        self.decide_once(Plan { leaves_signins: false, draft, effects, vars }, || {
            StoreError::Stale("the result changed while it was recorded".into())
        })
        .await
    }

    /// Open findings of control `key`, by subject.
    async fn open_findings(&self, key: &str) -> Result<HashMap<NodeId, Finding>> {
        let mut resp = self
            .read("SELECT * FROM finding WHERE control = $key AND status = 'open'", &Vars::new().set("key", key))
            .await?;
        let rows: Vec<Finding> = take(&mut resp, 0)?;
        Ok(rows.into_iter().map(|f| (f.subject.clone(), f)).collect())
    }

    async fn open_findings_of(&self, key: &str, subject: &NodeId) -> Result<Option<Finding>> {
        let mut resp = self
            .read(
                "SELECT * FROM finding WITH INDEX finding_subject
                     WHERE subject = $subject AND control = $key AND status = 'open' LIMIT 1",
                &Vars::new().set("key", key).set("subject", rid(subject)),
            )
            .await?;
        let mut rows: Vec<Finding> = take(&mut resp, 0)?;
        Ok(rows.pop())
    }

    /// Every change of standing of control `key` up to `as_of`, oldest first: the rows
    /// of single changes and the entries of full evaluations' parts.
    async fn status_changes(&self, key: &str, as_of: DateTime<Utc>) -> Result<Vec<StatusChange>> {
        let sql = "SELECT subject, version, after, facts, at FROM control_change
                       WHERE control = $key AND at <= $as_of ORDER BY at;
                   SELECT version, at, changes FROM control_change_part
                       WHERE control = $key AND at <= $as_of ORDER BY at;";
        let mut resp = self.read(sql, &Vars::new().set("key", key).set("as_of", dt(as_of))).await?;
        let mut changes: Vec<StatusChange> = take(&mut resp, 0)?;
        let parts: Vec<ChangePart> = take(&mut resp, 1)?;
        changes.extend(parts.into_iter().flat_map(|p| {
            let (version, at) = (p.version, p.at);
            p.changes.into_iter().map(move |e| StatusChange {
                subject: e.subject,
                version,
                after: e.after,
                facts: e.facts,
                at,
            })
        }));
        // Stable: changes recorded at one instant keep the order they were read in.
        changes.sort_by_key(|c| c.at);
        Ok(changes)
    }

    /// Results of control `key` in subject order: now, or as they stood at `as_of`
    /// (folded from the history of changes; a subject first judged later is absent).
    pub async fn control_results(
        &self,
        key: &str,
        status: Option<ControlStatus>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<ControlResult>> {
        let mut rows: Vec<ControlResult> = match as_of {
            None => self.stored_results(key).await?.into_values().collect(),
            Some(t) => {
                let changes = self.status_changes(key, t).await?;
                let mut then: HashMap<NodeId, ControlResult> = HashMap::new();
                for ch in changes {
                    let first_at = then.get(&ch.subject).map_or(ch.at, |r| r.first_at);
                    then.insert(
                        ch.subject.clone(),
                        ControlResult {
                            control: key.to_owned(),
                            version: ch.version,
                            subject: ch.subject,
                            status: ch.after,
                            facts: ch.facts,
                            since: ch.at,
                            first_at,
                            finding: None,
                        },
                    );
                }
                then.into_values().filter(|r| r.status != ControlStatus::NotApplicable || status.is_some()).collect()
            }
        };
        if let Some(s) = status {
            rows.retain(|r| r.status == s);
        }
        rows.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(rows)
    }

    /// Findings, newest first.
    pub async fn findings(&self, f: &FindingFilter, limit: usize) -> Result<Vec<Finding>> {
        // A control's findings in any status: its open ones and its closed ones, each
        // read by the (status, control) index, merged (the index has no control alone).
        if f.control.is_some() && f.status.is_none() && f.subject.is_none() && f.owned_by.is_none() {
            let mut all = Vec::new();
            for status in [FindingStatus::Open, FindingStatus::Closed] {
                let one = FindingFilter { status: Some(status), ..f.clone() };
                all.extend(Box::pin(self.findings(&one, limit)).await?);
            }
            all.sort_by(|a, b| b.id.cmp(&a.id));
            all.truncate(limit);
            return Ok(all);
        }
        let mut cond = vec!["true"];
        if f.control.is_some() {
            cond.push("control = $control");
        }
        if f.status.is_some() {
            cond.push("status = $status");
        }
        if f.subject.is_some() {
            cond.push("subject = $subject");
        }
        // By subject, the planner would rather walk every open finding by status.
        let hint = if f.owned_by.is_some() || f.subject.is_some() { "WITH INDEX finding_subject" } else { "" };
        let mut vars = Vars::new()
            .set("control", f.control.clone())
            .set("status", f.status.map(|s| s.as_str()))
            .set("subject", f.subject.as_ref().map(rid))
            .set("limit", limit as i64);
        // The statement whose rows are the answer: the second when what they own is
        // gathered first.
        let (sql, at) = match &f.owned_by {
            // What they own, read by subject 32 at a time, then ordered and cut.
            Some(person) => {
                let owned: Vec<RecordId> = self.ownership_of(person).await?.1.iter().map(rid).collect();
                cond.push("subject IN $owned");
                let select = format!("SELECT * FROM finding {hint} WHERE {}", cond.join(" AND "));
                let (rows, chunks) = in_chunks_expr(&select, "owned", &owned);
                vars = vars.merge(chunks);
                (format!("LET $rows = {rows}; SELECT * FROM $rows ORDER BY id DESC LIMIT $limit;"), 1)
            }
            None => {
                (format!("SELECT * FROM finding {hint} WHERE {} ORDER BY id DESC LIMIT $limit;", cond.join(" AND ")), 0)
            }
        };
        let mut resp = self.read(&sql, &vars).await?;
        take(&mut resp, at)
    }

    pub async fn findings_by_id(&self, ids: &[NodeId]) -> Result<Vec<Finding>> {
        self.records_by_id(Table::Finding, ids).await
    }

    async fn finding(&self, id: &NodeId) -> Result<Finding> {
        self.findings_by_id(std::slice::from_ref(id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Link a case, request or decision to a finding as part of its remediation: a
    /// decision of `actor`.
    pub async fn link_finding(&self, actor: &Actor, id: &NodeId, to: &NodeId, rationale: &Text) -> Result<Decision> {
        if !matches!(to.table(), Table::Case | Table::Request | Table::Decision) {
            return Err(ValueError::new("to", format!("{to} is not a case, request or decision")).into());
        }
        self.decide(|| {
            Box::pin(async move {
                let ((_, roles), policy, f) =
                    futures::try_join!(self.acting(actor), self.current_policy(), self.finding(id))?;
                if !self.record_exists(to).await? {
                    return Err(ValueError::new("to", format!("no {to}")).into());
                }
                if f.status == FindingStatus::Closed {
                    return Err(StoreError::Conflict(format!("{id} is closed")));
                }
                if f.links.contains(to) {
                    return Err(StoreError::Conflict(format!("{to} is linked to {id} already")));
                }
                let draft = DecisionDraft {
                    inputs: json!({ "finding": id.to_string(), "linked": to.to_string(), "actor_roles": roles }),
                    ..DecisionDraft::under(
                        &policy,
                        DecisionKind::LinkFinding,
                        Outcome::Linked,
                        &actor.id,
                        id,
                        rationale.as_str(),
                    )
                };
                let effects = format!(
                    "IF $finding.rev != $rev {{ THROW '{STALE}' }};
                     UPDATE $finding SET links += $to, rev += 1 RETURN NONE;"
                );
                let vars = Vars::new().set("finding", rid(id)).set("rev", f.rev as i64).set("to", rid(to));
                Ok(Plan { leaves_signins: false, draft, effects, vars })
            })
        })
        .await
    }

    /// Close a finding, with evidence: a decision of `actor`. Refused (and recorded)
    /// when the actor owns the subject; refused as input while the check still fails:
    /// the risk is remediated (or accepted by an exception) before the finding closes.
    pub async fn close_finding(
        &self,
        actor: &Actor,
        id: &NodeId,
        evidence: &[NodeId],
        rationale: &Text,
    ) -> Result<Decision> {
        if evidence.is_empty() {
            return Err(ValueError::new("evidenceIds", "closing a finding names the evidence it rests on").into());
        }
        let evidence = distinct(evidence.iter().cloned());
        let evidence = &evidence;
        self.decide(|| {
            Box::pin(async move {
                let ((_, roles), policy, f) = futures::try_join!(self.acting(actor), self.current_policy(), self.finding(id))?;
                if f.status == FindingStatus::Closed {
                    return Err(StoreError::Conflict(format!("{id} is closed already")));
                }
                let found = self.evidence_by_id(evidence).await?;
                if let Some(missing) = evidence.iter().find(|e| !found.iter().any(|x| &x.id == *e)) {
                    return Err(ValueError::new("evidenceIds", format!("no evidence {missing}")).into());
                }
                let current = self.stored_result(&f.control, &f.subject).await?;
                if current.as_ref().is_some_and(|r| r.status.failing()) {
                    return Err(ValueError::new(
                        "id",
                        format!(
                            "{} still fails {}: remediate it (or have an exception approved) before closing the finding",
                            f.subject, f.control
                        ),
                    )
                    .into());
                }
                let owners = self.owner_facts(&f.subject).await?;
                let draft = DecisionDraft {
                    signals: evidence.clone(),
                    inputs: json!({
                        "finding": id.to_string(), "control": f.control, "subject": f.subject.to_string(),
                        "status_now": current.map(|r| r.status), "remediated_at": f.remediated_at, "actor_roles": roles,
                    }),
                    ..DecisionDraft::under(&policy, DecisionKind::CloseFinding, Outcome::Closed, &actor.id, id, rationale.as_str())
                };
                if owners.includes(&actor.id) {
                    let v = Violation {
                        rule: RuleKind::OwnerCannotCloseFinding,
                        policy_version: policy.version,
                        message: format!("{} owns {}: its finding is closed by someone else", actor.id, f.subject),
                    };
                    return Ok(Plan::refused(draft, v));
                }
                let effects = format!(
                    "IF $finding.rev != $rev {{ THROW '{STALE}' }};
                     UPDATE $finding SET status = 'closed', closed_at = time::now(), closed_by = $actor,
                         closing_decision = $decision_id, evidence = $evidence, rev += 1 RETURN NONE;"
                );
                let vars = Vars::new()
                    .set("finding", rid(id))
                    .set("rev", f.rev as i64)
                    .set("actor", rid(&actor.id))
                    .set("evidence", evidence.iter().map(rid).collect::<Vec<_>>());
                Ok(Plan { leaves_signins: false, draft, effects, vars })
            })
        })
        .await
    }

    async fn record_exists(&self, id: &NodeId) -> Result<bool> {
        let mut resp = self.read("RETURN record::exists($id)", &Vars::new().set("id", rid(id))).await?;
        take(&mut resp, 0)
    }
}

/// What a subject no longer in a control's reach is judged: not applicable.
const OUT_OF_REACH: &str = "no longer within the control's reach";

/// The digest and counts of every result of a full evaluation.
struct Whole {
    digest: String,
    counts: BTreeMap<&'static str, u64>,
}

/// Counts in words: "3 pass, 1 fail".
fn summary(counts: &BTreeMap<&'static str, u64>) -> String {
    let words: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {}", k.replace('_', " "))).collect();
    words.join(", ")
}

/// One subject's result in a full evaluation.
#[derive(Clone, Copy)]
struct Judged<'a> {
    subject: &'a NodeId,
    status: ControlStatus,
    facts: &'a str,
}

/// A part of a full evaluation: whole blocks of results, in block order.
struct Part<'a> {
    blocks: Vec<(String, Vec<Judged<'a>>)>,
}

impl<'a> Part<'a> {
    fn len(&self) -> usize {
        self.blocks.iter().map(|(_, j)| j.len()).sum()
    }

    /// Its subjects' judgements, in block order.
    fn subjects(&self) -> Vec<Judged<'a>> {
        self.blocks.iter().flat_map(|(_, j)| j.iter().copied()).collect()
    }
}

/// The parts a full evaluation is written in: whole blocks, in block order, up to
/// `size` subjects a part (a block larger than that is a part alone); one empty part
/// when nothing was judged.
fn parts_of(judged: Vec<Judged<'_>>, size: usize) -> Vec<Part<'_>> {
    let mut blocks: BTreeMap<String, Vec<Judged<'_>>> = BTreeMap::new();
    for j in judged {
        blocks.entry(block_of(j.subject)).or_default().push(j);
    }
    let mut parts: Vec<Part<'_>> = Vec::new();
    for (block, judged) in blocks {
        match parts.last_mut() {
            Some(p) if p.len() + judged.len() <= size => p.blocks.push((block, judged)),
            _ => parts.push(Part { blocks: vec![(block, judged)] }),
        }
    }
    if parts.is_empty() {
        parts.push(Part { blocks: Vec::new() });
    }
    parts
}

/// What a full evaluation writes: every block of results whole, the changes of status,
/// findings opened, recurred and remediated.
#[derive(Default)]
struct FullWrites {
    block_ids: Vec<RecordId>,
    blocks: Vec<Value>,
    changes: Vec<Value>,
    opened: Vec<Value>,
    recurred: Vec<RecordId>,
    remediated: Vec<RecordId>,
}

impl FullWrites {
    /// One block of results, written whole.
    fn block(&mut self, c: &Control, block: &str, entries: Vec<(String, Value)>) {
        let id = block_rid(&c.key, block);
        let results = entries.into_iter().fold(Content::new(), |o, (subject, e)| o.set(&subject, e));
        self.block_ids.push(id.clone());
        self.blocks.push(
            Content::new()
                .set("id", id)
                .set("control", c.key.as_str())
                .set("results", results.into_value())
                .into_value(),
        );
    }

    /// Add one subject's judgement, given its stored result and its open finding: the
    /// entry of its block.
    fn add(
        &mut self,
        c: &Control,
        j: Judged<'_>,
        before: Option<&ControlResult>,
        open: Option<&Finding>,
        now: DateTime<Utc>,
    ) -> Value {
        let Judged { subject, status, facts } = j;
        let changed = before.is_none_or(|b| b.status != status);
        let mut finding = before.and_then(|b| b.finding.clone());
        match (status.failing(), open) {
            (true, None) => {
                let id = NodeId::generate(Table::Finding);
                self.opened.push(finding_content(&id, c, subject, facts, now));
                finding = Some(id);
            }
            (true, Some(f)) => {
                if f.remediated_at.is_some() {
                    self.recurred.push(rid(&f.id));
                }
                finding = Some(f.id.clone());
            }
            (false, Some(f)) if f.remediated_at.is_none() => self.remediated.push(rid(&f.id)),
            (false, _) => {}
        }
        if changed {
            self.changes.push(
                Content::new()
                    .set("subject", rid(subject))
                    .opt("before", before.map(|b| b.status.as_str()))
                    .set("after", status.as_str())
                    .set("facts", facts)
                    .into_value(),
            );
        }
        entry_value(&ControlResult {
            control: c.key.clone(),
            version: c.version,
            subject: subject.clone(),
            status,
            facts: if changed { facts } else { before.map_or(facts, |b| b.facts.as_str()) }.to_owned(),
            since: if changed { now } else { before.map_or(now, |b| b.since) },
            first_at: before.map_or(now, |b| b.first_at),
            finding,
        })
    }
}

/// What one change of status does to the subject's finding: opens one, reopens a
/// remediated one, or marks it remediated; the statements (guarded by the finding's
/// revision), the finding the result names, and their bindings.
fn finding_effect(
    c: &Control,
    subject: &NodeId,
    outcome: &ControlOutcome,
    open: Option<&Finding>,
    now: DateTime<Utc>,
) -> (String, Option<NodeId>, Vars) {
    let guarded = |f: &Finding, sql: &str| {
        let vars = Vars::new().set("finding", rid(&f.id)).set("finding_rev", f.rev as i64);
        (format!("IF $finding.rev != $finding_rev {{ THROW '{STALE}' }};\n{sql}"), Some(f.id.clone()), vars)
    };
    match (outcome.status.failing(), open) {
        (true, None) => {
            let id = NodeId::generate(Table::Finding);
            let vars = Vars::new()
                .set("finding", rid(&id))
                .set("finding_content", finding_content(&id, c, subject, &outcome.facts, now));
            let sql = "CREATE ONLY $finding CONTENT $finding_content RETURN NONE;
                 UPDATE $finding SET opened_by = $decision_id RETURN NONE;";
            (sql.into(), Some(id), vars)
        }
        (true, Some(f)) if f.remediated_at.is_some() => guarded(
            f,
            "UPDATE $finding SET remediated_at = NONE, remediated_by = NONE, recurrences += 1, rev += 1 RETURN NONE;",
        ),
        (false, Some(f)) if f.remediated_at.is_none() => guarded(
            f,
            "UPDATE $finding SET remediated_at = time::now(), remediated_by = $decision_id, rev += 1 RETURN NONE;",
        ),
        _ => (String::new(), open.map(|f| f.id.clone()), Vars::new()),
    }
}

/// A new finding's record.
fn finding_content(id: &NodeId, c: &Control, subject: &NodeId, facts: &str, now: DateTime<Utc>) -> Value {
    Content::new()
        .set("id", rid(id))
        .set("control", c.key.as_str())
        .set("control_version", i64::from(c.version))
        .set("subject", rid(subject))
        .set("status", FindingStatus::Open.as_str())
        .set("facts", facts)
        .set("opened_at", dt(now))
        .set("links", Vec::<RecordId>::new())
        .set("evidence", Vec::<RecordId>::new())
        .set("recurrences", 0i64)
        .set("rev", 0i64)
        .into_value()
}
