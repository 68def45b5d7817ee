//! The errors clients see: one typed GraphQL error with its `extensions.code`, and the error of a
//! request that cannot run at all, which knows its HTTP status.
//!
//! Every error the router produces is a [`GraphqlError`], including the HTTP-level ones this crate
//! answers ([`crate::error_reply`]); errors subgraphs send are parsed into one at the router's fetch
//! boundary ([`GraphqlError::from_subgraph`]), keeping whatever extra members they carry.

use axum::http::StatusCode;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// An `extensions.code`: the contract's codes, the router's request-level ones, and any other code a
/// subgraph sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A malformed HTTP request or body.
    BadRequest,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    /// A variable's value breaks its type.
    BadUserInput,
    MaxDepthLimit,
    MaxAliasesLimit,
    MaxFieldsLimit,
    QueryPlanningFailed,
    /// A persisted query's hash the router does not know (yet): send the query with it.
    PersistedQueryNotFound,
    /// A persisted query's hash that is not the SHA-256 of the query sent with it.
    PersistedQueryHashMismatch,
    /// A persisted query or document id sent to a router that keeps none.
    PersistedQueryNotSupported,
    /// A persisted document id that is not in the router's manifest.
    PersistedQueryNotInList,
    /// An operation a router with a safelist does not run: its text is not in the manifest.
    QueryNotInSafelist,
    /// A subgraph could not be asked, or answered something that is not a GraphQL response.
    SubgraphRequestFailed,
    /// Too many at once (subscriptions open on the router, say).
    RateLimited,
    InternalServerError,
    /// A code the router does not produce itself (a subgraph's `UNAUTHENTICATED`, say).
    Other(String),
}

impl Code {
    /// The code as clients see it.
    pub fn as_str(&self) -> &str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::MaxDepthLimit => "MAX_DEPTH_LIMIT",
            Code::MaxAliasesLimit => "MAX_ALIASES_LIMIT",
            Code::MaxFieldsLimit => "MAX_FIELDS_LIMIT",
            Code::QueryPlanningFailed => "QUERY_PLANNING_FAILED",
            Code::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Code::PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            Code::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Code::PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            Code::QueryNotInSafelist => "QUERY_NOT_IN_SAFELIST",
            Code::SubgraphRequestFailed => "SUBGRAPH_REQUEST_FAILED",
            Code::RateLimited => "RATE_LIMITED",
            Code::InternalServerError => "INTERNAL_SERVER_ERROR",
            Code::Other(code) => code,
        }
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A position in the client's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// An error's `extensions`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Extensions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    /// The subgraph an error is about (`SUBGRAPH_REQUEST_FAILED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Anything else a subgraph put there, passed on as it is.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.code.is_none() && self.service.is_none() && self.other.is_empty()
    }
}

/// One entry of a response's `errors`.
#[derive(Debug, Clone, Serialize)]
pub struct GraphqlError {
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// The response path the error is about (keys and list indexes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
    /// Members beyond the spec's that a subgraph's error had, passed on as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl GraphqlError {
    /// An error with `code` and `message`, no path or location.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        GraphqlError {
            message: message.into(),
            locations: Vec::new(),
            path: None,
            extensions: Extensions {
                code: Some(code),
                ..Extensions::default()
            },
            other: Map::new(),
        }
    }

    /// The same error about the response path `path`.
    pub fn at(mut self, path: Vec<Value>) -> Self {
        self.path = Some(path);
        self
    }

    /// The same error telling the client to wait `seconds` before trying again
    /// (`extensions.retryAfterSeconds`, with `RATE_LIMITED`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.extensions
            .other
            .insert("retryAfterSeconds".to_owned(), Value::from(seconds));
        self
    }

    /// The same error naming the subgraph `service`.
    pub fn service(mut self, service: &str) -> Self {
        self.extensions.service = Some(service.to_owned());
        self
    }

    /// A subgraph's error, as the client will see it. Its `locations` point into the subgraph
    /// operation, not the client's, and are dropped; its path is relocated by the executor.
    pub fn from_subgraph(error: &Value) -> Self {
        let mut other = error.as_object().cloned().unwrap_or_default();
        let message = match other.remove("message") {
            Some(Value::String(message)) => message,
            Some(other) => other.to_string(),
            None => "the subgraph sent an error without a message".to_owned(),
        };
        other.remove("locations");
        let path = match other.remove("path") {
            Some(Value::Array(path)) => Some(path),
            _ => None,
        };
        let mut extensions = Extensions::default();
        match other.remove("extensions") {
            Some(Value::Object(mut map)) => {
                extensions.code = match map.remove("code") {
                    Some(Value::String(code)) => Some(Code::Other(code)),
                    Some(code) => {
                        // Not a string: passed on as it is.
                        map.insert("code".into(), code);
                        None
                    }
                    None => None,
                };
                extensions.service = match map.remove("service") {
                    Some(Value::String(service)) => Some(service),
                    Some(service) => {
                        map.insert("service".into(), service);
                        None
                    }
                    None => None,
                };
                extensions.other = map;
            }
            Some(Value::Null) | None => {}
            Some(value) => {
                // A malformed `extensions` is kept where it was.
                other.insert("extensions".into(), value);
            }
        }
        GraphqlError {
            message,
            locations: Vec::new(),
            path,
            extensions,
            other,
        }
    }

    /// The first element of the path, when it is a key.
    pub fn path_root(&self) -> Option<&str> {
        self.path.as_ref()?.first()?.as_str()
    }
}

/// A request that cannot run at all: no `data`, only errors, and an HTTP status for clients that
/// accept `application/graphql-response+json` (`http` answers `application/json` clients 200 for a
/// 400, as GraphQL-over-HTTP says).
#[derive(Debug, Clone)]
pub struct RequestError {
    pub status: StatusCode,
    pub errors: Vec<GraphqlError>,
}

impl RequestError {
    /// A request error of one error.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        RequestError {
            status,
            errors: vec![GraphqlError::new(code, message)],
        }
    }
}

/// A response body of only errors, as JSON text.
pub fn errors_body(errors: &[GraphqlError]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'e> {
        errors: &'e [GraphqlError],
    }
    serde_json::to_vec(&Body { errors }).expect("errors serialize")
}
