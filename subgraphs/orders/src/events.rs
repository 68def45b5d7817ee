//! Order events for subscriptions: every committed change to an order, on every replica.
//!
//! A write announces its change in its own transaction ([`announce`]): on PostgreSQL with
//! `pg_notify` on the [`CHANNEL`] channel, which PostgreSQL delivers at commit, to every replica
//! listening (this one included), and never for a write that rolled back. Each replica's listener
//! ([`Events::listen`]) hands them to its subscribers. On SQLite (one process) the write publishes
//! the change in-process once it has committed ([`Events::committed`]).
//!
//! A subscriber that falls more than [`BUFFER`] events behind, or a listener whose connection to
//! PostgreSQL broke (notifications sent meanwhile are gone), gets [`Event::Gap`]: its stream ends
//! with an error rather than going on with changes missing.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use taproom_common::db::{Backend, Tx};
use tokio::sync::broadcast;

use crate::error::Result;

/// The PostgreSQL notification channel of order changes.
pub const CHANNEL: &str = "taproom_order_changes";

/// Events a subscriber may fall behind by before its stream ends with an error.
pub const BUFFER: usize = 1024;

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// A line was added, changed or removed.
    Lines,
    /// The order was checked out.
    Checkout,
    /// The order was cancelled.
    Cancel,
}

/// One committed change to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub order_id: i64,
    pub user_id: i64,
    pub kind: ChangeKind,
}

/// What subscribers receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Changed(Change),
    /// Changes may have been missed here (the listener's connection broke).
    Gap,
}

/// This replica's order events. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    sender: broadcast::Sender<Event>,
    backend: Backend,
}

impl Events {
    /// Events for a service on `backend`; on PostgreSQL, [`Events::listen`] must run too.
    pub fn new(backend: Backend) -> Self {
        Events {
            sender: broadcast::channel(BUFFER).0,
            backend,
        }
    }

    /// A new subscriber, which gets every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Subscribers now (for tests and logs).
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// A write that made `change` has committed: on SQLite, its subscribers hear of it now; on
    /// PostgreSQL the notification sent in the write's transaction brings it ([`Events::listen`]).
    pub fn committed(&self, change: Change) {
        if self.backend == Backend::Sqlite {
            // No subscriber is no error.
            let _ = self.sender.send(Event::Changed(change));
        }
    }

    /// Listens on [`CHANNEL`] of the PostgreSQL database at `url` for as long as the process
    /// runs, connecting again after a failure (and sending [`Event::Gap`] then). Returns once the
    /// first connection listens, so no change committed after the service is ready is missed.
    pub async fn listen(&self, url: &str) -> anyhow::Result<()> {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        let sender = self.sender.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        match serde_json::from_str::<Change>(notification.payload()) {
                            Ok(change) => {
                                let _ = sender.send(Event::Changed(change));
                            }
                            Err(error) => {
                                tracing::error!(%error, "an order notification does not parse")
                            }
                        }
                    }
                    // The connection was lost; the next call connects and listens again.
                    Ok(None) => {
                        tracing::warn!(
                            "lost the order notifications' connection; subscriptions open now end"
                        );
                        let _ = sender.send(Event::Gap);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for order notifications; trying again in 1 s");
                        let _ = sender.send(Event::Gap);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }
}

/// Announces `change` in the write's transaction `tx` (PostgreSQL: a notification delivered at
/// commit; SQLite: nothing here, see [`Events::committed`]).
pub async fn announce(tx: &mut Tx, backend: Backend, change: Change) -> Result<()> {
    if backend == Backend::Postgres {
        let payload = serde_json::to_string(&change).expect("a change always serializes");
        // `pg_notify` returns `void`, which the `Any` driver cannot carry: the statement selects a
        // number instead.
        tx.execute(
            sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS sent")
                .bind(CHANNEL)
                .bind(payload),
        )
        .await?;
    }
    Ok(())
}
