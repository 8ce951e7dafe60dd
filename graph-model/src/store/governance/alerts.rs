//! Alerts: ingest with deduplication and enrichment, list, dismiss.

use chrono::Utc;
use serde::Deserialize;
use surrealdb::types::RecordId;

use super::{Plan, dt, refs_text};
use crate::domain::*;
use crate::store::events::{EventDraft, RECORD_EVENT};
use crate::store::{Content, Page, PageRequest, Result, STALE, Store, StoreError, Vars, Where, json_value, rid, take};

/// Did an ingest create an alert or count a repeat of one?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Created,
    Repeated,
}

/// What a scanner report became.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub findings: usize,
    /// New alerts.
    pub created: usize,
    /// Findings already alerted on (by an earlier run), counted again.
    pub repeated: usize,
    /// Findings whose secret the inventory knows.
    pub matched: usize,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
    pub subject: Option<NodeId>,
    pub unknown_subject: Option<bool>,
    pub source: Option<String>,
}

#[derive(Deserialize)]
struct Reach {
    systems: Vec<NodeId>,
    last_used_at: Option<chrono::DateTime<Utc>>,
}

/// A new alert's record: linked to its subject when found, with what enrichment read.
fn alert_content(
    alert: &NewAlert,
    subject: Option<&NodeId>,
    enrichment: &Enrichment,
) -> Result<surrealdb::types::Value> {
    Ok(Content::new()
        .set("source", alert.source.as_str())
        .set("rule", alert.rule.as_str())
        .set("severity", alert.severity.as_str())
        .set("title", alert.title.as_str())
        .opt("detail", alert.detail.as_ref().map(|d| d.as_str().to_owned()))
        .set("dedupe_key", alert.dedupe_key.as_str())
        .set("status", AlertStatus::New.as_str())
        .set("detected_at", dt(alert.detected_at))
        .set("first_seen", dt(alert.detected_at))
        .set("last_seen", dt(alert.detected_at))
        .set("count", 1i64)
        .opt("subject", subject.map(rid))
        .set("subject_ref", alert.subject.describe())
        .set("unknown_subject", subject.is_none())
        .set("enrichment", json_value(enrichment)?)
        .set("refs", refs_text(&alert.refs))
        .set("created_at", dt(Utc::now()))
        .into_value())
}

/// The event a new alert raises.
fn raised_event(alert: &NewAlert, id: &NodeId) -> EventDraft {
    EventDraft {
        kind: EventKind::AlertRaised,
        case: None,
        record: id.clone(),
        actor: None,
        also: None,
        summary: format!(
            "{} alert from {} ({}): {}",
            alert.severity,
            alert.source.as_str(),
            alert.subject.describe(),
            alert.title.as_str()
        ),
        detail: Some(alert.severity.as_str().to_owned()),
    }
}

impl Store {
    /// Take in an alert. A repeat of a known dedupe key raises its count and
    /// `last_seen`; a new one is linked to its subject (by id, external id or
    /// fingerprint) and enriched with the subject's owners, the systems it reaches and
    /// when it was last used. An alert whose subject cannot be found is kept, flagged
    /// `unknown_subject`, with the reference the scanner gave.
    pub async fn ingest_alert(&self, alert: &NewAlert) -> Result<(Alert, IngestOutcome)> {
        let subject = self.resolve_subject(&alert.subject).await?;
        let enrichment = match &subject {
            Some(s) => self.enrich(s).await?,
            None => Enrichment::default(),
        };
        let id = NodeId::generate(Table::Alert);
        let content = alert_content(alert, subject.as_ref(), &enrichment)?;
        let sql = format!(
            "BEGIN;
             LET $existing = (SELECT VALUE id FROM alert WHERE dedupe_key = $key LIMIT 1)[0];
             IF $existing != NONE {{
                 UPDATE $existing SET count += 1, last_seen = array::max([last_seen, $detected]);
             }} ELSE {{
                 CREATE $id CONTENT $content;
                 {RECORD_EVENT}
             }};
             COMMIT;
             RETURN $existing;"
        );
        let event = raised_event(alert, &id);
        // The owners of what the alert is about see it in their queue.
        let owners: Vec<RecordId> = match &subject {
            Some(s) => self.owner_facts(s).await?.people.iter().map(|(p, _)| rid(p)).collect(),
            None => Vec::new(),
        };
        let vars = event.bind(
            Vars::new()
                .set("key", alert.dedupe_key.as_str())
                .set("detected", dt(alert.detected_at))
                .set("id", rid(&id))
                .set("content", content)
                .set("ev_owners", owners),
        );
        // Two first sightings of one key racing: the unique index stops the second,
        // which is then counted as a repeat.
        let mut resp = match self.write(&sql, &vars).await {
            Err(StoreError::Unique { index }) if index == "alert_dedupe" => self.write(&sql, &vars).await?,
            other => other?,
        };
        let existing: Option<NodeId> = take(&mut resp, 4)?;
        let outcome = if existing.is_some() { IngestOutcome::Repeated } else { IngestOutcome::Created };
        let mut resp = self
            .read(
                "SELECT * FROM alert WHERE dedupe_key = $key LIMIT 1",
                &Vars::new().set("key", alert.dedupe_key.as_str()),
            )
            .await?;
        let mut rows: Vec<Alert> = take(&mut resp, 0)?;
        let alert = rows.pop().ok_or_else(|| StoreError::Database("ingested alert not found".into()))?;
        Ok((alert, outcome))
    }

    /// Turn a scanner's findings into alerts: each matched to a secret by the first of
    /// its fingerprints the inventory knows, deduplicated against earlier runs.
    pub async fn ingest_findings(&self, findings: &[crate::domain::scanners::Finding]) -> Result<ScanSummary> {
        let candidates: Vec<&str> = findings
            .iter()
            .flat_map(|f| f.fingerprints.iter().map(String::as_str))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // 32 at a time: past that SurrealDB 3.3 reads `IN $list` from no index.
        let known: std::collections::HashSet<String> = self
            .read_in::<String, _>(
                "SELECT VALUE fingerprint FROM secret WHERE fingerprint IN $fps",
                "fps",
                candidates.iter().map(|c| c.to_string()).collect::<Vec<String>>(),
            )
            .await?
            .into_iter()
            .collect();
        let now = Utc::now();
        let mut summary = ScanSummary { findings: findings.len(), ..Default::default() };
        for f in findings {
            let found = f.fingerprints.iter().find(|fp| known.contains(*fp));
            let chosen = found.or(f.fingerprints.first()).map(String::as_str).unwrap_or_default();
            let alert = f.alert(chosen, now)?;
            match self.ingest_alert(&alert).await?.1 {
                IngestOutcome::Created => summary.created += 1,
                IngestOutcome::Repeated => summary.repeated += 1,
            }
            summary.matched += usize::from(found.is_some());
        }
        Ok(summary)
    }

    async fn resolve_subject(&self, subject: &SubjectRef) -> Result<Option<NodeId>> {
        let (sql, vars) = match subject {
            SubjectRef::Id(id) => {
                if !matches!(id.table(), Table::Nhi | Table::Secret) {
                    return Err(StoreError::Invalid(ValueError::new(
                        "subject",
                        "an alert is about an nhi or a secret",
                    )));
                }
                ("SELECT VALUE id FROM $id", Vars::new().set("id", vec![rid(id)]))
            }
            SubjectRef::ExternalId(x) => {
                ("SELECT VALUE id FROM nhi WHERE external_id = $x LIMIT 1", Vars::new().set("x", x.as_str()))
            }
            SubjectRef::Fingerprint(f) => {
                ("SELECT VALUE id FROM secret WHERE fingerprint = $f LIMIT 1", Vars::new().set("f", f.as_str()))
            }
        };
        let mut resp = self.read(sql, &vars).await?;
        let mut ids: Vec<NodeId> = take(&mut resp, 0)?;
        Ok(ids.pop())
    }

    /// Owners, reached systems and last use of an NHI or secret.
    async fn enrich(&self, subject: &NodeId) -> Result<Enrichment> {
        let in_force = crate::store::nodes::IN_FORCE;
        let mut owners = self.owner_facts(subject).await?.owners;
        if subject.table() == Table::Secret {
            // A secret's owners are, in practice, the owners of the identities holding it.
            let mut resp = self
                .read(&format!("SELECT VALUE in FROM $s<-holds WHERE {in_force}"), &Vars::new().set("s", rid(subject)))
                .await?;
            let holders: Vec<NodeId> = take(&mut resp, 0)?;
            for h in holders {
                owners.extend(self.owner_facts(&h).await?.owners);
            }
            owners = super::distinct(owners);
        }
        let sql = if subject.table() == Table::Nhi {
            format!(
                "RETURN {{
                    systems: (SELECT VALUE out FROM $s->can_access WHERE {in_force}),
                    last_used_at: $s.last_used_at,
                 }};"
            )
        } else {
            format!(
                "LET $holders = (SELECT VALUE in FROM $s<-holds WHERE {in_force});
                 RETURN {{
                    systems: array::distinct(array::concat(
                        (SELECT VALUE out FROM $s->authenticates_to WHERE {in_force}),
                        array::flatten(SELECT VALUE (SELECT VALUE out FROM $parent.in->can_access WHERE {in_force})
                            FROM $s<-holds WHERE {in_force})
                    )),
                    last_used_at: array::max((SELECT VALUE last_used_at FROM $holders WHERE last_used_at != NONE)),
                 }};"
            )
        };
        let mut resp = self.read(&sql, &Vars::new().set("s", rid(subject))).await?;
        let last = resp.num_statements() - 1;
        let reach: Reach = take(&mut resp, last)?;
        Ok(Enrichment { owners, systems: reach.systems, last_used_at: reach.last_used_at })
    }

    /// After `person` left: raise an alert for every active NHI they owned (directly or
    /// through a team) that now has no active owner. Once per NHI; returns how many.
    pub async fn raise_stale_ownership_alerts(&self, person: &NodeId) -> Result<usize> {
        let in_force = crate::store::nodes::IN_FORCE;
        let sql = format!(
            "LET $owned = array::distinct(array::concat(
                (SELECT VALUE out FROM $p->owns WHERE {in_force}),
                array::flatten(SELECT VALUE (SELECT VALUE out FROM $parent.out->owns WHERE {in_force})
                    FROM $p->member_of WHERE {in_force})
             ));
             SELECT VALUE id FROM array::filter($owned, |$v| record::tb($v) = 'nhi') WHERE status = 'active';"
        );
        let mut resp = self.read(&sql, &Vars::new().set("p", rid(person))).await?;
        let nhis: Vec<NodeId> = take(&mut resp, 1)?;
        let mut raised = 0;
        for nhi in nhis {
            if self.owner_facts(&nhi).await?.has_active_owner() {
                continue;
            }
            let alert = NewAlert {
                source: Label::parse("nhigov")?,
                rule: Label::parse("ownership_stale")?,
                severity: Severity::Medium,
                title: Text::parse(&format!("{nhi} has no active owner since {person} left"))?,
                detail: None,
                detected_at: Utc::now(),
                subject: SubjectRef::Id(nhi.clone()),
                refs: vec![FrameworkRef::parse("NHI-01")?],
                dedupe_key: format!("ownership-stale:{nhi}"),
            };
            if self.ingest_alert(&alert).await?.1 == IngestOutcome::Created {
                raised += 1;
            }
        }
        Ok(raised)
    }

    pub async fn alerts_by_id(&self, ids: &[NodeId]) -> Result<Vec<Alert>> {
        self.records_by_id(Table::Alert, ids).await
    }

    pub async fn alert(&self, id: &NodeId) -> Result<Alert> {
        self.alerts_by_id(std::slice::from_ref(id)).await?.pop().ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    pub async fn alerts(&self, f: &AlertFilter, page: &PageRequest) -> Result<Page<Alert>> {
        let w = Where::default()
            .eq("status", f.status.map(|s| s.as_str()))
            .eq("severity", f.severity.map(|s| s.as_str()))
            .eq("subject", f.subject.as_ref().map(rid))
            .eq("unknown_subject", f.unknown_subject)
            .eq("source", f.source.clone());
        self.page_where(Table::Alert, "alert", w, page).await
    }

    /// The alerts grouped into each of `cases`.
    pub async fn alerts_of_cases(&self, cases: &[NodeId]) -> Result<Vec<Alert>> {
        let rids: Vec<RecordId> = cases.iter().map(rid).collect();
        self.read_in("SELECT * FROM alert WHERE case IN $cases ORDER BY id", "cases", rids).await
    }

    /// Dismiss a new alert, with a reason: a decision.
    pub async fn dismiss_alert(&self, actor: &NodeId, id: &NodeId, reason: &Text) -> Result<Decision> {
        self.decide(|| {
            Box::pin(async move {
                let alert = self.alert(id).await?;
                if alert.status != AlertStatus::New {
                    return Err(StoreError::Conflict(format!(
                        "{id} is {} and can no longer be dismissed",
                        alert.status
                    )));
                }
                Ok(Plan {
                    leaves_signins: false,
                    draft: DecisionDraft {
                        kind: DecisionKind::DismissAlert,
                        outcome: Outcome::Dismissed,
                        actor: actor.clone(),
                        subject: id.clone(),
                        case: None,
                        rationale: reason.as_str().to_owned(),
                        signals: vec![id.clone()],
                        policy: Some(self.current_policy().await?.reference()),
                        violation: None,
                        refs: alert.refs.clone(),
                        inputs: serde_json::json!({ "alert": alert }),
                    },
                    effects: format!(
                        "IF $alert.status != 'new' {{ THROW '{STALE}' }};
                     UPDATE $alert SET status = 'dismissed', dismissed_reason = $reason;"
                    ),
                    vars: Vars::new().set("alert", rid(id)).set("reason", reason.as_str()),
                })
            })
        })
        .await
    }
}
