//! The `Beer` entity and the catalog's Relay-style connection types.

use async_graphql::{Context, Object, Result, SimpleObject, ID};
use taproom_common::{
    money::Decimal,
    paging::{self, PageInfo},
    time::Timestamp,
};

use crate::{
    db::{self, BeerRow},
    AppState,
};

/// A beer in the catalog. (beers owns it; keys: id, and sku)
pub struct Beer(pub BeerRow);

/// A beer in the catalog. (beers owns it; keys: id, and sku)
#[Object]
impl Beer {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique, 1 to 64 characters.
    async fn sku(&self) -> &str {
        &self.0.sku
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// 0.00 to 999999.99, two decimals at most.
    async fn price(&self) -> Decimal {
        Decimal::from_cents(self.0.price_cents)
    }

    /// An image URL (http or https), or null.
    async fn image(&self) -> Option<&str> {
        self.0.image.as_deref()
    }

    async fn time_created(&self) -> Result<Timestamp> {
        Timestamp::from_db(&self.0.time_created)
    }

    /// What the shop says about it, up to 2000 characters; null if nothing.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Alcohol by volume in percent, exact, 0.00 to 100.00; null if not known.
    async fn abv(&self) -> Option<Decimal> {
        self.0.abv_hundredths.map(Decimal::from_cents)
    }

    /// Whether it can be ordered now; an unavailable beer stays in the catalog but cannot be added to an order.
    async fn available(&self) -> bool {
        self.0.available != 0
    }

    async fn time_modified(&self) -> Result<Option<Timestamp>> {
        self.0
            .time_modified
            .as_deref()
            .map(Timestamp::from_db)
            .transpose()
    }
}

/// A cursor: the opaque form of a beer's position `(name, sku)` in catalog order.
pub fn encode_cursor(row: &BeerRow) -> String {
    paging::encode_cursor(&(&row.name, &row.sku))
}

/// One page of the catalog.
pub struct BeerConnection {
    pub rows: Vec<BeerRow>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// The search the page was made with, for `totalCount`.
    pub search: Option<String>,
    /// The availability the page was asked for, for `totalCount`.
    pub available: Option<bool>,
}

#[Object]
impl BeerConnection {
    async fn edges(&self) -> Vec<BeerEdge> {
        self.rows
            .iter()
            .map(|row| BeerEdge {
                cursor: encode_cursor(row),
                node: Beer(row.clone()),
            })
            .collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo::of(
            &self.rows,
            self.has_next_page,
            self.has_previous_page,
            encode_cursor,
        )
    }

    /// How many beers match the search and availability across all pages (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let state = ctx.data_unchecked::<AppState>();
        let filter = db::Filter {
            search: self.search.as_deref(),
            available: self.available,
        };
        let count = db::count(&state.db, filter).await?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

/// A beer and its cursor.
#[derive(SimpleObject)]
pub struct BeerEdge {
    cursor: String,
    node: Beer,
}
