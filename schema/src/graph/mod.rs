//! Investigating the graph: blast radius, who can reach, shortest path, as of a time.
//!
//! Traversals run on the in-process adjacency index (`graph_model::graph`), which the
//! store keeps in step with the database before every query; hop and node caps come
//! from configuration, and a request over the hop cap is refused rather than slow.

pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::GraphMutation;
pub use query::GraphQuery;

/// Bounds on traversals.
#[derive(Debug, Clone, Copy)]
pub struct GraphLimits {
    /// The largest `maxHops` a query may ask for.
    pub max_hops: u32,
    /// The most nodes one traversal returns; beyond it the answer says `truncated`.
    pub node_cap: usize,
}

impl Default for GraphLimits {
    fn default() -> Self {
        GraphLimits { max_hops: 6, node_cap: 10_000 }
    }
}
