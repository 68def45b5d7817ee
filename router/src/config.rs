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
    #[command(flatten)]
    pub log: taproom_telemetry::logs::LogArgs,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a supergraph: from a file (--supergraph) or composed from live subgraphs (--subgraph).
    Serve(Box<ServeArgs>),
    /// Compose subgraphs (live, or the SDL files of a schema folder) into a supergraph and print it
    /// (or write it to --output).
    Compose(ComposeArgs),
    /// Print the API schema (what clients can query) of a supergraph.
    ApiSchema(ApiSchemaArgs),
    /// Check the schema folder's subgraphs: they must compose, and their API schema is compared with a
    /// base's; exits non-zero on a breaking change unless --allow-breaking.
    Check(CheckArgs),
    /// Write the persisted query manifest (Apollo's format) of a folder of client operations, for
    /// `serve --persisted-documents`; with --check, compare it with a file instead.
    Manifest(ManifestArgs),
}

/// `manifest`'s settings.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The folder of client operations (`*.graphql`; every operation named).
    #[arg(long, default_value = "schema/operations")]
    pub operations: PathBuf,
    /// The supergraph the operations must validate against.
    #[arg(long, default_value = "schema/supergraph.graphql")]
    pub supergraph: PathBuf,
    /// Write the manifest here instead of standard output.
    #[arg(long, conflicts_with = "check")]
    pub output: Option<PathBuf>,
    /// Exit non-zero unless this file holds exactly the manifest the operations give.
    #[arg(long)]
    pub check: Option<PathBuf>,
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
    /// The most fragments an operation may `@defer`, once its fragments are expanded: each is
    /// answered as an operation of its own (MAX_FIELDS_LIMIT beyond).
    #[arg(long, env = "MAX_DEFERRED_FRAGMENTS", default_value_t = 16)]
    pub max_deferred_fragments: usize,
    /// The most bytes of subgraph answers one operation may hold (a fetch beyond fails with
    /// SUBGRAPH_REQUEST_FAILED); 0: no bound.
    #[arg(long, env = "MAX_ANSWER_BYTES", default_value_t = crate::pipeline::MAX_ANSWER_BYTES)]
    pub max_answer_bytes: usize,
    /// How many threads prepare (parse, validate, plan) new operations, off the threads that
    /// serve requests; each client (by address) uses at most half of them. Default: one per CPU
    /// the router may run on.
    #[arg(long, env = "PREPARING_THREADS", value_parser = clap::value_parser!(u64).range(1..))]
    pub preparing_threads: Option<u64>,
    /// Send every subgraph request, even when an identical one is in flight. By default identical
    /// queries in flight at the same time (same subgraph, body and forwarded headers) share one
    /// request and its answer; mutations never do.
    #[arg(long, env = "NO_SUBGRAPH_DEDUPE")]
    pub no_subgraph_dedupe: bool,
    /// Never retry a subgraph fetch. By default a query or `_entities` fetch that failed at the
    /// connection level (refused, reset, or a load balancer's 502/503) is sent once more, within a
    /// budget of one retry per five fetches (100 saved up at most); mutations never are.
    #[arg(long, env = "NO_SUBGRAPH_RETRY")]
    pub no_subgraph_retry: bool,
    /// A subgraph that applies a mutation at most once per `idempotency-key` (Taproom's orders
    /// does): its mutations from clients that sent an `Idempotency-Key` are retried like queries.
    /// Repeatable, or comma-separated. None by default: a mutation is never sent twice.
    #[arg(long, value_delimiter = ',', env = "IDEMPOTENT_SUBGRAPHS")]
    pub idempotent_subgraph: Vec<String>,
    /// About how many bytes of subgraph answers operations may hold at once: a new operation waits
    /// to read its first answer while they hold more (once admitted, an operation never waits
    /// again). Bounds the memory the router's answers take, never how many operations run: a
    /// slow subgraph makes operations wait longer, not fewer of them run. Default: 16 MiB per CPU
    /// the router may run on; 0: no bound.
    #[arg(long, env = "MAX_ANSWERS_HELD_BYTES")]
    pub max_answers_held_bytes: Option<usize>,
    /// How many prepared (parsed, validated, planned) operations are kept.
    #[arg(long, env = "PLAN_CACHE_SIZE", default_value_t = 1000)]
    pub plan_cache_size: u64,
    /// An origin browsers may call the router from, e.g. https://shop.example (repeatable). None by
    /// default: only same-origin pages such as the playground.
    #[arg(long, value_delimiter = ',', env = "CORS_ORIGINS")]
    pub cors_origin: Vec<String>,
    /// Turn automatic persisted queries off: a request with only a hash then gets
    /// PERSISTED_QUERY_NOT_SUPPORTED, or with --persisted-documents, PERSISTED_QUERY_NOT_IN_LIST
    /// unless the manifest has it.
    #[arg(long, env = "NO_APQ")]
    pub no_apq: bool,
    /// The APQ cache's bound, in bytes of query text (least recently used queries go first).
    #[arg(long, env = "APQ_CACHE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub apq_cache_bytes: u64,
    /// A persisted query manifest (Apollo's format; `taproom-router manifest` writes one):
    /// `documentId` and APQ hashes are looked up in it. Re-read when it changes.
    #[arg(long, env = "PERSISTED_DOCUMENTS")]
    pub persisted_documents: Option<PathBuf>,
    /// Run only the operations whose text is in --persisted-documents (QUERY_NOT_IN_SAFELIST
    /// otherwise).
    #[arg(long, env = "SAFELIST", requires = "persisted_documents")]
    pub safelist: bool,
    /// The most operations one batched request (a JSON array) may hold; 0 refuses batches.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 10)]
    pub max_batch_size: usize,
    /// The most subscriptions open on this router at once (RATE_LIMITED beyond).
    #[arg(long, env = "MAX_SUBSCRIPTIONS", default_value_t = crate::pipeline::MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: usize,
    /// The most subscriptions one client (its token, or its address when it sends none) keeps
    /// open at once, over every transport (RATE_LIMITED beyond); 0: only the router's limit.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CLIENT", default_value_t = crate::pipeline::MAX_SUBSCRIPTIONS_PER_CLIENT)]
    pub max_subscriptions_per_client: usize,
    /// The most WebSockets and event streams (SSE, multipart subscriptions) one client address
    /// keeps open at once, idle or not (429, RATE_LIMITED beyond); 0: no limit.
    #[arg(long, env = "MAX_CONNECTIONS_PER_CLIENT", default_value_t = crate::pipeline::MAX_CONNECTIONS_PER_CLIENT)]
    pub max_connections_per_client: usize,
    /// How long a WebSocket with no operation running stays open, in seconds (then it closes
    /// with 1000; graphql-ws clients connect again when they need to).
    #[arg(long, env = "WEBSOCKET_IDLE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub websocket_idle_secs: u64,
    /// The most operations running at once on one WebSocket.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 32)]
    pub max_subscriptions_per_connection: usize,
    /// Responses of at least this many bytes are compressed (gzip, brotli or zstd) for clients
    /// that accept it.
    #[arg(long, env = "COMPRESSION_MIN_BYTES", default_value_t = 1024)]
    pub compression_min_bytes: u16,
    /// Serve the playground at `/` (the default).
    #[arg(long, overrides_with = "no_playground")]
    pub playground: bool,
    /// Do not serve the playground.
    #[arg(long, env = "NO_PLAYGROUND")]
    pub no_playground: bool,
    /// Name the local stack's demo accounts in the playground's welcome text (`taproom` sets it).
    #[arg(long, env = "PLAYGROUND_DEMO_ACCOUNTS")]
    pub playground_demo_accounts: bool,
    /// Answer introspection (`__schema`, `__type`; the default).
    #[arg(long, overrides_with = "no_introspection")]
    pub introspection: bool,
    /// Refuse introspection (`__typename` is still answered).
    #[arg(long, env = "NO_INTROSPECTION")]
    pub no_introspection: bool,
    /// Honour the `x-taproom-query-plan` header (the default).
    #[arg(long, overrides_with = "no_query_plan_header")]
    pub query_plan_header: bool,
    /// Ignore the `x-taproom-query-plan` header: plans stay private.
    #[arg(long, env = "NO_QUERY_PLAN_HEADER")]
    pub no_query_plan_header: bool,
    /// A proxy (a CIDR range, e.g. 10.0.0.0/8 or 192.0.2.7/32) whose connections carry the
    /// client's address in --client-address-header: the right-most address there that is not a
    /// trusted proxy is the client's (for the sign-in throttle and the per-client budgets).
    /// Repeatable, or comma-separated. None by default: the client is the TCP peer, whatever its
    /// headers say.
    #[arg(long, value_delimiter = ',', env = "TRUSTED_PROXIES")]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// The header the trusted proxies append the client's address to.
    #[arg(long, env = "CLIENT_ADDRESS_HEADER", value_enum, default_value_t)]
    pub client_address_header: crate::client::ForwardedHeader,
    /// Serve `/metrics` on this address instead of the main one (e.g. an internal interface).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub secret: SecretArg,
    #[command(flatten)]
    pub shutdown: taproom_http::lifecycle::ShutdownArgs,
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
