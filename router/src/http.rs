//! The router's HTTP face: `POST`/`GET /graphql` after GraphQL-over-HTTP, `/health`, `/metrics`.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, DefaultBodyLimit, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router as Routes,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tower_http::trace::TraceLayer;

use crate::{Outcome, Router};

/// A GraphQL request as clients send it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    #[allow(dead_code)]
    pub extensions: Option<Value>,
}

/// The header with which a client asks for the query plan in `extensions.queryPlan`.
pub const QUERY_PLAN_HEADER: &str = "x-taproom-query-plan";

/// The routes, serving `router`. `cors_origins` are the origins allowed to call from a browser;
/// with none, only same-origin pages (the playground) can.
pub fn routes(router: Arc<Router>, max_body_bytes: usize, cors_origins: &[HeaderValue]) -> Routes {
    let routes = Routes::new()
        .route("/graphql", get(graphql).post(graphql))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route("/", get(crate::playground::index))
        .route("/playground/{file}", get(crate::playground::asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(router);
    if cors_origins.is_empty() {
        routes
    } else {
        routes.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(cors_origins.to_vec())
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::ACCEPT,
                    header::HeaderName::from_static(QUERY_PLAN_HEADER),
                ]),
        )
    }
}

async fn metrics(State(router): State<Arc<Router>>) -> Response {
    let mut text = String::from(
        "# HELP taproom_router_subgraph_requests_total Requests sent to each subgraph.\n# TYPE taproom_router_subgraph_requests_total counter\n",
    );
    let mut counts: Vec<(String, u64)> = router.client.counts().into_iter().collect();
    counts.sort();
    for (name, count) in counts {
        text.push_str(&format!(
            "taproom_router_subgraph_requests_total{{subgraph=\"{name}\"}} {count}\n"
        ));
    }
    text.push_str(&format!(
        "# HELP taproom_router_operations_prepared_total Operations parsed, validated and planned (plan cache misses).\n# TYPE taproom_router_operations_prepared_total counter\ntaproom_router_operations_prepared_total {}\n",
        router.prepared_count()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphQlResponse,
    Json,
}

impl MediaType {
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

fn reply(media: MediaType, status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    (status, [(header::CONTENT_TYPE, media.header())], bytes).into_response()
}

fn bad_request(media: MediaType, status: StatusCode, message: &str) -> Response {
    let mut response = reply(
        media,
        status,
        &json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }] }),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

async fn graphql(
    State(router): State<Arc<Router>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let request = match read_request(&method, &uri, &headers, body) {
        Ok(request) => request,
        Err((status, message)) => return bad_request(media, status, &message),
    };
    let Some(query) = request.query.as_deref().filter(|q| !q.trim().is_empty()) else {
        return bad_request(media, StatusCode::BAD_REQUEST, "the request has no query");
    };
    let variables = request.variables.clone().unwrap_or_default();
    let want_plan = headers
        .get(QUERY_PLAN_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true") || v.as_bytes() == b"1");
    match router
        .execute(
            query,
            request.operation_name.as_deref(),
            &variables,
            &headers,
            method == Method::GET,
            want_plan,
        )
        .await
    {
        Outcome::Response(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, media.header())],
            body,
        )
            .into_response(),
        Outcome::RequestError { status, body } => {
            let status = if status == StatusCode::BAD_REQUEST && media == MediaType::Json {
                StatusCode::OK
            } else {
                status
            };
            let mut response = reply(media, status, &body);
            if status == StatusCode::METHOD_NOT_ALLOWED {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            response
        }
    }
}

fn read_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Request, (StatusCode, String)> {
    if method == Method::GET {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Params {
            query: Option<String>,
            operation_name: Option<String>,
            variables: Option<String>,
            extensions: Option<String>,
        }
        let params: Params =
            serde_urlencoded::from_str(uri.query().unwrap_or("")).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("invalid query string: {e}"),
                )
            })?;
        let json =
            |name: &str, text: Option<String>| -> Result<Option<Value>, (StatusCode, String)> {
                text.map(|t| {
                    serde_json::from_str(&t).map_err(|e| {
                        (
                            StatusCode::BAD_REQUEST,
                            format!("`{name}` is not JSON: {e}"),
                        )
                    })
                })
                .transpose()
            };
        let variables = match json("variables", params.variables)? {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "`variables` must be a JSON object".into(),
                ))
            }
        };
        return checked(Request {
            query: params.query,
            operation_name: params.operation_name,
            variables,
            extensions: json("extensions", params.extensions)?,
        });
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
    checked(serde_json::from_slice(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("malformed GraphQL request body: {e}"),
        )
    })?)
}

/// `extensions`, when given, is a map (GraphQL-over-HTTP).
fn checked(request: Request) -> Result<Request, (StatusCode, String)> {
    match &request.extensions {
        None | Some(Value::Null | Value::Object(_)) => Ok(request),
        Some(_) => Err((
            StatusCode::BAD_REQUEST,
            "`extensions` must be a JSON object".into(),
        )),
    }
}
