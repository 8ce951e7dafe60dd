//! The SDK handle a [`Store`](super::Store) sends its statements through.
//!
//! A remote server and the in-memory engine go through the SDK's `any` engine. An
//! embedded SurrealKV directory does not: `connect` gives SurrealKV half the host's
//! memory for its block cache and a memtable of up to 1 GiB, with no way to set
//! either (URL parameters reach the datastore renamed `datastore_*`, which SurrealKV
//! does not read). So the datastore is built here, with the sizes of
//! [`EmbeddedMemory`] (and its block size), exactly as the SDK's local engine
//! builds it otherwise (version check, bootstrap, then the maintenance tasks), and
//! handed to the SDK. Both handles answer queries alike; the two arms differ only in
//! the engine type the SDK is generic over, so every use dispatches through
//! [`on_conn`].

use std::path::Path;

use futures::StreamExt;
use futures::stream::BoxStream;
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::engine::local::Db;
use surrealdb::types::Value;
use surrealdb_engine_local::Datastore;

use super::{Result, StoreError};

/// How much memory an embedded SurrealKV store may keep: its block cache (blocks read
/// from disk) and its memtable (writes not yet flushed to a table file); and the size
/// of the blocks it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedMemory {
    pub block_cache_bytes: u64,
    pub memtable_bytes: u64,
    /// 4 KiB by default, where SurrealKV's is 64 KiB. SurrealKV 0.21 copies a whole
    /// block, and the index block that points to it, for every read of one key that
    /// misses the memtable (`Block::iter` clones the block's bytes), and nhigov's
    /// writes read keys all the time: an edge checks its two ends, its unique key, the
    /// table's definition. With 64 KiB blocks that copying was the largest single cost
    /// of a bulk import (BENCHMARKS.md, "Bulk import, smaller blocks"). A store written
    /// with other blocks reads as well: each table file records its own.
    pub block_bytes: u64,
}

impl EmbeddedMemory {
    const MIB: u64 = 1024 * 1024;

    /// 256 MiB of block cache and a 128 MiB memtable. The memtable bounds one
    /// transaction; the largest nhigov writes are a bulk import's batches and the parts
    /// of a control version's first evaluation (`StoreConfig::evaluation_part`), both
    /// sized to fit (measured on the 100,000-NHI benchmark graph). A larger memtable
    /// costs memory as it fills and, in SurrealKV 0.21, time: a reverse range read walks
    /// back over its keys from the end.
    pub const DEFAULT: EmbeddedMemory =
        EmbeddedMemory { block_cache_bytes: 256 * Self::MIB, memtable_bytes: 128 * Self::MIB, block_bytes: 4096 };

    /// The most either may be: 1 TiB.
    const MAX_MIB: u64 = 1024 * 1024;

    /// From sizes in MiB, each from 16 MiB to 1 TiB.
    pub fn from_mib(block_cache: u64, memtable: u64) -> std::result::Result<EmbeddedMemory, String> {
        let range = 16..=Self::MAX_MIB;
        if !range.contains(&block_cache) || !range.contains(&memtable) {
            return Err(format!(
                "the block cache and the memtable take 16 MiB to 1 TiB each (given {block_cache} and {memtable})"
            ));
        }
        Ok(EmbeddedMemory {
            block_cache_bytes: block_cache * Self::MIB,
            memtable_bytes: memtable * Self::MIB,
            ..Self::DEFAULT
        })
    }
}

impl Default for EmbeddedMemory {
    fn default() -> Self {
        EmbeddedMemory::DEFAULT
    }
}

/// SurrealKV's settings for `memory`.
pub(crate) fn engine_config(memory: EmbeddedMemory) -> surrealdb_cnf::ConfigMap {
    surrealdb_cnf::ConfigMap::from_config_string(&format!(
        "surrealkv_block_cache_capacity={}&surrealkv_max_memtable_size={}&surrealkv_block_size={}",
        memory.block_cache_bytes, memory.memtable_bytes, memory.block_bytes
    ))
}

/// An open SDK handle.
pub(crate) enum Conn {
    /// A remote server, or the in-memory engine.
    Any(Surreal<Any>),
    /// An embedded SurrealKV datastore built with bounded memory.
    Kv(Surreal<Db>),
}

/// Run `$body` with `$db` bound to whichever handle `$conn` holds.
macro_rules! on_conn {
    ($conn:expr, $db:ident => $body:expr) => {
        match $conn {
            Conn::Any($db) => $body,
            Conn::Kv($db) => $body,
        }
    };
}

impl Conn {
    /// Open the embedded SurrealKV store at `url` (`surrealkv://PATH?...`).
    pub(crate) async fn embedded(url: &str, memory: EmbeddedMemory) -> Result<Conn> {
        let config = engine_config(memory);
        let engine = |e: &dyn std::fmt::Display| StoreError::Database(format!("opening {url}: {e}"));
        // The maintenance tasks start after the version check and the bootstrap, as
        // the SDK's own local engine starts them: a task that writes first would make
        // a new directory look like one written before the version key existed.
        let kvs = Datastore::builder()
            .with_config(config)
            .without_maintenance_tasks()
            .build_with_path(url)
            .await
            .map_err(|e| engine(&e))?;
        kvs.check_version().await.map_err(|e| engine(&e))?;
        kvs.bootstrap().await.map_err(|e| engine(&e))?;
        kvs.start_maintenance_tasks();
        Ok(Conn::Kv(Surreal::<Db>::unstable_from_datastore(kvs, None).await?))
    }

    /// Send one batch of statements, with its variables.
    pub(crate) async fn query(&self, sql: String, vars: Option<Value>) -> surrealdb::Result<surrealdb::IndexedResults> {
        on_conn!(self, db => match vars {
            Some(vars) => db.query(sql).bind(vars).await,
            None => db.query(sql).await,
        })
    }

    /// Run statements that read, yielding each row as the engine produces it, with the
    /// index of its statement: a whole table in one pass, where pages after a cursor
    /// would each scan from the table's start. A statement that fails ends the stream
    /// with its error (its rows so far are to be discarded).
    pub(crate) fn stream_rows(&self, sql: String) -> Result<BoxStream<'static, Result<(usize, Value)>>> {
        use surrealdb::method::StreamItem;
        let items = on_conn!(self, db => db.query(sql).stream_items()?);
        Ok(items
            .filter_map(|item| async move {
                match item {
                    Ok(StreamItem::Row { statement, value }) => Some(Ok((statement, value))),
                    Ok(StreamItem::StatementEnd { result: Ok(()), .. }) => None,
                    Ok(StreamItem::StatementEnd { result: Err(e), .. }) | Err(e) => Some(Err(StoreError::from(e))),
                }
            })
            .boxed())
    }

    pub(crate) async fn use_database(&self, namespace: &str, database: &str) -> surrealdb::Result<()> {
        on_conn!(self, db => db.use_ns(namespace.to_owned()).use_db(database.to_owned()).await.map(|_| ()))
    }

    /// End the session: the engine shuts down once the last handle is gone.
    pub(crate) async fn invalidate(&self) -> surrealdb::Result<()> {
        on_conn!(self, db => db.invalidate().await)
    }

    /// The database as SurrealQL (its records and schema; no users, accesses or
    /// database definition), in chunks.
    pub(crate) async fn export(&self) -> Result<BoxStream<'static, Result<Vec<u8>>>> {
        Ok(on_conn!(self, db => db
            .export(())
            .with_config()
            .users(false)
            .accesses(false)
            .database_definition(false)
            .into_owned()
            .await?
            .map(|chunk| chunk.map_err(StoreError::from))
            .boxed()))
    }

    /// Run the SurrealQL dump at `file`.
    pub(crate) async fn import(&self, file: &Path) -> surrealdb::Result<()> {
        on_conn!(self, db => db.import(file).await)
    }
}
