//! Taproom's orders subgraph: the service that makes Taproom a federation.
//!
//! An `Order` names its owner, a `User` of the users subgraph, and its lines name beers of the beers
//! subgraph by sku; the router resolves both there. `User.orders` extends the users subgraph's entity.
//!
//! A tour of the crate:
//!
//! - [`config`]: the command line (`migrate`, `serve`, `sdl`), every flag also an env var.
//! - [`db`]: every SQL statement, including the transactional writes that keep one open order per user;
//!   [`loader`]: DataLoaders so every entity and list resolver costs one statement per batch.
//! - [`beers`]: the client that asks the beers subgraph whether a sku exists and what it costs.
//! - [`schema`]: `Query`, `Mutation`, `Order`, `OrderItem`, and the `User` and `Beer` references.
//! - [`events`]: every committed change to an order, on every replica, for subscriptions.
//! - [`demo`]: the demo customer's orders that the local stack adds on its first start.

pub mod beers;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod loader;
pub mod schema;

use std::{future::Future, sync::Arc};

use axum::Router;
use taproom_common::{
    auth::Authenticator,
    db::{Backend, Db},
    http::{graphql_app, Limits},
    service,
};
use tokio::net::TcpListener;

use crate::{
    beers::BeersClient,
    config::{Cli, Command, ServeArgs},
    events::Events,
};

/// What the schema shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The orders database.
    pub db: Db,
    /// The beers subgraph, for prices.
    pub beers: BeersClient,
    /// Order changes, for subscriptions.
    pub events: Events,
}

/// The whole HTTP app: `/graphql` and `/health`.
pub fn app(state: AppState, authenticator: Arc<dyn Authenticator>, limits: Limits) -> Router {
    graphql_app(
        schema::schema(state.clone(), authenticator),
        state.db,
        limits,
    )
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(args) => {
            service::migrate(&args.database_url, &db::migrations(), "orders").await
        }
        Command::Sdl => {
            print!("{}", schema::sdl());
            Ok(())
        }
        Command::Serve(args) => {
            let listener = service::listen(args.listen).await?;
            serve(args, listener, taproom_common::http::shutdown_signal()).await
        }
    }
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_observed(args, listener, shutdown, |_| {}).await
}

/// [`serve`], handing `observe` this process's order [`Events`] once they exist: a test waits on
/// their subscriber count for a subscription to be listening, instead of waiting a while.
pub async fn serve_observed(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    observe: impl FnOnce(&Events),
) -> anyhow::Result<()> {
    let db = service::open_migrated(&args.db.database_url, &db::migrations()).await?;
    let events = Events::new(db.backend());
    if db.backend() == Backend::Postgres {
        events.listen(&args.db.database_url, db.clone()).await?;
    }
    observe(&events);
    let state = AppState {
        db: db.clone(),
        beers: BeersClient::new(args.beers_url.clone(), args.trust.subgraph_secret.clone()),
        events,
    };
    let authenticator = args.auth.authenticator(args.trust.subgraph_secret.clone());
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        subtree_memo: !args.no_subtree_memo,
        secret: args.trust.subgraph_secret,
    };
    let app = app(state, authenticator, limits);
    service::serve("orders", db, listener, app, &args.shutdown, shutdown).await
}
