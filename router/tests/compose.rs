//! Composition and supergraph loading, schema checks, the CLI, and the HTTP surface (CORS, playground), on small inline subgraphs.

use std::{collections::HashMap, process::Command};

use taproom_router::{
    compose::{compose, ComposeError, SubgraphSdl},
    supergraph::Supergraph,
};

fn subgraph(name: &str, sdl: &str) -> SubgraphSdl {
    SubgraphSdl {
        name: name.into(),
        url: format!("http://{name}.invalid/graphql"),
        sdl: format!(
            "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\", \"@shareable\"])\n{sdl}"
        ),
    }
}

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

fn router(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_taproom-router"))
        .args(args)
        .output()
        .expect("runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_explains_an_unreadable_or_invalid_supergraph_and_exits_1() {
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        "/nonexistent/supergraph.graphql",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--supergraph: cannot read /nonexistent/supergraph.graphql"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("taproom-router-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creates");
    let bad = dir.join("bad.graphql");
    std::fs::write(&bad, "type Query { oops: }").expect("writes");
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        bad.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(stderr.contains("does not parse"), "{stderr}");

    let no_graphs = dir.join("plain.graphql");
    std::fs::write(&no_graphs, "type Query { hello: String }").expect("writes");
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        no_graphs.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(stderr.starts_with("error: --supergraph"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// One folder per kind of change under `tests/check_cases/`: `base/` and `new/` schema folders; the
/// report (or the composition error) is the snapshot.
#[test]
fn schema_check_reports() {
    insta::glob!("check_cases/*/new/subgraphs", |path| {
        let new_dir = path.parent().expect("new/");
        let base_dir = new_dir.parent().expect("case/").join("base");
        let base = taproom_router::check::compose_dir(&base_dir).expect("the base composes");
        let base_api = taproom_router::check::api_sdl(&base).expect("the base loads");
        let report = match taproom_router::check::compose_dir(new_dir) {
            Err(error) => format!("does not compose: {error:#}"),
            Ok(new) => {
                let new_api = taproom_router::check::api_sdl(&new).expect("the new schema loads");
                let report = taproom_router::check::check(&base_api, &new_api).expect("diffs");
                format!("breaking: {}\n{report}", report.is_breaking())
            }
        };
        insta::assert_snapshot!(report);
    });
}

#[test]
fn check_exits_non_zero_on_breaking_changes_unless_acknowledged() {
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_cases");
    let base =
        std::env::temp_dir().join(format!("taproom-check-base-{}.graphql", std::process::id()));
    let check = |case: &str, extra: &[&str]| {
        let base_sdl =
            taproom_router::check::compose_dir(&cases.join(case).join("base")).expect("composes");
        std::fs::write(&base, base_sdl).expect("writes");
        let dir = cases.join(case).join("new");
        let mut args = vec![
            "check",
            "--schema-dir",
            dir.to_str().expect("utf-8"),
            "--base",
            base.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let output = Command::new(env!("CARGO_BIN_EXE_taproom-router"))
            .args(&args)
            .output()
            .expect("runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, out) = check("field_removed", &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("BREAKING   Query.removed  field removed") && out.contains("--allow-breaking"),
        "{out}"
    );
    let (ok, out) = check("field_removed", &["--allow-breaking"]);
    assert!(ok, "{out}");
    let (ok, out) = check("field_added", &[]);
    assert!(ok, "an added field breaks nobody: {out}");

    let operations = std::env::temp_dir().join(format!("taproom-check-ops-{}", std::process::id()));
    std::fs::create_dir_all(&operations).expect("creates");
    std::fs::write(
        operations.join("page.graphql"),
        "query Page { kept removed }",
    )
    .expect("writes");
    let (ok, out) = check(
        "field_added",
        &["--operations", operations.to_str().expect("utf-8")],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("operation page.graphql would break"), "{out}");
    std::fs::remove_dir_all(operations).ok();
    std::fs::remove_file(base).ok();
}

/// The router's routes over a supergraph of one subgraph with one root field, allowing `cors`.
fn one_field_app(cors: &[axum::http::HeaderValue]) -> axum::Router {
    let sdl = compose(&[subgraph("a", "type Query { one: String }")]).expect("composes");
    let router = std::sync::Arc::new(taproom_router::Router::new(
        Supergraph::load(&sdl, &HashMap::new(), 10).expect("loads"),
        taproom_router::fetch::SubgraphClient::new(std::time::Duration::from_secs(1)),
        Default::default(),
    ));
    taproom_router::http::routes(router, 1024, cors)
}

async fn preflight(cors: &[&str]) -> axum::http::Response<axum::body::Body> {
    use tower::ServiceExt;
    let origins: Vec<axum::http::HeaderValue> =
        cors.iter().map(|o| o.parse().expect("valid")).collect();
    let app = one_field_app(&origins);
    let request = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/graphql")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .body(axum::body::Body::empty())
        .expect("valid");
    app.oneshot(request).await.expect("answers")
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let none = preflight(&[]).await;
    assert!(
        none.headers().get("access-control-allow-origin").is_none(),
        "no CORS by default"
    );
    let allowed = preflight(&["https://shop.example"]).await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = preflight(&["https://other.example"]).await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_playground_is_served_with_its_assets() {
    use tower::ServiceExt;
    let app = one_field_app(&[]);
    for (path, needle) in [
        ("/", "graphiql.min.js"),
        ("/playground/graphiql.min.js", "GraphiQL"),
        ("/playground/react.production.min.js", "react"),
        ("/playground/playground.js", "x-taproom-query-plan"),
    ] {
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("valid"),
            )
            .await
            .expect("answers");
        assert_eq!(response.status(), 200, "{path}");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert!(String::from_utf8_lossy(&body).contains(needle), "{path}");
    }
}

/// GraphQL-over-HTTP details the graphql-http audit checks: legacy `Accept` values get
/// `application/json`, and `extensions` must be a map.
#[tokio::test]
async fn legacy_accept_gets_json_and_extensions_must_be_a_map() {
    use tower::ServiceExt;
    let app = one_field_app(&[]);
    let ask = |accept: Option<&str>, body: &str| {
        let mut request =
            axum::http::Request::post("/graphql").header("content-type", "application/json");
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let request = request
            .body(axum::body::Body::from(body.to_owned()))
            .expect("valid");
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("answers");
            let status = response.status();
            let content_type = response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            (
                status,
                content_type,
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    for accept in [None, Some("*/*"), Some("application/*")] {
        let (status, content_type, body) = ask(accept, r#"{"query":"{ __typename }"}"#).await;
        assert_eq!(status, 200, "{accept:?}");
        assert!(
            content_type.starts_with("application/json"),
            "{accept:?}: {content_type}"
        );
        assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);
    }
    for extensions in [r#""string""#, "0", "false", r#"["array"]"#] {
        let body = format!(r#"{{"query":"{{ __typename }}","extensions":{extensions}}}"#);
        let (status, _, answer) = ask(Some("application/graphql-response+json"), &body).await;
        assert_eq!(status, 400, "extensions {extensions}: {answer}");
        assert!(answer.contains("BAD_REQUEST"), "{answer}");
    }
    let (status, _, _) = ask(None, r#"{"query":"{ __typename }","extensions":{"a":1}}"#).await;
    assert_eq!(status, 200);
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
