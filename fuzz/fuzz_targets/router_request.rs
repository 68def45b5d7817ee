//! The router's request path before any subgraph is asked: an HTTP body (as the router reads a
//! POST) → parse → limits → validate → normalize → plan → variables, over Taproom's supergraph.
//! Any input may be refused; none may panic, hang or exhaust memory.
#![no_main]

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use axum::{
    body::Bytes,
    http::{header, HeaderMap, HeaderValue, Method, Uri},
};
use libfuzzer_sys::fuzz_target;
use taproom_router::{
    fetch::SubgraphClient, plan::OperationLimits, supergraph::Supergraph, GraphqlRequest, Router,
};

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let supergraph = Supergraph::load(
            include_str!("../../schema/supergraph.graphql"),
            &HashMap::new(),
            // A small plan cache, so inputs keep reaching the planner.
            16,
        )
        .expect("the committed supergraph loads");
        Router::new(
            supergraph,
            SubgraphClient::new(Duration::from_secs(1)),
            OperationLimits::default(),
        )
    })
}

fuzz_target!(|body: &[u8]| {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let uri = Uri::from_static("/graphql");
    let Ok(request) = taproom_http::read_request(
        &Method::POST,
        &uri,
        &headers,
        Ok(Bytes::copy_from_slice(body)),
    ) else {
        return;
    };
    let _ = router().admit_only(GraphqlRequest {
        query: &request.query,
        operation_name: request.operation_name.as_deref(),
        variables: &request.variables,
        over_get: false,
        want_plan: false,
    });
});
