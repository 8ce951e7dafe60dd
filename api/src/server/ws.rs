//! GraphQL subscriptions over WebSocket (graphql-transport-ws, and the older graphql-ws).
//! The bearer token travels in `connection_init`'s payload, as `{"token": "..."}` or
//! `{"Authorization": "Bearer ..."}`; a connection without a valid one is closed.

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;

use super::AppState;

pub async fn upgrade(State(state): State<AppState>, protocol: GraphQLProtocol, ws: WebSocketUpgrade) -> Response {
    let max = state.limits.body_bytes;
    ws.max_message_size(max).max_frame_size(max).protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(
        move |socket| async move {
            let auth = state.auth.clone();
            let store = state.store.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .keepalive_timeout(std::time::Duration::from_secs(30))
                .on_connection_init(move |payload| async move {
                    let token =
                        payload.get("token").and_then(|v| v.as_str()).map(|t| format!("Bearer {t}")).or_else(|| {
                            payload
                                .get("Authorization")
                                .or_else(|| payload.get("authorization"))
                                .and_then(|v| v.as_str())
                                .map(str::to_owned)
                        });
                    let principal = auth
                        .authenticate(token.as_deref(), &store)
                        .await
                        .map_err(|_| async_graphql::Error::new("Forbidden"))?;
                    let mut data = Data::default();
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
                .await
        },
    )
}
