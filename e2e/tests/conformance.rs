//! Federation conformance: the router in front of subgraphs that are not Taproom's.
//!
//! Each scenario is a folder under `e2e/conformance/`: subgraphs as `<name>.graphql` (SDL) plus
//! `<name>.json` (data, see `taproom_e2e::fixture`), and `queries/<query>.graphql` with the answer a
//! single GraphQL server over the same data would give in `queries/<query>.json` (written by reasoning
//! about the schema and data, not copied from the router) and optional variables in
//! `queries/<query>.variables.json`. The harness serves each subgraph over HTTP on its own port,
//! composes the supergraph with the router's own composition, starts the router, sends every query,
//! compares the whole answer, and pins the router's query plan beside it as an insta snapshot
//! (`queries/<query>.snap`).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use taproom_e2e::{fixture::Fixture, Service, TestRouter};
use taproom_router::compose::{compose, SubgraphSdl};

fn scenario_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Files in `dir` ending in `extension`, sorted, as (stem, path).
fn files(dir: &Path, extension: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let stem = name.strip_suffix(extension)?.to_owned();
            (!stem.contains('.')).then_some((stem, path))
        })
        .collect();
    out.sort();
    out
}

/// Runs every query of scenario `name`; panics listing every answer that differs.
async fn run_scenario(name: &str) {
    let dir = scenario_dir(name);
    let mut subgraphs = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    for (subgraph, path) in files(&dir, ".graphql") {
        let sdl = read(&path);
        let data: Value = serde_json::from_str(&read(&path.with_extension("json")))
            .unwrap_or_else(|e| panic!("{subgraph}.json: {e}"));
        let service = Service::serve(Fixture::new(&sdl, data).routes()).await;
        subgraphs.push(SubgraphSdl {
            name: subgraph,
            url: service.graphql_url(),
            sdl,
        });
        services.push(service);
    }
    let supergraph = compose(&subgraphs).unwrap_or_else(|e| panic!("{name} does not compose: {e}"));
    let mut router = TestRouter::new(supergraph).start().await;
    let http = reqwest::Client::new();

    assert!(
        !subgraphs.is_empty(),
        "{name} has no subgraph: a scenario without one tests nothing"
    );
    let queries = dir.join("queries");
    let mut failures = Vec::new();
    let asked = files(&queries, ".graphql");
    assert!(
        !asked.is_empty(),
        "{name} has no query: a scenario without one tests nothing"
    );
    for (query_name, path) in asked {
        let variables = queries.join(format!("{query_name}.variables.json"));
        let variables: Value = if variables.exists() {
            serde_json::from_str(&read(&variables)).expect("variables are JSON")
        } else {
            json!({})
        };
        let expected: Value = serde_json::from_str(&read(&path.with_extension("json")))
            .unwrap_or_else(|e| panic!("{query_name}.json: {e}"));
        let mut answer: Value = http
            .post(router.graphql_url())
            .header("x-taproom-query-plan", "true")
            .json(&json!({ "query": read(&path), "variables": variables }))
            .send()
            .await
            .expect("the router answers")
            .json()
            .await
            .expect("the router answers JSON");
        let plan = answer
            .as_object_mut()
            .and_then(|o| o.remove("extensions"))
            .and_then(|e| e["queryPlan"].as_str().map(str::to_owned))
            // A request refused before planning (a validation error) has no plan; the answer
            // itself is compared below.
            .unwrap_or_else(|| "no plan: the request was refused before planning".to_owned());
        insta::with_settings!({
            snapshot_path => &queries,
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(query_name.as_str(), plan);
        });
        if answer != expected {
            failures.push(format!(
                "{name}/{query_name}:\n  expected {}\n  got      {}",
                expected, answer
            ));
        }
    }
    router.stop().await;
    for mut service in services {
        service.stop().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every scenario, each run by one test below.
const SCENARIOS: [&str; 19] = [
    "several_keys",
    "requires_provides",
    "abstract_types",
    "mutations_and_conditions",
    "errors_and_nulls",
    "shareable_override_inaccessible",
    "compound_keys",
    "interface_object",
    "hops_and_partial_keys",
    "requires_chains",
    "fed1_style",
    "provides_nested",
    "enum_and_input_intersections",
    "override_with_requires",
    "requires_arguments",
    "covariant_interface_fields",
    "values_outside_the_api_schema",
    "null_keys_on_a_path",
    "output_coercion_and_list_variables",
];

/// A scenario folder no test runs would pass by never running: every folder is in [`SCENARIOS`],
/// and every entry there is a folder (and is run by a test that names it: this file's own text).
#[test]
fn every_scenario_folder_is_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .expect("the conformance folder")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.is_dir())
        .map(|path| {
            path.file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    folders.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(folders, listed, "conformance folders and SCENARIOS differ");
    let source = include_str!("conformance.rs");
    for scenario in SCENARIOS {
        assert!(
            source.contains(&format!("run_scenario(\"{scenario}\")")),
            "no test runs {scenario}"
        );
    }
}

#[tokio::test]
async fn entities_resolve_through_any_of_several_keys() {
    run_scenario("several_keys").await;
}

#[tokio::test]
async fn requires_gets_its_fields_and_provides_saves_fetches() {
    run_scenario("requires_provides").await;
}

#[tokio::test]
async fn interfaces_and_unions_spread_across_subgraphs() {
    run_scenario("abstract_types").await;
}

#[tokio::test]
async fn mutations_run_in_order_and_skip_include_apply() {
    run_scenario("mutations_and_conditions").await;
}

#[tokio::test]
async fn missing_entities_are_null_and_errors_keep_client_paths() {
    run_scenario("errors_and_nulls").await;
}

#[tokio::test]
async fn shareable_override_and_inaccessible_fields() {
    run_scenario("shareable_override_inaccessible").await;
}

#[tokio::test]
async fn compound_and_nested_keys_with_null_key_fields() {
    run_scenario("compound_keys").await;
}

#[tokio::test]
async fn interface_objects_and_entity_interfaces() {
    run_scenario("interface_object").await;
}

#[tokio::test]
async fn entities_hop_across_partly_overlapping_keys_and_back() {
    run_scenario("hops_and_partial_keys").await;
}

#[tokio::test]
async fn requires_with_fragments_and_chained_requires() {
    run_scenario("requires_chains").await;
}

#[tokio::test]
async fn federation_one_subgraphs_with_extends_and_external_keys() {
    run_scenario("fed1_style").await;
}

#[tokio::test]
async fn provides_nested_and_on_interfaces() {
    run_scenario("provides_nested").await;
}

#[tokio::test]
async fn enums_and_inputs_intersect_across_subgraphs() {
    run_scenario("enum_and_input_intersections").await;
}

#[tokio::test]
async fn override_of_a_field_with_requires() {
    run_scenario("override_with_requires").await;
}

#[tokio::test]
async fn requires_with_arguments_on_the_required_field() {
    run_scenario("requires_arguments").await;
}

#[tokio::test]
async fn covariant_interface_fields_with_provides() {
    run_scenario("covariant_interface_fields").await;
}

#[tokio::test]
async fn values_outside_the_api_schema_are_null_with_an_error() {
    run_scenario("values_outside_the_api_schema").await;
}

#[tokio::test]
async fn entities_a_subgraph_lacks_are_null_only_as_bare_references() {
    run_scenario("null_keys_on_a_path").await;
}

#[tokio::test]
async fn output_coercion_errors_and_single_values_for_list_variables() {
    run_scenario("output_coercion_and_list_variables").await;
}
