//! Changes to the caller's open order.

use async_graphql::{Context, Object, Result};
use taproom_common::auth;

use crate::{
    beers::BeerRef,
    db::{self, Checkout, LineBeer, MAX_LINE_QUANTITY},
    error::Error,
    schema::Order,
    AppState,
};

/// How often checkout checks the lines again when they change while it checks them.
const CHECKOUT_ATTEMPTS: usize = 3;

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
        let beer = state
            .beers
            .beer(&sku)
            .await?
            .ok_or_else(|| Error::not_found(Some("sku"), format!("no beer has sku {sku:?}")))?;
        let line = LineBeer {
            sku: &sku,
            beer_id: beer.id,
            name: &beer.name,
            unit_price_cents: beer.price_cents,
        };
        let order_id =
            db::add_to_order(&state.db, caller.user_id, line, i64::from(quantity)).await?;
        reload(state, order_id).await
    }

    /// Remove the whole line of that sku from the caller's open order. (orders)
    async fn remove_from_order(&self, ctx: &Context<'_>, sku: String) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let order_id = db::remove_from_order(&state.db, caller.user_id, &sku).await?;
        reload(state, order_id).await
    }

    /// Close the caller's open order. BAD_USER_INPUT if it is empty or holds beers that have left the catalog (the message names their skus); NOT_FOUND if there is no open order. (orders)
    async fn checkout(&self, ctx: &Context<'_>) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        // The lines are checked against the catalog without holding the order's lock (a request to
        // another service); checkout then closes the order only if its lines are still the ones
        // checked, and otherwise checks again.
        for _ in 0..CHECKOUT_ATTEMPTS {
            let (order_id, lines) = db::open_order_lines(&state.db, caller.user_id)
                .await?
                .ok_or_else(|| Error::not_found(None, "there is no open order"))?;
            if lines.is_empty() {
                return Err(Error::invalid("order", "the open order is empty").into());
            }
            let refs: Vec<BeerRef> = lines
                .iter()
                .map(|line| match line.beer_id {
                    Some(id) => BeerRef::Id(id),
                    None => BeerRef::Sku(line.sku.clone()),
                })
                .collect();
            let listed = state.beers.still_listed(&refs).await?;
            let gone: Vec<&str> = lines
                .iter()
                .zip(&listed)
                .filter(|(_, listed)| !**listed)
                .map(|(line, _)| line.sku.as_str())
                .collect();
            if !gone.is_empty() {
                return Err(Error::invalid(
                    "order",
                    format!(
                        "these beers have left the catalog; remove them before checking out: {}",
                        gone.join(", ")
                    ),
                )
                .into());
            }
            if let Checkout::Closed(order_id) =
                db::checkout(&state.db, caller.user_id, order_id, &lines).await?
            {
                tracing::info!(order_id, user_id = caller.user_id, "order checked out");
                return reload(state, order_id).await;
            }
        }
        Err(Error::invalid(
            "order",
            "the open order kept changing during checkout; try again",
        )
        .into())
    }
}
