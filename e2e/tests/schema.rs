//! schema/ is the source of truth: each file must be exactly what the code produces, and the API must
//! keep every name of the public contract. A failing test names the command that regenerates the file.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ sits in the repository")
        .to_owned()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn assert_current(relative: &str, actual: &str, command: &str) {
    assert!(
        read(relative) == actual,
        "{relative} is out of date with the code: run `{command}` (or `bash scripts/update-schema.sh`) and review the diff"
    );
}

#[test]
fn subgraph_sdl_files_match_the_code() {
    assert_current(
        "schema/users.graphql",
        &taproom_users::schema::sdl(),
        "cargo run -p taproom-users -- sdl > schema/users.graphql",
    );
    assert_current(
        "schema/beers.graphql",
        &taproom_beers::schema::sdl(),
        "cargo run -p taproom-beers -- sdl > schema/beers.graphql",
    );
    assert_current(
        "schema/orders.graphql",
        &taproom_orders::schema::sdl(),
        "cargo run -p taproom-orders -- sdl > schema/orders.graphql",
    );
}

#[test]
fn the_supergraph_is_the_composition_of_the_subgraph_files() {
    let composed =
        taproom_router::check::compose_dir(&repo().join("schema")).expect("schema/ composes");
    assert_current(
        "schema/supergraph.graphql",
        &composed,
        "cargo run -p taproom-router -- compose --schema-dir schema --output schema/supergraph.graphql",
    );
}

#[test]
fn the_api_schema_file_matches_the_supergraph() {
    let api = taproom_router::check::api_sdl(&read("schema/supergraph.graphql"))
        .expect("the supergraph loads");
    assert_current(
        "schema/api.graphql",
        &api,
        "cargo run -p taproom-router -- api-schema --supergraph schema/supergraph.graphql --output schema/api.graphql",
    );
}

#[test]
fn the_api_keeps_every_name_of_the_public_contract() {
    let contract = repo().join("../shared/contract/api.graphql");
    let contract = std::fs::read_to_string(&contract).unwrap_or_else(|e| {
        panic!(
            "the public contract should be at {}: {e}",
            contract.display()
        )
    });
    let report =
        taproom_router::check::check(&contract, &read("schema/api.graphql")).expect("diffs");
    assert!(
        !report.is_breaking(),
        "the API breaks the public contract:\n{report}"
    );
}

#[test]
fn the_frontend_operations_validate() {
    let broken = taproom_router::check::check_operations(
        &read("schema/supergraph.graphql"),
        &repo().join("schema/operations"),
    )
    .expect("reads schema/operations");
    assert!(broken.is_empty(), "{broken:?}");
}
