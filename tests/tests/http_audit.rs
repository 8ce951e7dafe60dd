//! A client that is not ours: graphql-http's GraphQL-over-HTTP conformance audit (the
//! reference implementation's own suite, from npm), run by Node against the real server.
//! Every MUST and every SHOULD must hold.

use std::path::Path;
use std::process::Command;

use nhigov_tests::TestServer;

/// Install the audit's pinned packages (package-lock.json) unless they are there.
fn installed(dir: &Path) -> bool {
    if dir.join("node_modules/graphql-http").exists() {
        return true;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm runs (Node.js and npm are required for this test)");
    status.success()
}

#[tokio::test]
async fn graphql_http_audit_passes_every_must_and_should() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("http-audit");
    assert!(installed(&dir), "npm ci in {} failed", dir.display());
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
