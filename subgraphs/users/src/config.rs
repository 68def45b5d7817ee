//! Command line and environment configuration of `taproom-users`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use taproom_common::trust::SecretArgs;

/// Taproom's users subgraph: accounts and sign-in tokens.
#[derive(Debug, Parser)]
#[command(name = "taproom-users", version, about)]
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
    /// Create an admin account, or make an existing account an admin. The password is read from
    /// TAPROOM_ADMIN_PASSWORD or, if unset, from the first line of standard input.
    CreateAdmin(CreateAdminArgs),
}

/// Where the data lives.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// `sqlite:<path>` (the file and its folder are created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:data/users.db")]
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
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:5001")]
    pub listen: SocketAddr,
    /// The key tokens are hashed with before they are stored: at least 32 characters, kept secret,
    /// the same for every replica. Changing it signs everybody out.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// How long a token stays valid after sign-in, in hours.
    #[arg(long, env = "TOKEN_TTL_HOURS", default_value_t = 720, value_parser = clap::value_parser!(u32).range(1..=87_600))]
    pub token_ttl_hours: u32,
    /// The largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub trust: SecretArgs,
}

/// `create-admin`'s settings.
#[derive(Debug, Args)]
pub struct CreateAdminArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The admin's username.
    #[arg(long)]
    pub username: String,
    /// The admin's email (used only when the account is created).
    #[arg(long)]
    pub email: String,
    /// Read the password from this file instead of TAPROOM_ADMIN_PASSWORD or standard input.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// The smallest accepted `SECRET_KEY`.
pub const MIN_SECRET_KEY_LEN: usize = 32;

impl ServeArgs {
    /// The secret key, or a one-line error naming the setting.
    pub fn secret_key(&self) -> anyhow::Result<&str> {
        match self.secret_key.as_deref() {
            None | Some("") => anyhow::bail!(
                "SECRET_KEY is not set (or --secret-key): give a random string of at least {MIN_SECRET_KEY_LEN} characters"
            ),
            Some(key) if key.chars().count() < MIN_SECRET_KEY_LEN => anyhow::bail!(
                "SECRET_KEY is too short: it needs at least {MIN_SECRET_KEY_LEN} characters"
            ),
            Some(key) => Ok(key),
        }
    }
}
