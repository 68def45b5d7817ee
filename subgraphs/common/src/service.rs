//! The lifecycle every subgraph binary shares: migrate, open a migrated database, listen, serve.

use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use axum::Router;
use taproom_http::lifecycle::{self, ShutdownArgs};
use tokio::net::TcpListener;

use crate::db::{Db, DbError, Migrations};

/// `migrate`: creates or upgrades `service`'s database.
pub async fn migrate(
    database_url: &str,
    migrations: &Migrations,
    service: &str,
) -> anyhow::Result<()> {
    let db = Db::connect(database_url).await?;
    db.migrate(migrations).await?;
    tracing::info!(service, "database migrated");
    db.close().await;
    Ok(())
}

/// Opens a database whose migrations have all been applied (or says to run `migrate`).
pub async fn open_migrated(database_url: &str, migrations: &Migrations) -> Result<Db, DbError> {
    let db = Db::connect(database_url).await?;
    db.check_migrated(migrations).await?;
    Ok(db)
}

/// Listens on `LISTEN`, or a one-line error naming the setting.
pub async fn listen(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("LISTEN: cannot listen on {address}"))
}

/// Serves `app` on `listener` until `signal` completes, drains as `settings` say
/// ([`taproom_http::lifecycle`]), then closes `db`.
pub async fn serve(
    service: &str,
    db: Db,
    listener: TcpListener,
    app: Router,
    settings: &ShutdownArgs,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(service, address = %listener.local_addr()?, "subgraph listening");
    lifecycle::serve(listener, app, settings, signal).await?;
    // Closing waits for every connection in use to come back; one held by a request cut at the
    // drain deadline (on a database that stopped answering) must not keep the process alive.
    if tokio::time::timeout(std::time::Duration::from_secs(2), db.close())
        .await
        .is_err()
    {
        tracing::warn!(
            service,
            "database connections still in use after the drain; exiting anyway"
        );
    }
    tracing::info!(service, "stopped");
    Ok(())
}
