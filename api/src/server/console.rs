//! The investigation console at `/console`: a page, a script and a style sheet, built
//! into the binary (no Node.js to build or run it). It talks only to the public
//! GraphQL API with the token the user pastes, so it can do nothing the API would
//! refuse that user. Its pages carry a Content-Security-Policy that admits nothing but
//! this origin: no inline script, no external font, script or fetch.

use axum::Router;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");
const ICON: &str = include_str!("../../console/favicon.svg");

/// What every console answer carries.
pub const POLICY: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's routes.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route("/console/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route("/console/console.js", get(|| asset("text/javascript; charset=utf-8", SCRIPT)))
        .route("/console/console.css", get(|| asset("text/css; charset=utf-8", STYLE)))
        .route("/console/favicon.svg", get(|| asset("image/svg+xml", ICON)))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, POLICY),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
            (X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
}
