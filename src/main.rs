//! `taproom`: with no arguments, runs the whole federation locally (see [`stack`]); with a service
//! name, runs that one service exactly as its own binary would (`taproom users serve`, ...).

mod config;
mod stack;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Service};

/// mimalloc instead of the system allocator: each request allocates thousands of small JSON values,
/// and glibc's malloc was the largest single cost in profiles under load (README, "Benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Every service this binary runs (router and subgraphs) benefits alike; see the function.
    taproom_router::avoid_huge_pages();
    let cli = Cli::parse();
    taproom_common::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime starts on any supported platform");
    let result = runtime.block_on(async {
        match cli.service {
            None => stack::run(cli.stack).await,
            Some(service) => {
                stack::exit_with_parent();
                run_service(service).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one service with the command line its own binary takes.
async fn run_service(service: Service) -> anyhow::Result<()> {
    match service {
        Service::Users { args } => {
            taproom_users::run(taproom_users::config::Cli::parse_from(with_name(
                "taproom users",
                args,
            )))
            .await
        }
        Service::Beers { args } => {
            taproom_beers::run(taproom_beers::config::Cli::parse_from(with_name(
                "taproom beers",
                args,
            )))
            .await
        }
        Service::Orders { args } => {
            taproom_orders::run(taproom_orders::config::Cli::parse_from(with_name(
                "taproom orders",
                args,
            )))
            .await
        }
        Service::Router { args } => {
            taproom_router::run(taproom_router::config::Cli::parse_from(with_name(
                "taproom router",
                args,
            )))
            .await
        }
    }
}

fn with_name(name: &str, args: Vec<String>) -> Vec<String> {
    std::iter::once(name.to_owned()).chain(args).collect()
}
