//! Secret-scanner reports turned into alerts: gitleaks (`--report-format json`),
//! TruffleHog (`--json`, one object per line) and detect-secrets (`scan` output or a
//! baseline).
//!
//! A finding is matched to a secret of the inventory by fingerprint. A secret's
//! fingerprint is a hash of its value, never the value: the SHA-256 (hex) is the
//! convention, and the SHA-1 (hex) is accepted too, because detect-secrets reports only
//! that. So each finding carries its candidate fingerprints (SHA-256 and SHA-1 of the
//! value when the scanner gives the value; detect-secrets' SHA-1 otherwise), and the
//! first one the inventory knows is the alert's subject. The raw value is hashed here
//! and dropped: it never reaches an alert, a log or the store.
//!
//! A finding's dedupe key is its scanner, rule, first candidate fingerprint and file,
//! so the same secret found in the same file by the next run counts as a repeat of the
//! same alert, while the same secret in another file is another exposure.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha1::Digest as _;

use super::case::{NewAlert, Severity, SubjectRef, sha256_hex};
use super::values::{Label, Text, ValueError, text_enum};

text_enum!(
    /// The report formats understood.
    ScannerFormat, "format" {
        Gitleaks => "gitleaks",
        Trufflehog => "trufflehog",
        DetectSecrets => "detect-secrets",
    }
);

/// One finding, before it is matched to the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub format: ScannerFormat,
    pub rule: String,
    pub severity: Severity,
    /// Where it was found: `file:line`, with the commit when there is one.
    pub location: String,
    pub file: String,
    /// Hashes of the value the inventory may know it by, preferred first.
    pub fingerprints: Vec<String>,
    /// The scanner checked the credential against its service and it worked.
    pub verified: bool,
    pub detected_at: Option<DateTime<Utc>>,
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(bytes))
}

/// The fingerprints of a secret value.
fn of_value(value: &str) -> Vec<String> {
    vec![sha256_hex(value.as_bytes()), sha1_hex(value.as_bytes())]
}

/// ` @` and the first 12 characters of a commit id (a report's text: not assumed ASCII).
fn short_commit(c: &str) -> String {
    format!(" @{}", c.chars().take(12).collect::<String>())
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn required<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, ValueError> {
    text(v, key).ok_or_else(|| ValueError::new(format!("{at}.{key}"), "missing or empty"))
}

/// Parse a report. Every finding must be complete; the first that is not is named
/// (`[3].Secret`, `line 4`, `results["config.py"][0].hashed_secret`).
pub fn parse_report(format: ScannerFormat, report: &str) -> Result<Vec<Finding>, ValueError> {
    match format {
        ScannerFormat::Gitleaks => gitleaks(report),
        ScannerFormat::Trufflehog => trufflehog(report),
        ScannerFormat::DetectSecrets => detect_secrets(report),
    }
}

fn json(report: &str, what: &str) -> Result<Value, ValueError> {
    serde_json::from_str(report).map_err(|e| ValueError::new("report", format!("not a {what} JSON report: {e}")))
}

fn gitleaks(report: &str) -> Result<Vec<Finding>, ValueError> {
    let doc = json(report, "gitleaks")?;
    let items = doc.as_array().ok_or_else(|| ValueError::new("report", "a gitleaks report is a JSON array"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let at = format!("[{i}]");
            let secret = required(f, "Secret", &at)?;
            let file = required(f, "File", &at)?.to_owned();
            let line = f.get("StartLine").and_then(Value::as_u64).unwrap_or(0);
            let commit = text(f, "Commit").map(short_commit).unwrap_or_default();
            Ok(Finding {
                format: ScannerFormat::Gitleaks,
                rule: required(f, "RuleID", &at)?.to_owned(),
                severity: Severity::High,
                location: format!("{file}:{line}{commit}"),
                file,
                fingerprints: of_value(secret),
                verified: false,
                detected_at: text(f, "Date").and_then(|d| DateTime::parse_from_rfc3339(d).ok()).map(|d| d.to_utc()),
            })
        })
        .collect()
}

fn trufflehog(report: &str) -> Result<Vec<Finding>, ValueError> {
    let mut out = Vec::new();
    for (n, line) in report.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", n + 1);
        let f: Value = serde_json::from_str(line)
            .map_err(|e| ValueError::new(at.clone(), format!("not a TruffleHog JSON object: {e}")))?;
        // TruffleHog also prints log lines as JSON objects; findings have a detector.
        let Some(detector) = text(&f, "DetectorName") else { continue };
        let raw = required(&f, "Raw", &at)?;
        let data = f.pointer("/SourceMetadata/Data").and_then(Value::as_object);
        let place = data.and_then(|d| d.values().next());
        let file = place.and_then(|p| text(p, "file")).unwrap_or("(unknown)").to_owned();
        let line_no = place.and_then(|p| p.get("line")).and_then(Value::as_u64).unwrap_or(0);
        let commit = place.and_then(|p| text(p, "commit")).map(short_commit).unwrap_or_default();
        let verified = f.get("Verified").and_then(Value::as_bool).unwrap_or(false);
        out.push(Finding {
            format: ScannerFormat::Trufflehog,
            rule: detector.to_owned(),
            severity: if verified { Severity::Critical } else { Severity::High },
            location: format!("{file}:{line_no}{commit}"),
            file,
            fingerprints: of_value(raw),
            verified,
            detected_at: place
                .and_then(|p| text(p, "timestamp"))
                .and_then(|t| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S %z").ok())
                .map(|d| d.to_utc()),
        });
    }
    Ok(out)
}

fn detect_secrets(report: &str) -> Result<Vec<Finding>, ValueError> {
    let doc = json(report, "detect-secrets")?;
    let results = doc
        .get("results")
        .and_then(Value::as_object)
        .ok_or_else(|| ValueError::new("results", "a detect-secrets report has a `results` object"))?;
    let generated = text(&doc, "generated_at").and_then(|d| DateTime::parse_from_rfc3339(d).ok()).map(|d| d.to_utc());
    let mut out = Vec::new();
    for (file, findings) in results {
        let findings =
            findings.as_array().ok_or_else(|| ValueError::new(format!("results[{file:?}]"), "a list of findings"))?;
        for (i, f) in findings.iter().enumerate() {
            let at = format!("results[{file:?}][{i}]");
            let hashed = required(f, "hashed_secret", &at)?;
            if hashed.len() != 40 || !hashed.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ValueError::new(format!("{at}.hashed_secret"), "a SHA-1 in hex"));
            }
            let kind = required(f, "type", &at)?;
            let verified = f.get("is_verified").and_then(Value::as_bool).unwrap_or(false);
            // Entropy and keyword heuristics are noisy; named detectors are not.
            let heuristic = kind.contains("Entropy") || kind.contains("Keyword");
            let line = f.get("line_number").and_then(Value::as_u64).unwrap_or(0);
            out.push(Finding {
                format: ScannerFormat::DetectSecrets,
                rule: kind.to_owned(),
                severity: if verified {
                    Severity::Critical
                } else if heuristic {
                    Severity::Medium
                } else {
                    Severity::High
                },
                location: format!("{file}:{line}"),
                file: file.clone(),
                fingerprints: vec![hashed.to_ascii_lowercase()],
                verified,
                detected_at: generated,
            });
        }
    }
    Ok(out)
}

impl Finding {
    /// The alert for this finding, about the secret known by `fingerprint` (one of its
    /// candidates; the first when the inventory knows none).
    pub fn alert(&self, fingerprint: &str, now: DateTime<Utc>) -> Result<NewAlert, ValueError> {
        let source = Label::parse(self.format.as_str())?;
        let rule = Label::parse(&self.rule).map_err(|e| e.at("rule"))?;
        let key = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.format,
            self.rule,
            self.fingerprints.first().map(String::as_str).unwrap_or(fingerprint),
            self.file
        );
        Ok(NewAlert {
            title: Text::parse(&format!(
                "{} {} secret in {}",
                if self.verified { "verified" } else { "possible" },
                self.rule,
                self.location
            ))?,
            detail: Some(Text::parse(&format!(
                "{} reported a {} secret at {}{}. The value is not kept; its SHA-256/SHA-1 identify it.",
                self.format,
                self.rule,
                self.location,
                if self.verified { ", verified live against its service" } else { "" }
            ))?),
            severity: self.severity,
            detected_at: self.detected_at.unwrap_or(now),
            subject: SubjectRef::Fingerprint(fingerprint.to_owned()),
            refs: vec![],
            dedupe_key: sha256_hex(key.as_bytes()),
            source,
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

    #[test]
    fn gitleaks_findings_carry_the_hashes_and_never_the_value() {
        let report = serde_json::json!([{
            "RuleID": "aws-access-token", "Description": "AWS", "StartLine": 3, "EndLine": 3,
            "Match": format!("key = {KEY}"), "Secret": KEY, "File": "deploy/config.py",
            "Commit": "0123456789abcdef0123", "Date": "2024-05-01T10:00:00Z", "Fingerprint": "x"
        }])
        .to_string();
        let f = &parse_report(ScannerFormat::Gitleaks, &report).unwrap()[0];
        assert_eq!(f.fingerprints, [sha256_hex(KEY.as_bytes()), sha1_hex(KEY.as_bytes())]);
        assert_eq!(f.location, "deploy/config.py:3 @0123456789ab");
        let alert = f.alert(&f.fingerprints[0], Utc::now()).unwrap();
        let shown = format!("{alert:?}");
        assert!(!shown.contains(KEY), "the value leaked into the alert: {shown}");
        assert_eq!(alert.severity, Severity::High);
    }

    #[test]
    fn a_commit_id_of_any_text_is_shortened_without_splitting_a_character() {
        let r = serde_json::json!([{ "RuleID": "r", "Secret": KEY, "File": "a.py", "Commit": "ééééééééééééééé" }])
            .to_string();
        let f = parse_report(ScannerFormat::Gitleaks, &r).unwrap().remove(0);
        assert_eq!(f.location, "a.py:0 @éééééééééééé");
    }

    #[test]
    fn the_same_secret_in_the_same_file_dedupes_and_in_another_file_does_not() {
        let one = |file: &str, line: u64| {
            let r = serde_json::json!([{ "RuleID": "r", "Secret": KEY, "File": file, "StartLine": line }]).to_string();
            let f = parse_report(ScannerFormat::Gitleaks, &r).unwrap().remove(0);
            f.alert(&f.fingerprints[0], Utc::now()).unwrap().dedupe_key
        };
        assert_eq!(one("a.py", 1), one("a.py", 9), "moved within the file: the same exposure");
        assert_ne!(one("a.py", 1), one("b.py", 1));
    }

    #[test]
    fn trufflehog_lines_skip_logs_and_rate_verified_keys_critical() {
        let report = format!(
            "{}\n{}\n\n{}\n",
            serde_json::json!({"level": "info", "msg": "scanning"}),
            serde_json::json!({"SourceMetadata": {"Data": {"Filesystem": {"file": "keys.txt", "line": 2}}},
                "DetectorName": "AWS", "Verified": true, "Raw": KEY, "Redacted": "AKIA..."}),
            serde_json::json!({"SourceMetadata": {"Data": {"Git": {"file": "x.env", "line": 1, "commit": "abcdef"}}},
                "DetectorName": "Github", "Verified": false, "Raw": "ghp_x"}),
        );
        let found = parse_report(ScannerFormat::Trufflehog, &report).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].severity, found[0].location.as_str()), (Severity::Critical, "keys.txt:2"));
        assert_eq!(found[1].location, "x.env:1 @abcdef");
        let bad = parse_report(ScannerFormat::Trufflehog, "{\"DetectorName\": \"AWS\"}\nnot json").unwrap_err();
        assert_eq!(bad.field, "line 1.Raw");
    }

    #[test]
    fn detect_secrets_reports_match_by_their_sha1() {
        let report = serde_json::json!({
            "version": "1.5.0", "generated_at": "2024-05-01T10:00:00Z",
            "results": { "conf/app.ini": [
                { "type": "AWS Access Key", "filename": "conf/app.ini", "hashed_secret": sha1_hex(KEY.as_bytes()), "is_verified": false, "line_number": 4 },
                { "type": "Hex High Entropy String", "filename": "conf/app.ini", "hashed_secret": "0".repeat(40), "is_verified": false, "line_number": 9 }
            ]}
        })
        .to_string();
        let found = parse_report(ScannerFormat::DetectSecrets, &report).unwrap();
        assert_eq!(found[0].fingerprints, [sha1_hex(KEY.as_bytes())]);
        assert_eq!((found[0].severity, found[1].severity), (Severity::High, Severity::Medium));
        let bad = parse_report(
            ScannerFormat::DetectSecrets,
            r#"{"results": {"a": [{"type": "t", "hashed_secret": "xyz"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(bad.field, "results[\"a\"][0].hashed_secret");
    }
}
