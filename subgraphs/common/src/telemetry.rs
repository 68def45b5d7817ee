//! Logging setup shared by the services' `main`s, and the ids a request sends on: `taproom-telemetry`'s,
//! re-exported.

pub use taproom_telemetry::{
    context::outgoing,
    logs::{init, LogArgs, LogFormat},
};
