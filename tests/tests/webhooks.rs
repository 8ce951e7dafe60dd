//! Outbound webhooks against a real receiver on loopback: signatures checked with an
//! independent HMAC, retries with backoff, giving up, filters, a hanging receiver that
//! must not slow the API, two replicas sending each event once, and events committed
//! while no server ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use nhigov::config::{Config, WebhookEndpoint};
use nhigov_tests::{LEAKED_FINGERPRINT, TestServer};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Mutex;

const SECRET: &str = "webhook-secret-0123456789";

/// What the receiver saw: headers and body of each request, with when it came.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, Value, Instant)>>>,
}

#[derive(Clone)]
struct Behaviour {
    got: Arc<Mutex<Vec<(HeaderMap, Value, Instant)>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicUsize>,
    /// Then take this long to answer.
    hang: Duration,
}

async fn hook(State(b): State<Behaviour>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // The signature is over the exact bytes sent.
    let sig = headers["x-nhigov-signature"].to_str().unwrap().to_owned();
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let valid = hex::encode(mac.finalize().into_bytes()) == v1;
    let mut headers = headers;
    headers.insert("x-test-signature-valid", if valid { "yes" } else { "no" }.parse().unwrap());
    b.got.lock().await.push((headers, json, Instant::now()));
    if b.fail_first.load(Ordering::SeqCst) > 0 {
        b.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    tokio::time::sleep(b.hang).await;
    StatusCode::NO_CONTENT
}

async fn receiver(fail_first: usize, hang: Duration) -> Receiver {
    let got = Arc::new(Mutex::new(Vec::new()));
    let b = Behaviour { got: got.clone(), fail_first: Arc::new(AtomicUsize::new(fail_first)), hang };
    let app = Router::new().route("/hook", post(hook)).with_state(b);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

fn config(r: &Receiver, edit: impl FnOnce(&mut WebhookEndpoint)) -> Config {
    let mut cfg = Config::default();
    cfg.webhooks.retry_base_ms = 100;
    let mut ep = WebhookEndpoint {
        name: "grc".into(),
        url: r.url.clone(),
        secret: SECRET.into(),
        // The tests watch alerts; the world's genesis is a decision, and would be sent
        // too. The filter test chooses its own kinds.
        kinds: vec!["alert_raised".into()],
        outcomes: vec![],
        min_severity: None,
    };
    edit(&mut ep);
    cfg.webhooks.endpoints = vec![ep];
    cfg
}

/// Wait until the server's webhook enqueuer is listening (it has set its cursor).
async fn webhooks_ready(s: &TestServer) {
    for _ in 0..200 {
        if s.store.webhook_cursor().await.unwrap().is_some() {
            // The cursor is set after the subscription is taken.
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the webhook enqueuer did not start");
}

/// Wait until the receiver has seen `n` requests; all it has seen.
async fn requests(r: &Receiver, n: usize) -> Vec<(HeaderMap, Value, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = r.got.lock().await.clone();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{} of {n} requests arrived", got.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn alert(s: &TestServer, rule: &str, severity: &str) {
    let input = json!({ "source": "scanner", "rule": rule, "severity": severity, "title": rule, "fingerprint": LEAKED_FINGERPRINT });
    s.ok(
        &s.as_("scanner"),
        "mutation($i: AlertInput!) { ingestAlert(input: $i) { alert { id } } }",
        json!({ "i": input }),
    )
    .await;
}

#[tokio::test]
async fn events_arrive_signed_with_their_id_and_kind() {
    let r = receiver(0, Duration::ZERO).await;
    let s = TestServer::start_with(config(&r, |_| {})).await;
    s.world().await;
    webhooks_ready(&s).await;
    alert(&s, "leak", "HIGH").await;
    let got = requests(&r, 1).await;
    let (h, body, _) = &got[0];
    assert_eq!(h["x-test-signature-valid"], "yes");
    assert_eq!(h["x-nhigov-event"].to_str().unwrap(), body["id"].as_str().unwrap());
    assert_eq!(h["x-nhigov-event-kind"], "alert_raised");
    assert_eq!(h["x-nhigov-webhook"], "grc");
    assert_eq!(h["x-nhigov-attempt"], "1");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(body["kind"], "alert_raised");
    assert_eq!(body["detail"], "high");
    assert!(body["record"].as_str().unwrap().starts_with("alert:"), "{body}");
    assert!(body["summary"].as_str().unwrap().contains("leak"), "{body}");
    assert_eq!(s.store.delivery_counts("grc").await.unwrap().delivered, 1);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_growing_waits_until_it_answers() {
    let r = receiver(3, Duration::ZERO).await;
    let s = TestServer::start_with(config(&r, |_| {})).await;
    s.world().await;
    webhooks_ready(&s).await;
    alert(&s, "leak", "HIGH").await;
    let got = requests(&r, 4).await;
    let ids: Vec<&str> = got.iter().map(|(_, b, _)| b["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one event, four attempts: {ids:?}");
    let attempts: Vec<&str> = got.iter().map(|(h, _, _)| h["x-nhigov-attempt"].to_str().unwrap()).collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    // Waits of about 100, 200 and 400 ms (±20%), after which the server looks within a tick.
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].2 - w[0].2).collect();
    for (gap, least) in gaps.iter().zip([80u64, 160, 320]) {
        assert!(*gap >= Duration::from_millis(least), "gaps {gaps:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.store.delivery_counts("grc").await.unwrap().delivered != 1 {
        assert!(Instant::now() < deadline, "never recorded as delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_receiver_that_never_succeeds_is_given_up_after_max_attempts() {
    let r = receiver(usize::MAX, Duration::ZERO).await;
    let mut cfg = config(&r, |_| {});
    cfg.webhooks.max_attempts = 3;
    cfg.webhooks.retry_base_ms = 20;
    let s = TestServer::start_with(cfg).await;
    s.world().await;
    webhooks_ready(&s).await;
    alert(&s, "leak", "HIGH").await;
    requests(&r, 3).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.store.delivery_counts("grc").await.unwrap().failed != 1 {
        assert!(Instant::now() < deadline, "never marked failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(r.got.lock().await.len(), 3, "no attempt after the last");
}

#[tokio::test]
async fn a_hanging_receiver_does_not_slow_the_request_that_caused_the_event() {
    let r = receiver(0, Duration::from_secs(20)).await;
    let s = TestServer::start_with(config(&r, |_| {})).await;
    s.world().await;
    webhooks_ready(&s).await;
    alert(&s, "first", "HIGH").await;
    requests(&r, 1).await; // the receiver now hangs on it
    let started = Instant::now();
    for i in 0..5 {
        alert(&s, &format!("more-{i}"), "HIGH").await;
    }
    assert!(started.elapsed() < Duration::from_secs(2), "5 alerts took {:?}", started.elapsed());
}

#[tokio::test]
async fn filters_choose_kinds_outcomes_and_severities() {
    let r = receiver(0, Duration::ZERO).await;
    let s = TestServer::start_with(config(&r, |e| {
        e.kinds = vec!["alert_raised".into(), "decision".into()];
        e.min_severity = Some("high".into());
        e.outcomes = vec!["dismissed".into()];
    }))
    .await;
    s.world().await;
    webhooks_ready(&s).await;
    alert(&s, "low-one", "LOW").await;
    alert(&s, "critical-one", "CRITICAL").await;
    let d = s.ok(&s.as_("ines"), "{ alerts(first: 10) { edges { node { id title } } } }", json!({})).await;
    let ids: Vec<String> =
        d["alerts"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect();
    // A dismissal is sent; opening a case is not.
    s.ok(
        &s.as_("ines"),
        "mutation($a: ID!) { dismissAlert(id: $a, reason: \"false positive\") { id } }",
        json!({ "a": ids[0] }),
    )
    .await;
    s.ok(
        &s.as_("ines"),
        "mutation($a: ID!) { openCase(input: { title: \"c\", alertIds: [$a] }) { id } }",
        json!({ "a": ids[1] }),
    )
    .await;
    let got = requests(&r, 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got_now = r.got.lock().await.clone();
    assert_eq!(got_now.len(), got.len(), "only two events pass the filter");
    let mut seen: Vec<(String, String)> = got_now
        .iter()
        .map(|(_, b, _)| (b["kind"].as_str().unwrap().to_owned(), b["detail"].as_str().unwrap().to_owned()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("alert_raised".to_owned(), "critical".to_owned()),
            ("decision".to_owned(), "dismiss_alert dismissed".to_owned())
        ]
    );
}

#[tokio::test]
async fn two_replicas_send_each_event_once() {
    let r = receiver(0, Duration::ZERO).await;
    let a = TestServer::start_with(config(&r, |_| {})).await;
    a.world().await;
    let b = TestServer::start_on(config(&r, |_| {}), a.store.as_replica()).await;
    webhooks_ready(&a).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..4 {
        alert(&a, &format!("a-{i}"), "HIGH").await;
        alert(&b, &format!("b-{i}"), "HIGH").await;
    }
    requests(&r, 8).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = r.got.lock().await.clone();
    let mut ids: Vec<&str> = got.iter().map(|(_, b, _)| b["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (8, 8), "8 events, each sent once");
}

#[tokio::test]
async fn events_committed_while_no_server_ran_are_sent_at_the_next_start() {
    let r = receiver(0, Duration::ZERO).await;
    let first = TestServer::start_with(config(&r, |_| {})).await;
    first.world().await;
    webhooks_ready(&first).await;
    let store = first.store.clone();
    first.stop().await;
    // Written straight to the store while no server is listening.
    let a = graph_model::NewAlert {
        source: graph_model::Label::parse("scanner").unwrap(),
        rule: graph_model::Label::parse("while-down").unwrap(),
        severity: graph_model::Severity::High,
        title: graph_model::Text::parse("while down").unwrap(),
        detail: None,
        detected_at: chrono::Utc::now(),
        subject: graph_model::SubjectRef::Fingerprint(LEAKED_FINGERPRINT.into()),
        refs: vec![],
        dedupe_key: "while-down".into(),
    };
    store.ingest_alert(&a).await.unwrap();
    assert!(r.got.lock().await.is_empty());
    let _second = TestServer::start_on(config(&r, |_| {}), store).await;
    let got = requests(&r, 1).await;
    assert_eq!(got[0].1["summary"].as_str().map(|s| s.contains("while down")), Some(true), "{}", got[0].1);
}
