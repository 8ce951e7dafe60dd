//! Governed facts: the mutations that change who can reach what, who holds which role
//! and who is active, an NHI's status, a system's criticality and environment,
//! ownership and membership, API tokens and the policy.
//!
//! Each goes through the store's one decision pipeline (`Store::govern`): it answers
//! the decision it recorded and, when a second person must approve, the request it filed
//! instead of the change. It is an error only when the caller may not ask at all
//! (`FORBIDDEN`, `BAD_USER_INPUT`) or a rule refuses it outright (`SOD_VIOLATION`, the
//! refusal recorded). This area sits above `inventory` and `decisions`, whose types it
//! answers with.

pub(crate) mod mutation;
mod query;

pub use mutation::GovernanceMutation;
pub use query::GovernanceQuery;
