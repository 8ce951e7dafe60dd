//! Letting an embedded store finish the compaction a bulk write leaves it owing, before
//! a server opens it.
//!
//! SurrealKV flushes its memtable to a level-0 table file every `db.memtable_mb` and
//! when it closes, and runs one merge of its levels after each flush and one when it
//! opens. A bulk load writes faster than one merge per flush keeps up with, and its
//! close adds a last level-0 file with no merge after it: the store is left owing
//! merges, and the next process to open it runs the first of them on its own runtime
//! threads. When that process is the server it does so beside its graph index load:
//! at 100,000 NHIs one first start in three ran a merge that rewrote a level
//! (53% of the start's CPU, profiled) and peaked near 2 GiB, against about 1 GiB
//! otherwise (BENCHMARKS.md, "A bulk load leaves its store settled").
//!
//! [`settle`] pays that debt where the bulk write is: it opens the datastore with
//! nothing else running (no bootstrap, no maintenance tasks, so nothing is written but
//! what the engine merges), waits until its files stop changing, shuts it down, and
//! does so again while a pass changed anything. SurrealKV 0.21 has no call to compact
//! and SurrealDB 3.3's backend answers `CompactionNotSupported`, so opening is the way
//! to start a merge; a shutdown waits for a merge under way to finish.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use surrealdb_engine_local::Datastore;

use super::conn::{EmbeddedMemory, engine_config};
use super::{Result, StoreError};

/// The size of every file under a directory, to see whether anything wrote there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirState(BTreeMap<PathBuf, u64>);

impl DirState {
    /// The files under `dir` and their sizes. A directory removed while it is read (a
    /// compaction deleting its inputs) is a change, not an error.
    pub fn read(dir: &Path) -> std::io::Result<DirState> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != dir => continue,
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("reading {}: {e}", d.display()))),
            };
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    todo.push(entry.path());
                } else {
                    out.insert(entry.path(), meta.len());
                }
            }
        }
        Ok(DirState(out))
    }

    /// How many bytes the files of `self` and `later` differ by: a file's growth or
    /// shrinking, a new file's size, a removed file's size.
    pub fn bytes_changed(&self, later: &DirState) -> u64 {
        let mut n = 0;
        for (path, size) in &later.0 {
            n += size.abs_diff(self.0.get(path).copied().unwrap_or(0));
        }
        for (path, size) in &self.0 {
            if !later.0.contains_key(path) {
                n += size;
            }
        }
        n
    }
}

/// One pass of [`settle`]: the store opened, left to merge until its files stopped
/// changing, and shut down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SettlePass {
    /// From 1.
    pub pass: u32,
    /// Bytes the store's files changed by while it was open.
    pub bytes: u64,
    /// How long the pass took, shutdown included.
    pub secs: f64,
}

/// What [`settle`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settled {
    /// Passes that found a merge to run (the last pass, which found none, not counted).
    pub merges: u32,
    /// Bytes the store's files changed by, in all.
    pub bytes: u64,
    pub secs: f64,
    /// False when it stopped at its bound of passes with merges still running.
    pub done: bool,
}

/// A pass whose files changed by less than this ran no merge: opening and closing an
/// idle store writes a few KiB of log.
const IDLE_BYTES: u64 = 1024 * 1024;
/// Files unchanged for this long: the merge the open started has finished.
const QUIET: Duration = Duration::from_secs(2);
/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(250);
/// The most passes: a 100,000-NHI load owes a few; this bounds a store that never
/// settles (something else writing to it) to a finite wait.
const MAX_PASSES: u32 = 12;

/// Open the embedded store whose lock file is `lock` (`url` its engine URL) until it
/// has no merge left to run; `on_pass` hears of each pass. The store must not be open
/// elsewhere (if it is, opening fails on the lock).
pub(crate) async fn settle(
    url: &str,
    lock: &Path,
    memory: EmbeddedMemory,
    on_pass: &mut (dyn FnMut(SettlePass) + Send),
) -> Result<Settled> {
    let started = Instant::now();
    let dir = lock.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| StoreError::Database(format!("watching {}: {e}", dir.display()));
    let mut total = 0;
    for pass in 1..=MAX_PASSES {
        let pass_started = Instant::now();
        let before = DirState::read(dir).map_err(io)?;
        let kvs = Datastore::builder()
            .with_config(engine_config(memory))
            .without_maintenance_tasks()
            .build_with_path(url)
            .await
            .map_err(|e| StoreError::Database(format!("opening {url}: {e}")))?;
        let (mut last, mut quiet_since) = (before.clone(), Instant::now());
        // The merge runs on this runtime's threads and the files are read between its
        // writes; a merge still running when the quiet ends is waited for by shutdown.
        while quiet_since.elapsed() < QUIET {
            tokio::time::sleep(POLL).await;
            let now = DirState::read(dir).map_err(io)?;
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
        }
        kvs.shutdown().await.map_err(|e| StoreError::Database(format!("closing {url}: {e}")))?;
        drop(kvs);
        super::released(lock).await;
        let bytes = before.bytes_changed(&DirState::read(dir).map_err(io)?);
        on_pass(SettlePass { pass, bytes, secs: pass_started.elapsed().as_secs_f64() });
        if bytes < IDLE_BYTES {
            return Ok(Settled { merges: pass - 1, bytes: total, secs: started.elapsed().as_secs_f64(), done: true });
        }
        total += bytes;
    }
    Ok(Settled { merges: MAX_PASSES, bytes: total, secs: started.elapsed().as_secs_f64(), done: false })
}
