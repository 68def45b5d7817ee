//! What an open stream costs: Taproom's router's memory per idle WebSocket and per open
//! subscription, and the orders subgraph's per subscription (each of the router's subscriptions
//! is a WebSocket of its own to orders). On the shop's subgraphs: `--streams` WebSockets are
//! opened and initialised (the router's resident memory before and after, divided by their
//! number), then one `orderChanged` subscription on each (the same again, for the router and for
//! orders). The router runs with its per-client limits off, as one load generator is one client.

use std::{path::Path, time::Duration};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Serialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, http::HeaderValue, Message};

use crate::{gateways::Gateways, subgraphs::Subgraphs};

/// Memory per stream, in bytes, over `count` of them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StreamMemory {
    pub(crate) count: usize,
    pub(crate) router_per_idle_websocket: f64,
    pub(crate) router_per_subscription: f64,
    pub(crate) orders_per_subscription: f64,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `count` WebSockets to Taproom's router (started here on `supergraph`), then a
/// subscription on each, signed in with `tokens` in turn; reads the resident memory around each
/// step.
pub(crate) async fn measure(
    gateways: &Gateways<'_>,
    subgraphs: &Subgraphs,
    supergraph: &Path,
    tokens: &[(i64, String)],
    count: usize,
) -> Result<StreamMemory> {
    if tokens.is_empty() {
        bail!("no signed-in user to subscribe as");
    }
    let router = gateways
        .start_with(
            crate::gateways::Gateway::TaproomDedupe,
            supergraph,
            vec![
                ("MAX_CONNECTIONS_PER_CLIENT", "0".into()),
                ("MAX_SUBSCRIPTIONS_PER_CLIENT", "0".into()),
                ("WEBSOCKET_IDLE_SECS", "3600".into()),
            ],
        )
        .await?;
    let settle = || tokio::time::sleep(Duration::from_secs(1));
    settle().await;
    let router_before = router.rss_bytes()?;
    let orders_before = subgraphs.rss_bytes("orders")?;
    let address = gateways.address();
    let url = format!("ws://{address}/graphql");
    let mut sockets: Vec<Socket> = Vec::with_capacity(count);
    for i in 0..count {
        let mut request = url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("opening WebSocket {i}"))?;
        let token = &tokens[i % tokens.len()].1;
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
        socket.send(Message::text(init.to_string())).await?;
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {}
            other => bail!("WebSocket {i} was not acknowledged: {other:?}"),
        }
        sockets.push(socket);
    }
    settle().await;
    let router_idle = router.rss_bytes()?;
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { orderChanged { id status items { sku quantity beer { name } } } }"}});
    for socket in &mut sockets {
        socket.send(Message::text(subscribe.to_string())).await?;
    }
    // Open once the router says so (its gauge), the subgraph having accepted each.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = crate::load::get_text(address, "/metrics")
            .await
            .unwrap_or_default();
        let open = text
            .lines()
            .find_map(|line| line.strip_prefix("taproom_router_subscriptions_open "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if open >= count {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("only {open} of {count} subscriptions opened");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    settle().await;
    let router_subscribed = router.rss_bytes()?;
    let orders_subscribed = subgraphs.rss_bytes("orders")?;
    for mut socket in sockets {
        let _ = socket.close(None).await;
    }
    router.stop().await?;
    let per = |after: f64, before: f64| (after - before) / count as f64;
    Ok(StreamMemory {
        count,
        router_per_idle_websocket: per(router_idle, router_before),
        router_per_subscription: per(router_subscribed, router_idle),
        orders_per_subscription: per(orders_subscribed, orders_before),
    })
}
