//! One database handle for SQLite and PostgreSQL, chosen by `DATABASE_URL` at run time.
//!
//! Services write their SQL once, with `$1`-style placeholders that both backends accept, and run it
//! through sqlx's `Any` driver. Where the dialects differ (column types, identity columns), each
//! service keeps two migration folders, `migrations/sqlite` and `migrations/postgres`, and [`Db::migrate`]
//! picks the right one. Values that `Any` cannot carry (timestamps, decimals) are stored in exact,
//! portable forms: see [`crate::time`] and the services' money columns.
//!
//! Every statement goes through [`Db`] or [`Tx`], which count them: tests assert that one batch of
//! entities costs one statement by reading [`Db::statements`].

use std::{
    path::Path,
    str::FromStr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use sqlx::{
    any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow},
    migrate::Migrator,
    query::Query,
    Any, AnyPool, FromRow,
};

/// A statement ready to run: `sqlx::query(..)` with its bound values.
pub type Statement<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why the database could not be opened or migrated. Messages name the setting and never the password.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with sqlite: or postgres:// (got {0:?})")]
    UnsupportedUrl(String),
    #[error("DATABASE_URL: cannot create the folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("DATABASE_URL: cannot connect to the {backend:?} database: {source}")]
    Connect {
        backend: Backend,
        source: sqlx::Error,
    },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database is not migrated ({pending} migrations pending): run the service's `migrate` subcommand first")]
    NotMigrated { pending: usize },
    #[error("cannot read the database's migration state: {0}")]
    MigrationState(sqlx::Error),
}

/// A service's two migration sets, one per dialect (`sqlx::migrate!("./migrations/sqlite")`, ...).
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally (use with
/// `ESCAPE '\'`). Fold the case of both sides first for a case-insensitive match.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A pooled connection to the service's database plus its statement counter. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Statements sent since start, shared by every clone and transaction of this handle.
    statements: Arc<AtomicU64>,
}

impl Db {
    /// Opens `url`. A SQLite file and its folder are created if missing and the file is switched to
    /// WAL mode so readers do not wait for writers.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            (Backend::Sqlite, sqlite_url(rest)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(DbError::UnsupportedUrl(redact(url)));
        };
        let connect = |source| DbError::Connect { backend, source };
        let options = AnyConnectOptions::from_str(&url).map_err(connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect)?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(connect)?;
        }
        Ok(Db {
            pool,
            backend,
            statements: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Creates or upgrades the schema. Safe to run any number of times; migrations only add.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &migrations.sqlite,
            Backend::Postgres => &migrations.postgres,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Runs a migrator read at run time (tests use it to build a database of an earlier schema).
    #[cfg(feature = "testing")]
    pub(crate) async fn run_migrator(&self, migrator: &Migrator) -> Result<(), DbError> {
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Fails unless every migration in `migrations` has been applied, so `serve` never runs on a
    /// schema it does not know.
    pub async fn check_migrated(&self, migrations: &Migrations) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &migrations.sqlite,
            Backend::Postgres => &migrations.postgres,
        };
        let expected: Vec<i64> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .collect();
        let table_exists: Option<(i64,)> = sqlx::query_as(match self.backend {
            Backend::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Backend::Postgres => "SELECT CAST(1 AS BIGINT) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
        })
        .fetch_optional(&self.pool)
        .await
        .map_err(DbError::MigrationState)?;
        let applied: Vec<(i64,)> = if table_exists.is_some() {
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
                .map_err(DbError::MigrationState)?
        } else {
            Vec::new()
        };
        let pending = expected
            .iter()
            .filter(|v| !applied.iter().any(|(a,)| a == *v))
            .count();
        if pending == 0 {
            Ok(())
        } else {
            Err(DbError::NotMigrated { pending })
        }
    }

    /// The pool's connections: (open, idle).
    pub fn pool_usage(&self) -> (u32, u32) {
        (self.pool.size(), self.pool.num_idle() as u32)
    }

    /// The backend this handle talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many statements this handle (and its transactions) has sent since it was opened.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Whether the database answers; used by `GET /ready`.
    /// An answer later than a second counts as none, so a probe never hangs on a database that is
    /// cut off.
    pub async fn ping(&self) -> bool {
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(1), ping).await,
            Ok(Ok(_))
        )
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        // SQLite's default deferred transaction takes the write lock only at its first write, and a
        // reader that then wants to write fails with SQLITE_BUSY instead of waiting. Taking the lock up
        // front makes concurrent writers queue on the busy timeout.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            tx,
            backend: self.backend,
            statements: self.statements.clone(),
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An open transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, Any>,
    backend: Backend,
    statements: Arc<AtomicU64>,
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Db {
    /// Runs a statement that returns no rows.
    pub async fn execute(&self, query: Statement<'_>) -> Result<AnyQueryResult, sqlx::Error> {
        run::execute((&self.statements, self.backend), &self.pool, query).await
    }

    /// Runs a query and maps every row.
    pub async fn fetch_all<T: Row>(&self, query: Statement<'_>) -> Result<Vec<T>, sqlx::Error> {
        run::fetch_all((&self.statements, self.backend), &self.pool, query).await
    }

    /// Runs a query that returns at most one row.
    pub async fn fetch_optional<T: Row>(
        &self,
        query: Statement<'_>,
    ) -> Result<Option<T>, sqlx::Error> {
        run::fetch_optional((&self.statements, self.backend), &self.pool, query).await
    }

    /// Runs a query that returns exactly one row.
    pub async fn fetch_one<T: Row>(&self, query: Statement<'_>) -> Result<T, sqlx::Error> {
        run::fetch_one((&self.statements, self.backend), &self.pool, query).await
    }
}

impl Tx {
    /// Runs a statement that returns no rows.
    pub async fn execute(&mut self, query: Statement<'_>) -> Result<AnyQueryResult, sqlx::Error> {
        run::execute((&self.statements, self.backend), &mut *self.tx, query).await
    }

    /// Runs a query and maps every row.
    pub async fn fetch_all<T: Row>(&mut self, query: Statement<'_>) -> Result<Vec<T>, sqlx::Error> {
        run::fetch_all((&self.statements, self.backend), &mut *self.tx, query).await
    }

    /// Runs a query that returns at most one row.
    pub async fn fetch_optional<T: Row>(
        &mut self,
        query: Statement<'_>,
    ) -> Result<Option<T>, sqlx::Error> {
        run::fetch_optional((&self.statements, self.backend), &mut *self.tx, query).await
    }

    /// Runs a query that returns exactly one row.
    pub async fn fetch_one<T: Row>(&mut self, query: Statement<'_>) -> Result<T, sqlx::Error> {
        run::fetch_one((&self.statements, self.backend), &mut *self.tx, query).await
    }
}

/// A type a query's rows map to (`#[derive(sqlx::FromRow)]`).
pub trait Row: for<'r> FromRow<'r, AnyRow> + Send + Unpin {}
impl<T: for<'r> FromRow<'r, AnyRow> + Send + Unpin> Row for T {}

/// The one place statements are run and counted, for the pool and for transactions alike.
mod run {
    use super::*;
    use sqlx::Executor;
    use tracing::Instrument;

    pub async fn execute<'c, E>(
        (count, backend): (&AtomicU64, Backend),
        executor: E,
        query: Statement<'_>,
    ) -> Result<AnyQueryResult, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        count.fetch_add(1, Ordering::Relaxed);
        let (timer, span) = Timer::start(backend, &query);
        let done = query.execute(executor).instrument(span).await;
        timer.stop();
        done
    }

    pub async fn fetch_all<'c, E, T: Row>(
        (count, backend): (&AtomicU64, Backend),
        executor: E,
        query: Statement<'_>,
    ) -> Result<Vec<T>, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        count.fetch_add(1, Ordering::Relaxed);
        let (timer, span) = Timer::start(backend, &query);
        let rows = query.fetch_all(executor).instrument(span).await;
        timer.stop();
        rows?.iter().map(T::from_row).collect()
    }

    pub async fn fetch_optional<'c, E, T: Row>(
        (count, backend): (&AtomicU64, Backend),
        executor: E,
        query: Statement<'_>,
    ) -> Result<Option<T>, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        count.fetch_add(1, Ordering::Relaxed);
        let (timer, span) = Timer::start(backend, &query);
        let row = query.fetch_optional(executor).instrument(span).await;
        timer.stop();
        row?.as_ref().map(T::from_row).transpose()
    }

    pub async fn fetch_one<'c, E, T: Row>(
        (count, backend): (&AtomicU64, Backend),
        executor: E,
        query: Statement<'_>,
    ) -> Result<T, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        count.fetch_add(1, Ordering::Relaxed);
        let (timer, span) = Timer::start(backend, &query);
        let row = query.fetch_one(executor).instrument(span).await;
        timer.stop();
        T::from_row(&row?)
    }

    /// Times one statement for `db_client_operation_duration_seconds`, by its kind.
    struct Timer {
        kind: crate::metrics::StatementKind,
        started: std::time::Instant,
    }

    impl Timer {
        /// The timer and the span of `query` (recorded only for traces): its kind and its text,
        /// which holds placeholders, never the bound values.
        fn start(backend: Backend, query: &Statement<'_>) -> (Self, tracing::Span) {
            let sql = sqlx::Execute::sql(query);
            let kind = crate::metrics::StatementKind::of(sql);
            let span = tracing::info_span!(
                target: crate::telemetry::TARGET,
                "db",
                otel.name = kind.name(),
                otel.kind = "client",
                db.system.name = match backend {
                    Backend::Sqlite => "sqlite",
                    Backend::Postgres => "postgresql",
                },
                db.operation.name = kind.name(),
                db.query.text = sql,
            );
            let timer = Timer {
                kind,
                started: std::time::Instant::now(),
            };
            (timer, span)
        }

        fn stop(self) {
            crate::metrics::metrics().statement(self.kind, self.started.elapsed());
        }
    }
}

/// Whether `error` is a unique-constraint violation on a constraint or column whose name contains
/// `name`. PostgreSQL reports the constraint's name, SQLite the column (`users.username_key`), so
/// migrations name both after the column.
pub fn is_unique_violation(error: &sqlx::Error, name: &str) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.is_unique_violation()
        && (db.constraint().is_some_and(|c| c.contains(name)) || db.message().contains(name))
}

/// `$start, $start+1, ...`: `count` numbered placeholders for an `IN (...)` list. sqlx's
/// `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL rejects; numbered ones work on both.
pub fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sqlite:path?params` with `mode=rwc` unless a mode is given, after creating the file's folder.
fn sqlite_url(rest: &str) -> Result<String, DbError> {
    let rest = rest.trim_start_matches("//");
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
    }
    let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{}", params.join("&")))
}

/// The URL with any password replaced, for error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders() {
        assert_eq!(placeholders(1, 3), "$1, $2, $3");
        assert_eq!(placeholders(4, 1), "$4");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/users"),
            "postgres://app:***@db:5432/users"
        );
        assert_eq!(redact("sqlite:data/users.db"), "sqlite:data/users.db");
    }

    #[test]
    fn sqlite_urls_create_missing_files_by_default() {
        let dir = std::env::temp_dir().join(format!("taproom-db-test-{}", std::process::id()));
        let path = dir.join("x.db");
        let url = sqlite_url(path.to_str().expect("utf-8 temp path")).expect("folder is created");
        assert!(url.ends_with("x.db?mode=rwc"), "{url}");
        assert!(dir.is_dir());
        assert_eq!(
            sqlite_url("data/a.db?mode=ro").expect("valid"),
            "sqlite://data/a.db?mode=ro"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
