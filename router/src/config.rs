//! Command line and environment configuration of `taproom-router`.

use std::{net::SocketAddr, path::PathBuf};

use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};

/// Taproom's GraphQL federation router.
#[derive(Debug, Parser)]
#[command(name = "taproom-router", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a supergraph: from a file (--supergraph) or composed from live subgraphs (--subgraph).
    Serve(ServeArgs),
    /// Compose subgraphs (live, or the SDL files of a schema folder) into a supergraph and print it
    /// (or write it to --output).
    Compose(ComposeArgs),
    /// Print the API schema (what clients can query) of a supergraph.
    ApiSchema(ApiSchemaArgs),
    /// Check the schema folder's subgraphs: they must compose, and their API schema is compared with a
    /// base's; exits non-zero on a breaking change unless --allow-breaking.
    Check(CheckArgs),
}

/// `api-schema`'s settings.
#[derive(Debug, Args)]
pub struct ApiSchemaArgs {
    /// The supergraph SDL file.
    #[arg(long, default_value = "schema/supergraph.graphql")]
    pub supergraph: PathBuf,
    /// Write the API schema here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `check`'s settings.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The schema folder: `subgraphs` (name=url lines) and one `<name>.graphql` per subgraph.
    #[arg(long, default_value = "schema")]
    pub schema_dir: PathBuf,
    /// What to compare with: a supergraph or API schema file, or a git revision whose
    /// `<schema-dir>/supergraph.graphql` is used (e.g. HEAD~1, origin/main).
    #[arg(long)]
    pub base: String,
    /// Report breaking changes but exit 0.
    #[arg(long)]
    pub allow_breaking: bool,
    /// A folder of client operations (*.graphql) that must still validate against the new schema.
    #[arg(long)]
    pub operations: Option<PathBuf>,
}

/// A `name=value` pair from the command line.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub value: String,
}

fn named(text: &str) -> Result<Named, String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok(Named {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
        _ => Err(format!("expected name=url, got {text:?}")),
    }
}

/// `serve`'s settings.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A composed federation v2 supergraph SDL file.
    #[arg(
        long,
        env = "SUPERGRAPH",
        conflicts_with = "subgraph",
        required_unless_present = "subgraph"
    )]
    pub supergraph: Option<PathBuf>,
    /// A live subgraph, name=url of its GraphQL endpoint (repeat for each). Their SDLs are fetched
    /// (`_service { sdl }`), composed, and polled for changes.
    #[arg(long, value_parser = named, value_delimiter = ',', env = "SUBGRAPHS")]
    pub subgraph: Vec<Named>,
    /// Replace a subgraph's URL from the supergraph file, name=url (repeatable).
    #[arg(long, value_parser = named, value_delimiter = ',', env = "SUBGRAPH_URLS")]
    pub subgraph_url: Vec<Named>,
    /// The address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// How often live subgraphs are polled for schema changes, in seconds.
    #[arg(long, env = "POLL_INTERVAL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval_secs: u64,
    /// How long a subgraph request may take, in seconds.
    #[arg(long, env = "SUBGRAPH_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub subgraph_timeout_secs: u64,
    /// The largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// The deepest field nesting an operation may have.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 32)]
    pub max_depth: usize,
    /// The most aliases an operation may have.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 200)]
    pub max_aliases: usize,
    /// The most fields an operation may select once its fragments are expanded.
    #[arg(long, env = "MAX_FIELDS", default_value_t = 20_000)]
    pub max_fields: usize,
    /// Send every subgraph request, even when an identical one is in flight. By default identical
    /// queries in flight at the same time (same subgraph, body and forwarded headers) share one
    /// request and its answer; mutations never do.
    #[arg(long, env = "NO_SUBGRAPH_DEDUPE")]
    pub no_subgraph_dedupe: bool,
    /// How many operations may hold subgraph answers at once; the others wait, with nothing read,
    /// until one is answered. Bounds memory under load (each operation's answers are parsed and
    /// merged in memory), and merging a few at a time keeps them in the CPU's caches. Default: 8
    /// per CPU the router may run on; 0: no bound.
    #[arg(long, env = "MAX_MERGING_OPERATIONS")]
    pub max_merging_operations: Option<usize>,
    /// A subgraph request slower than this (milliseconds) gives its operation's place back while
    /// it waits, so a slow subgraph does not hold up operations on the others.
    #[arg(long, env = "MERGING_RELEASE_MS", default_value_t = 100)]
    pub merging_release_ms: u64,
    /// How many prepared (parsed, validated, planned) operations are kept.
    #[arg(long, env = "PLAN_CACHE_SIZE", default_value_t = 1000)]
    pub plan_cache_size: u64,
    /// An origin browsers may call the router from, e.g. https://shop.example (repeatable). None by
    /// default: only same-origin pages such as the playground.
    #[arg(long, value_delimiter = ',', env = "CORS_ORIGINS")]
    pub cors_origin: Vec<String>,
    #[command(flatten)]
    pub secret: SecretArg,
}

/// The secret shared with the subgraphs.
#[derive(Debug, Clone, Args)]
pub struct SecretArg {
    /// Sent to every subgraph in `x-taproom-subgraph-secret` (subgraphs started with the same
    /// `SUBGRAPH_SECRET` refuse callers without it): at least 32 visible ASCII characters.
    #[arg(long, env = "SUBGRAPH_SECRET", value_parser = subgraph_secret, hide_env_values = true)]
    pub subgraph_secret: Option<HeaderValue>,
}

fn subgraph_secret(value: &str) -> Result<HeaderValue, String> {
    if value.len() < 32 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be at least 32 visible ASCII characters".into());
    }
    HeaderValue::from_str(value).map_err(|e| e.to_string())
}

impl SecretArg {
    /// An HTTP client for the router's own requests to subgraphs (SDL polling), presenting the
    /// secret.
    pub fn http_client(&self, timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(secret) = &self.subgraph_secret {
            headers.insert(crate::fetch::SECRET_HEADER, secret.clone());
        }
        reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .build()
    }
}

/// `compose`'s settings.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// A live subgraph, name=url of its GraphQL endpoint (repeat for each).
    #[arg(long, value_parser = named, value_delimiter = ',', required_unless_present = "schema_dir", conflicts_with = "schema_dir")]
    pub subgraph: Vec<Named>,
    /// Compose the SDL files of a schema folder instead (`subgraphs` lists name=url; `<name>.graphql` each).
    #[arg(long)]
    pub schema_dir: Option<PathBuf>,
    /// Write the supergraph here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub secret: SecretArg,
}
