//! Results: every run as JSON, medians and ratios as Markdown, and an SVG chart.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;

use crate::{load::Outcome, Gateway};

/// The subgraphs alone, driven with the requests a router would send them.
#[derive(Debug, Serialize)]
pub struct Baseline {
    pub operation: String,
    pub connections: usize,
    pub operations_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Baseline {
    pub fn new(operation: &str, connections: usize, outcome: &Outcome) -> Baseline {
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
pub struct Measurement {
    pub round: usize,
    pub gateway: Gateway,
    pub operation: String,
    pub connections: usize,
    pub requests: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub cpu_seconds_per_1k: f64,
    pub peak_rss_mib: f64,
}

impl Measurement {
    pub fn new(
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
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub pinning: String,
    pub node: String,
    pub peers: String,
}

impl Machine {
    pub fn describe(
        cpus: usize,
        pinned: bool,
        gateway_cpus: &str,
        other_cpus: &str,
        node: &Path,
        peers_dir: &Path,
    ) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|l| {
                    l.strip_prefix("model name")
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let node = std::process::Command::new(node)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let peers = std::fs::read_to_string(peers_dir.join("package.json"))
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
pub struct Report {
    pub machine: Machine,
    pub duration_seconds: u64,
    pub warmup_seconds: u64,
    pub rounds: usize,
    pub volume: String,
    /// (name, description, mean answer size in bytes)
    pub operations: Vec<(String, String, usize)>,
    pub baselines: Vec<Baseline>,
    pub measurements: Vec<Measurement>,
}

/// The median of a metric over rounds.
#[derive(Debug, Clone, Copy)]
pub struct Medians {
    pub rps: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub cpu: f64,
    pub rss: f64,
    pub failed: u64,
}

/// Requests per second a gateway could serve with one core to itself, from its CPU seconds per
/// 1,000 requests (numerically, CPU milliseconds per request).
fn capacity_per_core(cpu_ms_per_request: f64) -> f64 {
    if cpu_ms_per_request > 0.0 {
        1000.0 / cpu_ms_per_request
    } else {
        f64::INFINITY
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

const GATEWAYS: [Gateway; 3] = [Gateway::Taproom, Gateway::Apollo, Gateway::Hive];

impl Report {
    /// Medians keyed by (operation, connections, gateway).
    pub fn medians(&self) -> BTreeMap<(String, usize, Gateway), Medians> {
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

    fn connections(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.measurements.iter().map(|m| m.connections).collect();
        all.extend(self.baselines.iter().map(|b| b.connections));
        all.sort_unstable();
        all.dedup();
        all
    }

    fn baseline(&self, operation: &str, connections: usize) -> Option<&Baseline> {
        self.baselines
            .iter()
            .find(|b| b.operation == operation && b.connections == connections)
    }

    pub fn markdown(&self) -> String {
        let medians = self.medians();
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# Taproom benchmark results\n");
        let _ = writeln!(
            out,
            "- Machine: {} × {} ({}); pinning: {}.\n- Peers: Node.js {}; {}.\n- Data: {}.\n- Each figure is the median of {} rounds of {} s of load after {} s of warm-up; gateways are restarted for every run; the order of gateways rotates between rounds.\n",
            m.cpus, m.cpu, std::env::consts::ARCH, m.pinning, m.node, m.peers, self.volume, self.rounds, self.duration_seconds, self.warmup_seconds
        );
        let _ = writeln!(
            out,
            "## Operations\n\n| operation | what | mean answer |\n| --- | --- | ---: |"
        );
        for (name, description, size) in &self.operations {
            let _ = writeln!(
                out,
                "| {name} | {description} | {:.1} KB |",
                *size as f64 / 1000.0
            );
        }

        let _ = writeln!(
            out,
            "\n## Subgraphs alone\n\nThe load generator sends, for each request, the subgraph requests Taproom's router made for it (recorded through a proxy before the runs), one after another, with no gateway: the ceiling for any gateway here.\n\n| operation | connections | operations/s | p50 ms | p95 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for b in &self.baselines {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                b.operation, b.connections, b.operations_per_second, b.p50_ms, b.p95_ms, b.p99_ms
            );
        }

        let _ = writeln!(
            out,
            "\n## Gateways (medians)\n\n| operation | connections | gateway | requests/s | p50 ms | p95 ms | p99 ms | CPU s per 1k requests | peak RSS MiB | failed |\n| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for ((op, connections, gateway), v) in &medians {
            let _ = writeln!(
                out,
                "| {op} | {connections} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {:.1} | {} |",
                gateway.label(),
                v.rps,
                v.p50,
                v.p95,
                v.p99,
                v.cpu,
                v.rss,
                v.failed
            );
        }

        let _ = writeln!(
            out,
            "\n## Who sets the pace\n\nA gateway's capacity on its one core is estimated from its CPU per request (1,000 ms ÷ CPU ms per request). Where that is above what the subgraphs alone serve, the subgraphs, not the gateway, limit the measured throughput.\n\n| operation | connections | gateway | capacity on one core, req/s | subgraphs alone, op/s | limited by |\n| --- | ---: | --- | ---: | ---: | --- |"
        );
        for ((op, connections, gateway), v) in &medians {
            let Some(b) = self.baseline(op, *connections) else {
                continue;
            };
            let capacity = capacity_per_core(v.cpu);
            let _ = writeln!(
                out,
                "| {op} | {connections} | {} | {capacity:.0} | {:.0} | {} |",
                gateway.label(),
                b.operations_per_second,
                if capacity > b.operations_per_second {
                    "the subgraphs"
                } else {
                    "the gateway"
                }
            );
        }

        let _ = writeln!(
            out,
            "\n## Ratios (Taproom router vs peer)\n\nThroughput: ours ÷ theirs (higher is better for us). Latency and CPU: theirs ÷ ours (higher is better for us).\n\n| operation | connections | peer | requests/s | p95 | p99 | CPU per request | peak RSS |\n| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for ((op, connections, gateway), peer) in &medians {
            if *gateway == Gateway::Taproom {
                continue;
            }
            let Some(ours) = medians.get(&(op.clone(), *connections, Gateway::Taproom)) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {op} | {connections} | {} | {:.1}× | {:.1}× | {:.1}× | {:.1}× | {:.1}× |",
                gateway.label(),
                ours.rps / peer.rps,
                peer.p95 / ours.p95,
                peer.p99 / ours.p99,
                peer.cpu / ours.cpu,
                peer.rss / ours.rss
            );
        }

        let _ = writeln!(out, "\n## Targets\n");
        for line in self.targets(&medians) {
            let _ = writeln!(out, "- {line}");
        }
        out
    }

    /// The issue's targets, each with its verdict, plus a warning wherever a gateway came close to
    /// what the subgraphs alone can do (there the subgraphs, not the gateway, set the pace).
    fn targets(&self, medians: &BTreeMap<(String, usize, Gateway), Medians>) -> Vec<String> {
        let get = |op: &str, c: usize, g: Gateway| medians.get(&(op.to_owned(), c, g)).copied();
        let verdict = |ok: bool| if ok { "**met**" } else { "**not met**" };
        let mut lines = Vec::new();
        if let (Some(ours), Some(apollo)) = (
            get("heavy", 50, Gateway::Taproom),
            get("heavy", 50, Gateway::Apollo),
        ) {
            let ratio = ours.rps / apollo.rps;
            lines.push(format!(
                "Heavy operation at 50 connections, at least 40× Apollo Gateway's requests/s: {ratio:.1}× ({:.0} vs {:.0}) — {}.",
                ours.rps,
                apollo.rps,
                verdict(ratio >= 40.0)
            ));
            // What this machine allows, and what the gateways cost apart from it.
            if let Some(ceiling) = self.baseline("heavy", 50) {
                lines.push(format!(
                    "Context: the subgraphs alone serve {:.0} heavy op/s at 50 connections here, {:.1}× Apollo Gateway's rate: the most any gateway can show on this machine. CPU per heavy request: ours {:.2} ms, Apollo Gateway {:.2} ms ({:.1}×).",
                    ceiling.operations_per_second,
                    ceiling.operations_per_second / apollo.rps,
                    ours.cpu,
                    apollo.cpu,
                    apollo.cpu / ours.cpu
                ));
            }
        }
        if let Some(ours) = get("heavy", 50, Gateway::Taproom) {
            let peers: Vec<(Gateway, Medians)> = [Gateway::Apollo, Gateway::Hive]
                .into_iter()
                .filter_map(|g| get("heavy", 50, g).map(|m| (g, m)))
                .collect();
            if !peers.is_empty() {
                let listed = peers
                    .iter()
                    .map(|(g, m)| format!("{} {:.1} ms", g.label(), m.p95))
                    .collect::<Vec<_>>()
                    .join(", ");
                lines.push(format!(
                    "Heavy operation at 50 connections, better p95 than both peers: ours {:.1} ms; {listed} — {}.",
                    ours.p95,
                    verdict(peers.iter().all(|(_, m)| ours.p95 < m.p95))
                ));
            }
            lines.push(format!(
                "Router peak RSS under the heavy load at 50 connections at most 48 MB: {:.1} MiB ({:.1} MB) — {}.",
                ours.rss,
                ours.rss * 1.048_576,
                verdict(ours.rss * 1.048_576 <= 48.0)
            ));
        }
        for c in self.connections() {
            if let (Some(ours), Some(direct)) = (
                get("one-hop", c, Gateway::Taproom),
                self.baseline("one-hop", c),
            ) {
                let share = ours.rps / direct.operations_per_second;
                lines.push(format!(
                    "One-hop operation at {c} connections, at least half the subgraph's own throughput: {:.0} vs {:.0} req/s direct = {:.0}% — {}.",
                    ours.rps,
                    direct.operations_per_second,
                    share * 100.0,
                    verdict(share >= 0.5)
                ));
            }
        }
        for ((op, c, gateway), m) in medians {
            if let Some(b) = self.baseline(op, *c) {
                if m.rps > 0.8 * b.operations_per_second {
                    lines.push(format!(
                        "Note: {} served {op} at {c} connections at {:.0} req/s, {:.0}% of the subgraphs' own {:.0} op/s: there the subgraphs, not the gateway, limit the figure.",
                        gateway.label(),
                        m.rps,
                        100.0 * m.rps / b.operations_per_second,
                        b.operations_per_second
                    ));
                }
            }
            if m.failed > 0 {
                lines.push(format!(
                    "Note: {} failed {} requests of {op} at {c} connections (see results.json).",
                    gateway.label(),
                    m.failed
                ));
            }
        }
        lines
    }

    /// Per operation: requests/s per gateway and concurrency (bars, log scale), and p95 latency
    /// against concurrency (lines, log scale).
    pub fn chart_svg(&self) -> String {
        let medians = self.medians();
        let connections = self.connections();
        let operations: Vec<&str> = self.operations.iter().map(|(n, _, _)| n.as_str()).collect();
        let (width, row_height) = (1000.0, 300.0);
        let height = 60.0 + row_height * operations.len() as f64 + 40.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="20" y="28" font-size="18" font-weight="bold">Requests/s (left, more is better) and p95 latency (right, less is better), medians of {} rounds</text>"#,
            self.rounds
        );
        // Legend.
        let mut x = 20.0;
        for (label, color) in GATEWAYS
            .iter()
            .map(|g| (g.label(), color(*g)))
            .chain([("subgraphs alone", BASELINE_COLOR)])
        {
            let _ = writeln!(
                svg,
                r#"<rect x="{x}" y="40" width="12" height="12" fill="{color}"/><text x="{}" y="50">{label}</text>"#,
                x + 16.0
            );
            x += 30.0 + 7.5 * label.len() as f64;
        }

        for (row, op) in operations.iter().enumerate() {
            let top = 70.0 + row_height * row as f64;
            let plot_h = row_height - 80.0;
            // Left: bars.
            let (left, plot_w) = (80.0, 520.0);
            let mut values = Vec::new();
            for &c in &connections {
                for g in GATEWAYS {
                    if let Some(m) = medians.get(&(op.to_string(), c, g)) {
                        values.push(m.rps);
                    }
                }
                if let Some(b) = self.baseline(op, c) {
                    values.push(b.operations_per_second);
                }
            }
            let scale = LogScale::over(&values);
            let _ = writeln!(
                svg,
                r#"<text x="{left}" y="{}" font-size="14" font-weight="bold">{op}: requests/s (log scale)</text>"#,
                top + 4.0
            );
            scale.axis(&mut svg, left, top + 20.0, plot_w, plot_h);
            let group_w = plot_w / connections.len().max(1) as f64;
            let bar_w = (group_w - 30.0) / 4.0;
            for (i, &c) in connections.iter().enumerate() {
                let gx = left + group_w * i as f64 + 15.0;
                let mut bars: Vec<(f64, &str)> = GATEWAYS
                    .iter()
                    .filter_map(|g| {
                        medians
                            .get(&(op.to_string(), c, *g))
                            .map(|m| (m.rps, color(*g)))
                    })
                    .collect();
                if let Some(b) = self.baseline(op, c) {
                    bars.push((b.operations_per_second, BASELINE_COLOR));
                }
                for (j, (value, fill)) in bars.iter().enumerate() {
                    let y = scale.y(*value, top + 20.0, plot_h);
                    let bx = gx + bar_w * j as f64;
                    let _ = writeln!(
                        svg,
                        r#"<rect x="{bx:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{value:.0}</text>"#,
                        bar_w - 4.0,
                        top + 20.0 + plot_h - y,
                        bx + (bar_w - 4.0) / 2.0,
                        y - 3.0
                    );
                }
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{c} connections</text>"#,
                    gx + (group_w - 30.0) / 2.0,
                    top + 20.0 + plot_h + 16.0
                );
            }
            // Right: p95 latency against connections.
            let (left, plot_w) = (700.0, 260.0);
            let latencies: Vec<f64> = medians
                .iter()
                .filter(|((o, _, _), _)| o == op)
                .map(|(_, m)| m.p95)
                .collect();
            let scale = LogScale::over(&latencies);
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" font-size="14" font-weight="bold">p95 ms (log scale)</text>"#,
                left - 60.0,
                top + 4.0
            );
            scale.axis(&mut svg, left, top + 20.0, plot_w, plot_h);
            let x_of = |i: usize| {
                if connections.len() <= 1 {
                    left + plot_w / 2.0
                } else {
                    left + 20.0 + (plot_w - 40.0) * i as f64 / (connections.len() - 1) as f64
                }
            };
            for (i, c) in connections.iter().enumerate() {
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{c}</text>"#,
                    x_of(i),
                    top + 20.0 + plot_h + 16.0
                );
            }
            for g in GATEWAYS {
                let points: Vec<(f64, f64)> = connections
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        medians
                            .get(&(op.to_string(), *c, g))
                            .map(|m| (x_of(i), scale.y(m.p95, top + 20.0, plot_h)))
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let path = points
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let _ = writeln!(
                    svg,
                    r#"<polyline points="{path}" fill="none" stroke="{}" stroke-width="2.5"/>"#,
                    color(g)
                );
                for (x, y) in points {
                    let _ = writeln!(
                        svg,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{}"/>"#,
                        color(g)
                    );
                }
            }
        }
        let _ = writeln!(
            svg,
            r##"<text x="20" y="{:.0}" fill="#555">{}; {}</text>"##,
            height - 14.0,
            escape(&self.machine.pinning),
            escape(&self.volume)
        );
        svg.push_str("</svg>\n");
        svg
    }
}

const BASELINE_COLOR: &str = "#adb5bd";

fn color(gateway: Gateway) -> &'static str {
    match gateway {
        Gateway::Taproom => "#e8590c",
        Gateway::Apollo => "#5f3dc4",
        Gateway::Hive => "#2f9e44",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A base-10 logarithmic axis spanning whole decades around the values.
struct LogScale {
    low: f64,
    high: f64,
}

impl LogScale {
    fn over(values: &[f64]) -> LogScale {
        let positive: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| *v > 0.0 && v.is_finite())
            .collect();
        let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let max = positive.iter().copied().fold(0.0, f64::max);
        if positive.is_empty() {
            return LogScale {
                low: 0.0,
                high: 1.0,
            };
        }
        let low = min.log10().floor();
        let high = max.log10().ceil().max(low + 1.0);
        LogScale { low, high }
    }

    fn y(&self, value: f64, top: f64, height: f64) -> f64 {
        let v = if value > 0.0 { value.log10() } else { self.low };
        top + height - (v - self.low) / (self.high - self.low) * height
    }

    fn axis(&self, svg: &mut String, left: f64, top: f64, width: f64, height: f64) {
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333"/>"##,
            top + height
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#333"/>"##,
            top + height,
            left + width
        );
        let mut decade = self.low;
        while decade <= self.high + 1e-9 {
            let value = 10f64.powf(decade);
            let y = self.y(value, top, height);
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"##,
                left + width,
                left - 5.0,
                y + 3.0,
                if value >= 1.0 {
                    format!("{value:.0}")
                } else {
                    format!("{value}")
                }
            );
            decade += 1.0;
        }
    }
}

/// Refuses reference answers that prove nothing (empty lists, nulls where data is expected).
pub fn check_meaningful(operation: &str, answers: &[Value]) -> Result<()> {
    for answer in answers {
        let data = &answer["data"];
        let ok = match operation {
            "heavy" => data["myOrders"][0]["owner"]["orders"]
                .as_array()
                .is_some_and(|o| o.len() > 1),
            "one-hop" => data["beer"]["name"].is_string(),
            "catalog" => data["beers"]["edges"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            _ => true,
        };
        if !ok {
            bail!("the reference answer to {operation} holds no data to compare: {answer:.500}");
        }
    }
    Ok(())
}

/// The first place where two JSON values differ, described, or `None` if they are equal.
pub fn first_difference(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, value) in w {
                match g.get(key) {
                    None => return Some(format!("{path}/{key} is missing")),
                    Some(other) => {
                        if let Some(d) = first_difference(value, other, &format!("{path}/{key}")) {
                            return Some(d);
                        }
                    }
                }
            }
            g.keys()
                .find(|key| !w.contains_key(*key))
                .map(|key| format!("{path}/{key} is unexpected"))
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (w, g))| first_difference(w, g, &format!("{path}/{i}"))),
        _ if want == got => None,
        _ => Some(format!("at {path:?} expected {want:.200}, got {got:.200}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_name_the_first_path_that_differs() {
        let want = json!({"data": {"a": [1, {"b": "x"}]}});
        assert_eq!(first_difference(&want, &want.clone(), ""), None);
        let got = json!({"data": {"a": [1, {"b": "y"}]}});
        let d = first_difference(&want, &got, "").expect("they differ");
        assert!(d.contains("/data/a/1/b"), "{d}");
        let extra = json!({"data": {"a": [1, {"b": "x"}]}, "errors": []});
        assert!(first_difference(&want, &extra, "")
            .expect("extra member")
            .contains("/errors"));
        let short = json!({"data": {"a": [1]}});
        assert!(first_difference(&want, &short, "").is_some());
    }

    #[test]
    fn capacity_is_requests_per_core_second() {
        assert_eq!(capacity_per_core(2.0), 500.0);
        assert_eq!(capacity_per_core(0.0), f64::INFINITY);
    }

    #[test]
    fn medians_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn log_scale_spans_whole_decades() {
        let scale = LogScale::over(&[35.0, 1500.0]);
        assert_eq!((scale.low, scale.high), (1.0, 4.0));
        assert_eq!(scale.y(10.0, 0.0, 300.0), 300.0);
        assert_eq!(scale.y(10_000.0, 0.0, 300.0), 0.0);
    }
}
