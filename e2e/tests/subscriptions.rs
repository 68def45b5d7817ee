//! Subscriptions through the router: `orderChanged` and `checkouts` from the orders subgraph, with
//! each event's `owner` (users) and lines' `beer` (beers) resolved, over a WebSocket
//! (`graphql-transport-ws`), Server-Sent Events and multipart HTTP; revocation, limits, a subgraph
//! that drops the socket and a supergraph swap ending streams with an error.

use serde_json::{json, Value};
use taproom_e2e::Federation;
use tokio::{
    io::AsyncWriteExt as _,
    net::{TcpListener, TcpStream},
    sync::watch,
};

const ORDER_CHANGED: &str =
    "subscription { orderChanged { id status owner { username } items { sku quantity beer { name } } } }";

use taproom_e2e::ws::{Ws, PATIENCE};

async fn add(f: &Federation, token: &str, sku: &str, quantity: i32) -> Value {
    let added = f
        .gql(
            "mutation($sku: String!, $q: Int!) { addToOrder(sku: $sku, quantity: $q) { id } }",
            json!({ "sku": sku, "q": quantity }),
            Some(token),
        )
        .await;
    assert!(added["errors"].is_null(), "{added}");
    added["data"]["addToOrder"]["id"].clone()
}

/// Waits until `router` has `n` subscriptions open to the subgraph and the orders service is
/// listening for `listening` of them, so a change made next is seen.
async fn subscribed(f: &Federation, router: &taproom_router::Router, n: usize, listening: usize) {
    taproom_e2e::until(&format!("{n} subscriptions opening"), || {
        router.open_subscriptions() >= n
    })
    .await;
    taproom_e2e::until(&format!("orders listening for {listening}"), || {
        f.orders_subscribers() >= listening
    })
    .await;
}

/// The acceptance case: another client adds lines and checks out; each change comes with the
/// owner's name (users) and every line's beer (beers), and only the subscriber's own orders do.
#[tokio::test]
async fn order_changed_over_a_websocket_resolves_owner_and_beers_across_subgraphs() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let (olga, _) = f.register("olga").await;
    let mut ws = Ws::connect(&f.router.graphql_url(), Some(&ivan)).await;
    ws.subscribe("1", ORDER_CHANGED).await;
    subscribed(&f, &f.state, 1, 1).await;

    add(&f, &olga, "123456", 1).await;
    let order = add(&f, &ivan, "123456", 2).await;
    add(&f, &ivan, "123457", 1).await;
    let checked_out = f
        .gql("mutation { checkout { id } }", json!({}), Some(&ivan))
        .await;
    assert!(checked_out["errors"].is_null(), "{checked_out}");

    let first = ws.next().await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["id"], "1");
    let event = &first["payload"]["data"]["orderChanged"];
    assert!(first["payload"].get("errors").is_none(), "{first}");
    assert_eq!(
        event["id"], order,
        "olga's change is not ivan's to see: {first}"
    );
    assert_eq!(event["owner"]["username"], "ivan");
    assert_eq!(event["items"].as_array().expect("items").len(), 1);
    assert!(event["items"][0]["beer"]["name"].is_string(), "{first}");

    let second = ws.next().await;
    let event = &second["payload"]["data"]["orderChanged"];
    assert_eq!(
        event["items"].as_array().expect("items").len(),
        2,
        "{second}"
    );
    assert!(event["items"][1]["beer"]["name"].is_string(), "{second}");

    let third = ws.next().await;
    let event = &third["payload"]["data"]["orderChanged"];
    assert_eq!(event["status"], "CHECKED_OUT", "{third}");

    ws.send(json!({ "id": "1", "type": "complete" })).await;
    // Then the operation is over: the id may be used again.
    ws.subscribe("1", "query { me { username } }").await;
    let answer = ws.next().await;
    assert_eq!(
        answer["payload"]["data"]["me"]["username"], "ivan",
        "{answer}"
    );
    assert_eq!(ws.next().await["type"], "complete");
}

/// Reads Server-Sent Events.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// The next event as (name, data), `None` when the stream ends; comments (heartbeats) skipped.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("reads")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// The same subscription over Server-Sent Events and over multipart HTTP; a subscription over a
/// transport that answers once is refused, saying which ones stream.
#[tokio::test]
async fn order_changed_over_server_sent_events_and_multipart_http() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let http = reqwest::Client::new();
    let post = |accept: &'static str| {
        http.post(f.router.graphql_url())
            .bearer_auth(&ivan)
            .header("accept", accept)
            .json(&json!({ "query": ORDER_CHANGED }))
            .send()
    };
    let sse = post("text/event-stream").await.expect("answers");
    assert!(sse.headers()["content-type"]
        .to_str()
        .expect("text")
        .starts_with("text/event-stream"));
    let mut sse = Sse {
        response: sse,
        buffer: String::new(),
    };
    let mut multipart =
        post("multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0, application/json")
            .await
            .expect("answers");
    assert!(
        multipart.headers()["content-type"]
            .to_str()
            .expect("text")
            .contains("subscriptionSpec"),
        "{:?}",
        multipart.headers()
    );
    subscribed(&f, &f.state, 2, 2).await;
    add(&f, &ivan, "123456", 3).await;

    let (name, data) = sse.next().await.expect("an event");
    assert_eq!(name, "next");
    let event: Value = serde_json::from_str(&data).expect("JSON");
    assert_eq!(
        event["data"]["orderChanged"]["owner"]["username"], "ivan",
        "{event}"
    );
    assert_eq!(event["data"]["orderChanged"]["items"][0]["quantity"], 3);

    let mut text = String::new();
    let payload = loop {
        let chunk = tokio::time::timeout(PATIENCE, multipart.chunk())
            .await
            .expect("a part in time")
            .expect("reads")
            .expect("not the end");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        if let Some(at) = text.find("{\"payload\":") {
            if let Some(end) = text[at..].find("\r\n--graphql") {
                break serde_json::from_str::<Value>(&text[at..at + end]).expect("JSON");
            }
        }
    };
    assert_eq!(
        payload["payload"]["data"]["orderChanged"]["items"][0]["beer"]["name"]
            .as_str()
            .map(|name| !name.is_empty()),
        Some(true),
        "{payload}"
    );

    let refused = f.gql(ORDER_CHANGED, json!({}), Some(&ivan)).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{refused}"
    );
    assert!(refused["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("streaming transport")));
}

/// A revoked token ends the stream with UNAUTHENTICATED within the 5 s bound; a subscription
/// without a token never starts; `checkouts` is for admins.
#[tokio::test]
async fn a_revoked_token_ends_the_stream_and_checkouts_are_for_admins() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let mut ws = Ws::connect(&f.router.graphql_url(), Some(&ivan)).await;
    ws.subscribe("mine", ORDER_CHANGED).await;
    ws.subscribe("all", "subscription { checkouts { id } }")
        .await;
    let forbidden = ws.next().await;
    let errors = if forbidden["type"] == "error" {
        forbidden["payload"].clone()
    } else {
        forbidden["payload"]["errors"].clone()
    };
    assert_eq!(forbidden["id"], "all", "{forbidden}");
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{forbidden}");
    subscribed(&f, &f.state, 1, 1).await;

    let logout = f.gql("mutation { logout }", json!({}), Some(&ivan)).await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    // It ends at the next verification (every REVERIFY, 2 s): how soon is the constant's to say,
    // not this test's to time.
    let mut ended = ws.next().await;
    if ended["id"] == "all" {
        // The forbidden subscription's `complete`.
        ended = ws.next().await;
    }
    assert_eq!(ended["id"], "mine", "{ended}");
    let errors = match ended["type"].as_str() {
        Some("error") => ended["payload"].clone(),
        _ => ended["payload"]["errors"].clone(),
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "UNAUTHENTICATED",
        "{ended}"
    );

    let mut anonymous = Ws::connect(&f.router.graphql_url(), None).await;
    anonymous.subscribe("1", ORDER_CHANGED).await;
    let refused = anonymous.next().await;
    let errors = match refused["type"].as_str() {
        Some("error") => refused["payload"].clone(),
        _ => refused["payload"]["errors"].clone(),
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
}

/// A TCP proxy to `upstream` whose connections all drop when `cut` is set.
async fn cuttable_proxy(upstream: std::net::SocketAddr) -> (String, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("bound");
    let (cut, cuts) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let mut cuts = cuts.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    () = async { let _ = cuts.wait_for(|cut| *cut).await; } => {
                        let _ = client.shutdown().await;
                    }
                }
            });
        }
    });
    (format!("http://{address}/graphql"), cut)
}

/// A subgraph that drops the subscription's socket ends the client's stream with
/// SUBGRAPH_REQUEST_FAILED naming it; so does a supergraph swap, with its own message.
#[tokio::test]
async fn a_dropped_subgraph_socket_or_a_supergraph_swap_ends_the_stream_with_an_error() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let (orders, cut) = cuttable_proxy(f.orders.address).await;
    let router = f
        .another_router()
        .subgraph_url("orders", orders)
        .start()
        .await;
    let mut ws = Ws::connect(&router.graphql_url(), Some(&ivan)).await;
    ws.subscribe("1", ORDER_CHANGED).await;
    subscribed(&f, &router.state, 1, 1).await;
    add(&f, &ivan, "123456", 1).await;
    assert_eq!(ws.next().await["type"], "next");
    cut.send(true).expect("the proxy runs");
    let ended = ws.next().await;
    assert_eq!(ended["type"], "error", "{ended}");
    assert_eq!(
        ended["payload"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{ended}"
    );
    assert_eq!(
        ended["payload"][0]["extensions"]["service"], "orders",
        "{ended}"
    );

    // The cut subscription's listener in orders goes away first.
    taproom_e2e::until("orders dropping the cut subscription", || {
        f.orders_subscribers() == 0
    })
    .await;
    let mut ws = Ws::connect(&f.router.graphql_url(), Some(&ivan)).await;
    ws.subscribe("2", ORDER_CHANGED).await;
    subscribed(&f, &f.state, 1, 1).await;
    f.state.swap(f.state.supergraph());
    let ended = ws.next().await;
    assert_eq!(ended["type"], "error", "{ended}");
    assert!(
        ended["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("supergraph changed")),
        "{ended}"
    );
}

/// The bounds: operations per WebSocket, subscriptions per router; and the protocol's own rules.
#[tokio::test]
async fn limits_and_protocol_errors() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let options = taproom_router::http::HttpOptions {
        max_subscriptions_per_connection: 1,
        ..Default::default()
    };
    let router = f
        .another_router()
        .http(options)
        .max_subscriptions(2)
        .start()
        .await;

    let mut ws = Ws::connect(&router.graphql_url(), Some(&ivan)).await;
    ws.subscribe("a", ORDER_CHANGED).await;
    ws.subscribe("b", ORDER_CHANGED).await;
    let refused = ws.next().await;
    assert_eq!(refused["id"], "b", "{refused}");
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "BAD_REQUEST",
        "{refused}"
    );

    let mut second = Ws::connect(&router.graphql_url(), Some(&ivan)).await;
    second.subscribe("a", ORDER_CHANGED).await;
    let mut third = Ws::connect(&router.graphql_url(), Some(&ivan)).await;
    subscribed(&f, &router.state, 2, 2).await;
    third.subscribe("a", ORDER_CHANGED).await;
    let refused = third.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );

    // The same id twice closes the connection with 4409.
    second.subscribe("a", ORDER_CHANGED).await;
    assert_eq!(
        second.next().await,
        json!({ "type": "closed", "code": 4409 })
    );
    // A subscribe before connection_init: 4401.
    let mut raw = Ws::uninitialised(&router.graphql_url(), &[])
        .await
        .expect("upgrades");
    raw.subscribe("x", ORDER_CHANGED).await;
    assert_eq!(raw.next().await, json!({ "type": "closed", "code": 4401 }));
    // @defer has no place in a subscription.
    third.send(json!({ "id": "d", "type": "subscribe", "payload": { "query": "subscription { orderChanged { id ... @defer { status } } }" } })).await;
    let refused = third.next().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
}

/// On PostgreSQL the events come through LISTEN/NOTIFY, across replicas: an admin subscribed
/// through one orders replica gets one event per checkout made through another (a second router
/// in front of it), with the owner resolved, and nothing for other changes.
#[tokio::test]
async fn checkouts_on_postgres_reach_another_replica_once_each_through_listen_notify() {
    let f = Federation::start_on(taproom_common::testing::TestDb::postgres().await).await;
    let (admin, _) = f.register("admin").await;
    f.promote("admin").await;
    let (ivan, _) = f.register("ivan").await;
    let (olga, _) = f.register("olga").await;
    let replica = f.another_orders_replica().await;
    let writer = f
        .another_router()
        .subgraph_url("orders", replica.graphql_url())
        .start()
        .await;
    let mut ws = Ws::connect(&f.router.graphql_url(), Some(&admin)).await;
    ws.subscribe(
        "all",
        "subscription { checkouts { id status owner { username } } }",
    )
    .await;
    subscribed(&f, &f.state, 1, 1).await;
    let http = reqwest::Client::new();
    let through_replica = |query: &'static str, token: &String| {
        http.post(writer.graphql_url())
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
    };
    let mut expected = Vec::new();
    for (token, name) in [(&ivan, "ivan"), (&olga, "olga")] {
        let added: Value = through_replica(
            r#"mutation { addToOrder(sku: "123456", quantity: 1) { id } }"#,
            token,
        )
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
        assert!(added["errors"].is_null(), "{added}");
        let done: Value = through_replica("mutation { checkout { id } }", token)
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        assert!(done["errors"].is_null(), "{done}");
        expected.push((added["data"]["addToOrder"]["id"].clone(), name));
    }
    for (order, name) in expected {
        let event = ws.next().await;
        let checkout = &event["payload"]["data"]["checkouts"];
        assert_eq!(checkout["id"], order, "{event}");
        assert_eq!(checkout["status"], "CHECKED_OUT");
        assert_eq!(checkout["owner"]["username"], name);
    }
    // Nothing else came: a query on the same socket is answered next.
    ws.subscribe("q", "query { me { username } }").await;
    let next = ws.next().await;
    assert_eq!(next["id"], "q", "no third checkout event: {next}");
}
