//! The `nhigov` service: configuration, authentication, the HTTP server and the command
//! line. `main.rs` only parses arguments, sets up logging and the runtime, and calls
//! [`cli::run`].

pub mod allocator;
pub mod app;
pub mod auth;
pub mod checkpoints;
pub mod cli;
pub mod config;
pub mod demo;
pub mod generate;
pub mod server;
pub mod telemetry;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use graph_model::store::Store;
use nhigov_schema::{Deps, EventBus, QueryLimits, build_schema};

use crate::auth::Authenticator;
use crate::config::{Config, Mode};
use crate::server::{AppState, HttpLimits};

/// The schema's document limits, from configuration.
pub fn query_limits(cfg: &Config) -> QueryLimits {
    QueryLimits {
        max_query_chars: cfg.limits.body_bytes,
        max_nesting: cfg.limits.max_nesting,
        max_depth: cfg.limits.max_depth,
        max_complexity: cfg.limits.max_complexity,
        max_aliases: cfg.limits.max_aliases,
    }
}

/// Everything the server needs, assembled from configuration and an open store.
pub fn app_state(cfg: &Config, store: Store, auth: Authenticator) -> AppState {
    let schema = build_schema(Deps {
        store: store.clone(),
        events: EventBus::default(),
        limits: query_limits(cfg),
        sla: cfg.governance.sla_hours,
        graph: nhigov_schema::graph::GraphLimits { max_hops: cfg.graph.max_hops, node_cap: cfg.graph.node_cap },
        batch_window: nhigov_schema::BATCH_WINDOW,
    });
    AppState {
        schema,
        auth: Arc::new(auth),
        store,
        limits: HttpLimits {
            body_bytes: cfg.limits.body_bytes,
            max_batch: cfg.limits.max_batch,
            request_timeout: Duration::from_secs(cfg.limits.request_timeout_secs),
            ws_init_timeout: Duration::from_millis(cfg.limits.ws_init_timeout_ms),
            ws_keepalive: Duration::from_secs(cfg.limits.ws_keepalive_secs),
        },
        query_limits: query_limits(cfg),
        persisted: Arc::default(),
        http_metrics: Arc::default(),
        metrics_token: cfg.metrics.token.clone(),
        graphiql: cfg.mode == Mode::Development,
        webhooks: Arc::new(cfg.webhooks.clone()),
        // Checked by `Config::validate`: each is a plain origin.
        cors_origins: cfg.cors.allowed_origins.iter().filter_map(|o| o.parse().ok()).collect(),
    }
}
