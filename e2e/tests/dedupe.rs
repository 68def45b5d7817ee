//! In-flight subgraph request deduplication, counted: identical queries sent at the same time share
//! one request per fetch node, different tokens never share, mutations are always sent.
//!
//! No timing is assumed. Each subgraph sits behind a gate that holds every request it receives
//! until all `n` client operations have reached that subgraph's fetch: either as a request the gate
//! holds, or as one the router saved by joining a request in flight (its per-subgraph counter).
//! The counts then say exactly what was shared: a router that shares too little shows more
//! requests received, one that shares what it must not (a mutation, another token's request) shows
//! fewer, and one whose requests never all arrive opens the gate only at its safety timeout and
//! fails the counts all the same.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use axum::{body::Bytes, http::HeaderMap, routing::post, Router as Routes};
use serde_json::{json, Value};
use taproom_e2e::{forward, Federation, RunningRouter};
use taproom_router::Router;
use tokio::net::TcpListener;

/// How long a gate waits for all operations before letting its requests through anyway.
const GATE_TIMEOUT: Duration = Duration::from_secs(5);

/// A proxy in front of one real subgraph that holds requests as described above.
struct Gate {
    url: String,
    /// Requests it received.
    received: Arc<Mutex<u64>>,
}

impl Gate {
    /// A gate for `subgraph`, forwarding to `upstream`, expecting `n` operations to reach it; the
    /// router it counts for is set in `router` once started.
    async fn start(
        subgraph: &'static str,
        upstream: String,
        n: u64,
        router: Arc<OnceLock<Arc<Router>>>,
    ) -> Gate {
        let received = Arc::new(Mutex::new(0u64));
        let counter = received.clone();
        let http = reqwest::Client::new();
        let app = Routes::new().route(
            "/graphql",
            post(move |headers: HeaderMap, body: Bytes| {
                let (counter, router, http, upstream) = (
                    counter.clone(),
                    router.clone(),
                    http.clone(),
                    upstream.clone(),
                );
                async move {
                    *counter.lock().expect("lock") += 1;
                    let deadline = Instant::now() + GATE_TIMEOUT;
                    loop {
                        let received = *counter.lock().expect("lock");
                        let saved = router
                            .get()
                            .and_then(|r| r.client.saved().get(subgraph).copied())
                            .unwrap_or(0);
                        if received + saved >= n || Instant::now() > deadline {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    forward(&http, &upstream, &headers, body).await
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Gate { url, received }
    }

    fn received(&self) -> u64 {
        *self.received.lock().expect("lock")
    }
}

/// A router whose `subgraphs` sit behind gates expecting `n` operations each.
async fn gated(f: &Federation, subgraphs: &[&'static str], n: u64) -> (RunningRouter, Vec<Gate>) {
    let slot = Arc::new(OnceLock::new());
    let mut gates = Vec::new();
    let mut router = f.another_router();
    for &subgraph in subgraphs {
        let upstream = match subgraph {
            "users" => f.users.graphql_url(),
            "beers" => f.beers.graphql_url(),
            _ => f.orders.graphql_url(),
        };
        let gate = Gate::start(subgraph, upstream, n, slot.clone()).await;
        router = router.subgraph_url(subgraph, gate.url.clone());
        gates.push(gate);
    }
    let router = router.start().await;
    slot.set(router.state.clone()).ok().expect("set once");
    (router, gates)
}

/// Sends `query` once per token in `tokens`, all at the same time; returns the answers.
async fn concurrently(router: &RunningRouter, query: &str, tokens: &[Option<&str>]) -> Vec<Value> {
    let http = reqwest::Client::new();
    let sends = tokens.iter().map(|token| {
        let mut request = http
            .post(router.graphql_url())
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("the router answers");
            response.json::<Value>().await.expect("json")
        }
    });
    futures_util::future::join_all(sends).await
}

fn saved(router: &RunningRouter, subgraph: &str) -> u64 {
    router
        .state
        .client
        .saved()
        .get(subgraph)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn identical_operations_share_one_request_per_fetch_node() {
    let f = Federation::start().await;
    let (token, _) = f.register("dora").await;
    let add = "mutation { addToOrder(sku: \"123456\", quantity: 2) { id } }";
    assert!(f.gql(add, json!({}), Some(&token)).await["errors"].is_null());

    // Orders first, then the lines' beers from beers: two fetch nodes, each sent once.
    let (router, gates) = gated(&f, &["orders", "beers"], 8).await;
    let query = "{ myOrders { items { quantity beer { name } } } }";
    let answers = concurrently(&router, query, &[Some(token.as_str()); 8]).await;
    for answer in &answers {
        assert_eq!(
            answer["data"],
            json!({ "myOrders": [{ "items": [{ "quantity": 2, "beer": { "name": "Бургаско" } }] }] }),
            "{answer:#}"
        );
    }
    assert_eq!((gates[0].received(), saved(&router, "orders")), (1, 7));
    assert_eq!((gates[1].received(), saved(&router, "beers")), (1, 7));
}

#[tokio::test]
async fn different_tokens_never_share_a_request() {
    let f = Federation::start().await;
    let (ann, _) = f.register("ann").await;
    let (ben, _) = f.register("ben").await;
    let (router, gates) = gated(&f, &["users"], 6).await;
    let tokens = [Some(ann.as_str()), Some(ben.as_str())].repeat(3);
    let answers = concurrently(&router, "{ me { username } }", &tokens).await;
    for (answer, token) in answers.iter().zip(&tokens) {
        let expected = if *token == Some(ann.as_str()) {
            "ann"
        } else {
            "ben"
        };
        assert_eq!(
            answer["data"]["me"]["username"],
            json!(expected),
            "{answer:#}"
        );
    }
    // One request per token; each of the other four joined the request of its own token.
    assert_eq!((gates[0].received(), saved(&router, "users")), (2, 4));
}

#[tokio::test]
async fn a_mutation_is_never_shared() {
    let f = Federation::start().await;
    let (token, _) = f.register("cleo").await;
    let (router, gates) = gated(&f, &["orders"], 3).await;
    let add = "mutation { addToOrder(sku: \"123456\", quantity: 1) { itemCount } }";
    let answers = concurrently(&router, add, &[Some(token.as_str()); 3]).await;
    for answer in &answers {
        assert!(answer["errors"].is_null(), "{answer:#}");
    }
    assert_eq!((gates[0].received(), saved(&router, "orders")), (3, 0));
    // All three were applied: the order holds the three additions.
    let total = f
        .gql("{ myOrders { itemCount } }", json!({}), Some(&token))
        .await;
    assert_eq!(
        total["data"]["myOrders"][0]["itemCount"],
        json!(3),
        "{total:#}"
    );
}

#[tokio::test]
async fn with_deduplication_off_every_request_is_sent() {
    let f = Federation::start().await;
    let slot = Arc::new(OnceLock::new());
    let gate = Gate::start("beers", f.beers.graphql_url(), 4, slot.clone()).await;
    let router = f
        .another_router()
        .subgraph_url("beers", gate.url.clone())
        .dedupe(false)
        .start()
        .await;
    slot.set(router.state.clone()).ok().expect("set once");
    let answers = concurrently(&router, "{ beer(sku: \"123456\") { name } }", &[None; 4]).await;
    for answer in &answers {
        assert_eq!(
            answer["data"]["beer"]["name"],
            json!("Бургаско"),
            "{answer:#}"
        );
    }
    assert_eq!((gate.received(), saved(&router, "beers")), (4, 0));
}
