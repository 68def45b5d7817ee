//! `taproom-bench`: Taproom's router side by side with Hive Router, Apollo Gateway and Hive Gateway,
//! in one run.
//!
//! Run it with `bash bench/run.sh` (builds in release mode and installs the peers first). [`run`]
//! goes through the phases in order, one module each:
//! 1. [`seed`]: migrates three fresh SQLite databases with the services' own `migrate` commands and
//!    seeds volume data (for the shop's operations);
//! 2. scenario by scenario — the router-bound one first, on the four static subgraphs of
//!    `taproom-bench-subgraphs` (`fixture/`), then the shop's — [`subgraphs`]: starts the
//!    subgraphs (release builds) and writes a supergraph file pointing at them;
//! 3. [`record`], then [`subgraphs`] again: records the subgraph requests Taproom's router makes for
//!    every request ([`ops`] builds the requests), then measures the subgraphs alone — the load
//!    generator ([`load`]) sends those, the ceiling no gateway can pass on this machine;
//! 4. [`gateways`]: for each round, for each gateway in turn (the order rotates between rounds), for
//!    each operation and concurrency: starts the gateway on the same supergraph file ([`procs`]),
//!    checks its answers equal Taproom's as JSON ([`verify`]), warms up, loads it for a fixed time,
//!    reads its CPU time and peak RSS from `/proc`, and stops it; then Taproom's router once more
//!    on the heavy operation per response encoding (bytes on the wire, CPU per answer);
//!    With the shop's subgraphs running, [`streams`]: the memory an idle WebSocket and an open
//!    subscription hold.
//! 5. [`report`]: writes `results.json` (every run), `results.md` (medians, ratios, targets;
//!    [`markdown`]) and `chart.svg` ([`chart`]).
//!
//! Gateways run on `--gateway-cpus`; subgraphs and the load generator (this process) on
//! `--other-cpus`, so a gateway gets a core of its own. The arguments are in [`config`].

mod chart;
mod config;
mod gateways;
mod instructions;
mod load;
mod markdown;
mod ops;
mod otlp_sink;
mod procs;
mod record;
mod report;
mod seed;
mod streams;
mod subgraphs;
mod verify;

use anyhow::{Context, Result};
use clap::Parser;

use crate::{
    config::{Args, OutDirs},
    gateways::Gateways,
    ops::{Operation, Scenario},
    report::{Machine, Report},
    subgraphs::Subgraphs,
    verify::Reference,
};

fn main() -> Result<()> {
    let args = Args::parse();
    // Counted before this process pins itself (the count follows the affinity mask).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = procs::can_pin();
    if pinned {
        // This process is the load generator: keep it off the gateway's cores.
        pin_self(&args.other_cpus)?;
    } else {
        eprintln!("note: cannot pin processes to cores here (needs taskset and 2+ CPUs); running unpinned");
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args, cpus, pinned))
}

/// `--instructions`: instructions per request of every operation, for each gateway (of those
/// counted: Taproom's router and Hive Router, dedupe off and on), written to `instructions.md`
/// and `instructions.json`.
async fn count_instructions(
    args: &Args,
    mut operations: Vec<Operation>,
    databases: Option<&seed::Databases>,
    gateways: &Gateways<'_>,
    other_cpus: Option<&str>,
    dirs: &OutDirs,
) -> Result<()> {
    use gateways::Gateway;
    let counted: Vec<Gateway> = args
        .gateways
        .iter()
        .copied()
        .filter(|g| !g.is_node())
        .collect();
    let mut counts = Vec::new();
    for scenario in SCENARIOS {
        let (ops, rest): (Vec<Operation>, Vec<Operation>) =
            operations.drain(..).partition(|op| op.scenario == scenario);
        operations = rest;
        if ops.is_empty() {
            continue;
        }
        let subgraphs = start_subgraphs(scenario, args, databases, other_cpus, &dirs.logs).await?;
        for op in &ops {
            for &gateway in &counted {
                let count = instructions::count(
                    gateways,
                    gateway,
                    op,
                    &subgraphs.supergraph_path,
                    &dirs.logs,
                )
                .await?;
                eprintln!(
                    "{} {}: {:.0} instructions per request",
                    op.name,
                    gateway.label(),
                    count.instructions_per_request
                );
                counts.push(count);
            }
        }
        subgraphs.stop().await?;
    }
    instructions::write(&counts, &args.out)
}

/// The scenarios, in run order.
const SCENARIOS: [Scenario; 3] = [
    Scenario::RouterBound,
    Scenario::SlowRouterBound,
    Scenario::Shop,
];

/// Starts `scenario`'s subgraphs.
async fn start_subgraphs(
    scenario: Scenario,
    args: &Args,
    databases: Option<&seed::Databases>,
    cpus: Option<&str>,
    logs: &std::path::Path,
) -> Result<Subgraphs> {
    match (scenario, databases) {
        (Scenario::RouterBound, _) => Subgraphs::start_router_bound(args, cpus, logs, 0).await,
        (Scenario::SlowRouterBound, _) => {
            Subgraphs::start_router_bound(args, cpus, logs, ops::SLOW_SUBGRAPH_MS).await
        }
        (Scenario::Shop, Some(databases)) => {
            Subgraphs::start_shop(args, databases, cpus, logs, true).await
        }
        (Scenario::Shop, None) => unreachable!("the shop's operations come with databases"),
    }
}

fn pin_self(cpus: &str) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpus.split(',') {
        let cpu: usize = cpu.trim().parse().with_context(|| {
            format!("--other-cpus takes CPU numbers separated by commas, got {cpus:?}")
        })?;
        set.set(cpu)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning the load generator to CPUs {cpus}"))?;
    Ok(())
}

/// The benchmark, phase by phase; `cpus` is this machine's CPU count, `pinned` whether processes
/// can be pinned to cores.
async fn run(args: Args, cpus: usize, pinned: bool) -> Result<()> {
    args.check()?;
    let dirs = OutDirs::create(&args.out)?;
    let other_cpus = pinned.then(|| args.other_cpus.clone());
    let gateway_cpus = pinned.then(|| args.gateway_cpus.clone());

    // 1. Databases, for the shop's operations.
    let volume = args.volume();
    let databases = if ops::needs_shop(&args.operations) {
        Some(seed::databases(&args.taproom, &dirs.data, volume).await?)
    } else {
        None
    };
    let mut operations = ops::selected(databases.as_ref().map(|d| &d.model), &args.operations)?;
    let gateways = Gateways::new(&args, gateway_cpus.as_deref(), &dirs.logs)?;

    if args.instructions {
        return count_instructions(
            &args,
            operations,
            databases.as_ref(),
            &gateways,
            other_cpus.as_deref(),
            &dirs,
        )
        .await;
    }

    // 2. to 4., scenario by scenario: its subgraphs, the subgraphs alone, the gateways.
    let mut reference = Reference::default();
    let (mut baselines, mut measurements) = (Vec::new(), Vec::new());
    let (mut compression, mut tracing) = (Vec::new(), Vec::new());
    let mut measured = Vec::new();
    let mut streams = None;
    for scenario in SCENARIOS {
        let (mut ops, rest): (Vec<Operation>, Vec<Operation>) =
            operations.drain(..).partition(|op| op.scenario == scenario);
        operations = rest;
        if ops.is_empty() {
            continue;
        }
        let subgraphs = start_subgraphs(
            scenario,
            &args,
            databases.as_ref(),
            other_cpus.as_deref(),
            &dirs.logs,
        )
        .await?;
        // The subgraphs alone, sent the requests Taproom's router makes (recorded through a proxy).
        record::subgraph_work(&subgraphs, &gateways, &mut ops, &args.out).await?;
        let (warmup, duration) = (args.warmup_time(), args.measured_time());
        baselines.extend(
            subgraphs
                .measure_alone(&ops, &args.connections, warmup, duration)
                .await?,
        );
        measurements.extend(
            gateways
                .measure(&subgraphs.supergraph_path, &ops, &mut reference)
                .await?,
        );
        // The heavy operation once per response encoding, then with traces off, sampled 100% and
        // 1% (Taproom's router only).
        if let Some(heavy) = ops.iter().find(|op| op.name == "heavy") {
            if args.gateways.contains(&gateways::Gateway::Taproom) {
                let connections = args.connections.iter().copied().max().unwrap_or(1);
                compression.extend(
                    gateways
                        .measure_compression(&subgraphs.supergraph_path, heavy, connections)
                        .await?,
                );
                tracing.extend(
                    gateways
                        .measure_tracing(&subgraphs.supergraph_path, heavy, connections)
                        .await?,
                );
            }
        }
        // What an open stream costs, on the shop's subgraphs (orders serves the subscriptions).
        if let (Scenario::Shop, Some(databases)) = (scenario, &databases) {
            if args.streams > 0 && args.gateways.contains(&gateways::Gateway::TaproomDedupe) {
                streams = Some(
                    streams::measure(
                        &gateways,
                        &subgraphs,
                        &subgraphs.supergraph_path,
                        &databases.model.tokens,
                        args.streams,
                    )
                    .await?,
                );
            }
        }
        subgraphs.stop().await?;
        // The heavy operation once more on subgraphs without the orders subgraph's subtree memo:
        // its before and after, in the same run.
        if let (Some(heavy), Some(databases)) =
            (ops.iter().find(|op| op.name == "heavy"), &databases)
        {
            let without =
                Subgraphs::start_shop(&args, databases, other_cpus.as_deref(), &dirs.logs, false)
                    .await?;
            let alone = without
                .measure_alone(
                    std::slice::from_ref(heavy),
                    &args.connections,
                    warmup,
                    duration,
                )
                .await?;
            without.stop().await?;
            baselines.extend(alone.into_iter().map(|mut b| {
                b.operation = ops::HEAVY_WITHOUT_MEMO.to_owned();
                b
            }));
        }
        measured.extend(ops);
    }

    // 5. Results.
    let machine = Machine::describe(cpus, pinned, &args);
    let mut report = Report::new(
        &args,
        machine,
        databases.is_some().then_some(volume),
        &measured,
        &reference,
        baselines,
        measurements,
    );
    report.compression = compression;
    report.tracing = tracing;
    report.streams = streams;
    report.write(&args.out)
}
