//! The results of a run: every load run as measured (written as `results.json`), where they were
//! taken, and the medians over rounds that the Markdown report ([`crate::markdown`]) and the chart
//! ([`crate::chart`]) are drawn from.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::{
    config::Args, gateways::Gateway, load::Outcome, ops::Operation, seed::Volume, verify::Reference,
};

/// The subgraphs alone, driven with the requests a router would send them.
#[derive(Debug, Serialize)]
pub(crate) struct Baseline {
    pub(crate) operation: String,
    pub(crate) connections: usize,
    pub(crate) operations_per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
}

impl Baseline {
    /// The figures of one load run of the subgraphs alone.
    pub(crate) fn new(operation: &str, connections: usize, outcome: &Outcome) -> Baseline {
        Baseline {
            operation: operation.to_owned(),
            connections,
            operations_per_second: outcome.requests_per_second(),
            p50_ms: outcome.percentile_ms(0.50),
            p95_ms: outcome.percentile_ms(0.95),
            p99_ms: outcome.percentile_ms(0.99),
        }
    }
}

/// One load run of one gateway.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measurement {
    pub(crate) round: usize,
    pub(crate) gateway: Gateway,
    pub(crate) operation: String,
    pub(crate) connections: usize,
    /// Requests answered well (failed ones are not timed).
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    pub(crate) first_failure: Option<String>,
    pub(crate) requests_per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    /// The gateway's CPU seconds (user and system) per 1,000 good requests; numerically, CPU ms
    /// per request.
    pub(crate) cpu_seconds_per_1k: f64,
    /// `VmHWM` after the run: the most memory the gateway held since it started.
    pub(crate) peak_rss_mib: f64,
}

impl Measurement {
    /// The figures of one load run of `gateway`, with the CPU time it used during the run and its
    /// peak RSS since it started.
    pub(crate) fn new(
        round: usize,
        gateway: Gateway,
        operation: &str,
        connections: usize,
        outcome: &Outcome,
        cpu_seconds: f64,
        peak_rss_mib: f64,
    ) -> Measurement {
        Measurement {
            round,
            gateway,
            operation: operation.to_owned(),
            connections,
            requests: outcome.ok,
            failed: outcome.failed,
            first_failure: outcome.first_failure.clone(),
            requests_per_second: outcome.requests_per_second(),
            p50_ms: outcome.percentile_ms(0.50),
            p95_ms: outcome.percentile_ms(0.95),
            p99_ms: outcome.percentile_ms(0.99),
            cpu_seconds_per_1k: if outcome.ok == 0 {
                f64::NAN
            } else {
                cpu_seconds * 1000.0 / outcome.ok as f64
            },
            peak_rss_mib,
        }
    }
}

/// Where the numbers were taken.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    /// The CPU model, from `/proc/cpuinfo`.
    pub(crate) cpu: String,
    /// CPUs available to the bench before it pinned itself.
    pub(crate) cpus: usize,
    /// Which processes ran on which CPUs, in words.
    pub(crate) pinning: String,
    /// `node --version`.
    pub(crate) node: String,
    /// The peers' packages with their versions as `package.json` names them.
    pub(crate) peers: String,
}

impl Machine {
    /// This machine's CPU model (`/proc/cpuinfo`), `cpus` (counted before pinning), how the
    /// processes are pinned, and the versions of Node.js and of the peers (`package.json`).
    pub(crate) fn describe(cpus: usize, pinned: bool, args: &Args) -> Machine {
        let (gateway_cpus, other_cpus) = (&args.gateway_cpus, &args.other_cpus);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|l| {
                    l.strip_prefix("model name")
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let node = std::process::Command::new(&args.node)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let peers = std::fs::read_to_string(args.peers_dir.join("package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|package| {
                package["dependencies"].as_object().map(|deps| {
                    deps.iter()
                        .map(|(name, version)| {
                            format!("{name}@{}", version.as_str().unwrap_or("?"))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            })
            .unwrap_or_default();
        Machine {
            cpu,
            cpus,
            pinning: if pinned {
                format!("gateway on CPU {gateway_cpus}; subgraphs and load generator on CPU {other_cpus}")
            } else {
                "none (taskset or a second CPU missing)".to_owned()
            },
            node,
            peers,
        }
    }
}

/// Everything one benchmark run found.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Where the numbers were taken.
    pub(crate) machine: Machine,
    /// `--duration`: measured load per run.
    pub(crate) duration_seconds: u64,
    /// `--warmup`: unmeasured load before each run.
    pub(crate) warmup_seconds: u64,
    /// `--rounds`: how many runs each median is over.
    pub(crate) rounds: usize,
    /// The volume data, in words.
    pub(crate) volume: String,
    /// (name, description, mean answer size in bytes)
    pub(crate) operations: Vec<(String, String, usize)>,
    /// Every run of the subgraphs alone.
    pub(crate) baselines: Vec<Baseline>,
    /// Every run of every gateway, all rounds.
    pub(crate) measurements: Vec<Measurement>,
    /// Taproom's router on the heavy operation with compressed answers, one run per encoding.
    pub(crate) compression: Vec<Variant>,
    /// Taproom's router on the heavy operation with traces off, sampled 100% and 1%.
    pub(crate) tracing: Vec<Variant>,
    /// The memory an idle WebSocket and an open subscription hold ([`crate::streams`]).
    pub(crate) streams: Option<crate::streams::StreamMemory>,
}

/// One load run of Taproom's router in one setting (an `Accept-Encoding`, a trace sampler).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Variant {
    pub(crate) operation: String,
    /// The setting: `Accept-Encoding identity` (uncompressed), `traces sampled 1%`, ...
    pub(crate) setting: String,
    pub(crate) connections: usize,
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    pub(crate) requests_per_second: f64,
    /// Mean answer body as received.
    pub(crate) bytes_per_answer: f64,
    /// The router's CPU time per answer, in milliseconds.
    pub(crate) cpu_ms_per_request: f64,
    /// For the tracing runs: OTLP export requests the bench's collector took, and their bytes.
    pub(crate) exports: Option<u64>,
    pub(crate) export_bytes: Option<u64>,
}

impl Variant {
    pub(crate) fn new(
        operation: &str,
        setting: &str,
        connections: usize,
        outcome: &Outcome,
        cpu_seconds: f64,
    ) -> Variant {
        let per = |total: f64| {
            if outcome.ok == 0 {
                f64::NAN
            } else {
                total / outcome.ok as f64
            }
        };
        Variant {
            operation: operation.to_owned(),
            setting: setting.to_owned(),
            connections,
            requests: outcome.ok,
            failed: outcome.failed,
            requests_per_second: outcome.requests_per_second(),
            bytes_per_answer: per(outcome.bytes as f64),
            cpu_ms_per_request: per(cpu_seconds * 1000.0),
            exports: None,
            export_bytes: None,
        }
    }
}

impl Report {
    /// Everything the run found, with each operation's mean answer size taken from `reference`.
    pub(crate) fn new(
        args: &Args,
        machine: Machine,
        volume: Option<Volume>,
        operations: &[Operation],
        reference: &Reference,
        baselines: Vec<Baseline>,
        measurements: Vec<Measurement>,
    ) -> Report {
        Report {
            machine,
            duration_seconds: args.duration,
            warmup_seconds: args.warmup,
            rounds: args.rounds,
            volume: match volume {
                Some(volume) => format!(
                    "the shop: {} users ({} signed in), {} beers, {} orders of 1 to 5 lines; the router-bound scenario: static data",
                    volume.users, volume.signed_in, volume.beers, volume.orders
                ),
                None => "the router-bound scenario's static data".to_owned(),
            },
            operations: operations
                .iter()
                .map(|op| {
                    let size = reference.mean_size(op.name);
                    (op.name.to_owned(), op.description.to_owned(), size)
                })
                .collect(),
            baselines,
            measurements,
            compression: Vec::new(),
            tracing: Vec::new(),
            streams: None,
        }
    }

    /// Writes `results.json`, `results.md` and `chart.svg` into `out` and prints the Markdown.
    pub(crate) fn write(&self, out: &Path) -> Result<()> {
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        let markdown = self.markdown();
        std::fs::write(out.join("results.md"), &markdown)?;
        std::fs::write(out.join("chart.svg"), self.chart_svg())?;
        println!("{markdown}");
        eprintln!(
            "wrote {0}/results.md, {0}/results.json and {0}/chart.svg",
            out.display()
        );
        Ok(())
    }
}

/// The median of a metric over rounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Medians {
    pub(crate) rps: f64,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) cpu: f64,
    pub(crate) rss: f64,
    pub(crate) failed: u64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Report {
    /// Medians keyed by (operation, connections, gateway).
    pub(crate) fn medians(&self) -> BTreeMap<(String, usize, Gateway), Medians> {
        let mut groups: BTreeMap<(String, usize, Gateway), Vec<&Measurement>> = BTreeMap::new();
        for m in &self.measurements {
            groups
                .entry((m.operation.clone(), m.connections, m.gateway))
                .or_default()
                .push(m);
        }
        groups
            .into_iter()
            .map(|(key, runs)| {
                let of = |f: fn(&Measurement) -> f64| median(runs.iter().map(|m| f(m)).collect());
                let medians = Medians {
                    rps: of(|m| m.requests_per_second),
                    p50: of(|m| m.p50_ms),
                    p95: of(|m| m.p95_ms),
                    p99: of(|m| m.p99_ms),
                    cpu: of(|m| m.cpu_seconds_per_1k),
                    rss: of(|m| m.peak_rss_mib),
                    failed: runs.iter().map(|m| m.failed).sum(),
                };
                (key, medians)
            })
            .collect()
    }

    /// Every concurrency measured, gateways and subgraphs alone, ascending.
    pub(crate) fn connections(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.measurements.iter().map(|m| m.connections).collect();
        all.extend(self.baselines.iter().map(|b| b.connections));
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The subgraphs alone, for `operation` at `connections`.
    pub(crate) fn baseline(&self, operation: &str, connections: usize) -> Option<&Baseline> {
        self.baselines
            .iter()
            .find(|b| b.operation == operation && b.connections == connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
