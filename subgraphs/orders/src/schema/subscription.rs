//! Live changes to orders: the caller's own (`orderChanged`) and every checkout (`checkouts`, for
//! admins), from [`crate::events`].
//!
//! The caller is verified when the subscription starts, as for a query, and with the token's
//! issuer again every [`REVERIFY`] while it runs, one check shared by every stream of the token
//! for [`SHARED_CHECK`]: a revoked token (or an admin who is no longer one) ends the stream with
//! `UNAUTHENTICATED` (or `FORBIDDEN`) within 3 s. While the
//! issuer cannot be asked the stream goes on for at most [`MAX_CACHE_TTL`] since the last
//! verification, as a cached verification would, then ends with an internal error.

use std::{sync::Arc, time::Duration};

use async_graphql::{Context, Result, Subscription as SubscriptionObject};
use futures_util::{stream, Stream};
use taproom_common::{
    auth::{self, Caller, SharedChecks, MAX_CACHE_TTL},
    error::{graphql_error, ErrorCode},
};
use tokio::{
    sync::broadcast::{error::RecvError, Receiver},
    time::{Instant, Interval, MissedTickBehavior},
};

use crate::{
    events::{Change, ChangeKind, Event},
    schema::Order,
    AppState,
};

/// How often a running subscription's token is verified again with its issuer.
pub const REVERIFY: Duration = Duration::from_secs(2);

/// How long one check answers for every subscription of the same token ([`SharedChecks`]): a
/// token revoked just after a check is still refused within `REVERIFY + SHARED_CHECK`, 3 s.
pub const SHARED_CHECK: Duration = Duration::from_secs(1);

/// The orders subgraph's root subscription type.
pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// The caller's orders, each time a line is added, changed or removed or the order is checked out or cancelled. UNAUTHENTICATED without a token; a revoked token ends the stream with UNAUTHENTICATED within 5 s. (orders)
    async fn order_changed(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let caller = auth::require_caller(ctx).await?;
        let user_id = caller.user_id;
        Watch::start(ctx, caller, false, move |change| change.user_id == user_id)
    }

    /// Every customer's checkouts, one event per order checked out, for admins (FORBIDDEN otherwise). (orders)
    async fn checkouts(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let caller = auth::require_admin(ctx).await?;
        Watch::start(ctx, caller, true, |change| {
            change.kind == ChangeKind::Checkout
        })
    }
}

/// One running subscription.
struct Watch<F> {
    events: Receiver<Event>,
    wanted: F,
    checks: Arc<SharedChecks>,
    token: String,
    caller: Caller,
    /// Whether the stream is for admins only.
    admin_only: bool,
    reverify: Interval,
    verified: Instant,
}

impl<F: Fn(&Change) -> bool + Send + 'static> Watch<F> {
    /// The orders of the changes `wanted` picks, as they are committed, for `caller`.
    fn start(
        ctx: &Context<'_>,
        caller: Caller,
        admin_only: bool,
        wanted: F,
    ) -> Result<impl Stream<Item = Result<Order>> + use<F>> {
        let state = ctx.data_unchecked::<AppState>();
        let token = auth::bearer_token(ctx)
            .expect("a verified caller presented a bearer token")
            .to_owned();
        let mut reverify = tokio::time::interval_at(Instant::now() + REVERIFY, REVERIFY);
        reverify.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let watch = Watch {
            events: state.events.subscribe(),
            wanted,
            checks: ctx.data_unchecked::<Arc<SharedChecks>>().clone(),
            token,
            caller,
            admin_only,
            reverify,
            verified: Instant::now(),
        };
        Ok(stream::unfold(Some(watch), |watch| async move {
            let mut watch = watch?;
            let item = watch.next().await?;
            // An error ends the stream.
            let go_on = item.is_ok();
            Some((item, go_on.then_some(watch)))
        }))
    }

    /// The next order to send, an error that ends the stream, or `None`: the events are gone (the
    /// service is stopping).
    async fn next(&mut self) -> Option<Result<Order>> {
        loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    // The order as the change left it, not as it is now.
                    Ok(Event::Changed(changed)) if (self.wanted)(&changed.change) => {
                        return Some(Ok(Order::snapshot(changed.order.clone())));
                    }
                    Ok(Event::Changed(_)) => {}
                    Ok(Event::Gap) | Err(RecvError::Lagged(_)) => {
                        tracing::warn!(user_id = self.caller.user_id, "a subscriber missed order events; its stream ends");
                        return Some(Err(graphql_error(
                            ErrorCode::Internal,
                            "order events may have been missed here; the subscription ended: subscribe again",
                            None,
                        )));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.reverify.tick() => {
                    if let Some(error) = self.verify().await {
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    /// Verifies the token again: the error that ends the stream, if it must end.
    async fn verify(&mut self) -> Option<async_graphql::Error> {
        match self.checks.verify(&self.token).await {
            Ok(Some(now)) if now.user_id == self.caller.user_id => {
                self.verified = Instant::now();
                if self.admin_only && !now.is_admin {
                    return Some(graphql_error(
                        ErrorCode::Forbidden,
                        "the account is no longer an admin; the subscription ended",
                        None,
                    ));
                }
                None
            }
            Ok(_) => Some(graphql_error(
                ErrorCode::Unauthenticated,
                "the token was revoked or has expired; the subscription ended",
                None,
            )),
            Err(error) if self.verified.elapsed() > MAX_CACHE_TTL => {
                tracing::error!(%error, "cannot verify a subscriber's token; its stream ends");
                Some(graphql_error(
                    ErrorCode::Internal,
                    "the token cannot be verified now; the subscription ended: subscribe again",
                    None,
                ))
            }
            Err(error) => {
                tracing::warn!(%error, "cannot verify a subscriber's token now; trying again");
                None
            }
        }
    }
}
