//! Exports for auditors: the evidence bundle of a case, of a certification campaign or
//! of a period under a framework scope (`domain::bundle`), and decisions and evidence as CSV for spreadsheets, filtered by
//! framework reference and time window.

use std::collections::{BTreeSet, HashMap};

use chrono::{SecondsFormat, Utc};

use super::governance::{DecisionFilter, EvidenceFilter, ItemFilter, refs_text};
use super::paging::{Page, PageRequest};
use super::{Result, Store, StoreError, rid};
use crate::domain::bundle::{self, About, BundleFile};
use crate::domain::*;

/// Rows read per query while exporting.
const PAGE: usize = 500;

/// A boxed, sendable future of one page (async closures are not `Send` here).
type PageFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<Page<T>>> + Send + 'a>>;

/// Every page of a list, in creation order.
async fn all<'a, T, F>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> PageFuture<'a, T>,
{
    let mut out: Vec<T> = Vec::new();
    let mut after = None;
    loop {
        let p = page(PageRequest { first: PAGE, after: after.take(), count: false, ..Default::default() }).await?;
        out.extend(p.items);
        if !p.has_next {
            return Ok(out);
        }
        after = p.cursors.last().cloned();
    }
}

fn time(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn bundle_error(e: serde_json::Error) -> StoreError {
    StoreError::Database(format!("writing the bundle: {e}"))
}

fn csv_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("writing CSV: {e}"))
}

/// A cell a spreadsheet shows as text: one that starts like a formula (`=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading `'`, as OWASP advises against CSV
/// injection. Text from feeds and people (a rationale, a name, a source) may start so.
fn cell(text: impl Into<String>) -> String {
    let text = text.into();
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text }
}

/// Names for the ids a CSV row carries: people by id (e-mail and name), inventory
/// nodes by id (name), cases by id (title).
#[derive(Default)]
struct Names {
    people: HashMap<NodeId, Person>,
    nodes: HashMap<NodeId, String>,
    cases: HashMap<NodeId, String>,
}

impl Names {
    async fn read(
        store: &Store,
        people: impl Iterator<Item = NodeId>,
        nodes: impl Iterator<Item = NodeId>,
        cases: impl Iterator<Item = NodeId>,
    ) -> Result<Names> {
        let distinct =
            |ids: Vec<NodeId>| -> Vec<NodeId> { ids.into_iter().collect::<BTreeSet<_>>().into_iter().collect() };
        let people = store.nodes_by_id::<Person>(&distinct(people.collect())).await?;
        let nodes = store.nodes_any(&distinct(nodes.collect())).await?;
        let cases = store.cases_by_id(&distinct(cases.collect())).await?;
        Ok(Names {
            people,
            nodes: nodes.into_iter().map(|(id, n)| (id, n.name().to_owned())).collect(),
            cases: cases.into_iter().map(|c| (c.id, c.title)).collect(),
        })
    }

    fn email(&self, id: &NodeId) -> String {
        self.people.get(id).map(|p| p.email.clone()).unwrap_or_default()
    }

    fn person(&self, id: &NodeId) -> String {
        self.people.get(id).map(|p| p.name.clone()).unwrap_or_default()
    }

    fn node(&self, id: &NodeId) -> String {
        self.nodes.get(id).cloned().unwrap_or_default()
    }

    fn case(&self, id: Option<&NodeId>) -> String {
        id.and_then(|id| self.cases.get(id)).cloned().unwrap_or_default()
    }
}

impl Store {
    /// The evidence bundle of `case`: its files, the manifest last.
    pub async fn evidence_bundle(&self, case: &NodeId) -> Result<Vec<BundleFile>> {
        if case.table() != Table::Case {
            return Err(ValueError::new("case", format!("{case} is not a case")).into());
        }
        let record = self.case(case).await?;
        let filter = &DecisionFilter { case: Some(case.clone()), ..Default::default() };
        let mut decisions = all(|p| Box::pin(async move { self.decisions(filter, &p).await })).await?;
        decisions.sort_by_key(|d| d.seq);
        // Read after the decisions, so every decision in the bundle is within it.
        let head = self.chain_head().await?;
        let evidence = self.evidence_of_cases(std::slice::from_ref(case)).await?;
        let timeline = self.timeline(case).await?;
        let traversals = self.traversals_of(case).await?;
        let policies = self.policies_of(&decisions).await?;
        let people = self
            .people_named(
                decisions
                    .iter()
                    .map(|d| d.actor.clone())
                    .chain(evidence.iter().map(|e| e.collected_by.clone()))
                    .chain([record.opened_by.clone()])
                    .chain(record.assignee.clone()),
            )
            .await?;
        let mut files = vec![
            BundleFile::json("case.json", &record),
            BundleFile::json("timeline.json", &timeline),
            BundleFile::json("decisions.json", &decisions),
            BundleFile::json("traversals.json", &traversals),
            BundleFile::json("people.json", &people),
        ];
        files.extend(evidence.iter().map(|e| BundleFile::json(format!("evidence/{}.json", e.id.key()), e)));
        sealed(About::Case(case.clone()), head, files, (decisions.len(), evidence.len()), &policies)
    }

    /// The evidence bundle of certification campaign `campaign`: the campaign, its items
    /// (the facts each reviewer saw, the answer), its report, the requests the answers
    /// filed, and every decision of it in chain order (the start, each answer, the
    /// escalations, the decisions on those requests), with their policy versions and the
    /// people named; the manifest last.
    pub async fn campaign_bundle(&self, campaign: &NodeId) -> Result<Vec<BundleFile>> {
        if campaign.table() != Table::Campaign {
            return Err(ValueError::new("campaign", format!("{campaign} is not a campaign")).into());
        }
        let record = self
            .campaigns_by_id(std::slice::from_ref(campaign))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(campaign.to_string()))?;
        let items = self.review_items(&ItemFilter { campaign: Some(campaign.clone()), ..Default::default() }).await?;
        let report = self.campaign_report(campaign, Utc::now()).await?;
        let request_ids: Vec<NodeId> = items.iter().filter_map(|i| i.request.clone()).collect();
        let requests = self.requests_by_id(&request_ids).await?;
        let answers: Vec<NodeId> =
            items.iter().filter_map(|i| i.decision.clone()).chain([record.decision.clone()]).collect();
        let mut decisions = self.decisions_by_id(&answers).await?;
        // Escalations are about the campaign; approvals and rejections about a request.
        let about: Vec<NodeId> = request_ids.iter().cloned().chain([campaign.clone()]).collect();
        decisions.extend(self.decisions_with_subjects(&about).await?);
        decisions.sort_by_key(|d| d.seq);
        decisions.dedup_by_key(|d| d.seq);
        // Read after the decisions, so every decision in the bundle is within it.
        let head = self.chain_head().await?;
        let policies = self.policies_of(&decisions).await?;
        let people = self
            .people_named(
                decisions
                    .iter()
                    .map(|d| d.actor.clone())
                    .chain([record.started_by.clone()])
                    .chain(requests.iter().map(|r| r.requester.clone()))
                    .chain(items.iter().flat_map(|i| {
                        [i.reviewer.clone(), i.answered_by.clone(), i.escalated_to.clone()].into_iter().flatten()
                    })),
            )
            .await?;
        let files = vec![
            BundleFile::json("campaign.json", &record),
            BundleFile::json("items.json", &items),
            BundleFile::json("report.json", &report),
            BundleFile::json("requests.json", &requests),
            BundleFile::json("decisions.json", &decisions),
            BundleFile::json("people.json", &people),
        ];
        sealed(About::Campaign(campaign.clone()), head, files, (decisions.len(), 0), &policies)
    }

    /// The evidence bundle of a period: every decision taken in it and every piece of
    /// evidence collected in it that falls under its framework scope (evidence through
    /// its own references or its case's), with those cases, the policy versions and the
    /// people named; the manifest last. "Everything for Q3 under NIST CSF RS.AN."
    pub async fn period_bundle(&self, period: &bundle::Period) -> Result<Vec<BundleFile>> {
        if period.from >= period.to {
            return Err(ValueError::new("to", "the period ends after it starts").into());
        }
        let window = &DecisionFilter { from: Some(period.from), to: Some(period.to), ..Default::default() };
        let mut decisions = all(|p| Box::pin(async move { self.decisions(window, &p).await })).await?;
        decisions.retain(|d| period.holds(d.at, &d.refs));
        decisions.sort_by_key(|d| d.seq);
        // Read after the decisions, so every decision in the bundle is within it.
        let head = self.chain_head().await?;
        let collected =
            &EvidenceFilter { collected_from: Some(period.from), collected_to: Some(period.to), ..Default::default() };
        let mut evidence = all(|p| Box::pin(async move { self.evidence(collected, &p).await })).await?;
        let case_ids: Vec<NodeId> =
            evidence.iter().map(|e| e.case.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let cases: HashMap<NodeId, Case> =
            self.cases_by_id(&case_ids).await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        evidence.retain(|e| {
            let case_refs = cases.get(&e.case).map(|c| c.refs.as_slice()).unwrap_or_default();
            period.holds(e.collected_at, &e.refs) || period.holds(e.collected_at, case_refs)
        });
        let mut cases: Vec<Case> = cases.into_values().filter(|c| evidence.iter().any(|e| e.case == c.id)).collect();
        cases.sort_by(|a, b| a.id.cmp(&b.id));
        let policies = self.policies_of(&decisions).await?;
        let people = self
            .people_named(
                decisions.iter().map(|d| d.actor.clone()).chain(evidence.iter().map(|e| e.collected_by.clone())),
            )
            .await?;
        let mut files = vec![
            BundleFile::json("period.json", period),
            BundleFile::json("decisions.json", &decisions),
            BundleFile::json("cases.json", &cases),
            BundleFile::json("people.json", &people),
        ];
        files.extend(evidence.iter().map(|e| BundleFile::json(format!("evidence/{}.json", e.id.key()), e)));
        sealed(About::Period(period.clone()), head, files, (decisions.len(), evidence.len()), &policies)
    }

    /// Decisions whose subject is one of `subjects`, by its index.
    async fn decisions_with_subjects(&self, subjects: &[NodeId]) -> Result<Vec<Decision>> {
        let ids: Vec<_> = subjects.iter().map(rid).collect();
        self.read_in("SELECT * FROM decision WHERE subject IN $ids", "ids", ids).await
    }

    /// The policy versions `decisions` were taken under.
    async fn policies_of(&self, decisions: &[Decision]) -> Result<Vec<Policy>> {
        let ids: Vec<NodeId> =
            decisions.iter().filter_map(|d| d.policy.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        self.policies_by_id(&ids).await
    }

    /// The people `ids` name, once each, in id order.
    async fn people_named(&self, ids: impl Iterator<Item = NodeId>) -> Result<Vec<Person>> {
        let ids: Vec<NodeId> = ids.collect::<BTreeSet<_>>().into_iter().collect();
        let people: HashMap<NodeId, Person> = self.nodes_by_id(&ids).await?;
        let mut people: Vec<Person> = people.into_values().collect();
        people.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(people)
    }

    /// Decisions as CSV, in chain order: one row each, with its place in the chain.
    pub async fn decisions_csv(&self, filter: &DecisionFilter) -> Result<String> {
        let mut decisions = all(|p| Box::pin(async move { self.decisions(filter, &p).await })).await?;
        decisions.sort_by_key(|d| d.seq);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "seq",
            "at",
            "kind",
            "outcome",
            "actor",
            "subject",
            "case",
            "rationale",
            "policy_version",
            "policy_sha256",
            "violated_rule",
            "refs",
            "prev_hash",
            "hash",
            "actor_email",
            "actor_name",
            "subject_name",
            "case_title",
        ])
        .map_err(csv_error)?;
        let names = Names::read(
            self,
            decisions.iter().map(|d| d.actor.clone()),
            decisions.iter().map(|d| d.subject.clone()),
            decisions.iter().filter_map(|d| d.case.clone()),
        )
        .await?;
        for d in &decisions {
            w.write_record([
                d.seq.to_string(),
                time(d.at),
                d.kind.to_string(),
                d.outcome.to_string(),
                d.actor.to_string(),
                d.subject.to_string(),
                d.case.as_ref().map(ToString::to_string).unwrap_or_default(),
                cell(d.rationale.clone()),
                d.policy_version.map(|v| v.to_string()).unwrap_or_default(),
                d.policy_sha256.clone().unwrap_or_default(),
                d.violation.as_ref().map(|v| v.rule.to_string()).unwrap_or_default(),
                cell(refs_text(&d.refs).join(";")),
                d.prev_hash.clone(),
                d.hash.clone(),
                cell(names.email(&d.actor)),
                cell(names.person(&d.actor)),
                cell(names.node(&d.subject)),
                cell(names.case(d.case.as_ref())),
            ])
            .map_err(csv_error)?;
        }
        String::from_utf8(w.into_inner().map_err(csv_error)?).map_err(csv_error)
    }

    /// Evidence as CSV, oldest first: what it is and its digest (not its content).
    pub async fn evidence_csv(&self, filter: &EvidenceFilter) -> Result<String> {
        let evidence = all(|p| Box::pin(async move { self.evidence(filter, &p).await })).await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "id",
            "case",
            "kind",
            "source",
            "collected_at",
            "recorded_at",
            "collected_by",
            "sha256",
            "intact",
            "supersedes",
            "superseded_by",
            "refs",
            "case_title",
            "collected_by_email",
            "collected_by_name",
        ])
        .map_err(csv_error)?;
        let names = Names::read(
            self,
            evidence.iter().map(|e| e.collected_by.clone()),
            std::iter::empty(),
            evidence.iter().map(|e| e.case.clone()),
        )
        .await?;
        for e in &evidence {
            w.write_record([
                e.id.to_string(),
                e.case.to_string(),
                e.kind.to_string(),
                cell(e.source.clone()),
                time(e.collected_at),
                time(e.recorded_at),
                e.collected_by.to_string(),
                e.sha256.clone(),
                e.intact().to_string(),
                e.supersedes.as_ref().map(ToString::to_string).unwrap_or_default(),
                e.superseded_by.as_ref().map(ToString::to_string).unwrap_or_default(),
                cell(refs_text(&e.refs).join(";")),
                cell(names.case(Some(&e.case))),
                cell(names.email(&e.collected_by)),
                cell(names.person(&e.collected_by)),
            ])
            .map_err(csv_error)?;
        }
        String::from_utf8(w.into_inner().map_err(csv_error)?).map_err(csv_error)
    }
}

/// A bundle of `files` (decisions and evidence counted) with a file per policy version,
/// sealed with its manifest.
fn sealed(
    about: About,
    head: ChainHead,
    mut files: Vec<std::result::Result<BundleFile, serde_json::Error>>,
    (decisions, evidence): (usize, usize),
    policies: &[Policy],
) -> Result<Vec<BundleFile>> {
    files.extend(policies.iter().map(policy_file));
    let files = files.into_iter().collect::<std::result::Result<Vec<_>, _>>().map_err(bundle_error)?;
    bundle::seal(&about, head, Utc::now(), (decisions, evidence, policies.len()), files).map_err(bundle_error)
}

/// A policy version's file, named by the policy and version.
fn policy_file(p: &Policy) -> std::result::Result<BundleFile, serde_json::Error> {
    let name: String = p
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    BundleFile::json(format!("policies/{name}-v{}.json", p.version), p)
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn a_cell_that_starts_like_a_formula_is_kept_as_text() {
        for risky in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"] {
            assert_eq!(cell(risky), format!("'{risky}"), "{risky:?}");
        }
        for plain in ["rotated after the leak", "RS.AN-03", "a-b", "ines@corp.example", ""] {
            assert_eq!(cell(plain), plain);
        }
    }
}
