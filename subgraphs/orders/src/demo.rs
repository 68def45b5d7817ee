//! The demo orders the local stack gives the demo customer on its first start: two checked out, one
//! cancelled and an open cart, so every order status and the history pages have something to show.

use chrono::Duration;
use taproom_common::{db::Db, time};

use crate::{
    db::{self, LineBeer, NewOrder, CANCELLED, CHECKED_OUT, OPEN},
    error::Result,
};

/// A demo order: its status, how many days ago it was created, and its lines as (sku, quantity).
type DemoOrder = (&'static str, i64, &'static [(&'static str, i64)]);

/// The demo orders, oldest first.
const DEMO: &[DemoOrder] = &[
    (CHECKED_OUT, 21, &[("123456", 6), ("123458", 4)]),
    (CANCELLED, 14, &[("200019", 3)]),
    (
        CHECKED_OUT,
        7,
        &[("200008", 2), ("200010", 4), ("123457", 6)],
    ),
    (OPEN, 0, &[("123457", 2), ("200012", 1)]),
];

/// Every sku the demo orders hold, for the caller to look up in the catalog.
pub fn skus() -> Vec<&'static str> {
    let mut skus: Vec<&str> = DEMO
        .iter()
        .flat_map(|(_, _, lines)| lines.iter().map(|(sku, _)| *sku))
        .collect();
    skus.sort_unstable();
    skus.dedup();
    skus
}

/// Adds the demo orders of `user_id` if there are no orders at all, in one transaction; how many
/// it added. `beers` are the catalog's beers for [`skus`]; a line whose beer is missing is left out.
pub async fn seed(db: &Db, user_id: i64, beers: &[LineBeer<'_>]) -> Result<usize> {
    let now = time::now();
    let orders: Vec<NewOrder> = DEMO
        .iter()
        .map(|(status, days_ago, lines)| {
            let created = now - Duration::days(*days_ago);
            NewOrder {
                user_id,
                status,
                time_created: time::to_db(created),
                // Checked out or cancelled an hour after it was opened.
                time_ended: (*status != OPEN).then(|| time::to_db(created + Duration::hours(1))),
                lines: lines
                    .iter()
                    .filter_map(|(sku, quantity)| {
                        let beer = beers.iter().find(|beer| beer.sku == *sku)?;
                        Some((*beer, *quantity))
                    })
                    .collect(),
            }
        })
        .filter(|order| !order.lines.is_empty())
        .collect();
    db::insert_into_empty(db, &orders).await
}
