//! Schema tooling beside the request pipeline: composing subgraph SDLs into a supergraph
//! ([`compose`]) and checking a schema change against the clients of the API ([`check`]). The
//! router uses `compose` to serve live subgraphs; the `compose`, `api-schema` and `check` commands
//! and CI use both. [`manifest`] writes the persisted query manifest of the frontend operations.

pub mod check;
pub mod compose;
pub mod manifest;
