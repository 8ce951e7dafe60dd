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

use tracing::{debug, info};

use super::{Result, Store, StoreError, Vars, take};

/// The version of `schema.surql`. Raise it with every change to the definitions.
pub const SCHEMA_VERSION: u32 = 18;

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
        let sql =
            format!("BEGIN;\n{SCHEMA}\nUPSERT meta:schema SET version = $version, applied_at = time::now();\nCOMMIT;");
        store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
        info!(from = ?found, to = SCHEMA_VERSION, "schema applied");
    }
    // A new store has nothing to fill in, but the statements cost little on it.
    if backfilled != Some(SCHEMA_VERSION) {
        fill_in_parts(store, FILL_PART).await?;
        let sql = format!("BEGIN;\n{BACKFILL}\nUPDATE meta:schema SET backfilled = $version;\nCOMMIT;");
        store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
        debug!(version = SCHEMA_VERSION, "stored records filled in");
    }
    Ok(())
}

/// The tables whose every record a fill-in touches ([`fill_in_parts`]).
const PAGED: [&str; 9] = ["person", "team", "nhi", "secret", "system", "alert", "case", "request", "exception"];

/// Records per transaction of [`fill_in_parts`]: about 10 MB written each.
const FILL_PART: usize = 10_000;

/// The fill-ins that touch every record of a table, in transactions of `part` records
/// each, before the rest of `backfill.surql` (which then finds nothing left of them): at
/// 100,000 NHIs, one transaction writing them all (125 MB, 390,000 keys) is more than the
/// embedded store's memtable holds. Each part is idempotent, so a store that stops
/// between two parts goes on at its next open.
async fn fill_in_parts(store: &Store, part: usize) -> Result<()> {
    for table in PAGED {
        let mut filled = 0;
        loop {
            let sql = format!(
                "LET $ids = (SELECT VALUE id FROM {table} WHERE page_set = NONE LIMIT {part});
                 UPDATE $ids SET page_set = 0 RETURN NONE;
                 RETURN array::len($ids);"
            );
            let mut resp = store.write(&sql, &Vars::new()).await?;
            let n: usize = take(&mut resp, 2)?;
            filled += n;
            if n < part {
                break;
            }
        }
        if filled > 0 {
            info!(table, records = filled, "page set filled in");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

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
}
