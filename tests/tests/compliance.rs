//! Controls through the API on the demo data: what failed and why, a failure followed to
//! its remediation and closure in one query, and who may publish and close.

use std::time::Duration;

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

const RESULTS: &str = "query($k: String!, $s: ControlStatus) {
    controlResults(controlKey: $k, status: $s, first: 1000) { totalCount results { subjectId status facts finding { id } } } }";

async fn nhi_id(s: &TestServer, t: &str, name: &str) -> String {
    let d = s
        .ok(
            t,
            "query($n: String) { nhis(filter: { nameContains: $n }) { edges { node { id } } } }",
            json!({ "n": name }),
        )
        .await;
    d["nhis"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned()
}

/// The result of `subject` under `key`, waiting (up to ten seconds) for the server's
/// own evaluator to reach `want`.
async fn result_becomes(s: &TestServer, t: &str, key: &str, subject: &str, want: &str) -> Value {
    for _ in 0..100 {
        let d = s.ok(t, RESULTS, json!({ "k": key, "s": want })).await;
        let rows = d["controlResults"]["results"].as_array().unwrap();
        if let Some(r) = rows.iter().find(|r| r["subjectId"] == subject) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{subject} never became {want} under {key}");
}

#[tokio::test]
async fn the_demo_controls_fail_for_real_reasons_and_a_failure_is_followed_to_its_closing() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let ada = s.token("ada.lindqvist@corvid.example");
    let d =
        s.ok(&ada, "{ controls { key version check { kind } counts { pass fail } owner { email } } }", json!({})).await;
    let controls = d["controls"].as_array().unwrap();
    assert_eq!(controls.len(), 7, "{controls:?}");
    assert!(controls.iter().all(|c| c["owner"]["email"] == "ada.lindqvist@corvid.example" && c["version"] == 1));
    let fails = |key: &str| controls.iter().find(|c| c["key"] == key).unwrap()["counts"]["fail"].as_u64().unwrap();
    assert!(fails("NHI-OWN-01") >= 1 && fails("NHI-ROT-01") >= 1, "{controls:?}");

    // The orphaned ETL runner fails NHI-OWN-01: its only owner has left.
    let etl = nhi_id(&s, &ada, "etl-runner").await;
    let row = result_becomes(&s, &ada, "NHI-OWN-01", &etl, "FAIL").await;
    assert!(row["facts"].as_str().unwrap().starts_with("every owner is inactive: lena.fischer"), "{row}");
    let finding = row["finding"]["id"].as_str().unwrap().to_owned();

    // Remediation: an investigator opens a case and links it; an admin decommissions
    // the NHI. The server's evaluator sees it without anyone running a job.
    let ines = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let d = s
        .ok(&ines, "mutation($n: ID!) { openCase(input: { title: \"orphaned ETL runner\", severity: MEDIUM, subjectIds: [$n] }) { id } }", json!({ "n": etl }))
        .await;
    let case = d["openCase"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(&ines, "mutation($c: ID!) { attachEvidence(caseId: $c, input: { kind: NOTE, content: \"runner retired with the old warehouse\", source: \"cmdb\" }) { id } }", json!({ "c": case }))
        .await;
    let evidence = d["attachEvidence"]["id"].as_str().unwrap().to_owned();
    s.ok(
        &ines,
        "mutation($f: ID!, $c: ID!) { linkFinding(id: $f, toId: $c, rationale: \"worked here\") { kind outcome } }",
        json!({ "f": finding, "c": case }),
    )
    .await;
    let jules = s.token("jules.martin@corvid.example");
    let early = s
        .gql(
            &jules,
            "mutation($f: ID!, $e: ID!) { closeFinding(id: $f, evidenceIds: [$e], rationale: \"done\") { id } }",
            json!({ "f": finding, "e": evidence }),
        )
        .await
        .1;
    assert_eq!(code(&early), "BAD_USER_INPUT", "a finding whose check still fails stays open: {early}");
    let sam = s.token(nhigov::demo::DEMO_ADMIN);
    s.ok(
        &sam,
        "mutation($n: ID!) { updateNhi(id: $n, input: { status: DECOMMISSIONED }) { decision { outcome } } }",
        json!({ "n": etl }),
    )
    .await;
    result_becomes(&s, &ada, "NHI-OWN-01", &etl, "NOT_APPLICABLE").await;

    // A viewer may read but not close; an approver closes it on the evidence.
    let marco = s.token("marco.bianchi@corvid.example");
    let close = "mutation($f: ID!, $e: ID!) { closeFinding(id: $f, evidenceIds: [$e], rationale: \"verified in the CMDB\") { kind outcome } }";
    let denied = s.gql(&marco, close, json!({ "f": finding, "e": evidence })).await.1;
    assert_eq!(code(&denied), "FORBIDDEN", "{denied}");
    let d = s.ok(&jules, close, json!({ "f": finding, "e": evidence })).await;
    assert_eq!(d["closeFinding"], json!({ "kind": "CLOSE_FINDING", "outcome": "CLOSED" }));

    // The auditor's one query: failure, remediation, verification, closing and proof.
    let d = s
        .ok(
            &ada,
            "query($f: ID!) { finding(id: $f) { status control { key version sha256 intact }
                failure { kind outcome seq } cases { id } remediatedAt
                verification { kind outcome seq rationale } closedBy { email } closingDecision { seq }
                evidence { id } } }",
            json!({ "f": finding }),
        )
        .await;
    let f = &d["finding"];
    assert_eq!(f["status"], "CLOSED");
    assert_eq!(f["control"]["key"], "NHI-OWN-01");
    assert_eq!(f["control"]["intact"], true);
    assert_eq!(f["failure"]["kind"], "EVALUATE_CONTROL");
    assert_eq!(f["cases"], json!([{ "id": case }]));
    assert_eq!(
        (f["verification"]["kind"].as_str(), f["verification"]["outcome"].as_str()),
        (Some("CONTROL_RESULT"), Some("NOT_APPLICABLE"))
    );
    assert!(f["remediatedAt"].is_string());
    assert_eq!(f["closedBy"]["email"], "jules.martin@corvid.example");
    assert_eq!(f["evidence"], json!([{ "id": evidence }]));
    let seq = |v: &Value| v["seq"].as_u64().unwrap();
    assert!(seq(&f["failure"]) < seq(&f["verification"]) && seq(&f["verification"]) < seq(&f["closingDecision"]));
    let d = s.ok(&ada, "{ verifyDecisionChain { firstBroken { seq } } }", json!({})).await;
    assert!(d["verifyDecisionChain"]["firstBroken"].is_null());
}

#[tokio::test]
async fn a_control_version_needs_two_admins_and_nobody_else_may_ask() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let publish =
        "mutation($i: ControlInput!) { publishControl(input: $i, rationale: \"stricter\") { request { id status } } }";
    let d = s
        .ok(
            &s.token("ada.lindqvist@corvid.example"),
            "{ people(first: 50) { edges { node { id email } } } }",
            json!({}),
        )
        .await;
    let ada_id = d["people"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["email"] == "ada.lindqvist@corvid.example")
        .unwrap()["node"]["id"]
        .clone();
    let input = json!({
        "key": "NHI-ROT-01", "title": "Production secrets are rotated within 30 days", "ownerId": ada_id,
        "scope": { "environments": ["PRODUCTION"] }, "check": { "kind": "SECRET_ROTATED", "maxAgeDays": 30 }, "refs": ["PR.AA-1"]
    });
    for who in [
        "ines.ortega@corvid.example",
        "jules.martin@corvid.example",
        "ada.lindqvist@corvid.example",
        "scanner@corvid.example",
    ] {
        let body = s.gql(&s.token(who), publish, json!({ "i": input })).await.1;
        assert_eq!(code(&body), "FORBIDDEN", "{who}: {body}");
    }
    let bad = s
        .gql(
            &s.token(nhigov::demo::DEMO_ADMIN),
            publish,
            json!({ "i": { "key": "rot", "title": "x", "ownerId": ada_id, "check": { "kind": "SECRET_ROTATED" } } }),
        )
        .await
        .1;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    let sam = s.token(nhigov::demo::DEMO_ADMIN);
    let d = s.ok(&sam, publish, json!({ "i": input })).await;
    let request = d["publishControl"]["request"]["id"].as_str().unwrap().to_owned();
    let decide =
        "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"ok\") { request { status } } }";
    let own = s.gql(&sam, decide, json!({ "r": request })).await.1;
    assert_eq!(code(&own), "SOD_VIOLATION", "{own}");
    let d = s.ok(&s.token("noor.aziz@corvid.example"), decide, json!({ "r": request })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d = s.ok(&sam, "{ control(key: \"NHI-ROT-01\") { version check { maxAgeDays } refs } }", json!({})).await;
    assert_eq!(d["control"], json!({ "version": 2, "check": { "maxAgeDays": 30 }, "refs": ["PR.AA-01"] }));
}

/// Every GraphQL block of docs/compliance.md is valid against the schema: the guide and
/// the server cannot drift apart.
#[tokio::test]
async fn the_compliance_guide_queries_are_valid() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compliance.md")).unwrap();
    let blocks: Vec<&str> = guide.split("```graphql").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert!(blocks.len() >= 6, "{} blocks", blocks.len());
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    for block in blocks {
        let vars = json!({ "f": "finding:doesnotexist", "n": "nhi:doesnotexist" });
        let body = s.gql(&admin, block, vars).await.1;
        let c = code(&body);
        assert!(!c.starts_with("GRAPHQL_"), "{c}: {block}\n{body}");
    }
}

#[tokio::test]
async fn the_demo_campaign_is_answered_by_the_owners_it_names_and_its_report_follows() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let ada = s.token("ada.lindqvist@corvid.example");
    let q = "{ campaigns { id name controlKey report { complete all { total certified pending } }
               items(status: PENDING) { id reviewer { email } nhi { name } facts } } }";
    let d = s.ok(&ada, q, json!({})).await;
    let c = &d["campaigns"][0];
    assert_eq!(c["controlKey"], "NHI-CERT-01");
    let total = c["report"]["all"]["total"].as_u64().unwrap();
    assert_eq!(c["report"]["all"]["certified"], 1, "one owner has answered in the demo: {c}");
    assert_eq!(c["report"]["all"]["pending"].as_u64().unwrap(), total - 1);
    let items = c["items"].as_array().unwrap();
    let item = items.iter().find(|i| i["reviewer"]["email"].is_string()).expect("an item for a person");
    let facts: Value = serde_json::from_str(item["facts"].as_str().unwrap()).unwrap();
    assert!(facts["access"].is_array() && facts["open_alerts"].is_u64(), "{facts}");
    let owner = s.token(item["reviewer"]["email"].as_str().unwrap());

    let mine = s.ok(&owner, "{ myReviewItems { id } }", json!({})).await;
    assert!(mine["myReviewItems"].as_array().unwrap().iter().any(|i| i["id"] == item["id"]), "{mine}");
    let answer =
        "mutation($i: ID!) { answerReviewItem(id: $i, answer: CERTIFY, rationale: \"still needed\") { kind outcome } }";
    // Someone it is not for cannot answer it.
    let stranger = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    if stranger != owner {
        let (_, body) = s.gql(&stranger, answer, json!({ "i": item["id"] })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    let d = s.ok(&owner, answer, json!({ "i": item["id"] })).await;
    assert_eq!(d["answerReviewItem"], json!({ "kind": "ANSWER_REVIEW", "outcome": "CERTIFIED" }));
    let (_, body) = s.gql(&owner, answer, json!({ "i": item["id"] })).await;
    assert_eq!(code(&body), "CONFLICT", "answered once: {body}");
    let d = s.ok(&ada, "{ campaigns { report { all { certified } } } }", json!({})).await;
    assert_eq!(d["campaigns"][0]["report"]["all"]["certified"], 2);

    // Its evidence bundle, with the answer just given, checks offline.
    let q = "query($c: ID!) { campaignBundle(campaignId: $c) { manifest files { path content } } }";
    let d = s.ok(&stranger, q, json!({ "c": c["id"] })).await;
    let bundle = &d["campaignBundle"];
    assert_eq!(bundle["manifest"]["campaign"], c["id"]);
    let files: std::collections::BTreeMap<String, Vec<u8>> = bundle["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["content"].as_str().unwrap().as_bytes().to_vec()))
        .collect();
    let checked = graph_model::bundle::verify(&files);
    assert!(checked.ok(), "{checked:?}");
    let decisions: Value = serde_json::from_slice(&files["decisions.json"]).unwrap();
    let answers = decisions.as_array().unwrap().iter().filter(|d| d["kind"] == "answer_review").count();
    assert_eq!(answers, 2, "the demo's answer and this one");
}

#[tokio::test]
async fn a_campaign_over_the_holders_of_a_secret_kind_reviews_the_active_holders() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    // Who holds an SSH key, read from the graph.
    let d = s
        .ok(
            &admin,
            "{ nhis(first: 100) { pageInfo { hasNextPage } nodes { name status secrets { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["nhis"]["pageInfo"]["hasNextPage"], false, "one page holds the demo");
    let mut holders: Vec<&str> = d["nhis"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "ACTIVE" && n["secrets"].as_array().unwrap().iter().any(|s| s["kind"] == "SSH_KEY"))
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    holders.sort();
    assert!(!holders.is_empty(), "the demo has SSH key holders");
    let start = "mutation { startCampaign(input: { name: \"SSH keys\", scope: { secretKinds: [SSH_KEY] },
                   dueAt: \"2999-01-01T00:00:00Z\" }, rationale: \"deploy keys\") {
                   scope { secretKinds description } items { nhi { name } } } }";
    let d = s.ok(&admin, start, json!({})).await;
    let c = &d["startCampaign"];
    assert_eq!(c["scope"]["secretKinds"], json!(["SSH_KEY"]));
    assert_eq!(c["scope"]["description"], "holding a secret of kind ssh_key");
    let mut reviewed: Vec<&str> =
        c["items"].as_array().unwrap().iter().map(|i| i["nhi"]["name"].as_str().unwrap()).collect();
    reviewed.sort();
    assert_eq!(reviewed, holders);
}

#[tokio::test]
async fn each_owner_finds_the_failing_controls_on_what_they_own_in_their_findings() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    let d = s.ok(&admin, "{ findings(filter: { status: OPEN }, first: 1000) { id subjectId } }", json!({})).await;
    let open = d["findings"].as_array().unwrap().clone();
    // What each person owns, directly and through their teams, read from the graph.
    let q = "{ people(first: 100) { pageInfo { hasNextPage } nodes { email active roles
                 owns(first: 100) { nodes { id } } teams { owns(first: 100) { nodes { id } } } } } }";
    let d = s.ok(&admin, q, json!({})).await;
    assert_eq!(d["people"]["pageInfo"]["hasNextPage"], false, "one page holds the demo");
    let ids = |c: &Value| -> Vec<Value> { c["nodes"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect() };
    let mut owners_with_findings = 0;
    for p in d["people"]["nodes"].as_array().unwrap().iter().filter(|p| {
        // Whoever reads: a person with no role, or only INGEST, reads nothing.
        p["active"] == true && p["roles"].as_array().unwrap().iter().any(|r| r != "INGEST")
    }) {
        let mut owned = ids(&p["owns"]);
        for t in p["teams"].as_array().unwrap() {
            owned.extend(ids(&t["owns"]));
        }
        let expected: Vec<&Value> = open.iter().filter(|f| owned.contains(&f["subjectId"])).map(|f| &f["id"]).collect();
        let email = p["email"].as_str().unwrap();
        let d = s.ok(&s.token(email), "{ myFindings { id } }", json!({})).await;
        let mine: Vec<&Value> = d["myFindings"].as_array().unwrap().iter().map(|f| &f["id"]).collect();
        assert_eq!(mine, expected, "{email}'s open findings, newest first");
        owners_with_findings += usize::from(!expected.is_empty());
    }
    assert!(owners_with_findings > 0, "the demo has a failing control on something a person owns");
}

#[tokio::test]
async fn an_owners_work_holds_their_findings_and_review_items_in_one_listing() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    let d = s.ok(&admin, "{ people(first: 100) { nodes { email active roles } } }", json!({})).await;
    let ids = |v: &Value| -> Vec<Value> { v.as_array().unwrap().iter().map(|x| x["id"].clone()).collect() };
    let (mut with_findings, mut with_items) = (0, 0);
    for p in d["people"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["active"] == true && p["roles"].as_array().unwrap().iter().any(|r| r != "INGEST"))
    {
        let me = s.token(p["email"].as_str().unwrap());
        let listed = s.ok(&me, "{ myFindings(first: 100) { id } myReviewItems { id } }", json!({})).await;
        let work = s
            .ok(
                &me,
                "{ myWork { counts { findings reviewItems total }
                     items { kind record { ... on Finding { id } ... on ReviewItem { id } } } } }",
                json!({}),
            )
            .await;
        let w = &work["myWork"];
        assert!(w["counts"]["total"].as_u64().unwrap() <= 100, "one page holds a demo person's work");
        let of = |kind: &str| -> Vec<Value> {
            w["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["kind"] == kind)
                .map(|i| i["record"]["id"].clone())
                .collect()
        };
        // Findings keep their own order (newest first) inside the merged listing.
        assert_eq!(of("FINDING"), ids(&listed["myFindings"]), "{}", p["email"]);
        let mut items = of("REVIEW_ITEM");
        let mut expected = ids(&listed["myReviewItems"]);
        items.sort_by_key(|v| v.to_string());
        expected.sort_by_key(|v| v.to_string());
        assert_eq!(items, expected, "{}", p["email"]);
        assert_eq!(w["counts"]["findings"], of("FINDING").len());
        assert_eq!(w["counts"]["reviewItems"], items.len());
        with_findings += usize::from(!expected.is_empty() || !of("FINDING").is_empty());
        with_items += usize::from(!items.is_empty());
    }
    assert!(with_findings > 0 && with_items > 0, "the demo gives someone findings and review items");
}
