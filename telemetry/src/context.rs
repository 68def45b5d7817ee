//! The ids that tie one client request together across the router and the subgraphs.
//!
//! - `traceparent` (W3C Trace Context): the router continues a valid one from the client or starts a
//!   trace, and sends each subgraph request a child of it (same trace id, a span id of its own), so
//!   every process logs the same trace id.
//! - `x-request-id`: a client's own id for its request (1 to 128 of `A-Z a-z 0-9 - _ . :`), or one the
//!   router makes; echoed on the response and passed to the subgraphs.

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use rand::Rng;
use tracing::Span;

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
#[derive(Debug, Clone)]
struct Current {
    request_id: String,
    trace: TraceContext,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// Middleware for every server: gives the request its ids (continuing the caller's trace and
/// request id when valid), leaves them in the request's headers for the handler and, for the
/// requests it sends on, in [`outgoing`]; echoes the request id on the response.
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let id = request_id(headers);
    let trace = TraceContext::from_headers(headers)
        .unwrap_or_else(TraceContext::start)
        .child();
    // Both are plain ASCII by construction.
    let value = HeaderValue::from_str(&id).expect("a request id is visible ASCII");
    headers.insert(REQUEST_ID, value.clone());
    headers.insert(
        TRACEPARENT,
        HeaderValue::from_str(&trace.header_value()).expect("a traceparent is visible ASCII"),
    );
    let current = Current {
        request_id: id,
        trace,
    };
    let mut response = CURRENT.scope(current, next.run(request)).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// The headers a request sent while serving another carries: the served request's id and a child
/// of its trace context. None outside a request ([`middleware`]) or in a task spawned from it.
pub fn outgoing() -> Vec<(&'static str, String)> {
    CURRENT
        .try_with(|current| {
            vec![
                (TRACEPARENT, current.trace.child().header_value()),
                (REQUEST_ID, current.request_id.clone()),
            ]
        })
        .unwrap_or_default()
}

/// The span of one request, for `tower_http`'s `TraceLayer::make_span_with`: method, path, and the
/// ids [`middleware`] set, so every log line of the request carries them.
pub fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let trace_id = TraceContext::parse(&header(TRACEPARENT))
        .map(|trace| trace.trace_id)
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %header(REQUEST_ID),
        trace_id = %trace_id,
    )
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
