//! The beers subgraph through its HTTP app, on a fresh SQLite and a fresh PostgreSQL database.

use std::sync::Arc;

use axum::Router;
use serde_json::{json, Value};
use taproom_beers::{db, demo, AppState};
use taproom_common::{
    db::Db,
    http::Limits,
    test_on_both_databases,
    testing::{data, error_code, graphql, StaticAuthenticator, TestDb},
};

struct TestApp {
    app: Router,
    db: Db,
}

impl TestApp {
    /// A migrated database with the demo catalog.
    async fn start(test_db: &TestDb) -> Self {
        let t = Self::empty(test_db).await;
        demo::seed(&t.db).await.expect("seeds");
        t
    }

    async fn empty(test_db: &TestDb) -> Self {
        let db = test_db.connect().await;
        db.migrate(&db::migrations()).await.expect("migrates");
        let app = taproom_beers::app(
            AppState { db: db.clone() },
            Arc::new(StaticAuthenticator),
            Limits::default(),
        );
        TestApp { app, db }
    }

    async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        graphql(&self.app, query, variables, token).await
    }

    async fn beer(&self, sku: &str) -> Value {
        let response = self
            .gql(
                "query($sku: String!) { beer(sku: $sku) { sku name price image } }",
                json!({ "sku": sku }),
                None,
            )
            .await;
        data(&response)["beer"].clone()
    }

    async fn total(&self) -> i64 {
        let response = self.gql("{ beers { totalCount } }", json!({}), None).await;
        data(&response)["beers"]["totalCount"]
            .as_i64()
            .expect("count")
    }

    async fn create(&self, input: Value, token: Option<&str>) -> Value {
        self.gql(
            "mutation($input: CreateBeerInput!) { createBeer(input: $input) { id sku name price image timeCreated } }",
            json!({ "input": input }),
            token,
        )
        .await
    }

    async fn update(&self, sku: &str, input: Value, token: Option<&str>) -> Value {
        self.gql(
            "mutation($sku: String!, $input: UpdateBeerInput!) { updateBeer(sku: $sku, input: $input) { sku name price image timeModified } }",
            json!({ "sku": sku, "input": input }),
            token,
        )
        .await
    }

    async fn delete(&self, sku: &str, token: Option<&str>) -> Value {
        self.gql(
            "mutation($sku: String!) { deleteBeer(sku: $sku) }",
            json!({ "sku": sku }),
            token,
        )
        .await
    }
}

/// The original app's catalog scenario, with the demo catalog standing in for its three seeded beers.
async fn catalog_scenario(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for (sku, name, price) in [
        ("123456", "Бургаско", "1.19"),
        ("123457", "Загорка", "2.00"),
        ("123458", "Tuborg", "1.50"),
    ] {
        assert_eq!(
            t.beer(sku).await,
            json!({ "sku": sku, "name": name, "price": price, "image": null })
        );
    }
    assert_eq!(t.beer("999999").await, Value::Null);
    let seeded = t.total().await;
    assert!(seeded >= 40, "a few dozen demo beers: {seeded}");

    let new = json!({ "sku": "555", "name": "Ариана", "price": "2.35", "image": "https://example.com/a.png" });
    assert_eq!(
        error_code(&t.create(new.clone(), None).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&t.create(new.clone(), Some("forged")).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&t.create(new.clone(), Some("customer")).await),
        "FORBIDDEN"
    );
    assert_eq!(t.total().await, seeded);
    let created = t.create(new.clone(), Some("admin")).await;
    assert_eq!(data(&created)["createBeer"]["price"], json!("2.35"));
    assert!(data(&created)["createBeer"]["timeCreated"]
        .as_str()
        .expect("time")
        .ends_with('Z'));
    assert_eq!(t.total().await, seeded + 1);
    assert_eq!(error_code(&t.create(new, Some("admin")).await), "CONFLICT");

    let rename = json!({ "name": "Ариана Тъмно" });
    assert_eq!(
        error_code(&t.update("555", rename.clone(), None).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&t.update("555", rename.clone(), Some("customer")).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&t.update("nope", rename.clone(), Some("admin")).await),
        "NOT_FOUND"
    );
    let updated = t.update("555", rename, Some("admin")).await;
    assert_eq!(
        data(&updated)["updateBeer"]["image"],
        json!("https://example.com/a.png"),
        "fields not given keep their values (the old app lost the image here)"
    );
    assert_eq!(data(&updated)["updateBeer"]["price"], json!("2.35"));
    assert!(data(&updated)["updateBeer"]["timeModified"].is_string());

    assert_eq!(error_code(&t.delete("555", None).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&t.delete("555", Some("customer")).await),
        "FORBIDDEN"
    );
    assert_eq!(
        data(&t.delete("555", Some("admin")).await)["deleteBeer"],
        json!(true)
    );
    assert_eq!(
        error_code(&t.delete("555", Some("admin")).await),
        "NOT_FOUND"
    );
    assert_eq!(t.total().await, seeded);
    assert_eq!(t.beer("555").await, Value::Null);
}

/// Every price rule: BAD_USER_INPUT naming price, and nothing stored.
async fn price_rules(test_db: TestDb) {
    let t = TestApp::empty(&test_db).await;
    for bad in [
        json!("-1.00"),
        json!("1.199"),
        json!("1000000.00"),
        json!("abc"),
        json!(""),
        json!(1.5),
        json!("1e2"),
    ] {
        let response = t
            .create(
                json!({ "sku": "p1", "name": "P", "price": bad }),
                Some("admin"),
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{bad}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"],
            json!("price"),
            "{bad}"
        );
    }
    assert_eq!(t.total().await, 0);
    for (given, shown) in [("0", "0.00"), ("999999.99", "999999.99"), ("3.1", "3.10")] {
        let sku = format!("ok{shown}");
        let response = t
            .create(
                json!({ "sku": sku, "name": "P", "price": given }),
                Some("admin"),
            )
            .await;
        assert_eq!(data(&response)["createBeer"]["price"], json!(shown));
    }
    let update = t
        .update("ok0.00", json!({ "price": "0.001" }), Some("admin"))
        .await;
    assert_eq!(update["errors"][0]["extensions"]["field"], json!("price"));
    assert_eq!(t.beer("ok0.00").await["price"], json!("0.00"));
    let null_price = t
        .update("ok0.00", json!({ "price": null }), Some("admin"))
        .await;
    assert_eq!(error_code(&null_price), "BAD_USER_INPUT");
    let integer = t
        .create(
            json!({ "sku": "int", "name": "P", "price": 4 }),
            Some("admin"),
        )
        .await;
    assert_eq!(data(&integer)["createBeer"]["price"], json!("4.00"));
}

/// Other input rules: sku, name and image.
async fn input_rules(test_db: TestDb) {
    let t = TestApp::empty(&test_db).await;
    let cases = [
        (json!({ "sku": "", "name": "N", "price": "1" }), "sku"),
        (
            json!({ "sku": "x".repeat(65), "name": "N", "price": "1" }),
            "sku",
        ),
        (json!({ "sku": "s", "name": " ", "price": "1" }), "name"),
        (
            json!({ "sku": "s", "name": "N", "price": "1", "image": "ftp://example.com/x.png" }),
            "image",
        ),
        (
            json!({ "sku": "s", "name": "N", "price": "1", "image": "not a url" }),
            "image",
        ),
    ];
    for (input, field) in cases {
        let response = t.create(input.clone(), Some("admin")).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{input}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"],
            json!(field),
            "{input}"
        );
    }
    assert_eq!(t.total().await, 0);
    t.create(
        json!({ "sku": "s", "name": "N", "price": "1", "image": "http://example.com/x.png" }),
        Some("admin"),
    )
    .await;
    let cleared = t.update("s", json!({ "image": null }), Some("admin")).await;
    assert_eq!(data(&cleared)["updateBeer"]["image"], Value::Null);
    let bad_image = t
        .update(
            "s",
            json!({ "image": "javascript:alert(1)" }),
            Some("admin"),
        )
        .await;
    assert_eq!(error_code(&bad_image), "BAD_USER_INPUT");
}

async fn page(t: &TestApp, first: i64, after: Option<&str>, search: Option<&str>) -> Value {
    let response = t
        .gql(
            "query($first: Int, $after: String, $search: String) { beers(first: $first, after: $after, search: $search) {
                edges { cursor node { sku name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } }",
            json!({ "first": first, "after": after, "search": search }),
            None,
        )
        .await;
    data(&response)["beers"].clone()
}

/// Pages in (name, sku) order with no gaps or repeats, even while beers are added between calls.
async fn paging_has_no_gaps_or_repeats(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let total = t.total().await as usize;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut after: Option<String> = None;
    let mut inserted = Vec::new();
    loop {
        let page = page(&t, 7, after.as_deref(), None).await;
        let edges = page["edges"].as_array().expect("edges");
        assert!(edges.len() <= 7);
        assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(after.is_some()));
        for edge in edges {
            seen.push((
                edge["node"]["name"].as_str().expect("name").to_owned(),
                edge["node"]["sku"].as_str().expect("sku").to_owned(),
            ));
        }
        // A beer sorting before the current position (not seen) and one after it (seen later).
        let n = inserted.len();
        for name in [format!("AAA inserted {n}"), format!("zzz inserted {n}")] {
            let sku = format!(
                "ins-{n}-{}",
                name.len() + name.chars().next().map_or(0, |c| c as usize)
            );
            t.create(
                json!({ "sku": sku, "name": name, "price": "1.00" }),
                Some("admin"),
            )
            .await;
            inserted.push(name);
        }
        if page["pageInfo"]["hasNextPage"] == json!(false) {
            break;
        }
        after = Some(
            page["pageInfo"]["endCursor"]
                .as_str()
                .expect("cursor")
                .to_owned(),
        );
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        seen, sorted,
        "strictly increasing: no repeats, catalog order"
    );
    let demo_seen = seen
        .iter()
        .filter(|(name, _)| !name.contains("inserted"))
        .count();
    assert_eq!(demo_seen, total, "no gaps");
    assert!(
        seen.iter().any(|(name, _)| name.starts_with("zzz")),
        "rows added ahead are reached"
    );
    assert!(
        !seen.iter().any(|(name, _)| name.starts_with("AAA")),
        "rows added behind are not"
    );

    let empty = page(&t, 0, None, None).await;
    assert_eq!(empty["edges"], json!([]));
    assert_eq!(empty["pageInfo"]["hasNextPage"], json!(true));
    for bad in [-1, 101] {
        let response = t
            .gql(
                "query($f: Int) { beers(first: $f) { totalCount } }",
                json!({ "f": bad }),
                None,
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT");
        assert_eq!(response["errors"][0]["extensions"]["field"], json!("first"));
    }
    let forged = t
        .gql(
            r#"{ beers(after: "bm90LWEtY3Vyc29y") { totalCount } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(forged["errors"][0]["extensions"]["field"], json!("after"));
    let default_size = t
        .gql(
            "{ beers(first: null) { edges { cursor } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        data(&default_size)["beers"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        20
    );
}

/// Errors async-graphql makes itself while executing get a contract code too: an argument that
/// does not coerce, and a variable used but not declared (an input the fuzzer found).
async fn input_errors_of_the_graphql_layer_have_a_code(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for query in [
        r#"mutation { createBeer(input: { sku: "Z1", name: "x", price: true }) { sku } }"#,
        r#"mutation($p: Decimal!) { updateBeer(sku: "123456", input: {price: $p}) { price } }"#,
    ] {
        let response = t.gql(query, json!({}), Some("admin")).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
    }
}

/// A search too long for the database's pattern matcher, or with a NUL that would cut it short, is
/// refused as the caller's mistake, naming the field; the longest allowed search still runs.
async fn search_text_has_limits(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let query = "query($s: String) { beers(search: $s) { totalCount } }";
    for bad in ["a".repeat(50_000), "a\u{0}zzz".to_owned()] {
        let response = t.gql(query, json!({ "s": bad }), None).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"],
            json!("search")
        );
    }
    let longest = t.gql(query, json!({ "s": "b".repeat(200) }), None).await;
    assert_eq!(data(&longest)["beers"]["totalCount"], json!(0));
}

/// Search is case-insensitive for Cyrillic names too, matches skus, and totalCount honours it.
async fn search_is_case_insensitive_beyond_ascii(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let found = page(&t, 10, None, Some("загорка")).await;
    let names: Vec<&str> = found["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Загорка"]);
    assert_eq!(found["totalCount"], json!(1));
    let upper = page(&t, 10, None, Some("ШУМЕНСКО")).await;
    assert_eq!(upper["totalCount"], json!(1));
    let by_sku = page(&t, 10, None, Some("12345")).await;
    assert_eq!(by_sku["totalCount"], json!(3));
    let latin = page(&t, 10, None, Some("zagorka")).await;
    assert_eq!(latin["totalCount"], json!(1), "Zagorka Special");
    let wildcard = page(&t, 10, None, Some("%")).await;
    assert_eq!(wildcard["totalCount"], json!(0), "% is taken literally");
    let paged = page(&t, 1, None, Some("a")).await;
    let next = page(&t, 1, paged["pageInfo"]["endCursor"].as_str(), Some("a")).await;
    assert_ne!(
        paged["edges"][0]["node"]["sku"],
        next["edges"][0]["node"]["sku"]
    );
}

/// `_entities` by id and by sku in one call: one statement per key kind.
async fn entities_by_id_and_sku_in_one_call(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let ids: Vec<String> = {
        let response = t
            .gql(
                "{ beers(first: 30) { edges { node { id sku } } } }",
                json!({}),
                None,
            )
            .await;
        data(&response)["beers"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mut representations: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "__typename": "Beer", "id": id }))
        .collect();
    representations.extend(
        ["123456", "123457", "123458", "missing"]
            .iter()
            .map(|sku| json!({ "__typename": "Beer", "sku": sku })),
    );
    let before = t.db.statements();
    let response = t
        .gql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Beer { id sku name price } } }",
            json!({ "r": representations }),
            None,
        )
        .await;
    assert_eq!(
        t.db.statements() - before,
        2,
        "one statement by id, one by sku"
    );
    let entities = data(&response)["_entities"].as_array().expect("list");
    assert_eq!(entities.len(), ids.len() + 4);
    for (entity, id) in entities.iter().zip(&ids) {
        assert_eq!(&entity["id"], id);
    }
    assert_eq!(entities[ids.len()]["name"], json!("Бургаско"));
    assert_eq!(entities[ids.len() + 1]["price"], json!("2.00"));
    assert_eq!(entities[ids.len() + 3], Value::Null);
}

/// seed-demo adds the catalog once and never touches a non-empty one.
async fn demo_seed_runs_once(test_db: TestDb) {
    let t = TestApp::empty(&test_db).await;
    let added = demo::seed(&t.db).await.expect("seeds");
    assert!(added >= 40);
    assert_eq!(demo::seed(&t.db).await.expect("runs"), 0);
    assert_eq!(t.total().await as usize, added);
}

const DETAIL_FIELDS: &str = "sku description abv available";

/// Description, abv and availability: set at creation, changed and cleared one by one, checked, and
/// the catalog filtered by availability (pages and count alike).
async fn details_and_availability(test_db: TestDb) {
    let t = &TestApp::start(&test_db).await;
    let create = |input: Value| async move {
        t.gql(
            &format!("mutation($input: CreateBeerInput!) {{ createBeer(input: $input) {{ {DETAIL_FIELDS} }} }}"),
            json!({ "input": input }),
            Some("admin"),
        )
        .await
    };
    let created = create(
        json!({ "sku": "900001", "name": "Test Dubbel", "price": "3.10",
        "description": "Dark.\nMalty.", "abv": "7.5", "available": false }),
    )
    .await;
    assert_eq!(
        data(&created)["createBeer"],
        json!({ "sku": "900001", "description": "Dark.\nMalty.", "abv": "7.50", "available": false })
    );
    let plain = create(json!({ "sku": "900002", "name": "Test Lager", "price": "1.00" })).await;
    assert_eq!(
        data(&plain)["createBeer"],
        json!({ "sku": "900002", "description": null, "abv": null, "available": true })
    );

    let update = |input: Value| async move {
        t.gql(
            &format!("mutation($input: UpdateBeerInput!) {{ updateBeer(sku: \"900001\", input: $input) {{ {DETAIL_FIELDS} name }} }}"),
            json!({ "input": input }),
            Some("admin"),
        )
        .await
    };
    let changed = update(json!({ "abv": "100", "available": true })).await;
    assert_eq!(
        data(&changed)["updateBeer"],
        json!({ "sku": "900001", "description": "Dark.\nMalty.", "abv": "100.00", "available": true, "name": "Test Dubbel" })
    );
    let cleared = update(json!({ "description": null, "abv": null })).await;
    assert_eq!(data(&cleared)["updateBeer"]["description"], Value::Null);
    assert_eq!(data(&cleared)["updateBeer"]["abv"], Value::Null);
    assert_eq!(data(&cleared)["updateBeer"]["available"], json!(true));
    let emptied = update(json!({ "description": "Back." })).await;
    assert_eq!(data(&emptied)["updateBeer"]["description"], json!("Back."));
    let emptied = update(json!({ "description": "" })).await;
    assert_eq!(data(&emptied)["updateBeer"]["description"], Value::Null);

    for (input, field) in [
        (json!({ "abv": "100.01" }), "abv"),
        (json!({ "abv": "-1" }), "abv"),
        (json!({ "abv": "5.555" }), "abv"),
        (json!({ "abv": "strong" }), "abv"),
        (json!({ "description": "x".repeat(2001) }), "description"),
        (json!({ "description": "bell\u{7}" }), "description"),
        (json!({ "available": null }), "available"),
    ] {
        let refused = update(input.clone()).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{input}: {refused}");
        assert_eq!(
            refused["errors"][0]["extensions"]["field"],
            json!(field),
            "{input}"
        );
    }
    let refused =
        create(json!({ "sku": "900003", "name": "Too Strong", "price": "1.00", "abv": "101" }))
            .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(t.beer("900003").await, Value::Null, "nothing was created");
    let after_refusals = update(json!({})).await;
    assert_eq!(
        data(&after_refusals)["updateBeer"]["abv"],
        Value::Null,
        "refusals changed nothing"
    );

    // The demo catalog has one beer out of stock; with 900001 made unavailable again there are two.
    update(json!({ "available": false })).await;
    let all = t.total().await;
    let filtered = |available: bool, first: i64, after: Option<String>| async move {
        t.gql(
            "query($a: Boolean, $f: Int, $after: String) { beers(available: $a, first: $f, after: $after) { totalCount edges { node { sku available } } pageInfo { hasNextPage endCursor } } }",
            json!({ "a": available, "f": first, "after": after }),
            None,
        )
        .await
    };
    let unavailable = filtered(false, 10, None).await;
    let page = &data(&unavailable)["beers"];
    assert_eq!(page["totalCount"], json!(2));
    let skus: Vec<&str> = page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["sku"].as_str().expect("sku"))
        .collect();
    assert_eq!(skus.len(), 2);
    assert!(skus.contains(&"900001"), "{skus:?}");
    let mut seen = 0;
    let mut after = None;
    loop {
        let response = filtered(true, 7, after).await;
        let page = &data(&response)["beers"];
        assert_eq!(page["totalCount"], json!(all - 2));
        for edge in page["edges"].as_array().expect("edges") {
            assert_eq!(edge["node"]["available"], json!(true), "{edge}");
            seen += 1;
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, all - 2, "paging the available beers sees each once");
}

/// A catalog made by the first schema (before descriptions, abv and availability) upgrades in
/// place: its beers keep every value and become available, with no description or abv.
async fn an_earlier_catalog_upgrades_in_place(test_db: TestDb) {
    let db = test_db.connect().await;
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    taproom_common::testing::migrate_until(&db, &folder, 1).await;
    db.execute(
        sqlx::query(
            "INSERT INTO beers (sku, name, name_key, sku_key, price_cents, image, time_created)
             VALUES ('123456', 'Бургаско', 'бургаско', '123456', 119, 'https://example.com/b.png', '2026-01-02T03:04:05.000000Z')",
        ),
    )
    .await
    .expect("an old row inserts");
    db.migrate(&db::migrations()).await.expect("upgrades");
    let t = TestApp::empty(&test_db).await;
    let response = t
        .gql(
            "{ beer(sku: \"123456\") { sku name price image timeCreated description abv available } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        data(&response)["beer"],
        json!({ "sku": "123456", "name": "Бургаско", "price": "1.19", "image": "https://example.com/b.png",
                "timeCreated": "2026-01-02T03:04:05Z", "description": null, "abv": null, "available": true })
    );
}

test_on_both_databases!(
    details_and_availability,
    an_earlier_catalog_upgrades_in_place,
    catalog_scenario,
    price_rules,
    input_rules,
    paging_has_no_gaps_or_repeats,
    search_is_case_insensitive_beyond_ascii,
    search_text_has_limits,
    input_errors_of_the_graphql_layer_have_a_code,
    entities_by_id_and_sku_in_one_call,
    demo_seed_runs_once,
);
