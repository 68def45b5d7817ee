//! A look for people: `GET /dashboard` (and `/` of the `--metrics-listen` address) charts each
//! subgraph's request rate, p95 latency and failures over the last minutes, from the router's own
//! metrics, sampled every [`SAMPLE_EVERY`]. Drawn on the server as SVG; the page reloads itself.
//! A leaf: it reads the metrics' text, so it knows nothing of the router (`http` serves the page,
//! `serve` samples).

use std::{
    collections::{BTreeMap, VecDeque},
    fmt::Write as _,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often the router samples its metrics for the dashboard.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How many samples are kept: five minutes.
const KEEP: usize = 60;

/// One subgraph's totals at a sample.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    requests: f64,
    failures: f64,
    /// `http_client_request_duration_seconds` buckets: (upper bound, cumulative count).
    buckets: Vec<(f64, f64)>,
}

/// Samples of every subgraph's totals, oldest first.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<(Instant, BTreeMap<String, Totals>)>>,
}

/// The label `name`'s value in a series' label text (`subgraph="beers",le="0.5"`).
fn label<'t>(labels: &'t str, name: &str) -> Option<&'t str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

/// Every subgraph's totals in the router's metrics text.
fn totals(text: &str) -> BTreeMap<String, Totals> {
    let mut all: BTreeMap<String, Totals> = BTreeMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let Some(subgraph) = label(labels, "subgraph") else {
            continue;
        };
        let entry = all.entry(subgraph.to_owned()).or_default();
        match name {
            "taproom_router_subgraph_requests_total" => entry.requests = value,
            "taproom_router_subgraph_errors_total" => entry.failures += value,
            "http_client_request_duration_seconds_bucket" => {
                let bound = match label(labels, "le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                entry.buckets.push((bound, value));
            }
            _ => {}
        }
    }
    all
}

/// What a chart shows for one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Point {
    per_second: f64,
    p95_ms: Option<f64>,
    failures: f64,
}

impl History {
    /// Records the router's metrics now, from their text (`/metrics`).
    pub fn sample(&self, metrics_text: &str) {
        let mut samples = self
            .samples
            .lock()
            .expect("the history lock is never poisoned");
        samples.push_back((Instant::now(), totals(metrics_text)));
        while samples.len() > KEEP + 1 {
            samples.pop_front();
        }
    }

    /// Per subgraph, one point per interval between samples, oldest first.
    fn series(&self) -> BTreeMap<String, Vec<Point>> {
        let samples = self
            .samples
            .lock()
            .expect("the history lock is never poisoned");
        let mut series: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for pair in samples.iter().collect::<Vec<_>>().windows(2) {
            let ((then, before), (now, after)) = (pair[0], pair[1]);
            let seconds = now.duration_since(*then).as_secs_f64().max(f64::EPSILON);
            for (subgraph, totals) in after {
                let old = before.get(subgraph).cloned().unwrap_or_default();
                let delta: Vec<(f64, f64)> = totals
                    .buckets
                    .iter()
                    .map(|&(bound, count)| {
                        let earlier = old
                            .buckets
                            .iter()
                            .find(|(b, _)| *b == bound)
                            .map_or(0.0, |(_, c)| *c);
                        (bound, count - earlier)
                    })
                    .collect();
                series.entry(subgraph.clone()).or_default().push(Point {
                    per_second: (totals.requests - old.requests) / seconds,
                    p95_ms: taproom_telemetry::metrics::quantile(&delta, 0.95).map(|s| s * 1000.0),
                    failures: totals.failures - old.failures,
                });
            }
        }
        series
    }
}

/// A line chart of `values` (one per interval), 240 × 48.
fn chart(values: &[f64], title: &str, unit: &str) -> String {
    let (width, height) = (240.0, 48.0);
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { max } else { 1.0 };
    let step = width / (KEEP as f64 - 1.0);
    let offset = width - step * (values.len().saturating_sub(1)) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                offset + step * i as f64,
                height - v / scale * (height - 4.0) - 2.0
            )
        })
        .collect();
    let last = values.last().copied().unwrap_or(0.0);
    format!(
        "<figure><figcaption>{title}: {last:.1} {unit} (max {max:.1})</figcaption>\
         <svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{title}\">\
         <rect width=\"{width}\" height=\"{height}\" class=\"frame\"/>\
         <polyline points=\"{}\"/></svg></figure>",
        points.join(" ")
    )
}

/// The dashboard page.
pub fn page(history: &History) -> String {
    let mut body = String::new();
    let series = history.series();
    if series.is_empty() {
        body.push_str("<p>No subgraph requests sampled yet; the page fills in as traffic arrives (a sample every 5 s).</p>");
    }
    for (subgraph, points) in &series {
        let rate: Vec<f64> = points.iter().map(|p| p.per_second).collect();
        let p95: Vec<f64> = points.iter().map(|p| p.p95_ms.unwrap_or(0.0)).collect();
        let failures: Vec<f64> = points.iter().map(|p| p.failures).collect();
        let _ = write!(
            body,
            "<section><h2>{}</h2>{}{}{}</section>",
            escape(subgraph),
            chart(&rate, "requests", "/s"),
            chart(&p95, "p95", "ms"),
            chart(&failures, "failures", "per 5 s"),
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>Taproom router: subgraphs</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:1.5em}}section{{display:flex;gap:1.5em;align-items:flex-end;border-bottom:1px solid #ddd;padding:.5em 0}}\
         h2{{width:6em;font-size:1.1em}}figure{{margin:0}}figcaption{{font-size:.85em;color:#444}}\
         .frame{{fill:#fafafa;stroke:#ccc}}polyline{{fill:none;stroke:#b5651d;stroke-width:1.5}}</style></head>\
         <body><h1>Subgraphs, last 5 minutes</h1><p>From the router's own metrics (<a href=\"/metrics\">/metrics</a>), sampled every 5 s.</p>{body}</body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's content security policy: no script, inline styles only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_the_metrics_text() {
        let text = "taproom_router_subgraph_requests_total{subgraph=\"beers\"} 10\n\
            taproom_router_subgraph_errors_total{subgraph=\"beers\",reason=\"transport\"} 2\n\
            taproom_router_subgraph_errors_total{subgraph=\"beers\",reason=\"http_status\"} 1\n\
            http_client_request_duration_seconds_bucket{le=\"0.01\",subgraph=\"beers\"} 4\n\
            http_client_request_duration_seconds_bucket{subgraph=\"beers\",le=\"+Inf\"} 7\n\
            http_server_active_requests 0\n";
        let totals = totals(text);
        assert_eq!(
            totals["beers"],
            Totals {
                requests: 10.0,
                failures: 3.0,
                buckets: vec![(0.01, 4.0), (f64::INFINITY, 7.0)],
            }
        );
        assert_eq!(totals.len(), 1);
    }
}
