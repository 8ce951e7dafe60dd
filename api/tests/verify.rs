//! `nhigov verify` on an embedded store: intact, then tampered with underneath.

use std::process::Command;

use chrono::Utc;
use graph_model::store::{Actor, Store, StoreConfig};
use graph_model::*;
use serde_json::json;

fn verify(dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(["verify", "--db"])
        .arg(dir)
        .env("NHIGOV_LOG", "warn")
        .output()
        .expect("the nhigov binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn verify_reports_an_intact_chain_and_then_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let cfg = StoreConfig { url: db.display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "r", "name": "R", "email": "r@x.example", "roles": ["investigator"]},
            {"type": "person", "ref": "a", "name": "A", "email": "a@x.example", "roles": ["approver"]},
            {"type": "nhi", "ref": "n", "kind": "token", "name": "n", "environment": "test"}
        ],
        "edges": []
    });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &Text::parse("first roles").unwrap()).await.unwrap();
    let ids: std::collections::HashMap<String, NodeId> = summary.ids.into_iter().collect();
    let mut decisions = Vec::new();
    for _ in 0..3 {
        let r = store
            .create_request(
                &ids["r"],
                &NewRequest {
                    kind: RequestKind::RevokeNhi,
                    subject: ids["n"].clone(),
                    target: None,
                    privilege: None,
                    duration_days: None,
                    justification: Text::parse("unused").unwrap(),
                    ticket_ref: None,
                    case: None,
                    compensating_controls: vec![],
                    review_days: None,
                    waives: vec![],
                    refs: vec![],
                },
            )
            .await
            .unwrap();
        let (d, _) = store
            .decide_request(
                &Actor { id: ids["a"].clone(), roles: vec![Role::Approver] },
                &r.id,
                DecideOutcome::Reject,
                &Text::parse("not now").unwrap(),
                &[],
            )
            .await
            .unwrap();
        decisions.push(d);
    }
    store.close().await;

    let (ok, stdout, stderr) = verify(&db);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("decision chain: 4 records"), "{stdout}");
    assert!(stdout.contains("intact"), "{stdout}");

    let store = Store::open(&cfg).await.unwrap();
    store
        .execute_raw(&format!(
            "REMOVE EVENT decision_append_only ON decision;
             DEFINE FIELD OVERWRITE rationale ON decision TYPE string;
             UPDATE {} SET rationale = 'approved';",
            decisions[1].id
        ))
        .await
        .unwrap();
    store.close().await;
    let (ok, stdout, stderr) = verify(&db);
    assert!(!ok, "a tampered chain must fail: {stdout}");
    assert!(stderr.contains("broken at #3"), "the genesis is #1: {stderr}");
    assert!(stderr.contains(&decisions[1].id.to_string()), "{stderr}");
}
