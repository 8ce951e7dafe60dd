//! Certification campaigns against a real (in-memory) SurrealDB: started over a scope,
//! items routed to owners, teams and the admins, answers as decisions, a reduction and a
//! revoke carried out through the request path, an overdue item reminded then escalated
//! to the control's owner, and the report.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use graph_model::domain::campaign::{CampaignDraft, ItemStatus, ReviewAnswer};
use graph_model::domain::control::{Check, ControlDraft, ControlScope, ControlStatus};
use graph_model::store::{Actor, ItemFilter, Store, StoreConfig, StoreError, WorkKind};
use graph_model::*;
use serde_json::json;

fn text(s: &str) -> Text {
    Text::parse(s).unwrap()
}

struct World {
    store: Store,
    ids: HashMap<String, NodeId>,
}

impl World {
    fn id(&self, r: &str) -> NodeId {
        self.ids[r].clone()
    }

    fn actor(&self, r: &str) -> Actor {
        Actor { id: self.id(r), roles: Role::ALL.to_vec() }
    }

    async fn item_of(&self, nhi: &str) -> graph_model::domain::campaign::ReviewItem {
        let items = self.store.review_items(&ItemFilter::default()).await.unwrap();
        items.into_iter().find(|i| i.nhi == self.id(nhi)).unwrap()
    }

    async fn approve(&self, request: &NodeId) {
        self.store
            .decide_request(&self.actor("a1"), request, DecideOutcome::Approve, &text("agreed"), &[])
            .await
            .unwrap();
    }

    async fn access(&self, nhi: &str) -> Vec<String> {
        let sql = format!("SELECT VALUE privilege FROM can_access WHERE in = {} AND valid_to = NONE", self.id(nhi));
        serde_json::from_value(self.store.execute_raw(&sql).await.unwrap()).unwrap()
    }
}

async fn world() -> World {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "admin1", "name": "Admin One", "email": "admin1@x.example", "roles": ["admin"]},
            {"type": "person", "ref": "admin2", "name": "Admin Two", "email": "admin2@x.example", "roles": ["admin", "approver"]},
            {"type": "person", "ref": "a1", "name": "Approver One", "email": "a1@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "grc", "name": "GRC Lead", "email": "grc@x.example", "roles": ["auditor"]},
            {"type": "person", "ref": "owner", "name": "Owner", "email": "owner@x.example", "roles": ["investigator"]},
            {"type": "person", "ref": "member", "name": "Member", "email": "member@x.example", "roles": ["viewer"]},
            {"type": "person", "ref": "leaver", "name": "Leaver", "email": "leaver@x.example", "active": false},
            {"type": "team", "ref": "platform", "name": "Platform"},
            {"type": "nhi", "ref": "owned", "kind": "service_account", "name": "owned", "environment": "production"},
            {"type": "nhi", "ref": "teamed", "kind": "token", "name": "teamed", "environment": "production"},
            {"type": "nhi", "ref": "orphan", "kind": "api_key", "name": "orphan", "environment": "production"},
            {"type": "nhi", "ref": "dev", "kind": "token", "name": "dev", "environment": "development"},
            {"type": "system", "ref": "vault", "kind": "vault", "name": "vault", "environment": "production", "criticality": "tier0"},
            {"type": "secret", "ref": "deploy", "kind": "ssh_key", "name": "deploy", "fingerprint": "fp-deploy-0001"},
            {"type": "secret", "ref": "api", "kind": "api_key", "name": "api", "fingerprint": "fp-api-0001"}
        ],
        "edges": [
            {"type": "owns", "from": "owner", "to": "owned"},
            {"type": "owns", "from": "leaver", "to": "teamed"},
            {"type": "owns", "from": "platform", "to": "teamed"},
            {"type": "member_of", "from": "member", "to": "platform"},
            {"type": "owns", "from": "owner", "to": "dev"},
            {"type": "can_access", "from": "owned", "to": "vault", "privilege": "admin"},
            {"type": "can_access", "from": "orphan", "to": "vault", "privilege": "read"},
            {"type": "holds", "from": "teamed", "to": "deploy"},
            {"type": "holds", "from": "dev", "to": "deploy"},
            {"type": "holds", "from": "owned", "to": "api"}
        ]
    });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
    let w = World { store, ids: summary.ids.into_iter().collect() };
    let draft = ControlDraft {
        key: "NHI-CERT-01".into(),
        title: "Production NHIs certified quarterly".into(),
        description: String::new(),
        owner: w.id("grc"),
        refs: vec![FrameworkRef::parse("GV.OV-01").unwrap()],
        scope: ControlScope { environments: vec![Environment::Production], ..Default::default() },
        check: Check::Certified { max_age_days: 90 },
    };
    let change = Change::Control { id: NodeId::generate(Table::Control), draft };
    let g = w.store.govern(&w.actor("admin1"), &change, &text("quarterly")).await.unwrap();
    let filed = g.request.unwrap();
    w.store.decide_request(&w.actor("admin2"), &filed.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
    w
}

#[tokio::test]
async fn a_campaign_runs_from_start_to_report_with_answers_carried_out_and_an_overdue_item_escalated() {
    let w = world().await;
    let s = &w.store;
    let now = Utc::now();
    s.evaluate_controls(now).await.unwrap();
    let status = |key: &'static str, nhi: NodeId| async move {
        let rows = s.control_results(key, None, None).await.unwrap();
        rows.into_iter().find(|r| r.subject == nhi).map(|r| r.status)
    };
    assert_eq!(status("NHI-CERT-01", w.id("owned")).await, Some(ControlStatus::Fail), "never certified");

    // Started by an admin: one decision, one item per active production NHI.
    let head = s.chain_head().await.unwrap();
    let draft = CampaignDraft {
        name: "Q4 production certification".into(),
        scope: ControlScope { environments: vec![Environment::Production], ..Default::default() },
        due_at: now + Duration::days(1),
        control: Some("NHI-CERT-01".into()),
    };
    let (campaign, started) =
        s.start_campaign(&w.actor("admin1"), &draft, &text("quarterly review"), now).await.unwrap();
    assert_eq!(s.chain_head().await.unwrap().seq, head.seq + 1, "a campaign starts with one decision");
    assert_eq!((started.kind, campaign.items), (DecisionKind::StartCampaign, 3));
    let owned = w.item_of("owned").await;
    assert_eq!(owned.reviewer, Some(w.id("owner")));
    let teamed = w.item_of("teamed").await;
    assert_eq!((teamed.reviewer.clone(), teamed.team.clone()), (None, Some(w.id("platform"))), "its owner left");
    let orphan = w.item_of("orphan").await;
    assert_eq!((orphan.reviewer.clone(), orphan.team.clone()), (None, None), "nobody: the admins");
    let facts: serde_json::Value = serde_json::from_str(&owned.facts).unwrap();
    assert_eq!(facts["access"][0]["privilege"], "admin", "{facts}");
    let mine = ItemFilter { answerable_by: Some(w.id("member")), ..Default::default() };
    assert_eq!(s.review_items(&mine).await.unwrap().len(), 1, "a team member sees the team's item");
    // And in their work, as the owner has theirs; each once.
    for (who, nhi) in [("member", "teamed"), ("owner", "owned")] {
        let work = s.work_of(&w.id(who), 50, now).await.unwrap();
        let items: Vec<&NodeId> =
            work.items.iter().filter(|i| i.kind() == WorkKind::ReviewItem).map(|i| i.id()).collect();
        assert_eq!(items, [&w.item_of(nhi).await.id], "{who}");
        assert_eq!(work.counts.get(&WorkKind::ReviewItem), Some(&1), "{who}");
    }

    // Only whom an item is for answers it.
    let stranger = s.answer_review(&w.actor("a1"), &owned.id, ReviewAnswer::Certify, &text("fine"), None).await;
    assert!(matches!(stranger, Err(StoreError::Invalid(_))), "{stranger:?}");

    // The owner reduces the vault access; the approval lowers it.
    let d = s
        .answer_review(
            &w.actor("owner"),
            &owned.id,
            ReviewAnswer::Reduce,
            &text("read is enough"),
            Some((w.id("vault"), Privilege::Read)),
        )
        .await
        .unwrap();
    assert_eq!((d.kind, d.outcome), (DecisionKind::AnswerReview, Outcome::Requested));
    let owned = w.item_of("owned").await;
    assert_eq!(owned.status, ItemStatus::ReduceRequested);
    assert_eq!(w.access("owned").await, vec!["admin"], "not before the request is approved");
    w.approve(owned.request.as_ref().unwrap()).await;
    assert_eq!(w.access("owned").await, vec!["read"]);
    let again = s.answer_review(&w.actor("owner"), &owned.id, ReviewAnswer::Certify, &text("x"), None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // A team member certifies the team's NHI; the control sees it.
    s.answer_review(&w.actor("member"), &teamed.id, ReviewAnswer::Certify, &text("still needed"), None).await.unwrap();
    s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!(status("NHI-CERT-01", w.id("teamed")).await, Some(ControlStatus::Pass));
    assert_eq!(status("NHI-CERT-01", w.id("orphan")).await, Some(ControlStatus::Fail));

    // Nobody answers for the orphan: reminded before the due date, escalated after it
    // to the owner of the campaign's control, who revokes it.
    let sweep = s.sweep_reviews(now + Duration::hours(2)).await.unwrap();
    assert_eq!((sweep.reminded, sweep.escalated), (1, 0));
    let sweep = s.sweep_reviews(now + Duration::hours(3)).await.unwrap();
    assert_eq!((sweep.reminded, sweep.escalated), (0, 0), "reminded once");
    let sweep = s.sweep_reviews(now + Duration::days(2)).await.unwrap();
    assert_eq!(sweep.escalated, 1);
    let orphan = w.item_of("orphan").await;
    assert_eq!(orphan.escalated_to, Some(w.id("grc")));
    let to_grc =
        ItemFilter { answerable_by: Some(w.id("grc")), status: Some(ItemStatus::Pending), ..Default::default() };
    let listed: Vec<NodeId> = s.review_items(&to_grc).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(listed, std::slice::from_ref(&orphan.id), "an escalated item is listed for whom it went to");
    let work = s.work_of(&w.id("grc"), 50, now + Duration::days(2)).await.unwrap();
    assert_eq!(work.counts.get(&WorkKind::ReviewItem), Some(&1));
    assert_eq!(work.overdue, 1, "and is overdue");
    let report = s.campaign_report(&campaign.id, now + Duration::days(2)).await.unwrap();
    assert_eq!((report.all.overdue, report.all.escalated, report.complete), (1, 1, false));
    s.answer_review(&w.actor("grc"), &orphan.id, ReviewAnswer::Revoke, &text("nobody owns it"), None).await.unwrap();
    w.approve(w.item_of("orphan").await.request.as_ref().unwrap()).await;
    assert!(w.access("orphan").await.is_empty(), "the revoke closed its access");

    let report = s.campaign_report(&campaign.id, now + Duration::days(2)).await.unwrap();
    assert!(report.complete);
    assert_eq!(
        (report.all.total, report.all.certified, report.all.revoked, report.all.reduced, report.all.pending),
        (3, 1, 1, 1, 0)
    );
    let platform = report.by_team.iter().find(|(t, _)| t.as_ref() == Some(&w.id("platform"))).unwrap();
    assert_eq!(platform.1.certified, 1);
    assert!(s.verify_decision_chain().await.unwrap().ok());

    // The campaign's evidence bundle: every decision of it, checkable offline.
    let files = s.campaign_bundle(&campaign.id).await.unwrap();
    let by_path: std::collections::BTreeMap<String, Vec<u8>> =
        files.iter().map(|f| (f.path.clone(), f.bytes.clone())).collect();
    let checked = graph_model::bundle::verify(&by_path);
    assert!(checked.ok(), "{checked:?}");
    let decisions: Vec<Decision> = serde_json::from_slice(&by_path["decisions.json"]).unwrap();
    let kinds: Vec<DecisionKind> = decisions.iter().map(|d| d.kind).collect();
    // The start, three answers, one escalation, and the approvals of the two requests.
    for (kind, n) in [
        (DecisionKind::StartCampaign, 1),
        (DecisionKind::AnswerReview, 3),
        (DecisionKind::EscalateReview, 1),
        (DecisionKind::DecideRequest, 2),
    ] {
        assert_eq!(kinds.iter().filter(|k| **k == kind).count(), n, "{kind:?} in {kinds:?}");
    }
    assert!(decisions.windows(2).all(|w| w[0].seq < w[1].seq), "in chain order");
    let items: Vec<graph_model::domain::campaign::ReviewItem> = serde_json::from_slice(&by_path["items.json"]).unwrap();
    assert_eq!(items.len(), 3);
    let requests: Vec<Request> = serde_json::from_slice(&by_path["requests.json"]).unwrap();
    assert_eq!(requests.len(), 2);
    let manifest: graph_model::bundle::Manifest = serde_json::from_slice(&by_path["manifest.json"]).unwrap();
    assert_eq!((manifest.campaign.as_ref(), manifest.case.as_ref()), (Some(&campaign.id), None));
    // An item rewritten after the export is caught, naming the file.
    let mut forged = by_path.clone();
    let text_of = String::from_utf8(forged["items.json"].clone()).unwrap();
    forged.insert("items.json".into(), text_of.replacen("revoke_requested", "certified", 1).into_bytes());
    let caught = graph_model::bundle::verify(&forged);
    assert!(caught.problems.iter().any(|p| p.starts_with("items.json: altered")), "{caught:?}");
    // A case's id is not a campaign.
    let wrong = s.campaign_bundle(&w.id("owned")).await;
    assert!(matches!(wrong, Err(StoreError::Invalid(_))), "{wrong:?}");
}

#[tokio::test]
async fn a_campaign_needs_a_future_due_date_a_known_control_and_something_in_scope() {
    let w = world().await;
    let now = Utc::now();
    let draft = |due: Duration, control: Option<&str>, env: Environment| CampaignDraft {
        name: "c".into(),
        scope: ControlScope { environments: vec![env], ..Default::default() },
        due_at: now + due,
        control: control.map(Into::into),
    };
    let a = w.actor("admin1");
    let r =
        w.store.start_campaign(&a, &draft(Duration::days(-1), None, Environment::Production), &text("x"), now).await;
    assert!(matches!(r, Err(StoreError::Invalid(ref e)) if e.field == "dueAt"), "{r:?}");
    let r = w
        .store
        .start_campaign(&a, &draft(Duration::days(1), Some("NHI-NONE-01"), Environment::Production), &text("x"), now)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(ref e)) if e.field == "controlKey"), "{r:?}");
    let r = w.store.start_campaign(&a, &draft(Duration::days(1), None, Environment::Staging), &text("x"), now).await;
    assert!(matches!(r, Err(StoreError::Invalid(ref e)) if e.field == "scope"), "{r:?}");
}

#[tokio::test]
async fn a_campaign_over_the_holders_of_a_secret_kind_reviews_just_them() {
    let w = world().await;
    let now = Utc::now();
    let draft = |environments: Vec<Environment>| CampaignDraft {
        name: "SSH key holders".into(),
        scope: ControlScope { secret_kinds: vec![SecretKind::SshKey], environments, ..Default::default() },
        due_at: now + Duration::days(7),
        control: None,
    };
    let (all, _) = w.store.start_campaign(&w.actor("admin1"), &draft(vec![]), &text("deploy keys"), now).await.unwrap();
    let items =
        w.store.review_items(&ItemFilter { campaign: Some(all.id.clone()), ..Default::default() }).await.unwrap();
    let mut reviewed: Vec<NodeId> = items.iter().map(|i| i.nhi.clone()).collect();
    reviewed.sort();
    let mut holders = vec![w.id("teamed"), w.id("dev")];
    holders.sort();
    assert_eq!(reviewed, holders, "the two holders of the SSH key, not the API key's");
    let (prod, _) = w
        .store
        .start_campaign(&w.actor("admin1"), &draft(vec![Environment::Production]), &text("production keys"), now)
        .await
        .unwrap();
    assert_eq!(prod.items, 1, "bounds add up: an SSH key holder in production");
    assert_eq!(prod.scope.describe(), "in production, holding a secret of kind ssh_key");
}
