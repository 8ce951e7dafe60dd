//! `nhigov backup`, `restore`, and `verify --server` as the platform team runs them: a
//! backup of a running server (the demo store, embedded) taken with an admin's token and
//! refused to anyone else, restored into a new directory where the chain verifies and
//! the same records answer, refused into a store that holds anything; and the running
//! server's store verified without stopping it.

use std::process::Command;

use crate::running::Server;

use graph_model::store::{Store, StoreConfig};
use nhigov::auth::Authenticator;

const SECRET: &str = "backup-secret-backup-secret-backup!!";

fn start(dir: &std::path::Path) -> Server {
    crate::running::start(dir, SECRET)
}

fn token(email: &str) -> String {
    Authenticator::with_secret(SECRET)
        .mint(&graph_model::Email::parse(email).unwrap(), chrono::Duration::minutes(10))
        .unwrap()
}

fn nhigov(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(args)
        .env("NHIGOV_LOG", "warn")
        .env_remove("NHIGOV_TOKEN")
        .output()
        .expect("the nhigov binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn a_running_servers_backup_restores_into_an_empty_store_that_verifies_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let url = format!("http://{}", server.addr);
    let admin = token(nhigov::demo::DEMO_ADMIN);
    let file = dir.path().join("backup.surql");
    let shown = file.display().to_string();

    // Only an admin takes a backup: an investigator is forbidden, no token unauthenticated.
    let client = reqwest::blocking::Client::new();
    let investigator = token(nhigov::demo::DEMO_INVESTIGATOR);
    let resp = client.get(format!("{url}/admin/backup")).bearer_auth(&investigator).send().unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(client.get(format!("{url}/admin/backup")).send().unwrap().status(), 401);
    let (ok, _, err) = nhigov(&["backup", "--server", &url, "--token", &investigator, "--out", &shown]);
    assert!(!ok && err.contains("403"), "{err}");
    assert!(!file.exists() && !dir.path().join("backup.surql.partial").exists(), "a refused backup leaves no file");

    let (ok, out, err) = nhigov(&["backup", "--server", &url, "--token", &admin, "--out", &shown]);
    assert!(ok, "backup: {out}{err}");
    assert!(out.contains("SHA-256") && file.exists(), "{out}");
    let (ok, _, err) = nhigov(&["backup", "--server", &url, "--token", &admin, "--out", &shown]);
    assert!(!ok && err.contains("exists"), "an existing file is never overwritten: {err}");

    // The running server's store verifies without stopping it.
    let (ok, out, err) = nhigov(&["verify", "--server", &url, "--token", &admin]);
    assert!(ok, "verify --server: {out}{err}");
    assert!(out.contains("intact"), "{out}");

    let restored = dir.path().join("restored");
    let (ok, out, err) = nhigov(&["restore", &shown, "--db", &restored.display().to_string()]);
    assert!(ok, "restore: {out}{err}");
    assert!(out.contains("decision chain:") && out.contains("intact"), "{out}");
    let (ok, _, err) = nhigov(&["restore", &shown, "--db", &restored.display().to_string()]);
    assert!(!ok && err.contains("empty database only"), "{err}");

    // The same records answer in both: the demo investigator, and the chain up to the
    // backup's head.
    drop(server);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let open = |path: std::path::PathBuf| async move {
            Store::open(&StoreConfig { url: path.display().to_string(), ..StoreConfig::memory() }).await.unwrap()
        };
        let copy = open(restored.clone()).await;
        let (copy_report, copy_links) = copy.verify_decision_chain_links().await.unwrap();
        let email = graph_model::Email::parse(nhigov::demo::DEMO_INVESTIGATOR).unwrap();
        let copy_person = copy.person_by_email(&email).await.unwrap().expect("the investigator is restored");
        copy.close().await;
        let original = open(dir.path().join("data")).await;
        let (_, links) = original.verify_decision_chain_links().await.unwrap();
        let person = original.person_by_email(&email).await.unwrap().unwrap();
        original.close().await;
        assert!(copy_report.ok() && copy_report.length > 0);
        assert_eq!(&links[..copy_links.len()], &copy_links[..], "the copy's chain is the original's, up to the backup");
        assert_eq!((copy_person.id, copy_person.roles), (person.id, person.roles));
    });

    // A file cut short is refused, naming the file.
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.surql");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) =
        nhigov(&["restore", &cut.display().to_string(), "--db", &dir.path().join("other").display().to_string()]);
    assert!(!ok && err.contains("cut.surql") && err.contains("cut short"), "{err}");
}
