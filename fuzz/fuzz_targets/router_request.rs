//! The router's request path before any subgraph is asked: an HTTP body (as the router reads a
//! POST) → parse → limits → validate → `@defer` split → normalize → plan → variables, over
//! Taproom's supergraph.
//! Any input may be refused; none may panic, hang or exhaust memory.
#![no_main]

use axum::{
    body::Bytes,
    http::{header, HeaderMap, HeaderValue, Method, Uri},
};
use libfuzzer_sys::fuzz_target;
use taproom_http::Incoming;
use taproom_router::GraphqlRequest;

mod common;
use common::router;

fuzz_target!(|body: &[u8]| {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let uri = Uri::from_static("/graphql");
    let Ok(incoming) = taproom_http::read_request(
        &Method::POST,
        &uri,
        &headers,
        Ok(Bytes::copy_from_slice(body)),
        10,
    ) else {
        return;
    };
    let requests = match incoming {
        Incoming::One(request) => vec![request],
        Incoming::Batch(members) => members.into_iter().filter_map(Result::ok).collect(),
    };
    for request in &requests {
        let _ = router().admit_only(GraphqlRequest {
            query: request.query.as_deref(),
            document_id: request.document_id.as_deref(),
            extensions: &request.extensions,
            operation_name: request.operation_name.as_deref(),
            variables: &request.variables,
            over_get: false,
            want_plan: false,
        });
    }
});
