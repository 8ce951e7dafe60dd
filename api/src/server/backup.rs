//! `GET /admin/backup`: the store as a SurrealQL dump, read from one snapshot while the
//! server keeps serving, for an admin's bearer token only. `nhigov backup --server`
//! calls it; `nhigov restore` rebuilds a store from what it wrote.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use graph_model::Role;
use tracing::{error, info};

use super::AppState;
use super::graphql::principal;
use super::respond::{Media, error};

pub async fn backup(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let principal = match principal(&state, &headers, Media::Json).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    if !principal.has_role(Role::Admin) {
        return error(StatusCode::FORBIDDEN, Media::Json, "FORBIDDEN", "a backup is for an admin");
    }
    let dump = match state.store.backup().await {
        Ok(dump) => dump,
        Err(e) => {
            error!(error = %e, "backup could not start");
            return error(StatusCode::SERVICE_UNAVAILABLE, Media::Json, "INTERNAL", "the backup could not start");
        }
    };
    info!(person = %principal.id(), "backup started");
    // An error mid-stream ends the body early: the client sees no trailer and refuses
    // the file (`check_backup`).
    let body = Body::from_stream(dump.map(|chunk| {
        chunk.map_err(|e| {
            error!(error = %e, "backup stream failed");
            std::io::Error::other("backup stream failed")
        })
    }));
    let name = format!("attachment; filename=\"nhigov-{}.surql\"", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sql; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
