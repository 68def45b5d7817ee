//! Every SQL statement of the orders subgraph. Batch lookups take a slice of keys and cost one statement.
//!
//! Writes run in a transaction that first locks the caller's open order (PostgreSQL: `FOR UPDATE`;
//! SQLite: `BEGIN IMMEDIATE` already serializes writers), so a checkout and an add cannot interleave
//! and a closed order never changes again.

use taproom_common::{
    db::{placeholders, Backend, Db, Migrations, Tx},
    time,
};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    events::{announce, Change, ChangeKind},
};

/// This service's migrations, one folder per dialect.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// The most of one sku a line may hold.
pub const MAX_LINE_QUANTITY: i64 = 1000;

/// An order as stored.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize)]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub time_created: String,
    pub time_modified: Option<String>,
    pub time_closed: Option<String>,
    /// `OPEN`, `CHECKED_OUT` or `CANCELLED` (a CHECK constraint).
    pub status: String,
    pub time_cancelled: Option<String>,
}

/// An order's status as stored.
pub const OPEN: &str = "OPEN";
pub const CHECKED_OUT: &str = "CHECKED_OUT";
pub const CANCELLED: &str = "CANCELLED";

/// A line of an order as stored.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize)]
pub struct ItemRow {
    pub order_id: i64,
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    /// The beers subgraph's id of the beer the line was ordered as (`None` for lines written before
    /// lines kept it).
    pub beer_id: Option<i64>,
    /// That beer's name when the line was last changed (`None` as for `beer_id`).
    pub name: Option<String>,
}

/// A beer as a line records it when it is added or changed.
#[derive(Debug, Clone, Copy)]
pub struct LineBeer<'a> {
    pub sku: &'a str,
    pub beer_id: i64,
    pub name: &'a str,
    pub unit_price_cents: i64,
}

const ORDER_COLUMNS: &str =
    "id, user_id, time_created, time_modified, time_closed, status, time_cancelled";

/// The orders lists show: an order with no lines is no order to show (an open one emptied by its
/// owner, or cancelled so; its row stays, and adding a line to an open one shows it again).
/// Checkout refuses an empty order, so every checked-out order is shown.
const SHOWN: &str = "EXISTS (SELECT 1 FROM order_items WHERE order_items.order_id = orders.id)";
const ITEM_COLUMNS: &str = "order_id, sku, quantity, unit_price_cents, beer_id, name";

/// The orders with these ids.
pub async fn orders_by_ids(db: &Db, ids: &[i64]) -> Result<Vec<OrderRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let query = ids.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
    Ok(db.fetch_all(query).await?)
}

/// The orders of these users that lists show, newest first.
pub async fn orders_by_users(db: &Db, user_ids: &[i64]) -> Result<Vec<OrderRow>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id IN ({}) AND {SHOWN} ORDER BY time_created DESC, id DESC",
        placeholders(1, user_ids.len())
    );
    let query = user_ids.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
    Ok(db.fetch_all(query).await?)
}

/// The lines of these orders, in the order they were first added.
pub async fn items_by_orders(db: &Db, order_ids: &[i64]) -> Result<Vec<ItemRow>> {
    if order_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM order_items WHERE order_id IN ({}) ORDER BY time_added, sku",
        placeholders(1, order_ids.len())
    );
    let query = order_ids
        .iter()
        .fold(sqlx::query(&sql), |q, id| q.bind(*id));
    Ok(db.fetch_all(query).await?)
}

/// The user's open order, if any, even an empty one.
pub async fn open_order(db: &Db, user_id: i64) -> Result<Option<OrderRow>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND status = 'OPEN'");
    Ok(db.fetch_optional(sqlx::query(&sql).bind(user_id)).await?)
}

/// The user's open order if it has lines (the one `currentOrder` shows).
pub async fn shown_open_order(db: &Db, user_id: i64) -> Result<Option<OrderRow>> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND status = 'OPEN' AND {SHOWN}"
    );
    Ok(db.fetch_optional(sqlx::query(&sql).bind(user_id)).await?)
}

/// Which orders a page or a count holds; every one leaves out the empty open orders.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFilter<'a> {
    pub user_id: Option<i64>,
    /// `OPEN`, `CHECKED_OUT` or `CANCELLED`.
    pub status: Option<&'a str>,
}

/// A parameter of a statement built from parts.
enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// The filter's conditions and their parameters, numbered from `$1`.
fn filter_conditions<'a>(filter: OrderFilter<'a>) -> (Vec<String>, Vec<Param<'a>>) {
    let mut conditions = vec![SHOWN.to_owned()];
    let mut params = Vec::new();
    if let Some(user_id) = filter.user_id {
        params.push(Param::Int(user_id));
        conditions.push(format!("user_id = ${}", params.len()));
    }
    if let Some(status) = filter.status {
        params.push(Param::Text(status));
        conditions.push(format!("status = ${}", params.len()));
    }
    (conditions, params)
}

fn bind_all<'q>(sql: &'q str, params: &'q [Param<'q>]) -> taproom_common::db::Statement<'q> {
    params
        .iter()
        .fold(sqlx::query(sql), |query, param| match param {
            Param::Int(value) => query.bind(*value),
            Param::Text(value) => query.bind(*value),
        })
}

/// Up to `limit` orders matching `filter`, newest first, after the position `after`
/// (`(time_created, id)` of the last order of the previous page).
pub async fn page(
    db: &Db,
    filter: OrderFilter<'_>,
    after: Option<(&str, i64)>,
    limit: i64,
) -> Result<Vec<OrderRow>> {
    let (mut conditions, mut params) = filter_conditions(filter);
    if let Some((time_created, id)) = after {
        params.push(Param::Text(time_created));
        let t = params.len();
        params.push(Param::Int(id));
        let i = params.len();
        conditions.push(format!(
            "(time_created < ${t} OR (time_created = ${t} AND id < ${i}))"
        ));
    }
    params.push(Param::Int(limit));
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE {} ORDER BY time_created DESC, id DESC LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    Ok(db.fetch_all(bind_all(&sql, &params)).await?)
}

/// How many orders match `filter`.
pub async fn count(db: &Db, filter: OrderFilter<'_>) -> Result<i64> {
    let (conditions, params) = filter_conditions(filter);
    let sql = format!(
        "SELECT COUNT(*) FROM orders WHERE {}",
        conditions.join(" AND ")
    );
    let (count,): (i64,) = db.fetch_one(bind_all(&sql, &params)).await?;
    Ok(count)
}

/// Locks and returns the user's open order inside `tx`.
async fn lock_open_order(tx: &mut Tx, backend: Backend, user_id: i64) -> Result<Option<OrderRow>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND status = 'OPEN'{lock}");
    Ok(tx.fetch_optional(sqlx::query(&sql).bind(user_id)).await?)
}

/// An order and its lines as a write left them, read in the write's transaction: what the
/// mutation answers, what a repeat of it with its idempotency key answers, and what subscribers
/// receive ([`crate::events`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub order: OrderRow,
    pub items: Vec<ItemRow>,
}

/// A mutation's idempotency key, and the fingerprint of the request it came with: a key is bound
/// to the first request it was used for.
#[derive(Debug, Clone, Copy)]
pub struct Idempotent<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// What a mutation applied before with an idempotency key was.
#[derive(Debug)]
pub struct Applied {
    /// The order it changed.
    pub order_id: i64,
    /// The fingerprint of its request (`None` for keys recorded before fingerprints were).
    pub fingerprint: Option<String>,
    /// The order as its answer had it (`None` as for `fingerprint`).
    pub answer: Option<Snapshot>,
}

/// The caller's mutation applied before with idempotency `key`, if any.
pub async fn applied(db: &Db, user_id: i64, key: &str) -> Result<Option<Applied>> {
    let row: Option<(i64, Option<String>, Option<String>)> = db
        .fetch_optional(
            sqlx::query(
                "SELECT order_id, fingerprint, answer FROM applied_mutations WHERE user_id = $1 AND key = $2",
            )
            .bind(user_id)
            .bind(key),
        )
        .await?;
    let Some((order_id, fingerprint, answer)) = row else {
        return Ok(None);
    };
    let answer = match answer {
        Some(json) => Some(
            serde_json::from_str(&json)
                .map_err(|e| Error::Database(sqlx::Error::Decode(Box::new(e))))?,
        ),
        None => None,
    };
    Ok(Some(Applied {
        order_id,
        fingerprint,
        answer,
    }))
}

/// The order `order_id` and its lines, read in `tx`.
async fn snapshot(tx: &mut Tx, order_id: i64) -> Result<Snapshot> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
    let order: OrderRow = tx.fetch_one(sqlx::query(&sql).bind(order_id)).await?;
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM order_items WHERE order_id = $1 ORDER BY time_added, sku"
    );
    let items = tx.fetch_all(sqlx::query(&sql).bind(order_id)).await?;
    Ok(Snapshot { order, items })
}

/// Ends a write that changed `order_id` (a change of `kind`): the order read as it is now, the
/// idempotency key recorded with it, the change announced, the transaction committed. The order
/// as the write left it.
async fn finish(
    mut tx: Tx,
    backend: Backend,
    user_id: i64,
    key: Option<Idempotent<'_>>,
    order_id: i64,
    kind: ChangeKind,
) -> Result<Snapshot> {
    let snapshot = snapshot(&mut tx, order_id).await?;
    let json = serde_json::to_string(&snapshot).expect("a snapshot always serializes");
    record(&mut tx, user_id, key, order_id, &json).await?;
    let change = Change {
        order_id,
        user_id,
        kind,
    };
    announce(&mut tx, backend, change, &json).await?;
    tx.commit().await?;
    Ok(snapshot)
}

/// Writes since start, for forgetting old idempotency keys now and then.
static RECORDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records, in the mutation's own transaction, that the caller's mutation with idempotency `key`
/// (if any) changed `order_id` and answered `answer` (the order's JSON). [`Error::Replayed`] if a
/// request with the same key was applied first (PostgreSQL waits here for a concurrent one to
/// commit or roll back; SQLite's writers take turns): the caller then drops this transaction and
/// answers as for a repeat of that request.
async fn record(
    tx: &mut Tx,
    user_id: i64,
    key: Option<Idempotent<'_>>,
    order_id: i64,
    answer: &str,
) -> Result<()> {
    let Some(Idempotent { key, fingerprint }) = key else {
        return Ok(());
    };
    let now = time::now();
    let recorded = tx
        .execute(
            sqlx::query(
                "INSERT INTO applied_mutations (user_id, key, order_id, time_created, fingerprint, answer)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING",
            )
            .bind(user_id)
            .bind(key)
            .bind(order_id)
            .bind(time::to_db(now))
            .bind(fingerprint)
            .bind(answer),
        )
        .await?;
    if recorded.rows_affected() == 0 {
        return Err(Error::Replayed);
    }
    // Keys are kept a day: forgotten a hundred writes at a time.
    if RECORDED
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(100)
    {
        tx.execute(
            sqlx::query("DELETE FROM applied_mutations WHERE time_created < $1")
                .bind(time::to_db(now - chrono::Duration::days(1))),
        )
        .await?;
    }
    Ok(())
}

async fn touch(tx: &mut Tx, order_id: i64, now: &str) -> Result<()> {
    tx.execute(
        sqlx::query("UPDATE orders SET time_modified = $1 WHERE id = $2")
            .bind(now)
            .bind(order_id),
    )
    .await?;
    Ok(())
}

/// How a line's quantity changes.
#[derive(Debug, Clone, Copy)]
pub enum LineChange {
    /// Add this many to the line (opening it at this many).
    Add(i64),
    /// Make the line hold exactly this many (1 or more).
    Set(i64),
}

/// Changes the line of `beer` in the user's open order, opening an order if needed; the line takes
/// the beer's id, name and price. The line's quantity must stay within 1..=[`MAX_LINE_QUANTITY`];
/// otherwise nothing changes.
///
/// Clocks are read only once the transaction holds its lock, here and in every write: a time read
/// before waiting for a lock could date a change before the change it waited for (an order closed
/// before it was created).
pub async fn change_line(
    db: &Db,
    user_id: i64,
    beer: LineBeer<'_>,
    change: LineChange,
    key: Option<Idempotent<'_>>,
) -> Result<Snapshot> {
    let mut tx = db.begin().await?;
    // The partial unique index lets exactly one concurrent request create the open order; the others
    // do nothing here and find it below. A checkout that closes the found order before we lock it
    // (PostgreSQL re-checks the row and returns nothing) sends us round again to open a new one.
    let mut open = None;
    for _ in 0..3 {
        let created = time::to_db(time::now());
        tx.execute(
            sqlx::query(
                "INSERT INTO orders (user_id, time_created) VALUES ($1, $2)
                 ON CONFLICT (user_id) WHERE status = 'OPEN' DO NOTHING",
            )
            .bind(user_id)
            .bind(&created),
        )
        .await?;
        open = lock_open_order(&mut tx, db.backend(), user_id).await?;
        if open.is_some() {
            break;
        }
    }
    let order = open.ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))?;
    let now = time::to_db(time::now());
    let (quantity, new_quantity) = match change {
        LineChange::Add(quantity) => (quantity, "order_items.quantity + excluded.quantity"),
        LineChange::Set(quantity) => (quantity, "excluded.quantity"),
    };
    let sql = format!(
        "INSERT INTO order_items
             (order_id, sku, quantity, unit_price_cents, time_added, beer_id, name)
         VALUES ($1, $2, $3, $4, $5, $7, $8)
         ON CONFLICT (order_id, sku) DO UPDATE
         SET quantity = {new_quantity},
             unit_price_cents = excluded.unit_price_cents,
             beer_id = excluded.beer_id,
             name = excluded.name
         WHERE {new_quantity} <= $6"
    );
    let added = tx
        .execute(
            sqlx::query(&sql)
                .bind(order.id)
                .bind(beer.sku)
                .bind(quantity)
                .bind(beer.unit_price_cents)
                .bind(&now)
                .bind(MAX_LINE_QUANTITY)
                .bind(beer.beer_id)
                .bind(beer.name),
        )
        .await?;
    if added.rows_affected() == 0 {
        // Dropping the transaction rolls it back, including an order opened just now.
        return Err(Error::invalid(
            "quantity",
            format!("a line may hold at most {MAX_LINE_QUANTITY} of one beer"),
        ));
    }
    touch(&mut tx, order.id, &now).await?;
    finish(tx, db.backend(), user_id, key, order.id, ChangeKind::Lines).await
}

/// Removes the whole line of `sku` from the user's open order: the order as the removal left it,
/// or `None` if it had no such line (then nothing changed). `NOT_FOUND` if there is no open order.
pub async fn remove_line(
    db: &Db,
    user_id: i64,
    sku: &str,
    key: Option<Idempotent<'_>>,
) -> Result<Option<Snapshot>> {
    let mut tx = db.begin().await?;
    let order = lock_open_order(&mut tx, db.backend(), user_id)
        .await?
        .ok_or_else(|| Error::not_found(None, "there is no open order"))?;
    let now = time::to_db(time::now());
    let removed = tx
        .execute(
            sqlx::query("DELETE FROM order_items WHERE order_id = $1 AND sku = $2")
                .bind(order.id)
                .bind(sku),
        )
        .await?;
    if removed.rows_affected() == 0 {
        return Ok(None);
    }
    touch(&mut tx, order.id, &now).await?;
    let snapshot = finish(tx, db.backend(), user_id, key, order.id, ChangeKind::Lines).await?;
    Ok(Some(snapshot))
}

/// Cancels the user's open order `order_id`. `NOT_FOUND` if the user has no such order;
/// `BAD_USER_INPUT` if it is no longer open (checkout and cancel are final).
pub async fn cancel(
    db: &Db,
    user_id: i64,
    order_id: i64,
    key: Option<Idempotent<'_>>,
) -> Result<Snapshot> {
    let mut tx = db.begin().await?;
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2{lock}");
    let order: OrderRow = tx
        .fetch_optional(sqlx::query(&sql).bind(order_id).bind(user_id))
        .await?
        .ok_or_else(|| Error::not_found(Some("id"), format!("no order {order_id} of yours")))?;
    if order.status != OPEN {
        let was = if order.status == CANCELLED {
            "cancelled"
        } else {
            "checked out"
        };
        return Err(Error::invalid(
            "id",
            format!("order {order_id} is {was}; checkout and cancel are final"),
        ));
    }
    let now = time::to_db(time::now());
    tx.execute(
        sqlx::query(
            "UPDATE orders SET status = 'CANCELLED', time_cancelled = $1, time_modified = $1 WHERE id = $2",
        )
        .bind(&now)
        .bind(order.id),
    )
    .await?;
    finish(tx, db.backend(), user_id, key, order.id, ChangeKind::Cancel).await
}

/// The user's open order and its lines, if there is an open order.
pub async fn open_order_lines(db: &Db, user_id: i64) -> Result<Option<(i64, Vec<ItemRow>)>> {
    let Some(order) = open_order(db, user_id).await? else {
        return Ok(None);
    };
    let lines = items_by_orders(db, &[order.id]).await?;
    Ok(Some((order.id, lines)))
}

/// A whole order to insert as it is (the demo data's orders).
pub struct NewOrder<'a> {
    pub user_id: i64,
    /// `OPEN`, `CHECKED_OUT` or `CANCELLED`.
    pub status: &'static str,
    pub time_created: String,
    /// When it was checked out or cancelled (`None` while open).
    pub time_ended: Option<String>,
    pub lines: Vec<(LineBeer<'a>, i64)>,
}

/// Inserts `orders` if there are no orders at all, all or none (one transaction); how many it added.
pub async fn insert_into_empty(db: &Db, orders: &[NewOrder<'_>]) -> Result<usize> {
    let mut tx = db.begin().await?;
    let (count,): (i64,) = tx
        .fetch_one(sqlx::query("SELECT COUNT(*) FROM orders"))
        .await?;
    if count > 0 {
        return Ok(0);
    }
    for order in orders {
        let closed = (order.status == CHECKED_OUT)
            .then_some(order.time_ended.as_deref())
            .flatten();
        let cancelled = (order.status == CANCELLED)
            .then_some(order.time_ended.as_deref())
            .flatten();
        let (id,): (i64,) = tx
            .fetch_one(
                sqlx::query(
                    "INSERT INTO orders (user_id, status, time_created, time_modified, time_closed, time_cancelled)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(order.user_id)
                .bind(order.status)
                .bind(&order.time_created)
                .bind(order.time_ended.as_deref())
                .bind(closed)
                .bind(cancelled),
            )
            .await?;
        for (beer, quantity) in &order.lines {
            tx.execute(
                sqlx::query(
                    "INSERT INTO order_items
                         (order_id, sku, quantity, unit_price_cents, time_added, beer_id, name)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(beer.sku)
                .bind(*quantity)
                .bind(beer.unit_price_cents)
                .bind(&order.time_created)
                .bind(beer.beer_id)
                .bind(beer.name),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(orders.len())
}

/// How checkout ended.
#[derive(Debug)]
pub enum Checkout {
    /// The order is closed; as checkout left it.
    Closed(Snapshot),
    /// The open order is no longer the one with the checked lines; nothing changed.
    Changed,
}

/// Closes the user's open order if it is `order_id` and its lines are still exactly `checked`
/// (compared by sku and beer): the caller checked those lines against the catalog without holding
/// the lock. It must have at least one line.
pub async fn checkout(
    db: &Db,
    user_id: i64,
    order_id: i64,
    checked: &[ItemRow],
    key: Option<Idempotent<'_>>,
) -> Result<Checkout> {
    let mut tx = db.begin().await?;
    let order = lock_open_order(&mut tx, db.backend(), user_id)
        .await?
        .ok_or_else(|| Error::not_found(None, "there is no open order"))?;
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM order_items WHERE order_id = $1 ORDER BY time_added, sku"
    );
    let lines: Vec<ItemRow> = tx.fetch_all(sqlx::query(&sql).bind(order.id)).await?;
    if lines.is_empty() {
        return Err(Error::invalid("order", "the open order is empty"));
    }
    let line_key = |line: &ItemRow| (line.sku.clone(), line.beer_id);
    let mut now_lines: Vec<_> = lines.iter().map(line_key).collect();
    let mut then_lines: Vec<_> = checked.iter().map(line_key).collect();
    now_lines.sort();
    then_lines.sort();
    if order.id != order_id || now_lines != then_lines {
        return Ok(Checkout::Changed);
    }
    let now = time::to_db(time::now());
    tx.execute(
        sqlx::query(
            "UPDATE orders SET status = 'CHECKED_OUT', time_closed = $1, time_modified = $1 WHERE id = $2",
        )
            .bind(&now)
            .bind(order.id),
    )
    .await?;
    let snapshot = finish(
        tx,
        db.backend(),
        user_id,
        key,
        order.id,
        ChangeKind::Checkout,
    )
    .await?;
    Ok(Checkout::Closed(snapshot))
}
