//! Logging setup shared by the services' `main`s, and the ids a request sends on: `taproom-telemetry`'s,
//! re-exported.

pub use taproom_telemetry::{
    context::{client_span, outgoing, spawn},
    logs::{init, init_logs, run_service, LogArgs, LogFormat, Telemetry},
    traces::TARGET,
};
