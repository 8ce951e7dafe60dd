//! Browser clients on other origins: CORS for the configured origins only. A preflight
//! and a real request from an allowed origin get the origin named back; from a refused
//! origin, and when no origin is configured (the default), no CORS header at all, so the
//! browser keeps the page from reading anything.

use nhigov_tests::TestServer;
use serde_json::json;

const PORTAL: &str = "https://portal.corp.example";

async fn preflight(s: &TestServer, origin: &str) -> reqwest::Response {
    s.http
        .request(reqwest::Method::OPTIONS, s.url("/graphql"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

async fn post(s: &TestServer, origin: &str, token: &str) -> reqwest::Response {
    s.http
        .post(s.url("/graphql"))
        .header("Origin", origin)
        .bearer_auth(token)
        .json(&json!({ "query": "{ me { email } }" }))
        .send()
        .await
        .unwrap()
}

fn allowed_origin(r: &reqwest::Response) -> Option<String> {
    r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_allowed_origin_is_answered_and_a_refused_one_is_not() {
    let mut cfg = nhigov::config::Config::default();
    cfg.cors.allowed_origins = vec![PORTAL.into()];
    let s = TestServer::start_with(cfg).await;
    s.world().await;
    let token = s.as_("ines");

    let r = preflight(&s, PORTAL).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(allowed_origin(&r).as_deref(), Some(PORTAL));
    let headers = r.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    let methods = r.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    assert!(r.headers().get("access-control-allow-credentials").is_none(), "tokens travel in a header, not cookies");

    let r = post(&s, PORTAL, &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allowed_origin(&r).as_deref(), Some(PORTAL));
    assert!(r.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin")));
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["data"]["me"]["email"], "ines@corp.example");

    let evil = "https://evil.example";
    assert_eq!(allowed_origin(&preflight(&s, evil).await), None);
    assert_eq!(allowed_origin(&post(&s, evil, &token).await), None);
    s.stop().await;
}

#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let s = TestServer::start().await;
    s.world().await;
    let r = preflight(&s, PORTAL).await;
    assert_eq!(allowed_origin(&r), None);
    assert_eq!(r.status(), 405, "no preflight is answered");
    assert_eq!(allowed_origin(&post(&s, PORTAL, &s.as_("ines")).await), None);
    s.stop().await;
}
