//! Every kind of bad request is answered at once with a stable code (a 4xx for a bad
//! HTTP request; for a GraphQL request error, 200 under `application/json` and 400 under
//! `application/graphql-response+json`, as the GraphQL-over-HTTP specification asks), and the
//! server goes on answering.

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

async fn post_raw(s: &TestServer, token: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = s
        .http
        .post(s.url("/graphql"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// After a bad request, the server still serves a good one.
async fn still_serving(s: &TestServer, token: &str) {
    assert!(s.healthy().await);
    let data = s.ok(token, "{ me { email } }", json!({})).await;
    assert_eq!(data["me"]["email"], "admin@test.example");
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    for body in ["{\"query\": ", "not json", "[]", "{\"variables\": {}}", "{\"query\": 42}"] {
        let (status, resp) = post_raw(&s, &t, "application/json", body).await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert!(["BAD_REQUEST", "BATCH_TOO_LARGE"].contains(&code(&resp)), "{body}: {resp}");
    }
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn wrong_content_types_are_refused_without_executing() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let mutation = "mutation { createTeam(input: {name: \"csrf\"}) { id } }";
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let (status, resp) = post_raw(&s, &t, ct, json!({ "query": mutation }).to_string()).await;
        assert_eq!(status, 415, "{ct}");
        assert_eq!(code(&resp), "UNSUPPORTED_MEDIA_TYPE");
    }
    let teams = s.ok(&t, "{ teams { totalCount } }", json!({})).await;
    assert_eq!(teams["teams"]["totalCount"], 0, "no refused request may have executed");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let huge = json!({ "query": format!("{{ me {{ email }} }} # {}", "x".repeat(2 * 1024 * 1024)) }).to_string();
    let (status, resp) = post_raw(&s, &t, "application/json", huge).await;
    assert_eq!(status, 413);
    assert_eq!(code(&resp), "PAYLOAD_TOO_LARGE");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn a_huge_string_argument_is_refused_as_bad_input() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let (status, body) = s
        .gql(
            &t,
            "mutation($n: String!) { createTeam(input: { name: $n }) { id } }",
            json!({ "n": "x".repeat(500_000) }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "name");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn deeply_nested_list_literals_do_not_crash_the_parser() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let depth = 100_000;
    let query = format!("{{ node(id: {}\"x\"{}) {{ id }} }}", "[".repeat(depth), "]".repeat(depth));
    let (status, resp) = post_raw(&s, &t, "application/json", json!({ "query": query }).to_string()).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(code(&resp), "QUERY_TOO_COMPLEX");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn deeply_nested_object_literals_do_not_crash_the_parser() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let depth = 50_000;
    let query = format!("{{ nhis(filter: {}) {{ totalCount }} }}", "{a: ".repeat(depth) + "1" + &"}".repeat(depth));
    let (status, resp) = post_raw(&s, &t, "application/json", json!({ "query": query }).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(code(&resp), "QUERY_TOO_COMPLEX");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn deeply_nested_variables_are_refused() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let depth = 100_000;
    let body = format!(
        "{{\"query\": \"query($v: String) {{ me {{ email }} }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (status, resp) = post_raw(&s, &t, "application/json", body).await;
    assert_eq!(status, 400);
    assert_eq!(code(&resp), "BAD_REQUEST");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn queries_that_nest_too_deep_are_refused() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let mut q = String::from("id");
    for _ in 0..20 {
        q = format!("teams {{ members {{ edges {{ node {{ {q} }} }} }} }}");
    }
    let (status, body) = s.gql(&t, &format!("{{ me {{ {q} }} }}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn queries_over_the_complexity_limit_are_refused() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let fields: String = (0..2100).map(|_| "email ").collect();
    let (status, body) = s.gql(&t, &format!("{{ me {{ {fields} }} }}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn too_many_aliases_are_refused() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let fields: String = (0..100).map(|i| format!("a{i}: me {{ email }} ")).collect();
    let (status, body) = s.gql(&t, &format!("{{ {fields} }}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("aliases"));
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn batches_are_bounded() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let one = json!({ "query": "{ me { email } }" });
    let (status, resp) = post_raw(&s, &t, "application/json", json!([one.clone(), one.clone()]).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(resp.as_array().map(Vec::len), Some(2));
    let many: Vec<Value> = (0..11).map(|_| one.clone()).collect();
    let (status, resp) = post_raw(&s, &t, "application/json", json!(many).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(code(&resp), "BATCH_TOO_LARGE");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn a_syntax_error_is_a_parse_failure() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let (status, body) = s.gql(&t, "{ me { email ", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED");
    let (status, body) = s.gql(&t, "{ me { shoeSize } }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn get_runs_queries_but_refuses_mutations() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let resp =
        s.http.get(s.url("/graphql")).bearer_auth(&t).query(&[("query", "{ me { email } }")]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = s
        .http
        .get(s.url("/graphql"))
        .bearer_auth(&t)
        .query(&[("query", "mutation { createTeam(input: {name: \"via-get\"}) { id } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let teams = s.ok(&t, "{ teams { totalCount } }", json!({})).await;
    assert_eq!(teams["teams"]["totalCount"], 0);
    still_serving(&s, &t).await;
}

#[tokio::test]
async fn an_unacceptable_accept_header_is_refused() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    let resp = s
        .http
        .post(s.url("/graphql"))
        .bearer_auth(&t)
        .header("accept", "text/html")
        .json(&json!({ "query": "{ me { email } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    let resp = s
        .http
        .post(s.url("/graphql"))
        .bearer_auth(&t)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ me { email } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/graphql-response+json"));
}

#[tokio::test]
async fn unknown_paths_and_methods_get_coded_errors() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = s.http.delete(s.url("/graphql")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn graphql_request_errors_are_400_for_graphql_response_json_and_200_for_json() {
    let s = TestServer::start().await;
    let t = s.admin().await;
    for (doc, expected) in
        [("{ me { email ", "GRAPHQL_PARSE_FAILED"), ("{ me { shoeSize } }", "GRAPHQL_VALIDATION_FAILED")]
    {
        for (accept, status) in [("application/graphql-response+json", 400), ("application/json", 200)] {
            let resp = s
                .http
                .post(s.url("/graphql"))
                .bearer_auth(&t)
                .header("accept", accept)
                .json(&json!({ "query": doc }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), status, "{doc} as {accept}");
            assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(accept));
            let body: Value = resp.json().await.unwrap();
            assert_eq!(code(&body), expected);
            assert!(body.get("data").is_none(), "no data on a request error");
        }
    }
}
