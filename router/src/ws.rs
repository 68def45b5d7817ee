//! GraphQL over WebSocket at `GET /graphql` (`Upgrade: websocket`), the `graphql-transport-ws`
//! protocol of the `graphql-ws` library: subscriptions, and queries and mutations too.
//!
//! - The client sends `connection_init` within [`INIT_TIMEOUT`] (else close 4408); its payload's
//!   `Authorization` (browsers cannot set headers on a WebSocket), or else the upgrade request's
//!   header, is the token every operation of the connection is sent with. A second
//!   `connection_init` closes with 4429; `subscribe` before the acknowledgement with 4401; an id in
//!   use with 4409; a message that is not the protocol's with 4400.
//! - Each `subscribe` runs through the pipeline ([`Router::execute_streaming`]): `next` per result,
//!   then `complete`; a request that cannot run, or a subscription that ends with errors (the
//!   subgraph went away, the supergraph changed), gets `error` with them. At most
//!   `max_per_connection` operations run at once on one connection; one more gets `error`.
//! - The server pings every [`PING_EVERY`] (the client answers `pong`) and answers pings. A client
//!   heard nothing from for [`SILENT_FOR`] is gone: the socket closes (4408). A socket with no
//!   operation running for `idle` closes too (1000): a client that needs it again reconnects, as
//!   `graphql-ws` does by itself.
//! - Each client address keeps at most `max_per_client` sockets (and event streams) open: one more
//!   upgrade is refused with 429 and `RATE_LIMITED`. Each socket's buffers are
//!   [`taproom_http::WEBSOCKET_BUFFER_BYTES`], so an idle one costs a few kilobytes.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        FromRequestParts as _,
    },
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use taproom_http::{error_reply, request_from_json, HttpError, MediaType};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    error::{Code, GraphqlError},
    pipeline::{Answer, GraphqlRequest, Router, Streamed},
    subscription::PROTOCOL,
};

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server pings an idle client.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// How long a client may say nothing (not even `pong`) before its socket is closed.
pub const SILENT_FOR: Duration = Duration::from_secs(2 * 15 + 10);

/// What one WebSocket connection may do.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// Operations running at once on one connection.
    pub max_per_connection: usize,
    /// The largest message, in bytes.
    pub max_message_bytes: usize,
    /// How long a socket with no operation running stays open.
    pub idle: Duration,
}

/// Whether `headers` ask to upgrade to a WebSocket.
pub fn upgrading(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Upgrades the request (`headers` are the client's, as the HTTP face prepared them) to a
/// GraphQL WebSocket held as `held` (the client's connection budget), or answers why not.
pub async fn upgrade(
    router: Arc<Router>,
    limits: WsLimits,
    headers: HeaderMap,
    held: crate::client::Held,
    mut parts: axum::http::request::Parts,
) -> Response {
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == PROTOCOL);
    if !offered {
        return error_reply(
            MediaType::Json,
            &HttpError::bad(format!(
                "a GraphQL WebSocket needs the {PROTOCOL} subprotocol (Sec-WebSocket-Protocol)"
            )),
        );
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(limits.max_message_bytes)
        .read_buffer_size(taproom_http::WEBSOCKET_BUFFER_BYTES)
        .write_buffer_size(taproom_http::WEBSOCKET_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            let open = &router.client.metrics.websockets_open;
            open.inc();
            serve(router.clone(), limits, headers, socket).await;
            router.client.metrics.websockets_open.dec();
            drop(held);
        })
        .into_response()
}

/// What the operations' tasks tell the connection.
enum Out {
    /// A message to send.
    Send(Value),
    /// The operation `id` is over.
    Done(String),
}

/// Why the connection is closed by the server: the close code and reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Close(pub u16, pub String);

/// A client's message of the protocol, read.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    /// `connection_init`, with the token its payload carries, if any.
    Init(Option<HeaderValue>),
    /// `ping`, with its payload, which the `pong` returns.
    Ping(Option<Value>),
    Pong,
    /// `subscribe`: the operation's id and its payload (a GraphQL request), as JSON text.
    Subscribe {
        id: String,
        payload: String,
    },
    /// `complete` of an operation (the id, if the message had one).
    Complete(Option<String>),
}

/// Reads one text message of a client, or the close a malformed one calls for (4400). Whether it
/// is allowed now (before `connection_init`, say) is the connection's to judge. The fuzz target
/// `router_ws_message` drives this.
pub fn read_message(text: &str) -> Result<ClientMessage, Close> {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
        return Err(Close(4400, "a message must be a JSON object".into()));
    };
    match message.get("type").and_then(Value::as_str) {
        Some("connection_init") => {
            let token = message
                .get("payload")
                .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")));
            match token {
                None => Ok(ClientMessage::Init(None)),
                Some(token) => token
                    .as_str()
                    .and_then(|t| HeaderValue::from_str(t).ok())
                    .map(|value| ClientMessage::Init(Some(value)))
                    .ok_or_else(|| {
                        Close(
                            4400,
                            "connection_init's Authorization must be a header value".into(),
                        )
                    }),
            }
        }
        Some("ping") => Ok(ClientMessage::Ping(message.get("payload").cloned())),
        Some("pong") => Ok(ClientMessage::Pong),
        Some("subscribe") => match (message.get("id"), message.get("payload")) {
            (Some(Value::String(id)), Some(payload @ Value::Object(_))) => {
                Ok(ClientMessage::Subscribe {
                    id: id.clone(),
                    payload: payload.to_string(),
                })
            }
            _ => Err(Close(4400, "subscribe needs an id and a payload".into())),
        },
        Some("complete") => Ok(ClientMessage::Complete(
            message.get("id").and_then(Value::as_str).map(str::to_owned),
        )),
        _ => Err(Close(4400, "unknown message type".into())),
    }
}

async fn serve(router: Arc<Router>, limits: WsLimits, mut headers: HeaderMap, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Out>(64);
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut acknowledged = false;
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    // Reset by every message from the client, and (`idle`) by the end of every operation.
    let silent = tokio::time::sleep(SILENT_FOR);
    tokio::pin!(silent);
    let idle = tokio::time::sleep(limits.idle);
    tokio::pin!(idle);
    let close: Option<Close> = loop {
        tokio::select! {
            () = &mut init_deadline, if !acknowledged => {
                break Some(Close(4408, "Connection initialisation timeout".into()));
            }
            () = &mut silent => {
                break Some(Close(4408, "the client stopped answering pings".into()));
            }
            () = &mut idle, if acknowledged && running.is_empty() => {
                break Some(Close(1000, "idle: no operation for a while; connect again when you need one".into()));
            }
            _ = ping.tick(), if acknowledged => {
                if send(&mut sink, json!({"type": "ping"})).await.is_err() {
                    break None;
                }
            }
            Some(out) = outgoing.recv() => match out {
                Out::Send(message) => {
                    if send(&mut sink, message).await.is_err() {
                        break None;
                    }
                }
                Out::Done(id) => {
                    running.remove(&id);
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.idle);
                }
            },
            message = stream.next() => {
                silent.as_mut().reset(tokio::time::Instant::now() + SILENT_FOR);
                let text = match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        break Some(Close(4400, "binary messages are not part of the protocol".into()));
                    }
                    Some(Ok(_)) => continue,
                };
                let message = match read_message(text.as_str()) {
                    Ok(message) => message,
                    Err(close) => break Some(close),
                };
                match message {
                    ClientMessage::Init(token) => {
                        if acknowledged {
                            break Some(Close(4429, "Too many initialisation requests".into()));
                        }
                        if let Some(value) = token {
                            headers.insert(header::AUTHORIZATION, value);
                        }
                        acknowledged = true;
                        if send(&mut sink, json!({"type": "connection_ack"})).await.is_err() {
                            break None;
                        }
                    }
                    ClientMessage::Ping(payload) => {
                        let mut pong = json!({"type": "pong"});
                        if let Some(payload) = payload {
                            pong["payload"] = payload;
                        }
                        if send(&mut sink, pong).await.is_err() {
                            break None;
                        }
                    }
                    ClientMessage::Pong => {}
                    ClientMessage::Subscribe { id, payload } => {
                        if !acknowledged {
                            break Some(Close(4401, "Unauthorized".into()));
                        }
                        if running.contains_key(&id) {
                            break Some(Close(4409, format!("Subscriber for {id} already exists")));
                        }
                        if running.len() >= limits.max_per_connection {
                            let error = GraphqlError::new(
                                Code::BadRequest,
                                format!(
                                    "at most {} operations may run at once on one WebSocket",
                                    limits.max_per_connection
                                ),
                            );
                            let message = json!({"id": id, "type": "error", "payload": [error]});
                            if send(&mut sink, message).await.is_err() {
                                break None;
                            }
                            continue;
                        }
                        let task = tokio::spawn(operation(
                            router.clone(),
                            id.clone(),
                            payload,
                            headers.clone(),
                            out.clone(),
                        ));
                        running.insert(id, task);
                    }
                    ClientMessage::Complete(id) => {
                        if let Some(task) = id.and_then(|id| running.remove(&id)) {
                            task.abort();
                            idle.as_mut().reset(tokio::time::Instant::now() + limits.idle);
                        }
                    }
                }
            }
        }
    };
    for task in running.into_values() {
        task.abort();
    }
    if let Some(Close(code, reason)) = close {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: Value,
) -> Result<(), axum::Error> {
    sink.send(Message::text(message.to_string())).await
}

/// Runs one `subscribe` to its end, sending its messages through `out`.
async fn operation(
    router: Arc<Router>,
    id: String,
    payload: String,
    headers: HeaderMap,
    out: mpsc::Sender<Out>,
) {
    let next = |body: Vec<u8>| {
        let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Out::Send(json!({"id": id, "type": "next", "payload": payload}))
    };
    let error =
        |errors: &[GraphqlError]| Out::Send(json!({"id": id, "type": "error", "payload": errors}));
    let complete = Out::Send(json!({"id": id, "type": "complete"}));
    let request = match request_from_json(payload.as_bytes()) {
        Ok(request) => request,
        Err(bad) => {
            let _ = out.send(Out::Done(id.clone())).await;
            let _ = out
                .send(error(&[GraphqlError::new(Code::BadRequest, bad.message)]))
                .await;
            return;
        }
    };
    let answer = router
        .execute_streaming(GraphqlRequest::read(&request, false, false), &headers)
        .await;
    let ended = match answer {
        Err(refused) => error(&refused.errors),
        Ok(Answer::Whole(body)) => {
            if out.send(next(body)).await.is_err() {
                return;
            }
            complete
        }
        // Not asked for here: `execute_streaming` never defers.
        Ok(Answer::Parts(_)) => complete,
        Ok(Answer::Events(mut events)) => loop {
            match events.recv().await {
                Some(Streamed::Next(body)) => {
                    if out.send(next(body)).await.is_err() {
                        return;
                    }
                }
                Some(Streamed::Failed(errors)) => break error(&errors),
                None => break complete,
            }
        },
    };
    // Done first: once the client has the last message, the id is free again.
    let _ = out.send(Out::Done(id.clone())).await;
    let _ = out.send(ended).await;
}
