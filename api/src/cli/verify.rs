//! `verify` (the decision chain and digests of a store, against signed checkpoints) and
//! `verify-bundle` (an evidence bundle, offline).

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{open_store, progress};
use crate::config::Config;

pub(super) async fn verify(
    cfg: &Config,
    checkpoints: Option<&Path>,
    pinned: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<()> {
    use graph_model::checkpoint::{self, Verdict};
    let started = std::time::Instant::now();
    let lines = match checkpoints {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some((path, checkpoint::parse_file(&text)))
        }
        None => None,
    };
    progress(&format!("opening {}", cfg.db.url));
    let store = open_store(cfg).await?;
    progress("recomputing the decision chain");
    let chain = store.verify_decision_chain_links().await;
    progress("checking policy and evidence digests");
    let digests = store.verify_digests().await;
    store.close().await;
    let (chain, links) = chain?;
    let digests = digests?;
    let compared = lines.map(|(path, lines)| (path, checkpoint::compare(&links, &lines, pinned)));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "decision chain: {} records, head {}{}",
        chain.length,
        &chain.head_hash[..16.min(chain.head_hash.len())],
        if chain.ok() { ", intact" } else { "" }
    );
    println!("policies: {} versions, {} altered", digests.policies, digests.altered_policies.len());
    println!("evidence: {} items, {} altered", digests.evidence, digests.altered_evidence.len());
    for id in digests.altered_policies.iter().chain(&digests.altered_evidence) {
        eprintln!("{id}: content no longer matches its SHA-256");
    }
    if let Some((path, report)) = &compared {
        let key = report.key.as_deref().unwrap_or("none");
        let pinned = if pinned.is_some() { "the key given" } else { "compare it with the key you trust" };
        println!("checkpoints: {} in {}, signed by {key} ({pinned})", report.checkpoints, path.display());
        match &report.verdict {
            Verdict::Consistent { checked, after } => {
                println!("checkpoints: decisions #1..=#{checked} are the ones they saw; {after} taken since")
            }
            Verdict::Restored { at, seen } => println!(
                "checkpoints: the chain is what they saw, cut short: restored at seq {at} (they saw #{seen}); decisions #{}..=#{seen} are missing",
                at + 1
            ),
            Verdict::Differs { .. } | Verdict::BadFile { .. } => {}
        }
    }
    println!("checked in {secs:.2}s");
    if let Some(b) = &chain.first_broken {
        let at = b.decision.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
        bail!("the decision chain is broken at #{}{at}: {}", b.seq, b.problem);
    }
    if !digests.altered_policies.is_empty() || !digests.altered_evidence.is_empty() {
        bail!("stored records no longer match their digests");
    }
    match compared.map(|(path, r)| (path, r.verdict)) {
        Some((_, Verdict::Differs { seq, decision, line })) => {
            let at = decision.map(|d| format!(" ({d})")).unwrap_or_default();
            bail!(
                "decision #{seq}{at} is not the one the checkpoint on line {line} saw: the chain was rewritten from #{seq} on"
            )
        }
        Some((path, Verdict::BadFile { line, problem })) => bail!("{}:{line}: {problem}", path.display()),
        Some((_, Verdict::Restored { at, .. })) => {
            bail!("the chain is a prefix of what the checkpoints saw: restored at seq {at}")
        }
        _ => Ok(()),
    }
}

pub(super) fn verify_bundle(dir: &std::path::Path) -> Result<()> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.insert(rel, bytes);
        }
    }
    let report = graph_model::bundle::verify(&files);
    for p in &report.problems {
        eprintln!("{}: {p}", dir.display());
    }
    println!(
        "{}: {} files, {} decisions, {} pieces of evidence, {} policy versions{}",
        dir.display(),
        report.files,
        report.decisions,
        report.evidence,
        report.policies,
        if report.ok() { ": intact" } else { "" }
    );
    if !report.ok() {
        bail!("the bundle does not verify ({} problems)", report.problems.len());
    }
    Ok(())
}
