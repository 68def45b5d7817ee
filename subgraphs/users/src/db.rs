//! Every SQL statement of the users subgraph. Batch lookups take a slice of keys and cost one statement.

use chrono::{DateTime, Utc};
use taproom_common::{
    auth::Caller,
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

/// An account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// 0 or 1 (the `Any` driver has no portable boolean).
    pub is_admin: i64,
    pub time_registered: String,
    pub time_modified: Option<String>,
}

/// The columns of [`UserRow`]. Booleans are read as integers: PostgreSQL stores a BOOLEAN, SQLite an
/// INTEGER, and the `Any` driver reads neither as the other.
const USER_COLUMNS: &str = "id, username, email, first_name, last_name, \
    CASE WHEN is_admin THEN 1 ELSE 0 END AS is_admin, time_registered, time_modified";

/// A new account.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub is_admin: bool,
}

/// Turns a unique violation into the CONFLICT naming the taken field.
fn conflict(error: sqlx::Error) -> Error {
    if is_unique_violation(&error, "username_key") {
        Error::Conflict { field: "username" }
    } else if is_unique_violation(&error, "email_key") {
        Error::Conflict { field: "email" }
    } else {
        Error::Database(error)
    }
}

/// Inserts an account; CONFLICT if the username or email is taken in any case.
pub async fn insert_user(db: &Db, user: &NewUser<'_>) -> Result<UserRow> {
    let sql = insert_user_sql();
    db.fetch_one(bind_new_user(sqlx::query(&sql), user))
        .await
        .map_err(conflict)
}

fn insert_user_sql() -> String {
    format!(
        "INSERT INTO users (username, username_key, email, email_key, password_hash, first_name, last_name, is_admin, time_registered)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {USER_COLUMNS}"
    )
}

fn bind_new_user<'q>(query: Statement<'q>, user: &NewUser<'q>) -> Statement<'q> {
    query
        .bind(user.username)
        .bind(crate::validate::username_key(user.username))
        .bind(user.email)
        .bind(crate::validate::email_key(user.email))
        .bind(user.password_hash)
        .bind(user.first_name)
        .bind(user.last_name)
        .bind(user.is_admin)
        .bind(time::to_db(time::now()))
}

/// Creates `users` if there are no accounts at all, all or none (one transaction: an interrupted
/// first start leaves no accounts, and the next start creates them); whether it did.
pub async fn insert_into_empty(db: &Db, users: &[NewUser<'_>]) -> Result<bool> {
    let mut tx = db.begin().await?;
    let (count,): (i64,) = tx
        .fetch_one(sqlx::query("SELECT COUNT(*) FROM users"))
        .await?;
    if count > 0 {
        return Ok(false);
    }
    let sql = insert_user_sql();
    for user in users {
        let _: UserRow = tx
            .fetch_one(bind_new_user(sqlx::query(&sql), user))
            .await
            .map_err(conflict)?;
    }
    tx.commit().await?;
    Ok(true)
}

/// The accounts with these ids, in no particular order; unknown ids are simply absent.
pub async fn users_by_ids(db: &Db, ids: &[i64]) -> Result<Vec<UserRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let query = ids
        .iter()
        .fold(sqlx::query(&sql), |query, id| query.bind(*id));
    Ok(db.fetch_all(query).await?)
}

/// Whether a username is taken, in any case.
pub async fn username_exists(db: &Db, username: &str) -> Result<bool> {
    if crate::validate::username(username).is_err() {
        // No account has it, and it may hold a NUL, which PostgreSQL refuses in text.
        return Ok(false);
    }
    let row: Option<(i64,)> = db
        .fetch_optional(
            sqlx::query("SELECT id FROM users WHERE username_key = $1")
                .bind(crate::validate::username_key(username)),
        )
        .await?;
    Ok(row.is_some())
}

/// The id and password hash of the account with this username, in any case.
pub async fn credentials_by_username(db: &Db, username: &str) -> Result<Option<(i64, String)>> {
    if crate::validate::username(username).is_err() {
        // No account has it, and it may hold a NUL, which PostgreSQL refuses in text.
        return Ok(None);
    }
    Ok(db
        .fetch_optional(
            sqlx::query("SELECT id, password_hash FROM users WHERE username_key = $1")
                .bind(crate::validate::username_key(username)),
        )
        .await?)
}

/// The password hash of an account.
pub async fn password_hash(db: &Db, user_id: i64) -> Result<Option<String>> {
    let row: Option<(String,)> = db
        .fetch_optional(sqlx::query("SELECT password_hash FROM users WHERE id = $1").bind(user_id))
        .await?;
    Ok(row.map(|(hash,)| hash))
}

/// Stores a token's hash for `user_id`, valid until `expires`.
pub async fn insert_token(
    db: &Db,
    user_id: i64,
    token_hash: &str,
    expires: DateTime<Utc>,
) -> Result<()> {
    db.execute(
        sqlx::query(
            "INSERT INTO tokens (token_hash, user_id, time_created, time_expires) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(time::to_db(time::now()))
        .bind(time::to_db(expires)),
    )
    .await?;
    Ok(())
}

/// Stores a token's hash for `user_id` only if the account's password hash is still
/// `password_hash` (the one just verified), so a sign-in racing a password change cannot keep a
/// token made with the old password. Whether it stored the token.
pub async fn insert_token_if_password(
    db: &Db,
    user_id: i64,
    token_hash: &str,
    expires: DateTime<Utc>,
    password_hash: &str,
) -> Result<bool> {
    let done = db
        .execute(
            sqlx::query(
                "INSERT INTO tokens (token_hash, user_id, time_created, time_expires)
                 SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND password_hash = $5",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(time::to_db(time::now()))
            .bind(time::to_db(expires))
            .bind(password_hash),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The caller a token hash belongs to, if it is stored and not expired.
pub async fn caller_by_token(db: &Db, token_hash: &str) -> Result<Option<Caller>> {
    let row: Option<(i64, i64)> = db
        .fetch_optional(
            sqlx::query(
                "SELECT u.id, CASE WHEN u.is_admin THEN 1 ELSE 0 END FROM tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_hash = $1 AND t.time_expires > $2",
            )
            .bind(token_hash)
            .bind(time::to_db(time::now())),
        )
        .await?;
    Ok(row.map(|(user_id, is_admin)| Caller {
        user_id,
        is_admin: is_admin != 0,
    }))
}

/// Revokes one token; whether it existed.
pub async fn delete_token(db: &Db, token_hash: &str) -> Result<bool> {
    let done = db
        .execute(sqlx::query("DELETE FROM tokens WHERE token_hash = $1").bind(token_hash))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Changes the password and replaces every token of the account with the new one, atomically.
pub async fn change_password(
    db: &Db,
    user_id: i64,
    password_hash: &str,
    new_token_hash: &str,
    expires: DateTime<Utc>,
) -> Result<()> {
    let now = time::to_db(time::now());
    let mut tx = db.begin().await?;
    tx.execute(
        sqlx::query("UPDATE users SET password_hash = $1, time_modified = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(&now)
            .bind(user_id),
    )
    .await?;
    tx.execute(sqlx::query("DELETE FROM tokens WHERE user_id = $1").bind(user_id))
        .await?;
    tx.execute(
        sqlx::query(
            "INSERT INTO tokens (token_hash, user_id, time_created, time_expires) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_token_hash)
        .bind(user_id)
        .bind(&now)
        .bind(time::to_db(expires)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The profile fields to change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChange<'a> {
    pub email: Option<&'a str>,
    pub first_name: Option<Option<&'a str>>,
    pub last_name: Option<Option<&'a str>>,
}

/// Applies a profile change; CONFLICT if the new email is taken. Returns the updated account.
pub async fn update_profile(
    db: &Db,
    user_id: i64,
    change: &ProfileChange<'_>,
) -> Result<Option<UserRow>> {
    let mut sets = vec!["time_modified = $1"];
    let mut values: Vec<Option<String>> = vec![Some(time::to_db(time::now()))];
    if let Some(email) = change.email {
        sets.extend(["email = $2", "email_key = $3"]);
        values.extend([
            Some(email.to_owned()),
            Some(crate::validate::email_key(email)),
        ]);
    }
    if let Some(first_name) = change.first_name {
        sets.push("first_name = $4");
        values.resize(3, None);
        values.push(first_name.map(str::to_owned));
    }
    if let Some(last_name) = change.last_name {
        sets.push("last_name = $5");
        values.resize(4, None);
        values.push(last_name.map(str::to_owned));
    }
    values.resize(5, None);
    let sql = format!(
        "UPDATE users SET {} WHERE id = $6 RETURNING {USER_COLUMNS}",
        sets.join(", ")
    );
    let query = values
        .into_iter()
        .fold(sqlx::query(&sql), |query, value| query.bind(value))
        .bind(user_id);
    db.fetch_optional(query).await.map_err(conflict)
}

/// Deletes an account and, by cascade, all its tokens; whether it existed.
pub async fn delete_user(db: &Db, user_id: i64) -> Result<bool> {
    let done = db
        .execute(sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id))
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Makes an existing account (by username, any case) an admin; whether it existed.
pub async fn promote_to_admin(db: &Db, username: &str) -> Result<bool> {
    let done = db
        .execute(
            sqlx::query(
                "UPDATE users SET is_admin = $1, time_modified = $2 WHERE username_key = $3",
            )
            .bind(true)
            .bind(time::to_db(time::now()))
            .bind(crate::validate::username_key(username)),
        )
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The pattern matching usernames that contain `search` in any case.
fn username_pattern(search: &str) -> String {
    contains_pattern(&crate::validate::username_key(search))
}

/// Usernames sort in byte order; PostgreSQL needs to be told, whatever its locale.
fn collate(db: &Db) -> &'static str {
    match db.backend() {
        Backend::Postgres => " COLLATE \"C\"",
        Backend::Sqlite => "",
    }
}

/// Up to `limit` accounts whose username contains `search` (any case), in username order, after the
/// account whose username key is `after`.
pub async fn page_users(
    db: &Db,
    search: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<UserRow>> {
    let c = collate(db);
    let mut conditions = Vec::new();
    let mut texts = Vec::new();
    if let Some(search) = search {
        texts.push(username_pattern(search));
        conditions.push(format!("username_key LIKE ${} ESCAPE '\\'", texts.len()));
    }
    if let Some(after) = after {
        texts.push(after.to_owned());
        conditions.push(format!("username_key{c} > ${}", texts.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users {filter} ORDER BY username_key{c} LIMIT ${}",
        texts.len() + 1
    );
    let query = texts
        .iter()
        .fold(sqlx::query(&sql), |query, text| query.bind(text.as_str()))
        .bind(limit);
    Ok(db.fetch_all(query).await?)
}

/// How many accounts' usernames contain `search` (all accounts without one).
pub async fn count_matching(db: &Db, search: Option<&str>) -> Result<i64> {
    let (count,): (i64,) = match search {
        Some(search) => {
            db.fetch_one(
                sqlx::query("SELECT COUNT(*) FROM users WHERE username_key LIKE $1 ESCAPE '\\'")
                    .bind(username_pattern(search)),
            )
            .await?
        }
        None => {
            db.fetch_one(sqlx::query("SELECT COUNT(*) FROM users"))
                .await?
        }
    };
    Ok(count)
}

/// How many accounts exist.
pub async fn count_users(db: &Db) -> Result<i64> {
    count_matching(db, None).await
}
