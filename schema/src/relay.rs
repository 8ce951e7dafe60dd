//! Relay-style connections: opaque cursors, paging forward with `first`/`after` or
//! backward with `last`/`before`, in the order `orderBy` names (each list's own fields,
//! read from an index), and `totalCount` when asked for.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Enum, InputObject, InputType, OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_model::NodeId;
use graph_model::store::{Cursor, Order, OrderBy, Page, PageRequest};

use crate::error::ApiError;

/// The page size when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;
/// The largest page a client may ask for.
pub const MAX_PAGE: i32 = 100;

/// A position in a list (the order it was read in and the sort key there),
/// base64-encoded so clients treat it as opaque.
pub struct PageCursor(pub Cursor);

impl CursorType for PageCursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || "not a cursor from this API";
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        Cursor::parse(&text).map(PageCursor).ok_or_else(bad)
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_string())
    }
}

/// Fields every connection carries besides its edges.
#[derive(SimpleObject)]
pub struct ListTotals {
    /// How many nodes match the filter, across all pages.
    pub total_count: u64,
}

pub type List<N> = Connection<PageCursor, N, ListTotals>;

/// Which way a list runs.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum OrderDirection {
    /// Smallest first: A to Z, oldest, low severity, soonest due.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// How a list is sorted: a field of its own and a direction. Each list offers the
/// fields an index answers, so a page in any order costs the same as in the default one.
#[derive(InputObject)]
#[graphql(
    concrete(name = "NhiOrder", params(NhiOrderField)),
    concrete(name = "InventoryOrder", params(InventoryOrderField)),
    concrete(name = "AlertOrder", params(AlertOrderField)),
    concrete(name = "CaseOrder", params(CaseOrderField)),
    concrete(name = "ExceptionOrder", params(ExceptionOrderField)),
    concrete(name = "CreatedOrder", params(CreatedOrderField))
)]
pub struct ListOrder<F: InputType> {
    pub field: F,
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl<F: InputType + Into<OrderBy>> ListOrder<F> {
    /// The store's order for an `orderBy` argument; id order when it is absent.
    pub fn or_default(order: Option<ListOrder<F>>) -> Order {
        order.map_or_else(Order::default, |o| Order {
            by: o.field.into(),
            descending: o.direction == OrderDirection::Desc,
        })
    }
}

/// Declares the fields a list sorts by, each mapped to the store's order.
macro_rules! order_fields {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $by:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Copy, Clone, Eq, PartialEq)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl From<$name> for OrderBy {
            fn from(f: $name) -> OrderBy {
                match f { $($name::$variant => OrderBy::$by),+ }
            }
        }
    };
}

order_fields!(
    /// What a list of NHIs sorts by.
    NhiOrderField {
        /// The name, whatever its case.
        Name => Name,
        /// When it was created (or first imported).
        Created => Created,
        /// When it was last used; never used comes first.
        LastUsed => LastUsed,
    }
);
order_fields!(
    /// What a list of people, teams, secrets or systems sorts by.
    InventoryOrderField {
        /// The name, whatever its case.
        Name => Name,
        /// When it was created (or first imported).
        Created => Created,
    }
);
order_fields!(
    /// What a list of alerts sorts by.
    AlertOrderField {
        /// When the alert was first recorded.
        Created => Created,
        /// Low to critical.
        Severity => Severity,
    }
);
order_fields!(
    /// What a list of cases sorts by.
    CaseOrderField {
        /// When the case was opened.
        Created => Created,
        /// Low to critical.
        Severity => Severity,
        /// The due date.
        Due => Due,
    }
);
order_fields!(
    /// What a list of exceptions sorts by.
    ExceptionOrderField {
        /// When the exception was granted.
        Created => Created,
        /// The date it is due for review.
        ReviewDue => Due,
    }
);
order_fields!(
    /// What a list sorted only by time sorts by.
    CreatedOrderField {
        /// When the record was created.
        Created => Created,
    }
);

pub type NhiOrder = ListOrder<NhiOrderField>;
pub type InventoryOrder = ListOrder<InventoryOrderField>;
pub type AlertOrder = ListOrder<AlertOrderField>;
pub type CaseOrder = ListOrder<CaseOrderField>;
pub type ExceptionOrder = ListOrder<ExceptionOrderField>;
pub type CreatedOrder = ListOrder<CreatedOrderField>;

/// The paging arguments of a connection field, as the client sent them.
pub struct Paging {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    /// The list's order (`orderBy`); by id when not given.
    pub order: Order,
}

/// Check the paging arguments and turn them into a page request, which counts the whole
/// list only when the operation selects `totalCount`.
pub fn page_request(ctx: &async_graphql::Context<'_>, paging: Paging) -> Result<PageRequest, ApiError> {
    let mut page = page_bounds(paging)?;
    page.count = ctx.look_ahead().field("totalCount").exists();
    Ok(page)
}

fn cursor(argument: &str, value: Option<String>) -> Result<Option<Cursor>, ApiError> {
    value
        .map(|a| PageCursor::decode_cursor(&a))
        .transpose()
        .map_err(|m| ApiError::bad_input(argument, m))
        .map(|c| c.map(|c| c.0))
}

fn size(argument: &str, n: Option<i32>) -> Result<usize, ApiError> {
    let n = n.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&n) {
        return Err(ApiError::bad_input(argument, format!("must be between 0 and {MAX_PAGE}")));
    }
    Ok(n as usize)
}

/// Forward (`first`, `after`) or backward (`last`, `before`); the two directions are
/// not mixed in one request.
fn page_bounds(p: Paging) -> Result<PageRequest, ApiError> {
    let backward = p.last.is_some() || p.before.is_some();
    if backward && (p.first.is_some() || p.after.is_some()) {
        let argument = if p.last.is_some() { "last" } else { "before" };
        return Err(ApiError::bad_input(argument, "page forward (first, after) or backward (last, before), not both"));
    }
    if backward {
        return Ok(PageRequest {
            first: size("last", p.last)?,
            before: cursor("before", p.before)?,
            backward: true,
            order: p.order,
            ..Default::default()
        });
    }
    Ok(PageRequest {
        first: size("first", p.first)?,
        after: cursor("after", p.after)?,
        order: p.order,
        ..Default::default()
    })
}

/// One page of a list held in memory (the edges at one node), in the order of each
/// item's node id, with cursors by id; `totalCount` is the whole list.
pub fn slice<T>(mut items: Vec<T>, id: impl Fn(&T) -> &NodeId, page: &PageRequest) -> Result<Page<T>, ApiError> {
    let bound = |c: &Option<Cursor>, argument: &str| {
        c.as_ref()
            .map(|c| c.node_id().ok_or_else(|| ApiError::bad_input(argument, "the cursor belongs to another list")))
            .transpose()
    };
    let (after, before) = (bound(&page.after, "after")?, bound(&page.before, "before")?);
    let total = items.len() as u64;
    items.sort_by(|a, b| id(a).cmp(id(b)));
    items.retain(|x| after.as_ref().is_none_or(|a| id(x) > a) && before.as_ref().is_none_or(|b| id(x) < b));
    let (items, has_next, has_previous) = if page.backward {
        let start = items.len().saturating_sub(page.first);
        (items.split_off(start), page.before.is_some(), start > 0)
    } else {
        let more = items.len() > page.first;
        items.truncate(page.first);
        (items, more, page.after.is_some())
    };
    let cursors = items.iter().map(|x| Cursor::from(id(x))).collect();
    Ok(Page { items, cursors, has_next, has_previous, total })
}

/// A page with each item turned into another, those `f` turns into nothing left out
/// (with their cursors).
pub fn filter_page<T, N>(page: Page<T>, mut f: impl FnMut(T) -> Option<N>) -> Page<N> {
    let (items, cursors) = page.items.into_iter().zip(page.cursors).filter_map(|(t, c)| f(t).map(|n| (n, c))).unzip();
    Page { items, cursors, has_next: page.has_next, has_previous: page.has_previous, total: page.total }
}

/// Build a connection from a store page.
pub fn connection<T, N: OutputType>(page: Page<T>, wrap: impl Fn(T) -> N) -> List<N> {
    let mut conn =
        Connection::with_additional_fields(page.has_previous, page.has_next, ListTotals { total_count: page.total });
    conn.edges =
        page.items.into_iter().zip(page.cursors).map(|(item, c)| Edge::new(PageCursor(c), wrap(item))).collect();
    conn
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_model::Table;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let id = NodeId::generate(Table::Nhi);
        let c = PageCursor(Cursor::from(&id)).encode_cursor();
        assert_eq!(PageCursor::decode_cursor(&c).unwrap().0, Cursor::from(&id));
        assert!(PageCursor::decode_cursor("not-a-cursor!").is_err());
        assert!(PageCursor::decode_cursor(&URL_SAFE_NO_PAD.encode("hello")).is_err());
    }

    #[test]
    fn a_list_in_memory_pages_by_id_both_ways() {
        let ids: Vec<NodeId> = (0..5).map(|_| NodeId::generate(Table::Nhi)).collect();
        let mut shuffled = ids.clone();
        shuffled.reverse();
        let forward =
            |after: Option<&NodeId>| PageRequest { first: 2, after: after.map(Cursor::from), ..Default::default() };
        let p = slice(shuffled.clone(), |i| i, &forward(None)).unwrap();
        assert_eq!((p.items.as_slice(), p.has_next, p.has_previous, p.total), (&ids[..2], true, false, 5));
        let p = slice(shuffled.clone(), |i| i, &forward(Some(&ids[3]))).unwrap();
        assert_eq!((p.items.as_slice(), p.has_next, p.has_previous), (&ids[4..], false, true));
        let back = PageRequest { first: 2, before: Some(Cursor::from(&ids[3])), backward: true, ..Default::default() };
        let p = slice(shuffled, |i| i, &back).unwrap();
        assert_eq!((p.items.as_slice(), p.has_next, p.has_previous), (&ids[1..3], true, true));
        assert_eq!(p.cursors, vec![Cursor::from(&ids[1]), Cursor::from(&ids[2])]);
    }

    #[test]
    fn page_sizes_are_bounded() {
        let forward = |first| Paging { first, after: None, last: None, before: None, order: Order::default() };
        assert_eq!(page_bounds(forward(None)).unwrap().first, DEFAULT_PAGE as usize);
        assert!(page_bounds(forward(Some(MAX_PAGE + 1))).is_err());
        assert!(page_bounds(forward(Some(-1))).is_err());
        let back =
            page_bounds(Paging { first: None, after: None, last: Some(5), before: None, order: Order::default() })
                .unwrap();
        assert!(back.backward && back.first == 5);
        assert!(
            page_bounds(Paging { first: Some(5), after: None, last: Some(5), before: None, order: Order::default() })
                .is_err()
        );
    }
}
