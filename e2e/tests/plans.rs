//! Query plans of the contract's main operations, pinned as insta snapshots in the familiar text
//! form. A changed plan is a reviewable diff: `cargo insta review` (or INSTA_UPDATE=always) updates them.

use taproom_router::{
    compose::{compose, SubgraphSdl},
    plan::{prepare, OperationLimits},
    supergraph::Supergraph,
};

fn supergraph() -> std::sync::Arc<Supergraph> {
    let sdl = compose(&[
        SubgraphSdl {
            name: "users".into(),
            url: "http://users.invalid/graphql".into(),
            sdl: taproom_users::schema::sdl(),
        },
        SubgraphSdl {
            name: "beers".into(),
            url: "http://beers.invalid/graphql".into(),
            sdl: taproom_beers::schema::sdl(),
        },
        SubgraphSdl {
            name: "orders".into(),
            url: "http://orders.invalid/graphql".into(),
            sdl: taproom_orders::schema::sdl(),
        },
    ])
    .expect("composes");
    Supergraph::load(&sdl, &Default::default(), 10).expect("loads")
}

fn plan(query: &str) -> String {
    let supergraph = supergraph();
    let prepared = prepare(&supergraph, query, None, &OperationLimits::default()).expect("plans");
    let (_, plan) = prepared.planned.as_ref().expect("something to fetch");
    format!("{plan}")
}

#[test]
fn my_orders_with_owner_and_beers() {
    insta::assert_snapshot!(plan(
        "{ myOrders { id total owner { username } items { quantity beer { name price } } } }"
    ));
}

#[test]
fn me_with_orders_and_beers() {
    insta::assert_snapshot!(plan(
        "{ me { username orders { total items { beer { sku name } } } } }"
    ));
}

#[test]
fn catalog_page() {
    insta::assert_snapshot!(plan(
        "query($after: String) { beers(first: 10, after: $after, search: \"a\") { edges { cursor node { sku name price } } pageInfo { hasNextPage endCursor } totalCount } }"
    ));
}

#[test]
fn add_to_order_then_read_beers() {
    insta::assert_snapshot!(plan(
        "mutation($sku: String!) { addToOrder(sku: $sku, quantity: 1) { id itemCount items { beer { name } } } }"
    ));
}

#[test]
fn deep_heavy_operation() {
    insta::assert_snapshot!(plan(
        "{ myOrders { id owner { username orders { id items { sku beer { name price } } } } items { beer { sku name } } } }"
    ));
}

#[test]
fn login() {
    insta::assert_snapshot!(plan(
        "mutation { login(username: \"a\", password: \"b\") { token user { id username orders { id } } } }"
    ));
}
