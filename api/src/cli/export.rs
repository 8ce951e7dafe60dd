//! `export`: evidence bundles of a case or a campaign, and CSV tables for auditors.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use graph_model::bundle::About;

use super::{CsvTable, ServerArgs, open_store, parse_id, progress};
use crate::config::Config;

/// `nhigov export`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The case whose evidence bundle to write.
    #[arg(long, conflicts_with_all = ["csv", "campaign"], required_unless_present_any = ["csv", "campaign", "period"])]
    pub case: Option<String>,
    /// The certification campaign whose evidence bundle to write.
    #[arg(long, conflicts_with = "csv")]
    pub campaign: Option<String>,
    /// The bundle of a period (`--from`, `--to`): every decision and piece of
    /// evidence of it, under `--framework` when given (a reference, a NIST CSF
    /// category such as RS.AN or function such as RS, or NHI).
    #[arg(long, conflicts_with_all = ["csv", "case", "campaign"], requires_all = ["from", "to"])]
    pub period: bool,
    /// Write this table as CSV instead.
    #[arg(long, value_enum)]
    pub csv: Option<CsvTable>,
    /// For a bundle, the directory to create (default: bundle-<key>); for CSV, the
    /// file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only rows carrying this framework reference (CSV), or what falls under it
    /// (--period).
    #[arg(long)]
    pub framework: Option<String>,
    /// Only rows at or after this time, RFC 3339 (CSV, --period).
    #[arg(long)]
    pub from: Option<chrono::DateTime<Utc>>,
    /// Only rows before this time, RFC 3339 (CSV, --period).
    #[arg(long)]
    pub to: Option<chrono::DateTime<Utc>>,
    #[arg(long)]
    pub db: Option<String>,
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// What `export` was asked for: a bundle of a case, a campaign or a period, or a table.
pub(super) async fn export(cfg: &Config, a: ExportArgs) -> Result<()> {
    let windowed = a.framework.is_some() || a.from.is_some() || a.to.is_some();
    match (a.case, a.campaign, a.csv) {
        (Some(_), _, _) | (None, Some(_), _) if windowed => {
            bail!("--framework, --from and --to choose rows of --csv or --period, not of one case or campaign")
        }
        (Some(case), _, _) => export_bundle(cfg, About::Case(parse_id("--case", &case)?), a.out).await,
        (None, Some(campaign), _) => {
            export_bundle(cfg, About::Campaign(parse_id("--campaign", &campaign)?), a.out).await
        }
        (None, None, Some(table)) => export_csv(cfg, table, a.framework, a.from, a.to, a.out).await,
        (None, None, None) if a.period => {
            let (Some(from), Some(to)) = (a.from, a.to) else { bail!("--period needs --from and --to") };
            let under = a
                .framework
                .map(|f| graph_model::FrameworkScope::parse(&f))
                .transpose()
                .map_err(|e| anyhow!("--framework: {}", e.message))?;
            let period = graph_model::bundle::Period { from, to, under };
            export_bundle(cfg, About::Period(period), a.out).await
        }
        (None, None, None) => bail!("give --case ID, --campaign ID, --period or --csv decisions|evidence"),
    }
}

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
