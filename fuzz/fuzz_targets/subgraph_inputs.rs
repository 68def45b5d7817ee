//! The subgraphs' input rules on any text: prices (the Decimal scalar), skus, beer names, searches,
//! image URLs, usernames, emails, passwords and names. None may panic; what they accept keeps
//! their promises (a price round-trips exactly; an accepted sku or username has the allowed length).
#![no_main]

use libfuzzer_sys::fuzz_target;
use taproom_common::money::{Decimal, MAX_PRICE_CENTS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cents) = Decimal::from_text(text).to_cents("price", MAX_PRICE_CENTS) {
        assert!((0..=MAX_PRICE_CENTS).contains(&cents), "{text:?} → {cents}");
        let printed = taproom_common::money::format_cents(cents);
        assert_eq!(
            Decimal::from_text(printed.as_str()).to_cents("price", MAX_PRICE_CENTS).ok(),
            Some(cents),
            "{text:?} printed as {printed:?}"
        );
    }
    if taproom_beers::validate::sku(text).is_ok() {
        assert!((1..=64).contains(&text.chars().count()), "{text:?}");
    }
    let _ = taproom_beers::validate::name(text);
    let _ = taproom_beers::validate::search(text);
    let _ = taproom_beers::validate::image(text);
    let _ = taproom_beers::validate::description(text);
    if taproom_users::validate::username(text).is_ok() {
        assert!((3..=32).contains(&text.chars().count()), "{text:?}");
    }
    let _ = taproom_users::validate::email(text);
    let _ = taproom_users::validate::search(text);
    let _ = taproom_users::validate::password("password", text);
    let _ = taproom_users::validate::name("firstName", text);
    let _ = taproom_users::validate::username_key(text);
});
