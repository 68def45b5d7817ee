//! A `graphql-transport-ws` client for the tests, as a browser's `graphql-ws` speaks it: the token
//! in the `connection_init` payload, pings answered. Every message is scanned for leaked
//! addresses and paths ([`crate::leaks`]).

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest as _, http::HeaderValue, Message},
    MaybeTlsStream, WebSocketStream,
};

/// How long a test waits for any one message (a bound for a broken test, not a measure).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// An initialised `graphql-transport-ws` connection.
pub struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    /// Connects to `router` (its HTTP URL) and initialises, with `token` in the
    /// `connection_init` payload as browsers send it.
    pub async fn connect(router: &str, token: Option<&str>) -> Self {
        Self::try_connect(router, token, &[])
            .await
            .unwrap_or_else(|refused| panic!("the router refused the WebSocket: {refused}"))
    }

    /// [`Ws::connect`] with more upgrade request `headers`; a refused upgrade is its HTTP status
    /// and body.
    pub async fn try_connect(
        router: &str,
        token: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, String> {
        let mut ws = Self::uninitialised(router, headers).await?;
        let payload = match token {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(ws.next().await["type"], "connection_ack");
        Ok(ws)
    }

    /// A connection that has not sent `connection_init`.
    pub async fn uninitialised(
        router: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, String> {
        let mut request = router
            .replace("http://", "ws://")
            .into_client_request()
            .expect("a WebSocket URL");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        let (socket, response) = match tokio_tungstenite::connect_async(request).await {
            Ok(connected) => connected,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                return Err(format!("{} {body}", response.status()));
            }
            Err(error) => return Err(error.to_string()),
        };
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Ok(Ws(socket))
    }

    /// Sends one protocol message.
    pub async fn send(&mut self, message: Value) {
        self.0
            .send(Message::text(message.to_string()))
            .await
            .expect("sends");
    }

    /// Subscribes operation `id` to `query`.
    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
            .await;
    }

    /// The next protocol message (pings answered), or `{"type": "closed", "code": ..}`.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("a message in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let leaks = crate::leaks::leaks_in(&text);
                    assert!(
                        leaks.is_empty(),
                        "the router gave away its insides: {leaks:?}"
                    );
                    let message: Value = serde_json::from_str(&text).expect("JSON");
                    if message["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return message;
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code));
                    return json!({ "type": "closed", "code": code });
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return json!({ "type": "closed", "code": null }),
            }
        }
    }
}
