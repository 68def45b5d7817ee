//! The beers subgraph's GraphQL schema: `Query`, `Mutation` and the `Beer` entity.

mod beer;
mod mutation;
mod query;

use std::sync::Arc;

use async_graphql::{dataloader::DataLoader, EmptySubscription, Schema};
use taproom_common::{
    auth::Authenticator,
    http::{federation_sdl, schema_builder},
};

pub use beer::{Beer, BeerConnection};
pub use mutation::Mutation;
pub use query::Query;

use crate::{
    loader::{BeerByIdLoader, BeerBySkuLoader},
    AppState,
};

/// The beers subgraph's schema type.
pub type BeersSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema, serving `state`, verifying callers with `authenticator`.
pub fn schema(state: AppState, authenticator: Arc<dyn Authenticator>) -> BeersSchema {
    schema_builder(Query, Mutation, EmptySubscription)
        .data(DataLoader::new(
            BeerByIdLoader {
                db: state.db.clone(),
            },
            taproom_common::telemetry::spawn,
        ))
        .data(DataLoader::new(
            BeerBySkuLoader {
                db: state.db.clone(),
            },
            taproom_common::telemetry::spawn,
        ))
        .data(authenticator)
        .data(state)
        .finish()
}

/// The federation v2 SDL that `taproom-beers sdl` prints and `schema/beers.graphql` holds.
pub fn sdl() -> String {
    federation_sdl(Query, Mutation, EmptySubscription)
}
