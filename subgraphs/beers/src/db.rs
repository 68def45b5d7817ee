//! Every SQL statement of the beers subgraph. Batch lookups take a slice of keys and cost one statement.

use taproom_common::{
    db::{contains_pattern, is_unique_violation, placeholders, Backend, Db, Migrations, Statement},
    time,
};

use crate::error::{Error, Result};

/// This service's migrations, one folder per dialect.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// A beer as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BeerRow {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub image: Option<String>,
    pub time_created: String,
    pub time_modified: Option<String>,
    pub description: Option<String>,
    /// Alcohol by volume in hundredths of a percent (0 to 10000).
    pub abv_hundredths: Option<i64>,
    /// 0 or 1 (the `Any` driver has no portable boolean).
    pub available: i64,
}

/// The columns of [`BeerRow`]. `available` is read as an integer: PostgreSQL stores a BOOLEAN,
/// SQLite an INTEGER, and the `Any` driver reads neither as the other.
const COLUMNS: &str = "id, sku, name, price_cents, image, time_created, time_modified, \
    description, abv_hundredths, CASE WHEN available THEN 1 ELSE 0 END AS available";

/// A new beer, already validated.
pub struct NewBeer<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub price_cents: i64,
    pub image: Option<&'a str>,
    pub description: Option<&'a str>,
    pub abv_hundredths: Option<i64>,
    pub available: bool,
}

/// The catalog's order is byte order; PostgreSQL needs to be told, whatever its locale.
fn collate(db: &Db) -> &'static str {
    match db.backend() {
        Backend::Postgres => " COLLATE \"C\"",
        Backend::Sqlite => "",
    }
}

/// Inserts a beer; `SkuTaken` if the sku exists.
pub async fn insert_beer(db: &Db, beer: &NewBeer<'_>) -> Result<BeerRow> {
    let sql = insert_sql();
    db.fetch_one(bind_new_beer(sqlx::query(&sql), beer))
        .await
        .map_err(|e| {
            if is_unique_violation(&e, "sku") {
                Error::SkuTaken
            } else {
                Error::Database(e)
            }
        })
}

fn insert_sql() -> String {
    format!(
        "INSERT INTO beers (sku, name, name_key, sku_key, price_cents, image, time_created,
                            description, abv_hundredths, available)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    )
}

fn bind_new_beer<'q>(query: Statement<'q>, beer: &NewBeer<'q>) -> Statement<'q> {
    query
        .bind(beer.sku)
        .bind(beer.name)
        .bind(beer.name.to_lowercase())
        .bind(beer.sku.to_lowercase())
        .bind(beer.price_cents)
        .bind(beer.image)
        .bind(time::to_db(time::now()))
        .bind(beer.description)
        .bind(beer.abv_hundredths)
        .bind(beer.available)
}

/// Adds `beers` if the catalog is empty, all or none (one transaction: an interrupted first start
/// leaves an empty catalog, which the next start fills); how many it added.
pub async fn insert_into_empty_catalog(db: &Db, beers: &[NewBeer<'_>]) -> Result<usize> {
    let mut tx = db.begin().await?;
    let (count,): (i64,) = tx
        .fetch_one(sqlx::query("SELECT COUNT(*) FROM beers"))
        .await?;
    if count > 0 {
        return Ok(0);
    }
    let sql = insert_sql();
    for beer in beers {
        let _: BeerRow = tx.fetch_one(bind_new_beer(sqlx::query(&sql), beer)).await?;
    }
    tx.commit().await?;
    Ok(beers.len())
}

/// The beers with these ids, in no particular order.
pub async fn beers_by_ids(db: &Db, ids: &[i64]) -> Result<Vec<BeerRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM beers WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let query = ids.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
    Ok(db.fetch_all(query).await?)
}

/// The beers with these skus, in no particular order.
pub async fn beers_by_skus(db: &Db, skus: &[String]) -> Result<Vec<BeerRow>> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM beers WHERE sku IN ({})",
        placeholders(1, skus.len())
    );
    let query = skus
        .iter()
        .fold(sqlx::query(&sql), |q, sku| q.bind(sku.as_str()));
    Ok(db.fetch_all(query).await?)
}

/// The pattern matching names and skus that contain `search` in any case.
fn search_pattern(search: &str) -> String {
    contains_pattern(&search.to_lowercase())
}

/// The search condition on parameter `$n`.
fn search_condition(n: usize) -> String {
    format!("(name_key LIKE ${n} ESCAPE '\\' OR sku_key LIKE ${n} ESCAPE '\\')")
}

/// Which beers a page or a count holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Case-insensitive text in the name or sku.
    pub search: Option<&'a str>,
    /// Only beers that can (`true`) or cannot (`false`) be ordered now.
    pub available: Option<bool>,
}

/// A filter's conditions, numbered from `$1`, and their parameters.
fn conditions(filter: Filter<'_>) -> (Vec<String>, Vec<String>, Option<bool>) {
    let mut conditions = Vec::new();
    let mut texts = Vec::new();
    if let Some(search) = filter.search {
        texts.push(search_pattern(search));
        conditions.push(search_condition(texts.len()));
    }
    (conditions, texts, filter.available)
}

/// The `available` condition on parameter `$n`.
fn available_condition(n: usize) -> String {
    format!("available = ${n}")
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

/// Up to `limit` beers after the `(name, sku)` position `after`, in catalog order, matching `filter`.
pub async fn page(
    db: &Db,
    filter: Filter<'_>,
    after: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<BeerRow>> {
    let c = collate(db);
    let (mut conditions, mut texts, available) = conditions(filter);
    if let Some((name, sku)) = after {
        texts.push(name.to_owned());
        let n = texts.len();
        texts.push(sku.to_owned());
        let s = texts.len();
        conditions.push(format!(
            "(name{c} > ${n} OR (name = ${n} AND sku{c} > ${s}))"
        ));
    }
    if available.is_some() {
        conditions.push(available_condition(texts.len() + 1));
    }
    let limit_at = texts.len() + 1 + usize::from(available.is_some());
    let sql = format!(
        "SELECT {COLUMNS} FROM beers {} ORDER BY name{c}, sku{c} LIMIT ${limit_at}",
        where_clause(&conditions)
    );
    let mut query = texts
        .iter()
        .fold(sqlx::query(&sql), |q, text| q.bind(text.as_str()));
    if let Some(available) = available {
        query = query.bind(available);
    }
    Ok(db.fetch_all(query.bind(limit)).await?)
}

/// How many beers match `filter`.
pub async fn count(db: &Db, filter: Filter<'_>) -> Result<i64> {
    let (mut conditions, texts, available) = conditions(filter);
    if available.is_some() {
        conditions.push(available_condition(texts.len() + 1));
    }
    let sql = format!("SELECT COUNT(*) FROM beers {}", where_clause(&conditions));
    let mut query = texts
        .iter()
        .fold(sqlx::query(&sql), |q, text| q.bind(text.as_str()));
    if let Some(available) = available {
        query = query.bind(available);
    }
    let (count,): (i64,) = db.fetch_one(query).await?;
    Ok(count)
}

/// The fields to change; `None` leaves a field as it is, `Some(None)` clears the image.
#[derive(Default)]
pub struct BeerChange<'a> {
    pub name: Option<&'a str>,
    pub price_cents: Option<i64>,
    pub image: Option<Option<&'a str>>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<&'a str>>,
    /// `Some(None)` clears the abv.
    pub abv_hundredths: Option<Option<i64>>,
    pub available: Option<bool>,
}

/// Changes the given fields of the beer with `sku`; `None` if there is none.
pub async fn update_beer(db: &Db, sku: &str, change: &BeerChange<'_>) -> Result<Option<BeerRow>> {
    // Fixed parameter positions: $1 time, $2 name, $3 name_key, $4 price, $5 image,
    // $6 description, $7 abv, $8 available, $9 sku (the last is always used, so PostgreSQL counts
    // every parameter).
    let mut sets = vec!["time_modified = $1"];
    if change.name.is_some() {
        sets.extend(["name = $2", "name_key = $3"]);
    }
    if change.price_cents.is_some() {
        sets.push("price_cents = $4");
    }
    if change.image.is_some() {
        sets.push("image = $5");
    }
    if change.description.is_some() {
        sets.push("description = $6");
    }
    if change.abv_hundredths.is_some() {
        sets.push("abv_hundredths = $7");
    }
    if change.available.is_some() {
        sets.push("available = $8");
    }
    let sql = format!(
        "UPDATE beers SET {} WHERE sku = $9 RETURNING {COLUMNS}",
        sets.join(", ")
    );
    let query = sqlx::query(&sql)
        .bind(time::to_db(time::now()))
        .bind(change.name)
        .bind(change.name.map(str::to_lowercase))
        .bind(change.price_cents)
        .bind(change.image.flatten())
        .bind(change.description.flatten())
        .bind(change.abv_hundredths.flatten())
        .bind(change.available.unwrap_or(true))
        .bind(sku);
    Ok(db.fetch_optional(query).await?)
}

/// Removes the beer with `sku`; whether it existed.
pub async fn delete_beer(db: &Db, sku: &str) -> Result<bool> {
    let done = db
        .execute(sqlx::query("DELETE FROM beers WHERE sku = $1").bind(sku))
        .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_take_wildcards_literally_and_fold_case() {
        assert_eq!(search_pattern("ЗАГ"), "%заг%");
        assert_eq!(search_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
