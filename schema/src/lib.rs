//! nhigov's GraphQL schema.
//!
//! One folder per area (`inventory/`, `cases/`, `decisions/`, `governance/`, `graph/`), each with
//! its query, mutation, types, inputs and loaders; the roots below merge them. The
//! schema is built once with its long-lived dependencies ([`Deps`]); the server adds the
//! authenticated [`Principal`] to each request.
//!
//! Errors leave through [`error::ApiError`] with a stable `extensions.code`.

pub mod boundary;
pub mod cases;
pub mod compliance;
pub mod decisions;
pub mod enums;
pub mod error;
pub mod events;
pub mod governance;
pub mod graph;
pub mod inventory;
pub mod limits;
pub mod node;
pub mod principal;
pub mod records;
pub mod relay;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, Schema};
use graph_model::store::Store;

pub use error::{ApiError, ApiResult};
pub use events::EventBus;
pub use limits::QueryLimits;
pub use principal::Principal;

/// The query root: every area's queries.
#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    inventory::InventoryQuery,
    cases::CaseQuery,
    decisions::DecisionQuery,
    governance::GovernanceQuery,
    graph::GraphQuery,
    compliance::ComplianceQuery,
    compliance::CampaignQuery,
    compliance::WorkQuery,
);

/// The mutation root.
#[derive(MergedObject, Default)]
pub struct Mutation(
    inventory::InventoryMutation,
    cases::CaseMutation,
    decisions::DecisionMutation,
    governance::GovernanceMutation,
    graph::GraphMutation,
    compliance::ComplianceMutation,
    compliance::CampaignMutation,
);

pub type NhigovSchema = Schema<Query, Mutation, events::Subscription>;

/// What the schema needs for its whole life.
#[derive(Clone)]
pub struct Deps {
    pub store: Store,
    pub events: EventBus,
    pub limits: QueryLimits,
    /// How long a case of each severity may stay open.
    pub sla: graph_model::SlaHours,
    /// Hop and node caps of traversals.
    pub graph: graph::GraphLimits,
    /// How long each batch loader gathers keys before it queries: [`BATCH_WINDOW`]
    /// unless a caller has reason to choose otherwise.
    pub batch_window: std::time::Duration,
}

/// How long a batch loader waits for more keys after the first. Resolving one level of a
/// page of 100 nodes takes longer than async-graphql's default of 1 ms in a debug build,
/// which would split a level into several queries.
pub const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(3);

/// Runs a loader's batch on its own task, inside the span of the resolver that started
/// it, so its database round trips belong to the request's trace.
fn spawn_in_span(batch: futures::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    use tracing::Instrument;
    tokio::spawn(batch.in_current_span())
}

/// Build the schema over its dependencies.
pub fn build_schema(deps: Deps) -> NhigovSchema {
    let limits = deps.limits;
    let window = deps.batch_window;
    Schema::build(Query::default(), Mutation::default(), events::Subscription)
        .data(DataLoader::new(inventory::loaders::NodeLoader(deps.store.clone()), spawn_in_span).delay(window))
        .data(DataLoader::new(inventory::loaders::EdgeLoader(deps.store.clone()), spawn_in_span).delay(window))
        .data(DataLoader::new(cases::loaders::RecordLoader(deps.store.clone()), spawn_in_span).delay(window))
        .data(DataLoader::new(cases::loaders::PartLoader(deps.store.clone()), spawn_in_span).delay(window))
        .data(deps.sla)
        .data(deps.graph)
        .data(deps.store)
        .data(deps.events)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(8)
        .extension(limits::Limits(limits))
        .extension(boundary::Boundary)
        .finish()
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), events::Subscription).finish().sdl()
}
