//! A refreshed inventory matches what is stored: nodes by natural key, open edges kept,
//! and a source's absent edges closed only by a run that says it is complete.

use chrono::Utc;
use graph_model::Text;
use graph_model::inventory::Inventory;
use graph_model::store::{ImportSummary, Store, StoreConfig, StoreError};
use serde_json::{Value, json};

/// A collector's view: a person owning a service account that holds a key to a
/// database, and `extra` more service accounts that can read it.
fn feed(extra: usize, privilege: &str, complete: bool) -> Value {
    let mut nodes = vec![
        json!({ "type": "person", "ref": "ana", "name": "Ana", "email": "ana@feed.example" }),
        json!({ "type": "system", "ref": "db", "name": "orders-db", "kind": "database",
                "environment": "production", "criticality": "tier1" }),
        json!({ "type": "nhi", "ref": "svc", "name": "orders-api", "kind": "service_account",
                "provider": "aws", "external_id": "arn:aws:iam::1:role/orders", "environment": "production" }),
        json!({ "type": "secret", "ref": "key", "name": "orders key", "kind": "api_key",
                "fingerprint": "fp-orders-key-0001", "last_rotated_at": "2026-01-01T00:00:00Z" }),
    ];
    let mut edges = vec![
        json!({ "type": "owns", "from": "ana", "to": "svc" }),
        json!({ "type": "holds", "from": "svc", "to": "key" }),
        json!({ "type": "can_access", "from": "svc", "to": "db", "privilege": privilege }),
    ];
    for i in 0..extra {
        nodes.push(json!({ "type": "nhi", "ref": format!("r{i}"), "name": format!("reader-{i}"),
            "kind": "service_account", "provider": "aws", "external_id": format!("arn:aws:iam::1:role/r{i}"),
            "environment": "production" }));
        edges.push(json!({ "type": "can_access", "from": format!("r{i}"), "to": "db", "privilege": "read" }));
    }
    json!({ "source": "aws-collector", "complete": complete, "nodes": nodes, "edges": edges })
}

async fn import(store: &Store, doc: &Value) -> Result<ImportSummary, StoreError> {
    let inv = Inventory::parse(doc, Utc::now()).expect("the document is valid");
    store.import(&inv).await
}

async fn count(store: &Store, sql: &str) -> u64 {
    store.execute_raw(&format!("RETURN count({sql});")).await.unwrap().as_u64().unwrap()
}

async fn open_can_access(store: &Store) -> u64 {
    count(store, "SELECT VALUE id FROM can_access WHERE valid_to = NONE").await
}

#[tokio::test]
async fn importing_the_same_document_twice_matches_everything_and_writes_no_duplicates() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let first = import(&store, &feed(2, "read", false)).await.unwrap();
    assert_eq!((first.nodes, first.nodes_updated, first.edges, first.edges_kept), (6, 0, 5, 0));
    let second = import(&store, &feed(2, "read", false)).await.unwrap();
    assert_eq!((second.nodes, second.nodes_updated), (0, 6), "every node matched by its natural key");
    assert_eq!((second.edges, second.edges_kept, second.edges_closed), (0, 5, 0));
    assert_eq!(first.ids, second.ids, "refs resolve to the ids stored the first time");
    assert_eq!(count(&store, "SELECT VALUE id FROM nhi").await, 3);
    assert_eq!(count(&store, "SELECT VALUE id FROM person").await, 1);
    assert_eq!(count(&store, "SELECT VALUE id FROM can_access").await, 3);
}

#[tokio::test]
async fn a_refresh_updates_descriptions_and_replaces_a_changed_edge_keeping_its_history() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    import(&store, &feed(0, "read", false)).await.unwrap();
    let mut doc = feed(0, "admin", false);
    doc["nodes"][3]["last_rotated_at"] = json!("2026-11-01T00:00:00Z");
    let s = import(&store, &doc).await.unwrap();
    assert_eq!((s.nodes_updated, s.edges, s.edges_kept, s.edges_closed), (4, 1, 2, 1));
    let rotated = store
        .execute_raw("RETURN (SELECT VALUE last_rotated_at FROM secret WHERE fingerprint = 'fp-orders-key-0001')[0];")
        .await
        .unwrap();
    assert!(rotated.as_str().unwrap().starts_with("2026-11-01"), "rotation date refreshed: {rotated}");
    // The read grant is closed, not deleted; the admin grant is open.
    let rows = store
        .execute_raw("SELECT privilege, valid_to != NONE AS closed FROM can_access ORDER BY privilege;")
        .await
        .unwrap();
    assert_eq!(rows, json!([{ "privilege": "admin", "closed": false }, { "privilege": "read", "closed": true }]));
}

#[tokio::test]
async fn a_partial_run_never_closes_what_it_missed_and_a_complete_run_closes_only_its_own_edges() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    import(&store, &feed(3, "read", false)).await.unwrap();
    assert_eq!(open_can_access(&store).await, 4);
    // An edge another way: opened through the API, not by the collector.
    let ids = import(&store, &feed(0, "read", false)).await.unwrap().ids;
    let svc = ids.iter().find(|(r, _)| r == "svc").unwrap().1.clone();
    let other = store
        .create_node(&graph_model::inventory::NodeSpec::System(graph_model::NewSystem {
            kind: graph_model::SystemKind::Database,
            name: graph_model::Name::parse("billing-db").unwrap(),
            environment: graph_model::Environment::Production,
            criticality: graph_model::Criticality::Tier2,
            description: None,
        }))
        .await
        .unwrap();
    store
        .relate(&graph_model::NewEdge {
            kind: graph_model::EdgeKind::CanAccess,
            from: svc,
            to: other.id().clone(),
            attrs: graph_model::EdgeAttrs { privilege: Some(graph_model::Privilege::Read), ..Default::default() },
        })
        .await
        .unwrap();
    assert_eq!(open_can_access(&store).await, 5);

    // The collector saw only one of the three readers and did not finish: nothing closes.
    let partial = import(&store, &feed(1, "read", false)).await.unwrap();
    assert_eq!(partial.edges_closed, 0);
    assert_eq!(open_can_access(&store).await, 5);

    // The same view from a run that says it is complete closes the two readers it no
    // longer holds, and leaves the API's edge alone.
    let complete = import(&store, &feed(1, "read", true)).await.unwrap();
    assert_eq!((complete.edges_kept, complete.edges_closed), (4, 2));
    assert_eq!(open_can_access(&store).await, 3);
    let closed =
        store.execute_raw("SELECT VALUE in.external_id FROM can_access WHERE valid_to != NONE;").await.unwrap();
    let mut closed: Vec<String> = serde_json::from_value(closed).unwrap();
    closed.sort();
    assert_eq!(closed, ["arn:aws:iam::1:role/r1", "arn:aws:iam::1:role/r2"]);
    let billing =
        count(&store, "SELECT VALUE id FROM can_access WHERE out.name = 'billing-db' AND valid_to = NONE").await;
    assert_eq!(billing, 1, "an edge the source did not open is not the source's to close");
}

#[tokio::test]
async fn a_refresh_does_not_change_a_persons_roles_and_an_ambiguous_name_is_refused() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = json!({ "nodes": [
        { "type": "person", "ref": "ana", "name": "Ana", "email": "ana@feed.example", "roles": ["viewer"] },
        { "type": "team", "ref": "t1", "name": "Platform" },
        { "type": "team", "ref": "t2", "name": "Platform team" } ] });
    store.bootstrap(&doc, Utc::now(), &Text::parse("first roles").unwrap()).await.unwrap();
    let refresh = json!({ "nodes": [
        { "type": "person", "ref": "ana", "name": "Ana Lopes", "email": "ana@feed.example", "active": false } ] });
    let s = import(&store, &refresh).await.unwrap();
    assert_eq!(s.nodes_updated, 1);
    let person = store
        .execute_raw("SELECT name, roles, active FROM ONLY person WHERE email = 'ana@feed.example' LIMIT 1;")
        .await
        .unwrap();
    assert_eq!(
        person,
        json!({ "name": "Ana Lopes", "roles": ["viewer"], "active": true }),
        "roles and activity change by decision, never by a feed"
    );
    let granting = json!({ "nodes": [
        { "type": "person", "ref": "ana", "name": "Ana", "email": "ana@feed.example", "roles": ["admin"] } ] });
    let errors = Inventory::parse(&granting, Utc::now()).unwrap_err();
    assert_eq!((errors[0].item.as_str(), errors[0].field.as_deref()), ("nodes[0]", Some("roles")));

    // Two stored teams of one name: a document naming it cannot say which it means.
    store.execute_raw("UPDATE team SET name = 'Platform';").await.unwrap();
    let doc = json!({ "nodes": [ { "type": "team", "ref": "p", "name": "Platform" } ] });
    match import(&store, &doc).await {
        Err(StoreError::Import(items)) => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].item, "nodes[0]");
            assert!(items[0].message.contains("2 stored teams"), "{}", items[0].message);
        }
        other => panic!("expected an item fault, got {other:?}"),
    }
    assert_eq!(count(&store, "SELECT VALUE id FROM team").await, 2, "nothing was written");
}

#[test]
fn a_complete_run_must_name_its_source() {
    let doc = json!({ "complete": true, "nodes": [] });
    let errors = Inventory::parse(&doc, Utc::now()).unwrap_err();
    assert_eq!(errors[0].field.as_deref(), Some("complete"));
}
