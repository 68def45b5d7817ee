//! The router's `/metrics` after known traffic through the federation: every family is there and
//! counts what happened (operations by name and outcome, plan cache hits and misses, subgraph
//! requests, retries and failures, the supergraph in service, no request left active).

use serde_json::json;
use taproom_e2e::Federation;

/// The value of the series `series` (name and labels exactly as written) in a `/metrics` text.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn router_metrics_count_the_traffic() {
    let mut f = Federation::start().await;
    for _ in 0..3 {
        f.gql(
            "query Page { beers(first: 2) { totalCount } }",
            json!({}),
            None,
        )
        .await;
    }
    f.gql("query Broken { noSuchField }", json!({}), None).await;
    // Not GraphQL requests at all, and a batch with one member that is not: refused operations too.
    f.post_bytes(b"{ not json".to_vec(), None).await;
    f.post(json!([{ "query": "{ __typename }" }, 7]), None)
        .await;
    f.stop_beers().await;
    let partial = f
        .gql(
            r#"query One { beer(sku: "123456") { name } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        partial["errors"][0]["extensions"]["code"],
        "SUBGRAPH_REQUEST_FAILED"
    );

    let metrics = f.state.client.metrics.clone();
    let text = taproom_telemetry::metrics::render(metrics.registry());
    let count =
        |series: &str| value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(
        count(
            r#"http_server_request_duration_seconds_count{graphql_operation_name="Page",outcome="ok"}"#
        ),
        3.0
    );
    assert_eq!(
        count(
            r#"http_server_request_duration_seconds_count{graphql_operation_name="One",outcome="graphql_errors"}"#
        ),
        1.0
    );
    assert_eq!(
        count(
            r#"http_server_request_duration_seconds_count{graphql_operation_name="anonymous",outcome="request_error"}"#
        ),
        3.0,
        "refused operations are counted before they have a name: Broken, the bad body, the bad member"
    );
    assert_eq!(
        count(
            r#"http_server_request_duration_seconds_count{graphql_operation_name="anonymous",outcome="ok"}"#
        ),
        1.0,
        "the batch's good member"
    );
    assert_eq!(
        count(r#"taproom_router_plan_cache_requests_total{result="hit"}"#),
        2.0
    );
    assert_eq!(
        count(r#"taproom_router_plan_cache_requests_total{result="miss"}"#),
        4.0
    );
    assert_eq!(count("taproom_router_operations_prepared_total"), 4.0);
    assert_eq!(
        count(r#"taproom_router_subgraph_requests_total{subgraph="beers"}"#),
        5.0,
        "three pages, and the refused request to the stopped subgraph sent twice"
    );
    assert_eq!(
        count(r#"taproom_router_subgraph_retries_total{subgraph="beers",result="retried"}"#),
        1.0,
        "a refused connection is retried once"
    );
    assert_eq!(
        count(r#"taproom_router_subgraph_errors_total{subgraph="beers",reason="transport"}"#),
        1.0
    );
    assert_eq!(
        count(r#"http_client_request_duration_seconds_count{subgraph="beers"}"#),
        3.0,
        "answers only"
    );
    assert_eq!(count("http_server_active_requests"), 0.0);
    let sha256 = f.state.supergraph().sha256();
    assert_eq!(
        count(&format!(
            r#"taproom_router_supergraph_info{{sha256="{sha256}"}}"#
        )),
        1.0
    );
    // Labels stay bounded: no query text, no variables, no user ids.
    assert!(
        !text.contains("noSuchField") && !text.contains("123456"),
        "{text}"
    );
}

/// `/dashboard` charts each subgraph's rate, p95 and failures between the router's samples.
#[tokio::test]
async fn the_dashboard_charts_each_subgraph_between_samples() {
    let mut f = Federation::start().await;
    let history = &f.state.client.metrics.history;
    history.sample(&taproom_telemetry::metrics::render(
        f.state.client.metrics.registry(),
    ));
    for _ in 0..4 {
        f.gql("{ beers(first: 1) { totalCount } }", json!({}), None)
            .await;
    }
    f.stop_beers().await;
    f.gql(r#"{ beer(sku: "123456") { name } }"#, json!({}), None)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let history = &f.state.client.metrics.history;
    history.sample(&taproom_telemetry::metrics::render(
        f.state.client.metrics.registry(),
    ));
    let response = reqwest::get(f.router.graphql_url().replace("/graphql", "/dashboard"))
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .starts_with("default-src 'none'"));
    let page = response.text().await.expect("html");
    assert!(page.contains("<h2>beers</h2>"), "{page}");
    assert!(page.contains("<polyline"), "{page}");
    assert!(page.contains("failures: 1.0 per 5 s"), "{page}");
    assert!(
        !page.contains("requests: 0.0 /s"),
        "five beers requests in the interval: {page}"
    );
}
