//! Subscriptions over `/graphql/ws` (graphql-transport-ws), authenticated in
//! `connection_init`.

use futures::{SinkExt, StreamExt};
use nhigov_tests::TestServer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn connect(
    s: &TestServer,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{}/graphql/ws", s.addr).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("websocket connects").0
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(frame) => return json!({ "closed": frame.map(|f| u16::from(f.code)) }),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_subscriber_sees_inventory_changes_as_they_commit() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let mut ws = connect(&s).await;
    ws.send(Message::text(json!({ "type": "connection_init", "payload": { "token": admin } }).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws.send(Message::text(
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { inventoryChanged { action id } }" } })
            .to_string(),
    ))
    .await
    .unwrap();
    // Give the subscription a moment to register before the change.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let d = s.ok(&admin, "mutation { createTeam(input: { name: \"Live\" }) { id } }", json!({})).await;
    let event = next_json(&mut ws).await;
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(event["payload"]["data"]["inventoryChanged"]["action"], "CREATED");
    assert_eq!(event["payload"]["data"]["inventoryChanged"]["id"], d["createTeam"]["id"]);
}

#[tokio::test]
async fn a_connection_without_a_valid_token_is_closed() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    ws.send(Message::text(json!({ "type": "connection_init", "payload": { "token": "forged" } }).to_string()))
        .await
        .unwrap();
    let reply = next_json(&mut ws).await;
    // Closed without an ack. async-graphql 7 closes with 1002 here; the protocol's 4403
    // needs our own connection handling.
    assert!(reply["closed"].is_number(), "expected a close, got {reply}");
    assert!(s.healthy().await);
}
