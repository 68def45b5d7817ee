//! Who is calling: bearer tokens, verified once per request, shared by every subgraph.
//!
//! Tokens are opaque random strings issued by the users subgraph, which stores only their keyed hash.
//! Every subgraph verifies the caller's token through an [`Authenticator`]:
//!
//! - the users subgraph looks the token up in its own database (revocation is immediate there);
//! - the beers and orders subgraphs use [`RemoteAuthenticator`], which asks the users subgraph's
//!   `POST /auth/introspect` endpoint with the same `Authorization` header and caches the answer, keyed
//!   by the token's SHA-256, for at most [`MAX_CACHE_TTL`]. That bound is how long a revoked token can
//!   keep working for reads in another subgraph; mutations always ask the issuer
//!   ([`Freshness::Now`]), so no write anywhere accepts a revoked token.
//!
//! Identity never comes from a header a client could set: only the token is trusted, and only after
//! its issuer confirms it. Verification is lazy and happens at most once per request, so operations
//! that need no identity (the catalog) cost no round trip.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use async_graphql::{parser::types::OperationType, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::{
    error::{graphql_error, internal_error, ErrorCode},
    trust::{SubgraphSecret, SECRET_HEADER},
};

/// The longest a subgraph may trust a cached token verification.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(5);

/// The verified caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// The users subgraph's id of the account.
    pub user_id: i64,
    /// Whether the account may change the catalog.
    pub is_admin: bool,
}

/// Verification could not be done (the issuer is down, its database failed). Not the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("token verification unavailable: {0}")]
pub struct Unavailable(pub String);

/// A boxed future, so [`Authenticator`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How fresh a verification must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A cached answer up to [`MAX_CACHE_TTL`] old will do (reads).
    Cached,
    /// Ask the issuer now (writes: a revoked token must not change anything, not even for 5 s).
    Now,
}

/// Turns a bearer token into a caller.
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(Some(caller))` for a valid token; `Ok(None)` for an unknown, expired or revoked one.
    fn verify<'a>(
        &'a self,
        token: &'a str,
        freshness: Freshness,
    ) -> BoxFuture<'a, Result<Option<Caller>, Unavailable>>;
}

/// What the request's `Authorization` header held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No header: an anonymous caller.
    None,
    /// A header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token, not yet verified.
    Bearer(String),
}

impl Credentials {
    /// Reads an `Authorization` header value (`None` when the header is absent).
    pub fn from_header(value: Option<&[u8]>) -> Self {
        let Some(value) = value else {
            return Credentials::None;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            return Credentials::Malformed;
        };
        match value.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                let token = token.trim();
                if is_well_formed(token) {
                    Credentials::Bearer(token.to_owned())
                } else {
                    Credentials::Malformed
                }
            }
            _ => Credentials::Malformed,
        }
    }
}

/// Tokens are printable ASCII without spaces, at most 256 characters. Anything else is rejected
/// before it reaches a database or another service.
fn is_well_formed(token: &str) -> bool {
    !token.is_empty() && token.len() <= 256 && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Per-request auth state, put into the GraphQL request's data by the HTTP layer.
pub struct RequestAuth {
    credentials: Credentials,
    verified: OnceCell<Result<Option<Caller>, ErrorCode>>,
}

impl RequestAuth {
    /// State for a request that presented `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        RequestAuth {
            credentials,
            verified: OnceCell::new(),
        }
    }
}

/// The bearer token the request presented, unverified (for revoking it).
pub fn bearer_token<'a>(ctx: &'a Context<'_>) -> Option<&'a str> {
    match &ctx.data_opt::<RequestAuth>()?.credentials {
        Credentials::Bearer(token) => Some(token),
        _ => None,
    }
}

/// The caller, or `None` when no token was sent. An invalid token is `UNAUTHENTICATED`.
pub async fn caller(ctx: &Context<'_>) -> async_graphql::Result<Option<Caller>> {
    let auth = ctx
        .data_opt::<RequestAuth>()
        .expect("the HTTP layer puts RequestAuth into every request");
    let result = auth
        .verified
        .get_or_init(|| async {
            match &auth.credentials {
                Credentials::None => Ok(None),
                Credentials::Malformed => Err(ErrorCode::Unauthenticated),
                Credentials::Bearer(token) => {
                    let authenticator = ctx
                        .data_opt::<Arc<dyn Authenticator>>()
                        .expect("every schema is built with an Authenticator");
                    // A mutation is verified with the issuer itself, so revocation is immediate for
                    // every write in every subgraph; queries may use the short cache.
                    let freshness = if ctx.query_env.operation.node.ty == OperationType::Mutation {
                        Freshness::Now
                    } else {
                        Freshness::Cached
                    };
                    match authenticator.verify(token, freshness).await {
                        Ok(Some(caller)) => Ok(Some(caller)),
                        Ok(None) => Err(ErrorCode::Unauthenticated),
                        Err(error) => {
                            tracing::error!(%error, "cannot verify a bearer token");
                            Err(ErrorCode::Internal)
                        }
                    }
                }
            }
        })
        .await;
    match result {
        Ok(caller) => Ok(*caller),
        Err(ErrorCode::Unauthenticated) => Err(unauthenticated(&auth.credentials)),
        Err(_) => Err(internal_error()),
    }
}

/// The caller; `UNAUTHENTICATED` when there is none.
pub async fn require_caller(ctx: &Context<'_>) -> async_graphql::Result<Caller> {
    caller(ctx).await?.ok_or_else(|| {
        graphql_error(
            ErrorCode::Unauthenticated,
            "authentication required: send Authorization: Bearer <token>",
            None,
        )
    })
}

/// The caller if they are an admin; `UNAUTHENTICATED` without a token, `FORBIDDEN` for a customer.
pub async fn require_admin(ctx: &Context<'_>) -> async_graphql::Result<Caller> {
    let caller = require_caller(ctx).await?;
    if caller.is_admin {
        Ok(caller)
    } else {
        Err(graphql_error(
            ErrorCode::Forbidden,
            "only admins may do this",
            None,
        ))
    }
}

fn unauthenticated(credentials: &Credentials) -> async_graphql::Error {
    let message = match credentials {
        Credentials::Malformed => "malformed Authorization header: expected Bearer <token>",
        _ => "invalid, expired or revoked token",
    };
    graphql_error(ErrorCode::Unauthenticated, message, None)
}

/// The answer of the users subgraph's introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// The caller, when active.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub caller: Option<Caller>,
}

/// How a subgraph other than users reaches the token issuer (flags and env vars).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteAuthArgs {
    /// The users subgraph's token introspection endpoint.
    #[arg(
        long,
        env = "AUTH_URL",
        default_value = "http://127.0.0.1:5001/auth/introspect"
    )]
    pub auth_url: String,
    /// How long a verified token is trusted before asking again, in seconds (0 to 5): the longest a
    /// revoked token keeps working in this subgraph.
    #[arg(long, env = "AUTH_CACHE_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=5))]
    pub auth_cache_seconds: u64,
}

impl RemoteAuthArgs {
    /// The authenticator these settings describe, presenting `secret` to the users subgraph.
    pub fn authenticator(&self, secret: Option<SubgraphSecret>) -> Arc<dyn Authenticator> {
        Arc::new(
            RemoteAuthenticator::new(
                self.auth_url.clone(),
                Duration::from_secs(self.auth_cache_seconds),
            )
            .presenting(secret),
        )
    }
}

/// How long a token introspection may take, a retry included.
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Verifies tokens by asking the users subgraph, with a short cache.
pub struct RemoteAuthenticator {
    client: reqwest::Client,
    url: String,
    cache: moka::future::Cache<[u8; 32], Option<Caller>>,
    /// The shared subgraph secret, sent with every introspection.
    secret: Option<SubgraphSecret>,
    /// Introspection is a read: one that failed at the connection level is sent once more.
    retries: crate::retry::RetryBudget,
}

impl RemoteAuthenticator {
    /// Asks `url` (the users subgraph's `/auth/introspect`), trusting answers for `ttl`, which must not
    /// exceed [`MAX_CACHE_TTL`]. A zero `ttl` disables the cache.
    pub fn new(url: impl Into<String>, ttl: Duration) -> Self {
        assert!(
            ttl <= MAX_CACHE_TTL,
            "auth cache TTL above the revocation bound"
        );
        RemoteAuthenticator {
            client: reqwest::Client::builder()
                .timeout(INTROSPECTION_TIMEOUT)
                .build()
                .expect("a plain HTTP client always builds"),
            url: url.into(),
            cache: moka::future::Cache::builder()
                .max_capacity(if ttl.is_zero() { 0 } else { 100_000 })
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
            secret: None,
            retries: crate::retry::RetryBudget::default(),
        }
    }

    /// Presents `secret` to the users subgraph ([`crate::trust`]).
    pub fn presenting(mut self, secret: Option<SubgraphSecret>) -> Self {
        self.secret = secret;
        self
    }

    async fn introspect(&self, token: &str) -> Result<Option<Caller>, Unavailable> {
        let span = taproom_telemetry::context::client_span("POST /auth/introspect", "users");
        self.introspect_unspanned(token).instrument(span).await
    }

    async fn introspect_unspanned(&self, token: &str) -> Result<Option<Caller>, Unavailable> {
        let mut request = self.client.post(&self.url).bearer_auth(token);
        for (header, value) in taproom_telemetry::context::outgoing() {
            request = request.header(header, value);
        }
        if let Some(secret) = &self.secret {
            request = request.header(SECRET_HEADER, secret.header_value());
        }
        let sent =
            crate::retry::send_idempotent(request, &self.retries, INTROSPECTION_TIMEOUT).await;
        if let Some((retried, reason)) = &sent.retry {
            tracing::warn!(url = %self.url, %reason, ?retried, "token introspection failed at the connection level");
        }
        let response = sent
            .answer
            .map_err(|e| Unavailable(format!("{}: {}", self.url, crate::retry::causes(&e))))?;
        if !response.status().is_success() {
            return Err(Unavailable(format!(
                "{} answered {}",
                self.url,
                response.status()
            )));
        }
        let answer: Introspection = response
            .json()
            .await
            .map_err(|e| Unavailable(format!("{}: bad answer: {e}", self.url)))?;
        Ok(answer.caller.filter(|_| answer.active))
    }
}

impl Authenticator for RemoteAuthenticator {
    fn verify<'a>(
        &'a self,
        token: &'a str,
        freshness: Freshness,
    ) -> BoxFuture<'a, Result<Option<Caller>, Unavailable>> {
        Box::pin(async move {
            let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if freshness == Freshness::Now {
                let answer = self.introspect(token).await?;
                // The fresh answer also serves later reads (a revoked token stops working for
                // them at once too).
                self.cache.insert(key, answer).await;
                return Ok(answer);
            }
            // Failures are not cached: only the issuer's answer is. The lookup that asks the
            // issuer is the miss; callers that wait for it, and later ones, are hits.
            let asked = std::sync::atomic::AtomicBool::new(false);
            let answer = self
                .cache
                .try_get_with(key, async {
                    asked.store(true, std::sync::atomic::Ordering::Relaxed);
                    self.introspect(token).await
                })
                .await
                .map_err(|e| Unavailable(e.0.clone()));
            // Waiting for a check that failed got no answer from the cache either: a miss.
            let missed = asked.load(std::sync::atomic::Ordering::Relaxed) || answer.is_err();
            crate::metrics::metrics().auth_cache(if missed {
                crate::metrics::CacheResult::miss
            } else {
                crate::metrics::CacheResult::hit
            });
            answer
        })
    }
}

/// Verifications with the issuer shared by every stream of one token: each running subscription
/// checks its token every few seconds, and ten thousand subscriptions of one token were ten
/// thousand checks every two seconds, which swamped the users service. A check made less than
/// `within` ago (or being made now) answers for all of them.
pub struct SharedChecks {
    authenticator: Arc<dyn Authenticator>,
    recent: moka::future::Cache<[u8; 32], Option<Caller>>,
}

impl SharedChecks {
    /// Checks with `authenticator`, each answer shared for `within`.
    pub fn new(authenticator: Arc<dyn Authenticator>, within: Duration) -> Self {
        SharedChecks {
            authenticator,
            recent: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(within)
                .build(),
        }
    }

    /// The issuer's answer for `token`, at most `within` old. Failures are not shared: the next
    /// caller asks again.
    pub async fn verify(&self, token: &str) -> Result<Option<Caller>, Unavailable> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.recent
            // Made inside the future: only the caller whose future runs asks the issuer.
            .try_get_with(key, async {
                self.authenticator.verify(token, Freshness::Now).await
            })
            .await
            .map_err(|e| Unavailable(e.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its checks; every token is valid.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Authenticator for Counting {
        fn verify<'a>(
            &'a self,
            _token: &'a str,
            freshness: Freshness,
        ) -> BoxFuture<'a, Result<Option<Caller>, Unavailable>> {
            assert_eq!(freshness, Freshness::Now, "shared checks ask the issuer");
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {
                tokio::task::yield_now().await;
                Ok(Some(Caller {
                    user_id: 1,
                    is_admin: false,
                }))
            })
        }
    }

    #[tokio::test]
    async fn a_thousand_streams_of_one_token_share_one_check() {
        let counting = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
        let checks = SharedChecks::new(counting.clone(), Duration::from_secs(3600));
        let all = (0..1000).map(|_| checks.verify("one-token"));
        let answers = futures_util::future::join_all(all).await;
        assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)))));
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        checks.verify("another-token").await.expect("checks");
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_shared_check_is_made_again_once_it_is_old() {
        let counting = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
        let checks = SharedChecks::new(counting.clone(), Duration::from_millis(1));
        checks.verify("t").await.expect("checks");
        // Waiting for the answer to go stale is a wait for a state, not a measure of speed.
        tokio::time::sleep(Duration::from_millis(20)).await;
        checks.verify("t").await.expect("checks");
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn reads_bearer_headers() {
        assert_eq!(Credentials::from_header(None), Credentials::None);
        assert_eq!(
            Credentials::from_header(Some(b"Bearer abc")),
            Credentials::Bearer("abc".into())
        );
        assert_eq!(
            Credentials::from_header(Some(b"bearer  abc ")),
            Credentials::Bearer("abc".into())
        );
        for bad in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer ",
            b"abc",
            b"Bearer a b",
            b"\xff",
        ] {
            assert_eq!(
                Credentials::from_header(Some(bad)),
                Credentials::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn introspection_answers_round_trip() {
        let active = Introspection {
            active: true,
            caller: Some(Caller {
                user_id: 7,
                is_admin: true,
            }),
        };
        let json = serde_json::to_string(&active).expect("serializes");
        assert_eq!(json, r#"{"active":true,"userId":7,"isAdmin":true}"#);
        assert_eq!(
            serde_json::from_str::<Introspection>(&json).expect("parses"),
            active
        );
        let inactive: Introspection = serde_json::from_str(r#"{"active":false}"#).expect("parses");
        assert_eq!(inactive.caller, None);
    }
}
