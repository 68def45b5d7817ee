//! The federation end to end: real subgraphs on real ports with real databases, through the router.

use serde_json::{json, Value};
use taproom_e2e::Federation;

fn data(response: &Value) -> &Value {
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {response:#}"
    );
    &response["data"]
}

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error code: {response:#}"))
}

async fn add(f: &Federation, token: &str, sku: &str, quantity: i64) {
    let response = f
        .gql(
            "mutation($sku: String!, $q: Int!) { addToOrder(sku: $sku, quantity: $q) { id } }",
            json!({ "sku": sku, "q": quantity }),
            Some(token),
        )
        .await;
    data(&response);
}

#[tokio::test]
async fn resolves_owner_and_beers_across_subgraphs() {
    let f = Federation::start().await;
    let (token, id) = f.register("alice").await;
    add(&f, &token, "123456", 3).await;
    add(&f, &token, "123457", 1).await;

    let response = f
        .gql(
            "{ myOrders { owner { username } items { quantity beer { name price } } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&response),
        &json!({ "myOrders": [{
            "owner": { "username": "alice" },
            "items": [
                { "quantity": 3, "beer": { "name": "Бургаско", "price": "1.19" } },
                { "quantity": 1, "beer": { "name": "Загорка", "price": "2.00" } },
            ],
        }] })
    );

    let response = f
        .gql(
            "{ me { username orders { total items { beer { sku name } } } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&response),
        &json!({ "me": {
            "username": "alice",
            "orders": [{
                "total": "5.57",
                "items": [
                    { "beer": { "sku": "123456", "name": "Бургаско" } },
                    { "beer": { "sku": "123457", "name": "Загорка" } },
                ],
            }],
        } })
    );
    let _ = id;
}

/// Orders for `token`: `count` checked-out orders of two lines each.
async fn orders(f: &Federation, token: &str, count: usize) {
    for _ in 0..count {
        add(f, token, "123456", 1).await;
        add(f, token, "123458", 2).await;
        let response = f
            .gql("mutation { checkout { id } }", json!({}), Some(token))
            .await;
        data(&response);
    }
}

fn counts(f: &Federation) -> [u64; 3] {
    [
        f.requests_to("orders"),
        f.requests_to("users"),
        f.requests_to("beers"),
    ]
}

#[tokio::test]
async fn one_request_per_subgraph_whatever_the_number_of_orders() {
    let f = Federation::start().await;
    let query = "{ myOrders { id owner { username } items { quantity beer { name price } } } }";
    for (user, n) in [("one", 1), ("five", 5)] {
        let (token, _) = f.register(user).await;
        orders(&f, &token, n).await;
        let before = counts(&f);
        let response = f.gql(query, json!({}), Some(&token)).await;
        let after = counts(&f);
        assert_eq!(
            data(&response)["myOrders"].as_array().expect("list").len(),
            n
        );
        assert_eq!(
            [
                after[0] - before[0],
                after[1] - before[1],
                after[2] - before[2]
            ],
            [1, 1, 1],
            "orders, users, beers: one request each for {n} orders"
        );
    }
}

#[tokio::test]
async fn a_repeated_operation_is_planned_once() {
    let f = Federation::start().await;
    let query = "query Catalog($n: Int) { beers(first: $n) { edges { node { sku } } } }";
    let before = f.state.prepared_count();
    for n in [1, 2, 3] {
        let response = f.gql(query, json!({ "n": n }), None).await;
        assert_eq!(
            data(&response)["beers"]["edges"]
                .as_array()
                .expect("edges")
                .len(),
            n
        );
    }
    assert_eq!(f.state.prepared_count() - before, 1);
}

#[tokio::test]
async fn a_stopped_subgraph_gives_partial_data_then_full_answers_again() {
    let mut f = Federation::start().await;
    let (token, _) = f.register("bob").await;
    add(&f, &token, "123457", 2).await;
    let query = "{ currentOrder { itemCount items { quantity beer { name } } } }";

    f.stop_beers().await;
    let partial = f.gql(query, json!({}), Some(&token)).await;
    assert_eq!(
        partial["data"],
        json!({ "currentOrder": { "itemCount": 2, "items": [{ "quantity": 2, "beer": null }] } })
    );
    assert_eq!(code(&partial), "SUBGRAPH_REQUEST_FAILED");
    assert_eq!(
        partial["errors"][0]["extensions"]["service"],
        json!("beers")
    );
    assert!(partial["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("\"beers\""));

    f.restart_beers().await;
    let full = f.gql(query, json!({}), Some(&token)).await;
    assert_eq!(
        data(&full),
        &json!({ "currentOrder": { "itemCount": 2, "items": [{ "quantity": 2, "beer": { "name": "Загорка" } }] } })
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_router_keeps_serving() {
    let f = Federation::start().await;
    let (status, malformed) = f
        .post_bytes(b"{\"query\": \"{ me { id }".to_vec(), None)
        .await;
    assert_eq!((status, code(&malformed)), (400, "BAD_REQUEST"));

    let (status, unparsable) = f.post(json!({ "query": "{ me { id " }), None).await;
    assert_eq!((status, code(&unparsable)), (400, "GRAPHQL_PARSE_FAILED"));

    let (status, unknown) = f
        .post(json!({ "query": "{ me { id shoeSize } }" }), None)
        .await;
    assert_eq!((status, code(&unknown)), (400, "GRAPHQL_VALIDATION_FAILED"));
    assert!(unknown["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("shoeSize"));

    let (status, wrong_type) = f
        .post(json!({ "query": "query($n: Int) { beers(first: $n) { totalCount } }", "variables": { "n": "ten" } }), None)
        .await;
    assert_eq!((status, code(&wrong_type)), (400, "BAD_USER_INPUT"));
    assert!(wrong_type["errors"][0]["message"]
        .as_str()
        .expect("message")
        .contains("$n"));

    let (status, missing) = f
        .post(
            json!({ "query": "query($sku: String!) { beer(sku: $sku) { name } }" }),
            None,
        )
        .await;
    assert_eq!((status, code(&missing)), (400, "BAD_USER_INPUT"));

    let deep = format!(
        "{{ me {} id {} }}",
        "{ orders { owner ".repeat(50),
        "} } ".repeat(50)
    );
    let (status, too_deep) = f.post(json!({ "query": deep }), None).await;
    assert_eq!((status, code(&too_deep)), (400, "MAX_DEPTH_LIMIT"));

    let aliases: String = (0..10_000)
        .map(|i| format!("a{i}: usernameExists(username: \"x\") "))
        .collect();
    let (status, too_many) = f
        .post(json!({ "query": format!("{{ {aliases} }}") }), None)
        .await;
    assert_eq!((status, code(&too_many)), (400, "MAX_ALIASES_LIMIT"));

    let huge = json!({ "query": "{ me { id } }", "extensions": { "padding": "x".repeat(2 * 1024 * 1024) } });
    let (status, _) = f.post(huge, None).await;
    assert_eq!(status, 413);

    let response = f
        .gql("{ beer(sku: \"123458\") { name } }", json!({}), None)
        .await;
    assert_eq!(data(&response), &json!({ "beer": { "name": "Tuborg" } }));
}

#[tokio::test]
async fn aliases_fragments_and_directives_shape_the_response() {
    let f = Federation::start().await;
    let (token, _) = f.register("carol").await;
    add(&f, &token, "123458", 2).await;
    let query = r#"
        query Shaped($withItems: Boolean!, $skipOwner: Boolean = false) {
          mine: myOrders {
            orderId: id
            ...OrderBits
            owner @skip(if: $skipOwner) { name: username __typename }
            items @include(if: $withItems) { qty: quantity beer { ... on Beer { title: name } } }
            hidden: itemCount @include(if: false)
          }
        }
        fragment OrderBits on Order { isOpen total }
    "#;
    let response = f
        .gql(query, json!({ "withItems": true }), Some(&token))
        .await;
    let order = &data(&response)["mine"][0];
    let keys: Vec<&str> = order
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["orderId", "isOpen", "total", "owner", "items"],
        "the client's order"
    );
    assert_eq!(
        order["owner"],
        json!({ "name": "carol", "__typename": "User" })
    );
    assert_eq!(
        order["items"],
        json!([{ "qty": 2, "beer": { "title": "Tuborg" } }])
    );
    assert_eq!(order["total"], json!("3.00"));

    let response = f
        .gql(
            query,
            json!({ "withItems": false, "skipOwner": true }),
            Some(&token),
        )
        .await;
    let keys: Vec<String> = data(&response)["mine"][0]
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["orderId", "isOpen", "total"]);
}

#[tokio::test]
async fn mutation_root_fields_run_in_order() {
    let f = Federation::start().await;
    let (token, _) = f.register("dave").await;
    let response = f
        .gql(
            r#"mutation {
                first: addToOrder(sku: "123456", quantity: 1) { itemCount }
                second: addToOrder(sku: "123456", quantity: 2) { itemCount }
                done: checkout { isOpen itemCount total }
            }"#,
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&response),
        &json!({
            "first": { "itemCount": 1 },
            "second": { "itemCount": 3 },
            "done": { "isOpen": false, "itemCount": 3, "total": "3.57" },
        })
    );
}

#[tokio::test]
async fn introspection_answers_from_the_api_schema() {
    let f = Federation::start().await;
    let response = f
        .gql(
            r#"{ __schema { queryType { name } mutationType { name } types { name } }
                 __type(name: "Order") { kind fields { name type { kind ofType { name } } } } }"#,
            json!({}),
            None,
        )
        .await;
    let schema = &data(&response)["__schema"];
    assert_eq!(schema["queryType"]["name"], json!("Query"));
    assert_eq!(schema["mutationType"]["name"], json!("Mutation"));
    let names: Vec<&str> = schema["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    for expected in [
        "Order",
        "OrderItem",
        "Beer",
        "User",
        "BeerConnection",
        "Decimal",
        "DateTime",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let leaked: Vec<&&str> = names
        .iter()
        .filter(|n| {
            n.starts_with("join__")
                || n.starts_with("link__")
                || (n.starts_with('_') && !n.starts_with("__"))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "federation internals leak into introspection: {leaked:?}"
    );
    let order = &data(&response)["__type"];
    assert_eq!(order["kind"], json!("OBJECT"));
    let owner = order["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == json!("owner"))
        .expect("owner");
    assert_eq!(
        owner["type"],
        json!({ "kind": "NON_NULL", "ofType": { "name": "User" } })
    );

    let mixed = f
        .gql(
            r#"{ __typename beer(sku: "123456") { __typename name } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        data(&mixed),
        &json!({ "__typename": "Query", "beer": { "__typename": "Beer", "name": "Бургаско" } })
    );
}

#[tokio::test]
async fn get_serves_queries_but_not_mutations() {
    let f = Federation::start().await;
    let url = f.router.graphql_url();
    let response = f
        .http
        .get(&url)
        .query(&[
            ("query", "query($s: String!) { beer(sku: $s) { name } }"),
            ("variables", r#"{"s":"123457"}"#),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(data(&body), &json!({ "beer": { "name": "Загорка" } }));
    let mutation = f
        .http
        .get(&url)
        .query(&[("query", "mutation { logout }")])
        .send()
        .await
        .expect("answers");
    assert_eq!(mutation.status(), 405);
}

#[tokio::test]
async fn subgraph_errors_keep_the_clients_paths_and_nulls_propagate() {
    let f = Federation::start().await;
    let (token, _) = f.register("erin").await;
    let (_, other) = f.register("frank").await;

    let missing = f
        .gql(r#"{ order(id: "999") { id } }"#, json!({}), Some(&token))
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
    assert_eq!(missing["errors"][0]["path"], json!(["order"]));
    assert_eq!(missing["data"], json!({ "order": null }));

    // User.orders is [Order!]!: FORBIDDEN nulls it, which nulls the nullable `user`.
    let foreign = f
        .gql(
            "query($id: ID!) { user(id: $id) { username orders { id } } }",
            json!({ "id": other }),
            Some(&token),
        )
        .await;
    assert_eq!(code(&foreign), "FORBIDDEN");
    assert_eq!(foreign["errors"][0]["path"], json!(["user", "orders"]));
    assert_eq!(foreign["data"], json!({ "user": null }));

    let anonymous = f.gql("{ myOrders { id } }", json!({}), None).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(
        anonymous["data"],
        Value::Null,
        "myOrders is non-null, so data is null"
    );
}

#[tokio::test]
async fn the_login_scenario_works_through_the_router() {
    let f = Federation::start().await;
    f.register("gina").await;
    let login = f
        .gql(
            "mutation { login(username: \"gina\", password: \"Secret123\") { token user { username email } } }",
            json!({}),
            None,
        )
        .await;
    let token = data(&login)["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        data(&login)["login"]["user"]["email"],
        json!("gina@example.com"),
        "signing in proves who the viewer is"
    );
    let stale = f
        .gql(
            "mutation { login(username: \"gina\", password: \"Secret123\") { token user { email isAdmin } } }",
            json!({}),
            Some("tpr_an-old-revoked-token"),
        )
        .await;
    assert!(
        data(&stale)["login"]["token"].is_string(),
        "a stale token in the request does not hide the new one"
    );
    let me = f
        .gql("{ me { username email isAdmin } }", json!({}), Some(&token))
        .await;
    assert_eq!(
        data(&me),
        &json!({ "me": { "username": "gina", "email": "gina@example.com", "isAdmin": false } })
    );
    let logout = f.gql("mutation { logout }", json!({}), Some(&token)).await;
    assert_eq!(data(&logout), &json!({ "logout": true }));
    assert_eq!(
        code(&f.gql("{ me { id } }", json!({}), Some(&token)).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn admins_change_the_catalog_through_the_router() {
    let f = Federation::start().await;
    let (customer, _) = f.register("hank").await;
    let (admin, _) = f.register("boss").await;
    f.promote("boss").await;
    let create = r#"mutation { createBeer(input: { sku: "900", name: "Ариана", price: "1.35" }) { sku price } }"#;
    assert_eq!(
        code(&f.gql(create, json!({}), Some(&customer)).await),
        "FORBIDDEN"
    );
    let created = f.gql(create, json!({}), Some(&admin)).await;
    assert_eq!(
        data(&created),
        &json!({ "createBeer": { "sku": "900", "price": "1.35" } })
    );
}

#[tokio::test]
async fn edge_cases_of_the_root_selection() {
    let f = Federation::start().await;
    let skipped = f
        .post(
            json!({ "query": r#"{ beer(sku: "123456") @skip(if: true) { name } }"# }),
            None,
        )
        .await;
    assert_eq!(skipped, (200, json!({ "data": {} })));
    let only_typename = f
        .gql(
            r#"{ __typename a: beer(sku: "1") @include(if: false) { name } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(only_typename, json!({ "data": { "__typename": "Query" } }));
    let mutation = f.gql("mutation { __typename }", json!({}), None).await;
    assert_eq!(mutation, json!({ "data": { "__typename": "Mutation" } }));
    let (status, in_fragment) = f
        .post(json!({ "query": "{ ... on Query { __typename } }" }), None)
        .await;
    assert_eq!(
        (status, code(&in_fragment)),
        (400, "GRAPHQL_VALIDATION_FAILED")
    );
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_without_expanding_it() {
    let f = Federation::start().await;
    let mut query = String::from("{ ...F0 }\n");
    for i in 0..40 {
        query.push_str(&format!(
            "fragment F{i} on Query {{ ...F{next} ...F{next} }}\n",
            next = i + 1
        ));
    }
    query.push_str("fragment F40 on Query { usernameExists(username: \"x\") }\n");
    // Expanding 2^40 fields would never end: an answer at all shows they were counted, not
    // expanded (the count is memoized per fragment).
    let (status, refused) = f.post(json!({ "query": query }), None).await;
    assert_eq!((status, code(&refused)), (400, "MAX_FIELDS_LIMIT"));
}

#[tokio::test]
async fn a_beer_that_left_the_catalog_is_null_without_an_error() {
    let f = Federation::start().await;
    let (admin, _) = f.register("owner").await;
    f.promote("owner").await;
    let create = f
        .gql(r#"mutation { createBeer(input: { sku: "gone", name: "Seasonal", price: "3.00" }) { sku } }"#, json!({}), Some(&admin))
        .await;
    data(&create);
    let (token, _) = f.register("ivy").await;
    add(&f, &token, "gone", 1).await;
    add(&f, &token, "123456", 1).await;
    data(
        &f.gql(
            r#"mutation { deleteBeer(sku: "gone") }"#,
            json!({}),
            Some(&admin),
        )
        .await,
    );
    let order = f
        .gql(
            "{ currentOrder { items { sku beer { name } } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&order),
        &json!({ "currentOrder": { "items": [
            { "sku": "gone", "beer": null },
            { "sku": "123456", "beer": { "name": "Бургаско" } },
        ] } })
    );
}

#[tokio::test]
async fn a_field_selected_twice_merges_both_selections() {
    let f = Federation::start().await;
    let (token, _) = f.register("jack").await;
    add(&f, &token, "123458", 2).await;
    let response = f
        .gql(
            "query($a: Boolean!, $b: Boolean!) { currentOrder { items @include(if: $a) { sku } items @include(if: $b) { quantity beer { name } } } }",
            json!({ "a": true, "b": true }),
            Some(&token),
        )
        .await;
    assert_eq!(
        data(&response),
        &json!({ "currentOrder": { "items": [{ "sku": "123458", "quantity": 2, "beer": { "name": "Tuborg" } }] } })
    );
}

/// The report: after `logout` or `changePassword`, the old token still placed `addToOrder` for up to
/// 5 s (the orders subgraph had it cached from a read). Writes now ask the issuer every time.
#[tokio::test]
async fn a_revoked_token_writes_nothing_anywhere_at_once() {
    let f = Federation::start().await;
    let add_query = r#"mutation { addToOrder(sku: "123456", quantity: 1) { itemCount } }"#;
    for revoke in [
        "mutation { logout }",
        r#"mutation { changePassword(currentPassword: "Secret123", newPassword: "Secret1234") { token } }"#,
    ] {
        let username = if revoke.contains("logout") {
            "rita"
        } else {
            "sam"
        };
        let (token, _) = f.register(username).await;
        // A read and a write with the token, so the orders subgraph has it cached.
        data(
            &f.gql("{ currentOrder { id } }", json!({}), Some(&token))
                .await,
        );
        data(&f.gql(add_query, json!({}), Some(&token)).await);
        data(&f.gql(revoke, json!({}), Some(&token)).await);
        let refused = f.gql(add_query, json!({}), Some(&token)).await;
        assert_eq!(
            code(&refused),
            "UNAUTHENTICATED",
            "after {revoke}: {refused}"
        );
    }
}

/// The report, through the router: 199 aliased wrong `login`s plus the right password in one
/// request (200 aliases, the router's limit).
/// The users subgraph refuses the operation before any password is checked, so no alias is told
/// apart from another and no token is issued.
#[tokio::test]
async fn guessing_many_passwords_in_one_request_is_refused() {
    let f = Federation::start().await;
    f.register("customer").await;
    let mut document: String = (0..199)
        .map(|i| {
            format!(r#"g{i}: login(username: "customer", password: "Guess{i:04}A") {{ token }} "#)
        })
        .collect();
    document.push_str(r#"right: login(username: "customer", password: "Secret123") { token }"#);
    let response = f
        .gql(&format!("mutation {{ {document} }}"), json!({}), None)
        .await;
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    assert!(
        !response.to_string().contains("tpr_"),
        "no token issued: {response}"
    );
    let paths: Vec<&Value> = response["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e.get("path"))
        .collect();
    assert!(
        paths.len() <= 1,
        "errors do not name the aliases one by one: {paths:?}"
    );
}

/// Sign-ins the plan sends in separate users requests (another subgraph's mutation field between
/// them) still count as one request's: the second is refused before its password is checked.
#[tokio::test]
async fn sign_ins_split_across_subgraph_requests_check_credentials_once() {
    let f = Federation::start().await;
    f.register("customer").await;
    let response = f
        .gql(
            r#"mutation {
                a: login(username: "customer", password: "Guess0000A") { token }
                x: addToOrder(sku: "123456", quantity: 1) { id }
                b: login(username: "customer", password: "Secret123") { token }
            }"#,
            json!({}),
            None,
        )
        .await;
    assert!(
        !response.to_string().contains("tpr_"),
        "no token issued: {response}"
    );
    let refused = response["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .any(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("one request may check credentials"))
        });
    assert!(refused, "the second sign-in is refused: {response:#}");
}

/// Failed sign-ins from one client address are throttled across usernames; the address is the one
/// the router saw, whatever the client claims in the address header.
#[tokio::test]
async fn failed_sign_ins_from_one_address_are_throttled() {
    let f = Federation::start().await;
    let login = |i: usize| {
        let http = f.http.clone();
        let url = f.router.graphql_url();
        async move {
            let body: Value = http
                .post(url)
                .header("x-taproom-client-address", format!("203.0.113.{}", i % 250))
                .json(&json!({ "query": format!(r#"mutation {{ login(username: "nobody{i}", password: "Wrong0000A") {{ token }} }}"#) }))
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("json");
            body
        }
    };
    let mut codes = Vec::new();
    for i in 0..22 {
        codes.push(code(&login(i).await).to_owned());
    }
    // Exactly the documented 20 are checked; the 21st is refused.
    assert!(
        codes[..20].iter().all(|c| c == "UNAUTHENTICATED"),
        "{codes:?}"
    );
    assert_eq!(codes[20..], ["RATE_LIMITED", "RATE_LIMITED"], "{codes:?}");
}

/// The report: the router allowed depth 32 but the orders subgraph refused depth 17 ("Query is
/// nested too deep.", no path), so the real limit was 16. Now an operation the router accepts runs
/// at any depth up to the router's limit, the router alone answers deeper ones with its own
/// MAX_DEPTH_LIMIT, and a subgraph called directly applies the same alias and directive limits.
#[tokio::test]
async fn one_depth_limit_and_subgraphs_as_strict_as_the_router() {
    let f = Federation::start().await;
    let (token, _) = f.register("deep").await;
    add(&f, &token, "123456", 1).await;
    // myOrders { owner { orders { owner { ... id } } } }, `depth` fields deep.
    let nested = |depth: usize| {
        let mut open = String::from("myOrders { ");
        for level in 2..depth {
            open.push_str(if level % 2 == 0 {
                "owner { "
            } else {
                "orders { "
            });
        }
        format!("{{ {open}id{} }}", " }".repeat(depth - 1))
    };
    let deepest = f.gql(&nested(32), json!({}), Some(&token)).await;
    assert!(deepest.get("errors").is_none(), "{deepest}");
    let deeper = f.gql(&nested(33), json!({}), Some(&token)).await;
    assert_eq!(code(&deeper), "MAX_DEPTH_LIMIT", "{deeper}");

    let direct = |query: String| {
        let http = f.http.clone();
        let url = f.orders.graphql_url();
        async move {
            let body: Value = http
                .post(url)
                .header(
                    taproom_common::trust::SECRET_HEADER,
                    taproom_e2e::SUBGRAPH_SECRET,
                )
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("json");
            body
        }
    };
    let aliases: String = (0..3000).map(|i| format!("a{i}: __typename ")).collect();
    let too_many = direct(format!("{{ {aliases} }}")).await;
    assert_eq!(code(&too_many), "MAX_ALIASES_LIMIT", "{too_many}");
    let directives = "@include(if: true) ".repeat(5000);
    let repeated = direct(format!("{{ __typename {directives} }}")).await;
    assert_eq!(code(&repeated), "GRAPHQL_VALIDATION_FAILED", "{repeated}");
    let deep_direct = direct(nested(40)).await;
    assert_eq!(code(&deep_direct), "MAX_DEPTH_LIMIT", "{deep_direct}");
}

/// The report's errors a frontend could not rely on, each now with a listed code, a path where a
/// field failed, and a sentence a person understands.
#[tokio::test]
async fn every_error_has_a_listed_code_a_path_and_a_plain_message() {
    let mut f = Federation::start().await;
    let (admin, _) = f.register("boss").await;
    f.promote("boss").await;
    let bad_price = f
        .gql(
            r#"mutation { createBeer(input: { sku: "Z1", name: "x", price: true }) { sku } }"#,
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(code(&bad_price), "BAD_USER_INPUT", "{bad_price}");
    assert_eq!(bad_price["errors"][0]["path"], json!(["createBeer"]));
    assert!(message(&bad_price).contains("Decimal"), "{bad_price}");

    let too_many: Vec<serde_json::Value> = (0..11)
        .map(|_| json!({ "query": "{ me { id } }" }))
        .collect();
    let (status, batch) = f.post(serde_json::Value::Array(too_many), None).await;
    assert_eq!((status, code(&batch)), (400, "BAD_REQUEST"));
    assert!(message(&batch).contains("at most 10"), "{batch}");
    let (status, not_a_string) = f.post(json!({ "query": { "me": "id" } }), None).await;
    assert_eq!(
        (status, message(&not_a_string)),
        (400, "`query` must be a string")
    );

    for query in ["{ me { id } }\u{0}", "{ me\u{0} { id } }"] {
        let (status, nul) = f.post(json!({ "query": query }), None).await;
        assert_eq!((status, code(&nul)), (400, "BAD_REQUEST"), "{nul}");
        assert!(
            message(&nul).contains("control character U+0000 at line 1"),
            "{nul}"
        );
    }

    let (token, _) = f.register("pat").await;
    add(&f, &token, "123457", 1).await;
    add(&f, &token, "123458", 1).await;
    f.stop_beers().await;
    let partial = f
        .gql(
            "{ currentOrder { items { sku beer { name } } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        partial["data"],
        json!({ "currentOrder": { "items": [{ "sku": "123457", "beer": null }, { "sku": "123458", "beer": null }] } })
    );
    let errors = partial["errors"].as_array().expect("errors");
    let paths: Vec<&Value> = errors.iter().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [
            &json!(["currentOrder", "items", 0, "beer"]),
            &json!(["currentOrder", "items", 1, "beer"])
        ],
        "a null beer that could not be fetched is told from a deleted one"
    );
    assert!(errors
        .iter()
        .all(|e| e["extensions"]["code"] == "SUBGRAPH_REQUEST_FAILED"
            && e["extensions"]["service"] == "beers"));
    let root = f
        .gql("{ beer(sku: \"123456\") { name } }", json!({}), None)
        .await;
    assert_eq!(root["errors"][0]["path"], json!(["beer"]), "{root}");
}

fn message(response: &Value) -> &str {
    response["errors"][0]["message"]
        .as_str()
        .expect("a message")
}

/// An `Idempotency-Key` names one request, as payment APIs have it. The report: the same key with
/// another mutation answered 200 with the old, checked-out order and added nothing; a repeat
/// answered the order as it had become; and a client's `K/0` was taken for batch member 0 of `K`.
#[tokio::test]
async fn an_idempotency_key_names_one_request() {
    let f = Federation::start().await;
    let (token, _) = f.register("ivan").await;
    let send = |body: Value, key: &'static str| {
        let request = f
            .http
            .post(f.router.graphql_url())
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&body);
        async move {
            let response = request.send().await.expect("answers");
            response.json::<Value>().await.expect("JSON")
        }
    };
    let add = |sku: &str| json!({ "query": format!(r#"mutation {{ addToOrder(sku: "{sku}", quantity: 1) {{ id isOpen items {{ sku quantity }} }} }}"#) });
    let first = send(add("200001"), "K").await;
    assert!(first["errors"].is_null(), "{first}");
    let checkout = json!({ "query": "mutation { checkout { id } }" });
    assert!(send(checkout, "K2").await["errors"].is_null());

    // The same key with another request: refused, nothing added.
    let reused = send(add("200039"), "K").await;
    assert_eq!(code(&reused), "BAD_USER_INPUT", "{reused}");
    assert_eq!(
        reused["errors"][0]["extensions"]["field"],
        "Idempotency-Key"
    );
    let current = f
        .gql("{ currentOrder { id } }", json!({}), Some(&token))
        .await;
    assert_eq!(current["data"]["currentOrder"], Value::Null, "{current}");

    // The same request again: the first answer, as it was (open, one line), not as it is now.
    let again = send(add("200001"), "K").await;
    assert_eq!(again, first);

    // Batch member 0 of "B" and a request keyed "B/0" are two requests.
    let batch = send(json!([add("123456")]), "B").await;
    assert_eq!(
        batch[0]["data"]["addToOrder"]["items"][0]["quantity"], 1,
        "{batch}"
    );
    let single = send(add("123456"), "B/0").await;
    assert_eq!(
        single["data"]["addToOrder"]["items"][0]["quantity"], 2,
        "applied, not taken for the batch's member: {single}"
    );
}
