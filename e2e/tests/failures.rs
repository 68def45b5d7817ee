//! Subgraphs that misbehave: garbage answers, slowness, and what the router forwards to them.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{http::HeaderMap, routing::post, Router};
use serde_json::{json, Value};
use taproom_e2e::Federation;
use tokio::net::TcpListener;

/// A fake subgraph that records the headers it receives and answers `body` after `delay`.
async fn fake_subgraph(
    body: &'static str,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                record.lock().expect("lock").push(headers);
                tokio::time::sleep(delay).await;
                body
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn ask(url: &str, query: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_subgraph_answering_garbage_gives_partial_data_and_forwarded_headers_only() {
    let f = Federation::start().await;
    let (token, _) = f.register("ivan").await;
    let (garbage, seen) = fake_subgraph("<html>oops</html>", Duration::ZERO).await;
    let router = f
        .another_router()
        .subgraph_url("users", garbage)
        .start()
        .await;
    let response = ask(
        &router.graphql_url(),
        r#"{ beer(sku: "123456") { name } me { username } }"#,
        &[
            ("authorization", &format!("Bearer {token}")),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("x-request-id", "checkout-page-42"),
            ("cookie", "session=secret"),
            ("x-custom", "nope"),
        ],
    )
    .await;
    assert_eq!(
        response["data"],
        json!({ "beer": { "name": "Бургаско" }, "me": null })
    );
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        json!("SUBGRAPH_REQUEST_FAILED")
    );
    assert_eq!(
        response["errors"][0]["extensions"]["service"],
        json!("users")
    );
    let seen = seen.lock().expect("lock");
    let headers = &seen[0];
    assert_eq!(headers["authorization"], format!("Bearer {token}").as_str());
    // The trace continues: the client's trace id, the router's own span id.
    let traceparent = headers["traceparent"].to_str().expect("ascii");
    assert!(
        traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-")
            && !traceparent.contains("b7ad6b7169203331"),
        "{traceparent}"
    );
    assert_eq!(headers["x-request-id"], "checkout-page-42");
    assert!(
        !headers.contains_key("cookie"),
        "only Authorization, the trace context and the request id are forwarded"
    );
    assert!(!headers.contains_key("x-custom"));
}

#[tokio::test]
async fn a_slow_subgraph_times_out_into_an_error_not_a_hang() {
    let f = Federation::start().await;
    let (slow, _) = fake_subgraph(r#"{"data":{"beer":null}}"#, Duration::from_secs(5)).await;
    let router = f
        .another_router()
        .subgraph_url("beers", slow)
        .timeout(Duration::from_millis(300))
        .start()
        .await;
    let response = ask(
        &router.graphql_url(),
        r#"{ beer(sku: "1") { name } usernameExists(username: "x") }"#,
        &[],
    )
    .await;
    assert_eq!(
        response["data"],
        json!({ "beer": null, "usernameExists": false })
    );
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        json!("SUBGRAPH_REQUEST_FAILED")
    );
    assert!(response["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("timed out"));
}

#[tokio::test]
async fn every_null_in_a_non_null_position_is_explained_by_an_error() {
    let f = Federation::start().await;
    let (fake, _) = fake_subgraph(
        r#"{"data":{"me":{"username":null},"user":null},"errors":[{"message":"no such user","path":["user"]}]}"#,
        Duration::ZERO,
    )
    .await;
    let router = f.another_router().subgraph_url("users", fake).start().await;
    let response = ask(
        &router.graphql_url(),
        r#"{ me { username } user(id: "2") { id } }"#,
        &[],
    )
    .await;
    assert_eq!(response["data"], json!({ "me": null, "user": null }));
    let paths: Vec<&Value> = response["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["path"])
        .collect();
    assert!(paths.contains(&&json!(["user"])), "{response}");
    assert!(
        paths.contains(&&json!(["me", "username"])),
        "the null username needs its own error: {response}"
    );
}

/// A load balancer in front of `upstream` that answers 502 (no replica answered) to the next
/// `failing` requests and forwards the others; it counts every request it receives.
async fn flaky_balancer(
    upstream: String,
) -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let failing = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let (fail, count) = (failing.clone(), received.clone());
    let http = reqwest::Client::new();
    let app = Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (fail, count, http, upstream) =
                (fail.clone(), count.clone(), http.clone(), upstream.clone());
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                let failed = fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failed {
                    (
                        axum::http::StatusCode::BAD_GATEWAY,
                        axum::body::Bytes::from_static(b"<html>502 Bad Gateway</html>"),
                    )
                } else {
                    taproom_e2e::forward(&http, &upstream, &headers, body).await
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, failing, received)
}

/// A query that meets a replica failing at the connection level (the load balancer's 502) is
/// sent once more and answers whole; a mutation is never sent twice; both are counted.
#[tokio::test]
async fn a_query_is_retried_once_after_a_connection_failure_and_a_mutation_never() {
    use std::sync::atomic::Ordering;
    use taproom_router::metrics::{Retry, RetryLabels};
    let f = Federation::start().await;
    let (token, _) = f.register("ivan").await;
    let (balancer, failing, received) = flaky_balancer(f.users.graphql_url()).await;
    let router = f
        .another_router()
        .subgraph_url("users", balancer)
        .start()
        .await;
    let retried = |result| {
        router
            .state
            .client
            .metrics
            .retries
            .get_or_create(&RetryLabels {
                subgraph: "users".into(),
                result,
            })
            .get()
    };
    let auth = format!("Bearer {token}");

    failing.store(1, Ordering::SeqCst);
    let whole = ask(
        &router.graphql_url(),
        "{ me { username } }",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(whole, json!({ "data": { "me": { "username": "ivan" } } }));
    assert_eq!(received.load(Ordering::SeqCst), 2, "sent once more");
    assert_eq!(retried(Retry::retried), 1);

    // Twice in a row: one retry only, then the error.
    failing.store(2, Ordering::SeqCst);
    let failed = ask(
        &router.graphql_url(),
        "{ me { username } }",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(failed["data"]["me"], Value::Null, "{failed}");
    assert_eq!(
        failed["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{failed}"
    );
    assert_eq!(received.load(Ordering::SeqCst), 4);
    assert_eq!(retried(Retry::retried), 2);

    failing.store(1, Ordering::SeqCst);
    let refused = ask(
        &router.graphql_url(),
        r#"mutation { login(username: "ivan", password: "Password1234") { token } }"#,
        &[],
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{refused}"
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        5,
        "a mutation is sent once"
    );
    assert_eq!(retried(Retry::retried), 2);
    assert_eq!(retried(Retry::budget_exhausted), 0);
}

/// A mutation to a subgraph that honours idempotency keys, from a client that sent an
/// `Idempotency-Key`, is retried after a connection-level failure and applied once; without the
/// key, or to a subgraph not named, it is sent once. A bad key is refused before anything runs.
#[tokio::test]
async fn a_mutation_with_an_idempotency_key_is_retried_and_applied_once() {
    use std::sync::atomic::Ordering;
    let f = Federation::start().await;
    let (token, _) = f.register("ivan").await;
    let (balancer, failing, received) = flaky_balancer(f.orders.graphql_url()).await;
    let router = f
        .another_router()
        .subgraph_url("orders", balancer)
        .idempotent("orders")
        .start()
        .await;
    let auth = format!("Bearer {token}");
    let add = r#"mutation { addToOrder(sku: "123456", quantity: 1) { items { quantity } } }"#;

    let url = router.graphql_url();
    let keyed_headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "checkout-page-1"),
    ];
    let keyed = || ask(&url, add, &keyed_headers);
    failing.store(1, Ordering::SeqCst);
    let first = keyed().await;
    assert_eq!(
        first["data"]["addToOrder"]["items"][0]["quantity"], 1,
        "{first}"
    );
    assert_eq!(received.load(Ordering::SeqCst), 2, "sent once more");
    // The same key again (a client's own retry): answered, not applied.
    let again = keyed().await;
    assert_eq!(again, first);

    failing.store(1, Ordering::SeqCst);
    let unkeyed = ask(&router.graphql_url(), add, &[("authorization", &auth)]).await;
    assert_eq!(
        unkeyed["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{unkeyed}"
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        4,
        "a mutation without a key is sent once"
    );

    let bad = ask(
        &router.graphql_url(),
        add,
        &[("authorization", &auth), ("idempotency-key", "")],
    )
    .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{bad}"
    );
    assert_eq!(received.load(Ordering::SeqCst), 4, "nothing ran");
    let cart = ask(
        &router.graphql_url(),
        "{ currentOrder { items { quantity } } }",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        cart["data"]["currentOrder"]["items"][0]["quantity"], 1,
        "{cart}"
    );
}

/// A subgraph that hangs up without answering (a replica killed mid-request): the client reads
/// which service failed and how, never its address. The report: `request to subgraph "orders"
/// failed: ... error sending request for url (http://127.0.0.1:15003/graphql)`.
#[tokio::test]
async fn a_subgraph_that_hangs_up_is_named_not_addressed() {
    let f = Federation::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            // Read the request's first bytes, then close without a word.
            let mut buffer = [0u8; 1024];
            let _ = socket.readable().await;
            let _ = socket.try_read(&mut buffer);
            drop(socket);
        }
    });
    let router = f.another_router().subgraph_url("beers", url).start().await;
    let answer = ask(
        &router.graphql_url(),
        r#"{ beer(sku: "123456") { name } }"#,
        &[],
    )
    .await;
    let error = &answer["errors"][0];
    assert_eq!(
        error["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{answer}"
    );
    assert_eq!(error["extensions"]["service"], "beers", "{answer}");
    let leaks = taproom_e2e::leaks::leaks_in(&answer.to_string());
    assert!(leaks.is_empty(), "{leaks:?}");
}
