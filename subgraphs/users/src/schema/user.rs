//! The `User` entity and pages of accounts. Private fields are shown to the user themself only (names also to admins).

use async_graphql::{Context, Object, Result, ID};
use taproom_common::{
    auth,
    paging::{self, PageInfo},
    time::Timestamp,
};

use crate::{
    db::{self, UserRow},
    AppState,
};

/// A customer. (users owns it; key: id)
pub struct User {
    pub row: UserRow,
    /// Set when the operation itself proved who the viewer is (the account a sign-in or sign-up
    /// returns): private fields then need no token, and a stale one in the request cannot hide them.
    pub viewer_is_self: bool,
}

impl User {
    /// An account seen by whoever the request's token says.
    pub fn seen_by_caller(row: UserRow) -> Self {
        User {
            row,
            viewer_is_self: false,
        }
    }

    /// The account the operation just authenticated, seen by its owner.
    pub fn seen_by_self(row: UserRow) -> Self {
        User {
            row,
            viewer_is_self: true,
        }
    }

    /// Whether the request's caller is this user. An invalid token is an error, not "someone else".
    async fn is_self(&self, ctx: &Context<'_>) -> Result<bool> {
        if self.viewer_is_self {
            return Ok(true);
        }
        Ok(auth::caller(ctx)
            .await?
            .is_some_and(|caller| caller.user_id == self.row.id))
    }

    /// Whether the caller may see the account's real name: the user themself or an admin.
    async fn may_see_names(&self, ctx: &Context<'_>) -> Result<bool> {
        if self.viewer_is_self {
            return Ok(true);
        }
        Ok(auth::caller(ctx)
            .await?
            .is_some_and(|caller| caller.user_id == self.row.id || caller.is_admin))
    }
}

/// A customer. (users owns it; key: id)
#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn username(&self) -> &str {
        &self.row.username
    }

    /// Only the user themself sees it; null for anyone else.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self.is_self(ctx).await?.then_some(self.row.email.as_str()))
    }

    /// Only the user themself and admins see it; null for anyone else.
    async fn first_name(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .may_see_names(ctx)
            .await?
            .then_some(self.row.first_name.as_deref())
            .flatten())
    }

    /// Only the user themself and admins see it; null for anyone else.
    async fn last_name(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .may_see_names(ctx)
            .await?
            .then_some(self.row.last_name.as_deref())
            .flatten())
    }

    /// Only the user themself sees it; false for anyone else.
    async fn is_admin(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.row.is_admin != 0 && self.is_self(ctx).await?)
    }

    async fn time_registered(&self) -> Result<Timestamp> {
        Timestamp::from_db(&self.row.time_registered)
    }

    async fn time_modified(&self) -> Result<Option<Timestamp>> {
        self.row
            .time_modified
            .as_deref()
            .map(Timestamp::from_db)
            .transpose()
    }
}

/// A cursor: the opaque form of an account's position (its username key) in username order.
fn encode_cursor(user: &User) -> String {
    paging::encode_cursor(&crate::validate::username_key(&user.row.username))
}

/// One page of accounts, in username order.
pub struct UserConnection {
    pub users: Vec<User>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// The search the page was made with, for `totalCount`.
    pub search: Option<String>,
}

#[Object]
impl UserConnection {
    async fn edges(&self) -> Vec<UserEdge<'_>> {
        self.users.iter().map(|user| UserEdge { user }).collect()
    }

    async fn page_info(&self) -> PageInfo {
        PageInfo::of(
            &self.users,
            self.has_next_page,
            self.has_previous_page,
            encode_cursor,
        )
    }

    /// How many accounts match the search across all pages (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let state = ctx.data_unchecked::<AppState>();
        let count = db::count_matching(&state.db, self.search.as_deref()).await?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

/// An account and its cursor.
pub struct UserEdge<'a> {
    user: &'a User,
}

#[Object]
impl UserEdge<'_> {
    async fn cursor(&self) -> String {
        encode_cursor(self.user)
    }

    async fn node(&self) -> &User {
        self.user
    }
}
