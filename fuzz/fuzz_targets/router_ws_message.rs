//! A client's WebSocket message (`graphql-transport-ws`) as the router reads it, and a
//! `subscribe`'s payload through the request path before any subgraph is asked: parse → limits →
//! validate → `@defer` split → normalize → plan → variables, over Taproom's supergraph.
//! Any input may be refused; none may panic, hang or exhaust memory.
#![no_main]

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use libfuzzer_sys::fuzz_target;
use taproom_router::{
    fetch::SubgraphClient,
    plan::OperationLimits,
    supergraph::Supergraph,
    ws::{read_message, ClientMessage},
    GraphqlRequest, Router,
};

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let supergraph = Supergraph::load(
            include_str!("../../schema/supergraph.graphql"),
            &HashMap::new(),
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
