//! nhigov's domain and its store.
//!
//! - [`domain`]: the pure types and rules of the identity graph, tested without a database.
//! - [`store`]: the SurrealDB graph store: schema, queries, transactions.
//!
//! Nothing here knows about GraphQL or HTTP; the `schema` crate wraps these types for the
//! API and the `nhigov` binary wires the store into a server.

pub mod domain;
pub mod store;

pub use domain::*;
