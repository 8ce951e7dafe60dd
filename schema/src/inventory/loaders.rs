//! Batch loaders for the inventory: every relation field of a page of nodes is resolved
//! with one query per relation kind, and the nodes at the far end with one more, however
//! long the page.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ErrorExtensions};
use graph_model::graph::{Direction, EdgeFact};
use graph_model::store::{EdgeDirection, Page, Store};
use graph_model::{Edge, EdgeKind, InventoryNode, NodeId};

use crate::error::{ApiError, ApiResult};
use crate::relay::{Paging, filter_page, page_request, slice};

/// Loads inventory nodes of any table by id, as fresh as the graph index
/// ([`Store::current_nodes`]): the far ends of a page's relations come from memory.
pub struct NodeLoader(pub Store);

impl Loader<NodeId> for NodeLoader {
    type Value = InventoryNode;
    type Error = async_graphql::Error;

    #[tracing::instrument(name = "load", skip_all, fields(loader = "nodes", keys = keys.len()))]
    async fn load(&self, keys: &[NodeId]) -> Result<HashMap<NodeId, InventoryNode>, Self::Error> {
        self.0.current_nodes(keys).await.map_err(|e| ApiError::from(e).extend())
    }
}

/// The edges of one kind at one node, in one direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdgeKey {
    pub kind: EdgeKind,
    pub direction: EdgeDirection,
    pub node: NodeId,
}

/// Loads the edges in force at many nodes: one query per (kind, direction) in a batch.
pub struct EdgeLoader(pub Store);

impl Loader<EdgeKey> for EdgeLoader {
    type Value = Vec<Edge>;
    type Error = async_graphql::Error;

    #[tracing::instrument(name = "load", skip_all, fields(loader = "edges", keys = keys.len()))]
    async fn load(&self, keys: &[EdgeKey]) -> Result<HashMap<EdgeKey, Vec<Edge>>, Self::Error> {
        let mut groups: HashMap<(EdgeKind, EdgeDirection), Vec<NodeId>> = HashMap::new();
        for k in keys {
            groups.entry((k.kind, k.direction)).or_default().push(k.node.clone());
        }
        // The groups are independent reads: side by side, so a page's relations arrive
        // together and the far ends they name load in one batch.
        let reads = groups.into_iter().map(|((kind, direction), nodes)| async move {
            let found = self.0.edges_of(kind, direction, &nodes, None).await;
            found.map(|found| (kind, direction, nodes, found))
        });
        let mut out = HashMap::with_capacity(keys.len());
        for (kind, direction, nodes, mut found) in
            futures::future::try_join_all(reads).await.map_err(|e| ApiError::from(e).extend())?
        {
            for node in nodes {
                let edges = found.remove(&node).unwrap_or_default();
                out.insert(EdgeKey { kind, direction, node }, edges);
            }
        }
        Ok(out)
    }
}

/// The edges of `kind` at `node` now, through the request's batch loader.
pub async fn edges(ctx: &Context<'_>, kind: EdgeKind, direction: EdgeDirection, node: &NodeId) -> ApiResult<Vec<Edge>> {
    let loader = ctx.data::<DataLoader<EdgeLoader>>()?;
    Ok(loader.load_one(EdgeKey { kind, direction, node: node.clone() }).await?.unwrap_or_default())
}

/// The edges of `kind` at `node` now from the graph index, for the kinds it holds (the
/// traversed ones: a page of NHIs with their access reads no grant record); from the
/// store through the batch loader for the others.
pub async fn indexed(
    ctx: &Context<'_>,
    kind: EdgeKind,
    direction: EdgeDirection,
    node: &NodeId,
) -> ApiResult<Vec<EdgeFact>> {
    let walk = match direction {
        EdgeDirection::Out => Direction::Forward,
        EdgeDirection::In => Direction::Reverse,
    };
    match ctx.data::<Store>()?.indexed_edges(kind, walk, node).await? {
        Some(found) => Ok(found),
        None => Ok(edges(ctx, kind, direction, node).await?.iter().map(EdgeFact::from).collect()),
    }
}

/// Nodes by id, in the order asked, through the batch loader; ids that no longer
/// resolve are left out.
pub async fn nodes(ctx: &Context<'_>, ids: impl IntoIterator<Item = NodeId>) -> ApiResult<Vec<InventoryNode>> {
    let ids: Vec<NodeId> = ids.into_iter().collect();
    let loader = ctx.data::<DataLoader<NodeLoader>>()?;
    let found = loader.load_many(ids.iter().cloned()).await?;
    Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
}

/// The nodes at the other end of the edges of `kind` at `node`, the edges read from the
/// graph index where it holds their kind (see [`indexed`]).
pub async fn neighbours(
    ctx: &Context<'_>,
    kind: EdgeKind,
    direction: EdgeDirection,
    node: &NodeId,
) -> ApiResult<Vec<InventoryNode>> {
    let es = indexed(ctx, kind, direction, node).await?;
    nodes(ctx, es.into_iter().map(|e| far_end(direction, e.from, e.to))).await
}

/// The node an edge from `from` to `to` leads to, walked in `direction`.
fn far_end(direction: EdgeDirection, from: NodeId, to: NodeId) -> NodeId {
    match direction {
        EdgeDirection::Out => to,
        EdgeDirection::In => from,
    }
}

/// One page of the nodes at the other end of the edges of `kind` at `node`, by id: the
/// edges are read whole (through the batch loader), the far ends only for the page.
pub async fn related(
    ctx: &Context<'_>,
    kind: EdgeKind,
    direction: EdgeDirection,
    node: &NodeId,
    paging: Paging,
) -> ApiResult<Page<InventoryNode>> {
    let request = page_request(ctx, paging)?;
    let far = edges(ctx, kind, direction, node).await?.into_iter().map(|e| far_end(direction, e.from, e.to));
    let page = slice(far.collect(), |id| id, &request)?;
    let mut found: HashMap<NodeId, InventoryNode> =
        nodes(ctx, page.items.iter().cloned()).await?.into_iter().map(|n| (n.id().clone(), n)).collect();
    Ok(filter_page(page, |id| found.remove(&id)))
}
