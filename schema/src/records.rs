//! The GraphQL objects of the case and decision records, declared apart from their
//! fields: a case lists its decisions and requests, and a decision or a request names
//! its case, so `cases::types` and `decisions::types` each resolve the fields of their
//! own objects (`#[Object] impl` blocks) and name the other's from here, without
//! importing each other. With them, the small helpers both use.

use async_graphql::{Context, ID};
use graph_model as gm;
use graph_model::{InventoryNode, NodeId};

use crate::error::ApiResult;
use crate::inventory::loaders::nodes;
use crate::inventory::types::Person;

/// A signal from a scanner or rule about an NHI or a secret.
pub struct Alert(pub gm::Alert);

/// An investigation: owners, evidence, escalation, approvals and closure.
pub struct Case(pub gm::Case);

/// An immutable exhibit attached to a case. It is never edited or deleted; a
/// correction is newer evidence that supersedes it.
pub struct Evidence(pub gm::Evidence);

/// A proposed change: grant access, rotate a secret, revoke or offboard an NHI, an
/// exception, emergency access, or (`CHANGE`) a change to a governed fact waiting for a
/// second person.
pub struct Request(pub gm::Request);

/// The record of one decision, a link in the hash chain.
pub struct Decision(pub gm::Decision);

pub(crate) fn gid(id: &NodeId) -> ID {
    ID(id.to_string())
}

/// People by id, through the inventory's batch loader.
pub(crate) async fn people(ctx: &Context<'_>, ids: impl IntoIterator<Item = NodeId>) -> ApiResult<Vec<Person>> {
    Ok(nodes(ctx, ids)
        .await?
        .into_iter()
        .filter_map(|n| match n {
            InventoryNode::Person(p) => Some(Person(p)),
            _ => None,
        })
        .collect())
}

pub(crate) async fn person(ctx: &Context<'_>, id: Option<&NodeId>) -> ApiResult<Option<Person>> {
    match id {
        Some(id) => Ok(people(ctx, [id.clone()]).await?.pop()),
        None => Ok(None),
    }
}

pub(crate) fn refs(r: &[gm::FrameworkRef]) -> Vec<String> {
    r.iter().map(|r| r.as_str().to_owned()).collect()
}
