//! The three operations the benchmark sends and the varied requests for each. The subgraph requests
//! a router makes for each (the no-gateway baseline) are recorded by [`crate::record`].

use anyhow::Result;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::{load::Step, seed::Model};

/// A benchmarked operation.
pub(crate) struct Operation {
    /// As `--operations` and the results name it.
    pub(crate) name: &'static str,
    /// One line for the report's table of operations.
    pub(crate) description: &'static str,
    /// Requests to a gateway: one step each, all at target 0.
    pub(crate) gateway_work: Vec<Vec<Step>>,
    /// For the same requests, the subgraph requests Taproom's router made, as recorded.
    pub(crate) subgraph_work: Vec<Vec<Step>>,
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

/// An operation with one request per variables value, the tokens in turn.
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
        operation.gateway_work.push(vec![step(0, token, body)]);
    }
    operation
}

/// Builds the three operations over the seeded data.
fn operations(model: &Model) -> Result<Vec<Operation>> {
    let mut heavy = Operation {
        name: "heavy",
        description: "orders → owner → orders → lines → beers, across all three subgraphs",
        gateway_work: Vec::new(),
        subgraph_work: Vec::new(),
    };
    for (i, (_, token)) in model.tokens.iter().enumerate() {
        let images = i % 2 == 0;
        let variables = json!({ "images": images });
        heavy
            .gateway_work
            .push(vec![step(0, token, body(HEAVY, Some("Heavy"), variables))]);
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

/// The operations named in `names` (`--operations`), in their fixed order, over the seeded data.
pub(crate) fn selected(model: &Model, names: &[String]) -> Result<Vec<Operation>> {
    Ok(operations(model)?
        .into_iter()
        .filter(|op| names.iter().any(|name| name == op.name))
        .collect())
}
