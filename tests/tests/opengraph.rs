//! BloodHound OpenGraph in: the sample collector output in `fixtures/opengraph/` is
//! imported, its edges matched by id and by name, what maps to nothing reported, and the
//! result walked like any inventory.

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

const IMPORT: &str = "mutation($d: JSON!) { importOpenGraph(document: $d) { nodes edges skipped ids { ref id } } }";

fn sample() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/opengraph/github.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn an_opengraph_collector_output_imports_and_can_be_walked() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let d = s.ok(&admin, IMPORT, json!({ "d": sample() })).await["importOpenGraph"].clone();
    assert_eq!((d["nodes"].as_u64(), d["edges"].as_u64()), (Some(7), Some(7)), "{d}");
    let skipped: Vec<&str> = d["skipped"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].starts_with("graph.nodes[7] (X_6006)"), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("`Contains`")), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("X_6006") && s.starts_with("graph.edges[8]")), "{skipped:?}");

    let id = |r: &str| {
        d["ids"].as_array().unwrap().iter().find(|i| i["ref"] == r).unwrap()["id"].as_str().unwrap().to_owned()
    };
    // The app is an NHI of GitHub, owned through the team the user is in.
    let nhi = s
        .ok(
            &admin,
            "query($i: ID!) { node(id: $i) { ... on Nhi { kind provider externalId environment owners { ... on Team { name } } } } }",
            json!({ "i": id("A_1001") }),
        )
        .await;
    assert_eq!(
        nhi["node"],
        json!({ "kind": "SERVICE_ACCOUNT", "provider": "GitHub", "externalId": "A_1001", "environment": "PRODUCTION",
                "owners": [{ "name": "payments-platform" }] })
    );
    // Its blast radius reaches the repository (written) and the organisation (admin).
    let br = s
        .ok(
            &admin,
            "query($i: ID!) { blastRadius(from: $i, maxHops: 2) { reached { node { ... on System { name } } } } }",
            json!({ "i": id("A_1001") }),
        )
        .await;
    let mut names: Vec<String> = br["blastRadius"]["reached"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["node"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names, ["corp-github", "payments-api"]);
}

#[tokio::test]
async fn a_document_that_is_not_opengraph_is_refused_and_nothing_is_written() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let (_, body) = s.gql(&admin, IMPORT, json!({ "d": { "nodes": [] } })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // A mapped node with a bad field fails the whole import, naming the node by its id.
    let bad = json!({ "graph": { "nodes": [
        { "id": "ok", "kinds": ["GHRepository"], "properties": { "name": "fine" } },
        { "id": "bad", "kinds": ["GHRepository"], "properties": { "name": "x", "criticality": "tier9" } }
    ] } });
    let (_, body) = s.gql(&admin, IMPORT, json!({ "d": bad })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.to_string().contains("bad"), "{body}");
    let d = s.ok(&admin, "{ systems { totalCount } }", json!({})).await;
    assert_eq!(d["systems"]["totalCount"], 0);
}
