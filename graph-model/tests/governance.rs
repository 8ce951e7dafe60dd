//! The governance record against a real (in-memory) SurrealDB: the chain, rule
//! enforcement and effects, below the API.

use std::collections::HashMap;

use chrono::Utc;
use graph_model::inventory::{Inventory, NodeSpec};
use graph_model::store::{Actor, Store, StoreConfig, StoreError};
use graph_model::*;
use serde_json::json;

struct World {
    store: Store,
    ids: HashMap<String, NodeId>,
}

impl World {
    fn id(&self, r: &str) -> NodeId {
        self.ids[r].clone()
    }

    /// `r` acting with every role they hold.
    fn actor(&self, r: &str) -> Actor {
        Actor { id: self.id(r), roles: Role::ALL.to_vec() }
    }
}

async fn world() -> World {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "req", "name": "Requester", "email": "req@x.example", "roles": ["investigator", "approver"]},
            {"type": "person", "ref": "a1", "name": "Approver One", "email": "a1@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "a2", "name": "Approver Two", "email": "a2@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "owner", "name": "Owner", "email": "owner@x.example", "roles": ["approver"]},
            {"type": "team", "ref": "team", "name": "Payments"},
            {"type": "nhi", "ref": "bot", "kind": "service_account", "name": "deploy-bot", "environment": "production", "external_id": "bot-1"},
            {"type": "nhi", "ref": "orphan", "kind": "token", "name": "orphan", "environment": "production"},
            {"type": "secret", "ref": "key", "kind": "api_key", "name": "deploy key", "fingerprint": "fp-0123456789"},
            {"type": "system", "ref": "db", "kind": "database", "name": "ledger", "environment": "production", "criticality": "tier1"},
            {"type": "system", "ref": "vault", "kind": "vault", "name": "vault", "environment": "production", "criticality": "tier0"}
        ],
        "edges": [
            {"type": "member_of", "from": "owner", "to": "team"},
            {"type": "owns", "from": "team", "to": "bot"},
            {"type": "owns", "from": "owner", "to": "vault"},
            {"type": "holds", "from": "bot", "to": "key"},
            {"type": "authenticates_to", "from": "key", "to": "db"},
            {"type": "can_access", "from": "bot", "to": "db", "privilege": "read"}
        ]
    });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
    World { store, ids: summary.ids.into_iter().collect() }
}

fn text(s: &str) -> Text {
    Text::parse(s).unwrap()
}

fn grant(w: &World, subject: &str, target: &str, privilege: Privilege) -> NewRequest {
    NewRequest {
        target: Some(w.id(target)),
        privilege: Some(privilege),
        duration_days: Some(30),
        ..NewRequest::new(RequestKind::GrantAccess, w.id(subject), text("deploys need it"))
    }
}

#[tokio::test]
async fn an_alert_becomes_a_case_that_closes_with_a_verified_chain() {
    let w = world().await;
    let s = &w.store;
    let alert = NewAlert {
        source: Label::parse("gitleaks").unwrap(),
        rule: Label::parse("generic-api-key").unwrap(),
        severity: Severity::Critical,
        title: text("deploy key committed"),
        detail: None,
        detected_at: Utc::now(),
        subject: SubjectRef::Fingerprint("fp-0123456789".into()),
        refs: vec![FrameworkRef::parse("NHI-02").unwrap()],
        dedupe_key: "k1".into(),
    };
    let (a, outcome) = s.ingest_alert(&alert).await.unwrap();
    assert_eq!(outcome, store_outcome_created());
    assert_eq!(a.subject, Some(w.id("key")));
    assert_eq!(a.enrichment.systems, vec![w.id("db")]);
    assert!(a.enrichment.last_used_at.is_none());
    let (again, outcome) = s.ingest_alert(&alert).await.unwrap();
    assert_eq!((again.id.clone(), again.count), (a.id.clone(), 2));
    assert_ne!(outcome, store_outcome_created());

    let sla = SlaHours::default();
    let case = s
        .open_case(
            &w.id("req"),
            &NewCase {
                title: text("leaked deploy key"),
                description: None,
                severity: None,
                alerts: vec![a.id.clone()],
                subjects: vec![],
                assignee: Some(w.id("req")),
                refs: vec![],
            },
            &sla,
        )
        .await
        .unwrap();
    assert_eq!(case.severity, Severity::Critical);
    assert_eq!(case.subjects, vec![w.id("key")]);
    let case = s.transition_case(&w.id("req"), &case.id, CaseStatus::Investigating, &text("looking")).await.unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);
    let bad = s.transition_case(&w.id("req"), &case.id, CaseStatus::Open, &text("back")).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    let ev = s
        .attach_evidence(
            &w.id("req"),
            &case.id,
            &NewEvidence {
                kind: EvidenceKind::RotationStatus,
                content: EvidenceContent::parse("rotated at 10:00").unwrap(),
                source: Label::parse("vault").unwrap(),
                collected_at: None,
                supersedes: None,
                supersede_reason: None,
                refs: vec![],
            },
        )
        .await
        .unwrap();
    assert!(ev.intact());
    let edit = s.execute_raw(&format!("UPDATE {} SET content = 'forged'", ev.id)).await;
    assert!(edit.is_err(), "evidence cannot be edited");

    let task = s
        .add_task(
            &w.id("req"),
            &case.id,
            &NewTask { kind: TaskKind::Rotate, title: text("rotate"), assignee: None, mandatory: true },
        )
        .await
        .unwrap();
    let close = CloseCase {
        resolution: Resolution::TruePositive,
        summary: text("rotated"),
        risk_remediated: true,
        finding_closed: true,
        verification: ev.id.clone(),
    };
    let blocked = s.close_case(&w.id("req"), &case.id, &close).await;
    assert!(matches!(&blocked, Err(StoreError::Invalid(e)) if e.field == "tasks"), "{blocked:?}");
    s.finish_task(&w.id("req"), &task.id, TaskStatus::Done, None).await.unwrap();
    let closed = s.close_case(&w.id("req"), &case.id, &close).await.unwrap();
    assert_eq!(closed.status, CaseStatus::Closed);
    assert_eq!(closed.finding_closed, Some(true));

    let report = s.verify_decision_chain().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.length, 4, "genesis, open, transition, close");
    let timeline = s.timeline(&case.id).await.unwrap();
    assert!(timeline.len() >= 6, "{timeline:?}");
}

fn store_outcome_created() -> graph_model::store::IngestOutcome {
    graph_model::store::IngestOutcome::Created
}

#[tokio::test]
async fn approvals_follow_the_policy_and_change_the_graph() {
    let w = world().await;
    let s = &w.store;
    let r = s.create_request(&w.id("req"), &grant(&w, "bot", "vault", Privilege::Admin)).await.unwrap();
    assert_eq!((r.status, r.approvals_needed), (RequestStatus::Pending, 2));

    let own = s.decide_request(&w.actor("req"), &r.id, DecideOutcome::Approve, &text("mine"), &[]).await;
    match own {
        Err(StoreError::Refused { violation, .. }) => assert_eq!(violation.rule, RuleKind::RequesterCannotApprove),
        other => panic!("{other:?}"),
    }
    let owner = s.decide_request(&w.actor("owner"), &r.id, DecideOutcome::Approve, &text("mine"), &[]).await;
    match owner {
        Err(StoreError::Refused { violation, .. }) => assert_eq!(violation.rule, RuleKind::OwnerCannotApprove),
        other => panic!("{other:?}"),
    }
    let (_, r1) = s.decide_request(&w.actor("a1"), &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
    assert_eq!((r1.status, r1.approvals.len()), (RequestStatus::Pending, 1));
    let twice = s.decide_request(&w.actor("a1"), &r.id, DecideOutcome::Approve, &text("again"), &[]).await;
    assert!(matches!(twice, Err(StoreError::Refused { .. })), "{twice:?}");
    let (d, r2) = s.decide_request(&w.actor("a2"), &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
    assert_eq!(r2.status, RequestStatus::Approved);
    assert_eq!(d.outcome, Outcome::Approved);
    let edge = EdgeId::parse(r2.granted_edge.as_deref().unwrap()).unwrap();
    let edge = s.edge(&edge).await.unwrap().unwrap();
    assert_eq!(
        (edge.from.clone(), edge.to.clone(), edge.privilege),
        (w.id("bot"), w.id("vault"), Some(Privilege::Admin))
    );
    assert!(edge.expires_at.is_some());
    let late = s.decide_request(&w.actor("owner"), &r.id, DecideOutcome::Approve, &text("late"), &[]).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");

    // An NHI without an owner: denied at once, until the control owner accepts the risk.
    let r = s.create_request(&w.id("req"), &grant(&w, "orphan", "db", Privilege::Read)).await.unwrap();
    assert_eq!(r.status, RequestStatus::Denied);
    let not_owner = s.accept_risk(&w.id("a1"), &r.id, &text("fine")).await;
    assert!(matches!(not_owner, Err(StoreError::Refused { .. })), "{not_owner:?}");

    let report = s.verify_decision_chain().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.length, 8, "genesis, 2 refused, 2 approvals, 1 refused, deny, refused acceptance");
}

#[tokio::test]
async fn the_trail_of_a_node_with_more_requests_than_one_index_read_holds_has_every_decision() {
    // SurrealDB 3.3 reads `subject IN $list` from an index for at most 32 values: 40
    // requests for the orphan, on the ledger, each denied at once (a decision each).
    let w = world().await;
    let s = &w.store;
    let mut denied = Vec::new();
    for _ in 0..40 {
        let r = s.create_request(&w.id("req"), &grant(&w, "orphan", "db", Privilege::Read)).await.unwrap();
        assert_eq!(r.status, RequestStatus::Denied);
        denied.push(r.id);
    }
    let all = s.decisions_about(&w.id("orphan")).await.unwrap();
    for node in ["orphan", "db"] {
        let trail = s.decisions_about(&w.id(node)).await.unwrap();
        for r in &denied {
            assert_eq!(trail.iter().filter(|d| &d.subject == r).count(), 1, "{node}: the denial of {r}, once");
        }
        assert!(trail.windows(2).all(|p| p[0].seq < p[1].seq), "{node}: in chain order, each once");
    }
    assert_eq!(all.len(), 40, "the orphan's trail is its 40 denials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chain_verifies_while_decisions_are_being_recorded() {
    let w = world().await;
    let r = w.store.create_request(&w.id("req"), &grant(&w, "bot", "vault", Privilege::Admin)).await.unwrap();
    // Each refused self-approval is a decision appended to the chain.
    let writer = {
        let (s, actor, id) = (w.store.clone(), w.actor("req"), r.id.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                let own = s.decide_request(&actor, &id, DecideOutcome::Approve, &text("mine"), &[]).await;
                assert!(matches!(own, Err(StoreError::Refused { .. })), "{own:?}");
            }
        })
    };
    let mut verified = 0;
    while !writer.is_finished() {
        let report = w.store.verify_decision_chain().await.unwrap();
        assert!(report.ok(), "a verification racing the writer saw a broken chain: {report:?}");
        verified += 1;
    }
    writer.await.unwrap();
    let report = w.store.verify_decision_chain().await.unwrap();
    assert!(report.ok() && report.length >= 41, "{report:?}");
    assert!(verified > 1, "the verifications ran beside the writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_on_one_request_cannot_both_approve() {
    let w = world().await;
    // Eight replicas of the API over one database, none sharing the in-process lock.
    let replicas: Vec<Store> = (0..8).map(|_| w.store.as_replica()).collect();
    for round in 0..5 {
        let r = w.store.create_request(&w.id("req"), &grant(&w, "bot", "db", Privilege::Read)).await.unwrap();
        let tasks: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (s, id) = (s.clone(), r.id.clone());
                let actor = if i % 2 == 0 { w.actor("a1") } else { w.actor("a2") };
                tokio::spawn(async move {
                    s.decide_request(&actor, &id, DecideOutcome::Approve, &Text::parse("race").unwrap(), &[]).await
                })
            })
            .collect();
        let mut approved = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok((d, _)) => approved.push(d),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(approved.len(), 1, "round {round}: exactly one approval commits");
        let r = w.store.request(&r.id).await.unwrap();
        assert_eq!((r.status, r.approvals.len()), (RequestStatus::Approved, 1));
    }
    let report = w.store.verify_decision_chain().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.length, 6, "genesis and five approvals");
}

#[tokio::test]
async fn a_replicas_graph_index_sees_the_others_writes() {
    use graph_model::graph::Direction;
    let w = world().await;
    let other = w.store.as_replica();
    let reach = |s: Store, from: NodeId, at: Option<chrono::DateTime<Utc>>| async move {
        let t = s.traverse(&from, Direction::Forward, 3, 1000, at).await.unwrap().unwrap();
        t.reached.into_iter().map(|r| (r.node, r.hops)).collect::<Vec<_>>()
    };
    // bot -> key -> db, bot -> db: the db at one hop, the key at one.
    let before = reach(other.clone(), w.id("bot"), None).await;
    assert!(before.contains(&(w.id("db"), 1)) && before.contains(&(w.id("key"), 1)), "{before:?}");
    assert!(!before.iter().any(|(n, _)| *n == w.id("vault")));
    // The index may lag other processes' writes by up to the refresh interval.
    let refresh = || tokio::time::sleep(StoreConfig::memory().graph_refresh + std::time::Duration::from_millis(20));
    // A grant through the first handle shows on its own next traversal at once, and on
    // the replica's once the refresh interval has passed.
    let edge = w
        .store
        .relate(&NewEdge {
            kind: EdgeKind::CanAccess,
            from: w.id("bot"),
            to: w.id("vault"),
            attrs: EdgeAttrs { privilege: Some(Privilege::Admin), mechanism: None, expires_at: None },
        })
        .await
        .unwrap();
    let opened = Utc::now();
    let own = reach(w.store.clone(), w.id("bot"), None).await;
    assert!(own.contains(&(w.id("vault"), 1)), "{own:?}");
    refresh().await;
    let after = reach(other.clone(), w.id("bot"), None).await;
    assert!(after.contains(&(w.id("vault"), 1)), "{after:?}");
    // Closed through the first handle: gone now, still there as of before.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    w.store.close_edge(&edge.id).await.unwrap();
    refresh().await;
    let now = reach(other.clone(), w.id("bot"), None).await;
    assert!(!now.iter().any(|(n, _)| *n == w.id("vault")), "{now:?}");
    let then = reach(other.clone(), w.id("bot"), Some(opened)).await;
    assert!(then.contains(&(w.id("vault"), 1)), "asOf sees the closed edge: {then:?}");
    // Who can reach the vault, in reverse, as of then.
    let t = other.traverse(&w.id("vault"), Direction::Reverse, 3, 1000, Some(opened)).await.unwrap().unwrap();
    assert_eq!(t.reached.iter().map(|r| r.node.clone()).collect::<Vec<_>>(), vec![w.id("bot")]);
    assert_eq!(t.reached[0].max_privilege, Some(Privilege::Admin));
}

/// How one race fell.
enum Raced {
    /// The approval committed before the change (the decision's id).
    Before(NodeId),
    /// The approval was refused by the rule the change brings into play.
    Refused(NodeId),
}

/// One race: an approval on one replica and, `lag` later, a change on the other (its
/// decision's sequence number). The approval must commit before the change, or be
/// refused by `rule` after it; committing after it on the facts read before is the
/// rule-breaking approval the race looks for.
async fn race<A, C>(i: usize, rule: RuleKind, lag: std::time::Duration, approval: A, change: C) -> Raced
where
    A: std::future::Future<Output = Result<(Decision, Request), StoreError>> + Send + 'static,
    C: std::future::Future<Output = u64> + Send + 'static,
{
    let approval = tokio::spawn(approval);
    let change = tokio::spawn(async move {
        tokio::time::sleep(lag).await;
        change.await
    });
    let (approval, change_seq) = (approval.await.unwrap(), change.await.unwrap());
    match approval {
        Ok((d, _)) => {
            assert!(d.seq < change_seq, "race {i}: an approval committed after the change that forbids it");
            Raced::Before(d.id)
        }
        Err(StoreError::Refused { violation, decision }) => {
            assert_eq!(violation.rule, rule, "race {i}");
            Raced::Refused(decision)
        }
        Err(e) => panic!("race {i}: {e}"),
    }
}

/// The lag of race `i`: up to a few milliseconds, so that across the races the change
/// lands before, during and after the approval's planning.
fn lag(i: usize) -> std::time::Duration {
    std::time::Duration::from_micros((i as u64 * 337) % 4000)
}

/// A role removal racing an approval, 1,000 times over two replicas sharing no lock: an
/// approval may commit before the removal, or be refused after it, but never commit
/// after it on the roles it read before (every fact a rule read is checked again in the
/// transaction that seals the decision). The chain stays gapless and holds every
/// decision either side was told was recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_removal_racing_an_approval_never_lets_a_rule_breaking_approval_commit() {
    const RACES: usize = 1000;
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let mut nodes = vec![
        json!({"type": "person", "ref": "admin", "name": "Admin", "email": "admin@race.example", "roles": ["admin"]}),
        json!({"type": "person", "ref": "req", "name": "Requester", "email": "req@race.example", "roles": ["investigator"]}),
        json!({"type": "secret", "ref": "key", "kind": "api_key", "name": "key", "fingerprint": "fp-race-0001"}),
    ];
    for i in 0..RACES {
        nodes.push(json!({"type": "person", "ref": format!("a{i}"), "name": format!("Approver {i}"),
            "email": format!("a{i}@race.example"), "roles": ["approver"]}));
    }
    let (summary, _) =
        store.bootstrap(&json!({ "nodes": nodes, "edges": [] }), Utc::now(), &text("race")).await.unwrap();
    let ids: HashMap<String, NodeId> = summary.ids.into_iter().collect();
    let replica = store.as_replica();
    let admin = Actor { id: ids["admin"].clone(), roles: vec![Role::Admin] };
    let (acknowledged_tx, mut acknowledged_rx) = tokio::sync::mpsc::unbounded_channel();
    let rotate = NewRequest::new(RequestKind::RotateSecret, ids["key"].clone(), text("rotate"));
    let (mut before, mut refused, mut acknowledged) = (0, 0, Vec::new());
    for i in 0..RACES {
        let approver = Actor { id: ids[&format!("a{i}")].clone(), roles: vec![Role::Approver] };
        let r = store.create_request(&ids["req"], &rotate).await.unwrap();
        let removal = Change::Roles { person: approver.id.clone(), grant: vec![], revoke: vec![Role::Approver] };
        let (replica, id) = (replica.clone(), r.id.clone());
        let approval =
            async move { replica.decide_request(&approver, &id, DecideOutcome::Approve, &text("approve"), &[]).await };
        let (store, admin, tx) = (store.clone(), admin.clone(), acknowledged_tx.clone());
        let removal = async move {
            let g = store.govern(&admin, &removal, &text("leaves the approvers")).await.unwrap();
            assert!(g.applied(), "a removal applies at once");
            tx.send(g.decision.id.clone()).unwrap();
            g.decision.seq
        };
        match race(i, RuleKind::ApproverRoleRequired, lag(i), approval, removal).await {
            Raced::Before(d) => {
                before += 1;
                acknowledged.push(d);
            }
            Raced::Refused(d) => {
                refused += 1;
                acknowledged.push(d);
            }
        }
    }
    drop(acknowledged_tx);
    while let Some(d) = acknowledged_rx.recv().await {
        acknowledged.push(d);
    }
    assert_eq!(before + refused, RACES);
    let report = store.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(report.length, 1 + 2 * RACES as u64, "the genesis and two decisions a race, no gap");
    let stored = store.decisions_by_id(&acknowledged).await.unwrap();
    assert_eq!(stored.len(), acknowledged.len(), "every acknowledged decision is in the chain");
    // How the races fell, for the log.
    println!("{before} approvals committed before the removal, {refused} refused after it");
}

/// A store written before roles were governed holds roles no decision granted: opening
/// it records one decision adopting them as they stand, revokes the tokens the rules
/// now forbid, and does so once.
#[tokio::test]
async fn roles_held_before_they_were_governed_are_adopted_once_at_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let doc = json!({ "nodes": [
        {"type": "person", "ref": "sam", "name": "Sam", "email": "sam@old.example"},
        {"type": "person", "ref": "bot", "name": "Scanner", "email": "scanner@old.example"}
    ], "edges": [] });
    let ids: HashMap<String, NodeId> =
        store.import(&Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap().ids.into_iter().collect();
    // As an older nhigov wrote them: roles set directly, and a token made by one admin
    // for another principal.
    store
        .execute_raw(&format!(
            "UPDATE {sam} SET roles = ['admin']; UPDATE {bot} SET roles = ['ingest', 'investigator'];
             CREATE api_token:old CONTENT {{ name: 'old', principal: {bot}, token_sha256: 'x', scopes: ['investigator'],
                 created_at: time::now(), created_by: {sam} }};
             CREATE api_token:own CONTENT {{ name: 'own', principal: {sam}, token_sha256: 'y', scopes: ['ingest'],
                 created_at: time::now(), created_by: {sam} }};",
            sam = ids["sam"],
            bot = ids["bot"]
        ))
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(&cfg).await.unwrap();
    assert!(store.has_genesis().await.unwrap());
    let chain = store.verify_decision_chain().await.unwrap();
    assert_eq!((chain.length, chain.first_broken.is_none()), (1, true));
    let adopted = store
        .decisions(
            &Default::default(),
            &graph_model::store::PageRequest { first: 10, after: None, count: true, ..Default::default() },
        )
        .await;
    let d = adopted.unwrap().items.remove(0);
    assert_eq!((d.kind, d.outcome, d.actor.clone()), (DecisionKind::Genesis, Outcome::Accepted, ids["sam"].clone()));
    assert!(d.inputs.contains("scanner@old.example") && d.inputs.contains("investigator"), "{}", d.inputs);
    let tokens = store.api_tokens().await.unwrap();
    let revoked = |name: &str| tokens.iter().find(|t| t.name == name).unwrap().revoked_at.is_some();
    assert!(revoked("old"), "a token for another principal is revoked");
    assert!(!revoked("own"), "an ingest token for oneself is allowed");
    store.close().await;

    let store = Store::open(&cfg).await.unwrap();
    assert_eq!(store.verify_decision_chain().await.unwrap().length, 1, "adopted once");
    store.close().await;
}

/// Tokens one person held for another (allowed, with a second admin, before such tokens
/// became machine principals' alone) are revoked when the store is opened, by one
/// decision naming them; a machine's token stays.
#[tokio::test]
async fn tokens_held_for_another_person_are_revoked_once_at_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let doc = json!({ "nodes": [
        {"type": "person", "ref": "sam", "name": "Sam", "email": "sam@old.example", "roles": ["admin"]},
        {"type": "person", "ref": "jules", "name": "Jules", "email": "jules@old.example", "roles": ["approver"]},
        {"type": "person", "ref": "ci", "name": "CI", "email": "ci@old.example", "roles": ["ingest"], "machine": true}
    ], "edges": [] });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
    let ids: HashMap<String, NodeId> = summary.ids.into_iter().collect();
    store
        .execute_raw(&format!(
            "CREATE api_token:as_jules CONTENT {{ name: 'as jules', principal: {jules}, token_sha256: 'x',
                 scopes: ['approver'], created_at: time::now(), created_by: {sam} }};
             CREATE api_token:ci CONTENT {{ name: 'ci', principal: {ci}, token_sha256: 'y', scopes: ['ingest'],
                 created_at: time::now(), created_by: {sam} }};",
            sam = ids["sam"],
            jules = ids["jules"],
            ci = ids["ci"]
        ))
        .await
        .unwrap();
    store.close().await;

    let store = Store::open(&cfg).await.unwrap();
    let chain = store.verify_decision_chain().await.unwrap();
    assert_eq!((chain.length, chain.first_broken.is_none()), (2, true), "the genesis and the revocation");
    let tokens = store.api_tokens().await.unwrap();
    let revoked = |name: &str| tokens.iter().find(|t| t.name == name).unwrap().revoked_at.is_some();
    assert!(revoked("as jules"), "a token for another person is revoked");
    assert!(!revoked("ci"), "a machine principal's token stays");
    store.close().await;
    let store = Store::open(&cfg).await.unwrap();
    assert_eq!(store.verify_decision_chain().await.unwrap().length, 2, "revoked once");
    store.close().await;
}

/// A request that needs two approvals, escalated to one person: their approval counts
/// and hands the request back to the other approvers, but never to the escalator.
#[tokio::test]
async fn an_escalation_target_approves_and_the_rest_may_come_from_anyone_but_the_escalator() {
    let w = world().await;
    let s = &w.store;
    let r = s.create_request(&w.id("req"), &grant(&w, "bot", "vault", Privilege::Admin)).await.unwrap();
    assert_eq!(r.approvals_needed, 2);
    let to_a2 = EscalationTarget::Person(w.id("a2"));
    let (_, r) = s.escalate_request(&w.actor("a1"), &r.id, &to_a2, &text("tier0 admin"), &[]).await.unwrap();
    assert_eq!((r.status, r.escalated_by.clone()), (RequestStatus::Escalated, Some(w.id("a1"))));
    let (_, r) = s.decide_request(&w.actor("a2"), &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
    assert_eq!((r.status, r.escalated_to.clone(), r.approvals.len()), (RequestStatus::Pending, None, 1));
    match s.decide_request(&w.actor("a1"), &r.id, DecideOutcome::Approve, &text("mine"), &[]).await {
        Err(StoreError::Refused { violation, .. }) => assert_eq!(violation.rule, RuleKind::EscalatorCannotApprove),
        other => panic!("{other:?}"),
    }
}

/// The world of a grant race: `people`, an NHI `bot` in `environment` owned by `owner`
/// (one of them), and `races` systems `s0`.. of `kind`, `environment` and `criticality`,
/// each owned by `admin`; bootstrapped, with their ids by ref.
async fn race_world(
    mut people: Vec<serde_json::Value>,
    environment: &str,
    (kind, criticality): (&str, &str),
    races: usize,
) -> (Store, HashMap<String, NodeId>) {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    people.push(
        json!({"type": "nhi", "ref": "bot", "kind": "service_account", "name": "bot", "environment": environment}),
    );
    let mut edges = vec![json!({"type": "owns", "from": "owner", "to": "bot"})];
    for i in 0..races {
        people.push(json!({"type": "system", "ref": format!("s{i}"), "kind": kind, "name": format!("{kind}-{i}"),
            "environment": environment, "criticality": criticality}));
        edges.push(json!({"type": "owns", "from": "admin", "to": format!("s{i}")}));
    }
    let (summary, _) =
        store.bootstrap(&json!({ "nodes": people, "edges": edges }), Utc::now(), &text("race")).await.unwrap();
    (store, summary.ids.into_iter().collect())
}

fn person(r: &str, roles: &[&str]) -> serde_json::Value {
    json!({"type": "person", "ref": r, "name": r, "email": format!("{r}@race.example"), "roles": roles})
}

/// A criticality raised while its system's owner approves a grant to it, 300 times over
/// two replicas: the owner may approve an unprivileged grant, not a privileged one, so
/// an approval either commits before the raise or is refused after it; never committed
/// after it on the criticality read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_criticality_raised_during_an_owners_approval_never_lets_the_owner_approve_a_privileged_grant() {
    const RACES: usize = 300;
    let people = vec![person("admin", &["admin"]), person("req", &["investigator"]), person("owner", &["approver"])];
    let (store, ids) = race_world(people, "staging", ("application", "tier3"), RACES).await;
    let replica = store.as_replica();
    let admin = Actor { id: ids["admin"].clone(), roles: vec![Role::Admin] };
    let owner = Actor { id: ids["owner"].clone(), roles: vec![Role::Approver] };
    let (mut before, mut refused) = (0, 0);
    for i in 0..RACES {
        let system = ids[&format!("s{i}")].clone();
        let r = store.create_request(&ids["req"], &grant_to(&ids, &system, Privilege::Write)).await.unwrap();
        assert_eq!(r.approvals_needed, 1, "write on a tier3 staging system is not privileged");
        let (replica, owner, id) = (replica.clone(), owner.clone(), r.id.clone());
        let approval = async move {
            replica.decide_request(&owner, &id, DecideOutcome::Approve, &text("mine to approve"), &[]).await
        };
        let (store, admin) = (store.clone(), admin.clone());
        let change = Change::SystemRisk { system, criticality: Some(Criticality::Tier1), environment: None };
        let raise = async move {
            let g = store.govern(&admin, &change, &text("holds customer data now")).await.unwrap();
            assert!(g.applied(), "raising a criticality applies at once");
            g.decision.seq
        };
        match race(i, RuleKind::OwnerCannotApprove, lag(i), approval, raise).await {
            Raced::Before(_) => before += 1,
            Raced::Refused(_) => refused += 1,
        }
    }
    let report = store.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(report.length, 1 + 2 * RACES as u64);
    println!("{before} owner approvals committed before the raise, {refused} refused after it");
}

fn grant_to(ids: &HashMap<String, NodeId>, system: &NodeId, privilege: Privilege) -> NewRequest {
    NewRequest {
        target: Some(system.clone()),
        privilege: Some(privilege),
        duration_days: Some(30),
        ..NewRequest::new(RequestKind::GrantAccess, ids["bot"].clone(), text("the pipeline needs it"))
    }
}

/// An owner change racing an approval, 300 times over two replicas: an approver who
/// becomes an owner of the NHI while approving a privileged grant to it either approved
/// before the edge opened, or is refused after it (`owner_cannot_approve`); never
/// committed after it on the owners read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_change_racing_an_approval_never_lets_an_owner_approve_a_privileged_grant() {
    const RACES: usize = 300;
    let mut people = vec![person("admin", &["admin"]), person("req", &["investigator"]), person("owner", &[])];
    people.extend((0..RACES).map(|i| person(&format!("a{i}"), &["approver"])));
    let (store, ids) = race_world(people, "production", ("vault", "tier0"), RACES).await;
    let (before, refused) = approvals_racing_an_edge(&store, &ids, RACES, EdgeKind::Owns, "bot").await;
    let report = store.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(report.length, 1 + 2 * RACES as u64, "the genesis and two decisions a race, no gap");
    println!("{before} approvals committed before the owner change, {refused} refused after it");
}

/// `races` approvals of privileged grants to the NHI `bot` (to the systems `s0`..), the
/// `i`th by approver `a{i}`, each raced by an admin's edge of `kind` from that approver
/// to `to`, which makes them an owner of `bot`: how many approvals committed before
/// the edge, and how many were refused after it; never one committed after it.
async fn approvals_racing_an_edge(
    store: &Store,
    ids: &HashMap<String, NodeId>,
    races: usize,
    kind: EdgeKind,
    to: &str,
) -> (usize, usize) {
    let replica = store.as_replica();
    let admin = Actor { id: ids["admin"].clone(), roles: vec![Role::Admin] };
    let (mut before, mut refused) = (0, 0);
    for i in 0..races {
        let approver = Actor { id: ids[&format!("a{i}")].clone(), roles: vec![Role::Approver] };
        let system = ids[&format!("s{i}")].clone();
        let r = store.create_request(&ids["req"], &grant_to(ids, &system, Privilege::Admin)).await.unwrap();
        let edge = Change::Relate {
            edge: NewEdge { kind, from: approver.id.clone(), to: ids[to].clone(), attrs: Default::default() },
        };
        let (replica, id) = (replica.clone(), r.id.clone());
        let approval =
            async move { replica.decide_request(&approver, &id, DecideOutcome::Approve, &text("approve"), &[]).await };
        let (store, admin) = (store.clone(), admin.clone());
        let change = async move {
            let g = store.govern(&admin, &edge, &text("becomes an owner")).await.unwrap();
            assert!(g.applied(), "{kind} applies at once");
            g.decision.seq
        };
        match race(i, RuleKind::OwnerCannotApprove, lag(i), approval, change).await {
            Raced::Before(_) => before += 1,
            Raced::Refused(_) => refused += 1,
        }
    }
    (before, refused)
}

/// A membership change racing an approval, 300 times over two replicas: an approver who
/// joins the team that owns the NHI while approving a privileged grant to it either
/// approved before they joined, or is refused after it (`owner_cannot_approve`); never
/// committed after it on the team's members read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_membership_racing_an_approval_never_lets_an_owner_approve_a_privileged_grant() {
    const RACES: usize = 300;
    let mut people = vec![
        person("admin", &["admin"]),
        person("req", &["investigator"]),
        person("lead", &[]),
        json!({"type": "team", "ref": "owner", "name": "ops"}),
    ];
    people.extend((0..RACES).map(|i| person(&format!("a{i}"), &["approver"])));
    let (store, ids) = race_world(people, "production", ("vault", "tier0"), RACES).await;
    // The team has an active member, so the grant is not denied for want of an owner.
    let admin = Actor { id: ids["admin"].clone(), roles: vec![Role::Admin] };
    let lead = Change::Relate {
        edge: NewEdge {
            kind: EdgeKind::MemberOf,
            from: ids["lead"].clone(),
            to: ids["owner"].clone(),
            attrs: Default::default(),
        },
    };
    assert!(store.govern(&admin, &lead, &text("leads ops")).await.unwrap().applied());
    let (before, refused) = approvals_racing_an_edge(&store, &ids, RACES, EdgeKind::MemberOf, "owner").await;
    let report = store.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(report.length, 2 + 2 * RACES as u64, "the genesis, the lead's membership and two decisions a race");
    println!("{before} approvals committed before the membership, {refused} refused after it");
}

/// A policy publication racing an approval, 300 times over two replicas: the owner of
/// an NHI approves a privileged grant to it under a policy without
/// `owner_cannot_approve` while a second admin approves the version that restores it.
/// The approval commits under the version it was checked against (before the new one
/// is in force), or is refused by the new one; never committed after it under the old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_publication_racing_an_approval_never_lets_the_old_policy_approve_after_it() {
    const RACES: usize = 300;
    let people = vec![
        person("admin", &["admin"]),
        person("admin2", &["admin"]),
        person("req", &["investigator"]),
        person("owner", &["approver"]),
    ];
    let (store, ids) = race_world(people, "production", ("vault", "tier0"), RACES).await;
    let replica = store.as_replica();
    let (admin, admin2) = (
        Actor { id: ids["admin"].clone(), roles: vec![Role::Admin] },
        Actor { id: ids["admin2"].clone(), roles: vec![Role::Admin] },
    );
    let owner = Actor { id: ids["owner"].clone(), roles: vec![Role::Approver] };
    let strict = PolicyDraft { name: "strict".into(), ..PolicyDraft::baseline() };
    let mut lax = PolicyDraft { name: "lax".into(), ..PolicyDraft::baseline() };
    lax.rules.retain(|r| *r != Rule::OwnerCannotApprove);
    // Filed by one admin, approved by the other: the version in force from then on.
    let file = |draft: &PolicyDraft| Change::Policy { id: NodeId::generate(Table::Policy), draft: draft.clone() };
    let (mut before, mut refused) = (0, 0);
    for i in 0..RACES {
        let filed = store.govern(&admin, &file(&lax), &text("fewer rules")).await.unwrap().request.unwrap();
        store.decide_request(&admin2, &filed.id, DecideOutcome::Approve, &text("agreed"), &[]).await.unwrap();
        let system = ids[&format!("s{i}")].clone();
        let r = store.create_request(&ids["req"], &grant_to(&ids, &system, Privilege::Admin)).await.unwrap();
        let restore = store.govern(&admin, &file(&strict), &text("owners may not approve")).await.unwrap();
        let restore = restore.request.unwrap().id;
        let (replica, owner, id) = (replica.clone(), owner.clone(), r.id.clone());
        let approval = async move {
            replica.decide_request(&owner, &id, DecideOutcome::Approve, &text("mine to approve"), &[]).await
        };
        let (store, admin2) = (store.clone(), admin2.clone());
        let publication = async move {
            let (d, _) =
                store.decide_request(&admin2, &restore, DecideOutcome::Approve, &text("restored"), &[]).await.unwrap();
            assert_eq!(d.outcome, Outcome::Approved);
            d.seq
        };
        match race(i, RuleKind::OwnerCannotApprove, lag(i), approval, publication).await {
            Raced::Before(_) => before += 1,
            Raced::Refused(_) => refused += 1,
        }
    }
    let report = store.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(report.length, 1 + 5 * RACES as u64, "the genesis and five decisions a race, no gap");
    println!("{before} approvals committed under the old policy, {refused} refused by the new one");
}

/// Filing a grant and deciding it leave the sign-ins this process remembers; a decision
/// that takes a role away, and any other write, make it read them again (see the
/// store's `signins`).
#[tokio::test]
async fn deciding_access_keeps_the_remembered_sign_ins_and_a_role_taken_away_does_not() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "admin", "name": "Admin", "email": "admin@x.example", "roles": ["admin"]},
            {"type": "person", "ref": "req", "name": "Requester", "email": "req@x.example", "roles": ["investigator"]},
            {"type": "person", "ref": "a1", "name": "Approver One", "email": "a1@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "owner", "name": "Owner", "email": "owner@x.example"},
            {"type": "nhi", "ref": "bot", "kind": "service_account", "name": "bot", "environment": "production"},
            {"type": "system", "ref": "db", "kind": "database", "name": "ledger", "environment": "production", "criticality": "tier2"}
        ],
        "edges": [{"type": "owns", "from": "owner", "to": "bot"}]
    });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
    let w = World { store, ids: summary.ids.into_iter().collect() };
    let (store, ids) = (&w.store, &w.ids);
    let email = Email::parse("a1@x.example").unwrap();
    let sign_in = || async {
        let before = store.round_trips();
        let person = store.person_by_email(&email).await.unwrap().expect("a1 is stored");
        (person.roles, store.round_trips() - before)
    };
    // A remote database may have other writers: every sign-in reads it.
    let remembered = if StoreConfig::for_tests().is_remote() { 1 } else { 0 };
    sign_in().await;
    assert_eq!(sign_in().await.1, remembered, "remembered");

    let r = store.create_request(&ids["req"], &grant(&w, "bot", "db", Privilege::Read)).await.unwrap();
    assert_eq!(sign_in().await.1, remembered, "filing a grant");
    let a1 = Actor { id: ids["a1"].clone(), roles: vec![Role::Approver] };
    let (d, r) = store.decide_request(&a1, &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
    assert_eq!((d.outcome, r.status), (Outcome::Approved, RequestStatus::Approved));
    assert_eq!(sign_in().await.1, remembered, "approving it, its access opened");

    let admin = Actor { id: ids["admin"].clone(), roles: vec![Role::Admin] };
    let removal = Change::Roles { person: ids["a1"].clone(), grant: vec![], revoke: vec![Role::Approver] };
    assert!(store.govern(&admin, &removal, &text("leaves the approvers")).await.unwrap().applied());
    let (roles, trips) = sign_in().await;
    assert_eq!((roles, trips), (vec![], 1), "a role taken away: read again");
    assert_eq!(sign_in().await.1, remembered);
    store
        .create_node(&NodeSpec::Nhi(NewNhi {
            kind: NhiKind::Token,
            name: Name::parse("another").unwrap(),
            provider: None,
            external_id: None,
            environment: Environment::Production,
            status: NhiStatus::Active,
            description: None,
            last_used_at: None,
        }))
        .await
        .unwrap();
    assert_eq!(sign_in().await.1, 1, "any other write: read again");
}
