//! The users subgraph's errors and the codes clients see for them.
//!
//! `Error` deliberately does not implement `Display`: async-graphql converts any `Display` type into a
//! GraphQL error without an `extensions.code`, so a stray `?` would lose the code. Without `Display`,
//! the only conversion is the one below, and every error reaches clients with its contract code.

use taproom_common::error::{graphql_error, internal_error, rate_limited, ErrorCode};

/// Anything a users operation can fail with.
#[derive(Debug)]
pub enum Error {
    /// An input breaks a rule; `field` names the input.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A unique value (username, email) is taken.
    Conflict { field: &'static str },
    /// Wrong username or password at sign-in: one message for both, so neither is revealed.
    BadCredentials,
    /// The caller's password did not match where it is re-checked (change password, delete account).
    WrongPassword { field: &'static str },
    /// The operation needs a signed-in caller.
    Unauthenticated,
    /// The caller's account no longer exists.
    AccountGone,
    /// Too many failed sign-ins (for the username or from the client's address), or too many
    /// password checks waiting; try again after this many seconds.
    RateLimited { retry_after_seconds: u64 },
    /// The operation checks credentials more than once (`field` is one of the fields).
    CredentialsTwice { field: String, count: usize },
    /// A client request's second users request that checks credentials (a batch's second sign-in,
    /// or a mutation's sign-in after another subgraph's field).
    CredentialsTwiceInBatch { field: String },
    /// The database failed.
    Database(sqlx::Error),
    /// Anything else that is not the client's fault.
    Internal(String),
}

/// Results of users operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The message: what clients see, except for internal errors, whose message is only logged.
    pub fn message(&self) -> String {
        match self {
            Error::Invalid { message, .. } => message.clone(),
            Error::Conflict { field } => format!("{field} is already taken"),
            Error::BadCredentials => "invalid username or password".into(),
            Error::WrongPassword { field } => format!("{field} is wrong"),
            Error::Unauthenticated => {
                "authentication required: send Authorization: Bearer <token>".into()
            }
            Error::AccountGone => "the account no longer exists".into(),
            Error::RateLimited {
                retry_after_seconds,
            } => format!("too many attempts: try again in {retry_after_seconds} s"),
            Error::CredentialsTwice { field, count } => format!(
                "an operation may check credentials (login, register, changePassword, deleteAccount) at most once; this one does it {count} times ({field})"
            ),
            Error::CredentialsTwiceInBatch { field } => format!(
                "one request may check credentials (login, register, changePassword, deleteAccount) at most once, also when it is a batch of operations; another part of this request already did ({field})"
            ),
            Error::Database(error) => format!("database error: {error}"),
            Error::Internal(message) => message.clone(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Database(error)
    }
}

impl From<Error> for async_graphql::Error {
    fn from(error: Error) -> Self {
        let message = error.message();
        match error {
            Error::Invalid { field, .. } | Error::WrongPassword { field } => {
                graphql_error(ErrorCode::BadUserInput, message, Some(field))
            }
            Error::Conflict { field } => graphql_error(ErrorCode::Conflict, message, Some(field)),
            Error::RateLimited {
                retry_after_seconds,
            } => rate_limited(message, retry_after_seconds),
            Error::CredentialsTwice { field, .. } | Error::CredentialsTwiceInBatch { field } => {
                graphql_error(ErrorCode::BadUserInput, message, Some(&field))
            }
            Error::BadCredentials | Error::Unauthenticated | Error::AccountGone => {
                graphql_error(ErrorCode::Unauthenticated, message, None)
            }
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %message, "internal error");
                internal_error()
            }
        }
    }
}

impl From<Error> for anyhow::Error {
    fn from(error: Error) -> Self {
        anyhow::Error::msg(error.message())
    }
}
