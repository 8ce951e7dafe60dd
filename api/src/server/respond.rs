//! Responses the HTTP layer writes itself: errors with a stable code, in the shape of a
//! GraphQL response, so clients parse every failure the same way.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The media types a GraphQL response can be sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: status codes follow the outcome.
    GraphqlResponse,
    /// `application/json`: the legacy type most clients still ask for.
    Json,
}

impl Media {
    pub fn content_type(self) -> &'static str {
        match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        }
    }
}

/// A JSON body with a status and media type.
pub fn json(status: StatusCode, media: Media, body: &serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    resp
}

/// A request refused before execution: `{"errors": [{message, extensions: {code}}]}`.
pub fn error(status: StatusCode, media: Media, code: &str, message: &str) -> Response {
    json(status, media, &json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))
}

pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, Media::Json, "NOT_FOUND", "no such endpoint; GraphQL is served at /graphql")
}

/// A panic in a handler becomes a 500 with code INTERNAL; the server keeps serving.
pub fn panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    error(StatusCode::INTERNAL_SERVER_ERROR, Media::Json, "INTERNAL", "internal error")
}
