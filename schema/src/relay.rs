//! Relay-style connections: opaque cursors over node ids, paging forward with
//! `first`/`after` or backward with `last`/`before`, and `totalCount` on every list.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_model::NodeId;
use graph_model::store::{Page, PageRequest};

use crate::error::ApiError;

/// The page size when `first` is not given.
pub const DEFAULT_PAGE: i32 = 20;
/// The largest page a client may ask for.
pub const MAX_PAGE: i32 = 100;

/// A position in a list: the id of the last node seen, base64-encoded so clients treat
/// it as opaque.
pub struct NodeCursor(pub NodeId);

impl CursorType for NodeCursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || "not a cursor from this API";
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        NodeId::parse(&text).map(NodeCursor).map_err(|_| bad())
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

pub type List<N> = Connection<NodeCursor, N, ListTotals>;

/// The paging arguments of a connection field, as the client sent them.
pub struct Paging {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// Check the paging arguments and turn them into a page request, which counts the whole
/// list only when the operation selects `totalCount`.
pub fn page_request(ctx: &async_graphql::Context<'_>, paging: Paging) -> Result<PageRequest, ApiError> {
    let mut page = page_bounds(paging)?;
    page.count = ctx.look_ahead().field("totalCount").exists();
    Ok(page)
}

fn cursor(argument: &str, value: Option<String>) -> Result<Option<NodeId>, ApiError> {
    value
        .map(|a| NodeCursor::decode_cursor(&a))
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
            ..Default::default()
        });
    }
    Ok(PageRequest { first: size("first", p.first)?, after: cursor("after", p.after)?, ..Default::default() })
}

/// Build a connection from a store page.
pub fn connection<T, N: OutputType>(page: Page<T>, id: impl Fn(&T) -> NodeId, wrap: impl Fn(T) -> N) -> List<N> {
    let mut conn =
        Connection::with_additional_fields(page.has_previous, page.has_next, ListTotals { total_count: page.total });
    conn.edges = page.items.into_iter().map(|item| Edge::new(NodeCursor(id(&item)), wrap(item))).collect();
    conn
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_model::Table;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let id = NodeId::generate(Table::Nhi);
        let c = NodeCursor(id.clone()).encode_cursor();
        assert_eq!(NodeCursor::decode_cursor(&c).unwrap().0, id);
        assert!(NodeCursor::decode_cursor("not-a-cursor!").is_err());
        assert!(NodeCursor::decode_cursor(&URL_SAFE_NO_PAD.encode("hello")).is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        let forward = |first| Paging { first, after: None, last: None, before: None };
        assert_eq!(page_bounds(forward(None)).unwrap().first, DEFAULT_PAGE as usize);
        assert!(page_bounds(forward(Some(MAX_PAGE + 1))).is_err());
        assert!(page_bounds(forward(Some(-1))).is_err());
        let back = page_bounds(Paging { first: None, after: None, last: Some(5), before: None }).unwrap();
        assert!(back.backward && back.first == 5);
        assert!(page_bounds(Paging { first: Some(5), after: None, last: Some(5), before: None }).is_err());
    }
}
