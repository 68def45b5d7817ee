//! The `User` entity. Private fields are shown to the user themself only.

use async_graphql::{Context, Object, Result, ID};
use taproom_common::{auth, time::Timestamp};

use crate::db::UserRow;

/// A customer. (users owns it; key: id)
pub struct User(pub UserRow);

impl User {
    /// Whether the request's caller is this user. An invalid token is an error, not "someone else".
    async fn is_self(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(auth::caller(ctx)
            .await?
            .is_some_and(|caller| caller.user_id == self.0.id))
    }
}

/// A customer. (users owns it; key: id)
#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn username(&self) -> &str {
        &self.0.username
    }

    /// Only the user themself sees it; null for anyone else.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self.is_self(ctx).await?.then_some(self.0.email.as_str()))
    }

    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }

    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }

    /// Only the user themself sees it; false for anyone else.
    async fn is_admin(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.0.is_admin != 0 && self.is_self(ctx).await?)
    }

    async fn time_registered(&self) -> Result<Timestamp> {
        Timestamp::from_db(&self.0.time_registered)
    }

    async fn time_modified(&self) -> Result<Option<Timestamp>> {
        self.0
            .time_modified
            .as_deref()
            .map(Timestamp::from_db)
            .transpose()
    }
}
