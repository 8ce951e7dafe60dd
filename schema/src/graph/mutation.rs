//! Graph snapshots kept as case evidence.

use async_graphql::{Context, ID, Object};
use graph_model as gm;
use graph_model::graph::Direction;
use graph_model::store::Store;

use super::query::reach;
use crate::cases::mutation::node_id;
use crate::cases::types::Evidence;
use crate::error::{ApiError, ApiResult};
use crate::principal::{RoleGuard, WORK_CASES, principal};

#[derive(Default)]
pub struct GraphMutation;

#[Object]
impl GraphMutation {
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
        let tables = [gm::Table::Nhi, gm::Table::Secret];
        let r = reach(ctx, &from, "from", &tables, Direction::Forward, max_hops, None, Some(&case_id)).await?;
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
