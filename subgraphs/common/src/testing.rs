//! Test helpers shared by the services (feature `testing`): a fresh database per test on SQLite or
//! PostgreSQL, and a GraphQL client that drives an in-process `Router`.
//!
//! PostgreSQL tests need `TAPROOM_TEST_POSTGRES_URL` (a server where the user may create databases);
//! the README's test command starts a throwaway cluster and sets it. Without it they fail, loudly.

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{
    auth::{Authenticator, BoxFuture, Caller, Freshness, Unavailable},
    db::Db,
};

/// The variable naming the PostgreSQL server tests create their databases on.
pub const POSTGRES_ENV: &str = "TAPROOM_TEST_POSTGRES_URL";

/// A fresh, empty database for one test.
pub struct TestDb {
    /// The `DATABASE_URL` of the database.
    pub url: String,
    /// Keeps a SQLite file's folder alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file in a temporary folder.
    pub async fn sqlite() -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("a temporary folder can be created");
        let url = format!("sqlite:{}", dir.path().join("test.db").display());
        TestDb {
            url,
            _dir: Some(dir),
        }
    }

    /// A new database on the PostgreSQL server named by [`POSTGRES_ENV`].
    pub async fn postgres() -> Self {
        init_logs();
        let server = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_ENV} is not set: run the README's test command (scripts/test.sh), which starts a throwaway PostgreSQL"
            )
        });
        let name = format!("taproom_test_{}", uuid_like());
        let admin = Db::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot reach {POSTGRES_ENV}: {e}"));
        admin
            .execute(sqlx::query(&format!("CREATE DATABASE {name}")))
            .await
            .expect("the test user may create databases");
        admin.close().await;
        let (base, _) = server.rsplit_once('/').expect("a postgres URL has a path");
        TestDb {
            url: format!("{base}/{name}"),
            _dir: None,
        }
    }

    /// Another fresh database on the same backend, for a second service in the same test.
    pub async fn sibling(&self) -> TestDb {
        if self._dir.is_some() {
            TestDb::sqlite().await
        } else {
            TestDb::postgres().await
        }
    }

    /// Connects to the database (not yet migrated).
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url)
            .await
            .expect("the test database opens")
    }
}

/// Migrates `db` only up to `version` (inclusive), from a service's `migrations` folder (the one
/// holding `sqlite/` and `postgres/`): a database as the earlier schema made it, for upgrade tests.
pub async fn migrate_until(db: &Db, migrations: &std::path::Path, version: i64) {
    let backend = match db.backend() {
        crate::db::Backend::Sqlite => "sqlite",
        crate::db::Backend::Postgres => "postgres",
    };
    let earlier = tempfile::tempdir().expect("a temporary folder can be created");
    let mut copied = 0;
    for entry in std::fs::read_dir(migrations.join(backend)).expect("the migrations folder exists")
    {
        let path = entry.expect("a folder entry").path();
        let name = path
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let file_version: i64 = name
            .split('_')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("migration files start with their version");
        if file_version <= version {
            std::fs::copy(&path, earlier.path().join(&name)).expect("copies a migration");
            copied += 1;
        }
    }
    assert!(copied > 0, "no migration up to version {version}");
    let migrator = sqlx::migrate::Migrator::new(earlier.path())
        .await
        .expect("the earlier migrations read");
    db.run_migrator(&migrator)
        .await
        .expect("the earlier migrations run");
}

/// Sends the services' logs to the test output (shown for failing tests), filtered by `RUST_LOG`
/// (default: errors and warnings).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// Runs each named `async fn(TestDb)` twice: as `name::sqlite` and `name::postgres`.
///
/// Tests run on a current-thread runtime: a DataLoader's batch window then closes only once every
/// resolver of a response has queued its key, so statement counts do not depend on machine load.
#[macro_export]
macro_rules! test_on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::testing::TestDb::sqlite().await).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::testing::TestDb::postgres().await).await
                }
            }
        )*
    };
}

/// A raw HTTP answer: status, content type and body parsed as JSON (or `Value::String` if not JSON).
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

/// Sends `request` to an in-process app.
pub async fn send(app: &Router, request: Request<Body>) -> HttpAnswer {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    HttpAnswer {
        status,
        content_type,
        headers,
        body,
    }
}

/// POSTs a GraphQL operation with optional bearer token; returns the response body.
pub async fn graphql(app: &Router, query: &str, variables: Value, token: Option<&str>) -> Value {
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = json!({ "query": query, "variables": variables }).to_string();
    send(
        app,
        request.body(Body::from(body)).expect("a valid request"),
    )
    .await
    .body
}

/// The `extensions.code` of the first error, or a panic showing the response.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {response:#}"))
}

/// Panics (showing the response) unless it has no errors; returns `data`.
pub fn data(response: &Value) -> &Value {
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {response:#}"
    );
    &response["data"]
}

/// An authenticator over a fixed token table, for testing a subgraph's rules in isolation (the real
/// one, `RemoteAuthenticator`, is tested against the users subgraph). Tokens: `admin` (user 1, admin),
/// `customer` (user 2) and `other` (user 3); any other token is invalid.
pub struct StaticAuthenticator;

impl Authenticator for StaticAuthenticator {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        _freshness: Freshness,
    ) -> BoxFuture<'a, Result<Option<Caller>, Unavailable>> {
        let caller = match token {
            "admin" => Some(Caller {
                user_id: 1,
                is_admin: true,
            }),
            "customer" => Some(Caller {
                user_id: 2,
                is_admin: false,
            }),
            "other" => Some(Caller {
                user_id: 3,
                is_admin: false,
            }),
            _ => None,
        };
        Box::pin(async move { Ok(caller) })
    }
}
