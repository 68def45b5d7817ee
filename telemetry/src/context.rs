//! The ids that tie one client request together across the router and the subgraphs.
//!
//! - `traceparent` (W3C Trace Context): the router continues a valid one from the client or starts a
//!   trace, and sends each subgraph request a child of it (same trace id, the span id of the span
//!   it is sent from when traces are recorded, else one of its own), so every process logs the
//!   same trace id and recorded spans link up into one trace.
//! - `x-request-id`: a client's own id for its request (1 to 128 of `A-Z a-z 0-9 - _ . :`), or one the
//!   router makes; echoed on the response and passed to the subgraphs.

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use std::{
    future::Future,
    sync::{Arc, OnceLock},
    time::Duration,
};

use rand::Rng;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// A W3C trace context: which trace a request belongs to, and the span that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero.
    trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    span_id: String,
    /// The sampled flag.
    sampled: bool,
}

fn is_hex_id(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0')
}

/// A random trace id (also a made request id): 32 hex digits, never all zero (the spec's invalid
/// value).
fn random_trace_id() -> String {
    let id: u128 = rand::thread_rng().gen_range(1..=u128::MAX);
    format!("{id:032x}")
}

/// A random span id: 16 hex digits, never all zero.
fn random_span_id() -> String {
    let id: u64 = rand::thread_rng().gen_range(1..=u64::MAX);
    format!("{id:016x}")
}

impl TraceContext {
    /// The context a `traceparent` value names, if it is valid: version `00` exactly as the spec
    /// writes it, or a later version whose first four fields read as version 00's (the spec's rule
    /// for versions it does not know); never version `ff`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.splitn(5, '-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let rest = parts.next();
        let version_ok = version.len() == 2
            && version
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && version != "ff";
        if !version_ok || (version == "00" && rest.is_some()) {
            return None;
        }
        if !is_hex_id(trace_id, 32) || !is_hex_id(span_id, 16) || flags.len() != 2 {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceContext {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }

    /// A new trace, sampled.
    pub fn start() -> Self {
        TraceContext {
            trace_id: random_trace_id(),
            span_id: random_span_id(),
            sampled: true,
        }
    }

    /// The context of a request sent on behalf of this one: the same trace, a new span.
    pub fn child(&self) -> Self {
        TraceContext {
            trace_id: self.trace_id.clone(),
            span_id: random_span_id(),
            sampled: self.sampled,
        }
    }

    /// The trace id, for log lines.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The `traceparent` header value.
    pub fn header_value(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The context in `headers`' `traceparent`, if valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::parse)
    }
}

/// The request id in `headers` if it is one we pass on (1 to 128 of `A-Z a-z 0-9 - _ . :`),
/// else a new one (32 hex digits).
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map_or_else(random_trace_id, str::to_owned)
}

/// The ids of the request being served, for the requests it sends on.
#[derive(Debug)]
struct Current {
    request_id: String,
    /// The context the request's children carry when traces are off: the caller's trace (or a new
    /// one), a made-up span.
    unrecorded: TraceContext,
    /// The request span's own context, when traces are recorded ([`request_span`] sets it).
    recorded: OnceLock<TraceContext>,
}

tokio::task_local! {
    static CURRENT: Arc<Current>;
}

/// The caller's trace context, kept by [`middleware`] for [`request_span`]'s parent.
#[derive(Debug, Clone)]
struct Incoming(Option<TraceContext>);

/// Middleware for every server: gives the request its ids (continuing the caller's trace and
/// request id when valid) for [`request_span`] and, for the requests it sends on, for
/// [`outgoing`]; echoes the request id on the response.
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let id = request_id(headers);
    let incoming = TraceContext::from_headers(headers);
    let unrecorded = incoming.clone().unwrap_or_else(TraceContext::start).child();
    // Plain ASCII by construction.
    let value = HeaderValue::from_str(&id).expect("a request id is visible ASCII");
    request.extensions_mut().insert(Incoming(incoming));
    let current = Arc::new(Current {
        request_id: id,
        unrecorded,
        recorded: OnceLock::new(),
    });
    let mut response = CURRENT.scope(current, next.run(request)).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

impl TraceContext {
    /// The context of `span` as recorded for traces, if it is.
    fn of_span(span: &Span) -> Option<TraceContext> {
        use opentelemetry::trace::TraceContextExt;
        let context = span.context();
        let recorded = context.span();
        let span_context = recorded.span_context();
        span_context.is_valid().then(|| TraceContext {
            trace_id: span_context.trace_id().to_string(),
            span_id: span_context.span_id().to_string(),
            sampled: span_context.is_sampled(),
        })
    }

    /// This context as a remote parent for a span recorded here.
    fn as_parent(&self) -> opentelemetry::Context {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        let span_context = SpanContext::new(
            TraceId::from_hex(&self.trace_id).expect("checked when parsed"),
            SpanId::from_hex(&self.span_id).expect("checked when parsed"),
            if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(span_context)
    }
}

/// The headers a request sent while serving another carries: the served request's id and the
/// trace context of the span it is sent from (the current span when traces are recorded, else the
/// served request's trace with a span id of its own). None outside a request ([`middleware`])
/// or in a task spawned from it without [`carry`].
pub fn outgoing() -> Vec<(&'static str, String)> {
    CURRENT
        .try_with(|current| {
            let trace = TraceContext::of_span(&Span::current())
                .or_else(|| current.recorded.get().cloned())
                .unwrap_or_else(|| current.unrecorded.child());
            vec![
                (TRACEPARENT, trace.header_value()),
                (REQUEST_ID, current.request_id.clone()),
            ]
        })
        .unwrap_or_default()
}

/// `future` carrying the current request's ids and span, for a task spawned on its behalf (the
/// DataLoaders' batches): its log lines, spans and outgoing requests stay in the request's trace.
pub fn carry<F: Future + Send + 'static>(future: F) -> impl Future<Output = F::Output> + Send {
    let current = CURRENT.try_with(Arc::clone).ok();
    let future = future.instrument(Span::current());
    async move {
        match current {
            Some(current) => CURRENT.scope(current, future).await,
            None => future.await,
        }
    }
}

/// Spawns `future` on the runtime with [`carry`]: the spawner for async-graphql's DataLoaders.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(carry(future))
}

/// The span of a request this service sends to another (recorded only for traces), named `name`
/// (`POST /auth/introspect`), to the service `peer`; [`outgoing`] within it gives the callee's parent.
pub fn client_span(name: &'static str, peer: &'static str) -> Span {
    tracing::info_span!(
        target: crate::traces::TARGET,
        "http.client",
        otel.name = name,
        otel.kind = "client",
        peer.service = peer,
    )
}

/// Marks `span` as failed (recorded only for traces), saying `why`.
pub fn fail(span: &Span, why: &str) {
    span.set_status(opentelemetry::trace::Status::error(why.to_owned()));
}

/// The target of [`request_span`], which logs and traces both record.
pub const REQUEST_SPAN_TARGET: &str = module_path!();

/// The routes a span may be named after; any other path is named by its method alone, so a client
/// cannot make up span names.
const ROUTES: [&str; 6] = [
    "/graphql",
    "/health",
    "/ready",
    "/metrics",
    "/auth/introspect",
    "/dashboard",
];

/// The span of one request, for `tower_http`'s `TraceLayer::make_span_with`: method, path and the
/// ids [`middleware`] gave it, so every log line of the request carries them. When traces are
/// recorded it is the server span, a child of the caller's `traceparent`, and its trace id is the
/// one logged.
pub fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let method = request.method();
    let path = request.uri().path();
    let name = match ROUTES.contains(&path) {
        true => format!("{method} {path}"),
        false => method.to_string(),
    };
    let current = CURRENT.try_with(Arc::clone).ok();
    let span = tracing::info_span!(
        "request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        url.path = %path,
        request_id = %current.as_ref().map_or("", |c| c.request_id.as_str()),
        trace_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(Incoming(Some(parent))) = request.extensions().get::<Incoming>() {
        // Fails only when traces are off (no layer records spans): nothing to link then.
        let _ = span.set_parent(parent.as_parent());
    }
    let trace_id = match TraceContext::of_span(&span) {
        Some(recorded) => {
            let trace_id = recorded.trace_id.clone();
            if let Some(current) = &current {
                let _ = current.recorded.set(recorded);
            }
            trace_id
        }
        None => current
            .as_ref()
            .map(|c| c.unrecorded.trace_id.clone())
            .unwrap_or_default(),
    };
    span.record("trace_id", tracing::field::display(trace_id));
    span
}

/// Records the response's status on the request span, for `TraceLayer::on_response`; a 5xx marks
/// the span as failed.
pub fn record_response<B>(response: &axum::http::Response<B>, _latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        fail(span, &format!("HTTP {status}"));
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn traceparents_are_read_as_the_spec_says() {
        let context =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .expect("the spec's example");
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = context.child();
        assert_eq!(child.trace_id(), context.trace_id());
        assert_ne!(child.header_value(), context.header_value());
        assert!(child.header_value().ends_with("-01"));
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        // A later version with more fields is read by its first four.
        assert!(TraceContext::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more"
        )
        .is_some());
        let started = TraceContext::start();
        assert_eq!(TraceContext::parse(&started.header_value()), Some(started));
    }

    #[test]
    fn request_ids_are_kept_when_plain_and_made_otherwise() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_id(&headers).len(), 32);
        headers.insert(REQUEST_ID, HeaderValue::from_static("checkout-42:a.b_c"));
        assert_eq!(request_id(&headers), "checkout-42:a.b_c");
        headers.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&headers), "has space");
        headers.insert(
            REQUEST_ID,
            HeaderValue::from_str(&"a".repeat(129)).expect("ascii"),
        );
        assert_eq!(request_id(&headers).len(), 32);
    }
}
