//! `taproom-orders`: parse the command line, start tracing, run the command.

use std::process::ExitCode;

use clap::Parser;
use taproom_orders::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    taproom_common::telemetry::init();
    match taproom_orders::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
