//! Walks kept on a case: recorded traversals, and graph snapshots kept as evidence.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::graph::Direction;
use graph_model::store::{Store, TraversalRecord};

use super::query::{BLAST_ORIGINS, REACH_TARGETS, reach, shortest_path};
use crate::cases::mutation::node_id;
use crate::cases::types::{CaseTraversal, Evidence};
use crate::error::{ApiError, ApiResult};
use crate::principal::{READ_CASES, RoleGuard, WORK_CASES, principal};

#[derive(Default)]
pub struct GraphMutation;

/// The traversals a case can record.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TraversalQuery {
    BlastRadius,
    WhoCanReach,
    Path,
}

impl TraversalQuery {
    fn as_str(self) -> &'static str {
        match self {
            TraversalQuery::BlastRadius => "blast_radius",
            TraversalQuery::WhoCanReach => "who_can_reach",
            TraversalQuery::Path => "path",
        }
    }
}

/// A walk to keep on a case.
#[derive(InputObject)]
pub struct TraversalInput {
    pub query: TraversalQuery,
    /// Where the walk starts: the NHI or secret of a BLAST_RADIUS or a PATH, the node a
    /// WHO_CAN_REACH asks about.
    pub origin: ID,
    /// The end of a PATH; other walks take none.
    pub to: Option<ID>,
    #[graphql(default = 3)]
    pub max_hops: u32,
    /// The graph as it was then; null for now.
    pub as_of: Option<DateTime<Utc>>,
}

/// One walk as asked.
struct Walk {
    query: TraversalQuery,
    origin: gm::NodeId,
    target: Option<gm::NodeId>,
    max_hops: u32,
    as_of: Option<DateTime<Utc>>,
}

/// Keep a walk on its case, as the caller.
async fn record(
    ctx: &Context<'_>,
    case: &gm::NodeId,
    walk: Walk,
    reached: u64,
    truncated: bool,
) -> ApiResult<CaseTraversal> {
    let p = principal(ctx)?;
    let t = TraversalRecord {
        case: case.clone(),
        actor: p.id().clone(),
        query: walk.query.as_str().into(),
        origin: walk.origin,
        target: walk.target,
        max_hops: walk.max_hops,
        as_of: walk.as_of,
        reached,
        truncated,
        at: Utc::now(),
    };
    ctx.data::<Store>()?.record_traversal(&t).await?;
    Ok(CaseTraversal {
        actor: p.person.email.as_str().to_owned(),
        query: t.query,
        origin: ID(t.origin.to_string()),
        target: t.target.map(|t| ID(t.to_string())),
        max_hops: t.max_hops,
        as_of: t.as_of,
        reached: t.reached,
        truncated: t.truncated,
        at: t.at,
    })
}

#[Object]
impl GraphMutation {
    /// Walk the graph for a case and keep the walk on it (who, what, when, how much it
    /// reached), where the case's timeline and evidence bundle show it. Queries never
    /// write: this is how an investigation's walks join its record.
    #[graphql(guard = "RoleGuard(READ_CASES)")]
    async fn record_traversal(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        input: TraversalInput,
    ) -> ApiResult<CaseTraversal> {
        let TraversalInput { query, origin, to, max_hops, as_of } = input;
        let case = node_id(&case_id, "caseId")?;
        let (reached, truncated, target) = match (query, &to) {
            (TraversalQuery::Path, Some(to)) => {
                let (a, b) = (node_id(&origin, "origin")?, node_id(to, "to")?);
                let p = shortest_path(ctx, &a, &b, max_hops, as_of).await?;
                (p.map(|p| p.len() as u64).unwrap_or(0), false, Some(b))
            }
            (TraversalQuery::Path, None) | (_, Some(_)) => {
                return Err(ApiError::bad_input("to", "a PATH needs `to`; other walks take none"));
            }
            (TraversalQuery::BlastRadius | TraversalQuery::WhoCanReach, None) => {
                let (tables, direction): (&[gm::Table], _) = if query == TraversalQuery::BlastRadius {
                    (&BLAST_ORIGINS, Direction::Forward)
                } else {
                    (&REACH_TARGETS, Direction::Reverse)
                };
                let r = reach(ctx, &origin, "origin", tables, direction, max_hops, as_of).await?;
                (r.traversal.totals.nodes, r.traversal.truncated, None)
            }
        };
        let walk = Walk { query, origin: node_id(&origin, "origin")?, target, max_hops, as_of };
        record(ctx, &case, walk, reached, truncated).await
    }

    /// Take the blast radius of an NHI or secret now and keep it on a case as
    /// GRAPH_SNAPSHOT evidence (canonical JSON, with its SHA-256). The traversal is
    /// recorded on the case as well.
    #[graphql(guard = "RoleGuard(WORK_CASES)")]
    async fn snapshot_blast_radius(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        from: ID,
        #[graphql(default = 3)] max_hops: u32,
    ) -> ApiResult<Evidence> {
        let case = node_id(&case_id, "caseId")?;
        let r = reach(ctx, &from, "from", &BLAST_ORIGINS, Direction::Forward, max_hops, None).await?;
        let walk = Walk {
            query: TraversalQuery::BlastRadius,
            origin: node_id(&from, "from")?,
            target: None,
            max_hops,
            as_of: None,
        };
        record(ctx, &case, walk, r.traversal.totals.nodes, r.traversal.truncated).await?;
        let reached: Vec<serde_json::Value> = r
            .traversal
            .reached
            .iter()
            .map(|n| {
                serde_json::json!({
                    "node": n.node.to_string(),
                    "hops": n.hops,
                    "max_privilege": n.max_privilege.map(|p| p.as_str()),
                    "path": n.path.iter().map(|s| s.edge.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let snapshot = serde_json::json!({
            "origin": from.as_str(),
            "max_hops": r.max_hops,
            "taken_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "truncated": r.traversal.truncated,
            "reached": reached,
        });
        let new = gm::NewEvidence {
            kind: gm::EvidenceKind::GraphSnapshot,
            content: gm::EvidenceContent::parse(&gm::canonical::encode(&snapshot))?,
            source: gm::Label::parse("nhigov blast radius")?,
            collected_at: None,
            supersedes: None,
            supersede_reason: None,
            refs: vec![],
        };
        let e =
            ctx.data::<Store>()?.attach_evidence(principal(ctx)?.id(), &case, &new).await.map_err(ApiError::from)?;
        Ok(Evidence(e))
    }
}
