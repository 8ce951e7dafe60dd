//! Evidence bundles: everything an auditor needs about one case, or one certification
//! campaign, as files that can be checked offline.
//!
//! A case's bundle is a directory of JSON files: the case, its timeline, each piece of
//! evidence (graph snapshots among them), its decisions with their place in the chain,
//! the policy versions those decisions were taken under, the traversals made for the
//! case, the people named, and `manifest.json`, which lists every other file with its
//! SHA-256 and size, and the chain head at export time. A campaign's bundle holds the
//! campaign, its review items with the facts each reviewer saw and the answer, its
//! report, the requests the answers filed, every decision (the start, each answer,
//! escalations, and the decisions on those requests), their policy versions, the people
//! named, and the manifest.
//!
//! [`verify`] checks a bundle without the service: every file listed and unaltered,
//! nothing unlisted, every piece of evidence matching its digest, every decision
//! matching its own hash, every policy version matching its digest, and every decision's
//! policy present with the digest the decision recorded. A decision's hash covers the
//! previous record's hash, so the bundle can also be tied to the live chain: the same
//! `seq` must carry the same `hash` there (`verifyDecisionChain` recomputes it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::campaign::{Campaign, ReviewItem};
use super::case::{Case, Evidence, sha256_hex};
use super::decision::{ChainHead, Decision};
use super::framework::{FrameworkRef, FrameworkScope};
use super::ids::NodeId;
use super::policy::Policy;

/// The `format` of the manifests this build writes and reads.
pub const FORMAT: &str = "nhigov-evidence-bundle/1";
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// One file of a bundle: its path inside the bundle and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

impl BundleFile {
    /// A file holding `value` as pretty JSON.
    pub fn json(path: impl Into<String>, value: &impl Serialize) -> Result<BundleFile, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        Ok(BundleFile { path: path.into(), bytes })
    }
}

/// A listed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// What a bundle is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    Case(NodeId),
    Campaign(NodeId),
    /// Every decision and piece of evidence of a time window, under a framework scope.
    Period(Period),
}

/// A time window, `from` included and `to` not, and optionally the part of a framework
/// the records must fall under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under: Option<FrameworkScope>,
}

impl Period {
    /// Does a record of time `at` carrying `refs` belong to the period?
    pub fn holds(&self, at: DateTime<Utc>, refs: &[FrameworkRef]) -> bool {
        self.from <= at && at < self.to && self.under.as_ref().is_none_or(|s| refs.iter().any(|r| s.covers(r)))
    }
}

/// What a bundle holds, and the digest of each file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The case a case's bundle is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<NodeId>,
    /// The campaign a campaign's bundle is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<NodeId>,
    /// The period a period's bundle is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    pub exported_at: DateTime<Utc>,
    /// The decision chain's head when the bundle was made.
    pub chain_head: ChainHead,
    pub decisions: usize,
    pub evidence: usize,
    pub policies: usize,
    pub files: Vec<ManifestEntry>,
}

/// Add the manifest to `files` (sorted by path) and return the whole bundle.
pub fn seal(
    about: &About,
    head: ChainHead,
    exported_at: DateTime<Utc>,
    counts: (usize, usize, usize),
    mut files: Vec<BundleFile>,
) -> Result<Vec<BundleFile>, serde_json::Error> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format: FORMAT.into(),
        case: match about {
            About::Case(id) => Some(id.clone()),
            _ => None,
        },
        campaign: match about {
            About::Campaign(id) => Some(id.clone()),
            _ => None,
        },
        period: match about {
            About::Period(p) => Some(p.clone()),
            _ => None,
        },
        exported_at,
        chain_head: head,
        decisions: counts.0,
        evidence: counts.1,
        policies: counts.2,
        files: files
            .iter()
            .map(|f| ManifestEntry { path: f.path.clone(), sha256: sha256_hex(&f.bytes), bytes: f.bytes.len() as u64 })
            .collect(),
    };
    files.push(BundleFile::json(MANIFEST, &manifest)?);
    Ok(files)
}

/// The outcome of checking a bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    pub files: usize,
    pub decisions: usize,
    pub evidence: usize,
    pub policies: usize,
    /// What is wrong, each naming the file at fault; empty when the bundle holds.
    pub problems: Vec<String>,
}

impl BundleReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn parse<T: for<'de> Deserialize<'de>>(path: &str, bytes: &[u8], problems: &mut Vec<String>) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{path}: not a valid record: {e}"));
            None
        }
    }
}

/// Check a bundle given as its files by path (the manifest among them).
pub fn verify(files: &BTreeMap<String, Vec<u8>>) -> BundleReport {
    let mut report = BundleReport::default();
    let problems = &mut report.problems;
    let Some(bytes) = files.get(MANIFEST) else {
        problems.push(format!("{MANIFEST}: missing"));
        return report;
    };
    let Some(manifest) = parse::<Manifest>(MANIFEST, bytes, problems) else { return report };
    if manifest.format != FORMAT {
        problems.push(format!("{MANIFEST}: format `{}`, this build reads `{FORMAT}`", manifest.format));
        return report;
    }
    check_listed(files, &manifest, problems);
    report.files = manifest.files.len();

    match (&manifest.case, &manifest.campaign, &manifest.period) {
        (Some(case), None, None) => check_case(files, case, problems),
        (None, Some(campaign), None) => check_campaign(files, campaign, problems),
        (None, None, Some(period)) => check_period(files, period, problems),
        _ => problems.push(format!("{MANIFEST}: names not exactly one case, campaign or period")),
    }

    let mut policies: BTreeMap<(NodeId, u32), Policy> = BTreeMap::new();
    for (path, b) in files.iter().filter(|(p, _)| p.starts_with("policies/")) {
        let Some(p) = parse::<Policy>(path, b, problems) else { continue };
        if !p.intact() {
            problems.push(format!("{path}: policy version {} does not match its SHA-256", p.version));
        }
        policies.insert((p.id.clone(), p.version), p);
    }
    report.policies = policies.len();

    for (path, b) in files.iter().filter(|(p, _)| p.starts_with("evidence/")) {
        let Some(e) = parse::<Evidence>(path, b, problems) else { continue };
        report.evidence += 1;
        if !e.intact() {
            problems.push(format!("{path}: the content of {} does not match its SHA-256", e.id));
        }
        if manifest.case.is_some() && manifest.case.as_ref() != Some(&e.case) {
            problems.push(format!("{path}: belongs to {}, which the bundle is not about", e.case));
        }
    }

    if let Some(decisions) =
        files.get("decisions.json").and_then(|b| parse::<Vec<Decision>>("decisions.json", b, problems))
    {
        report.decisions = decisions.len();
        check_decisions(&decisions, &manifest, &policies, problems);
    }
    if report.decisions != manifest.decisions || report.evidence != manifest.evidence {
        problems.push(format!(
            "{MANIFEST}: counts {} decisions and {} pieces of evidence; the bundle holds {} and {}",
            manifest.decisions, manifest.evidence, report.decisions, report.evidence
        ));
    }
    report
}

/// Every file the manifest lists is present and unaltered; nothing else is there.
fn check_listed(files: &BTreeMap<String, Vec<u8>>, manifest: &Manifest, problems: &mut Vec<String>) {
    for entry in &manifest.files {
        match files.get(&entry.path) {
            None => problems.push(format!("{}: listed in the manifest but missing", entry.path)),
            Some(b) if b.len() as u64 != entry.bytes || sha256_hex(b) != entry.sha256 => {
                problems.push(format!("{}: altered (its SHA-256 differs from the manifest's)", entry.path))
            }
            Some(_) => {}
        }
    }
    for path in files.keys().filter(|p| p.as_str() != MANIFEST) {
        if !manifest.files.iter().any(|e| &e.path == path) {
            problems.push(format!("{path}: not listed in the manifest"));
        }
    }
}

/// Each decision matches its hash, falls within the chain head the bundle was made at
/// and names a policy version the bundle holds, with the digest it recorded; the
/// decisions are in chain order.
fn check_decisions(
    decisions: &[Decision],
    manifest: &Manifest,
    policies: &BTreeMap<(NodeId, u32), Policy>,
    problems: &mut Vec<String>,
) {
    for d in decisions {
        if d.compute_hash() != d.hash {
            problems.push(format!("decisions.json: decision #{} ({}) does not match its hash", d.seq, d.id));
        }
        if d.seq > manifest.chain_head.seq {
            problems.push(format!(
                "decisions.json: decision #{} is past the chain head #{} the bundle was made at",
                d.seq, manifest.chain_head.seq
            ));
        }
        if let (Some(id), Some(version)) = (&d.policy, d.policy_version) {
            match policies.get(&(id.clone(), version)) {
                None => problems.push(format!(
                    "decisions.json: decision #{} names policy version {version}, which the bundle lacks",
                    d.seq
                )),
                Some(p) if d.policy_sha256.as_deref() != Some(p.sha256.as_str()) => problems.push(format!(
                    "decisions.json: decision #{} recorded another digest for policy version {version}",
                    d.seq
                )),
                Some(_) => {}
            }
        }
    }
    if decisions.windows(2).any(|w| w[0].seq >= w[1].seq) {
        problems.push("decisions.json: decisions out of chain order".into());
    }
}

/// A case's bundle holds that case.
fn check_case(files: &BTreeMap<String, Vec<u8>>, case: &NodeId, problems: &mut Vec<String>) {
    match files.get("case.json").and_then(|b| parse::<Case>("case.json", b, problems)) {
        Some(c) if &c.id != case => problems.push(format!("case.json: case {} where the manifest names {case}", c.id)),
        Some(_) => {}
        None if !files.contains_key("case.json") => problems.push("case.json: missing".into()),
        None => {}
    }
}

/// A period's bundle holds only decisions and evidence of its window that fall under its
/// scope (evidence through its own references or its case's, from `cases.json`).
fn check_period(files: &BTreeMap<String, Vec<u8>>, period: &Period, problems: &mut Vec<String>) {
    if let Some(decisions) =
        files.get("decisions.json").and_then(|b| parse::<Vec<Decision>>("decisions.json", b, problems))
    {
        for d in decisions.iter().filter(|d| !period.holds(d.at, &d.refs)) {
            problems.push(format!("decisions.json: decision #{} ({}) is outside the period", d.seq, d.id));
        }
    }
    let cases: BTreeMap<NodeId, Case> = files
        .get("cases.json")
        .and_then(|b| parse::<Vec<Case>>("cases.json", b, problems))
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    for (path, b) in files.iter().filter(|(p, _)| p.starts_with("evidence/")) {
        let Some(e) = parse::<Evidence>(path, b, problems) else { continue };
        let case_refs = cases.get(&e.case).map(|c| c.refs.as_slice()).unwrap_or_default();
        if !period.holds(e.collected_at, &e.refs) && !period.holds(e.collected_at, case_refs) {
            problems.push(format!("{path}: {} is outside the period", e.id));
        }
    }
}

/// A campaign's bundle holds that campaign, and only its items.
fn check_campaign(files: &BTreeMap<String, Vec<u8>>, campaign: &NodeId, problems: &mut Vec<String>) {
    match files.get("campaign.json").and_then(|b| parse::<Campaign>("campaign.json", b, problems)) {
        Some(c) if &c.id != campaign => {
            problems.push(format!("campaign.json: campaign {} where the manifest names {campaign}", c.id))
        }
        Some(_) => {}
        None if !files.contains_key("campaign.json") => problems.push("campaign.json: missing".into()),
        None => {}
    }
    if let Some(items) = files.get("items.json").and_then(|b| parse::<Vec<ReviewItem>>("items.json", b, problems)) {
        for i in items.iter().filter(|i| &i.campaign != campaign) {
            problems.push(format!("items.json: {} belongs to {}, not {campaign}", i.id, i.campaign));
        }
    }
}
