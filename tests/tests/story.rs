//! The walk-through of docs/governance.md, as a client drives it: a leaked-token alert comes
//! in, a case opens, evidence is attached, containment is requested, the requester's
//! own approval is refused, another approver's passes, the case closes, and the
//! auditor's one query returns the whole trail.

use nhigov_tests::{LEAKED_FINGERPRINT, TestServer, code};
use serde_json::json;

#[tokio::test]
async fn a_leaked_key_is_governed_from_alert_to_audit() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let admin = s.as_("sam");

    // The scanner pushes with its own API token, limited to the ingest scope.
    let d = s
        .ok(
            &admin,
            "mutation($p: ID!) { createApiToken(principalId: $p, name: \"gitleaks in CI\", scopes: [INGEST]) { token request { id } } }",
            json!({ "p": w.id("ci") }),
        )
        .await;
    let scanner = d["createApiToken"]["token"].as_str().unwrap().to_owned();
    assert!(scanner.starts_with("nhg_"));
    // A token for a machine principal works once a second admin approves it.
    let approve = "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"the CI scanner\") { request { status } } }";
    let d = s.ok(&s.as_("ana"), approve, json!({ "r": d["createApiToken"]["request"]["id"] })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");

    let ingest = "mutation($i: AlertInput!) { ingestAlert(input: $i) {
        created alert { id count status subject { id } unknownSubject owners { name } reaches { name } } } }";
    let alert = json!({ "i": {
        "source": "gitleaks", "rule": "generic-api-key", "severity": "CRITICAL",
        "title": "deploy key committed to payments-api", "fingerprint": LEAKED_FINGERPRINT, "refs": ["NHI-02"]
    }});
    let d = s.ok(&scanner, ingest, alert.clone()).await;
    let a = &d["ingestAlert"]["alert"];
    assert_eq!(d["ingestAlert"]["created"], true);
    assert_eq!(a["subject"]["id"], w.id("key"));
    assert_eq!(a["owners"], json!([{ "name": "Payments" }]), "the owners of the identity holding the key");
    assert_eq!(a["reaches"], json!([{ "name": "ledger-db" }]));
    let alert_id = a["id"].as_str().unwrap().to_owned();
    // The next scan reports it again: counted, not filed twice.
    let d = s.ok(&scanner, ingest, alert).await;
    assert_eq!(
        (d["ingestAlert"]["created"].clone(), d["ingestAlert"]["alert"]["count"].clone()),
        (json!(false), json!(2))
    );
    // The scanner's token carries only its scope: it cannot open cases.
    let (_, body) =
        s.gql(&scanner, "mutation($a: ID!) { promoteAlert(id: $a) { id } }", json!({ "a": alert_id })).await;
    assert_eq!(code(&body), "FORBIDDEN");

    // An investigator opens the case and works it.
    let ines = s.as_("ines");
    let d = s
        .ok(
            &ines,
            "mutation($a: ID!, $me: ID!) { promoteAlert(id: $a, assigneeId: $me) { id status severity dueAt overdue subjects { id } } }",
            json!({ "a": alert_id, "me": w.id("ines") }),
        )
        .await;
    let case = d["promoteAlert"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (d["promoteAlert"]["status"].as_str(), d["promoteAlert"]["severity"].as_str()),
        (Some("OPEN"), Some("CRITICAL"))
    );
    assert_eq!(d["promoteAlert"]["overdue"], false);
    s.ok(
        &ines,
        "mutation($c: ID!) { transitionCase(id: $c, to: INVESTIGATING, rationale: \"confirmed live key\") { status } }",
        json!({ "c": case }),
    )
    .await;
    let attach = "mutation($c: ID!, $i: EvidenceInput!) { attachEvidence(caseId: $c, input: $i) { id sha256 } }";
    let d = s
        .ok(
            &ines,
            attach,
            json!({ "c": case, "i": { "kind": "REPOSITORY_HISTORY", "content": "commit 4f2a1c pushed the key at 09:12, removed at 09:40", "source": "github", "refs": ["RS.AN-1"] } }),
        )
        .await;
    let history = d["attachEvidence"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["attachEvidence"]["sha256"].as_str().unwrap().len(), 64);

    // Containment: priya requests the revocation of the NHI that holds the key...
    let priya = s.as_("priya");
    let d = s
        .ok(
            &priya,
            "mutation($i: RequestInput!) { createRequest(input: $i) { id status approvalsNeeded } }",
            json!({ "i": { "kind": "REVOKE_NHI", "subjectId": w.id("bot"), "caseId": case,
                            "justification": "the key it holds leaked", "ticketRef": "SEC-1042" } }),
        )
        .await;
    let request = d["createRequest"]["id"].as_str().unwrap().to_owned();
    let decide = "mutation($r: ID!, $s: [ID!]) { decideRequest(id: $r, outcome: APPROVE, rationale: \"contain now\", signals: $s) {
        decision { seq outcome } request { status } } }";
    // ...and may not approve it herself.
    let (_, body) = s.gql(&priya, decide, json!({ "r": request, "s": [history] })).await;
    assert_eq!(code(&body), "SOD_VIOLATION", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["rule"], "requester_cannot_approve");
    assert_eq!(body["errors"][0]["extensions"]["policyVersion"], 1);
    // Another approver's approval passes and revokes the NHI in the same transaction.
    let d = s.ok(&s.as_("jules"), decide, json!({ "r": request, "s": [history] })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d =
        s.ok(&admin, "query($n: ID!) { node(id: $n) { ... on Nhi { status } } }", json!({ "n": w.id("bot") })).await;
    assert_eq!(d["node"]["status"], "REVOKED");

    // Closing needs verification evidence.
    let d = s
        .ok(
            &ines,
            attach,
            json!({ "c": case, "i": { "kind": "ROTATION_STATUS", "content": "deploy-bot revoked; key rotated; old key rejected by ledger-db", "source": "vault" } }),
        )
        .await;
    let verification = d["attachEvidence"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &ines,
            "mutation($c: ID!, $e: ID!) { closeCase(id: $c, input: { resolution: TRUE_POSITIVE, summary: \"key revoked and rotated\",
                riskRemediated: true, findingClosed: false, verificationEvidenceId: $e }) { status riskRemediated findingClosed } }",
            json!({ "c": case, "e": verification }),
        )
        .await;
    assert_eq!(d["closeCase"], json!({ "status": "CLOSED", "riskRemediated": true, "findingClosed": false }));

    // The auditor's question, one query: who approved what about this identity, when,
    // under which policy version, on what evidence.
    let d = s
        .ok(
            &s.as_("ada"),
            "query($n: ID!) { decisionTrail(subjectId: $n) {
                seq kind outcome at rationale actor { email } policyVersion policySha256
                violation { rule }
                signals { ... on Evidence { kind sha256 collectedBy { email } } ... on Alert { rule source } }
                explain { policyText recordIntact policyMatchesRecord }
              }
              verifyDecisionChain { ok length firstBroken { seq problem } } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let trail = d["decisionTrail"].as_array().unwrap();
    let outcomes: Vec<(&str, &str)> =
        trail.iter().map(|d| (d["kind"].as_str().unwrap(), d["outcome"].as_str().unwrap())).collect();
    // The genesis adopted the world's access (the bot's grant on the ledger) as its
    // baseline; then the refusal and the approval of the revocation.
    assert_eq!(outcomes, [("GENESIS", "GRANTED"), ("DECIDE_REQUEST", "REFUSED"), ("DECIDE_REQUEST", "APPROVED")]);
    let approval = &trail[2];
    assert_eq!(approval["actor"]["email"], "jules@corp.example");
    assert_eq!(approval["policyVersion"], 1);
    assert_eq!(approval["explain"]["recordIntact"], true);
    assert_eq!(approval["explain"]["policyMatchesRecord"], true);
    assert!(approval["explain"]["policyText"].as_str().unwrap().contains("cannot approve"));
    let signals = approval["signals"].as_array().unwrap();
    assert!(
        signals.iter().any(|s| s["kind"] == "REPOSITORY_HISTORY" && s["collectedBy"]["email"] == "ines@corp.example")
    );
    assert!(signals.iter().any(|s| s["source"] == "gitleaks"), "the case's alert is a signal too");
    assert_eq!(trail[1]["violation"]["rule"], "REQUESTER_CANNOT_APPROVE");
    assert_eq!(d["verifyDecisionChain"]["ok"], true);
    // open, transition, refused, approved, close
    assert_eq!(
        d["verifyDecisionChain"]["length"], 8,
        "the genesis, the token asked for and approved, and five decisions"
    );

    // The case keeps its full timeline.
    let d = s.ok(&ines, "query($c: ID!) { case(id: $c) { timeline { event actor } } }", json!({ "c": case })).await;
    let events: Vec<&str> =
        d["case"]["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events.iter().filter(|e| **e == "decision").count(), 5, "{events:?}");
    assert_eq!(events.iter().filter(|e| **e == "evidence").count(), 2);
    s.stop().await;
}

#[tokio::test]
async fn an_owner_leaving_raises_a_stale_ownership_alert() {
    let s = TestServer::start().await;
    let w = s.world().await;
    // olga is the only member of payments, which owns deploy-bot.
    s.ok(
        &s.as_("sam"),
        "mutation($p: ID!) { updatePerson(id: $p, input: { active: false }) { person { active } } }",
        json!({ "p": w.id("olga") }),
    )
    .await;
    let d = s
        .ok(
            &s.as_("ada"),
            "{ alerts(filter: { source: \"nhigov\" }) { totalCount edges { node { rule refs subject { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["alerts"]["totalCount"], 1, "{d}");
    let a = &d["alerts"]["edges"][0]["node"];
    assert_eq!((a["rule"].as_str(), a["subject"]["id"].as_str()), (Some("ownership_stale"), Some(w.id("bot"))));
    assert_eq!(a["refs"], json!(["NHI-01"]));
    // Access can no longer be granted to it without a risk acceptance.
    let d = s
        .ok(
            &s.as_("priya"),
            "mutation($i: RequestInput!) { createRequest(input: $i) { status deniedByRule } }",
            json!({ "i": { "kind": "GRANT_ACCESS", "subjectId": w.id("bot"), "targetId": w.id("db"), "privilege": "READ", "justification": "j" } }),
        )
        .await;
    assert_eq!(d["createRequest"]["status"], "DENIED");
}
