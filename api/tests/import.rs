//! `nhigov import` on a refreshed file: the first load goes in batches, the refresh
//! matches what is stored, a partial run closes nothing and a complete one closes the
//! source's edges it no longer holds.

use std::process::Command;

use serde_json::{Value, json};

fn import(db: &std::path::Path, doc: &Value) -> (bool, String, String) {
    let file = db.with_extension(format!("{}.json", graph_model::sha256_hex(doc.to_string().as_bytes())));
    std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(["import"])
        .arg(&file)
        .arg("--db")
        .arg(db)
        .env("NHIGOV_LOG", "warn")
        .output()
        .expect("the nhigov binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A collector's view of `readers` service accounts that can read one database.
fn view(readers: &[usize], complete: bool) -> Value {
    let mut nodes = vec![json!({ "type": "system", "ref": "db", "name": "ledger", "kind": "database",
        "environment": "production", "criticality": "tier0" })];
    let mut edges = Vec::new();
    for i in readers {
        nodes.push(json!({ "type": "nhi", "ref": format!("r{i}"), "name": format!("reader-{i}"),
            "kind": "service_account", "provider": "gcp", "external_id": format!("sa-{i}"),
            "environment": "production" }));
        edges.push(json!({ "type": "can_access", "from": format!("r{i}"), "to": "db", "privilege": "read" }));
    }
    json!({ "source": "gcp-collector", "complete": complete, "nodes": nodes, "edges": edges })
}

#[test]
fn a_refreshed_file_updates_in_place_and_only_a_complete_run_closes_edges() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");

    let (ok, out, err) = import(&db, &view(&[0, 1, 2], false));
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 4 nodes and 3 edges"), "a first load: {out}");

    // Reader 2 is missing from a partial run: kept.
    let (ok, out, err) = import(&db, &view(&[0, 1, 3], false));
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 nodes created, 3 refreshed; 1 edges opened, 2 kept, 0 closed"), "{out}");

    // The complete run holds readers 0 and 3: 1 and 2 are closed.
    let (ok, out, err) = import(&db, &view(&[0, 3], true));
    assert!(ok, "{out}{err}");
    assert!(out.contains("0 nodes created, 3 refreshed; 0 edges opened, 2 kept, 2 closed"), "{out}");
}
