//! The beers subgraph's errors and the codes clients see for them.
//!
//! Like the users subgraph's, `Error` does not implement `Display`, so async-graphql's blanket
//! conversion cannot drop its `extensions.code`: the `From` below is the only way out.

use taproom_common::{
    error::{graphql_error, internal_error, ErrorCode},
    money::MoneyError,
};

/// Anything a catalog operation can fail with.
#[derive(Debug)]
pub enum Error {
    /// An input breaks a rule; `field` names the input.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The sku is taken.
    SkuTaken,
    /// No beer has this sku.
    NoSuchSku(String),
    /// The database failed.
    Database(sqlx::Error),
}

/// Results of catalog operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
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

impl From<MoneyError> for Error {
    fn from(error: MoneyError) -> Self {
        Error::invalid(error.field(), error.to_string())
    }
}

impl From<Error> for async_graphql::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid { field, message } => {
                graphql_error(ErrorCode::BadUserInput, message, Some(field))
            }
            Error::SkuTaken => {
                graphql_error(ErrorCode::Conflict, "sku is already taken", Some("sku"))
            }
            Error::NoSuchSku(sku) => graphql_error(
                ErrorCode::NotFound,
                format!("no beer has sku {sku:?}"),
                Some("sku"),
            ),
            Error::Database(error) => {
                tracing::error!(%error, "database error");
                internal_error()
            }
        }
    }
}
