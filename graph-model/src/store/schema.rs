//! Schema versioning: the definitions in `schema.surql` are applied at every open, and
//! the version they carry is recorded in `meta:schema`. A database whose recorded version
//! is newer than this build's is refused before anything is written to it.

use tracing::info;

use super::{Result, Store, StoreError, Vars, take};

/// The version of `schema.surql`. Raise it with every change to the definitions.
pub const SCHEMA_VERSION: u32 = 5;

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
    let sql =
        format!("BEGIN;\n{SCHEMA}\nUPSERT meta:schema SET version = $version, applied_at = time::now();\nCOMMIT;");
    store.write(&sql, &Vars::new().set("version", i64::from(SCHEMA_VERSION))).await?;
    info!(from = ?found, to = SCHEMA_VERSION, "schema applied");
    Ok(())
}
