//! The orders subgraph's errors and the codes clients see for them.
//!
//! Like the other subgraphs', `Error` does not implement `Display`, so async-graphql's blanket
//! conversion cannot drop its `extensions.code`: the `From` below is the only way out.

use taproom_common::error::{graphql_error, internal_error, ErrorCode};

/// Anything an orders operation can fail with.
#[derive(Debug)]
pub enum Error {
    /// An input breaks a rule; `field` names the input.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The thing named does not exist (for this caller); `field` names the argument, if one.
    NotFound {
        field: Option<&'static str>,
        message: String,
    },
    /// The caller may not see this.
    Forbidden(String),
    /// The beers subgraph could not be asked; nothing was changed.
    BeersUnavailable(String),
    /// The database failed.
    Database(sqlx::Error),
    /// A mutation with the same idempotency key was applied first; nothing of this one was kept.
    /// The mutation answers with that one's order instead ([`crate::schema`]), so a client sees this
    /// only if that order is gone.
    Replayed,
    /// The idempotency key was used before for another request: nothing was changed.
    KeyReused,
}

/// Results of orders operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(field: Option<&'static str>, message: impl Into<String>) -> Self {
        Error::NotFound {
            field,
            message: message.into(),
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
        match error {
            Error::Invalid { field, message } => {
                graphql_error(ErrorCode::BadUserInput, message, Some(field))
            }
            Error::NotFound { field, message } => {
                graphql_error(ErrorCode::NotFound, message, field)
            }
            Error::Forbidden(message) => graphql_error(ErrorCode::Forbidden, message, None),
            Error::BeersUnavailable(cause) => {
                tracing::error!(%cause, "beers subgraph unavailable");
                graphql_error(
                    ErrorCode::Internal,
                    "the beers service is unavailable; nothing was changed, try again later",
                    None,
                )
            }
            Error::Database(error) => {
                tracing::error!(%error, "database error");
                internal_error()
            }
            Error::KeyReused => graphql_error(
                ErrorCode::BadUserInput,
                "this Idempotency-Key was used for another request; nothing was changed: send a new key with a new request",
                Some("Idempotency-Key"),
            ),
            Error::Replayed => graphql_error(
                ErrorCode::Conflict,
                "a request with this idempotency key was applied already",
                None,
            ),
        }
    }
}
