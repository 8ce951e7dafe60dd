//! Schema versioning: the definitions in `schema.surql` are applied when a store's
//! recorded version (`meta:schema`) is older than this build's, or absent, and the new
//! version is recorded in the same transaction. A store already at this version is left
//! alone: re-applying would rebuild every index. A database whose recorded version is
//! newer than this build's is refused before anything is written to it.

use tracing::{debug, info};

use super::{Result, Store, StoreError, Vars, take};

/// The version of `schema.surql`. Raise it with every change to the definitions.
pub const SCHEMA_VERSION: u32 = 6;

const SCHEMA: &str = include_str!("schema.surql");

pub(super) async fn migrate(store: &Store) -> Result<()> {
    let mut resp = store
        .read(
            "DEFINE TABLE IF NOT EXISTS meta SCHEMALESS; RETURN (SELECT VALUE version FROM ONLY meta:schema);",
            &Vars::new(),
        )
        .await?;
    let found: Option<u32> = take(&mut resp, 1)?;
    if let Some(found) = found
        && found > SCHEMA_VERSION
    {
        return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    if found == Some(SCHEMA_VERSION) {
        // Applying the definitions again would rebuild every index (`DEFINE INDEX
        // OVERWRITE` does), which on a store of a million edges takes minutes.
        debug!(version = SCHEMA_VERSION, "schema is current");
        return Ok(());
    }
    let sql =
        format!("BEGIN;\n{SCHEMA}\nUPSERT meta:schema SET version = $version, applied_at = time::now();\nCOMMIT;");
    store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
    info!(from = ?found, to = SCHEMA_VERSION, "schema applied");
    Ok(())
}
