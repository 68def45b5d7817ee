//! Relay-style pages, the same in every subgraph: the `first` bound, opaque cursors over a position
//! in a keyset order, and the shared `PageInfo` type.

use async_graphql::SimpleObject;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{graphql_error, ErrorCode};

/// The largest page.
pub const MAX_PAGE: i32 = 100;

/// Checks a page size: 0 to [`MAX_PAGE`], else `BAD_USER_INPUT` on `first`.
pub fn first(first: i32) -> async_graphql::Result<usize> {
    if (0..=MAX_PAGE).contains(&first) {
        Ok(first as usize)
    } else {
        Err(graphql_error(
            ErrorCode::BadUserInput,
            format!("first must be between 0 and {MAX_PAGE}"),
            Some("first"),
        ))
    }
}

/// A cursor: the opaque form of a position in a list's order.
pub fn encode_cursor(position: &impl Serialize) -> String {
    let json = serde_json::to_vec(position).expect("a position is plain data");
    URL_SAFE_NO_PAD.encode(json)
}

/// The position a cursor names; `BAD_USER_INPUT` on `after` if it is not one this list returned.
pub fn decode_cursor<P: DeserializeOwned>(cursor: &str) -> async_graphql::Result<P> {
    let bad = || {
        graphql_error(
            ErrorCode::BadUserInput,
            "after is not a cursor returned by this API",
            Some("after"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let position: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    // No cursor of ours holds a control character; a NUL would reach SQL, and PostgreSQL refuses
    // NUL in text with an error the client must not see.
    if has_control_characters(&position) {
        return Err(bad());
    }
    serde_json::from_value(position).map_err(|_| bad())
}

fn has_control_characters(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.chars().any(char::is_control),
        serde_json::Value::Array(items) => items.iter().any(has_control_characters),
        serde_json::Value::Object(fields) => fields.values().any(has_control_characters),
        _ => false,
    }
}

/// Where a page stands in the whole list. Every subgraph pages, so the type is shareable.
#[derive(SimpleObject)]
#[graphql(shareable)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// True when the page was asked for with `after`: there are items before it.
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// The page info of `items`, each with the cursor `cursor` gives it.
    pub fn of<T>(
        items: &[T],
        has_next_page: bool,
        has_previous_page: bool,
        cursor: impl Fn(&T) -> String,
    ) -> Self {
        PageInfo {
            has_next_page,
            has_previous_page,
            start_cursor: items.first().map(&cursor),
            end_cursor: items.last().map(&cursor),
        }
    }
}

/// One page of rows read with one row more than asked for: the rows to show, and whether there are
/// more after them.
pub fn cut<T>(mut rows: Vec<T>, first: usize) -> (Vec<T>, bool) {
    let has_next_page = rows.len() > first;
    rows.truncate(first);
    (rows, has_next_page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let cursor = encode_cursor(&("Загорка", 7));
        assert_eq!(
            decode_cursor::<(String, i64)>(&cursor).expect("our own cursor"),
            ("Загорка".to_owned(), 7)
        );
        assert!(decode_cursor::<(String, i64)>("not a cursor!").is_err());
        assert!(decode_cursor::<(String, i64)>(&encode_cursor(&[1, 2, 3])).is_err());
        assert!(decode_cursor::<(String, i64)>(&encode_cursor(&("a\u{0}", 1))).is_err());
        assert!(first(101).is_err() && first(-1).is_err() && first(0).is_ok());
    }
}
