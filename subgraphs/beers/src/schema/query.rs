//! Read operations of the catalog, and the `Beer` entity resolvers the router calls.

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use taproom_common::{error::internal_error, paging};

use crate::{
    db,
    loader::{BeerByIdLoader, BeerBySkuLoader},
    schema::{Beer, BeerConnection},
    validate, AppState,
};

/// The beers subgraph's root query type.
pub struct Query;

fn load_failed(error: std::sync::Arc<sqlx::Error>) -> async_graphql::Error {
    tracing::error!(%error, "loading beers");
    internal_error()
}

/// A beer by sku, through the batching loader.
pub(crate) async fn beer_by_sku(ctx: &Context<'_>, sku: String) -> Result<Option<Beer>> {
    // A text no sku can be names no beer, and is not sent to the database (PostgreSQL refuses a
    // NUL in text with an error the client must not see).
    if validate::sku(&sku).is_err() {
        return Ok(None);
    }
    let loader = ctx.data_unchecked::<DataLoader<BeerBySkuLoader>>();
    Ok(loader.load_one(sku).await.map_err(load_failed)?.map(Beer))
}

#[Object]
impl Query {
    /// The catalog, sorted by name then sku, Relay-style pages. search matches name or sku, case-insensitive; available, when given, keeps only the beers that can (true) or cannot (false) be ordered now. (beers)
    async fn beers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        available: Option<bool>,
    ) -> Result<BeerConnection> {
        let first = paging::first(first.unwrap_or(20))?;
        let after: Option<(String, String)> =
            after.as_deref().map(paging::decode_cursor).transpose()?;
        if let Some(search) = &search {
            validate::search(search)?;
        }
        let search = search.filter(|s| !s.is_empty());
        let state = ctx.data_unchecked::<AppState>();
        let filter = db::Filter {
            search: search.as_deref(),
            available,
        };
        let rows = db::page(
            &state.db,
            filter,
            after
                .as_ref()
                .map(|(name, sku)| (name.as_str(), sku.as_str())),
            first as i64 + 1,
        )
        .await?;
        let (rows, has_next_page) = paging::cut(rows, first);
        Ok(BeerConnection {
            rows,
            has_next_page,
            has_previous_page: after.is_some(),
            search,
            available,
        })
    }

    /// A beer by its sku; null if none. (beers)
    async fn beer(&self, ctx: &Context<'_>, sku: String) -> Result<Option<Beer>> {
        beer_by_sku(ctx, sku).await
    }

    /// Resolves `Beer` references by id for the router, batched.
    #[graphql(entity)]
    async fn find_beer_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Beer>> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        let loader = ctx.data_unchecked::<DataLoader<BeerByIdLoader>>();
        Ok(loader.load_one(id).await.map_err(load_failed)?.map(Beer))
    }

    /// Resolves `Beer` references by sku for the router, batched.
    #[graphql(entity)]
    async fn find_beer_by_sku(&self, ctx: &Context<'_>, sku: String) -> Result<Option<Beer>> {
        beer_by_sku(ctx, sku).await
    }
}
