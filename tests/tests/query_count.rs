//! A page of NHIs with their owners and secrets costs a constant number of database
//! round trips, whatever the page size: the batch loaders at work. Run below HTTP,
//! against the schema, counting the store's round trips.

use async_graphql::Request;
use chrono::Utc;
use graph_model::store::{Store, StoreConfig};
use nhigov_schema::{Deps, EventBus, Principal, QueryLimits, build_schema};
use serde_json::json;

const PAGE: &str = "query($n: Int!) { nhis(first: $n) { totalCount edges { node {
    name owners { name } secrets { name heldBy { name } } access { privilege system { name } } } } } }";

/// A store holding `n` NHIs, each owned by a person and a team, holding two secrets
/// and able to access a system.
async fn store_with(n: usize) -> (Store, Principal) {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let mut nodes = vec![
        json!({ "type": "person", "ref": "viewer", "name": "Viewer", "email": "viewer@test.example", "roles": ["viewer"] }),
        json!({ "type": "team", "ref": "team", "name": "Platform" }),
        json!({ "type": "system", "ref": "sys", "kind": "database", "name": "db", "environment": "production" }),
    ];
    let mut edges = Vec::new();
    for i in 0..n {
        nodes.push(json!({ "type": "person", "ref": format!("p{i}"), "name": format!("Owner {i}"), "email": format!("o{i}@test.example") }));
        nodes.push(json!({ "type": "nhi", "ref": format!("n{i}"), "kind": "token", "name": format!("nhi-{i}"), "environment": "production" }));
        for j in 0..2 {
            nodes.push(json!({ "type": "secret", "ref": format!("s{i}-{j}"), "kind": "token", "name": format!("secret-{i}-{j}"), "fingerprint": format!("{i:08}{j:08}") }));
            edges.push(json!({ "type": "holds", "from": format!("n{i}"), "to": format!("s{i}-{j}") }));
        }
        edges.push(json!({ "type": "owns", "from": format!("p{i}"), "to": format!("n{i}") }));
        edges.push(json!({ "type": "owns", "from": "team", "to": format!("n{i}") }));
        edges.push(json!({ "type": "can_access", "from": format!("n{i}"), "to": "sys", "privilege": "read" }));
    }
    let why = graph_model::Text::parse("first roles").unwrap();
    store.bootstrap(&json!({ "nodes": nodes, "edges": edges }), Utc::now(), &why).await.unwrap();
    let viewer =
        store.person_by_email(&graph_model::Email::parse("viewer@test.example").unwrap()).await.unwrap().unwrap();
    (store, Principal::person(viewer))
}

async fn round_trips_for_page(n: usize) -> u64 {
    let (store, principal) = store_with(n).await;
    let schema = build_schema(Deps {
        store: store.clone(),
        events: EventBus::default(),
        limits: QueryLimits::default(),
        sla: graph_model::SlaHours::default(),
        graph: Default::default(),
        batch_window: WINDOW,
    });
    let before = store.round_trips();
    let resp = schema
        .execute(Request::new(PAGE).variables(async_graphql::Variables::from_json(json!({ "n": n }))).data(principal))
        .await;
    let used = store.round_trips() - before;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let data = resp.data.into_json().unwrap();
    let edges = data["nhis"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), n);
    for e in edges {
        assert_eq!(e["node"]["owners"].as_array().unwrap().len(), 2, "a person and a team");
        assert_eq!(e["node"]["secrets"].as_array().unwrap().len(), 2);
        assert_eq!(e["node"]["access"][0]["system"]["name"], "db");
    }
    used
}

/// The loaders' batch window in this test. The server's is a few milliseconds, which a
/// resolver on a loaded machine (the rest of the suite runs beside this test on two
/// cores) can miss, splitting its level's batch in two; a window far longer than any
/// level takes to resolve makes the count a property of the loaders alone.
const WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

#[tokio::test]
async fn a_page_of_nhis_with_relations_costs_constant_round_trips() {
    // The page query, one per relation kind (owns, holds, can_access, holds reversed),
    // and the nodes at their far ends, batched by level.
    const BOUND: u64 = 10;
    let small = round_trips_for_page(5).await;
    let large = round_trips_for_page(100).await;
    println!("round trips: page of 5 = {small}, page of 100 = {large}");
    assert!(small <= BOUND && large <= BOUND, "small {small}, large {large}");
    assert_eq!(small, large, "a page 20 times longer may not cost more queries");
}
