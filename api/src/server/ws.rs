//! GraphQL over WebSocket at `/graphql/ws`.
//!
//! graphql-transport-ws (the protocol of the `graphql-ws` library) is implemented here,
//! message by message as its specification states, because the engine's built-in
//! handler closes with 1002 where the protocol names its own codes:
//!
//! | close | when |
//! |---|---|
//! | 4400 | a message that is not JSON, not an object, of an unknown type, or malformed |
//! | 4401 | `subscribe` before the connection was acknowledged |
//! | 4403 | `connection_init` without a valid token (or the token stops being valid) |
//! | 4408 | no `connection_init` within the init timeout |
//! | 4409 | `subscribe` with the id of an operation still running |
//! | 4429 | a second `connection_init` |
//!
//! The bearer token travels in `connection_init`'s payload, as `{"token": "..."}` or
//! `{"Authorization": "Bearer ..."}`. Each `subscribe` runs as the principal loaded
//! afresh (a demoted or deactivated person's next operation is refused or runs with the
//! roles they hold now), and the token is checked again at every keep-alive ping: a
//! deactivated person or a revoked token loses the connection within one interval, and
//! so does one whose roles changed, which ends the operations running with the old ones.
//! Each operation runs in its own task; a slow consumer holds back only its own
//! connection (the outgoing queue is bounded), never a writer. The legacy `graphql-ws`
//! protocol (subscriptions-transport-ws) is not served: its engine handler fixes the
//! caller's roles at `connection_init`.

use std::collections::HashMap;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use nhigov_schema::Principal;
use nhigov_schema::limits::check_nesting;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::AppState;

/// Operations one connection may run at once.
const MAX_OPERATIONS: usize = 100;
/// Messages queued for a client before its operations wait for it.
const OUTGOING: usize = 256;

/// The subprotocol served.
const PROTOCOL: &str = "graphql-transport-ws";

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let max = state.limits.body_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| async move { Connection::serve(state, socket).await })
}

/// The bearer header a `connection_init` payload carries, if any.
fn init_token(payload: &Value) -> Option<String> {
    payload.get("token").and_then(|v| v.as_str()).map(|t| format!("Bearer {t}")).or_else(|| {
        payload
            .get("Authorization")
            .or_else(|| payload.get("authorization"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    })
}

/// Why the server ends a connection.
struct Close(u16, String);

impl Close {
    fn bad(message: impl Into<String>) -> Close {
        Close(4400, message.into())
    }
}

/// One graphql-transport-ws connection.
struct Connection {
    state: AppState,
    /// Set once `connection_init` has been received.
    init: bool,
    /// The authenticated caller and the header it came with, once acknowledged.
    principal: Option<(Principal, String)>,
    operations: HashMap<String, JoinHandle<()>>,
    out: mpsc::Sender<Message>,
    /// Operations report here when they end by themselves.
    done: mpsc::UnboundedSender<String>,
}

impl Connection {
    /// Serve one socket until either side closes it.
    async fn serve(state: AppState, socket: WebSocket) {
        let (out, out_rx) = mpsc::channel(OUTGOING);
        let (done, done_rx) = mpsc::unbounded_channel();
        let this = Connection { state, init: false, principal: None, operations: HashMap::new(), out, done };
        this.run(socket, out_rx, done_rx).await;
    }

    async fn run(
        mut self,
        socket: WebSocket,
        mut out_rx: mpsc::Receiver<Message>,
        mut done_rx: mpsc::UnboundedReceiver<String>,
    ) {
        let (mut sink, mut incoming) = socket.split();
        // One writer, so operations and the reader never interleave frames.
        let writer = tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                let closing = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || closing {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let init_deadline = tokio::time::sleep(self.state.limits.ws_init_timeout);
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(self.state.limits.ws_keepalive);
        keepalive.tick().await;
        let close = loop {
            tokio::select! {
                _ = &mut init_deadline, if !self.init => {
                    break Some(Close(4408, "Connection initialisation timeout".into()));
                }
                _ = keepalive.tick() => {
                    if let Err(close) = self.keepalive().await {
                        break Some(close);
                    }
                }
                Some(id) = done_rx.recv() => {
                    self.operations.remove(&id);
                }
                msg = incoming.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Binary(_))) => break Some(Close::bad("binary messages are not part of the protocol")),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => break None,
                        Some(Err(e)) => {
                            debug!(error = %e, "websocket read failed");
                            break None;
                        }
                    };
                    if let Err(close) = self.handle(text.as_str()).await {
                        break Some(close);
                    }
                }
            }
        };
        for (_, op) in self.operations.drain() {
            op.abort();
        }
        if let Some(Close(code, reason)) = close {
            debug!(code, %reason, "closing websocket");
            let _ = self.out.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
        drop(self.out);
        let _ = writer.await;
    }

    /// Ping the client, and check that the credentials still hold, with the same roles:
    /// operations running with roles the caller no longer holds end with the socket.
    async fn keepalive(&mut self) -> Result<(), Close> {
        if let Some((held, header)) = &self.principal {
            match self.state.auth.authenticate(Some(header), &self.state.store).await {
                Ok(now) if now.roles == held.roles => {}
                Ok(_) => return Err(Close(4403, "Forbidden: the caller's roles changed".into())),
                Err(_) => return Err(Close(4403, "Forbidden".into())),
            }
        }
        self.send(json!({ "type": "ping" })).await;
        Ok(())
    }

    async fn send(&self, msg: Value) {
        // A closed writer means the client is gone; the reader notices next.
        let _ = self.out.send(Message::text(msg.to_string())).await;
    }

    async fn handle(&mut self, text: &str) -> Result<(), Close> {
        let msg: Value = serde_json::from_str(text).map_err(|_| Close::bad("Invalid message received"))?;
        let kind = msg.get("type").and_then(Value::as_str).ok_or_else(|| Close::bad("Invalid message received"))?;
        match kind {
            "connection_init" => self.connection_init(msg.get("payload")).await,
            "ping" => {
                let mut pong = json!({ "type": "pong" });
                if let Some(p) = msg.get("payload").filter(|p| p.is_object()) {
                    pong["payload"] = p.clone();
                }
                self.send(pong).await;
                Ok(())
            }
            "pong" => Ok(()),
            "subscribe" => self.subscribe(&msg).await,
            "complete" => {
                let id = msg.get("id").and_then(Value::as_str).ok_or_else(|| Close::bad("complete needs an id"))?;
                if let Some(op) = self.operations.remove(id) {
                    op.abort();
                }
                Ok(())
            }
            other => {
                Err(Close::bad(format!("Unexpected message of type {}", other.chars().take(40).collect::<String>())))
            }
        }
    }

    async fn connection_init(&mut self, payload: Option<&Value>) -> Result<(), Close> {
        if self.init {
            return Err(Close(4429, "Too many initialisation requests".into()));
        }
        self.init = true;
        let payload = match payload {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(Close::bad("the connection_init payload must be an object")),
        };
        let header = init_token(&payload).ok_or(Close(4403, "Forbidden".into()))?;
        let principal = self
            .state
            .auth
            .authenticate(Some(&header), &self.state.store)
            .await
            .map_err(|_| Close(4403, "Forbidden".into()))?;
        self.principal = Some((principal, header));
        self.send(json!({ "type": "connection_ack" })).await;
        Ok(())
    }

    async fn subscribe(&mut self, msg: &Value) -> Result<(), Close> {
        let Some((_, header)) = &self.principal else {
            return Err(Close(4401, "Unauthorized".into()));
        };
        // Every operation runs as the caller is now, not as they were at connection_init.
        let principal = self
            .state
            .auth
            .authenticate(Some(header), &self.state.store)
            .await
            .map_err(|_| Close(4403, "Forbidden".into()))?;
        let id = match msg.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => return Err(Close::bad("subscribe needs a non-empty string id")),
        };
        let payload =
            msg.get("payload").filter(|p| p.is_object()).ok_or_else(|| Close::bad("subscribe needs a payload"))?;
        if !payload.get("query").is_some_and(Value::is_string) {
            return Err(Close::bad("subscribe needs a query"));
        }
        if let Some(running) = self.operations.get(&id)
            && !running.is_finished()
        {
            return Err(Close(4409, format!("Subscriber for {id} already exists")));
        }
        let request: async_graphql::Request = serde_json::from_value(payload.clone())
            .map_err(|e| Close::bad(format!("Invalid subscribe payload: {e}")))?;
        if let Err(e) = check_nesting(&request.query, &self.state.query_limits) {
            self.send(json!({ "id": id, "type": "error", "payload": [e] })).await;
            return Ok(());
        }
        if self.operations.len() >= MAX_OPERATIONS {
            let e = nhigov_schema::limits::coded(
                format!("at most {MAX_OPERATIONS} operations run at once on one connection"),
                "TOO_MANY_OPERATIONS",
            );
            self.send(json!({ "id": id, "type": "error", "payload": [e] })).await;
            return Ok(());
        }
        let request = request.data(principal);
        let schema = self.state.schema.clone();
        let out = self.out.clone();
        let done = self.done.clone();
        let op_id = id.clone();
        let task = tokio::spawn(async move {
            let mut stream = schema.execute_stream(request);
            let mut first = true;
            while let Some(resp) = stream.next().await {
                // A request error (the document does not parse, validate or keep the
                // limits) is an `error` message, and ends the operation.
                let msg = if first && super::graphql::is_request_error(&resp) {
                    let msg = json!({ "id": op_id, "type": "error", "payload": resp.errors });
                    let _ = out.send(Message::text(msg.to_string())).await;
                    let _ = done.send(op_id);
                    return;
                } else {
                    json!({ "id": op_id, "type": "next", "payload": resp })
                };
                first = false;
                if out.send(Message::text(msg.to_string())).await.is_err() {
                    return;
                }
            }
            let _ = out.send(Message::text(json!({ "id": op_id, "type": "complete" }).to_string())).await;
            let _ = done.send(op_id);
        });
        self.operations.insert(id, task);
        Ok(())
    }
}
