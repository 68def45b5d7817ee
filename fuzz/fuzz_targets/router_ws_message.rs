//! A client's WebSocket message (`graphql-transport-ws`) as the router reads it, and a
//! `subscribe`'s payload through the request path before any subgraph is asked: parse → limits →
//! validate → `@defer` split → normalize → plan → variables, over Taproom's supergraph.
//! Any input may be refused; none may panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taproom_router::{
    ws::{read_message, ClientMessage},
    GraphqlRequest,
};

mod common;
use common::router;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ClientMessage::Subscribe { payload, .. }) = read_message(text) else {
        return;
    };
    let Ok(request) = taproom_http::request_from_json(payload.as_bytes()) else {
        return;
    };
    let _ = router().admit_only(GraphqlRequest::read(&request, false, false));
});
