//! Plumbing that every Taproom subgraph needs in exactly the same way, and nothing else.
//!
//! Federation exists so each service owns its model, so this crate holds no domain types. It holds:
//!
//! - [`db`]: connecting to SQLite or PostgreSQL from one `DATABASE_URL`, running the right set of
//!   migrations, and counting the SQL statements a service sends (tests assert batching with it).
//! - [`auth`]: who is calling. A bearer token is verified by an [`auth::Authenticator`]: the users
//!   subgraph checks its own database, the others ask the users subgraph and cache the answer for a few
//!   seconds ([`auth::RemoteAuthenticator`]). The README's "Tokens" section describes the design.
//! - [`error`]: the stable `extensions.code` values of the public contract.
//! - [`http`]: the HTTP shell around an async-graphql schema: GraphQL-over-HTTP for GET and POST,
//!   body and depth limits, `/health` and `/ready`, graceful shutdown with draining.
//! - [`limits`]: the router's limits on documents (depth, aliases, fields, repeated directives).
//! - [`metrics`]: the subgraph's `/metrics`: requests, SQL statements by kind, the pool, the token cache.
//! - [`memo`]: a subtree that the same request reaches many times for the same entity, resolved once.
//! - [`money`]: the contract's `Decimal` scalar over exact integer cents.
//! - [`paging`]: Relay-style pages: cursors, the page bound and the shared `PageInfo`.
//! - [`service`]: the shared lifecycle of a subgraph binary (migrate, listen, serve, drain).
//! - [`retry`]: one more try for an idempotent call to another service, within a budget.
//! - [`telemetry`]: tracing setup.
//! - [`trust`]: the shared secret callers of a subgraph present, and the client address the router
//!   forwards.

pub mod auth;
pub mod db;
pub mod error;
pub mod http;
pub mod limits;
pub mod memo;
pub mod metrics;
pub mod money;
pub mod paging;
pub mod service;
/// One more try for an idempotent call to another service ([`taproom_http::retry`]).
pub use taproom_http::retry;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod trust;
