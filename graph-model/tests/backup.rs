//! Backup and restore through the store: a store with a decision chain, a policy and
//! access granted by approvals, backed up while decisions keep committing, restored
//! into an empty store (a directory, or a database of its own on the test server), where
//! the chain verifies and the same questions get the same answers. A restore into a
//! store that holds anything is refused, and so is a backup cut short or altered.

use chrono::Utc;
use futures::StreamExt;
use graph_model::store::{
    Actor, EdgeDirection, Store, StoreConfig, StoreError, check_backup, check_backup_file, restore,
};
use graph_model::*;
use serde_json::json;

fn text(s: &str) -> Text {
    Text::parse(s).unwrap()
}

/// Where a restore can go: a database of its own on the test server, or a new embedded
/// directory (an in-memory store would vanish when the restore lets go of it).
fn empty_target(dir: &tempfile::TempDir) -> StoreConfig {
    let cfg = StoreConfig::for_tests();
    if cfg.is_remote() { cfg } else { StoreConfig { url: dir.path().join("restored").display().to_string(), ..cfg } }
}

async fn write_backup(store: &Store, path: &std::path::Path) -> Vec<u8> {
    let mut dump = store.backup().await.unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = dump.next().await {
        bytes.extend(chunk.unwrap());
    }
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// A request for the bot's access to the vault.
fn grant(ids: &std::collections::HashMap<String, NodeId>, privilege: Privilege, why: &str) -> NewRequest {
    NewRequest {
        target: Some(ids["vault"].clone()),
        privilege: Some(privilege),
        duration_days: Some(30),
        ..NewRequest::new(RequestKind::GrantAccess, ids["bot"].clone(), text(why))
    }
}

/// A store with roles given at the genesis and a grant approved by two approvers.
async fn governed_store() -> (Store, std::collections::HashMap<String, NodeId>) {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "req", "name": "Requester", "email": "req@x.example", "roles": ["investigator"]},
            {"type": "person", "ref": "a1", "name": "Approver One", "email": "a1@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "a2", "name": "Approver Two", "email": "a2@x.example", "roles": ["approver"]},
            {"type": "person", "ref": "owner", "name": "Owner", "email": "owner@x.example"},
            {"type": "nhi", "ref": "bot", "kind": "service_account", "name": "deploy-bot", "environment": "production",
             "provider": "aws", "external_id": "bot-1"},
            {"type": "secret", "ref": "key", "kind": "api_key", "name": "deploy key", "fingerprint": "fp-backup-1"},
            {"type": "system", "ref": "vault", "kind": "vault", "name": "vault", "environment": "production", "criticality": "tier0"}
        ],
        "edges": [
            {"type": "owns", "from": "owner", "to": "bot"},
            {"type": "owns", "from": "owner", "to": "vault"},
            {"type": "holds", "from": "bot", "to": "key"},
            {"type": "authenticates_to", "from": "key", "to": "vault"}
        ]
    });
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &text("first roles")).await.unwrap();
    let ids: std::collections::HashMap<String, NodeId> = summary.ids.into_iter().collect();
    let r = store.create_request(&ids["req"], &grant(&ids, Privilege::Admin, "deploys need it")).await.unwrap();
    for a in ["a1", "a2"] {
        let actor = Actor { id: ids[a].clone(), roles: vec![Role::Approver] };
        store.decide_request(&actor, &r.id, DecideOutcome::Approve, &text("ok"), &[]).await.unwrap();
    }
    (store, ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_decisions_commit_restores_to_a_store_whose_chain_verifies_and_answers_the_same() {
    let (store, ids) = governed_store().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.surql");

    // Requests filed and refused side by side with the backup: each is a decision, and
    // a backup is one snapshot, so it holds each one whole or not at all.
    let writer = {
        let store = store.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                let request = grant(&ids, Privilege::Read, &format!("read {i}"));
                let r = store.create_request(&ids["req"], &request).await.unwrap();
                let actor = Actor { id: ids["a1"].clone(), roles: vec![Role::Approver] };
                store.decide_request(&actor, &r.id, DecideOutcome::Reject, &text("no"), &[]).await.unwrap();
            }
        })
    };
    let bytes = write_backup(&store, &file).await;
    writer.await.unwrap();
    check_backup(&bytes).unwrap();

    let target = empty_target(&dir);
    let restored = restore(&target, &file).await.unwrap();
    assert_eq!(restored.bytes, bytes.len() as u64);
    let copy = Store::open(&target).await.unwrap();

    let (report, links) = copy.verify_decision_chain_links().await.unwrap();
    assert!(report.ok(), "the restored chain verifies: {:?}", report.first_broken);
    let head = copy.chain_head().await.unwrap();
    assert_eq!(report.length, head.seq, "the head the copy holds is its last decision");
    // The copy's chain is the original's, up to where the snapshot was taken.
    let (_, original) = store.verify_decision_chain_links().await.unwrap();
    assert!(head.seq >= 3, "the genesis and two approvals at least: {}", head.seq);
    assert_eq!(&original[..links.len()], &links[..], "the copy is a prefix of the original chain");
    let digests = copy.verify_digests().await.unwrap();
    assert!(digests.altered_policies.is_empty() && digests.altered_evidence.is_empty());
    assert!(digests.policies >= 1);

    // The same answers: lookups by their indexes, the access the approvals granted, roles.
    let bot = copy.nhi_by_external_id("aws", "bot-1").await.unwrap().expect("the NHI by its external id");
    assert_eq!(bot.id, ids["bot"]);
    let a1 = copy.person_by_email(&Email::parse("a1@x.example").unwrap()).await.unwrap().unwrap();
    assert_eq!(a1.roles, vec![Role::Approver]);
    let reach = |s: &Store| {
        let s = s.clone();
        let bot = ids["bot"].clone();
        async move {
            let edges =
                s.edges_of(EdgeKind::CanAccess, EdgeDirection::Out, std::slice::from_ref(&bot), None).await.unwrap();
            edges[&bot].iter().map(|e| (e.to.clone(), e.privilege, e.granted_by.clone())).collect::<Vec<_>>()
        }
    };
    assert_eq!(reach(&copy).await, reach(&store).await);
    copy.close().await;
    store.close().await;
}

#[tokio::test]
async fn a_restore_goes_into_an_empty_store_only() {
    let (store, _) = governed_store().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.surql");
    write_backup(&store, &file).await;
    let target = empty_target(&dir);
    restore(&target, &file).await.unwrap();
    let again = restore(&target, &file).await;
    match again {
        Err(StoreError::Conflict(m)) => assert!(m.contains("empty database only"), "{m}"),
        other => panic!("a second restore into the same store: {other:?}"),
    }
    store.close().await;
}

#[tokio::test]
async fn a_backup_cut_short_or_altered_is_refused_before_anything_is_written() {
    let (store, _) = governed_store().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.surql");
    let bytes = write_backup(&store, &file).await;
    store.close().await;

    let cut = &bytes[..bytes.len() * 2 / 3];
    let err = check_backup(cut).unwrap_err();
    assert!(err.contains("cut short"), "{err}");

    let text = String::from_utf8(bytes.clone()).unwrap();
    let altered = text.replacen("Approver One", "Approver 0ne", 1);
    assert_ne!(altered, text);
    let err = check_backup(altered.as_bytes()).unwrap_err();
    assert!(err.contains("damaged"), "{err}");
    assert!(check_backup(b"INSERT [ { id: person:x } ];\n").unwrap_err().contains("not an nhigov backup"));

    std::fs::write(&file, altered).unwrap();
    let target = empty_target(&dir);
    let refused = restore(&target, &file).await;
    assert!(matches!(&refused, Err(StoreError::Database(m)) if m.contains("damaged")), "{refused:?}");
    // Nothing was written: the same target still takes the whole backup.
    std::fs::write(&file, &bytes).unwrap();
    restore(&target, &file).await.unwrap();
}

/// The check of a file, read a piece at a time, gives the verdict the check of the same
/// bytes in memory gives: on the whole backup (with its size and digest), on a backup cut
/// at each of many points, and on one with a byte changed anywhere.
#[tokio::test]
async fn a_backup_file_is_checked_in_pieces_as_the_whole_dump_is() {
    let (store, _) = governed_store().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.surql");
    let bytes = write_backup(&store, &file).await;
    store.close().await;

    let whole = check_backup_file(&file).unwrap();
    assert_eq!(whole.bytes, bytes.len() as u64);
    assert_eq!(whole.sha256, sha256_hex(&bytes));

    let other = dir.path().join("other.surql");
    let step = (bytes.len() / 97).max(1);
    for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        std::fs::write(&other, &bytes[..cut]).unwrap();
        let in_memory = check_backup(&bytes[..cut]).unwrap_err();
        assert_eq!(check_backup_file(&other).unwrap_err(), in_memory, "cut at {cut} of {}", bytes.len());
    }
    for at in (0..bytes.len()).step_by(step) {
        let mut changed = bytes.clone();
        changed[at] ^= 0x20;
        std::fs::write(&other, &changed).unwrap();
        let in_memory = check_backup(&changed);
        assert_eq!(check_backup_file(&other).map(|_| ()), in_memory, "a byte changed at {at} of {}", bytes.len());
        assert!(in_memory.is_err(), "a byte changed at {at} went unnoticed");
    }

    // A last line longer than any closing line, past where the closing line is looked for.
    let mut long = bytes[..bytes.len() / 2].to_vec();
    long.extend(std::iter::repeat_n(b'x', 10_000));
    std::fs::write(&other, &long).unwrap();
    assert!(check_backup_file(&other).unwrap_err().contains("cut short"));
    // A file shorter than the header, and no file at all.
    std::fs::write(&other, b"--").unwrap();
    assert!(check_backup_file(&other).unwrap_err().contains("not an nhigov backup"));
    let missing = check_backup_file(&dir.path().join("missing.surql")).unwrap_err();
    assert!(missing.contains("cannot be read"), "{missing}");
}
