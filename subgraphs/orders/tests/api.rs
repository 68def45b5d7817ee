//! The orders subgraph through its HTTP app, with the real beers subgraph serving over HTTP, on fresh
//! SQLite and PostgreSQL databases.

use std::sync::Arc;

use axum::Router;
use serde_json::{json, Value};
use taproom_common::{
    db::Db,
    http::Limits,
    test_on_both_databases,
    testing::{data, error_code, graphql, StaticAuthenticator, TestDb},
};
use taproom_orders::{beers::BeersClient, db, AppState};
use tokio::net::TcpListener;

const ORDER_FIELDS: &str = "id isOpen status timeCancelled total itemCount timeCreated timeModified timeClosed owner { id } items { sku name quantity unitPrice lineTotal beer { id } }";

struct TestApp {
    app: Router,
    db: Db,
    beers: String,
    _beers_db: TestDb,
}

/// Serves the real beers subgraph (demo catalog) on 127.0.0.1; returns its GraphQL URL.
async fn start_beers(test_db: &TestDb) -> String {
    let db = test_db.connect().await;
    db.migrate(&taproom_beers::db::migrations())
        .await
        .expect("migrates");
    taproom_beers::demo::seed(&db).await.expect("seeds");
    let app = taproom_beers::app(
        taproom_beers::AppState { db },
        Arc::new(StaticAuthenticator),
        Limits::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    tokio::spawn(taproom_common::http::serve(
        listener,
        app,
        std::future::pending(),
    ));
    url
}

/// A URL where nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    drop(listener);
    url
}

impl TestApp {
    async fn start(test_db: &TestDb) -> Self {
        let beers_db = test_db.sibling().await;
        let beers = start_beers(&beers_db).await;
        Self::with_beers(test_db, beers, beers_db).await
    }

    async fn with_beers(test_db: &TestDb, beers: String, beers_db: TestDb) -> Self {
        let db = test_db.connect().await;
        db.migrate(&db::migrations()).await.expect("migrates");
        let state = AppState {
            db: db.clone(),
            beers: BeersClient::new(beers.clone(), None),
            events: taproom_orders::events::Events::new(db.backend()),
        };
        TestApp {
            app: taproom_orders::app(state, Arc::new(StaticAuthenticator), Limits::default()),
            db,
            beers,
            _beers_db: beers_db,
        }
    }

    async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        graphql(&self.app, query, variables, token).await
    }

    /// Runs `query` on the beers subgraph as an admin (the catalog's side of a scenario).
    async fn catalog(&self, query: &str) -> Value {
        reqwest::Client::new()
            .post(&self.beers)
            .bearer_auth("admin")
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("beers answers")
            .json()
            .await
            .expect("json")
    }

    async fn add(&self, sku: &str, quantity: i64, token: &str) -> Value {
        self.gql(
            &format!("mutation($sku: String!, $q: Int!) {{ addToOrder(sku: $sku, quantity: $q) {{ {ORDER_FIELDS} }} }}"),
            json!({ "sku": sku, "q": quantity }),
            Some(token),
        )
        .await
    }

    async fn remove(&self, sku: &str, token: &str) -> Value {
        self.gql(
            &format!(
                "mutation($sku: String!) {{ removeFromOrder(sku: $sku) {{ {ORDER_FIELDS} }} }}"
            ),
            json!({ "sku": sku }),
            Some(token),
        )
        .await
    }

    async fn checkout(&self, token: &str) -> Value {
        self.gql(
            &format!("mutation {{ checkout {{ {ORDER_FIELDS} }} }}"),
            json!({}),
            Some(token),
        )
        .await
    }

    async fn current(&self, token: &str) -> Value {
        let response = self
            .gql(
                &format!("{{ currentOrder {{ {ORDER_FIELDS} }} }}"),
                json!({}),
                Some(token),
            )
            .await;
        data(&response)["currentOrder"].clone()
    }

    async fn my_orders(&self, token: &str) -> Vec<Value> {
        let response = self
            .gql(
                &format!("{{ myOrders {{ {ORDER_FIELDS} }} }}"),
                json!({}),
                Some(token),
            )
            .await;
        data(&response)["myOrders"]
            .as_array()
            .expect("list")
            .clone()
    }
}

fn quantities(order: &Value) -> Vec<(String, i64)> {
    order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().expect("sku").to_owned(),
                i["quantity"].as_i64().expect("quantity"),
            )
        })
        .collect()
}

/// The original app's orders scenario.
async fn orders_scenario(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for query in [
        "{ myOrders { id } }",
        "{ currentOrder { id } }",
        r#"mutation { addToOrder(sku: "123456", quantity: 1) { id } }"#,
        "mutation { checkout { id } }",
    ] {
        assert_eq!(
            error_code(&t.gql(query, json!({}), None).await),
            "UNAUTHENTICATED",
            "{query}"
        );
    }
    assert!(t.my_orders("customer").await.is_empty());
    assert_eq!(t.current("customer").await, Value::Null);

    let first = t.add("123456", 2, "customer").await;
    let order = &data(&first)["addToOrder"];
    assert_eq!(order["isOpen"], json!(true));
    assert_eq!(order["owner"], json!({ "id": "2" }));
    assert_eq!(quantities(order), [("123456".into(), 2)]);
    assert_eq!(order["items"][0]["name"], json!("Бургаско"));
    assert!(order["items"][0]["beer"]["id"].is_string(), "{order}");
    let id = order["id"].clone();

    let more = t.add("123456", 2, "customer").await;
    assert_eq!(
        quantities(&data(&more)["addToOrder"]),
        [("123456".into(), 4)]
    );
    assert_eq!(data(&more)["addToOrder"]["id"], id, "the same open order");
    let other_sku = t.add("123457", 1, "customer").await;
    assert_eq!(
        quantities(&data(&other_sku)["addToOrder"]),
        [("123456".into(), 4), ("123457".into(), 1)]
    );

    let unknown = t.add("000000", 1, "customer").await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    for bad in [0, -1, 1001] {
        let response = t.add("123456", bad, "customer").await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{bad}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"],
            json!("quantity")
        );
    }
    assert_eq!(
        quantities(&t.current("customer").await),
        [("123456".into(), 4), ("123457".into(), 1)]
    );

    let removed = t.remove("123457", "customer").await;
    assert_eq!(
        quantities(&data(&removed)["removeFromOrder"]),
        [("123456".into(), 4)]
    );
    assert_eq!(
        error_code(&t.remove("123457", "customer").await),
        "NOT_FOUND"
    );

    let closed = t.checkout("customer").await;
    let closed = &data(&closed)["checkout"];
    assert_eq!(closed["isOpen"], json!(false));
    assert!(closed["timeClosed"]
        .as_str()
        .expect("closed time")
        .ends_with('Z'));
    assert_eq!(t.current("customer").await, Value::Null);

    let query = format!("query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}");
    let own = t.gql(&query, json!({ "id": id }), Some("customer")).await;
    assert_eq!(data(&own)["order"]["id"], id);
    let foreign = t.gql(&query, json!({ "id": id }), Some("other")).await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    let missing = t
        .gql(&query, json!({ "id": "999999" }), Some("customer"))
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    assert!(t.my_orders("other").await.is_empty());

    t.add("123458", 1, "customer").await;
    let orders = t.my_orders("customer").await;
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["isOpen"], json!(true), "newest first");
    assert_eq!(orders[1]["id"], id);
}

/// Totals are exact decimals.
async fn totals_are_exact(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.add("123456", 3, "customer").await;
    let response = t.add("123457", 1, "customer").await;
    let order = &data(&response)["addToOrder"];
    assert_eq!(order["total"], json!("5.57"));
    assert_eq!(order["itemCount"], json!(4));
    assert_eq!(order["items"][0]["unitPrice"], json!("1.19"));
    assert_eq!(order["items"][0]["lineTotal"], json!("3.57"));
    assert_eq!(order["items"][1]["lineTotal"], json!("2.00"));
}

/// A closed order never changes; an empty order cannot be checked out; no open order is NOT_FOUND.
async fn closed_orders_refuse_changes(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    assert_eq!(error_code(&t.checkout("customer").await), "NOT_FOUND");
    assert_eq!(
        error_code(&t.remove("123456", "customer").await),
        "NOT_FOUND"
    );
    t.add("123456", 1, "customer").await;
    t.remove("123456", "customer").await;
    let empty = t.checkout("customer").await;
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");
    assert_eq!(
        t.current("customer").await,
        Value::Null,
        "an open order with no lines is not shown"
    );

    t.add("123456", 2, "customer").await;
    let closed = data(&t.checkout("customer").await)["checkout"].clone();
    assert_eq!(error_code(&t.checkout("customer").await), "NOT_FOUND");
    assert_eq!(
        error_code(&t.remove("123456", "customer").await),
        "NOT_FOUND"
    );
    let reopened = t.add("123456", 5, "customer").await;
    assert_ne!(
        data(&reopened)["addToOrder"]["id"],
        closed["id"],
        "a new order"
    );
    let orders = t.my_orders("customer").await;
    let old = orders
        .iter()
        .find(|o| o["id"] == closed["id"])
        .expect("still listed");
    assert_eq!(quantities(old), [("123456".into(), 2)]);
    assert_eq!(old["timeClosed"], closed["timeClosed"]);
}

/// 50 concurrent adds by one user: exactly one open order, with quantity 50.
async fn concurrent_adds_make_one_open_order(test_db: TestDb) {
    let t = Arc::new(TestApp::start(&test_db).await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.add("123458", 1, "customer").await })
        })
        .collect();
    for task in tasks {
        let response = task.await.expect("joins");
        data(&response);
    }
    let orders = t.my_orders("customer").await;
    assert_eq!(orders.len(), 1);
    assert_eq!(quantities(&orders[0]), [("123458".into(), 50)]);
}

/// A line holds at most 1000, checked after adding, and a refused add changes nothing.
async fn line_quantity_cap(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    data(&t.add("123456", 1000, "customer").await);
    let over = t.add("123456", 1, "customer").await;
    assert_eq!(error_code(&over), "BAD_USER_INPUT");
    assert_eq!(
        quantities(&t.current("customer").await),
        [("123456".into(), 1000)]
    );
}

/// The beers subgraph down during addToOrder: a clear error, and no order opened.
async fn beers_unreachable_changes_nothing(test_db: TestDb) {
    let beers_db = test_db.sibling().await;
    let t = TestApp::with_beers(&test_db, dead_url().await, beers_db).await;
    let response = t.add("123456", 1, "customer").await;
    assert_eq!(error_code(&response), "INTERNAL_SERVER_ERROR");
    let message = response["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("beers service is unavailable"),
        "{message}"
    );
    assert!(
        !message.contains("127.0.0.1"),
        "no internals leak: {message}"
    );
    assert_eq!(t.current("customer").await, Value::Null);
}

/// A line keeps the price it was last changed at.
async fn lines_keep_the_price_of_their_last_change(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.add("123456", 1, "customer").await;
    let set_price = |price: &'static str| {
        let t = &t;
        async move {
            let response = t
                .catalog(&format!(
                    r#"mutation {{ updateBeer(sku: "123456", input: {{ price: "{price}" }}) {{ price }} }}"#
                ))
                .await;
            assert_eq!(response["data"]["updateBeer"]["price"], json!(price));
        }
    };
    set_price("9.99").await;
    assert_eq!(
        t.current("customer").await["items"][0]["unitPrice"],
        json!("1.19"),
        "unchanged line"
    );
    let changed = t.add("123456", 1, "customer").await;
    let line = &data(&changed)["addToOrder"]["items"][0];
    assert_eq!(line["unitPrice"], json!("9.99"));
    assert_eq!(line["lineTotal"], json!("19.98"));
}

/// The report: a line of a beer the admin then deleted was checked out with `beer: null`, and once
/// a new beer took its sku the closed order showed that beer at its price. Now checkout refuses
/// while the open order holds a beer that left the catalog, naming the sku, and a closed order keeps
/// the name and price it was bought at, its beer never becoming a later one with the same sku.
async fn history_keeps_what_was_bought(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let create = |name: &str, price: &str| {
        format!(
            r#"mutation {{ createBeer(input: {{ sku: "TMP-x", name: "{name}", price: "{price}" }}) {{ id }} }}"#
        )
    };
    let delete = r#"mutation { deleteBeer(sku: "TMP-x") }"#;
    let first_id =
        t.catalog(&create("Temporary Lager", "5.00")).await["data"]["createBeer"]["id"].clone();
    t.add("TMP-x", 2, "customer").await;
    let closed = t.checkout("customer").await;
    let closed_id = data(&closed)["checkout"]["id"].clone();

    assert_eq!(t.catalog(delete).await["data"]["deleteBeer"], json!(true));
    let second_id =
        t.catalog(&create("Pricey Lager", "99.00")).await["data"]["createBeer"]["id"].clone();
    assert_ne!(first_id, second_id);
    let history = t.my_orders("customer").await;
    let line = &history
        .iter()
        .find(|order| order["id"] == closed_id)
        .expect("the closed order")["items"][0];
    assert_eq!(line["name"], json!("Temporary Lager"));
    assert_eq!(line["unitPrice"], json!("5.00"));
    assert_eq!(line["lineTotal"], json!("10.00"));
    assert_eq!(
        line["beer"],
        json!({ "id": first_id }),
        "the beer it was bought as"
    );

    // A line whose beer left the catalog holds checkout back, even once its sku is taken again.
    t.add("TMP-x", 1, "customer").await;
    t.add("123456", 1, "customer").await;
    assert_eq!(t.catalog(delete).await["data"]["deleteBeer"], json!(true));
    let refused = t.checkout("customer").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("TMP-x") && !message.contains("123456"),
        "{message}"
    );
    t.catalog(&create("Third Lager", "1.00")).await;
    let still = t.checkout("customer").await;
    assert_eq!(
        error_code(&still),
        "BAD_USER_INPUT",
        "the line is of the deleted beer"
    );
    assert_eq!(
        t.current("customer").await["isOpen"],
        json!(true),
        "nothing changed"
    );
    t.remove("TMP-x", "customer").await;
    let done = t.checkout("customer").await;
    assert_eq!(data(&done)["checkout"]["isOpen"], json!(false));
}

/// Concurrent adds and checkouts of one customer, straight on the database from several threads:
/// every order is closed no earlier than it was created and last changed (the clock is read once
/// the transaction holds its lock; it was read before, and an order could close before it opened).
async fn timestamps_follow_the_order_of_changes(test_db: TestDb) {
    let db = test_db.connect().await;
    db.migrate(&db::migrations()).await.expect("migrates");
    let beer = db::LineBeer {
        sku: "123456",
        beer_id: 1,
        name: "Бургаско",
        unit_price_cents: 119,
    };
    // Ten rounds of twenty adds and ten checkouts at once. Each round starts with an open order
    // (one add first): only checkouts close orders, so the first checkout to lock it closes it,
    // and every round closes at least one order whatever the scheduling.
    const ROUNDS: usize = 10;
    for _ in 0..ROUNDS {
        db::change_line(&db, 7, beer, db::LineChange::Add(1), None)
            .await
            .expect("adds");
        let changes: Vec<_> = (0..30)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    if i % 3 == 2 {
                        if let Some((order_id, lines)) =
                            db::open_order_lines(&db, 7).await.expect("reads")
                        {
                            db::checkout(&db, 7, order_id, &lines, None).await.ok();
                        }
                    } else {
                        db::change_line(&db, 7, beer, db::LineChange::Add(1), None)
                            .await
                            .ok();
                    }
                })
            })
            .collect();
        for change in changes {
            change.await.expect("no panic");
        }
    }
    let orders = db::orders_by_users(&db, &[7]).await.expect("reads");
    let closed = orders.iter().filter(|o| o.time_closed.is_some()).count();
    assert!(
        closed >= ROUNDS,
        "a checkout closed an order in every round: {closed}"
    );
    // Stored times are fixed-width and sort as text.
    for order in &orders {
        let modified = order.time_modified.as_ref().unwrap_or(&order.time_created);
        assert!(modified >= &order.time_created, "{order:?}");
        if let Some(closed) = &order.time_closed {
            assert!(
                closed >= &order.time_created && closed >= modified,
                "{order:?}"
            );
        }
    }
}

mod timestamps_follow_the_order_of_changes {
    use taproom_common::testing::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::timestamps_follow_the_order_of_changes(TestDb::sqlite().await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::timestamps_follow_the_order_of_changes(TestDb::postgres().await).await
    }
}

/// Lists and entity batches cost one statement per loader, whatever the number of orders.
async fn batches_cost_one_statement_each(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for _ in 0..5 {
        t.add("123456", 1, "customer").await;
        t.add("123457", 2, "customer").await;
        t.checkout("customer").await;
    }
    let before = t.db.statements();
    let orders = t.my_orders("customer").await;
    assert_eq!(orders.len(), 5);
    assert_eq!(
        t.db.statements() - before,
        2,
        "orders by user, then lines by order"
    );

    // Lines are loaded only when something made of them is selected.
    let before = t.db.statements();
    t.gql("{ myOrders { id isOpen } }", json!({}), Some("customer"))
        .await;
    assert_eq!(t.db.statements() - before, 1, "orders by user only");

    // The router's heavy shape: every order's owner with all of the owner's orders again.
    let before = t.db.statements();
    let response = t
        .gql(
            "{ myOrders { total itemCount items { sku } owner { orders { id total items { quantity } } } } }",
            json!({}),
            Some("customer"),
        )
        .await;
    assert_eq!(
        t.db.statements() - before,
        4,
        "orders by user, their lines, the owner's orders (once for all five owners), their lines"
    );
    let mine = data(&response)["myOrders"].as_array().expect("list");
    assert_eq!(mine.len(), 5);
    assert!(mine.iter().all(|o| o["total"] == json!("5.19")
        && o["itemCount"] == json!(3)
        && o["owner"]["orders"].as_array().map(Vec::len) == Some(5)));

    let representations: Vec<Value> = orders
        .iter()
        .map(|o| json!({ "__typename": "Order", "id": o["id"] }))
        .collect();
    let before = t.db.statements();
    let response = t
        .gql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id total items { sku } } } }",
            json!({ "r": representations }),
            Some("customer"),
        )
        .await;
    assert_eq!(
        t.db.statements() - before,
        2,
        "orders by id, then lines by order"
    );
    let entities = data(&response)["_entities"].as_array().expect("list");
    assert_eq!(entities.len(), 5);
    assert!(entities.iter().all(|e| e["total"] == json!("5.19")));

    let foreign = t
        .gql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id } } }",
            json!({ "r": representations }),
            Some("other"),
        )
        .await;
    assert!(data(&foreign)["_entities"]
        .as_array()
        .expect("list")
        .iter()
        .all(Value::is_null));
}

/// `User.orders`: the user themself only.
async fn user_orders_are_private(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.add("123456", 1, "customer").await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id orders { id isOpen } } } }";
    let me = json!({ "r": [{ "__typename": "User", "id": "2" }] });
    let own = t.gql(query, me.clone(), Some("customer")).await;
    assert_eq!(
        data(&own)["_entities"][0]["orders"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        error_code(&t.gql(query, me.clone(), Some("other")).await),
        "FORBIDDEN"
    );
    assert_eq!(error_code(&t.gql(query, me, None).await), "UNAUTHENTICATED");
}

/// The router's heavy shape resolves the owner's orders once per query (`taproom_common::memo`):
/// the answer is the one every place gets when each resolves them itself.
async fn repeated_subtrees_answer_as_if_resolved_everywhere(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for _ in 0..3 {
        t.add("123456", 1, "customer").await;
        t.add("123457", 2, "customer").await;
        t.checkout("customer").await;
    }
    t.add("123456", 4, "customer").await;
    let without_memo = taproom_orders::app(
        AppState {
            db: t.db.clone(),
            beers: BeersClient::new(t.beers.clone(), None),
            events: taproom_orders::events::Events::new(t.db.backend()),
        },
        Arc::new(StaticAuthenticator),
        Limits {
            subtree_memo: false,
            ..Limits::default()
        },
    );
    let query = format!(
        "{{ myOrders {{ {ORDER_FIELDS} owner {{ id orders {{ {ORDER_FIELDS} }} again: orders {{ id }} }} }} }}"
    );
    let shared = t.gql(&query, json!({}), Some("customer")).await;
    let alone = graphql(&without_memo, &query, json!({}), Some("customer")).await;
    assert_eq!(shared, alone);
    let mine = data(&shared)["myOrders"].as_array().expect("list");
    assert_eq!(mine.len(), 4);
    // Under each order, the owner's orders are the same four orders, field for field.
    let expected: Vec<Value> = mine
        .iter()
        .map(|order| {
            let mut order = order.clone();
            order["owner"] = json!({ "id": order["owner"]["id"] });
            order
        })
        .collect();
    for order in mine {
        assert_eq!(order["owner"]["orders"], json!(expected));
        assert_eq!(order["owner"]["again"].as_array().map(Vec::len), Some(4));
    }
}

/// `setOrderItemQuantity`: sets a line at the beer's current price, 0 removes it, the same limits as
/// `addToOrder`; an open order left empty is no longer listed until a line is added again.
async fn setting_a_line_quantity(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let set = |sku: &'static str, quantity: i64| {
        let t = &t;
        async move {
            t.gql(
                &format!("mutation($sku: String!, $q: Int!) {{ setOrderItemQuantity(sku: $sku, quantity: $q) {{ {ORDER_FIELDS} status }} }}"),
                json!({ "sku": sku, "q": quantity }),
                Some("customer"),
            )
            .await
        }
    };
    assert_eq!(
        error_code(&set("123456", 0).await),
        "NOT_FOUND",
        "no open order to remove from"
    );
    let opened = set("123456", 3).await;
    let order = &data(&opened)["setOrderItemQuantity"];
    assert_eq!(quantities(order), [("123456".into(), 3)]);
    assert_eq!(order["status"], json!("OPEN"));
    assert_eq!(order["total"], json!("3.57"));
    t.add("123457", 1, "customer").await;
    let lowered = set("123456", 1).await;
    assert_eq!(
        quantities(&data(&lowered)["setOrderItemQuantity"]),
        [("123456".into(), 1), ("123457".into(), 1)],
        "set, not added"
    );
    let raised = set("123456", 1000).await;
    assert_eq!(
        data(&raised)["setOrderItemQuantity"]["items"][0]["quantity"],
        json!(1000)
    );
    for bad in [-1, 1001] {
        let refused = set("123456", bad).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{bad}");
        assert_eq!(
            refused["errors"][0]["extensions"]["field"],
            json!("quantity")
        );
    }
    assert_eq!(error_code(&set("000000", 1).await), "NOT_FOUND");
    assert_eq!(
        quantities(&t.current("customer").await),
        [("123456".into(), 1000), ("123457".into(), 1)],
        "refusals changed nothing"
    );

    // The price is captured when the line is set.
    t.catalog(r#"mutation { updateBeer(sku: "123457", input: { price: "2.50" }) { sku } }"#)
        .await;
    let repriced = set("123457", 2).await;
    assert_eq!(
        data(&repriced)["setOrderItemQuantity"]["items"][1]["unitPrice"],
        json!("2.50")
    );

    let unchanged = set("123458", 0).await;
    assert_eq!(
        quantities(&data(&unchanged)["setOrderItemQuantity"]).len(),
        2,
        "0 for a line that is not there changes nothing"
    );
    set("123456", 0).await;
    let emptied = set("123457", 0).await;
    let empty = &data(&emptied)["setOrderItemQuantity"];
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["total"], json!("0.00"));
    assert_eq!(
        t.current("customer").await,
        Value::Null,
        "an empty order is no current order"
    );
    assert!(t.my_orders("customer").await.is_empty(), "nor listed");
    let again = t.add("123458", 1, "customer").await;
    assert_eq!(
        data(&again)["addToOrder"]["id"],
        empty["id"],
        "adding shows it again"
    );
    assert_eq!(t.my_orders("customer").await.len(), 1);
    t.remove("123458", "customer").await;
    assert!(
        t.my_orders("customer").await.is_empty(),
        "removeFromOrder empties it too"
    );
}

/// A beer that cannot be ordered now is refused by addToOrder and setOrderItemQuantity, and holds
/// up checkout until it is removed or available again.
async fn unavailable_beers_cannot_be_ordered(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.add("123457", 2, "customer").await;
    let available = |on: bool| {
        let t = &t;
        async move {
            let response = t
                .catalog(&format!(
                    r#"mutation {{ updateBeer(sku: "123457", input: {{ available: {on} }}) {{ available }} }}"#
                ))
                .await;
            assert_eq!(
                response["data"]["updateBeer"]["available"],
                json!(on),
                "{response}"
            );
        }
    };
    available(false).await;
    let refused = t.add("123457", 1, "customer").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], json!("sku"));
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .expect("present")
            .contains("not available"),
        "{refused}"
    );
    let refused = t
        .gql(
            r#"mutation { setOrderItemQuantity(sku: "123457", quantity: 1) { id } }"#,
            json!({}),
            Some("customer"),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    let checkout = t.checkout("customer").await;
    assert_eq!(error_code(&checkout), "BAD_USER_INPUT");
    assert!(
        checkout["errors"][0]["message"]
            .as_str()
            .expect("present")
            .contains("123457"),
        "{checkout}"
    );
    assert_eq!(
        quantities(&t.current("customer").await),
        [("123457".into(), 2)]
    );
    available(true).await;
    let closed = t.checkout("customer").await;
    assert_eq!(data(&closed)["checkout"]["status"], json!("CHECKED_OUT"));
}

/// `cancelOrder` and `status`: OPEN, then CHECKED_OUT or CANCELLED, each final and stamped.
async fn the_order_lifecycle(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let cancel = |id: Value, token: Option<&'static str>| {
        let t = &t;
        async move {
            t.gql(
                "mutation($id: ID!) { cancelOrder(id: $id) { id status isOpen timeClosed timeCancelled timeModified items { sku } } }",
                json!({ "id": id }),
                token,
            )
            .await
        }
    };
    let opened = t.add("123456", 1, "customer").await;
    let first = data(&opened)["addToOrder"]["id"].clone();
    assert_eq!(
        error_code(&cancel(first.clone(), None).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&cancel(first.clone(), Some("other")).await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&cancel(json!("999999"), Some("customer")).await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&cancel(json!("x"), Some("customer")).await),
        "NOT_FOUND"
    );
    let cancelled = cancel(first.clone(), Some("customer")).await;
    let order = &data(&cancelled)["cancelOrder"];
    assert_eq!(order["status"], json!("CANCELLED"));
    assert_eq!(order["isOpen"], json!(false));
    assert_eq!(order["timeClosed"], Value::Null);
    assert_eq!(order["timeCancelled"], order["timeModified"]);
    assert!(order["timeCancelled"]
        .as_str()
        .expect("present")
        .ends_with('Z'));
    assert_eq!(
        order["items"],
        json!([{ "sku": "123456" }]),
        "the lines stay"
    );
    assert_eq!(t.current("customer").await, Value::Null);
    let again = cancel(first.clone(), Some("customer")).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert_eq!(again["errors"][0]["extensions"]["field"], json!("id"));
    assert!(again["errors"][0]["message"]
        .as_str()
        .expect("present")
        .contains("cancelled"));

    // A cancelled order takes no lines: the next add opens a new order.
    let next = t.add("123457", 1, "customer").await;
    let second = data(&next)["addToOrder"]["id"].clone();
    assert_ne!(second, first);
    let closed = t.checkout("customer").await;
    assert_eq!(data(&closed)["checkout"]["timeCancelled"], Value::Null);
    let refused = cancel(second.clone(), Some("customer")).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert!(refused["errors"][0]["message"]
        .as_str()
        .expect("present")
        .contains("checked out"));

    let statuses = t
        .gql("{ myOrders { id status } }", json!({}), Some("customer"))
        .await;
    assert_eq!(
        data(&statuses)["myOrders"],
        json!([{ "id": second, "status": "CHECKED_OUT" }, { "id": first, "status": "CANCELLED" }])
    );
}

const CONNECTION: &str = "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id status total items { sku } } }";

/// Every id of a connection's pages, following `endCursor`, checking totals and page sizes.
async fn page_through(
    t: &TestApp,
    query: &str,
    mut variables: Value,
    token: &str,
    pointer: &str,
) -> Vec<Value> {
    let mut ids = Vec::new();
    loop {
        let response = t.gql(query, variables.clone(), Some(token)).await;
        let page = data(&response).pointer(pointer).unwrap_or(&Value::Null);
        assert!(page.is_object(), "{response}");
        let edges = page["edges"].as_array().expect("edges");
        assert!(edges.len() <= 2);
        assert_eq!(
            page["pageInfo"]["hasPreviousPage"],
            json!(!variables["after"].is_null())
        );
        for edge in edges {
            assert!(edge["node"]["items"]
                .as_array()
                .is_some_and(|i| !i.is_empty()));
            ids.push(edge["node"]["id"].clone());
        }
        assert_eq!(
            page["pageInfo"]["endCursor"],
            edges.last().map_or(Value::Null, |e| e["cursor"].clone())
        );
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return ids;
        }
        variables["after"] = page["pageInfo"]["endCursor"].clone();
    }
}

/// `User.ordersConnection` pages the caller's orders newest first, filtered by status, with no gaps
/// or repeats; the lines of a page cost one statement; anyone else gets FORBIDDEN.
async fn order_history_pages(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let mut checked_out = Vec::new();
    for _ in 0..5 {
        let added = t.add("123456", 1, "customer").await;
        checked_out.push(data(&added)["addToOrder"]["id"].clone());
        t.checkout("customer").await;
    }
    let added = t.add("123457", 1, "customer").await;
    let cancelled = data(&added)["addToOrder"]["id"].clone();
    t.gql(
        "mutation($id: ID!) { cancelOrder(id: $id) { id } }",
        json!({ "id": cancelled }),
        Some("customer"),
    )
    .await;
    let added = t.add("123458", 1, "customer").await;
    let open = data(&added)["addToOrder"]["id"].clone();
    // Someone else's orders never show.
    t.add("123456", 1, "other").await;

    let query = format!(
        "query($r: [_Any!]!, $f: Int, $after: String, $s: OrderStatus) {{ _entities(representations: $r) {{ ... on User {{ ordersConnection(first: $f, after: $after, status: $s) {{ {CONNECTION} }} }} }} }}"
    );
    let me = json!([{ "__typename": "User", "id": "2" }]);
    let all = page_through(
        &t,
        &query,
        json!({ "r": me, "f": 2, "after": null }),
        "customer",
        "/_entities/0/ordersConnection",
    )
    .await;
    let mut newest_first = vec![open.clone(), cancelled.clone()];
    newest_first.extend(checked_out.iter().rev().cloned());
    assert_eq!(all, newest_first);
    let only = page_through(
        &t,
        &query,
        json!({ "r": me, "f": 2, "after": null, "s": "CHECKED_OUT" }),
        "customer",
        "/_entities/0/ordersConnection",
    )
    .await;
    assert_eq!(only, checked_out.iter().rev().cloned().collect::<Vec<_>>());

    let counted = t
        .gql(
            &query,
            json!({ "r": me, "f": 0, "s": "CANCELLED" }),
            Some("customer"),
        )
        .await;
    let page = &data(&counted)["_entities"][0]["ordersConnection"];
    assert_eq!(page["totalCount"], json!(1));
    assert_eq!(page["edges"], json!([]));

    let before = t.db.statements();
    t.gql(&query, json!({ "r": me, "f": 7 }), Some("customer"))
        .await;
    assert_eq!(
        t.db.statements() - before,
        3,
        "the page, its lines in one batch, the count"
    );

    for (variables, field) in [
        (json!({ "r": me, "f": 101 }), "first"),
        (json!({ "r": me, "f": -1 }), "first"),
        (json!({ "r": me, "after": "bm90IG91cnM" }), "after"),
    ] {
        let refused = t.gql(&query, variables.clone(), Some("customer")).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{variables}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], json!(field));
    }
    let foreign = t.gql(&query, json!({ "r": me }), Some("other")).await;
    assert_eq!(error_code(&foreign), "FORBIDDEN");
    assert_eq!(
        error_code(&t.gql(&query, json!({ "r": me }), Some("admin")).await),
        "FORBIDDEN"
    );
}

/// `Query.orders`: every customer's orders for admins, filtered by status and user; FORBIDDEN for
/// customers.
async fn admins_page_every_order(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for token in ["customer", "other", "customer"] {
        t.add("123456", 2, token).await;
        t.checkout(token).await;
    }
    t.add("123457", 1, "other").await;
    // An emptied open order is left out here too.
    t.add("123458", 1, "customer").await;
    t.remove("123458", "customer").await;

    let query = format!(
        "query($f: Int, $after: String, $s: OrderStatus, $u: ID) {{ orders(first: $f, after: $after, status: $s, userId: $u) {{ {CONNECTION} }} }}"
    );
    let all = page_through(
        &t,
        &query,
        json!({ "f": 2, "after": null }),
        "admin",
        "/orders",
    )
    .await;
    assert_eq!(all.len(), 4);
    let customer = page_through(
        &t,
        &query,
        json!({ "f": 2, "after": null, "u": "2" }),
        "admin",
        "/orders",
    )
    .await;
    assert_eq!(customer.len(), 2);
    let open = t.gql(&query, json!({ "s": "OPEN" }), Some("admin")).await;
    let page = &data(&open)["orders"];
    assert_eq!(page["totalCount"], json!(1));
    assert_eq!(
        page["edges"][0]["node"]["items"],
        json!([{ "sku": "123457" }])
    );
    let nobody = t.gql(&query, json!({ "u": "nobody" }), Some("admin")).await;
    assert_eq!(data(&nobody)["orders"]["totalCount"], json!(0));

    let owners = t
        .gql(
            "{ orders(first: 10) { edges { node { owner { id } } } } }",
            json!({}),
            Some("admin"),
        )
        .await;
    let mut ids: Vec<&str> = data(&owners)["orders"]["edges"]
        .as_array()
        .expect("present")
        .iter()
        .map(|e| e["node"]["owner"]["id"].as_str().expect("present"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["2", "2", "3", "3"]);

    assert_eq!(
        error_code(&t.gql(&query, json!({}), Some("customer")).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&t.gql(&query, json!({}), None).await),
        "UNAUTHENTICATED"
    );
}

/// An orders database made by the previous schema (before statuses) upgrades in place: closed
/// orders become CHECKED_OUT, the open one stays open and can still be changed, nothing is lost.
async fn an_earlier_orders_database_upgrades_in_place(test_db: TestDb) {
    let beers_db = test_db.sibling().await;
    let beers = start_beers(&beers_db).await;
    let db = test_db.connect().await;
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    taproom_common::testing::migrate_until(&db, &folder, 2).await;
    for statement in [
        "INSERT INTO orders (user_id, time_created, time_modified, time_closed) VALUES (2, '2026-01-01T10:00:00.000000Z', '2026-01-01T11:00:00.000000Z', '2026-01-01T11:00:00.000000Z')",
        "INSERT INTO orders (user_id, time_created) VALUES (2, '2026-01-02T10:00:00.000000Z')",
        "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents, time_added, beer_id, name) VALUES (1, '123456', 3, 119, '2026-01-01T10:00:00.000000Z', 1, 'Бургаско')",
        "INSERT INTO order_items (order_id, sku, quantity, unit_price_cents, time_added) VALUES (2, '123457', 1, 200, '2026-01-02T10:00:00.000000Z')",
    ] {
        db.execute(sqlx::query(statement)).await.expect("an old row inserts");
    }
    let t = TestApp::with_beers(&test_db, beers, beers_db).await;
    let orders = t
        .gql("{ myOrders { id status isOpen total timeClosed timeCancelled items { sku quantity name } } }", json!({}), Some("customer"))
        .await;
    assert_eq!(
        data(&orders)["myOrders"],
        json!([
            { "id": "2", "status": "OPEN", "isOpen": true, "total": "2.00", "timeClosed": null, "timeCancelled": null,
              "items": [{ "sku": "123457", "quantity": 1, "name": "123457" }] },
            { "id": "1", "status": "CHECKED_OUT", "isOpen": false, "total": "3.57", "timeClosed": "2026-01-01T11:00:00Z", "timeCancelled": null,
              "items": [{ "sku": "123456", "quantity": 3, "name": "Бургаско" }] },
        ])
    );
    let added = t.add("123457", 1, "customer").await;
    assert_eq!(
        data(&added)["addToOrder"]["id"],
        json!("2"),
        "the old open order is still the open one"
    );
    let cancelled = t
        .gql(
            "mutation { cancelOrder(id: \"2\") { status } }",
            json!({}),
            Some("customer"),
        )
        .await;
    assert_eq!(
        data(&cancelled)["cancelOrder"]["status"],
        json!("CANCELLED")
    );
}

/// A mutation sent again with its idempotency key (the router's retry after a lost answer) is
/// answered with the order it changed and not applied twice; the key is the caller's own, and two
/// fields of one request, or two keys, are two mutations. A bad key is refused.
async fn mutations_with_an_idempotency_key_apply_once(test_db: TestDb) {
    use axum::{
        body::Body,
        http::{header, Request, StatusCode},
    };
    let t = TestApp::start(&test_db).await;
    let send = |query: &'static str, token: &'static str, key: &'static str| {
        let request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("idempotency-key", key)
            .body(Body::from(json!({ "query": query }).to_string()))
            .expect("a valid request");
        taproom_common::testing::send(&t.app, request)
    };
    let add = r#"mutation { addToOrder(sku: "123456", quantity: 1) { id items { quantity } } }"#;
    let first = send(add, "customer", "k-1").await.body;
    let again = send(add, "customer", "k-1").await.body;
    assert_eq!(data(&again)["addToOrder"], data(&first)["addToOrder"]);
    assert_eq!(data(&again)["addToOrder"]["items"][0]["quantity"], 1);
    let other_key = send(add, "customer", "k-2").await.body;
    assert_eq!(data(&other_key)["addToOrder"]["items"][0]["quantity"], 2);
    // Another caller's key of the same text is theirs.
    let theirs = send(add, "other", "k-1").await.body;
    assert_eq!(data(&theirs)["addToOrder"]["items"][0]["quantity"], 1);
    assert_ne!(
        data(&theirs)["addToOrder"]["id"],
        data(&first)["addToOrder"]["id"]
    );
    // Two fields of one request are two mutations.
    let twice = send(
        r#"mutation { a: addToOrder(sku: "123456", quantity: 1) { id } b: addToOrder(sku: "123456", quantity: 1) { items { quantity } } }"#,
        "customer",
        "k-3",
    )
    .await
    .body;
    assert_eq!(data(&twice)["b"]["items"][0]["quantity"], 4);
    // A checkout sent again answers with the order it closed, not "there is no open order".
    let checkout = "mutation { checkout { id status } }";
    let closed = send(checkout, "customer", "k-4").await.body;
    assert_eq!(data(&closed)["checkout"]["status"], "CHECKED_OUT");
    let replayed = send(checkout, "customer", "k-4").await.body;
    assert_eq!(data(&replayed)["checkout"], data(&closed)["checkout"]);
    let rows: Vec<(i64,)> =
        t.db.fetch_all(sqlx::query("SELECT quantity FROM order_items"))
            .await
            .expect("reads");
    assert_eq!(rows.iter().map(|(q,)| q).sum::<i64>(), 5, "{rows:?}");
    let bad = send(add, "customer", "no spaces allowed").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&bad.body), "BAD_REQUEST");

    // A repeat answers the first answer as it was, not the order as it is now: k-1's order was
    // open with one bottle, and is checked out with five now.
    let later = send(add, "customer", "k-1").await.body;
    assert_eq!(data(&later)["addToOrder"], data(&first)["addToOrder"]);
    let status =
        r#"mutation { addToOrder(sku: "123456", quantity: 1) { id isOpen items { quantity } } }"#;
    let opened = send(status, "customer", "k-5").await.body;
    assert_eq!(data(&opened)["addToOrder"]["isOpen"], true);
    send(checkout, "customer", "k-6").await;
    let as_it_was = send(status, "customer", "k-5").await.body;
    assert_eq!(data(&as_it_was)["addToOrder"], data(&opened)["addToOrder"]);

    // The same key with another request is refused and changes nothing: the bug was a 200 with
    // the old order and the new line silently dropped.
    let other = r#"mutation { addToOrder(sku: "200001", quantity: 1) { id } }"#;
    let reused = send(other, "customer", "k-5").await.body;
    assert_eq!(error_code(&reused), "BAD_USER_INPUT", "{reused}");
    assert_eq!(
        reused["errors"][0]["extensions"]["field"], "Idempotency-Key",
        "{reused}"
    );
    let more = r#"mutation { addToOrder(sku: "123456", quantity: 2) { id } }"#;
    assert_eq!(
        error_code(&send(more, "customer", "k-5").await.body),
        "BAD_USER_INPUT"
    );
    let rows: Vec<(i64,)> =
        t.db.fetch_all(sqlx::query("SELECT quantity FROM order_items"))
            .await
            .expect("reads");
    assert_eq!(rows.iter().map(|(q,)| q).sum::<i64>(), 6, "{rows:?}");
}

test_on_both_databases!(
    mutations_with_an_idempotency_key_apply_once,
    setting_a_line_quantity,
    unavailable_beers_cannot_be_ordered,
    the_order_lifecycle,
    order_history_pages,
    admins_page_every_order,
    an_earlier_orders_database_upgrades_in_place,
    orders_scenario,
    repeated_subtrees_answer_as_if_resolved_everywhere,
    totals_are_exact,
    closed_orders_refuse_changes,
    concurrent_adds_make_one_open_order,
    line_quantity_cap,
    beers_unreachable_changes_nothing,
    lines_keep_the_price_of_their_last_change,
    history_keeps_what_was_bought,
    batches_cost_one_statement_each,
    user_orders_are_private,
);

/// The orders subgraph's call to beers carries the served request's trace id (a span of its own)
/// and its request id, so one client request is one trace id in every service's log lines.
#[tokio::test]
async fn calls_to_beers_carry_the_requests_trace_and_id() {
    use axum::{
        body::Body,
        http::{header, HeaderMap, Request},
        routing::post,
    };
    let seen: Arc<std::sync::Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let fake_beers = Router::new().route(
        "/graphql",
        post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                record.lock().expect("lock").push(headers);
                axum::Json(json!({ "data": { "beer": { "id": "1", "name": "Бургаско", "price": "1.19", "available": true } } }))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/graphql", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, fake_beers).await });
    let test_db = TestDb::sqlite().await;
    let t = TestApp::with_beers(&test_db, url, TestDb::sqlite().await).await;
    let body = json!({ "query": r#"mutation { addToOrder(sku: "123456", quantity: 1) { id } }"# });
    let answer = taproom_common::testing::send(
        &t.app,
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, "Bearer customer")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .header("x-request-id", "cart-7")
            .body(Body::from(body.to_string()))
            .expect("a request"),
    )
    .await;
    assert!(
        answer.body["data"]["addToOrder"]["id"].is_string(),
        "{:?}",
        answer.body
    );
    let seen = seen.lock().expect("lock");
    let headers = seen.first().expect("beers was asked");
    let traceparent = headers["traceparent"].to_str().expect("ascii");
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
            && !traceparent.contains("00f067aa0ba902b7"),
        "{traceparent}"
    );
    assert_eq!(headers["x-request-id"], "cart-7");
}
