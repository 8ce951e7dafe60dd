//! Controls against a real (in-memory) SurrealDB: publishing with two admins, the first
//! evaluation as one decision, changes as decisions of their own, findings from failure
//! to closure, exceptions that waive, and the checks that turn on the clock.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use graph_model::domain::control::{Check, ControlDraft, ControlScope, ControlStatus, FindingStatus};
use graph_model::store::{Actor, DecisionFilter, FindingFilter, Store, StoreConfig, StoreError};
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

    fn actor(&self, r: &str) -> Actor {
        Actor { id: self.id(r), roles: Role::ALL.to_vec() }
    }

    /// Publish `check` as control `key`: filed by one admin, approved by the other.
    async fn publish(&self, key: &str, check: Check, scope: ControlScope) {
        let draft = ControlDraft {
            key: key.into(),
            title: format!("{key} test"),
            description: String::new(),
            owner: self.id("grc"),
            refs: vec![FrameworkRef::parse("GV.OV-01").unwrap()],
            scope,
            check,
        };
        let change = Change::Control { id: NodeId::generate(Table::Control), draft };
        let g = self.store.govern(&self.actor("admin1"), &change, &text("we check this")).await.unwrap();
        let filed = g.request.expect("a control waits for a second admin");
        // The admin who filed it cannot approve it.
        let own = self
            .store
            .decide_request(&self.actor("admin1"), &filed.id, DecideOutcome::Approve, &text("mine"), &[])
            .await;
        assert!(matches!(own, Err(StoreError::Refused { .. })), "{own:?}");
        self.store
            .decide_request(&self.actor("admin2"), &filed.id, DecideOutcome::Approve, &text("ok"), &[])
            .await
            .unwrap();
    }

    async fn status(&self, key: &str, subject: &str) -> Option<ControlStatus> {
        let rows = self.store.control_results(key, None, None).await.unwrap();
        rows.into_iter().find(|r| r.subject == self.id(subject)).map(|r| r.status)
    }
}

fn text(s: &str) -> Text {
    Text::parse(s).unwrap()
}

async fn world() -> World {
    world_with(StoreConfig::for_tests()).await
}

async fn world_with(cfg: StoreConfig) -> World {
    let store = Store::open(&cfg).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "admin1", "name": "Admin One", "email": "admin1@x.example", "roles": ["admin"]},
            {"type": "person", "ref": "admin2", "name": "Admin Two", "email": "admin2@x.example", "roles": ["admin", "approver"]},
            {"type": "person", "ref": "a1", "name": "Approver One", "email": "a1@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "a2", "name": "Approver Two", "email": "a2@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "grc", "name": "GRC Lead", "email": "grc@x.example", "roles": ["auditor"]},
            {"type": "person", "ref": "owner", "name": "Owner", "email": "owner@x.example", "roles": ["approver", "investigator"]},
            {"type": "person", "ref": "leaver", "name": "Leaver", "email": "leaver@x.example", "active": false},
            {"type": "nhi", "ref": "owned", "kind": "service_account", "name": "owned", "environment": "production", "last_used_at": "now-1d"},
            {"type": "nhi", "ref": "orphan", "kind": "token", "name": "orphan", "environment": "production", "last_used_at": "now-1d"},
            {"type": "nhi", "ref": "gone", "kind": "api_key", "name": "gone", "environment": "production", "last_used_at": "now-100d"},
            {"type": "nhi", "ref": "off", "kind": "api_key", "name": "off", "environment": "production", "status": "decommissioned"},
            {"type": "nhi", "ref": "dev", "kind": "token", "name": "dev", "environment": "development"},
            {"type": "secret", "ref": "fresh", "kind": "api_key", "name": "fresh", "fingerprint": "fp-fresh-0001", "last_rotated_at": "now-20d"},
            {"type": "secret", "ref": "stale", "kind": "api_key", "name": "stale", "fingerprint": "fp-stale-0001", "issued_at": "now-200d"},
            {"type": "system", "ref": "vault", "kind": "vault", "name": "vault", "environment": "production", "criticality": "tier0"},
            {"type": "system", "ref": "wiki", "kind": "saas", "name": "wiki", "environment": "production", "criticality": "tier3"}
        ],
        "edges": [
            {"type": "owns", "from": "owner", "to": "owned"},
            {"type": "owns", "from": "leaver", "to": "gone"},
            {"type": "holds", "from": "owned", "to": "fresh"},
            {"type": "holds", "from": "gone", "to": "stale"},
            {"type": "can_access", "from": "gone", "to": "wiki", "privilege": "read"},
            {"type": "can_access", "from": "orphan", "to": "vault", "privilege": "write"}
        ]
    });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
    World { store, ids: summary.ids.into_iter().collect() }
}

#[tokio::test]
async fn a_first_evaluation_larger_than_a_part_is_a_decision_per_part_and_judges_as_one_would() {
    // Four NHIs in the reach of NHI-OWN-01: parts of three are two decisions.
    let parted = world_with(StoreConfig { evaluation_part: 3, ..StoreConfig::for_tests() }).await;
    let whole = world().await;
    for w in [&parted, &whole] {
        w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    }
    let head = parted.store.chain_head().await.unwrap();
    parted.store.evaluate_controls(Utc::now()).await.unwrap();
    whole.store.evaluate_controls(Utc::now()).await.unwrap();
    let by_ref = |w: &World, rows: Vec<graph_model::store::ControlResult>| {
        let refs: HashMap<NodeId, String> = w.ids.iter().map(|(r, id)| (id.clone(), r.clone())).collect();
        let mut out: Vec<(String, ControlStatus, String)> =
            rows.into_iter().map(|r| (refs[&r.subject].clone(), r.status, r.facts)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    let results = by_ref(&parted, parted.store.control_results("NHI-OWN-01", None, None).await.unwrap());
    assert_eq!(results.len(), 4);
    assert_eq!(results, by_ref(&whole, whole.store.control_results("NHI-OWN-01", None, None).await.unwrap()));
    // The history keeps what each part changed (one record a part): as of now, it reads
    // as the results do.
    let now = parted.store.control_results("NHI-OWN-01", None, Some(Utc::now())).await.unwrap();
    assert_eq!(by_ref(&parted, now), results);
    // A part is whole blocks of results (a subject's block: the first byte of SHA-256
    // over its id), in block order, up to three subjects unless one block holds more.
    let mut subjects: Vec<NodeId> =
        parted.store.control_results("NHI-OWN-01", None, None).await.unwrap().into_iter().map(|r| r.subject).collect();
    subjects.sort_by_key(block_of);
    let mut expected: Vec<Vec<NodeId>> = Vec::new();
    for chunk in subjects.chunk_by(|a, b| block_of(a) == block_of(b)) {
        match expected.last_mut() {
            Some(p) if p.len() + chunk.len() <= 3 => p.extend_from_slice(chunk),
            _ => expected.push(chunk.to_vec()),
        }
    }
    let packed = parted
        .store
        .execute_raw("SELECT VALUE changes.subject FROM control_change_part ORDER BY decision")
        .await
        .unwrap();
    let packed: Vec<Vec<NodeId>> = serde_json::from_value(packed).unwrap();
    assert_eq!(packed, expected, "the parts as the blocks pack them, in order");
    assert_eq!(expected.iter().map(Vec::len).sum::<usize>(), 4);

    let s = &parted.store;
    let evaluations = DecisionFilter { kind: Some(DecisionKind::EvaluateControl), ..Default::default() };
    let decisions = s.decisions(&evaluations, &page(10)).await.unwrap().items;
    let n = expected.len();
    assert!(n >= 2, "four subjects in parts of three: {expected:?}");
    assert_eq!(s.chain_head().await.unwrap().seq, head.seq + n as u64, "one decision per part");
    assert_eq!(decisions.len(), n);
    let inputs: Vec<serde_json::Value> = decisions.iter().map(|d| serde_json::from_str(&d.inputs).unwrap()).collect();
    assert_eq!(
        (inputs[0]["part"].as_u64(), inputs[0]["parts"].as_u64(), inputs[0]["subjects"].as_u64()),
        (Some(1), Some(n as u64), Some(expected[0].len() as u64))
    );
    let last = &inputs[n - 1];
    assert_eq!(last["parts"].as_u64(), Some(n as u64), "the last names how many parts there were");
    let total: u64 = last["counts"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 4, "the last holds the counts of every result: {last}");
    assert!(decisions[n - 1].rationale.ends_with(&format!("(in {n} parts)")), "{}", decisions[n - 1].rationale);
    // Each failure's finding names the part that recorded it.
    let open =
        s.findings(&FindingFilter { status: Some(FindingStatus::Open), ..Default::default() }, 10).await.unwrap();
    assert!(!open.is_empty());
    for f in &open {
        let part = expected.iter().position(|p| p.contains(&f.subject)).unwrap();
        assert_eq!(f.opened_by.as_ref(), Some(&decisions[part].id), "{}", f.subject);
    }

    // Stopped before the last part: the version is not marked evaluated, and the next
    // pass judges again, opening no finding twice.
    s.execute_raw("DELETE control_evaluation").await.unwrap();
    let again = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!(again.full, vec!["NHI-OWN-01".to_string()]);
    let after = s.findings(&FindingFilter::default(), 10).await.unwrap();
    assert_eq!(after.len(), open.len(), "the open findings are joined, not opened again");
    assert_eq!(by_ref(&parted, s.control_results("NHI-OWN-01", None, None).await.unwrap()), results);
    let report = s.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    // Nothing changed since: nothing is recorded.
    let quiet = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!((quiet.full.len(), quiet.changes), (0, 0));
}

#[tokio::test]
async fn results_stored_a_row_a_subject_move_into_blocks_at_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let w = world_with(cfg.clone()).await;
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    w.store.evaluate_controls(Utc::now()).await.unwrap();
    let before = w.store.control_results("NHI-OWN-01", None, None).await.unwrap();
    assert_eq!(before.len(), 4);
    assert!(before.iter().any(|r| r.finding.is_some()), "a failure names its finding");
    // As the store was at schema version 22: a row a subject, no blocks.
    w.store
        .execute_raw(
            "FOR $b IN (SELECT * FROM control_block) {
                 FOR $e IN object::entries($b.results) {
                     CREATE type::record('control_result', $b.control + '|' + $e[0])
                         CONTENT object::extend($e[1], { control: $b.control, subject: <record> $e[0] }) RETURN NONE;
                 };
             };
             DELETE control_block;
             UPDATE meta:schema SET version = 22, backfilled = NONE;",
        )
        .await
        .unwrap();
    let rows = w.store.execute_raw("RETURN count(SELECT id FROM control_result)").await.unwrap();
    assert_eq!(rows, json!(4));
    let head = w.store.chain_head().await.unwrap();
    w.store.close().await;

    let s = Store::open(&cfg).await.unwrap();
    assert_eq!(s.control_results("NHI-OWN-01", None, None).await.unwrap(), before, "every result as it was");
    let tables = s.execute_raw("RETURN (INFO FOR DB).tables.control_result").await.unwrap();
    assert_eq!(tables, serde_json::Value::Null, "the old table is gone");
    // Nothing changed: an evaluation records nothing, and the chain is as it was.
    let quiet = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!((quiet.full.len(), quiet.changes), (0, 0));
    assert_eq!(s.chain_head().await.unwrap().seq, head.seq);
}

/// The block of a control's results that holds `subject`, as the store lays them out:
/// the first byte of SHA-256 over the subject's id.
fn block_of(subject: &NodeId) -> u8 {
    use sha2::Digest;
    sha2::Sha256::digest(subject.to_string().as_bytes())[0]
}

fn page(first: usize) -> graph_model::store::PageRequest {
    graph_model::store::PageRequest { first, ..Default::default() }
}

#[tokio::test]
async fn a_failure_opens_a_finding_that_is_remediated_then_closed_on_evidence() {
    let w = world().await;
    let s = &w.store;
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    let head = s.chain_head().await.unwrap();

    // The first evaluation: one decision for every result.
    let report = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!(report.full, vec!["NHI-OWN-01".to_string()]);
    let after = s.chain_head().await.unwrap();
    assert_eq!(after.seq, head.seq + 1, "a full evaluation is one decision, not one per subject");
    assert_eq!(w.status("NHI-OWN-01", "owned").await, Some(ControlStatus::Pass));
    assert_eq!(w.status("NHI-OWN-01", "orphan").await, Some(ControlStatus::Fail));
    assert_eq!(w.status("NHI-OWN-01", "gone").await, Some(ControlStatus::Fail));
    assert_eq!(w.status("NHI-OWN-01", "off").await, None, "a decommissioned NHI is not judged");
    let rows = s.control_results("NHI-OWN-01", Some(ControlStatus::Fail), None).await.unwrap();
    let gone = rows.iter().find(|r| r.subject == w.id("gone")).unwrap();
    assert_eq!(gone.facts, "every owner is inactive: leaver@x.example");

    let open =
        s.findings(&FindingFilter { status: Some(FindingStatus::Open), ..Default::default() }, 10).await.unwrap();
    let mut failing: Vec<NodeId> = open.iter().map(|f| f.subject.clone()).collect();
    failing.sort();
    let mut expected = vec![w.id("orphan"), w.id("gone"), w.id("dev")];
    expected.sort();
    assert_eq!(failing, expected);
    let finding = open.iter().find(|f| f.subject == w.id("orphan")).unwrap().clone();
    let failure = s.decisions_by_id(&[finding.opened_by.clone().unwrap()]).await.unwrap().pop().unwrap();
    assert_eq!((failure.kind, failure.outcome), (DecisionKind::EvaluateControl, Outcome::Completed));
    assert!(failure.inputs.contains("\"digest\""), "{}", failure.inputs);

    // Nothing changed: a second pass records nothing.
    let again = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!((again.full.len(), again.changes), (0, 0));
    assert_eq!(s.chain_head().await.unwrap(), after);

    // Remediation: the orphan gets an owner. Its result changes, as a decision.
    let before_fix = Utc::now();
    let edge = NewEdge::parse(EdgeKind::Owns, w.id("owner"), w.id("orphan"), EdgeAttrs::default()).unwrap();
    s.govern(&w.actor("admin1"), &Change::Relate { edge }, &text("owner found")).await.unwrap();
    let report = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!(report.changes, 1);
    assert_eq!(w.status("NHI-OWN-01", "orphan").await, Some(ControlStatus::Pass));
    let f = s.findings_by_id(std::slice::from_ref(&finding.id)).await.unwrap().pop().unwrap();
    assert_eq!(f.status, FindingStatus::Open, "remediated is not closed");
    let verification = s.decisions_by_id(&[f.remediated_by.clone().unwrap()]).await.unwrap().pop().unwrap();
    assert_eq!((verification.kind, verification.outcome), (DecisionKind::ControlResult, Outcome::Passed));
    assert_eq!(verification.subject, w.id("orphan"));
    assert!(verification.rationale.starts_with("NHI-OWN-01 v1: fail → pass"), "{}", verification.rationale);

    // The change reached the queue of the subject's owner (per-user subscriptions).
    let events = s.events_since(before_fix - Duration::seconds(1), 100).await.unwrap();
    let ev = events.iter().find(|e| e.summary.contains("NHI-OWN-01 v1: fail → pass")).expect("an event of the change");
    assert!(ev.in_queue_of(&w.id("owner")), "{ev:?}");
    assert!(!ev.in_queue_of(&w.id("a1")));

    // As it stood before the fix, the orphan failed.
    let then = s.control_results("NHI-OWN-01", None, Some(before_fix)).await.unwrap();
    assert_eq!(then.iter().find(|r| r.subject == w.id("orphan")).unwrap().status, ControlStatus::Fail);

    // Closing: with evidence from a case linked as the remediation, by someone who does
    // not own the subject.
    let case = s
        .open_case(
            &w.id("owner"),
            &NewCase {
                title: text("orphaned token"),
                description: None,
                severity: Some(Severity::Medium),
                alerts: vec![],
                subjects: vec![w.id("orphan")],
                assignee: Some(w.id("owner")),
                refs: vec![],
            },
            &SlaHours::default(),
        )
        .await
        .unwrap();
    let ev = s
        .attach_evidence(
            &w.id("owner"),
            &case.id,
            &NewEvidence {
                kind: EvidenceKind::Note,
                content: EvidenceContent::parse("owner confirmed in the CMDB").unwrap(),
                source: Label::parse("cmdb").unwrap(),
                collected_at: None,
                supersedes: None,
                supersede_reason: None,
                refs: vec![],
            },
        )
        .await
        .unwrap();
    s.link_finding(&w.actor("owner"), &finding.id, &case.id, &text("worked here")).await.unwrap();
    let twice = s.link_finding(&w.actor("owner"), &finding.id, &case.id, &text("again")).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let by_owner = s.close_finding(&w.actor("owner"), &finding.id, std::slice::from_ref(&ev.id), &text("done")).await;
    match by_owner {
        Err(StoreError::Refused { violation, .. }) => assert_eq!(violation.rule, RuleKind::OwnerCannotCloseFinding),
        other => panic!("the owner closed their own finding: {other:?}"),
    }
    let no_evidence = s.close_finding(&w.actor("admin2"), &finding.id, &[], &text("done")).await;
    assert!(matches!(no_evidence, Err(StoreError::Invalid(_))));
    let closed = s
        .close_finding(&w.actor("admin2"), &finding.id, std::slice::from_ref(&ev.id), &text("verified"))
        .await
        .unwrap();
    assert_eq!((closed.kind, closed.outcome), (DecisionKind::CloseFinding, Outcome::Closed));
    let f = s.findings_by_id(std::slice::from_ref(&finding.id)).await.unwrap().pop().unwrap();
    assert_eq!(f.status, FindingStatus::Closed);
    assert_eq!((f.links.clone(), f.evidence.clone()), (vec![case.id.clone()], vec![ev.id.clone()]));
    assert_eq!(f.closing_decision, Some(closed.id.clone()));
    // A control's findings in any status: the closed one with the open ones, newest
    // first, and a limit cuts the merged list.
    let of_control = FindingFilter { control: Some("NHI-OWN-01".into()), ..Default::default() };
    let listed = s.findings(&of_control, 10).await.unwrap();
    let mut expected: Vec<NodeId> = open.iter().map(|f| f.id.clone()).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed.iter().map(|f| f.id.clone()).collect::<Vec<_>>(), expected);
    assert!(listed.iter().any(|f| f.status == FindingStatus::Closed));
    assert_eq!(s.findings(&of_control, 1).await.unwrap()[0].id, expected[0]);

    // A finding whose check still fails does not close.
    let gone = open.iter().find(|f| f.subject == w.id("gone")).unwrap();
    let early = s.close_finding(&w.actor("admin2"), &gone.id, std::slice::from_ref(&ev.id), &text("done")).await;
    assert!(matches!(early, Err(StoreError::Invalid(ref e)) if e.message.contains("still fails")), "{early:?}");

    // An exception that names the control waives the failure while it is active.
    approved_exception(&w, "owner", "gone", "owner being hired", "NHI-OWN-01").await;
    s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!(w.status("NHI-OWN-01", "gone").await, Some(ControlStatus::PassedByException));
    let report = s.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
}

#[tokio::test]
async fn time_access_and_scope_checks_judge_the_graph() {
    let w = world().await;
    let s = &w.store;
    let prod = ControlScope { environments: vec![Environment::Production], ..Default::default() };
    w.publish("NHI-ROT-01", Check::SecretRotated { max_age_days: 90 }, prod.clone()).await;
    w.publish("NHI-PRIV-01", Check::PrivilegedAccessGoverned { tier: Criticality::Tier0 }, ControlScope::default())
        .await;
    w.publish("NHI-STALE-01", Check::UnusedAccess { days: 30 }, prod.clone()).await;
    w.publish("NHI-OWN-02", Check::ActiveOwner, prod).await;
    // A feed reports admin access to a tier0 vault that no decision stands behind.
    let feed = json!({
        "source": "cloud",
        "nodes": [
            {"type": "nhi", "ref": "rogue", "kind": "service_account", "name": "rogue", "environment": "production"},
            {"type": "system", "ref": "vault2", "kind": "vault", "name": "vault2", "environment": "production", "criticality": "tier0"}
        ],
        "edges": [{"type": "can_access", "from": "rogue", "to": "vault2", "privilege": "admin"}]
    });
    let imported = s.import(&graph_model::inventory::Inventory::parse(&feed, Utc::now()).unwrap()).await.unwrap();
    let rogue = imported.ids.iter().find(|(r, _)| r == "rogue").unwrap().1.clone();
    let now = Utc::now();
    let report = s.evaluate_controls(now).await.unwrap();
    assert_eq!(report.full.len(), 4);
    let priv_rows = s.control_results("NHI-PRIV-01", None, None).await.unwrap();
    let rogue_row = priv_rows.iter().find(|r| r.subject == rogue).unwrap();
    assert_eq!(rogue_row.status, ControlStatus::Fail);
    assert!(rogue_row.facts.contains("no decision stands behind it"), "{}", rogue_row.facts);

    assert_eq!(w.status("NHI-ROT-01", "fresh").await, Some(ControlStatus::Pass));
    assert_eq!(w.status("NHI-ROT-01", "stale").await, Some(ControlStatus::Fail));
    // Write access to a tier0 vault that the first roles adopted as the baseline.
    assert_eq!(w.status("NHI-PRIV-01", "orphan").await, Some(ControlStatus::Pass));
    assert_eq!(w.status("NHI-PRIV-01", "gone").await, None, "read access to a tier3 wiki is not judged");
    assert_eq!(w.status("NHI-STALE-01", "gone").await, Some(ControlStatus::Fail), "unused 100 days, holding access");
    assert_eq!(w.status("NHI-STALE-01", "owned").await, Some(ControlStatus::Pass));
    assert_eq!(w.status("NHI-OWN-02", "dev").await, None, "out of scope");

    // Seventy-one days on, the fresh secret is past 90 days too; the clock is injected.
    let later = s.evaluate_controls(now + Duration::days(71)).await.unwrap();
    assert!(later.changes >= 1, "{later:?}");
    assert_eq!(w.status("NHI-ROT-01", "fresh").await, Some(ControlStatus::Fail));

    // Decommissioning the stale NHI takes it out of the unused-access check's reach.
    let off = Change::NhiStatus { nhi: w.id("gone"), status: NhiStatus::Decommissioned };
    let g = s.govern(&w.actor("admin1"), &off, &text("retired")).await.unwrap();
    assert!(g.applied(), "{g:?}");
    s.evaluate_controls(now).await.unwrap();
    assert_eq!(w.status("NHI-STALE-01", "gone").await, Some(ControlStatus::NotApplicable));
    let f = s
        .findings(
            &FindingFilter { control: Some("NHI-STALE-01".into()), subject: Some(w.id("gone")), ..Default::default() },
            10,
        )
        .await
        .unwrap();
    assert_eq!(f.len(), 1, "one finding, however often it was judged: {f:?}");
    assert!(f[0].remediated_at.is_some(), "the risk went with the NHI");

    // A second version is evaluated in full again, under its own digest.
    w.publish("NHI-ROT-01", Check::SecretRotated { max_age_days: 365 }, ControlScope::default()).await;
    let report = s.evaluate_controls(now).await.unwrap();
    assert_eq!(report.full, vec!["NHI-ROT-01".to_string()]);
    assert_eq!(w.status("NHI-ROT-01", "stale").await, Some(ControlStatus::Pass));
    let v = s.control_versions("NHI-ROT-01").await.unwrap();
    assert_eq!(v.iter().map(|c| c.version).collect::<Vec<_>>(), vec![2, 1]);
}

#[tokio::test]
async fn a_prune_removes_operational_records_and_the_chain_still_verifies() {
    let w = world().await;
    let s = &w.store;
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    s.evaluate_controls(Utc::now()).await.unwrap();
    let head = s.chain_head().await.unwrap();
    let later = Utc::now() + Duration::days(400);
    let keep = graph_model::store::Retention::default();
    assert_eq!(s.prune(later, &keep).await.unwrap(), graph_model::store::PruneReport::default(), "nothing configured");
    let year = graph_model::store::Retention {
        events_days: Some(365),
        deliveries_days: Some(365),
        traversals_days: Some(365),
    };
    assert_eq!(s.prune(Utc::now(), &year).await.unwrap().events, 0, "nothing is a year old yet");
    let pruned = s.prune(later, &year).await.unwrap();
    assert!(pruned.events >= head.seq, "every decision's event went: {pruned:?}");
    assert_eq!(s.events_since(Utc::now() - Duration::days(1), 10).await.unwrap().len(), 0);
    // The record an auditor relies on stays whole.
    let report = s.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    assert_eq!(report.length, head.seq);
    assert_eq!(s.control_results("NHI-OWN-01", Some(ControlStatus::Fail), None).await.unwrap().len(), 3);
    assert_eq!(s.findings(&FindingFilter::default(), 10).await.unwrap().len(), 3);
    assert_eq!(s.prune(later, &year).await.unwrap(), graph_model::store::PruneReport::default(), "idempotent");
}

#[tokio::test]
async fn an_alert_about_what_someone_owns_reaches_their_queue() {
    let w = world().await;
    let s = &w.store;
    let since = Utc::now() - Duration::seconds(1);
    let alert = NewAlert {
        source: Label::parse("gitleaks").unwrap(),
        rule: Label::parse("generic-api-key").unwrap(),
        severity: Severity::High,
        title: text("key in a commit"),
        detail: None,
        detected_at: Utc::now(),
        subject: SubjectRef::Id(w.id("owned")),
        refs: vec![],
        dedupe_key: "queue-1".into(),
    };
    s.ingest_alert(&alert).await.unwrap();
    let events = s.events_since(since, 10).await.unwrap();
    let raised = events.iter().find(|e| e.kind == EventKind::AlertRaised).expect("an alert event");
    assert!(raised.in_queue_of(&w.id("owner")), "{raised:?}");
    assert!(!raised.in_queue_of(&w.id("leaver")));
}

/// An exception on `subject` waiving control `key`, filed by `by` and approved by the
/// approvers it needs.
async fn approved_exception(w: &World, by: &str, subject: &str, why: &str, key: &str) {
    let s = &w.store;
    let request = NewRequest {
        duration_days: Some(30),
        compensating_controls: vec![text("key rotated weekly")],
        review_days: Some(14),
        waives: vec![key.into()],
        ..NewRequest::new(RequestKind::Exception, w.id(subject), text(why))
    };
    let x = s.create_request(&w.id(by), &request).await.unwrap();
    for approver in ["a1", "a2"] {
        let r = s.requests_by_id(std::slice::from_ref(&x.id)).await.unwrap().pop().unwrap();
        if r.status == RequestStatus::Pending {
            s.decide_request(&w.actor(approver), &x.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
        }
    }
}

/// Apply `change` as admin1, with admin2's approval when it waits for a second admin.
async fn apply(w: &World, change: Change) {
    let g = w.store.govern(&w.actor("admin1"), &change, &text("a test change")).await.unwrap();
    if let Some(r) = g.request {
        w.store.decide_request(&w.actor("admin2"), &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
        let r = w.store.requests_by_id(std::slice::from_ref(&r.id)).await.unwrap().pop().unwrap();
        assert_ne!(r.status, RequestStatus::Pending, "{change:?} waits for more approvals");
    } else {
        assert!(g.applied(), "{g:?}");
    }
}

/// A use of `nhi` at `used` (SurrealQL), committed now but with its change stamped 2 s
/// ago: a commit that lands after the time it wrote, as a slow transaction's does.
async fn commit_stamped_2s_ago(s: &Store, nhi: &NodeId, used: &str) {
    s.execute_raw(&format!("UPDATE {nhi} SET last_used_at = {used}, updated_at = time::now() - 2s RETURN NONE;"))
        .await
        .unwrap();
}

/// The stored results agree with what a full evaluation over the whole graph finds at
/// `now`: every subject it judges has its status, and every other stored result says
/// the subject left the control's reach.
async fn agrees_with_a_full_evaluation(s: &Store, now: chrono::DateTime<Utc>, after: &str) {
    let facts = s.compliance_facts(now).await.unwrap();
    for c in s.controls().await.unwrap() {
        let oracle = graph_model::domain::control::evaluate(&c, &facts, now);
        let stored = s.control_results(&c.key, None, None).await.unwrap();
        for (subject, outcome) in &oracle {
            let row = stored.iter().find(|r| &r.subject == subject);
            assert_eq!(
                row.map(|r| r.status),
                Some(outcome.status),
                "after {after}: {} of {subject} is stale ({:?}); a full pass finds {}",
                c.key,
                row.map(|r| &r.facts),
                outcome.facts
            );
        }
        for r in stored.iter().filter(|r| !oracle.contains_key(&r.subject)) {
            assert_eq!(
                r.status,
                ControlStatus::NotApplicable,
                "after {after}: {} of {} is left over",
                c.key,
                r.subject
            );
        }
    }
}

#[tokio::test]
async fn a_pass_judging_more_subjects_than_one_index_read_holds_agrees_with_a_full_pass() {
    // Forty NHIs owned by one team: when its only member leaves, a pass after the change
    // judges all forty, more than SurrealDB reads `IN $list` from an index for (32), so
    // their exceptions and requests are read in chunks.
    let w = world_with(StoreConfig { change_margin: std::time::Duration::ZERO, ..StoreConfig::for_tests() }).await;
    let s = &w.store;
    let mut nodes = vec![
        json!({"type": "team", "ref": "ops", "name": "Ops"}),
        json!({"type": "person", "ref": "lead", "name": "Ops Lead", "email": "lead@x.example"}),
    ];
    let mut edges = vec![json!({"type": "member_of", "from": "lead", "to": "ops"})];
    for i in 0..40 {
        let r = format!("n{i:02}");
        nodes.push(json!({"type": "nhi", "ref": r, "kind": "service_account", "name": r, "environment": "production"}));
        edges.push(json!({"type": "owns", "from": "ops", "to": r}));
    }
    let doc = json!({ "source": "hr", "nodes": nodes, "edges": edges });
    let feed = s.import(&graph_model::inventory::Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap();
    let ids: HashMap<String, NodeId> = feed.ids.into_iter().collect();
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    // An exception waives the control for NHIs in the second and third chunks.
    let w2 = World { store: s.clone(), ids: w.ids.clone().into_iter().chain(ids.clone()).collect() };
    let mut late: Vec<NodeId> = ids.iter().filter(|(r, _)| r.starts_with('n')).map(|(_, id)| id.clone()).collect();
    late.sort();
    let (second, last) = (late[33].clone(), late[39].clone());
    let refs: HashMap<NodeId, String> = ids.iter().map(|(r, id)| (id.clone(), r.clone())).collect();
    for n in [&second, &last] {
        approved_exception(&w2, "owner", &refs[n], "a new owner is being hired", "NHI-OWN-01").await;
    }
    s.evaluate_control_changes(Utc::now()).await.unwrap();

    apply(&w, Change::Active { person: ids["lead"].clone(), active: false }).await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert!(r.touched >= 40, "{r:?}");
    agrees_with_a_full_evaluation(s, Utc::now(), "the team's only member left").await;
    assert_eq!(w2.status("NHI-OWN-01", &refs[&last]).await, Some(ControlStatus::PassedByException));
    assert_eq!(w2.status("NHI-OWN-01", &refs[&late[0]]).await, Some(ControlStatus::Fail));
    let full = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!(full.changes, 0, "the pass after the change missed nothing");
}

#[tokio::test]
async fn a_pass_after_a_write_judges_only_what_it_touched_and_agrees_with_a_full_pass() {
    // No margin: each pass reads only what was written since the last, so what it
    // touched can be counted (one process, one clock).
    let w = world_with(StoreConfig { change_margin: std::time::Duration::ZERO, ..StoreConfig::for_tests() }).await;
    let s = &w.store;
    let prod = ControlScope { environments: vec![Environment::Production], ..Default::default() };
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    w.publish("NHI-ROT-01", Check::SecretRotated { max_age_days: 90 }, prod.clone()).await;
    w.publish("NHI-PRIV-01", Check::PrivilegedAccessGoverned { tier: Criticality::Tier1 }, ControlScope::default())
        .await;
    w.publish("NHI-STALE-01", Check::UnusedAccess { days: 30 }, prod).await;
    w.publish("NHI-EXC-01", Check::ExceptionReviewed, ControlScope::default()).await;
    // Each pass judges at the time it runs (`Utc::now()` each time): an edge opened a
    // moment ago is in force.

    // Before any full pass, a pass after changes is a full one.
    let first = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(first.full.len(), 5, "{first:?}");
    agrees_with_a_full_evaluation(s, Utc::now(), "the first evaluation").await;

    // Nothing written since (beyond the margin's re-read): nothing recorded.
    let idle = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!((idle.full.len(), idle.changes), (0, 0), "{idle:?}");

    // The owner leaves: what they own fails, and nothing else is judged again.
    apply(&w, Change::Active { person: w.id("owner"), active: false }).await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert!(r.full.is_empty(), "{r:?}");
    // The NHI the owner owns, and the secret it holds.
    assert_eq!((r.touched, r.changes), (2, 1), "{r:?}");
    assert_eq!(w.status("NHI-OWN-01", "owned").await, Some(ControlStatus::Fail));
    agrees_with_a_full_evaluation(s, Utc::now(), "an owner left").await;

    // A new owner for the orphan.
    let edge = NewEdge::parse(EdgeKind::Owns, w.id("admin2"), w.id("orphan"), EdgeAttrs::default()).unwrap();
    apply(&w, Change::Relate { edge }).await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(w.status("NHI-OWN-01", "orphan").await, Some(ControlStatus::Pass));
    agrees_with_a_full_evaluation(s, Utc::now(), "ownership opened").await;

    // The orphan comes to hold the owned NHI's secret too: the secret is judged again,
    // its other holder is read for the secret's scope and not judged.
    let edge = NewEdge::parse(EdgeKind::Holds, w.id("orphan"), w.id("fresh"), EdgeAttrs::default()).unwrap();
    apply(&w, Change::Relate { edge }).await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(r.touched, 2, "the orphan and the secret: {r:?}");
    agrees_with_a_full_evaluation(s, Utc::now(), "a secret gained a holder").await;

    // The wiki becomes tier1: read access to it is not privileged, the check still
    // does not judge it; the vault drops to tier2 and the orphan's write access leaves
    // the check's reach.
    apply(&w, Change::SystemRisk { system: w.id("vault"), criticality: Some(Criticality::Tier2), environment: None })
        .await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    // The vault, the one NHI with access to it, and the secret that NHI holds.
    assert_eq!(r.touched, 3, "{r:?}");
    assert_eq!(w.status("NHI-PRIV-01", "orphan").await, Some(ControlStatus::NotApplicable));
    agrees_with_a_full_evaluation(s, Utc::now(), "a system's criticality changed").await;

    // A feed brings a team that owns the dev token, and an ungoverned admin grant.
    let feed = json!({
        "source": "cloud",
        "nodes": [
            {"type": "team", "ref": "ops", "name": "ops"},
            {"type": "nhi", "ref": "rogue", "kind": "service_account", "name": "rogue", "environment": "production", "last_used_at": "now-1d"},
            {"type": "system", "ref": "vault2", "kind": "vault", "name": "vault2", "environment": "production", "criticality": "tier0"}
        ],
        "edges": [
            {"type": "owns", "from": "ops", "to": "rogue"},
            {"type": "can_access", "from": "rogue", "to": "vault2", "privilege": "admin"}
        ]
    });
    let imported = s.import(&graph_model::inventory::Inventory::parse(&feed, Utc::now()).unwrap()).await.unwrap();
    let found = |r: &str| imported.ids.iter().find(|(x, _)| x == r).unwrap().1.clone();
    let (ops, rogue) = (found("ops"), found("rogue"));
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    let priv_rows = s.control_results("NHI-PRIV-01", Some(ControlStatus::Fail), None).await.unwrap();
    assert!(priv_rows.iter().any(|r| r.subject == rogue), "{priv_rows:?}");
    agrees_with_a_full_evaluation(s, Utc::now(), "a feed imported a team and a grant").await;

    // A member joins the team: the team's NHI has an active owner.
    let edge = NewEdge::parse(EdgeKind::MemberOf, w.id("a1"), ops, EdgeAttrs::default()).unwrap();
    apply(&w, Change::Relate { edge }).await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    let own = s.control_results("NHI-OWN-01", None, None).await.unwrap();
    assert_eq!(own.iter().find(|r| r.subject == rogue).map(|r| r.status), Some(ControlStatus::Pass));
    agrees_with_a_full_evaluation(s, Utc::now(), "a member joined a team").await;

    // Decommissioning takes an NHI out of reach; its secret is judged again with it.
    apply(&w, Change::NhiStatus { nhi: w.id("gone"), status: NhiStatus::Decommissioned }).await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(w.status("NHI-STALE-01", "gone").await, Some(ControlStatus::NotApplicable));
    agrees_with_a_full_evaluation(s, Utc::now(), "an NHI was decommissioned").await;

    // An exception is approved: it is judged, and it waives the orphan-less owner check.
    approved_exception(&w, "admin2", "owned", "a new owner is being found", "NHI-OWN-01").await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(w.status("NHI-OWN-01", "owned").await, Some(ControlStatus::PassedByException));
    let exc = s.control_results("NHI-EXC-01", None, None).await.unwrap();
    assert_eq!(exc.len(), 1, "{exc:?}");
    agrees_with_a_full_evaluation(s, Utc::now(), "an exception was approved").await;

    // A full pass now finds nothing the passes between missed.
    let full = s.evaluate_controls(Utc::now()).await.unwrap();
    assert_eq!((full.full.len(), full.changes), (0, 0), "{full:?}");
    let report = s.verify_decision_chain().await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
}

#[tokio::test]
async fn a_scope_by_secret_kind_reaches_the_holders_and_the_secrets_of_that_kind() {
    let w = world_with(StoreConfig { change_margin: std::time::Duration::ZERO, ..StoreConfig::for_tests() }).await;
    let s = &w.store;
    // A deploy key (an SSH key) held by the development token; every other secret here
    // is an API key.
    let feed = |kind: &str, holder: &NodeId| {
        json!({
            "source": "ci",
            "nodes": [{"type": "secret", "ref": "deploy", "kind": kind, "name": "deploy", "fingerprint": "fp-deploy-0001", "issued_at": "now-200d"}],
            "edges": [{"type": "holds", "from": holder.to_string(), "to": "deploy"}]
        })
    };
    let dev = w.id("dev");
    let ssh = ControlScope { secret_kinds: vec![SecretKind::SshKey], ..Default::default() };
    w.publish("NHI-OWN-SSH", Check::ActiveOwner, ssh.clone()).await;
    w.publish("NHI-ROT-SSH", Check::SecretRotated { max_age_days: 90 }, ssh).await;
    let import = |kind: &'static str| {
        let doc = feed(kind, &dev);
        async move { s.import(&graph_model::inventory::Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap() }
    };
    let imported = import("ssh_key").await;
    let deploy = imported.ids.iter().find(|(r, _)| r == "deploy").unwrap().1.clone();
    s.evaluate_controls(Utc::now()).await.unwrap();

    // Only the holder of an SSH key, and only the SSH key, are judged.
    let own = s.control_results("NHI-OWN-SSH", None, None).await.unwrap();
    assert_eq!(own.iter().map(|r| &r.subject).collect::<Vec<_>>(), vec![&w.id("dev")], "{own:?}");
    assert_eq!(own[0].status, ControlStatus::Fail, "nobody owns the dev token");
    let rot = s.control_results("NHI-ROT-SSH", None, None).await.unwrap();
    assert_eq!(rot.iter().map(|r| (&r.subject, r.status)).collect::<Vec<_>>(), vec![(&deploy, ControlStatus::Fail)]);
    agrees_with_a_full_evaluation(s, Utc::now(), "the first evaluation").await;

    // The orphan comes to hold the key: a pass after the write brings it into reach.
    let edge = NewEdge::parse(EdgeKind::Holds, w.id("orphan"), deploy.clone(), EdgeAttrs::default()).unwrap();
    apply(&w, Change::Relate { edge }).await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(w.status("NHI-OWN-SSH", "orphan").await, Some(ControlStatus::Fail));
    agrees_with_a_full_evaluation(s, Utc::now(), "an NHI came to hold an SSH key").await;

    // The feed corrects the key's kind: the key and both holders leave the reach.
    import("certificate").await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert!(r.full.is_empty(), "{r:?}");
    assert_eq!(w.status("NHI-OWN-SSH", "orphan").await, Some(ControlStatus::NotApplicable));
    assert_eq!(w.status("NHI-OWN-SSH", "dev").await, Some(ControlStatus::NotApplicable));
    let rot = s.control_results("NHI-ROT-SSH", None, None).await.unwrap();
    assert_eq!(rot.iter().map(|r| r.status).collect::<Vec<_>>(), vec![ControlStatus::NotApplicable]);
    agrees_with_a_full_evaluation(s, Utc::now(), "the key's kind was corrected").await;
}

#[tokio::test]
async fn an_owner_lists_the_findings_on_what_they_own_directly_or_through_a_team() {
    let w = world().await;
    let s = &w.store;
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    s.evaluate_controls(Utc::now()).await.unwrap();
    let of = |person: &str| {
        let filter = FindingFilter { owned_by: Some(w.id(person)), ..Default::default() };
        async move { s.findings(&filter, 10).await.unwrap().into_iter().map(|f| f.subject).collect::<Vec<_>>() }
    };
    // The orphan and the NHI whose only owner left fail; the owner's own NHI passes.
    assert_eq!(of("leaver").await, vec![w.id("gone")], "a direct owner");
    assert!(of("owner").await.is_empty());

    // A team takes the orphan; its findings reach the owner once they are a member.
    let feed = json!({
        "source": "hr",
        "nodes": [{"type": "team", "ref": "ops", "name": "ops"}],
        "edges": [{"type": "owns", "from": "ops", "to": w.id("orphan").to_string()}]
    });
    let imported = s.import(&graph_model::inventory::Inventory::parse(&feed, Utc::now()).unwrap()).await.unwrap();
    let ops = imported.ids.iter().find(|(r, _)| r == "ops").unwrap().1.clone();
    assert!(of("owner").await.is_empty(), "not a member yet");
    let edge = NewEdge::parse(EdgeKind::MemberOf, w.id("owner"), ops, EdgeAttrs::default()).unwrap();
    apply(&w, Change::Relate { edge }).await;
    assert_eq!(of("owner").await, vec![w.id("orphan")], "through the team");
    assert_eq!(of("a1").await, Vec::<NodeId>::new(), "owning nothing, seeing nothing");
}

#[tokio::test]
async fn an_owner_of_more_than_one_index_read_sees_and_counts_every_finding_on_what_they_own() {
    // SurrealDB 3.3 reads `subject IN $list` from the index for at most 32 values: the
    // leaver owns 41 NHIs directly and 30 through a team, every one failing.
    let w = world().await;
    let s = &w.store;
    let mut nodes = vec![json!({"type": "team", "ref": "legacy", "name": "legacy"})];
    let mut edges = Vec::new();
    for i in 0..70 {
        let r = format!("n{i}");
        nodes.push(json!({"type": "nhi", "ref": r, "kind": "token", "name": r, "environment": "production"}));
        let from = if i < 40 { w.id("leaver").to_string() } else { "legacy".into() };
        edges.push(json!({"type": "owns", "from": from, "to": r}));
    }
    let feed = json!({ "source": "hr", "nodes": nodes, "edges": edges });
    let imported = s.import(&graph_model::inventory::Inventory::parse(&feed, Utc::now()).unwrap()).await.unwrap();
    let legacy = imported.ids.iter().find(|(r, _)| r == "legacy").unwrap().1.clone();
    let edge = NewEdge::parse(EdgeKind::MemberOf, w.id("leaver"), legacy, EdgeAttrs::default()).unwrap();
    apply(&w, Change::Relate { edge }).await;
    w.publish("NHI-OWN-01", Check::ActiveOwner, ControlScope::default()).await;
    s.evaluate_controls(Utc::now()).await.unwrap();

    let mut theirs: Vec<NodeId> =
        imported.ids.iter().filter(|(r, _)| r.starts_with('n')).map(|(_, id)| id.clone()).collect();
    theirs.push(w.id("gone"));
    let open = FindingFilter { status: Some(FindingStatus::Open), ..Default::default() };
    let mut expected: Vec<(NodeId, NodeId)> = s
        .findings(&open, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| theirs.contains(&f.subject))
        .map(|f| (f.id, f.subject))
        .collect();
    assert_eq!(expected.len(), 71, "every NHI of theirs fails: {expected:?}");
    expected.sort_by(|a, b| b.0.cmp(&a.0));

    let mine = FindingFilter { owned_by: Some(w.id("leaver")), ..Default::default() };
    let listed: Vec<(NodeId, NodeId)> =
        s.findings(&mine, 100).await.unwrap().into_iter().map(|f| (f.id, f.subject)).collect();
    assert_eq!(listed, expected, "all 71, newest first");
    let first: Vec<NodeId> = s.findings(&mine, 10).await.unwrap().into_iter().map(|f| f.id).collect();
    assert_eq!(first, expected[..10].iter().map(|f| f.0.clone()).collect::<Vec<_>>(), "the newest 10");

    let work = s.work_of(&w.id("leaver"), 50, Utc::now()).await.unwrap();
    assert_eq!(work.counts[&graph_model::store::WorkKind::Finding], 71, "counted past the rows returned");
    assert_eq!(work.items.len(), 50);
    for item in &work.items {
        let graph_model::store::WorkRecord::Finding(f) = &item.record else { panic!("only findings: {item:?}") };
        assert!(expected.iter().any(|(id, _)| id == &f.id), "{f:?} is one of theirs");
    }
}

#[tokio::test]
async fn a_secret_keeps_the_scope_its_untouched_holders_give_it() {
    // A pass after a change to one holder of a shared secret judges the secret again,
    // and reads what its other holders give its scope (environment, kind, owning team,
    // the systems they reach) from the graph index, not the database: each of these
    // four scopes reaches the secret only through the holder the change leaves alone.
    let w = world_with(StoreConfig { change_margin: std::time::Duration::ZERO, ..StoreConfig::for_tests() }).await;
    let s = &w.store;
    let feed = json!({
        "source": "cloud",
        "nodes": [
            {"type": "team", "ref": "ops", "name": "Ops"},
            {"type": "nhi", "ref": "keeper", "kind": "token", "name": "keeper", "environment": "development", "last_used_at": "now-1d"},
            {"type": "nhi", "ref": "passer", "kind": "service_account", "name": "passer", "environment": "production", "last_used_at": "now-1d"},
            {"type": "secret", "ref": "shared", "kind": "api_key", "name": "shared", "fingerprint": "fp-shared-0001", "issued_at": "now-200d"}
        ],
        "edges": [
            {"type": "owns", "from": "ops", "to": "keeper"},
            {"type": "holds", "from": "keeper", "to": "shared"},
            {"type": "holds", "from": "passer", "to": "shared"},
            {"type": "can_access", "from": "keeper", "to": w.id("vault").to_string(), "privilege": "write"}
        ]
    });
    let imported = s.import(&graph_model::inventory::Inventory::parse(&feed, Utc::now()).unwrap()).await.unwrap();
    let found = |r: &str| imported.ids.iter().find(|(x, _)| x == r).unwrap().1.clone();
    let (ops, passer, shared) = (found("ops"), found("passer"), found("shared"));
    let rotated = Check::SecretRotated { max_age_days: 90 };
    let scopes = [
        ("ROT-DEV", ControlScope { environments: vec![Environment::Development], ..Default::default() }),
        ("ROT-TOKEN", ControlScope { nhi_kinds: vec![NhiKind::Token], ..Default::default() }),
        ("ROT-OPS", ControlScope { team: Some(ops), ..Default::default() }),
        ("ROT-TIER0", ControlScope { criticalities: vec![Criticality::Tier0], ..Default::default() }),
    ];
    for (key, scope) in &scopes {
        w.publish(key, rotated.clone(), scope.clone()).await;
    }
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    let shared_status = |key: &'static str| {
        let shared = shared.clone();
        async move {
            let rows = s.control_results(key, None, None).await.unwrap();
            rows.into_iter().find(|r| r.subject == shared).map(|r| r.status)
        }
    };
    for (key, _) in &scopes {
        assert_eq!(shared_status(key).await, Some(ControlStatus::Fail), "{key}: issued 200 days ago, never rotated");
    }

    // The other holder is decommissioned: the secret is judged again, still in reach.
    apply(&w, Change::NhiStatus { nhi: passer, status: NhiStatus::Decommissioned }).await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(r.touched, 2, "the decommissioned NHI and the secret, not its other holder: {r:?}");
    for (key, _) in &scopes {
        assert_eq!(shared_status(key).await, Some(ControlStatus::Fail), "{key} after the other holder left");
    }
    agrees_with_a_full_evaluation(s, Utc::now(), "a shared secret's other holder was decommissioned").await;

    // The secret is rotated: it passes each control, judged with the same scope.
    let feed = json!({
        "source": "cloud",
        "nodes": [{"type": "secret", "ref": "shared", "kind": "api_key", "name": "shared", "fingerprint": "fp-shared-0001", "issued_at": "now-200d", "last_rotated_at": "now-1d"}]
    });
    s.import(&graph_model::inventory::Inventory::parse(&feed, Utc::now()).unwrap()).await.unwrap();
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(r.changes, 4, "{r:?}");
    for (key, _) in &scopes {
        assert_eq!(shared_status(key).await, Some(ControlStatus::Pass), "{key} after the rotation");
    }
    agrees_with_a_full_evaluation(s, Utc::now(), "a shared secret was rotated").await;
}

#[tokio::test]
async fn a_pass_reads_late_commits_again_but_judges_each_change_once() {
    // The store's margin (10 s): each pass re-reads the changes stamped in the last
    // 10 s before the previous one, for a transaction that committed after a pass read
    // though it was stamped before; a change judged once is not judged again.
    let w = world().await;
    let s = &w.store;
    let prod = ControlScope { environments: vec![Environment::Production], ..Default::default() };
    w.publish("NHI-STALE-01", Check::UnusedAccess { days: 30 }, prod).await;
    s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!(w.status("NHI-STALE-01", "gone").await, Some(ControlStatus::Fail), "unused for 100 days");

    // One change, judged by the pass after it; the next pass reads it again and leaves
    // it out.
    apply(&w, Change::NhiStatus { nhi: w.id("owned"), status: NhiStatus::Disabled }).await;
    let r = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert!(r.touched >= 1, "{r:?}");
    let again = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!((again.touched, again.changes), (0, 0), "judged already: {again:?}");

    // A use of the stale NHI committed now but stamped 2 s ago, before the last pass
    // read: the next pass finds it in the margin and judges it.
    commit_stamped_2s_ago(s, &w.id("gone"), "time::now()").await;
    let late = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert!(late.touched >= 1 && late.changes == 1, "{late:?}");
    assert_eq!(w.status("NHI-STALE-01", "gone").await, Some(ControlStatus::Pass), "used now");
    let again = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!((again.touched, again.changes), (0, 0), "judged already: {again:?}");
    agrees_with_a_full_evaluation(s, Utc::now(), "a late commit").await;

    // A full pass judges what was written in the margin before it: the pass after it
    // leaves that out, and still finds a commit stamped before the full pass read.
    apply(&w, Change::NhiStatus { nhi: w.id("orphan"), status: NhiStatus::Disabled }).await;
    s.evaluate_controls(Utc::now()).await.unwrap();
    let after_full = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert_eq!((after_full.touched, after_full.changes), (0, 0), "judged by the full pass: {after_full:?}");
    commit_stamped_2s_ago(s, &w.id("gone"), "time::now() - 100d").await;
    let late = s.evaluate_control_changes(Utc::now()).await.unwrap();
    assert!(late.touched >= 1 && late.changes == 1, "{late:?}");
    assert_eq!(w.status("NHI-STALE-01", "gone").await, Some(ControlStatus::Fail), "unused again");
}
