//! Command line and environment configuration of `taproom-beers`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use taproom_common::{auth::RemoteAuthArgs, trust::SecretArgs};

/// Taproom's beers subgraph: the catalog.
#[derive(Debug, Parser)]
#[command(name = "taproom-beers", version, about)]
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
    /// Add the demo catalog if the catalog is empty (otherwise change nothing).
    SeedDemo(DbArgs),
}

/// Where the data lives.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// `sqlite:<path>` (the file and its folder are created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:data/beers.db")]
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
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:5002")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub auth: RemoteAuthArgs,
    #[command(flatten)]
    pub trust: SecretArgs,
    /// The largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}
