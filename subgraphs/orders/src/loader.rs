//! DataLoaders over `db.rs` batch lookups: orders by id, orders by user, lines by order. Each batch
//! costs one SQL statement however many orders a response holds.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use taproom_common::db::Db;

use crate::{
    db::{self, ItemRow, OrderRow},
    error::Error,
};

/// The loaders' error: the database failure, shared by every waiting key.
pub type LoadError = Arc<String>;

fn shared(error: Error) -> LoadError {
    Arc::new(format!("{error:?}"))
}

/// Loads orders by id.
pub struct OrderLoader {
    pub db: Db,
}

impl Loader<i64> for OrderLoader {
    type Value = OrderRow;
    type Error = LoadError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, OrderRow>, LoadError> {
        let rows = db::orders_by_ids(&self.db, ids).await.map_err(shared)?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

/// Loads each user's orders, newest first.
pub struct OrdersByUserLoader {
    pub db: Db,
}

impl Loader<i64> for OrdersByUserLoader {
    type Value = Vec<OrderRow>;
    type Error = LoadError;

    async fn load(&self, user_ids: &[i64]) -> Result<HashMap<i64, Vec<OrderRow>>, LoadError> {
        let rows = db::orders_by_users(&self.db, user_ids)
            .await
            .map_err(shared)?;
        let mut by_user: HashMap<i64, Vec<OrderRow>> = HashMap::new();
        for row in rows {
            by_user.entry(row.user_id).or_default().push(row);
        }
        Ok(by_user)
    }
}

/// Loads each order's lines.
pub struct ItemsLoader {
    pub db: Db,
}

impl Loader<i64> for ItemsLoader {
    type Value = Vec<ItemRow>;
    type Error = LoadError;

    async fn load(&self, order_ids: &[i64]) -> Result<HashMap<i64, Vec<ItemRow>>, LoadError> {
        let rows = db::items_by_orders(&self.db, order_ids)
            .await
            .map_err(shared)?;
        let mut by_order: HashMap<i64, Vec<ItemRow>> = HashMap::new();
        for row in rows {
            by_order.entry(row.order_id).or_default().push(row);
        }
        Ok(by_order)
    }
}

/// Logs a loader failure and returns the generic error clients see.
pub fn load_failed(error: LoadError) -> async_graphql::Error {
    tracing::error!(%error, "loading orders");
    taproom_common::error::internal_error()
}
