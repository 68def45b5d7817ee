//! The HTTP shell every subgraph serves its schema in.
//!
//! - `POST /graphql` (`application/json` body) and `GET /graphql` (query string; queries only), after
//!   the GraphQL-over-HTTP conventions: a client that accepts `application/graphql-response+json` gets
//!   that type and HTTP 400 for a request that cannot run (parse or validation errors); a client that
//!   accepts only `application/json` gets 200 with the errors in the body.
//! - Malformed bodies answer 400, bodies over [`Limits::max_body_bytes`] 413, unsupported content types
//!   415, mutations over GET 405 — always as a GraphQL-shaped JSON error with `extensions.code`.
//! - `GET /health`: 200 only while the database answers.
//!
//! Servers take their listener and shutdown signal as parameters so tests can bind `127.0.0.1:0`.

use std::future::Future;

use async_graphql::{
    parser::types::{DocumentOperations, OperationType},
    Executor,
};
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, DefaultBodyLimit, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::{
    auth::{Credentials, RequestAuth},
    db::Db,
};

/// Request limits applied by the HTTP shell (the schema applies depth and complexity limits).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The deepest selection a subgraph executes; deeper operations fail validation.
pub const MAX_QUERY_DEPTH: usize = 16;
/// The highest complexity (roughly, fields selected) a subgraph executes.
pub const MAX_QUERY_COMPLEXITY: usize = 10_000;

/// `/graphql` for `executor` plus `/health` for `db`.
pub fn graphql_app<E: Executor + Clone>(executor: E, db: Db, limits: Limits) -> Router {
    let health = Router::new().route("/health", get(health)).with_state(db);
    Router::new()
        .route("/graphql", get(graphql::<E>).post(graphql::<E>))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(executor)
        .merge(health)
        .layer(TraceLayer::new_for_http())
}

async fn health(State(db): State<Db>) -> Response {
    if db.ping().await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
    }
}

/// Which response media type the client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphQlResponse,
    Json,
}

impl MediaType {
    /// GraphQL-over-HTTP: `application/graphql-response+json` when the client names it, else
    /// `application/json`, which is also what a missing `Accept` or `*/*` means.
    fn negotiate(headers: &HeaderMap) -> Self {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return MediaType::Json;
        };
        let types: Vec<&str> = accept
            .split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .collect();
        // Only a client that names the new type gets it: `*/*` and `application/*` (what legacy
        // clients send) get `application/json`, as GraphQL-over-HTTP recommends.
        if types.contains(&"application/graphql-response+json") {
            MediaType::GraphQlResponse
        } else {
            MediaType::Json
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphQlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }
}

async fn graphql<E: Executor>(
    State(executor): State<E>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let request = match read_request(&method, &uri, &headers, body) {
        Ok(request) => request,
        Err((status, message)) => return request_error(media, status, &message),
    };
    let credentials = Credentials::from_header(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let query = request.query.clone();
    let mut response = executor
        .execute(request.data(RequestAuth::new(credentials)))
        .await;
    // A response without data whose errors carry no path never started executing: the request
    // itself was bad (parse or validation), which GraphQL-over-HTTP answers with 400.
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if request_failed {
        let code = if async_graphql::parser::parse_query(&query).is_err() {
            "GRAPHQL_PARSE_FAILED"
        } else {
            "GRAPHQL_VALIDATION_FAILED"
        };
        for error in &mut response.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", code);
            }
        }
    }
    let status = if request_failed && media == MediaType::GraphQlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // A request that never started executing has no `data` entry at all (GraphQL-over-HTTP);
    // async-graphql would write `"data": null`.
    let body = if request_failed {
        serde_json::to_vec(&serde_json::json!({ "errors": response.errors }))
    } else {
        serde_json::to_vec(&response)
    }
    .expect("a GraphQL response always serializes");
    (status, [(header::CONTENT_TYPE, media.header())], body).into_response()
}

/// Reads a GraphQL request from GET's query string or POST's JSON body.
fn read_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<async_graphql::Request, (StatusCode, String)> {
    if method == Method::GET {
        let request = get_request(uri.query().unwrap_or("")).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("invalid query string: {e}"),
            )
        })?;
        if is_mutation(&request) {
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                "mutations are only accepted over POST".into(),
            ));
        }
        return Ok(request);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json".into(),
        ));
    }
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body too large".to_owned()
        } else {
            format!("cannot read the request body: {rejection}")
        };
        (status, message)
    })?;
    let request: async_graphql::Request = serde_json::from_slice(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("malformed GraphQL request body: {e}"),
        )
    })?;
    // async-graphql reads a body without `query` as an empty document: that is a bad request, not
    // a parse error of a document the client sent.
    if request.query.trim().is_empty() {
        return Err((StatusCode::BAD_REQUEST, "the request has no query".into()));
    }
    Ok(request)
}

/// A GraphQL request from a GET query string: `query`, `operationName`, and `variables` and
/// `extensions` as JSON text (GraphQL-over-HTTP's names; async-graphql's own parser expects
/// `operation_name`).
fn get_request(query_string: &str) -> Result<async_graphql::Request, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        query: Option<String>,
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
    }
    let params: Params = serde_urlencoded::from_str(query_string).map_err(|e| e.to_string())?;
    let query = params.query.filter(|q| !q.trim().is_empty());
    let mut request = async_graphql::Request::new(query.ok_or("`query` is missing")?);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        let value: serde_json::Value = serde_json::from_str(&variables)
            .map_err(|e| format!("`variables` is not JSON: {e}"))?;
        request = request.variables(async_graphql::Variables::from_json(value));
    }
    if let Some(extensions) = params.extensions {
        request.extensions = serde_json::from_str(&extensions)
            .map_err(|e| format!("`extensions` is not a JSON object: {e}"))?;
    }
    Ok(request)
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

fn request_error(media: MediaType, status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }]
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, media.header())],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .expect("installing the Ctrl-C handler cannot fail on a live runtime");
    };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler cannot fail on a live runtime")
            .recv()
            .await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// A subgraph schema builder with federation enabled and the shared depth and complexity limits.
pub fn schema_builder<Q, M>(
    query: Q,
    mutation: M,
) -> async_graphql::SchemaBuilder<Q, M, async_graphql::EmptySubscription>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
{
    async_graphql::Schema::build(query, mutation, async_graphql::EmptySubscription)
        .enable_federation()
        .limit_depth(MAX_QUERY_DEPTH)
        .limit_complexity(MAX_QUERY_COMPLEXITY)
}

/// The federation v2 SDL of a schema built by [`schema_builder`] (what `<service> sdl` prints).
pub fn federation_sdl<Q, M>(query: Q, mutation: M) -> String
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
{
    schema_builder(query, mutation)
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}
