//! A subgraph's metrics, served on `/metrics` in the Prometheus text format: its requests, its SQL
//! statements by kind (never their text or values), its connection pool, and the token cache of
//! the subgraphs that ask the users subgraph who a caller is. One set per process.

use std::{
    sync::{
        atomic::{AtomicI64, AtomicU64},
        OnceLock,
    },
    time::Duration,
};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use taproom_telemetry::metrics::{duration_histogram, Counter, Family, Gauge, Histogram, Registry};

/// What a statement does, from its first word.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum StatementKind {
    select,
    insert,
    update,
    delete,
    other,
}

impl StatementKind {
    /// Its name as SQL writes it, for spans.
    pub fn name(self) -> &'static str {
        match self {
            StatementKind::select => "SELECT",
            StatementKind::insert => "INSERT",
            StatementKind::update => "UPDATE",
            StatementKind::delete => "DELETE",
            StatementKind::other => "OTHER",
        }
    }

    /// The kind of `sql`.
    pub fn of(sql: &str) -> Self {
        let first = sql
            .trim_start()
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        match first.to_ascii_uppercase().as_str() {
            "SELECT" | "WITH" => StatementKind::select,
            "INSERT" => StatementKind::insert,
            "UPDATE" => StatementKind::update,
            "DELETE" => StatementKind::delete,
            _ => StatementKind::other,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatementLabels {
    pub db_operation_name: StatementKind,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `/graphql`, `/health` or `/metrics`.
    pub http_route: String,
}

/// Whether a connection of the pool is in use.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ConnectionState {
    idle,
    used,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: ConnectionState,
}

/// Whether a token was known to the cache.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheResult {
    hit,
    miss,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: CacheResult,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of a subgraph process.
pub struct SubgraphMetrics {
    registry: Registry,
    /// `http_server_request_duration_seconds{http_route}`.
    pub requests: Histograms<RouteLabels>,
    /// `db_client_operation_duration_seconds{db_operation_name}`.
    pub statements: Histograms<StatementLabels>,
    /// `db_client_connection_count{state}`, read from the pool at each scrape.
    pub connections: Family<PoolLabels, Gauge<i64, AtomicI64>>,
    /// `taproom_auth_cache_requests_total{result}`.
    pub auth_cache: Family<CacheLabels, Counter<u64, AtomicU64>>,
}

impl SubgraphMetrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        taproom_telemetry::traces::register(&mut registry);
        let requests: Histograms<RouteLabels> = Family::new_with_constructor(duration_histogram);
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests to this subgraph, by route.",
            requests.clone(),
        );
        let statements: Histograms<StatementLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "db_client_operation_duration_seconds",
            "Duration of SQL statements, by kind (select, insert, update, delete, other).",
            statements.clone(),
        );
        let connections = Family::default();
        registry.register(
            "db_client_connection_count",
            "Database connections of the pool, by state (idle, used).",
            connections.clone(),
        );
        let auth_cache = Family::default();
        registry.register(
            "taproom_auth_cache_requests",
            "Bearer tokens looked up in the cache of the users subgraph's answers, by result (hit, miss).",
            auth_cache.clone(),
        );
        SubgraphMetrics {
            registry,
            requests,
            statements,
            connections,
            auth_cache,
        }
    }

    /// Records one SQL statement.
    pub fn statement(&self, kind: StatementKind, took: Duration) {
        self.statements
            .get_or_create(&StatementLabels {
                db_operation_name: kind,
            })
            .observe(took.as_secs_f64());
    }

    /// Records one token cache lookup.
    pub fn auth_cache(&self, result: CacheResult) {
        self.auth_cache.get_or_create(&CacheLabels { result }).inc();
    }

    /// The registry, for `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// This process's metrics.
pub fn metrics() -> &'static SubgraphMetrics {
    static METRICS: OnceLock<SubgraphMetrics> = OnceLock::new();
    METRICS.get_or_init(SubgraphMetrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_known_by_their_first_word() {
        assert_eq!(StatementKind::of("  select 1"), StatementKind::select);
        assert_eq!(
            StatementKind::of("INSERT INTO orders (x) VALUES ($1)"),
            StatementKind::insert
        );
        assert_eq!(
            StatementKind::of("UPDATE t SET x = 1"),
            StatementKind::update
        );
        assert_eq!(StatementKind::of("DELETE FROM t"), StatementKind::delete);
        assert_eq!(StatementKind::of("BEGIN IMMEDIATE"), StatementKind::other);
    }
}
