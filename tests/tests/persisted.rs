//! Persisted queries over HTTP: a portal sends a hash, registers the query once when the
//! server does not know it, and may then use short GET URLs, whose answers no cache keeps.

use nhigov_tests::TestServer;
use serde_json::{Value, json};

const QUERY: &str = "query Me { me { email } }";

fn hash(q: &str) -> String {
    graph_model::sha256_hex(q.as_bytes())
}

async fn post(s: &TestServer, token: &str, body: Value) -> (u16, Value) {
    let resp = s.http.post(s.url("/graphql")).bearer_auth(token).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// GET with only the persisted query's `extensions`.
async fn get(s: &TestServer, token: &str, ext: &Value) -> (u16, Value) {
    let resp = s
        .http
        .get(s.url("/graphql"))
        .bearer_auth(token)
        .query(&[("extensions", ext.to_string())])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_hash_is_answered_once_its_query_is_registered() {
    let s = TestServer::start().await;
    let token = s.admin().await;
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash(QUERY) } });

    // Unknown hash: the protocol's signal to send the query.
    let (status, body) = post(&s, &token, json!({ "extensions": ext })).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");

    // With the query: checked against the hash, run, and remembered.
    let (status, body) = post(&s, &token, json!({ "query": QUERY, "extensions": ext })).await;
    assert_eq!((status, body["data"]["me"]["email"].as_str()), (200, Some("admin@test.example")));
    let (status, body) = post(&s, &token, json!({ "extensions": ext, "operationName": "Me" })).await;
    assert_eq!((status, body["data"]["me"]["email"].as_str()), (200, Some("admin@test.example")), "{body}");

    // And over GET, by URL.
    let (status, body) = get(&s, &token, &ext).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["me"]["email"], "admin@test.example", "{body}");
}

#[tokio::test]
async fn a_wrong_hash_an_anonymous_caller_and_a_persisted_mutation_over_get_are_refused() {
    let s = TestServer::start().await;
    let token = s.admin().await;
    let wrong = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash("{ nhis { totalCount } }") } });
    let (status, body) = post(&s, &token, json!({ "query": QUERY, "extensions": wrong })).await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (400, Some("PERSISTED_QUERY_HASH_MISMATCH"))
    );

    // Registration needs a token: an anonymous caller neither registers nor learns.
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash(QUERY) } });
    let resp = s.http.post(s.url("/graphql")).json(&json!({ "query": QUERY, "extensions": ext })).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let (_, body) = post(&s, &token, json!({ "extensions": ext })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");

    // A registered mutation is still refused over GET.
    let m = "mutation { createApiToken(principalId: \"person:nobody\", name: \"x\", scopes: [ADMIN]) { token } }";
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash(m) } });
    let (status, _) = post(&s, &token, json!({ "query": m, "extensions": ext })).await;
    assert_eq!(status, 200);
    assert_eq!(get(&s, &token, &ext).await.0, 405);
    assert!(s.healthy().await);
}

#[tokio::test]
async fn no_answer_may_be_kept_by_a_browser_or_a_proxy() {
    let s = TestServer::start().await;
    let token = s.admin().await;
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash(QUERY) } });
    post(&s, &token, json!({ "query": QUERY, "extensions": ext })).await;
    let answers = [
        s.http.post(s.url("/graphql")).bearer_auth(&token).json(&json!({ "query": QUERY })).send().await.unwrap(),
        s.http
            .get(s.url("/graphql"))
            .bearer_auth(&token)
            .query(&[("extensions", ext.to_string())])
            .send()
            .await
            .unwrap(),
        s.http.post(s.url("/graphql")).json(&json!({ "query": QUERY })).send().await.unwrap(),
        s.http.get(s.url("/readyz")).send().await.unwrap(),
        s.http.get(s.url("/nowhere")).send().await.unwrap(),
    ];
    for resp in answers {
        let what = format!("{} {}", resp.url().path(), resp.status());
        assert_eq!(resp.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{what}");
    }
    s.stop().await;
}
