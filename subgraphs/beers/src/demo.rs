//! The demo catalog `seed-demo` adds: the original app's three beers, then enough more to page
//! through; some with a description and abv, one out of stock.

use taproom_common::db::Db;

use crate::{
    db::{self, NewBeer},
    error::Result,
};

/// (sku, name, price in cents). The first three are the original app's.
const DEMO: &[(&str, &str, i64)] = &[
    ("123456", "Бургаско", 119),
    ("123457", "Загорка", 200),
    ("123458", "Tuborg", 150),
    ("200001", "Amstel", 165),
    ("200002", "Ариана", 129),
    ("200003", "Astika", 139),
    ("200004", "Beck's", 189),
    ("200005", "Budweiser Budvar", 249),
    ("200006", "Carlsberg", 159),
    ("200007", "Corona Extra", 259),
    ("200008", "Duvel", 389),
    ("200009", "Erdinger Weissbier", 299),
    ("200010", "Guinness Draught", 329),
    ("200011", "Heineken", 179),
    ("200012", "Hoegaarden", 279),
    ("200013", "Kamenitza", 135),
    ("200014", "Каменица Тъмно", 155),
    ("200015", "Krombacher Pils", 209),
    ("200016", "Leffe Blonde", 319),
    ("200017", "Löwenbräu Original", 229),
    ("200018", "Paulaner Hefe-Weißbier", 309),
    ("200019", "Pilsner Urquell", 239),
    ("200020", "Пиринско", 125),
    ("200021", "Shumensko", 119),
    ("200022", "Шуменско Премиум", 145),
    ("200023", "Stella Artois", 199),
    ("200024", "Staropramen", 189),
    ("200025", "Velkopopovický Kozel", 169),
    ("200026", "Weihenstephaner Original", 289),
    ("200027", "Zagorka Special", 189),
    ("200028", "Chimay Blue", 459),
    ("200029", "Westmalle Tripel", 429),
    ("200030", "Orval", 499),
    ("200031", "Sierra Nevada Pale Ale", 349),
    ("200032", "Brewdog Punk IPA", 339),
    ("200033", "Schneider Weisse", 269),
    ("200034", "Augustiner Helles", 249),
    ("200035", "Rochefort 10", 549),
    ("200036", "Старопрамен", 185),
    ("200037", "Bernard Svetlé", 199),
    ("200038", "Tsingtao", 209),
    ("200039", "Asahi Super Dry", 259),
    ("200040", "Peroni Nastro Azzurro", 229),
];

/// Descriptions and alcohol by volume (hundredths of a percent) of some demo beers, by sku.
const DETAILS: &[(&str, &str, i64)] = &[
    (
        "123456",
        "A pale lager from Burgas on the Black Sea coast: light, crisp, best cold.",
        440,
    ),
    (
        "123457",
        "Stara Zagora's golden lager, brewed since 1902; malty with a clean finish.",
        500,
    ),
    (
        "123458",
        "The Danish pilsner with the green label: bright, dry and lightly bitter.",
        460,
    ),
    (
        "200008",
        "A Belgian strong golden ale: fruity, peppery and dangerously smooth.",
        850,
    ),
    (
        "200010",
        "The Irish dry stout, poured with nitrogen for its creamy head.",
        420,
    ),
    (
        "200012",
        "A Belgian witbier spiced with coriander and orange peel; cloudy and soft.",
        490,
    ),
    (
        "200019",
        "The first pilsner, from Plzeň since 1842: golden, with Saaz hops.",
        440,
    ),
    (
        "200028",
        "A Trappist dark ale, rich with dried fruit and caramel; it ages well.",
        900,
    ),
    (
        "200030",
        "A Trappist pale ale refermented with Brettanomyces: dry, earthy, unique.",
        620,
    ),
    (
        "200035",
        "A Trappist quadrupel, dark and strong, with notes of figs and chocolate.",
        1130,
    ),
];

/// The demo beer that is out of stock, to show `available: false`.
const UNAVAILABLE: &str = "200035";

/// Adds the demo catalog if the catalog is empty, in one transaction; how many beers it added.
pub async fn seed(db: &Db) -> Result<usize> {
    let beers: Vec<NewBeer> = DEMO
        .iter()
        .map(|(sku, name, price_cents)| {
            let details = DETAILS.iter().find(|(s, _, _)| s == sku);
            NewBeer {
                sku,
                name,
                price_cents: *price_cents,
                image: None,
                description: details.map(|(_, description, _)| *description),
                abv_hundredths: details.map(|(_, _, abv)| *abv),
                available: *sku != UNAVAILABLE,
            }
        })
        .collect();
    db::insert_into_empty_catalog(db, &beers).await
}
