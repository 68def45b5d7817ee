//! The HTTP shell every subgraph serves its schema in.
//!
//! - `POST /graphql` (`application/json` body) and `GET /graphql` (query string; queries only), after
//!   the GraphQL-over-HTTP conventions: a client that accepts `application/graphql-response+json` gets
//!   that type and HTTP 400 for a request that cannot run (parse or validation errors); a client that
//!   accepts only `application/json` gets 200 with the errors in the body.
//! - Malformed bodies answer 400, bodies over [`Limits::max_body_bytes`] 413, unsupported content types
//!   415, mutations over GET 405 — always as a GraphQL-shaped JSON error with `extensions.code`.
//!   Reading the request and negotiating the media type is `taproom-http`'s, shared with the router.
//! - `GET /graphql` with `Upgrade: websocket`: subscriptions over `graphql-transport-ws`.
//! - `GET /health` (liveness): 200 while the process serves. `GET /ready` (readiness): 200 only while
//!   it is not draining ([`taproom_http::lifecycle`]) and the database answers.
//!
//! Servers take their listener and shutdown signal as parameters so tests can bind `127.0.0.1:0`.

use std::{future::Future, net::SocketAddr};

use async_graphql::{
    http::ALL_WEBSOCKET_PROTOCOLS,
    parser::types::{DocumentOperations, OperationType},
    Executor,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    body::Bytes,
    extract::{
        rejection::BytesRejection, ws::WebSocketUpgrade, ConnectInfo, DefaultBodyLimit,
        FromRequestParts as _, State,
    },
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router,
};
use serde_json::Value;
use taproom_http::{
    check_query,
    error::Code,
    error_reply, graphql_status,
    lifecycle::{self, Lifecycle},
    malformed_body, reply, request_from_get, request_source, required_query, HttpError, MediaType,
    RequestSource,
};
pub use taproom_http::{lifecycle::ShutdownArgs, shutdown_signal};
use taproom_telemetry::context;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::{
    auth::{Credentials, RequestAuth},
    db::Db,
    limits::{self, DocumentLimits},
    memo::Memo,
    trust::{self, BatchId, ClientAddress, IdempotencyKey, Peer, SubgraphSecret, TrustedCaller},
};

/// What the HTTP shell applies to every request: its limits (the schema applies the limits on
/// documents, [`crate::limits`]), whether queries get a [`Memo`], and the secret callers must present.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Whether a query's repeated subtrees resolve once ([`crate::memo`]); off only to measure it.
    pub subtree_memo: bool,
    /// When set, `/graphql` refuses callers without it ([`crate::trust`]).
    pub secret: Option<SubgraphSecret>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            subtree_memo: true,
            secret: None,
        }
    }
}

/// `/graphql` for `executor` plus `/health`, `/ready` and `/metrics`.
pub fn graphql_app<E: Executor + Clone>(executor: E, db: Db, limits: Limits) -> Router {
    graphql_app_with(executor, db, limits, Router::new())
}

/// [`graphql_app`] plus a service's own routes (`extra`), which get the same request span, ids
/// and metrics.
pub fn graphql_app_with<E: Executor + Clone>(
    executor: E,
    db: Db,
    limits: Limits,
    extra: Router,
) -> Router {
    let health = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(db);
    let graphql = Router::new()
        .route("/graphql", get(graphql::<E>).post(graphql::<E>))
        .layer(axum::middleware::from_fn_with_state(
            executor.clone(),
            subscriptions::<E>,
        ))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(Shell {
            executor,
            memo: limits.subtree_memo,
        });
    trust::guard(graphql, limits.secret)
        .merge(health)
        .merge(extra)
        .layer(axum::middleware::from_fn(timed))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(context::request_span)
                .on_response(context::record_response),
        )
        .layer(axum::middleware::from_fn(context::middleware))
}

/// `http_server_request_duration_seconds` of every request, by route.
async fn timed(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = match request.uri().path() {
        path @ ("/graphql" | "/health" | "/ready" | "/metrics" | "/auth/introspect") => {
            path.to_owned()
        }
        _ => "other".to_owned(),
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    crate::metrics::metrics()
        .requests
        .get_or_create(&crate::metrics::RouteLabels { http_route: route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: this process's metrics, with the pool's connections read now.
async fn metrics(State(db): State<Db>) -> Response {
    let metrics = crate::metrics::metrics();
    let (size, idle) = db.pool_usage();
    for (state, count) in [
        (crate::metrics::ConnectionState::idle, idle),
        (
            crate::metrics::ConnectionState::used,
            size.saturating_sub(idle),
        ),
    ] {
        metrics
            .connections
            .get_or_create(&crate::metrics::PoolLabels { state })
            .set(i64::from(count));
    }
    taproom_telemetry::metrics::response(metrics.registry())
}

/// `GET /health`, liveness: the process is up and serving (draining included). It does not ask the
/// database, so an orchestrator does not restart every replica while the database is away.
async fn health() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// `GET /ready`, readiness: 200 only while the server is not draining and the database (whose
/// migrations were checked before serving began) answers.
async fn ready(State(db): State<Db>, lifecycle: Option<Extension<Lifecycle>>) -> Response {
    if lifecycle::draining(lifecycle.as_ref()) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else if db.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
    }
}

/// `GET /graphql` with `Upgrade: websocket`: a WebSocket of the `graphql-transport-ws` protocol
/// (or the older `graphql-ws`), for subscriptions. The caller's token comes from the upgrade
/// request's `Authorization` header, or else from `Authorization` in the `connection_init`
/// payload (browsers cannot set headers on a WebSocket). Any other request goes on to `/graphql`.
async fn subscriptions<E: Executor>(
    State(executor): State<E>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let upgrading = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrading {
        return next.run(request).await;
    }
    let (mut parts, _) = request.into_parts();
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return error_reply(
            MediaType::Json,
            &HttpError::bad("a GraphQL WebSocket needs the graphql-transport-ws subprotocol"),
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let credentials = Credentials::from_header(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let client = ClientAddress::of(
        &parts.headers,
        parts.extensions.get::<TrustedCaller>(),
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer),
    );
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(taproom_http::WEBSOCKET_BUFFER_BYTES)
        .write_buffer_size(taproom_http::WEBSOCKET_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(move |payload| async move {
                    let credentials = match payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                    {
                        Some(Value::String(value)) => {
                            Credentials::from_header(Some(value.as_bytes()))
                        }
                        _ => credentials,
                    };
                    let mut data = async_graphql::Data::default();
                    data.insert(RequestAuth::new(credentials));
                    data.insert(client);
                    Ok(data)
                })
                .serve()
        })
}

/// What the `/graphql` handler is given.
#[derive(Clone)]
struct Shell<E> {
    executor: E,
    memo: bool,
}

async fn graphql<E: Executor>(
    State(Shell { executor, memo }): State<Shell<E>>,
    trusted: Option<Extension<TrustedCaller>>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let request = match read_request(&method, &uri, &headers, body) {
        Ok(request) => request,
        Err(error) => return error_reply(media, &error),
    };
    let credentials = Credentials::from_header(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let query = request.query.clone();
    let client = ClientAddress::of(
        &headers,
        trusted.as_ref().map(|Extension(t)| t),
        peer.map(|Extension(ConnectInfo(peer))| peer),
    );
    let mut request = request.data(RequestAuth::new(credentials)).data(client);
    if let Some(batch) = BatchId::of(&headers) {
        request = request.data(batch);
    }
    match IdempotencyKey::of(&headers) {
        Ok(Some(key)) => request = request.data(key),
        Ok(None) => {}
        Err(message) => return error_reply(media, &HttpError::bad(message)),
    }
    if memo {
        request = request.data(Memo::default());
    }
    let span = operation_span(&query, request.operation_name.as_deref());
    let mut response = executor.execute(request).instrument(span).await;
    // A response without data whose errors carry no path never started executing: the request
    // itself was bad (parse or validation), which GraphQL-over-HTTP answers with 400.
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if request_failed {
        let code = if async_graphql::parser::parse_query(&query).is_err() {
            Code::GraphqlParseFailed
        } else {
            Code::GraphqlValidationFailed
        };
        for error in &mut response.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", code.as_str());
            }
        }
    }
    // Every error carries a contract code. Ours always do (the crates' error enums convert only
    // with one); the ones without are async-graphql's own while executing, about the request's
    // input: an argument that does not coerce (`price: true` for a Decimal), a variable the
    // operation uses but does not declare (found by fuzzing).
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Code::BadUserInput.as_str());
        }
    }
    let status = graphql_status(
        media,
        if request_failed {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
    );
    // A request that never started executing has no `data` entry at all (GraphQL-over-HTTP);
    // async-graphql would write `"data": null`.
    let body = if request_failed {
        serde_json::to_vec(&serde_json::json!({ "errors": response.errors }))
    } else {
        serde_json::to_vec(&response)
    }
    .expect("a GraphQL response always serializes");
    reply(media, status, body)
}

/// The span of one GraphQL operation (recorded only for traces): its type and name, never its text
/// or variables.
fn operation_span(query: &str, name: Option<&str>) -> tracing::Span {
    let kind = match query
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
    {
        Some("mutation") => "mutation",
        Some("subscription") => "subscription",
        _ => "query",
    };
    tracing::info_span!(
        target: crate::telemetry::TARGET,
        "graphql.operation",
        otel.name = %match name {
            Some(name) => format!("{kind} {name}"),
            None => kind.to_owned(),
        },
        graphql.operation.type = kind,
        graphql.operation.name = name,
    )
}

/// Reads a GraphQL request (GraphQL-over-HTTP, after `taproom-http`'s checks) into async-graphql's:
/// a `POST` body is deserialized straight into it, in one pass; a mutation over GET is refused
/// with 405.
fn read_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<async_graphql::Request, HttpError> {
    match request_source(method, uri, headers, body)? {
        RequestSource::Post(body) => {
            let request: async_graphql::Request =
                serde_json::from_slice(&body).map_err(|e| malformed_body(&body, &e))?;
            // async-graphql reads a body without `query` as an empty document.
            check_query(&request.query)?;
            Ok(request)
        }
        RequestSource::Get(params) => {
            let read = request_from_get(params)?;
            let mut request = async_graphql::Request::new(required_query(read.query)?).variables(
                async_graphql::Variables::from_json(Value::Object(read.variables)),
            );
            if let Some(name) = read.operation_name {
                request = request.operation_name(name);
            }
            request.extensions = serde_json::from_value(Value::Object(read.extensions))
                .map_err(|e| HttpError::bad(format!("`extensions` is not valid: {e}")))?;
            if is_mutation(&request) {
                return Err(HttpError {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    message: "mutations are only accepted over POST".into(),
                });
            }
            Ok(request)
        }
    }
}

/// Whether the operation the request would run is a mutation (unparseable documents are not; they
/// fail later with a parse error).
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    match (&document.operations, &request.operation_name) {
        (DocumentOperations::Single(op), _) => op.node.ty == OperationType::Mutation,
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get(name.as_str())
            .is_some_and(|op| op.node.ty == OperationType::Mutation),
        (DocumentOperations::Multiple(ops), None) => {
            ops.values().any(|op| op.node.ty == OperationType::Mutation)
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// A subgraph schema builder with federation enabled and the router's limits on documents
/// ([`crate::limits`]). A subgraph without subscriptions passes `async_graphql::EmptySubscription`.
pub fn schema_builder<Q, M, S>(
    query: Q,
    mutation: M,
    subscription: S,
) -> async_graphql::SchemaBuilder<Q, M, S>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    async_graphql::Schema::build(query, mutation, subscription)
        .enable_federation()
        // The router composes subscriptions too (an empty one is left out all the same).
        .enable_subscription_in_federation()
        .extension(DocumentLimits)
        // async-graphql's own guard on nesting (32 by default, counting fragments as levels too)
        // would otherwise refuse what the router sends before the limits above are checked; it
        // stays as a bound on the parser's recursion.
        .limit_recursive_depth(3 * limits::MAX_DEPTH)
}

/// The federation v2 SDL of a schema built by [`schema_builder`] (what `<service> sdl` prints).
pub fn federation_sdl<Q, M, S>(query: Q, mutation: M, subscription: S) -> String
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    schema_builder(query, mutation, subscription)
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}
