//! What the router fuzz targets share: a router over Taproom's committed supergraph, as a served
//! one is set up before any subgraph is asked.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use taproom_router::{
    fetch::SubgraphClient,
    persisted::{Persisted, PersistedSettings},
    plan::OperationLimits,
    supergraph::Supergraph,
    Router,
};

/// One router for the whole run: a small plan cache, so inputs keep reaching the planner, and APQ
/// on and small, as the hashes and registrations are part of the request path.
pub fn router() -> &'static Router {
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
        .persisting(
            Persisted::new(&PersistedSettings {
                apq_cache_bytes: 1 << 16,
                ..PersistedSettings::default()
            })
            .expect("no file to read"),
        )
    })
}
