//! Who may call a subgraph, and which client a request is for.
//!
//! Subgraphs are meant to sit behind the router, on a network clients cannot reach. As defence in
//! depth beside that isolation, every caller of a subgraph (the router, and the orders subgraph when
//! it asks beers or users) presents a shared secret in [`SECRET_HEADER`]; a subgraph started with
//! `SUBGRAPH_SECRET` refuses any request to `/graphql` or `/auth/introspect` without it, with 403
//! and `FORBIDDEN`. `/health` stays open for load balancers.
//!
//! The router also tells the subgraph which client a mutation is for ([`CLIENT_ADDRESS_HEADER`],
//! the client's IP address as the router saw it), so the users subgraph can throttle failed sign-ins
//! per client address. A subgraph believes that header only from a caller that presented the secret;
//! otherwise the client is the TCP peer of the request itself.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::Response,
    Extension, Router,
};
use sha2::{Digest, Sha256};
use taproom_http::{
    error::{errors_body, Code, GraphqlError},
    reply, MediaType,
};

/// The header carrying the shared router → subgraph secret.
pub const SECRET_HEADER: &str = "x-taproom-subgraph-secret";
/// The header carrying the client's IP address, set by the router.
pub const CLIENT_ADDRESS_HEADER: &str = "x-taproom-client-address";
/// The shortest secret accepted: 32 characters.
pub const MIN_SECRET_LEN: usize = 32;

/// The shared secret callers of a subgraph present. Cheap to clone.
#[derive(Clone)]
pub struct SubgraphSecret(Arc<HeaderValue>);

impl std::fmt::Debug for SubgraphSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubgraphSecret(..)")
    }
}

impl SubgraphSecret {
    /// A secret of at least [`MIN_SECRET_LEN`] visible ASCII characters.
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "SUBGRAPH_SECRET must be at least {MIN_SECRET_LEN} visible ASCII characters"
            ));
        }
        let value = HeaderValue::from_str(secret).map_err(|e| e.to_string())?;
        Ok(SubgraphSecret(Arc::new(value)))
    }

    /// The header value to send.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// Whether `presented` is this secret; compared by digest, so the time taken does not depend
    /// on how much of a guess was right.
    fn matches(&self, presented: Option<&HeaderValue>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        Sha256::digest(presented.as_bytes()) == Sha256::digest(self.0.as_bytes())
    }
}

/// Parses `--subgraph-secret` (clap value parser).
pub fn parse_secret(value: &str) -> Result<SubgraphSecret, String> {
    SubgraphSecret::new(value)
}

/// The shared secret, as every subgraph binary takes it (flag or env).
#[derive(Debug, Clone, clap::Args)]
pub struct SecretArgs {
    /// The secret every caller must present in `x-taproom-subgraph-secret` (the router, and this
    /// service when it calls another subgraph); requests without it get 403. Unset: any caller is
    /// answered (then keep the subgraphs on a network only the router reaches).
    #[arg(long, env = "SUBGRAPH_SECRET", value_parser = parse_secret, hide_env_values = true)]
    pub subgraph_secret: Option<SubgraphSecret>,
}

/// Whether the request's caller presented the secret (set on every request that got past the
/// guard; absent when no secret is configured).
#[derive(Debug, Clone, Copy)]
pub struct TrustedCaller;

/// The client a request is for: the address the router forwarded (from a trusted caller), or the
/// TCP peer; `None` when neither is known (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    /// Reads the client of a request that passed [`guard`].
    pub fn of(
        headers: &HeaderMap,
        trusted: Option<&TrustedCaller>,
        peer: Option<SocketAddr>,
    ) -> Self {
        let forwarded = trusted.and_then(|_| {
            headers
                .get(CLIENT_ADDRESS_HEADER)?
                .to_str()
                .ok()?
                .parse::<IpAddr>()
                .ok()
        });
        ClientAddress(forwarded.or(peer.map(|p| p.ip())))
    }
}

/// The header naming the client request (one operation or a batch of them) a subgraph request is
/// part of; the router sets it on mutations.
pub const BATCH_HEADER: &str = "x-taproom-batch-id";

/// The client request a subgraph request belongs to, if the router said so. Believed from any
/// caller: it can only restrict what its sender may do (the users subgraph checks credentials once
/// per client request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId(pub String);

impl BatchId {
    /// The batch named in `headers`, if any (at most 128 visible characters).
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(BATCH_HEADER)?.to_str().ok()?;
        (!value.is_empty() && value.len() <= 128).then(|| BatchId(value.to_owned()))
    }
}

/// The header with a mutation's idempotency key: the client's `Idempotency-Key`, made distinct per
/// subgraph request by the router. A subgraph that honours it applies a mutation with a key it
/// has seen (for the same caller) only once, so the router may send it again after a lost answer.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The longest idempotency key a subgraph accepts (the router's client keys are at most 128
/// characters; it appends a little).
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The header with the fingerprint of the client request an idempotency key came with (the router
/// sends the SHA-256 of the operation, its name and its variables): a key is bound to its request.
pub const FINGERPRINT_HEADER: &str = "x-taproom-request-fingerprint";

/// The idempotency key of a subgraph request, if it has one, and the fingerprint of the client
/// request it came with. Believed from any caller: a key is scoped to the caller's own account, so
/// it can only make the caller's own retries safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// [`FINGERPRINT_HEADER`], if sent (at most 128 visible characters).
    pub request: Option<String>,
}

impl IdempotencyKey {
    /// The key named in `headers`: `None` without one, an error for one that is empty, too long or
    /// not visible ASCII.
    pub fn of(headers: &HeaderMap) -> Result<Option<Self>, String> {
        let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
            return Ok(None);
        };
        let visible = |text: &str, most: usize| {
            !text.is_empty() && text.len() <= most && text.bytes().all(|b| b.is_ascii_graphic())
        };
        let request = match headers.get(FINGERPRINT_HEADER).map(|v| v.to_str()) {
            None => None,
            Some(Ok(text)) if visible(text, 128) => Some(text.to_owned()),
            Some(_) => {
                return Err(format!(
                    "the {FINGERPRINT_HEADER} header must be 1 to 128 visible ASCII characters"
                ))
            }
        };
        match value.to_str() {
            Ok(key) if visible(key, MAX_IDEMPOTENCY_KEY) => Ok(Some(IdempotencyKey {
                key: key.to_owned(),
                request,
            })),
            _ => Err(format!(
                "the {IDEMPOTENCY_HEADER} header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            )),
        }
    }

    /// The fingerprint of one mutation field under this key: the client request's, the field's
    /// name and its arguments (`name`, value), as hex SHA-256. Two uses of a key match only if
    /// they asked for the same thing.
    pub fn fingerprint(&self, field: &str, arguments: &[(&str, &str)]) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [self.request.as_deref().unwrap_or(""), field] {
            hash.update(part.len().to_le_bytes());
            hash.update(part.as_bytes());
        }
        for (name, value) in arguments {
            for part in [name, value] {
                hash.update(part.len().to_le_bytes());
                hash.update(part.as_bytes());
            }
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `router` with every route refusing callers without `secret` (403, `FORBIDDEN`); with `None`,
/// `router` unchanged.
pub fn guard(router: Router, secret: Option<SubgraphSecret>) -> Router {
    match secret {
        Some(secret) => router.route_layer(middleware::from_fn_with_state(secret, check)),
        None => router,
    }
}

async fn check(State(secret): State<SubgraphSecret>, mut request: Request, next: Next) -> Response {
    if secret.matches(request.headers().get(SECRET_HEADER)) {
        request.extensions_mut().insert(TrustedCaller);
        return next.run(request).await;
    }
    tracing::warn!(
        peer = ?request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        "refused a request without the subgraph secret"
    );
    let error = GraphqlError::new(
        Code::Other("FORBIDDEN".into()),
        format!("this service answers only the Taproom router: missing or wrong {SECRET_HEADER}"),
    );
    reply(
        MediaType::negotiate(request.headers()),
        StatusCode::FORBIDDEN,
        errors_body(&[error]),
    )
}

/// The request's TCP peer, when the server was started with connect info.
pub type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;
