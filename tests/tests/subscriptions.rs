//! Subscriptions over `/graphql/ws` (graphql-transport-ws): authentication in
//! `connection_init`, every close code the protocol names, and the live feeds (inventory
//! changes, case events, a person's queue, new alerts), across replicas too.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use nhigov::config::Config;
use nhigov_tests::{TestServer, World};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", s.addr).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("websocket connects").0
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.expect("sent");
}

/// The next text message as JSON, or `{"closed": code}` when the server closes.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                // Keep-alive pings are answered and skipped.
                if v["type"] == "ping" {
                    send(ws, json!({ "type": "pong" })).await;
                    continue;
                }
                return v;
            }
            Message::Close(frame) => {
                return json!({ "closed": frame.as_ref().map(|f| u16::from(f.code)), "reason": frame.map(|f| f.reason.to_string()) });
            }
            _ => continue,
        }
    }
}

/// Nothing arrives for a while.
async fn quiet(ws: &mut Ws, for_: Duration) -> bool {
    tokio::time::timeout(for_, ws.next()).await.is_err()
}

/// A connection acknowledged for `token`.
async fn connected(s: &TestServer, token: &str) -> Ws {
    let mut ws = connect(s).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": token } })).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws
}

async fn subscribe(ws: &mut Ws, id: &str, query: &str, variables: Value) {
    send(ws, json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
}

/// The next `next` payload's data for operation `id`.
async fn next_data(ws: &mut Ws, id: &str) -> Value {
    let m = next_json(ws).await;
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["id"], id, "{m}");
    assert!(m["payload"].get("errors").is_none(), "{m}");
    m["payload"]["data"].clone()
}

/// Subscriptions register when the server has read the message; give it a moment.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

const CASE_EVENTS: &str =
    "subscription($c: ID!) { caseEvents(caseId: $c) { kind detail summary caseId recordId actor { email } } }";
const QUEUE: &str = "subscription { queueEvents { kind detail caseId case { title assignee { email } } } }";
const ALERTS: &str =
    "subscription($m: Severity) { alertRaised(minSeverity: $m) { kind detail alert { title severity } } }";

async fn alert(s: &TestServer, rule: &str, severity: &str) -> String {
    s.raise_alert(rule, severity).await
}

async fn open_case(s: &TestServer, w: &World, assignee: &str) -> String {
    // A distinct rule per case, so each alert is new rather than a repeat.
    static CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let a = alert(s, &format!("leak-{n}"), "HIGH").await;
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($a: ID!, $to: ID!) { openCase(input: { title: \"leak\", alertIds: [$a], assigneeId: $to }) { id } }",
            json!({ "a": a, "to": w.id(assignee) }),
        )
        .await;
    d["openCase"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_subscriber_sees_inventory_changes_as_they_commit() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let mut ws = connected(&s, &admin).await;
    subscribe(&mut ws, "1", "subscription { inventoryChanged { action id } }", json!({})).await;
    settle().await;
    let d = s.ok(&admin, "mutation { createTeam(input: { name: \"Live\" }) { id } }", json!({})).await;
    let event = next_data(&mut ws, "1").await;
    assert_eq!(event["inventoryChanged"]["action"], "CREATED");
    assert_eq!(event["inventoryChanged"]["id"], d["createTeam"]["id"]);
}

#[tokio::test]
async fn every_step_of_a_case_reaches_its_subscribers_in_order() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w, "ines").await;
    let mut ws = connected(&s, &s.as_("priya")).await;
    subscribe(&mut ws, "c", CASE_EVENTS, json!({ "c": case })).await;
    settle().await;

    s.ok(
        &s.as_("ines"),
        "mutation($c: ID!) { attachEvidence(caseId: $c, input: { kind: NOTE, content: \"k8s audit\", source: \"siem\" }) { id } }",
        json!({ "c": case }),
    )
    .await;
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($c: ID!, $to: ID!) { addTask(caseId: $c, input: { kind: ROTATE, title: \"rotate the key\", assigneeId: $to }) { id } }",
            json!({ "c": case, "to": w.id("priya") }),
        )
        .await;
    let task = d["addTask"]["id"].as_str().unwrap().to_owned();
    s.ok(&s.as_("ines"), "mutation($t: ID!) { completeTask(id: $t, note: \"rotated\") { id } }", json!({ "t": task }))
        .await;
    s.ok(
        &s.as_("ines"),
        "mutation($c: ID!) { transitionCase(id: $c, to: INVESTIGATING, rationale: \"looking\") { id } }",
        json!({ "c": case }),
    )
    .await;

    let kinds: Vec<(Value, Value)> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            let e = next_data(&mut ws, "c").await["caseEvents"].clone();
            assert_eq!(e["caseId"], case.as_str(), "{e}");
            assert_eq!(e["actor"]["email"], "ines@corp.example", "{e}");
            out.push((e["kind"].clone(), e["detail"].clone()));
        }
        out
    };
    assert_eq!(
        kinds,
        vec![
            (json!("EVIDENCE"), json!("note")),
            (json!("TASK_ADDED"), json!("rotate")),
            (json!("TASK_FINISHED"), json!("done")),
            (json!("DECISION"), json!("transition_case transitioned")),
        ]
    );
    // Another case's events are not this subscriber's.
    open_case(&s, &w, "ines").await;
    assert!(quiet(&mut ws, Duration::from_millis(800)).await);
}

#[tokio::test]
async fn a_queue_shows_what_is_assigned_to_its_owner_and_nothing_else() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let mut ws = connected(&s, &s.as_("priya")).await;
    subscribe(&mut ws, "q", QUEUE, json!({})).await;
    settle().await;
    // A case for someone else: not in priya's queue.
    open_case(&s, &w, "ines").await;
    // A case opened for priya: its opening is.
    let mine = open_case(&s, &w, "priya").await;
    let e = next_data(&mut ws, "q").await["queueEvents"].clone();
    assert_eq!((e["kind"].as_str(), e["caseId"].as_str()), (Some("DECISION"), Some(mine.as_str())), "{e}");
    assert_eq!(e["detail"], "open_case opened");
    assert_eq!(e["case"]["assignee"]["email"], "priya@corp.example");

    // Reassigned away from priya: she sees the assignment (her queue lost it), and
    // nothing after.
    let theirs = open_case(&s, &w, "ines").await;
    s.ok(
        &s.as_("ines"),
        "mutation($c: ID!, $to: ID!) { assignCase(id: $c, assigneeId: $to, rationale: \"yours\") { id } }",
        json!({ "c": theirs, "to": w.id("priya") }),
    )
    .await;
    let e = next_data(&mut ws, "q").await["queueEvents"].clone();
    assert_eq!((e["detail"].as_str(), e["caseId"].as_str()), (Some("assign_case assigned"), Some(theirs.as_str())));
    assert!(quiet(&mut ws, Duration::from_millis(600)).await);
}

#[tokio::test]
async fn new_alerts_stream_by_severity_and_repeats_are_not_news() {
    let s = TestServer::start().await;
    s.world().await;
    let mut all = connected(&s, &s.as_("vic")).await;
    subscribe(&mut all, "a", ALERTS, json!({})).await;
    let mut high = connected(&s, &s.as_("ines")).await;
    subscribe(&mut high, "h", ALERTS, json!({ "m": "HIGH" })).await;
    settle().await;

    alert(&s, "low-one", "LOW").await;
    alert(&s, "critical-one", "CRITICAL").await;
    alert(&s, "critical-one", "CRITICAL").await; // the same finding again

    let e = next_data(&mut all, "a").await["alertRaised"].clone();
    assert_eq!((e["kind"].as_str(), e["alert"]["title"].as_str()), (Some("ALERT_RAISED"), Some("low-one")));
    let e = next_data(&mut all, "a").await["alertRaised"].clone();
    assert_eq!(e["alert"]["title"], "critical-one");
    let e = next_data(&mut high, "h").await["alertRaised"].clone();
    assert_eq!((e["detail"].as_str(), e["alert"]["severity"].as_str()), (Some("critical"), Some("CRITICAL")));
    assert!(quiet(&mut all, Duration::from_millis(600)).await, "a repeat is counted, not raised again");
    assert!(quiet(&mut high, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn a_replica_streams_what_another_replica_committed() {
    let a = TestServer::start().await;
    let w = a.world().await;
    let b = TestServer::start_on(Config::default(), a.store.as_replica()).await;
    let case = open_case(&a, &w, "ines").await;
    let mut ws = connected(&b, &b.as_("ines")).await;
    subscribe(&mut ws, "c", CASE_EVENTS, json!({ "c": case })).await;
    settle().await;
    a.ok(
        &a.as_("ines"),
        "mutation($c: ID!) { transitionCase(id: $c, to: INVESTIGATING, rationale: \"from a\") { id } }",
        json!({ "c": case }),
    )
    .await;
    let e = next_data(&mut ws, "c").await["caseEvents"].clone();
    assert_eq!(e["detail"], "transition_case transitioned", "{e}");
    assert!(e["summary"].as_str().unwrap().contains("from a"), "{e}");
}

#[tokio::test]
async fn case_streams_follow_the_read_roles() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w, "ines").await;
    // A viewer may watch alerts but not a case's decisions and evidence.
    let mut ws = connected(&s, &s.as_("vic")).await;
    subscribe(&mut ws, "c", CASE_EVENTS, json!({ "c": case })).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{m}");
    // A case that does not exist is an error, not a silent stream.
    let mut ws = connected(&s, &s.as_("ines")).await;
    subscribe(&mut ws, "x", CASE_EVENTS, json!({ "c": "case:nosuchcase" })).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{m}");
}

// ---------------------------------------------------------------- the protocol itself

async fn closed_with(ws: &mut Ws) -> u16 {
    let m = next_json(ws).await;
    m["closed"].as_u64().unwrap_or_else(|| panic!("expected a close, got {m}")) as u16
}

#[tokio::test]
async fn a_connection_without_a_valid_token_is_closed_4403() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": "forged" } })).await;
    assert_eq!(closed_with(&mut ws).await, 4403);
    let mut ws = connect(&s).await;
    send(&mut ws, json!({ "type": "connection_init" })).await;
    assert_eq!(closed_with(&mut ws).await, 4403);
    assert!(s.healthy().await);
}

#[tokio::test]
async fn subscribing_before_the_ack_is_closed_4401() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    subscribe(&mut ws, "1", "subscription { inventoryChanged { id } }", json!({})).await;
    assert_eq!(closed_with(&mut ws).await, 4401);
}

#[tokio::test]
async fn a_silent_client_is_closed_4408_after_the_init_timeout() {
    let mut cfg = Config::default();
    cfg.limits.ws_init_timeout_ms = 300;
    let s = TestServer::start_with(cfg).await;
    let mut ws = connect(&s).await;
    let started = std::time::Instant::now();
    assert_eq!(closed_with(&mut ws).await, 4408);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_second_init_is_closed_4429() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let mut ws = connected(&s, &admin).await;
    send(&mut ws, json!({ "type": "connection_init", "payload": { "token": admin } })).await;
    assert_eq!(closed_with(&mut ws).await, 4429);
}

#[tokio::test]
async fn a_running_id_reused_is_closed_4409_and_a_completed_one_may_be_reused() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let mut ws = connected(&s, &admin).await;
    subscribe(&mut ws, "1", "query { me { email } }", json!({})).await;
    assert_eq!(next_data(&mut ws, "1").await["me"]["email"], "admin@test.example");
    assert_eq!(next_json(&mut ws).await, json!({ "id": "1", "type": "complete" }));
    // "1" finished, so it may be used again.
    subscribe(&mut ws, "1", "subscription { inventoryChanged { id } }", json!({})).await;
    settle().await;
    subscribe(&mut ws, "1", "subscription { inventoryChanged { id } }", json!({})).await;
    assert_eq!(closed_with(&mut ws).await, 4409);
}

#[tokio::test]
async fn malformed_messages_are_closed_4400() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    for bad in [
        Message::text("not json"),
        Message::text("[1,2]"),
        Message::text(json!({ "type": "no_such_type" }).to_string()),
        Message::text(json!({ "type": "subscribe", "id": "1" }).to_string()),
        Message::text(json!({ "type": "subscribe", "id": 7, "payload": { "query": "{ me { id } }" } }).to_string()),
        Message::binary(vec![1u8, 2, 3]),
    ] {
        let mut ws = connected(&s, &admin).await;
        ws.send(bad.clone()).await.unwrap();
        assert_eq!(closed_with(&mut ws).await, 4400, "{bad:?}");
    }
    assert!(s.healthy().await);
}

#[tokio::test]
async fn pings_are_answered_and_bad_documents_are_errors_that_keep_the_connection() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let mut ws = connected(&s, &admin).await;
    send(&mut ws, json!({ "type": "ping", "payload": { "n": 1 } })).await;
    assert_eq!(next_json(&mut ws).await, json!({ "type": "pong", "payload": { "n": 1 } }));

    subscribe(&mut ws, "v", "subscription { noSuchField }", json!({})).await;
    let m = next_json(&mut ws).await;
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("error"), Some("v")), "{m}");
    assert!(m["payload"][0]["message"].as_str().unwrap().contains("noSuchField"), "{m}");

    let deep = format!("query {{ me {{ id }} }} {}", "[".repeat(10_000));
    subscribe(&mut ws, "d", &deep, json!({})).await;
    let m = next_json(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{m}");

    // Still serving.
    subscribe(&mut ws, "ok", "query { me { email } }", json!({})).await;
    assert_eq!(next_data(&mut ws, "ok").await["me"]["email"], "admin@test.example");
}

#[tokio::test]
async fn a_deactivated_person_loses_the_connection_at_the_next_keepalive() {
    let mut cfg = Config::default();
    cfg.limits.ws_keepalive_secs = 1;
    let s = TestServer::start_with(cfg).await;
    let w = s.world().await;
    let mut ws = connected(&s, &s.as_("ines")).await;
    subscribe(&mut ws, "a", ALERTS, json!({})).await;
    settle().await;
    s.ok(
        &s.as_("sam"),
        "mutation($p: ID!) { updatePerson(id: $p, input: { active: false }) { person { id } } }",
        json!({ "p": w.id("ines") }),
    )
    .await;
    assert_eq!(closed_with(&mut ws).await, 4403);
}

/// Operations run with the roles the caller holds now: a subscriber whose roles change
/// loses the socket at the next keep-alive, and keeps none of the old roles' streams.
#[tokio::test]
async fn a_demoted_subscriber_loses_the_socket_at_the_next_keepalive() {
    let mut cfg = Config::default();
    cfg.limits.ws_keepalive_secs = 1;
    let s = TestServer::start_with(cfg).await;
    let w = s.world().await;
    let mut ws = connected(&s, &s.as_("ines")).await;
    subscribe(&mut ws, "a", ALERTS, json!({})).await;
    settle().await;
    let d = s
        .ok(
            &s.as_("sam"),
            "mutation($p: ID!) { updatePerson(id: $p, input: { roles: [VIEWER] }) { decision { outcome } } }",
            json!({ "p": w.id("ines") }),
        )
        .await;
    assert_eq!(d["updatePerson"]["decision"]["outcome"], "APPLIED", "{d}");
    assert_eq!(closed_with(&mut ws).await, 4403);
}

/// Each role against each subscription: an allowed one stays open and silent (it waits
/// for events); a refused one answers FORBIDDEN at once and completes.
#[tokio::test]
async fn every_role_against_every_subscription() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let case = open_case(&s, &w, "ines").await;
    let subs = [
        (
            "inventoryChanged",
            "subscription { inventoryChanged { id } }",
            json!({}),
            "viewer investigator approver admin auditor ingest",
        ),
        ("caseEvents", CASE_EVENTS, json!({ "c": case }), "investigator approver admin auditor"),
        ("queueEvents", QUEUE, json!({}), "investigator approver admin auditor"),
        ("alertRaised", ALERTS, json!({}), "viewer investigator approver admin auditor"),
    ];
    // One person per single role.
    for (who, role) in [
        ("vic", "viewer"),
        ("ines", "investigator"),
        ("jules", "approver"),
        ("sam", "admin"),
        ("ada", "auditor"),
        ("scanner", "ingest"),
    ] {
        let mut ws = connected(&s, &s.as_(who)).await;
        for (name, query, vars, allowed) in &subs {
            subscribe(&mut ws, name, query, vars.clone()).await;
            let may = allowed.split(' ').any(|r| r == role);
            if may {
                assert!(quiet(&mut ws, Duration::from_millis(150)).await, "{role} should be allowed {name}");
            } else {
                let m = next_json(&mut ws).await;
                assert_eq!(m["id"], *name, "{m}");
                assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{role} on {name}: {m}");
                // The refused operation ends there.
                assert_eq!(next_json(&mut ws).await, json!({ "id": name, "type": "complete" }));
            }
        }
    }
}
