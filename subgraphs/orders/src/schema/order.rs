//! `Order`, its status and pages, `OrderItem`, and the references to other subgraphs' entities (`User`, `Beer`).

use std::collections::HashMap;

use async_graphql::{dataloader::DataLoader, Context, Enum, Object, Result, SimpleObject, ID};
use taproom_common::{
    auth,
    memo::{resolve_once, Resolved},
    money::Decimal,
    paging::{self, PageInfo},
    time::Timestamp,
};
use tokio::sync::OnceCell;

use crate::{
    db::{self, ItemRow, OrderRow},
    error::Error,
    loader::{load_failed, ItemsLoader, OrdersByUserLoader},
    AppState,
};

/// A customer's order. (orders owns it; key: id)
pub struct Order(pub OrderRow, OnceCell<Vec<ItemRow>>);

impl Order {
    pub fn new(row: OrderRow) -> Self {
        Order(row, OnceCell::new())
    }

    /// The order as a write left it, lines and all ([`db::Snapshot`]).
    pub fn snapshot(snapshot: db::Snapshot) -> Self {
        Order(snapshot.order, OnceCell::new_with(Some(snapshot.items)))
    }

    /// Orders whose lines are loaded now, in one batch, when the field being resolved (a list of
    /// orders) selects anything made of lines. Otherwise each order would ask the loader itself,
    /// once per field: a user's 20 orders under each of 20 orders made 860 loader calls.
    pub async fn list(ctx: &Context<'_>, rows: Vec<OrderRow>) -> Result<Vec<Order>> {
        Self::list_under(ctx, rows, &[]).await
    }

    /// [`Order::list`] for orders selected at `path` below the field being resolved (a connection's
    /// `edges { node }`).
    pub async fn list_under(
        ctx: &Context<'_>,
        rows: Vec<OrderRow>,
        path: &[&str],
    ) -> Result<Vec<Order>> {
        let selection = path
            .iter()
            .fold(ctx.look_ahead(), |selection, field| selection.field(field));
        let needs_lines = ["items", "total", "itemCount"]
            .into_iter()
            .any(|field| selection.field(field).exists());
        if !needs_lines || rows.is_empty() {
            return Ok(rows.into_iter().map(Order::new).collect());
        }
        let loader = ctx.data_unchecked::<DataLoader<ItemsLoader>>();
        let mut lines: HashMap<i64, Vec<ItemRow>> = loader
            .load_many(rows.iter().map(|row| row.id))
            .await
            .map_err(load_failed)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let items = lines.remove(&row.id).unwrap_or_default();
                Order(row, OnceCell::new_with(Some(items)))
            })
            .collect())
    }

    /// The order's lines, loaded once per order object.
    async fn items_rows(&self, ctx: &Context<'_>) -> Result<&[ItemRow]> {
        let items = self
            .1
            .get_or_try_init(|| async {
                let loader = ctx.data_unchecked::<DataLoader<ItemsLoader>>();
                Ok::<_, async_graphql::Error>(
                    loader
                        .load_one(self.0.id)
                        .await
                        .map_err(load_failed)?
                        .unwrap_or_default(),
                )
            })
            .await?;
        Ok(items)
    }
}

/// A customer's order. (orders owns it; key: id)
#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The customer, resolved by the users subgraph.
    async fn owner(&self) -> User {
        User {
            id: ID(self.0.user_id.to_string()),
        }
    }

    async fn is_open(&self) -> bool {
        self.0.status == db::OPEN
    }

    /// Where the order is in its lifecycle: OPEN, then CHECKED_OUT or CANCELLED, both final.
    async fn status(&self) -> OrderStatus {
        OrderStatus::from_db(&self.0.status)
    }

    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<OrderItem>> {
        Ok(self
            .items_rows(ctx)
            .await?
            .iter()
            .cloned()
            .map(OrderItem)
            .collect())
    }

    /// Sum of the lines' totals, exact.
    async fn total(&self, ctx: &Context<'_>) -> Result<Decimal> {
        let cents = self
            .items_rows(ctx)
            .await?
            .iter()
            .map(|item| item.quantity * item.unit_price_cents)
            .sum();
        Ok(Decimal::from_cents(cents))
    }

    /// Sum of the lines' quantities.
    async fn item_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let count: i64 = self
            .items_rows(ctx)
            .await?
            .iter()
            .map(|item| item.quantity)
            .sum();
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    async fn time_created(&self) -> Result<Timestamp> {
        Timestamp::from_db(&self.0.time_created)
    }

    async fn time_modified(&self) -> Result<Option<Timestamp>> {
        self.0
            .time_modified
            .as_deref()
            .map(Timestamp::from_db)
            .transpose()
    }

    /// When checkout closed it; null while open.
    async fn time_closed(&self) -> Result<Option<Timestamp>> {
        self.0
            .time_closed
            .as_deref()
            .map(Timestamp::from_db)
            .transpose()
    }

    /// When its owner cancelled it; null unless cancelled.
    async fn time_cancelled(&self) -> Result<Option<Timestamp>> {
        self.0
            .time_cancelled
            .as_deref()
            .map(Timestamp::from_db)
            .transpose()
    }
}

/// Where an order is in its lifecycle.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Lines can be added, changed and removed.
    Open,
    /// Closed by checkout; final.
    CheckedOut,
    /// Cancelled by its owner while open; final.
    Cancelled,
}

impl OrderStatus {
    fn from_db(status: &str) -> Self {
        match status {
            db::CHECKED_OUT => OrderStatus::CheckedOut,
            db::CANCELLED => OrderStatus::Cancelled,
            // A CHECK constraint allows only these three.
            _ => OrderStatus::Open,
        }
    }

    pub fn to_db(self) -> &'static str {
        match self {
            OrderStatus::Open => db::OPEN,
            OrderStatus::CheckedOut => db::CHECKED_OUT,
            OrderStatus::Cancelled => db::CANCELLED,
        }
    }
}

/// A cursor: the opaque form of an order's position `(timeCreated, id)`, newest first.
fn encode_cursor(row: &OrderRow) -> String {
    paging::encode_cursor(&(&row.time_created, row.id))
}

/// One page of orders, newest first, with the lines of all of them loaded in one batch.
pub struct OrderConnection {
    orders: Vec<Order>,
    has_next_page: bool,
    has_previous_page: bool,
    /// The page's filter, owned, for `totalCount`.
    user_id: Option<i64>,
    status: Option<OrderStatus>,
}

impl OrderConnection {
    /// Reads the page of `first` orders matching the filter after the cursor `after`.
    pub async fn read(
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
        user_id: Option<i64>,
        status: Option<OrderStatus>,
    ) -> Result<Self> {
        let first = paging::first(first)?;
        let after: Option<(String, i64)> =
            after.as_deref().map(paging::decode_cursor).transpose()?;
        let state = ctx.data_unchecked::<AppState>();
        let filter = db::OrderFilter {
            user_id,
            status: status.map(OrderStatus::to_db),
        };
        let rows = db::page(
            &state.db,
            filter,
            after.as_ref().map(|(time, id)| (time.as_str(), *id)),
            first as i64 + 1,
        )
        .await?;
        let (rows, has_next_page) = paging::cut(rows, first);
        // The lines are needed below `edges { node { ... } }`.
        let orders = Order::list_under(ctx, rows, &["edges", "node"]).await?;
        Ok(OrderConnection {
            orders,
            has_next_page,
            has_previous_page: after.is_some(),
            user_id,
            status,
        })
    }
}

#[Object]
impl OrderConnection {
    async fn edges(&self) -> Vec<OrderEdge<'_>> {
        self.orders
            .iter()
            .map(|order| OrderEdge { order })
            .collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo::of(
            &self.orders,
            self.has_next_page,
            self.has_previous_page,
            |o| encode_cursor(&o.0),
        )
    }

    /// How many orders match across all pages (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let state = ctx.data_unchecked::<AppState>();
        let filter = db::OrderFilter {
            user_id: self.user_id,
            status: self.status.map(OrderStatus::to_db),
        };
        let count = db::count(&state.db, filter).await?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

/// An order and its cursor.
pub struct OrderEdge<'a> {
    order: &'a Order,
}

#[Object]
impl OrderEdge<'_> {
    async fn cursor(&self) -> String {
        encode_cursor(&self.order.0)
    }

    async fn node(&self) -> &Order {
        self.order
    }
}

/// One line of an order. (orders)
pub struct OrderItem(pub ItemRow);

/// One line of an order. (orders)
#[Object]
impl OrderItem {
    /// The beer this line was ordered as, resolved by the beers subgraph; null if that beer has since left the catalog, never another beer that later took its sku.
    async fn beer(&self) -> Option<Beer> {
        self.0.beer_id.map(|id| Beer {
            id: ID(id.to_string()),
        })
    }

    async fn sku(&self) -> &str {
        &self.0.sku
    }

    /// The beer's name when the line was last changed; what was bought, even after the beer leaves the catalog.
    async fn name(&self) -> &str {
        self.0.name.as_deref().unwrap_or(&self.0.sku)
    }

    /// 1 to 1000 per line.
    async fn quantity(&self) -> i32 {
        i32::try_from(self.0.quantity).expect("quantities are at most 1000 by a CHECK constraint")
    }

    /// The beer's price when the line was last changed.
    async fn unit_price(&self) -> Decimal {
        Decimal::from_cents(self.0.unit_price_cents)
    }

    async fn line_total(&self) -> Decimal {
        Decimal::from_cents(self.0.quantity * self.0.unit_price_cents)
    }
}

/// A reference to a beer of the beers subgraph, by its id key (ids are never reused, skus may be);
/// this subgraph cannot resolve it.
#[derive(SimpleObject)]
#[graphql(unresolvable = "id")]
pub struct Beer {
    id: ID,
}

/// The users subgraph's `User`, extended here with its orders.
pub struct User {
    pub id: ID,
}

#[Object]
impl User {
    async fn id(&self) -> &ID {
        &self.id
    }

    /// The user's orders, newest first. Only the user themself; FORBIDDEN for anyone else. (orders)
    // Resolved once per request and selection: `myOrders { owner { orders } }` reaches the same
    // user's orders under each of their orders.
    async fn orders(&self, ctx: &Context<'_>) -> Result<Resolved<Vec<Order>>> {
        let caller = auth::require_caller(ctx).await?;
        let user_id = caller.user_id;
        if self.id.parse::<i64>().ok() != Some(user_id) {
            return Err(
                Error::Forbidden("only the user themself may see their orders".into()).into(),
            );
        }
        resolve_once(ctx, user_id, || async {
            let loader = ctx.data_unchecked::<DataLoader<OrdersByUserLoader>>();
            let rows = loader.load_one(user_id).await.map_err(load_failed)?;
            Order::list(ctx, rows.unwrap_or_default()).await
        })
        .await
    }

    /// The user's orders, newest first, Relay-style pages; status, when given, keeps only orders in that status. Only the user themself; FORBIDDEN for anyone else (admins page everyone's with Query.orders). (orders)
    async fn orders_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
    ) -> Result<OrderConnection> {
        let caller = auth::require_caller(ctx).await?;
        if self.id.parse::<i64>().ok() != Some(caller.user_id) {
            return Err(
                Error::Forbidden("only the user themself may see their orders".into()).into(),
            );
        }
        OrderConnection::read(
            ctx,
            first.unwrap_or(20),
            after,
            Some(caller.user_id),
            status,
        )
        .await
    }
}
