//! The request pipeline: one function whose lines are the stages, in order.
//!
//! [`Router::execute`] takes a GraphQL request and returns the response body, or the
//! [`RequestError`] of a request that cannot run:
//!
//! 0. [`crate::persisted`]: the query text, the client's own or a persisted one (APQ, persisted
//!    documents), checked against the safelist;
//! 1. [`crate::plan`]: the query text → a [`Prepared`](crate::plan::Prepared) operation (parsed,
//!    limits checked, validated, introspection split off, normalized, planned, its root type),
//!    cached per supergraph;
//! 2. [`crate::variables`]: the client's variables → coerced variables;
//! 3. [`crate::execute`]: the plan → an [`Executed`](crate::execute::Executed) tree of subgraph
//!    answers and their errors;
//! 4. [`crate::response`]: the tree → a [`Shaped`] response, the client's selection as JSON text;
//!    [`crate::introspection`] answers its root fields as a `Shaped` response too;
//! 5. [`Shaped::into_body`]: the shaped response → the body.
//!
//! HTTP (media types, status codes) is the `http` module's alone.

use std::{
    sync::{atomic::Ordering, Arc, RwLock},
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use taproom_telemetry::traces::TARGET;
use tracing::Instrument;

use crate::{
    body::Shaped,
    error::{Code, RequestError},
    execute::{Execution, MergeGate},
    fetch::SubgraphClient,
    metrics::{CacheLabels, Found, Outcome},
    persisted::Persisted,
    plan::{Kind, OperationLimits, PlanCache, Prepared},
    response,
    supergraph::Supergraph,
    value::Bodies,
    variables,
};

/// A supergraph with the plans prepared for it (a plan is only valid for the schema it was made
/// for, so the two are swapped together).
struct Served {
    supergraph: Arc<Supergraph>,
    plans: PlanCache,
}

impl Served {
    fn new(supergraph: Arc<Supergraph>) -> Arc<Self> {
        Arc::new(Served {
            plans: PlanCache::new(supergraph.plan_cache_size),
            supergraph,
        })
    }
}

/// The router's state: the current supergraph and the subgraph client.
pub struct Router {
    served: RwLock<Arc<Served>>,
    /// The HTTP client for subgraphs, with its request counters.
    pub client: SubgraphClient,
    /// Limits on operations.
    pub limits: OperationLimits,
    /// Places for operations holding subgraph answers at once (none: no bound).
    merging: Option<MergeGate>,
    /// Persisted queries and documents, and the safelist.
    pub persisted: Persisted,
    /// Whether `__schema` and `__type` are answered.
    pub introspection: bool,
}

/// One GraphQL request, as `http` read it.
#[derive(Debug, Clone, Copy)]
pub struct GraphqlRequest<'r> {
    /// The query text, unless the request names a persisted one instead.
    pub query: Option<&'r str>,
    /// A persisted document's id.
    pub document_id: Option<&'r str>,
    pub extensions: &'r Map<String, Value>,
    pub operation_name: Option<&'r str>,
    pub variables: &'r Map<String, Value>,
    /// Whether it came over `GET` (only queries may).
    pub over_get: bool,
    /// Whether the client asked for the query plan in `extensions.queryPlan`.
    pub want_plan: bool,
}

impl Router {
    /// A router serving `supergraph`.
    pub fn new(
        supergraph: Arc<Supergraph>,
        client: SubgraphClient,
        limits: OperationLimits,
    ) -> Self {
        client.metrics.supergraph_in_service(&supergraph.sha256());
        Router {
            served: RwLock::new(Served::new(supergraph)),
            client,
            limits,
            merging: None,
            persisted: Persisted::new(&crate::persisted::PersistedSettings::default())
                .expect("no file to read"),
            introspection: true,
        }
    }

    /// Answers `__schema` and `__type` only if `on` (`__typename` always).
    pub fn introspection(mut self, on: bool) -> Self {
        self.introspection = on;
        self
    }

    /// Resolves persisted queries with `persisted` (by default: none, and no APQ).
    pub fn persisting(mut self, persisted: Persisted) -> Self {
        self.persisted = persisted;
        self
    }

    /// Lets at most `places` operations hold subgraph answers at once (0: any number), an
    /// operation waiting longer than `slow` for a subgraph giving its place back meanwhile (see
    /// [`MergeGate`]).
    pub fn merging(mut self, places: usize, slow: Duration) -> Self {
        self.merging = (places > 0).then(|| MergeGate::new(places, slow));
        self
    }

    fn served(&self) -> Arc<Served> {
        self.served
            .read()
            .expect("the supergraph lock is never poisoned")
            .clone()
    }

    /// The supergraph requests are served with now.
    pub fn supergraph(&self) -> Arc<Supergraph> {
        self.served().supergraph.clone()
    }

    /// Serves `supergraph` from now on, with an empty plan cache; requests already running finish
    /// with the old one.
    pub fn swap(&self, supergraph: Arc<Supergraph>) {
        self.client
            .metrics
            .supergraph_in_service(&supergraph.sha256());
        *self
            .served
            .write()
            .expect("the supergraph lock is never poisoned") = Served::new(supergraph);
    }

    /// Operations prepared (plan cache misses) for the current supergraph.
    pub fn prepared_count(&self) -> u64 {
        self.served().plans.prepared.load(Ordering::Relaxed)
    }

    /// Runs the stages before any subgraph is asked (prepare, variables) and drops the result:
    /// what a request can cost the router on its own. The fuzz target drives this.
    pub fn admit_only(&self, request: GraphqlRequest<'_>) -> Result<(), RequestError> {
        self.admit(&self.served(), request).map(drop)
    }

    /// Stages 0 to 2: the query text, the prepared operation (from the cache or made now) and
    /// the coerced variables, or why the request cannot run.
    fn admit(
        &self,
        served: &Served,
        request: GraphqlRequest<'_>,
    ) -> Result<(Arc<Prepared>, Map<String, Value>), RequestError> {
        let supergraph = &served.supergraph;
        let query =
            self.persisted
                .resolve(request.query, request.document_id, request.extensions)?;
        let span = tracing::info_span!(
            target: TARGET,
            "graphql.prepare",
            taproom.plan_cache.hit = tracing::field::Empty,
        )
        .entered();
        let looked_up =
            served
                .plans
                .get_or_prepare(supergraph, &query, request.operation_name, &self.limits);
        // A caller that waited for another's preparing (of the same text) shared its work: a hit.
        let result = match &looked_up {
            Ok((_, false)) => Found::miss,
            Ok((_, true)) => Found::hit,
            Err(_) => Found::miss,
        };
        span.record("taproom.plan_cache.hit", result == Found::hit);
        drop(span);
        let metrics = &self.client.metrics;
        metrics
            .plan_cache
            .get_or_create(&CacheLabels { result })
            .inc();
        if result == Found::miss {
            metrics.prepared.inc();
        }
        let (prepared, _) = looked_up?;
        if prepared.introspects_schema && !self.introspection {
            return Err(RequestError::new(
                StatusCode::BAD_REQUEST,
                Code::GraphqlValidationFailed,
                "introspection is turned off on this router",
            ));
        }
        if request.over_get && prepared.kind != Kind::Query {
            return Err(RequestError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::BadRequest,
                "mutations are only accepted over POST",
            ));
        }
        let variables = variables::coerce(
            &prepared.variables,
            request.variables,
            &supergraph.planner.consumer_schema.document,
        )?;
        Ok((prepared, variables))
    }

    /// Runs one GraphQL request through the pipeline; `headers` are the client's (some are
    /// forwarded to subgraphs). The body is JSON text.
    pub async fn execute(
        &self,
        request: GraphqlRequest<'_>,
        headers: &HeaderMap,
    ) -> Result<Vec<u8>, RequestError> {
        let started = Instant::now();
        let metrics = &self.client.metrics;
        let served = self.served();
        let supergraph = &served.supergraph;
        let (prepared, variables) = match self.admit(&served, request) {
            Ok(admitted) => admitted,
            Err(error) => {
                let seconds = started.elapsed().as_secs_f64();
                // Before it is prepared, the name is only what the client claims: not a label.
                metrics.operation(None, Outcome::request_error, seconds);
                return Err(error);
            }
        };
        let bodies = Bodies::default();
        let mut shaped = match &prepared.planned {
            Some((operation, plan)) => {
                let span = tracing::info_span!(
                    target: TARGET,
                    "graphql.execute",
                    graphql.operation.type = prepared.kind.name(),
                    graphql.operation.name = prepared.name.as_deref(),
                );
                let executed =
                    Execution::new(supergraph, &self.client, headers, &variables, &bodies)
                        .gated(self.merging.as_ref())
                        .run(plan)
                        .instrument(span)
                        .await;
                let _shaping = tracing::info_span!(target: TARGET, "graphql.shape").entered();
                response::shape(supergraph, &variables, executed, operation, &prepared.root)
            }
            None => Shaped::default(),
        };
        if let Some(part) = &prepared.introspection {
            shaped.merge(
                supergraph
                    .introspection
                    .execute(part, &variables, &prepared.root),
            );
        }
        let outcome = if shaped.errors.is_empty() {
            Outcome::ok
        } else {
            Outcome::graphql_errors
        };
        metrics.operation(
            prepared.name.as_deref(),
            outcome,
            started.elapsed().as_secs_f64(),
        );
        let plan = request.want_plan.then(|| match &prepared.planned {
            Some((_, plan)) => format!("{plan}"),
            None => "No subgraph fetches: the router answered this operation itself.".to_owned(),
        });
        Ok(shaped.into_body(&prepared.root_keys, plan.as_deref()))
    }
}
