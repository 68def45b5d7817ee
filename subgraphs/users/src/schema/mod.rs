//! The users subgraph's GraphQL schema: `Query`, `Mutation` and the `User` entity.

mod mutation;
mod once;
mod query;
mod user;

use std::sync::Arc;

use async_graphql::{dataloader::DataLoader, EmptySubscription, Schema};
use taproom_common::{
    auth::Authenticator,
    http::{federation_sdl, schema_builder},
};

pub use mutation::Mutation;
pub use once::{CredentialChecksOnce, CREDENTIAL_FIELDS};
pub use query::Query;
pub use user::{User, UserConnection};

use crate::{loader::UserLoader, AppState, LocalAuthenticator};

/// The users subgraph's schema type.
pub type UsersSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema, serving `state`.
pub fn schema(state: AppState) -> UsersSchema {
    let authenticator: Arc<dyn Authenticator> = Arc::new(LocalAuthenticator {
        db: state.db.clone(),
        keys: state.keys.clone(),
    });
    schema_builder(Query, Mutation, EmptySubscription)
        .data(DataLoader::new(
            UserLoader {
                db: state.db.clone(),
            },
            taproom_common::telemetry::spawn,
        ))
        .data(authenticator)
        .data(state)
        .extension(CredentialChecksOnce::new())
        .finish()
}

/// The federation v2 SDL that `taproom-users sdl` prints and `schema/users.graphql` holds.
pub fn sdl() -> String {
    federation_sdl(Query, Mutation, EmptySubscription)
}
