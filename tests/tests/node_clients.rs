//! Clients that are not ours, from npm, run by Node against the real server:
//! graphql-http's GraphQL-over-HTTP conformance audit (every MUST and every SHOULD must
//! hold), and graphql-ws's client over graphql-transport-ws (a query, a live
//! subscription, and the close code of a refused token).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nhigov_tests::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Install the audit's pinned packages (package-lock.json) unless they are there.
fn installed(dir: &Path) -> bool {
    if ["graphql-http", "graphql-ws", "playwright-core"].iter().all(|p| dir.join("node_modules").join(p).exists()) {
        return true;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm runs (Node.js and npm are required for this test)");
    status.success()
}

/// The Node project, installed.
pub(crate) fn node_clients() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node-clients");
    // Two tests may install at once; one at a time.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(installed(&dir), "npm ci in {} failed", dir.display());
    dir
}

#[tokio::test]
async fn graphql_http_audit_passes_every_must_and_should() {
    let dir = node_clients();
    let s = TestServer::start().await;
    let token = s.admin().await;
    let url = s.url("/graphql");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg("audit.mjs").arg(url).env("TOKEN", token).current_dir(dir).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "MUST rules failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains(" 0 warnings") && summary.contains(" 0 failures"), "{stdout}");
    assert!(s.healthy().await);
}

/// graphql-ws's client, started against `s` with `token`; its output, line by line.
fn graphql_ws_client(s: &TestServer, token: &str, count: usize) -> tokio::process::Child {
    tokio::process::Command::new("node")
        .arg("subscribe.mjs")
        .arg(format!("ws://{}/graphql/ws", s.addr))
        .arg(count.to_string())
        .env("TOKEN", token)
        .current_dir(node_clients())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs")
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the client printed in time")
        .expect("stdout readable")
        .expect("the client printed a line");
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
}

#[tokio::test]
async fn graphql_ws_client_queries_and_subscribes() {
    let s = TestServer::start().await;
    s.world().await;
    let mut child = graphql_ws_client(&s, &s.as_("ines"), 2);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(next_line(&mut lines).await, json!({ "event": "connected" }));
    assert_eq!(next_line(&mut lines).await, json!({ "event": "me", "email": "ines@corp.example" }));
    assert_eq!(next_line(&mut lines).await, json!({ "event": "subscribed" }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (rule, severity) in [("first", "LOW"), ("second", "CRITICAL")] {
        s.raise_alert(rule, severity).await;
    }
    for (title, severity) in [("first", "LOW"), ("second", "CRITICAL")] {
        let m = next_line(&mut lines).await;
        assert_eq!(m["event"], "next", "{m}");
        assert_eq!(m["errors"], Value::Null, "{m}");
        assert_eq!(m["data"]["alertRaised"]["kind"], "ALERT_RAISED", "{m}");
        assert_eq!(m["data"]["alertRaised"]["alert"], json!({ "title": title, "severity": severity }), "{m}");
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits").unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn graphql_ws_client_sees_4403_for_a_bad_token() {
    let s = TestServer::start().await;
    let mut child = graphql_ws_client(&s, "not-a-token", 1);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let m = next_line(&mut lines).await;
    assert_eq!((m["event"].as_str(), m["code"].as_u64()), (Some("closed"), Some(4403)), "{m}");
    assert!(s.healthy().await);
}
