//! Liveness and readiness, answered without authentication.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::AppState;
use super::respond::{Media, json};

/// The process is up.
pub async fn healthz() -> Response {
    json(StatusCode::OK, Media::Json, &json!({ "status": "ok" }))
}

/// The process can serve: its graph index is loaded and its database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.graph_warming() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            Media::Json,
            &json!({ "status": "unavailable", "reason": "graph index loading" }),
        );
    }
    match tokio::time::timeout(std::time::Duration::from_secs(5), state.store.ping()).await {
        Ok(Ok(())) => json(StatusCode::OK, Media::Json, &json!({ "status": "ready" })),
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
