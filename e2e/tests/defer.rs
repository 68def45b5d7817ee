//! `@defer` through the router: incremental delivery (`multipart/mixed; deferSpec=20220824`) to a
//! client that takes it, one complete answer to one that does not.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{http::HeaderMap, routing::post, Router};
use serde_json::{json, Value};
use taproom_e2e::Federation;
use tokio::{net::TcpListener, sync::Semaphore};

const ACCEPT_INCREMENTAL: &str = "multipart/mixed;deferSpec=20220824, application/json";

/// A proxy in front of `upstream` that holds every request until the test gives it a permit, and
/// answers 502 instead of forwarding while `failing` is above 0 (counting down).
async fn held_subgraph(upstream: String) -> (String, Arc<Semaphore>, Arc<AtomicUsize>) {
    let permits = Arc::new(Semaphore::new(0));
    let failing = Arc::new(AtomicUsize::new(0));
    let (held, fail) = (permits.clone(), failing.clone());
    let http = reqwest::Client::new();
    let app = Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (held, fail, http, upstream) =
                (held.clone(), fail.clone(), http.clone(), upstream.clone());
            async move {
                held.acquire().await.expect("never closed").forget();
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
    (url, permits, failing)
}

/// Reads a `multipart/mixed` response part by part: each call gives the next part's JSON, as soon
/// as the part is complete (the next boundary has come), or `None` after the last.
struct Parts {
    response: reqwest::Response,
    buffer: Vec<u8>,
    boundary: Vec<u8>,
    done: bool,
}

impl Parts {
    fn new(response: reqwest::Response) -> Self {
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("text")
            .to_owned();
        assert!(
            content_type.starts_with("multipart/mixed")
                && content_type.contains("deferSpec=20220824"),
            "{content_type}"
        );
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("a boundary")
            .trim_matches('"')
            .to_owned();
        Parts {
            response,
            buffer: Vec::new(),
            boundary: format!("\r\n--{boundary}").into_bytes(),
            done: false,
        }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            // The buffer starts at a boundary; a part is complete once the next one is in.
            if let Some(start) = find(&self.buffer, &self.boundary) {
                let after = start + self.boundary.len();
                if self.buffer[after..].starts_with(b"--") {
                    self.done = true;
                    return None;
                }
                if let Some(end) = find(&self.buffer[after..], &self.boundary) {
                    let part = self.buffer[after..after + end].to_vec();
                    self.buffer.drain(..after + end);
                    let text = String::from_utf8(part).expect("UTF-8");
                    let (headers, body) = text.split_once("\r\n\r\n").expect("headers, body");
                    assert!(headers.contains("application/json"), "{headers}");
                    return Some(serde_json::from_str(body).expect("a JSON part"));
                }
            }
            assert!(!self.done);
            match self.response.chunk().await.expect("reads") {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => panic!(
                    "the response ended without its closing boundary: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn send(router: &str, query: &str, token: &str, accept: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(router)
        .bearer_auth(token)
        .header("accept", accept)
        .json(&json!({ "query": query, "variables": { "slow": true } }))
        .send()
        .await
        .expect("the router answers")
}

const QUERY: &str = r#"query Page($slow: Boolean!) {
    me { username }
    myOrders { id items { sku ... @defer(label: "beer", if: $slow) { beer { name } } } }
}"#;

/// Ivan, with one open order of two lines; a router whose beers requests the test holds.
async fn shop() -> (
    Federation,
    String,
    taproom_e2e::RunningRouter,
    Arc<Semaphore>,
    Arc<AtomicUsize>,
) {
    let f = Federation::start().await;
    let (token, _) = f.register("ivan").await;
    for sku in ["123456", "123457"] {
        let added = f
            .gql(
                "mutation($sku: String!) { addToOrder(sku: $sku, quantity: 2) { id } }",
                json!({ "sku": sku }),
                Some(&token),
            )
            .await;
        assert!(added["errors"].is_null(), "{added}");
    }
    let (beers, held, failing) = held_subgraph(f.beers.graphql_url()).await;
    let router = f
        .another_router()
        .subgraph_url("beers", beers)
        .start()
        .await;
    (f, token, router, held, failing)
}

/// The initial payload comes while the beers subgraph still holds the deferred fields' request:
/// only once the client has it does the test let beers answer, and then the deferred part comes,
/// one entry per line at its path.
#[tokio::test]
async fn the_initial_payload_comes_before_a_slow_subgraph_answers_the_deferred_part() {
    let (_f, token, router, held, _) = shop().await;
    let mut parts =
        Parts::new(send(&router.graphql_url(), QUERY, &token, ACCEPT_INCREMENTAL).await);

    let initial = tokio::time::timeout(std::time::Duration::from_secs(10), parts.next())
        .await
        .expect("the initial payload does not wait for the held beers request")
        .expect("an initial payload");
    assert_eq!(initial["hasNext"], true, "{initial}");
    assert_eq!(initial["data"]["me"]["username"], "ivan");
    let order = &initial["data"]["myOrders"][0];
    assert_eq!(
        order["items"],
        json!([{ "sku": "123456" }, { "sku": "123457" }]),
        "the deferred fields are not in the initial payload: {initial}"
    );
    assert!(initial.get("errors").is_none(), "{initial}");

    held.add_permits(100);
    let deferred = parts.next().await.expect("the deferred part");
    assert_eq!(deferred["hasNext"], false, "{deferred}");
    let entries = deferred["incremental"].as_array().expect("incremental");
    assert_eq!(entries.len(), 2, "one per line: {deferred}");
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry["path"],
            json!(["myOrders", 0, "items", i]),
            "{deferred}"
        );
        assert_eq!(entry["label"], "beer");
        assert!(entry["data"]["beer"]["name"].is_string(), "{deferred}");
        assert!(
            entry["data"].get("sku").is_none(),
            "only the fragment's fields"
        );
    }
    assert!(parts.next().await.is_none(), "nothing after hasNext: false");
}

/// An error inside a deferred fragment is in its part, with its path; the initial payload has no
/// error and its data stands.
#[tokio::test]
async fn an_error_inside_a_deferred_fragment_stays_in_its_part() {
    let (_f, token, router, held, failing) = shop().await;
    // The first try and its one retry both meet a 502.
    failing.store(2, Ordering::SeqCst);
    held.add_permits(100);
    let mut parts =
        Parts::new(send(&router.graphql_url(), QUERY, &token, ACCEPT_INCREMENTAL).await);
    let initial = parts.next().await.expect("the initial payload");
    assert!(initial.get("errors").is_none(), "{initial}");
    assert_eq!(initial["data"]["me"]["username"], "ivan");
    let deferred = parts.next().await.expect("the deferred part");
    let entries = deferred["incremental"].as_array().expect("incremental");
    assert_eq!(entries[0]["data"], json!({ "beer": null }), "{deferred}");
    let errors = entries[0]["errors"].as_array().expect("the part's errors");
    assert_eq!(
        errors[0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED",
        "{deferred}"
    );
    assert_eq!(errors[0]["path"][0], "myOrders", "{deferred}");
    assert!(parts.next().await.is_none());
}

/// Deferral is a hint: a client that does not take multipart, or a fragment whose `if` is false,
/// gets one complete answer. `@defer` on a mutation's root fields is refused.
#[tokio::test]
async fn without_multipart_or_with_if_false_the_answer_is_whole() {
    let (_f, token, router, held, _) = shop().await;
    held.add_permits(100);
    let whole: Value = send(&router.graphql_url(), QUERY, &token, "application/json")
        .await
        .json()
        .await
        .expect("JSON");
    assert!(whole.get("errors").is_none(), "{whole}");
    assert!(
        whole["data"]["myOrders"][0]["items"][1]["beer"]["name"].is_string(),
        "{whole}"
    );

    let response = reqwest::Client::new()
        .post(router.graphql_url())
        .bearer_auth(&token)
        .header("accept", ACCEPT_INCREMENTAL)
        .json(&json!({ "query": QUERY, "variables": { "slow": false } }))
        .send()
        .await
        .expect("answers");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("application/json"),
        "{:?}",
        response.headers()
    );
    let whole: Value = response.json().await.expect("JSON");
    assert!(
        whole["data"]["myOrders"][0]["items"][0]["beer"]["name"].is_string(),
        "{whole}"
    );

    let refused: Value = reqwest::Client::new()
        .post(router.graphql_url())
        .bearer_auth(&token)
        .header("accept", ACCEPT_INCREMENTAL)
        .json(&json!({ "query": r#"mutation { ... @defer { checkout { id } } }"# }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("@defer")),
        "{refused}"
    );
}

/// A fragment deferred inside another comes after it, even when its own query is done first:
/// here the inner one needs only orders, the outer one waits on the held beers request.
#[tokio::test]
async fn a_fragment_deferred_inside_another_comes_after_it() {
    let (_f, token, router, held, _) = shop().await;
    let query = r#"query Nested {
        myOrders { id ... @defer(label: "outer") { items { beer { name } ... @defer(label: "inner") { quantity } } } }
    }"#;
    let mut parts =
        Parts::new(send(&router.graphql_url(), query, &token, ACCEPT_INCREMENTAL).await);
    let initial = parts.next().await.expect("the initial payload");
    assert_eq!(
        initial["data"],
        json!({ "myOrders": [{ "id": initial["data"]["myOrders"][0]["id"] }] })
    );
    // The inner query has long been answered; the test waits a little so that it would be sent
    // now if the order were not kept.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    held.add_permits(100);
    let outer = parts.next().await.expect("the outer part");
    let entries = outer["incremental"].as_array().expect("incremental");
    assert_eq!(entries.len(), 1, "{outer}");
    assert_eq!(
        entries[0]["label"], "outer",
        "the outer part first: {outer}"
    );
    assert_eq!(entries[0]["path"], json!(["myOrders", 0]));
    assert!(
        entries[0]["data"]["items"][1]["beer"]["name"].is_string(),
        "{outer}"
    );
    assert_eq!(outer["hasNext"], true);
    let inner = parts.next().await.expect("the inner part");
    let entries = inner["incremental"].as_array().expect("incremental");
    assert_eq!(entries.len(), 2, "one per line: {inner}");
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["label"], "inner");
        assert_eq!(entry["path"], json!(["myOrders", 0, "items", i]));
        assert_eq!(entry["data"], json!({ "quantity": 2 }));
    }
    assert_eq!(inner["hasNext"], false);
    assert!(parts.next().await.is_none());
}
