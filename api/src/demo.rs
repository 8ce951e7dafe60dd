//! The demo graph (`fixtures/demo.json`), loaded by `nhigov serve --demo` into an empty
//! store so a newcomer can query at once, with the alerts it raises (the stale ownership
//! left by a person who has gone, and a scanner finding about a key nobody knows) and its
//! controls, evaluated, a few failing for real reasons.

use chrono::Utc;
use graph_model::domain::campaign::{CampaignDraft, ReviewAnswer};
use graph_model::domain::control::{Check, ControlDraft, ControlScope};
use graph_model::store::{Actor, ImportSummary, ItemFilter, Store, StoreError};
use graph_model::{
    Change, Criticality, DecideOutcome, Email, Environment, FrameworkRef, Label, NewAlert, NodeId, Role, Severity,
    SubjectRef, Table, Text,
};

/// The demo document, built into the binary so `--demo` works from any directory.
pub const DEMO: &str = include_str!("../../fixtures/demo.json");

/// The demo investigator, whose token `serve --demo` prints.
pub const DEMO_INVESTIGATOR: &str = "ines.ortega@corvid.example";
/// The demo administrator.
pub const DEMO_ADMIN: &str = "sam.okafor@corvid.example";

/// Load the demo graph if the store holds no inventory yet; `None` when it was kept.
pub async fn load(store: &Store) -> Result<Option<ImportSummary>, StoreError> {
    if !store.inventory_is_empty().await? {
        return Ok(None);
    }
    let doc: serde_json::Value =
        serde_json::from_str(DEMO).map_err(|e| StoreError::Database(format!("fixtures/demo.json is not JSON: {e}")))?;
    // The demo company's people get their roles the way any deployment's first people
    // do: one genesis decision, the first record of the chain.
    let rationale = Text::parse("the demo company's first roles").map_err(StoreError::from)?;
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &rationale).await?;
    // Lena has left: what she owned alone is flagged.
    for (r, id) in &summary.ids {
        if r == "lena" {
            store.raise_stale_ownership_alerts(id).await?;
        }
    }
    let label = |s: &str| Label::parse(s).map_err(StoreError::from);
    let unknown = NewAlert {
        source: label("trufflehog")?,
        rule: label("AWS")?,
        severity: Severity::High,
        title: Text::parse("verified AWS key in a public gist").map_err(StoreError::from)?,
        detail: None,
        detected_at: Utc::now() - chrono::Duration::hours(3),
        subject: SubjectRef::Fingerprint("b1946ac92492d2347c6235b4d2611184".into()),
        refs: vec![],
        dedupe_key: "demo-unknown-aws-key".into(),
    };
    store.ingest_alert(&unknown).await?;
    let id = |r: &str| summary.ids.iter().find(|(k, _)| k == r).map(|(_, id)| id.clone());
    if let (Some(sam), Some(noor), Some(ada)) = (id("sam"), id("noor"), id("ada")) {
        publish_controls(store, &sam, &noor, &ada).await?;
        store.evaluate_controls(Utc::now()).await?;
        start_campaign(store, &sam).await?;
    }
    Ok(Some(summary))
}

/// A certification campaign in progress over the production NHIs, for NHI-CERT-01: one
/// owner has answered (certified), the others have two weeks left.
async fn start_campaign(store: &Store, admin: &NodeId) -> Result<(), StoreError> {
    let now = Utc::now();
    let draft = CampaignDraft {
        name: "Q4 production certification".into(),
        scope: ControlScope { environments: vec![Environment::Production], ..Default::default() },
        due_at: now + chrono::Duration::days(14),
        control: Some("NHI-CERT-01".into()),
    };
    let why = Text::parse("quarterly certification of production NHIs").map_err(StoreError::from)?;
    let actor = Actor { id: admin.clone(), roles: vec![Role::Admin] };
    let (campaign, _) = store.start_campaign(&actor, &draft, &why, now).await?;
    let filter = ItemFilter { campaign: Some(campaign.id), ..Default::default() };
    let items = store.review_items(&filter).await?;
    if let Some((item, reviewer)) = items.iter().find_map(|i| i.reviewer.clone().map(|r| (i, r))) {
        let owner = Actor { id: reviewer, roles: vec![] };
        let why = Text::parse("still deploys production; access matches its job").map_err(StoreError::from)?;
        store.answer_review(&owner, &item.id, ReviewAnswer::Certify, &why, None).await?;
    }
    Ok(())
}

/// The demo's seven controls (one of each check), owned by `owner`: each filed by one admin
/// and approved by the other, as any control is. The benchmark publishes them too.
pub async fn publish_controls(
    store: &Store,
    filer: &NodeId,
    approver: &NodeId,
    owner: &NodeId,
) -> Result<(), StoreError> {
    let prod = ControlScope { environments: vec![Environment::Production], ..Default::default() };
    let controls = [
        ("NHI-OWN-01", "Every active NHI has an active owner", Check::ActiveOwner, ControlScope::default(), "ID.AM-08"),
        (
            "NHI-ROT-01",
            "Production secrets are rotated within 90 days",
            Check::SecretRotated { max_age_days: 90 },
            prod.clone(),
            "PR.AA-01",
        ),
        (
            "NHI-PRIV-01",
            "Privileged access to tier0 systems is approved and current",
            Check::PrivilegedAccessGoverned { tier: Criticality::Tier0 },
            ControlScope::default(),
            "PR.AA-05",
        ),
        (
            "NHI-STALE-01",
            "No NHI unused for 90 days still holds access",
            Check::UnusedAccess { days: 90 },
            prod,
            "PR.AA-05",
        ),
        (
            "NHI-CERT-01",
            "Production NHIs are certified by their owners every 90 days",
            Check::Certified { max_age_days: 90 },
            ControlScope { environments: vec![Environment::Production], ..Default::default() },
            "PR.AA-05",
        ),
        (
            "NHI-EXC-01",
            "Exceptions are reviewed before their review date",
            Check::ExceptionReviewed,
            ControlScope::default(),
            "GV.OV-01",
        ),
        (
            "NHI-BG-01",
            "Break-glass access is approved within its window",
            Check::EmergencyApproved,
            ControlScope::default(),
            "PR.AA-05",
        ),
    ];
    let admin = |id: &NodeId| Actor { id: id.clone(), roles: vec![Role::Admin] };
    for (key, title, check, scope, reference) in controls {
        let draft = ControlDraft {
            key: key.into(),
            title: title.into(),
            description: String::new(),
            owner: owner.clone(),
            refs: FrameworkRef::parse(reference).into_iter().collect(),
            scope,
            check,
        };
        let change = Change::Control { id: NodeId::generate(Table::Control), draft };
        let why = Text::parse("the demo company's controls").map_err(StoreError::from)?;
        let filed = store.govern(&admin(filer), &change, &why).await?;
        if let Some(request) = filed.request {
            store.decide_request(&admin(approver), &request.id, DecideOutcome::Approve, &why, &[]).await?;
        }
    }
    Ok(())
}

pub fn investigator() -> Email {
    Email::parse(DEMO_INVESTIGATOR).expect("a valid literal address")
}
