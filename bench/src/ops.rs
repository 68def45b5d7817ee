//! The operations the benchmark sends and the varied requests for each: one router-bound operation on
//! the four static subgraphs, three on the shop's. The subgraph requests a router makes for each
//! (the no-gateway baseline) are recorded by [`crate::record`].

use anyhow::Result;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::{load::Step, seed::Model};

/// Every operation's name, in run order.
pub(crate) const NAMES: [&str; 5] = [
    "router-bound",
    "router-bound-slow",
    "heavy",
    "one-hop",
    "catalog",
];

/// How long the slow scenario's subgraphs take to answer, as the public gateways benchmark's
/// `SUBGRAPH_DELAY_MS`.
pub(crate) const SLOW_SUBGRAPH_MS: u64 = 20;

/// The slow scenario's concurrency: enough clients that 20 ms subgraphs, not the client count,
/// would bound a router that admitted them all.
pub(crate) const SLOW_CONNECTIONS: usize = 500;

/// The subgraphs-alone figures of `heavy` on an orders subgraph without its subtree memo
/// (`NO_SUBTREE_MEMO`): what they were before it.
pub(crate) const HEAVY_WITHOUT_MEMO: &str = "heavy, orders' subtree memo off";

/// Which subgraphs an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// The four static subgraphs of `taproom-bench-subgraphs`, fast enough that the gateway sets
    /// the pace.
    RouterBound,
    /// The same four, each answering after [`SLOW_SUBGRAPH_MS`]: what a gateway does while it
    /// waits (how many operations it keeps going, and what they cost it in memory).
    SlowRouterBound,
    /// The shop's three subgraphs on the seeded databases.
    Shop,
}

/// A benchmarked operation.
pub(crate) struct Operation {
    /// As `--operations` and the results name it.
    pub(crate) name: &'static str,
    pub(crate) scenario: Scenario,
    /// One line for the report's table of operations.
    pub(crate) description: &'static str,
    /// Requests to a gateway: one step each, all at target 0.
    pub(crate) gateway_work: Vec<Vec<Step>>,
    /// For the same requests, the subgraph requests Taproom's router made, as recorded.
    pub(crate) subgraph_work: Vec<Vec<Step>>,
    /// The concurrencies it is run at, when not `--connections`.
    pub(crate) connections: Option<Vec<usize>>,
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

/// The public gateways benchmark's query shape: users → reviews → product → reviews → author →
/// reviews → product, and the top products down the same path, through fragments; the product
/// fields come from three subgraphs, one of them (`shippingEstimate`) through `@requires`.
const ROUTER_BOUND: &str = "fragment User on User { id username name }
fragment Review on Review { id body }
fragment Product on Product { inStock name price shippingEstimate upc weight }
query RouterBound {
  users {
    ...User
    reviews {
      ...Review
      product {
        ...Product
        reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
      }
    }
  }
  topProducts {
    ...Product
    reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } }
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
        accept_encoding: None,
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
        scenario: Scenario::Shop,
        description,
        gateway_work: Vec::new(),
        subgraph_work: Vec::new(),
        connections: None,
    };
    for (i, variables) in variables.enumerate() {
        let (_, token) = &model.tokens[i % model.tokens.len()];
        let body = body(query, Some(operation_name), variables);
        operation.gateway_work.push(vec![step(0, token, body)]);
    }
    operation
}

/// The router-bound operation: the same request every time, without a token.
fn router_bound() -> Operation {
    let body = body(ROUTER_BOUND, Some("RouterBound"), json!({}));
    Operation {
        name: "router-bound",
        scenario: Scenario::RouterBound,
        description: "the public gateways benchmark's shape: users → reviews → product → reviews → author → reviews → product, across four static subgraphs",
        gateway_work: vec![vec![Step {
            target: 0,
            authorization: None,
            body,
            query_plan: false,
            accept_encoding: None,
        }]],
        subgraph_work: Vec::new(),
        connections: None,
    }
}

/// The router-bound operation on subgraphs that answer after 20 ms, at 500 connections.
fn router_bound_slow() -> Operation {
    Operation {
        name: "router-bound-slow",
        scenario: Scenario::SlowRouterBound,
        description: "router-bound, every subgraph answering after 20 ms (the public benchmark's SUBGRAPH_DELAY_MS), at 500 connections",
        connections: Some(vec![SLOW_CONNECTIONS]),
        ..router_bound()
    }
}

/// Builds the shop's three operations over the seeded data.
fn shop_operations(model: &Model) -> Result<Vec<Operation>> {
    let mut heavy = Operation {
        name: "heavy",
        scenario: Scenario::Shop,
        description: "orders → owner → orders → lines → beers, across all three subgraphs",
        gateway_work: Vec::new(),
        subgraph_work: Vec::new(),
        connections: None,
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

/// The operations named in `names` (`--operations`), in their fixed order; the shop's over the
/// seeded data (`model`, present when any of them is asked for).
pub(crate) fn selected(model: Option<&Model>, names: &[String]) -> Result<Vec<Operation>> {
    let mut all = vec![router_bound(), router_bound_slow()];
    if let Some(model) = model {
        all.extend(shop_operations(model)?);
    }
    Ok(all
        .into_iter()
        .filter(|op| names.iter().any(|name| name == op.name))
        .collect())
}

/// Whether any of `names` runs on the shop's subgraphs (and needs the seeded databases).
pub(crate) fn needs_shop(names: &[String]) -> bool {
    names.iter().any(|name| name != "router-bound")
}
