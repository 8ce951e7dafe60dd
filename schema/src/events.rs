//! Live updates: mutations publish what they changed on an in-process bus, and
//! subscriptions stream it to clients over `/graphql/ws`.
//!
//! The bus drops events for a subscriber that falls too far behind rather than slowing
//! the writers; such a subscriber sees a `LAGGED` event and should refetch.

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::broadcast;

use crate::principal::{READ_INVENTORY, RoleGuard};

/// What happened to the inventory.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Created,
    Updated,
    Related,
    Closed,
    Imported,
    /// This subscriber missed events; refetch what it shows.
    Lagged,
}

/// One change to the inventory.
#[derive(SimpleObject, Debug, Clone)]
pub struct InventoryEvent {
    pub action: ChangeAction,
    /// The node or edge changed; for an import, empty.
    pub id: Option<ID>,
    pub at: DateTime<Utc>,
}

/// The in-process event bus.
#[derive(Clone)]
pub struct EventBus {
    inventory: broadcast::Sender<InventoryEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { inventory: broadcast::channel(1024).0 }
    }
}

impl EventBus {
    pub fn inventory_changed(&self, action: ChangeAction, id: Option<String>) {
        // No subscriber is not an error.
        let _ = self.inventory.send(InventoryEvent { action, id: id.map(ID), at: Utc::now() });
    }
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every change to the inventory, as it commits.
    #[graphql(guard = "RoleGuard(READ_INVENTORY)")]
    async fn inventory_changed(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = InventoryEvent>> {
        let rx = ctx.data::<EventBus>()?.inventory.subscribe();
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((event, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Some((InventoryEvent { action: ChangeAction::Lagged, id: None, at: Utc::now() }, rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        }))
    }
}
