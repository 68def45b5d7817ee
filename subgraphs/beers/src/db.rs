//! Every SQL statement of the beers subgraph. Batch lookups take a slice of keys and cost one statement.

use taproom_common::{
    db::{is_unique_violation, placeholders, Backend, Db, Migrations, Statement},
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
}

const COLUMNS: &str = "id, sku, name, price_cents, image, time_created, time_modified";

/// A new beer, already validated.
pub struct NewBeer<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub price_cents: i64,
    pub image: Option<&'a str>,
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
        "INSERT INTO beers (sku, name, name_key, sku_key, price_cents, image, time_created)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
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

/// `LIKE` pattern matching `search` anywhere, with `%`, `_` and `\` taken literally.
fn contains_pattern(search: &str) -> String {
    let mut pattern = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The search condition on parameter `$n`.
fn search_condition(n: usize) -> String {
    format!("(name_key LIKE ${n} ESCAPE '\\' OR sku_key LIKE ${n} ESCAPE '\\')")
}

/// Up to `limit` beers after the `(name, sku)` position `after`, in catalog order, matching `search`
/// (case-insensitive, in name or sku).
pub async fn page(
    db: &Db,
    search: Option<&str>,
    after: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<BeerRow>> {
    let c = collate(db);
    let mut conditions = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    if let Some(search) = search {
        texts.push(contains_pattern(search));
        conditions.push(search_condition(texts.len()));
    }
    if let Some((name, sku)) = after {
        texts.push(name.to_owned());
        let n = texts.len();
        texts.push(sku.to_owned());
        let s = texts.len();
        conditions.push(format!(
            "(name{c} > ${n} OR (name = ${n} AND sku{c} > ${s}))"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM beers {filter} ORDER BY name{c}, sku{c} LIMIT ${}",
        texts.len() + 1
    );
    let query = texts
        .iter()
        .fold(sqlx::query(&sql), |q, text| q.bind(text.as_str()))
        .bind(limit);
    Ok(db.fetch_all(query).await?)
}

/// How many beers match `search` (all of them without one).
pub async fn count(db: &Db, search: Option<&str>) -> Result<i64> {
    let (count,): (i64,) = match search {
        Some(search) => {
            let sql = format!("SELECT COUNT(*) FROM beers WHERE {}", search_condition(1));
            db.fetch_one(sqlx::query(&sql).bind(contains_pattern(search)))
                .await?
        }
        None => {
            db.fetch_one(sqlx::query("SELECT COUNT(*) FROM beers"))
                .await?
        }
    };
    Ok(count)
}

/// The fields to change; `None` leaves a field as it is, `Some(None)` clears the image.
#[derive(Default)]
pub struct BeerChange<'a> {
    pub name: Option<&'a str>,
    pub price_cents: Option<i64>,
    pub image: Option<Option<&'a str>>,
}

/// Changes the given fields of the beer with `sku`; `None` if there is none.
pub async fn update_beer(db: &Db, sku: &str, change: &BeerChange<'_>) -> Result<Option<BeerRow>> {
    // Fixed parameter positions: $1 time, $2 name, $3 name_key, $4 price, $5 image, $6 sku.
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
    let sql = format!(
        "UPDATE beers SET {} WHERE sku = $6 RETURNING {COLUMNS}",
        sets.join(", ")
    );
    let query = sqlx::query(&sql)
        .bind(time::to_db(time::now()))
        .bind(change.name)
        .bind(change.name.map(str::to_lowercase))
        .bind(change.price_cents)
        .bind(change.image.flatten())
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
        assert_eq!(contains_pattern("ЗАГ"), "%заг%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
