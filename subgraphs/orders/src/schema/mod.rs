//! The orders subgraph's GraphQL schema: `Query`, `Mutation`, the `Order` entity, and the references
//! it makes to `User` (users subgraph, extended here with `orders`) and `Beer` (beers subgraph).

mod mutation;
mod order;
mod query;
mod subscription;

use std::sync::Arc;

use async_graphql::{dataloader::DataLoader, Schema};
use taproom_common::{
    auth::{Authenticator, SharedChecks},
    http::{federation_sdl, schema_builder},
};

pub use mutation::Mutation;
pub use order::{Beer, Order, OrderConnection, OrderItem, OrderStatus, User};
pub use query::Query;
pub use subscription::{Subscription, REVERIFY};

use crate::{
    loader::{ItemsLoader, OrderLoader, OrdersByUserLoader},
    AppState,
};

/// The orders subgraph's schema type.
pub type OrdersSchema = Schema<Query, Mutation, Subscription>;

/// The schema, serving `state`, verifying callers with `authenticator`.
pub fn schema(state: AppState, authenticator: Arc<dyn Authenticator>) -> OrdersSchema {
    let db = state.db.clone();
    schema_builder(Query, Mutation, Subscription)
        .data(DataLoader::new(
            OrderLoader { db: db.clone() },
            taproom_common::telemetry::spawn,
        ))
        .data(DataLoader::new(
            OrdersByUserLoader { db: db.clone() },
            taproom_common::telemetry::spawn,
        ))
        .data(DataLoader::new(
            ItemsLoader { db },
            taproom_common::telemetry::spawn,
        ))
        .data(Arc::new(SharedChecks::new(
            authenticator.clone(),
            subscription::SHARED_CHECK,
        )))
        .data(authenticator)
        .data(state)
        .finish()
}

/// The federation v2 SDL that `taproom-orders sdl` prints and `schema/orders.graphql` holds.
pub fn sdl() -> String {
    federation_sdl(Query, Mutation, Subscription)
}
