//! `taproom-router`: parse the command line, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;
use taproom_router::config::Cli;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: each request allocates thousands of small JSON values,
/// and glibc's malloc was the largest single cost in profiles under load (README, "Benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    taproom_router::avoid_huge_pages();
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,taproom_router=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match taproom_router::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
