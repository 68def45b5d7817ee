//! The Markdown report (`results.md`): medians per gateway, operation and concurrency; who sets the
//! pace (each gateway's capacity on its core against what the subgraphs alone serve); the ratios
//! ours/peer; and the benchmark issue's targets, each with its verdict.

use std::{collections::BTreeMap, fmt::Write as _};

use crate::{
    gateways::Gateway,
    report::{Medians, Report},
};

impl Report {
    /// `results.md`: the setup, the operations, the subgraphs alone, the gateways' medians, who sets
    /// the pace, the ratios ours/peer and the targets with their verdicts.
    pub(crate) fn markdown(&self) -> String {
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
            "\n## Gateways (medians)\n\n| operation | connections | gateway | requests/s | p50 ms | p95 ms | p99 ms | CPU ms per request | peak RSS MiB | failed |\n| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
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
            "\n## Ratios (Taproom router vs peer)\n\nEach peer against Taproom's router in the same deduplication mode. Throughput: ours ÷ theirs (higher is better for us). Latency, CPU and memory: theirs ÷ ours (higher is better for us).\n\n| operation | connections | ours | peer | requests/s | p95 | p99 | CPU per request | peak RSS |\n| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for ((op, connections, gateway), peer) in &medians {
            let ours_gateway = match gateway {
                Gateway::Taproom | Gateway::TaproomDedupe => continue,
                Gateway::HiveRouterDedupe => Gateway::TaproomDedupe,
                _ => Gateway::Taproom,
            };
            let Some(ours) = medians.get(&(op.clone(), *connections, ours_gateway)) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {op} | {connections} | {} | {} | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
                ours_gateway.label(),
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
        if !self.compression.is_empty() {
            let _ = writeln!(
                out,
                "\n## Compressed answers (Taproom's router, one run each)\n\n| operation | connections | Accept-Encoding | req/s | bytes per answer | CPU ms per answer | failed |\n| --- | ---: | --- | ---: | ---: | ---: | ---: |"
            );
            for c in &self.compression {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.0} | {:.3} | {} |",
                    c.operation,
                    c.connections,
                    c.setting.trim_start_matches("Accept-Encoding "),
                    c.requests_per_second,
                    c.bytes_per_answer,
                    c.cpu_ms_per_request,
                    c.failed
                );
            }
        }
        if let Some(streams) = &self.streams {
            let kib = |bytes: f64| bytes / 1024.0;
            let _ = writeln!(
                out,
                "\n## What an open stream costs (Taproom's router, dedupe on; {} of each, resident memory before and after)\n\n| held | router, KiB each | orders subgraph, KiB each |\n| --- | ---: | ---: |\n| an idle WebSocket (initialised, no operation) | {:.1} | |\n| an open subscription (`orderChanged`, over a WebSocket already open) | {:.1} | {:.1} |",
                streams.count,
                kib(streams.router_per_idle_websocket),
                kib(streams.router_per_subscription),
                kib(streams.orders_per_subscription),
            );
        }
        if let Some(off) = self.tracing.first() {
            let _ = writeln!(
                out,
                "\n## What tracing costs (Taproom's router, one run each, spans exported over OTLP/HTTP to a collector in the bench)\n\n| operation | connections | traces | req/s | CPU ms per answer | vs off | OTLP exports (bytes) | failed |\n| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
            );
            for t in &self.tracing {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {:.3} | {:+.1}% | {} ({}) | {} |",
                    t.operation,
                    t.connections,
                    t.setting.trim_start_matches("traces "),
                    t.requests_per_second,
                    t.cpu_ms_per_request,
                    (t.cpu_ms_per_request / off.cpu_ms_per_request - 1.0) * 100.0,
                    t.exports.unwrap_or(0),
                    t.export_bytes.unwrap_or(0),
                    t.failed
                );
            }
        }
        out
    }

    /// The targets, each with its verdict, plus a warning wherever a gateway came close to
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
        for c in self.connections() {
            if let (Some(with), Some(without)) = (
                self.baseline("heavy", c),
                self.baseline(crate::ops::HEAVY_WITHOUT_MEMO, c),
            ) {
                lines.push(format!(
                    "Subgraphs, heavy operation at {c} connections: the subgraphs alone serve {:.0} op/s with the orders subgraph's subtree memo, {:.0} without it ({:.2}×).",
                    with.operations_per_second,
                    without.operations_per_second,
                    with.operations_per_second / without.operations_per_second
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
        lines.extend(self.hive_router_targets(medians));
        for c in self.connections() {
            if let (Some(ours), Some(direct)) = (
                get("one-hop", c, Gateway::Taproom),
                self.baseline("one-hop", c),
            ) {
                let share = ours.rps / direct.operations_per_second;
                lines.push(format!(
                    "One-hop operation at {c} connections, at least 85% of the subgraph's own throughput: {:.0} vs {:.0} req/s direct = {:.0}% — {}.",
                    ours.rps,
                    direct.operations_per_second,
                    share * 100.0,
                    verdict(share >= 0.85)
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
}

impl Report {
    /// The performance issue's targets against Hive Router: CPU per request on every operation and
    /// mode, throughput and p99 on the router-bound scenario at 50 connections in both modes, and
    /// peak RSS at 50 connections on every operation.
    fn hive_router_targets(
        &self,
        medians: &BTreeMap<(String, usize, Gateway), Medians>,
    ) -> Vec<String> {
        let get = |op: &str, c: usize, g: Gateway| medians.get(&(op.to_owned(), c, g)).copied();
        let verdict = |ok: bool| if ok { "**met**" } else { "**not met**" };
        let mut lines = Vec::new();
        let operations: Vec<&str> = self
            .operations
            .iter()
            .map(|(name, _, _)| name.as_str())
            .collect();
        for ours in [Gateway::Taproom, Gateway::TaproomDedupe] {
            let Some(rival) = ours.rival() else { continue };
            for op in &operations {
                for c in self.connections() {
                    let (Some(a), Some(b)) = (get(op, c, ours), get(op, c, rival)) else {
                        continue;
                    };
                    lines.push(format!(
                        "CPU per request at most Hive Router's, {op} at {c} connections ({}): {:.3} vs {:.3} ms ({:.2}×) — {}.",
                        ours.label(),
                        a.cpu,
                        b.cpu,
                        b.cpu / a.cpu,
                        verdict(a.cpu <= b.cpu)
                    ));
                }
            }
            if let (Some(a), Some(b)) = (
                get("router-bound", 50, ours),
                get("router-bound", 50, rival),
            ) {
                lines.push(format!(
                    "Router-bound at 50 connections, requests/s at least Hive Router's with p99 no worse ({} vs {}): {:.0} vs {:.0} req/s ({:.2}×), p99 {:.1} vs {:.1} ms — {}.",
                    ours.label(),
                    rival.label(),
                    a.rps,
                    b.rps,
                    a.rps / b.rps,
                    a.p99,
                    b.p99,
                    verdict(a.rps >= b.rps && a.p99 <= b.p99)
                ));
            }
            for op in &operations {
                if let Some(a) = get(op, 50, ours) {
                    lines.push(format!(
                        "Peak RSS at most 48 MB, {op} at 50 connections ({}): {:.1} MiB ({:.1} MB) — {}.",
                        ours.label(),
                        a.rss,
                        a.rss * 1.048_576,
                        verdict(a.rss * 1.048_576 <= 48.0)
                    ));
                }
            }
        }
        lines
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_requests_per_core_second() {
        assert_eq!(capacity_per_core(2.0), 500.0);
        assert_eq!(capacity_per_core(0.0), f64::INFINITY);
    }
}
