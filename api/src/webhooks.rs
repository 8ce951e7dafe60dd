//! Outbound webhooks: case, decision and alert events POSTed to configured endpoints,
//! signed, retried with backoff, and never in the way of the request that caused them.
//!
//! Two tasks per server. The enqueuer listens to the store's event feed and records one
//! delivery per (endpoint, event) that passes the endpoint's filter; on start and after
//! falling behind it also reads the events since the last one it enqueued (kept in
//! `meta:webhooks`), so events committed while no server ran are still sent. The sender
//! leases due deliveries, POSTs them, and records the outcome: delivered on a 2xx;
//! otherwise rescheduled after `retry_base_ms * 2^(attempt-1)` (±20%, at most an hour)
//! until `max_attempts`, then failed. Deliveries are records keyed by endpoint and event,
//! and leases are taken in a transaction, so replicas sharing a database send each event
//! once per endpoint.
//!
//! Each request carries:
//! - `X-Nhigov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under
//!   the endpoint's secret (receivers should also refuse old `t`, against replays);
//! - `X-Nhigov-Event` (the event's id, the same on every retry: an idempotency key),
//!   `X-Nhigov-Event-Kind`, `X-Nhigov-Webhook` and `X-Nhigov-Attempt`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_model::store::{Attempt, Delivery, Store};
use graph_model::{Event, EventKind, Severity};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Deliveries sent at once by one server.
const IN_FLIGHT: usize = 16;
/// How long a leased delivery belongs to the server that leased it.
const LEASE: Duration = Duration::from_secs(120);
/// How often the sender looks for due retries when nothing new arrived.
const TICK: Duration = Duration::from_millis(500);
/// Events read per page when catching up.
const PAGE: usize = 500;
/// How far behind the last enqueued event a catch-up re-reads.
const MARGIN: chrono::Duration = chrono::Duration::seconds(5);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Which events an endpoint wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    kinds: Vec<EventKind>,
    outcomes: Vec<String>,
    min_severity: Option<Severity>,
}

impl Filter {
    fn of(e: &WebhookEndpoint) -> Result<Filter, String> {
        let at = |field: &str| format!("configuration: webhooks.endpoints[{}].{field}", e.name);
        let kinds = e
            .kinds
            .iter()
            .map(|k| EventKind::parse(k).map_err(|err| format!("{}: {}", at("kinds"), err.message)))
            .collect::<Result<_, _>>()?;
        let outcomes = e
            .outcomes
            .iter()
            .map(|o| graph_model::Outcome::parse(o).map(|o| o.as_str().to_owned()))
            .collect::<Result<_, _>>()
            .map_err(|err| format!("{}: {}", at("outcomes"), err.message))?;
        let min_severity = e
            .min_severity
            .as_deref()
            .map(Severity::parse)
            .transpose()
            .map_err(|err| format!("{}: {}", at("min_severity"), err.message))?;
        Ok(Filter { kinds, outcomes, min_severity })
    }

    /// Refuse a configuration that could not be served.
    pub fn check_config(cfg: &WebhooksConfig) -> Result<(), String> {
        if cfg.max_attempts == 0 || cfg.retry_base_ms == 0 || cfg.timeout_secs == 0 {
            return Err("configuration: webhooks.max_attempts, retry_base_ms and timeout_secs must be positive".into());
        }
        let mut names = HashSet::new();
        for e in &cfg.endpoints {
            let valid_name = (1..=32).contains(&e.name.len())
                && e.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid_name {
                return Err(format!(
                    "configuration: webhooks.endpoints: `{}` is not a name of 1 to 32 of a-z, 0-9, - and _",
                    e.name.chars().take(40).collect::<String>()
                ));
            }
            if !names.insert(e.name.as_str()) {
                return Err(format!("configuration: webhooks.endpoints: the name `{}` is used twice", e.name));
            }
            if !(e.url.starts_with("https://") || e.url.starts_with("http://")) || reqwest::Url::parse(&e.url).is_err()
            {
                return Err(format!("configuration: webhooks.endpoints[{}].url: not an http(s) URL", e.name));
            }
            if e.secret.len() < 16 {
                return Err(format!("configuration: webhooks.endpoints[{}].secret: at least 16 bytes", e.name));
            }
            Filter::of(e)?;
        }
        Ok(())
    }

    /// Whether `e` is for this endpoint.
    pub fn accepts(&self, e: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
            return false;
        }
        let detail = e.detail.as_deref().unwrap_or("");
        match e.kind {
            EventKind::Decision if !self.outcomes.is_empty() => {
                let outcome = detail.rsplit(' ').next().unwrap_or("");
                self.outcomes.iter().any(|o| o == outcome)
            }
            EventKind::AlertRaised => match self.min_severity {
                Some(min) => Severity::parse(detail).is_ok_and(|s| s <= min),
                None => true,
            },
            _ => true,
        }
    }
}

/// An endpoint ready to send to.
struct Endpoint {
    name: String,
    url: String,
    secret: String,
    filter: Filter,
}

/// The running webhook tasks of one server; dropping it stops them.
pub struct Webhooks {
    tasks: JoinSet<()>,
}

impl Webhooks {
    /// Start enqueuing and sending, if any endpoint is configured. A configuration that
    /// does not hold (it is checked when loaded, so only one built in code) is an error.
    pub fn start(store: Store, cfg: &WebhooksConfig) -> std::io::Result<Option<Webhooks>> {
        if cfg.endpoints.is_empty() {
            return Ok(None);
        }
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        Filter::check_config(cfg).map_err(invalid)?;
        let endpoints = cfg
            .endpoints
            .iter()
            .map(|e| {
                Ok(Endpoint {
                    name: e.name.clone(),
                    url: e.url.clone(),
                    secret: e.secret.clone(),
                    filter: Filter::of(e)?,
                })
            })
            .collect::<Result<Vec<Endpoint>, String>>()
            .map_err(invalid)?;
        let endpoints = Arc::new(endpoints);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .user_agent(concat!("nhigov/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("webhooks: cannot build the HTTP client: {e}")))?;
        let wake = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        tasks.spawn(enqueue(store.clone(), endpoints.clone(), wake.clone()));
        tasks.spawn(send(store, endpoints, http, wake, cfg.max_attempts, Duration::from_millis(cfg.retry_base_ms)));
        info!(endpoints = cfg.endpoints.len(), "webhooks started");
        Ok(Some(Webhooks { tasks }))
    }

    /// Stop both tasks. Leased deliveries in flight are retried by whoever leases them
    /// next, after the lease runs out.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// The deliveries `events` make.
fn pairs(endpoints: &[Endpoint], events: &[Event]) -> Vec<(String, Event)> {
    events
        .iter()
        .flat_map(|e| endpoints.iter().filter(|ep| ep.filter.accepts(e)).map(move |ep| (ep.name.clone(), e.clone())))
        .collect()
}

async fn enqueue(store: Store, endpoints: Arc<Vec<Endpoint>>, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match enqueue_loop(&store, &endpoints, &wake).await {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, "webhook enqueuer failed; starting again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn enqueue_loop(
    store: &Store,
    endpoints: &[Endpoint],
    wake: &Notify,
) -> Result<(), graph_model::store::StoreError> {
    // Subscribe first, then catch up: whatever commits in between is seen twice, and
    // enqueuing is idempotent.
    let mut live = store.subscribe_events().await?;
    catch_up(store, endpoints, wake).await?;
    loop {
        match live.recv().await {
            Ok(event) => {
                let at = event.at;
                let batch = pairs(endpoints, std::slice::from_ref(&event));
                if !batch.is_empty() {
                    store.enqueue_deliveries(&batch).await?;
                    wake.notify_one();
                }
                store.set_webhook_cursor(at).await?;
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(missed, "webhook enqueuer fell behind the event feed; catching up from the store");
                catch_up(store, endpoints, wake).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Enqueue every event since the last one enqueued (less a margin).
async fn catch_up(store: &Store, endpoints: &[Endpoint], wake: &Notify) -> Result<(), graph_model::store::StoreError> {
    let Some(mut since) = store.webhook_cursor().await?.map(|c| c - MARGIN) else {
        // The first start: the endpoints are sent what happens from now on.
        store.set_webhook_cursor(Utc::now()).await?;
        return Ok(());
    };
    loop {
        let events = store.events_since(since, PAGE).await?;
        let Some(last) = events.last().map(|e| e.at) else { return Ok(()) };
        let batch = pairs(endpoints, &events);
        if !batch.is_empty() {
            store.enqueue_deliveries(&batch).await?;
            wake.notify_one();
        }
        store.set_webhook_cursor(last).await?;
        debug!(events = events.len(), "webhook catch-up page");
        if events.len() < PAGE {
            return Ok(());
        }
        since = last;
    }
}

async fn send(
    store: Store,
    endpoints: Arc<Vec<Endpoint>>,
    http: reqwest::Client,
    wake: Arc<Notify>,
    max_attempts: u32,
    base: Duration,
) {
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
        let due = match store.lease_due_deliveries(IN_FLIGHT, LEASE).await {
            Ok(due) => due,
            Err(e) => {
                warn!(error = %e, "leasing webhook deliveries failed");
                continue;
            }
        };
        let full = due.len() == IN_FLIGHT;
        let mut attempts = JoinSet::new();
        for d in due {
            let Some(ep) = endpoints.iter().find(|e| e.name == d.webhook) else {
                // An endpoint removed from the configuration: its deliveries stay pending
                // for a server that still has it.
                continue;
            };
            let (url, secret) = (ep.url.clone(), ep.secret.clone());
            let (http, store) = (http.clone(), store.clone());
            attempts.spawn(async move {
                let outcome = attempt(&http, &url, &secret, &d, max_attempts, base).await;
                if let Err(e) = store.delivery_done(&d, &outcome).await {
                    warn!(error = %e, delivery = %d.id, "recording a webhook attempt failed");
                }
            });
        }
        while attempts.join_next().await.is_some() {}
        if full {
            // More may be due: look again at once.
            wake.notify_one();
        }
    }
}

/// The signature header for `body` sent at `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC accepts a key of any length (longer keys are hashed), so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON an endpoint receives for an event.
pub fn payload(webhook: &str, e: &Event) -> serde_json::Value {
    json!({
        "webhook": webhook,
        "id": e.id,
        "kind": e.kind.as_str(),
        "at": e.at,
        "case": e.case.as_ref().map(ToString::to_string),
        "record": e.record.to_string(),
        "actor": e.actor.as_ref().map(ToString::to_string),
        "queue": e.queue.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "summary": e.summary,
        "detail": e.detail,
    })
}

/// The wait before attempt `n + 1` after `n` failures.
fn backoff(base: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(MAX_BACKOFF);
    exp.mul_f64(rand::rng().random_range(0.8..1.2))
}

async fn attempt(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    d: &Delivery,
    max_attempts: u32,
    base: Duration,
) -> Attempt {
    let body = payload(&d.webhook, &d.event).to_string();
    let number = d.attempts + 1;
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-nhigov-signature", signature(secret, Utc::now().timestamp(), body.as_bytes()))
        .header("x-nhigov-event", d.event.id.as_str())
        .header("x-nhigov-event-kind", d.event.kind.as_str())
        .header("x-nhigov-webhook", d.webhook.as_str())
        .header("x-nhigov-attempt", number.to_string())
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(r) if r.status().is_success() => {
            debug!(webhook = %d.webhook, event = %d.event.id, attempt = number, "webhook delivered");
            return Attempt::Delivered { status: r.status().as_u16() };
        }
        Ok(r) => (Some(r.status().as_u16()), format!("answered {}", r.status())),
        Err(e) => (None, e.to_string()),
    };
    let retry_at: Option<DateTime<Utc>> = (number < max_attempts)
        .then(|| Utc::now() + chrono::Duration::from_std(backoff(base, number)).unwrap_or_default());
    warn!(webhook = %d.webhook, event = %d.event.id, attempt = number, %error, retry = ?retry_at, "webhook attempt failed");
    Attempt::Failed { status, error, retry_at }
}

/// Outbound webhooks: the `[webhooks]` section of the configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Attempts per event and endpoint before the delivery is marked failed.
    pub max_attempts: u32,
    /// The first retry's delay, in milliseconds; each next one doubles (up to an hour).
    pub retry_base_ms: u64,
    /// How long one attempt may take, in seconds.
    pub timeout_secs: u64,
    #[serde(default)]
    pub endpoints: Vec<WebhookEndpoint>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig { max_attempts: 8, retry_base_ms: 1_000, timeout_secs: 10, endpoints: vec![] }
    }
}

/// One receiver of events.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// Names the endpoint in delivery records and the `X-Nhigov-Webhook` header:
    /// 1 to 32 of `a-z`, `0-9`, `-`, `_`.
    pub name: String,
    /// `https://...` (or `http://` for a receiver on a private network).
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Nhigov-Signature` header; at least 16 bytes.
    pub secret: String,
    /// Event kinds to send (`decision`, `evidence`, `task_added`, `task_finished`,
    /// `alert_raised`); empty sends all.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Decision outcomes to send (`refused`, `approved`, `closed`...); empty sends all.
    #[serde(default)]
    pub outcomes: Vec<String>,
    /// The least severity of alerts to send (`critical`, `high`, `medium`, `low`).
    #[serde(default)]
    pub min_severity: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature("key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_an_hour() {
        let base = Duration::from_secs(1);
        for (failures, expect) in [(1u32, 1.0f64), (2, 2.0), (3, 4.0), (6, 32.0)] {
            let b = backoff(base, failures).as_secs_f64();
            assert!(b >= expect * 0.8 && b <= expect * 1.2, "{failures}: {b}");
        }
        assert!(backoff(base, 30) <= MAX_BACKOFF.mul_f64(1.2));
    }
}
