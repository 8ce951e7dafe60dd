//! Each rule of the baseline policy, tried by the person it must stop, through the API.
//! A refusal answers SOD_VIOLATION naming the rule and the policy version, writes
//! nothing to its subject, and is itself recorded in the chain.

use nhigov_tests::{TestServer, World, code};
use serde_json::{Value, json};

const CREATE: &str = "mutation($i: RequestInput!) { createRequest(input: $i) {
    id status approvalsNeeded approvalExpiresAt postApprovalDue postApprovalOverdue grantedEdge deniedByRule } }";
const DECIDE: &str =
    "mutation($r: ID!, $o: DecideOutcome!) { decideRequest(id: $r, outcome: $o, rationale: \"reviewed\") {
    decision { id outcome } request { status approvals { approver { email } } approvalExpiresAt grantedEdge } } }";
const REQUEST: &str = "query($r: ID!) { request(id: $r) { status approvals { approver { email } } grantedEdge } }";

async fn file(s: &TestServer, who: &str, input: Value) -> Value {
    s.ok(&s.as_(who), CREATE, json!({ "i": input })).await["createRequest"].clone()
}

fn grant(w: &World, subject: &str, target: &str, privilege: &str) -> Value {
    json!({ "kind": "GRANT_ACCESS", "subjectId": w.id(subject), "targetId": w.id(target), "privilege": privilege,
            "durationDays": 30, "justification": "the deploy pipeline needs it" })
}

/// Try a decision that must be refused by `rule`; check nothing moved and the attempt
/// is on record.
async fn refused(s: &TestServer, who: &str, request: &str, outcome: &str, rule: &str) {
    let before = s.ok(&s.as_("ada"), REQUEST, json!({ "r": request })).await;
    let (status, body) = s.gql(&s.as_(who), DECIDE, json!({ "r": request, "o": outcome })).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "SOD_VIOLATION", "{body}");
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["rule"], rule);
    assert_eq!(ext["policyVersion"], 1);
    let after = s.ok(&s.as_("ada"), REQUEST, json!({ "r": request })).await;
    assert_eq!(before, after, "a refused decision writes nothing to its subject");
    let d = s
        .ok(
            &s.as_("ada"),
            "query($id: ID!) { decision(id: $id) { outcome kind actor { email } violation { rule policyVersion } subject } }",
            json!({ "id": ext["decision"] }),
        )
        .await;
    assert_eq!(d["decision"]["outcome"], "REFUSED");
    assert_eq!(d["decision"]["subject"], request);
    assert_eq!(d["decision"]["violation"]["rule"], rule.to_uppercase());
    assert!(d["decision"]["actor"]["email"].as_str().unwrap().starts_with(who));
}

async fn chain_ok(s: &TestServer) {
    let d = s.ok(&s.as_("ada"), "{ verifyDecisionChain { ok firstBroken { problem } } }", json!({})).await;
    assert_eq!(d["verifyDecisionChain"]["ok"], true, "{d}");
}

#[tokio::test]
async fn requester_cannot_approve_own_request() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(&s, "priya", grant(&w, "bot", "db", "READ")).await;
    refused(&s, "priya", r["id"].as_str().unwrap(), "APPROVE", "requester_cannot_approve").await;
    // Someone else may.
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    chain_ok(&s).await;
}

#[tokio::test]
async fn owner_cannot_approve_privileged_grant_to_what_their_team_owns() {
    let s = TestServer::start().await;
    let w = s.world().await;
    // olga owns deploy-bot through the payments team.
    let r = file(&s, "priya", grant(&w, "bot", "db", "ADMIN")).await;
    refused(&s, "olga", r["id"].as_str().unwrap(), "APPROVE", "owner_cannot_approve").await;
    chain_ok(&s).await;
}

#[tokio::test]
async fn owner_cannot_approve_own_subjects_exception() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(
        &s,
        "priya",
        json!({ "kind": "EXCEPTION", "subjectId": w.id("bot"), "durationDays": 30, "reviewDays": 14,
                "compensatingControls": ["egress restricted to ledger-db", "daily key-use review"],
                "justification": "legacy integration cannot rotate yet" }),
    )
    .await;
    let id = r["id"].as_str().unwrap();
    refused(&s, "olga", id, "APPROVE", "owner_cannot_approve").await;
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": id, "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d = s
        .ok(
            &s.as_("ada"),
            "query($n: ID!) { exceptions(subjectId: $n) { edges { node { status compensatingControls revalidationDue approvedBy { email } } } } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let e = &d["exceptions"]["edges"][0]["node"];
    assert_eq!(e["status"], "ACTIVE");
    assert_eq!(e["revalidationDue"], false);
    assert_eq!(e["approvedBy"], json!([{ "email": "jules@corp.example" }]));
    chain_ok(&s).await;
}

#[tokio::test]
async fn privileged_grants_need_two_distinct_approvers() {
    let s = TestServer::start().await;
    let w = s.world().await;
    // Read access to the tier0 vault is not privileged; write access is.
    let read = file(&s, "priya", grant(&w, "bot", "vault", "READ")).await;
    assert_eq!(read["approvalsNeeded"], 1);
    let r = file(&s, "priya", grant(&w, "bot", "vault", "WRITE")).await;
    assert_eq!(r["approvalsNeeded"], 2);
    let id = r["id"].as_str().unwrap();
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": id, "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "PENDING", "one approval of two");
    assert_eq!(d["decideRequest"]["request"]["grantedEdge"], Value::Null, "no access yet");
    refused(&s, "jules", id, "APPROVE", "distinct_approvers").await;
    let d = s.ok(&s.as_("kim"), DECIDE, json!({ "r": id, "o": "APPROVE" })).await;
    let req = &d["decideRequest"]["request"];
    assert_eq!(req["status"], "APPROVED");
    assert_eq!(req["approvals"].as_array().unwrap().len(), 2);
    // The grant really changed the graph: an access edge with its expiry.
    let d = s
        .ok(
            &s.as_("ada"),
            "query($n: ID!) { node(id: $n) { ... on Nhi { access { system { name } privilege expiresAt } } } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let vault = d["node"]["access"].as_array().unwrap().iter().find(|a| a["system"]["name"] == "prod-vault").cloned();
    let vault = vault.expect("an access edge to the vault");
    assert_eq!(vault["privilege"], "WRITE");
    assert!(vault["expiresAt"].is_string());
    chain_ok(&s).await;
}

#[tokio::test]
async fn deciding_needs_the_approver_role_even_for_an_admin() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(&s, "priya", grant(&w, "bot", "db", "READ")).await;
    refused(&s, "sam", r["id"].as_str().unwrap(), "APPROVE", "approver_role_required").await;
    refused(&s, "sam", r["id"].as_str().unwrap(), "REJECT", "approver_role_required").await;
    chain_ok(&s).await;
}

#[tokio::test]
async fn approvals_last_no_longer_than_the_policy_allows() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let mut input = grant(&w, "bot", "db", "READ");
    input["durationDays"] = json!(365);
    let r = file(&s, "priya", input).await;
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    let expires: chrono::DateTime<chrono::Utc> =
        d["decideRequest"]["request"]["approvalExpiresAt"].as_str().unwrap().parse().unwrap();
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((89.0..=90.0).contains(&days), "capped at 90 days, got {days}");
}

#[tokio::test]
async fn a_grant_to_an_orphan_is_denied_until_the_control_owner_accepts_the_risk() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(&s, "priya", grant(&w, "orphan", "db", "READ")).await;
    assert_eq!(r["status"], "DENIED");
    assert_eq!(r["deniedByRule"], "grant_needs_active_owner");
    let id = r["id"].as_str().unwrap();
    // Denied requests cannot be approved directly.
    let (_, body) = s.gql(&s.as_("jules"), DECIDE, json!({ "r": id, "o": "APPROVE" })).await;
    assert_eq!(code(&body), "CONFLICT");
    // jules does not own ledger-db: he cannot override.
    let accept =
        "mutation($r: ID!) { acceptRisk(requestId: $r, rationale: \"short-lived, monitored\") { request { status } } }";
    let (_, body) = s.gql(&s.as_("jules"), accept, json!({ "r": id })).await;
    assert_eq!(code(&body), "SOD_VIOLATION", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["rule"], "override_needs_control_owner");
    // olga owns ledger-db: her risk acceptance re-opens the request for approvers.
    let d = s.ok(&s.as_("olga"), accept, json!({ "r": id })).await;
    assert_eq!(d["acceptRisk"]["request"]["status"], "PENDING");
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": id, "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    chain_ok(&s).await;
}

#[tokio::test]
async fn emergency_access_works_at_once_and_must_be_approved_after_the_fact() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(
        &s,
        "priya",
        json!({ "kind": "EMERGENCY_ACCESS", "subjectId": w.id("bot"), "targetId": w.id("db"), "privilege": "ADMIN",
                "durationDays": 1, "justification": "ledger outage, restore needs admin" }),
    )
    .await;
    assert_eq!(r["status"], "EMERGENCY_ACTIVE");
    assert!(r["grantedEdge"].is_string(), "access is granted at once");
    assert!(r["postApprovalDue"].is_string());
    assert_eq!(r["postApprovalOverdue"], false);
    let id = r["id"].as_str().unwrap();
    refused(&s, "priya", id, "APPROVE", "requester_cannot_approve").await;

    // Time passes beyond the window without an approval: flagged, and an alert raised.
    s.store.execute_raw(&format!("UPDATE {id} SET post_approval_due = time::now() - 1h")).await.unwrap();
    let d = s
        .ok(
            &s.as_("ada"),
            "{ requests(filter: { postApprovalOverdue: true }) { totalCount edges { node { id postApprovalOverdue } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["requests"]["edges"][0]["node"]["id"], id);
    assert_eq!(d["requests"]["edges"][0]["node"]["postApprovalOverdue"], true);
    let raised = s.store.raise_overdue_emergency_alerts().await.unwrap();
    assert_eq!(raised, 1);
    assert_eq!(s.store.raise_overdue_emergency_alerts().await.unwrap(), 0, "raised once, not on every sweep");
    let d = s
        .ok(
            &s.as_("ada"),
            "{ alerts(filter: { source: \"nhigov\" }) { edges { node { rule subject { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["alerts"]["edges"][0]["node"]["rule"], "emergency_access_unapproved");
    assert_eq!(d["alerts"]["edges"][0]["node"]["subject"]["id"], w.id("bot"));

    // Rejected after the fact: the access it opened is closed in the same transaction.
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": id, "o": "REJECT" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "REJECTED");
    let d = s
        .ok(
            &s.as_("ada"),
            "query($n: ID!) { node(id: $n) { ... on Nhi { access { system { name } privilege } } } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let admin_on_db = d["node"]["access"].as_array().unwrap().iter().any(|a| a["privilege"] == "ADMIN");
    assert!(!admin_on_db, "the emergency access was rolled back: {d}");
    let write_on_db = d["node"]["access"].as_array().unwrap().iter().any(|a| a["privilege"] == "WRITE");
    assert!(write_on_db, "the access it replaced is restored: {d}");
    chain_ok(&s).await;
}

const ESCALATE: &str = "mutation($r: ID!, $p: ID, $role: Role) { decideRequest(id: $r, outcome: ESCALATE,
    rationale: \"needs a senior eye\", escalateToId: $p, escalateToRole: $role) {
    decision { outcome } request { status escalatedTo { email } escalatedToRole escalatedBy { email } } } }";

#[tokio::test]
async fn an_escalated_request_waits_for_whom_it_was_escalated_to() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(&s, "priya", grant(&w, "bot", "db", "READ")).await;
    // An escalation names whom it goes to.
    let (_, body) = s.gql(&s.as_("jules"), DECIDE, json!({ "r": r["id"], "o": "ESCALATE" })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let d = s.ok(&s.as_("jules"), ESCALATE, json!({ "r": r["id"], "p": w.id("kim") })).await;
    assert_eq!(d["decideRequest"]["decision"]["outcome"], "ESCALATED");
    assert_eq!(
        d["decideRequest"]["request"],
        json!({ "status": "ESCALATED", "escalatedTo": { "email": "kim@corp.example" }, "escalatedToRole": null,
                "escalatedBy": { "email": "jules@corp.example" } })
    );
    // Only Kim decides now: not another approver, not the one who escalated.
    refused(&s, "olga", r["id"].as_str().unwrap(), "APPROVE", "escalation_target").await;
    refused(&s, "jules", r["id"].as_str().unwrap(), "APPROVE", "escalation_target").await;
    let d = s.ok(&s.as_("kim"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");

    // Escalated to the approvers as a role: any of them but the one who escalated.
    let r = file(&s, "priya", grant(&w, "bot", "db", "READ")).await;
    s.ok(&s.as_("jules"), ESCALATE, json!({ "r": r["id"], "role": "APPROVER" })).await;
    refused(&s, "jules", r["id"].as_str().unwrap(), "APPROVE", "escalator_cannot_approve").await;
    let d = s.ok(&s.as_("kim"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    chain_ok(&s).await;
}

#[tokio::test]
async fn a_new_policy_version_needs_a_second_admin_and_governs_from_then_on_above_the_floor() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let before = file(&s, "priya", grant(&w, "bot", "db", "READ")).await;
    // Sam proposes version 2 without the requester rule; it waits for a second admin.
    let d = s
        .ok(
            &s.as_("sam"),
            "mutation { publishPolicy(input: { name: \"small team\", description: \"two approvers are not available\",
                rules: [{ kind: APPROVER_ROLE_REQUIRED }, { kind: MAX_APPROVAL_LIFETIME, days: 30 }], refs: [\"GV.RM-03\"] },
                rationale: \"team of three\") { decision { outcome } request { id status kind summary } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["publishPolicy"]["request"]["status"], "PENDING");
    assert_eq!(d["publishPolicy"]["request"]["kind"], "CHANGE");
    let proposal = d["publishPolicy"]["request"]["id"].clone();
    let d = s.ok(&s.as_("ada"), "{ policy { version } }", json!({})).await;
    assert_eq!(d["policy"]["version"], 1, "nothing is in force until a second admin approves");
    refused(&s, "sam", proposal.as_str().unwrap(), "APPROVE", "requester_cannot_approve").await;
    let d = s.ok(&s.as_("ana"), DECIDE, json!({ "r": proposal, "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d =
        s.ok(&s.as_("ada"), "{ policy { version intact rules { kind days } publishedBy { email } } }", json!({})).await;
    assert_eq!(d["policy"]["version"], 2);
    assert_eq!(d["policy"]["intact"], true);
    assert_eq!(d["policy"]["publishedBy"]["email"], "sam@corp.example");

    // Version 2 has no requester rule, and the requester still cannot approve: the floor.
    let (_, body) = s.gql(&s.as_("priya"), DECIDE, json!({ "r": before["id"], "o": "APPROVE" })).await;
    assert_eq!(body["errors"][0]["extensions"]["rule"], "requester_cannot_approve", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["policyVersion"], 2);
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": before["id"], "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    let d = s
        .ok(
            &s.as_("ada"),
            "{ policies { version } decisions { edges { node { kind outcome policyVersion } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["policies"], json!([{ "version": 2 }, { "version": 1 }]));
    let kinds: Vec<(String, String, u64)> = d["decisions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["kind"].as_str().unwrap().to_owned(),
                n["outcome"].as_str().unwrap().to_owned(),
                n["policyVersion"].as_u64().unwrap(),
            )
        })
        .collect();
    let k = |kind: &str, outcome: &str, v: u64| (kind.to_owned(), outcome.to_owned(), v);
    assert_eq!(
        kinds,
        [
            k("GENESIS", "GRANTED", 1),
            k("CHANGE", "REQUESTED", 1),
            k("DECIDE_REQUEST", "REFUSED", 1),
            k("DECIDE_REQUEST", "APPROVED", 1),
            k("DECIDE_REQUEST", "REFUSED", 2),
            k("DECIDE_REQUEST", "APPROVED", 2),
        ]
    );
    // A policy version cannot be changed in the database.
    let edit = s.store.execute_raw("UPDATE policy SET description = 'x' WHERE version = 1").await;
    assert!(edit.is_err());
    // And an invalid one is refused before anything is asked.
    let (_, body) = s
        .gql(
            &s.as_("sam"),
            "mutation { publishPolicy(input: { name: \"bad\", rules: [{ kind: DISTINCT_APPROVERS, count: 1 }] }, rationale: \"r\") { request { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_exception_ends_by_revocation_or_falls_due_for_revalidation() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let exception = json!({ "kind": "EXCEPTION", "subjectId": w.id("key"), "durationDays": 30,
        "compensatingControls": ["IP allow-list"], "justification": "vendor cannot rotate before Q3" });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = file(&s, "priya", exception.clone()).await;
        s.ok(&s.as_("jules"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    }
    let d = s.ok(&s.as_("ada"), "{ exceptions { edges { node { id } } } }", json!({})).await;
    for e in d["exceptions"]["edges"].as_array().unwrap() {
        ids.push(e["node"]["id"].as_str().unwrap().to_owned());
    }
    let revoke = "mutation($e: ID!) { revokeException(id: $e, rationale: \"vendor rotated early\") { status } }";
    let d = s.ok(&s.as_("kim"), revoke, json!({ "e": ids[0] })).await;
    assert_eq!(d["revokeException"]["status"], "REVOKED");
    let (_, body) = s.gql(&s.as_("kim"), revoke, json!({ "e": ids[0] })).await;
    assert_eq!(code(&body), "CONFLICT");
    // The other one passes its expiry: due for revalidation, with nobody running a job.
    s.store.execute_raw(&format!("UPDATE {} SET expires_at = time::now() - 1d", ids[1])).await.unwrap();
    let d = s
        .ok(
            &s.as_("vic"),
            "{ exceptions(revalidationDue: true) { edges { node { id expired revalidationDue } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["exceptions"]["edges"],
        json!([{ "node": { "id": ids[1], "expired": true, "revalidationDue": true } }])
    );
    // Lapsed approvals show the same way.
    let r = file(&s, "priya", grant(&w, "bot", "db", "READ")).await;
    s.ok(&s.as_("jules"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    s.store
        .execute_raw(&format!("UPDATE {} SET approval_expires_at = time::now() - 1h", r["id"].as_str().unwrap()))
        .await
        .unwrap();
    let d = s
        .ok(
            &s.as_("vic"),
            "{ requests(filter: { revalidationDue: true }) { edges { node { id revalidationDue } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["requests"]["edges"][0]["node"]["id"], r["id"]);
}

/// Break-glass access passes the checks a grant passes: to an NHI nobody owns it is
/// denied, and opens only once the control owner accepted the risk and an approver
/// approved it.
#[tokio::test]
async fn emergency_access_to_an_nhi_without_an_owner_is_denied_like_a_grant() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(
        &s,
        "priya",
        json!({ "kind": "EMERGENCY_ACCESS", "subjectId": w.id("orphan"), "targetId": w.id("db"), "privilege": "READ",
                "justification": "nobody owns it, and it wants in" }),
    )
    .await;
    assert_eq!((r["status"].as_str(), &r["grantedEdge"]), (Some("DENIED"), &Value::Null));
    assert_eq!(r["deniedByRule"], "grant_needs_active_owner");
    let accept = "mutation($r: ID!) { acceptRisk(requestId: $r, rationale: \"restore first\") { request { status } } }";
    s.ok(&s.as_("olga"), accept, json!({ "r": r["id"] })).await;
    let d = s.ok(&s.as_("jules"), DECIDE, json!({ "r": r["id"], "o": "APPROVE" })).await;
    assert_eq!(d["decideRequest"]["request"]["status"], "APPROVED");
    assert!(d["decideRequest"]["request"]["grantedEdge"].is_string(), "opened on approval: {d}");
    chain_ok(&s).await;
}

/// Break-glass access lasts no longer than its approval window, and the server closes
/// it when no approval came in time, as a recorded decision that restores what it
/// replaced.
#[tokio::test]
async fn unapproved_emergency_access_is_closed_by_the_server_after_its_window() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let r = file(
        &s,
        "priya",
        json!({ "kind": "EMERGENCY_ACCESS", "subjectId": w.id("bot"), "targetId": w.id("db"), "privilege": "ADMIN",
                "durationDays": 30, "justification": "ledger outage" }),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    let access = "query($n: ID!) { node(id: $n) { ... on Nhi { access { system { name } privilege expiresAt } } } }";
    let d = s.ok(&s.as_("ada"), access, json!({ "n": w.id("bot") })).await;
    let admin = d["node"]["access"].as_array().unwrap().iter().find(|a| a["privilege"] == "ADMIN").cloned().unwrap();
    let (expires, due) = (admin["expiresAt"].as_str().unwrap(), r["postApprovalDue"].as_str().unwrap());
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert!(parse(expires) <= parse(due), "asked for 30 days, it lasts until the window ends: {expires} > {due}");

    assert_eq!(s.store.close_overdue_emergency_access().await.unwrap(), 0, "not overdue yet");
    s.store.execute_raw(&format!("UPDATE {id} SET post_approval_due = time::now() - 1h")).await.unwrap();
    assert_eq!(s.store.close_overdue_emergency_access().await.unwrap(), 1);
    assert_eq!(s.store.close_overdue_emergency_access().await.unwrap(), 0, "closed once");
    let d = s.ok(&s.as_("ada"), "query($r: ID!) { request(id: $r) { status } }", json!({ "r": id })).await;
    assert_eq!(d["request"]["status"], "EXPIRED");
    let d = s.ok(&s.as_("ada"), access, json!({ "n": w.id("bot") })).await;
    let privileges: Vec<&str> =
        d["node"]["access"].as_array().unwrap().iter().map(|a| a["privilege"].as_str().unwrap()).collect();
    assert_eq!(privileges, ["WRITE"], "the write access it replaced is back");
    let d = s
        .ok(
            &s.as_("ada"),
            "{ decisions(filter: { kind: EXPIRE_EMERGENCY }) { edges { node { outcome actor { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["decisions"]["edges"],
        json!([{ "node": { "outcome": "REVOKED", "actor": { "email": "server@nhigov.invalid" } } }])
    );
    chain_ok(&s).await;
}

/// An approved rotation stays open until the secret is seen rotated after the
/// approval, is overdue past its due date, and is closed by a decision linked to the
/// approval it fulfils.
#[tokio::test]
async fn an_approved_rotation_stays_open_until_the_rotation_is_seen() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let rotate =
        json!({ "kind": "ROTATE_SECRET", "subjectId": w.id("key"), "durationDays": 3, "justification": "it leaked" });
    let r = file(&s, "priya", rotate.clone()).await;
    let id = r["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &s.as_("jules"),
            "mutation($r: ID!) { decideRequest(id: $r, outcome: APPROVE, rationale: \"rotate it\") { decision { id } request { status rotationDueAt rotationOverdue } } }",
            json!({ "r": id }),
        )
        .await;
    let approval = d["decideRequest"]["decision"]["id"].clone();
    let req = &d["decideRequest"]["request"];
    assert_eq!((req["status"].as_str(), &req["rotationOverdue"]), (Some("APPROVED"), &json!(false)));
    assert!(req["rotationDueAt"].is_string());
    // Past its due date without a rotation: overdue.
    s.store.execute_raw(&format!("UPDATE {id} SET rotation_due_at = time::now() - 1h")).await.unwrap();
    let q = "query($r: ID!) { request(id: $r) { status rotationOverdue fulfilledAt } }";
    let d = s.ok(&s.as_("ada"), q, json!({ "r": id })).await;
    assert_eq!(d["request"]["rotationOverdue"], true);
    // The rotation is seen (here through the API): the request closes, by a decision
    // that names the approval it fulfils.
    let now = chrono::Utc::now().to_rfc3339();
    s.ok(
        &s.as_("sam"),
        "mutation($k: ID!, $t: DateTime!) { updateSecret(id: $k, input: { lastRotatedAt: $t }) { id } }",
        json!({ "k": w.id("key"), "t": now }),
    )
    .await;
    let d = s.ok(&s.as_("ada"), q, json!({ "r": id })).await;
    assert_eq!((d["request"]["status"].as_str(), &d["request"]["rotationOverdue"]), (Some("FULFILLED"), &json!(false)));
    assert!(d["request"]["fulfilledAt"].is_string());
    let d = s
        .ok(
            &s.as_("ada"),
            "{ decisions(filter: { kind: FULFIL_REQUEST }) { edges { node { actor { email } explain { inputs } } } } }",
            json!({}),
        )
        .await;
    let node = &d["decisions"]["edges"][0]["node"];
    assert_eq!(node["actor"]["email"], "server@nhigov.invalid");
    assert!(node["explain"]["inputs"].to_string().contains(approval.as_str().unwrap()), "{d}");
    chain_ok(&s).await;
}

/// The server's own sweep, started with it, closes break-glass access nobody approved
/// in time: no one calls anything.
#[tokio::test]
async fn the_servers_sweep_closes_unapproved_emergency_access_by_itself() {
    let mut cfg = nhigov::config::Config::default();
    cfg.governance.sweep_secs = 1;
    let s = TestServer::start_with(cfg).await;
    let w = s.world().await;
    let r = file(
        &s,
        "priya",
        json!({ "kind": "EMERGENCY_ACCESS", "subjectId": w.id("bot"), "targetId": w.id("db"), "privilege": "ADMIN",
                "durationDays": 1, "justification": "ledger outage" }),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    s.store.execute_raw(&format!("UPDATE {id} SET post_approval_due = time::now() - 1h")).await.unwrap();
    let status = "query($r: ID!) { request(id: $r) { status } }";
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = s.ok(&s.as_("ada"), status, json!({ "r": id })).await["request"]["status"].clone();
        if seen == "EXPIRED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(seen, "EXPIRED", "the sweep closed it within ten seconds");
    chain_ok(&s).await;
    s.stop().await;
}
