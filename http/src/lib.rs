//! GraphQL-over-HTTP, written once for the router and the subgraphs.
//!
//! - [`MediaType::negotiate`]: `application/graphql-response+json` for a client that names it,
//!   `application/json` otherwise (a missing `Accept`, `*/*` and `application/*` included).
//! - [`read_request`]: a GraphQL request from `GET`'s query string or `POST`'s JSON body, with the
//!   HTTP-level problems (wrong content type 415, unreadable or oversized body, malformed JSON, no
//!   query, non-object `variables` or `extensions`: 400, 413) as an [`HttpError`].
//! - [`reply`]: a response of a media type and status; [`error_reply`] the body of an HTTP-level
//!   problem, with `extensions.code` `BAD_REQUEST` (and `Allow: POST` on 405);
//!   [`graphql_status`]: the status of a GraphQL request error for the client's media type.
//! - [`error`]: the typed GraphQL error (`GraphqlError`, its `Code`s) and a request error that knows
//!   its HTTP status (`RequestError`).
//! - [`shutdown_signal`]: Ctrl-C or SIGTERM; [`lifecycle`]: serving until it, then draining (not
//!   ready, a grace period, in-flight requests finished up to a deadline).
//! - [`retry`]: one more try for an idempotent request to another service, within a budget.
//!
//! It knows no GraphQL engine and no database (its one client-side piece, [`retry`], sends
//! requests built with reqwest): the router and `taproom-common` (the subgraphs'
//! plumbing) both build on it, and the router still depends on no subgraph crate.

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The read and write buffers of every WebSocket, in bytes: tungstenite's default of 128 KiB each
/// made a thousand idle sockets cost 144 MB; GraphQL messages are small, and a longer one still
/// arrives whole (the buffer grows while it is read, then is released).
pub const WEBSOCKET_BUFFER_BYTES: usize = 4 * 1024;

pub mod error;
pub mod lifecycle;
pub mod retry;

use error::{errors_body, Code, GraphqlError};

/// Which response media type the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    GraphQlResponse,
    Json,
}

impl MediaType {
    /// `application/graphql-response+json` when the client names it, else `application/json`,
    /// which is also what a missing `Accept` or `*/*` (what legacy clients send) means.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return MediaType::Json;
        };
        let named = accept
            .split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .any(|t| t == "application/graphql-response+json");
        if named {
            MediaType::GraphQlResponse
        } else {
            MediaType::Json
        }
    }

    /// The `Content-Type` of a response of this type.
    pub fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphQlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }
}

/// A GraphQL request as a client sent it. `query`, when given, is not blank; a request may name a
/// persisted document instead (`documentId`, or `extensions.persistedQuery`), which only the router
/// resolves ([`required_query`] insists on a query).
#[derive(Debug, Clone, Default)]
pub struct GraphqlHttpRequest {
    pub query: Option<String>,
    /// A persisted document's id (GraphQL-over-HTTP's persisted documents).
    pub document_id: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
    pub extensions: Map<String, Value>,
}

/// A request that is wrong at the HTTP level; nothing was run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    /// A 400 with `message`.
    pub fn bad(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// Where a request's GraphQL fields are: `GET`'s query string parameters, or `POST`'s JSON body
/// (its content type checked, read within the body limit). A server that deserializes the body
/// into its own request type (the subgraphs, into async-graphql's) reads it from here, in one pass.
pub enum RequestSource {
    Get(GetParams),
    Post(Bytes),
}

/// `GET`'s parameters: `query` or `documentId`, `operationName`, and `variables` and `extensions`
/// as JSON text.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    pub query: Option<String>,
    pub document_id: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<String>,
    pub extensions: Option<String>,
}

/// The request's source, after the HTTP-level checks (415, 400, 413).
pub fn request_source(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<RequestSource, HttpError> {
    if method == Method::GET {
        let params = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|e| HttpError::bad(format!("invalid query string: {e}")))?;
        return Ok(RequestSource::Get(params));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(HttpError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the request as Content-Type: application/json".into(),
        });
    }
    body.map(RequestSource::Post).map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body too large".to_owned()
        } else {
            format!("cannot read the request body: {rejection}")
        };
        HttpError { status, message }
    })
}

/// The query, which must not be missing or blank.
pub fn required_query(query: Option<String>) -> Result<String, HttpError> {
    let query = query.unwrap_or_default();
    check_query(&query)?;
    Ok(query)
}

/// A blank query is a bad request, not a document that fails to parse; so is one holding a control
/// character other than tab and line breaks, which GraphQL documents may not contain (a NUL used to
/// get a parser's puzzling "unexpected character").
pub fn check_query(query: &str) -> Result<(), HttpError> {
    if query.trim().is_empty() {
        return Err(HttpError::bad("the request has no query"));
    }
    let bad = query
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
    if let Some((at, c)) = bad {
        let before = &query[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        return Err(HttpError::bad(format!(
            "the query holds the control character U+{:04X} at line {line}, column {column}; GraphQL documents may hold only tabs, line breaks and printable characters",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Why a POST body is not a GraphQL request, in words a person can act on: a batch (JSON array),
/// a member of the wrong type, or the JSON error itself.
pub fn malformed_body(body: &[u8], error: &serde_json::Error) -> HttpError {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return HttpError::bad(format!("the request body is not valid JSON: {error}"));
    };
    let message = match &value {
        Value::Array(_) => "batched requests (a JSON array of operations) are not supported; send one operation per request".to_owned(),
        Value::Object(object) => {
            let wrong = [("query", "a string"), ("operationName", "a string or null")]
                .into_iter()
                .find(|(name, _)| object.get(*name).is_some_and(|v| !v.is_string() && !v.is_null()));
            match wrong {
                Some((name, kind)) => format!("`{name}` must be {kind}"),
                None => format!("malformed GraphQL request body: {error}"),
            }
        }
        _ => "the request body must be a JSON object with a `query`".to_owned(),
    };
    HttpError::bad(message)
}

/// What a `POST` body or a `GET` query string holds: one GraphQL request, or a batch (a JSON array
/// of them) whose members are read one by one, so that one malformed member fails only itself.
#[derive(Debug)]
pub enum Incoming {
    One(GraphqlHttpRequest),
    Batch(Vec<Result<GraphqlHttpRequest, HttpError>>),
}

/// Reads a GraphQL request from `GET`'s query string (`query` or `documentId`, `operationName`,
/// and `variables` and `extensions` as JSON text) or from `POST`'s `application/json` body: a
/// request object, or with `max_batch` above 0 an array of at most `max_batch` of them. A query,
/// when given, is checked ([`check_query`]); that there is one, or a persisted document instead, is
/// the caller's to check.
pub fn read_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    max_batch: usize,
) -> Result<Incoming, HttpError> {
    match request_source(method, uri, headers, body)? {
        RequestSource::Get(params) => request_from_get(params).map(Incoming::One),
        RequestSource::Post(body) => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if max_batch == 0 || first != Some(&b'[') {
                return request_from_json(&body).map(Incoming::One);
            }
            let members: Vec<&serde_json::value::RawValue> =
                serde_json::from_slice(&body).map_err(|e| malformed_body(&body, &e))?;
            if members.is_empty() {
                return Err(HttpError::bad(
                    "the batch is empty: send at least one operation",
                ));
            }
            if members.len() > max_batch {
                return Err(HttpError::bad(format!(
                    "the batch holds {} operations; at most {max_batch} are accepted in one request",
                    members.len()
                )));
            }
            Ok(Incoming::Batch(
                members
                    .into_iter()
                    .map(
                        |member| match member.get().trim_start().as_bytes().first() {
                            Some(b'{') => request_from_json(member.get().as_bytes()),
                            _ => Err(HttpError::bad(
                                "each operation of a batch must be a JSON object with a `query`",
                            )),
                        },
                    )
                    .collect(),
            ))
        }
    }
}

/// One request object from JSON text.
pub fn request_from_json(body: &[u8]) -> Result<GraphqlHttpRequest, HttpError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        query: Option<String>,
        document_id: Option<String>,
        operation_name: Option<String>,
        variables: Option<Value>,
        extensions: Option<Value>,
    }
    let fields: Fields = serde_json::from_slice(body).map_err(|e| malformed_body(body, &e))?;
    Ok(GraphqlHttpRequest {
        query: optional_query(fields.query)?,
        document_id: fields.document_id,
        operation_name: fields.operation_name,
        variables: object("variables", fields.variables)?,
        extensions: object("extensions", fields.extensions)?,
    })
}

/// A query that is given is checked; an absent or empty one is none (a persisted document may
/// stand for it).
fn optional_query(query: Option<String>) -> Result<Option<String>, HttpError> {
    match query {
        Some(query) if !query.is_empty() => check_query(&query).map(|()| Some(query)),
        _ => Ok(None),
    }
}

/// A GraphQL request from `GET`'s parameters.
pub fn request_from_get(params: GetParams) -> Result<GraphqlHttpRequest, HttpError> {
    let json = |name: &str, text: Option<String>| -> Result<Option<Value>, HttpError> {
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| HttpError::bad(format!("`{name}` is not JSON: {e}")))
        })
        .transpose()
    };
    Ok(GraphqlHttpRequest {
        query: optional_query(params.query)?,
        document_id: params.document_id,
        operation_name: params.operation_name,
        variables: object("variables", json("variables", params.variables)?)?,
        extensions: object("extensions", json("extensions", params.extensions)?)?,
    })
}

/// `variables` and `extensions`, when given, are maps.
fn object(name: &str, value: Option<Value>) -> Result<Map<String, Value>, HttpError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(HttpError::bad(format!("`{name}` must be a JSON object"))),
    }
}

/// A response with `body` (JSON text) as `media`, with `Allow: POST` on 405.
pub fn reply(media: MediaType, status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, media.header())], body).into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// The response to an HTTP-level problem: a GraphQL-shaped error with code `BAD_REQUEST`.
pub fn error_reply(media: MediaType, error: &HttpError) -> Response {
    let errors = [GraphqlError::new(Code::BadRequest, error.message.clone())];
    reply(media, error.status, errors_body(&errors))
}

/// The status of a GraphQL request that could not run (parse, validation or variable errors),
/// whose natural status is `status`: a client of `application/json` gets 200 for a 400, as
/// GraphQL-over-HTTP says; others get `status`.
pub fn graphql_status(media: MediaType, status: StatusCode) -> StatusCode {
    if status == StatusCode::BAD_REQUEST && media == MediaType::Json {
        StatusCode::OK
    } else {
        status
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: Option<&str>) -> MediaType {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::ACCEPT, HeaderValue::from_str(value).expect("valid"));
        }
        MediaType::negotiate(&headers)
    }

    #[test]
    fn only_clients_naming_the_new_media_type_get_it() {
        assert_eq!(accept(None), MediaType::Json);
        assert_eq!(accept(Some("*/*")), MediaType::Json);
        assert_eq!(accept(Some("application/*")), MediaType::Json);
        assert_eq!(accept(Some("application/json")), MediaType::Json);
        assert_eq!(
            accept(Some(
                "application/json, application/graphql-response+json; q=0.9"
            )),
            MediaType::GraphQlResponse
        );
    }

    fn post(body: &str) -> Result<GraphqlHttpRequest, HttpError> {
        match post_many(body, 0)? {
            Incoming::One(request) => Ok(request),
            Incoming::Batch(_) => panic!("batches are off"),
        }
    }

    fn post_many(body: &str, max_batch: usize) -> Result<Incoming, HttpError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        read_request(
            &Method::POST,
            &Uri::from_static("/graphql"),
            &headers,
            Ok(Bytes::from(body.to_owned())),
            max_batch,
        )
    }

    #[test]
    fn requests_without_a_query_or_with_non_object_maps_are_bad() {
        // No query is not an HTTP-level problem: a persisted document may stand for it.
        assert_eq!(post(r#"{"qeury":"{ a }"}"#).expect("read").query, None);
        assert_eq!(
            post(r#"{"query":"  "}"#)
                .expect_err("a bad request")
                .message,
            "the request has no query"
        );
        for bad in [r#""s""#, "0", "false", "[1]"] {
            let body = format!(r#"{{"query":"{{ a }}","extensions":{bad}}}"#);
            assert_eq!(
                post(&body).expect_err("a bad request").message,
                "`extensions` must be a JSON object"
            );
            let body = format!(r#"{{"query":"{{ a }}","variables":{bad}}}"#);
            assert_eq!(
                post(&body).expect_err("a bad request").message,
                "`variables` must be a JSON object"
            );
        }
        let ok = post(r#"{"query":"{ a }","variables":null,"extensions":{"x":1}}"#)
            .expect("a good request");
        assert_eq!(ok.query.as_deref(), Some("{ a }"));
        assert!(ok.variables.is_empty());
        assert_eq!(ok.extensions["x"], 1);
    }

    #[test]
    fn get_reads_json_parameters() {
        let uri = Uri::from_static(
            "/graphql?query=%7B%20a%20%7D&operationName=A&variables=%7B%22x%22%3A1%7D",
        );
        let Incoming::One(request) =
            read_request(&Method::GET, &uri, &HeaderMap::new(), Ok(Bytes::new()), 10)
                .expect("a good request")
        else {
            panic!("one request over GET")
        };
        assert_eq!(request.operation_name.as_deref(), Some("A"));
        assert_eq!(request.variables["x"], 1);
        let uri = Uri::from_static("/graphql?query=%7B%20a%20%7D&variables=nope");
        let error = read_request(&Method::GET, &uri, &HeaderMap::new(), Ok(Bytes::new()), 10)
            .expect_err("not JSON");
        assert!(
            error.message.starts_with("`variables` is not JSON"),
            "{}",
            error.message
        );
    }

    #[test]
    fn batches_are_read_member_by_member_within_their_bound() {
        let Incoming::Batch(members) = post_many(
            r#" [{"query":"{ a }"}, {"query":1}, {"documentId":"abc"}]"#,
            3,
        )
        .expect("a batch") else {
            panic!("a batch")
        };
        assert_eq!(members.len(), 3);
        assert_eq!(
            members[0].as_ref().expect("good").query.as_deref(),
            Some("{ a }")
        );
        assert_eq!(
            members[1].as_ref().expect_err("bad").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            members[2].as_ref().expect("good").document_id.as_deref(),
            Some("abc")
        );
        assert_eq!(
            post_many(r#"[{"query":"{ a }"},{"query":"{ a }"}]"#, 1)
                .expect_err("too many")
                .message,
            "the batch holds 2 operations; at most 1 are accepted in one request"
        );
        assert_eq!(
            post_many("[]", 1).expect_err("empty").message,
            "the batch is empty: send at least one operation"
        );
        let Incoming::Batch(nested) = post_many(r#"[[{"query":"{ a }"}]]"#, 3).expect("a batch")
        else {
            panic!("a batch")
        };
        assert_eq!(
            nested[0].as_ref().expect_err("not an object").message,
            "each operation of a batch must be a JSON object with a `query`"
        );
        assert!(post_many(r#"[{"query":"{ a }"}]"#, 0)
            .expect_err("batches off")
            .message
            .starts_with("batched requests"));
    }
}
