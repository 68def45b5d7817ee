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
