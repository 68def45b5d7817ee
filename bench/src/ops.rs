//! The three operations the benchmark sends, the varied requests for each, and, for each, the
//! subgraph requests a router makes for it (the no-gateway baseline).

use anyhow::Result;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::{load::Step, seed::Model};

/// Which subgraph a baseline request goes to; the targets list is in this order.
pub const USERS: usize = 0;
pub const BEERS: usize = 1;
pub const ORDERS: usize = 2;

/// A benchmarked operation.
pub struct Operation {
    pub name: &'static str,
    pub description: &'static str,
    /// Requests to a gateway: one step each, all at target 0.
    pub gateway_work: Vec<Vec<Step>>,
    /// For the same requests, the subgraph requests a router makes, in plan order.
    pub subgraph_work: Vec<Vec<Step>>,
}

/// The heavy one, orders → owner → orders → items → beer: the caller's orders with their lines' beers,
/// and under each order its owner with all of the owner's orders again, their lines and beers. About
/// 70 KB of JSON per answer; `$images` varies.
const HEAVY: &str = "query Heavy($images: Boolean!) {
  myOrders {
    id isOpen itemCount total timeCreated
    items { sku quantity unitPrice lineTotal beer { id name price image @include(if: $images) } }
    owner {
      id username firstName lastName
      orders { id total items { quantity beer { name } } }
    }
  }
}";

/// One hop, a few hundred bytes: a beer by sku (varied).
const ONE_HOP: &str = "query Beer($sku: String!) { beer(sku: $sku) { id sku name price } }";

/// A catalog page: 20 beers of a search (varied), with the total count.
const CATALOG: &str = "query Catalog($search: String!) {
  beers(first: 20, search: $search) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id sku name price image } }
  }
}";

// What a router asks the subgraphs for `HEAVY` (Taproom's plan is written to `plan-heavy.txt`): the
// orders with their owner's key and their lines' beer keys; then, the owner once (representations
// are deduplicated), its profile (users) and its orders (orders), and the lines' beers (beers); then
// the beers of the owner's orders' lines.
const HEAVY_ORDERS: &str = "{ myOrders { __typename id isOpen itemCount total timeCreated items { sku quantity unitPrice lineTotal beer { __typename sku } } owner { __typename id } } }";
const HEAVY_USERS: &str = "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { id username firstName lastName } } }";
const HEAVY_USER_ORDERS: &str = "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { orders { id total items { quantity beer { __typename sku } } } } } }";
const HEAVY_BEERS: &str = "query($representations: [_Any!]!, $images: Boolean!) { _entities(representations: $representations) { ... on Beer { id name price image @include(if: $images) } } }";
const HEAVY_BEER_NAMES: &str = "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Beer { name } } }";

fn body(query: &str, name: Option<&str>, variables: Value) -> Bytes {
    let mut body = json!({ "query": query, "variables": variables });
    if let Some(name) = name {
        body["operationName"] = json!(name);
    }
    Bytes::from(body.to_string())
}

fn step(target: usize, token: &str, body: Bytes) -> Step {
    Step {
        target,
        authorization: Some(format!("Bearer {token}")),
        body,
        query_plan: false,
    }
}

fn beer_representations<'a>(skus: impl IntoIterator<Item = &'a String>) -> Value {
    Value::Array(
        skus.into_iter()
            .map(|sku| json!({ "__typename": "Beer", "sku": sku }))
            .collect(),
    )
}

/// An operation served by the beers subgraph alone: the same request goes to a gateway or, for the
/// baseline, straight to the subgraph; one request per variables value, the tokens in turn.
fn single_subgraph(
    name: &'static str,
    description: &'static str,
    (query, operation_name): (&str, &str),
    variables: impl Iterator<Item = Value>,
    model: &Model,
) -> Operation {
    let mut operation = Operation {
        name,
        description,
        gateway_work: Vec::new(),
        subgraph_work: Vec::new(),
    };
    for (i, variables) in variables.enumerate() {
        let (_, token) = &model.tokens[i % model.tokens.len()];
        let body = body(query, Some(operation_name), variables);
        operation
            .gateway_work
            .push(vec![step(0, token, body.clone())]);
        operation.subgraph_work.push(vec![step(BEERS, token, body)]);
    }
    operation
}

/// Builds the three operations over the seeded data.
pub fn operations(model: &Model) -> Result<Vec<Operation>> {
    let mut heavy = Operation {
        name: "heavy",
        description: "orders → owner → orders → lines → beers, across all three subgraphs",
        gateway_work: Vec::new(),
        subgraph_work: Vec::new(),
    };
    for (i, (user_id, token)) in model.tokens.iter().enumerate() {
        let images = i % 2 == 0;
        let variables = json!({ "images": images });
        heavy
            .gateway_work
            .push(vec![step(0, token, body(HEAVY, Some("Heavy"), variables))]);
        let user = json!([{ "__typename": "User", "id": user_id.to_string() }]);
        let index = usize::try_from(*user_id - 1)?;
        heavy.subgraph_work.push(vec![
            step(ORDERS, token, body(HEAVY_ORDERS, None, json!({}))),
            step(
                USERS,
                token,
                body(HEAVY_USERS, None, json!({ "representations": user })),
            ),
            step(
                ORDERS,
                token,
                body(HEAVY_USER_ORDERS, None, json!({ "representations": user })),
            ),
            step(
                BEERS,
                token,
                body(
                    HEAVY_BEERS,
                    None,
                    json!({
                        "representations": beer_representations(&model.skus_by_user[index]),
                        "images": images,
                    }),
                ),
            ),
            step(
                BEERS,
                token,
                body(
                    HEAVY_BEER_NAMES,
                    None,
                    json!({ "representations": beer_representations(&model.skus_by_user[index]) }),
                ),
            ),
        ]);
    }

    let one_hop = single_subgraph(
        "one-hop",
        "a beer by sku: one small request to one subgraph",
        (ONE_HOP, "Beer"),
        model.skus.iter().map(|sku| json!({ "sku": sku })),
        model,
    );
    let searches = [
        "lager", "pils", "porter", "stout", "ipa", "weizen", "saison", "bock", "bench", "b00",
    ]
    .into_iter()
    .map(String::from)
    .chain((0..40).map(|n| format!("{n:02}")));
    let catalog = single_subgraph(
        "catalog",
        "a catalog page: 20 beers of a search, with the total count",
        (CATALOG, "Catalog"),
        searches.map(|search| json!({ "search": search })),
        model,
    );

    Ok(vec![heavy, one_hop, catalog])
}
