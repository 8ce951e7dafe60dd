//! The demo graph loads, tells its story, and answers the README's first query.

use graph_model::Role;
use nhigov_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn the_demo_answers_the_first_query_of_the_readme() {
    let s = TestServer::start().await;
    let loaded = nhigov::demo::load(&s.store).await.unwrap().expect("an empty store gets the demo");
    assert!(loaded.nodes > 60 && loaded.edges > 100);
    assert!(nhigov::demo::load(&s.store).await.unwrap().is_none(), "never loaded twice");
    let t = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let d = s.ok(&t, "{ nhis(first: 5) { totalCount edges { node { id name owners { name } } } } }", json!({})).await;
    assert!(d["nhis"]["totalCount"].as_u64().unwrap() >= 24);
    assert_eq!(d["nhis"]["edges"].as_array().unwrap().len(), 5);
    assert!(d["nhis"]["edges"][0]["node"]["owners"][0]["name"].is_string());
}

#[tokio::test]
async fn the_demo_holds_every_nhi_kind_and_its_risks() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    s.person("Viewer", "v@test.example", &[Role::Viewer]).await;
    let t = s.token("v@test.example");
    for kind in [
        "SERVICE_ACCOUNT",
        "API_KEY",
        "OAUTH_CLIENT",
        "TOKEN",
        "CERTIFICATE",
        "SSH_KEY",
        "AI_AGENT",
        "WORKLOAD_IDENTITY",
    ] {
        let d =
            s.ok(&t, "query($k: NhiKind) { nhis(filter: { kind: $k }) { totalCount } }", json!({ "k": kind })).await;
        assert!(d["nhis"]["totalCount"].as_u64().unwrap() > 0, "{kind}");
    }
    // The GitHub token with admin on production.
    let d = s
        .ok(&t, "{ nhis(filter: { nameContains: \"gh-actions-deploy\" }) { edges { node { access { privilege system { environment } } } } } }", json!({}))
        .await;
    let access = d["nhis"]["edges"][0]["node"]["access"].as_array().unwrap();
    assert!(access.iter().any(|a| a["privilege"] == "ADMIN" && a["system"]["environment"] == "PRODUCTION"));
    // The orphaned service account: its only owner has left.
    let d = s
        .ok(&t, "{ nhis(filter: { nameContains: \"etl-runner\" }) { edges { node { owners { ... on Person { active } } } } } }", json!({}))
        .await;
    assert_eq!(d["nhis"]["edges"][0]["node"]["owners"], json!([{ "active": false }]));
    // Secrets overdue for rotation.
    let d = s.ok(&t, "{ secrets(first: 100) { edges { node { rotationOverdue } } } }", json!({})).await;
    let overdue =
        d["secrets"]["edges"].as_array().unwrap().iter().filter(|e| e["node"]["rotationOverdue"] == true).count();
    assert!(overdue >= 3, "{overdue}");
}
