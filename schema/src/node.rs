//! Relay's `node(id:)` for every object with a global id, each under the role rules of
//! its own query; the name-prefix `search` across inventory kinds; and `Relation`, an
//! edge whose ends can be any node. Above every area: it names their types, and none of
//! them names it.

use async_graphql::{Context, ID, Interface, Object};
use chrono::{DateTime, Utc};
use graph_model as gm;
use graph_model::store::Store;
use graph_model::{InventoryNode, NodeId, Role, Table};

use crate::cases::types::{Alert, Case, Evidence, Task};
use crate::compliance::campaigns::{Campaign, ReviewItem};
use crate::compliance::types::{Control, Finding};
use crate::decisions::types::{Decision, Exception, Policy, Request};
use crate::enums::*;
use crate::error::{ApiError, ApiResult};
use crate::inventory::inputs::{SearchKind, lookup_text};
use crate::inventory::loaders::nodes;
use crate::inventory::types::{Nhi, Person, Secret, System, Team};
use crate::principal::{READ_CASES, READ_EVIDENCE, READ_INVENTORY, RoleGuard, principal};

/// Any object with a global id (`table:key`); fetch one with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The global id, `table:key`."))]
// A value of a response, made once per node answered and dropped with it: the size of the
// largest record costs nothing worth an allocation per node.
#[allow(clippy::large_enum_variant)]
pub enum Node {
    Person(Person),
    Team(Team),
    Nhi(Nhi),
    Secret(Secret),
    System(System),
    Alert(Alert),
    Case(Case),
    Task(Task),
    Evidence(Evidence),
    Request(Request),
    Exception(Exception),
    Policy(Policy),
    Decision(Decision),
    Control(Control),
    Finding(Finding),
    Campaign(Campaign),
    ReviewItem(ReviewItem),
}

impl From<InventoryNode> for Node {
    fn from(n: InventoryNode) -> Node {
        match n {
            InventoryNode::Person(p) => Node::Person(Person(p)),
            InventoryNode::Team(t) => Node::Team(Team(t)),
            InventoryNode::Nhi(n) => Node::Nhi(Nhi(n)),
            InventoryNode::Secret(s) => Node::Secret(Secret(s)),
            InventoryNode::System(s) => Node::System(System(s)),
        }
    }
}

/// Who may read a table's records: the roles of the query that lists them. `None` for
/// tables the API shows no object of.
pub fn readers(table: Table) -> Option<&'static [Role]> {
    Some(match table {
        Table::Person | Table::Team | Table::Nhi | Table::Secret | Table::System => READ_INVENTORY,
        Table::Alert
        | Table::Case
        | Table::Task
        | Table::Request
        | Table::Exception
        | Table::Policy
        | Table::Control
        | Table::Finding
        | Table::Campaign
        | Table::ReviewItem => READ_CASES,
        Table::Evidence | Table::Decision => READ_EVIDENCE,
        Table::Baseline | Table::ImportRun => return None,
    })
}

/// Every role that reads some kind of node.
const ANY_READER: &[Role] = READ_INVENTORY;

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id, under the role rules of its own query (a viewer
    /// gets an NHI or a case, not a decision); null when there is none.
    #[graphql(guard = "RoleGuard(ANY_READER)")]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Node>> {
        let id = NodeId::parse(id.as_str()).map_err(ApiError::from)?;
        let Some(roles) = readers(id.table()) else { return Ok(None) };
        if !principal(ctx)?.has_any(roles) {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::Forbidden(format!(
                "a {} needs one of the roles: {}",
                id.table().as_str(),
                names.join(", ")
            )));
        }
        fetch(ctx.data::<Store>()?, &id).await.map_err(ApiError::from)
    }

    /// Nodes whose name starts with `prefix`, in any case, for a search box: NHIs,
    /// secrets, systems, people and teams (or only `kinds`), by name, at most `first`
    /// (20 unless given, up to 100).
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        prefix: String,
        kinds: Option<Vec<SearchKind>>,
        first: Option<i32>,
    ) -> ApiResult<Vec<Node>> {
        let prefix = lookup_text("prefix", &prefix)?;
        let first = first.unwrap_or(20);
        if !(0..=100).contains(&first) {
            return Err(ApiError::bad_input("first", "must be between 0 and 100"));
        }
        let tables: Vec<Table> =
            kinds.unwrap_or_else(|| SearchKind::ALL.to_vec()).into_iter().map(SearchKind::table).collect();
        let found = ctx.data::<Store>()?.search_names(prefix, &tables, first as usize).await?;
        Ok(found.into_iter().map(Node::from).collect())
    }
}

/// The record `id` names, as its object.
async fn fetch(store: &Store, id: &NodeId) -> gm::store::Result<Option<Node>> {
    let one = std::slice::from_ref(id);
    Ok(match id.table() {
        Table::Person | Table::Team | Table::Nhi | Table::Secret | Table::System => {
            store.node(id).await?.map(Node::from)
        }
        Table::Alert => store.alerts_by_id(one).await?.pop().map(|r| Node::Alert(Alert(r))),
        Table::Case => store.cases_by_id(one).await?.pop().map(|r| Node::Case(Case(r))),
        Table::Task => store.tasks_by_id(one).await?.pop().map(|r| Node::Task(Task(r))),
        Table::Evidence => store.evidence_by_id(one).await?.pop().map(|r| Node::Evidence(Evidence(r))),
        Table::Request => store.requests_by_id(one).await?.pop().map(|r| Node::Request(Request(r))),
        Table::Exception => store.exceptions_by_id(one).await?.pop().map(|r| Node::Exception(Exception(r))),
        Table::Policy => store.policies_by_id(one).await?.pop().map(|r| Node::Policy(Policy(r))),
        Table::Decision => store.decisions_by_id(one).await?.pop().map(|r| Node::Decision(Decision(r))),
        Table::Control => store.controls_by_id(one).await?.pop().map(|r| Node::Control(Control(r))),
        Table::Finding => store.findings_by_id(one).await?.pop().map(|r| Node::Finding(Finding(r))),
        Table::Campaign => store.campaigns_by_id(one).await?.pop().map(|r| Node::Campaign(Campaign(r))),
        Table::ReviewItem => store.review_items_by_id(one).await?.pop().map(|r| Node::ReviewItem(ReviewItem(r))),
        Table::Baseline | Table::ImportRun => None,
    })
}

/// An edge of the identity graph, open while `validTo` is empty.
pub struct Relation(pub gm::Edge);

#[Object]
impl Relation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> EdgeKind {
        self.0.kind().into()
    }
    async fn from(&self, ctx: &Context<'_>) -> ApiResult<Option<Node>> {
        Ok(nodes(ctx, [self.0.from.clone()]).await?.into_iter().next().map(Node::from))
    }
    async fn to(&self, ctx: &Context<'_>) -> ApiResult<Option<Node>> {
        Ok(nodes(ctx, [self.0.to.clone()]).await?.into_iter().next().map(Node::from))
    }
    async fn privilege(&self) -> Option<Privilege> {
        self.0.privilege.map(Into::into)
    }
    async fn mechanism(&self) -> Option<AssumeMechanism> {
        self.0.mechanism.map(Into::into)
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn valid_from(&self) -> DateTime<Utc> {
        self.0.valid_from
    }
    async fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.0.valid_to
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// For access, delegation, secrets held, ownership and membership: does a decision
    /// stand behind the edge (`grantedBy`)? False for one a feed reported and nobody
    /// approved; null for edges that carry no governed fact.
    async fn governed(&self) -> Option<bool> {
        self.0.governed()
    }
    /// The decision that stands behind the edge: the grant approved, the change
    /// applied, or the baseline adopted.
    async fn granted_by(&self) -> Option<ID> {
        self.0.granted_by.as_ref().map(|d| ID(d.to_string()))
    }
    /// The feed whose import opened the edge.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
}
