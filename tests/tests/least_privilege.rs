//! The service on a SurrealDB server as a user of its own database, not root: `nhigov
//! db-user --apply` defines the user (as root), the store then signs in as that user,
//! applies its schema and serves governed decisions, and the user can reach nothing else
//! on the server. The test starts a server of its own (the `nhigov-surrealdb-server`
//! that `cargo test --workspace` builds), so it runs in both of `tests/run`'s passes.

use std::process::{Child, Command, Stdio};

use graph_model::store::{Store, StoreConfig, UserLevel};
use nhigov_tests::TestServer;
use serde_json::json;
use surrealdb::opt::auth::Database;

/// A SurrealDB server on a free loopback port, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn server() -> Server {
    // Beside the test binary's directory (target/debug/deps/..).
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|d| d.parent()).unwrap().join("nhigov-surrealdb-server");
    assert!(bin.exists(), "{} is built by `cargo test --workspace`", bin.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&bin)
        .args([
            "start",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--user",
            "root",
            "--pass",
            "root",
            "--log",
            "warn",
            "memory",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the SurrealDB server starts");
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Server { child, url: format!("ws://127.0.0.1:{port}") }
}

#[tokio::test]
async fn the_service_runs_as_a_user_of_its_own_database_and_reaches_nothing_else() {
    let srv = server().await;
    let root = StoreConfig {
        url: srv.url.clone(),
        namespace: "corp".into(),
        database: "governance".into(),
        username: Some("root".into()),
        password: Some("root".into()),
        user_level: UserLevel::Root,
        ..StoreConfig::memory()
    };
    // Something else on the same server the service must not see.
    let other = StoreConfig { database: "payroll".into(), ..root.clone() };
    Store::open(&other).await.expect("root opens another database");

    // What `nhigov db-user --apply` runs, on a database nobody has opened yet.
    graph_model::store::define_database_user(&root, "nhigov", "a-long-enough-password").await.unwrap();
    let as_user = StoreConfig {
        username: Some("nhigov".into()),
        password: Some("a-long-enough-password".into()),
        user_level: UserLevel::Database,
        ..root.clone()
    };
    // The user applies the schema itself and the service governs as usual.
    let store = Store::open(&as_user).await.expect("the database user opens the store and applies its schema");
    let s = TestServer::start_on(nhigov::config::Config::default(), store).await;
    let t = s.admin().await;
    let d = s
        .ok(&t, "mutation { createNhi(input: { kind: TOKEN, name: \"ci\", environment: TEST }) { id } }", json!({}))
        .await;
    let nhi = d["createNhi"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &t,
            "mutation($id: ID!) { updateNhi(id: $id, input: { status: DISABLED }) { decision { outcome } } }",
            json!({ "id": nhi }),
        )
        .await;
    assert_eq!(d["updateNhi"]["decision"]["outcome"], "APPLIED");
    let d = s.ok(&t, "{ verifyDecisionChain { ok } }", json!({})).await;
    assert_eq!(d["verifyDecisionChain"]["ok"], true);
    s.stop().await;

    // The same credentials, used directly: their own database only.
    let db = surrealdb::engine::any::connect(srv.url.as_str()).await.unwrap();
    db.signin(Database {
        namespace: "corp".into(),
        database: "governance".into(),
        username: "nhigov".into(),
        password: "a-long-enough-password".into(),
    })
    .await
    .unwrap();
    for (what, sql) in [
        ("another database", "USE NS corp DB payroll; SELECT * FROM meta;"),
        ("a user", "DEFINE USER intruder ON DATABASE PASSWORD 'x-long-enough-password' ROLES OWNER;"),
        ("the namespace", "DEFINE DATABASE extra;"),
    ] {
        let refused = match db.query(sql).await {
            Err(_) => true,
            Ok(mut r) => !r.take_errors().is_empty(),
        };
        assert!(refused, "the database user could reach {what}");
    }
    // Root credentials at the database level are not a way in either.
    let wrong = StoreConfig { password: Some("not-the-password".into()), ..as_user.clone() };
    let e = Store::open(&wrong).await.unwrap_err().to_string();
    assert!(e.contains("nhigov db-user"), "the refusal says how to make the user: {e}");
}
