//! Subscriptions to subgraphs: one WebSocket of the `graphql-transport-ws` protocol per client
//! subscription, opened to the subgraph that owns the subscription's root field.
//!
//! [`Upstream::open`] connects (with the client's forwarded headers and the subgraph secret on the
//! upgrade request, as on every fetch), sends `connection_init`, waits for `connection_ack` and
//! subscribes; [`Upstream::next`] gives each event's payload, answering the subgraph's pings. A
//! socket that closes, an `error` message or a protocol breach end the subscription with the
//! reason; `complete` ends it cleanly.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest as _, protocol::Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::fetch::{FORWARDED_HEADERS, SECRET_HEADER, TRACE_HEADERS};

/// The WebSocket subprotocol spoken to subgraphs and to clients.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The id of the one operation on an upstream socket.
const ID: &str = "1";

/// An open subscription to a subgraph.
pub struct Upstream {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Whether the subgraph ended the operation with an `error` message.
    ended: bool,
}

/// What a subgraph sent next.
#[derive(Debug)]
pub enum Next {
    /// An event: its payload, a GraphQL response as JSON text.
    Event(Vec<u8>),
    /// The subgraph completed the subscription.
    Complete,
    /// The subscription ended otherwise; the reason, for the client's error and the log.
    Failed(String),
}

impl Upstream {
    /// Subscribes to `url` (the subgraph's HTTP URL; `ws` or `wss` is used) with `body` (a
    /// GraphQL request as JSON) on behalf of a client whose headers are `headers`; `within` bounds
    /// the connection and the subgraph's acknowledgement.
    pub async fn open(
        url: &str,
        body: &[u8],
        headers: &HeaderMap,
        secret: Option<&HeaderValue>,
        within: Duration,
    ) -> Result<Self, String> {
        let ws_url = match url.split_once("://") {
            Some(("http", rest)) => format!("ws://{rest}"),
            Some(("https", rest)) => format!("wss://{rest}"),
            _ => {
                tracing::error!(
                    url,
                    "a subgraph's URL is not http(s): no subscription can open"
                );
                return Err("has a URL that is not http(s)".to_owned());
            }
        };
        let mut request = ws_url.into_client_request().map_err(|e| {
            tracing::error!(cause = %e, "a subgraph's URL cannot be opened as a WebSocket");
            "has a URL a WebSocket cannot open".to_owned()
        })?;
        let sent = request.headers_mut();
        sent.insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
        for name in FORWARDED_HEADERS {
            if let Some(value) = headers.get(name) {
                sent.insert(name, value.clone());
            }
        }
        for (name, value) in taproom_telemetry::context::outgoing() {
            if TRACE_HEADERS.contains(&name) {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    sent.insert(name, value);
                }
            }
        }
        if let Some(secret) = secret {
            sent.insert(SECRET_HEADER, secret.clone());
        }
        let payload: Value = serde_json::from_slice(body).map_err(|e| {
            tracing::error!(cause = %e, "a subscription's request is not JSON");
            "cannot be sent the subscription".to_owned()
        })?;
        let opened = async {
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(taproom_http::WEBSOCKET_BUFFER_BYTES)
                .write_buffer_size(taproom_http::WEBSOCKET_BUFFER_BYTES);
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                    .await
                    .map_err(|e| {
                        tracing::warn!(cause = %e, "a subgraph refused a subscription's WebSocket");
                        "refused the subscription's WebSocket".to_owned()
                    })?;
            send(
                &mut socket,
                json!({"type": "connection_init", "payload": {}}),
            )
            .await?;
            loop {
                match read(&mut socket).await? {
                    Some(message) if message["type"] == "connection_ack" => break,
                    Some(message) if message["type"] == "ping" => {
                        send(&mut socket, json!({"type": "pong"})).await?;
                    }
                    Some(message) => {
                        tracing::warn!(%message, "a subgraph answered connection_init with another message");
                        return Err("answered connection_init with another message".to_owned());
                    }
                    None => return Err("closed the WebSocket before acknowledging it".into()),
                }
            }
            send(
                &mut socket,
                json!({"id": ID, "type": "subscribe", "payload": payload}),
            )
            .await?;
            Ok(Upstream {
                socket,
                ended: false,
            })
        };
        tokio::time::timeout(within, opened)
            .await
            .map_err(|_| format!("did not accept the subscription within {within:?}"))?
    }

    /// The next event, or how the subscription ended.
    pub async fn next(&mut self) -> Next {
        if self.ended {
            return Next::Complete;
        }
        loop {
            let message = match read(&mut self.socket).await {
                Ok(Some(message)) => message,
                Ok(None) => return Next::Failed("closed the subscription's WebSocket".into()),
                Err(reason) => return Next::Failed(reason),
            };
            match message["type"].as_str() {
                Some("next") if message["id"] == ID => {
                    return Next::Event(message["payload"].to_string().into_bytes());
                }
                Some("error") if message["id"] == ID => {
                    // The payload is a list of GraphQL errors: the subscription could not start,
                    // and the operation is over.
                    self.ended = true;
                    let errors = json!({"errors": message["payload"]});
                    return Next::Event(errors.to_string().into_bytes());
                }
                Some("complete") if message["id"] == ID => return Next::Complete,
                Some("ping") => {
                    if let Err(reason) = send(&mut self.socket, json!({"type": "pong"})).await {
                        return Next::Failed(reason);
                    }
                }
                Some("pong") => {}
                _ => {
                    tracing::warn!(%message, "a subgraph sent a message the protocol does not allow here");
                    return Next::Failed("sent a message the protocol does not allow".to_owned());
                }
            }
        }
    }

    /// Ends the subscription: `complete`, then the socket's close.
    pub async fn close(mut self) {
        let _ = send(&mut self.socket, json!({"id": ID, "type": "complete"})).await;
        let _ = self.socket.close(None).await;
    }
}

async fn send(
    socket: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
    message: Value,
) -> Result<(), String> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| {
            tracing::warn!(cause = %e, "a subscription's WebSocket to a subgraph closed");
            "closed the subscription's WebSocket".to_owned()
        })
}

/// The next protocol message (JSON), `None` when the socket closed.
async fn read(
    socket: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> Result<Option<Value>, String> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|_| "sent a WebSocket message that is not JSON".to_owned())
            }
            Some(Ok(Message::Binary(_))) => {
                return Err("sent a binary WebSocket message".to_owned())
            }
            // Pings are answered by tungstenite.
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tracing::warn!(cause = %error, "a subscription's WebSocket to a subgraph broke");
                return Err("broke the subscription's WebSocket".to_owned());
            }
        }
    }
}
