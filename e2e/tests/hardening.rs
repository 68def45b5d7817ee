//! No single client can stall the router or take it over: what one client can hold (CPU, sockets,
//! subscriptions, answer bytes) is bounded where it is spent, and the rest of the router keeps
//! serving everyone else. Measured by counts of completed requests, never by timing them.

use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc,
};

use serde_json::{json, Value};
use taproom_e2e::{ws::Ws, Federation, HttpOptions};
use taproom_router::client::TrustedProxies;

const ORDER_CHANGED: &str =
    "subscription { orderChanged { id owner { username } items { sku beer { name } } } }";

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// One client (a token, behind one address) at every one of its limits: the next socket, stream
/// and subscription of its own are refused with RATE_LIMITED, while another client connects,
/// subscribes, gets its events and runs queries as if nothing were happening. The report: one token
/// took all 10,000 subscription slots and every other user was refused.
#[tokio::test]
async fn one_client_at_its_limits_leaves_the_router_to_everyone_else() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let (olga, _) = f.register("olga").await;
    // The test's clients come through a "proxy" on 127.0.0.1 that names them, as HAProxy would.
    let options = HttpOptions {
        trusted_proxies: TrustedProxies {
            ranges: vec!["127.0.0.1/32".parse().expect("a range")],
            ..TrustedProxies::default()
        },
        ..HttpOptions::default()
    };
    let router = f
        .another_router()
        .http(options)
        .tuned(|router| {
            router
                .max_subscriptions_per_client(2)
                .max_connections_per_client(3)
        })
        .start()
        .await;
    let url = router.graphql_url();
    let a = [("x-forwarded-for", "198.51.100.1")];
    let b = [("x-forwarded-for", "198.51.100.2")];

    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(
            Ws::try_connect(&url, Some(&ivan), &a)
                .await
                .expect("within the limit"),
        );
    }
    let refused = Ws::try_connect(&url, Some(&ivan), &a)
        .await
        .err()
        .expect("a fourth socket is refused");
    assert!(refused.starts_with("429"), "{refused}");
    assert!(refused.contains("RATE_LIMITED"), "{refused}");

    sockets[0].subscribe("1", ORDER_CHANGED).await;
    sockets[1].subscribe("2", ORDER_CHANGED).await;
    taproom_e2e::until("two subscriptions", || {
        router.state.open_subscriptions() == 2
    })
    .await;
    sockets[2].subscribe("3", ORDER_CHANGED).await;
    let third = sockets[2].next().await;
    assert_eq!(third["type"], "error", "{third}");
    assert_eq!(
        third["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{third}"
    );
    assert!(third["payload"][0]["extensions"]["retryAfterSeconds"].is_number());
    // Over Server-Sent Events too: the budget is the client's, whatever the transport.
    let sse = f
        .http
        .post(&url)
        .bearer_auth(&ivan)
        .header("x-forwarded-for", "198.51.100.1")
        .header("accept", "text/event-stream")
        .json(&json!({ "query": ORDER_CHANGED }))
        .send()
        .await
        .expect("answers");
    let sse: Value = serde_json::from_str(&sse.text().await.expect("a body"))
        .or_else(|_| Ok::<_, ()>(Value::Null))
        .expect("read");
    assert_eq!(code(&sse), "RATE_LIMITED", "{sse}");

    // Everyone else: a socket, a subscription with its events, queries.
    let mut other = Ws::try_connect(&url, Some(&olga), &b)
        .await
        .expect("another client is not ivan");
    other.subscribe("mine", ORDER_CHANGED).await;
    taproom_e2e::until("olga's subscription", || {
        router.state.open_subscriptions() == 3 && f.orders_subscribers() == 3
    })
    .await;
    let added = f
        .gql(
            r#"mutation { addToOrder(sku: "123456", quantity: 1) { id } }"#,
            json!({}),
            Some(&olga),
        )
        .await;
    assert!(added["errors"].is_null(), "{added}");
    let event = other.next().await;
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(
        event["payload"]["data"]["orderChanged"]["owner"]["username"],
        "olga"
    );
    let query = f
        .http
        .post(&url)
        .header("x-forwarded-for", "198.51.100.2")
        .json(&json!({ "query": "{ beers(first: 2) { totalCount } }" }))
        .send()
        .await
        .expect("answers")
        .json::<Value>()
        .await
        .expect("JSON");
    assert!(query["data"]["beers"]["totalCount"].is_number(), "{query}");

    // What ivan gives back, he may take again.
    sockets[0]
        .send(json!({ "id": "1", "type": "complete" }))
        .await;
    taproom_e2e::until("ivan's first subscription ending", || {
        router.state.open_subscriptions() == 2
    })
    .await;
    sockets[2].subscribe("4", ORDER_CHANGED).await;
    taproom_e2e::until("ivan's new subscription", || {
        router.state.open_subscriptions() == 3
    })
    .await;
}

/// Hostile operations of each kind, several at once from one client, while another sends a plain
/// query over and over: plain requests keep completing while the hostile ones are all in flight.
/// The report: four 214 KB `@defer` operations kept a plain `{ beers(first: 5) { totalCount } }`
/// waiting 26 s, because preparing them ran on the threads that serve every request (here two,
/// so two hostile operations held them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_operations_of_each_kind_leave_plain_requests_flowing() {
    let f = Arc::new(Federation::start().await);
    let plain = "{ beers(first: 5) { totalCount } }";
    let warm = f.gql(plain, json!({}), None).await;
    assert!(warm["errors"].is_null(), "{warm}");

    let catalog = "beers(first: 100) { edges { node { sku name price description } } }";
    let repeated = "beers { totalCount } ".repeat(3000);
    let sixteen = format!("...@defer {{ {catalog} }} ").repeat(16);
    let too_many = format!("...@defer {{ {catalog} }} ").repeat(2850);
    let aliased: String = (0..200).map(|a| format!("a{a}: {catalog} ")).collect();
    // Each one is new text (a comment makes it so): none is a plan cache hit.
    let kinds: Vec<(&str, String)> = vec![
        (
            "one field repeated 3,000 times (the field-merging rule)",
            format!("{{ {repeated} }}"),
        ),
        ("the same, again", format!("{{ {repeated} }}")),
        ("the same, a third time", format!("{{ {repeated} }}")),
        (
            "16 deferred fragments of a 100-beer page (the most allowed)",
            format!("{{ __typename {sixteen} }}"),
        ),
        (
            "2,850 deferred fragments (refused)",
            format!("{{ __typename {too_many} }}"),
        ),
        (
            "200 aliases of a 100-beer page (a large answer to shape)",
            format!("{{ {aliased} }}"),
        ),
    ];
    const ROUNDS: usize = 2;
    let kinds_count = kinds.len();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let hostile_over = Arc::new(AtomicBool::new(false));
    let mut hostile = Vec::new();
    for (n, (kind, operation)) in kinds.into_iter().enumerate() {
        let (f, in_flight) = (f.clone(), in_flight.clone());
        hostile.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let response = f
                    .http
                    .post(f.router.graphql_url())
                    .header(
                        "accept",
                        "multipart/mixed;deferSpec=20220824, application/json",
                    )
                    .json(&json!({ "query": format!("# {n} {round}\n{operation}") }))
                    .send()
                    .await
                    .expect("answers");
                let status = response.status();
                let body = response.text().await.expect("a body");
                in_flight.fetch_sub(1, Ordering::SeqCst);
                assert!(
                    status.is_success() || status.is_client_error() || status == 503,
                    "{kind}: {status} {}",
                    &body[..body.len().min(300)]
                );
            }
        }));
    }
    // Plain requests that started and ended while two or more hostile ones were in flight (two
    // would hold both workers, were operations prepared there).
    let under_load = {
        let (f, over, in_flight) = (f.clone(), hostile_over.clone(), in_flight.clone());
        tokio::spawn(async move {
            let (mut all, mut loaded) = (0usize, 0usize);
            while !over.load(Ordering::SeqCst) {
                let before = in_flight.load(Ordering::SeqCst);
                let answer = f.gql(plain, json!({}), None).await;
                assert!(answer["errors"].is_null(), "{answer}");
                all += 1;
                if before >= 2 && in_flight.load(Ordering::SeqCst) >= 2 {
                    loaded += 1;
                }
            }
            (all, loaded)
        })
    };
    for task in hostile {
        task.await.expect("the hostile client ends");
    }
    hostile_over.store(true, Ordering::SeqCst);
    let (all, loaded) = under_load.await.expect("the plain client ends");
    eprintln!("plain requests: {all}, {loaded} of them with 2 or more of the {kinds_count} hostile ones in flight");
    assert!(
        loaded >= 10,
        "only {loaded} plain requests (of {all}) completed while 2 or more hostile ones were in flight"
    );
}

/// A WebSocket with no operation running is closed after the idle time, with 1000; one with an
/// operation running is not.
#[tokio::test]
async fn an_idle_websocket_is_closed() {
    let f = Federation::start().await;
    let (ivan, _) = f.register("ivan").await;
    let options = HttpOptions {
        websocket_idle: std::time::Duration::from_millis(200),
        ..HttpOptions::default()
    };
    let router = f.another_router().http(options).start().await;
    let mut idle = Ws::connect(&router.graphql_url(), Some(&ivan)).await;
    let mut busy = Ws::connect(&router.graphql_url(), Some(&ivan)).await;
    busy.subscribe("1", ORDER_CHANGED).await;
    assert_eq!(idle.next().await, json!({ "type": "closed", "code": 1000 }));
    // The busy one still delivers.
    taproom_e2e::until("the subscription opening", || {
        router.state.open_subscriptions() == 1 && f.orders_subscribers() == 1
    })
    .await;
    let added = f
        .gql(
            r#"mutation { addToOrder(sku: "123456", quantity: 1) { id } }"#,
            json!({}),
            Some(&ivan),
        )
        .await;
    assert!(added["errors"].is_null(), "{added}");
    assert_eq!(busy.next().await["type"], "next");
    assert_eq!(router.state.connections_per_client.clients(), 1);
}

/// What one operation may make the router hold: at most 16 deferred fragments (each is an operation
/// of its own), and a bounded total of subgraph answers (a fetch past it fails, named).
#[tokio::test]
async fn deferred_fragments_and_answer_bytes_are_bounded() {
    let f = Federation::start().await;
    let fragment = "...@defer { beers(first: 1) { totalCount } } ";
    let ask =
        |defers: usize| json!({ "query": format!("{{ __typename {} }}", fragment.repeat(defers)) });
    let (status, at_limit) = f.post(ask(16), None).await;
    assert_eq!(status, 200, "{at_limit}");
    let (status, over) = f.post(ask(17), None).await;
    assert_eq!((status, code(&over)), (400, "MAX_FIELDS_LIMIT"), "{over}");
    assert!(
        over["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("defers 17 fragments")),
        "{over}"
    );

    let router = f
        .another_router()
        .tuned(|router| router.max_answer_bytes(2_000))
        .start()
        .await;
    let http = reqwest::Client::new();
    let ask = |query: &'static str| {
        http.post(router.graphql_url())
            .json(&json!({ "query": query }))
            .send()
    };
    let small: Value = ask("{ beer(sku: \"123456\") { name } }")
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert!(small["errors"].is_null(), "{small}");
    let large: Value = ask("{ beers(first: 100) { edges { node { sku name description } } } }")
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(code(&large), "SUBGRAPH_REQUEST_FAILED", "{large}");
    assert!(
        large["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit of 2000 bytes")),
        "{large}"
    );
}
