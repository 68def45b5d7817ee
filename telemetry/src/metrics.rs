//! Metrics in the Prometheus (OpenMetrics) text format, with `prometheus-client`: the helpers every
//! server's `/metrics` shares. Each server keeps its own registry of its own metrics.

use std::{collections::HashSet, sync::Mutex};

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
pub use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets for durations in seconds: 0.5 ms to about 16 s, doubling.
pub fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16)
}

/// A histogram of durations with [`duration_buckets`].
pub fn duration_histogram() -> Histogram {
    Histogram::new(duration_buckets())
}

/// `registry` in the text format.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .expect("writing to a String cannot fail");
    text
}

/// `registry` as a `/metrics` response.
pub fn response(registry: &Registry) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(registry)).into_response()
}

/// The `q` quantile of a histogram given as `(upper bound, cumulative count)` buckets in
/// ascending order, the last `+Inf`: what Prometheus's `histogram_quantile` computes, linear within
/// the bucket that holds the rank. `None` without observations.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(upper, count) in buckets {
        if count >= rank {
            if upper.is_infinite() {
                return Some(lower);
            }
            return Some(lower + (upper - lower) * (rank - below) / (count - below));
        }
        (lower, below) = (upper, count);
    }
    Some(lower)
}

/// The longest label value [`BoundedValues`] keeps; a longer one is `other`.
pub const MAX_LABEL_CHARS: usize = 100;

/// Label values a client chooses (operation names), kept bounded: the first `max` distinct values
/// of at most [`MAX_LABEL_CHARS`] characters are labels of their own, every other one is `other`.
pub struct BoundedValues {
    seen: Mutex<HashSet<String>>,
    max: usize,
}

impl BoundedValues {
    /// At most `max` distinct values.
    pub fn new(max: usize) -> Self {
        BoundedValues {
            seen: Mutex::new(HashSet::new()),
            max,
        }
    }

    /// The label for `value`.
    pub fn label(&self, value: &str) -> String {
        if value.chars().count() > MAX_LABEL_CHARS {
            return "other".to_owned();
        }
        let mut seen = self
            .seen
            .lock()
            .expect("the label set lock is never poisoned");
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < self.max {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        "other".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_values_stop_at_their_bound() {
        let values = BoundedValues::new(2);
        assert_eq!(values.label("a"), "a");
        assert_eq!(values.label("b"), "b");
        assert_eq!(values.label("c"), "other");
        assert_eq!(values.label("a"), "a");
        let values = BoundedValues::new(10);
        assert_eq!(values.label(&"n".repeat(101)), "other");
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let buckets = [(0.1, 50.0), (0.2, 90.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(0.1));
        assert!((quantile(&buckets, 0.7).expect("a value") - 0.15).abs() < 1e-12);
        assert_eq!(quantile(&buckets, 0.99), Some(0.2));
        assert_eq!(quantile(&[(f64::INFINITY, 0.0)], 0.5), None);
    }

    #[test]
    fn histograms_render_in_the_text_format() {
        let mut registry = Registry::default();
        let histogram = duration_histogram();
        registry.register("x_duration_seconds", "A duration.", histogram.clone());
        histogram.observe(0.003);
        let text = render(&registry);
        assert!(
            text.contains("x_duration_seconds_bucket{le=\"0.004\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
