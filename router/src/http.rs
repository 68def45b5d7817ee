//! The router's HTTP face: `POST`/`GET /graphql` after GraphQL-over-HTTP (batches of operations,
//! gzip request bodies and compressed responses too), `/health` (liveness), `/ready` (readiness:
//! not draining), `/metrics`, the playground.
//!
//! `taproom-http` reads the request and negotiates the media type (as for the subgraphs); this
//! module alone turns the pipeline's answer or [`RequestError`](crate::error::RequestError) into an
//! HTTP response, with the status GraphQL-over-HTTP gives it for the client's media type.

use std::{
    io::Read as _,
    net::SocketAddr,
    sync::{atomic::AtomicI64, Arc},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, ConnectInfo, DefaultBodyLimit, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router as Routes,
};
use taproom_http::{
    error_reply, graphql_status,
    lifecycle::{self, Lifecycle},
    read_request, reply, GraphqlHttpRequest, HttpError, Incoming, MediaType,
};
use taproom_telemetry::{
    context::{self, request_span},
    metrics::Gauge,
};
use tower_http::{
    compression::{
        predicate::{NotForContentType, Predicate, SizeAbove},
        CompressionLayer,
    },
    trace::TraceLayer,
};

use crate::{
    client::{ClientKey, TrustedProxies},
    error::{errors_body, Code, GraphqlError, RequestError},
    fetch::{BATCH_HEADER, CLIENT_ADDRESS_HEADER, IDEMPOTENCY_HEADER},
    idempotency::{self, FINGERPRINT_HEADER},
    metrics::Outcome,
    pipeline::{Answer, GraphqlRequest, Router, Streamed},
};

/// The header with which a client asks for the query plan in `extensions.queryPlan`.
pub const QUERY_PLAN_HEADER: &str = "x-taproom-query-plan";

/// How the HTTP face behaves: the `serve` flags that are about HTTP.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The largest request body, in bytes, after decompression.
    pub max_body_bytes: usize,
    /// The origins allowed to call from a browser; with none, only same-origin pages (the
    /// playground) can.
    pub cors_origins: Vec<HeaderValue>,
    /// The most operations in one batch (0: batches refused).
    pub max_batch_size: usize,
    /// Responses at least this large are compressed when the client accepts it.
    pub compression_min_bytes: u16,
    /// Whether `/` serves the playground.
    pub playground: bool,
    /// Whether the playground's welcome text names the demo accounts (the local stack's).
    pub demo_accounts: bool,
    /// Whether the query plan header ([`QUERY_PLAN_HEADER`]) is honoured.
    pub query_plan_header: bool,
    /// Whether `/metrics` is served here (else on a listener of its own: [`metrics_routes`]).
    pub metrics: bool,
    /// The most operations running at once on one WebSocket.
    pub max_subscriptions_per_connection: usize,
    /// The proxies whose forwarding headers name the client ([`crate::client`]).
    pub trusted_proxies: TrustedProxies,
    /// How long a WebSocket with no operation running stays open.
    pub websocket_idle: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 1024 * 1024,
            cors_origins: Vec::new(),
            max_batch_size: 10,
            compression_min_bytes: 1024,
            playground: true,
            demo_accounts: false,
            query_plan_header: true,
            metrics: true,
            max_subscriptions_per_connection: 32,
            trusted_proxies: TrustedProxies::default(),
            websocket_idle: Duration::from_secs(60),
        }
    }
}

/// The routes, serving `router`.
pub fn routes(router: Arc<Router>, options: HttpOptions) -> Routes {
    let options = Arc::new(options);
    let mut routes = Routes::new()
        .route("/graphql", get(graphql_get).post(graphql))
        // The compressed body's limit; the decompressed one is checked while decoding.
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready));
    if options.playground {
        routes = routes
            .route("/", {
                let demo = options.demo_accounts;
                get(move || async move { crate::playground::index(demo) })
            })
            .route("/playground/{file}", get(crate::playground::asset));
    }
    if options.metrics {
        routes = routes
            .route("/metrics", get(metrics))
            .route("/dashboard", get(dashboard));
    }
    let compress = CompressionLayer::new()
        .gzip(true)
        .br(true)
        .zstd(true)
        .compress_when(
            SizeAbove::new(options.compression_min_bytes)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::const_new("text/event-stream"))
                .and(NotForContentType::const_new("multipart/mixed")),
        );
    let routes = routes
        .layer(Extension(options.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(context::record_response),
        )
        .layer(axum::middleware::from_fn(context::middleware))
        .layer(compress)
        .with_state(router);
    if options.cors_origins.is_empty() {
        routes
    } else {
        routes.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(options.cors_origins.clone())
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::CONTENT_ENCODING,
                    header::AUTHORIZATION,
                    header::ACCEPT,
                    header::HeaderName::from_static(QUERY_PLAN_HEADER),
                    header::HeaderName::from_static(context::REQUEST_ID),
                    header::HeaderName::from_static(context::TRACEPARENT),
                    header::HeaderName::from_static(IDEMPOTENCY_HEADER),
                ])
                .expose_headers([header::HeaderName::from_static(context::REQUEST_ID)]),
        )
    }
}

/// `/metrics` alone, for a listener of its own (`--metrics-listen`).
pub fn metrics_routes(router: Arc<Router>) -> Routes {
    Routes::new()
        .route("/metrics", get(metrics))
        .route("/dashboard", get(dashboard))
        .route("/", get(dashboard))
        .route("/health", get(|| async { "ok" }))
        .with_state(router)
}

/// The request body with its `Content-Encoding` undone: `gzip` (and `identity`) are accepted,
/// and the decoded body may be at most `limit` bytes (413 beyond, so a small "gzip bomb" cannot
/// grow into gigabytes).
fn decoded_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Result<Bytes, BytesRejection>, HttpError> {
    let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let encoding = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => {
            let Ok(compressed) = body else {
                return Ok(body);
            };
            let mut decoded = Vec::with_capacity((compressed.len() * 4).min(limit + 1));
            let read = flate2::read::MultiGzDecoder::new(&compressed[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut decoded);
            match read {
                Ok(_) if decoded.len() > limit => Err(HttpError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!(
                        "request body too large: more than {limit} bytes once decompressed"
                    ),
                }),
                Ok(_) => Ok(Ok(Bytes::from(decoded))),
                Err(error) => Err(HttpError::bad(format!(
                    "the request body is not valid gzip: {error}"
                ))),
            }
        }
        other => Err(HttpError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "Content-Encoding {other:?} is not supported; send the body as is or with gzip"
            ),
        }),
    }
}

/// `GET /ready`: 200 while serving, 503 once draining ([`taproom_http::lifecycle`]). A router only
/// serves once its supergraph is loaded, and keeps the last one that loaded, so that needs no check.
async fn ready(lifecycle: Option<Extension<Lifecycle>>) -> Response {
    if lifecycle::draining(lifecycle.as_ref()) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else {
        (StatusCode::OK, "ready").into_response()
    }
}

async fn metrics(State(router): State<Arc<Router>>) -> Response {
    taproom_telemetry::metrics::response(router.client.metrics.registry())
}

/// `GET /dashboard` ([`crate::dashboard`]).
async fn dashboard(State(router): State<Arc<Router>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                crate::dashboard::CONTENT_SECURITY_POLICY,
            ),
        ],
        crate::dashboard::page(&router.client.metrics.history),
    )
        .into_response()
}

/// `GET /graphql`: a WebSocket ([`crate::ws`]) when the client asks to upgrade, else as `POST`.
async fn graphql_get(
    State(router): State<Arc<Router>>,
    Extension(options): Extension<Arc<HttpOptions>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if crate::ws::upgrading(&parts.headers) {
        let mut headers = parts.headers.clone();
        client_headers(&mut headers, peer.as_ref(), &options.trusted_proxies);
        headers.remove(IDEMPOTENCY_HEADER);
        headers.insert(BATCH_HEADER, batch_id());
        let limits = crate::ws::WsLimits {
            max_per_connection: options.max_subscriptions_per_connection,
            max_message_bytes: options.max_body_bytes,
            idle: options.websocket_idle,
        };
        let connections = &router.connections_per_client;
        let Some(held) = connections.take(&ClientKey::address(&headers)) else {
            return request_error_reply(MediaType::Json, &connections.refusal());
        };
        return crate::ws::upgrade(router, limits, headers, held, parts).await;
    }
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    graphql(
        State(router),
        Extension(options),
        peer,
        method,
        uri,
        headers,
        Ok(Bytes::new()),
    )
    .await
}

/// The client's address is the TCP peer's, or what a trusted proxy says it is
/// ([`crate::client`]), whatever a client claims in the router's own header; the batch and
/// fingerprint headers are the router's to set.
fn client_headers(
    headers: &mut HeaderMap,
    peer: Option<&Extension<ConnectInfo<SocketAddr>>>,
    trusted: &TrustedProxies,
) {
    headers.remove(CLIENT_ADDRESS_HEADER);
    headers.remove(BATCH_HEADER);
    headers.remove(FINGERPRINT_HEADER);
    if let Some(Extension(ConnectInfo(peer))) = peer {
        let client = trusted.client_address(peer.ip(), headers);
        if let Ok(value) = HeaderValue::from_str(&client.to_string()) {
            headers.insert(CLIENT_ADDRESS_HEADER, value);
        }
    }
}

async fn graphql(
    State(router): State<Arc<Router>>,
    Extension(options): Extension<Arc<HttpOptions>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    client_headers(&mut headers, peer.as_ref(), &options.trusted_proxies);
    let _active = ActiveRequest::start(&router.client.metrics.active_requests);
    let media = MediaType::negotiate(&headers);
    let started = std::time::Instant::now();
    let refused = |error: &HttpError| {
        // A request that is not a GraphQL request at all counts as one refused operation.
        router.client.metrics.operation(
            None,
            Outcome::request_error,
            started.elapsed().as_secs_f64(),
        );
        error_reply(media, error)
    };
    // The client's `Idempotency-Key`, checked, is the router's to pass on (numbered per member
    // of a batch and per mutation fetch: `fetch::IDEMPOTENCY_HEADER`).
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(error) => return refused(&error),
    };
    headers.remove(IDEMPOTENCY_HEADER);
    let body = match decoded_body(&headers, body, options.max_body_bytes) {
        Ok(body) => body,
        Err(error) => return refused(&error),
    };
    let incoming = match read_request(&method, &uri, &headers, body, options.max_batch_size) {
        Ok(incoming) => incoming,
        Err(error) => return refused(&error),
    };
    let want_plan = options.query_plan_header
        && headers
            .get(QUERY_PLAN_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true") || v.as_bytes() == b"1");
    let over_get = method == Method::GET;
    // One id per client request, carried by its mutations' subgraph requests: the users subgraph
    // checks credentials once per id, so neither a batch of operations nor one operation whose
    // sign-ins the plan splits into several users requests (`mutation { a: login .. x: addToOrder
    // .. b: login .. }`) gets more than one check.
    headers.insert(BATCH_HEADER, batch_id());
    match incoming {
        Incoming::One(request) => {
            if let Some(key) = &key {
                keyed(&mut headers, key, None, &request);
            }
            let stream = if accepts(&headers, "text/event-stream", None) {
                Some(Transport::Sse)
            } else if accepts(
                &headers,
                "multipart/mixed",
                Some(("subscriptionSpec", "1.0")),
            ) {
                Some(Transport::Multipart)
            } else {
                None
            };
            if let Some(transport) = stream {
                let request = graphql_request(&request, over_get, false);
                return match router.execute_streaming(request, &headers).await {
                    Ok(Answer::Whole(body)) if transport == Transport::Sse => {
                        sse(futures_util::stream::iter([Streamed::Next(body)]))
                    }
                    Ok(Answer::Whole(body)) => reply(media, StatusCode::OK, body),
                    Ok(Answer::Events(events)) => {
                        // An event stream is a connection the client holds, like a WebSocket.
                        let connections = &router.connections_per_client;
                        let Some(held) = connections.take(&ClientKey::address(&headers)) else {
                            return request_error_reply(media, &connections.refusal());
                        };
                        let events = holding(receiver_stream(events), held);
                        match transport {
                            Transport::Sse => sse(events),
                            Transport::Multipart => multipart_subscription(events),
                        }
                    }
                    Ok(Answer::Parts(_)) => unreachable!("execute_streaming never defers"),
                    Err(error) => request_error_reply(media, &error),
                };
            }
            if accepts_incremental(&headers) {
                let request = graphql_request(&request, over_get, false);
                return match router.execute_incremental(request, &headers).await {
                    Ok(Answer::Whole(body)) => reply(media, StatusCode::OK, body),
                    Ok(Answer::Parts(parts)) => {
                        multipart(receiver_stream(parts), DEFER_CONTENT_TYPE)
                    }
                    Ok(Answer::Events(_)) => unreachable!("execute_incremental never subscribes"),
                    Err(error) => request_error_reply(media, &error),
                };
            }
            match run(&router, &request, over_get, want_plan, &headers).await {
                Ok(body) => reply(media, StatusCode::OK, body),
                Err(error) => request_error_reply(media, &error),
            }
        }
        Incoming::Batch(members) => {
            // Every operation of a batch runs on its own, at the same time.
            let headers = &headers;
            let key = &key;
            let router = &router;
            let bodies = futures_util::future::join_all(members.iter().enumerate().map(
                |(at, member)| async move {
                    // Each member's mutations are their own: the key gets the member's index.
                    let copy;
                    let headers = match (key, member) {
                        (Some(key), Ok(request)) => {
                            let mut headers = headers.clone();
                            keyed(&mut headers, key, Some(at), request);
                            copy = headers;
                            &copy
                        }
                        _ => headers,
                    };
                    match member {
                        Ok(request) => {
                            match run(router, request, false, want_plan, headers).await {
                                Ok(body) => body,
                                Err(error) => errors_body(&error.errors),
                            }
                        }
                        Err(error) => {
                            router.client.metrics.operation(
                                None,
                                Outcome::request_error,
                                started.elapsed().as_secs_f64(),
                            );
                            errors_body(&[GraphqlError::new(
                                Code::BadRequest,
                                error.message.clone(),
                            )])
                        }
                    }
                },
            ))
            .await;
            let mut body =
                Vec::with_capacity(2 + bodies.iter().map(|b| b.len() + 1).sum::<usize>());
            crate::json::write_array(&mut body, &bodies);
            reply(media, StatusCode::OK, body)
        }
    }
}

/// The longest `Idempotency-Key` a client may send.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The client's `Idempotency-Key`, if it sent one: 1 to [`MAX_IDEMPOTENCY_KEY`] visible ASCII
/// characters, or the request is refused.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<HeaderValue>, HttpError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_IDEMPOTENCY_KEY
        || !bytes.iter().all(u8::is_ascii_graphic)
    {
        return Err(HttpError::bad(format!(
            "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )));
    }
    Ok(Some(value.clone()))
}

/// Sets the idempotency key the router sends for the client's `key` and the operation `request`
/// (member `member` of a batch), with the operation's fingerprint ([`crate::idempotency`]).
fn keyed(
    headers: &mut HeaderMap,
    key: &HeaderValue,
    member: Option<usize>,
    request: &GraphqlHttpRequest,
) {
    headers.insert(IDEMPOTENCY_HEADER, idempotency::derive(key, member));
    headers.insert(
        FINGERPRINT_HEADER,
        idempotency::fingerprint(
            request.query.as_deref(),
            request.document_id.as_deref(),
            &request.extensions,
            request.operation_name.as_deref(),
            &request.variables,
        ),
    );
}

/// Counts a client request in `http_server_active_requests` while it lives.
struct ActiveRequest<'g>(&'g Gauge<i64, AtomicI64>);

impl<'g> ActiveRequest<'g> {
    fn start(gauge: &'g Gauge<i64, AtomicI64>) -> Self {
        gauge.inc();
        ActiveRequest(gauge)
    }
}

impl Drop for ActiveRequest<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn graphql_request(
    request: &GraphqlHttpRequest,
    over_get: bool,
    want_plan: bool,
) -> GraphqlRequest<'_> {
    GraphqlRequest::read(request, over_get, want_plan)
}

/// Runs one operation of a request.
async fn run(
    router: &Router,
    request: &GraphqlHttpRequest,
    over_get: bool,
    want_plan: bool,
    headers: &HeaderMap,
) -> Result<Vec<u8>, RequestError> {
    router
        .execute(graphql_request(request, over_get, want_plan), headers)
        .await
}

/// The boundary between the parts of a `multipart/mixed` response.
const BOUNDARY: &str = "graphql";

/// Whether the client takes `@defer`'s incremental delivery: its `Accept` names
/// `multipart/mixed` (Apollo Client sends `multipart/mixed;deferSpec=20220824, application/json`).
fn accepts_incremental(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            params
                .next()
                .is_some_and(|media| media.eq_ignore_ascii_case("multipart/mixed"))
                && params.all(|p| {
                    p.split_once('=').is_none_or(|(name, value)| {
                        !name.trim().eq_ignore_ascii_case("deferSpec")
                            || value.trim().trim_matches('"') == "20220824"
                    })
                })
        })
}

/// The content type of `@defer`'s incremental delivery.
const DEFER_CONTENT_TYPE: &str = "multipart/mixed; boundary=\"graphql\"; deferSpec=20220824";

/// The content type of subscriptions over multipart HTTP (Apollo's protocol).
const SUBSCRIPTION_CONTENT_TYPE: &str =
    "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"";

/// How often an idle multipart subscription sends its heartbeat (`{}`).
pub const MULTIPART_HEARTBEAT: Duration = Duration::from_secs(5);

/// How often an idle event stream sends a comment, so that proxies keep it open.
pub const SSE_HEARTBEAT: Duration = Duration::from_secs(12);

/// The streaming transports of `POST /graphql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// GraphQL over Server-Sent Events (`Accept: text/event-stream`), `graphql-sse`'s distinct
    /// connections mode.
    Sse,
    /// Multipart HTTP (`Accept: multipart/mixed;subscriptionSpec=1.0`), Apollo Client's.
    Multipart,
}

/// The items of a channel, as a stream.
fn receiver_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        Some((receiver.recv().await?, receiver))
    })
}

/// `stream`'s items, and `heartbeat` whenever none came for `every`.
fn with_heartbeat<T: Send + 'static>(
    stream: impl futures_util::Stream<Item = T> + Send + 'static,
    every: Duration,
    heartbeat: impl Fn() -> T + Send + 'static,
) -> impl futures_util::Stream<Item = T> + Send {
    use futures_util::StreamExt as _;
    let stream = Box::pin(stream);
    futures_util::stream::unfold(Some(stream), move |stream| {
        let beat = heartbeat();
        async move {
            let mut stream = stream?;
            match tokio::time::timeout(every, stream.next()).await {
                Ok(Some(item)) => Some((item, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((beat, Some(stream))),
            }
        }
    })
}

/// A `multipart/mixed` response of `parts` (JSON texts), each sent as soon as it comes. Each
/// chunk ends with the boundary, so that a client knows the part is complete without waiting for
/// the next one; the last boundary is closed (`--`) when the parts end.
fn multipart(
    parts: impl futures_util::Stream<Item = Vec<u8>> + Send + 'static,
    content_type: &'static str,
) -> Response {
    use futures_util::StreamExt as _;
    let opening = Bytes::from(format!("\r\n--{BOUNDARY}"));
    let parts = parts.map(|json| {
        let mut chunk = b"\r\ncontent-type: application/json; charset=utf-8\r\n\r\n".to_vec();
        chunk.extend_from_slice(&json);
        chunk.extend_from_slice(format!("\r\n--{BOUNDARY}").as_bytes());
        Bytes::from(chunk)
    });
    let stream = futures_util::stream::once(async move { opening })
        .chain(parts)
        .chain(futures_util::stream::once(async {
            Bytes::from_static(b"--\r\n")
        }))
        .map(Ok::<_, std::convert::Infallible>);
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// `stream`, keeping `held` until it ends or is dropped.
fn holding<T: Send + 'static>(
    stream: impl futures_util::Stream<Item = T> + Send + 'static,
    held: crate::client::Held,
) -> impl futures_util::Stream<Item = T> + Send {
    use futures_util::StreamExt as _;
    let mut held = Some(held);
    stream.map(move |item| {
        // Touched so the closure owns it: it goes when the stream does.
        let _ = held.as_mut();
        item
    })
}

/// A subscription over multipart HTTP: each event as `{"payload": ..}`, `{}` as the heartbeat,
/// and an end with errors as `{"payload": null, "errors": [..]}`.
fn multipart_subscription(
    events: impl futures_util::Stream<Item = Streamed> + Send + 'static,
) -> Response {
    use futures_util::StreamExt as _;
    let parts = events.map(|item| match item {
        Streamed::Next(body) => {
            let mut part = b"{\"payload\":".to_vec();
            part.extend_from_slice(&body);
            part.push(b'}');
            part
        }
        Streamed::Failed(errors) => {
            serde_json::to_vec(&serde_json::json!({"payload": null, "errors": errors}))
                .expect("errors always serialize")
        }
    });
    multipart(
        with_heartbeat(parts, MULTIPART_HEARTBEAT, || b"{}".to_vec()),
        SUBSCRIPTION_CONTENT_TYPE,
    )
}

/// GraphQL over Server-Sent Events: `next` per result (an end with errors is a last `next` with
/// them), then `complete`; a comment as the heartbeat.
fn sse(items: impl futures_util::Stream<Item = Streamed> + Send + 'static) -> Response {
    use futures_util::StreamExt as _;
    let events = items
        .map(|item| {
            let body = match item {
                Streamed::Next(body) => body,
                Streamed::Failed(errors) => errors_body(&errors),
            };
            let mut event = b"event: next\ndata: ".to_vec();
            event.extend_from_slice(&body);
            event.extend_from_slice(b"\n\n");
            event
        })
        .chain(futures_util::stream::once(async {
            b"event: complete\ndata:\n\n".to_vec()
        }));
    let stream = with_heartbeat(events, SSE_HEARTBEAT, || b":\n\n".to_vec())
        .map(|chunk| Ok::<_, std::convert::Infallible>(Bytes::from(chunk)));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// Whether the client's `Accept` names `media` (with `param` at that value, if given).
fn accepts(headers: &HeaderMap, media: &str, param: Option<(&str, &str)>) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            params.next().is_some_and(|m| m.eq_ignore_ascii_case(media))
                && param.is_none_or(|(name, value)| {
                    params.any(|p| {
                        p.split_once('=').is_some_and(|(n, v)| {
                            n.trim().eq_ignore_ascii_case(name)
                                && v.trim().trim_matches('"') == value
                        })
                    })
                })
        })
}

/// The response to a request that could not run. `PERSISTED_QUERY_NOT_FOUND` is an ordinary
/// answer (200) that no cache may keep: the client sends the query next, and then it is found.
fn request_error_reply(media: MediaType, error: &RequestError) -> Response {
    // A malformed request (no query, a bad `persistedQuery`) is an HTTP-level problem: its status
    // stands whatever the media type; GraphQL request errors follow `graphql_status`.
    let malformed = error
        .errors
        .iter()
        .all(|e| e.extensions.code == Some(Code::BadRequest));
    let status = if malformed {
        error.status
    } else {
        graphql_status(media, error.status)
    };
    let mut response = reply(media, status, errors_body(&error.errors));
    let not_found = error
        .errors
        .iter()
        .any(|e| e.extensions.code == Some(Code::PersistedQueryNotFound));
    if not_found {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache, must-revalidate"),
        );
    }
    response
}

/// A fresh id for a client request (all of a batch's operations share it): unique within this process and unlikely to repeat across replicas.
fn batch_id() -> HeaderValue {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let process = PROCESS.get_or_init(rand::random);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HeaderValue::from_str(&format!("{process:016x}-{n}"))
        .expect("hex and digits are a valid header")
}
