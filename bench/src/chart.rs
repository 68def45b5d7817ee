//! The chart (`chart.svg`): per operation, requests/s of each gateway and of the subgraphs alone
//! at each concurrency (bars), and each gateway's p95 latency against concurrency (lines), both on
//! log scales, so a 50× gap and a 1.2× gap stay readable on one page.

use std::fmt::Write as _;

use crate::{gateways::Gateway, report::Report};

/// The gateways in the order of the legend, the bars and the lines.
const GATEWAYS: [Gateway; 6] = [
    Gateway::Taproom,
    Gateway::TaproomDedupe,
    Gateway::HiveRouter,
    Gateway::HiveRouterDedupe,
    Gateway::Apollo,
    Gateway::Hive,
];

impl Report {
    /// Per operation: requests/s per gateway and concurrency (bars, log scale), and p95 latency
    /// against concurrency (lines, log scale).
    pub(crate) fn chart_svg(&self) -> String {
        let medians = self.medians();
        let connections = self.connections();
        let operations: Vec<&str> = self.operations.iter().map(|(n, _, _)| n.as_str()).collect();
        let (width, row_height) = (1300.0, 300.0);
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
            let bar_w = (group_w - 30.0) / (GATEWAYS.len() + 1) as f64;
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
        Gateway::TaproomDedupe => "#ffa94d",
        Gateway::HiveRouter => "#1971c2",
        Gateway::HiveRouterDedupe => "#74c0fc",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_spans_whole_decades() {
        let scale = LogScale::over(&[35.0, 1500.0]);
        assert_eq!((scale.low, scale.high), (1.0, 4.0));
        assert_eq!(scale.y(10.0, 0.0, 300.0), 300.0);
        assert_eq!(scale.y(10_000.0, 0.0, 300.0), 0.0);
    }
}
