//! Write operations of the users subgraph: sign-up, sign-in, tokens, profile and account.

use std::time::Instant;

use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use taproom_common::{auth, trust::ClientAddress};

use crate::{
    credentials::{hash_password, verify_password},
    db::{self, NewUser, ProfileChange},
    error::Error,
    schema::User,
    throttle::Attempt,
    validate, AppState,
};

/// The users subgraph's root mutation type.
pub struct Mutation;

/// A fresh token and the account it signs in.
#[derive(SimpleObject)]
pub struct AuthPayload {
    token: String,
    user: User,
}

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3 to 32 characters: letters, digits, '.', '_' or '-'. Unique, case-insensitive.
    username: String,
    /// A valid address. Unique, case-insensitive.
    email: String,
    /// 8 to 128 characters, with a lowercase letter, an uppercase letter and a digit.
    password: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// Profile fields to change; omitted fields stay as they are, null clears a name.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    email: MaybeUndefined<String>,
    first_name: MaybeUndefined<String>,
    last_name: MaybeUndefined<String>,
}

/// An empty name means no name.
fn non_empty(name: Option<&str>) -> Option<&str> {
    name.filter(|n| !n.is_empty())
}

/// Issues and stores a new token for `user_id`.
async fn issue_token(state: &AppState, user_id: i64) -> Result<String, Error> {
    let (token, hash) = state.keys.issue();
    db::insert_token(&state.db, user_id, &hash, state.token_expiry()).await?;
    Ok(token)
}

/// The caller's account row; a token whose account is gone cannot be used.
async fn caller_account(ctx: &Context<'_>) -> Result<(i64, db::UserRow)> {
    let caller = auth::require_caller(ctx).await?;
    let state = ctx.data_unchecked::<AppState>();
    let row = db::users_by_ids(&state.db, &[caller.user_id])
        .await?
        .pop()
        .ok_or(Error::AccountGone)?;
    Ok((caller.user_id, row))
}

/// Takes a sign-in attempt for `username` from the request's client, or refuses with
/// `RATE_LIMITED` ([`crate::throttle`]).
async fn attempt(ctx: &Context<'_>, username: &str) -> Result<Attempt, Error> {
    let state = ctx.data_unchecked::<AppState>();
    let client = ctx.data_opt::<ClientAddress>().and_then(|c| c.0);
    state
        .throttle
        .attempt(&validate::username_key(username), client, Instant::now())
        .await
        .map_err(|wait| {
            tracing::warn!(?client, "sign-in attempts throttled");
            Error::RateLimited {
                retry_after_seconds: wait,
            }
        })
}

/// Re-checks the caller's password before a sensitive change; wrong guesses are throttled like
/// failed sign-ins.
async fn check_password(
    ctx: &Context<'_>,
    account: &db::UserRow,
    field: &'static str,
    password: String,
) -> Result<(), Error> {
    let state = ctx.data_unchecked::<AppState>();
    let attempt = attempt(ctx, &account.username).await?;
    let stored = db::password_hash(&state.db, account.id)
        .await?
        .ok_or(Error::AccountGone)?;
    if verify_password(password, Some(stored)).await? {
        attempt.succeeded();
        Ok(())
    } else {
        attempt.failed(Instant::now());
        Err(Error::WrongPassword { field })
    }
}

#[Object]
impl Mutation {
    /// Create an account and sign in. (users)
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let state = ctx.data_unchecked::<AppState>();
        validate::username(&input.username)?;
        validate::email(&input.email)?;
        validate::password("password", &input.password)?;
        let first_name = non_empty(input.first_name.as_deref());
        let last_name = non_empty(input.last_name.as_deref());
        if let Some(name) = first_name {
            validate::name("firstName", name)?;
        }
        if let Some(name) = last_name {
            validate::name("lastName", name)?;
        }
        let password_hash = hash_password(input.password).await?;
        let row = db::insert_user(
            &state.db,
            &NewUser {
                username: &input.username,
                email: &input.email,
                password_hash: &password_hash,
                first_name,
                last_name,
                is_admin: false,
            },
        )
        .await?;
        let token = issue_token(state, row.id).await?;
        tracing::info!(user_id = row.id, "account registered");
        Ok(AuthPayload {
            token,
            user: User::seen_by_self(row),
        })
    }

    /// Sign in; a new token each call. Wrong username or password: UNAUTHENTICATED, same message for both. (users)
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<AuthPayload> {
        let state = ctx.data_unchecked::<AppState>();
        let attempt = attempt(ctx, &username).await?;
        let found = db::credentials_by_username(&state.db, &username).await?;
        let (user_id, stored) = match found {
            Some((id, hash)) => (Some(id), Some(hash)),
            None => (None, None),
        };
        // An unknown username is checked against a dummy hash: the same work, the same answer.
        let valid = verify_password(password, stored.clone()).await?;
        let (Some(user_id), Some(verified_hash)) = (user_id.filter(|_| valid), stored) else {
            attempt.failed(Instant::now());
            return Err(Error::BadCredentials.into());
        };
        let (token, token_hash) = state.keys.issue();
        let stored = db::insert_token_if_password(
            &state.db,
            user_id,
            &token_hash,
            state.token_expiry(),
            &verified_hash,
        )
        .await?;
        if !stored {
            // The password changed (or the account went) while we were verifying the old one.
            attempt.failed(Instant::now());
            return Err(Error::BadCredentials.into());
        }
        attempt.succeeded();
        let row = db::users_by_ids(&state.db, &[user_id])
            .await?
            .pop()
            .ok_or(Error::BadCredentials)?;
        Ok(AuthPayload {
            token,
            user: User::seen_by_self(row),
        })
    }

    /// Revoke the caller's token, everywhere. (users)
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        auth::require_caller(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let token = auth::bearer_token(ctx).ok_or(Error::Unauthenticated)?;
        if db::delete_token(&state.db, &state.keys.hash(token)).await? {
            Ok(true)
        } else {
            // Revoked by a concurrent request between verification and now.
            Err(Error::Unauthenticated.into())
        }
    }

    /// Change the caller's profile; only the given fields change. (users)
    async fn update_profile(&self, ctx: &Context<'_>, input: UpdateProfileInput) -> Result<User> {
        let (user_id, _) = caller_account(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        let mut change = ProfileChange::default();
        match &input.email {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                return Err(Error::invalid("email", "email cannot be removed").into())
            }
            MaybeUndefined::Value(email) => {
                validate::email(email)?;
                change.email = Some(email.as_str());
            }
        }
        for (field, value, slot) in [
            ("firstName", &input.first_name, &mut change.first_name),
            ("lastName", &input.last_name, &mut change.last_name),
        ] {
            match value {
                MaybeUndefined::Undefined => {}
                MaybeUndefined::Null => *slot = Some(None),
                MaybeUndefined::Value(name) => {
                    validate::name(field, name)?;
                    *slot = Some(non_empty(Some(name.as_str())));
                }
            }
        }
        let row = db::update_profile(&state.db, user_id, &change)
            .await?
            .ok_or(Error::AccountGone)?;
        Ok(User::seen_by_caller(row))
    }

    /// Change the caller's password; revokes every other token of the caller and returns a fresh one. (users)
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<AuthPayload> {
        let (user_id, account) = caller_account(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        validate::password("newPassword", &new_password)?;
        check_password(ctx, &account, "currentPassword", current_password).await?;
        let password_hash = hash_password(new_password).await?;
        let (token, token_hash) = state.keys.issue();
        db::change_password(
            &state.db,
            user_id,
            &password_hash,
            &token_hash,
            state.token_expiry(),
        )
        .await?;
        let row = db::users_by_ids(&state.db, &[user_id])
            .await?
            .pop()
            .ok_or(Error::AccountGone)?;
        tracing::info!(user_id, "password changed; other tokens revoked");
        Ok(AuthPayload {
            token,
            user: User::seen_by_self(row),
        })
    }

    /// Delete the caller's account after re-checking the password; revokes all its tokens. (users)
    async fn delete_account(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let (user_id, account) = caller_account(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        check_password(ctx, &account, "password", password).await?;
        if !db::delete_user(&state.db, user_id).await? {
            return Err(Error::AccountGone.into());
        }
        tracing::info!(user_id, "account deleted");
        Ok(true)
    }
}
