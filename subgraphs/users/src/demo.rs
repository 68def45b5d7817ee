//! The demo accounts the local stack creates on its first start.

use taproom_common::db::Db;

use crate::{
    credentials::hash_password,
    db::{self, NewUser},
    error::Result,
};

/// A demo account: username, email, password, admin or not.
pub struct DemoAccount {
    pub username: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub is_admin: bool,
}

/// An admin and a customer. Demo data only: these credentials are printed and documented.
pub const DEMO_ACCOUNTS: [DemoAccount; 2] = [
    DemoAccount {
        username: "admin",
        email: "admin@taproom.example",
        password: "Admin1234",
        is_admin: true,
    },
    DemoAccount {
        username: "customer",
        email: "customer@taproom.example",
        password: "Customer1234",
        is_admin: false,
    },
];

/// Creates the demo accounts if there are no accounts at all, in one transaction; whether it did.
pub async fn seed(db: &Db) -> Result<bool> {
    if db::count_users(db).await? > 0 {
        return Ok(false);
    }
    let mut hashes = Vec::new();
    for account in &DEMO_ACCOUNTS {
        hashes.push(hash_password(account.password.to_owned()).await?);
    }
    let users: Vec<NewUser> = DEMO_ACCOUNTS
        .iter()
        .zip(&hashes)
        .map(|(account, password_hash)| NewUser {
            username: account.username,
            email: account.email,
            password_hash,
            first_name: None,
            last_name: None,
            is_admin: account.is_admin,
        })
        .collect();
    db::insert_into_empty(db, &users).await
}
