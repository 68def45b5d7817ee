//! Changes to the caller's open order.

use async_graphql::{Context, Object, Result};
use taproom_common::auth;

use crate::{
    db::{self, MAX_LINE_QUANTITY},
    error::Error,
    schema::Order,
    AppState,
};

/// The orders subgraph's root mutation type.
pub struct Mutation;

/// Reads back an order just written (one statement; mutations are not batched).
async fn reload(state: &AppState, order_id: i64) -> Result<Order> {
    let row = db::orders_by_ids(&state.db, &[order_id])
        .await?
        .pop()
        .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))?;
    Ok(Order::new(row))
}

#[Object]
impl Mutation {
    /// Add quantity of a beer to the caller's open order, creating the order if needed; adding a sku again adds to its quantity. (orders)
    async fn add_to_order(&self, ctx: &Context<'_>, sku: String, quantity: i32) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        if !(1..=MAX_LINE_QUANTITY).contains(&i64::from(quantity)) {
            return Err(Error::invalid(
                "quantity",
                format!("quantity must be between 1 and {MAX_LINE_QUANTITY}"),
            )
            .into());
        }
        let state = ctx.data_unchecked::<AppState>();
        let price = state
            .beers
            .price_cents(&sku)
            .await?
            .ok_or_else(|| Error::not_found(Some("sku"), format!("no beer has sku {sku:?}")))?;
        let order_id =
            db::add_to_order(&state.db, caller.user_id, &sku, i64::from(quantity), price).await?;
        reload(state, order_id).await
    }

    /// Remove the whole line of that sku from the caller's open order. (orders)
    async fn remove_from_order(&self, ctx: &Context<'_>, sku: String) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let order_id = db::remove_from_order(&state.db, caller.user_id, &sku).await?;
        reload(state, order_id).await
    }

    /// Close the caller's open order. BAD_USER_INPUT if it is empty; NOT_FOUND if there is no open order. (orders)
    async fn checkout(&self, ctx: &Context<'_>) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let order_id = db::checkout(&state.db, caller.user_id).await?;
        tracing::info!(order_id, user_id = caller.user_id, "order checked out");
        reload(state, order_id).await
    }
}
