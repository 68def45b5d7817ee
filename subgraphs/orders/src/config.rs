//! Command line and environment configuration of `taproom-orders`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use taproom_common::{auth::RemoteAuthArgs, trust::SecretArgs};

/// Taproom's orders subgraph: orders whose owner and beers live in other services.
#[derive(Debug, Parser)]
#[command(name = "taproom-orders", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: taproom_common::telemetry::LogArgs,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the database (safe to run again; never drops data).
    Migrate(DbArgs),
    /// Serve the subgraph over HTTP.
    Serve(ServeArgs),
    /// Print the subgraph's federation SDL.
    Sdl,
}

/// Where the data lives.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// `sqlite:<path>` (the file and its folder are created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:data/orders.db")]
    pub database_url: String,
}

/// `serve`'s settings.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub shutdown: taproom_common::http::ShutdownArgs,
    /// The address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:5003")]
    pub listen: SocketAddr,
    /// The beers subgraph's GraphQL endpoint, asked for a beer's existence and price.
    #[arg(
        long,
        env = "BEERS_URL",
        default_value = "http://127.0.0.1:5002/graphql"
    )]
    pub beers_url: String,
    #[command(flatten)]
    pub auth: RemoteAuthArgs,
    #[command(flatten)]
    pub trust: SecretArgs,
    /// The largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Resolve a user's orders again at every place a query reaches them, instead of once per
    /// query (the benchmark measures the difference; nothing else needs it off).
    #[arg(long, env = "NO_SUBTREE_MEMO")]
    pub no_subtree_memo: bool,
}
