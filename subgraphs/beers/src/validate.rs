//! The catalog's input rules, each failing with `BAD_USER_INPUT` naming its field.

use crate::error::{Error, Result};

/// 1 to 64 characters, no control characters, no surrounding spaces.
pub fn sku(value: &str) -> Result<()> {
    let len = value.chars().count();
    if !(1..=64).contains(&len) {
        return Err(Error::invalid("sku", "sku must be 1 to 64 characters long"));
    }
    if value.chars().any(char::is_control) || value.trim() != value {
        return Err(Error::invalid(
            "sku",
            "sku must not contain control characters or surrounding spaces",
        ));
    }
    Ok(())
}

/// 1 to 200 characters, not blank, no control characters.
pub fn name(value: &str) -> Result<()> {
    let len = value.chars().count();
    if !(1..=200).contains(&len) || value.trim().is_empty() {
        return Err(Error::invalid(
            "name",
            "name must be 1 to 200 characters and not blank",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(())
}

/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// At most [`MAX_DESCRIPTION_CHARS`] characters; line breaks and tabs are the only control
/// characters allowed.
pub fn description(value: &str) -> Result<()> {
    if value.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters long"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(
            "description",
            "description must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(())
}

/// The largest abv, 100.00%, in hundredths.
pub const MAX_ABV_HUNDREDTHS: i64 = 10_000;

/// The longest search text: longer than any name or sku (200), so no real search is cut short.
pub const MAX_SEARCH_CHARS: usize = 200;

/// At most [`MAX_SEARCH_CHARS`] characters, no control characters (a NUL would end the pattern
/// early on some backends, silently searching for less).
pub fn search(value: &str) -> Result<()> {
    if value.chars().count() > MAX_SEARCH_CHARS {
        return Err(Error::invalid(
            "search",
            format!("search must be at most {MAX_SEARCH_CHARS} characters long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            "search",
            "search must not contain control characters",
        ));
    }
    Ok(())
}

/// An absolute http or https URL of at most 2048 characters.
pub fn image(value: &str) -> Result<()> {
    let ok = value.len() <= 2048
        && url::Url::parse(value)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "image",
            "image must be an http or https URL",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(sku("123456").is_ok());
        assert!(sku("").is_err());
        assert!(sku(&"1".repeat(65)).is_err());
        assert!(sku(" 1").is_err());
        assert!(name("Загорка").is_ok());
        assert!(name("  ").is_err());
        assert!(description("Light.\nCrisp.\tCold.").is_ok());
        assert!(description("a\u{0}b").is_err());
        assert!(description(&"a".repeat(2001)).is_err());
        assert!(image("https://example.com/a.png").is_ok());
        assert!(image("http://example.com").is_ok());
        for bad in [
            "ftp://example.com/a.png",
            "javascript:alert(1)",
            "example.com/a.png",
            "https://",
        ] {
            assert!(image(bad).is_err(), "{bad}");
        }
    }
}
