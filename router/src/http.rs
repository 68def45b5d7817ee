//! The router's HTTP face: `POST`/`GET /graphql` after GraphQL-over-HTTP, `/health`, `/metrics`.
//!
//! `taproom-http` reads the request and negotiates the media type (as for the subgraphs); this
//! module alone turns the pipeline's answer or [`RequestError`](crate::error::RequestError) into an
//! HTTP response, with the status GraphQL-over-HTTP gives it for the client's media type.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, ConnectInfo, DefaultBodyLimit, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router as Routes,
};
use taproom_http::{error_reply, graphql_status, read_request, reply, MediaType};
use tower_http::trace::TraceLayer;

use crate::{
    error::errors_body,
    fetch::CLIENT_ADDRESS_HEADER,
    pipeline::{GraphqlRequest, Router},
};

/// The header with which a client asks for the query plan in `extensions.queryPlan`.
pub const QUERY_PLAN_HEADER: &str = "x-taproom-query-plan";

/// The routes, serving `router`. `cors_origins` are the origins allowed to call from a browser;
/// with none, only same-origin pages (the playground) can.
pub fn routes(router: Arc<Router>, max_body_bytes: usize, cors_origins: &[HeaderValue]) -> Routes {
    let routes = Routes::new()
        .route("/graphql", get(graphql).post(graphql))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route("/", get(crate::playground::index))
        .route("/playground/{file}", get(crate::playground::asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(router);
    if cors_origins.is_empty() {
        routes
    } else {
        routes.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(cors_origins.to_vec())
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::ACCEPT,
                    header::HeaderName::from_static(QUERY_PLAN_HEADER),
                ]),
        )
    }
}

async fn metrics(State(router): State<Arc<Router>>) -> Response {
    let mut text = String::from(
        "# HELP taproom_router_subgraph_requests_total Requests sent to each subgraph.\n# TYPE taproom_router_subgraph_requests_total counter\n",
    );
    let mut counts: Vec<(String, u64)> = router.client.counts().into_iter().collect();
    counts.sort();
    for (name, count) in counts {
        text.push_str(&format!(
            "taproom_router_subgraph_requests_total{{subgraph=\"{name}\"}} {count}\n"
        ));
    }
    text.push_str(
        "# HELP taproom_router_subgraph_requests_deduplicated_total Subgraph requests not sent because an identical one was in flight.\n# TYPE taproom_router_subgraph_requests_deduplicated_total counter\n",
    );
    let mut saved: Vec<(String, u64)> = router.client.saved().into_iter().collect();
    saved.sort();
    for (name, count) in saved {
        text.push_str(&format!(
            "taproom_router_subgraph_requests_deduplicated_total{{subgraph=\"{name}\"}} {count}\n"
        ));
    }
    text.push_str(&format!(
        "# HELP taproom_router_operations_prepared_total Operations parsed, validated and planned (plan cache misses).\n# TYPE taproom_router_operations_prepared_total counter\ntaproom_router_operations_prepared_total {}\n",
        router.prepared_count()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn graphql(
    State(router): State<Arc<Router>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The client's address is the TCP peer's, whatever a client claims in the header.
    headers.remove(CLIENT_ADDRESS_HEADER);
    if let Some(Extension(ConnectInfo(peer))) = peer {
        if let Ok(value) = HeaderValue::from_str(&peer.ip().to_string()) {
            headers.insert(CLIENT_ADDRESS_HEADER, value);
        }
    }
    let media = MediaType::negotiate(&headers);
    let request = match read_request(&method, &uri, &headers, body) {
        Ok(request) => request,
        Err(error) => return error_reply(media, &error),
    };
    let want_plan = headers
        .get(QUERY_PLAN_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true") || v.as_bytes() == b"1");
    let request = GraphqlRequest {
        query: &request.query,
        operation_name: request.operation_name.as_deref(),
        variables: &request.variables,
        over_get: method == Method::GET,
        want_plan,
    };
    match router.execute(request, &headers).await {
        Ok(body) => reply(media, StatusCode::OK, body),
        Err(error) => reply(
            media,
            graphql_status(media, error.status),
            errors_body(&error.errors),
        ),
    }
}
