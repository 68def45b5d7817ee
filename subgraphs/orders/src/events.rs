//! Order events for subscriptions: every committed change to an order, on every replica, with the
//! order as that change left it.
//!
//! An event is the order as it was when its change committed (status, lines, quantities, prices),
//! read in the write's own transaction ([`crate::db::Snapshot`]), never as it is when the event
//! is delivered: a subscriber that is slow to receive the first of two quick changes still sees
//! each change as it was made.
//!
//! A write announces its change in its own transaction ([`announce`]): on PostgreSQL it stores
//! the snapshot in `order_events` and names that row with `pg_notify` on the [`CHANNEL`] channel,
//! which PostgreSQL delivers at commit, to every replica listening (this one included), and never
//! for a write that rolled back. Each replica's listener ([`Events::listen`]) reads the row once
//! and hands the event to its subscribers. On SQLite (one process) the write publishes the change
//! in-process once it has committed ([`Events::committed`]).
//!
//! A subscriber that falls more than [`BUFFER`] events behind, or a listener whose connection to
//! PostgreSQL broke (notifications sent meanwhile are gone), gets [`Event::Gap`]: its stream ends
//! with an error rather than going on with changes missing.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use taproom_common::{
    db::{Backend, Db, Tx},
    time,
};
use tokio::sync::broadcast;

use crate::{db::Snapshot, error::Result};

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

/// A committed change and the order as it left it.
#[derive(Debug, Clone)]
pub struct Changed {
    pub change: Change,
    pub order: Snapshot,
}

/// What subscribers receive.
#[derive(Debug, Clone)]
pub enum Event {
    Changed(Arc<Changed>),
    /// Changes may have been missed here (the listener's connection broke).
    Gap,
}

/// A notification's payload: the change, and the `order_events` row holding its snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct Notification {
    event: i64,
    #[serde(flatten)]
    change: Change,
}

/// How long `order_events` rows are kept: far longer than a listener takes to read one.
const EVENTS_KEPT: chrono::Duration = chrono::Duration::minutes(10);

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

    /// A write that made `change`, leaving the order as `order`, has committed: on SQLite, its
    /// subscribers hear of it now; on PostgreSQL the notification sent in the write's transaction
    /// brings it ([`Events::listen`]).
    pub fn committed(&self, change: Change, order: &Snapshot) {
        if self.backend == Backend::Sqlite {
            let changed = Changed {
                change,
                order: order.clone(),
            };
            // No subscriber is no error.
            let _ = self.sender.send(Event::Changed(Arc::new(changed)));
        }
    }

    /// Listens on [`CHANNEL`] of the PostgreSQL database at `url` for as long as the process
    /// runs, reading each event's snapshot from `db`, connecting again after a failure (and
    /// sending [`Event::Gap`] then). Returns once the first connection listens, so no change
    /// committed after the service is ready is missed.
    pub async fn listen(&self, url: &str, db: Db) -> anyhow::Result<()> {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        let sender = self.sender.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        let event = match serde_json::from_str::<Notification>(
                            notification.payload(),
                        ) {
                            Ok(notification) => {
                                match snapshot(&db, notification.event).await {
                                    Ok(order) => Event::Changed(Arc::new(Changed {
                                        change: notification.change,
                                        order,
                                    })),
                                    Err(error) => {
                                        tracing::error!(?error, "cannot read an order event; subscriptions open now end");
                                        Event::Gap
                                    }
                                }
                            }
                            Err(error) => {
                                tracing::error!(%error, "an order notification does not parse");
                                continue;
                            }
                        };
                        let _ = sender.send(event);
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

/// Events stored since start, for forgetting old ones now and then.
static STORED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Announces `change`, which left the order as `order` (its JSON), in the write's transaction `tx`
/// (PostgreSQL: the snapshot stored and a notification naming it delivered at commit; SQLite:
/// nothing here, see [`Events::committed`]).
pub async fn announce(tx: &mut Tx, backend: Backend, change: Change, order: &str) -> Result<()> {
    if backend == Backend::Postgres {
        let now = time::now();
        let (event,): (i64,) = tx
            .fetch_one(
                sqlx::query(
                    "INSERT INTO order_events (snapshot, time_created) VALUES ($1, $2) RETURNING id",
                )
                .bind(order)
                .bind(time::to_db(now)),
            )
            .await?;
        let payload = serde_json::to_string(&Notification { event, change })
            .expect("a notification always serializes");
        // `pg_notify` returns `void`, which the `Any` driver cannot carry: the statement selects a
        // number instead.
        tx.execute(
            sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS sent")
                .bind(CHANNEL)
                .bind(payload),
        )
        .await?;
        if STORED
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(100)
        {
            tx.execute(
                sqlx::query("DELETE FROM order_events WHERE time_created < $1")
                    .bind(time::to_db(now - EVENTS_KEPT)),
            )
            .await?;
        }
    }
    Ok(())
}

/// The order as the stored event `id` left it.
async fn snapshot(db: &Db, id: i64) -> anyhow::Result<Snapshot> {
    let (json,): (String,) = db
        .fetch_one(sqlx::query("SELECT snapshot FROM order_events WHERE id = $1").bind(id))
        .await?;
    Ok(serde_json::from_str(&json)?)
}
