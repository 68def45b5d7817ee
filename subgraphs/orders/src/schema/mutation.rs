//! Changes to the caller's open order.

use std::future::Future;

use async_graphql::{Context, Object, Result, ID};
use taproom_common::{auth, trust::IdempotencyKey};

use crate::{
    beers::BeerRef,
    db::{self, Checkout, Idempotent, LineBeer, LineChange, Snapshot, MAX_LINE_QUANTITY},
    error::Error,
    events::{Change, ChangeKind},
    schema::Order,
    AppState,
};

/// How often checkout checks the lines again when they change while it checks them.
const CHECKOUT_ATTEMPTS: usize = 3;

/// The orders subgraph's root mutation type.
pub struct Mutation;

/// Whether `sku` could be a catalog sku at all (1 to 64 characters, no control characters, the
/// beers subgraph's rule). Others name no beer and no line, and are never sent to a database (a NUL
/// in PostgreSQL text is an error).
fn plausible_sku(sku: &str) -> bool {
    (1..=64).contains(&sku.chars().count()) && !sku.chars().any(char::is_control)
}

fn no_line(sku: &str) -> Error {
    Error::not_found(
        Some("sku"),
        format!("the open order has no line with sku {sku:?}"),
    )
}

/// Changes the caller's line of `sku` to hold the beer the catalog has under it now, at its price;
/// `NOT_FOUND` if there is none, `BAD_USER_INPUT` if it cannot be ordered now.
async fn change_line(
    state: &AppState,
    user_id: i64,
    sku: &str,
    change: LineChange,
    key: Option<Idempotent<'_>>,
) -> Result<Written, Error> {
    let no_beer = || Error::not_found(Some("sku"), format!("no beer has sku {sku:?}"));
    if !plausible_sku(sku) {
        return Err(no_beer());
    }
    let beer = state.beers.beer(sku).await?.ok_or_else(no_beer)?;
    if !beer.available {
        return Err(Error::invalid(
            "sku",
            format!("{} ({sku}) is not available now", beer.name),
        ));
    }
    let line = LineBeer {
        sku,
        beer_id: beer.id,
        name: &beer.name,
        unit_price_cents: beer.price_cents,
    };
    Ok(Written::Changed(
        db::change_line(&state.db, user_id, line, change, key).await?,
    ))
}

/// This mutation field's idempotency key, if the request has one (the router's key, distinct per
/// subgraph request, and the field's response key, so two fields of one request never share one),
/// with the fingerprint of what the field was asked: the client request's and its `arguments`.
fn idempotency_key(ctx: &Context<'_>, arguments: &[(&str, &str)]) -> Option<(String, String)> {
    let key = ctx.data_opt::<IdempotencyKey>()?;
    let field = ctx.item.node.response_key().node.as_str();
    Some((
        format!("{}/{field}", key.key),
        key.fingerprint(ctx.item.node.name.node.as_str(), arguments),
    ))
}

/// The key and fingerprint of [`idempotency_key`] as the database functions take them.
fn idempotent(key: &Option<(String, String)>) -> Option<Idempotent<'_>> {
    key.as_ref()
        .map(|(key, fingerprint)| Idempotent { key, fingerprint })
}

/// What a write did.
enum Written {
    /// It changed the order; as it left it.
    Changed(Snapshot),
    /// It changed nothing in the order with this id.
    Unchanged(i64),
}

/// Runs `write` (which records `key` in its transaction, [`db::change_line`] and the others) and
/// answers with the order as it left it. A mutation whose key was applied before, or first by a
/// concurrent request, changes nothing: if it is the same request again, it answers what the
/// first answered; if the key came with another request, it is refused (`BAD_USER_INPUT` naming
/// the `Idempotency-Key` header). Subscribers hear of a change of `kind`.
async fn once(
    state: &AppState,
    user_id: i64,
    key: &Option<(String, String)>,
    kind: ChangeKind,
    write: impl Future<Output = Result<Written, Error>>,
) -> Result<Order> {
    let key = idempotent(key);
    if let Some(key) = key {
        if let Some(applied) = db::applied(&state.db, user_id, key.key).await? {
            tracing::info!(
                order_id = applied.order_id,
                user_id,
                "mutation sent again with its idempotency key: answered, not applied"
            );
            return replay(state, key, applied).await;
        }
    }
    match write.await {
        Ok(Written::Changed(snapshot)) => {
            let change = Change {
                order_id: snapshot.order.id,
                user_id,
                kind,
            };
            state.events.committed(change, &snapshot);
            Ok(Order::snapshot(snapshot))
        }
        Ok(Written::Unchanged(order_id)) => reload(state, order_id).await,
        // A copy with the same key may have been applied meanwhile (the write then finds its key
        // taken, or, for a checkout, no open order left): it decides the answer.
        Err(error) => {
            if let Some(key) = key {
                if let Some(applied) = db::applied(&state.db, user_id, key.key).await? {
                    return replay(state, key, applied).await;
                }
            }
            Err(error.into())
        }
    }
}

/// The answer to a mutation whose key was applied before: the first answer, if it is the same
/// request; refused, if it is another.
async fn replay(state: &AppState, key: Idempotent<'_>, applied: db::Applied) -> Result<Order> {
    if applied
        .fingerprint
        .as_deref()
        .is_some_and(|first| first != key.fingerprint)
    {
        return Err(Error::KeyReused.into());
    }
    match applied.answer {
        Some(snapshot) => Ok(Order::snapshot(snapshot)),
        // Recorded before answers were: the order as it is.
        None => reload(state, applied.order_id).await,
    }
}

/// Reads back an order (one statement; mutations are not batched).
pub(crate) async fn reload(state: &AppState, order_id: i64) -> Result<Order> {
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
        let key = idempotency_key(ctx, &[("sku", &sku), ("quantity", &quantity.to_string())]);
        let write = change_line(
            state,
            caller.user_id,
            &sku,
            LineChange::Add(quantity.into()),
            idempotent(&key),
        );
        once(state, caller.user_id, &key, ChangeKind::Lines, write).await
    }

    /// Make the caller's open order hold exactly quantity of a beer: 1 to 1000 sets the line (creating the order if needed, at the beer's current price, like addToOrder); 0 removes the line, and changes nothing if there is none. NOT_FOUND if there is no open order to remove from. An open order left with no lines is not listed (myOrders, currentOrder, ordersConnection) until a line is added again. (orders)
    async fn set_order_item_quantity(
        &self,
        ctx: &Context<'_>,
        sku: String,
        quantity: i32,
    ) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        if !(0..=MAX_LINE_QUANTITY).contains(&i64::from(quantity)) {
            return Err(Error::invalid(
                "quantity",
                format!("quantity must be between 0 and {MAX_LINE_QUANTITY}"),
            )
            .into());
        }
        let state = ctx.data_unchecked::<AppState>();
        let key = idempotency_key(ctx, &[("sku", &sku), ("quantity", &quantity.to_string())]);
        let write = async {
            if quantity != 0 {
                let change = LineChange::Set(quantity.into());
                return change_line(state, caller.user_id, &sku, change, idempotent(&key)).await;
            }
            if plausible_sku(&sku) {
                if let Some(snapshot) =
                    db::remove_line(&state.db, caller.user_id, &sku, idempotent(&key)).await?
                {
                    return Ok(Written::Changed(snapshot));
                }
            }
            // No line has it: nothing to remove, but there must be an open order.
            let order = db::open_order(&state.db, caller.user_id)
                .await?
                .ok_or_else(|| Error::not_found(None, "there is no open order"))?;
            Ok(Written::Unchanged(order.id))
        };
        once(state, caller.user_id, &key, ChangeKind::Lines, write).await
    }

    /// Remove the whole line of that sku from the caller's open order. An open order left with no lines is not listed until a line is added again. (orders)
    async fn remove_from_order(&self, ctx: &Context<'_>, sku: String) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        if !plausible_sku(&sku) {
            return Err(no_line(&sku).into());
        }
        let key = idempotency_key(ctx, &[("sku", &sku)]);
        let write = async {
            match db::remove_line(&state.db, caller.user_id, &sku, idempotent(&key)).await? {
                Some(snapshot) => Ok(Written::Changed(snapshot)),
                None => Err(no_line(&sku)),
            }
        };
        once(state, caller.user_id, &key, ChangeKind::Lines, write).await
    }

    /// Cancel one of the caller's orders while it is open; checkout and cancel are final. NOT_FOUND if it does not exist or belongs to someone else; BAD_USER_INPUT if it is checked out or cancelled already. (orders)
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let order_id = id.parse::<i64>().map_err(|_| {
            Error::not_found(Some("id"), format!("no order {} of yours", id.as_str()))
        })?;
        let key = idempotency_key(ctx, &[("id", id.as_str())]);
        let write = async {
            let snapshot =
                db::cancel(&state.db, caller.user_id, order_id, idempotent(&key)).await?;
            tracing::info!(order_id, user_id = caller.user_id, "order cancelled");
            Ok(Written::Changed(snapshot))
        };
        once(state, caller.user_id, &key, ChangeKind::Cancel, write).await
    }

    /// Close the caller's open order. BAD_USER_INPUT if it is empty or holds beers that have left the catalog or are not available now (the message names their skus); NOT_FOUND if there is no open order. (orders)
    async fn checkout(&self, ctx: &Context<'_>) -> Result<Order> {
        let caller = auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let key = idempotency_key(ctx, &[]);
        let write = async {
            // The lines are checked against the catalog without holding the order's lock (a request to
            // another service); checkout then closes the order only if its lines are still the ones
            // checked, and otherwise checks again.
            for _ in 0..CHECKOUT_ATTEMPTS {
                let (order_id, lines) = db::open_order_lines(&state.db, caller.user_id)
                    .await?
                    .ok_or_else(|| Error::not_found(None, "there is no open order"))?;
                if lines.is_empty() {
                    return Err(Error::invalid("order", "the open order is empty"));
                }
                let refs: Vec<BeerRef> = lines
                    .iter()
                    .map(|line| match line.beer_id {
                        Some(id) => BeerRef::Id(id),
                        None => BeerRef::Sku(line.sku.clone()),
                    })
                    .collect();
                let orderable = state.beers.still_orderable(&refs).await?;
                let gone: Vec<&str> = lines
                    .iter()
                    .zip(&orderable)
                    .filter(|(_, orderable)| !**orderable)
                    .map(|(line, _)| line.sku.as_str())
                    .collect();
                if !gone.is_empty() {
                    return Err(Error::invalid(
                        "order",
                        format!(
                            "these beers have left the catalog or are not available now; remove them before checking out: {}",
                            gone.join(", ")
                        ),
                    ));
                }
                if let Checkout::Closed(snapshot) = db::checkout(
                    &state.db,
                    caller.user_id,
                    order_id,
                    &lines,
                    idempotent(&key),
                )
                .await?
                {
                    tracing::info!(order_id, user_id = caller.user_id, "order checked out");
                    return Ok(Written::Changed(snapshot));
                }
            }
            Err(Error::invalid(
                "order",
                "the open order kept changing during checkout; try again",
            ))
        };
        once(state, caller.user_id, &key, ChangeKind::Checkout, write).await
    }
}
