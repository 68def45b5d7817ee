//! The gateways under test and how each is measured: started on the supergraph file (Taproom's
//! router from the release binary, the peers under Node.js), its answers checked against Taproom's
//! ([`crate::verify`]), warmed up, loaded for a fixed time, read for CPU time and peak RSS through
//! `/proc`, and stopped — once per round, operation and concurrency, so no run inherits another's
//! caches or heap.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Result;

use crate::{
    config::Args,
    load::{self, Outcome, Target},
    ops::Operation,
    procs::{Launch, Process},
    report::{Measurement, Variant},
    verify::Reference,
};

/// A gateway the bench can start. Taproom's router and Hive Router run twice: with subgraph
/// request deduplication off (the same work as every other gateway) and on (their defaults).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Gateway {
    Taproom,
    TaproomDedupe,
    HiveRouter,
    HiveRouterDedupe,
    Apollo,
    Hive,
}

impl Gateway {
    /// The name the results use.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Gateway::Taproom => "Taproom router",
            Gateway::TaproomDedupe => "Taproom router, dedupe on",
            Gateway::HiveRouter => "Hive Router",
            Gateway::HiveRouterDedupe => "Hive Router, dedupe on",
            Gateway::Apollo => "Apollo Gateway",
            Gateway::Hive => "Hive Gateway",
        }
    }

    /// Whether it runs under Node.js (from `--peers-dir`).
    pub(crate) fn is_node(self) -> bool {
        matches!(self, Gateway::Apollo | Gateway::Hive)
    }

    /// Whether it is Hive Router (the `--hive-router` binary).
    pub(crate) fn is_hive_router(self) -> bool {
        matches!(self, Gateway::HiveRouter | Gateway::HiveRouterDedupe)
    }

    /// The gateway Taproom's router in this mode is compared with: Hive Router in the same mode.
    pub(crate) fn rival(self) -> Option<Gateway> {
        match self {
            Gateway::Taproom => Some(Gateway::HiveRouter),
            Gateway::TaproomDedupe => Some(Gateway::HiveRouterDedupe),
            _ => None,
        }
    }
}

/// Starts gateways, one at a time, all at one address and on the same cores.
pub(crate) struct Gateways<'a> {
    args: &'a Args,
    /// Where every gateway listens: `--base-port` + 0.
    target: Target,
    /// A `taskset` CPU list, or none when pinning is not possible.
    cpus: Option<&'a str>,
    logs: &'a Path,
}

impl<'a> Gateways<'a> {
    /// Gateways started as `args` say, pinned to `cpus`, logging into `logs`.
    pub(crate) fn new(args: &'a Args, cpus: Option<&'a str>, logs: &'a Path) -> Result<Self> {
        Ok(Gateways {
            args,
            target: args.target(0)?,
            cpus,
            logs,
        })
    }

    /// Where the started gateway answers.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Starts `gateway` on `supergraph` and waits until it answers.
    pub(crate) async fn start(&self, gateway: Gateway, supergraph: &Path) -> Result<Process> {
        self.start_with(gateway, supergraph, Vec::new()).await
    }

    /// Where the gateways under test listen.
    pub(crate) fn address(&self) -> std::net::SocketAddr {
        self.target.addr
    }

    /// [`Gateways::start`], with `extra` added to Taproom's router's environment.
    pub(crate) async fn start_with(
        &self,
        gateway: Gateway,
        supergraph: &Path,
        extra: Vec<(&'static str, String)>,
    ) -> Result<Process> {
        self.start_inner(gateway, supergraph, extra, None).await
    }

    async fn start_inner(
        &self,
        gateway: Gateway,
        supergraph: &Path,
        extra: Vec<(&'static str, String)>,
        counted_into: Option<&Path>,
    ) -> Result<Process> {
        let port = self.target.addr.port();
        let supergraph = supergraph.display().to_string();
        let hive_config;
        let launch = match gateway {
            Gateway::Taproom | Gateway::TaproomDedupe => {
                let mut env = vec![
                    ("LISTEN", format!("127.0.0.1:{port}")),
                    ("RUST_LOG", "warn".into()),
                ];
                if gateway == Gateway::Taproom {
                    env.push(("NO_SUBGRAPH_DEDUPE", "true".into()));
                }
                env.extend(extra);
                Launch {
                    name: "taproom-router",
                    program: &self.args.taproom,
                    args: vec![
                        "router".into(),
                        "serve".into(),
                        "--supergraph".into(),
                        supergraph,
                    ],
                    env,
                    cpus: self.cpus,
                    log_dir: self.logs,
                }
            }
            Gateway::HiveRouter | Gateway::HiveRouterDedupe => {
                hive_config = self.logs.join(format!("{}.yaml", gateway_slug(gateway)));
                std::fs::write(
                    &hive_config,
                    hive_router_config(&supergraph, port, gateway == Gateway::HiveRouterDedupe),
                )?;
                Launch {
                    name: gateway_slug(gateway),
                    program: &self.args.hive_router,
                    args: Vec::new(),
                    env: vec![
                        ("ROUTER_CONFIG_FILE_PATH", hive_config.display().to_string()),
                        ("RUST_LOG", "warn".into()),
                    ],
                    cpus: self.cpus,
                    log_dir: self.logs,
                }
            }
            Gateway::Apollo | Gateway::Hive => {
                let script = self.args.peers_dir.join(if gateway == Gateway::Apollo {
                    "apollo.mjs"
                } else {
                    "hive.mjs"
                });
                Launch {
                    name: gateway_slug(gateway),
                    program: &self.args.node,
                    args: vec![script.display().to_string(), supergraph, port.to_string()],
                    env: vec![("NODE_ENV", "production".into())],
                    cpus: self.cpus,
                    log_dir: self.logs,
                }
            }
        };
        let counted: Vec<String>;
        let launch = match counted_into {
            None => launch,
            // Under callgrind: the same program and arguments after valgrind's own.
            Some(dir) => {
                counted = [
                    "--tool=callgrind".to_owned(),
                    format!(
                        "--callgrind-out-file={}/callgrind.{}.%p",
                        dir.display(),
                        gateway.slug()
                    ),
                    "--dump-instr=no".to_owned(),
                    launch.program.display().to_string(),
                ]
                .into_iter()
                .chain(launch.args)
                .collect();
                Launch {
                    program: Path::new("valgrind"),
                    args: counted,
                    ..launch
                }
            }
        };
        let mut process = Process::start(launch)?;
        // Under callgrind a start takes many times longer.
        let within = if counted_into.is_some() { 600 } else { 60 };
        process
            .wait_ready(Duration::from_secs(within), || {
                load::answers_typename(self.target.clone())
            })
            .await?;
        Ok(process)
    }

    /// [`Gateways::start`], under valgrind's callgrind, its counts written into `dir`
    /// (`callgrind.<gateway>.<pid>.<n>`).
    pub(crate) async fn start_counted(
        &self,
        gateway: Gateway,
        supergraph: &Path,
        dir: &Path,
    ) -> Result<Process> {
        self.start_inner(gateway, supergraph, Vec::new(), Some(dir))
            .await
    }

    /// For each round, each gateway (the order rotating between rounds), each operation and each
    /// concurrency: one run of [`Gateways::measure_once`]. Answers are checked against `reference`,
    /// which the first gateway to answer an operation fills.
    pub(crate) async fn measure(
        &self,
        supergraph: &Path,
        operations: &[Operation],
        reference: &mut Reference,
    ) -> Result<Vec<Measurement>> {
        let mut measurements = Vec::new();
        let mut order = self.args.gateways.clone();
        for round in 1..=self.args.rounds {
            for &gateway in &order {
                for op in operations {
                    for &connections in op.connections.as_ref().unwrap_or(&self.args.connections) {
                        let m = self
                            .measure_once(round, gateway, op, connections, supergraph, reference)
                            .await?;
                        measurements.push(m);
                    }
                }
            }
            order.rotate_left(1);
        }
        Ok(measurements)
    }

    /// Taproom's router on `op` with clients accepting each of `ENCODINGS` in turn (its answers
    /// already checked by [`Gateways::measure`]): bytes on the wire and CPU per answer, one run each
    /// at `connections`, the router started fresh for each.
    pub(crate) async fn measure_compression(
        &self,
        supergraph: &Path,
        op: &Operation,
        connections: usize,
    ) -> Result<Vec<Variant>> {
        const ENCODINGS: [&str; 4] = ["identity", "gzip", "br", "zstd"];
        let mut runs = Vec::new();
        for encoding in ENCODINGS {
            let label = format!("Accept-Encoding {encoding}");
            let run = self
                .measure_variant(
                    supergraph,
                    op,
                    connections,
                    &label,
                    Some(encoding),
                    Vec::new(),
                )
                .await?;
            runs.push(run);
        }
        Ok(runs)
    }

    /// Taproom's router on `op` with traces off, then recording and exporting every trace, then 1
    /// in 100, to an OTLP/HTTP collector in this process that takes and drops them: what tracing
    /// costs in CPU per answer. Only the router traces (the subgraphs are the bench's own).
    pub(crate) async fn measure_tracing(
        &self,
        supergraph: &Path,
        op: &Operation,
        connections: usize,
    ) -> Result<Vec<Variant>> {
        let sink = crate::otlp_sink::Sink::start().await?;
        let settings: [(&str, Option<(&str, &str)>); 3] = [
            ("traces off", None),
            ("traces sampled 100%", Some(("always_on", "1"))),
            ("traces sampled 1%", Some(("traceidratio", "0.01"))),
        ];
        let mut runs = Vec::new();
        for (label, sampler) in settings {
            let env = match sampler {
                None => Vec::new(),
                Some((sampler, ratio)) => vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint.clone()),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
                    ("OTEL_TRACES_SAMPLER", sampler.to_owned()),
                    ("OTEL_TRACES_SAMPLER_ARG", ratio.to_owned()),
                ],
            };
            let before = sink.received();
            let mut run = self
                .measure_variant(supergraph, op, connections, label, None, env)
                .await?;
            let (exports, bytes) = sink.received();
            run.exports = Some(exports - before.0);
            run.export_bytes = Some(bytes - before.1);
            if sampler.is_some() && run.exports == Some(0) {
                anyhow::bail!("{label}: the router exported no spans to the bench's collector");
            }
            runs.push(run);
        }
        Ok(runs)
    }

    /// One run of Taproom's router on `op` started fresh with `env`, its clients accepting
    /// `encoding`: answers, bytes and CPU per answer.
    async fn measure_variant(
        &self,
        supergraph: &Path,
        op: &Operation,
        connections: usize,
        label: &str,
        encoding: Option<&'static str>,
        env: Vec<(&'static str, String)>,
    ) -> Result<Variant> {
        let work: Vec<Vec<load::Step>> = op
            .gateway_work
            .iter()
            .map(|unit| {
                unit.iter()
                    .map(|step| load::Step {
                        accept_encoding: encoding.or(step.accept_encoding),
                        ..step.clone()
                    })
                    .collect()
            })
            .collect();
        let work = Arc::new(work);
        let process = self.start_with(Gateway::Taproom, supergraph, env).await?;
        let targets = std::slice::from_ref(&self.target);
        load::run(targets, work.clone(), connections, self.args.warmup_time()).await?;
        let cpu_before = process.cpu_seconds()?;
        let outcome = load::run(targets, work, connections, self.args.measured_time()).await?;
        let cpu = process.cpu_seconds()? - cpu_before;
        process.stop().await?;
        let run = Variant::new(op.name, label, connections, &outcome, cpu);
        eprintln!(
            "{}, {} with {label} at {connections}: {:.0} req/s, {:.0} bytes/answer, {:.3} CPU ms/answer{}",
            Gateway::Taproom.label(),
            op.name,
            run.requests_per_second,
            run.bytes_per_answer,
            run.cpu_ms_per_request,
            failures(&outcome)
        );
        Ok(run)
    }

    /// Starts the gateway fresh, checks its answers, warms it up, loads it, reads its CPU time and
    /// peak RSS, stops it, and prints the figures.
    async fn measure_once(
        &self,
        round: usize,
        gateway: Gateway,
        op: &Operation,
        connections: usize,
        supergraph: &Path,
        reference: &mut Reference,
    ) -> Result<Measurement> {
        let process = self.start(gateway, supergraph).await?;
        reference
            .check(gateway, op, &self.target, &self.args.out)
            .await?;
        let work = Arc::new(op.gateway_work.clone());
        let targets = std::slice::from_ref(&self.target);
        load::run(targets, work.clone(), connections, self.args.warmup_time()).await?;
        let cpu_before = process.cpu_seconds()?;
        let outcome = load::run(targets, work, connections, self.args.measured_time()).await?;
        let cpu = process.cpu_seconds()? - cpu_before;
        let rss = process.peak_rss_mib()?;
        process.stop().await?;
        let m = Measurement::new(round, gateway, op.name, connections, &outcome, cpu, rss);
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
        Ok(m)
    }
}

/// The name its log and config files go under.
fn gateway_slug(gateway: Gateway) -> &'static str {
    gateway.slug()
}

impl Gateway {
    /// The gateway as file names write it.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Gateway::Taproom => "taproom-router",
            Gateway::TaproomDedupe => "taproom-router-dedupe",
            Gateway::HiveRouter => "hive-router",
            Gateway::HiveRouterDedupe => "hive-router-dedupe",
            Gateway::Apollo => "apollo-gateway",
            Gateway::Hive => "hive-gateway",
        }
    }
}

/// Hive Router's configuration: the supergraph file, loopback, one worker, the headers Taproom's
/// router forwards (`Authorization`, `traceparent`; Hive Router forwards none by default), and
/// in-flight subgraph request deduplication as asked.
fn hive_router_config(supergraph: &str, port: u16, dedupe: bool) -> String {
    format!(
        "log:\n  level: warn\nsupergraph:\n  source: file\n  path: {supergraph:?}\nhttp:\n  host: 127.0.0.1\n  port: {port}\n  workers: 1\nheaders:\n  all:\n    request:\n      - propagate:\n          named: [authorization, traceparent]\ntraffic_shaping:\n  all:\n    dedupe_enabled: {dedupe}\n"
    )
}

fn failures(outcome: &Outcome) -> String {
    match &outcome.first_failure {
        None => String::new(),
        Some(first) => format!(", {} FAILED (first: {first:.300})", outcome.failed),
    }
}
