//! `import`: an inventory document into the store (the workflow is
//! `Store::import_document`), with progress on a terminal, Ctrl-C stopping once the
//! batches in flight are stored, and a summary at the end; every fault names the file
//! and the item.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use graph_model::store::{BulkLoad, ImportFailure, ImportKind, ImportReport, ImportStep, Settled};

use super::{open_store, progress, settle};
use crate::config::Config;

/// What `nhigov import` did, for the benchmark's report.
pub struct Imported {
    pub report: ImportReport,
    /// How the store settled after a bulk load into an embedded store.
    pub settled: Option<Settled>,
}

/// Import the document at `file` into the configured store; see [`Command::Import`].
pub async fn import(cfg: &Config, file: &std::path::Path, load: BulkLoad) -> Result<Imported> {
    let started = std::time::Instant::now();
    let shown = file.display().to_string();
    progress(&format!("reading {shown}"));
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {shown}"))?;
    let store = open_store(cfg).await?;
    let live = std::io::stderr().is_terminal();
    // Ctrl-C stops the load once the batches in flight are stored; running it again
    // writes the rest.
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
            }
        })
    };
    let mut writing = std::time::Instant::now();
    let mut step = |s: ImportStep<'_>| {
        show(&s, live, &mut writing);
        if interrupted.load(Ordering::SeqCst) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    let result = store.import_document(&shown, &bytes, load, &mut step).await;
    watcher.abort();
    if live {
        eprintln!();
    }
    store.close().await;
    let settled = match &result {
        Ok(r) if matches!(r.kind, ImportKind::Loaded) => settle(cfg).await,
        _ => None,
    };
    let report = match result {
        Ok(r) => r,
        Err(ImportFailure::Faults(errors)) => {
            for e in &errors {
                eprintln!("{shown}: {e}");
            }
            bail!("{shown}: {} fault(s); nothing was imported", errors.len())
        }
        Err(e @ ImportFailure::NotJson { .. }) => bail!("{shown}:{e}"),
        Err(e) => bail!("{shown}: {e}"),
    };
    summarise(&shown, &report, started.elapsed().as_secs_f64());
    Ok(Imported { report, settled })
}

/// A step as a progress line (on a terminal, batches overwrite each other).
fn show(step: &ImportStep<'_>, live: bool, writing: &mut std::time::Instant) {
    match step {
        ImportStep::Validating => progress("validating"),
        ImportStep::Refreshing { nodes, edges, complete } => progress(&format!(
            "refreshing the store from {nodes} nodes and {edges} edges{} (one transaction)",
            if *complete { ", a complete run of its source" } else { "" }
        )),
        ImportStep::Resuming { started_at, done, batches } => {
            *writing = std::time::Instant::now();
            progress(&format!("resuming the load begun at {started_at}: {done} of {batches} batches are stored"))
        }
        ImportStep::Writing { nodes, edges, batch, parallel } => {
            *writing = std::time::Instant::now();
            progress(&format!("writing {nodes} nodes and {edges} edges in batches of {batch}, {parallel} side by side"))
        }
        ImportStep::Batch { progress: p, resumed_from } if live => {
            let secs = writing.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\rbatch {}/{}: {}/{} nodes, {}/{} edges, {:.0} items/s   ",
                p.batch,
                p.batches,
                p.nodes,
                p.total_nodes,
                p.edges,
                p.total_edges,
                (p.nodes + p.edges - resumed_from) as f64 / secs
            );
        }
        ImportStep::Batch { .. } => {}
    }
}

/// What the import did, and what followed it, on standard output.
fn summarise(shown: &str, r: &ImportReport, secs: f64) {
    match &r.kind {
        ImportKind::AlreadyImported { at } => {
            println!("{shown}: this document (SHA-256 {}) was imported at {at}; nothing to do", &r.digest[..16]);
            return;
        }
        ImportKind::Refreshed(s) => {
            println!(
                "{shown}: {} nodes created, {} refreshed; {} edges opened, {} kept, {} closed",
                s.nodes, s.nodes_updated, s.edges, s.edges_kept, s.edges_closed
            );
            if s.edges_absent_paused > 0 {
                println!(
                    "{shown}: its source was stale: {} edge(s) it no longer reports stay open until its next complete run",
                    s.edges_absent_paused
                );
            }
        }
        ImportKind::Loaded => {}
    }
    match &r.leavers {
        Some(Ok((n, held))) => {
            if *n > 0 {
                println!("{shown}: {n} person(s) reported gone were deactivated, one decision each");
            }
            if !held.is_empty() {
                println!(
                    "{shown}: reported gone but kept, as they govern (an admin deactivates them): {}",
                    held.join(", ")
                );
            }
        }
        Some(Err(e)) => eprintln!("{shown}: deactivating the people it reports gone failed: {e}"),
        None => {}
    }
    if let Some(e) = &r.record_failed {
        eprintln!("{shown}: recording the end of the import run failed: {e}");
    }
    match &r.flagged {
        _ if r.source_stale => {
            println!("{shown}: its source was stale: ungoverned-access alerts wait for its next run")
        }
        Ok(0) => {}
        Ok(n) => println!(
            "{n} NHI(s) hold access the source reported and no decision granted: each has an ungoverned_access alert"
        ),
        Err(e) => eprintln!("{shown}: raising ungoverned-access alerts failed: {e}"),
    }
    println!(
        "imported {} nodes and {} edges from {shown} in {secs:.2}s (writing {:.2}s, {:.0} items/s)",
        r.nodes,
        r.edges,
        r.write_secs,
        (r.nodes + r.edges) as f64 / r.write_secs.max(1e-9)
    );
}
