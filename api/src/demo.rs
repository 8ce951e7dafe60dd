//! The demo graph (`fixtures/demo.json`), loaded by `nhigov serve --demo` into an empty
//! store so a newcomer can query at once, with the alerts it raises: the stale ownership
//! left by a person who has gone, and a scanner finding about a key nobody knows.

use chrono::Utc;
use graph_model::store::{ImportSummary, Store, StoreError};
use graph_model::{Email, Label, NewAlert, Severity, SubjectRef, Text};

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
    // The demo company's people get their roles the way any deployment's first people
    // do: one genesis decision, the first record of the chain.
    let rationale = Text::parse("the demo company's first roles").map_err(StoreError::from)?;
    let (summary, _) = store.bootstrap(&doc, Utc::now(), &rationale).await?;
    // Lena has left: what she owned alone is flagged.
    for (r, id) in &summary.ids {
        if r == "lena" {
            store.raise_stale_ownership_alerts(id).await?;
        }
    }
    let label = |s: &str| Label::parse(s).map_err(StoreError::from);
    let unknown = NewAlert {
        source: label("trufflehog")?,
        rule: label("AWS")?,
        severity: Severity::High,
        title: Text::parse("verified AWS key in a public gist").map_err(StoreError::from)?,
        detail: None,
        detected_at: Utc::now() - chrono::Duration::hours(3),
        subject: SubjectRef::Fingerprint("b1946ac92492d2347c6235b4d2611184".into()),
        refs: vec![],
        dedupe_key: "demo-unknown-aws-key".into(),
    };
    store.ingest_alert(&unknown).await?;
    Ok(Some(summary))
}

pub fn investigator() -> Email {
    Email::parse(DEMO_INVESTIGATOR).expect("a valid literal address")
}
