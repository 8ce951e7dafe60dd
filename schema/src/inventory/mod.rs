//! The inventory: people, teams, NHIs, secrets, systems and the edges between them.

pub mod inputs;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::InventoryMutation;
pub use query::InventoryQuery;
