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

#[allow(dead_code)]
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
