//! The role matrix of docs/api.md, walked from outside: every operation the table names
//! is called by a person holding each single role, and must be refused with FORBIDDEN
//! exactly where the table says `·`. The table is read from docs/api.md, so the document
//! and the server cannot drift apart.

use std::collections::HashMap;

use graph_model::Role;
use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

const ROLES: [(&str, Role); 6] = [
    ("viewer", Role::Viewer),
    ("investigator", Role::Investigator),
    ("approver", Role::Approver),
    ("admin", Role::Admin),
    ("auditor", Role::Auditor),
    ("ingest", Role::Ingest),
];

/// A call of each operation. Ids point nowhere: a caller the guard admits gets
/// NOT_FOUND, BAD_USER_INPUT or CONFLICT, never FORBIDDEN.
fn call(op: &str, role: &str) -> (String, Value) {
    let x = |table: &str| format!("{table}:doesnotexist");
    let (q, v): (&str, Value) = match op {
        "me" => ("{ me { email } }", json!({})),
        "node" => ("query($i: ID!) { node(id: $i) { id } }", json!({ "i": x("nhi") })),
        "nhis" => ("{ nhis { totalCount } }", json!({})),
        "secrets" => ("{ secrets { totalCount } }", json!({})),
        "systems" => ("{ systems { totalCount } }", json!({})),
        "people" => ("{ people { totalCount } }", json!({})),
        "teams" => ("{ teams { totalCount } }", json!({})),
        "secretByFingerprint" => ("{ secretByFingerprint(fingerprint: \"sha256:00000000\") { id } }", json!({})),
        "nhiByExternalId" => ("{ nhiByExternalId(provider: \"aws\", externalId: \"none\") { id } }", json!({})),
        "personByEmail" => ("{ personByEmail(email: \"nobody@matrix.example\") { id } }", json!({})),
        "search" => ("{ search(prefix: \"matrix\") { __typename } }", json!({})),
        "blastRadius" => ("query($i: ID!) { blastRadius(from: $i) { truncated } }", json!({ "i": x("nhi") })),
        "whoCanReach" => ("query($i: ID!) { whoCanReach(target: $i) { truncated } }", json!({ "i": x("system") })),
        "path" => {
            ("query($a: ID!, $b: ID!) { path(from: $a, to: $b) { kind } }", json!({ "a": x("nhi"), "b": x("system") }))
        }
        "recordTraversal" => (
            "mutation($c: ID!, $n: ID!) { recordTraversal(caseId: $c, input: { query: BLAST_RADIUS, origin: $n }) { at } }",
            json!({ "c": x("case"), "n": x("nhi") }),
        ),
        "snapshotBlastRadius" => (
            "mutation($c: ID!, $n: ID!) { snapshotBlastRadius(caseId: $c, from: $n) { id } }",
            json!({ "c": x("case"), "n": x("nhi") }),
        ),
        "createNhi" => {
            ("mutation { createNhi(input: { kind: TOKEN, name: \"matrix\", environment: TEST }) { id } }", json!({}))
        }
        "updateNhi" => {
            ("mutation($i: ID!) { updateNhi(id: $i, input: { name: \"x\" }) { nhi { id } } }", json!({ "i": x("nhi") }))
        }
        "relate" => (
            "mutation($a: ID!, $b: ID!) { relate(input: { kind: CAN_ACCESS, from: $a, to: $b, privilege: READ }) { relation { id } } }",
            json!({ "a": x("nhi"), "b": x("system") }),
        ),
        "closeRelation" => {
            ("mutation { closeRelation(id: \"can_access:doesnotexist\") { relation { id } } }", json!({}))
        }
        "importInventory" => ("mutation { importInventory(document: { nodes: [], edges: [] }) { nodes } }", json!({})),
        "importOpenGraph" => {
            ("mutation { importOpenGraph(document: { graph: { nodes: [], edges: [] } }) { nodes } }", json!({}))
        }
        "ingestScannerReport" => {
            ("mutation { ingestScannerReport(format: GITLEAKS, report: \"[]\") { findings } }", json!({}))
        }
        "createPerson" => (
            "mutation($e: String!) { createPerson(input: { name: \"M\", email: $e }) { id } }",
            json!({ "e": format!("matrix-{role}@corp.example") }),
        ),
        "updatePerson" => (
            "mutation($i: ID!) { updatePerson(id: $i, input: { name: \"x\" }) { person { id } } }",
            json!({ "i": x("person") }),
        ),
        "createTeam" => ("mutation { createTeam(input: { name: \"matrix\" }) { id } }", json!({})),
        "alerts" => ("{ alerts { totalCount } }", json!({})),
        "alert" => ("query($i: ID!) { alert(id: $i) { id } }", json!({ "i": x("alert") })),
        "cases" => ("{ cases { totalCount } }", json!({})),
        "case" => ("query($i: ID!) { case(id: $i) { id } }", json!({ "i": x("case") })),
        "myQueue" => ("{ myQueue { totalCount } }", json!({})),
        "requests" => ("{ requests { totalCount } }", json!({})),
        "request" => ("query($i: ID!) { request(id: $i) { id } }", json!({ "i": x("request") })),
        "exceptions" => ("{ exceptions { totalCount } }", json!({})),
        "policy" => ("{ policy { version } }", json!({})),
        "policies" => ("{ policies { version } }", json!({})),
        "evidence" => ("{ evidence { totalCount } }", json!({})),
        "decisions" => ("{ decisions { totalCount } }", json!({})),
        "decision" => ("query($i: ID!) { decision(id: $i) { id } }", json!({ "i": x("decision") })),
        "decisionTrail" => ("query($i: ID!) { decisionTrail(subjectId: $i) { id } }", json!({ "i": x("nhi") })),
        "verifyDecisionChain" => ("{ verifyDecisionChain { ok } }", json!({})),
        "decisionsCsv" => ("{ decisionsCsv }", json!({})),
        "evidenceCsv" => ("{ evidenceCsv }", json!({})),
        "evidenceBundle" => ("query($c: ID!) { evidenceBundle(caseId: $c) { manifest } }", json!({ "c": x("case") })),
        "ingestAlert" => (
            "mutation { ingestAlert(input: { source: \"matrix\", rule: \"r\", severity: LOW, title: \"t\", fingerprint: \"fp-unknown-000\" }) { created } }",
            json!({}),
        ),
        "openCase" => ("mutation { openCase(input: { title: \"matrix\" }) { id } }", json!({})),
        "promoteAlert" => ("mutation($i: ID!) { promoteAlert(id: $i) { id } }", json!({ "i": x("alert") })),
        "mergeAlerts" => (
            "mutation($c: ID!, $a: ID!) { mergeAlerts(caseId: $c, alertIds: [$a], rationale: \"r\") { id } }",
            json!({ "c": x("case"), "a": x("alert") }),
        ),
        "dismissAlert" => {
            ("mutation($i: ID!) { dismissAlert(id: $i, reason: \"r\") { id } }", json!({ "i": x("alert") }))
        }
        "transitionCase" => (
            "mutation($i: ID!) { transitionCase(id: $i, to: TRIAGE, rationale: \"r\") { id } }",
            json!({ "i": x("case") }),
        ),
        "assignCase" => (
            "mutation($i: ID!, $p: ID!) { assignCase(id: $i, assigneeId: $p, rationale: \"r\") { id } }",
            json!({ "i": x("case"), "p": x("person") }),
        ),
        "escalateCase" => (
            "mutation($i: ID!, $p: ID!) { escalateCase(id: $i, toId: $p, reason: \"r\") { id } }",
            json!({ "i": x("case"), "p": x("person") }),
        ),
        "closeCase" => (
            "mutation($i: ID!, $e: ID!) { closeCase(id: $i, input: { resolution: BENIGN, summary: \"s\", riskRemediated: false, findingClosed: true, verificationEvidenceId: $e }) { id } }",
            json!({ "i": x("case"), "e": x("evidence") }),
        ),
        "reopenCase" => ("mutation($i: ID!) { reopenCase(id: $i, reason: \"r\") { id } }", json!({ "i": x("case") })),
        "addTask" => (
            "mutation($i: ID!) { addTask(caseId: $i, input: { kind: VERIFY, title: \"t\" }) { id } }",
            json!({ "i": x("case") }),
        ),
        "completeTask" => ("mutation($i: ID!) { completeTask(id: $i) { id } }", json!({ "i": x("task") })),
        "cancelTask" => ("mutation($i: ID!) { cancelTask(id: $i, reason: \"r\") { id } }", json!({ "i": x("task") })),
        "attachEvidence" => (
            "mutation($i: ID!) { attachEvidence(caseId: $i, input: { kind: NOTE, content: \"c\", source: \"s\" }) { id } }",
            json!({ "i": x("case") }),
        ),
        "createRequest" => (
            "mutation($s: ID!) { createRequest(input: { kind: REVOKE_NHI, subjectId: $s, justification: \"j\" }) { id } }",
            json!({ "s": x("nhi") }),
        ),
        "decideRequest" => (
            "mutation($i: ID!) { decideRequest(id: $i, outcome: APPROVE, rationale: \"r\") { decision { id } } }",
            json!({ "i": x("request") }),
        ),
        "revokeException" => {
            ("mutation($i: ID!) { revokeException(id: $i, rationale: \"r\") { id } }", json!({ "i": x("exception") }))
        }
        "acceptRisk" => (
            "mutation($i: ID!) { acceptRisk(requestId: $i, rationale: \"r\") { decision { id } } }",
            json!({ "i": x("request") }),
        ),
        "publishPolicy" => (
            "mutation { publishPolicy(input: { name: \"matrix\", rules: [{ kind: REQUESTER_CANNOT_APPROVE }] }, rationale: \"r\") { request { id } } }",
            json!({}),
        ),
        "createApiToken" => (
            "mutation($p: ID!) { createApiToken(principalId: $p, name: \"n\", scopes: [INGEST]) { token } }",
            json!({ "p": x("person") }),
        ),
        "revokeApiToken" => ("mutation { revokeApiToken(id: \"doesnotexist\") { id } }", json!({})),
        "apiTokens" => ("{ apiTokens { id } }", json!({})),
        "controls" => ("{ controls { key } }", json!({})),
        "control" => ("{ control(key: \"NHI-NONE-01\") { key } }", json!({})),
        "controlResults" => ("{ controlResults(controlKey: \"NHI-NONE-01\") { totalCount } }", json!({})),
        "findings" => ("{ findings { id } }", json!({})),
        "myFindings" => ("{ myFindings { id } }", json!({})),
        "campaigns" => ("{ campaigns { id } }", json!({})),
        "periodBundle" => (
            "{ periodBundle(from: \"2026-01-01T00:00:00Z\", to: \"2026-04-01T00:00:00Z\", framework: \"RS.AN\") { manifest } }",
            json!({}),
        ),
        "campaignBundle" => {
            ("query($c: ID!) { campaignBundle(campaignId: $c) { manifest } }", json!({ "c": x("campaign") }))
        }
        "campaign" => ("query($i: ID!) { campaign(id: $i) { id } }", json!({ "i": x("campaign") })),
        "myReviewItems" => ("{ myReviewItems { id } }", json!({})),
        "myWork" => ("{ myWork { counts { total } } }", json!({})),
        "answerReviewItem" => (
            "mutation($i: ID!) { answerReviewItem(id: $i, answer: CERTIFY, rationale: \"r\") { id } }",
            json!({ "i": x("review_item") }),
        ),
        "startCampaign" => (
            "mutation { startCampaign(input: { name: \"m\", scope: { environments: [PRODUCTION] }, dueAt: \"2999-01-01T00:00:00Z\" }, rationale: \"r\") { id } }",
            json!({}),
        ),
        "finding" => ("query($i: ID!) { finding(id: $i) { id } }", json!({ "i": x("finding") })),
        "linkFinding" => (
            "mutation($i: ID!, $c: ID!) { linkFinding(id: $i, toId: $c, rationale: \"r\") { id } }",
            json!({ "i": x("finding"), "c": x("case") }),
        ),
        "closeFinding" => (
            "mutation($i: ID!, $e: ID!) { closeFinding(id: $i, evidenceIds: [$e], rationale: \"r\") { id } }",
            json!({ "i": x("finding"), "e": x("evidence") }),
        ),
        "publishControl" => (
            "mutation($p: ID!) { publishControl(input: { key: \"NHI-M-01\", title: \"t\", ownerId: $p, check: { kind: ACTIVE_OWNER } }, rationale: \"r\") { request { id } } }",
            json!({ "p": x("person") }),
        ),
        "ungovernedAccess" => ("{ ungovernedAccess { total } }", json!({})),
        "feeds" => ("{ feeds { source } }", json!({})),
        "adoptBaseline" => {
            ("mutation { adoptBaseline(digest: \"none\", rationale: \"r\") { request { id } } }", json!({}))
        }
        other => panic!("The role matrix of docs/api.md names `{other}`, which this test does not know how to call"),
    };
    (q.to_owned(), v)
}

/// The matrix rows: the operations each names, and whether each role may call them.
fn matrix() -> Vec<(Vec<String>, Vec<bool>)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).expect("docs/api.md");
    let start = readme.find("<!-- roles:start -->").expect("roles:start marker");
    let end = readme.find("<!-- roles:end -->").expect("roles:end marker");
    let mut rows = Vec::new();
    for line in readme[start..end].lines().filter(|l| l.starts_with('|')).skip(2) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 7, "a matrix row has an operation and six roles: {line}");
        let ops: Vec<String> = cells[0].split('`').skip(1).step_by(2).map(str::to_owned).collect();
        assert!(!ops.is_empty(), "a matrix row names its operations in backticks: {line}");
        let allowed = cells[1..]
            .iter()
            .map(|c| match *c {
                "✓" => true,
                "·" => false,
                other => panic!("a matrix cell is ✓ or ·, not {other}"),
            })
            .collect();
        rows.push((ops, allowed));
    }
    rows
}

#[tokio::test]
async fn every_role_against_every_operation() {
    let s = TestServer::start().await;
    let mut tokens = HashMap::new();
    let people: Vec<(String, [Role; 1])> =
        ROLES.iter().map(|(name, role)| (format!("{name}@matrix.example"), [*role])).collect();
    let rows: Vec<(&str, &str, &[Role])> =
        ROLES.iter().zip(&people).map(|((name, _), (email, roles))| (*name, email.as_str(), &roles[..])).collect();
    s.people(&rows).await;
    for ((name, _), (email, _)) in ROLES.iter().zip(&people) {
        tokens.insert(*name, s.token(email));
    }
    let rows = matrix();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (ops, allowed) in &rows {
        for op in ops {
            for (i, (role, _)) in ROLES.iter().enumerate() {
                let (query, vars) = call(op, role);
                let (status, body) = s.gql(&tokens[role], &query, vars).await;
                assert_eq!(status, 200, "{op} as {role}: the call itself must be valid GraphQL: {body}");
                let forbidden = code(&body) == "FORBIDDEN";
                if forbidden == allowed[i] {
                    wrong.push(format!(
                        "{op} as {role}: expected {}, got {}",
                        if allowed[i] { "allowed" } else { "FORBIDDEN" },
                        body
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(wrong.is_empty(), "{} cell(s) disagree with docs/api.md:\n{}", wrong.len(), wrong.join("\n"));
    assert!(checked >= 50 * 6, "only {checked} cells checked");
    s.stop().await;
}

#[tokio::test]
async fn an_api_token_acts_only_within_its_scopes() {
    let s = TestServer::start().await;
    s.world().await;
    let (sam, ana) = (s.as_("sam"), s.as_("ana"));
    // A machine principal holding two roles, given a token for one of them. Neither
    // role is one a second admin must approve, so the grant applies at once.
    let d = s
        .ok(
            &sam,
            "mutation { createPerson(input: { name: \"Automation\", email: \"automation@corp.example\", machine: true }) { id } }",
            json!({}),
        )
        .await;
    let principal = d["createPerson"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &sam,
            "mutation($p: ID!) { updatePerson(id: $p, input: { roles: [INGEST, INVESTIGATOR] }) { person { roles } decision { outcome } request { id } } }",
            json!({ "p": principal }),
        )
        .await;
    assert_eq!(d["updatePerson"]["decision"]["outcome"], "APPLIED", "{d}");
    assert!(d["updatePerson"]["request"].is_null());

    let make = "mutation($p: ID!, $s: [Role!]!) { createApiToken(principalId: $p, name: \"ci\", scopes: $s) { token apiToken { id } request { id status } } }";
    let (_, body) = s.gql(&sam, make, json!({ "p": principal, "s": ["ADMIN"] })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "a token cannot carry a role its principal lacks");
    // A token for someone else waits for a second admin; it exists, and does not work.
    let d = s.ok(&sam, make, json!({ "p": principal, "s": ["INGEST"] })).await;
    let token = d["createApiToken"]["token"].as_str().unwrap().to_owned();
    assert!(d["createApiToken"]["apiToken"].is_null());
    assert_eq!(d["createApiToken"]["request"]["status"], "PENDING");
    let request = d["createApiToken"]["request"]["id"].as_str().unwrap().to_owned();
    let ingest = "mutation($f: String!) { ingestAlert(input: { source: \"ci\", rule: \"r\", severity: LOW, title: \"t\", fingerprint: $f }) { created } }";
    let (status, _) = s.gql(&token, ingest, json!({ "f": nhigov_tests::LEAKED_FINGERPRINT })).await;
    assert_eq!(status, 401, "an unapproved token does not work");
    let decide = "mutation($i: ID!) { decideRequest(id: $i, outcome: APPROVE, rationale: \"ci needs it\") { request { status } } }";
    let d = s.ok(&ana, decide, json!({ "i": request })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");

    s.ok(&token, ingest, json!({ "f": nhigov_tests::LEAKED_FINGERPRINT })).await;
    let (_, body) = s.gql(&token, "{ cases { totalCount } }", json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "the investigator role is outside the token's scope");
    // Nothing but the digest is stored.
    let stored = s.store.execute_raw("SELECT VALUE token_sha256 FROM api_token").await.unwrap();
    assert!(!stored.to_string().contains(&token));

    let d = s.ok(&sam, "{ apiTokens { id name } }", json!({})).await;
    let id = d["apiTokens"].as_array().unwrap().iter().find(|t| t["name"] == "ci").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.ok(&sam, "mutation($i: String!) { revokeApiToken(id: $i) { revokedAt } }", json!({ "i": id })).await;
    let (status, body) = s.gql(&token, ingest, json!({ "f": nhigov_tests::LEAKED_FINGERPRINT })).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "a revoked token stops at once");
    s.stop().await;
}
