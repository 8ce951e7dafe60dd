//! Tampering with decision records underneath the API, as someone with database root
//! access would: the append-only guards are lifted first, then records are edited,
//! deleted or reordered. `verifyDecisionChain` must catch each at the first broken link.

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

/// Five decisions through the API after the world's genesis (seq 1): a request refused
/// once, then approved; a grant refused, approved, and a rejection. They are seq 2 to 6.
async fn five_decisions(s: &TestServer) -> Vec<(u64, String)> {
    let w = s.world().await;
    let create = "mutation($i: RequestInput!) { createRequest(input: $i) { id } }";
    let decide = "mutation($r: ID!, $o: DecideOutcome!) { decideRequest(id: $r, outcome: $o, rationale: \"ok\") { decision { id } } }";
    for _ in 0..2 {
        let d = s
            .ok(
                &s.as_("priya"),
                create,
                json!({ "i": { "kind": "ROTATE_SECRET", "subjectId": w.id("key"), "justification": "old" } }),
            )
            .await;
        let r = d["createRequest"]["id"].clone();
        let (_, body) = s.gql(&s.as_("priya"), decide, json!({ "r": r, "o": "APPROVE" })).await;
        assert_eq!(code(&body), "SOD_VIOLATION");
        s.ok(&s.as_("jules"), decide, json!({ "r": r, "o": "APPROVE" })).await;
    }
    let d = s
        .ok(
            &s.as_("priya"),
            create,
            json!({ "i": { "kind": "REVOKE_NHI", "subjectId": w.id("bot"), "justification": "unused" } }),
        )
        .await;
    s.ok(&s.as_("kim"), decide, json!({ "r": d["createRequest"]["id"], "o": "REJECT" })).await;
    let d = s.ok(&s.as_("ada"), "{ decisions(first: 100) { edges { node { seq id } } } }", json!({})).await;
    let out: Vec<(u64, String)> = d["decisions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["seq"].as_u64().unwrap(), e["node"]["id"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(out.len(), 6);
    assert!(verify(s).await["ok"].as_bool().unwrap());
    out.into_iter().skip(1).collect()
}

async fn verify(s: &TestServer) -> Value {
    let d = s
        .ok(&s.as_("ada"), "{ verifyDecisionChain { ok length firstBroken { seq decision problem } } }", json!({}))
        .await;
    d["verifyDecisionChain"].clone()
}

/// Lift the guards a database administrator could lift.
async fn unlock(s: &TestServer) {
    s.store
        .execute_raw(
            "REMOVE EVENT decision_append_only ON decision;
             DEFINE FIELD OVERWRITE rationale ON decision TYPE string;
             DEFINE FIELD OVERWRITE seq ON decision TYPE int;
             REMOVE INDEX decision_seq ON decision;",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn decisions_cannot_be_edited_through_the_database_while_the_guards_stand() {
    let s = TestServer::start().await;
    let ids = five_decisions(&s).await;
    let edit = s.store.execute_raw(&format!("UPDATE {} SET rationale = 'forged'", ids[2].1)).await;
    assert!(edit.is_err(), "READONLY fields refuse the edit");
    let delete = s.store.execute_raw(&format!("DELETE {}", ids[2].1)).await;
    assert!(delete.is_err(), "the append-only event refuses the delete");
    assert!(verify(&s).await["ok"].as_bool().unwrap());
}

#[tokio::test]
async fn an_edited_record_is_caught_where_it_was_edited() {
    let s = TestServer::start().await;
    let ids = five_decisions(&s).await;
    unlock(&s).await;
    s.store.execute_raw(&format!("UPDATE {} SET rationale = 'approved after review'", ids[2].1)).await.unwrap();
    let v = verify(&s).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["firstBroken"]["seq"], 4, "{v}");
    assert_eq!(v["firstBroken"]["decision"], ids[2].1.as_str());
    assert!(v["firstBroken"]["problem"].as_str().unwrap().contains("altered"));
}

#[tokio::test]
async fn a_deleted_record_is_caught_in_the_middle_and_at_the_end() {
    let s = TestServer::start().await;
    let ids = five_decisions(&s).await;
    unlock(&s).await;
    s.store.execute_raw(&format!("DELETE {}", ids[4].1)).await.unwrap();
    let v = verify(&s).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["firstBroken"]["seq"], 6, "{v}");
    assert!(v["firstBroken"]["problem"].as_str().unwrap().contains("deleted"));
    s.store.execute_raw(&format!("DELETE {}", ids[1].1)).await.unwrap();
    let v = verify(&s).await;
    assert_eq!(v["firstBroken"]["seq"], 3, "{v}");
    assert!(v["firstBroken"]["problem"].as_str().unwrap().contains("missing"));
}

#[tokio::test]
async fn reordered_records_are_caught() {
    let s = TestServer::start().await;
    let ids = five_decisions(&s).await;
    unlock(&s).await;
    s.store.execute_raw(&format!("UPDATE {} SET seq = 5; UPDATE {} SET seq = 3;", ids[1].1, ids[3].1)).await.unwrap();
    let v = verify(&s).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["firstBroken"]["seq"], 3, "{v}");
}

#[tokio::test]
async fn a_rewritten_chain_head_is_caught() {
    let s = TestServer::start().await;
    let ids = five_decisions(&s).await;
    unlock(&s).await;
    // Delete the last record and move the head back to cover it up: the head now
    // names a hash no record has.
    s.store.execute_raw(&format!("DELETE {}; UPDATE meta:chain SET seq = 5;", ids[4].1)).await.unwrap();
    let v = verify(&s).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["firstBroken"]["seq"], 5);
}

#[tokio::test]
async fn the_running_server_signs_checkpoints_of_the_chain_as_decisions_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("checkpoint.key");
    let file = dir.path().join("checkpoints.jsonl");
    nhigov::checkpoints::new_key(&key_file).unwrap();
    let mut cfg = nhigov::config::Config::default();
    cfg.checkpoints.key_file = Some(key_file);
    cfg.checkpoints.file = file.clone();
    cfg.checkpoints.every_decisions = 2;
    cfg.checkpoints.every_secs = 1;
    let s = TestServer::start_with(cfg).await;
    five_decisions(&s).await;
    // The server checks the head every two seconds and signs every two decisions, or
    // what is left after a second.
    let mut lines = Vec::new();
    for _ in 0..50 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        lines = graph_model::checkpoint::parse_file(&text);
        if lines.iter().any(|(_, c)| c.as_ref().is_ok_and(|c| c.seq == 6)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let chain = s.store.chain_links(0).await.unwrap();
    let report = graph_model::checkpoint::compare(&chain, &lines, None);
    assert_eq!(report.verdict, graph_model::checkpoint::Verdict::Consistent { checked: 6, after: 0 }, "{lines:?}");
}
