//! `taproom-orders`: parse the command line, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;
use taproom_orders::config::Cli;

/// mimalloc instead of the system allocator: each request allocates thousands of small JSON values,
/// and glibc's malloc was the largest single cost in profiles under load (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    taproom_common::telemetry::run_service(
        cli.log.log_format,
        "taproom-orders",
        taproom_orders::run(cli),
    )
    .await
}
