//! The pure domain: identifiers, validated values, the node and edge types of the
//! identity graph, the inventory document format, and the governance record: alerts,
//! cases, requests, policy rules, and the decision chain.
//!
//! Nothing in here touches the database, the network or an async runtime, so every rule
//! is unit-tested with plain values. Input is parsed into these types once, at the edge
//! (`Name::parse`, `EdgeKind::check_endpoints`...), and everything past that trusts them.

pub mod bundle;
pub mod campaign;
pub mod canonical;
pub mod case;
pub mod change;
pub mod checkpoint;
pub mod control;
pub mod decision;
pub mod edges;
pub mod event;
pub mod feeds;
pub mod framework;
pub mod graph;
pub mod ids;
pub mod inventory;
pub mod nodes;
pub mod opengraph;
pub mod policy;
pub mod request;
pub mod scanners;
pub mod values;

pub use case::*;
pub use change::*;
pub use decision::*;
pub use edges::*;
pub use event::{Event, EventKind};
pub use framework::*;
pub use ids::*;
pub use nodes::*;
pub use policy::*;
pub use request::*;
pub use values::*;
