//! The input rules of the public contract, each failing with `BAD_USER_INPUT` naming its field.

use crate::error::{Error, Result};

/// 3 to 32 characters: ASCII letters, digits, `.`, `_` or `-`.
pub fn username(value: &str) -> Result<()> {
    let len = value.chars().count();
    if !(3..=32).contains(&len) {
        return Err(Error::invalid(
            "username",
            "username must be 3 to 32 characters long",
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Error::invalid(
            "username",
            "username may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// A search of usernames: at most 32 characters (no username is longer), no control characters.
pub fn search(value: &str) -> Result<()> {
    if value.chars().count() > 32 || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            "search",
            "search must be at most 32 characters (the longest username), without control characters",
        ));
    }
    Ok(())
}

/// A valid address (RFC 5321/5322 as the `email_address` crate checks it) whose domain has a dot.
pub fn email(value: &str) -> Result<()> {
    let valid = value.len() <= 254
        && email_address::EmailAddress::parse_with_options(
            value,
            email_address::Options::default().without_display_text(),
        )
        .is_ok_and(|address| address.domain().contains('.') && !address.domain().starts_with('['));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "email",
            "email must be a valid address such as name@example.com",
        ))
    }
}

/// 8 to 128 characters with a lowercase letter, an uppercase letter and a digit.
pub fn password(field: &'static str, value: &str) -> Result<()> {
    let len = value.chars().count();
    if !(8..=128).contains(&len) {
        return Err(Error::invalid(
            field,
            format!("{field} must be 8 to 128 characters long"),
        ));
    }
    let has = |f: fn(char) -> bool| value.chars().any(f);
    if !(has(char::is_lowercase) && has(char::is_uppercase) && has(|c| c.is_ascii_digit())) {
        return Err(Error::invalid(
            field,
            format!("{field} must contain a lowercase letter, an uppercase letter and a digit"),
        ));
    }
    Ok(())
}

/// First and last names: at most 100 characters, no control characters. Empty means none.
pub fn name(field: &'static str, value: &str) -> Result<()> {
    if value.chars().count() > 100 {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most 100 characters long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// The key that makes usernames unique regardless of case (usernames are ASCII).
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// The key that makes emails unique regardless of case.
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<()>) -> &'static str {
        match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn usernames() {
        for ok in ["abc", "a.b_c-d", "A1234567890123456789012345678901"] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "a b", "ünï", "a@b", &"a".repeat(33), ""] {
            assert_eq!(field_of(username(bad)), "username", "{bad}");
        }
    }

    #[test]
    fn emails() {
        for ok in ["a@example.com", "first.last+tag@sub.example.org"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "A <a@example.com>",
        ] {
            assert_eq!(field_of(email(bad)), "email", "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("password", "Secret123").is_ok());
        for bad in [
            "Short1a",
            "alllowercase1",
            "ALLUPPERCASE1",
            "NoDigitsHere",
            &format!("Aa1{}", "x".repeat(126)),
        ] {
            assert_eq!(field_of(password("password", bad)), "password", "{bad}");
        }
    }
}
