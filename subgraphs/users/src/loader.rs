//! DataLoaders over `db.rs` batch lookups: the router asks for users in batches, and a batch costs
//! one SQL statement.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use taproom_common::db::Db;

use crate::{db, db::UserRow, error::Error};

/// Loads accounts by id.
pub struct UserLoader {
    pub db: Db,
}

impl Loader<i64> for UserLoader {
    type Value = UserRow;
    type Error = Arc<Error>;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, UserRow>, Self::Error> {
        let rows = db::users_by_ids(&self.db, ids).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}
