//! Taproom's users subgraph: accounts and the bearer tokens every other subgraph trusts.
//!
//! A tour of the crate:
//!
//! - [`config`]: the command line (`migrate`, `serve`, `sdl`, `create-admin`), every flag also an env var.
//! - [`db`]: every SQL statement; [`loader`]: the DataLoader the `User` entity resolver goes through.
//! - [`schema`]: `Query`, `Mutation` and the `User` entity, exported as federation v2 SDL.
//! - [`credentials`]: argon2id passwords (a bounded pool), random tokens stored as keyed hashes;
//!   [`validate`]: input rules; [`throttle`]: failed sign-ins slowed per username and client address.
//! - [`app`]: the HTTP app, `/graphql` and `/health` from `taproom-common` plus `POST /auth/introspect`,
//!   which the other subgraphs call to verify a caller's token (see the README's "Tokens").

pub mod config;
pub mod credentials;
pub mod db;
pub mod demo;
pub mod error;
pub mod loader;
pub mod schema;
pub mod throttle;
pub mod validate;

use std::{future::Future, io::Read, sync::Arc};

use anyhow::Context as _;
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use chrono::{DateTime, Utc};
use taproom_common::{
    auth::{Authenticator, BoxFuture, Caller, Credentials, Freshness, Introspection, Unavailable},
    db::Db,
    http::{graphql_app_with, Limits},
    service, trust,
};
use tokio::net::TcpListener;

use crate::{
    config::{Cli, Command, CreateAdminArgs, ServeArgs},
    credentials::TokenKeys,
    throttle::Throttle,
};

/// What the schema and HTTP handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The accounts database.
    pub db: Db,
    /// Issues and hashes tokens under `SECRET_KEY`.
    pub keys: TokenKeys,
    /// How long a new token stays valid.
    pub token_ttl: chrono::Duration,
    /// Failed sign-ins of this process, per username and client address.
    pub throttle: Arc<Throttle>,
}

impl AppState {
    /// When a token issued now expires.
    pub fn token_expiry(&self) -> DateTime<Utc> {
        taproom_common::time::now() + self.token_ttl
    }
}

/// Verifies tokens against this service's own database: revocation takes effect at once here.
pub struct LocalAuthenticator {
    pub db: Db,
    pub keys: TokenKeys,
}

impl Authenticator for LocalAuthenticator {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        _freshness: Freshness,
    ) -> BoxFuture<'a, Result<Option<Caller>, Unavailable>> {
        Box::pin(async move {
            db::caller_by_token(&self.db, &self.keys.hash(token))
                .await
                .map_err(|e| Unavailable(e.message()))
        })
    }
}

/// The whole HTTP app: `/graphql`, `/health` and `/auth/introspect`.
pub fn app(state: AppState, limits: Limits) -> Router {
    let introspect = Router::new()
        .route("/auth/introspect", post(introspect))
        .with_state(state.clone());
    let introspect = trust::guard(introspect, limits.secret.clone());
    graphql_app_with(schema::schema(state.clone()), state.db, limits, introspect)
}

/// `POST /auth/introspect` with `Authorization: Bearer <token>`: whether the token is valid now, and
/// whose it is. Presenting the token is the proof of holding it, so this reveals nothing `me` does not.
async fn introspect(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let credentials =
        Credentials::from_header(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()));
    let Credentials::Bearer(token) = credentials else {
        return Json(Introspection {
            active: false,
            caller: None,
        })
        .into_response();
    };
    let authenticator = LocalAuthenticator {
        db: state.db,
        keys: state.keys,
    };
    match authenticator.verify(&token, Freshness::Now).await {
        Ok(caller) => Json(Introspection {
            active: caller.is_some(),
            caller,
        })
        .into_response(),
        Err(error) => {
            tracing::error!(%error, "token introspection failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "token verification unavailable",
            )
                .into_response()
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(args) => {
            service::migrate(&args.database_url, &db::migrations(), "users").await
        }
        Command::Sdl => {
            print!("{}", schema::sdl());
            Ok(())
        }
        Command::CreateAdmin(args) => create_admin(args).await,
        Command::Serve(args) => {
            let listener = service::listen(args.listen).await?;
            serve(args, listener, taproom_common::http::shutdown_signal()).await
        }
    }
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let keys = TokenKeys::new(args.secret_key()?);
    let db = service::open_migrated(&args.db.database_url, &db::migrations()).await?;
    let state = AppState {
        db: db.clone(),
        keys,
        token_ttl: chrono::Duration::hours(i64::from(args.token_ttl_hours)),
        throttle: Arc::default(),
    };
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        secret: args.trust.subgraph_secret,
        ..Limits::default()
    };
    service::serve(
        "users",
        db,
        listener,
        app(state, limits),
        &args.shutdown,
        shutdown,
    )
    .await
}

/// `create-admin`: creates the account as an admin, or promotes the existing one.
async fn create_admin(args: CreateAdminArgs) -> anyhow::Result<()> {
    let db = service::open_migrated(&args.db.database_url, &db::migrations()).await?;
    if db::promote_to_admin(&db, &args.username).await? {
        println!("{} is now an admin (password unchanged)", args.username);
        return Ok(());
    }
    let password = read_admin_password(&args)?;
    let checks = validate::username(&args.username)
        .and_then(|()| validate::email(&args.email))
        .and_then(|()| validate::password("password", &password));
    checks?;
    let password_hash = credentials::hash_password(password).await?;
    let row = db::insert_user(
        &db,
        &db::NewUser {
            username: &args.username,
            email: &args.email,
            password_hash: &password_hash,
            first_name: None,
            last_name: None,
            is_admin: true,
        },
    )
    .await?;
    println!("created admin {} (id {})", row.username, row.id);
    Ok(())
}

/// The admin password from `--password-file`, `TAPROOM_ADMIN_PASSWORD`, or standard input's first line.
fn read_admin_password(args: &CreateAdminArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--password-file: cannot read {}", path.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if let Ok(password) = std::env::var("TAPROOM_ADMIN_PASSWORD") {
        return Ok(password);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        anyhow::bail!("no password: set TAPROOM_ADMIN_PASSWORD or pipe it on standard input");
    }
    Ok(password)
}
