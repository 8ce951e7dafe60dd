//! Working cases through the API: alerts merged and dismissed, the state machine,
//! escalation, closing requirements, reopening, evidence that only grows, SLAs.

use nhigov_tests::{LEAKED_FINGERPRINT, TestServer, World, code};
use serde_json::{Value, json};

const INGEST: &str = "mutation($i: AlertInput!) { ingestAlert(input: $i) { alert { id } } }";
const ATTACH: &str =
    "mutation($c: ID!, $i: EvidenceInput!) { attachEvidence(caseId: $c, input: $i) { id sha256 supersedes { id } } }";

async fn alert(s: &TestServer, rule: &str, subject: Value) -> String {
    let mut input = json!({ "source": "scanner", "rule": rule, "severity": "HIGH", "title": rule });
    input.as_object_mut().unwrap().extend(subject.as_object().unwrap().clone());
    let d = s.ok(&s.as_("scanner"), INGEST, json!({ "i": input })).await;
    d["ingestAlert"]["alert"]["id"].as_str().unwrap().to_owned()
}

async fn open_case(s: &TestServer, w: &World) -> String {
    let a = alert(s, "leak", json!({ "fingerprint": LEAKED_FINGERPRINT })).await;
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($a: ID!, $me: ID!) { openCase(input: { title: \"leak\", alertIds: [$a], assigneeId: $me, refs: [\"RS.AN-1\"] }) { id } }",
            json!({ "a": a, "me": w.id("ines") }),
        )
        .await;
    d["openCase"]["id"].as_str().unwrap().to_owned()
}

async fn move_to(s: &TestServer, case: &str, to: &str) -> Value {
    s.gql(
        &s.as_("ines"),
        "mutation($c: ID!, $t: CaseStatus!) { transitionCase(id: $c, to: $t, rationale: \"next\") { status statusChangedAt } }",
        json!({ "c": case, "t": to }),
    )
    .await
    .1
}

#[tokio::test]
async fn alerts_merge_into_one_case_and_a_dismissal_is_a_decision() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w).await;
    let second = alert(&s, "stale", json!({ "externalId": "bot-1" })).await;
    let unknown = alert(&s, "stray", json!({ "fingerprint": "fp-nobody-knows-this" })).await;
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($c: ID!, $a: ID!) { mergeAlerts(caseId: $c, alertIds: [$a], rationale: \"same token\") { alerts { id } subjects { id } } }",
            json!({ "c": case, "a": second }),
        )
        .await;
    assert_eq!(d["mergeAlerts"]["alerts"].as_array().unwrap().len(), 2);
    let subjects: Vec<&str> =
        d["mergeAlerts"]["subjects"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(subjects, [w.id("key"), w.id("bot")]);
    // An alert already in a case is not merged twice or dismissed.
    let (_, body) = s
        .gql(
            &s.as_("ines"),
            "mutation($a: ID!) { dismissAlert(id: $a, reason: \"noise\") { id } }",
            json!({ "a": second }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT");
    // The unknown one is kept, flagged, and dismissed with a reason, as a decision.
    let d = s
        .ok(
            &s.as_("vic"),
            "{ alerts(filter: { unknownSubject: true }) { edges { node { id subjectRef } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["alerts"]["edges"][0]["node"]["id"], unknown.as_str());
    assert_eq!(d["alerts"]["edges"][0]["node"]["subjectRef"], "fingerprint fp-nobody-knows-this");
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($a: ID!) { dismissAlert(id: $a, reason: \"test fixture in a sample repo\") { kind outcome rationale actor { email } } }",
            json!({ "a": unknown }),
        )
        .await;
    assert_eq!(d["dismissAlert"]["kind"], "DISMISS_ALERT");
    assert_eq!(d["dismissAlert"]["rationale"], "test fixture in a sample repo");
    let (_, body) = s
        .gql(
            &s.as_("ines"),
            "mutation($a: ID!) { dismissAlert(id: $a, reason: \"  \") { id } }",
            json!({ "a": second }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "a dismissal needs a reason");
}

#[tokio::test]
async fn the_state_machine_refuses_illegal_moves_and_records_legal_ones() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w).await;
    let body = move_to(&s, &case, "REMEDIATED").await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("cannot move from open to remediated"));
    let body = move_to(&s, &case, "CLOSED").await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "closing has its own mutation");
    for to in ["TRIAGE", "INVESTIGATING", "CONTAINED"] {
        let body = move_to(&s, &case, to).await;
        assert_eq!(body["data"]["transitionCase"]["status"], to, "{body}");
    }
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($c: ID!, $to: ID!) { escalateCase(id: $c, toId: $to, reason: \"production admin involved\") {
                status escalatedTo { email } escalationReason } }",
            json!({ "c": case, "to": w.id("priya") }),
        )
        .await;
    assert_eq!(
        d["escalateCase"],
        json!({ "status": "ESCALATED", "escalatedTo": { "email": "priya@corp.example" }, "escalationReason": "production admin involved" })
    );
    let d = s
        .ok(
            &s.as_("ada"),
            "query($c: ID!) { case(id: $c) { decisions { kind outcome actor { email } } } }",
            json!({ "c": case }),
        )
        .await;
    let kinds: Vec<&str> =
        d["case"]["decisions"].as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["OPEN_CASE", "TRANSITION_CASE", "TRANSITION_CASE", "TRANSITION_CASE", "ESCALATE_CASE"]);
}

#[tokio::test]
async fn closing_needs_verification_and_no_open_mandatory_task_and_reopening_a_reason() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w).await;
    let ines = s.as_("ines");
    let d = s
        .ok(&ines, ATTACH, json!({ "c": case, "i": { "kind": "NOTE", "content": "first look", "source": "analyst" } }))
        .await;
    let first = d["attachEvidence"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &ines,
            "mutation($c: ID!) { addTask(caseId: $c, input: { kind: ROTATE, title: \"rotate the key\", mandatory: true }) { id status } }",
            json!({ "c": case }),
        )
        .await;
    let task = d["addTask"]["id"].as_str().unwrap().to_owned();
    let close =
        "mutation($c: ID!, $e: ID!) { closeCase(id: $c, input: { resolution: TRUE_POSITIVE, summary: \"rotated\",
        riskRemediated: true, findingClosed: true, verificationEvidenceId: $e }) { status resolution } }";
    let (_, body) = s.gql(&ines, close, json!({ "c": case, "e": first })).await;
    assert_eq!((code(&body), body["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("tasks")));

    // Evidence is corrected by superseding it; the superseded one no longer verifies.
    let (_, body) = s
        .gql(
            &ines,
            ATTACH,
            json!({ "c": case, "i": { "kind": "NOTE", "content": "x", "source": "analyst", "supersedes": first } }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "superseding needs a reason");
    let d = s
        .ok(
            &ines,
            ATTACH,
            json!({ "c": case, "i": { "kind": "ROTATION_STATUS", "content": "rotated 10:02", "source": "vault",
                                      "supersedes": first, "supersedeReason": "the note had the wrong time" } }),
        )
        .await;
    let second = d["attachEvidence"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["attachEvidence"]["supersedes"]["id"], first.as_str());
    s.ok(&ines, "mutation($t: ID!) { completeTask(id: $t, note: \"done\") { status } }", json!({ "t": task })).await;
    let (_, body) = s.gql(&ines, close, json!({ "c": case, "e": first })).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "verificationEvidence", "{body}");
    let d = s.ok(&ines, close, json!({ "c": case, "e": second })).await;
    assert_eq!(d["closeCase"], json!({ "status": "CLOSED", "resolution": "TRUE_POSITIVE" }));

    // A closed case takes no more evidence, and reopens only with a reason.
    let (_, body) = s
        .gql(&ines, ATTACH, json!({ "c": case, "i": { "kind": "NOTE", "content": "late", "source": "analyst" } }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let reopen = "mutation($c: ID!, $r: String!) { reopenCase(id: $c, reason: $r) { status reopenReason resolution } }";
    let (_, body) = s.gql(&ines, reopen, json!({ "c": case, "r": "" })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let d = s.ok(&ines, reopen, json!({ "c": case, "r": "the key was used again" })).await;
    assert_eq!(
        d["reopenCase"],
        json!({ "status": "INVESTIGATING", "reopenReason": "the key was used again", "resolution": null })
    );

    // Evidence by framework reference (its own or its case's) and collection window.
    let d = s
        .ok(
            &s.as_("ada"),
            "{ evidence(filter: { reference: \"RS.AN-1\" }) { totalCount edges { node { sha256 intact } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["evidence"]["totalCount"], 2);
    assert!(d["evidence"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["intact"] == true));
    let d = s
        .ok(
            &s.as_("ada"),
            "{ evidence(filter: { reference: \"RS.AN-1\", collectedTo: \"2000-01-01T00:00:00Z\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(d["evidence"]["totalCount"], 0);
    // Viewers see cases but not evidence.
    let (_, body) = s.gql(&s.as_("vic"), "{ evidence { totalCount } }", json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN");
}

#[tokio::test]
async fn cases_fall_due_by_severity_and_show_overdue() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w).await;
    let d =
        s.ok(&s.as_("ines"), "query($c: ID!) { case(id: $c) { openedAt dueAt overdue } }", json!({ "c": case })).await;
    let opened: chrono::DateTime<chrono::Utc> = d["case"]["openedAt"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = d["case"]["dueAt"].as_str().unwrap().parse().unwrap();
    assert_eq!((due - opened).num_hours(), 24, "HIGH is due in 24 hours by default");
    assert_eq!(d["case"]["overdue"], false);
    s.store.execute_raw(&format!("UPDATE {case} SET due_at = time::now() - 1h")).await.unwrap();
    let d = s
        .ok(
            &s.as_("vic"),
            "{ cases(filter: { overdue: true }) { totalCount edges { node { id overdue } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["cases"]["edges"][0]["node"], json!({ "id": case, "overdue": true }));
    let d = s.ok(&s.as_("ines"), "{ myQueue { totalCount } }", json!({})).await;
    assert_eq!(d["myQueue"]["totalCount"], 1);
}

const MY_WORK: &str = "query($n: Int) { myWork(first: $n) {
    counts { cases tasks reviewItems findings alerts overdue total }
    items { kind overdue dueAt subjectId record { __typename ... on Case { id } ... on Task { id }
        ... on Alert { id status } } } } }";

/// The (kind, id) of each row of a `myWork` answer.
fn work_rows(d: &Value) -> Vec<(String, String)> {
    d["myWork"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap().to_owned(), i["record"]["id"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn an_owners_work_is_one_listing_overdue_first_with_alerts_on_what_they_own() {
    let s = TestServer::start().await;
    let w = s.world().await;
    // Two cases for ines, the first past its due time, and a task on the second.
    let late = open_case(&s, &w).await;
    s.store.execute_raw(&format!("UPDATE {late} SET due_at = time::now() - 1h")).await.unwrap();
    let a = alert(&s, "second", json!({ "fingerprint": "fp-nobody-knows-this" })).await;
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($a: ID!, $me: ID!) { openCase(input: { title: \"second\", alertIds: [$a], assigneeId: $me }) { id } }",
            json!({ "a": a, "me": w.id("ines") }),
        )
        .await;
    let fresh = d["openCase"]["id"].as_str().unwrap().to_owned();
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($c: ID!, $me: ID!) { addTask(caseId: $c, input: { kind: ROTATE, title: \"rotate\", assigneeId: $me }) { id } }",
            json!({ "c": fresh, "me": w.id("ines") }),
        )
        .await;
    let task = d["addTask"]["id"].as_str().unwrap().to_owned();

    // Overdue first; then the newest first: the task came after its case.
    let d = s.ok(&s.as_("ines"), MY_WORK, json!({})).await;
    let rows = work_rows(&d);
    let expected = [("CASE", late.as_str()), ("TASK", task.as_str()), ("CASE", fresh.as_str())];
    assert_eq!(rows, expected.map(|(k, i)| (k.to_owned(), i.to_owned())), "{d}");
    let overdue: Vec<&Value> = d["myWork"]["items"].as_array().unwrap().iter().map(|i| &i["overdue"]).collect();
    assert_eq!(overdue, [&json!(true), &json!(false), &json!(false)]);
    let items = d["myWork"]["items"].as_array().unwrap();
    assert_eq!(items[1]["dueAt"], items[2]["dueAt"], "a task is due when its case is");
    assert_eq!(
        d["myWork"]["counts"],
        json!({ "cases": 2, "tasks": 1, "reviewItems": 0, "findings": 0, "alerts": 0, "overdue": 1, "total": 3 })
    );
    // A shorter page keeps the order, and the counts are of everything.
    let d = s.ok(&s.as_("ines"), MY_WORK, json!({ "n": 1 })).await;
    assert_eq!(work_rows(&d), [("CASE".to_owned(), late.clone())]);
    assert_eq!(d["myWork"]["counts"]["total"], 3);

    // An alert about what olga owns through her team reaches her until it is dismissed.
    let stale = alert(&s, "stale", json!({ "externalId": "bot-1" })).await;
    let d = s.ok(&s.as_("olga"), MY_WORK, json!({})).await;
    assert_eq!(work_rows(&d), [("ALERT".to_owned(), stale.clone())]);
    assert_eq!(d["myWork"]["items"][0]["subjectId"], w.id("bot"));
    assert_eq!(d["myWork"]["counts"]["alerts"], 1);
    // Not in the work of someone who does not own it.
    let d = s.ok(&s.as_("jules"), MY_WORK, json!({})).await;
    assert_eq!(d["myWork"]["counts"]["total"], 0, "{d}");
    s.ok(&s.as_("ines"), "mutation($a: ID!) { dismissAlert(id: $a, reason: \"noise\") { id } }", json!({ "a": stale }))
        .await;
    let d = s.ok(&s.as_("olga"), MY_WORK, json!({})).await;
    assert_eq!(d["myWork"]["counts"]["total"], 0, "{d}");

    // A case escalated to priya is in her work, overdue as it was, and stays in ines's
    // while she is its assignee.
    s.ok(
        &s.as_("ines"),
        "mutation($c: ID!, $to: ID!) { escalateCase(id: $c, toId: $to, reason: \"needs a lead\") { status } }",
        json!({ "c": late, "to": w.id("priya") }),
    )
    .await;
    let d = s.ok(&s.as_("priya"), MY_WORK, json!({})).await;
    assert_eq!(work_rows(&d), [("CASE".to_owned(), late.clone())], "{d}");
    assert_eq!(d["myWork"]["items"][0]["overdue"], true);
    assert_eq!(
        (d["myWork"]["counts"]["cases"].clone(), d["myWork"]["counts"]["overdue"].clone()),
        (json!(1), json!(1))
    );
    let d = s.ok(&s.as_("ines"), MY_WORK, json!({})).await;
    assert_eq!(d["myWork"]["counts"]["cases"], 2, "assigned and escalated are one case each: {d}");

    let (_, body) = s.gql(&s.as_("ines"), MY_WORK, json!({ "n": 0 })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}
