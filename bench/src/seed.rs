//! Volume data: 1,000 users, 500 beers and 20,000 orders of 1 to 5 lines, written straight into the
//! three subgraphs' freshly migrated SQLite databases.
//!
//! Going through the API would cost an argon2 hash per account and about 80,000 mutations; the rows
//! written here are exactly the rows those mutations write (same tables, same money and time formats),
//! in one transaction per database, from a fixed random seed, so every run measures the same data.
//! The services' own `migrate` commands create the tables first ([`databases`], the run's first phase).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::{ensure, Context, Result};
use chrono::{Duration, TimeZone, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sqlx::{sqlite::SqliteConnectOptions, Connection, SqliteConnection};
use taproom_common::time::to_db;
use taproom_users::credentials::{hash_password, TokenKeys};

use crate::subgraphs::SHOP;

/// The three seeded databases, as the subgraphs are started on them.
pub(crate) struct Databases {
    /// Where `users.db`, `beers.db` and `orders.db` are (absolute).
    dir: PathBuf,
    /// The users subgraph's `SECRET_KEY`: the tokens in [`Model::tokens`] are hashed under it.
    pub(crate) secret_key: String,
    /// What was written.
    pub(crate) model: Model,
}

impl Databases {
    /// The `DATABASE_URL` of subgraph `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        database_url(&self.dir, name)
    }
}

fn database_url(dir: &Path, name: &str) -> String {
    format!("sqlite:{}", dir.join(format!("{name}.db")).display())
}

/// Migrates a fresh database per subgraph in `dir` with `taproom <service> migrate`, then writes
/// `volume` into them under a new random secret key.
pub(crate) async fn databases(taproom: &Path, dir: &Path, volume: Volume) -> Result<Databases> {
    let secret_key = random_secret();
    for service in SHOP {
        let status = tokio::process::Command::new(taproom)
            .args([service, "migrate"])
            .env("DATABASE_URL", database_url(dir, service))
            .env("RUST_LOG", "warn")
            .status()
            .await?;
        ensure!(
            status.success(),
            "taproom {service} migrate failed ({status})"
        );
    }
    ensure!(
        volume.signed_in > 0 && volume.beers > 5,
        "too little volume data to benchmark"
    );
    eprintln!(
        "seeding {} users ({} signed in), {} beers, {} orders ...",
        volume.users, volume.signed_in, volume.beers, volume.orders
    );
    let model = seed(dir, volume, &secret_key).await?;
    Ok(Databases {
        dir: dir.to_owned(),
        secret_key,
        model,
    })
}

fn random_secret() -> String {
    use rand::distributions::Alphanumeric;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

/// How much data to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Volume {
    pub(crate) users: usize,
    pub(crate) beers: usize,
    pub(crate) orders: usize,
    /// How many users get a sign-in token: the fixed set of authenticated clients.
    pub(crate) signed_in: usize,
}

/// What was written, as the benchmark needs it to build requests.
#[derive(Debug)]
pub(crate) struct Model {
    /// The signed-in users: (user id, bearer token).
    pub(crate) tokens: Vec<(i64, String)>,
    /// Every beer's sku, in insertion order.
    pub(crate) skus: Vec<String>,
}

/// The password of every generated account (argon2 hashed once and shared: hashing 1,000 times would
/// only slow the setup down).
const PASSWORD: &str = "Bench1234";

async fn connect(path: &std::path::Path) -> Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Writes the volume data into migrated, empty databases `users.db`, `beers.db` and `orders.db` in
/// `dir`, with tokens hashed under `secret_key` (the users subgraph must be started with the same key).
async fn seed(dir: &Path, volume: Volume, secret_key: &str) -> Result<Model> {
    let mut rng = StdRng::seed_from_u64(20_261_129);
    let epoch = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("a valid fixed date");

    // Users and tokens.
    let hash = hash_password(PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("hashing the bench password: {e:?}"))?;
    let keys = TokenKeys::new(secret_key);
    let mut db = connect(&dir.join("users.db")).await?;
    let mut tx = db.begin().await?;
    let mut tokens = Vec::with_capacity(volume.signed_in);
    for i in 1..=volume.users {
        let username = format!("user{i:04}");
        let email = format!("{username}@bench.example");
        let registered = to_db(epoch + Duration::minutes(i as i64));
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, username_key, email, email_key, password_hash, first_name, last_name, time_registered)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&username)
        .bind(&username)
        .bind(&email)
        .bind(&email)
        .bind(&hash)
        .bind(format!("First{i}"))
        .bind(format!("Last{i}"))
        .bind(&registered)
        .fetch_one(&mut *tx)
        .await
        .context("inserting a user")?;
        if tokens.len() < volume.signed_in {
            let (token, token_hash) = keys.issue();
            sqlx::query(
                "INSERT INTO tokens (token_hash, user_id, time_created, time_expires) VALUES (?, ?, ?, ?)",
            )
            .bind(token_hash)
            .bind(id)
            .bind(to_db(Utc::now()))
            .bind(to_db(Utc::now() + Duration::days(30)))
            .execute(&mut *tx)
            .await
            .context("inserting a token")?;
            tokens.push((id, token));
        }
    }
    tx.commit().await?;

    // The catalog.
    let mut db = connect(&dir.join("beers.db")).await?;
    let mut tx = db.begin().await?;
    let styles = [
        "Lager", "Pilsner", "Porter", "Stout", "IPA", "Weizen", "Saison", "Bock",
    ];
    let mut skus = Vec::with_capacity(volume.beers);
    let mut prices = Vec::with_capacity(volume.beers);
    for i in 1..=volume.beers {
        let sku = format!("B{i:05}");
        let name = format!("Bench {} {i:04}", styles[i % styles.len()]);
        let price: i64 = rng.gen_range(99..=1_999);
        sqlx::query(
            "INSERT INTO beers (sku, name, name_key, sku_key, price_cents, image, time_created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&sku)
        .bind(&name)
        .bind(name.to_lowercase())
        .bind(sku.to_lowercase())
        .bind(price)
        .bind(format!("https://images.bench.example/{sku}.png"))
        .bind(to_db(epoch))
        .execute(&mut *tx)
        .await
        .context("inserting a beer")?;
        skus.push(sku);
        prices.push(price);
    }
    tx.commit().await?;

    // Orders: spread evenly over the users, 1 to 5 distinct lines each; each user's newest order is
    // still open, the others are checked out.
    let mut db = connect(&dir.join("orders.db")).await?;
    let mut tx = db.begin().await?;
    for i in 0..volume.orders {
        let user_id = (i % volume.users) as i64 + 1;
        let created = epoch + Duration::minutes(10 * i as i64);
        let open = i + volume.users >= volume.orders;
        let closed = (!open).then(|| to_db(created + Duration::minutes(3)));
        let order_id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (user_id, time_created, time_modified, time_closed, status) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(user_id)
        .bind(to_db(created))
        .bind(to_db(created + Duration::minutes(2)))
        .bind(&closed)
        .bind(if open { "OPEN" } else { "CHECKED_OUT" })
        .fetch_one(&mut *tx)
        .await
        .context("inserting an order")?;
        let lines = rng.gen_range(1..=5);
        let mut taken = BTreeSet::new();
        while taken.len() < lines {
            taken.insert(rng.gen_range(0..volume.beers));
        }
        for beer in taken {
            sqlx::query(
                "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents, time_added) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(order_id)
            .bind(&skus[beer])
            .bind(rng.gen_range(1..=12_i64))
            .bind(prices[beer])
            .bind(to_db(created + Duration::minutes(1)))
            .execute(&mut *tx)
            .await
            .context("inserting an order line")?;
        }
    }
    tx.commit().await?;

    Ok(Model { tokens, skus })
}
