//! Log lines: text for people, JSON for collectors, colours only for a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, with the spans it happened in (`request{request_id=.. trace_id=..}`).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields`, `target`, and `spans` with the
    /// request's ids.
    Json,
}

/// The log flag every binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written to stderr: `text`, or `json` for a log collector (one object per line).
    #[arg(long, env = "TAPROOM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// The filter when `RUST_LOG` is not set: Taproom's own crates at `info`, libraries at `warn`.
pub const DEFAULT_FILTER: &str = "warn,taproom=info,taproom_common=info,taproom_users=info,taproom_beers=info,taproom_orders=info,taproom_router=info,taproom_telemetry=info";

/// Starts logging to stderr in `format`, filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]). ANSI
/// colours only when stderr is a terminal, so a file or a collector gets plain text.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}
