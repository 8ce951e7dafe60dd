//! No input reaches a panic. The schema is walked by introspection, and every argument
//! of every query and mutation (and every field of an input object argument) is sent its
//! extreme values, one at a time, the rest at ordinary values: the smallest and largest
//! 32-bit integers, negatives, far-future and far-past dates, an empty string and the
//! longest one the body limit admits. Every answer is below 500, every error is coded,
//! none is `INTERNAL` (a panic or a leaked internal failure), and no message shows a
//! Rust type. Over `/graphql/ws`, operations that used to panic are answered and give
//! their slot back.

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use nhigov_tests::TestServer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const INTROSPECT: &str = "{ __schema { types { kind name
    inputFields { name type { ...T } }
    fields { name args { name defaultValue type { ...T } } type { ...T } }
    enumValues { name } } } }
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

struct Types(HashMap<String, Value>);

impl Types {
    fn get(&self, name: &str) -> &Value {
        &self.0[name]
    }
}

/// `T!`, `[T!]`... as a variable's type.
fn render(t: &Value) -> String {
    match t["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", render(&t["ofType"])),
        "LIST" => format!("[{}]", render(&t["ofType"])),
        _ => t["name"].as_str().unwrap().to_owned(),
    }
}

/// The named type under the wrappers.
fn named(t: &Value) -> &Value {
    match t["kind"].as_str().unwrap() {
        "NON_NULL" | "LIST" => named(&t["ofType"]),
        _ => t,
    }
}

/// An ordinary value of a type.
fn ordinary(types: &Types, t: &Value) -> Value {
    match t["kind"].as_str().unwrap() {
        "NON_NULL" => ordinary(types, &t["ofType"]),
        "LIST" => json!([ordinary(types, &t["ofType"])]),
        "ENUM" => types.get(t["name"].as_str().unwrap())["enumValues"][0]["name"].clone(),
        "INPUT_OBJECT" => {
            let def = types.get(t["name"].as_str().unwrap());
            let mut obj = serde_json::Map::new();
            for f in def["inputFields"].as_array().unwrap() {
                if f["type"]["kind"] == "NON_NULL" {
                    obj.insert(f["name"].as_str().unwrap().to_owned(), ordinary(types, &f["type"]));
                }
            }
            Value::Object(obj)
        }
        _ => match t["name"].as_str().unwrap() {
            "Int" => json!(1),
            "Float" => json!(1.0),
            "Boolean" => json!(true),
            "ID" => json!("nhi:doesnotexist"),
            "DateTime" => json!(chrono::Utc::now().to_rfc3339()),
            "JSON" => json!({}),
            _ => json!("x"),
        },
    }
}

/// The extreme values of a scalar (none for the rest).
fn extremes(scalar: &str, longest: usize) -> Vec<Value> {
    match scalar {
        "Int" => vec![json!(i32::MIN), json!(i32::MAX), json!(-1), json!(0)],
        "Float" => vec![json!(-1e308), json!(1e308)],
        "String" | "ID" => vec![json!(""), json!("x".repeat(longest))],
        "DateTime" => vec![json!("9999-12-31T23:59:59Z"), json!("0001-01-01T00:00:00Z")],
        _ => vec![],
    }
}

/// An extreme leaf inside an argument: where, and the argument's whole value.
struct Case {
    at: String,
    value: Value,
}

/// Every argument's value with one leaf at an extreme: the argument itself, each field
/// of an input object, and each of those inside a list.
fn cases(types: &Types, arg: &Value, longest: usize) -> Vec<Case> {
    let t = &arg["type"];
    let name = arg["name"].as_str().unwrap();
    let inner = named(t);
    let list = matches!(t["kind"].as_str(), Some("LIST")) || t["ofType"]["kind"] == "LIST";
    let wrap = |v: Value| if list { json!([v]) } else { v };
    match inner["kind"].as_str().unwrap() {
        "SCALAR" => extremes(inner["name"].as_str().unwrap(), longest)
            .into_iter()
            .map(|v| Case { at: name.to_owned(), value: wrap(v) })
            .collect(),
        "INPUT_OBJECT" => {
            let base = ordinary(types, inner);
            let def = types.get(inner["name"].as_str().unwrap());
            let mut out = Vec::new();
            for f in def["inputFields"].as_array().unwrap() {
                let leaf = named(&f["type"]);
                if leaf["kind"] != "SCALAR" {
                    continue;
                }
                let field = f["name"].as_str().unwrap();
                let in_list = f["type"]["kind"] == "LIST" || f["type"]["ofType"]["kind"] == "LIST";
                for v in extremes(leaf["name"].as_str().unwrap(), longest) {
                    let mut obj = base.clone();
                    obj[field] = if in_list { json!([v]) } else { v };
                    out.push(Case { at: format!("{name}.{field}"), value: wrap(obj) });
                }
            }
            out
        }
        _ => vec![],
    }
}

/// A non-null argument with a default value.
fn defaulted(arg: &Value) -> bool {
    arg["type"]["kind"] == "NON_NULL" && arg["defaultValue"].is_string()
}

/// The operation calling `field` of `root` with every argument as a variable.
fn operation(kind: &str, field: &Value) -> String {
    let args = field["args"].as_array().unwrap();
    // An argument with a default may be given a nullable variable (the spec allows it),
    // so a client can send it null: declared so, it is one more extreme.
    let decls: Vec<String> = args
        .iter()
        .map(|a| {
            let t = if defaulted(a) { &a["type"]["ofType"] } else { &a["type"] };
            format!("${}: {}", a["name"].as_str().unwrap(), render(t))
        })
        .collect();
    let uses: Vec<String> = args.iter().map(|a| format!("{0}: ${0}", a["name"].as_str().unwrap())).collect();
    let name = field["name"].as_str().unwrap();
    let selection = match named(&field["type"])["kind"].as_str().unwrap() {
        "OBJECT" | "INTERFACE" | "UNION" => " { __typename }",
        _ => "",
    };
    let call = if uses.is_empty() { name.to_owned() } else { format!("{name}({})", uses.join(", ")) };
    let head = if decls.is_empty() { kind.to_owned() } else { format!("{kind}({})", decls.join(", ")) };
    format!("{head} {{ {call}{selection} }}")
}

/// What must hold of every answer.
fn check(what: &str, status: u16, body: &Value) {
    assert!(status < 500, "{what}: HTTP {status}: {body}");
    for e in body["errors"].as_array().into_iter().flatten() {
        let code = e["extensions"]["code"].as_str();
        assert!(code.is_some(), "{what}: an uncoded error: {e}");
        assert_ne!(code, Some("INTERNAL"), "{what}: {e}");
        let message = e["message"].as_str().unwrap_or_default();
        for ty in ["u32", "i32", "u64", "i64", "usize", "chrono", "core::", "std::"] {
            assert!(!message.contains(ty), "{what}: the message shows `{ty}`: {e}");
        }
    }
}

#[tokio::test]
async fn every_argument_at_its_extremes_answers_a_coded_error_or_data() {
    let s = TestServer::start().await;
    s.world().await;
    let sam = s.as_("sam");
    let schema = s.ok(&sam, INTROSPECT, json!({})).await;
    let types = Types(
        schema["__schema"]["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
            .collect(),
    );
    // The longest string one request may carry, with room for the rest of it.
    let longest = nhigov::config::Config::default().limits.body_bytes - 4096;
    let mut sent = 0;
    for (kind, root) in [("query", "Query"), ("mutation", "Mutation")] {
        for field in types.get(root)["fields"].as_array().unwrap() {
            let op = operation(kind, field);
            let args = field["args"].as_array().unwrap();
            let mut base = serde_json::Map::new();
            for a in args {
                if a["type"]["kind"] == "NON_NULL" {
                    base.insert(a["name"].as_str().unwrap().to_owned(), ordinary(&types, &a["type"]));
                }
            }
            for a in args {
                let null = defaulted(a)
                    .then(|| Case { at: format!("{} null", a["name"].as_str().unwrap()), value: Value::Null });
                for case in cases(&types, a, longest).into_iter().chain(null) {
                    let mut vars = base.clone();
                    vars.insert(a["name"].as_str().unwrap().to_owned(), case.value);
                    let what = format!("{root}.{} with {} extreme", field["name"].as_str().unwrap(), case.at);
                    let (status, body) = s.gql(&sam, &op, Value::Object(vars)).await;
                    check(&what, status, &body);
                    sent += 1;
                }
            }
        }
    }
    assert!(sent > 300, "the walk reached {sent} cases: the schema's arguments were not found");
    assert!(s.healthy().await);
    println!("{sent} requests, each answered below 500 with coded errors");
    s.stop().await;
}

/// Over the socket, each operation that once panicked (a date beyond the calendar) is
/// answered, more of them than a connection runs at once, and the connection still
/// serves.
#[tokio::test]
async fn operations_over_the_socket_are_answered_and_free_their_slot() {
    let s = TestServer::start().await;
    s.world().await;
    let mut req = format!("ws://{}/graphql/ws", s.addr).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "type": "connection_init", "payload": { "token": s.as_("sam") } }))).await.unwrap();
    let queries = [
        "{ nhis(filter: { staleDays: 2147483647 }) { totalCount } }",
        "{ nhis(first: 1) { edges { node { expiringSoon(days: 2147483647) } } } }",
    ];
    let mut answered = 0;
    for i in 0..150 {
        let q = queries[i % 2];
        ws.send(send(json!({ "id": format!("op{i}"), "type": "subscribe", "payload": { "query": q } }))).await.unwrap();
        // Each operation ends: `error`, or `next` then `complete`.
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("an answer in time");
            let Some(Ok(Message::Text(t))) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("connection_ack") | Some("ping") => continue,
                Some("next") => {
                    let errors = v["payload"]["errors"].as_array().cloned().unwrap_or_default();
                    assert!(!errors.is_empty(), "an out-of-range day count is an error: {v}");
                    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{v}");
                }
                Some("complete") => {
                    answered += 1;
                    break;
                }
                other => panic!("operation {i}: {other:?}: {v}"),
            }
        }
    }
    assert_eq!(answered, 150);
    s.stop().await;
}
