//! Taproom's beers subgraph: the catalog, with exact money and admin-only writes.
//!
//! A tour of the crate:
//!
//! - [`config`]: the command line (`migrate`, `serve`, `sdl`, `seed-demo`), every flag also an env var.
//! - [`db`]: every SQL statement; [`loader`]: one DataLoader per key of the `Beer` entity (id, sku).
//! - [`schema`]: `Query` (Relay-style catalog pages), `Mutation` (admins only) and the `Beer` entity.
//! - [`validate`]: input rules; prices are checked by `taproom_common::money`.
//! - [`demo`]: the demo catalog.
//!
//! Callers are verified by the users subgraph through `taproom_common::auth::RemoteAuthenticator`.

pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod loader;
pub mod schema;
pub mod validate;

use std::{future::Future, sync::Arc};

use axum::Router;
use taproom_common::{
    auth::Authenticator,
    db::Db,
    http::{graphql_app, Limits},
    service,
};
use tokio::net::TcpListener;

use crate::config::{Cli, Command, ServeArgs};

/// What the schema shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The catalog database.
    pub db: Db,
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
            service::migrate(&args.database_url, &db::migrations(), "beers").await
        }
        Command::Sdl => {
            print!("{}", schema::sdl());
            Ok(())
        }
        Command::SeedDemo(args) => {
            let db = service::open_migrated(&args.database_url, &db::migrations()).await?;
            let added = demo::seed(&db)
                .await
                .map_err(|e| anyhow::anyhow!("seeding the demo catalog: {e:?}"))?;
            if added == 0 {
                println!("the catalog is not empty: nothing added");
            } else {
                println!("added {added} demo beers");
            }
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
    let db = service::open_migrated(&args.db.database_url, &db::migrations()).await?;
    let authenticator = args.auth.authenticator(args.trust.subgraph_secret.clone());
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        secret: args.trust.subgraph_secret,
        ..Limits::default()
    };
    let app = app(AppState { db: db.clone() }, authenticator, limits);
    service::serve("beers", db, listener, app, &args.shutdown, shutdown).await
}
