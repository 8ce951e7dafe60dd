//! The API's one error type and its stable codes.
//!
//! Every failure a resolver can meet becomes an [`ApiError`]; it is turned into a GraphQL
//! error once, here, with its code in `extensions.code`. Internal causes are logged with
//! an id and never sent: the client sees `INTERNAL` and the id to quote.

use async_graphql::ErrorExtensions;
use graph_model::ValueError;
use graph_model::inventory::ItemError;
use graph_model::store::StoreError;
use tracing::error;

/// A failure, in the terms a client can act on.
///
/// It deliberately does not implement `Display`: async-graphql converts any `Display`
/// error into a GraphQL error without extensions, and every `ApiError` must keep its
/// code. `?` in a resolver goes through the `From` below instead.
#[derive(Debug, Clone)]
pub enum ApiError {
    Unauthenticated,
    Forbidden(String),
    BadInput {
        field: String,
        message: String,
    },
    BadDocument(Vec<ItemError>),
    NotFound(String),
    Conflict(String),
    /// A policy rule refused a decision; the refused attempt is in the chain.
    SodViolation {
        violation: graph_model::Violation,
        decision: graph_model::NodeId,
    },
    Internal(String),
    /// An error async-graphql (or a guard) made that already carries its code, passed
    /// on as it is.
    Coded(async_graphql::Error),
}

impl ApiError {
    /// The message sent to the client.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => "authentication required: send a valid bearer token".into(),
            ApiError::Forbidden(why) => format!("forbidden: {why}"),
            ApiError::BadInput { field, message } => format!("{field}: {message}"),
            ApiError::BadDocument(items) => format!("the inventory document has {} fault(s)", items.len()),
            ApiError::NotFound(what) => format!("not found: {what}"),
            ApiError::Conflict(what) => format!("conflict: {what}"),
            ApiError::SodViolation { violation, .. } => format!(
                "refused by rule {} of policy version {}: {}",
                violation.rule, violation.policy_version, violation.message
            ),
            ApiError::Internal(reference) => format!("internal error (reference {reference})"),
            ApiError::Coded(e) => e.message.clone(),
        }
    }

    /// The stable code carried in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::BadInput { .. } | ApiError::BadDocument(_) => "BAD_USER_INPUT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::SodViolation { .. } => "SOD_VIOLATION",
            ApiError::Internal(_) => "INTERNAL",
            ApiError::Coded(_) => "CODED",
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadInput { field: field.into(), message: message.into() }
    }

    /// Log an internal cause and return the error the client sees.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        error!(reference = %reference, cause = %cause, "internal error");
        ApiError::Internal(reference)
    }
}

impl From<ValueError> for ApiError {
    fn from(e: ValueError) -> Self {
        ApiError::BadInput { field: e.field, message: e.message }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(what) => ApiError::Conflict(what),
            StoreError::Unique { index } => ApiError::Conflict(format!("a record with the same key exists ({index})")),
            StoreError::Stale(_) | StoreError::ChainMoved | StoreError::Retryable => {
                ApiError::Conflict("the records changed while this was being written; try again".into())
            }
            StoreError::Invalid(v) => v.into(),
            StoreError::Import(items) => ApiError::BadDocument(items),
            StoreError::Refused { violation, decision } => ApiError::SodViolation { violation, decision },
            other => ApiError::internal(other),
        }
    }
}

impl From<async_graphql::Error> for ApiError {
    /// A coded error passes; an uncoded one (a missing context value, a failure from a
    /// library) is internal: logged, and answered with a reference only.
    fn from(e: async_graphql::Error) -> Self {
        match e.extensions.as_ref().is_some_and(|x| x.get("code").is_some()) {
            true => ApiError::Coded(e),
            false => ApiError::internal(e.message),
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        if let ApiError::Coded(e) = self {
            return e.clone();
        }
        async_graphql::Error::new(self.message()).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                ApiError::BadInput { field, .. } => ext.set("field", field.as_str()),
                ApiError::BadDocument(items) => {
                    let items: Vec<async_graphql::Value> = items
                        .iter()
                        .map(|i| {
                            let mut m = async_graphql::indexmap::IndexMap::new();
                            m.insert(async_graphql::Name::new("item"), async_graphql::Value::from(i.item.as_str()));
                            if let Some(r) = &i.reference {
                                m.insert(async_graphql::Name::new("ref"), async_graphql::Value::from(r.as_str()));
                            }
                            if let Some(f) = &i.field {
                                m.insert(async_graphql::Name::new("field"), async_graphql::Value::from(f.as_str()));
                            }
                            m.insert(
                                async_graphql::Name::new("message"),
                                async_graphql::Value::from(i.message.as_str()),
                            );
                            async_graphql::Value::Object(m)
                        })
                        .collect();
                    ext.set("items", async_graphql::Value::List(items));
                }
                ApiError::SodViolation { violation, decision } => {
                    ext.set("rule", violation.rule.as_str());
                    ext.set("policyVersion", violation.policy_version);
                    ext.set("decision", decision.to_string());
                }
                ApiError::Internal(reference) => ext.set("reference", reference.as_str()),
                _ => {}
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}

/// Resolver results: `?` on any failure goes through a `From` into [`ApiError`], so
/// every error a resolver returns carries its code.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_messages_never_reach_the_client() {
        let e: ApiError = StoreError::Database("index corrupted at key /x/y".into()).into();
        let gql = e.extend();
        assert!(!gql.message.contains("corrupted"));
        assert_eq!(e.code(), "INTERNAL");
    }

    #[test]
    fn each_store_error_has_its_code() {
        assert_eq!(ApiError::from(StoreError::NotFound("x".into())).code(), "NOT_FOUND");
        assert_eq!(ApiError::from(StoreError::Conflict("x".into())).code(), "CONFLICT");
        assert_eq!(ApiError::from(StoreError::Invalid(ValueError::new("f", "m"))).code(), "BAD_USER_INPUT");
        assert_eq!(ApiError::from(StoreError::Import(vec![])).code(), "BAD_USER_INPUT");
        // The kinds a concurrent write or a unique index produce: a conflict, said in
        // our words, with nothing of the database's.
        for e in [
            StoreError::Stale("STALE: a fact changed".into()),
            StoreError::ChainMoved,
            StoreError::Retryable,
            StoreError::Unique { index: "person_email".into() },
        ] {
            let api = ApiError::from(e);
            assert_eq!(api.code(), "CONFLICT");
            let message = api.extend().message;
            assert!(!message.contains("STALE") && !message.contains("already contains"), "{message}");
        }
        let schema_too_new = ApiError::from(StoreError::SchemaTooNew { found: 9, supported: 8 });
        assert_eq!(schema_too_new.code(), "INTERNAL");
    }
}
