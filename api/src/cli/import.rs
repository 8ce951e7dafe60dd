//! `import`: an inventory document into the store, checked whole, written in resumable
//! batches, and recorded in the decision chain once it has begun.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use graph_model::Outcome;
use graph_model::inventory::Inventory;
use graph_model::store::{ImportPlan, Store, StoreError};

use super::{open_store, progress};
use crate::config::Config;

/// What `nhigov import` did, for the benchmark's report.
#[derive(Debug, Clone)]
pub struct Imported {
    pub nodes: usize,
    pub edges: usize,
    /// Writing only, after reading, parsing and checking.
    pub write_secs: f64,
    /// The document's source, whose ungoverned access is flagged after the import.
    pub source: Option<String>,
    /// The source was stale when the document arrived: nothing is flagged from it.
    pub source_stale: bool,
}

/// Import the document at `file` into the configured store; see [`Command::Import`].
pub async fn import(cfg: &Config, file: &std::path::Path, batch: usize) -> Result<Imported> {
    let started = std::time::Instant::now();
    let shown = file.display();
    progress(&format!("reading {shown}"));
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {shown}"))?;
    let digest = graph_model::domain::sha256_hex(&bytes);
    let store = open_store(cfg).await?;
    // Once the chain has begun, a run is recorded in it, with the server as its actor:
    // a decision when it starts and one when it completes or fails. (A first load
    // before the genesis is what the genesis, or a baseline, then takes on.)
    let recorder = match store.has_genesis().await? {
        true => Some(store.server_principal().await?),
        false => None,
    };
    if let Some(server) = &recorder {
        let started = serde_json::json!({ "file": shown.to_string(), "digest": digest, "bytes": bytes.len() });
        store.record_import(server, &digest, Outcome::Started, started).await?;
    }
    let result = import_into(&store, &shown.to_string(), &bytes, &digest, batch).await;
    if let Some(server) = &recorder {
        let (outcome, inputs) = match &result {
            Ok(Some(i)) => (
                Outcome::Completed,
                serde_json::json!({ "digest": digest, "source": i.source, "nodes": i.nodes, "edges": i.edges }),
            ),
            Ok(None) => (Outcome::Completed, serde_json::json!({ "digest": digest, "already_imported": true })),
            Err(e) => (Outcome::Failed, serde_json::json!({ "digest": digest, "error": e.to_string() })),
        };
        if let Err(e) = store.record_import(server, &digest, outcome, inputs).await {
            eprintln!("{shown}: recording the end of the import run failed: {e}");
        }
    }
    // Access the source reported that no decision granted raises its alerts once the
    // chain has begun (a first load before the genesis raises none).
    let flagged = match &result {
        Ok(Some(imported)) if imported.source_stale => {
            println!("{shown}: its source was stale: ungoverned-access alerts wait for its next run");
            Ok(0)
        }
        Ok(Some(imported)) => store.raise_ungoverned_alerts(imported.source.as_deref()).await,
        _ => Ok(0),
    };
    store.close().await;
    match flagged {
        Ok(0) => {}
        Ok(n) => println!(
            "{n} NHI(s) hold access the source reported and no decision granted: each has an ungoverned_access alert"
        ),
        Err(e) => eprintln!("{shown}: raising ungoverned-access alerts failed: {e}"),
    }
    let Some(imported) = result? else {
        return Ok(Imported { nodes: 0, edges: 0, write_secs: 0.0, source: None, source_stale: false });
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} nodes and {} edges from {shown} in {secs:.2}s (writing {:.2}s, {:.0} items/s)",
        imported.nodes,
        imported.edges,
        imported.write_secs,
        (imported.nodes + imported.edges) as f64 / imported.write_secs.max(1e-9)
    );
    Ok(imported)
}

/// A document that matches what is stored, written in one transaction (see
/// `Store::import`): a refresh from a collector rather than a first load.
async fn refresh_into(store: &Store, shown: &str, inv: &Inventory, plan: ImportPlan) -> Result<Imported> {
    progress(&format!(
        "refreshing the store from {} nodes and {} edges{} (one transaction)",
        inv.nodes.len(),
        inv.edges.len(),
        if inv.complete { ", a complete run of its source" } else { "" }
    ));
    let writing = std::time::Instant::now();
    match store.import_planned(inv, plan).await {
        Ok(s) => {
            println!(
                "{shown}: {} nodes created, {} refreshed; {} edges opened, {} kept, {} closed",
                s.nodes, s.nodes_updated, s.edges, s.edges_kept, s.edges_closed
            );
            // The people the feed reports gone leave, as the server's decisions, once
            // the chain has begun.
            if store.has_genesis().await? {
                let server = store.server_principal().await?;
                match store.apply_leavers(&server, inv, &s).await {
                    Ok((n, held)) => {
                        if n > 0 {
                            println!("{shown}: {n} person(s) reported gone were deactivated, one decision each");
                        }
                        if !held.is_empty() {
                            println!(
                                "{shown}: reported gone but kept, as they govern (an admin deactivates them): {}",
                                held.join(", ")
                            );
                        }
                    }
                    Err(e) => eprintln!("{shown}: deactivating the people it reports gone failed: {e}"),
                }
            }
            if s.edges_absent_paused > 0 {
                println!(
                    "{shown}: its source was stale: {} edge(s) it no longer reports stay open until its next complete run",
                    s.edges_absent_paused
                );
            }
            Ok(Imported {
                nodes: s.nodes + s.nodes_updated,
                edges: s.edges,
                write_secs: writing.elapsed().as_secs_f64(),
                source: inv.source.as_ref().map(|s| s.as_str().to_owned()),
                source_stale: s.source_stale,
            })
        }
        Err(StoreError::Import(errors)) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len())
        }
        Err(e) => Err(anyhow!("{shown}: {e}")),
    }
}

/// Import, or `None` when this document was imported before.
async fn import_into(store: &Store, shown: &str, bytes: &[u8], digest: &str, batch: usize) -> Result<Option<Imported>> {
    let run = store.import_run(digest).await?;
    if let Some(run) = &run
        && let Some(at) = run.finished_at
    {
        println!("{shown}: this document (SHA-256 {}) was imported at {at}; nothing to do", &digest[..16]);
        return Ok(None);
    }
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| anyhow!("{shown}:{}:{}: not JSON: {e}", e.line(), e.column()))?;
    progress("validating");
    // A resumed load parses relative times against the first attempt's clock, so every
    // item comes out as it did then.
    let parsed_at = run.as_ref().map_or_else(Utc::now, |r| r.parsed_at);
    let inv = match Inventory::parse_keyed(&doc, parsed_at, Some(digest)) {
        Ok(inv) => inv,
        Err(errors) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len());
        }
    };
    drop(doc);
    // Judged before the run commits: the run that ends a gap repairs its source.
    let source_stale = match &inv.source {
        Some(s) => store.feed_freshness(s.as_str(), Utc::now()).await?.is_stale(),
        None => false,
    };
    if run.is_none() {
        let plan = match store.plan_inventory(&inv).await {
            Ok(plan) => plan,
            Err(StoreError::Import(errors)) => {
                for e in &errors {
                    eprintln!("{shown}: {e}");
                }
                bail!("{shown}: {} fault(s); nothing was imported", errors.len());
            }
            Err(e) => bail!("{shown}: {e}"),
        };
        if plan.is_refresh(&inv) {
            return refresh_into(store, shown, &inv, plan).await.map(Some);
        }
    }
    if let Some(run) = &run {
        progress(&format!(
            "resuming the load begun at {}: {} of {} batches are stored",
            run.started_at, run.done, run.batches
        ));
    } else {
        progress(&format!("writing {} nodes and {} edges in batches of {batch}", inv.nodes.len(), inv.edges.len()));
    }
    let writing = std::time::Instant::now();
    let live = std::io::stderr().is_terminal();
    // Ctrl-C stops the load after the batch in flight; running it again resumes there.
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
            }
        })
    };
    let total = inv.nodes.len() + inv.edges.len();
    let before = run.as_ref().map_or(0, |r| (r.done * r.batch_size).min(total));
    let result = store
        .import_bulk(digest, shown, parsed_at, &inv, batch, |p| {
            if live {
                let secs = writing.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\rbatch {}/{}: {}/{} nodes, {}/{} edges, {:.0} items/s   ",
                    p.batch,
                    p.batches,
                    p.nodes,
                    p.total_nodes,
                    p.edges,
                    p.total_edges,
                    (p.nodes + p.edges - before) as f64 / secs
                );
            }
            if interrupted.load(Ordering::SeqCst) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .await;
    watcher.abort();
    if live {
        eprintln!();
    }
    match result {
        Ok(s) if s.stopped => bail!(
            "{shown}: interrupted; {} of {} batches are stored; run the same import again to resume",
            s.done,
            s.batches
        ),
        Ok(s) => Ok(Some(Imported {
            nodes: s.nodes,
            edges: s.edges,
            write_secs: writing.elapsed().as_secs_f64(),
            source: inv.source.as_ref().map(|s| s.as_str().to_owned()),
            source_stale,
        })),
        Err(StoreError::Import(errors)) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len())
        }
        Err(e) => Err(anyhow!("{shown}: {e}")),
    }
}
