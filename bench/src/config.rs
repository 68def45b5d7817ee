//! What a run is told: the command-line arguments (every default is the documented benchmark), the
//! checks they must pass before anything starts, and the output directory they name, emptied and
//! laid out.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use clap::Parser;

use crate::{gateways::Gateway, load::Target, seed::Volume};

/// Benchmark Taproom's router against Hive Router, Apollo Gateway and Hive Gateway.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// The release build of the `taproom-bench-subgraphs` binary (the router-bound scenario).
    #[arg(long, default_value = "target/release/taproom-bench-subgraphs")]
    pub(crate) fixture: PathBuf,
    /// The release build of the `taproom` binary (subgraphs and router).
    #[arg(long, default_value = "target/release/taproom")]
    pub(crate) taproom: PathBuf,
    /// The checked-in supergraph; its subgraph URLs are rewritten to the bench's ports.
    #[arg(long, default_value = "schema/supergraph.graphql")]
    pub(crate) supergraph: PathBuf,
    /// Where the peers' scripts and their installed node_modules are.
    #[arg(long, default_value = "bench/gateways")]
    pub(crate) peers_dir: PathBuf,
    /// Hive Router's binary (bench/run.sh builds it there from crates.io when missing).
    #[arg(long, default_value = "bench/.cache/hive-router/bin/hive_router")]
    pub(crate) hive_router: PathBuf,
    /// Node.js, for the peers.
    #[arg(long, default_value = "node")]
    pub(crate) node: PathBuf,
    /// Databases, logs and results go here (emptied first).
    #[arg(long, default_value = "target/bench")]
    pub(crate) out: PathBuf,
    /// Gateways to measure, in the first round's order. `taproom` and `hive-router` run with subgraph
    /// request deduplication off (the same work as the others), the `-dedupe` ones with it on.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "taproom,hive-router,taproom-dedupe,hive-router-dedupe,apollo,hive"
    )]
    pub(crate) gateways: Vec<Gateway>,
    /// Operations to send: `router-bound` on the four static subgraphs, the others on the shop's.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "router-bound,router-bound-slow,heavy,one-hop,catalog"
    )]
    pub(crate) operations: Vec<String>,
    /// Concurrent connections, one load run each.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    pub(crate) connections: Vec<usize>,
    /// Count instructions per request under valgrind's callgrind instead of the wall-clock run
    /// (`instructions.md`, `instructions.json`); with the default gateways, Taproom's router and
    /// Hive Router, dedupe off and on.
    #[arg(long)]
    pub(crate) instructions: bool,
    /// WebSockets, then subscriptions, opened on Taproom's router to measure the memory each
    /// holds (with the shop's operations); 0: not measured.
    #[arg(long, default_value_t = 1000)]
    pub(crate) streams: usize,
    /// Rounds over all gateways; results are medians over rounds.
    #[arg(long, default_value_t = 2)]
    pub(crate) rounds: usize,
    /// Seconds of measured load per run.
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// Seconds of unmeasured load before each run.
    #[arg(long, default_value_t = 3)]
    pub(crate) warmup: u64,
    /// CPUs (taskset list) for the gateway under test.
    #[arg(long, default_value = "0")]
    pub(crate) gateway_cpus: String,
    /// CPUs for the subgraphs and the load generator.
    #[arg(long, default_value = "1")]
    pub(crate) other_cpus: String,
    /// Volume data.
    #[arg(long, default_value_t = 1000)]
    pub(crate) users: usize,
    // `--beers` and `--orders` belong to the volume data above; `--help` shows them without a line.
    #[arg(long, default_value_t = 500)]
    pub(crate) beers: usize,
    #[arg(long, default_value_t = 20_000)]
    pub(crate) orders: usize,
    /// Users with a sign-in token; requests cycle through them.
    #[arg(long, default_value_t = 200)]
    pub(crate) signed_in: usize,
    /// First port: the gateway under test on +0, the shop's subgraphs on +1..+3, the router-bound
    /// scenario's on +4..+7.
    #[arg(long, default_value_t = 14_000)]
    pub(crate) base_port: u16,
}

impl Args {
    /// Refuses arguments the run could only fail on later: unknown operations, no rounds, a missing
    /// release build, or peers asked for but not installed.
    pub(crate) fn check(&self) -> Result<()> {
        for op in &self.operations {
            ensure!(
                crate::ops::NAMES.contains(&op.as_str()),
                "unknown operation {op:?}: {}",
                crate::ops::NAMES.join(", ")
            );
        }
        ensure!(self.rounds >= 1, "--rounds must be at least 1");
        ensure!(
            self.taproom.exists(),
            "{} not found: build it with `cargo build --release -p taproom` (bench/run.sh does)",
            self.taproom.display()
        );
        if self.operations.iter().any(|op| op == "router-bound") {
            ensure!(
                self.fixture.exists(),
                "{} not found: build it with `cargo build --release -p taproom-bench` (bench/run.sh does)",
                self.fixture.display()
            );
        }
        if self.gateways.iter().any(|g| g.is_hive_router()) {
            ensure!(
                self.hive_router.exists(),
                "Hive Router is not installed at {}: bench/run.sh builds it (once, about 45 minutes), or leave it out with --gateways",
                self.hive_router.display()
            );
        }
        let needs_node = self.gateways.iter().any(|g| g.is_node());
        if needs_node {
            ensure!(
                self.peers_dir.join("node_modules").exists(),
                "the peers are not installed: run `npm ci --prefix {}` (bench/run.sh does)",
                self.peers_dir.display()
            );
        }
        Ok(())
    }

    /// The volume data asked for (never more signed-in users than users).
    pub(crate) fn volume(&self) -> Volume {
        Volume {
            users: self.users,
            beers: self.beers,
            orders: self.orders,
            signed_in: self.signed_in.min(self.users),
        }
    }

    /// The loopback address `offset` ports above `--base-port`: 0 is the gateway under test, 1 to 3
    /// the users, beers and orders subgraphs, 4 to 7 the router-bound scenario's.
    pub(crate) fn address(&self, offset: u16) -> String {
        format!("127.0.0.1:{}", self.base_port + offset)
    }

    /// The GraphQL URL at [`Args::address`] `offset`.
    pub(crate) fn graphql_url(&self, offset: u16) -> String {
        format!("http://{}/graphql", self.address(offset))
    }

    /// The GraphQL endpoint at [`Args::address`] `offset`, for the load generator.
    pub(crate) fn target(&self, offset: u16) -> Result<Target> {
        Ok(Target {
            addr: self.address(offset).parse()?,
            path: "/graphql".to_owned(),
        })
    }

    /// Measured load per run.
    pub(crate) fn measured_time(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    /// Unmeasured load before each run.
    pub(crate) fn warmup_time(&self) -> Duration {
        Duration::from_secs(self.warmup)
    }
}

/// The output directory's layout: databases in `data/`, every process's log in `logs/`; results,
/// supergraphs and plans at the top.
pub(crate) struct OutDirs {
    /// The databases, as an absolute path (the services are given URLs into it).
    pub(crate) data: PathBuf,
    /// One `<name>.log` per started process.
    pub(crate) logs: PathBuf,
}

impl OutDirs {
    /// Empties `out` (a previous run's results included) and creates `data/` and `logs/` in it.
    pub(crate) fn create(out: &Path) -> Result<OutDirs> {
        let data = out.join("data");
        let logs = out.join("logs");
        if out.exists() {
            std::fs::remove_dir_all(out).with_context(|| format!("emptying {}", out.display()))?;
        }
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(&logs)?;
        let data = data.canonicalize()?;
        Ok(OutDirs { data, logs })
    }
}
