//! Every request but the health checks needs the bearer token of an active person.

use graph_model::Role;
use nhigov::auth::Authenticator;
use nhigov_tests::{TestServer, code};
use serde_json::json;

const ME: &str = "{ me { email } }";

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    let s = TestServer::start().await;
    let resp = s.http.post(s.url("/graphql")).json(&json!({ "query": ME })).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn a_valid_token_of_an_active_person_is_accepted() {
    let s = TestServer::start().await;
    s.person("Ines", "ines@test.example", &[Role::Investigator]).await;
    let data = s.ok(&s.token("ines@test.example"), ME, json!({})).await;
    assert_eq!(data["me"]["email"], "ines@test.example");
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_unauthenticated() {
    let s = TestServer::start().await;
    s.person("Ines", "ines@test.example", &[Role::Investigator]).await;
    let forged = Authenticator::with_secret(&"f".repeat(40))
        .mint(&graph_model::Email::parse("ines@test.example").unwrap(), chrono::Duration::hours(1))
        .unwrap();
    let (status, body) = s.gql(&forged, ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let s = TestServer::start().await;
    s.person("Ines", "ines@test.example", &[Role::Investigator]).await;
    let expired =
        s.auth.mint(&graph_model::Email::parse("ines@test.example").unwrap(), chrono::Duration::seconds(-300)).unwrap();
    let (status, body) = s.gql(&expired, ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_token_for_an_unknown_person_is_unauthenticated() {
    let s = TestServer::start().await;
    let (status, body) = s.gql(&s.token("nobody@test.example"), ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_person_who_left_loses_access_at_once() {
    let s = TestServer::start().await;
    let ids = s
        .people(&[("Admin", "admin@test.example", &[Role::Admin]), ("Lena", "lena@test.example", &[Role::Viewer])])
        .await;
    let (admin, id) = (s.token("admin@test.example"), ids[1].clone());
    let lena = s.token("lena@test.example");
    s.ok(&lena, ME, json!({})).await;
    s.ok(
        &admin,
        "mutation($id: ID!) { updatePerson(id: $id, input: { active: false }) { person { active } } }",
        json!({ "id": id.to_string() }),
    )
    .await;
    let (status, body) = s.gql(&lena, ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_role_taken_away_is_gone_at_the_next_request() {
    let s = TestServer::start().await;
    let ids = s
        .people(&[
            ("Admin", "admin@test.example", &[Role::Admin]),
            ("Ines", "ines@test.example", &[Role::Investigator, Role::Viewer]),
        ])
        .await;
    let (admin, ines) = (s.token("admin@test.example"), s.token("ines@test.example"));
    const EVIDENCE: &str = "{ evidence { totalCount } }";
    // Signed in several times first, so that whatever the server keeps of her is warm.
    for _ in 0..3 {
        s.ok(&ines, EVIDENCE, json!({})).await;
    }
    let d = s
        .ok(
            &admin,
            "mutation($id: ID!) { updatePerson(id: $id, input: { roles: [VIEWER] }) { person { roles } decision { outcome } } }",
            json!({ "id": ids[1].to_string() }),
        )
        .await;
    assert_eq!(d["updatePerson"]["decision"]["outcome"], "APPLIED", "{d}");
    let (_, body) = s.gql(&ines, EVIDENCE, json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    s.ok(&ines, ME, json!({})).await;
}

#[tokio::test]
async fn garbage_in_the_authorization_header_is_unauthenticated() {
    let s = TestServer::start().await;
    for header in ["Bearer not.a.jwt", "Basic dXNlcjpwdw==", "Bearer"] {
        let resp = s
            .http
            .post(s.url("/graphql"))
            .header("authorization", header)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{header}");
    }
}

#[tokio::test]
async fn health_checks_need_no_token() {
    let s = TestServer::start().await;
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    let ready = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn mutations_need_a_role_that_may_write() {
    let s = TestServer::start().await;
    s.person("Vera", "vera@test.example", &[Role::Viewer]).await;
    let (status, body) =
        s.gql(&s.token("vera@test.example"), "mutation { createTeam(input: { name: \"X\" }) { id } }", json!({})).await;
    assert_eq!(status, 200, "the request executed; the field was refused");
    assert_eq!(code(&body), "FORBIDDEN");
}
