//! The router's metrics, served on `/metrics` in the Prometheus text format. Names follow
//! OpenTelemetry's semantic conventions where one exists (`http.server.request.duration` becomes
//! `http_server_request_duration_seconds`); labels are bounded (no query text, no user ids, at most
//! [`MAX_OPERATION_NAMES`] operation names).

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use taproom_telemetry::metrics::{
    duration_histogram, BoundedValues, Counter, Family, Gauge, Histogram, Registry,
};

/// How many distinct operation names get a label of their own; later ones are `other`.
pub const MAX_OPERATION_NAMES: usize = 200;

/// How a client operation ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// Answered without errors.
    ok,
    /// Answered, with errors in the response (a subgraph failed, a field was refused).
    graphql_errors,
    /// Refused before running (a persisted query miss, a parse or validation failure, a limit).
    request_error,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The operation's name (`anonymous` without one, `other` past the bound).
    pub graphql_operation_name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubgraphLabels {
    pub subgraph: String,
}

/// Why a subgraph request failed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Failure {
    /// No answer: refused, reset, timed out.
    transport,
    /// An answer with an HTTP status other than 2xx.
    http_status,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubgraphErrorLabels {
    pub subgraph: String,
    pub reason: Failure,
}

/// Whether a lookup found what it looked for.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Found {
    hit,
    miss,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: Found,
}

/// Whether a supergraph reload was put in service.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Reload {
    success,
    failure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: Reload,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SupergraphLabels {
    /// The SHA-256 of the supergraph SDL in service.
    pub sha256: String,
}

/// What became of a failed idempotent fetch that could be retried ([`crate::retry`]).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Retry {
    /// Sent once more.
    retried,
    /// Not sent again: the retry budget was spent.
    budget_exhausted,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub subgraph: String,
    pub result: Retry,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of the router.
pub struct RouterMetrics {
    registry: Registry,
    /// `http_server_request_duration_seconds{graphql_operation_name, outcome}`.
    pub operations: Histograms<OperationLabels>,
    /// `http_server_active_requests`: client HTTP requests being answered.
    pub active_requests: Gauge<i64, AtomicI64>,
    /// `http_client_request_duration_seconds{subgraph}`.
    pub subgraph_duration: Histograms<SubgraphLabels>,
    /// `taproom_router_subgraph_errors_total{subgraph, reason}`.
    pub subgraph_errors: Family<SubgraphErrorLabels, Counter<u64, AtomicU64>>,
    /// `taproom_router_subgraph_requests_total{subgraph}`.
    pub subgraph_requests: Family<SubgraphLabels, Counter<u64, AtomicU64>>,
    /// `taproom_router_subgraph_retries_total{subgraph, result}`.
    pub retries: Family<RetryLabels, Counter<u64, AtomicU64>>,
    /// `taproom_router_subgraph_requests_deduplicated_total{subgraph}`.
    pub deduplicated: Family<SubgraphLabels, Counter<u64, AtomicU64>>,
    /// `taproom_router_plan_cache_requests_total{result}`.
    pub plan_cache: Family<CacheLabels, Counter<u64, AtomicU64>>,
    /// `taproom_router_operations_prepared_total`: plan cache misses, for every supergraph.
    pub prepared: Counter<u64, AtomicU64>,
    /// `taproom_router_supergraph_reloads_total{result}`.
    pub reloads: Family<ReloadLabels, Counter<u64, AtomicU64>>,
    /// `taproom_router_supergraph_info{sha256}`: 1 for the supergraph in service.
    pub supergraph: Family<SupergraphLabels, Gauge<i64, AtomicI64>>,
    /// `taproom_router_subscriptions_open`: subscriptions open now, over every transport.
    pub subscriptions_open: Gauge<i64, AtomicI64>,
    /// `taproom_router_websockets_open`: client WebSockets open now, idle or not.
    pub websockets_open: Gauge<i64, AtomicI64>,
    operation_names: BoundedValues,
    /// Samples for the dashboard ([`crate::dashboard`]).
    pub history: crate::dashboard::History,
}

impl Default for RouterMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        taproom_telemetry::traces::register(&mut registry);
        let operations: Histograms<OperationLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of client GraphQL operations, by operation name and outcome.",
            operations.clone(),
        );
        let active_requests = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_server_active_requests",
            "Client HTTP requests being answered now.",
            active_requests.clone(),
        );
        let subgraph_duration: Histograms<SubgraphLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "http_client_request_duration_seconds",
            "Duration of requests to each subgraph, until the whole answer is read.",
            subgraph_duration.clone(),
        );
        let subgraph_errors = Family::default();
        registry.register(
            "taproom_router_subgraph_errors",
            "Subgraph requests that failed, by subgraph and reason (transport: no answer; http_status: not 2xx).",
            subgraph_errors.clone(),
        );
        let subgraph_requests = Family::default();
        registry.register(
            "taproom_router_subgraph_requests",
            "Requests sent to each subgraph.",
            subgraph_requests.clone(),
        );
        let retries = Family::default();
        registry.register(
            "taproom_router_subgraph_retries",
            "Idempotent subgraph fetches (queries, _entities) that failed at the connection level, by subgraph and result: sent once more (retried) or not, the retry budget being spent (budget_exhausted).",
            retries.clone(),
        );
        let deduplicated = Family::default();
        registry.register(
            "taproom_router_subgraph_requests_deduplicated",
            "Subgraph requests not sent because an identical one was in flight.",
            deduplicated.clone(),
        );
        let plan_cache = Family::default();
        registry.register(
            "taproom_router_plan_cache_requests",
            "Plan cache lookups, by result (hit or miss).",
            plan_cache.clone(),
        );
        let prepared = Counter::default();
        registry.register(
            "taproom_router_operations_prepared",
            "Operations parsed, validated and planned (plan cache misses).",
            prepared.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "taproom_router_supergraph_reloads",
            "Supergraphs composed from changed subgraph schemas: put in service (success) or refused, the old one kept (failure).",
            reloads.clone(),
        );
        let supergraph = Family::default();
        registry.register(
            "taproom_router_supergraph_info",
            "The supergraph in service: 1 for its SHA-256.",
            supergraph.clone(),
        );
        let subscriptions_open = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "taproom_router_subscriptions_open",
            "Subscriptions open now, over every transport.",
            subscriptions_open.clone(),
        );
        let websockets_open = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "taproom_router_websockets_open",
            "Client WebSockets open now, idle or not.",
            websockets_open.clone(),
        );
        RouterMetrics {
            registry,
            operations,
            active_requests,
            subgraph_duration,
            subgraph_errors,
            subgraph_requests,
            retries,
            deduplicated,
            plan_cache,
            prepared,
            reloads,
            supergraph,
            subscriptions_open,
            websockets_open,
            operation_names: BoundedValues::new(MAX_OPERATION_NAMES),
            history: crate::dashboard::History::default(),
        }
    }
}

impl RouterMetrics {
    /// Records one client operation.
    pub fn operation(&self, name: Option<&str>, outcome: Outcome, seconds: f64) {
        let name = match name {
            Some(name) => self.operation_names.label(name),
            None => "anonymous".to_owned(),
        };
        self.operations
            .get_or_create(&OperationLabels {
                graphql_operation_name: name,
                outcome,
            })
            .observe(seconds);
    }

    /// Marks `sha256` as the supergraph in service (and no other).
    pub fn supergraph_in_service(&self, sha256: &str) {
        self.supergraph.clear();
        self.supergraph
            .get_or_create(&SupergraphLabels {
                sha256: sha256.to_owned(),
            })
            .set(1);
    }

    /// The metrics in the text format, for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
