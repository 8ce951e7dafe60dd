//! `export`: evidence bundles of a case or a campaign, and CSV tables for auditors.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use graph_model::bundle::About;

use super::{CsvTable, open_store, progress};
use crate::config::Config;

/// Write the evidence bundle of a case or a campaign.
pub(super) async fn export_bundle(cfg: &Config, about: About, out: Option<PathBuf>) -> Result<()> {
    let name = match &about {
        About::Case(id) | About::Campaign(id) => id.key().to_owned(),
        About::Period(p) => format!("{}-{}", p.from.format("%Y%m%d"), p.to.format("%Y%m%d")),
    };
    let dir = out.unwrap_or_else(|| PathBuf::from(format!("bundle-{name}")));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{}: exists and is not empty; name a new directory with --out", dir.display());
    }
    progress(&format!("opening {}", cfg.db.url));
    let store = open_store(cfg).await?;
    progress(&format!("collecting {name}"));
    let files = match &about {
        About::Case(id) => store.evidence_bundle(id).await,
        About::Campaign(id) => store.campaign_bundle(id).await,
        About::Period(p) => store.period_bundle(p).await,
    };
    store.close().await;
    let files = files.map_err(|e| anyhow!("{name}: {e}"))?;
    let total = files.len();
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &f.bytes).with_context(|| format!("writing {}", path.display()))?;
        progress(&format!("wrote {}/{total} files", i + 1));
    }
    let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    println!("{}: {total} files, {bytes} bytes; check it with `nhigov verify-bundle {}`", dir.display(), dir.display());
    Ok(())
}

pub(super) async fn export_csv(
    cfg: &Config,
    table: CsvTable,
    framework: Option<String>,
    from: Option<chrono::DateTime<Utc>>,
    to: Option<chrono::DateTime<Utc>>,
    out: Option<PathBuf>,
) -> Result<()> {
    let reference = framework
        .map(|f| graph_model::FrameworkRef::parse(&f))
        .transpose()
        .map_err(|e| anyhow!("--framework: {}", e.message))?;
    let store = open_store(cfg).await?;
    let csv = match table {
        CsvTable::Decisions => {
            let f = graph_model::store::DecisionFilter { reference, from, to, ..Default::default() };
            store.decisions_csv(&f).await
        }
        CsvTable::Evidence => {
            let f = graph_model::store::EvidenceFilter {
                reference,
                collected_from: from,
                collected_to: to,
                ..Default::default()
            };
            store.evidence_csv(&f).await
        }
    };
    store.close().await;
    let csv = csv?;
    let rows = csv.lines().count().saturating_sub(1);
    match out {
        Some(path) => {
            std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{}: {rows} rows", path.display());
        }
        None => print!("{csv}"),
    }
    Ok(())
}
