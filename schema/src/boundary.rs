//! The error boundary every field resolves inside.
//!
//! A resolver that panics ends as a coded `INTERNAL` error for that field, with a
//! reference the log holds beside the panic's message, and frees what it held: over HTTP
//! the request is answered, over `/graphql/ws` the operation completes and its slot is
//! given back. An error that leaves a field without a code is given one: an argument that
//! did not parse (an integer out of its range, a malformed value) is `BAD_USER_INPUT`
//! naming the argument, in words that do not show internal types; anything else is
//! logged and answered as `INTERNAL` with a reference, so no internal text reaches a
//! client.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{ErrorExtensions, ServerError, ServerResult, Value};
use futures::FutureExt;

use crate::error::ApiError;

/// The extension; see the module documentation.
pub struct Boundary;

impl ExtensionFactory for Boundary {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(BoundaryExtension)
    }
}

struct BoundaryExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for BoundaryExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // Borrowed, not formatted: every field of a response passes here, and the path
        // is spelled out only for the rare one that panics.
        let (field, path_node) = (info.name, info.path_node);
        match AssertUnwindSafe(next.run(ctx, info)).catch_unwind().await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(coded(e, field)),
            Err(panic) => {
                let path = path_node.to_string();
                let segments: Vec<async_graphql::PathSegment> =
                    path_node.to_string_vec().into_iter().map(async_graphql::PathSegment::Field).collect();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                let e = ApiError::internal(format!("{path} panicked: {message}"));
                let mut e = server_error(e, None);
                e.path = segments;
                Err(e)
            }
        }
    }
}

fn server_error(e: ApiError, pos: Option<async_graphql::Pos>) -> ServerError {
    e.extend().into_server_error(pos.unwrap_or_default())
}

/// Give an uncoded error its code; a coded one passes as it is.
fn coded(e: ServerError, field: &str) -> ServerError {
    if e.extensions.as_ref().is_some_and(|x| x.get("code").is_some()) {
        return e;
    }
    let pos = e.locations.first().copied();
    let mut out = match argument_error(&e.message, field) {
        Some((argument, why)) => server_error(ApiError::bad_input(argument, why), pos),
        None => server_error(ApiError::internal(format!("{field}: {}", e.message)), pos),
    };
    out.path = e.path;
    out
}

/// An argument of `field` that did not parse, as async-graphql words it (`Failed to
/// parse "Int": Invalid number (occurred while parsing "NhiFilter")`): where, and why,
/// in GraphQL's terms. The message names the argument's type, not the argument.
fn argument_error(message: &str, field: &str) -> Option<(String, String)> {
    // A null sent for an argument that has a default but no null (`first: Int! = 20`).
    if let Some(rest) = message.strip_prefix("Expected input type \"") {
        let (ty, found) = rest.split_once('"')?;
        let found = found.trim_start_matches([',', ' ']).trim_start_matches("found ").trim_end_matches('.');
        return Some((format!("{field} arguments"), format!("a {ty} is required, not {found}")));
    }
    let rest = message.strip_prefix("Failed to parse \"")?;
    let (ty, why) = rest.split_once('"')?;
    let why = why.trim_start_matches([':', ' ']);
    let (why, within) = match why.split_once(" (occurred while parsing \"") {
        Some((why, outer)) => (why, Some(outer.trim_end_matches(['"', ')']))),
        None => (why, None),
    };
    let why = if why.contains("integers from") { "out of range" } else { why.trim_end_matches('.') };
    let said = match within {
        Some(outer) => format!("a {ty} in a {outer} is not valid: {why}"),
        None => format!("a {ty} is not valid: {why}"),
    };
    Some((format!("{field} arguments"), said))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn fine(&self) -> i32 {
            1
        }
        async fn broken(&self) -> i32 {
            let none: Vec<i32> = Vec::new();
            none[std::hint::black_box(3)]
        }
        async fn days(&self, days: u32) -> u32 {
            days
        }
    }

    fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription).extension(Boundary).finish()
    }

    #[tokio::test]
    async fn a_panicking_field_is_a_coded_internal_error_and_its_siblings_answer() {
        let resp = serde_json::to_value(schema().execute("{ fine broken }").await).unwrap();
        assert_eq!(resp["data"]["fine"], 1, "{resp}");
        let e = &resp["errors"][0];
        assert_eq!(e["path"], serde_json::json!(["broken"]), "{resp}");
        assert_eq!(e["extensions"]["code"], "INTERNAL", "{resp}");
        assert!(e["extensions"]["reference"].is_string());
        assert!(!e["message"].as_str().unwrap().contains("out of bounds"), "the panic stays in the log");
    }

    #[tokio::test]
    async fn an_argument_out_of_its_range_is_bad_user_input() {
        let resp = serde_json::to_value(
            schema()
                .execute(
                    async_graphql::Request::new("query($d: Int!) { days(days: $d) }")
                        .variables(async_graphql::Variables::from_json(serde_json::json!({ "d": -1 }))),
                )
                .await,
        )
        .unwrap();
        assert_eq!(resp["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{resp}");
    }

    #[test]
    fn argument_errors_name_the_argument_without_internal_types() {
        let (a, why) = argument_error(
            "Failed to parse \"Int\": Only integers from 0 to 4294967295 are accepted. (occurred while parsing \"NhiFilter\")",
            "nhis",
        )
        .unwrap();
        assert_eq!((a.as_str(), why.as_str()), ("nhis arguments", "a Int in a NhiFilter is not valid: out of range"));
        let (a, why) = argument_error("Expected input type \"Int\", found null.", "search").unwrap();
        assert_eq!((a.as_str(), why.as_str()), ("search arguments", "a Int is required, not null"));
        assert!(argument_error("something else", "nhis").is_none());
    }
}
