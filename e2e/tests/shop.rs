//! The shop's additions through the router, on SQLite and on PostgreSQL: cart edits, the order
//! lifecycle, order history pages, the admin views and the catalog's details, each resolved across
//! the subgraphs that own their fields.

use serde_json::{json, Value};
use taproom_common::{
    test_on_both_databases,
    testing::{data, error_code as code, TestDb},
};
use taproom_e2e::Federation;

const ORDER: &str = "id status isOpen timeClosed timeCancelled total itemCount owner { username } items { sku quantity unitPrice beer { name abv available } }";

/// A customer edits the cart line by line, cancels one order and checks out another; the history
/// pages show both, newest first, with owner and beers from their subgraphs.
async fn cart_edits_and_the_order_lifecycle(test_db: TestDb) {
    let f = &Federation::start_on(test_db).await;
    let (token, _) = f.register("hanna").await;
    let token = Some(token.as_str());
    let set = move |sku: &'static str, quantity: i64| async move {
        f.gql(
            &format!("mutation($sku: String!, $q: Int!) {{ setOrderItemQuantity(sku: $sku, quantity: $q) {{ {ORDER} }} }}"),
            json!({ "sku": sku, "q": quantity }),
            token,
        )
        .await
    };
    let first = set("123456", 3).await;
    let order = &data(&first)["setOrderItemQuantity"];
    assert_eq!(order["owner"], json!({ "username": "hanna" }));
    assert_eq!(
        order["items"],
        json!([{ "sku": "123456", "quantity": 3, "unitPrice": "1.19",
                  "beer": { "name": "Бургаско", "abv": "4.40", "available": true } }])
    );
    let first_id = order["id"].clone();
    set("123457", 2).await;
    let lowered = set("123456", 1).await;
    assert_eq!(
        data(&lowered)["setOrderItemQuantity"]["total"],
        json!("5.19")
    );
    assert_eq!(
        data(&lowered)["setOrderItemQuantity"]["itemCount"],
        json!(3)
    );

    // The demo's out-of-stock beer is refused, and nothing changes.
    let refused = set("200035", 1).await;
    assert_eq!(code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], json!("sku"));
    let refused = f
        .gql(
            r#"mutation { addToOrder(sku: "200035", quantity: 1) { id } }"#,
            json!({}),
            token,
        )
        .await;
    assert_eq!(code(&refused), "BAD_USER_INPUT");

    let cancelled = f
        .gql(
            &format!("mutation($id: ID!) {{ cancelOrder(id: $id) {{ {ORDER} }} }}"),
            json!({ "id": first_id }),
            token,
        )
        .await;
    let order = &data(&cancelled)["cancelOrder"];
    assert_eq!(order["status"], json!("CANCELLED"));
    assert!(order["timeCancelled"].is_string() && order["timeClosed"].is_null());
    let again = f
        .gql(
            "mutation($id: ID!) { cancelOrder(id: $id) { id } }",
            json!({ "id": first_id }),
            token,
        )
        .await;
    assert_eq!(code(&again), "BAD_USER_INPUT");

    set("123458", 2).await;
    let emptied = set("123458", 0).await;
    assert_eq!(data(&emptied)["setOrderItemQuantity"]["items"], json!([]));
    let current = f
        .gql("{ currentOrder { id } myOrders { id } }", json!({}), token)
        .await;
    assert_eq!(
        data(&current)["currentOrder"],
        Value::Null,
        "an emptied cart is no order"
    );
    assert_eq!(data(&current)["myOrders"].as_array().map(Vec::len), Some(1));
    set("123458", 2).await;
    let closed = f
        .gql(
            &format!("mutation {{ checkout {{ {ORDER} }} }}"),
            json!({}),
            token,
        )
        .await;
    let second_id = data(&closed)["checkout"]["id"].clone();
    assert_eq!(data(&closed)["checkout"]["status"], json!("CHECKED_OUT"));

    let history = f
        .gql(
            "query($s: OrderStatus) { me { username ordersConnection(first: 1) { totalCount pageInfo { hasNextPage endCursor } edges { node { id status owner { username } items { beer { name } } } } }
                                          cancelled: ordersConnection(status: $s) { totalCount edges { node { id } } } } }",
            json!({ "s": "CANCELLED" }),
            token,
        )
        .await;
    let me = &data(&history)["me"];
    let page = &me["ordersConnection"];
    assert_eq!(page["totalCount"], json!(2));
    assert_eq!(page["pageInfo"]["hasNextPage"], json!(true));
    assert_eq!(
        page["edges"][0]["node"],
        json!({ "id": second_id, "status": "CHECKED_OUT", "owner": { "username": "hanna" },
                "items": [{ "beer": { "name": "Tuborg" } }] })
    );
    assert_eq!(
        me["cancelled"],
        json!({ "totalCount": 1, "edges": [{ "node": { "id": first_id } }] })
    );
    let next = f
        .gql(
            "query($after: String) { me { ordersConnection(first: 1, after: $after) { pageInfo { hasNextPage hasPreviousPage } edges { node { id } } } } }",
            json!({ "after": page["pageInfo"]["endCursor"] }),
            token,
        )
        .await;
    assert_eq!(
        data(&next)["me"]["ordersConnection"],
        json!({ "pageInfo": { "hasNextPage": false, "hasPreviousPage": true }, "edges": [{ "node": { "id": first_id } }] })
    );
}

/// Admins page every order with owners and beers (one request per subgraph for the whole page) and
/// every account; customers get FORBIDDEN for both.
async fn admin_views_across_subgraphs(test_db: TestDb) {
    let f = Federation::start_on(test_db).await;
    let (admin, _) = f.register("boss").await;
    f.promote("boss").await;
    let mut customers = Vec::new();
    for name in ["ivan", "maria", "petar"] {
        let (token, _) = f.register(name).await;
        for sku in ["123456", "123457"] {
            let added = f
                .gql(
                    "mutation($sku: String!) { addToOrder(sku: $sku, quantity: 1) { id } }",
                    json!({ "sku": sku }),
                    Some(&token),
                )
                .await;
            data(&added);
        }
        customers.push(token);
    }
    data(
        &f.gql(
            "mutation { checkout { id } }",
            json!({}),
            Some(&customers[0]),
        )
        .await,
    );

    let before = [
        f.requests_to("users"),
        f.requests_to("beers"),
        f.requests_to("orders"),
    ];
    let page = f
        .gql(
            "{ orders(first: 10) { totalCount edges { node { status owner { username firstName } items { beer { name } } } } } }",
            json!({}),
            Some(&admin),
        )
        .await;
    let after = [
        f.requests_to("users"),
        f.requests_to("beers"),
        f.requests_to("orders"),
    ];
    let orders = &data(&page)["orders"];
    assert_eq!(orders["totalCount"], json!(3));
    let mut owners: Vec<&str> = orders["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["owner"]["username"].as_str().expect("owner"))
        .collect();
    owners.sort_unstable();
    assert_eq!(owners, ["ivan", "maria", "petar"]);
    assert!(orders["edges"]
        .as_array()
        .expect("present")
        .iter()
        .all(|e| e["node"]["items"]
            == json!([{ "beer": { "name": "Бургаско" } }, { "beer": { "name": "Загорка" } }])));
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [1, 1, 1],
        "one request per subgraph for the whole page"
    );
    let checked_out = f
        .gql(
            "{ orders(status: CHECKED_OUT) { edges { node { owner { username } } } } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        data(&checked_out)["orders"]["edges"],
        json!([{ "node": { "owner": { "username": "ivan" } } }])
    );

    let accounts = f
        .gql(
            "{ users(search: \"a\") { totalCount edges { node { username } } } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        data(&accounts)["users"],
        json!({ "totalCount": 3, "edges": [{ "node": { "username": "ivan" } }, { "node": { "username": "maria" } }, { "node": { "username": "petar" } }] })
    );
    for query in ["{ orders { totalCount } }", "{ users { totalCount } }"] {
        assert_eq!(
            code(&f.gql(query, json!({}), Some(&customers[1])).await),
            "FORBIDDEN",
            "{query}"
        );
    }
}

/// The catalog's details through the router: description and abv on the demo beers, the
/// availability filter, and an admin making a beer unavailable, which stops new lines of it.
async fn catalog_details_and_availability(test_db: TestDb) {
    let f = Federation::start_on(test_db).await;
    let (admin, _) = f.register("keeper").await;
    f.promote("keeper").await;
    let (customer, _) = f.register("guest").await;
    let beer = f
        .gql(
            "{ beer(sku: \"200008\") { name description abv available } }",
            json!({}),
            None,
        )
        .await;
    let duvel = &data(&beer)["beer"];
    assert_eq!(duvel["abv"], json!("8.50"));
    assert!(duvel["description"]
        .as_str()
        .is_some_and(|d| d.contains("Belgian")));
    let out = f
        .gql(
            "{ beers(available: false) { totalCount edges { node { sku } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        data(&out)["beers"],
        json!({ "totalCount": 1, "edges": [{ "node": { "sku": "200035" } }] })
    );
    let made = f
        .gql("mutation { updateBeer(sku: \"123458\", input: { available: false, abv: \"4.6\" }) { available abv } }", json!({}), Some(&admin))
        .await;
    assert_eq!(
        data(&made)["updateBeer"],
        json!({ "available": false, "abv": "4.60" })
    );
    let refused = f
        .gql(
            "mutation { setOrderItemQuantity(sku: \"123458\", quantity: 2) { id } }",
            json!({}),
            Some(&customer),
        )
        .await;
    assert_eq!(code(&refused), "BAD_USER_INPUT");
    let bad = f
        .gql(
            "mutation { updateBeer(sku: \"123458\", input: { abv: \"101\" }) { abv } }",
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], json!("abv"));
}

/// Texts no sku, username or cursor can be (a NUL, which PostgreSQL refuses in text, or an overlong
/// sku) get the answer for "no such thing", never an internal error, on both databases.
async fn impossible_names_are_no_such_thing(test_db: TestDb) {
    let f = Federation::start_on(test_db).await;
    let (token, _) = f.register("nully").await;
    let token = Some(token.as_str());
    data(
        &f.gql(
            r#"mutation { addToOrder(sku: "123456", quantity: 1) { id } }"#,
            json!({}),
            token,
        )
        .await,
    );
    let long = "9".repeat(65);
    for sku in ["a\u{0}b", long.as_str()] {
        let beer = f
            .gql(
                "query($s: String!) { beer(sku: $s) { id } }",
                json!({ "s": sku }),
                None,
            )
            .await;
        assert_eq!(data(&beer)["beer"], Value::Null, "{sku:?}");
        for (mutation, expected) in [
            (
                "mutation($s: String!) { addToOrder(sku: $s, quantity: 1) { id } }",
                "NOT_FOUND",
            ),
            (
                "mutation($s: String!) { setOrderItemQuantity(sku: $s, quantity: 2) { id } }",
                "NOT_FOUND",
            ),
            (
                "mutation($s: String!) { removeFromOrder(sku: $s) { id } }",
                "NOT_FOUND",
            ),
        ] {
            let refused = f.gql(mutation, json!({ "s": sku }), token).await;
            assert_eq!(code(&refused), expected, "{mutation} {sku:?}: {refused}");
        }
        let nothing = f
            .gql("mutation($s: String!) { setOrderItemQuantity(sku: $s, quantity: 0) { itemCount } }", json!({ "s": sku }), token)
            .await;
        assert_eq!(
            data(&nothing)["setOrderItemQuantity"]["itemCount"],
            json!(1),
            "nothing removed"
        );
    }
    let exists = f
        .gql(
            "query($u: String!) { usernameExists(username: $u) }",
            json!({ "u": "a\u{0}b" }),
            None,
        )
        .await;
    assert_eq!(data(&exists)["usernameExists"], json!(false));
    let login = f
        .gql(
            "mutation($u: String!) { login(username: $u, password: \"Secret123\") { token } }",
            json!({ "u": "a\u{0}b" }),
            None,
        )
        .await;
    assert_eq!(code(&login), "UNAUTHENTICATED", "{login}");
    let admin_search = f
        .gql(
            "query($s: String) { users(search: $s) { totalCount } }",
            json!({ "s": "a\u{0}" }),
            token,
        )
        .await;
    assert_eq!(
        code(&admin_search),
        "FORBIDDEN",
        "refused before the search is read"
    );
    // A cursor that decodes to a NUL is not one of ours.
    for (query, cursor) in [
        // ["a\u0000",1], the shape of an order's position
        (
            "query($c: String) { me { ordersConnection(after: $c) { totalCount } } }",
            "WyJhXHUwMDAwIiwxXQ",
        ),
        // ["a\u0000","b"], the shape of a beer's
        (
            "query($c: String) { beers(after: $c) { totalCount } }",
            "WyJhXHUwMDAwIiwiYiJd",
        ),
    ] {
        let refused = f.gql(query, json!({ "c": cursor }), token).await;
        assert_eq!(code(&refused), "BAD_USER_INPUT", "{query}: {refused}");
    }
}

test_on_both_databases!(
    impossible_names_are_no_such_thing,
    cart_edits_and_the_order_lifecycle,
    admin_views_across_subgraphs,
    catalog_details_and_availability,
);
