//! Liveness and readiness, answered without authentication.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use graph_model::domain::feeds::{Freshness, PAUSED_WHEN_STALE};

use super::AppState;
use super::respond::{Media, json};

/// The process is up.
pub async fn healthz() -> Response {
    json(StatusCode::OK, Media::Json, &json!({ "status": "ok" }))
}

/// The process can serve: its graph index is loaded and its database answers. A
/// ready answer also names the feed sources that are stale (see `[feeds]` in the
/// configuration): the server serves, and the automation their data drives waits.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.graph_warming() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            Media::Json,
            &json!({ "status": "unavailable", "reason": "graph index loading" }),
        );
    }
    match tokio::time::timeout(std::time::Duration::from_secs(5), state.store.ping()).await {
        Ok(Ok(())) => {
            json(StatusCode::OK, Media::Json, &json!({ "status": "ready", "feeds": stale_feeds(&state).await }))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                Media::Json,
                &json!({ "status": "unavailable", "reason": "database" }),
            )
        }
        Err(_) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            Media::Json,
            &json!({ "status": "unavailable", "reason": "database timeout" }),
        ),
    }
}

/// The stale feed sources, with what waits for them.
async fn stale_feeds(state: &AppState) -> serde_json::Value {
    match state.store.feeds(chrono::Utc::now()).await {
        Ok(feeds) => {
            let stale: Vec<_> = feeds
                .iter()
                .filter_map(|f| match f.freshness {
                    Freshness::Stale { since } => Some(json!({
                        "source": f.state.source,
                        "staleSince": since,
                        "lastRunAt": f.state.last_run_at,
                        "paused": PAUSED_WHEN_STALE,
                    })),
                    _ => None,
                })
                .collect();
            json!({ "stale": stale })
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading feed freshness failed");
            json!({ "error": "feed freshness could not be read" })
        }
    }
}
