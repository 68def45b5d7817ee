//! Traces from the real stack: every service exports OTLP to a collector in the test
//! ([`taproom_e2e::otlp`]), and one client request with `owner` and `beer` fields is one trace with
//! spans from the router and all three subgraphs, every parent link intact.

mod support;

use std::{
    collections::{HashMap, HashSet},
    process::Command,
    time::Duration,
};

use serde_json::{json, Value};
use support::*;
use taproom_e2e::otlp::{Collector, ReceivedSpan};

/// The client's own trace context: the router's span must be its child.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// The query: the cart from orders, its owner from users, its beers from beers.
const CART: &str =
    "query Cart { currentOrder { owner { username } items { quantity beer { name } } } }";

/// Sends `query` with `traceparent`, as a frontend that traces would.
fn traced(router: u16, query: &str, token: &str, traceparent: &str) -> Value {
    let output = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{router}/graphql")])
        .args(["-H", "content-type: application/json"])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .args(["-H", &format!("traceparent: {traceparent}")])
        .args(["-d", &json!({ "query": query }).to_string()])
        .output()
        .expect("curl runs");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

fn in_trace(spans: &[ReceivedSpan], trace_id: &str) -> Vec<ReceivedSpan> {
    spans
        .iter()
        .filter(|span| span.trace_id == trace_id)
        .cloned()
        .collect()
}

/// Whether every service's spans of `trace_id` have arrived: each sends its batches on its own
/// schedule, so this waits for a server span of each of the four `services`.
fn arrived(spans: &[ReceivedSpan], trace_id: &str, prefix: &str) -> bool {
    let served: HashSet<&str> = spans
        .iter()
        .filter(|span| span.trace_id == trace_id && span.kind == 2)
        .map(|span| span.service.as_str())
        .collect();
    ["router", "users", "beers", "orders"]
        .iter()
        .all(|service| served.contains(format!("{prefix}-{service}").as_str()))
}

/// The spans of `trace_id` once every service's have arrived, and a moment for stragglers (a
/// service may send a trace's spans in two batches).
fn collect(collector: &Collector, trace_id: &str, prefix: &str) -> Vec<ReceivedSpan> {
    collector.wait_for(Duration::from_secs(15), |spans| {
        arrived(spans, trace_id, prefix)
    });
    std::thread::sleep(Duration::from_millis(1200));
    in_trace(&collector.spans(), trace_id)
}

/// The names of `span`'s ancestors' services, nearest first, up to the trace's root.
fn ancestors<'a>(
    span: &'a ReceivedSpan,
    by_id: &'a HashMap<&str, &ReceivedSpan>,
) -> Vec<&'a ReceivedSpan> {
    let mut chain = Vec::new();
    let mut at = span;
    while let Some(parent) = by_id.get(at.parent_span_id.as_str()) {
        chain.push(*parent);
        at = parent;
    }
    chain
}

#[test]
fn one_request_is_one_trace_across_the_router_and_every_subgraph() {
    let collector = Collector::start();
    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();
    let mut stack = start_with(
        data.path(),
        &ports,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.http_endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    );
    let _stack = KillOnDrop(stack.id());
    wait_running(&mut stack);
    let token = login(ports.router);

    let answer = traced(
        ports.router,
        CART,
        &token,
        &format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
    );
    let order = &answer["data"]["currentOrder"];
    assert_eq!(order["owner"]["username"], "customer", "{answer}");
    assert!(
        order["items"][0]["beer"]["name"].is_string(),
        "the demo cart holds beers: {answer}"
    );
    let trace = collect(&collector, CLIENT_TRACE, "taproom");
    let services: HashSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(
        services,
        HashSet::from([
            "taproom-router",
            "taproom-users",
            "taproom-beers",
            "taproom-orders"
        ]),
        "{trace:#?}"
    );

    // Parent links: the router's request span is the client's span's child; every other span's
    // parent is a span of the same trace.
    let by_id: HashMap<&str, &ReceivedSpan> = trace
        .iter()
        .map(|span| (span.span_id.as_str(), span))
        .collect();
    assert_eq!(by_id.len(), trace.len(), "span ids are unique");
    let roots: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|span| !by_id.contains_key(span.parent_span_id.as_str()))
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    let root = roots[0];
    assert_eq!(
        (root.service.as_str(), root.name.as_str(), root.kind),
        ("taproom-router", "POST /graphql", 2),
        "{root:#?}"
    );
    assert_eq!(root.parent_span_id, CLIENT_SPAN);
    assert_eq!(root.attributes["http.response.status_code"], "200");

    // The router's stages.
    let router_names: HashSet<&str> = trace
        .iter()
        .filter(|span| span.service == "taproom-router")
        .map(|span| span.name.as_str())
        .collect();
    for stage in [
        "graphql.prepare",
        "graphql.parse_validate",
        "graphql.plan",
        "graphql.execute",
        "graphql.shape",
    ] {
        assert!(router_names.contains(stage), "{stage}: {router_names:?}");
    }
    let prepare = trace
        .iter()
        .find(|span| span.name == "graphql.prepare")
        .expect("the prepare span");
    assert_eq!(prepare.attributes["taproom.plan_cache.hit"], "false");

    // One fetch span per subgraph, each the parent of that subgraph's server span.
    let fetches: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|span| span.service == "taproom-router" && span.kind == 3)
        .collect();
    let fetched: HashSet<&str> = fetches
        .iter()
        .map(|span| span.attributes["subgraph.name"].as_str())
        .collect();
    assert_eq!(
        fetched,
        HashSet::from(["orders", "users", "beers"]),
        "{fetches:#?}"
    );
    for fetch in &fetches {
        assert_eq!(fetch.attributes["http.response.status_code"], "200");
        let size: usize = fetch.attributes["http.response.body.size"]
            .parse()
            .expect("a size");
        assert!(size > 0, "{fetch:#?}");
        let subgraph = fetch.attributes["subgraph.name"].as_str();
        let served: Vec<&ReceivedSpan> = trace
            .iter()
            .filter(|span| span.parent_span_id == fetch.span_id)
            .collect();
        assert_eq!(served.len(), 1, "{subgraph}: {served:#?}");
        assert_eq!(
            (
                served[0].service.as_str(),
                served[0].kind,
                served[0].name.as_str()
            ),
            (format!("taproom-{subgraph}").as_str(), 2, "POST /graphql"),
        );
    }

    // Each subgraph: a GraphQL operation under its request, and SQL statements under that, in
    // the same service all the way up to its server span; no bound value in any statement.
    for subgraph in ["taproom-users", "taproom-beers", "taproom-orders"] {
        let statements: Vec<&ReceivedSpan> = trace
            .iter()
            .filter(|span| {
                span.service == subgraph && span.attributes.contains_key("db.query.text")
            })
            .collect();
        assert!(!statements.is_empty(), "{subgraph} ran SQL: {trace:#?}");
        for statement in statements {
            assert_eq!(statement.kind, 3, "a client span");
            assert_eq!(statement.attributes["db.system.name"], "sqlite");
            assert_eq!(statement.name, statement.attributes["db.operation.name"]);
            let text = &statement.attributes["db.query.text"];
            assert!(
                !text.contains("customer") && !text.contains(&token),
                "no values in statements: {text}"
            );
            let chain = ancestors(statement, &by_id);
            let server = chain
                .iter()
                .position(|span| span.kind == 2)
                .expect("under a server span");
            assert!(
                chain[..=server].iter().all(|span| span.service == subgraph),
                "{subgraph}: {chain:#?}"
            );
            // The token check is no GraphQL operation: its statements are under its request.
            assert!(
                chain[server].name == "POST /auth/introspect"
                    || chain[..server]
                        .iter()
                        .any(|span| span.name.starts_with("query")),
                "{subgraph}: the statement is under the GraphQL operation: {chain:#?}"
            );
        }
    }

    // Orders checked the fresh token with users: a client span in orders, the introspection
    // request in users its child.
    let check = trace
        .iter()
        .find(|span| span.service == "taproom-orders" && span.name == "POST /auth/introspect")
        .expect("orders asked users who the caller is");
    let introspected = trace
        .iter()
        .find(|span| span.parent_span_id == check.span_id)
        .expect("users' side of the check");
    assert_eq!(
        (introspected.service.as_str(), introspected.kind),
        ("taproom-users", 2)
    );

    // The same operation again: the plan comes from the cache.
    let again = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
    traced(
        ports.router,
        CART,
        &token,
        &format!("00-{again}-{CLIENT_SPAN}-01"),
    );
    // And a client that decided not to sample: no span of its trace is recorded anywhere.
    let unsampled = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
    traced(
        ports.router,
        CART,
        &token,
        &format!("00-{unsampled}-{CLIENT_SPAN}-00"),
    );
    let cached = collect(&collector, again, "taproom");
    let prepare = cached
        .iter()
        .find(|span| span.name == "graphql.prepare")
        .expect("the prepare span");
    assert_eq!(prepare.attributes["taproom.plan_cache.hit"], "true");
    assert!(
        !cached.iter().any(|span| span.name == "graphql.plan"),
        "nothing planned on a hit"
    );
    assert!(
        in_trace(&collector.spans(), unsampled).is_empty(),
        "the caller's sampling decision is kept"
    );

    // Nothing was dropped, and /metrics says what was sent.
    let metrics = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/metrics", ports.router)])
        .output()
        .expect("curl runs");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    assert_eq!(
        value(r#"otel_sdk_processor_span_processed_total{error_type="queue_full"} "#),
        0.0
    );
    assert!(value("otel_sdk_processor_span_processed_total ") > 0.0);
    assert!(
        value("otel_sdk_exporter_span_exported_total ") > 0.0,
        "{metrics}"
    );
    signal(&stack, "TERM");
    assert!(wait_exit(&mut stack).success());
}

/// gRPC and OTLP/HTTP with JSON reach the collector too; a setting the standard does not know
/// stops the stack with a message instead of silently exporting nothing.
#[test]
fn every_otlp_protocol_is_spoken_and_bad_settings_are_refused() {
    let collector = Collector::start();
    for (protocol, endpoint, trace_id) in [
        (
            "grpc",
            &collector.grpc_endpoint,
            "cccccccccccccccccccccccccccccc01",
        ),
        (
            "http/json",
            &collector.http_endpoint,
            "cccccccccccccccccccccccccccccc02",
        ),
    ] {
        let data = tempfile::tempdir().expect("a temporary folder");
        let ports = ports();
        let mut stack = start_with(
            data.path(),
            &ports,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_SERVICE_NAME", "shop"),
            ],
        );
        let _stack = KillOnDrop(stack.id());
        wait_running(&mut stack);
        let token = login(ports.router);
        traced(
            ports.router,
            CART,
            &token,
            &format!("00-{trace_id}-{CLIENT_SPAN}-01"),
        );
        let trace = collect(&collector, trace_id, "shop");
        let services: HashSet<&str> = trace.iter().map(|span| span.service.as_str()).collect();
        assert_eq!(
            services,
            HashSet::from(["shop-router", "shop-users", "shop-beers", "shop-orders"]),
            "{protocol}: {trace:#?}"
        );
        assert!(
            trace.iter().all(|span| span.protocol == protocol),
            "{protocol}"
        );
        signal(&stack, "TERM");
        assert!(wait_exit(&mut stack).success());
    }

    let data = tempfile::tempdir().expect("a temporary folder");
    let ports = ports();
    let mut stack = start_with(
        data.path(),
        &ports,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.http_endpoint),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
        ],
    );
    let _stack = KillOnDrop(stack.id());
    let (status, stderr) = exit_and_stderr(&mut stack);
    assert!(!status.success());
    assert!(
        stderr.contains("OTEL_TRACES_SAMPLER=sometimes"),
        "the message names the setting: {stderr}"
    );
}
