//! OpenTelemetry traces, exported over OTLP: configured by the standard environment variables, off
//! when no endpoint is set.
//!
//! Spans are `tracing` spans; `tracing-opentelemetry` turns them into OpenTelemetry spans and the
//! OTLP exporter (`opentelemetry-otlp`) sends them. Spans made only for traces use the target
//! [`TARGET`], which logs leave out by default, so they cost nothing when traces are off.
//!
//! Finished spans go to a bounded queue ([`QUEUE_CAPACITY`]) that a task on the runtime empties in
//! batches: a request never waits for an export, and a span that finds the queue full is dropped
//! and counted (`otel_sdk_processor_span_processed_total{error_type="queue_full"}`). The SDK's own
//! batch processor keeps its drop count to itself (it logs it at shutdown), and its thread cannot
//! drive the async HTTP and gRPC clients; hence our queue.

use std::{env, sync::LazyLock, time::Duration};

use opentelemetry::{trace::TracerProvider as _, Context};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Sampler, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor, Tracer},
    Resource,
};
use prometheus_client::{
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tokio::sync::{mpsc, oneshot};

/// The target of spans recorded only for traces (stages, subgraph fetches, SQL statements).
pub const TARGET: &str = "taproom::span";

/// How many finished spans wait for export at most; more are dropped and counted.
pub const QUEUE_CAPACITY: usize = 4096;

/// The most spans one export sends.
const BATCH_SIZE: usize = 512;

/// How long a span waits at most before its batch is sent.
const BATCH_DELAY: Duration = Duration::from_millis(500);

/// How long one export may take, and how long shutdown waits for the last one.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the environment says about traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The collector's URL, as the environment gives it (the exporter reads it there too).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub sampler: SamplerSetting,
    /// `service.name` on every span.
    pub service_name: String,
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// `OTEL_TRACES_SAMPLER` (and its `_ARG`), read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerSetting {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

impl SamplerSetting {
    fn sampler(self) -> Sampler {
        match self {
            SamplerSetting::AlwaysOn => Sampler::AlwaysOn,
            SamplerSetting::AlwaysOff => Sampler::AlwaysOff,
            SamplerSetting::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
            SamplerSetting::ParentBasedAlwaysOn => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
            }
            SamplerSetting::ParentBasedAlwaysOff => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
            }
            SamplerSetting::ParentBasedRatio(ratio) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
            }
        }
    }
}

/// A variable's value, if set and not blank.
fn var(name: &str) -> Option<String> {
    env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

impl TraceSettings {
    /// The settings the environment gives, `None` when no OTLP endpoint is set (traces off), or
    /// what is wrong with them. `default_service` names the service when `OTEL_SERVICE_NAME` does
    /// not. Values the standard does not know are refused, not replaced by a default.
    pub fn from_env(default_service: &str) -> Result<Option<Self>, String> {
        let Some((endpoint_var, endpoint)) = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .into_iter()
        .find_map(|name| var(name).map(|value| (name, value))) else {
            return Ok(None);
        };
        if !endpoint.starts_with("http://") {
            return Err(format!(
                "{endpoint_var}={endpoint}: only plain http:// collectors are supported \
                 (send to a local collector or agent, which can forward over TLS)"
            ));
        }
        let protocol = match [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .into_iter()
        .find_map(|name| var(name).map(|value| (name, value)))
        {
            None => OtlpProtocol::HttpProtobuf,
            Some((_, value)) if value == "grpc" => OtlpProtocol::Grpc,
            Some((_, value)) if value == "http/protobuf" => OtlpProtocol::HttpProtobuf,
            Some((_, value)) if value == "http/json" => OtlpProtocol::HttpJson,
            Some((name, value)) => {
                return Err(format!(
                    "{name}={value}: expected grpc, http/protobuf or http/json"
                ))
            }
        };
        let ratio = || -> Result<f64, String> {
            match var("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(arg) => arg
                    .parse::<f64>()
                    .ok()
                    .filter(|ratio| (0.0..=1.0).contains(ratio))
                    .ok_or_else(|| {
                        format!("OTEL_TRACES_SAMPLER_ARG={arg}: expected a number from 0 to 1")
                    }),
            }
        };
        let sampler = match var("OTEL_TRACES_SAMPLER").as_deref() {
            None | Some("parentbased_always_on") => SamplerSetting::ParentBasedAlwaysOn,
            Some("always_on") => SamplerSetting::AlwaysOn,
            Some("always_off") => SamplerSetting::AlwaysOff,
            Some("traceidratio") => SamplerSetting::Ratio(ratio()?),
            Some("parentbased_always_off") => SamplerSetting::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => SamplerSetting::ParentBasedRatio(ratio()?),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER={other}: expected always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ))
            }
        };
        Ok(Some(TraceSettings {
            endpoint,
            protocol,
            sampler,
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_owned()),
        }))
    }
}

/// The counters of what happened to finished spans, on every `/metrics` ([`register`]).
struct TraceMetrics {
    /// Spans handed to the queue; `error_type="queue_full"` for the dropped ones.
    processed: Family<Vec<(String, String)>, Counter>,
    /// Spans the collector took; `error_type="export_failed"` for the ones it did not.
    exported: Family<Vec<(String, String)>, Counter>,
}

static METRICS: LazyLock<TraceMetrics> = LazyLock::new(|| TraceMetrics {
    processed: Family::default(),
    exported: Family::default(),
});

fn error_type(kind: &str) -> Vec<(String, String)> {
    vec![("error_type".to_owned(), kind.to_owned())]
}

/// Adds the span counters (named as OpenTelemetry's SDK self-observability conventions name them)
/// to `registry`. They stay at zero while traces are off.
pub fn register(registry: &mut Registry) {
    registry.register(
        "otel_sdk_processor_span_processed",
        "Finished spans handed to the export queue; error_type=queue_full counts the ones dropped because the queue was full",
        METRICS.processed.clone(),
    );
    registry.register(
        "otel_sdk_exporter_span_exported",
        "Spans sent to the OTLP collector; error_type=export_failed counts the ones it did not take",
        METRICS.exported.clone(),
    );
}

/// The processor the SDK hands finished spans to: into the queue, or dropped and counted.
#[derive(Debug)]
struct Queue {
    spans: mpsc::Sender<SpanData>,
    queued: Counter,
    dropped: Counter,
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.spans.try_send(span) {
            Ok(()) => self.queued.inc(),
            Err(_) => self.dropped.inc(),
        };
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Flushing is asynchronous: [`Traces::shutdown`].
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Sends `batch` (and empties it), counting the outcome.
async fn send(exporter: &opentelemetry_otlp::SpanExporter, batch: &mut Vec<SpanData>) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len() as u64;
    let spans = std::mem::replace(batch, Vec::with_capacity(BATCH_SIZE));
    let outcome = tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await;
    match outcome {
        Ok(Ok(())) => {
            METRICS.exported.get_or_create(&Vec::new()).inc_by(count);
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, spans = count, "the OTLP collector did not take a batch of spans");
            METRICS
                .exported
                .get_or_create(&error_type("export_failed"))
                .inc_by(count);
        }
        Err(_) => {
            tracing::warn!(
                spans = count,
                "sending a batch of spans to the OTLP collector timed out"
            );
            METRICS
                .exported
                .get_or_create(&error_type("export_failed"))
                .inc_by(count);
        }
    }
}

/// The export task: a batch goes out when it is full, when its first span has waited
/// [`BATCH_DELAY`], and when a flush is asked for (which answers once all queued spans are sent).
async fn export(
    mut spans: mpsc::Receiver<SpanData>,
    mut flushes: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    exporter: opentelemetry_otlp::SpanExporter,
) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    let mut tick = tokio::time::interval(BATCH_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = spans.recv() => match received {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= BATCH_SIZE {
                        send(&exporter, &mut batch).await;
                    }
                }
                None => {
                    send(&exporter, &mut batch).await;
                    return;
                }
            },
            _ = tick.tick() => send(&exporter, &mut batch).await,
            Some(done) = flushes.recv() => {
                while let Ok(span) = spans.try_recv() {
                    batch.push(span);
                    if batch.len() >= BATCH_SIZE {
                        send(&exporter, &mut batch).await;
                    }
                }
                send(&exporter, &mut batch).await;
                let _ = done.send(());
            }
        }
    }
}

/// The OTLP/HTTP exporter's client: the `reqwest` the services already use.
#[derive(Debug)]
struct ExportClient(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let mut sent = self
            .0
            .request(parts.method, parts.uri.to_string())
            .body(body);
        for (name, value) in &parts.headers {
            sent = sent.header(name, value);
        }
        let response = sent.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let mut answer = http::Response::builder().status(status).body(body)?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

/// Traces being recorded and exported; [`Traces::shutdown`] sends what is queued.
pub struct Traces {
    provider: SdkTracerProvider,
    flushes: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl Traces {
    /// Starts the exporter for `settings` on the current Tokio runtime; the tracer feeds it.
    pub fn start(settings: &TraceSettings) -> Result<(Self, Tracer), String> {
        let exporter = match settings.protocol {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
                let client = reqwest::Client::builder()
                    .timeout(EXPORT_TIMEOUT)
                    .build()
                    .map_err(|e| format!("cannot make the OTLP client: {e}"))?;
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(if settings.protocol == OtlpProtocol::HttpJson {
                        Protocol::HttpJson
                    } else {
                        Protocol::HttpBinary
                    })
                    .with_http_client(ExportClient(client))
                    .with_timeout(EXPORT_TIMEOUT)
                    .build()
            }
        }
        .map_err(|e| format!("cannot export traces to {}: {e}", settings.endpoint))?;
        let resource = Resource::builder()
            .with_service_name(settings.service_name.clone())
            .build();
        let mut exporter = exporter;
        exporter.set_resource(&resource);
        let (spans, queued) = mpsc::channel(QUEUE_CAPACITY);
        let (flushes, flush_requests) = mpsc::unbounded_channel();
        tokio::spawn(export(queued, flush_requests, exporter));
        // One at a time: a series' guard holds its family's lock.
        let queued = METRICS.processed.get_or_create(&Vec::new()).clone();
        let dropped = METRICS
            .processed
            .get_or_create(&error_type("queue_full"))
            .clone();
        let queue = Queue {
            spans,
            queued,
            dropped,
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .with_sampler(settings.sampler.sampler())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("taproom");
        Ok((Traces { provider, flushes }, tracer))
    }

    /// Sends every queued span, waiting at most [`EXPORT_TIMEOUT`].
    pub async fn flush(&self) {
        let (done, finished) = oneshot::channel();
        if self.flushes.send(done).is_ok() {
            let _ = tokio::time::timeout(EXPORT_TIMEOUT, finished).await;
        }
    }

    /// Sends every queued span and stops recording.
    pub async fn shutdown(self) {
        self.flush().await;
        let _ = self.provider.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` with exactly `vars` set among the variables [`TraceSettings::from_env`] reads.
    fn with_env(vars: &[(&str, &str)], check: impl FnOnce()) {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        const READ: [&str; 7] = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
            "OTEL_SERVICE_NAME",
        ];
        for name in READ {
            // The lock above serializes the tests that touch these variables; no other test of
            // this crate reads them.
            env::remove_var(name);
        }
        for (name, value) in vars {
            env::set_var(name, value);
        }
        check();
        for name in READ {
            env::remove_var(name);
        }
    }

    #[test]
    fn traces_are_off_without_an_endpoint() {
        with_env(&[("OTEL_TRACES_SAMPLER", "always_on")], || {
            assert_eq!(TraceSettings::from_env("taproom-router"), Ok(None));
        });
        with_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")], || {
            assert_eq!(TraceSettings::from_env("taproom-router"), Ok(None));
        });
    }

    #[test]
    fn the_standard_variables_are_read() {
        with_env(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")],
            || {
                let settings = TraceSettings::from_env("taproom-router")
                    .expect("valid")
                    .expect("on");
                assert_eq!(settings.protocol, OtlpProtocol::HttpProtobuf);
                assert_eq!(settings.sampler, SamplerSetting::ParentBasedAlwaysOn);
                assert_eq!(settings.service_name, "taproom-router");
            },
        );
        with_env(
            &[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:4317",
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
                ("OTEL_SERVICE_NAME", "shop-router"),
            ],
            || {
                let settings = TraceSettings::from_env("taproom-router")
                    .expect("valid")
                    .expect("on");
                assert_eq!(settings.protocol, OtlpProtocol::Grpc);
                assert_eq!(settings.sampler, SamplerSetting::ParentBasedRatio(0.01));
                assert_eq!(settings.service_name, "shop-router");
            },
        );
    }

    #[test]
    fn values_the_standard_does_not_know_are_refused() {
        for (name, value, said) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http", "expected grpc"),
            ("OTEL_TRACES_SAMPLER", "sometimes", "expected always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5", "from 0 to 1"),
        ] {
            let mut vars = vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ];
            vars.retain(|(n, _)| *n != name);
            vars.push((name, value));
            with_env(&vars, || {
                let error = TraceSettings::from_env("taproom-router").expect_err(value);
                assert!(error.contains(said) && error.contains(value), "{error}");
            });
        }
        with_env(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")],
            || {
                let error = TraceSettings::from_env("x").expect_err("https");
                assert!(error.contains("only plain http://"), "{error}");
            },
        );
    }
}
