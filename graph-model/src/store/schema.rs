//! Schema versioning: the definitions in `schema.surql` are applied when a store's
//! recorded version (`meta:schema`) is older than this build's, or absent, and the new
//! version is recorded in the same transaction. A store already at this version is left
//! alone: re-applying would rebuild every index. A database whose recorded version is
//! newer than this build's is refused before anything is written to it.
//!
//! Values that new definitions add to records already stored (`backfill.surql`) are
//! written afterwards, in a transaction of their own, and recorded as
//! `meta:schema.backfilled`: SurrealDB 3.3 builds an index defined inside a transaction
//! from the records as they were committed before it, so a fill-in in the same
//! transaction would be missing from the index (measured: a range read of such an index
//! found nothing). A store that stopped between the two steps fills in at its next open.
//!
//! An upgrade leaves out the indexes whose definition the store already has, word for
//! word ([`unchanged_indexes`]): `DEFINE INDEX OVERWRITE` rebuilds an index from every
//! record of its table, and at 100,000 NHIs (900,000 edges, some 120 indexes) rebuilding
//! them all took five minutes and 3 GiB, where the indexes an upgrade changes are a few.

use std::collections::HashSet;

use futures::StreamExt;
use tracing::{debug, info};

use super::{Result, Store, StoreError, Vars, take};
use crate::domain::graph::HELD;

/// The version of `schema.surql`. Raise it with every change to the definitions.
pub const SCHEMA_VERSION: u32 = 28;

/// The last version that added a fill-in: a value written onto stored records by
/// `backfill.surql`, [`fill_in_parts`], [`stamp_edges`] or the move of control results.
/// Raise it with every new one. A store filled in at this version or a later one has
/// nothing left to fill, since every record written since carries the values, and an
/// upgrade that adds only definitions (indexes) skips the passes: at 100,000 NHIs they
/// read every table once, about 6 s, to find nothing.
const LAST_FILL_IN: u32 = 25;

const SCHEMA: &str = include_str!("schema.surql");
const BACKFILL: &str = include_str!("backfill.surql");

#[derive(serde::Deserialize, Default)]
struct Recorded {
    version: Option<u32>,
    backfilled: Option<u32>,
}

pub(super) async fn migrate(store: &Store) -> Result<()> {
    let mut resp = store
        .read(
            "DEFINE TABLE IF NOT EXISTS meta SCHEMALESS; RETURN (SELECT version, backfilled FROM ONLY meta:schema);",
            &Vars::new(),
        )
        .await?;
    let recorded: Option<Recorded> = take(&mut resp, 1)?;
    let Recorded { version: found, backfilled } = recorded.unwrap_or_default();
    if let Some(found) = found
        && found > SCHEMA_VERSION
    {
        return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    if found == Some(SCHEMA_VERSION) {
        // Applying the definitions again would rebuild every index (`DEFINE INDEX
        // OVERWRITE` does), which on a store of a million edges takes minutes.
        debug!(version = SCHEMA_VERSION, "schema is current");
    } else {
        let kept = match found {
            Some(_) => unchanged_indexes(store, SCHEMA).await?,
            None => HashSet::new(),
        };
        let definitions = without_lines(SCHEMA, &kept);
        let sql = format!(
            "BEGIN;\n{definitions}\nUPSERT meta:schema SET version = $version, applied_at = time::now();\nCOMMIT;"
        );
        store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
        info!(from = ?found, to = SCHEMA_VERSION, indexes_kept = kept.len(), "schema applied");
    }
    if backfilled.is_some_and(|b| (LAST_FILL_IN..SCHEMA_VERSION).contains(&b)) {
        store
            .write(
                "UPDATE meta:schema SET backfilled = $version;",
                &Vars::new().set("version", i64::from(SCHEMA_VERSION)),
            )
            .await?;
        debug!(from = ?backfilled, to = SCHEMA_VERSION, "nothing new to fill in");
    } else if backfilled != Some(SCHEMA_VERSION) {
        // A new store has nothing to fill in, but the statements cost little on it.
        stamp_edges(store, FILL_PART).await?;
        fill_in_parts(store, FILL_PART).await?;
        let moved = store.move_result_rows(FILL_PART).await?;
        if moved > 0 {
            info!(results = moved, "control results moved into blocks");
        }
        let sql = format!("BEGIN;\n{BACKFILL}\nUPDATE meta:schema SET backfilled = $version;\nCOMMIT;");
        store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
        debug!(version = SCHEMA_VERSION, "stored records filled in");
    }
    Ok(())
}

/// The lines of `schema` that define an index exactly as the store already has it
/// (`DEFINE INDEX OVERWRITE name ON table ...;` on one line, against `INFO FOR TABLE`'s
/// `DEFINE INDEX name ON table ...`). Applying such a line would only rebuild the index
/// to what it holds. A definition written any other way is not matched, and rebuilt.
async fn unchanged_indexes<'s>(store: &Store, schema: &'s str) -> Result<HashSet<&'s str>> {
    let defined: Vec<(&str, &str, String)> = schema
        .lines()
        .filter_map(|line| {
            let def = line.trim().strip_prefix("DEFINE INDEX OVERWRITE ")?.strip_suffix(';')?;
            let mut words = def.split_whitespace();
            let (_name, on, table) = (words.next()?, words.next()?, words.next()?);
            (on == "ON").then(|| (line, table, format!("DEFINE INDEX {def}")))
        })
        .collect();
    let mut resp = store.read("INFO FOR DB", &Vars::new()).await?;
    let db: serde_json::Value = take(&mut resp, 0)?;
    let mut tables: Vec<&str> = defined.iter().map(|(_, t, _)| *t).filter(|t| db["tables"].get(t).is_some()).collect();
    tables.sort_unstable();
    tables.dedup();
    if tables.is_empty() {
        return Ok(HashSet::new());
    }
    let sql: String = tables.iter().map(|t| format!("INFO FOR TABLE {t};")).collect();
    let mut resp = store.read(&sql, &Vars::new()).await?;
    let mut stored = HashSet::new();
    for i in 0..tables.len() {
        let info: serde_json::Value = take(&mut resp, i)?;
        if let Some(indexes) = info["indexes"].as_object() {
            stored.extend(indexes.values().filter_map(|d| d.as_str()).map(normalised));
        }
    }
    Ok(defined.into_iter().filter(|(_, _, def)| stored.contains(&normalised(def))).map(|(line, _, _)| line).collect())
}

/// A definition with its words separated by one space.
fn normalised(def: &str) -> String {
    def.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `schema` without the lines in `skip`.
fn without_lines(schema: &str, skip: &HashSet<&str>) -> String {
    schema.lines().filter(|line| !skip.contains(line)).collect::<Vec<_>>().join("\n")
}

/// The tables whose every record a fill-in touches ([`fill_in_parts`]).
const PAGED: [&str; 9] = ["person", "team", "nhi", "secret", "system", "alert", "case", "request", "exception"];

/// Records per transaction of [`fill_in_parts`]: about 10 MB written each.
const FILL_PART: usize = 10_000;

/// The revisions the schema's events move when what decides a node's owners (or a
/// team's members) changes (version 25). A decision whose owner check has seen a
/// revision before skips reading the owners again while it holds.
const REVISIONS: [(&str, &str); 4] =
    [("nhi", "owners_rev"), ("secret", "owners_rev"), ("system", "owners_rev"), ("team", "members_rev")];

/// The fill-ins that touch every record of a table, in transactions of `part` records
/// each, before the rest of `backfill.surql` (which then finds nothing left of them): at
/// 100,000 NHIs, one transaction writing them all (125 MB, 390,000 keys) is more than the
/// embedded store's memtable holds. Each part is idempotent, so a store that stops
/// between two parts goes on at its next open.
async fn fill_in_parts(store: &Store, part: usize) -> Result<()> {
    for table in PAGED {
        let filled = fill_in(store, table, "page_set", "0", part).await?;
        if filled > 0 {
            info!(table, records = filled, "page set filled in");
        }
    }
    // Without a revision, every owner check reads the owners in full.
    for (table, field) in REVISIONS {
        let filled = fill_in(store, table, field, "rand::ulid()", part).await?;
        if filled > 0 {
            info!(table, records = filled, field, "revisions filled in");
        }
    }
    Ok(())
}

/// Set `field` to `value` (an expression over the record) on every record of `table`
/// that lacks it, `part` records a transaction; how many were filled in.
///
/// The records are found in one streamed pass over the table, and each part is written
/// by id as soon as it is whole: a `LIMIT` read again for each part scans the table
/// from its start past every record filled in before (about 550,000 record reads for
/// the 100,000 NHIs of a large graph, in parts of 10,000), where one pass reads each once.
async fn fill_in(store: &Store, table: &str, field: &str, value: &str, part: usize) -> Result<usize> {
    let mut rows = store.stream_rows(format!("SELECT VALUE id FROM {table} WHERE {field} = NONE;"))?;
    let mut ids: Vec<surrealdb::types::Value> = Vec::with_capacity(part);
    let mut filled = 0;
    loop {
        let row = rows.next().await.transpose()?;
        let done = row.is_none();
        ids.extend(row.map(|(_, id)| id));
        if ids.len() == part || (done && !ids.is_empty()) {
            // A record written since the pass began may have the field already.
            let sql = format!("UPDATE $ids SET {field} = {value} WHERE {field} = NONE RETURN NONE;");
            filled += ids.len();
            store.write(&sql, &Vars::new().set("ids", std::mem::take(&mut ids))).await?;
        }
        if done {
            return Ok(filled);
        }
    }
}

/// The definition of `table`'s `changed_at` as `schema.surql` has it (every write stamps
/// it with the time of the write), and the same without its `VALUE` clause.
fn changed_at_definitions(table: &str) -> Result<(&'static str, String)> {
    let prefix = format!("DEFINE FIELD OVERWRITE changed_at ON {table} ");
    let line = SCHEMA.lines().find(|l| l.starts_with(&prefix)).map(str::trim_end);
    let bare = line.and_then(|l| l.split_once(" VALUE ")).map(|(head, _)| format!("{head};"));
    match (line, bare) {
        (Some(line), Some(bare)) => Ok((line, bare)),
        _ => Err(StoreError::Database(format!("schema.surql defines no stamped changed_at on {table}"))),
    }
}

/// Edges stored before version 24 get `changed_at`: the latest of the times they were
/// opened, closed and granted, as the three indexes it replaces read them, so that no
/// look for changes after the upgrade finds every edge changed at once (a full re-read
/// of 900,000 edges by the graph index and the control evaluator). The field is defined
/// without its `VALUE` clause while the stored edges are filled in, which would stamp
/// them with the time of the fill-in, and with it again after; a store that stops in
/// between is filled in, and the clause restored, at its next open (the fill-in runs
/// until `meta:schema.backfilled` records the version). Transactions of `part` edges,
/// each read through the `changed_at` index, where the edges without one come first.
/// The kinds the graph index holds: nothing reads the stamps of `stored_in` edges, which
/// have no index on them (their next write stamps them).
async fn stamp_edges(store: &Store, part: usize) -> Result<()> {
    for kind in HELD {
        let table = kind.as_str();
        let (stamped, bare) = changed_at_definitions(table)?;
        store.write(&bare, &Vars::new()).await?;
        let last = "array::max([created_at, valid_to ?? created_at, granted_at ?? created_at])";
        let filled = fill_in(store, table, "changed_at", last, part).await?;
        store.write(stamped, &Vars::new()).await?;
        if filled > 0 {
            info!(table, edges = filled, "edges stamped with their last change");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    /// The two tables kept schemaless so that their large objects are not walked path by
    /// path on every write (`control_block`, `control_change_part`) still refuse a field
    /// of the wrong type, a change without its status, and a record without its fields.
    #[tokio::test]
    async fn the_schemaless_result_tables_are_typed_all_the_same() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        let kept = "CREATE control_block:ok SET control = 'c', results = { 'nhi:a': { status: 'pass' } };
             CREATE control_change_part:ok SET control = 'c', version = 1, at = time::now(),
                 decision = decision:d, changes = [{ subject: nhi:a, after: 'pass', facts: '' }];";
        store.execute_raw(kept).await.unwrap();
        for refused in [
            "CREATE control_block SET control = 'c', results = 'everything passes';",
            "CREATE control_block SET control = 7, results = {};",
            "CREATE control_change_part SET control = 'c', version = 1, at = time::now(), decision = decision:d,
                 changes = [{ subject: nhi:a, facts: '' }];",
            "CREATE control_change_part SET control = 'c', version = 'one', at = time::now(), decision = decision:d,
                 changes = [];",
            "CREATE control_change_part SET control = 'c', changes = [];",
        ] {
            let err = store.execute_raw(refused).await.unwrap_err();
            assert!(matches!(err, StoreError::Database(_) | StoreError::Invalid(_)), "{refused}: {err:?}");
        }
    }

    /// An upgrade rebuilds only the indexes whose definition changed: the others are
    /// left out of what it applies, and the changed one is defined again.
    #[tokio::test]
    async fn an_upgrade_rebuilds_only_the_indexes_that_changed() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        let defined = SCHEMA.lines().filter(|l| l.starts_with("DEFINE INDEX OVERWRITE ")).count();
        assert!(defined > 100, "{defined}");
        assert_eq!(unchanged_indexes(&store, SCHEMA).await.unwrap().len(), defined, "every index as the schema has it");
        store
            .execute_raw(
                "DEFINE INDEX OVERWRITE nhi_kind ON nhi FIELDS kind, status;
                 UPDATE meta:schema SET version = 1, backfilled = 1;",
            )
            .await
            .unwrap();
        let kept = unchanged_indexes(&store, SCHEMA).await.unwrap();
        assert_eq!(kept.len(), defined - 1);
        let applied = without_lines(SCHEMA, &kept);
        let rebuilt: Vec<&str> = applied.lines().filter(|l| l.starts_with("DEFINE INDEX")).collect();
        assert_eq!(rebuilt, ["DEFINE INDEX OVERWRITE nhi_kind ON nhi FIELDS kind;"]);
        migrate(&store).await.unwrap();
        let info = store.execute_raw("RETURN (INFO FOR TABLE nhi).indexes.nhi_kind;").await.unwrap();
        assert_eq!(
            info.as_str(),
            Some("DEFINE INDEX nhi_kind ON nhi FIELDS kind"),
            "the changed index is defined again"
        );
        assert_eq!(unchanged_indexes(&store, SCHEMA).await.unwrap().len(), defined);
    }

    /// Edges stored before `changed_at` existed get the latest of the times they were
    /// opened, closed and granted, not the time of the upgrade; the field stamps every
    /// write again after.
    #[tokio::test]
    async fn edges_stored_before_the_change_stamp_get_their_last_change() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        store
            .execute_raw(
                "CREATE nhi:a SET name = 'a', kind = 'service_account', environment = 'production', provider = 'aws', external_id = 'a';
                 CREATE system:s SET name = 's', kind = 'database', environment = 'production';
                 DEFINE FIELD OVERWRITE changed_at ON can_access TYPE option<datetime>;
                 INSERT RELATION INTO can_access [
                     { id: can_access:open, in: nhi:a, out: system:s, valid_from: d'2026-01-01T00:00:00Z', created_at: d'2026-01-01T00:00:00Z' },
                     { id: can_access:closed, in: nhi:a, out: system:s, valid_from: d'2026-01-01T00:00:00Z', created_at: d'2026-01-01T00:00:00Z', valid_to: d'2026-02-01T00:00:00Z' },
                     { id: can_access:granted, in: nhi:a, out: system:s, valid_from: d'2026-01-01T00:00:00Z', created_at: d'2026-01-01T00:00:00Z', valid_to: d'2026-02-01T00:00:00Z', granted_at: d'2026-03-01T00:00:00Z' }
                 ] RETURN NONE;",
            )
            .await
            .unwrap();
        let stamps = || {
            let store = store.clone();
            async move {
                store
                    .execute_raw("RETURN (SELECT VALUE <string>changed_at FROM can_access ORDER BY id);")
                    .await
                    .unwrap()
            }
        };
        assert_eq!(stamps().await, serde_json::json!(["NONE", "NONE", "NONE"]));
        stamp_edges(&store, 2).await.unwrap();
        assert_eq!(
            stamps().await,
            serde_json::json!(["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"]),
            "closed, granted, open: each at its last change"
        );
        let def = store.execute_raw("RETURN (INFO FOR TABLE can_access).fields.changed_at;").await.unwrap();
        assert!(def.as_str().is_some_and(|d| d.contains("VALUE time::now()")), "the clause restored: {def}");
        store.execute_raw("UPDATE can_access:open SET valid_to = time::now() RETURN NONE;").await.unwrap();
        let after = store
            .execute_raw("RETURN (SELECT VALUE changed_at > d'2026-06-01T00:00:00Z' FROM ONLY can_access:open);")
            .await
            .unwrap();
        assert_eq!(after, serde_json::json!(true), "a write after the fill-in stamps its time");
    }

    /// Records written before the page set existed get it, a few at a time, and every
    /// one is then on the page key's index.
    #[tokio::test]
    async fn the_page_set_is_filled_in_part_by_part() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        for i in 0..7 {
            store.execute_raw(&format!("CREATE team:t{i} SET name = 't{i}';")).await.unwrap();
        }
        store
            .execute_raw(
                "REMOVE INDEX team_page ON team; REMOVE FIELD page_set ON team; UPDATE team UNSET page_set RETURN NONE;
                 DEFINE FIELD page_set ON team TYPE int VALUE 0; DEFINE INDEX team_page ON team FIELDS page_set, page_key;",
            )
            .await
            .unwrap();
        let count = |cond: &'static str| {
            let store = store.clone();
            async move {
                let v = store.execute_raw(&format!("RETURN count(SELECT id FROM team WHERE {cond});")).await.unwrap();
                v.as_u64().unwrap()
            }
        };
        assert_eq!(count("page_set = NONE").await, 7);
        fill_in_parts(&store, 3).await.unwrap();
        assert_eq!(count("page_set = NONE").await, 0);
        assert_eq!(count("page_set = 0 AND page_key > ''").await, 7, "every team on the index");
    }

    /// Nodes and teams stored before the ownership revisions existed get one each, so
    /// that their owner checks can be answered from it; a change moves it after.
    #[tokio::test]
    async fn nodes_stored_before_the_revisions_get_one() {
        let store = Store::open(&StoreConfig::memory()).await.unwrap();
        store
            .execute_raw(
                "CREATE nhi:a SET name = 'a', kind = 'service_account', environment = 'production', provider = 'aws', external_id = 'a';
                 CREATE nhi:b SET name = 'b', kind = 'service_account', environment = 'production', provider = 'aws', external_id = 'b';
                 CREATE team:t SET name = 't';
                 UPDATE nhi, team UNSET owners_rev, members_rev RETURN NONE;",
            )
            .await
            .unwrap();
        let revs = || {
            let store = store.clone();
            async move {
                store
                    .execute_raw("RETURN array::concat((SELECT VALUE owners_rev FROM nhi ORDER BY id), (SELECT VALUE members_rev FROM team));")
                    .await
                    .unwrap()
            }
        };
        assert_eq!(revs().await, serde_json::json!([null, null, null]), "stored before the revisions");
        fill_in_parts(&store, 1).await.unwrap();
        let filled = revs().await;
        let filled: Vec<&str> = filled.as_array().unwrap().iter().map(|v| v.as_str().expect("a revision")).collect();
        assert_eq!(filled.len(), 3);
        fill_in_parts(&store, 1).await.unwrap();
        assert_eq!(revs().await, serde_json::json!(filled), "a second pass leaves them");
        store
            .execute_raw("CREATE person:p SET name = 'p', email = 'p@x.example'; RELATE person:p->owns->nhi:a;")
            .await
            .unwrap();
        let after = store.execute_raw("RETURN (SELECT VALUE owners_rev FROM ONLY nhi:a);").await.unwrap();
        assert_ne!(after.as_str(), Some(filled[0]), "a new owner moves it");
    }

    /// An upgrade from a store filled in at the last version that added a fill-in, or
    /// after, records the new version without the passes; one from before runs them.
    #[tokio::test]
    async fn an_upgrade_that_adds_no_fill_in_skips_the_passes() {
        for (filled_at, expect_filled) in [(LAST_FILL_IN, false), (LAST_FILL_IN - 1, true)] {
            let store = Store::open(&StoreConfig::memory()).await.unwrap();
            // A record without the value a fill-in writes stands for one it would find.
            store
                .execute_raw(&format!(
                    "CREATE nhi:a SET name = 'a', kind = 'service_account', environment = 'production', provider = 'aws', external_id = 'a';
                     UPDATE nhi:a UNSET owners_rev RETURN NONE;
                     UPDATE meta:schema SET version = {filled_at}, backfilled = {filled_at};"
                ))
                .await
                .unwrap();
            migrate(&store).await.unwrap();
            let after = store
                .execute_raw("RETURN [(SELECT VALUE owners_rev FROM ONLY nhi:a), (SELECT VALUE backfilled FROM ONLY meta:schema)];")
                .await
                .unwrap();
            assert_eq!(after[0].is_string(), expect_filled, "filled in at {filled_at}: {after}");
            assert_eq!(after[1], serde_json::json!(SCHEMA_VERSION), "filled in at {filled_at}: recorded as done");
        }
    }
}
