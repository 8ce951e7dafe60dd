//! GraphQL objects of traversals.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use graph_model::graph::{Reached, Step, Traversal};

use crate::enums::*;
use crate::error::ApiResult;
use crate::inventory::loaders::nodes;
use crate::inventory::types::{Owned, owned};

/// One edge of a witness path.
#[derive(SimpleObject)]
pub struct PathStep {
    /// The edge's id (`can_access:...`).
    pub edge: ID,
    pub kind: EdgeKind,
    pub from: ID,
    pub to: ID,
    pub privilege: Option<Privilege>,
    /// Whether a decision stands behind the edge: false for access, delegation or a
    /// secret held that a feed reported and nobody approved; null for edges that carry
    /// no governed fact.
    pub governed: Option<bool>,
    /// When the edge lapses on its own (time-boxed access); null when it does not.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl PathStep {
    pub fn of(s: &Step) -> PathStep {
        PathStep {
            edge: ID(s.edge.to_string()),
            kind: s.edge.kind.into(),
            from: ID(s.from.to_string()),
            to: ID(s.to.to_string()),
            privilege: s.privilege.map(Into::into),
            governed: s.governed,
            expires_at: s.expires_at,
        }
    }
}

/// A node a traversal reached.
pub struct ReachedNode(pub Reached);

#[Object]
impl ReachedNode {
    async fn id(&self) -> ID {
        ID(self.0.node.to_string())
    }
    /// The NHI, secret or system itself.
    async fn node(&self, ctx: &Context<'_>) -> ApiResult<Option<Owned>> {
        Ok(owned(nodes(ctx, [self.0.node.clone()]).await?).pop())
    }
    /// Edges between the origin and this node on the shortest way.
    async fn hops(&self) -> u32 {
        self.0.hops
    }
    /// One shortest path, in walking order.
    async fn path(&self) -> Vec<PathStep> {
        self.0.path.iter().map(PathStep::of).collect()
    }
    /// The highest privilege on the witness path.
    async fn max_privilege(&self) -> Option<Privilege> {
        self.0.max_privilege.map(Into::into)
    }
    async fn environment(&self) -> Option<Environment> {
        self.0.meta.environment.map(Into::into)
    }
    async fn criticality(&self) -> Option<Criticality> {
        self.0.meta.criticality.map(Into::into)
    }
    /// A disabled, revoked or decommissioned NHI: reached, but it acts for no one, so
    /// the walk does not pass through it.
    async fn inactive(&self) -> bool {
        self.0.meta.inactive
    }
    /// Whether every edge of the witness path that carries a governed fact has a
    /// decision behind it.
    async fn governed(&self) -> bool {
        self.0.path.iter().all(|s| s.governed != Some(false))
    }
}

/// A count under one key.
#[derive(SimpleObject)]
pub struct Count {
    pub key: String,
    pub count: u64,
}

/// Totals of a traversal.
#[derive(SimpleObject)]
pub struct Totals {
    pub nodes: u64,
    /// By table: nhi, secret, system.
    pub by_kind: Vec<Count>,
    pub by_environment: Vec<Count>,
    pub by_criticality: Vec<Count>,
    pub by_max_privilege: Vec<Count>,
}

/// What a traversal found.
pub struct Reach {
    pub origin: ID,
    pub max_hops: u32,
    pub as_of: Option<DateTime<Utc>>,
    pub traversal: Traversal,
}

fn counts(m: &BTreeMap<&'static str, u64>) -> Vec<Count> {
    m.iter().map(|(key, count)| Count { key: (*key).to_owned(), count: *count }).collect()
}

#[Object]
impl Reach {
    async fn origin(&self) -> &ID {
        &self.origin
    }
    async fn max_hops(&self) -> u32 {
        self.max_hops
    }
    /// The time the graph was read as of; null for now.
    async fn as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }
    /// The node cap cut `reached`: more nodes are within the hop cap than it lists.
    /// `totals` count them all.
    async fn truncated(&self) -> bool {
        self.traversal.truncated
    }
    /// Counts over every node within the hop cap, whatever the node cap.
    async fn totals(&self) -> Totals {
        let t = &self.traversal.totals;
        Totals {
            nodes: t.nodes,
            by_kind: counts(&t.by_kind),
            by_environment: counts(&t.by_environment),
            by_criticality: counts(&t.by_criticality),
            by_max_privilege: counts(&t.by_max_privilege),
        }
    }
    /// The nodes reached, nearest first, at most `first` of them (up to 1000).
    async fn reached(&self, #[graphql(default = 100)] first: u32, kind: Option<ReachKind>) -> Vec<ReachedNode> {
        self.traversal
            .reached
            .iter()
            .filter(|r| kind.is_none_or(|k| k.table() == r.meta.table))
            .take(first.min(1000) as usize)
            .cloned()
            .map(ReachedNode)
            .collect()
    }
}

/// The kinds of node a traversal reaches.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachKind {
    Nhi,
    Secret,
    System,
}

impl ReachKind {
    fn table(self) -> graph_model::Table {
        match self {
            ReachKind::Nhi => graph_model::Table::Nhi,
            ReachKind::Secret => graph_model::Table::Secret,
            ReachKind::System => graph_model::Table::System,
        }
    }
}
