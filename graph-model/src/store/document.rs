//! An inventory document imported whole, as `nhigov import` runs it: the workflow, with
//! the command line's printing and Ctrl-C left to its caller.
//!
//! A document already imported (by its SHA-256) is not read again. One that matches what
//! is stored (a collector's refresh) is written in one transaction, and the people its
//! source reports gone leave, as the server's decisions. Anything else is a first load,
//! written in resumable batches, several side by side (`Store::import_bulk`): a run
//! stopped half-way resumes with the batches it did not store, with the first attempt's
//! clock. Once the chain has begun,
//! a run is recorded in it (a decision when it starts, one when it completes or fails,
//! the server as actor), and the access the source reported that no decision granted
//! raises its alerts, unless the source was stale when the document arrived.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use super::{BulkLoad, BulkProgress, ImportPlan, ImportSummary, Store, StoreError};
use crate::domain::inventory::{DocumentError, Inventory, ItemError};
use crate::domain::{Outcome, sha256_hex};

/// What the workflow is doing, for its caller to show.
#[derive(Debug)]
pub enum ImportStep<'a> {
    /// Checking every item of the document.
    Validating,
    /// Writing a refresh in one transaction.
    Refreshing { nodes: usize, edges: usize, complete: bool },
    /// Resuming a load stopped half-way.
    Resuming { started_at: DateTime<Utc>, done: usize, batches: usize },
    /// Beginning a first load.
    Writing { nodes: usize, edges: usize, batch: usize, parallel: usize },
    /// A batch of a load is stored; `resumed_from` items were stored before this run.
    Batch { progress: &'a BulkProgress, resumed_from: usize },
}

/// How a document went in.
#[derive(Debug, Clone)]
pub enum ImportKind {
    /// The same document was imported before, at this time: nothing was written.
    AlreadyImported { at: DateTime<Utc> },
    /// It matched what is stored and was written in one transaction.
    Refreshed(ImportSummary),
    /// A first load, in batches.
    Loaded,
}

/// What an import did, and what happened after it (each after-step reports its own
/// failure without undoing the import).
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub digest: String,
    pub kind: ImportKind,
    /// Nodes created (or, for a refresh, created and refreshed) and edges opened.
    pub nodes: usize,
    pub edges: usize,
    /// Writing only, after reading, parsing and checking.
    pub write_secs: f64,
    /// The document's source.
    pub source: Option<String>,
    /// The source was stale when the document arrived: nothing is flagged from it.
    pub source_stale: bool,
    /// People the source reports gone: how many were deactivated, and those kept
    /// because they govern. `None` before the chain has begun or on a first load.
    pub leavers: Option<Result<(usize, Vec<String>), String>>,
    /// NHIs given an ungoverned-access alert.
    pub flagged: Result<usize, String>,
    /// Recording the run's end in the chain failed (the import itself stands).
    pub record_failed: Option<String>,
}

/// Why an import wrote nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error("{line}:{column}: not JSON: {message}")]
    NotJson { line: usize, column: usize, message: String },
    /// Items of the document at fault; nothing was written.
    #[error("{} fault(s); nothing was imported", .0.len())]
    Faults(Vec<ItemError>),
    /// Stopped by the caller after a stored batch; the same import resumes it.
    #[error("interrupted; {done} of {batches} batches are stored; run the same import again to resume")]
    Interrupted { done: usize, batches: usize },
    #[error("{0}")]
    Store(StoreError),
}

impl From<StoreError> for ImportFailure {
    fn from(e: StoreError) -> ImportFailure {
        match e {
            StoreError::Import(errors) => ImportFailure::Faults(errors),
            e => ImportFailure::Store(e),
        }
    }
}

type Step<'f> = dyn FnMut(ImportStep<'_>) -> ControlFlow<()> + Send + 'f;

impl Store {
    /// Import the document `bytes` (named `name` in the run's record), writing a first
    /// load in batches as `load` says. `step` is told what is happening; answering
    /// `Break` to a batch stops the load once the batches in flight are stored.
    pub async fn import_document(
        &self,
        name: &str,
        bytes: &[u8],
        load: BulkLoad,
        step: &mut Step<'_>,
    ) -> Result<ImportReport, ImportFailure> {
        let digest = sha256_hex(bytes);
        let recorder = match self.has_genesis().await? {
            true => Some(self.server_principal().await?),
            false => None,
        };
        if let Some(server) = &recorder {
            let started = serde_json::json!({ "file": name, "digest": digest, "bytes": bytes.len() });
            self.record_import(server, &digest, Outcome::Started, started).await?;
        }
        let result = self.import_unrecorded(&digest, name, bytes, load, step).await;
        let mut record_failed = None;
        if let Some(server) = &recorder {
            let (outcome, inputs) = match &result {
                Ok(r) if matches!(r.kind, ImportKind::AlreadyImported { .. }) => {
                    (Outcome::Completed, serde_json::json!({ "digest": digest, "already_imported": true }))
                }
                Ok(r) => (
                    Outcome::Completed,
                    serde_json::json!({ "digest": digest, "source": r.source, "nodes": r.nodes, "edges": r.edges }),
                ),
                Err(e) => (Outcome::Failed, serde_json::json!({ "digest": digest, "error": e.to_string() })),
            };
            record_failed = self.record_import(server, &digest, outcome, inputs).await.err().map(|e| e.to_string());
        }
        let mut report = result?;
        report.record_failed = record_failed;
        // Access the source reported that no decision granted raises its alerts once the
        // chain has begun (a first load before the genesis raises none).
        if !report.source_stale && !matches!(report.kind, ImportKind::AlreadyImported { .. }) {
            report.flagged = self.raise_ungoverned_alerts(report.source.as_deref()).await.map_err(|e| e.to_string());
        }
        Ok(report)
    }

    /// The import itself, not yet recorded in the chain.
    async fn import_unrecorded(
        &self,
        digest: &str,
        name: &str,
        bytes: &[u8],
        load: BulkLoad,
        step: &mut Step<'_>,
    ) -> Result<ImportReport, ImportFailure> {
        let run = self.import_run(digest).await?;
        if let Some(at) = run.as_ref().and_then(|r| r.finished_at) {
            return Ok(report(digest, ImportKind::AlreadyImported { at }, None, false));
        }
        let _ = step(ImportStep::Validating);
        // A resumed load parses relative times against the first attempt's clock, so every
        // item comes out as it did then.
        let parsed_at = run.as_ref().map_or_else(Utc::now, |r| r.parsed_at);
        let inv = Inventory::parse_text(bytes, parsed_at, Some(digest)).map_err(|e| match e {
            DocumentError::NotJson(e) => {
                ImportFailure::NotJson { line: e.line(), column: e.column(), message: e.to_string() }
            }
            DocumentError::Faults(faults) => ImportFailure::Faults(faults),
        })?;
        // Judged before the run commits: the run that ends a gap repairs its source.
        let source_stale = match &inv.source {
            Some(s) => self.feed_freshness(s.as_str(), Utc::now()).await?.is_stale(),
            None => false,
        };
        let source = inv.source.as_ref().map(|s| s.as_str().to_owned());
        if run.is_none() {
            let plan = self.plan_inventory(&inv).await?;
            if plan.is_refresh(&inv) {
                return self.refresh(digest, &inv, plan, step).await;
            }
        }
        let _ = step(match &run {
            Some(run) => ImportStep::Resuming { started_at: run.started_at, done: run.done, batches: run.batches },
            None => ImportStep::Writing {
                nodes: inv.nodes.len(),
                edges: inv.edges.len(),
                batch: load.batch,
                parallel: load.parallel,
            },
        });
        let writing = std::time::Instant::now();
        let total = inv.nodes.len() + inv.edges.len();
        let resumed_from = run.as_ref().map_or(0, |r| (r.done * r.batch_size).min(total));
        let s = self
            .import_bulk(digest, name, parsed_at, &inv, load, |progress| {
                step(ImportStep::Batch { progress, resumed_from })
            })
            .await?;
        if s.stopped {
            return Err(ImportFailure::Interrupted { done: s.done, batches: s.batches });
        }
        let mut r = report(digest, ImportKind::Loaded, source, source_stale);
        (r.nodes, r.edges, r.write_secs) = (s.nodes, s.edges, writing.elapsed().as_secs_f64());
        Ok(r)
    }

    /// A document that matches what is stored, written in one transaction (see
    /// `Store::import_planned`): a refresh from a collector rather than a first load.
    async fn refresh(
        &self,
        digest: &str,
        inv: &Inventory,
        plan: ImportPlan,
        step: &mut Step<'_>,
    ) -> Result<ImportReport, ImportFailure> {
        let _ = step(ImportStep::Refreshing { nodes: inv.nodes.len(), edges: inv.edges.len(), complete: inv.complete });
        let writing = std::time::Instant::now();
        let s = self.import_planned(inv, plan).await?;
        let write_secs = writing.elapsed().as_secs_f64();
        // The people the feed reports gone leave, as the server's decisions, once the
        // chain has begun.
        let leavers = match self.has_genesis().await? {
            true => {
                let server = self.server_principal().await?;
                Some(self.apply_leavers(&server, inv, &s).await.map_err(|e| e.to_string()))
            }
            false => None,
        };
        let source = inv.source.as_ref().map(|s| s.as_str().to_owned());
        let mut r = report(digest, ImportKind::Refreshed(s.clone()), source, s.source_stale);
        (r.nodes, r.edges, r.write_secs, r.leavers) = (s.nodes + s.nodes_updated, s.edges, write_secs, leavers);
        Ok(r)
    }
}

fn report(digest: &str, kind: ImportKind, source: Option<String>, source_stale: bool) -> ImportReport {
    ImportReport {
        digest: digest.to_owned(),
        kind,
        nodes: 0,
        edges: 0,
        write_secs: 0.0,
        source,
        source_stale,
        leavers: None,
        flagged: Ok(0),
        record_failed: None,
    }
}
