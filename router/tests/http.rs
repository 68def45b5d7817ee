//! The router's HTTP surface on a supergraph of one subgraph: CORS, the playground, and
//! GraphQL-over-HTTP details.

mod common;

use std::collections::HashMap;

use common::subgraph;
use taproom_router::{compose::compose, supergraph::Supergraph};

/// The router's routes over a supergraph of one subgraph with one root field, allowing `cors`.
fn one_field_app(cors: &[axum::http::HeaderValue]) -> axum::Router {
    let sdl = compose(&[subgraph("a", "type Query { one: String }")]).expect("composes");
    let router = std::sync::Arc::new(taproom_router::Router::new(
        Supergraph::load(&sdl, &HashMap::new(), 10).expect("loads"),
        taproom_router::fetch::SubgraphClient::new(std::time::Duration::from_secs(1)),
        Default::default(),
    ));
    taproom_router::http::routes(
        router,
        taproom_router::http::HttpOptions {
            max_body_bytes: 1024,
            cors_origins: cors.to_vec(),
            ..Default::default()
        },
    )
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
