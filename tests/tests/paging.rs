//! Relay paging both ways on the demo: walking a list backward with `last`/`before`
//! meets every node that walking it forward with `first`/`after` meets, in the same
//! order, with `hasPreviousPage`/`hasNextPage` saying where each page sits; on a table
//! paged by its key (NHIs) and on an append-only one paged by id (decisions); and in
//! each order a list offers (`orderBy`), both directions, the order its fields say.

use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

async fn walk(s: &TestServer, token: &str, field: &str, backward: bool) -> Vec<String> {
    let nodes = walk_ordered(s, token, field, "", "id", backward).await;
    nodes.iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

/// Every node of a list, page by page (7 at a time) in `order` (an `orderBy` argument,
/// or none), forward or backward, each with the fields `select` names.
async fn walk_ordered(
    s: &TestServer,
    token: &str,
    field: &str,
    order: &str,
    select: &str,
    backward: bool,
) -> Vec<Value> {
    let (size, cursor_arg, cursor_field) =
        if backward { ("last", "before", "startCursor") } else { ("first", "after", "endCursor") };
    let order = if order.is_empty() { String::new() } else { format!(", orderBy: {order}") };
    let q = format!(
        "query($c: String) {{ {field}({size}: 7, {cursor_arg}: $c{order}) {{
            edges {{ node {{ {select} }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    );
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let d = s.ok(token, &q, json!({ "c": cursor })).await;
        let list = &d[field];
        let ids: Vec<Value> = list["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
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

/// A node's id key, the tie-breaker of every order.
fn key(node: &Value) -> String {
    node["id"].as_str().unwrap().rsplit(':').next().unwrap().to_owned()
}

fn text(node: &Value, field: &str) -> String {
    node[field].as_str().unwrap_or_default().to_owned()
}

/// What a list's order says about two of its nodes: a field compared as lowercased text,
/// as a time (to the microsecond, as sort keys hold it), or as a severity's rank; then
/// the id.
enum Sort {
    Text(&'static str),
    Time(&'static str),
    Rank(&'static str),
}

impl Sort {
    fn field(&self) -> &'static str {
        match self {
            Sort::Text(f) | Sort::Time(f) | Sort::Rank(f) => f,
        }
    }

    fn key(&self, node: &Value) -> (String, String) {
        let value = text(node, self.field());
        let value = match self {
            Sort::Text(_) => value.to_lowercase(),
            Sort::Time(_) => value
                .parse::<chrono::DateTime<chrono::Utc>>()
                .map(|t| format!("{:020}", t.timestamp_micros()))
                .unwrap_or_default(),
            Sort::Rank(_) => {
                ["LOW", "MEDIUM", "HIGH", "CRITICAL"].iter().position(|s| *s == value).unwrap().to_string()
            }
        };
        (value, key(node))
    }
}

#[tokio::test]
async fn each_order_a_list_offers_pages_both_ways_in_the_order_its_fields_say() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    let ines = s.token(nhigov::demo::DEMO_INVESTIGATOR);
    let d = s.ok(&admin, "{ nhis(first: 9) { edges { node { id } } } }", json!({})).await;
    for (i, severity) in
        ["LOW", "CRITICAL", "MEDIUM", "HIGH", "LOW", "HIGH", "CRITICAL", "MEDIUM", "LOW"].iter().enumerate()
    {
        let nhi = &d["nhis"]["edges"][i]["node"]["id"];
        s.ok(
            &ines,
            &format!("mutation($n: ID!) {{ openCase(input: {{ title: \"case {i}\", severity: {severity}, subjectIds: [$n] }}) {{ id }} }}"),
            json!({ "n": nhi }),
        )
        .await;
    }
    let cases = [
        ("nhis", "NAME", Sort::Text("name")),
        ("nhis", "LAST_USED", Sort::Time("lastUsedAt")),
        ("nhis", "CREATED", Sort::Time("createdAt")),
        ("people", "NAME", Sort::Text("name")),
        ("alerts", "SEVERITY", Sort::Rank("severity")),
        ("cases", "DUE", Sort::Time("dueAt")),
        ("cases", "SEVERITY", Sort::Rank("severity")),
    ];
    for (field, by, sort) in cases {
        let select = format!("id {}", sort.field());
        let select = select.as_str();
        let expect = |a: &Value, b: &Value| sort.key(a).cmp(&sort.key(b));
        let asc = format!("{{field: {by}}}");
        let forward = walk_ordered(&s, &admin, field, &asc, select, false).await;
        assert!(forward.len() > 1, "{field} by {by}: the demo has more than one ({})", forward.len());
        let mut sorted = forward.clone();
        sorted.sort_by(|a, b| expect(a, b));
        assert_eq!(forward, sorted, "{field} by {by}: the list is in the order of its fields");
        assert_eq!(walk_ordered(&s, &admin, field, &asc, select, true).await, forward, "{field} by {by} backward");
        let desc = format!("{{field: {by}, direction: DESC}}");
        let mut reversed = walk_ordered(&s, &admin, field, &desc, select, false).await;
        reversed.reverse();
        assert_eq!(reversed, forward, "{field} by {by} DESC is the same list the other way");
        let mut default = walk(&s, &admin, field, false).await;
        default.sort();
        let mut seen: Vec<String> = forward.iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
        seen.sort();
        assert_eq!(seen, default, "{field} by {by}: every node once");
    }

    // A cursor holds its order: one from a list by name does not page a list by creation.
    let d = s.ok(&admin, "{ nhis(first: 2, orderBy: {field: NAME}) { pageInfo { endCursor } } }", json!({})).await;
    let cursor = d["nhis"]["pageInfo"]["endCursor"].clone();
    for elsewhere in
        ["nhis(first: 2, after: $c, orderBy: {field: CREATED})", "people(first: 2, after: $c, orderBy: {field: NAME})"]
    {
        let q = format!("query($c: String) {{ {elsewhere} {{ totalCount }} }}");
        let body = s.gql(&admin, &q, json!({ "c": cursor })).await.1;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{elsewhere}: {body}");
    }
}

/// A relation list (a team's members, what it owns, a system's accessors) pages like any
/// list: by id, both ways, each node once, with the whole list's `totalCount`.
#[tokio::test]
async fn relation_lists_page_both_ways_by_id() {
    let s = TestServer::start().await;
    nhigov::demo::load(&s.store).await.unwrap();
    let admin = s.token(nhigov::demo::DEMO_ADMIN);
    let d = s
        .ok(
            &admin,
            "{ teams(first: 100) { edges { node { id members(first: 100) { totalCount } owns(first: 100) { totalCount } } } }
               systems(first: 100) { edges { node { id accessors(first: 100) { totalCount } } } } }",
            json!({}),
        )
        .await;
    let largest = |list: &str, field: &str| {
        d[list]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .max_by_key(|e| e["node"][field]["totalCount"].as_u64().unwrap())
            .map(|e| (e["node"]["id"].clone(), e["node"][field]["totalCount"].as_u64().unwrap()))
            .unwrap()
    };
    for (list, field, select) in
        [("teams", "members", "id"), ("teams", "owns", "id"), ("systems", "accessors", "nhi { id }")]
    {
        let (node, total) = largest(list, field);
        assert!(total > 2, "{list}.{field}: the demo has one with more than a page of 2 ({total})");
        let mut walks = Vec::new();
        for backward in [false, true] {
            let (size, arg, next) =
                if backward { ("last", "before", "startCursor") } else { ("first", "after", "endCursor") };
            let q = format!(
                "query($n: ID!, $c: String) {{ node(id: $n) {{ ... on {ty} {{ {field}({size}: 2, {arg}: $c) {{
                    totalCount edges {{ node {{ {select} }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }} }} }}",
                ty = if list == "teams" { "Team" } else { "System" },
            );
            let (mut pages, mut cursor) = (Vec::new(), Value::Null);
            loop {
                let d = s.ok(&admin, &q, json!({ "n": node, "c": cursor })).await;
                let conn = &d["node"][field];
                assert_eq!(conn["totalCount"].as_u64(), Some(total), "{list}.{field}");
                pages.push(conn["edges"].as_array().unwrap().iter().map(|e| e["node"].to_string()).collect::<Vec<_>>());
                let more =
                    conn["pageInfo"][if backward { "hasPreviousPage" } else { "hasNextPage" }].as_bool().unwrap();
                if !more {
                    break;
                }
                cursor = conn["pageInfo"][next].clone();
                assert!(pages.len() <= total as usize, "{list}.{field}: paging does not end");
            }
            if backward {
                pages.reverse();
            }
            walks.push(pages.concat());
        }
        assert_eq!(walks[0].len() as u64, total, "{list}.{field}: each node once");
        assert_eq!(walks[0], walks[1], "{list}.{field}: backward meets what forward meets");
    }
}
