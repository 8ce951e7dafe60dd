//! `nhigov bootstrap`: the genesis of a deployment, its first people's roles in one
//! decision, allowed only while the decision chain is empty.

use std::path::Path;
use std::process::Command;

use graph_model::store::{Store, StoreConfig};
use graph_model::*;

fn nhigov(args: &[&str], db: &Path, production: bool) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nhigov"));
    cmd.args(args).arg("--db").arg(db).env("NHIGOV_LOG", "warn");
    if production {
        cmd.env("NHIGOV_MODE", "production");
    }
    let out = cmd.output().expect("the nhigov binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn bootstrap_records_one_genesis_and_only_on_an_empty_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let roles = dir.path().join("roles.json");
    std::fs::write(&roles, r#"{ "ines@corp.example": ["investigator"], "jules@corp.example": ["approver"] }"#).unwrap();

    // Production needs two admins: a role grant later waits for a second one.
    let (ok, _, stderr) = nhigov(&["bootstrap", "--admin", "sam@corp.example"], &db, true);
    assert!(!ok && stderr.contains("two --admin"), "{stderr}");

    let args = ["bootstrap", "--admin", "sam@corp.example", "--admin", "ana@corp.example", "--roles"];
    let (ok, stdout, stderr) = nhigov(&[&args[..], &[roles.to_str().unwrap()]].concat(), &db, true);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("genesis recorded") && stdout.contains("4 people"), "{stdout}");

    // Once the chain has begun, roles come only from governed changes.
    let (ok, _, stderr) =
        nhigov(&["bootstrap", "--admin", "eve@corp.example", "--admin", "sam@corp.example"], &db, true);
    assert!(!ok && stderr.contains("the decision chain has begun"), "{stderr}");
    // And in production a signed token does not come from the command line.
    let (ok, _, stderr) = nhigov(&["token", "--subject", "sam@corp.example"], &db, true);
    assert!(!ok && stderr.contains("development mode only"), "{stderr}");

    // After the genesis, a command-line import is a recorded run, the server its actor.
    let doc = dir.path().join("feed.json");
    std::fs::write(
        &doc,
        r#"{ "source": "hr", "nodes": [{ "type": "team", "ref": "t", "name": "Platform" }], "edges": [] }"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = nhigov(&["import", doc.to_str().unwrap()], &db, false);
    assert!(ok, "{stdout}\n{stderr}");

    let store = Store::open(&StoreConfig { url: db.display().to_string(), ..StoreConfig::memory() }).await.unwrap();
    let runs = store
        .decisions(
            &graph_model::store::DecisionFilter { kind: Some(DecisionKind::ImportRun), ..Default::default() },
            &graph_model::store::PageRequest { first: 10, after: None, count: true, ..Default::default() },
        )
        .await
        .unwrap()
        .items;
    let seen: Vec<(Outcome, String)> = runs.iter().map(|d| (d.outcome, d.actor.to_string())).collect();
    let server = graph_model::store::SERVER_PRINCIPAL.to_owned();
    assert_eq!(seen, [(Outcome::Started, server.clone()), (Outcome::Completed, server)]);
    let roles = |email: &str| {
        let store = store.clone();
        let email = Email::parse(email).unwrap();
        async move { store.person_by_email(&email).await.unwrap().map(|p| p.roles).unwrap_or_default() }
    };
    assert_eq!(roles("sam@corp.example").await, [Role::Admin]);
    assert_eq!(roles("ana@corp.example").await, [Role::Admin]);
    assert_eq!(roles("ines@corp.example").await, [Role::Investigator]);
    let eve = store.person_by_email(&Email::parse("eve@corp.example").unwrap()).await.unwrap();
    assert!(eve.is_none(), "a refused bootstrap leaves nothing behind");
    let chain = store.verify_decision_chain().await.unwrap();
    assert_eq!((chain.length, chain.first_broken.is_none()), (3, true), "the genesis and the import run");
    store.close().await;
}
