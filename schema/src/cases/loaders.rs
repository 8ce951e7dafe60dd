//! Batch loaders for the case record: records of any governance table by id, and the
//! parts of many cases (alerts, tasks, evidence, requests) with one query per part.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ErrorExtensions};
use graph_model::store::Store;
use graph_model::*;

use crate::error::{ApiError, ApiResult};

/// A record of the case side of the graph.
#[derive(Debug, Clone)]
pub enum Record {
    Alert(Alert),
    Case(Case),
    Evidence(Evidence),
    /// Boxed: a request, with the change it may carry, is much larger than the rest.
    Request(Box<Request>),
    Policy(Policy),
    Decision(Decision),
}

/// Loads governance records of any table by id: one query per table in a batch.
pub struct RecordLoader(pub Store);

impl Loader<NodeId> for RecordLoader {
    type Value = Record;
    type Error = async_graphql::Error;

    #[tracing::instrument(name = "load", skip_all, fields(loader = "records", keys = keys.len()))]
    async fn load(&self, keys: &[NodeId]) -> Result<HashMap<NodeId, Record>, Self::Error> {
        let s = &self.0;
        let of = |t: Table| keys.iter().filter(|k| k.table() == t).cloned().collect::<Vec<_>>();
        let fail = |e| ApiError::from(e).extend();
        let mut out = HashMap::new();
        let alerts = of(Table::Alert);
        if !alerts.is_empty() {
            out.extend(
                s.alerts_by_id(&alerts).await.map_err(fail)?.into_iter().map(|r| (r.id.clone(), Record::Alert(r))),
            );
        }
        let cases = of(Table::Case);
        if !cases.is_empty() {
            out.extend(s.cases_by_id(&cases).await.map_err(fail)?.into_iter().map(|r| (r.id.clone(), Record::Case(r))));
        }
        let evidence = of(Table::Evidence);
        if !evidence.is_empty() {
            out.extend(
                s.evidence_by_id(&evidence)
                    .await
                    .map_err(fail)?
                    .into_iter()
                    .map(|r| (r.id.clone(), Record::Evidence(r))),
            );
        }
        let requests = of(Table::Request);
        if !requests.is_empty() {
            out.extend(
                s.requests_by_id(&requests)
                    .await
                    .map_err(fail)?
                    .into_iter()
                    .map(|r| (r.id.clone(), Record::Request(Box::new(r)))),
            );
        }
        let policies = of(Table::Policy);
        if !policies.is_empty() {
            out.extend(
                s.policies_by_id(&policies).await.map_err(fail)?.into_iter().map(|r| (r.id.clone(), Record::Policy(r))),
            );
        }
        let decisions = of(Table::Decision);
        if !decisions.is_empty() {
            out.extend(
                s.decisions_by_id(&decisions)
                    .await
                    .map_err(fail)?
                    .into_iter()
                    .map(|r| (r.id.clone(), Record::Decision(r))),
            );
        }
        Ok(out)
    }
}

/// Records by id through the batch loader, in the order asked; missing ids are left out.
pub async fn records(ctx: &Context<'_>, ids: impl IntoIterator<Item = NodeId>) -> ApiResult<Vec<Record>> {
    let ids: Vec<NodeId> = ids.into_iter().collect();
    let found = ctx.data::<DataLoader<RecordLoader>>()?.load_many(ids.iter().cloned()).await?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// One case, through the batch loader.
pub async fn case(ctx: &Context<'_>, id: Option<&NodeId>) -> ApiResult<Option<Case>> {
    let Some(id) = id else { return Ok(None) };
    Ok(records(ctx, [id.clone()]).await?.into_iter().find_map(|r| match r {
        Record::Case(c) => Some(c),
        _ => None,
    }))
}

/// A part of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Alerts,
    Tasks,
    Evidence,
    Requests,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub part: Part,
    pub case: NodeId,
}

/// The parts of a case.
#[derive(Debug, Clone)]
pub enum Parts {
    Alerts(Vec<Alert>),
    Tasks(Vec<Task>),
    Evidence(Vec<Evidence>),
    Requests(Vec<Request>),
}

/// Loads one part of many cases with one query per part.
pub struct PartLoader(pub Store);

impl Loader<PartKey> for PartLoader {
    type Value = Parts;
    type Error = async_graphql::Error;

    #[tracing::instrument(name = "load", skip_all, fields(loader = "case_parts", keys = keys.len()))]
    async fn load(&self, keys: &[PartKey]) -> Result<HashMap<PartKey, Parts>, Self::Error> {
        let s = &self.0;
        let fail = |e| ApiError::from(e).extend();
        let mut out = HashMap::new();
        for part in [Part::Alerts, Part::Tasks, Part::Evidence, Part::Requests] {
            let cases: Vec<NodeId> = keys.iter().filter(|k| k.part == part).map(|k| k.case.clone()).collect();
            if cases.is_empty() {
                continue;
            }
            let mut by_case: HashMap<NodeId, Parts> = HashMap::new();
            match part {
                Part::Alerts => {
                    for a in s.alerts_of_cases(&cases).await.map_err(fail)? {
                        if let Some(c) = a.case.clone()
                            && let Parts::Alerts(v) = by_case.entry(c).or_insert(Parts::Alerts(vec![]))
                        {
                            v.push(a);
                        }
                    }
                }
                Part::Tasks => {
                    for t in s.tasks_of_cases(&cases).await.map_err(fail)? {
                        if let Parts::Tasks(v) = by_case.entry(t.case.clone()).or_insert(Parts::Tasks(vec![])) {
                            v.push(t);
                        }
                    }
                }
                Part::Evidence => {
                    for e in s.evidence_of_cases(&cases).await.map_err(fail)? {
                        if let Parts::Evidence(v) = by_case.entry(e.case.clone()).or_insert(Parts::Evidence(vec![])) {
                            v.push(e);
                        }
                    }
                }
                Part::Requests => {
                    for r in s.requests_of_cases(&cases).await.map_err(fail)? {
                        if let Some(c) = r.case.clone()
                            && let Parts::Requests(v) = by_case.entry(c).or_insert(Parts::Requests(vec![]))
                        {
                            v.push(r);
                        }
                    }
                }
            }
            for case in cases {
                let empty = match part {
                    Part::Alerts => Parts::Alerts(vec![]),
                    Part::Tasks => Parts::Tasks(vec![]),
                    Part::Evidence => Parts::Evidence(vec![]),
                    Part::Requests => Parts::Requests(vec![]),
                };
                let found = by_case.remove(&case).unwrap_or(empty);
                out.insert(PartKey { part, case }, found);
            }
        }
        Ok(out)
    }
}

/// One part of one case, through the batch loader.
pub async fn part(ctx: &Context<'_>, part: Part, case: &NodeId) -> ApiResult<Option<Parts>> {
    Ok(ctx.data::<DataLoader<PartLoader>>()?.load_one(PartKey { part, case: case.clone() }).await?)
}
