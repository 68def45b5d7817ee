//! Composition and supergraph loading, on small inline subgraphs.

mod common;

use std::collections::HashMap;

use common::subgraph;
use taproom_router::{
    compose::{compose, ComposeError, SubgraphSdl},
    supergraph::Supergraph,
};

/// The supergraph line that starts with `prefix` (a type or directive definition).
fn line_starting<'s>(sdl: &'s str, prefix: &str) -> &'s str {
    sdl.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{sdl}"))
}

#[test]
fn composed_root_types_name_every_subgraph_with_root_fields() {
    let sdl = compose(&[
        subgraph("a", "type Query { one: String }"),
        subgraph(
            "b",
            "type Query { two: String } type Mutation { act: Boolean }",
        ),
    ])
    .expect("composes");
    let query = sdl.split("type Query").nth(1).expect("a Query type");
    let head = &query[..query.find('{').expect("fields")];
    assert!(
        head.contains("@join__type(graph: A)") && head.contains("@join__type(graph: B)"),
        "{head}"
    );
    let supergraph = Supergraph::load(&sdl, &HashMap::new(), 10).expect("loads and plans");
    assert_eq!(supergraph.subgraph_urls["a"], "http://a.invalid/graphql");
}

/// Other routers read the same file: Apollo Gateway refuses a supergraph whose join directives are
/// not repeatable, whose `@link` is undefined, or whose scalars name no subgraph.
#[test]
fn composed_supergraphs_follow_the_join_spec_for_other_routers() {
    let sdl = compose(&[
        subgraph("a", "scalar Money type Query { price: Money }"),
        subgraph(
            "b",
            "scalar Money type Query { cost: Money } type Thing @key(fields: \"id\") { id: ID! }",
        ),
        subgraph(
            "c",
            "type Thing @key(fields: \"id\") { id: ID! name: String }",
        ),
    ])
    .expect("composes");
    let scalar = line_starting(&sdl, "scalar Money");
    assert!(
        scalar.contains("@join__type(graph: A)") && scalar.contains("@join__type(graph: B)"),
        "{scalar}"
    );
    assert!(!scalar.contains("graph: C"), "{scalar}");
    for directive in [
        "join__type",
        "join__field",
        "join__implements",
        "join__unionMember",
    ] {
        let definition = line_starting(&sdl, &format!("directive @{directive}("));
        assert!(definition.contains(") repeatable on "), "{definition}");
    }
    for definition in [
        "directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA",
        "scalar link__Import",
        "enum link__Purpose {",
        "directive @inaccessible on ",
    ] {
        assert_eq!(sdl.matches(definition).count(), 1, "{definition} once in:\n{sdl}");
    }
    Supergraph::load(&sdl, &HashMap::new(), 10).expect("loads and plans");
}

#[test]
fn conflicting_field_types_fail_composition_naming_type_and_field() {
    let error = compose(&[
        subgraph(
            "beers",
            "type Query { beer: Beer } type Beer @key(fields: \"sku\") { sku: String! }",
        ),
        subgraph("other", "type Beer @key(fields: \"sku\") { sku: Int! }"),
    ])
    .expect_err("String! and Int! do not compose");
    let ComposeError::Composition(messages) = &error else {
        panic!("expected a composition error, got {error}");
    };
    assert!(
        messages.iter().any(|m| m.contains("Beer.sku")),
        "{messages:?}"
    );
}

#[test]
fn unparsable_subgraphs_are_named() {
    let error = compose(&[subgraph("broken", "type Query { oops: }")]).expect_err("does not parse");
    assert!(error.to_string().contains("\"broken\""), "{error}");
}

#[test]
fn url_overrides_must_name_known_subgraphs() {
    let sdl = compose(&[subgraph("a", "type Query { one: String }")]).expect("composes");
    let overrides = HashMap::from([("nope".to_owned(), "http://x/graphql".to_owned())]);
    let error = Supergraph::load(&sdl, &overrides, 10)
        .err()
        .expect("refused");
    assert!(error.to_string().contains("\"nope\""), "{error}");
}

/// graphql-composition leaves an `@interfaceObject` whose keys are all unresolvable off the
/// interface; without it the planner cannot reach the interface from that subgraph.
#[test]
fn unresolvable_interface_objects_keep_their_join_type() {
    let sdl = compose(&[
        subgraph(
            "accounts",
            "interface Account @key(fields: \"id\") { id: ID! } type Admin implements Account @key(fields: \"id\") { id: ID! } type Query { accounts: [Account] }",
        ),
        SubgraphSdl {
            sdl: "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\", \"@interfaceObject\"])\ntype Account @key(fields: \"id\", resolvable: false) @interfaceObject { id: ID! } type Query { top: Account }".into(),
            ..subgraph("stats", "")
        },
    ])
    .expect("composes");
    let interface = line_starting(&sdl, "interface Account");
    assert!(
        interface.contains(
            "@join__type(graph: STATS, key: \"id\", resolvable: false, isInterfaceObject: true)"
        ),
        "{interface}"
    );
    Supergraph::load(&sdl, &HashMap::new(), 10).expect("loads and plans");
}
