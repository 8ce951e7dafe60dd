//! `GET /metrics` in the Prometheus text format: GraphQL requests by operation and
//! outcome with latency histograms, database latency, decisions by outcome, SoD
//! refusals by rule, and open and overdue cases.
//!
//! The GraphQL handlers label each response with its operation and outcome (a response
//! extension); [`track`] times every `/graphql` request and counts it under that label,
//! or under `-` and its HTTP status when it was refused before GraphQL. Operation names
//! come from clients, so at most [`MAX_OPERATIONS`] distinct ones get their own series;
//! the rest are counted as `other`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use graph_model::store::metrics::{Histogram, HistogramSnapshot};

use super::AppState;

/// Distinct operation names with series of their own.
pub const MAX_OPERATIONS: usize = 200;

/// What a GraphQL handler says about the response it made.
#[derive(Debug, Clone)]
pub struct Label {
    pub operation: String,
    /// `ok`, `forbidden` (a guard refused the caller's role), `field_error` (executed,
    /// with other errors beside the data) or `request_error`.
    pub outcome: &'static str,
}

/// The HTTP side's counters.
#[derive(Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl HttpMetrics {
    fn record(&self, label: &Label, elapsed: std::time::Duration) {
        let histogram = {
            let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            let op = if latency.contains_key(&label.operation) || latency.len() < MAX_OPERATIONS {
                label.operation.clone()
            } else {
                "other".to_owned()
            };
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *requests.entry((op.clone(), label.outcome.to_owned())).or_default() += 1;
            latency.entry(op).or_default().clone()
        };
        histogram.observe(elapsed);
    }
}

/// Middleware on `/graphql`: time the request and count it under its label.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    let label = resp.extensions().get::<Label>().cloned().unwrap_or_else(|| Label {
        operation: "-".to_owned(),
        outcome: match resp.status() {
            StatusCode::UNAUTHORIZED => "unauthenticated",
            s if s.is_client_error() => "refused",
            s if s.is_server_error() => "server_error",
            _ => "ok",
        },
    });
    state.http_metrics.record(&label, started.elapsed());
    resp
}

/// `GET /metrics`. When `metrics.token` is configured, only with that bearer token.
pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        let sent =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(token.as_str()) {
            return (StatusCode::UNAUTHORIZED, "metrics need the configured bearer token\n").into_response();
        }
    }
    let mut out = String::new();
    {
        let requests = state.http_metrics.requests.lock().unwrap_or_else(|p| p.into_inner());
        family(&mut out, "nhigov_graphql_requests_total", "counter", "GraphQL HTTP requests by operation and outcome.");
        for ((op, outcome), n) in requests.iter() {
            let _ = writeln!(
                out,
                "nhigov_graphql_requests_total{{operation=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(op)
            );
        }
    }
    {
        let latency = state.http_metrics.latency.lock().unwrap_or_else(|p| p.into_inner());
        family(
            &mut out,
            "nhigov_graphql_request_duration_seconds",
            "histogram",
            "GraphQL HTTP request latency by operation.",
        );
        for (op, h) in latency.iter() {
            histogram(
                &mut out,
                "nhigov_graphql_request_duration_seconds",
                &format!("operation=\"{}\"", escape(op)),
                &h.snapshot(),
            );
        }
    }
    let store = state.store.metrics();
    family(
        &mut out,
        "nhigov_db_query_duration_seconds",
        "histogram",
        "Database round trips (statement batches), reads and writes.",
    );
    histogram(&mut out, "nhigov_db_query_duration_seconds", "", &store.db_latency.snapshot());
    family(&mut out, "nhigov_decisions_total", "counter", "Decisions recorded by this process, by outcome.");
    for (outcome, n) in store.decisions() {
        let _ = writeln!(out, "nhigov_decisions_total{{outcome=\"{outcome}\"}} {n}");
    }
    family(
        &mut out,
        "nhigov_decision_commits_total",
        "counter",
        "Transactions that committed this process's decisions (decisions over commits is the group size).",
    );
    let _ = writeln!(out, "nhigov_decision_commits_total {}", store.decision_commits());
    family(&mut out, "nhigov_sod_refusals_total", "counter", "Decision attempts refused by a policy rule, by rule.");
    for (rule, n) in store.refusals() {
        let _ = writeln!(out, "nhigov_sod_refusals_total{{rule=\"{rule}\"}} {n}");
    }
    match state.store.case_counts().await {
        Ok((open, overdue)) => {
            family(&mut out, "nhigov_cases_open", "gauge", "Cases not closed (all replicas).");
            let _ = writeln!(out, "nhigov_cases_open {open}");
            family(&mut out, "nhigov_cases_overdue", "gauge", "Open cases past their SLA due time (all replicas).");
            let _ = writeln!(out, "nhigov_cases_overdue {overdue}");
            family(&mut out, "nhigov_up", "gauge", "1 when the database answered this scrape.");
            out.push_str("nhigov_up 1\n");
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: case counts unavailable");
            family(&mut out, "nhigov_up", "gauge", "1 when the database answered this scrape.");
            out.push_str("nhigov_up 0\n");
        }
    }
    let mut resp = out.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, n) in &h.buckets {
        let le = if bound.is_infinite() { "+Inf".to_owned() } else { bound.to_string() };
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
    }
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_secs);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
