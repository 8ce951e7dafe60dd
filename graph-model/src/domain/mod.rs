//! The pure domain: identifiers, validated values, the node and edge types of the
//! identity graph, and the inventory document format.
//!
//! Nothing in here touches the database, the network or an async runtime, so every rule
//! is unit-tested with plain values. Input is parsed into these types once, at the edge
//! (`Name::parse`, `EdgeKind::check_endpoints`...), and everything past that trusts them.

pub mod edges;
pub mod ids;
pub mod inventory;
pub mod nodes;
pub mod values;

pub use edges::*;
pub use ids::*;
pub use nodes::*;
pub use values::*;
