//! The users subgraph's GraphQL schema: `Query`, `Mutation` and the `User` entity.

mod mutation;
mod query;
mod user;

use std::sync::Arc;

use async_graphql::{dataloader::DataLoader, EmptySubscription, Schema, SchemaBuilder};
use taproom_common::{
    auth::Authenticator,
    http::{MAX_QUERY_COMPLEXITY, MAX_QUERY_DEPTH},
};

pub use mutation::Mutation;
pub use query::Query;
pub use user::User;

use crate::{loader::UserLoader, AppState, LocalAuthenticator};

/// The users subgraph's schema type.
pub type UsersSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .limit_depth(MAX_QUERY_DEPTH)
        .limit_complexity(MAX_QUERY_COMPLEXITY)
}

/// The schema, serving `state`.
pub fn schema(state: AppState) -> UsersSchema {
    let authenticator: Arc<dyn Authenticator> = Arc::new(LocalAuthenticator {
        db: state.db.clone(),
        keys: state.keys.clone(),
    });
    builder()
        .data(DataLoader::new(
            UserLoader {
                db: state.db.clone(),
            },
            tokio::spawn,
        ))
        .data(authenticator)
        .data(state)
        .finish()
}

/// The federation v2 SDL that `taproom-users sdl` prints and `schema/users.graphql` holds.
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}
