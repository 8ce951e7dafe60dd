//! Requests, approvals, exceptions, policy versions, and the decision chain.

pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::DecisionMutation;
pub use query::DecisionQuery;
