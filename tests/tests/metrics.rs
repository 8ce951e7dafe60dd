//! `/metrics` in the Prometheus text format: requests by operation and outcome with
//! latency histograms, database latency, decisions, SoD refusals, open cases.

use nhigov_tests::TestServer;
use serde_json::json;

/// The value of the one sample line that starts with `series ` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

async fn scrape(s: &TestServer, token: Option<&str>) -> (u16, String) {
    let mut req = s.http.get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn requests_decisions_refusals_and_cases_are_counted() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let priya = s.as_("priya");
    for _ in 0..3 {
        s.ok(&priya, "query Me { me { email } }", json!({})).await;
    }
    s.gql(&priya, "query Broken { me { shoeSize } }", json!({})).await;
    let _ = s.http.post(s.url("/graphql")).json(&json!({ "query": "{ me { email } }" })).send().await.unwrap();
    // A request, its requester's own approval refused, then another approver's accepted.
    let r = s
        .ok(
            &priya,
            "mutation($i: RequestInput!) { createRequest(input: $i) { id } }",
            json!({ "i": { "kind": "GRANT_ACCESS", "subjectId": w.id("bot"), "targetId": w.id("db"), "privilege": "READ",
                           "durationDays": 30, "justification": "metrics" } }),
        )
        .await["createRequest"]["id"]
        .clone();
    let decide =
        "mutation Decide($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"ok\") { decision { id } } }";
    let (_, refused) = s.gql(&priya, decide, json!({ "r": r })).await;
    assert_eq!(nhigov_tests::code(&refused), "SOD_VIOLATION");
    s.ok(&s.as_("jules"), decide, json!({ "r": r })).await;

    // A role the guard refuses: counted, not chained.
    let (_, body) = s.gql(&s.as_("vic"), "query Forbidden { decisions { totalCount } }", json!({})).await;
    assert_eq!(nhigov_tests::code(&body), "FORBIDDEN");

    let (status, text) = scrape(&s, None).await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "nhigov_graphql_requests_total{operation=\"Me\",outcome=\"ok\"}"), Some(3.0), "{text}");
    assert_eq!(
        sample(&text, "nhigov_graphql_requests_total{operation=\"Broken\",outcome=\"request_error\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "nhigov_graphql_requests_total{operation=\"Decide\",outcome=\"field_error\"}"), Some(1.0));
    assert_eq!(sample(&text, "nhigov_graphql_requests_total{operation=\"Decide\",outcome=\"ok\"}"), Some(1.0));
    assert_eq!(
        sample(&text, "nhigov_graphql_requests_total{operation=\"Forbidden\",outcome=\"forbidden\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "nhigov_graphql_requests_total{operation=\"-\",outcome=\"unauthenticated\"}"), Some(1.0));
    assert_eq!(sample(&text, "nhigov_graphql_request_duration_seconds_count{operation=\"Me\"}"), Some(3.0));
    assert_eq!(
        sample(&text, "nhigov_graphql_request_duration_seconds_bucket{operation=\"Me\",le=\"+Inf\"}"),
        Some(3.0)
    );
    assert!(sample(&text, "nhigov_db_query_duration_seconds_count").unwrap() > 0.0);
    assert_eq!(sample(&text, "nhigov_decisions_total{outcome=\"approved\"}"), Some(1.0));
    assert_eq!(sample(&text, "nhigov_decisions_total{outcome=\"refused\"}"), Some(1.0));
    assert_eq!(sample(&text, "nhigov_sod_refusals_total{rule=\"requester_cannot_approve\"}"), Some(1.0));
    assert_eq!(sample(&text, "nhigov_cases_open"), Some(0.0));
    assert_eq!(sample(&text, "nhigov_up"), Some(1.0));
    assert!(text.contains("# TYPE nhigov_graphql_request_duration_seconds histogram"));
}

#[tokio::test]
async fn a_configured_token_guards_the_metrics() {
    let mut cfg = nhigov::config::Config::default();
    cfg.metrics.token = Some("scrape-me".into());
    let s = TestServer::start_with(cfg).await;
    assert_eq!(scrape(&s, None).await.0, 401);
    assert_eq!(scrape(&s, Some("wrong")).await.0, 401);
    let (status, text) = scrape(&s, Some("scrape-me")).await;
    assert_eq!(status, 200);
    assert!(text.contains("nhigov_up 1"));
}
