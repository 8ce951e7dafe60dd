//! Limits on what one GraphQL document may ask, applied before any resolver runs.
//!
//! async-graphql's parser is recursive and overflows its stack on deeply nested list or
//! object literals before its own limits run, so [`check_nesting`] scans the raw text
//! first, without recursion. After parsing, [`Limits`] (an extension) counts aliases,
//! and the schema's depth and complexity limits apply during validation. Every refusal
//! carries a stable code in `extensions.code`.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

/// The bounds a document must keep.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Characters in the query text.
    pub max_query_chars: usize,
    /// Nesting of `{`, `[` and `(` in the query text.
    pub max_nesting: usize,
    /// Depth of selection sets.
    pub max_depth: usize,
    /// Fields counted over the whole operation.
    pub max_complexity: usize,
    /// Aliased fields in the document.
    pub max_aliases: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_query_chars: 64 * 1024,
            max_nesting: 48,
            max_depth: 16,
            max_complexity: 2_000,
            max_aliases: 64,
        }
    }
}

/// Code of a request refused for its size or shape.
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
/// Code of a document that is not valid GraphQL.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// Code of a document that does not fit the schema.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// An error with a code, for request-level refusals.
pub fn coded(message: impl Into<String>, code: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

/// Refuse text whose brackets nest deeper than `max` or that is longer than
/// `max_chars`, scanning strings, block strings and comments as GraphQL does, without
/// recursion.
pub fn check_nesting(query: &str, limits: &QueryLimits) -> Result<(), ServerError> {
    if query.chars().count() > limits.max_query_chars {
        return Err(coded(format!("the query is longer than {} characters", limits.max_query_chars), TOO_COMPLEX));
    }
    let bytes = query.as_bytes();
    let (mut i, mut depth) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(coded(
                        format!("the query nests deeper than {} levels of brackets", limits.max_nesting),
                        TOO_COMPLEX,
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Count the aliased fields of a parsed document.
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    let mut stack: Vec<&SelectionSet> = doc.operations.iter().map(|(_, op)| &op.node.selection_set.node).collect();
    stack.extend(doc.fragments.values().map(|f| &f.node.selection_set.node));
    let mut count = 0;
    while let Some(set) = stack.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    if f.node.alias.is_some() {
                        count += 1;
                    }
                    stack.push(&f.node.selection_set.node);
                }
                Selection::InlineFragment(f) => stack.push(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    count
}

/// The most days an argument counting days from now may say: a hundred years.
pub const MAX_DAYS: u32 = 36_500;

/// A count of days from now, checked against [`MAX_DAYS`] so the date it gives exists.
pub fn days(argument: &str, days: u32) -> Result<u32, crate::error::ApiError> {
    if days > MAX_DAYS {
        return Err(crate::error::ApiError::bad_input(argument, format!("at most {MAX_DAYS} days")));
    }
    Ok(days)
}

/// The extension that applies [`QueryLimits`] around parsing and codes validation errors.
pub struct Limits(pub QueryLimits);

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension(self.0))
    }
}

struct LimitsExtension(QueryLimits);

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        check_nesting(query, &self.0)?;
        let doc = next.run(ctx, query, variables).await.map_err(|mut e| {
            if e.extensions.is_none() {
                // The parser's own recursion guard refuses depth, not syntax.
                let code = if e.message.contains("recursion") { TOO_COMPLEX } else { PARSE_FAILED };
                e.extensions = coded("", code).extensions;
            }
            e
        })?;
        let aliases = count_aliases(&doc);
        if aliases > self.0.max_aliases {
            return Err(coded(
                format!("the query has {aliases} aliases; at most {} are allowed", self.0.max_aliases),
                TOO_COMPLEX,
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    if e.extensions.is_none() {
                        let code = if e.message.contains("too deep") || e.message.contains("too complex") {
                            TOO_COMPLEX
                        } else {
                            VALIDATION_FAILED
                        };
                        e.extensions = coded("", code).extensions;
                    }
                    e
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits { max_nesting: 10, ..Default::default() }
    }

    #[test]
    fn deep_literals_are_refused_before_parsing() {
        let deep = format!("{{ node(id: {}1{}) {{ id }} }}", "[".repeat(100_000), "]".repeat(100_000));
        let err = check_nesting(&deep, &QueryLimits { max_query_chars: usize::MAX, ..limits() }).unwrap_err();
        assert!(err.message.contains("nests deeper"));
    }

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let q = format!("# {}\n{{ a(s: \"{}\", b: \"\"\"{}\"\"\") }}", "{".repeat(50), "[".repeat(50), "(".repeat(50));
        assert!(check_nesting(&q, &limits()).is_ok());
    }

    #[test]
    fn ordinary_queries_pass() {
        let q = "query { nhis(first: 5, filter: {kind: TOKEN}) { edges { node { id owners { ... on Person { name } } } } } }";
        assert!(check_nesting(q, &limits()).is_ok());
    }

    #[test]
    fn aliases_are_counted_everywhere() {
        let doc =
            async_graphql::parser::parse_query("query { a: me { b: name } ...F } fragment F on Query { c: me { id } }")
                .unwrap();
        assert_eq!(count_aliases(&doc), 3);
    }
}
