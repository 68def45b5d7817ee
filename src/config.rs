//! The `taproom` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use taproom_common::telemetry::LogFormat;

/// Taproom: a beer shop's backend as a GraphQL federation.
///
/// With no subcommand, runs the whole federation locally: the users (5001), beers (5002) and orders
/// (5003) subgraphs and the router (4000), each a separate process with its own database, migrated,
/// seeded with a demo catalog and two demo accounts on first start. Ctrl-C stops everything.
///
/// With a subcommand, runs one service exactly as its own binary would, e.g.
/// `taproom users serve --listen 127.0.0.1:5001` (the production shape: one process per service,
/// each configured by flags or environment variables, possibly several replicas behind a load
/// balancer, PostgreSQL databases).
#[derive(Debug, Parser)]
#[command(
    name = "taproom",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub service: Option<Service>,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// One service, with its own command line (`taproom users --help`).
#[derive(Debug, Subcommand)]
pub enum Service {
    /// The users subgraph: `taproom users migrate|serve|sdl|create-admin ...`.
    Users {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The beers subgraph: `taproom beers migrate|serve|sdl|seed-demo ...`.
    Beers {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The orders subgraph: `taproom orders migrate|serve|sdl ...`.
    Orders {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The router: `taproom router serve|compose ...`.
    Router {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Settings of the local stack.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// How every service's log lines are written to stderr: `text`, or `json` for a log collector.
    #[arg(long, env = "TAPROOM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Where the SQLite databases and the generated secret key live.
    #[arg(long, env = "TAPROOM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The router's port (the playground and /graphql).
    #[arg(long, env = "TAPROOM_ROUTER_PORT", default_value_t = 4000)]
    pub router_port: u16,
    /// The users subgraph's port.
    #[arg(long, default_value_t = 5001)]
    pub users_port: u16,
    /// The beers subgraph's port.
    #[arg(long, default_value_t = 5002)]
    pub beers_port: u16,
    /// The orders subgraph's port.
    #[arg(long, default_value_t = 5003)]
    pub orders_port: u16,
    /// Run the three subgraphs on PostgreSQL instead of SQLite: a server URL such as
    /// postgres://user:password@127.0.0.1:5432. Databases taproom_users, taproom_beers and
    /// taproom_orders are created on it if missing.
    #[arg(long, env = "TAPROOM_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// The secret the router presents to the subgraphs (at least 32 characters), so they answer only
    /// it. A new random one each run if unset; set it to call a subgraph yourself.
    #[arg(long, env = "TAPROOM_SUBGRAPH_SECRET", hide_env_values = true)]
    pub subgraph_secret: Option<String>,
    /// An origin browsers may call the router from, e.g. http://localhost:3000 for a frontend's
    /// dev server (repeatable, or comma-separated). None by default: only the playground.
    #[arg(long, value_delimiter = ',', env = "CORS_ORIGINS")]
    pub cors_origin: Vec<String>,
}
