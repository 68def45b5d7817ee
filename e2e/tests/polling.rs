//! A router composing live subgraphs polls them: a schema that composes is swapped in, one that does
//! not is refused and the old supergraph keeps serving.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{routing::post, Router};
use clap::Parser as _;
use serde_json::{json, Value};
use taproom_e2e::{Federation, SUBGRAPH_SECRET};
use taproom_router::config::{Cli, Command};
use tokio::net::TcpListener;

const V1: &str = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
type Query { hello: String }
"#;
const V2: &str = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
type Query { hello: String world: String }
"#;
/// Declares `Beer.sku` as an Int, which conflicts with the beers subgraph's String.
const BROKEN: &str = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
type Query { hello: String world: String }
type Beer @key(fields: "sku") { sku: Int! }
"#;

/// A subgraph whose SDL the test can change; `served` counts each SDL it has answered.
async fn changing_subgraph(
    sdl: Arc<Mutex<&'static str>>,
    served: Arc<Mutex<Vec<&'static str>>>,
) -> String {
    let app = Router::new().route(
        "/graphql",
        post(move |body: String| {
            let (sdl, served) = (sdl.clone(), served.clone());
            async move {
                let answer = if body.contains("_service") {
                    let sdl = *sdl.lock().expect("lock");
                    served.lock().expect("lock").push(sdl);
                    json!({ "data": { "_service": { "sdl": sdl } } })
                } else {
                    json!({ "data": { "hello": "hi", "world": "earth" } })
                };
                axum::Json(answer)
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn ask(url: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn schema_changes_are_swapped_in_only_when_they_compose() {
    let f = Federation::start().await;
    let sdl = Arc::new(Mutex::new(V1));
    let served = Arc::new(Mutex::new(Vec::new()));
    let extra = changing_subgraph(sdl.clone(), served.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    // The flags as an operator writes them; every other setting at its default.
    let subgraphs = format!(
        "users={},beers={},orders={},extra={extra}",
        f.users.graphql_url(),
        f.beers.graphql_url(),
        f.orders.graphql_url()
    );
    let listen = listener.local_addr().expect("bound").to_string();
    let cli = Cli::try_parse_from([
        "taproom-router",
        "serve",
        "--subgraph",
        &subgraphs,
        "--listen",
        &listen,
        "--poll-interval-secs",
        "1",
        "--subgraph-timeout-secs",
        "5",
        "--subgraph-secret",
        SUBGRAPH_SECRET,
    ])
    .expect("the flags parse");
    let Command::Serve(args) = cli.command else {
        unreachable!("serve was asked for");
    };
    tokio::spawn(taproom_router::serve(
        *args,
        listener,
        std::future::pending(),
    ));

    let first = ask(&url, r#"{ hello beer(sku: "123456") { name } }"#).await;
    assert_eq!(
        first["data"],
        json!({ "hello": "hi", "beer": { "name": "Бургаско" } })
    );
    let unknown = ask(&url, "{ world }").await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"],
        json!("GRAPHQL_VALIDATION_FAILED")
    );

    *sdl.lock().expect("lock") = V2;
    let mut swapped = Value::Null;
    // A bound for a broken test (a poll a second), not a measure.
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        swapped = ask(&url, "{ world }").await;
        if swapped.get("errors").is_none() {
            break;
        }
    }
    assert_eq!(
        swapped,
        json!({ "data": { "world": "earth" } }),
        "the new schema is in service"
    );

    *sdl.lock().expect("lock") = BROKEN;
    // Until two polls have seen the broken schema.
    let broken_polls = || {
        served
            .lock()
            .expect("lock")
            .iter()
            .filter(|sdl| **sdl == BROKEN)
            .count()
    };
    taproom_e2e::until("two polls of the broken schema", || broken_polls() >= 2).await;
    let kept = ask(&url, r#"{ world beer(sku: "123457") { sku name } }"#).await;
    assert_eq!(
        kept,
        json!({ "data": { "world": "earth", "beer": { "sku": "123457", "name": "Загорка" } } }),
        "a schema that does not compose is refused; the last good one keeps serving"
    );
    // One reload put in service, one refused: counted once though several polls saw it.
    let metrics = reqwest::get(url.replace("/graphql", "/metrics"))
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    for (series, expected) in [
        (
            r#"taproom_router_supergraph_reloads_total{result="success"} "#,
            "1",
        ),
        (
            r#"taproom_router_supergraph_reloads_total{result="failure"} "#,
            "1",
        ),
    ] {
        let value = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"));
        assert_eq!(value, expected, "{series}");
    }
}
