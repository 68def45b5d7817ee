//! The error codes of the public contract and their conversion to GraphQL errors.

use async_graphql::ErrorExtensions;

/// A stable `extensions.code` value, as listed in the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No token, or a malformed, unknown, expired or revoked one.
    Unauthenticated,
    /// Authenticated, but not allowed.
    Forbidden,
    /// The thing named by an argument does not exist.
    NotFound,
    /// A value breaks a rule; `extensions.field` names the input.
    BadUserInput,
    /// A unique value is taken.
    Conflict,
    /// Too many attempts; `extensions.retryAfterSeconds` says when to try again.
    RateLimited,
    /// Anything else. The message is generic; the cause is logged, never sent.
    Internal,
}

impl ErrorCode {
    /// The string clients see in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Internal => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// Builds the GraphQL error a client sees: `message`, `extensions.code`, and `extensions.field` when
/// one input is to blame.
pub fn graphql_error(
    code: ErrorCode,
    message: impl Into<String>,
    field: Option<&str>,
) -> async_graphql::Error {
    let field = field.map(str::to_owned);
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code.as_str());
        if let Some(field) = &field {
            ext.set("field", field.as_str());
        }
    })
}

/// `RATE_LIMITED`, with `extensions.retryAfterSeconds` (at least 1).
pub fn rate_limited(message: impl Into<String>, retry_after_seconds: u64) -> async_graphql::Error {
    let retry = retry_after_seconds.max(1);
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", ErrorCode::RateLimited.as_str());
        ext.set("retryAfterSeconds", retry);
    })
}

/// The error clients see for an internal failure. Callers log the cause before calling this.
pub fn internal_error() -> async_graphql::Error {
    graphql_error(ErrorCode::Internal, "internal server error", None)
}
