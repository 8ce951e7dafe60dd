//! The demo graph (`fixtures/demo.json`), loaded by `nhigov serve --demo` into an empty
//! store so a newcomer can query at once.

use chrono::Utc;
use graph_model::Email;
use graph_model::inventory::Inventory;
use graph_model::store::{ImportSummary, Store, StoreError};

/// The demo document, built into the binary so `--demo` works from any directory.
pub const DEMO: &str = include_str!("../../fixtures/demo.json");

/// The demo investigator, whose token `serve --demo` prints.
pub const DEMO_INVESTIGATOR: &str = "ines.ortega@corvid.example";
/// The demo administrator.
pub const DEMO_ADMIN: &str = "sam.okafor@corvid.example";

/// Load the demo graph if the store holds no inventory yet; `None` when it was kept.
pub async fn load(store: &Store) -> Result<Option<ImportSummary>, StoreError> {
    if !store.inventory_is_empty().await? {
        return Ok(None);
    }
    let doc: serde_json::Value =
        serde_json::from_str(DEMO).map_err(|e| StoreError::Database(format!("fixtures/demo.json is not JSON: {e}")))?;
    let inv = Inventory::parse(&doc, Utc::now()).map_err(StoreError::Import)?;
    store.import(&inv).await.map(Some)
}

pub fn investigator() -> Email {
    Email::parse(DEMO_INVESTIGATOR).expect("a valid literal address")
}
