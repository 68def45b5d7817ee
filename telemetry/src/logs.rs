//! Log lines (text for people, JSON for collectors, colours only for a terminal) and, when the
//! environment names an OTLP collector, traces ([`crate::traces`]): the one subscriber every
//! `main` starts.

use std::io::IsTerminal;

use tracing::{
    field::{Field, Visit},
    Level,
};
use tracing_subscriber::{
    field::RecordFields,
    filter::Targets,
    fmt::{format::Writer, FormatFields},
    layer::SubscriberExt,
    util::SubscriberInitExt,
    EnvFilter, Layer,
};

use crate::traces::{TraceSettings, Traces, TARGET};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, with the spans it happened in (`request{request_id=.. trace_id=..}`).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields`, `target`, and `spans` with the
    /// request's ids.
    Json,
}

/// The log flag every binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written to stderr: `text`, or `json` for a log collector (one object per line).
    #[arg(long, env = "TAPROOM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// The filter when `RUST_LOG` is not set: Taproom's own crates at `info`, libraries at `warn`, and
/// none of the spans made only for traces.
pub const DEFAULT_FILTER: &str = "warn,taproom=info,taproom_common=info,taproom_users=info,taproom_beers=info,taproom_orders=info,taproom_router=info,taproom_telemetry=info,taproom::span=off";

/// What [`init`] started: the traces to flush before the process exits, if any.
#[must_use = "flush the traces before exiting: `Telemetry::shutdown`"]
pub struct Telemetry {
    traces: Option<Traces>,
}

impl Telemetry {
    /// Whether spans are recorded and exported.
    pub fn traces_on(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still queued (waiting a few seconds at most).
    pub async fn shutdown(self) {
        if let Some(traces) = self.traces {
            traces.shutdown().await;
        }
    }
}

/// Starts logging to stderr in `format`, filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]), with
/// ANSI colours only when stderr is a terminal, so a file or a collector gets plain text. When the
/// environment names an OTLP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`), also records and exports
/// traces, as `service` unless `OTEL_SERVICE_NAME` says otherwise. Runs on a Tokio runtime (the
/// exporter is a task); fails on tracing settings it cannot follow.
pub fn init(format: LogFormat, service: &str) -> Result<Telemetry, String> {
    let (traces, tracer) = match TraceSettings::from_env(service)? {
        Some(settings) => {
            let (traces, tracer) = Traces::start(&settings)?;
            (Some(traces), Some(tracer))
        }
        None => (None, None),
    };
    install(format, tracer);
    Ok(Telemetry { traces })
}

/// A service's `main`: starts logging and traces ([`init`]) as `service`, runs `service_main`,
/// sends the spans still queued, and says how it went (`error: ...` on stderr and a failing exit
/// code for an error).
pub async fn run_service(
    format: LogFormat,
    service: &str,
    service_main: impl std::future::Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let telemetry = match init(format, service) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = service_main.await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Starts logging as [`init`] does, without traces whatever the environment says: for a process
/// that serves no requests (the local stack's supervisor).
pub fn init_logs(format: LogFormat) -> Telemetry {
    install(format, None);
    Telemetry { traces: None }
}

fn install(format: LogFormat, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let lines = match format {
        LogFormat::Text => lines.fmt_fields(PlainFields).with_filter(filter).boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_filter(filter)
            .boxed(),
    };
    // Spans go to the collector whatever the log filter: the request's, and the ones made for traces.
    let spans = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(
                Targets::new()
                    .with_target(TARGET, Level::TRACE)
                    .with_target(crate::context::REQUEST_SPAN_TARGET, Level::INFO),
            )
    });
    tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .init();
}

/// Text lines' fields as `tracing-subscriber` writes them (`name=value`, the message bare), but for
/// `otel.*`, which are for the trace collector (span name, kind), not for people.
struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = PlainVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'a, 'writer> {
    writer: &'a mut Writer<'writer>,
    first: bool,
    result: std::fmt::Result,
}

impl Visit for PlainVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.result.is_err() || field.name().starts_with("otel.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else {
            write!(self.writer, "{separator}{}={value:?}", field.name())
        };
    }
}
