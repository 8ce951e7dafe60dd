//! `nhigov export` and `nhigov verify-bundle` as an auditor runs them: a case's bundle
//! written from an embedded store and checked offline, then tampered with in each way
//! the check must catch; decisions and evidence as CSV; and the sample bundle committed
//! in `fixtures/evidence-bundle/` (rewritten by `UPDATE_SAMPLE_BUNDLE=1 cargo test -p
//! nhigov --test cli export::`).

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use graph_model::inventory::Inventory;
use graph_model::store::{Store, StoreConfig};
use graph_model::*;
use serde_json::json;

fn nhigov(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(args)
        .env("NHIGOV_LOG", "warn")
        .output()
        .expect("the nhigov binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A store with one worked case: an alert, the case opened on it, two pieces of evidence
/// (one superseding the other), a task done, a transition. The case's id.
async fn worked_case(db: &Path) -> NodeId {
    let cfg = StoreConfig { url: db.display().to_string(), ..StoreConfig::memory() };
    let store = Store::open(&cfg).await.unwrap();
    let doc = json!({
        "nodes": [
            {"type": "person", "ref": "ines", "name": "Ines", "email": "ines@x.example"},
            {"type": "secret", "ref": "key", "kind": "api_key", "name": "deploy key", "fingerprint": "fp-export-1"}
        ],
        "edges": []
    });
    let ids: std::collections::HashMap<String, NodeId> =
        store.import(&Inventory::parse(&doc, Utc::now()).unwrap()).await.unwrap().ids.into_iter().collect();
    let ines = &ids["ines"];
    let (alert, _) = store
        .ingest_alert(&NewAlert {
            source: Label::parse("gitleaks").unwrap(),
            rule: Label::parse("aws-key").unwrap(),
            severity: Severity::High,
            title: Text::parse("key in a public repository").unwrap(),
            detail: None,
            detected_at: Utc::now(),
            subject: SubjectRef::Fingerprint("fp-export-1".into()),
            refs: vec![],
            dedupe_key: "export-test".into(),
        })
        .await
        .unwrap();
    let case = store
        .open_case(
            ines,
            &NewCase {
                title: Text::parse("leaked deploy key").unwrap(),
                description: None,
                severity: None,
                alerts: vec![alert.id],
                subjects: vec![],
                assignee: Some(ines.clone()),
                refs: vec![FrameworkRef::parse("RS.AN-03").unwrap()],
            },
            &SlaHours::default(),
        )
        .await
        .unwrap();
    let first = store
        .attach_evidence(
            ines,
            &case.id,
            &NewEvidence {
                kind: EvidenceKind::TokenMetadata,
                content: EvidenceContent::parse("{\"created\": \"2024-01-01\"}").unwrap(),
                source: Label::parse("aws-iam").unwrap(),
                collected_at: None,
                supersedes: None,
                supersede_reason: None,
                refs: vec![FrameworkRef::parse("RS.AN-03").unwrap()],
            },
        )
        .await
        .unwrap();
    store
        .attach_evidence(
            ines,
            &case.id,
            &NewEvidence {
                kind: EvidenceKind::TokenMetadata,
                content: EvidenceContent::parse("{\"created\": \"2024-01-01\", \"last_used\": \"2024-06-01\"}")
                    .unwrap(),
                source: Label::parse("aws-iam").unwrap(),
                collected_at: None,
                supersedes: Some(first.id),
                supersede_reason: Some(Text::parse("adds the last use").unwrap()),
                refs: vec![],
            },
        )
        .await
        .unwrap();
    let task = store
        .add_task(
            ines,
            &case.id,
            &NewTask { kind: TaskKind::Rotate, title: Text::parse("rotate").unwrap(), assignee: None, mandatory: true },
        )
        .await
        .unwrap();
    store.finish_task(ines, &task.id, TaskStatus::Done, None).await.unwrap();
    store.transition_case(ines, &case.id, CaseStatus::Investigating, &Text::parse("triaged").unwrap()).await.unwrap();
    store.close().await;
    case.id
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn the_one(dir: &Path, sub: &str, contains: &str) -> PathBuf {
    std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains(contains))
        .unwrap_or_else(|| panic!("no file in {sub} with {contains}"))
}

#[tokio::test]
async fn a_bundle_verifies_and_every_tampering_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let case = worked_case(&db).await;
    let out = tmp.path().join("bundle");
    let (ok, stdout, stderr) =
        nhigov(&["export", "--case", &case.to_string(), "--db", db.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    for f in ["manifest.json", "case.json", "timeline.json", "decisions.json", "traversals.json", "people.json"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert_eq!(std::fs::read_dir(out.join("evidence")).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(out.join("policies")).unwrap().count(), 1, "the baseline policy the decisions used");
    let (ok, stdout, stderr) = nhigov(&["verify-bundle", out.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("2 decisions, 2 pieces of evidence, 1 policy versions: intact"), "{stdout}");
    if std::env::var_os("UPDATE_SAMPLE_BUNDLE").is_some() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence-bundle");
        let _ = std::fs::remove_dir_all(&sample);
        copy_dir(&out, &sample);
    }

    // Exporting again into a directory that is not empty is refused.
    let (ok, _, stderr) =
        nhigov(&["export", "--case", &case.to_string(), "--db", db.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("not empty"), "{stderr}");

    type Tamper = fn(&Path);
    let cases: [(&str, Tamper, &str); 5] = [
        (
            "evidence content edited",
            |b| {
                let p = the_one(b, "evidence", "last_used");
                let s = std::fs::read_to_string(&p).unwrap().replace("2024-06-01", "2024-07-01");
                std::fs::write(p, s).unwrap();
            },
            "altered",
        ),
        (
            "a file removed",
            |b| std::fs::remove_file(b.join("timeline.json")).unwrap(),
            "timeline.json: listed in the manifest but missing",
        ),
        ("a file added", |b| std::fs::write(b.join("extra.json"), "{}").unwrap(), "extra.json: not listed"),
        (
            "a decision's rationale edited",
            |b| {
                let p = b.join("decisions.json");
                let s = std::fs::read_to_string(&p).unwrap().replace("triaged", "nothing to see");
                std::fs::write(p, s).unwrap();
            },
            "does not match its hash",
        ),
        (
            "the manifest's own listing of a file changed",
            |b| {
                let p = b.join("manifest.json");
                let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                m["files"][0]["sha256"] = json!("0".repeat(64));
                std::fs::write(p, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
            },
            "altered",
        ),
    ];
    for (i, (what, tamper, says)) in cases.into_iter().enumerate() {
        let copy = tmp.path().join(format!("tampered-{i}"));
        copy_dir(&out, &copy);
        tamper(&copy);
        let (ok, stdout, stderr) = nhigov(&["verify-bundle", copy.to_str().unwrap()]);
        assert!(!ok, "{what}: verified anyway\n{stdout}");
        assert!(stderr.contains(says), "{what}: expected `{says}` in\n{stderr}");
    }
}

#[tokio::test]
async fn a_decision_edited_with_its_manifest_entry_recomputed_still_fails_on_its_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let case = worked_case(&db).await;
    let out = tmp.path().join("bundle");
    assert!(
        nhigov(&["export", "--case", &case.to_string(), "--db", db.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .0
    );
    // A careful forger edits a decision and fixes the manifest to match.
    let p = out.join("decisions.json");
    let forged = std::fs::read_to_string(&p).unwrap().replace("triaged", "never looked");
    std::fs::write(&p, &forged).unwrap();
    let mp = out.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == "decisions.json" {
            f["sha256"] = json!(sha256_hex(forged.as_bytes()));
            f["bytes"] = json!(forged.len());
        }
    }
    std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let (ok, _, stderr) = nhigov(&["verify-bundle", out.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("decision #") && stderr.contains("does not match its hash"), "{stderr}");
    assert!(!stderr.contains("altered"), "the manifest was made to match: {stderr}");
}

#[tokio::test]
async fn decisions_and_evidence_export_as_csv_by_reference_and_window() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    worked_case(&db).await;
    let db = db.to_str().unwrap();
    let (ok, csv, stderr) = nhigov(&["export", "--csv", "decisions", "--db", db]);
    assert!(ok, "{stderr}");
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..4], ["seq", "at", "kind", "outcome"]);
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| &r[2]).collect();
    assert_eq!(kinds, ["open_case", "transition_case"]);
    assert!(rows.iter().all(|r| r[13].len() == 64), "each row carries its chain hash");

    // By framework reference: the case's decisions carry its RS.AN-03, none carries NHI-01.
    let (_, csv, _) = nhigov(&["export", "--csv", "decisions", "--framework", "RS.AN-03", "--db", db]);
    assert_eq!(csv::Reader::from_reader(csv.as_bytes()).records().count(), 2, "{csv}");
    let (_, csv, _) = nhigov(&["export", "--csv", "decisions", "--framework", "NHI-01", "--db", db]);
    assert_eq!(csv::Reader::from_reader(csv.as_bytes()).records().count(), 0, "{csv}");
    // By window: nothing before 2000, everything after.
    let (_, csv, _) = nhigov(&["export", "--csv", "decisions", "--to", "2000-01-01T00:00:00Z", "--db", db]);
    assert_eq!(csv::Reader::from_reader(csv.as_bytes()).records().count(), 0);

    let file = tmp.path().join("evidence.csv");
    let (ok, _, stderr) = nhigov(&["export", "--csv", "evidence", "--db", db, "--out", file.to_str().unwrap()]);
    assert!(ok && stderr.contains("2 rows"), "{stderr}");
    let mut r = csv::Reader::from_path(&file).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| &r[8] == "true"), "both intact");
    assert_eq!(&rows[1][9], &rows[0][0], "the second supersedes the first");

    let (ok, _, stderr) = nhigov(&["export", "--csv", "decisions", "--framework", "not a ref!", "--db", db]);
    assert!(!ok && stderr.contains("--framework"), "{stderr}");
}

#[test]
fn the_committed_sample_bundle_verifies() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/evidence-bundle");
    let (ok, stdout, stderr) = nhigov(&["verify-bundle", sample.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains(": intact"), "{stdout}");
}

#[tokio::test]
async fn a_campaign_bundle_is_written_by_export_and_checked_by_verify_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let store = Store::open(&StoreConfig { url: db.display().to_string(), ..StoreConfig::memory() }).await.unwrap();
    nhigov::demo::load(&store).await.unwrap();
    let campaign = store.campaigns().await.unwrap().pop().expect("the demo has a campaign");
    store.close().await;

    let out = tmp.path().join("campaign-bundle");
    let (ok, stdout, stderr) = nhigov(&[
        "export",
        "--db",
        &db.display().to_string(),
        "--campaign",
        &campaign.id.to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    for file in ["campaign.json", "items.json", "report.json", "requests.json", "decisions.json", "manifest.json"] {
        assert!(out.join(file).exists(), "{file} is missing");
    }
    let (ok, stdout, stderr) = nhigov(&["verify-bundle", &out.display().to_string()]);
    assert!(ok, "{stdout}{stderr}");

    // One answer rewritten after the export is named.
    let items = out.join("items.json");
    let text = std::fs::read_to_string(&items).unwrap();
    std::fs::write(&items, text.replacen("\"certified\"", "\"pending\"", 1)).unwrap();
    let (ok, stdout, stderr) = nhigov(&["verify-bundle", &out.display().to_string()]);
    assert!(!ok && format!("{stdout}{stderr}").contains("items.json: altered"), "{stdout}{stderr}");

    // A case flag given a campaign, or a campaign flag given a case, is refused by name.
    let (ok, _, stderr) =
        nhigov(&["export", "--db", &db.display().to_string(), "--campaign", "case:nope", "--out", "x"]);
    assert!(!ok && stderr.contains("is not a campaign"), "{stderr}");
}

/// A GRC analyst's "everything for the quarter under RS.AN": the period's bundle holds
/// the evidence of a case carrying RS.AN-03, verifies offline, holds nothing under a
/// function no record carries, and a manifest whose period is narrowed afterwards no
/// longer verifies.
#[tokio::test]
async fn a_periods_bundle_holds_what_falls_under_its_scope_and_verifies_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    worked_case(&db).await;
    let from = (Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let to = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let export = |framework: &str, out: &Path| {
        nhigov(&[
            "export",
            "--period",
            "--from",
            &from,
            "--to",
            &to,
            "--framework",
            framework,
            "--db",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let out = tmp.path().join("q-rs-an");
    let (ok, stdout, stderr) = export("RS.AN", &out);
    assert!(ok, "{stdout}\n{stderr}");
    for f in ["manifest.json", "period.json", "decisions.json", "cases.json", "people.json"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert_eq!(std::fs::read_dir(out.join("evidence")).unwrap().count(), 2, "both exhibits of the RS.AN-03 case");
    let (ok, stdout, stderr) = nhigov(&["verify-bundle", out.to_str().unwrap()]);
    assert!(ok && stdout.contains("intact"), "{stdout}\n{stderr}");

    let none = tmp.path().join("q-pr");
    let (ok, stdout, stderr) = export("PR", &none);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!none.join("evidence").exists(), "no record falls under PR");
    let (ok, stdout, _) = nhigov(&["verify-bundle", none.to_str().unwrap()]);
    assert!(ok && stdout.contains("0 pieces of evidence"), "{stdout}");

    // The manifest's period narrowed to a window that ended before the records.
    let manifest = out.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["period"]["to"] = json!((Utc::now() - chrono::Duration::hours(20)).to_rfc3339());
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let (ok, _, stderr) = nhigov(&["verify-bundle", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("outside the period"), "{stderr}");

    let (ok, _, stderr) = export("XX.YY-1", &tmp.path().join("bad"));
    assert!(!ok && stderr.contains("--framework"), "{stderr}");
}
