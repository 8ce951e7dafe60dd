//! Evidence for GRC tools through the API: a case's bundle from `evidenceBundle`,
//! checked offline with the same verifier `nhigov verify-bundle` runs, and decisions as
//! CSV. (The command line's export is tested in `api/tests/export.rs`.)

use std::collections::BTreeMap;

use nhigov_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_case_bundle_from_the_api_verifies_offline_and_tampering_shows() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let alert = s.raise_alert("leak", "HIGH").await;
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($a: ID!) { openCase(input: { title: \"leak\", alertIds: [$a], refs: [\"NHI-02\"] }) { id } }",
            json!({ "a": alert }),
        )
        .await;
    let case = d["openCase"]["id"].as_str().unwrap().to_owned();
    s.ok(
        &s.as_("ines"),
        "mutation($c: ID!, $n: ID!) { snapshotBlastRadius(caseId: $c, from: $n) { id } }",
        json!({ "c": case, "n": w.id("bot") }),
    )
    .await;

    let d = s
        .ok(
            &s.as_("ada"),
            "query($c: ID!) { evidenceBundle(caseId: $c) { manifest files { path sha256 content } } }",
            json!({ "c": case }),
        )
        .await;
    let bundle = &d["evidenceBundle"];
    assert_eq!(bundle["manifest"]["format"], "nhigov-evidence-bundle/1");
    assert_eq!(bundle["manifest"]["case"], case.as_str());
    let mut files: BTreeMap<String, Vec<u8>> = bundle["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["content"].as_str().unwrap().as_bytes().to_vec()))
        .collect();
    let snapshot = files.keys().find(|p| p.starts_with("evidence/")).cloned().expect("the graph snapshot is evidence");
    assert!(String::from_utf8_lossy(&files[&snapshot]).contains("graph_snapshot"));
    let report = graph_model::bundle::verify(&files);
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.decisions, report.evidence, report.policies), (1, 1, 1));

    files.get_mut(&snapshot).unwrap().extend_from_slice(b" ");
    let report = graph_model::bundle::verify(&files);
    assert_eq!(report.problems, [format!("{snapshot}: altered (its SHA-256 differs from the manifest's)")]);
}

#[tokio::test]
async fn decisions_export_as_csv_filtered_by_reference() {
    let s = TestServer::start().await;
    s.world().await;
    let a = s.raise_alert("one", "HIGH").await;
    let b = s.raise_alert("two", "HIGH").await;
    s.ok(
        &s.as_("ines"),
        "mutation($a: ID!) { openCase(input: { title: \"with a ref\", alertIds: [$a], refs: [\"NHI-02\"] }) { id } }",
        json!({ "a": a }),
    )
    .await;
    s.ok(
        &s.as_("ines"),
        "mutation($a: ID!) { openCase(input: { title: \"without\", alertIds: [$a] }) { id } }",
        json!({ "a": b }),
    )
    .await;
    let all = s.ok(&s.as_("ada"), "{ decisionsCsv }", json!({})).await["decisionsCsv"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("seq,at,kind,outcome,actor,subject,case,rationale"), "{all}");
    assert_eq!(lines.len(), 4, "a header, the genesis and two decisions: {all}");
    let one =
        s.ok(&s.as_("ada"), "{ decisionsCsv(filter: { reference: \"NHI-02\" }) }", json!({})).await["decisionsCsv"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.contains("NHI-02"));

    // A CSF reference is one reference however its number is written.
    let d = s.raise_alert("csf", "HIGH").await;
    let case = s
        .ok(
            &s.as_("ines"),
            "mutation($a: ID!) { openCase(input: { title: \"csf\", alertIds: [$a], refs: [\"rs.an-3\"] }) { refs } }",
            json!({ "a": d }),
        )
        .await;
    assert_eq!(case["openCase"]["refs"], json!(["RS.AN-03"]));
    for spelling in ["RS.AN-3", "RS.AN-03"] {
        let q = "query($r: String) { cases(filter: { reference: $r }) { nodes { title } } }";
        let d = s.ok(&s.as_("ada"), q, json!({ "r": spelling })).await;
        assert_eq!(d["cases"]["nodes"], json!([{ "title": "csf" }]), "filtered by {spelling}");
    }

    // Names beside the ids, for a spreadsheet; a name that starts like a formula stays
    // text.
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[header.len() - 4..], ["actor_email", "actor_name", "subject_name", "case_title"]);
    let row = lines.iter().find(|l| l.contains("with a ref")).expect("the case's decision names its case");
    assert!(row.contains("ines@corp.example"), "{row}");
    let c = s.raise_alert("three", "HIGH").await;
    s.ok(
        &s.as_("ines"),
        "mutation($a: ID!) { openCase(input: { title: \"=HYPERLINK(1)\", alertIds: [$a] }) { id } }",
        json!({ "a": c }),
    )
    .await;
    let all = s.ok(&s.as_("ada"), "{ decisionsCsv }", json!({})).await["decisionsCsv"].as_str().unwrap().to_owned();
    let last = all.lines().last().unwrap();
    assert!(last.ends_with(",'=HYPERLINK(1)"), "the title is text, not a formula: {last}");
}
