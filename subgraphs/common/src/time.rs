//! Timestamps as the databases store them.
//!
//! Both backends store times as text in one fixed-width UTC format, so that the same SQL sorts them on
//! SQLite and PostgreSQL alike and the `Any` driver can read them back (it has no timestamp type).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Now, truncated to microseconds so a value survives a round trip through the database unchanged.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).expect("now is within chrono's range")
}

/// Formats a time for storage (fixed width, sorts as text).
pub fn to_db(time: DateTime<Utc>) -> String {
    time.format(FORMAT).to_string()
}

/// Parses a stored time. Only [`to_db`] writes these columns, so a failure means a corrupt row.
pub fn from_db(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    NaiveDateTime::parse_from_str(text, FORMAT).map(|naive| naive.and_utc())
}

/// The contract's `DateTime` scalar: a UTC timestamp in RFC 3339 with a `Z` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

/// A UTC timestamp in RFC 3339, e.g. "2026-11-29T14:00:00Z".
#[Scalar(name = "DateTime")]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| Timestamp(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 timestamp")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl Timestamp {
    /// Reads a stored time; a corrupt value is an internal error (logged, never shown).
    pub fn from_db(text: &str) -> async_graphql::Result<Self> {
        from_db(text).map(Timestamp).map_err(|e| {
            tracing::error!(value = text, error = %e, "corrupt timestamp in the database");
            crate::error::internal_error()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_round_trip_and_sort_as_text() {
        let a = now();
        let b = a + chrono::Duration::microseconds(1);
        assert_eq!(from_db(&to_db(a)).expect("parses"), a);
        assert!(to_db(a) < to_db(b));
    }

    #[test]
    fn timestamps_print_in_utc_with_z() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T14:00:00+00:00")
            .expect("valid")
            .to_utc();
        assert_eq!(
            Timestamp(t).to_value(),
            Value::String("2026-11-29T14:00:00Z".into())
        );
    }
}
