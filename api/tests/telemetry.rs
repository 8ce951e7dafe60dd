//! OTLP traces: the real binary, configured with a collector's endpoint, sends a span for
//! each request, its GraphQL operation and its database round trips, in the trace the
//! caller's `traceparent` names. The collector is a gRPC OTLP trace service run here.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nhigov::auth::Authenticator;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

const SECRET: &str = "telemetry-secret-telemetry-secret!!!";

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::codegen::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Collector {
    /// Every span received so far, with its service name.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for req in self.0.lock().unwrap().iter() {
            for rs in &req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                    .and_then(|a| a.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(AnyValue::StringValue(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    out.extend(ss.spans.iter().map(|s| (service.clone(), s.clone())));
                }
            }
        }
        out
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).and_then(|v| match &v.value {
        Some(AnyValue::StringValue(s)) => Some(s.clone()),
        Some(AnyValue::IntValue(i)) => Some(i.to_string()),
        _ => None,
    })
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_traced_over_otlp_under_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nhigov"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("data"))
        .env("NHIGOV_JWT_SECRET", SECRET)
        .env("NHIGOV_LOG", "info")
        .env("NHIGOV_TELEMETRY__OTLP_ENDPOINT", &endpoint)
        .env("NHIGOV_TELEMETRY__SERVICE_NAME", "nhigov-under-test")
        .env("NHIGOV_TELEMETRY__EXPORT_INTERVAL_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the nhigov binary starts");
    let stderr = child.stderr.take().unwrap();
    let _server = Server(child);
    let addr = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1) {
                return rest.split_whitespace().next().unwrap_or("").to_owned();
            }
        }
        panic!("the server exited before logging its address");
    })
    .await
    .unwrap();

    let token = Authenticator::with_secret(SECRET)
        .mint(&graph_model::Email::parse(nhigov::demo::DEMO_ADMIN).unwrap(), chrono::Duration::hours(1))
        .unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .json(&json!({ "query": "query Probe { nhis(first: 2) { totalCount edges { node { name owners { name } assumes { mechanism } } } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The request's spans arrive within a few export intervals.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ours = loop {
        let ours: Vec<(String, Span)> =
            collector.spans().into_iter().filter(|(_, s)| hex(&s.trace_id) == trace_id).collect();
        let names: Vec<&str> = ours.iter().map(|(_, s)| s.name.as_str()).collect();
        if ["request", "graphql", "db", "load"].iter().all(|n| names.contains(n)) {
            break ours;
        }
        assert!(
            Instant::now() < deadline,
            "spans of the trace so far: {names:?}; of any trace: {:?}",
            collector.spans().iter().map(|(_, s)| s.name.clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_name = |n: &str| ours.iter().find(|(_, s)| s.name == n).map(|(_, s)| s.clone()).unwrap();
    let (request, graphql) = (by_name("request"), by_name("graphql"));
    assert!(ours.iter().all(|(service, _)| service == "nhigov-under-test"));
    assert_eq!(hex(&request.parent_span_id), parent_id, "the caller's span is the request's parent");
    assert_eq!(attr(&request, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(attr(&request, "url.path").as_deref(), Some("/graphql"));
    assert_eq!(attr(&request, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(graphql.parent_span_id, request.span_id, "the operation runs inside the request");
    assert_eq!(attr(&graphql, "graphql.operation").as_deref(), Some("Probe"));
    assert_eq!(attr(&graphql, "graphql.outcome").as_deref(), Some("ok"));
    let db: Vec<&Span> = ours.iter().map(|(_, s)| s).filter(|s| s.name == "db").collect();
    assert!(db.iter().all(|s| attr(s, "db.system.name").as_deref() == Some("surrealdb")));
    let inside = |s: &Span| {
        s.start_time_unix_nano >= graphql.start_time_unix_nano && s.end_time_unix_nano <= graphql.end_time_unix_nano
    };
    assert!(db.iter().any(|s| inside(s)), "a database round trip inside the operation");
    // Delegations come through the edge batch loader (owners come from the graph
    // index), whose batches run on tasks of their own: still inside the operation's
    // trace, their round trips under them.
    let load = ours
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "load" && attr(s, "loader").as_deref() == Some("edges"))
        .expect("the edges loader's batch is in the request's trace");
    assert_eq!(load.parent_span_id, graphql.span_id, "a batch belongs to the operation that asked for it");
    assert!(db.iter().any(|s| s.parent_span_id == load.span_id), "the batch's round trip is under it");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
