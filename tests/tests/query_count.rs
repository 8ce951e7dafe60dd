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
    let schema = schema_over(&store);
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

fn schema_over(store: &Store) -> nhigov_schema::NhigovSchema {
    build_schema(Deps {
        store: store.clone(),
        events: EventBus::default(),
        limits: QueryLimits::default(),
        sla: graph_model::SlaHours::default(),
        graph: Default::default(),
        batch_window: WINDOW,
    })
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

#[tokio::test]
async fn a_decision_asked_for_alone_leaves_the_request_unread() {
    // A burst of approvals that asks for the decision alone saves the read of the request
    // after each; a caller that asks for the request reads it as it stands after.
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = json!({
        "nodes": [
            { "type": "person", "ref": "req", "name": "Requester", "email": "req@test.example", "roles": ["investigator"] },
            { "type": "person", "ref": "ap", "name": "Approver", "email": "ap@test.example", "roles": ["approver"] },
            { "type": "person", "ref": "own", "name": "Owner", "email": "own@test.example" },
            { "type": "nhi", "ref": "bot", "kind": "token", "name": "bot", "environment": "production" },
            { "type": "system", "ref": "wiki", "kind": "saas", "name": "wiki", "environment": "production", "criticality": "tier3" }
        ],
        "edges": [{ "type": "owns", "from": "own", "to": "bot" }]
    });
    let why = graph_model::Text::parse("first roles").unwrap();
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &why).await.unwrap();
    let ids: std::collections::HashMap<String, graph_model::NodeId> = summary.ids.into_iter().collect();
    let approver =
        store.person_by_email(&graph_model::Email::parse("ap@test.example").unwrap()).await.unwrap().unwrap();
    let schema = schema_over(&store);
    let decide = |selection: &'static str| {
        let (store, schema, principal, ids) =
            (store.clone(), schema.clone(), Principal::person(approver.clone()), ids.clone());
        async move {
            let new = graph_model::NewRequest {
                target: Some(ids["wiki"].clone()),
                privilege: Some(graph_model::Privilege::Read),
                duration_days: Some(30),
                ..graph_model::NewRequest::new(
                    graph_model::RequestKind::GrantAccess,
                    ids["bot"].clone(),
                    graph_model::Text::parse("the wiki's search").unwrap(),
                )
            };
            let filed = store.create_request(&ids["req"], &new).await.unwrap();
            let query = format!(
                "mutation($r: ID!) {{ decideRequest(id: $r, outcome: APPROVE, rationale: \"ok\") {{ {selection} }} }}"
            );
            let vars = async_graphql::Variables::from_json(json!({ "r": filed.id.to_string() }));
            // The commit's probes of the chain head are left out: how many it makes
            // follows how the threads were scheduled (a loaded machine makes more).
            let count = |s: &Store| s.round_trips() - s.commit_probes();
            let before = count(&store);
            let resp = schema.execute(Request::new(query).variables(vars).data(principal)).await;
            let used = count(&store) - before;
            assert!(resp.errors.is_empty(), "{:?}", resp.errors);
            let data = resp.data.into_json().unwrap();
            assert_eq!(data["decideRequest"]["decision"]["outcome"], "APPROVED", "{data}");
            (used, data, store.request(&filed.id).await.unwrap())
        }
    };
    let (alone, _, _) = decide("decision { outcome }").await;
    let (with_request, data, stored) = decide("decision { outcome } request { status }").await;
    println!("round trips: the decision alone {alone}, with the request {with_request}");
    assert_eq!(with_request, alone + 1, "the request is read once, and only when asked for");
    assert_eq!(data["decideRequest"]["request"]["status"], stored.status.as_str().to_uppercase(), "{data}");
}
