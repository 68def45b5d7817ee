//! Taproom's router: one GraphQL endpoint in front of the subgraphs.
//!
//! # A request, stage by stage
//!
//! [`http`] reads a GraphQL-over-HTTP request and hands it to [`Router::execute`] ([`pipeline`]),
//! whose lines are the stages, in order:
//!
//! 0. [`persisted`]: the query text, sent or persisted (APQ, a manifest), and the safelist.
//! 1. [`plan`]: parse → check [limits](plan::limits) → validate against the API schema → split off
//!    introspection → normalize → plan (with `hive-router-query-planner`); the
//!    [`Prepared`](plan::Prepared) operation is cached per supergraph.
//! 2. [`variables`]: coerce the client's variables.
//! 3. [`execute`]: walk the plan, fetch from subgraphs ([`fetch`]), merge the answers into one tree
//!    ([`value`]).
//! 4. [`response`]: shape the tree to exactly the client's selection, as JSON text, propagating
//!    nulls; [`introspection`] answers `__schema`/`__type` from the API schema's AST.
//! 5. [`body`]: the shaped response written out; [`http`] picks the media type and status.
//!
//! Every error a client sees is an [`error::GraphqlError`]; a request that cannot run at all is an
//! [`error::RequestError`], which knows its HTTP status. Leaves shared by the stages: [`path`]
//! (paths into the response), [`json`] (writing JSON text), [`ast`] (helpers over the GraphQL ASTs).
//!
//! # Around the pipeline
//!
//! - [`supergraph`]: a loaded supergraph (planner, API schema, subgraph URLs), swapped atomically.
//! - [`serve`]: loading or composing the supergraph, serving, polling live subgraphs.
//! - [`cli`] and [`config`]: the command line.
//! - [`tooling`]: composition ([`compose`]) and schema checks ([`check`]), not stages of a request.
//! - [`playground`]: GraphiQL at `/`.
//!
//! The stages are internal; what other crates use is re-exported here or in the few public
//! modules (`config`, `fetch`, `http`, `plan`, `supergraph`). The router depends on no subgraph
//! crate: it sees SDL and HTTP only.

mod ast;
mod body;
mod cli;
pub mod client;
pub mod config;
pub mod dashboard;
mod execute;
pub mod fetch;
pub mod http;
mod idempotency;
mod introspection;
mod json;
pub mod metrics;
mod path;
pub mod persisted;
mod pipeline;
pub mod plan;
mod playground;
mod response;
mod serve;
pub mod subscription;
pub mod supergraph;
mod tooling;
mod value;
mod variables;
pub mod ws;

/// The typed GraphQL error and request error, shared with the subgraphs' HTTP shell.
pub use taproom_http::error;

pub use cli::run;
pub use pipeline::{GraphqlRequest, Router, MAX_SUBSCRIPTIONS};
pub use serve::{avoid_huge_pages, compose_live, fetch_sdl, serve, shutdown_signal};
pub use tooling::{check, compose};
