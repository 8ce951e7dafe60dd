//! The store against a real (in-memory) SurrealDB.

use chrono::{Duration, Utc};
use graph_model::inventory::{Inventory, NodeSpec};
use graph_model::store::{EdgeDirection, EmbeddedMemory, NodeFilter, PageRequest, Store, StoreConfig, StoreError};
use graph_model::*;
use serde_json::json;

async fn store() -> Store {
    Store::open(&StoreConfig::for_tests()).await.expect("store opens")
}

fn nhi_spec(name: &str) -> NodeSpec {
    NodeSpec::Nhi(NewNhi {
        kind: NhiKind::Token,
        name: Name::parse(name).unwrap(),
        provider: None,
        external_id: None,
        environment: Environment::Production,
        status: NhiStatus::Active,
        description: None,
        last_used_at: Some(Utc::now() - Duration::days(3)),
    })
}

fn system_spec(name: &str, kind: SystemKind) -> NodeSpec {
    NodeSpec::System(NewSystem {
        kind,
        name: Name::parse(name).unwrap(),
        environment: Environment::Production,
        criticality: Criticality::Tier0,
        description: None,
    })
}

async fn create(store: &Store, spec: NodeSpec) -> NodeId {
    store.create_node(&spec).await.unwrap().id().clone()
}

#[tokio::test]
async fn the_schema_applies_twice_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let s = Store::open(&cfg).await.unwrap();
    let id = create(&s, nhi_spec("kept")).await;
    s.close().await;
    let s = Store::open(&cfg).await.unwrap();
    assert!(s.node(&id).await.unwrap().is_some(), "data survives a reopen and a schema re-apply");
}

#[tokio::test]
async fn a_store_written_in_64_kib_blocks_reads_and_grows_with_the_default_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("db").display().to_string();
    // SurrealKV's own block size, which stores written before 4 KiB blocks have.
    let old = EmbeddedMemory { block_bytes: 64 * 1024, ..EmbeddedMemory::DEFAULT };
    let s = Store::open(&StoreConfig { url: url.clone(), memory: old, ..StoreConfig::memory() }).await.unwrap();
    let mut made = Vec::new();
    for i in 0..40 {
        made.push(create(&s, nhi_spec(&format!("old{i}"))).await);
    }
    // Closing flushes the memtable into a table file of 64 KiB blocks.
    s.close().await;
    assert_eq!(EmbeddedMemory::DEFAULT.block_bytes, 4096);
    let cfg = StoreConfig { url, ..StoreConfig::memory() };
    for round in 0..2 {
        let s = Store::open(&cfg).await.unwrap();
        for id in &made {
            assert!(s.node(id).await.unwrap().is_some(), "{id} reads back (round {round})");
        }
        made.push(create(&s, nhi_spec(&format!("new{round}"))).await);
        s.close().await;
    }
}

/// Every table file SurrealKV writes, a memtable's flush or a compaction's merge, carries
/// a bloom filter that a read of one key consults first: a key the filter wrongly says
/// is absent is a record lost. The filter is built from key digests (vendor/README.md);
/// here a small memtable makes a store of many table files and merges, and every record
/// is then read by its id, before and after a reopen.
#[tokio::test]
async fn every_record_is_found_by_id_across_many_flushed_and_merged_tables() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("db").display().to_string();
    let memory = EmbeddedMemory { block_cache_bytes: 1 << 20, memtable_bytes: 256 << 10, block_bytes: 4096 };
    let cfg = StoreConfig { url, memory, ..StoreConfig::memory() };
    const RECORDS: usize = 20_000;
    let pad = "p".repeat(200);
    let s = Store::open(&cfg).await.unwrap();
    // A transaction must fit the memtable: 250 records of about 250 bytes each.
    const BATCH: usize = 250;
    for batch in 0..RECORDS / BATCH {
        let rows: Vec<String> =
            (batch * BATCH..(batch + 1) * BATCH).map(|i| format!("{{ id: {i}, pad: '{pad}' }}")).collect();
        s.execute_raw(&format!("INSERT INTO probe [{}] RETURN NONE", rows.join(","))).await.unwrap();
    }
    let ids: Vec<String> = (0..RECORDS).map(|i| format!("probe:{i}")).collect();
    let by_id = format!("array::len(SELECT VALUE id FROM [{}])", ids.join(","));
    let found = |v: serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("a count, not {v}"));
    assert_eq!(found(s.execute_raw(&format!("RETURN {by_id}")).await.unwrap()), RECORDS as u64);
    s.close().await;

    // Table files are numbered as they are written; a merge replaces its inputs, so
    // fewer files than numbers issued means merged tables were read back too.
    let numbers: Vec<u64> = std::fs::read_dir(dir.path().join("db/sstables"))
        .unwrap()
        .flatten()
        .filter_map(|f| f.path().file_stem()?.to_str()?.parse().ok())
        .collect();
    let issued = numbers.iter().max().copied().unwrap_or(0);
    assert!(numbers.len() >= 2, "the store spans several table files ({numbers:?})");
    assert!(issued as usize > numbers.len(), "tables were merged ({numbers:?})");
    let s = Store::open(&cfg).await.unwrap();
    assert_eq!(found(s.execute_raw(&format!("RETURN {by_id}")).await.unwrap()), RECORDS as u64);
    let absent = format!(
        "array::len(SELECT VALUE id FROM [{}])",
        (0..1000).map(|i| format!("probe:{}", RECORDS + i)).collect::<Vec<_>>().join(",")
    );
    assert_eq!(found(s.execute_raw(&format!("RETURN {absent}")).await.unwrap()), 0, "no record that was never written");
    s.close().await;
}

/// A sign-in is read from the database once, then again only after this process wrote
/// anything; a replica's handle on the same database reads it every time.
#[tokio::test]
async fn a_sign_in_is_read_again_after_every_write_and_always_once_the_database_is_shared() {
    let store = store().await;
    let email = Email::parse("ada@test.example").unwrap();
    let spec = NodeSpec::Person(NewPerson {
        name: Name::parse("Ada").unwrap(),
        email: email.clone(),
        active: true,
        machine: false,
    });
    let ada = create(&store, spec).await;
    let read = |store: &Store| {
        let (store, email) = (store.clone(), email.clone());
        async move {
            let before = store.round_trips();
            let person = store.person_by_email(&email).await.unwrap().expect("found");
            (person, store.round_trips() - before)
        }
    };
    // A remote database may have other writers: every sign-in reads it.
    let remembered = if StoreConfig::for_tests().is_remote() { 1 } else { 0 };
    assert_eq!(read(&store).await.1, 1);
    assert_eq!(read(&store).await.1, remembered, "no write since: remembered");
    store.execute_raw(&format!("UPDATE {ada} SET active = false")).await.unwrap();
    let (person, trips) = read(&store).await;
    assert_eq!((person.active, trips), (false, 1), "any write of this process: read again");

    let replica = store.as_replica();
    replica.execute_raw(&format!("UPDATE {ada} SET active = true")).await.unwrap();
    let (person, trips) = read(&store).await;
    assert_eq!((person.active, trips), (true, 1), "another writer: read every time");
    assert_eq!(read(&store).await.1, 1);
    assert_eq!(read(&replica).await.1, 1);
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let s = Store::open(&cfg).await.unwrap();
    s.execute_raw("UPSERT meta:schema SET version = 999").await.unwrap();
    s.close().await;
    match Store::open(&cfg).await {
        Err(StoreError::SchemaTooNew { found: 999, supported }) => {
            assert_eq!(supported, graph_model::store::SCHEMA_VERSION)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_store_from_before_page_keys_lists_every_record_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let s = Store::open(&cfg).await.unwrap();
    let mut made = Vec::new();
    for i in 0..23 {
        made.push(create(&s, nhi_spec(&format!("n{i}"))).await);
    }
    // As the store was at schema version 6: no page key, no index on it.
    s.execute_raw(
        "REMOVE INDEX nhi_page ON nhi; REMOVE FIELD page_key ON nhi; UPDATE nhi UNSET page_key RETURN NONE;
         UPDATE meta:schema SET version = 6, backfilled = NONE;",
    )
    .await
    .unwrap();
    s.close().await;

    let s = Store::open(&cfg).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list::<Nhi>(
                &NodeFilter::default(),
                &PageRequest { first: 5, after: after.clone(), count: true, ..Default::default() },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 23);
        seen.extend(page.items.iter().map(|n| n.id.clone()));
        if !page.has_next {
            break;
        }
        after = page.cursors.last().cloned();
    }
    made.sort();
    assert_eq!(seen, made, "every NHI once, in id order, across pages");
}

#[tokio::test]
async fn a_store_from_before_the_policy_pointer_finds_its_policy_in_force_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { url: dir.path().join("db").display().to_string(), ..StoreConfig::memory() };
    let s = Store::open(&cfg).await.unwrap();
    let baseline = s.current_policy().await.unwrap();
    // As the store was at schema version 15: no `meta:policy`, no event keeping it.
    s.execute_raw(
        "REMOVE EVENT policy_in_force ON policy; DELETE meta:policy;
         UPDATE meta:schema SET version = 15, backfilled = NONE;",
    )
    .await
    .unwrap();
    s.close().await;

    let s = Store::open(&cfg).await.unwrap();
    let found = s.current_policy().await.unwrap();
    assert_eq!((found.id, found.version), (baseline.id, 1), "the backfill names the latest version");
}

#[tokio::test]
async fn nodes_round_trip_with_their_times() {
    let s = store().await;
    let node = s.create_node(&nhi_spec("ci")).await.unwrap();
    let InventoryNode::Nhi(n) = node else { panic!("an nhi") };
    assert_eq!(n.name, "ci");
    assert!(n.last_used_at.unwrap() < Utc::now() - Duration::days(2));
    let InventoryNode::Nhi(back) = s.node(&n.id).await.unwrap().unwrap() else { panic!() };
    assert_eq!(back, n);
    let described = Text::parse("runs the CI").unwrap();
    let patched = s.update_nhi(&n.id, &NhiPatch { description: Some(described), ..Default::default() }).await.unwrap();
    let InventoryNode::Nhi(p) = patched else { panic!() };
    assert_eq!(p.description.as_deref(), Some("runs the CI"));
    assert_eq!((p.name.as_str(), p.status), ("ci", NhiStatus::Active), "the rest is kept");
    assert!(p.updated_at >= n.updated_at);
}

#[tokio::test]
async fn relating_checks_ends_duplicates_and_vaults() {
    let s = store().await;
    let n = create(&s, nhi_spec("n")).await;
    let db = create(&s, system_spec("db", SystemKind::Database)).await;
    let grant = NewEdge::parse(
        EdgeKind::CanAccess,
        n.clone(),
        db.clone(),
        EdgeAttrs { privilege: Some(Privilege::Write), ..Default::default() },
    )
    .unwrap();
    let e = s.relate(&grant).await.unwrap();
    assert_eq!((e.from.clone(), e.to.clone(), e.privilege), (n.clone(), db.clone(), Some(Privilege::Write)));
    assert!(matches!(s.relate(&grant).await, Err(StoreError::Conflict(_))));

    let missing = NodeId::new(Table::System, "nope").unwrap();
    let bad = NewEdge::parse(EdgeKind::CanAccess, n.clone(), missing, grant.attrs.clone()).unwrap();
    assert!(matches!(s.relate(&bad).await, Err(StoreError::NotFound(_))));

    let secret = create(
        &s,
        NodeSpec::Secret(NewSecret {
            kind: SecretKind::Password,
            name: Name::parse("pw").unwrap(),
            fingerprint: Fingerprint::parse("0011223344556677").unwrap(),
            issued_at: None,
            last_rotated_at: None,
            expires_at: None,
            rotation_period_days: None,
        }),
    )
    .await;
    let into_db = NewEdge::parse(EdgeKind::StoredIn, secret.clone(), db.clone(), EdgeAttrs::default()).unwrap();
    assert!(matches!(s.relate(&into_db).await, Err(StoreError::Invalid(e)) if e.field == "to"));
    let vault = create(&s, system_spec("vault", SystemKind::Vault)).await;
    let into_vault = NewEdge::parse(EdgeKind::StoredIn, secret, vault, EdgeAttrs::default()).unwrap();
    s.relate(&into_vault).await.unwrap();
}

#[tokio::test]
async fn closed_and_expired_edges_leave_the_present_but_not_the_past() {
    let s = store().await;
    let n = create(&s, nhi_spec("n")).await;
    let a = create(&s, system_spec("a", SystemKind::Database)).await;
    let b = create(&s, system_spec("b", SystemKind::Database)).await;
    let read = |exp| EdgeAttrs { privilege: Some(Privilege::Read), expires_at: exp, ..Default::default() };
    let ea = s.relate(&NewEdge::parse(EdgeKind::CanAccess, n.clone(), a.clone(), read(None)).unwrap()).await.unwrap();
    let soon = Utc::now() + Duration::milliseconds(300);
    s.relate(&NewEdge::parse(EdgeKind::CanAccess, n.clone(), b.clone(), read(Some(soon))).unwrap()).await.unwrap();

    let now = s.edges_of(EdgeKind::CanAccess, EdgeDirection::Out, std::slice::from_ref(&n), None).await.unwrap();
    assert_eq!(now[&n].len(), 2);
    let before_close = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let closed = s.close_edge(&ea.id).await.unwrap();
    assert!(closed.valid_to.is_some());
    assert!(matches!(s.close_edge(&ea.id).await, Err(StoreError::Conflict(_))));

    let now = s.edges_of(EdgeKind::CanAccess, EdgeDirection::Out, std::slice::from_ref(&n), None).await.unwrap();
    assert!(now.get(&n).is_none_or(|v| v.is_empty()), "one closed, one expired: {now:?}");
    let then = s
        .edges_of(EdgeKind::CanAccess, EdgeDirection::Out, std::slice::from_ref(&n), Some(before_close))
        .await
        .unwrap();
    assert_eq!(then[&n].len(), 2, "as of before the close, both were in force");
    let incoming =
        s.edges_of(EdgeKind::CanAccess, EdgeDirection::In, &[a.clone(), b.clone()], Some(before_close)).await.unwrap();
    assert_eq!(incoming[&a][0].from, n);
}

#[tokio::test]
async fn concurrent_relates_of_the_same_edge_open_it_once() {
    let s = store().await;
    let n = create(&s, nhi_spec("n")).await;
    let db = create(&s, system_spec("db", SystemKind::Database)).await;
    let edge = NewEdge::parse(EdgeKind::Holds, n.clone(), db.clone(), EdgeAttrs::default());
    assert!(edge.is_err(), "holds ends at a secret");
    let edge = NewEdge::parse(
        EdgeKind::CanAccess,
        n.clone(),
        db.clone(),
        EdgeAttrs { privilege: Some(Privilege::Read), ..Default::default() },
    )
    .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let e = edge.clone();
            tokio::spawn(async move { s.relate(&e).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
    let open = s.edges_of(EdgeKind::CanAccess, EdgeDirection::Out, std::slice::from_ref(&n), None).await.unwrap();
    assert_eq!(open[&n].len(), 1);
}

#[tokio::test]
async fn lists_filter_and_page() {
    let s = store().await;
    for i in 0..5 {
        create(&s, nhi_spec(&format!("n{i}"))).await;
    }
    let page = s
        .list::<Nhi>(&NodeFilter::default(), &PageRequest { first: 2, after: None, count: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.has_next, page.total), (2, true, 5));
    let next = s
        .list::<Nhi>(
            &NodeFilter::default(),
            &PageRequest { first: 10, after: Some((&page.items[1].id).into()), count: true, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(next.items.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["n2", "n3", "n4"]);
    assert!(!next.has_next);
    let filtered = s
        .list::<Nhi>(
            &NodeFilter { name_contains: Some("N3".into()), ..Default::default() },
            &PageRequest { first: 10, after: None, count: true, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(filtered.total, 1);
    // A page asked for without its count reads the page only.
    let uncounted = s
        .list::<Nhi>(
            &NodeFilter { name_contains: Some("N3".into()), ..Default::default() },
            &PageRequest { first: 10, after: None, count: false, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!((uncounted.items.len(), uncounted.total), (1, 0));
    let refused = s
        .list::<Team>(
            &NodeFilter { criticality: Some(Criticality::Tier0), ..Default::default() },
            &PageRequest { first: 1, after: None, count: true, ..Default::default() },
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn imports_land_whole() {
    let s = store().await;
    assert!(s.inventory_is_empty().await.unwrap());
    let doc = json!({
        "nodes": [
            { "type": "person", "ref": "p", "name": "P", "email": "p@example.com" },
            { "type": "nhi", "ref": "n", "kind": "token", "name": "t", "environment": "production" },
            { "type": "secret", "ref": "s", "kind": "token", "name": "s", "fingerprint": "aabbccddeeff0011" },
            { "type": "system", "ref": "v", "kind": "vault", "name": "v", "environment": "production" }
        ],
        "edges": [
            { "type": "owns", "from": "p", "to": "n" },
            { "type": "holds", "from": "n", "to": "s" },
            { "type": "stored_in", "from": "s", "to": "v" }
        ]
    });
    let inv = Inventory::parse(&doc, Utc::now()).unwrap();
    let summary = s.import(&inv).await.unwrap();
    assert_eq!((summary.nodes, summary.edges), (4, 3));
    assert!(!s.inventory_is_empty().await.unwrap());
    // The same document again matches the person by e-mail, the secret by fingerprint and
    // the vault by name and environment; the NHI has no provider and external id to be
    // known by, so it is a new one, with new edges to it.
    let again = Inventory::parse(&doc, Utc::now()).unwrap();
    let s2 = s.import(&again).await.unwrap();
    assert_eq!((s2.nodes, s2.nodes_updated, s2.edges, s2.edges_kept), (1, 3, 2, 1));
    let people = s
        .list::<Person>(
            &NodeFilter::default(),
            &PageRequest { first: 10, after: None, count: true, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(people.total, 1);
}

/// Each order a list offers is read from its index, from the cursor, stopping at the
/// page's size, either way: the query plan of a page (as `store::paging` writes it) is
/// an index scan with no sort of the table.
#[tokio::test]
async fn every_order_pages_from_its_index_without_a_sort() {
    let s = Store::open(&StoreConfig::memory()).await.unwrap();
    let inventory = ["person", "team", "nhi", "secret", "system"];
    let mut orders: Vec<(&str, &str, String)> = Vec::new();
    for t in inventory {
        orders.push((t, "name_key", format!("{t}_name_key")));
        orders.push((t, "created_key", format!("{t}_created_key")));
    }
    for (t, key) in [
        ("nhi", "used_key"),
        ("alert", "severity_key"),
        ("case", "severity_key"),
        ("case", "due_key"),
        ("exception", "review_key"),
    ] {
        orders.push((t, key, format!("{t}_{key}")));
    }
    // The default order, by id, after a cursor or backward.
    for t in inventory.into_iter().chain(["alert", "case", "request", "exception"]) {
        orders.push((t, "page_key", format!("{t}_page")));
    }
    for (table, key, index) in orders {
        // Every order's index leads with the page set, which its pages name (the engine
        // then stops the range read at the limit; see `schema.surql`).
        for (cond, dir) in [
            (String::new(), ""),
            (String::new(), " DESC"),
            (format!(" AND {key} > 'm'"), ""),
            (format!(" AND {key} < 'm'"), " DESC"),
            (format!(" AND {key} >= 'm' AND {key} < 'n'"), ""),
        ] {
            let sql = format!(
                "EXPLAIN SELECT *, {key} AS cursor_key FROM {table} WHERE page_set = 0{cond} ORDER BY {key}{dir} LIMIT 21"
            );
            let plan = s.execute_raw(&sql).await.unwrap();
            let plan = plan.as_str().unwrap_or_default();
            assert!(plan.contains(&format!("IndexScan [ctx: Db] [index: {index},")), "{sql}:\n{plan}");
            assert!(!plan.contains("Sort"), "{sql}:\n{plan}");
            assert!(plan.contains("access: [0]"), "the page set is the index's prefix: {sql}:\n{plan}");
        }
    }
}

/// What `Store::read_in` works around: SurrealDB reads `field IN $list` from the field's
/// index for up to 32 values and reads the whole table past that. Should an upgrade
/// change the limit, this says so.
#[tokio::test]
async fn an_in_list_is_read_from_the_index_up_to_32_values() {
    let s = Store::open(&StoreConfig::memory()).await.unwrap();
    for (n, indexed) in [(2, true), (32, true), (33, false)] {
        let list: Vec<String> = (0..n).map(|i| format!("nhi:k{i}")).collect();
        let sql = format!("LET $s = [{}]; EXPLAIN SELECT * FROM request WHERE subject IN $s;", list.join(", "));
        let plan = s.execute_raw(&sql).await.unwrap();
        let plan = plan.as_str().unwrap_or_default().to_owned();
        assert_eq!(plan.contains("index: request_subject"), indexed, "{n} values:\n{plan}");
    }
}
