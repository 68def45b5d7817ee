//! Read operations of the users subgraph, and the `User` entity resolver the router calls.

use async_graphql::{dataloader::DataLoader, Context, Object, Result, ID};
use taproom_common::{auth, error::internal_error, paging};

use crate::{
    db,
    loader::UserLoader,
    schema::{User, UserConnection},
    validate, AppState,
};

/// The users subgraph's root query type.
pub struct Query;

/// Loads a user through the batching loader; ids that are not numbers name no user.
pub(crate) async fn load_user(ctx: &Context<'_>, id: &str) -> Result<Option<User>> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    let loader = ctx.data_unchecked::<DataLoader<UserLoader>>();
    let row = loader.load_one(id).await.map_err(|error| {
        tracing::error!(error = %error.message(), "loading users");
        internal_error()
    })?;
    Ok(row.map(User::seen_by_caller))
}

#[Object]
impl Query {
    /// The caller, from the bearer token: null when no token is sent; UNAUTHENTICATED for an invalid, expired or revoked one. (users)
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match auth::caller(ctx).await? {
            Some(caller) => load_user(ctx, &caller.user_id.to_string()).await,
            None => Ok(None),
        }
    }

    /// A user by id; null if none. (users)
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        load_user(ctx, &id).await
    }

    /// Whether a username is taken; for sign-up forms. (users)
    async fn username_exists(&self, ctx: &Context<'_>, username: String) -> Result<bool> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(db::username_exists(&state.db, &username).await?)
    }

    /// Every account, sorted by username, Relay-style pages, for admins (FORBIDDEN otherwise); search matches usernames, case-insensitive. Private fields follow User's rules: admins see names, not emails. (users)
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
    ) -> Result<UserConnection> {
        auth::require_admin(ctx).await?;
        let first = paging::first(first.unwrap_or(20))?;
        let after: Option<String> = after.as_deref().map(paging::decode_cursor).transpose()?;
        if let Some(search) = &search {
            validate::search(search)?;
        }
        let search = search.filter(|s| !s.is_empty());
        let state = ctx.data_unchecked::<AppState>();
        let rows = db::page_users(
            &state.db,
            search.as_deref(),
            after.as_deref(),
            first as i64 + 1,
        )
        .await?;
        let (rows, has_next_page) = paging::cut(rows, first);
        Ok(UserConnection {
            users: rows.into_iter().map(User::seen_by_caller).collect(),
            has_next_page,
            has_previous_page: after.is_some(),
            search,
        })
    }

    /// Resolves `User` references for the router, batched.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        load_user(ctx, &id).await
    }
}
