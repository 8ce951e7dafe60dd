//! Relay's `node(id:)` over every object with a global id, walked from outside on the
//! demo: one id of each type, fetched by a person of each role, answered exactly where
//! that type's own query answers them and refused with FORBIDDEN elsewhere.

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

/// The demo's people with one role each (the investigator also holds viewer, which reads
/// nothing an investigator cannot).
const PEOPLE: [(&str, &str); 6] = [
    ("viewer", "marco.bianchi@corvid.example"),
    ("investigator", "ines.ortega@corvid.example"),
    ("approver", "jules.martin@corvid.example"),
    ("admin", "sam.okafor@corvid.example"),
    ("auditor", "ada.lindqvist@corvid.example"),
    ("ingest", "scanner@corvid.example"),
];

/// Who reads each type, as its own query's guard says (docs/api.md's matrix).
fn readers(typename: &str) -> &'static [&'static str] {
    match typename {
        "Person" | "Team" | "Nhi" | "Secret" | "System" => {
            &["viewer", "investigator", "approver", "admin", "auditor", "ingest"]
        }
        "Evidence" | "Decision" => &["investigator", "approver", "admin", "auditor"],
        _ => &["viewer", "investigator", "approver", "admin", "auditor"],
    }
}

/// What the demo lacks, made the way its people would: a case promoted from an alert,
/// with a task and evidence; an exception filed by the investigator, approved by an
/// approver.
async fn work_a_case(s: &TestServer) {
    let ines = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let d = s
        .ok(
            &ines,
            "{ alerts(first: 1) { edges { node { id } } } nhis(first: 50) { edges { node { id name } } } }",
            json!({}),
        )
        .await;
    let alert = d["alerts"]["edges"][0]["node"]["id"].clone();
    let case = s.ok(&ines, "mutation($a: ID!) { promoteAlert(id: $a) { id } }", json!({ "a": alert })).await;
    let case = case["promoteAlert"]["id"].clone();
    s.ok(
        &ines,
        "mutation($c: ID!) { addTask(caseId: $c, input: { kind: ROTATE, title: \"rotate the key\" }) { id } }",
        json!({ "c": case }),
    )
    .await;
    s.ok(
        &ines,
        "mutation($c: ID!) { attachEvidence(caseId: $c, input: { kind: TOKEN_METADATA, content: \"{}\", source: \"github\" }) { id } }",
        json!({ "c": case }),
    )
    .await;
    let nhi = d["nhis"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == "gh-actions-deploy-token")
        .map(|e| e["node"]["id"].clone())
        .expect("the demo's deploy token");
    let exception = json!({ "kind": "EXCEPTION", "subjectId": nhi, "durationDays": 30, "reviewDays": 14,
        "compensatingControls": ["egress restricted"], "justification": "cannot rotate before the release" });
    let r =
        s.ok(&ines, "mutation($i: RequestInput!) { createRequest(input: $i) { id } }", json!({ "i": exception })).await;
    let jules = s.token("jules.martin@corvid.example");
    let d = s
        .ok(
            &jules,
            "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"reviewed\") { request { status } } }",
            json!({ "r": r["createRequest"]["id"] }),
        )
        .await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED", "{d}");
}

/// One id of each type the demo holds, read by its admin.
async fn one_of_each(s: &TestServer) -> Vec<(String, String)> {
    work_a_case(s).await;
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    let q = "{
        people(first: 1) { edges { node { id } } }
        teams(first: 1) { edges { node { id } } }
        nhis(first: 1) { edges { node { id } } }
        secrets(first: 1) { edges { node { id } } }
        systems(first: 1) { edges { node { id } } }
        alerts(first: 1) { edges { node { id } } }
        cases(first: 20) { edges { node { id tasks { id } evidence { id } } } }
        requests(first: 1) { edges { node { id } } }
        exceptions(first: 1) { edges { node { id } } }
        policies { id }
        decisions(first: 1) { edges { node { id } } }
        controls { id }
        findings(first: 1) { id }
        campaigns { id items { id } }
    }";
    let d = s.ok(&admin, q, json!({})).await;
    let first = |v: &Value| v["edges"][0]["node"]["id"].as_str().map(str::to_owned);
    let mut out = vec![
        ("Person", first(&d["people"])),
        ("Team", first(&d["teams"])),
        ("Nhi", first(&d["nhis"])),
        ("Secret", first(&d["secrets"])),
        ("System", first(&d["systems"])),
        ("Alert", first(&d["alerts"])),
        ("Case", first(&d["cases"])),
        ("Request", first(&d["requests"])),
        ("Exception", first(&d["exceptions"])),
        ("Policy", d["policies"][0]["id"].as_str().map(str::to_owned)),
        ("Decision", first(&d["decisions"])),
        ("Control", d["controls"][0]["id"].as_str().map(str::to_owned)),
        ("Finding", d["findings"][0]["id"].as_str().map(str::to_owned)),
        ("Campaign", d["campaigns"][0]["id"].as_str().map(str::to_owned)),
        ("ReviewItem", d["campaigns"][0]["items"][0]["id"].as_str().map(str::to_owned)),
    ];
    let cases = d["cases"]["edges"].as_array().cloned().unwrap_or_default();
    let in_cases = |part: &str| cases.iter().find_map(|c| c["node"][part][0]["id"].as_str().map(str::to_owned));
    out.push(("Task", in_cases("tasks")));
    out.push(("Evidence", in_cases("evidence")));
    out.into_iter().map(|(t, id)| (t.to_owned(), id.unwrap_or_else(|| panic!("the demo holds no {t}: {d}")))).collect()
}

#[tokio::test]
async fn node_fetches_every_type_under_the_roles_of_its_own_query() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let ids = one_of_each(&s).await;
    assert_eq!(ids.len(), 17, "every type with a global id");
    let mut wrong = Vec::new();
    for (role, email) in PEOPLE {
        let token = s.token(email);
        for (typename, id) in &ids {
            let body = s.gql(&token, "query($i: ID!) { node(id: $i) { __typename id } }", json!({ "i": id })).await.1;
            let allowed = readers(typename).contains(&role);
            let got = match (&body["data"]["node"], code(&body)) {
                (node, "") if node["__typename"] == typename.as_str() && node["id"] == id.as_str() => "answered",
                (Value::Null, "FORBIDDEN") => "forbidden",
                _ => {
                    wrong.push(format!("{role} / {typename}: {body}"));
                    continue;
                }
            };
            if got != if allowed { "answered" } else { "forbidden" } {
                wrong.push(format!(
                    "{role} / {typename}: {got}, expected {}",
                    if allowed { "an answer" } else { "FORBIDDEN" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} cells wrong:\n{}", wrong.len(), ids.len() * PEOPLE.len(), wrong.join("\n"));
}

#[tokio::test]
async fn node_answers_null_for_an_id_of_no_record_and_refuses_one_that_is_not_an_id() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    for id in ["case:doesnotexist", "decision:doesnotexist", "nhi:doesnotexist"] {
        let d = s.ok(&admin, "query($i: ID!) { node(id: $i) { id } }", json!({ "i": id })).await;
        assert_eq!(d["node"], Value::Null, "{id}");
    }
    let body = s.gql(&admin, "{ node(id: \"not an id\") { id } }", json!({})).await.1;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}
