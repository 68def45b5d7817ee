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
    panic::AssertUnwindSafe,
    sync::{atomic::Ordering, Arc, RwLock},
    time::Instant,
};

use axum::http::{HeaderMap, StatusCode};
use futures_util::FutureExt as _;
use serde_json::{Map, Value};
use taproom_telemetry::traces::TARGET;
use tracing::Instrument;

use hive_router_query_planner::planner::plan_nodes::{FetchNode, PlanNode};

use crate::{
    body::Shaped,
    client::{Budget, ClientKey},
    error::{Code, GraphqlError, RequestError},
    execute::{AnswerBudget, Execution},
    fetch::{read_answer, SubgraphClient},
    metrics::{CacheLabels, Found, Outcome},
    persisted::{Persisted, QueryText},
    plan::{
        defer::{Delivered, Split},
        pool::Preparer,
        Kind, OperationLimits, PlanCache, Prepared,
    },
    response,
    subscription::{Next, Upstream},
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

/// An admitted request: its query text, the prepared operation and the coerced variables.
struct Admitted<'r> {
    query: QueryText<'r>,
    prepared: Arc<Prepared>,
    variables: Map<String, Value>,
}

/// What a client that takes incremental delivery gets.
pub enum Answer {
    /// One complete response body.
    Whole(Vec<u8>),
    /// The initial payload, then each deferred part, as JSON texts of the incremental delivery
    /// format (`hasNext` on each); the channel closes after the last.
    Parts(tokio::sync::mpsc::Receiver<Vec<u8>>),
    /// A subscription's events; the channel closes when it ends.
    Events(tokio::sync::mpsc::Receiver<Streamed>),
}

/// One item of a subscription's stream.
#[derive(Debug)]
pub enum Streamed {
    /// An event's response (`{data, errors}`), as JSON text.
    Next(Vec<u8>),
    /// The subscription ended with these errors (the subgraph went away, the supergraph changed).
    Failed(Vec<GraphqlError>),
}

/// The most subscriptions a router keeps open at once, unless told otherwise.
pub const MAX_SUBSCRIPTIONS: usize = 10_000;

/// The most subscriptions one client keeps open at once, unless told otherwise.
pub const MAX_SUBSCRIPTIONS_PER_CLIENT: usize = 100;

/// The most bytes of subgraph answers one operation holds, unless told otherwise.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Answers this large are shaped off the async worker ([`off_the_worker`]).
const LARGE_ANSWER_BYTES: usize = 256 * 1024;

/// Runs `shape` (CPU work in proportion to `bytes` of answers) in place, or, for a large answer on
/// the multi-threaded runtime, with this worker's other tasks handed to another thread meanwhile
/// (`block_in_place`): a big answer must not hold up the requests queued behind it.
fn off_the_worker<T>(bytes: usize, shape: impl FnOnce() -> T) -> T {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if bytes >= LARGE_ANSWER_BYTES && multi_threaded {
        tokio::task::block_in_place(shape)
    } else {
        shape()
    }
}

/// The most WebSockets and event streams one client address keeps open, unless told otherwise.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 100;

/// The router's state: the current supergraph and the subgraph client.
pub struct Router {
    served: RwLock<Arc<Served>>,
    /// The HTTP client for subgraphs, with its request counters.
    pub client: SubgraphClient,
    /// Limits on operations.
    pub limits: OperationLimits,
    /// The budget of subgraph answer bytes operations hold at once (none: no bound).
    answers_held: Option<AnswerBudget>,
    /// Persisted queries and documents, and the safelist.
    pub persisted: Persisted,
    /// Whether `__schema` and `__type` are answered.
    pub introspection: bool,
    /// The threads new operations are prepared on, a share per client.
    preparer: Preparer,
    /// Places for subscriptions open at once.
    subscriptions: Arc<tokio::sync::Semaphore>,
    max_subscriptions: usize,
    /// The most bytes of subgraph answers one operation may hold.
    max_answer_bytes: usize,
    /// Subscriptions open per client (token, or address when anonymous).
    subscriptions_per_client: Arc<Budget>,
    /// WebSockets and event streams open per client address.
    pub connections_per_client: Arc<Budget>,
    /// Counts supergraph swaps: a swap ends the subscriptions open.
    reloads: tokio::sync::watch::Sender<u64>,
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

impl<'r> GraphqlRequest<'r> {
    /// The pipeline's view of a request `taproom-http` read.
    pub fn read(
        request: &'r taproom_http::GraphqlHttpRequest,
        over_get: bool,
        want_plan: bool,
    ) -> Self {
        GraphqlRequest {
            query: request.query.as_deref(),
            document_id: request.document_id.as_deref(),
            extensions: &request.extensions,
            operation_name: request.operation_name.as_deref(),
            variables: &request.variables,
            over_get,
            want_plan,
        }
    }
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
            answers_held: None,
            persisted: Persisted::new(&crate::persisted::PersistedSettings::default())
                .expect("no file to read"),
            introspection: true,
            preparer: Preparer::for_this_machine(),
            max_answer_bytes: MAX_ANSWER_BYTES,
            subscriptions: Arc::new(tokio::sync::Semaphore::new(MAX_SUBSCRIPTIONS)),
            max_subscriptions: MAX_SUBSCRIPTIONS,
            subscriptions_per_client: Budget::new("subscriptions", MAX_SUBSCRIPTIONS_PER_CLIENT),
            connections_per_client: Budget::new(
                "WebSockets and event streams",
                MAX_CONNECTIONS_PER_CLIENT,
            ),
            reloads: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Keeps at most `most` subscriptions open at once (by default [`MAX_SUBSCRIPTIONS`]).
    pub fn max_subscriptions(mut self, most: usize) -> Self {
        self.subscriptions = Arc::new(tokio::sync::Semaphore::new(most));
        self.max_subscriptions = most;
        self
    }

    /// Lets each client (its token, or its address when anonymous) keep at most `most`
    /// subscriptions open (by default [`MAX_SUBSCRIPTIONS_PER_CLIENT`]; 0: no limit but the
    /// router's).
    pub fn max_subscriptions_per_client(mut self, most: usize) -> Self {
        self.subscriptions_per_client = Budget::new("subscriptions", most);
        self
    }

    /// Lets each client address keep at most `most` WebSockets and event streams open (by default
    /// [`MAX_CONNECTIONS_PER_CLIENT`]; 0: no limit).
    pub fn max_connections_per_client(mut self, most: usize) -> Self {
        self.connections_per_client = Budget::new("WebSockets and event streams", most);
        self
    }

    /// Lets one operation hold at most `bytes` of subgraph answers (by default
    /// [`MAX_ANSWER_BYTES`]; 0: no bound): a fetch beyond fails with `SUBGRAPH_REQUEST_FAILED`.
    pub fn max_answer_bytes(mut self, bytes: usize) -> Self {
        self.max_answer_bytes = bytes;
        self
    }

    /// Prepares new operations on `threads` threads of their own (by default one per CPU).
    pub fn preparing_threads(mut self, threads: usize) -> Self {
        self.preparer = Preparer::new(threads);
        self
    }

    /// Subscriptions open now.
    pub fn open_subscriptions(&self) -> usize {
        self.max_subscriptions - self.subscriptions.available_permits()
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

    /// Lets operations hold at most about `bytes` of subgraph answers at once (0: no bound): a
    /// new operation waits to read its first answer while they hold more ([`AnswerBudget`]).
    pub fn answers_held(mut self, bytes: usize) -> Self {
        self.answers_held = (bytes > 0).then(|| AnswerBudget::new(bytes));
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
        self.reloads.send_modify(|count| *count += 1);
    }

    /// Operations prepared (plan cache misses) for the current supergraph.
    pub fn prepared_count(&self) -> u64 {
        self.served().plans.prepared.load(Ordering::Relaxed)
    }

    /// Runs the stages before any subgraph is asked (prepare, `@defer` split, variables) on this
    /// thread, without the plan cache, and drops the result: what a request can cost the router on
    /// its own. The fuzz target drives this.
    pub fn admit_only(&self, request: GraphqlRequest<'_>) -> Result<(), RequestError> {
        let served = self.served();
        let query =
            self.persisted
                .resolve(request.query, request.document_id, request.extensions)?;
        let prepared = crate::plan::prepare(
            &served.supergraph,
            &query,
            request.operation_name,
            &self.limits,
        )?;
        let variables = self.checked(&served, &prepared, request)?;
        if prepared.defers {
            let split = crate::plan::defer::split(&query, request.operation_name, &variables)?;
            for part in split.iter().flat_map(|split| {
                std::iter::once(&split.initial).chain(split.deferred.iter().map(|d| &d.query))
            }) {
                crate::plan::prepare(
                    &served.supergraph,
                    part,
                    request.operation_name,
                    &self.limits,
                )?;
            }
        }
        Ok(())
    }

    /// [`Router::admit`], counting a refused request in the metrics.
    async fn admit_counted<'r>(
        &self,
        served: &Served,
        request: GraphqlRequest<'r>,
        client: &ClientKey,
        started: Instant,
    ) -> Result<Admitted<'r>, RequestError> {
        self.admit(served, request, client).await.inspect_err(|_| {
            let seconds = started.elapsed().as_secs_f64();
            // Before it is prepared, the name is only what the client claims: not a label.
            self.client
                .metrics
                .operation(None, Outcome::request_error, seconds);
        })
    }

    /// The prepared form of `query`, from the cache or made now on a preparing thread for
    /// `client`, counted in the metrics.
    async fn prepared(
        &self,
        served: &Served,
        query: &str,
        operation_name: Option<&str>,
        client: &ClientKey,
    ) -> Result<Arc<Prepared>, RequestError> {
        let span = tracing::info_span!(
            target: TARGET,
            "graphql.prepare",
            taproom.plan_cache.hit = tracing::field::Empty,
        );
        let looked_up = served
            .plans
            .get_or_prepare(
                &served.supergraph,
                query,
                operation_name,
                &self.limits,
                &self.preparer,
                client,
            )
            .instrument(span.clone())
            .await;
        // A caller that waited for another's preparing (of the same text) shared its work: a hit.
        let result = match &looked_up {
            Ok((_, true)) => Found::hit,
            Ok((_, false)) | Err(_) => Found::miss,
        };
        span.record("taproom.plan_cache.hit", result == Found::hit);
        let metrics = &self.client.metrics;
        metrics
            .plan_cache
            .get_or_create(&CacheLabels { result })
            .inc();
        if result == Found::miss {
            metrics.prepared.inc();
        }
        Ok(looked_up?.0)
    }

    /// Stages 0 to 2: the query text, the prepared operation (from the cache or made now) and
    /// the coerced variables, or why the request cannot run.
    async fn admit<'r>(
        &self,
        served: &Served,
        request: GraphqlRequest<'r>,
        client: &ClientKey,
    ) -> Result<Admitted<'r>, RequestError> {
        let query =
            self.persisted
                .resolve(request.query, request.document_id, request.extensions)?;
        let prepared = self
            .prepared(served, &query, request.operation_name, client)
            .await?;
        let variables = self.checked(served, &prepared, request)?;
        Ok(Admitted {
            query,
            prepared,
            variables,
        })
    }

    /// What the router refuses of a prepared operation here (introspection turned off, a mutation
    /// over `GET`), and its coerced variables.
    fn checked(
        &self,
        served: &Served,
        prepared: &Prepared,
        request: GraphqlRequest<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
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
        Ok(variables::coerce(
            &prepared.variables,
            request.variables,
            &served.supergraph.planner.consumer_schema.document,
        )?)
    }

    /// Runs one GraphQL request through the pipeline; `headers` are the client's (some are
    /// forwarded to subgraphs). The body is JSON text.
    pub async fn execute(
        &self,
        request: GraphqlRequest<'_>,
        headers: &HeaderMap,
    ) -> Result<Vec<u8>, RequestError> {
        let started = Instant::now();
        let served = self.served();
        let client = ClientKey::address(headers);
        let Admitted {
            prepared,
            variables,
            ..
        } = self
            .admit_counted(&served, request, &client, started)
            .await?;
        refuse_subscription(&prepared)?;
        let shaped = self.shape(&served, &prepared, &variables, headers).await;
        self.count(&prepared, shaped.errors.is_empty(), started);
        let plan = request.want_plan.then(|| match &prepared.planned {
            Some((_, plan)) => format!("{plan}"),
            None => "No subgraph fetches: the router answered this operation itself.".to_owned(),
        });
        Ok(shaped.into_body(&prepared.root_keys, plan.as_deref()))
    }

    /// Runs one GraphQL request for a client that takes incremental delivery
    /// (`multipart/mixed; deferSpec=20220824`): a query with `@defer` on is split
    /// ([`crate::plan::defer`]) and answered in parts, the first as soon as what is not deferred
    /// is complete; any other request is answered whole, as by [`Router::execute`].
    pub async fn execute_incremental(
        self: &Arc<Self>,
        request: GraphqlRequest<'_>,
        headers: &HeaderMap,
    ) -> Result<Answer, RequestError> {
        let started = Instant::now();
        let served = self.served();
        let client = ClientKey::address(headers);
        let Admitted {
            query,
            prepared,
            variables,
        } = self
            .admit_counted(&served, request, &client, started)
            .await?;
        refuse_subscription(&prepared)?;
        let split = if prepared.defers {
            // Splitting parses the operation again: a preparing thread's work too.
            let (text, name, coerced) = (
                query.to_string(),
                request.operation_name.map(str::to_owned),
                variables.clone(),
            );
            self.preparer
                .run(&client, move || {
                    crate::plan::defer::split(&text, name.as_deref(), &coerced)
                })
                .await??
        } else {
            None
        };
        let Some(split) = split else {
            return Ok(Answer::Whole(
                self.whole(&served, &prepared, &variables, headers, started)
                    .await,
            ));
        };
        let prepare = |text: &str| {
            let served = &served;
            let client = &client;
            let name = request.operation_name;
            let text = text.to_owned();
            async move {
                self.prepared(served, &text, name, client)
                    .await
                    .inspect_err(|error| {
                        tracing::error!(
                            ?error,
                            text,
                            "a query split off at @defer does not prepare"
                        );
                    })
            }
        };
        let initial = prepare(&split.initial).await?;
        let mut parts = Vec::with_capacity(split.deferred.len());
        for deferred in &split.deferred {
            parts.push(prepare(&deferred.query).await?);
        }
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let router = self.clone();
        let variables = Arc::new(variables);
        let headers = Arc::new(headers.clone());
        tokio::spawn(
            async move {
                router
                    .deliver(
                        served, prepared, split, initial, parts, variables, headers, sender,
                        started,
                    )
                    .await;
            }
            .in_current_span(),
        );
        Ok(Answer::Parts(receiver))
    }

    /// Runs the initial query and every deferred one at once, and sends the client the initial
    /// payload, then each deferred part as it completes (one inside another after it).
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        self: &Arc<Self>,
        served: Arc<Served>,
        whole: Arc<Prepared>,
        split: Split,
        initial: Arc<Prepared>,
        parts: Vec<Arc<Prepared>>,
        variables: Arc<Map<String, Value>>,
        headers: Arc<HeaderMap>,
        sender: tokio::sync::mpsc::Sender<Vec<u8>>,
        started: Instant,
    ) {
        // Dropped (the client went away), the set cancels what is still running.
        let mut running = tokio::task::JoinSet::new();
        for (index, prepared) in parts.into_iter().enumerate() {
            let (router, served, variables, headers) = (
                self.clone(),
                served.clone(),
                variables.clone(),
                headers.clone(),
            );
            running.spawn(
                async move {
                    let answer = router
                        .answer(&served, &prepared, &variables, &headers)
                        .await;
                    (index, answer)
                }
                .in_current_span(),
            );
        }
        let mut clean = true;
        let mut first = self.answer(&served, &initial, &variables, &headers).await;
        clean &= first.get("errors").is_none();
        let mut delivered = Delivered::new(first.get("data").cloned().unwrap_or(Value::Null));
        first["hasNext"] = Value::Bool(true);
        if sender.send(first.to_string().into_bytes()).await.is_err() {
            return;
        }
        let mut sent = vec![false; split.deferred.len()];
        let mut left = split.deferred.len();
        let mut waiting: Vec<(usize, Value)> = Vec::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok(done) => waiting.push(done),
                Err(error) => {
                    // `answer` catches panics; only a cancelled task gets here.
                    tracing::error!(%error, "a deferred part's task ended without an answer");
                    return;
                }
            }
            while let Some(at) = waiting
                .iter()
                .position(|(index, _)| split.deferred[*index].parent.is_none_or(|p| sent[p]))
            {
                let (index, answer) = waiting.swap_remove(at);
                clean &= answer.get("errors").is_none();
                let entries = delivered.entries(&split.deferred[index], &answer);
                sent[index] = true;
                left -= 1;
                if entries.is_empty() && left > 0 {
                    continue;
                }
                let mut part = Map::new();
                if !entries.is_empty() {
                    part.insert("incremental".to_owned(), Value::Array(entries));
                }
                part.insert("hasNext".to_owned(), Value::Bool(left > 0));
                if sender
                    .send(Value::Object(part).to_string().into_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        self.client.metrics.operation(
            whole.name.as_deref(),
            if clean {
                Outcome::ok
            } else {
                Outcome::graphql_errors
            },
            started.elapsed().as_secs_f64(),
        );
    }

    /// Runs one GraphQL request for a client that takes a stream of results (a WebSocket, Server-Sent
    /// Events, multipart HTTP): a subscription is opened to the subgraph that owns its root field
    /// ([`crate::subscription`]), and each event runs the rest of the plan (the fields other
    /// subgraphs own) and is shaped before it is sent; any other operation is answered whole.
    pub async fn execute_streaming(
        self: &Arc<Self>,
        request: GraphqlRequest<'_>,
        headers: &HeaderMap,
    ) -> Result<Answer, RequestError> {
        let started = Instant::now();
        let served = self.served();
        let Admitted {
            prepared,
            variables,
            ..
        } = self
            .admit_counted(&served, request, &ClientKey::address(headers), started)
            .await?;
        if prepared.kind != Kind::Subscription {
            return Ok(Answer::Whole(
                self.whole(&served, &prepared, &variables, headers, started)
                    .await,
            ));
        }
        let own = self
            .subscriptions_per_client
            .take(&ClientKey::holder(headers))
            .ok_or_else(|| self.subscriptions_per_client.refusal())?;
        let place = self
            .subscriptions
            .clone()
            .try_acquire_owned()
            .map_err(|_| RequestError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                errors: vec![GraphqlError::new(
                    Code::RateLimited,
                    format!(
                        "this router has its most subscriptions open ({}); try again later",
                        self.max_subscriptions
                    ),
                )
                .retry_after(1)],
            })?;
        let Some(primary) = prepared
            .planned
            .as_ref()
            .and_then(|(_, plan)| plan.node.as_ref())
            .and_then(subscription_fetch)
            .cloned()
        else {
            tracing::error!("a subscription's plan has no Subscription node");
            return Err(RequestError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalServerError,
                "internal error",
            ));
        };
        let service = primary.service_name.clone();
        let failed = |reason: &str| RequestError {
            status: StatusCode::BAD_GATEWAY,
            errors: vec![crate::execute::subgraph_failed(&service, reason)],
        };
        let url = served
            .supergraph
            .subgraph_urls
            .get(&service)
            .ok_or_else(|| failed("has no URL in the supergraph"))?;
        let body = subscribe_body(&primary, &variables);
        let upstream = Upstream::open(
            url,
            &body,
            headers,
            self.client.secret(),
            self.client.timeout(),
        )
        .await
        .map_err(|reason| {
            tracing::warn!(subgraph = %service, %reason, "cannot open a subscription");
            failed(&reason)
        })?;
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let router = self.clone();
        let headers = headers.clone();
        self.client.metrics.subscriptions_open.inc();
        tokio::spawn(
            async move {
                router
                    .relay(
                        served, prepared, primary, variables, headers, upstream, sender,
                    )
                    .await;
                drop((place, own));
                router.client.metrics.subscriptions_open.dec();
            }
            .in_current_span(),
        );
        Ok(Answer::Events(receiver))
    }

    /// Sends the client each event of `upstream` with the rest of the plan run, until the
    /// subgraph ends it, the client goes away or the supergraph changes.
    #[allow(clippy::too_many_arguments)]
    async fn relay(
        &self,
        served: Arc<Served>,
        prepared: Arc<Prepared>,
        primary: FetchNode,
        variables: Map<String, Value>,
        headers: HeaderMap,
        mut upstream: Upstream,
        sender: tokio::sync::mpsc::Sender<Streamed>,
    ) {
        let mut reloads = self.reloads.subscribe();
        let service = primary.service_name.as_str();
        loop {
            let item = tokio::select! {
                next = upstream.next() => match next {
                    Next::Event(payload) => {
                        let started = Instant::now();
                        let body = AssertUnwindSafe(self.event(&served, &prepared, &primary, &variables, &headers, payload))
                            .catch_unwind()
                            .await;
                        match body {
                            Ok((body, clean)) => {
                                self.count(&prepared, clean, started);
                                Streamed::Next(body)
                            }
                            Err(panic) => {
                                tracing::error!(panic = %crate::supergraph::panic_message(panic), "a subscription event panicked");
                                Streamed::Failed(vec![GraphqlError::new(Code::InternalServerError, "internal error")])
                            }
                        }
                    }
                    Next::Complete => break,
                    Next::Failed(reason) => {
                        tracing::warn!(subgraph = service, %reason, "a subscription ended");
                        Streamed::Failed(vec![crate::execute::subgraph_failed(service, &reason)])
                    }
                },
                _ = reloads.changed() => Streamed::Failed(vec![GraphqlError::new(
                    Code::InternalServerError,
                    "the router's supergraph changed; the subscription ended: subscribe again",
                )]),
                () = sender.closed() => break,
            };
            let last = matches!(item, Streamed::Failed(_));
            if sender.send(item).await.is_err() || last {
                break;
            }
        }
        upstream.close().await;
    }

    /// One subscription event: the rest of the plan run from `payload` (what the subgraph sent),
    /// shaped; and whether it has no errors.
    async fn event(
        &self,
        served: &Served,
        prepared: &Prepared,
        primary: &FetchNode,
        variables: &Map<String, Value>,
        headers: &HeaderMap,
        payload: Vec<u8>,
    ) -> (Vec<u8>, bool) {
        let supergraph = &served.supergraph;
        let bodies = Bodies::limited(self.max_answer_bytes);
        let Some((operation, plan)) = &prepared.planned else {
            unreachable!("a subscription is always planned");
        };
        let event = match read_answer((StatusCode::OK, payload.into()), &bodies) {
            Ok(event) => event,
            Err(reason) => {
                let error = crate::execute::subgraph_failed(&primary.service_name, &reason);
                return (crate::error::errors_body(&[error]), false);
            }
        };
        let executed = Execution::new(supergraph, &self.client, headers, variables, &bodies)
            .budgeted(self.answers_held.as_ref())
            .run_event(plan, primary, event)
            .await;
        let shaped = off_the_worker(bodies.bytes(), || {
            response::shape(supergraph, variables, executed, operation, &prepared.root)
        });
        let clean = shaped.errors.is_empty();
        (shaped.into_body(&prepared.root_keys, None), clean)
    }

    /// One query of a split operation answered as `{data, errors}`; a panic is an internal error.
    async fn answer(
        &self,
        served: &Served,
        prepared: &Prepared,
        variables: &Map<String, Value>,
        headers: &HeaderMap,
    ) -> Value {
        let shaped = AssertUnwindSafe(self.shape(served, prepared, variables, headers))
            .catch_unwind()
            .await;
        let body = match shaped {
            Ok(shaped) => shaped.into_body(&prepared.root_keys, None),
            Err(panic) => {
                tracing::error!(
                    panic = %crate::supergraph::panic_message(panic),
                    "a query split off at @defer panicked"
                );
                crate::error::errors_body(&[crate::error::GraphqlError::new(
                    Code::InternalServerError,
                    "internal error",
                )])
            }
        };
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    /// Stages 3 and 4 for an admitted operation: its plan executed and shaped, with the
    /// router's own introspection answer merged in.
    async fn shape(
        &self,
        served: &Served,
        prepared: &Prepared,
        variables: &Map<String, Value>,
        headers: &HeaderMap,
    ) -> Shaped {
        let supergraph = &served.supergraph;
        let bodies = Bodies::limited(self.max_answer_bytes);
        let mut shaped = match &prepared.planned {
            Some((operation, plan)) => {
                let span = tracing::info_span!(
                    target: TARGET,
                    "graphql.execute",
                    graphql.operation.type = prepared.kind.name(),
                    graphql.operation.name = prepared.name.as_deref(),
                );
                let executed =
                    Execution::new(supergraph, &self.client, headers, variables, &bodies)
                        .budgeted(self.answers_held.as_ref())
                        .run(plan)
                        .instrument(span)
                        .await;
                let _shaping = tracing::info_span!(target: TARGET, "graphql.shape").entered();
                off_the_worker(bodies.bytes(), || {
                    response::shape(supergraph, variables, executed, operation, &prepared.root)
                })
            }
            None => Shaped::default(),
        };
        if let Some(part) = &prepared.introspection {
            shaped.merge(
                supergraph
                    .introspection
                    .execute(part, variables, &prepared.root),
            );
        }
        shaped
    }

    /// An operation answered whole (by a streaming or incremental transport), counted.
    async fn whole(
        &self,
        served: &Served,
        prepared: &Prepared,
        variables: &Map<String, Value>,
        headers: &HeaderMap,
        started: Instant,
    ) -> Vec<u8> {
        let shaped = self.shape(served, prepared, variables, headers).await;
        self.count(prepared, shaped.errors.is_empty(), started);
        shaped.into_body(&prepared.root_keys, None)
    }

    /// Counts an operation answered (`clean`: without errors) in the metrics.
    fn count(&self, prepared: &Prepared, clean: bool, started: Instant) {
        let outcome = if clean {
            Outcome::ok
        } else {
            Outcome::graphql_errors
        };
        self.client.metrics.operation(
            prepared.name.as_deref(),
            outcome,
            started.elapsed().as_secs_f64(),
        );
    }
}

/// A subscription asked for over a transport that answers once is refused, saying which ones
/// stream.
fn refuse_subscription(prepared: &Prepared) -> Result<(), RequestError> {
    if prepared.kind == Kind::Subscription {
        return Err(RequestError::new(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            "a subscription needs a streaming transport: a WebSocket (graphql-transport-ws) at /graphql, Accept: text/event-stream, or Accept: multipart/mixed;subscriptionSpec=1.0",
        ));
    }
    Ok(())
}

/// The fetch of a subscription plan's `Subscription` node: its first step.
fn subscription_fetch(node: &PlanNode) -> Option<&FetchNode> {
    match node {
        PlanNode::Subscription(subscription) => Some(&subscription.primary),
        PlanNode::Sequence(sequence) => sequence.nodes.first().and_then(subscription_fetch),
        _ => None,
    }
}

/// The subscribe message's payload for `primary`: its document and the client variables it uses.
fn subscribe_body(primary: &FetchNode, variables: &Map<String, Value>) -> Vec<u8> {
    let used: Map<String, Value> = primary
        .variable_usages
        .iter()
        .flatten()
        .filter_map(|name| Some((name.clone(), variables.get(name)?.clone())))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "query": primary.operation.document_str,
        "variables": used,
    }))
    .expect("a request always serializes")
}
