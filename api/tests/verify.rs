//! `nhigov verify` on an embedded store: intact, then tampered with underneath.

use std::process::Command;

use chrono::Utc;
use graph_model::store::{Actor, Store, StoreConfig};
use graph_model::*;
use serde_json::json;

fn verify(dir: &std::path::Path) -> (bool, String, String) {
    nhigov(&["verify", "--db", &dir.display().to_string()])
}

fn nhigov(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(args)
        .env("NHIGOV_LOG", "warn")
        .output()
        .expect("the nhigov binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A store of one genesis and three rejected revocations; returns the rejections.
async fn seeded(store: &Store) -> (std::collections::HashMap<String, NodeId>, Vec<Decision>) {
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
        decisions.push(reject_once(store, &ids).await);
    }
    (ids, decisions)
}

/// Reject one more revocation of the seeded NHI.
async fn reject_once(store: &Store, ids: &std::collections::HashMap<String, NodeId>) -> Decision {
    let r = store
        .create_request(
            &ids["r"],
            &NewRequest::new(RequestKind::RevokeNhi, ids["n"].clone(), Text::parse("unused still").unwrap()),
        )
        .await
        .unwrap();
    let approver = Actor { id: ids["a"].clone(), roles: vec![Role::Approver] };
    store
        .decide_request(&approver, &r.id, DecideOutcome::Reject, &Text::parse("not yet").unwrap(), &[])
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn verify_reports_an_intact_chain_and_then_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let cfg = StoreConfig { url: db.display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let (_, decisions) = seeded(&store).await;
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

/// Rewrite the whole chain from decision `from_seq` on as a database root could: the
/// append-only guards lifted, a rationale changed, every later hash and the head
/// recomputed, so that the chain verifies on its own.
async fn rewrite_chain(store: &Store, from_seq: u64) {
    store
        .execute_raw(
            "REMOVE EVENT decision_append_only ON decision;
             DEFINE FIELD OVERWRITE rationale ON decision TYPE string;
             DEFINE FIELD OVERWRITE prev_hash ON decision TYPE string;
             DEFINE FIELD OVERWRITE hash ON decision TYPE string;",
        )
        .await
        .unwrap();
    let rows = store.execute_raw("SELECT * FROM decision ORDER BY seq").await.unwrap();
    let mut chain: Vec<Decision> = serde_json::from_value(rows).unwrap();
    let mut sql = String::new();
    for i in (from_seq as usize - 1)..chain.len() {
        if i + 1 == from_seq as usize {
            chain[i].rationale = "approved after review".into();
        }
        chain[i].prev_hash = chain[i - 1].hash.clone();
        chain[i].hash = chain[i].compute_hash();
        let d = &chain[i];
        sql.push_str(&format!(
            "UPDATE {} SET rationale = {}, prev_hash = '{}', hash = '{}';",
            d.id,
            serde_json::to_string(&d.rationale).unwrap(),
            d.prev_hash,
            d.hash
        ));
    }
    let head = chain.last().unwrap();
    sql.push_str(&format!("UPDATE meta:chain SET hash = '{}';", head.hash));
    store.execute_raw(&sql).await.unwrap();
}

#[tokio::test]
async fn checkpoints_catch_a_chain_rewritten_from_scratch_and_tell_a_restored_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let key_file = dir.path().join("checkpoint.key");
    let file = dir.path().join("checkpoints.jsonl");
    let (ok, public_key, stderr) = nhigov(&["checkpoint-key", &key_file.display().to_string()]);
    assert!(ok, "{stderr}");
    let public_key = public_key.trim().to_owned();
    assert_eq!(public_key.len(), 64, "{public_key}");

    let cfg = StoreConfig { url: db.display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let (ids, decisions) = seeded(&store).await;
    let settings = nhigov::checkpoints::CheckpointConfig {
        key_file: Some(key_file.clone()),
        file: file.clone(),
        every_decisions: 100,
        every_secs: 300,
    };
    let mut signer = nhigov::checkpoints::Checkpointer::open(&settings).unwrap().unwrap();
    assert_eq!(signer.public_key(), public_key);
    // Fewer decisions than a checkpoint waits for: nothing is signed until it is due.
    assert!(signer.tick(&store, Utc::now(), false).await.unwrap().is_none());
    let first = signer.tick(&store, Utc::now(), true).await.unwrap().expect("four decisions to sign");
    assert_eq!((first.from, first.seq), (0, 4));
    store.close().await;
    let backup = dir.path().join("backup");
    super::export::copy_dir(&db, &backup);

    let store = Store::open(&cfg).await.unwrap();
    reject_once(&store, &ids).await;
    reject_once(&store, &ids).await;
    // A server restarted over the same file resumes after its last checkpoint.
    let mut signer = nhigov::checkpoints::Checkpointer::open(&settings).unwrap().unwrap();
    let second = signer.tick(&store, Utc::now(), true).await.unwrap().expect("two decisions to sign");
    assert_eq!((second.from, second.seq), (4, 6));
    reject_once(&store, &ids).await;
    store.close().await;

    let db_arg = db.display().to_string();
    let file_arg = file.display().to_string();
    let (ok, stdout, stderr) =
        nhigov(&["verify", "--db", &db_arg, "--checkpoints", &file_arg, "--public-key", &public_key]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("decisions #1..=#6 are the ones they saw; 1 taken since"), "{stdout}");

    // Another key pinned: the file is not the one trusted.
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let (ok, _, stderr) = nhigov(&["verify", "--db", &db_arg, "--checkpoints", &file_arg, "--public-key", other]);
    assert!(!ok && stderr.contains("signed by key"), "{stderr}");

    // The database's root rewrites decision #3 and everything after it, consistently.
    let store = Store::open(&cfg).await.unwrap();
    rewrite_chain(&store, 3).await;
    let refused = signer.tick(&store, Utc::now(), true).await.expect_err("the server must not sign a rewritten chain");
    assert!(refused.to_string().contains("rewritten"), "{refused}");
    store.close().await;
    let (ok, stdout, stderr) = verify(&db);
    assert!(ok, "the rewrite is consistent, so the chain alone cannot tell: {stdout}\n{stderr}");
    let (ok, _, stderr) = nhigov(&["verify", "--db", &db_arg, "--checkpoints", &file_arg, "--public-key", &public_key]);
    assert!(!ok, "the checkpoints must catch the rewrite");
    assert!(stderr.contains("decision #3"), "{stderr}");
    assert!(stderr.contains(&decisions[1].id.to_string()), "{stderr}");
    assert!(stderr.contains("line 1"), "checkpoint 1 saw #3: {stderr}");

    // The backup taken after the first checkpoint: a prefix of what was seen.
    let backup_arg = backup.display().to_string();
    let (ok, stdout, stderr) = nhigov(&["verify", "--db", &backup_arg, "--checkpoints", &file_arg]);
    assert!(!ok);
    assert!(stdout.contains(&public_key), "the key the file names is shown to compare: {stdout}");
    assert!(stderr.contains("restored at seq 4"), "{stdout}\n{stderr}");
}
