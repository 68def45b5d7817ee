//! DataLoaders over `db.rs` batch lookups, one per key of the `Beer` entity: a batch of references
//! by id costs one statement, a batch by sku another.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use taproom_common::db::Db;

use crate::db::{self, BeerRow};

/// The loader's error: the database failure, shared by every waiting key.
pub type LoadError = Arc<sqlx::Error>;

fn shared(error: crate::error::Error) -> LoadError {
    match error {
        crate::error::Error::Database(error) => Arc::new(error),
        other => Arc::new(sqlx::Error::Protocol(format!("{other:?}"))),
    }
}

/// Loads beers by id.
pub struct BeerByIdLoader {
    pub db: Db,
}

impl Loader<i64> for BeerByIdLoader {
    type Value = BeerRow;
    type Error = LoadError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, BeerRow>, LoadError> {
        let rows = db::beers_by_ids(&self.db, ids).await.map_err(shared)?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

/// Loads beers by sku.
pub struct BeerBySkuLoader {
    pub db: Db,
}

impl Loader<String> for BeerBySkuLoader {
    type Value = BeerRow;
    type Error = LoadError;

    async fn load(&self, skus: &[String]) -> Result<HashMap<String, BeerRow>, LoadError> {
        let rows = db::beers_by_skus(&self.db, skus).await.map_err(shared)?;
        Ok(rows.into_iter().map(|row| (row.sku.clone(), row)).collect())
    }
}
