//! Secret-scanner reports become alerts through an `ingest` machine token: gitleaks and
//! TruffleHog sample reports from `fixtures/scanners/`, and the real detect-secrets
//! (installed from PyPI into the target directory) run over a folder of planted fake
//! keys. Findings match secrets by the hash of their value and dedupe across runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const AWS_KEY: &str = "AKIAQ7X3EXAMPLE7FAKE";
const INGEST: &str = "mutation($f: ScannerFormat!, $r: String!) { ingestScannerReport(format: $f, report: $r) { findings created repeated matched } }";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scanners")
}

/// A server with the world, the AWS key registered under `fingerprint`, and an API
/// token of the scanner (role ingest) limited to `ingest`.
async fn setup(fingerprint: &str) -> (TestServer, String) {
    let s = TestServer::start().await;
    let w = s.world().await;
    let admin = s.as_("sam");
    s.ok(
        &admin,
        "mutation($f: String!) { createSecret(input: { kind: API_KEY, name: \"deploy AWS key\", fingerprint: $f }) { id } }",
        json!({ "f": fingerprint }),
    )
    .await;
    let token = s.ingest_token(&w, "ci").await;
    (s, token)
}

async fn ingest(s: &TestServer, token: &str, format: &str, report: &str) -> Value {
    s.ok(token, INGEST, json!({ "f": format, "r": report })).await["ingestScannerReport"].clone()
}

async fn alerts(s: &TestServer) -> Vec<Value> {
    let d = s
        .ok(
            &s.as_("ines"),
            "{ alerts(first: 100) { edges { node { source rule severity count unknownSubject subject { ... on Secret { name } } title detail } } } }",
            json!({}),
        )
        .await;
    d["alerts"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn sha1(s: &str) -> String {
    hex::encode(sha1::Sha1::digest(s.as_bytes()))
}

#[tokio::test]
async fn gitleaks_and_trufflehog_reports_become_alerts_once() {
    let (s, token) = setup(&sha256(AWS_KEY)).await;
    let gitleaks = std::fs::read_to_string(fixtures().join("gitleaks.json")).unwrap();
    let r = ingest(&s, &token, "GITLEAKS", &gitleaks).await;
    assert_eq!(r, json!({ "findings": 2, "created": 2, "repeated": 0, "matched": 1 }));
    // The next run finds the same: counted, not raised again.
    let r = ingest(&s, &token, "GITLEAKS", &gitleaks).await;
    assert_eq!(r, json!({ "findings": 2, "created": 0, "repeated": 2, "matched": 1 }));

    let trufflehog = std::fs::read_to_string(fixtures().join("trufflehog.jsonl")).unwrap();
    let r = ingest(&s, &token, "TRUFFLEHOG", &trufflehog).await;
    assert_eq!(r, json!({ "findings": 2, "created": 2, "repeated": 0, "matched": 1 }), "log lines are skipped");

    let all = alerts(&s).await;
    let aws: Vec<&Value> = all.iter().filter(|a| a["subject"]["name"] == "deploy AWS key").collect();
    assert_eq!(aws.len(), 2, "one per scanner: {all:?}");
    let verified = aws.iter().find(|a| a["source"] == "trufflehog").unwrap();
    assert_eq!(verified["severity"], "CRITICAL", "TruffleHog verified it live");
    let from_gitleaks = aws.iter().find(|a| a["source"] == "gitleaks").unwrap();
    assert_eq!(from_gitleaks["count"], 2);
    assert!(from_gitleaks["title"].as_str().unwrap().contains("deploy/settings.py:4"));
    let unknown = all.iter().filter(|a| a["unknownSubject"] == true).count();
    assert_eq!(unknown, 2, "the GitHub and Slack tokens are not in the inventory: kept, flagged");
    let text = serde_json::to_string(&all).unwrap();
    for raw in [AWS_KEY, "ghp_FAKEfake", "xoxb-000000000000"] {
        assert!(!text.contains(raw), "a raw secret reached an alert: {raw}");
    }
}

/// A report of 40 leaked keys, each registered: every one is matched to its secret
/// (the inventory is asked about their fingerprints 32 at a time, each read by index).
#[tokio::test]
async fn a_report_of_many_known_keys_matches_each_to_its_secret() {
    let (s, token) = setup(&sha256(AWS_KEY)).await;
    let admin = s.as_("sam");
    let keys: Vec<String> = (0..40).map(|i| format!("AKIAQ7X3EXAMPLE{i:04}")).collect();
    for (i, key) in keys.iter().enumerate() {
        s.ok(
            &admin,
            "mutation($n: String!, $f: String!) { createSecret(input: { kind: API_KEY, name: $n, fingerprint: $f }) { id } }",
            json!({ "n": format!("key {i}"), "f": sha256(key) }),
        )
        .await;
    }
    let report: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            json!({ "RuleID": "aws-access-token", "Description": "AWS", "StartLine": i + 1, "EndLine": i + 1,
                    "Match": key, "Secret": key, "File": "keys.txt", "Commit": "0f0f", "Date": "2026-10-02T09:14:27Z",
                    "Fingerprint": format!("0f0f:keys.txt:aws-access-token:{}", i + 1) })
        })
        .collect();
    let r = ingest(&s, &token, "GITLEAKS", &serde_json::to_string(&report).unwrap()).await;
    assert_eq!(r, json!({ "findings": 40, "created": 40, "repeated": 0, "matched": 40 }));
}

#[tokio::test]
async fn a_malformed_report_names_the_finding_and_takes_in_nothing() {
    let (s, token) = setup(&sha256(AWS_KEY)).await;
    let report = json!([
        { "RuleID": "aws-access-token", "Secret": AWS_KEY, "File": "a.py", "StartLine": 1 },
        { "RuleID": "aws-access-token", "File": "b.py", "StartLine": 1 }
    ])
    .to_string();
    let (_, body) = s.gql(&token, INGEST, json!({ "f": "GITLEAKS", "r": report })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "report[1].Secret", "{body}");
    assert!(alerts(&s).await.is_empty());
    // Only roles that push alerts may: a viewer may not.
    let (_, body) = s.gql(&s.as_("vic"), INGEST, json!({ "f": "GITLEAKS", "r": "[]" })).await;
    assert_eq!(code(&body), "FORBIDDEN");
}

/// detect-secrets from PyPI, installed once into the target directory.
fn detect_secrets() -> (String, PathBuf) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/python-tools");
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !target.join("detect_secrets").exists() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
            .arg(&target)
            .arg("detect-secrets==1.5.0")
            .status()
            .expect("python3 and pip run (they are required for this test)");
        assert!(status.success(), "pip install detect-secrets failed");
    }
    ("python3".into(), target)
}

fn scan(dir: &Path) -> String {
    let (python, path) = detect_secrets();
    let out = Command::new(python)
        .args(["-m", "detect_secrets", "scan", "--all-files"])
        .arg(".")
        .current_dir(dir)
        .env("PYTHONPATH", path)
        .output()
        .expect("detect-secrets runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_real_detect_secrets_over_planted_keys_is_imported_and_deduplicated() {
    // detect-secrets knows a secret by its SHA-1, so the key is registered by that.
    let (s, token) = setup(&sha1(AWS_KEY)).await;
    let report = tokio::task::spawn_blocking(|| scan(&fixtures().join("planted"))).await.unwrap();
    let parsed: Value = serde_json::from_str(&report).unwrap();
    let files: Vec<&String> = parsed["results"].as_object().unwrap().keys().collect();
    assert!(
        files.iter().any(|f| f.ends_with("settings.py")) && files.iter().any(|f| f.ends_with("id_rsa")),
        "{report}"
    );

    let first = ingest(&s, &token, "DETECT_SECRETS", &report).await;
    let findings = first["findings"].as_i64().unwrap();
    assert!(findings >= 2, "{first}");
    assert_eq!(first["created"], findings);
    assert_eq!(first["matched"], 1, "the AWS key, by its SHA-1: {first}");
    let again = ingest(&s, &token, "DETECT_SECRETS", &scan(&fixtures().join("planted"))).await;
    assert_eq!(again, json!({ "findings": findings, "created": 0, "repeated": findings, "matched": 1 }));

    let all = alerts(&s).await;
    let aws = all.iter().find(|a| a["subject"]["name"] == "deploy AWS key").expect("the AWS finding is on the key");
    assert_eq!((aws["source"].as_str(), aws["rule"].as_str()), (Some("detect-secrets"), Some("AWS Access Key")));
    assert!(all.iter().any(|a| a["rule"] == "Private Key"), "{all:?}");
}
