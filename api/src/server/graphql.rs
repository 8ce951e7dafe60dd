//! GraphQL over HTTP.
//!
//! Every request is checked in this order, each failure answered at once with a 4xx and
//! a stable code, before anything reaches the GraphQL engine: method, `Accept`,
//! `Content-Type`, body size, JSON shape, batch size, bearer token. The engine then
//! applies the document limits (`nhigov_schema::limits`). A GraphQL request error (the
//! document does not parse, validate or stay within the limits) answers without `data`,
//! with 400 for `application/graphql-response+json` and 200 for `application/json`, as
//! the GraphQL-over-HTTP specification asks; a request that executed answers 200, with
//! field errors, if any, beside the data.

use std::collections::HashMap;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use nhigov_schema::limits::{PARSE_FAILED, check_nesting};
use serde_json::json;
use tracing::{debug, instrument};

use super::AppState;
use super::metrics::Label;
use super::persisted::PersistedError;
use super::respond::{Media, error, json};
use crate::auth::AuthError;

/// Choose the response media type from `Accept`; `None` when nothing acceptable.
fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::Json);
    };
    let mut best: Option<(f32, Media)> = None;
    for part in accept.split(',') {
        let mut params = part.split(';');
        let ty = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        let media = match ty.as_str() {
            "application/graphql-response+json" => Media::GraphqlResponse,
            "application/json" | "application/*" | "*/*" => Media::Json,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, bm)| q > bq || (q == bq && media == Media::GraphqlResponse && bm != media))
        {
            best = Some((q, media));
        }
    }
    best.map(|(_, m)| m)
}

fn not_acceptable() -> Response {
    error(
        StatusCode::NOT_ACCEPTABLE,
        Media::Json,
        "NOT_ACCEPTABLE",
        "accept application/graphql-response+json or application/json",
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Authenticate, or answer for why not.
pub(super) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    media: Media,
) -> Result<nhigov_schema::Principal, Response> {
    match state.auth.authenticate(authorization(headers), &state.store).await {
        Ok(p) => Ok(p),
        Err(AuthError::Store(e)) => {
            tracing::error!(error = %e, "authentication lookup failed");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                media,
                "INTERNAL",
                "the service cannot check credentials right now",
            ))
        }
        Err(e) => {
            debug!(reason = %e, "unauthenticated request");
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                media,
                "UNAUTHENTICATED",
                "authentication required: send a valid bearer token of an active person",
            );
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(resp)
        }
    }
}

/// Whether a response is a request error: refused before execution, so without data.
pub(super) fn is_request_error(resp: &async_graphql::Response) -> bool {
    resp.data == async_graphql::Value::Null && !resp.errors.is_empty() && resp.errors.iter().all(|e| e.path.is_empty())
}

/// The status of a GraphQL request error (a document that does not parse, validate, stay
/// within the limits, or whose variables do not coerce) in a well-formed HTTP request:
/// 400 for `application/graphql-response+json`; 200 for `application/json`, which the
/// GraphQL-over-HTTP specification keeps for clients that read errors only from 200s.
fn request_error_status(media: Media) -> StatusCode {
    if media == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK }
}

/// How an executed request went: `ok`; `forbidden` when a guard refused the caller's
/// role (refusals that are not decisions, so they are counted here rather than chained);
/// else `field_error`.
fn executed_outcome(errors: &[async_graphql::ServerError]) -> &'static str {
    let code = |e: &async_graphql::ServerError| {
        e.extensions.as_ref().and_then(|x| x.get("code")).map(|v| v.to_string().trim_matches('"').to_owned())
    };
    if errors.is_empty() {
        "ok"
    } else if errors.iter().any(|e| code(e).as_deref() == Some("FORBIDDEN")) {
        "forbidden"
    } else {
        "field_error"
    }
}

fn graphql_response(media: Media, operation: &str, resp: async_graphql::Response) -> Response {
    let outcome = if is_request_error(&resp) { "request_error" } else { executed_outcome(&resp.errors) };
    let mut http = if outcome == "request_error" {
        json(request_error_status(media), media, &json!({ "errors": resp.errors }))
    } else {
        match serde_json::to_value(&resp) {
            Ok(body) => json(StatusCode::OK, media, &body),
            Err(e) => {
                tracing::error!(error = %e, "response serialisation failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, media, "INTERNAL", "internal error")
            }
        }
    };
    let span = tracing::Span::current();
    span.record("graphql.operation", operation);
    span.record("graphql.outcome", outcome);
    http.extensions_mut().insert(Label { operation: operation.to_owned(), outcome });
    http
}

/// The name a request's operation is counted under in `/metrics`: `operationName`, or
/// the name of the document's first operation, or `anonymous`.
fn operation_label(req: &Request) -> String {
    let name = req.operation_name.clone().filter(|n| !n.is_empty()).or_else(|| first_operation_name(&req.query));
    name.map(|n| n.chars().take(64).collect()).unwrap_or_else(|| "anonymous".to_owned())
}

/// `Name` in `query Name`, `mutation Name(...)`, without parsing the whole document.
fn first_operation_name(doc: &str) -> Option<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let start = doc.trim_start();
    let keyword = ["query", "mutation", "subscription"]
        .into_iter()
        .find(|k| start.starts_with(k) && !start[k.len()..].starts_with(is_ident))?;
    let rest = start[keyword.len()..].trim_start();
    let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// `POST /graphql`: one operation, or a batch of at most `limits.max_batch`.
#[instrument(name = "graphql", skip_all, fields(graphql.operation = tracing::field::Empty, graphql.outcome = tracing::field::Empty))]
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as application/json",
        );
    }
    let bytes = match read_body(&headers, body, state.limits.body_bytes, media).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let mut batch = match parse_batch(&bytes, state.limits.max_batch) {
        Ok(b) => b,
        Err((code, message)) => return error(StatusCode::BAD_REQUEST, media, code, &message),
    };
    let principal = match principal(&state, &headers, media).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    for req in batch.iter_mut() {
        if let Err(e) = state.persisted.resolve(req) {
            return persisted_error(media, &e);
        }
    }
    execute(&state, batch, principal, media).await
}

/// The body, refused when it is over `limit` bytes (as declared, or as read).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize, media: Media) -> Result<axum::body::Bytes, Response> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            media,
            "PAYLOAD_TOO_LARGE",
            &format!("the request body is larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) if e.to_string().contains("length limit") => Err(too_large()),
        Err(_) => Err(error(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", "the request body could not be read")),
    }
}

/// One operation or a batch of 1 to `max_batch`, each with a query or a persisted
/// query's hash; or the code and message of a 400.
fn parse_batch(bytes: &[u8], max_batch: usize) -> Result<BatchRequest, (&'static str, String)> {
    // serde_json refuses nesting past 128 levels, so deep variables cannot exhaust the stack.
    let parsed = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        serde_json::from_slice::<Vec<Request>>(bytes).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice::<Request>(bytes).map(BatchRequest::Single)
    };
    let batch = parsed.map_err(|e| ("BAD_REQUEST", format!("the body is not a GraphQL request in JSON ({e})")))?;
    if batch.iter().any(|r| r.query.trim().is_empty() && !r.extensions.0.contains_key("persistedQuery")) {
        return Err(("BAD_REQUEST", "every operation needs a non-empty `query`, or a persisted query's hash".into()));
    }
    if let BatchRequest::Batch(items) = &batch
        && (items.is_empty() || items.len() > max_batch)
    {
        return Err(("BATCH_TOO_LARGE", format!("a batch holds 1 to {max_batch} operations")));
    }
    Ok(batch)
}

/// Run one operation, or a batch, as `principal`.
async fn execute(state: &AppState, batch: BatchRequest, principal: nhigov_schema::Principal, media: Media) -> Response {
    match batch {
        BatchRequest::Single(req) => {
            let op = operation_label(&req);
            graphql_response(media, &op, state.schema.execute(req.data(principal)).await)
        }
        BatchRequest::Batch(reqs) => {
            let reqs = reqs.into_iter().map(|r| r.data(principal.clone())).collect();
            match state.schema.execute_batch(BatchRequest::Batch(reqs)).await {
                BatchResponse::Batch(items) => match serde_json::to_value(&items) {
                    Ok(body) => {
                        let errors: Vec<async_graphql::ServerError> =
                            items.iter().flat_map(|r| r.errors.iter().cloned()).collect();
                        let outcome = executed_outcome(&errors);
                        let mut resp = json(StatusCode::OK, media, &body);
                        resp.extensions_mut().insert(Label { operation: "batch".to_owned(), outcome });
                        resp
                    }
                    Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, media, "INTERNAL", "internal error"),
                },
                BatchResponse::Single(resp) => graphql_response(media, "batch", resp),
            }
        }
    }
}

/// `GET /graphql?query=...`: queries only; a mutation is refused with 405.
#[instrument(name = "graphql", skip_all, fields(graphql.operation = tracing::field::Empty, graphql.outcome = tracing::field::Empty))]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let mut req = match get_request(&params, media) {
        Ok(req) => req,
        Err(resp) => return *resp,
    };
    // A persisted query is looked up, or registered, for an authenticated caller only.
    let mut principal_now = None;
    if req.extensions.0.contains_key("persistedQuery") {
        match principal(&state, &headers, media).await {
            Ok(p) => principal_now = Some(p),
            Err(resp) => return resp,
        }
        if let Err(e) = state.persisted.resolve(&mut req) {
            return persisted_error(media, &e);
        }
    }
    if req.query.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "a GET request carries the query in the `query` parameter, or a persisted query's hash in `extensions`",
        );
    }
    if let Err(e) = check_nesting(&req.query, &state.query_limits) {
        return error(request_error_status(media), media, "QUERY_TOO_COMPLEX", &e.message);
    }
    let operation_name = params.get("operationName").filter(|s| !s.is_empty()).cloned();
    if let Err(resp) = queries_only(&req.query, operation_name.as_deref(), media) {
        return *resp;
    }
    if let Some(name) = operation_name {
        req = req.operation_name(name);
    }
    if let Some(vars) = params.get("variables").filter(|s| !s.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(vars) {
            Ok(v @ serde_json::Value::Object(_)) => req = req.variables(async_graphql::Variables::from_json(v)),
            _ => return error(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", "`variables` must be a JSON object"),
        }
    }
    let principal = match principal_now {
        Some(p) => p,
        None => match principal(&state, &headers, media).await {
            Ok(p) => p,
            Err(resp) => return resp,
        },
    };
    let op = operation_label(&req);
    graphql_response(media, &op, state.schema.execute(req.data(principal)).await)
}

/// The request a GET's `query` and `extensions` parameters carry.
fn get_request(params: &HashMap<String, String>, media: Media) -> Result<Request, Box<Response>> {
    let mut req = Request::new(params.get("query").cloned().unwrap_or_default());
    if let Some(ext) = params.get("extensions").filter(|s| !s.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(ext) {
            Ok(v @ serde_json::Value::Object(_)) => match serde_json::from_value(v) {
                Ok(ext) => req.extensions = ext,
                Err(_) => {
                    return Err(Box::new(error(
                        StatusCode::BAD_REQUEST,
                        media,
                        "BAD_REQUEST",
                        "`extensions` is not valid",
                    )));
                }
            },
            _ => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "`extensions` must be a JSON object",
                )));
            }
        }
    }
    Ok(req)
}

/// Refuse a GET whose operation (the one named, or the first) is not a query: 405,
/// naming POST; a document that does not parse is refused as such.
fn queries_only(query: &str, operation_name: Option<&str>, media: Media) -> Result<(), Box<Response>> {
    let doc = async_graphql::parser::parse_query(query)
        .map_err(|e| Box::new(error(request_error_status(media), media, PARSE_FAILED, &e.to_string())))?;
    let op_type = doc
        .operations
        .iter()
        .find(|(name, _)| match (operation_name, name) {
            (Some(wanted), Some(n)) => n.as_str() == wanted,
            (None, _) => true,
            (Some(_), None) => false,
        })
        .map(|(_, op)| op.node.ty);
    if matches!(op_type, Some(OperationType::Mutation) | Some(OperationType::Subscription)) {
        let mut resp = error(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "METHOD_NOT_ALLOWED",
            "GET runs queries only; send mutations with POST",
        );
        resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(Box::new(resp));
    }
    Ok(())
}

/// A persisted query that cannot be used. Not registered answers 200 with the error, as
/// Apollo's protocol expects (the client then sends the query); the others are 400.
fn persisted_error(media: Media, e: &PersistedError) -> Response {
    let status = if *e == PersistedError::NotFound { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    error(status, media, e.code(), e.message())
}

/// Any other method on `/graphql`.
pub async fn method_not_allowed() -> Response {
    let mut resp =
        error(StatusCode::METHOD_NOT_ALLOWED, Media::Json, "METHOD_NOT_ALLOWED", "use GET for queries or POST");
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    resp
}

/// GraphiQL, development only. Add `{"Authorization": "Bearer <token>"}` in its headers
/// tab, open it as `/#token=<token>`, or, with browser sign-in configured, sign in through
/// the provider: the page is sent there when it holds no token, and its requests and its
/// subscriptions' `connection_init` carry the token it came back with.
pub async fn graphiql(sso: bool) -> impl IntoResponse {
    let page = async_graphql::http::GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql/ws")
        .title("nhigov")
        .finish();
    let script = GRAPHIQL_SIGN_IN.replace("SSO", if sso { "true" } else { "false" });
    Html(page.replacen("<head>", &format!("<head>\n<script>{script}</script>"), 1))
}

/// Run before GraphiQL: a token the sign-in returned in the fragment moves into this
/// tab's storage (the console's key, so one sign-in serves both), and every request
/// GraphiQL makes carries it unless the headers tab sets its own. GraphiQL's WebSocket
/// client sends no headers and its `connection_init` no payload, so the token goes
/// into that message's payload as `{"token": ...}` unless it names one already.
const GRAPHIQL_SIGN_IN: &str = r#"
(() => {
  const KEY = 'nhigov.console.token';
  const m = location.hash.match(/^#token=([^&]+)$/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  const token = sessionStorage.getItem(KEY);
  if (!token && SSO) {
    location.replace('/auth/login?to=graphiql');
    return;
  }
  if (!token) return;
  const send = window.fetch.bind(window);
  window.fetch = (url, opts = {}) => {
    const headers = new Headers(opts.headers || {});
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    return send(url, { ...opts, headers });
  };
  const sendWs = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === 'string' && data.includes('connection_init')) {
      try {
        const msg = JSON.parse(data);
        const p = msg.payload || {};
        if (msg.type === 'connection_init' && !p.token && !p.Authorization && !p.authorization) {
          data = JSON.stringify({ ...msg, payload: { ...p, token } });
        }
      } catch (_) {
        // Not JSON: sent as it is.
      }
    }
    return sendWs.call(this, data);
  };
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn graphiql_takes_a_returned_token_and_goes_to_sign_in_only_when_it_is_configured() {
        for (sso, redirects) in [(true, "if (!token && true)"), (false, "if (!token && false)")] {
            let body = graphiql(sso).await.into_response().into_body();
            let page = String::from_utf8(axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec()).unwrap();
            let script = page.find("nhigov.console.token").expect("the sign-in script is in the page");
            assert!(script < page.find("GraphiQL.createFetcher").unwrap(), "it runs before GraphiQL starts");
            assert!(page.contains(redirects), "{sso}");
        }
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn operations_are_named_from_the_document_when_the_request_does_not_say() {
        assert_eq!(first_operation_name("query Me { me { id } }").as_deref(), Some("Me"));
        assert_eq!(first_operation_name("  mutation Decide($r: ID!) { x }").as_deref(), Some("Decide"));
        assert_eq!(first_operation_name("{ query { x } }"), None);
        assert_eq!(first_operation_name("query { me { id } }"), None);
        assert_eq!(first_operation_name("query($a: Int) { me { id } }"), None);
        assert_eq!(first_operation_name("queryX { a }"), None);
    }

    #[test]
    fn the_graphql_response_type_wins_when_both_are_acceptable() {
        assert_eq!(
            negotiate(&accept("application/graphql-response+json, application/json")),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept("application/json;q=0.9, application/graphql-response+json")),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(negotiate(&accept("application/json")), Some(Media::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(Media::Json));
        assert_eq!(negotiate(&HeaderMap::new()), Some(Media::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
    }
}
