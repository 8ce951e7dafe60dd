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
pub const SCHEMA_VERSION: u32 = 17;

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
        let sql = format!("BEGIN;\n{BACKFILL}\nUPDATE meta:schema SET backfilled = $version;\nCOMMIT;");
        store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
        debug!(version = SCHEMA_VERSION, "stored records filled in");
    }
    Ok(())
}
