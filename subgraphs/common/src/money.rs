//! Money: the contract's `Decimal` scalar, exact end to end.
//!
//! Amounts live as integer cents in Rust and in both databases (no floats anywhere). Clients send a
//! string such as `"1.19"` (or an integer); the scalar accepts any input first and the resolver checks
//! it with [`Decimal::to_cents`], so that a bad amount is a `BAD_USER_INPUT` naming the field rather
//! than a validation failure of the whole request. Output always has two decimals.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// The largest amount a price may have, in cents (999999.99).
pub const MAX_PRICE_CENTS: i64 = 99_999_999;

/// An exact decimal amount, serialized as a string with two decimals, e.g. "1.19". Never a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    /// A known amount.
    Cents(i64),
    /// What a client sent, not yet checked.
    Input(String),
}

/// Why a client's amount was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0} must be a decimal number written as a string, such as \"1.19\"")]
    NotANumber(&'static str),
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("{0} may have at most two decimals")]
    TooPrecise(&'static str),
    #[error("{0} must be at most {1}")]
    TooLarge(&'static str, String),
}

impl MoneyError {
    /// The input the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            MoneyError::NotANumber(f)
            | MoneyError::Negative(f)
            | MoneyError::TooPrecise(f)
            | MoneyError::TooLarge(f, _) => f,
        }
    }
}

impl Decimal {
    /// An amount of `cents`.
    pub fn from_cents(cents: i64) -> Self {
        Decimal(Repr::Cents(cents))
    }

    /// An amount written as text, not yet checked (see [`Decimal::to_cents`]).
    pub fn from_text(text: impl Into<String>) -> Self {
        Decimal(Repr::Input(text.into()))
    }

    /// Checks a client's amount for `field`: a number, not negative, at most two decimals, at most
    /// `max_cents`. Returns it in cents.
    pub fn to_cents(&self, field: &'static str, max_cents: i64) -> Result<i64, MoneyError> {
        let text = match &self.0 {
            Repr::Cents(cents) => return Ok(*cents),
            Repr::Input(text) => text.trim(),
        };
        let is_plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'));
        let value = is_plain
            .then(|| match rust_decimal::Decimal::from_str_exact(text) {
                Ok(value) => Some(Ok(value)),
                // More digits than a decimal can hold exactly: too precise to be a price.
                Err(rust_decimal::Error::Underflow) => Some(Err(MoneyError::TooPrecise(field))),
                Err(_) => None,
            })
            .flatten()
            .ok_or(MoneyError::NotANumber(field))??;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative(field));
        }
        if value.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(field));
        }
        let too_large = || MoneyError::TooLarge(field, format_cents(max_cents));
        let cents = value
            .checked_mul(rust_decimal::Decimal::ONE_HUNDRED)
            .ok_or_else(too_large)?;
        let cents = i64::try_from(cents.trunc()).map_err(|_| too_large())?;
        if cents > max_cents {
            return Err(too_large());
        }
        Ok(cents)
    }
}

/// `cents` with two decimals: 119 → "1.19", -5 → "-0.05".
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// An exact decimal amount, serialized as a string with two decimals, e.g. "1.19". Never a float.
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Ok(Decimal(Repr::Input(text))),
            // Integers are exact; floats are not, and are refused later with a clear message.
            Value::Number(number) => Ok(Decimal(Repr::Input(if number.is_f64() {
                "not-a-float".into()
            } else {
                number.to_string()
            }))),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        match &self.0 {
            Repr::Cents(cents) => Value::String(format_cents(*cents)),
            Repr::Input(text) => Value::String(text.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<i64, MoneyError> {
        Decimal(Repr::Input(text.into())).to_cents("price", MAX_PRICE_CENTS)
    }

    #[test]
    fn accepts_exact_amounts() {
        assert_eq!(check("1.19"), Ok(119));
        assert_eq!(check("2"), Ok(200));
        assert_eq!(check("2.0"), Ok(200));
        assert_eq!(check("1.190"), Ok(119));
        assert_eq!(check("0"), Ok(0));
        assert_eq!(check("-0"), Ok(0));
        assert_eq!(check(" 999999.99 "), Ok(99_999_999));
    }

    #[test]
    fn refuses_bad_amounts_naming_the_rule() {
        assert_eq!(check("-0.01"), Err(MoneyError::Negative("price")));
        assert_eq!(check("1.199"), Err(MoneyError::TooPrecise("price")));
        assert_eq!(
            check("1000000"),
            Err(MoneyError::TooLarge("price", "999999.99".into()))
        );
        assert_eq!(check("1e3"), Err(MoneyError::NotANumber("price")));
        assert_eq!(
            check("1.0000000000000000000000000000001"),
            Err(MoneyError::TooPrecise("price")),
            "not rounded to 1.00"
        );
        for bad in [
            "",
            "abc",
            "1.2.3",
            "NaN",
            "1,19",
            "not-a-float",
            "99999999999999999999999999999999",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_two_decimals() {
        assert_eq!(format_cents(119), "1.19");
        assert_eq!(format_cents(200), "2.00");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(
            Decimal::from_cents(557).to_value(),
            Value::String("5.57".into())
        );
    }
}
