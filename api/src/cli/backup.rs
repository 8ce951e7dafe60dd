//! `backup` (a running server's store, or a stopped one's, to a file) and `restore` (a
//! store rebuilt from that file, into an empty database only); and the snapshot that
//! lets `verify` and `export` read a running server's store the same way.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use graph_model::store::{check_backup_file, restore as restore_store};

use super::{open_store, progress};
use crate::config::Config;

/// Where a backup comes from: a running server, over HTTP with an admin's token, or a
/// store opened here (the server that uses it stopped).
pub(super) enum Source<'a> {
    Server { url: &'a str, token: &'a str },
    Store(&'a Config),
}

/// A backup written.
pub(super) struct Saved {
    pub bytes: u64,
    pub sha256: String,
    pub secs: f64,
}

/// `nhigov backup`: from the server `remote` names, or from the store `cfg` names,
/// and say where it went and how to restore it.
pub(super) async fn take(cfg: &Config, remote: &super::ServerArgs, out: &Path) -> Result<()> {
    let source = match (&remote.server, &remote.token) {
        (Some(url), Some(token)) => Source::Server { url, token },
        (Some(_), None) => bail!("--server needs an admin's --token (or NHIGOV_TOKEN)"),
        (None, _) => Source::Store(cfg),
    };
    let saved = backup(source, out).await?;
    println!(
        "{}: {} bytes in {:.1}s, SHA-256 {}; restore it with `nhigov restore {} --db <an empty store>`",
        out.display(),
        saved.bytes,
        saved.secs,
        saved.sha256,
        out.display()
    );
    Ok(())
}

/// Write a backup to `out`: to `out.partial` first, renamed once whole, so a file with
/// the final name is always a complete backup.
pub(super) async fn backup(source: Source<'_>, out: &Path) -> Result<Saved> {
    if out.exists() {
        bail!("{}: exists; name a new file with --out", out.display());
    }
    let started = std::time::Instant::now();
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?,
    );
    let written = match source {
        Source::Server { url, token } => {
            let endpoint = format!("{}/admin/backup", url.trim_end_matches('/'));
            progress(&format!("asking {endpoint} for a backup"));
            let mut resp = reqwest::Client::new()
                .get(&endpoint)
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("cannot reach {endpoint}"))?;
            if !resp.status().is_success() {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let _ = std::fs::remove_file(&partial);
                bail!("{endpoint}: {status}: {}", refusal(&body));
            }
            let mut written = 0u64;
            loop {
                let chunk = match resp.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = std::fs::remove_file(&partial);
                        bail!("{endpoint}: the backup stopped after {written} bytes: {e}");
                    }
                };
                written += write_chunk(&mut file, &partial, &chunk, written)?;
            }
            written
        }
        Source::Store(cfg) => {
            progress(&format!("opening {}", cfg.db.url));
            let store = open_store(cfg).await?;
            let mut dump = store.backup().await.map_err(|e| anyhow!("{}: {e}", cfg.db.url))?;
            let mut written = 0u64;
            let mut failed = None;
            while let Some(chunk) = dump.next().await {
                match chunk {
                    Ok(chunk) => written += write_chunk(&mut file, &partial, &chunk, written)?,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            drop(dump);
            store.close().await;
            if let Some(e) = failed {
                let _ = std::fs::remove_file(&partial);
                bail!("{}: the backup stopped after {written} bytes: {e}", cfg.db.url);
            }
            written
        }
    };
    file.flush().with_context(|| format!("writing {}", partial.display()))?;
    file.get_ref().sync_all().with_context(|| format!("writing {}", partial.display()))?;
    drop(file);
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    // Checked as `restore` will check it, a piece at a time.
    let checked = match check_backup_file(&partial) {
        Ok(checked) => checked,
        Err(problem) => bail!("{}: {problem}; kept for inspection, not renamed", partial.display()),
    };
    std::fs::rename(&partial, out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    Ok(Saved { bytes: written, sha256: checked.sha256, secs: started.elapsed().as_secs_f64() })
}

/// Append one chunk, showing the running size on a terminal.
fn write_chunk(file: &mut impl Write, path: &Path, chunk: &[u8], before: u64) -> Result<u64> {
    file.write_all(chunk).with_context(|| format!("writing {}", path.display()))?;
    if std::io::stderr().is_terminal() {
        eprint!("\r{} bytes written   ", before + chunk.len() as u64);
    }
    Ok(chunk.len() as u64)
}

/// The message of an error body the server wrote, or the body's start.
fn refusal(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Rebuild the store `cfg` names from `file`, then verify it as `nhigov verify` does.
pub(super) async fn restore(cfg: &Config, file: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    progress(&format!("restoring {} into {}", file.display(), cfg.db.url));
    let restored = restore_store(&cfg.store_config(), file).await.map_err(|e| anyhow!("{e}"))?;
    println!(
        "restored {} bytes from {} into {} in {:.1}s; verifying",
        restored.bytes,
        file.display(),
        cfg.db.url,
        started.elapsed().as_secs_f64()
    );
    super::settle(cfg).await;
    super::verify::verify(cfg, None, None).await
}

/// A running server's store, copied into a temporary embedded store through a backup:
/// the configuration to read it with, and the directory that holds it (removed when
/// dropped).
pub(super) async fn snapshot(cfg: &Config, url: &str, token: &str) -> Result<(Config, tempfile::TempDir)> {
    let dir = tempfile::tempdir().context("creating a temporary directory for the snapshot")?;
    let file = dir.path().join("snapshot.surql");
    backup(Source::Server { url, token }, &file).await?;
    let mut local = cfg.clone();
    local.db.url = dir.path().join("store").display().to_string();
    local.db.username = None;
    local.db.password = None;
    restore_store(&local.store_config(), &file).await.map_err(|e| anyhow!("{e}"))?;
    Ok((local, dir))
}
