//! Requests to subgraphs: one pooled keep-alive HTTP client, per-subgraph timeouts, request counters.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use crate::{
    error::GraphqlError,
    value::{Bodies, Val},
};
use axum::http::HeaderMap;

/// Headers copied from the client's request to every subgraph request; nothing else is forwarded.
pub const FORWARDED_HEADERS: [&str; 2] = ["authorization", "traceparent"];

/// A subgraph's answer, or why there is none.
pub type FetchResult<'b> = Result<SubgraphResponse<'b>, String>;

/// The parts of a subgraph's GraphQL response the executor uses; `data` borrows from the body.
#[derive(Debug, Default)]
pub struct SubgraphResponse<'b> {
    pub data: Option<Val<'b>>,
    /// Its errors, as the client will see them but for their paths (see [`GraphqlError::from_subgraph`]).
    pub errors: Vec<GraphqlError>,
}

/// Sends operations to subgraphs and counts them.
pub struct SubgraphClient {
    http: reqwest::Client,
    counts: Mutex<HashMap<String, u64>>,
}

impl SubgraphClient {
    /// A client whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        SubgraphClient {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(256)
                .tcp_nodelay(true)
                .build()
                .expect("a plain HTTP client always builds"),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Requests sent to each subgraph since start.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.counts
            .lock()
            .expect("counter lock is never poisoned")
            .clone()
    }

    /// POSTs `body` (a GraphQL request as JSON) to the subgraph `name` at `url`; the response body
    /// is kept in `bodies`, and the answer's data borrows from it.
    pub async fn fetch<'b>(
        &self,
        name: &str,
        url: &str,
        body: Vec<u8>,
        headers: &HeaderMap,
        bodies: &'b Bodies,
    ) -> FetchResult<'b> {
        *self
            .counts
            .lock()
            .expect("counter lock is never poisoned")
            .entry(name.to_owned())
            .or_default() += 1;
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "accept",
                "application/graphql-response+json, application/json",
            );
        for header in FORWARDED_HEADERS {
            if let Some(value) = headers.get(header) {
                request = request.header(header, value);
            }
        }
        let response = request.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "connection refused or unreachable".to_owned()
            } else {
                format!("request failed: {e}")
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("cannot read the response: {e}"))?;
        let bytes = bodies.keep(Vec::from(bytes));
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
}
