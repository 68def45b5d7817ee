//! Logging setup shared by the services' `main`s: `taproom-telemetry`'s, re-exported.

pub use taproom_telemetry::logs::{init, LogArgs, LogFormat};
