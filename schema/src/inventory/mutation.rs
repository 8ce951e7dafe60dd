//! Inventory mutations: create nodes and change what describes them, import a whole
//! document. Each is one transaction, and each publishes what it changed. Changes to
//! governed facts (roles, activity, status, criticality, access, ownership) are in
//! `governance`.

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::Utc;
use graph_model::inventory::{Inventory, NodeSpec};
use graph_model::store::Store;
use graph_model::{InventoryNode, NodeId, Table};

use super::inputs::*;
use super::types::*;
use crate::enums::Environment;
use crate::error::{ApiError, ApiResult};
use crate::events::{ChangeAction, EventBus};
use crate::principal::{MANAGE_PEOPLE, RoleGuard, WRITE_INVENTORY, principal};

#[derive(Default)]
pub struct InventoryMutation;

/// What `importInventory` wrote.
#[derive(SimpleObject)]
pub struct ImportResult {
    /// Nodes created.
    pub nodes: u32,
    /// Nodes already stored (matched by e-mail, fingerprint, provider and external id,
    /// or name) and refreshed with what the document says of them.
    pub nodes_updated: u32,
    /// Edges opened, closed history included.
    pub edges: u32,
    /// Open edges the document holds as they are.
    pub edges_kept: u32,
    /// Open edges closed: replaced by the document's with other attributes, or, in a
    /// complete run, edges of its `source` it no longer holds.
    pub edges_closed: u32,
    /// The id each node `ref` was stored under.
    pub ids: Vec<ImportedId>,
    /// What an OpenGraph import left out, and why (always empty for `importInventory`).
    pub skipped: Vec<String>,
    /// NHIs holding access this document's source reported and no decision granted
    /// (each raises or counts again its `ungoverned_access` alert, once the chain has
    /// begun). See `ungovernedAccess` and `adoptBaseline`.
    pub ungoverned_nhis: u32,
    /// The document's source was stale when it arrived (see `feeds`): it was written,
    /// and the automation its data drives waits for the source's next run.
    pub source_stale: bool,
    /// Open edges this complete run no longer holds, left open because its source was
    /// stale; its next complete run closes those it still does not hold.
    pub edges_absent_paused: u32,
    /// People the document reports gone who hold ADMIN, APPROVER or AUDITOR: a feed does
    /// not remove the people who govern, so they stay active until an admin deactivates
    /// them with `updatePerson`. By e-mail.
    pub leavers_held: Vec<String>,
}

/// A document ref and the id it was stored under.
#[derive(SimpleObject)]
pub struct ImportedId {
    #[graphql(name = "ref")]
    pub reference: String,
    pub id: ID,
}

async fn create(ctx: &Context<'_>, spec: NodeSpec) -> ApiResult<InventoryNode> {
    let store = ctx.data::<Store>()?;
    let node = store.create_node(&spec).await.map_err(ApiError::from)?;
    ctx.data::<EventBus>()?.inventory_changed(ChangeAction::Created, Some(node.id().to_string()));
    Ok(node)
}

fn changed(ctx: &Context<'_>, node: &InventoryNode) -> ApiResult<()> {
    ctx.data::<EventBus>()?.inventory_changed(ChangeAction::Updated, Some(node.id().to_string()));
    Ok(())
}

fn id_of(id: &ID, table: Table) -> Result<NodeId, ApiError> {
    Ok(node_id(id, "id", &[table])?)
}

macro_rules! expect {
    ($node:expr, $variant:ident) => {
        match $node {
            InventoryNode::$variant(x) => Ok($variant(x)),
            other => Err(ApiError::internal(format!("expected a {}, got {}", stringify!($variant), other.id()))),
        }
    };
}

#[Object]
impl InventoryMutation {
    /// Add a person (admin).
    #[graphql(guard = "RoleGuard(MANAGE_PEOPLE)")]
    async fn create_person(&self, ctx: &Context<'_>, input: CreatePersonInput) -> ApiResult<Person> {
        let node = create(ctx, NodeSpec::Person(input.parse().map_err(ApiError::from)?)).await?;
        Ok(expect!(node, Person)?)
    }

    /// Add a team (admin).
    #[graphql(guard = "RoleGuard(MANAGE_PEOPLE)")]
    async fn create_team(&self, ctx: &Context<'_>, input: CreateTeamInput) -> ApiResult<Team> {
        let node = create(ctx, NodeSpec::Team(input.parse().map_err(ApiError::from)?)).await?;
        Ok(expect!(node, Team)?)
    }

    /// Change a team (admin).
    #[graphql(guard = "RoleGuard(MANAGE_PEOPLE)")]
    async fn update_team(&self, ctx: &Context<'_>, id: ID, input: UpdateTeamInput) -> ApiResult<Team> {
        let id = id_of(&id, Table::Team)?;
        let patch = input.parse().map_err(ApiError::from)?;
        let node = ctx.data::<Store>()?.update_team(&id, &patch).await.map_err(ApiError::from)?;
        changed(ctx, &node)?;
        Ok(expect!(node, Team)?)
    }

    /// Record a non-human identity.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn create_nhi(&self, ctx: &Context<'_>, input: CreateNhiInput) -> ApiResult<Nhi> {
        let node = create(ctx, NodeSpec::Nhi(input.parse().map_err(ApiError::from)?)).await?;
        Ok(expect!(node, Nhi)?)
    }

    /// Record a secret's metadata (its fingerprint, never its value).
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn create_secret(&self, ctx: &Context<'_>, input: CreateSecretInput) -> ApiResult<Secret> {
        let node = create(ctx, NodeSpec::Secret(input.parse().map_err(ApiError::from)?)).await?;
        Ok(expect!(node, Secret)?)
    }

    /// Change a secret's metadata, e.g. after a rotation.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn update_secret(&self, ctx: &Context<'_>, id: ID, input: UpdateSecretInput) -> ApiResult<Secret> {
        let id = id_of(&id, Table::Secret)?;
        let patch = input.parse().map_err(ApiError::from)?;
        let store = ctx.data::<Store>()?;
        let node = store.update_secret(&id, &patch).await.map_err(ApiError::from)?;
        changed(ctx, &node)?;
        if patch.last_rotated_at.is_some() {
            observe_rotations(store).await;
        }
        Ok(expect!(node, Secret)?)
    }

    /// Record a system.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn create_system(&self, ctx: &Context<'_>, input: CreateSystemInput) -> ApiResult<System> {
        let node = create(ctx, NodeSpec::System(input.parse().map_err(ApiError::from)?)).await?;
        Ok(expect!(node, System)?)
    }

    /// Import a document of nodes and edges (the format of `nhigov import`), all or
    /// nothing, recorded in the decision chain as a run (a decision when it starts, one
    /// when it completes or fails). Nodes already stored are matched by natural key and refreshed; open
    /// edges it holds are kept; with `"source"` and `"complete": true`, that source's
    /// open edges it no longer holds are closed (a partial run closes nothing). Faults
    /// are listed in `extensions.items`, each naming its item and field.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn import_inventory(&self, ctx: &Context<'_>, document: Json<serde_json::Value>) -> ApiResult<ImportResult> {
        let inv = Inventory::parse(&document.0, Utc::now()).map_err(ApiError::BadDocument)?;
        let store = ctx.data::<Store>()?;
        let digest = graph_model::domain::sha256_hex(graph_model::domain::canonical::encode(&document.0).as_bytes());
        let summary = store.import_recorded(principal(ctx)?.id(), &inv, &digest).await.map_err(ApiError::from)?;
        ctx.data::<EventBus>()?.inventory_changed(ChangeAction::Imported, None);
        let flagged = flag_ungoverned(store, &inv, &summary).await;
        observe_rotations(store).await;
        Ok(import_result(summary, vec![], flagged))
    }

    /// Import a BloodHound OpenGraph document (nodes with kinds and properties, edges
    /// matched by id or name), all or nothing. Nodes and edges that map to nothing in the
    /// inventory are listed in `skipped` with why; the rest is checked as
    /// `importInventory` checks a document. `environment` applies to NHIs and systems
    /// whose properties name none.
    #[graphql(guard = "RoleGuard(WRITE_INVENTORY)")]
    async fn import_open_graph(
        &self,
        ctx: &Context<'_>,
        document: Json<serde_json::Value>,
        #[graphql(default_with = "Environment::Production")] environment: Environment,
    ) -> ApiResult<ImportResult> {
        let env: graph_model::Environment = environment.into();
        let converted = graph_model::opengraph::convert(&document.0, env.as_str())
            .map_err(|m| ApiError::BadInput { field: "document".into(), message: m })?;
        let inv = Inventory::parse(&converted.document, Utc::now()).map_err(ApiError::BadDocument)?;
        let store = ctx.data::<Store>()?;
        let digest = graph_model::domain::sha256_hex(graph_model::domain::canonical::encode(&document.0).as_bytes());
        let summary = store.import_recorded(principal(ctx)?.id(), &inv, &digest).await.map_err(ApiError::from)?;
        ctx.data::<EventBus>()?.inventory_changed(ChangeAction::Imported, None);
        let flagged = flag_ungoverned(store, &inv, &summary).await;
        Ok(import_result(summary, converted.skipped, flagged))
    }
}

/// Close the approved rotations a write has shown done. The write has committed: a
/// failure here is logged, and the server's sweep closes them.
async fn observe_rotations(store: &Store) {
    if let Err(e) = store.observe_rotations().await {
        tracing::warn!(error = %e, "observing rotations failed");
    }
}

/// Raise the alerts for the access the document's source reported and nobody
/// approved. The import has committed: a failure here is logged, and the next run of
/// the source raises them. A source that was stale raises none: its next run, fresh,
/// does.
async fn flag_ungoverned(store: &Store, inv: &Inventory, summary: &graph_model::store::ImportSummary) -> u32 {
    if summary.source_stale {
        return 0;
    }
    let source = inv.source.as_ref().map(|s| s.as_str());
    match store.raise_ungoverned_alerts(source).await {
        Ok(n) => n as u32,
        Err(e) => {
            tracing::warn!(error = %e, "raising ungoverned-access alerts failed");
            0
        }
    }
}

fn import_result(summary: graph_model::store::ImportSummary, skipped: Vec<String>, flagged: u32) -> ImportResult {
    ImportResult {
        nodes: summary.nodes as u32,
        nodes_updated: summary.nodes_updated as u32,
        edges: summary.edges as u32,
        edges_kept: summary.edges_kept as u32,
        edges_closed: summary.edges_closed as u32,
        ids: summary.ids.into_iter().map(|(reference, id)| ImportedId { reference, id: ID(id.to_string()) }).collect(),
        skipped,
        ungoverned_nhis: flagged,
        source_stale: summary.source_stale,
        edges_absent_paused: summary.edges_absent_paused as u32,
        leavers_held: summary.leavers_held,
    }
}
