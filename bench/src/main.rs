//! `taproom-bench`: Taproom's router side by side with Apollo Gateway and Hive Gateway, in one run.
//!
//! Run it with `bash bench/run.sh` (builds in release mode and installs the peers first). The run:
//! 1. migrates three fresh SQLite databases with the services' own `migrate` commands and seeds
//!    volume data ([`seed`]);
//! 2. starts the three subgraphs (release build) and writes a supergraph file pointing at them;
//! 3. measures the subgraphs alone: the load generator sends, per operation, the subgraph requests a
//!    router would send (the ceiling no gateway can pass on this machine);
//! 4. for each round, for each gateway in turn (the order rotates between rounds), for each operation
//!    and concurrency: starts the gateway on the same supergraph file, checks its answers equal
//!    Taproom's as JSON, warms up, loads it for a fixed time, reads its CPU time and peak RSS from
//!    `/proc`, and stops it;
//! 5. writes `results.json` (every run), `results.md` (medians, ratios, targets) and `chart.svg`.
//!
//! Gateways run on `--gateway-cpus`; subgraphs and the load generator (this process) on
//! `--other-cpus`, so a gateway gets a core of its own.

mod load;
mod ops;
mod procs;
mod record;
mod report;
mod seed;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use serde_json::Value;

use crate::{
    load::{Outcome, Target},
    ops::Operation,
    procs::{Launch, Process},
    report::{Baseline, Measurement, Report},
};

/// Benchmark Taproom's router against Apollo Gateway and Hive Gateway.
#[derive(Debug, Parser)]
struct Args {
    /// The release build of the `taproom` binary (subgraphs and router).
    #[arg(long, default_value = "target/release/taproom")]
    taproom: PathBuf,
    /// The checked-in supergraph; its subgraph URLs are rewritten to the bench's ports.
    #[arg(long, default_value = "schema/supergraph.graphql")]
    supergraph: PathBuf,
    /// Where the peers' scripts and their installed node_modules are.
    #[arg(long, default_value = "bench/gateways")]
    peers_dir: PathBuf,
    /// Node.js, for the peers.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Databases, logs and results go here (emptied first).
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Gateways to measure, in the first round's order.
    #[arg(long, value_delimiter = ',', default_value = "taproom,apollo,hive")]
    gateways: Vec<Gateway>,
    /// Operations to send.
    #[arg(long, value_delimiter = ',', default_value = "heavy,one-hop,catalog")]
    operations: Vec<String>,
    /// Concurrent connections, one load run each.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    connections: Vec<usize>,
    /// Rounds over all gateways; results are medians over rounds.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds of measured load per run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of unmeasured load before each run.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// CPUs (taskset list) for the gateway under test.
    #[arg(long, default_value = "0")]
    gateway_cpus: String,
    /// CPUs for the subgraphs and the load generator.
    #[arg(long, default_value = "1")]
    other_cpus: String,
    /// Volume data.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 500)]
    beers: usize,
    #[arg(long, default_value_t = 20_000)]
    orders: usize,
    /// Users with a sign-in token; requests cycle through them.
    #[arg(long, default_value_t = 200)]
    signed_in: usize,
    /// First port: subgraphs on +1..+3, gateways on +0.
    #[arg(long, default_value_t = 14_000)]
    base_port: u16,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    Taproom,
    Apollo,
    Hive,
}

impl Gateway {
    pub fn label(self) -> &'static str {
        match self {
            Gateway::Taproom => "Taproom router",
            Gateway::Apollo => "Apollo Gateway",
            Gateway::Hive => "Hive Gateway",
        }
    }
}

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

async fn run(args: Args, cpus: usize, pinned: bool) -> Result<()> {
    for op in &args.operations {
        ensure!(
            ["heavy", "one-hop", "catalog"].contains(&op.as_str()),
            "unknown operation {op:?}: heavy, one-hop or catalog"
        );
    }
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        args.taproom.exists(),
        "{} not found: build it with `cargo build --release -p taproom` (bench/run.sh does)",
        args.taproom.display()
    );
    let needs_node = args.gateways.iter().any(|g| *g != Gateway::Taproom);
    if needs_node {
        ensure!(
            args.peers_dir.join("node_modules").exists(),
            "the peers are not installed: run `npm ci --prefix {}` (bench/run.sh does)",
            args.peers_dir.display()
        );
    }
    let data = args.out.join("data");
    let logs = args.out.join("logs");
    if args.out.exists() {
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("emptying {}", args.out.display()))?;
    }
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&logs)?;
    let data = data.canonicalize()?;
    let pin = |cpus: &str| pinned.then(|| cpus.to_owned());
    let other_cpus = pin(&args.other_cpus);
    let gateway_cpus = pin(&args.gateway_cpus);

    // 1. Databases.
    let secret_key = random_secret();
    let url = |name: &str| format!("sqlite:{}", data.join(format!("{name}.db")).display());
    for service in ["users", "beers", "orders"] {
        let status = tokio::process::Command::new(&args.taproom)
            .args([service, "migrate"])
            .env("DATABASE_URL", url(service))
            .env("RUST_LOG", "warn")
            .status()
            .await?;
        ensure!(
            status.success(),
            "taproom {service} migrate failed ({status})"
        );
    }
    let volume = seed::Volume {
        users: args.users,
        beers: args.beers,
        orders: args.orders,
        signed_in: args.signed_in.min(args.users),
    };
    ensure!(
        volume.signed_in > 0 && volume.beers > 5,
        "too little volume data to benchmark"
    );
    eprintln!(
        "seeding {} users ({} signed in), {} beers, {} orders ...",
        volume.users, volume.signed_in, volume.beers, volume.orders
    );
    let model = seed::seed(&data, volume, &secret_key).await?;

    // 2. Subgraphs.
    let port = |offset: u16| args.base_port + offset;
    let address = |offset: u16| format!("127.0.0.1:{}", port(offset));
    let graphql_url = |offset: u16| format!("http://{}/graphql", address(offset));
    let auth_url = format!("http://{}/auth/introspect", address(1));
    let subgraph_env = |offset: u16, name: &str| {
        vec![
            ("DATABASE_URL", url(name)),
            ("LISTEN", address(offset)),
            ("RUST_LOG", "warn".to_owned()),
        ]
    };
    let mut users_env = subgraph_env(1, "users");
    users_env.push(("SECRET_KEY", secret_key.clone()));
    let mut beers_env = subgraph_env(2, "beers");
    beers_env.push(("AUTH_URL", auth_url.clone()));
    let mut orders_env = subgraph_env(3, "orders");
    orders_env.push(("AUTH_URL", auth_url.clone()));
    orders_env.push(("BEERS_URL", graphql_url(2)));
    let mut subgraphs = Vec::new();
    for (name, env) in [
        ("users", users_env),
        ("beers", beers_env),
        ("orders", orders_env),
    ] {
        let offset = subgraphs.len() as u16 + 1;
        let mut process = Process::start(Launch {
            name,
            program: &args.taproom,
            args: vec![name.to_owned(), "serve".to_owned()],
            env,
            cpus: other_cpus.as_deref(),
            log_dir: &logs,
        })?;
        let target = Target {
            addr: address(offset).parse()?,
            path: "/graphql".to_owned(),
        };
        process
            .wait_ready(Duration::from_secs(30), || answers_typename(target.clone()))
            .await?;
        subgraphs.push(process);
    }
    let subgraph_targets: Vec<Target> = (1..=3)
        .map(|offset| {
            Ok(Target {
                addr: address(offset).parse()?,
                path: "/graphql".to_owned(),
            })
        })
        .collect::<Result<_>>()?;
    let supergraph = rewrite_supergraph(
        &std::fs::read_to_string(&args.supergraph)
            .with_context(|| format!("reading {}", args.supergraph.display()))?,
        &[
            ("users", graphql_url(1)),
            ("beers", graphql_url(2)),
            ("orders", graphql_url(3)),
        ],
    )?;
    std::fs::write(args.out.join("supergraph.graphql"), &supergraph)?;
    let supergraph_path = args.out.join("supergraph.graphql").canonicalize()?;

    let mut operations: Vec<Operation> = ops::operations(&model)?
        .into_iter()
        .filter(|op| args.operations.iter().any(|name| name == op.name))
        .collect();
    let duration = Duration::from_secs(args.duration);
    let warmup = Duration::from_secs(args.warmup);
    let gateway_target = Target {
        addr: address(0).parse()?,
        path: "/graphql".to_owned(),
    };

    // 3. The subgraphs alone, sent the requests Taproom's router makes (recorded through a proxy).
    let recorder = record::Recorder::start(&subgraph_targets).await?;
    let recording = args.out.join("supergraph-recording.graphql");
    std::fs::write(
        &recording,
        rewrite_supergraph(
            &supergraph,
            &[
                ("users", recorder.url(0)),
                ("beers", recorder.url(1)),
                ("orders", recorder.url(2)),
            ],
        )?,
    )?;
    let router = start_gateway(
        Gateway::Taproom,
        &args,
        &recording,
        &gateway_target,
        gateway_cpus.as_deref(),
        &logs,
    )
    .await?;
    for op in &mut operations {
        op.subgraph_work = recorder
            .record(&gateway_target, &op.gateway_work)
            .await
            .with_context(|| format!("recording the subgraph requests of {}", op.name))?;
    }
    router.stop().await?;
    drop(recorder);
    let mut baselines = Vec::new();
    for op in &operations {
        let work = Arc::new(op.subgraph_work.clone());
        for &connections in &args.connections {
            load::run(&subgraph_targets, work.clone(), connections, warmup).await?;
            let outcome = load::run(&subgraph_targets, work.clone(), connections, duration).await?;
            eprintln!(
                "subgraphs alone, {} at {connections}: {:.0} op/s ({} failed)",
                op.name,
                outcome.requests_per_second(),
                outcome.failed
            );
            if let Some(failure) = &outcome.first_failure {
                bail!("the subgraphs failed the {} baseline: {failure}", op.name);
            }
            baselines.push(Baseline::new(op.name, connections, &outcome));
        }
    }

    // 4. The gateways.
    let mut reference: HashMap<&str, Vec<Value>> = HashMap::new();
    let mut measurements = Vec::new();
    let mut order = args.gateways.clone();
    for round in 1..=args.rounds {
        for &gateway in &order {
            for op in &operations {
                for &connections in &args.connections {
                    let process = start_gateway(
                        gateway,
                        &args,
                        &supergraph_path,
                        &gateway_target,
                        gateway_cpus.as_deref(),
                        &logs,
                    )
                    .await?;
                    check_answers(gateway, op, &gateway_target, &mut reference, &args.out).await?;
                    let work = Arc::new(op.gateway_work.clone());
                    let targets = std::slice::from_ref(&gateway_target);
                    load::run(targets, work.clone(), connections, warmup).await?;
                    let cpu_before = process.cpu_seconds()?;
                    let outcome = load::run(targets, work, connections, duration).await?;
                    let cpu = process.cpu_seconds()? - cpu_before;
                    let rss = process.peak_rss_mib()?;
                    process.stop().await?;
                    let m =
                        Measurement::new(round, gateway, op.name, connections, &outcome, cpu, rss);
                    eprintln!(
                        "round {round}, {}, {} at {connections}: {:.0} req/s, p95 {:.1} ms, {:.2} CPU s/1k, {:.0} MiB{}",
                        gateway.label(),
                        op.name,
                        m.requests_per_second,
                        m.p95_ms,
                        m.cpu_seconds_per_1k,
                        m.peak_rss_mib,
                        failures(&outcome)
                    );
                    measurements.push(m);
                }
            }
        }
        order.rotate_left(1);
    }
    for subgraph in subgraphs {
        subgraph.stop().await?;
    }

    // 5. Results.
    let report = Report {
        machine: report::Machine::describe(
            cpus,
            pinned,
            &args.gateway_cpus,
            &args.other_cpus,
            &args.node,
            &args.peers_dir,
        ),
        duration_seconds: args.duration,
        warmup_seconds: args.warmup,
        rounds: args.rounds,
        volume: format!(
            "{} users ({} signed in), {} beers, {} orders of 1 to 5 lines",
            volume.users, volume.signed_in, volume.beers, volume.orders
        ),
        operations: operations
            .iter()
            .map(|op| {
                let size = reference
                    .get(op.name)
                    .map(|answers| {
                        answers.iter().map(|a| a.to_string().len()).sum::<usize>()
                            / answers.len().max(1)
                    })
                    .unwrap_or(0);
                (op.name.to_owned(), op.description.to_owned(), size)
            })
            .collect(),
        baselines,
        measurements,
    };
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let markdown = report.markdown();
    std::fs::write(args.out.join("results.md"), &markdown)?;
    std::fs::write(args.out.join("chart.svg"), report.chart_svg())?;
    println!("{markdown}");
    eprintln!(
        "wrote {0}/results.md, {0}/results.json and {0}/chart.svg",
        args.out.display()
    );
    Ok(())
}

fn failures(outcome: &Outcome) -> String {
    match &outcome.first_failure {
        None => String::new(),
        Some(first) => format!(", {} FAILED (first: {first:.300})", outcome.failed),
    }
}

/// Starts `gateway` on `supergraph`, listening at `target`, and waits until it answers there.
async fn start_gateway(
    gateway: Gateway,
    args: &Args,
    supergraph: &Path,
    target: &Target,
    cpus: Option<&str>,
    logs: &Path,
) -> Result<Process> {
    let port = target.addr.port();
    let supergraph = supergraph.display().to_string();
    let launch = match gateway {
        Gateway::Taproom => Launch {
            name: "taproom-router",
            program: &args.taproom,
            args: vec![
                "router".into(),
                "serve".into(),
                "--supergraph".into(),
                supergraph,
            ],
            env: vec![
                ("LISTEN", format!("127.0.0.1:{port}")),
                ("RUST_LOG", "warn".into()),
            ],
            cpus,
            log_dir: logs,
        },
        Gateway::Apollo | Gateway::Hive => {
            let script = args.peers_dir.join(if gateway == Gateway::Apollo {
                "apollo.mjs"
            } else {
                "hive.mjs"
            });
            Launch {
                name: if gateway == Gateway::Apollo {
                    "apollo-gateway"
                } else {
                    "hive-gateway"
                },
                program: &args.node,
                args: vec![script.display().to_string(), supergraph, port.to_string()],
                env: vec![("NODE_ENV", "production".into())],
                cpus,
                log_dir: logs,
            }
        }
    };
    let mut process = Process::start(launch)?;
    process
        .wait_ready(Duration::from_secs(60), || answers_typename(target.clone()))
        .await?;
    Ok(process)
}

async fn answers_typename(target: Target) -> bool {
    let step = load::Step {
        target: 0,
        authorization: None,
        body: bytes::Bytes::from_static(br#"{"query":"{ __typename }"}"#),
        query_plan: false,
    };
    let mut connections = vec![None];
    load::send(&[target], &mut connections, &step).await.is_ok()
}

/// How many of each operation's requests are compared with Taproom's answers at every start.
const CHECKED_ANSWERS: usize = 6;

/// Sends the first requests of `op` and compares the answers with the reference (Taproom's, taken on
/// the first Taproom run; a run without Taproom compares the peers with the first gateway measured).
async fn check_answers(
    gateway: Gateway,
    op: &Operation,
    target: &Target,
    reference: &mut HashMap<&'static str, Vec<Value>>,
    plans_dir: &Path,
) -> Result<()> {
    let mut connections = vec![None];
    let mut answers = Vec::new();
    for unit in op.gateway_work.iter().take(CHECKED_ANSWERS) {
        let body = load::send(std::slice::from_ref(target), &mut connections, &unit[0])
            .await
            .with_context(|| format!("{} answering {}", gateway.label(), op.name))?;
        answers.push(serde_json::from_slice::<Value>(&body)?);
    }
    match reference.get(op.name) {
        None => {
            report::check_meaningful(op.name, &answers)?;
            reference.insert(op.name, answers);
            if gateway == Gateway::Taproom {
                // Keep the plan beside the results: it shows what each gateway has to do.
                let step = load::Step {
                    query_plan: true,
                    ..op.gateway_work[0][0].clone()
                };
                let body =
                    load::send(std::slice::from_ref(target), &mut connections, &step).await?;
                let answer: Value = serde_json::from_slice(&body)?;
                if let Some(plan) = answer["extensions"]["queryPlan"].as_str() {
                    std::fs::write(plans_dir.join(format!("plan-{}.txt", op.name)), plan)?;
                }
            }
        }
        Some(expected) => {
            for (i, (got, want)) in answers.iter().zip(expected).enumerate() {
                if let Some(difference) = report::first_difference(want, got, "") {
                    bail!(
                        "{} answers request {i} of {} differently from the reference: {difference}",
                        gateway.label(),
                        op.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// Replaces each named subgraph's URL in a supergraph's `join__Graph` enum.
fn rewrite_supergraph(sdl: &str, urls: &[(&str, String)]) -> Result<String> {
    let mut out = sdl.to_owned();
    for (name, url) in urls {
        let marker = format!("@join__graph(name: \"{name}\", url: \"");
        let start = out
            .find(&marker)
            .with_context(|| format!("no subgraph named {name} in the supergraph"))?
            + marker.len();
        let end = start
            + out[start..]
                .find('"')
                .context("unterminated URL in the supergraph")?;
        out.replace_range(start..end, url);
    }
    Ok(out)
}

fn random_secret() -> String {
    use rand::{distributions::Alphanumeric, Rng};
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_each_subgraph_url_and_refuses_unknown_names() {
        let sdl = r#"enum join__Graph {
  BEERS @join__graph(name: "beers", url: "http://127.0.0.1:5002/graphql")
  USERS @join__graph(name: "users", url: "http://127.0.0.1:5001/graphql")
}"#;
        let out = rewrite_supergraph(sdl, &[("users", "http://127.0.0.1:14001/graphql".into())])
            .expect("users is named");
        assert!(out.contains(r#"name: "users", url: "http://127.0.0.1:14001/graphql""#));
        assert!(out.contains(r#"name: "beers", url: "http://127.0.0.1:5002/graphql""#));
        assert!(rewrite_supergraph(sdl, &[("orders", "x".into())]).is_err());
    }

    #[test]
    fn the_checked_in_supergraph_names_all_three_subgraphs() {
        let sdl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/supergraph.graphql"
        ))
        .expect("schema/supergraph.graphql is checked in");
        let urls = ["users", "beers", "orders"].map(|n| (n, format!("http://bench/{n}")));
        let out = rewrite_supergraph(&sdl, &urls).expect("all three are named");
        for (name, url) in urls {
            assert!(out.contains(&format!("name: \"{name}\", url: \"{url}\"")));
        }
    }
}
