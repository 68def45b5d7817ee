//! Read operations of the orders subgraph, and the entity resolvers the router calls.

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use taproom_common::auth;

use crate::{
    db,
    error::Error,
    loader::{load_failed, OrderLoader, OrdersByUserLoader},
    schema::{Order, OrderConnection, OrderStatus, User},
    AppState,
};

/// The orders subgraph's root query type.
pub struct Query;

/// The order with `id` if the caller owns it.
pub(crate) async fn own_order(ctx: &Context<'_>, id: &str) -> Result<Option<Order>> {
    let caller = auth::require_caller(ctx).await?;
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    let loader = ctx.data_unchecked::<DataLoader<OrderLoader>>();
    let row = loader.load_one(id).await.map_err(load_failed)?;
    Ok(row
        .filter(|row| row.user_id == caller.user_id)
        .map(Order::new))
}

#[Object]
impl Query {
    /// The caller's orders, newest first (an open order with no lines is left out). UNAUTHENTICATED without a token. (orders)
    async fn my_orders(&self, ctx: &Context<'_>) -> Result<Vec<Order>> {
        let caller = auth::require_caller(ctx).await?;
        let loader = ctx.data_unchecked::<DataLoader<OrdersByUserLoader>>();
        let rows = loader.load_one(caller.user_id).await.map_err(load_failed)?;
        Order::list(ctx, rows.unwrap_or_default()).await
    }

    /// One of the caller's orders. NOT_FOUND if it does not exist or belongs to someone else. (orders)
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        match own_order(ctx, &id).await? {
            Some(order) => Ok(Some(order)),
            None => Err(
                Error::not_found(Some("id"), format!("no order {} of yours", id.as_str())).into(),
            ),
        }
    }

    /// The caller's open order, or null if there is none (or it has no lines). Never creates one. (orders)
    async fn current_order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        Ok(db::shown_open_order(&state.db, caller.user_id)
            .await?
            .map(Order::new))
    }

    /// Every customer's orders, newest first, Relay-style pages, for admins (FORBIDDEN otherwise); status and userId, when given, filter them. Open orders with no lines are left out. (orders)
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
        user_id: Option<ID>,
    ) -> Result<OrderConnection> {
        auth::require_admin(ctx).await?;
        // An id that is no number names no user: an empty page.
        let user_id = user_id.map(|id| id.parse::<i64>().unwrap_or(-1));
        OrderConnection::read(ctx, first.unwrap_or(20), after, user_id, status).await
    }

    /// Resolves `Order` references for the router, batched; only the owner's orders resolve.
    #[graphql(entity)]
    async fn find_order_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        own_order(ctx, &id).await
    }

    /// Resolves `User` references so the router can ask for `User.orders` here.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id }
    }
}
