//! The demo graph loads, tells its story, and answers the README's first query.

use nhigov_tests::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn the_demo_answers_the_first_query_of_the_readme() {
    let s = TestServer::start().await;
    let loaded = nhigov::demo::load(&s.store).await.unwrap().expect("an empty store gets the demo");
    assert!(loaded.nodes > 60 && loaded.edges > 100);
    assert!(nhigov::demo::load(&s.store).await.unwrap().is_none(), "never loaded twice");
    let t = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let d = s.ok(&t, "{ nhis(first: 5) { totalCount edges { node { id name owners { name } } } } }", json!({})).await;
    assert!(d["nhis"]["totalCount"].as_u64().unwrap() >= 24);
    assert_eq!(d["nhis"]["edges"].as_array().unwrap().len(), 5);
    assert!(d["nhis"]["edges"][0]["node"]["owners"][0]["name"].is_string());
}

#[tokio::test]
async fn the_demo_holds_every_nhi_kind_and_its_risks() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    // Marco, a viewer of the demo company.
    let t = s.token("marco.bianchi@corvid.example");
    for kind in [
        "SERVICE_ACCOUNT",
        "API_KEY",
        "OAUTH_CLIENT",
        "TOKEN",
        "CERTIFICATE",
        "SSH_KEY",
        "AI_AGENT",
        "WORKLOAD_IDENTITY",
    ] {
        let d =
            s.ok(&t, "query($k: NhiKind) { nhis(filter: { kind: $k }) { totalCount } }", json!({ "k": kind })).await;
        assert!(d["nhis"]["totalCount"].as_u64().unwrap() > 0, "{kind}");
    }
    // The GitHub token with admin on production.
    let d = s
        .ok(&t, "{ nhis(filter: { nameContains: \"gh-actions-deploy\" }) { edges { node { access { privilege system { environment } } } } } }", json!({}))
        .await;
    let access = d["nhis"]["edges"][0]["node"]["access"].as_array().unwrap();
    assert!(access.iter().any(|a| a["privilege"] == "ADMIN" && a["system"]["environment"] == "PRODUCTION"));
    // The orphaned service account: its only owner has left.
    let d = s
        .ok(&t, "{ nhis(filter: { nameContains: \"etl-runner\" }) { edges { node { owners { ... on Person { active } } } } } }", json!({}))
        .await;
    assert_eq!(d["nhis"]["edges"][0]["node"]["owners"], json!([{ "active": false }]));
    // Secrets overdue for rotation.
    let d = s.ok(&t, "{ secrets(first: 100) { edges { node { rotationOverdue } } } }", json!({})).await;
    let overdue =
        d["secrets"]["edges"].as_array().unwrap().iter().filter(|e| e["node"]["rotationOverdue"] == true).count();
    assert!(overdue >= 3, "{overdue}");
}

/// The governance walk-through of docs/governance.md, step by step, on the demo data.
#[tokio::test]
async fn the_readme_walkthrough_runs_on_the_demo() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let t = |who: &str| s.token(&format!("{who}@corvid.example"));
    let (scanner, ines, priya, jules, ada) =
        (t("scanner"), t("ines.ortega"), t("priya.raman"), t("jules.martin"), t("ada.lindqvist"));

    // The demo starts with alerts of its own: stale ownership and an unknown key.
    let d = s.ok(&ines, "{ alerts { edges { node { rule unknownSubject } } } }", json!({})).await;
    let rules: Vec<&str> =
        d["alerts"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"ownership_stale") && rules.contains(&"AWS"), "{rules:?}");

    // 1. The scanner reports the leaked PAT.
    let d = s
        .ok(
            &scanner,
            r#"mutation { ingestAlert(input: { source: "gitleaks", rule: "github-pat", severity: CRITICAL,
                title: "gh-actions-deploy PAT committed to corvid/payments-api",
                fingerprint: "5e5e44121d03e5b9d3440c464dfa30cd97e04e8ac611b165454ffef71485203d", refs: ["NHI-02"] }) {
              created alert { id subject { ... on Secret { name } } owners { name } reaches { name environment } lastUsedAt } } }"#,
            json!({}),
        )
        .await;
    let alert = d["ingestAlert"]["alert"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["ingestAlert"]["alert"]["subject"]["name"], "gh-actions-deploy PAT");
    assert_eq!(d["ingestAlert"]["alert"]["owners"], json!([{ "name": "Platform" }]));
    assert!(d["ingestAlert"]["alert"]["lastUsedAt"].is_string());

    // 2. Ines promotes it to a case assigned to herself, starts investigating, attaches evidence.
    let d = s.ok(&ines, "{ me { id } }", json!({})).await;
    let me = d["me"]["id"].clone();
    let d = s
        .ok(
            &ines,
            "mutation($a: ID!, $me: ID!) { promoteAlert(id: $a, assigneeId: $me) { id dueAt } }",
            json!({ "a": alert, "me": me }),
        )
        .await;
    let case = d["promoteAlert"]["id"].as_str().unwrap().to_owned();
    s.ok(&ines, r#"mutation($c: ID!) { transitionCase(id: $c, to: INVESTIGATING, rationale: "token confirmed valid") { status } }"#, json!({ "c": case })).await;
    let d = s
        .ok(
            &ines,
            r#"mutation($c: ID!) { attachEvidence(caseId: $c, input: { kind: REPOSITORY_HISTORY, source: "github",
                content: "commit 4f2a1c in corvid/payments-api exposed the PAT from 09:12 to 09:40 UTC" }) { id sha256 } }"#,
            json!({ "c": case }),
        )
        .await;
    let evidence = d["attachEvidence"]["id"].as_str().unwrap().to_owned();

    // 3. Priya requests containment: revoke the token that holds the leaked secret.
    let d = s
        .ok(&priya, r#"{ nhis(filter: { nameContains: "gh-actions-deploy" }) { edges { node { id } } } }"#, json!({}))
        .await;
    let nhi = d["nhis"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &priya,
            r#"mutation($n: ID!, $c: ID!) { createRequest(input: { kind: REVOKE_NHI, subjectId: $n, caseId: $c,
                justification: "its PAT leaked", ticketRef: "SEC-1042" }) { id status } }"#,
            json!({ "n": nhi, "c": case }),
        )
        .await;
    let request = d["createRequest"]["id"].as_str().unwrap().to_owned();

    // 4. Her own approval is refused; 5. Jules's passes and revokes the token.
    let decide = r#"mutation($r: ID!, $e: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: "contain the leak", signals: [$e]) {
        decision { seq outcome policyVersion } request { status } } }"#;
    let (_, body) = s.gql(&priya, decide, json!({ "r": request, "e": evidence })).await;
    assert_eq!(nhigov_tests::code(&body), "SOD_VIOLATION");
    let d = s.ok(&jules, decide, json!({ "r": request, "e": evidence })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d = s
        .ok(
            &ines,
            "query($n: ID!) { node(id: $n) { ... on Nhi { status access { system { name } } } } }",
            json!({ "n": nhi }),
        )
        .await;
    assert_eq!(d["node"], json!({ "status": "REVOKED", "access": [] }));

    // 6. Ines verifies and closes.
    let d = s
        .ok(
            &ines,
            r#"mutation($c: ID!) { attachEvidence(caseId: $c, input: { kind: ROTATION_STATUS, source: "github",
                content: "PAT revoked at 10:02 UTC; replaced by github-oidc-deployer; no use since" }) { id } }"#,
            json!({ "c": case }),
        )
        .await;
    let verification = d["attachEvidence"]["id"].clone();
    let d = s
        .ok(
            &ines,
            r#"mutation($c: ID!, $v: ID!) { closeCase(id: $c, input: { resolution: TRUE_POSITIVE,
                summary: "PAT revoked and replaced by OIDC", riskRemediated: true, findingClosed: false,
                verificationEvidenceId: $v }) { status closedAt } }"#,
            json!({ "c": case, "v": verification }),
        )
        .await;
    assert_eq!(d["closeCase"]["status"], "CLOSED");

    // 7. The auditor's one query.
    let d = s
        .ok(
            &ada,
            r#"query($n: ID!) { decisionTrail(subjectId: $n) {
                seq at kind outcome rationale actor { name } policyVersion policySha256 violation { rule }
                signals { ... on Evidence { kind sha256 collectedBy { name } } ... on Alert { source rule } }
              }
              verifyDecisionChain { ok length } }"#,
            json!({ "n": nhi }),
        )
        .await;
    // The server's control evaluator may have recorded what the revocation did to the
    // NHI's control results by now; those are in its trail too, after the approval.
    let all = d["decisionTrail"].as_array().unwrap();
    let trail: Vec<&Value> = all.iter().filter(|t| t["kind"] != "CONTROL_RESULT").collect();
    assert!(all.iter().skip(trail.len()).all(|t| t["kind"] == "CONTROL_RESULT"), "{d}");
    assert_eq!(trail.len(), 3, "the genesis behind its access, the refusal, the approval: {d}");
    assert_eq!(trail[0]["kind"], "GENESIS");
    assert_eq!(trail[2]["actor"]["name"], "Jules Martin");
    assert_eq!(trail[2]["outcome"], "APPROVED");
    assert_eq!(d["verifyDecisionChain"]["ok"], true);

    // 8. No one governs alone: Sam makes Omar an approver; it waits for a second admin,
    // and Noor's approval is what gives Omar the role.
    let (sam, noor) = (t("sam.okafor"), t("noor.aziz"));
    let d = s.ok(&sam, r#"{ people(filter: { nameContains: "Omar" }) { edges { node { id } } } }"#, json!({})).await;
    let omar = d["people"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &sam,
            r#"mutation($p: ID!) { updatePerson(id: $p, input: { roles: [VIEWER, APPROVER] }, rationale: "covers Jules on call") {
                person { roles } decision { outcome } request { id status } } }"#,
            json!({ "p": omar }),
        )
        .await;
    assert_eq!(d["updatePerson"]["decision"]["outcome"], "REQUESTED", "{d}");
    assert_eq!(d["updatePerson"]["person"]["roles"], json!(["VIEWER"]));
    let grant = d["updatePerson"]["request"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &noor,
            r#"mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: "agreed with the on-call lead") {
                request { status } } }"#,
            json!({ "r": grant }),
        )
        .await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d = s.ok(&ada, "query($p: ID!) { node(id: $p) { ... on Person { roles } } }", json!({ "p": omar })).await;
    assert_eq!(d["node"]["roles"], json!(["VIEWER", "APPROVER"]));

    // 9. A feed reports access nobody approved: flagged wherever it shows, and alerted.
    let id = |q: &str, name: &str| {
        let (s, ada, q, name) = (&s, &ada, q.to_owned(), name.to_owned());
        async move {
            let d = s
                .ok(
                    ada,
                    &format!("{{ {q}(filter: {{ nameContains: \"{name}\" }}) {{ edges {{ node {{ id }} }} }} }}"),
                    json!({}),
                )
                .await;
            d[q.as_str()]["edges"][0]["node"]["id"].as_str().unwrap().to_owned()
        }
    };
    let (loader, vault) = (id("nhis", "warehouse-loader").await, id("systems", "vault-prod").await);
    let doc = json!({ "source": "aws-collector", "nodes": [],
        "edges": [{ "type": "can_access", "from": loader, "to": vault, "privilege": "admin" }] });
    let d = s
        .ok(
            &scanner,
            "mutation($d: JSON!) { importInventory(document: $d) { edges ungovernedNhis } }",
            json!({ "d": doc }),
        )
        .await;
    assert_eq!(d["importInventory"], json!({ "edges": 1, "ungovernedNhis": 1 }));
    let d = s
        .ok(
            &ada,
            "query($n: ID!) { blastRadius(from: $n, maxHops: 1) { reached { id governed } } }",
            json!({ "n": loader }),
        )
        .await;
    let reached = d["blastRadius"]["reached"].as_array().unwrap();
    let to_vault = reached.iter().find(|r| r["id"] == vault.as_str()).expect("the vault is reached");
    assert_eq!(to_vault["governed"], false);
    let d = s.ok(&ada, "{ ungovernedAccess(source: \"aws-collector\") { total } }", json!({})).await;
    assert_eq!(d["ungovernedAccess"]["total"], 1);
}

/// Risk facts on the demo's identities: stale, orphaned, over-privileged.
#[tokio::test]
async fn the_demo_shows_its_risks_as_fields_and_filters() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let t = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let q = "query($n: String!) { nhis(filter: { nameContains: $n }) { edges { node { stale orphaned overPrivileged expiringSoon(days: 3650) } } } }";
    let d = s.ok(&t, q, json!({ "n": "etl-runner" })).await;
    assert_eq!(d["nhis"]["edges"][0]["node"]["orphaned"], true, "its only owner has left");
    let d = s.ok(&t, q, json!({ "n": "gh-actions-deploy" })).await;
    let n = &d["nhis"]["edges"][0]["node"];
    assert_eq!(
        (n["overPrivileged"].clone(), n["orphaned"].clone(), n["stale"].clone()),
        (json!(true), json!(false), json!(false))
    );
    // The filter agrees with the field, page by page.
    let d = s.ok(&t, "{ all: nhis(first: 100) { edges { node { name stale } } } stale: nhis(first: 100, filter: { staleDays: 90 }) { edges { node { name } } } }", json!({})).await;
    let by_field: Vec<&str> = d["all"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["stale"] == true)
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    let by_filter: Vec<&str> =
        d["stale"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
    assert!(!by_filter.is_empty());
    assert_eq!(by_field, by_filter);

    // So do the orphaned and over-privileged filters, both ways.
    for (field, filter) in [("orphaned", "orphaned"), ("overPrivileged", "overPrivileged")] {
        let q = format!(
            "{{ all: nhis(first: 100) {{ edges {{ node {{ name {field} }} }} }}
               yes: nhis(first: 100, filter: {{ {filter}: true }}) {{ edges {{ node {{ name }} }} }}
               no: nhis(first: 100, filter: {{ {filter}: false }}) {{ edges {{ node {{ name }} }} }} }}"
        );
        let d = s.ok(&t, &q, json!({})).await;
        let names = |key: &str| -> Vec<String> {
            d[key]["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect()
        };
        let by_field = |v: bool| -> Vec<String> {
            d["all"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["node"][field] == v)
                .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert!(!names("yes").is_empty(), "{field}: the demo has some");
        assert_eq!(names("yes"), by_field(true), "{field} = true");
        assert_eq!(names("no"), by_field(false), "{field} = false");
    }
}
