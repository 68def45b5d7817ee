//! Requests to subgraphs: one pooled keep-alive HTTP client, per-subgraph timeouts, request counters,
//! in-flight deduplication (identical queries sent at the same time share one request), and one
//! retry of a query that failed at the connection level, within a budget ([`taproom_http::retry`]).

use std::{
    collections::{hash_map::Entry, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode},
};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use rustc_hash::FxHashMap;
use taproom_http::retry::{send_idempotent, Retried, RetryBudget, Sent};
use taproom_telemetry::{context, traces::TARGET};
use tracing::{Instrument, Span};

use crate::{
    error::GraphqlError,
    metrics::{Failure, Retry, RetryLabels, RouterMetrics, SubgraphErrorLabels, SubgraphLabels},
    value::{Bodies, Val},
};

/// Headers copied from the client's request to every subgraph request, and part of what makes two
/// requests the same one (two callers with different tokens never share a request).
pub const FORWARDED_HEADERS: [&str; 1] = ["authorization"];

/// The request's trace context and id ([`taproom_telemetry::context`]), sent with every subgraph
/// request (the trace context is the fetch span's when traces are recorded); not part of what
/// makes two requests the same one (a shared request carries its first caller's).
pub const TRACE_HEADERS: [&str; 2] = [
    taproom_telemetry::context::TRACEPARENT,
    taproom_telemetry::context::REQUEST_ID,
];

/// The header with the shared secret subgraphs may require of their callers (`--subgraph-secret`).
pub const SECRET_HEADER: &str = "x-taproom-subgraph-secret";

/// The header telling a subgraph the client's IP address, sent with mutations (the users subgraph
/// throttles failed sign-ins per address). The router sets it from the TCP peer and drops any value
/// a client sent; subgraphs believe it only from a caller that presented the secret.
pub const CLIENT_ADDRESS_HEADER: &str = "x-taproom-client-address";

/// The header naming the client request (a single operation, or a batch of them) a subgraph
/// request is part of, sent with mutations: the users subgraph checks credentials at most once per
/// client request, however the plan splits it. The router sets it (a client's value is dropped); it
/// can only restrict its sender, so subgraphs believe it from anyone.
pub const BATCH_HEADER: &str = "x-taproom-batch-id";

/// The header with a mutation's idempotency key: the router's key for the client's
/// `Idempotency-Key` and the operation ([`crate::idempotency`]), and for each subgraph request the
/// fetch's number within the operation, so every subgraph request has a key of its own. A subgraph that honours it
/// (`--idempotent-subgraph`) applies a mutation at most once per key, and only then does the router
/// retry a mutation ([`taproom_http::retry`]).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The headers the router itself sets on requests that are never shared (mutations).
pub const UNSHARED_HEADERS: [&str; 4] = [
    CLIENT_ADDRESS_HEADER,
    BATCH_HEADER,
    IDEMPOTENCY_HEADER,
    crate::idempotency::FINGERPRINT_HEADER,
];

/// A subgraph's answer, or why there is none.
pub type FetchResult<'b> = Result<SubgraphResponse<'b>, String>;

/// The parts of a subgraph's GraphQL response the executor uses; `data` borrows from the body.
#[derive(Debug, Default)]
pub struct SubgraphResponse<'b> {
    pub data: Option<Val<'b>>,
    /// Its errors, as the client will see them but for their paths (see [`GraphqlError::from_subgraph`]).
    pub errors: Vec<GraphqlError>,
}

/// Sends operations to subgraphs and counts them. Identical queries in flight at the same time
/// (same subgraph, URL, body and forwarded headers) are sent once and their answer shared, unless
/// deduplication is turned off ([`SubgraphClient::dedupe`]).
pub struct SubgraphClient {
    http: reqwest::Client,
    counts: Arc<Mutex<HashMap<String, u64>>>,
    /// The shared requests in flight, or `None` when deduplication is off.
    in_flight: Option<Arc<Mutex<InFlight>>>,
    /// Per subgraph, requests not sent because an identical one was in flight.
    saved: Mutex<HashMap<String, u64>>,
    /// The shared subgraph secret, sent with every request.
    secret: Option<HeaderValue>,
    /// The budget for retrying queries, or `None` when retries are off.
    retries: Option<Arc<RetryBudget>>,
    /// Every request's timeout, which a retry keeps to.
    timeout: Duration,
    /// The subgraphs that apply a mutation at most once per idempotency key: their mutations
    /// with a key may be retried too.
    idempotent: Vec<String>,
    /// The router's metrics; this client records the subgraph requests'.
    pub metrics: Arc<RouterMetrics>,
}

/// What makes two subgraph requests the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    url: String,
    /// The values of [`FORWARDED_HEADERS`], in that order.
    headers: [Option<HeaderValue>; FORWARDED_HEADERS.len()],
    body: Bytes,
}

/// The shared requests in flight, by what makes them the same (hashed with FxHash: bodies are
/// long; a client can shape parts of them through its variables, but the map holds only the
/// requests in flight at one moment, so keys that collide cost little).
type InFlight = FxHashMap<RequestKey, SharedAnswer>;

/// A subgraph's raw answer: its HTTP status and body.
pub type RawAnswer = Result<(StatusCode, Bytes), String>;

/// One request's answer, awaited by every caller that asked for it.
type SharedAnswer = Shared<BoxFuture<'static, RawAnswer>>;

impl SubgraphClient {
    /// A client whose requests time out after `timeout`, with deduplication on.
    pub fn new(timeout: Duration) -> Self {
        SubgraphClient {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(256)
                .tcp_nodelay(true)
                .build()
                .expect("a plain HTTP client always builds"),
            counts: Arc::default(),
            in_flight: Some(Arc::default()),
            saved: Mutex::new(HashMap::new()),
            secret: None,
            retries: Some(Arc::default()),
            timeout,
            idempotent: Vec::new(),
            metrics: Arc::default(),
        }
    }

    /// Names the subgraphs that apply a mutation at most once per idempotency key
    /// ([`IDEMPOTENCY_HEADER`]), whose mutations carrying one may be retried like queries.
    pub fn idempotent_subgraphs(mut self, names: Vec<String>) -> Self {
        self.idempotent = names;
        self
    }

    /// Turns the retry of queries that failed at the connection level on (the default) or off.
    pub fn retrying(mut self, on: bool) -> Self {
        self.retries = on.then(Arc::default);
        self
    }

    /// Presents `secret` in [`SECRET_HEADER`] with every subgraph request.
    pub fn presenting(mut self, secret: Option<HeaderValue>) -> Self {
        self.secret = secret;
        self
    }

    /// The subgraph secret presented with every request, if any.
    pub fn secret(&self) -> Option<&HeaderValue> {
        self.secret.as_ref()
    }

    /// Every request's timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Turns in-flight request deduplication on or off.
    pub fn dedupe(mut self, on: bool) -> Self {
        self.in_flight = on.then(Arc::default);
        self
    }

    /// Requests sent to each subgraph since start.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.counts
            .lock()
            .expect("counter lock is never poisoned")
            .clone()
    }

    /// Per subgraph, requests not sent since start because an identical one was in flight.
    pub fn saved(&self) -> HashMap<String, u64> {
        self.saved
            .lock()
            .expect("counter lock is never poisoned")
            .clone()
    }

    /// POSTs `body` (a GraphQL request as JSON) to the subgraph `name` at `url`; returns its HTTP
    /// status and body, which [`read_answer`] reads. A `shareable` request (a query, never a
    /// mutation) joins an identical one in flight when deduplication is on; the others also carry
    /// the client's address and batch ([`UNSHARED_HEADERS`], from `headers`). A shareable request
    /// is idempotent, so it may be retried ([`taproom_http::retry`]); the others never are.
    pub async fn request(
        &self,
        name: &str,
        url: &str,
        body: Vec<u8>,
        headers: &HeaderMap,
        shareable: bool,
    ) -> RawAnswer {
        let span = tracing::info_span!(
            target: TARGET,
            "subgraph.fetch",
            otel.name = %format!("POST {name}"),
            otel.kind = "client",
            subgraph.name = name,
            http.request.method = "POST",
            http.response.status_code = tracing::field::Empty,
            http.response.body.size = tracing::field::Empty,
            taproom.deduplicated = tracing::field::Empty,
            taproom.retried = tracing::field::Empty,
        );
        let within = span.clone();
        async move {
            let forwarded = FORWARDED_HEADERS.map(|header| headers.get(header).cloned());
            let trace = trace_headers();
            match (&self.in_flight, shareable) {
                (Some(in_flight), true) => {
                    let key = RequestKey {
                        url: url.to_owned(),
                        headers: forwarded,
                        body: Bytes::from(body),
                    };
                    let shared = {
                        let mut map = in_flight.lock().expect("in-flight lock is never poisoned");
                        match map.entry(key) {
                            Entry::Occupied(entry) => {
                                span.record("taproom.deduplicated", true);
                                self.metrics
                                    .deduplicated
                                    .get_or_create(&SubgraphLabels {
                                        subgraph: name.to_owned(),
                                    })
                                    .inc();
                                *self
                                    .saved
                                    .lock()
                                    .expect("counter lock is never poisoned")
                                    .entry(name.to_owned())
                                    .or_default() += 1;
                                entry.get().clone()
                            }
                            Entry::Vacant(entry) => {
                                let key = entry.key().clone();
                                let shared = self.shared_send(name, key, trace, in_flight.clone());
                                entry.insert(shared.clone());
                                shared
                            }
                        }
                    };
                    shared.await
                }
                _ => {
                    let send = send(
                        Sender {
                            http: self.http.clone(),
                            counts: self.counts.clone(),
                            metrics: self.metrics.clone(),
                            secret: self.secret.clone(),
                            unshared: UNSHARED_HEADERS.map(|header| headers.get(header).cloned()),
                            trace,
                            retries: if shareable || self.applies_once(name, headers) {
                                self.retries.clone()
                            } else {
                                None
                            },
                            timeout: self.timeout,
                        },
                        name.to_owned(),
                        url.to_owned(),
                        forwarded,
                        Bytes::from(body),
                    );
                    send.await
                }
            }
        }
        .instrument(within)
        .await
    }

    /// Whether a mutation to `name` with these headers may be retried: it has an idempotency key
    /// and the subgraph honours it.
    fn applies_once(&self, name: &str, headers: &HeaderMap) -> bool {
        headers.contains_key(IDEMPOTENCY_HEADER) && self.idempotent.iter().any(|n| n == name)
    }

    /// Sends `key` on a task of its own, so the request completes (and leaves the in-flight map)
    /// even if every caller waiting for it goes away.
    fn shared_send(
        &self,
        name: &str,
        key: RequestKey,
        trace: [Option<HeaderValue>; TRACE_HEADERS.len()],
        in_flight: Arc<Mutex<InFlight>>,
    ) -> SharedAnswer {
        let task = tokio::spawn(
            send(
                Sender {
                    http: self.http.clone(),
                    counts: self.counts.clone(),
                    metrics: self.metrics.clone(),
                    secret: self.secret.clone(),
                    unshared: [None, None, None, None],
                    trace,
                    retries: self.retries.clone(),
                    timeout: self.timeout,
                },
                name.to_owned(),
                key.url.clone(),
                key.headers.clone(),
                key.body.clone(),
            )
            .in_current_span(),
        );
        async move {
            let answer = task.await.unwrap_or_else(|error| {
                tracing::error!(%error, "a shared subgraph request's task failed");
                Err("failed inside the router".to_owned())
            });
            in_flight
                .lock()
                .expect("in-flight lock is never poisoned")
                .remove(&key);
            answer
        }
        .boxed()
        .shared()
    }
}

/// [`TRACE_HEADERS`] for a request sent from the current span.
fn trace_headers() -> [Option<HeaderValue>; TRACE_HEADERS.len()] {
    let mut headers = [None, None];
    for (name, value) in context::outgoing() {
        if let Some(at) = TRACE_HEADERS.iter().position(|header| *header == name) {
            headers[at] = HeaderValue::from_str(&value).ok();
        }
    }
    headers
}

/// What one POST is sent with, besides its forwarded headers.
struct Sender {
    http: reqwest::Client,
    counts: Arc<Mutex<HashMap<String, u64>>>,
    metrics: Arc<RouterMetrics>,
    secret: Option<HeaderValue>,
    /// Only for requests that are never shared (mutations): [`UNSHARED_HEADERS`].
    unshared: [Option<HeaderValue>; UNSHARED_HEADERS.len()],
    /// [`TRACE_HEADERS`]: the caller's (a shared request's first caller's).
    trace: [Option<HeaderValue>; TRACE_HEADERS.len()],
    /// The retry budget, for an idempotent request when retries are on.
    retries: Option<Arc<RetryBudget>>,
    /// The request's timeout, which a retry keeps to.
    timeout: Duration,
}

/// One POST to a subgraph, counted.
async fn send(
    Sender {
        http,
        counts,
        metrics,
        secret,
        unshared,
        trace,
        retries,
        timeout,
    }: Sender,
    name: String,
    url: String,
    headers: [Option<HeaderValue>; FORWARDED_HEADERS.len()],
    body: Bytes,
) -> RawAnswer {
    let started = Instant::now();
    let labels = SubgraphLabels {
        subgraph: name.clone(),
    };
    metrics.subgraph_requests.get_or_create(&labels).inc();
    *counts
        .lock()
        .expect("counter lock is never poisoned")
        .entry(name)
        .or_default() += 1;
    let failed = |reason: Failure| {
        metrics
            .subgraph_errors
            .get_or_create(&SubgraphErrorLabels {
                subgraph: labels.subgraph.clone(),
                reason,
            })
            .inc();
    };
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header(
            "accept",
            "application/graphql-response+json, application/json",
        );
    for (header, value) in FORWARDED_HEADERS.iter().zip(headers) {
        if let Some(value) = value {
            request = request.header(*header, value);
        }
    }
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    for (header, value) in UNSHARED_HEADERS
        .iter()
        .zip(unshared)
        .chain(TRACE_HEADERS.iter().zip(trace))
    {
        if let Some(value) = value {
            request = request.header(*header, value);
        }
    }
    let span = Span::current();
    let request = request.body(body);
    let answer = match &retries {
        None => request.send().await,
        Some(budget) => {
            let Sent { answer, retry } = send_idempotent(request, budget, timeout).await;
            if let Some((retried, reason)) = retry {
                let result = match retried {
                    Retried::Yes => Retry::retried,
                    Retried::BudgetExhausted => Retry::budget_exhausted,
                };
                metrics
                    .retries
                    .get_or_create(&RetryLabels {
                        subgraph: labels.subgraph.clone(),
                        result,
                    })
                    .inc();
                tracing::warn!(subgraph = %labels.subgraph, %reason, ?result, "a query failed at the connection level");
                if retried == Retried::Yes {
                    span.record("taproom.retried", true);
                    metrics.subgraph_requests.get_or_create(&labels).inc();
                }
            }
            answer
        }
    };
    // What the client reads names the subgraph (the caller's error does) and the kind of
    // failure, never its address: the cause, with the URL, goes to the log.
    let response = answer.map_err(|e| {
        failed(Failure::transport);
        context::fail(&span, "transport");
        tracing::warn!(subgraph = %labels.subgraph, cause = %taproom_http::retry::causes(&e), "a subgraph request failed");
        if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "connection refused or unreachable".to_owned()
        } else {
            "the connection failed before the answer came".to_owned()
        }
    })?;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    let bytes = response.bytes().await.map_err(|e| {
        failed(Failure::transport);
        context::fail(&span, "transport");
        tracing::warn!(subgraph = %labels.subgraph, cause = %taproom_http::retry::causes(&e), "a subgraph's answer could not be read");
        if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "the connection broke while the answer was read".to_owned()
        }
    })?;
    span.record("http.response.body.size", bytes.len());
    if !status.is_success() {
        failed(Failure::http_status);
        context::fail(&span, &format!("HTTP {status}"));
    }
    metrics
        .subgraph_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    Ok((status, bytes))
}

/// A subgraph's answer as the executor uses it, its data borrowing from its body kept in `bodies`.
pub fn read_answer((status, bytes): (StatusCode, Bytes), bodies: &Bodies) -> FetchResult<'_> {
    let bytes = bodies.keep(bytes).map_err(|too| {
        format!(
            "answered more than this operation may hold: its subgraph answers came to over the router's limit of {} bytes",
            too.limit
        )
    })?;
    let parsed: Val = serde_json::from_slice(bytes)
        .map_err(|_| format!("answered HTTP {status} with a body that is not JSON"))?;
    let Val::Object(mut object) = parsed else {
        return Err(format!(
            "answered HTTP {status} with JSON that is not a GraphQL response"
        ));
    };
    if !object.contains_key("data") && !object.contains_key("errors") {
        return Err(format!(
            "answered HTTP {status} with JSON that is not a GraphQL response"
        ));
    }
    let errors = match object.remove("errors") {
        Some(Val::List(errors)) => errors
            .iter()
            .map(|e| GraphqlError::from_subgraph(&e.to_json()))
            .collect(),
        Some(Val::Null) | None => Vec::new(),
        Some(_) => return Err("answered with an `errors` member that is not a list".into()),
    };
    let data = object.remove("data").filter(|d| !d.is_null());
    Ok(SubgraphResponse { data, errors })
}
