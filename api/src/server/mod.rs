//! The HTTP server: GraphQL over HTTP and WebSocket, health checks, the investigation
//! console, and GraphiQL in development.
//!
//! [`run`] takes a bound listener and a shutdown future, so the binary binds its
//! configured address while tests bind port 0, and both stop it the same way: in-flight
//! requests finish, then the function returns.

mod backup;
mod console;
mod graphql;
mod health;
pub mod metrics;
pub mod persisted;
mod respond;
mod signin;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::get;
use graph_model::store::Store;
use nhigov_schema::NhigovSchema;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::info;

use crate::auth::Authenticator;

/// Limits the HTTP layer enforces before GraphQL sees a request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub body_bytes: usize,
    pub max_batch: usize,
    pub request_timeout: Duration,
    /// How long a WebSocket may take to send `connection_init`.
    pub ws_init_timeout: Duration,
    /// How often the server pings a WebSocket client and re-checks its credentials.
    pub ws_keepalive: Duration,
}

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub schema: NhigovSchema,
    pub auth: Arc<Authenticator>,
    pub store: Store,
    pub limits: HttpLimits,
    /// The document limits, checked by GET before it parses a query to refuse mutations.
    pub query_limits: nhigov_schema::QueryLimits,
    /// Request counts and latencies for `/metrics`.
    pub http_metrics: Arc<metrics::HttpMetrics>,
    /// The bearer token `/metrics` requires, when configured.
    pub metrics_token: Option<String>,
    /// Documents registered by hash (see `persisted`).
    pub persisted: Arc<persisted::PersistedQueries>,
    /// Serve GraphiQL at `/` (development only).
    pub graphiql: bool,
    /// Outbound webhooks, started and stopped with the server.
    pub webhooks: Arc<crate::config::WebhooksConfig>,
    /// Origins whose pages may call the API from a browser.
    pub cors_origins: Vec<axum::http::HeaderValue>,
}

/// The routes of the service.
pub fn router(state: AppState) -> Router {
    let timeout = state.limits.request_timeout;
    let mut app = Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .fallback(graphql::method_not_allowed)
                .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track)),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route("/metrics", get(metrics::serve))
        .route("/admin/backup", get(backup::backup))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/auth/config", get(signin::config))
        .route("/auth/login", get(signin::login))
        .route("/auth/callback", get(signin::callback))
        .merge(console::routes());
    if state.graphiql {
        let sso = state.auth.provider().and_then(|p| p.browser_client()).is_some();
        app = app.route("/", get(move || graphql::graphiql(sso)));
    }
    let cors = cors(&state.cors_origins);
    let app = app.fallback(respond::not_found).with_state(state);
    // Outside the routes, so a preflight (`OPTIONS`) is answered before any of them.
    let app = match cors {
        Some(layer) => app.layer(layer),
        None => app,
    };
    // Every answer carries a caller's data or the service's state at one moment: no
    // browser or proxy may keep it (persisted GET URLs included). Static assets that
    // may be kept set their own header first.
    let app = app.layer(SetResponseHeaderLayer::if_not_present(CACHE_CONTROL, HeaderValue::from_static("no-store")));
    app.layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::custom(respond::panic))
        .layer(TraceLayer::new_for_http().make_span_with(request_span).on_response(record_status))
}

/// CORS for the configured origins, none when there are none. Tokens travel in the
/// `Authorization` header, never in cookies, so credentials are not allowed: a page may
/// send the header it was given, and the answer names its origin exactly.
fn cors(origins: &[axum::http::HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method, header};
    if origins.is_empty() {
        return None;
    }
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins.to_vec())
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("traceparent"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// The span of one HTTP request, at INFO so that it is exported as a trace's root (or as
/// the child of the caller's, from `traceparent`). The path only: a query string can
/// carry a whole document.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    crate::telemetry::adopt_parent(&span, req.headers());
    span
}

fn record_status<B>(resp: &axum::http::Response<B>, _latency: Duration, span: &tracing::Span) {
    span.record("http.response.status_code", resp.status().as_u16());
}

/// How long in-flight requests and open WebSockets get to finish after shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serve until `shutdown` resolves, then let in-flight requests finish (for at most
/// [`SHUTDOWN_GRACE`], so a subscription left open cannot hold the process).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    info!(%addr, "listening");
    let webhooks = crate::webhooks::Webhooks::start(state.store.clone(), &state.webhooks)?;
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    };
    let serve = axum::serve(listener, router(state)).with_graceful_shutdown(signal);
    let deadline = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = serve => result?,
        _ = deadline => tracing::warn!("connections still open after the grace period; closing them"),
    }
    if let Some(w) = webhooks {
        w.stop().await;
    }
    info!("server stopped");
    Ok(())
}
