//! Operations prepared (validated, split at `@defer`, planned) over Taproom's committed supergraph,
//! without serving them.

use std::{collections::HashMap, sync::OnceLock};

use serde_json::{json, Map, Value};
use taproom_router::{
    plan::{defer, prepare, OperationLimits, PrepareError},
    supergraph::Supergraph,
};

fn supergraph() -> &'static Supergraph {
    static SUPERGRAPH: OnceLock<std::sync::Arc<Supergraph>> = OnceLock::new();
    SUPERGRAPH.get_or_init(|| {
        let sdl = include_str!("../../schema/supergraph.graphql");
        Supergraph::load(sdl, &HashMap::new(), 10).expect("the committed supergraph loads")
    })
}

fn prepared(query: &str) -> Result<(), PrepareError> {
    prepare(supergraph(), query, None, &OperationLimits::default()).map(|_| ())
}

/// The validation messages for `query`, which must be refused by validation.
fn refused(query: &str) -> Vec<(String, Vec<(usize, usize)>)> {
    match prepared(query) {
        Err(PrepareError::Validation(errors)) => errors,
        other => panic!("{query}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn unknown_meta_fields_are_refused_like_unknown_fields() {
    assert_eq!(
        refused("{ me { username __orders { id } } }"),
        [(
            "Cannot query field \"__orders\" on type \"User\".".to_owned(),
            vec![(1, 17)]
        )]
    );
    assert_eq!(
        refused("{ __foo }")[0].0,
        "Cannot query field \"__foo\" on type \"Query\"."
    );
    // `__schema` and `__type` belong to the query root only; through fragments and typeless
    // inline fragments alike.
    let found = refused(
        "{ me { ... { __schema { types { name } } } ...F } } fragment F on User { __type(name: \"User\") { name } }",
    );
    let messages: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Cannot query field \"__schema\" on type \"User\".",
            "Cannot query field \"__type\" on type \"User\"."
        ]
    );
    // The meta fields that exist still work.
    prepared("{ __typename me { __typename } __type(name: \"Beer\") { name } }")
        .expect("meta fields are answered");
}

/// The fuzzer's find (fuzz/regressions/router_request): an unknown meta field in nested typeless
/// fragments reached the planner, which panicked. Every part of the split operation is refused by
/// validation now; the same shape with real fields is planned.
#[test]
fn nested_typeless_fragments_are_planned_and_deferred() {
    let variables: Map<String, Value> = Map::from_iter([("on".to_owned(), json!(false))]);
    for (field, expect_refused) in [("__orders", true), ("orders", false)] {
        let query = format!(
            "query($on: Boolean!) {{ me {{ username ... @defer(if: $on) {{ {field} {{ id ... @defer(label: \"lines\") {{ items {{ quantity }} }} }} }} }} }}"
        );
        let split = defer::split(&query, None, &variables)
            .expect("splits")
            .expect("the inner @defer is on");
        assert_eq!(split.deferred.len(), 1);
        let parts = [
            query.clone(),
            split.initial.clone(),
            split.deferred[0].query.clone(),
        ];
        for part in parts {
            match prepared(&part) {
                Ok(()) => assert!(!expect_refused, "{part}: prepared"),
                Err(PrepareError::Validation(_)) => assert!(expect_refused, "{part}: refused"),
                Err(other) => panic!("{part}: {other:?}"),
            }
        }
    }
}
