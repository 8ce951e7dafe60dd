//! Bulk loads: batched, several batches side by side, checked before anything is
//! written, and resumable with exactly the batches not stored.

use std::ops::ControlFlow;

use chrono::Utc;
use graph_model::inventory::Inventory;
use graph_model::store::{BulkLoad, Store, StoreConfig, StoreError};
use serde_json::{Value, json};

/// People, NHIs, secrets, a system, and edges between them: `n` of each node kind.
fn document(n: usize) -> Value {
    let mut nodes = vec![json!({ "type": "system", "ref": "db", "name": "db", "kind": "database",
        "environment": "production", "criticality": "tier1" })];
    let mut edges = Vec::new();
    for i in 0..n {
        nodes.push(json!({ "type": "person", "ref": format!("p{i}"), "name": format!("p {i}"),
            "email": format!("p{i}@bulk.example") }));
        nodes.push(
            json!({ "type": "nhi", "ref": format!("n{i}"), "name": format!("svc-{i}"), "kind": "service_account",
            "provider": "aws", "environment": "production" }),
        );
        nodes.push(json!({ "type": "secret", "ref": format!("s{i}"), "name": format!("key {i}"), "kind": "api_key",
            "fingerprint": format!("fp-{i:04}-bulk-test") }));
        edges.push(json!({ "type": "owns", "from": format!("p{i}"), "to": format!("n{i}") }));
        edges.push(json!({ "type": "holds", "from": format!("n{i}"), "to": format!("s{i}") }));
        edges.push(json!({ "type": "authenticates_to", "from": format!("s{i}"), "to": "db" }));
    }
    json!({ "nodes": nodes, "edges": edges })
}

/// Batches of `batch`, `parallel` side by side.
fn load(batch: usize, parallel: usize) -> BulkLoad {
    BulkLoad { batch, parallel }
}

async fn count(store: &Store, table: &str) -> u64 {
    let v = store.execute_raw(&format!("RETURN count(SELECT VALUE id FROM {table});")).await.unwrap();
    v.as_u64().unwrap()
}

#[tokio::test]
async fn a_stopped_load_resumes_after_its_last_batch_with_the_same_ids() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = document(10); // 31 nodes, 30 edges
    let digest = graph_model::sha256_hex(doc.to_string().as_bytes());
    let parsed_at = Utc::now();
    let inv = Inventory::parse_keyed(&doc, parsed_at, Some(&digest)).unwrap();
    assert_eq!((inv.nodes.len(), inv.edges.len()), (31, 30));

    // Stop after two batches of 8, one at a time.
    let mut seen = Vec::new();
    let first = store
        .import_bulk(&digest, "doc.json", parsed_at, &inv, load(8, 1), |p| {
            seen.push((p.batch, p.batches, p.nodes, p.edges));
            if p.batch == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    assert!(first.stopped);
    assert_eq!((first.done, first.batches, first.nodes, first.edges), (2, 8, 16, 0));
    assert_eq!(seen, vec![(1, 8, 8, 0), (2, 8, 16, 0)]);
    let run = store.import_run(&digest).await.unwrap().expect("run recorded");
    assert_eq!((run.done, run.batches, run.batch_size), (2, 8, 8));
    assert!(run.finished_at.is_none());
    let stored = count(&store, "person").await + count(&store, "nhi").await + count(&store, "secret").await;
    assert_eq!(stored + count(&store, "system").await, 16, "exactly the first two batches are stored");

    // Parsed again under the same digest and clock, as `nhigov import` does on a rerun:
    // same ids, so edges of later batches find the nodes of earlier ones. A different
    // batch size asked for now is ignored in favour of the run's.
    let again = Inventory::parse_keyed(&doc, run.parsed_at, Some(&digest)).unwrap();
    assert_eq!(
        again.nodes.iter().map(|n| &n.id).collect::<Vec<_>>(),
        inv.nodes.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    let rest = store
        .import_bulk(&digest, "doc.json", run.parsed_at, &again, load(100, 2), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!((rest.resumed_at, rest.done, rest.nodes, rest.edges, rest.stopped), (2, 8, 15, 30, false));
    for (table, n) in [
        ("person", 10),
        ("nhi", 10),
        ("secret", 10),
        ("system", 1),
        ("owns", 10),
        ("holds", 10),
        ("authenticates_to", 10),
    ] {
        assert_eq!(count(&store, table).await, n, "{table}");
    }
    assert!(store.import_run(&digest).await.unwrap().unwrap().finished_at.is_some());

    // The whole graph is walkable: every NHI reaches the db through its key.
    let n0 = &inv.nodes.iter().find(|n| n.reference == "n0").unwrap().id;
    let t = store.traverse(n0, graph_model::graph::Direction::Forward, 2, 100, None).await.unwrap().unwrap();
    assert_eq!(t.reached.len(), 2);
}

#[tokio::test]
async fn a_load_that_fails_its_checks_writes_nothing_and_names_the_item() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let first = document(3);
    let d1 = graph_model::sha256_hex(first.to_string().as_bytes());
    let now = Utc::now();
    let inv = Inventory::parse_keyed(&first, now, Some(&d1)).unwrap();
    store.import_bulk(&d1, "a.json", now, &inv, load(4, 2), |_| ControlFlow::Continue(())).await.unwrap();

    // A second document reusing an e-mail deep in its last batch.
    let mut second = document(6);
    second["nodes"][16]["email"] = json!("p0@bulk.example");
    for (i, n) in second["nodes"].as_array_mut().unwrap().iter_mut().enumerate() {
        if n["type"] == "secret" {
            n["fingerprint"] = json!(format!("fp-second-{i:04}"));
        }
        if n["type"] == "person" && i != 16 {
            n["email"] = json!(format!("second{i}@bulk.example"));
        }
    }
    let d2 = graph_model::sha256_hex(second.to_string().as_bytes());
    let inv2 = Inventory::parse_keyed(&second, now, Some(&d2)).unwrap();
    let before = count(&store, "person").await;
    let err =
        store.import_bulk(&d2, "b.json", now, &inv2, load(4, 2), |_| ControlFlow::Continue(())).await.unwrap_err();
    let StoreError::Import(items) = err else { panic!("expected item errors, got {err:?}") };
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].item.as_str(), items[0].field.as_deref()), ("nodes[16]", Some("email")));
    assert_eq!(count(&store, "person").await, before, "nothing written");
    assert!(store.import_run(&d2).await.unwrap().is_none(), "no run begun");
}

/// Every table a document of `document(n)` fills, with its count.
async fn counts(store: &Store) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for table in ["person", "nhi", "secret", "system", "owns", "holds", "authenticates_to"] {
        out.push((table.to_owned(), count(store, table).await));
    }
    out
}

#[tokio::test]
async fn batches_side_by_side_store_every_edge_after_its_ends_and_a_stop_resumes_with_the_rest() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    // 121 nodes, 120 edges: 25 batches of 10, 13 holding nodes (the last edges too).
    // The edges come last node first, so the first batches of edges need the last
    // batches of nodes.
    let mut doc = document(40);
    doc["edges"].as_array_mut().unwrap().reverse();
    let digest = graph_model::sha256_hex(doc.to_string().as_bytes());
    let parsed_at = Utc::now();
    let inv = Inventory::parse_keyed(&doc, parsed_at, Some(&digest)).unwrap();

    // Four side by side, stopped at the first stored batch: those in flight are stored
    // too, and nothing else.
    let mut heard = Vec::new();
    let first = store
        .import_bulk(&digest, "doc.json", parsed_at, &inv, load(10, 4), |p| {
            heard.push(p.batch);
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert!(first.stopped);
    assert!((1..=4).contains(&first.done), "at most the four batches begun are stored: {}", first.done);
    assert_eq!(heard, (1..=first.done).collect::<Vec<_>>(), "told of each stored batch");
    let stored: u64 = counts(&store).await.iter().map(|(_, n)| n).sum();
    assert_eq!(stored as usize, first.nodes + first.edges, "the store holds exactly the batches reported");
    let run = store.import_run(&digest).await.unwrap().expect("run recorded");
    assert_eq!((run.done, run.batches), (first.done, 25));
    assert!(run.finished_at.is_none());

    // Resumed with every batch allowed at once: the edge batches wait for the node
    // batches, so none fails on a missing end; the result is the whole document, each
    // item once.
    let again = Inventory::parse_keyed(&doc, run.parsed_at, Some(&digest)).unwrap();
    let rest = store
        .import_bulk(&digest, "doc.json", run.parsed_at, &again, load(10, 25), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!((rest.resumed_at, rest.done, rest.stopped), (first.done, 25, false));
    assert_eq!((first.nodes + rest.nodes, first.edges + rest.edges), (121, 120));
    let expected: Vec<(String, u64)> = [
        ("person", 40),
        ("nhi", 40),
        ("secret", 40),
        ("system", 1),
        ("owns", 40),
        ("holds", 40),
        ("authenticates_to", 40),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(counts(&store).await, expected);
    let run = store.import_run(&digest).await.unwrap().unwrap();
    assert_eq!(run.done, 25);
    assert!(run.finished_at.is_some());

    // Loading it again writes nothing.
    let third = store
        .import_bulk(&digest, "doc.json", run.parsed_at, &again, load(10, 4), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!((third.nodes, third.edges, third.done), (0, 0, 25));
    assert_eq!(counts(&store).await, expected);
}

#[tokio::test]
async fn a_load_begun_by_a_version_that_counted_its_batches_resumes_after_them() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = document(10);
    let digest = graph_model::sha256_hex(doc.to_string().as_bytes());
    let parsed_at = Utc::now();
    let inv = Inventory::parse_keyed(&doc, parsed_at, Some(&digest)).unwrap();
    let first = store
        .import_bulk(&digest, "doc.json", parsed_at, &inv, load(8, 1), |p| {
            if p.batch == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    assert_eq!(first.done, 3);
    // As an earlier version left it: the run counts three batches, no batch is marked.
    store
        .execute_raw(&format!("DELETE import_batch; UPDATE import_run:`{digest}` SET done = 3 RETURN NONE;"))
        .await
        .unwrap();
    assert_eq!(store.import_run(&digest).await.unwrap().unwrap().done, 3);
    let rest = store
        .import_bulk(&digest, "doc.json", parsed_at, &inv, load(8, 2), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!((rest.resumed_at, rest.done, first.nodes + rest.nodes, first.edges + rest.edges), (3, 8, 31, 30));
    assert_eq!(count(&store, "holds").await, 10);
}

/// A bulk load writes its edges without the engine's own checks (see `Ends::Checked`):
/// what those checks and the fields' clauses would have given must be there all the
/// same, and the indexes must be kept, the unique open key first.
#[tokio::test]
async fn bulk_edges_carry_their_stamps_and_keep_their_indexes() {
    use graph_model::domain::{EdgeAttrs, EdgeKind, NewEdge};
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = document(6); // 19 nodes, 18 edges
    let digest = graph_model::sha256_hex(doc.to_string().as_bytes());
    let before = Utc::now();
    let inv = Inventory::parse_keyed(&doc, before, Some(&digest)).unwrap();
    store.import_bulk(&digest, "doc.json", before, &inv, load(5, 2), |_| ControlFlow::Continue(())).await.unwrap();
    let after = Utc::now();

    for table in ["owns", "holds", "authenticates_to"] {
        let unstamped = store
            .execute_raw(&format!(
                "RETURN count(SELECT VALUE id FROM {table} WHERE changed_at = NONE OR created_at = NONE OR valid_from = NONE);"
            ))
            .await
            .unwrap();
        assert_eq!(unstamped.as_u64(), Some(0), "{table}: every edge stamped");
        // Read through the change index, as the graph index and the controls look for
        // what changed.
        let since = store
            .execute_raw(&format!(
                "RETURN count(SELECT VALUE id FROM {table} WITH INDEX {table}_changed WHERE changed_at >= d'{}' AND changed_at <= d'{}');",
                before.to_rfc3339(),
                after.to_rfc3339()
            ))
            .await
            .unwrap();
        assert_eq!(since.as_u64(), Some(6), "{table}: every edge found by its change stamp");
    }

    // The open key's unique index holds the bulk edges: a second open edge between the
    // same two nodes is refused.
    let id = |r: &str| inv.nodes.iter().find(|n| n.reference == r).unwrap().id.clone();
    let again = NewEdge::parse(EdgeKind::Owns, id("p3"), id("n3"), EdgeAttrs::default()).unwrap();
    let err = store.relate(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "expected a conflict, got {err:?}");
    let unique = store
        .execute_raw(&format!(
            "INSERT RELATION INTO owns {{ in: {}, out: {}, open_key: (SELECT VALUE open_key FROM owns LIMIT 1)[0] }};",
            id("p4"),
            id("n4")
        ))
        .await
        .unwrap_err();
    assert!(unique.to_string().contains("owns_open"), "the unique index refuses a copy: {unique}");
}

#[tokio::test]
async fn a_bulk_load_into_an_embedded_store_settles_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let doc = document(1000); // 3,001 nodes, 3,000 edges
    let digest = graph_model::sha256_hex(doc.to_string().as_bytes());
    let now = Utc::now();
    let inv = Inventory::parse_keyed(&doc, now, Some(&digest)).unwrap();
    store.import_bulk(&digest, "doc.json", now, &inv, load(500, 2), |_| ControlFlow::Continue(())).await.unwrap();
    store.close().await;
    // SurrealKV flushes its memtable to a level-0 file at every close and merges level
    // 0 once it holds four files, after a flush within a process or when it opens: three
    // more sessions that write leave the fourth file, and a merge owed, at the last close.
    for i in 0..3 {
        let store = Store::open(&cfg).await.unwrap();
        store.execute_raw(&format!("UPSERT meta:settle_test SET round = {i};")).await.unwrap();
        store.close().await;
    }

    let mut passes = Vec::new();
    let settled = Store::settle(&cfg, &mut |p| passes.push(p)).await.unwrap().expect("an embedded store settles");
    assert!(settled.done, "settled within its bound: {passes:?}");
    assert!(settled.merges >= 1, "a merge was owed: {passes:?}");
    assert_eq!(passes.len() as u32, settled.merges + 1, "one pass a merge, and one that found none: {passes:?}");
    assert_eq!(passes.iter().map(|p| p.pass).collect::<Vec<_>>(), (1..=settled.merges + 1).collect::<Vec<_>>());
    assert!(passes[..passes.len() - 1].iter().all(|p| p.bytes >= 1 << 20), "each merge rewrote files: {passes:?}");
    // Nothing is owed now: the next open runs no merge.
    let again = Store::settle(&cfg, &mut |_| {}).await.unwrap().unwrap();
    assert_eq!((again.merges, again.done), (0, true), "a settled store owes nothing");

    let store = Store::open(&cfg).await.unwrap();
    assert_eq!(count(&store, "nhi").await, 1000);
    assert_eq!(count(&store, "person").await, 1000);
    for table in ["owns", "holds", "authenticates_to"] {
        assert_eq!(count(&store, table).await, 1000, "{table}");
    }
    store.close().await;

    // Other engines compact on their own: nothing to do.
    assert!(Store::settle(&StoreConfig::memory(), &mut |_| {}).await.unwrap().is_none());
}

/// A bulk load writes its edges with the schema's events off (`OPTION IMPORT`), so it
/// moves the ownership revisions itself: a decision's commit that saw a node's owners
/// before the load must not take them for its owners after it.
#[tokio::test]
async fn a_bulk_load_moves_the_ownership_revisions_of_what_its_edges_own() {
    let store = Store::open(&StoreConfig::for_tests()).await.unwrap();
    let doc = document(10); // 31 nodes, then 30 edges
    let digest = graph_model::sha256_hex(doc.to_string().as_bytes());
    let parsed_at = Utc::now();
    let inv = Inventory::parse_keyed(&doc, parsed_at, Some(&digest)).unwrap();
    let stop = |p: &graph_model::store::BulkProgress| {
        if p.nodes == 31 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    let first = store.import_bulk(&digest, "doc.json", parsed_at, &inv, load(31, 1), stop).await.unwrap();
    assert_eq!((first.stopped, first.nodes, first.edges), (true, 31, 0));
    let revs = "RETURN SELECT id, owners_rev FROM nhi ORDER BY id;";
    let before = store.execute_raw(revs).await.unwrap();
    let before = before.as_array().unwrap();
    assert_eq!(before.len(), 10);
    assert!(before.iter().all(|n| n["owners_rev"].is_string()), "a node has a revision from its creation: {before:?}");

    let rest = store
        .import_bulk(&digest, "doc.json", parsed_at, &inv, load(31, 1), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!((rest.stopped, rest.edges), (false, 30));
    let after = store.execute_raw(revs).await.unwrap();
    for (b, a) in before.iter().zip(after.as_array().unwrap()) {
        assert_eq!(a["id"], b["id"]);
        assert!(a["owners_rev"].is_string() && a["owners_rev"] != b["owners_rev"], "{}: its owner came in", a["id"]);
    }
}
