//! Decision records and policies: writing a sealed record, reading and filtering them,
//! verifying the chain, and publishing policy versions.

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, Value};

use super::{dt, refs_text};
use crate::domain::*;
use crate::store::{
    Content, Page, PageRequest, Result, Store, StoreError, Vars, Where, in_chunks_expr, json_value, rid, take,
};

/// The fields a sealed decision is written with.
pub(super) fn content(d: &Decision) -> Result<Value> {
    let ids = |v: &[NodeId]| v.iter().map(rid).collect::<Vec<RecordId>>();
    Ok(Content::new()
        .set("seq", d.seq as i64)
        .set("kind", d.kind.as_str())
        .set("outcome", d.outcome.as_str())
        .set("actor", rid(&d.actor))
        .set("subject", rid(&d.subject))
        .opt("case", d.case.as_ref().map(rid))
        .set("rationale", d.rationale.as_str())
        .set("signals", ids(&d.signals))
        .opt("policy", d.policy.as_ref().map(rid))
        .opt("policy_version", d.policy_version.map(i64::from))
        .opt("policy_sha256", d.policy_sha256.clone())
        .opt("violation", d.violation.as_ref().map(json_value).transpose()?)
        .set("refs", refs_text(&d.refs))
        .set("inputs", d.inputs.as_str())
        .set("at", dt(d.at))
        .set("prev_hash", d.prev_hash.as_str())
        .set("hash", d.hash.as_str())
        .into_value())
}

/// What [`Store::verify_digests`] found.
#[derive(Debug, Clone)]
pub struct DigestReport {
    pub policies: usize,
    pub altered_policies: Vec<NodeId>,
    pub evidence: usize,
    pub altered_evidence: Vec<NodeId>,
}

/// Which decisions to list.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub subject: Option<NodeId>,
    pub case: Option<NodeId>,
    pub actor: Option<NodeId>,
    pub kind: Option<DecisionKind>,
    pub outcome: Option<Outcome>,
    pub reference: Option<FrameworkRef>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// Decisions by id; missing ids are absent.
    pub async fn decisions_by_id(&self, ids: &[NodeId]) -> Result<Vec<Decision>> {
        self.records_by_id(Table::Decision, ids).await
    }

    pub async fn decision(&self, id: &NodeId) -> Result<Decision> {
        self.decisions_by_id(std::slice::from_ref(id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// A page of decisions, in chain order.
    pub async fn decisions(&self, f: &DecisionFilter, page: &PageRequest) -> Result<Page<Decision>> {
        let w = Where::default()
            .eq("subject", f.subject.as_ref().map(rid))
            .eq("case", f.case.as_ref().map(rid))
            .eq("actor", f.actor.as_ref().map(rid))
            .eq("kind", f.kind.map(|k| k.as_str()))
            .eq("outcome", f.outcome.map(|o| o.as_str()))
            .when("refs CONTAINSANY $refs", "refs", f.reference.as_ref().map(FrameworkRef::forms))
            .when("at >= $from", "from", f.from.map(dt))
            .when("at < $to", "to", f.to.map(dt));
        self.page_where(Table::Decision, "decision", w, page).await
    }

    /// Every decision about a node of the graph, in chain order: on the node itself; on
    /// requests whose subject or target it is; on cases that concern it; on alerts about
    /// it; on the secrets it holds (their rotations and alerts); and the decisions behind
    /// its edges (the grants of its access and delegations, the secrets it holds, who
    /// owns it) and, for a person, the genesis that gave them their first roles. Changes
    /// to its roles, activity, status, ownership and the tokens acting for it name it as
    /// their subject. The auditor's "who approved access to this, when, under which
    /// policy, on what evidence" in one read.
    pub async fn decisions_about(&self, node: &NodeId) -> Result<Vec<Decision>> {
        // What the decisions are about first, each list read by an index; then the
        // decisions on them 32 at a time (past 32 values SurrealDB 3.3 reads `IN $list`
        // from no index: here the whole chain).
        let sql = "LET $held = (SELECT VALUE out FROM $n->holds);
             LET $nodes = array::concat([$n], $held);
             LET $requests = array::concat(
                 (SELECT VALUE id FROM request WITH INDEX request_subject WHERE subject IN $nodes),
                 (SELECT VALUE id FROM request WITH INDEX request_target WHERE target = $n));
             LET $cases = (SELECT VALUE id FROM case WHERE $n IN subjects);
             LET $alerts = (SELECT VALUE id FROM alert WITH INDEX alert_subject WHERE subject IN $nodes);
             RETURN [array::distinct(array::concat($requests, $cases, $alerts, $nodes)), $cases];
             LET $behind = array::filter(array::flatten([
                 (SELECT VALUE granted_by FROM $n->can_access), (SELECT VALUE granted_by FROM $n->assumes),
                 (SELECT VALUE granted_by FROM $n->holds), (SELECT VALUE granted_by FROM $n<-owns),
                 (SELECT VALUE granted_by FROM $n->member_of),
                 IF record::tb($n) = 'person' { [(SELECT VALUE genesis FROM ONLY meta:governance)] } ELSE { [] }
             ]), |$d| $d != NONE);
             SELECT * FROM array::distinct($behind);";
        let mut resp = self.read(sql, &Vars::new().set("n", rid(node))).await?;
        let (about, cases): (Vec<NodeId>, Vec<NodeId>) = take(&mut resp, 5)?;
        let behind: Vec<Decision> = take(&mut resp, 7)?;
        let (on_subjects, subject_vars) = in_chunks_expr(
            "SELECT * FROM decision WITH INDEX decision_subject WHERE subject IN $about",
            "about",
            &about.iter().map(rid).collect::<Vec<_>>(),
        );
        let (on_cases, case_vars) = in_chunks_expr(
            "SELECT * FROM decision WITH INDEX decision_case WHERE case IN $cases",
            "cases",
            &cases.iter().map(rid).collect::<Vec<_>>(),
        );
        let sql = format!("RETURN array::concat({on_subjects}, {on_cases});");
        let mut resp = self.read(&sql, &subject_vars.merge(case_vars)).await?;
        let mut found: Vec<Decision> = take(&mut resp, 0)?;
        found.sort_by_key(|d| d.seq);
        found.dedup_by_key(|d| d.seq);
        for d in behind {
            // The genesis names every first role: it is about this person only if it
            // granted them one.
            let about_person = node.table() != Table::Person
                || d.kind != DecisionKind::Genesis
                || d.inputs.contains(&node.to_string());
            if about_person && !found.iter().any(|f| f.id == d.id) {
                found.push(d);
            }
        }
        found.sort_by_key(|d| d.seq);
        Ok(found)
    }

    /// Recompute the whole chain from the stored records and compare it with the head.
    pub async fn verify_decision_chain(&self) -> Result<ChainReport> {
        Ok(self.verify_decision_chain_links().await?.0)
    }

    /// [`Store::verify_decision_chain`], with the links it read (sequence number, id and
    /// hash of each record that reads as a decision), for a comparison with checkpoints
    /// without reading the chain again.
    pub async fn verify_decision_chain_links(&self) -> Result<(ChainReport, Vec<crate::domain::checkpoint::Link>)> {
        // The head and the records from one snapshot: read apart, a decision recorded
        // between the two reads would look like a record beyond the head.
        let sql = "BEGIN;
             SELECT seq, hash FROM ONLY meta:chain;
             SELECT * FROM decision ORDER BY seq;
             COMMIT;";
        let mut resp = self.read(sql, &Vars::new()).await?;
        let head: Option<ChainHead> = take(&mut resp, 1)?;
        let head = head.unwrap_or_else(ChainHead::genesis);
        let rows: Vec<serde_json::Value> = take(&mut resp, 2)?;
        let mut records = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let id = row.get("id").and_then(|v| v.as_str()).unwrap_or("?").to_owned();
            match serde_json::from_value::<Decision>(row) {
                Ok(d) => records.push(d),
                // A record that no longer reads as a decision was tampered with as
                // surely as one whose hash is off.
                Err(e) => {
                    let links = links_of(&records);
                    let report = ChainReport {
                        length: i as u64,
                        head_hash: head.hash,
                        first_broken: Some(BrokenLink {
                            seq: i as u64 + 1,
                            decision: NodeId::parse(&id).ok(),
                            problem: format!("the record no longer reads as a decision: {e}"),
                        }),
                    };
                    return Ok((report, links));
                }
            }
        }
        Ok((verify_chain(&records, &head), links_of(&records)))
    }

    /// The sequence number, id and hash of every decision after `after`, in order: what a
    /// checkpoint signs and what `nhigov verify --checkpoints` compares.
    pub async fn chain_links(&self, after: u64) -> Result<Vec<crate::domain::checkpoint::Link>> {
        let sql = "SELECT seq, id, hash FROM decision WHERE seq > $after ORDER BY seq";
        let mut resp = self.read(sql, &Vars::new().set("after", after as i64)).await?;
        take(&mut resp, 0)
    }

    /// Recompute the SHA-256 of every policy version and every piece of evidence.
    pub async fn verify_digests(&self) -> Result<DigestReport> {
        let policies = self.policies().await?;
        let mut resp = self.read("SELECT id, content, sha256 FROM evidence ORDER BY id", &Vars::new()).await?;
        #[derive(serde::Deserialize)]
        struct Row {
            id: NodeId,
            content: String,
            sha256: String,
        }
        let evidence: Vec<Row> = take(&mut resp, 0)?;
        Ok(DigestReport {
            policies: policies.len(),
            altered_policies: policies.iter().filter(|p| !p.intact()).map(|p| p.id.clone()).collect(),
            evidence: evidence.len(),
            altered_evidence: evidence
                .iter()
                .filter(|e| sha256_hex(e.content.as_bytes()) != e.sha256)
                .map(|e| e.id.clone())
                .collect(),
        })
    }

    /// The policy in force: the latest published version, which `meta:policy` names.
    pub async fn current_policy(&self) -> Result<Policy> {
        let sql = "SELECT * FROM (SELECT VALUE current FROM meta:policy)";
        let mut resp = self.read(sql, &Vars::new()).await?;
        in_force(take(&mut resp, 0)?)
    }

    pub async fn policies(&self) -> Result<Vec<Policy>> {
        let mut resp = self.read("SELECT * FROM policy ORDER BY version DESC", &Vars::new()).await?;
        take(&mut resp, 0)
    }

    pub async fn policies_by_id(&self, ids: &[NodeId]) -> Result<Vec<Policy>> {
        let rids: Vec<RecordId> = ids.iter().filter(|i| i.table() == Table::Policy).map(rid).collect();
        let mut resp = self.read("SELECT * FROM $ids", &Vars::new().set("ids", rids)).await?;
        take(&mut resp, 0)
    }

    /// Write the baseline policy as version 1 when a database has none yet. It is not a
    /// decision: nobody took it; the first decision records it like any later version.
    pub(crate) async fn ensure_baseline_policy(&self) -> Result<()> {
        let draft = PolicyDraft::baseline();
        let id = NodeId::generate(Table::Policy);
        let sql = "BEGIN;
             IF count(SELECT VALUE id FROM policy LIMIT 1) = 0 { CREATE ONLY $id CONTENT $content };
             COMMIT;";
        let vars = Vars::new().set("id", rid(&id)).set("content", policy_content(&draft, 1, None)?);
        self.write(sql, &vars).await?;
        Ok(())
    }
}

pub(super) fn policy_content(draft: &PolicyDraft, version: u32, by: Option<&NodeId>) -> Result<Value> {
    Ok(Content::new()
        .set("name", draft.name.as_str())
        .set("version", i64::from(version))
        .set("description", draft.description.as_str())
        .set("rules", json_value(&draft.rules)?)
        .set("refs", refs_text(&draft.refs))
        .set("sha256", draft.sha256(version))
        .set("published_at", dt(Utc::now()))
        .opt("published_by", by.map(rid))
        .into_value())
}

fn links_of(records: &[Decision]) -> Vec<crate::domain::checkpoint::Link> {
    records
        .iter()
        .map(|d| crate::domain::checkpoint::Link { seq: d.seq, id: d.id.clone(), hash: d.hash.clone() })
        .collect()
}

/// The policy in force from the rows of `SELECT * FROM (SELECT VALUE current FROM
/// meta:policy)`.
pub(super) fn in_force(rows: Vec<Policy>) -> Result<Policy> {
    rows.into_iter().next().ok_or_else(|| StoreError::Database("no policy has been published".into()))
}
