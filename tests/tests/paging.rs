//! Relay paging both ways on the demo: walking a list backward with `last`/`before`
//! meets every node that walking it forward with `first`/`after` meets, in the same
//! order, with `hasPreviousPage`/`hasNextPage` saying where each page sits; on a table
//! paged by its key (NHIs) and on an append-only one paged by id (decisions).

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

async fn walk(s: &TestServer, token: &str, field: &str, backward: bool) -> Vec<String> {
    let (size, cursor_arg, cursor_field) =
        if backward { ("last", "before", "startCursor") } else { ("first", "after", "endCursor") };
    let q = format!(
        "query($c: String) {{ {field}({size}: 7, {cursor_arg}: $c) {{
            edges {{ node {{ id }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    );
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let d = s.ok(token, &q, json!({ "c": cursor })).await;
        let list = &d[field];
        let ids: Vec<String> =
            list["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect();
        let info = &list["pageInfo"];
        let (more, came_from) = if backward {
            (info["hasPreviousPage"].as_bool().unwrap(), info["hasNextPage"].as_bool().unwrap())
        } else {
            (info["hasNextPage"].as_bool().unwrap(), info["hasPreviousPage"].as_bool().unwrap())
        };
        assert_eq!(came_from, !pages.is_empty(), "{field}: a page after a cursor says items lie behind it: {info}");
        assert!(ids.len() <= 7);
        pages.push(ids);
        if !more {
            break;
        }
        cursor = info[cursor_field].clone();
        assert!(pages.len() < 100, "{field}: paging does not end");
    }
    if backward {
        pages.reverse();
    }
    pages.concat()
}

#[tokio::test]
async fn a_list_walked_backward_meets_what_it_meets_forward_in_the_same_order() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    for field in ["nhis", "decisions", "people"] {
        let forward = walk(&s, &admin, field, false).await;
        let backward = walk(&s, &admin, field, true).await;
        assert!(forward.len() > 7, "{field}: more than one page in the demo ({})", forward.len());
        assert_eq!(backward, forward, "{field}");
    }
    let body = s.gql(&admin, "{ nhis(first: 5, last: 5) { totalCount } }", json!({})).await.1;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = s.gql(&admin, "{ nhis(last: 101) { totalCount } }", json!({})).await.1;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}
