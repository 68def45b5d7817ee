//! Tracing setup shared by the services' `main`s.

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default: `info` for Taproom, `warn` for libraries).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,taproom=info,taproom_common=info,taproom_users=info,taproom_beers=info,taproom_orders=info,taproom_router=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
