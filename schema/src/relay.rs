//! Relay-style connections: opaque cursors over node ids, forward paging with
//! `first`/`after`, and `totalCount` on every list.

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

/// Check `first` and `after` and turn them into a page request, which counts the whole
/// list only when the operation selects `totalCount`.
pub fn page_request(
    ctx: &async_graphql::Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<PageRequest, ApiError> {
    let mut page = page_bounds(first, after)?;
    page.count = ctx.look_ahead().field("totalCount").exists();
    Ok(page)
}

fn page_bounds(first: Option<i32>, after: Option<String>) -> Result<PageRequest, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(ApiError::bad_input("first", format!("must be between 0 and {MAX_PAGE}")));
    }
    let after = after
        .map(|a| NodeCursor::decode_cursor(&a))
        .transpose()
        .map_err(|m| ApiError::bad_input("after", m))?
        .map(|c| c.0);
    Ok(PageRequest { first: first as usize, after, count: false })
}

/// Build a connection from a store page.
pub fn connection<T, N: OutputType>(
    page: Page<T>,
    had_cursor: bool,
    id: impl Fn(&T) -> NodeId,
    wrap: impl Fn(T) -> N,
) -> List<N> {
    let mut conn =
        Connection::with_additional_fields(had_cursor, page.has_next, ListTotals { total_count: page.total });
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
        assert_eq!(page_bounds(None, None).unwrap().first, DEFAULT_PAGE as usize);
        assert!(page_bounds(Some(MAX_PAGE + 1), None).is_err());
        assert!(page_bounds(Some(-1), None).is_err());
    }
}
