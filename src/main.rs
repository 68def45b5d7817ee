//! `taproom`: with no arguments, runs the whole federation locally (see [`stack`]); with a service
//! name, runs that one service exactly as its own binary would (`taproom users serve`, ...).

mod config;
mod stack;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Service};

/// mimalloc instead of the system allocator: each request allocates thousands of small JSON values,
/// and glibc's malloc was the largest single cost in profiles under load (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Every service this binary runs (router and subgraphs) benefits alike; see the function.
    taproom_router::avoid_huge_pages();
    let cli = Cli::parse();
    // A service's log format is on its own command line; the stack's, on the stack's (and the
    // stack hands it to its children).
    let service = cli.service.map(ServiceCli::parse);
    let format = match &service {
        Some(service) => service.log_format(),
        None => cli.stack.log_format,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime starts on any supported platform");
    let result = runtime.block_on(async {
        // The stack itself records no spans: its children do, each as its own service.
        let name = service.as_ref().map_or("taproom", ServiceCli::name);
        let telemetry = match service {
            None => taproom_common::telemetry::init_logs(format),
            Some(_) => taproom_common::telemetry::init(format, name)
                .map_err(|error| anyhow::anyhow!(error))?,
        };
        let result = match service {
            None => stack::run(cli.stack).await,
            Some(service) => {
                stack::exit_with_parent();
                service.run().await
            }
        };
        telemetry.shutdown().await;
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// One service's command line, parsed as its own binary parses it.
enum ServiceCli {
    Users(taproom_users::config::Cli),
    Beers(taproom_beers::config::Cli),
    Orders(taproom_orders::config::Cli),
    Router(taproom_router::config::Cli),
}

impl ServiceCli {
    fn parse(service: Service) -> Self {
        match service {
            Service::Users { args } => ServiceCli::Users(taproom_users::config::Cli::parse_from(
                with_name("taproom users", args),
            )),
            Service::Beers { args } => ServiceCli::Beers(taproom_beers::config::Cli::parse_from(
                with_name("taproom beers", args),
            )),
            Service::Orders { args } => ServiceCli::Orders(
                taproom_orders::config::Cli::parse_from(with_name("taproom orders", args)),
            ),
            Service::Router { args } => ServiceCli::Router(
                taproom_router::config::Cli::parse_from(with_name("taproom router", args)),
            ),
        }
    }

    /// The service's name in traces when `OTEL_SERVICE_NAME` does not give one.
    fn name(&self) -> &'static str {
        match self {
            ServiceCli::Users(_) => "taproom-users",
            ServiceCli::Beers(_) => "taproom-beers",
            ServiceCli::Orders(_) => "taproom-orders",
            ServiceCli::Router(_) => "taproom-router",
        }
    }

    fn log_format(&self) -> taproom_common::telemetry::LogFormat {
        match self {
            ServiceCli::Users(cli) => cli.log.log_format,
            ServiceCli::Beers(cli) => cli.log.log_format,
            ServiceCli::Orders(cli) => cli.log.log_format,
            ServiceCli::Router(cli) => cli.log.log_format,
        }
    }

    /// Runs the service.
    async fn run(self) -> anyhow::Result<()> {
        match self {
            ServiceCli::Users(cli) => taproom_users::run(cli).await,
            ServiceCli::Beers(cli) => taproom_beers::run(cli).await,
            ServiceCli::Orders(cli) => taproom_orders::run(cli).await,
            ServiceCli::Router(cli) => taproom_router::run(cli).await,
        }
    }
}

fn with_name(name: &str, args: Vec<String>) -> Vec<String> {
    std::iter::once(name.to_owned()).chain(args).collect()
}
