//! The case record: alerts, cases, tasks and evidence.

pub mod loaders;
pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::CaseMutation;
pub use query::CaseQuery;
