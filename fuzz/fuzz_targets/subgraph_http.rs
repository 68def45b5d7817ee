//! A subgraph's HTTP layer end to end: any body POSTed to the beers subgraph's `/graphql` (as an
//! admin, so mutations reach input validation and the database) must get an answer: a GraphQL
//! response or a GraphQL-shaped error with a code, never a panic, never a 5xx for bad input.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::{
    body::Body,
    http::{header, Request},
    Router,
};
use libfuzzer_sys::fuzz_target;
use taproom_common::{http::Limits, testing::StaticAuthenticator};
use tower::ServiceExt;

struct Target {
    runtime: tokio::runtime::Runtime,
    app: Router,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let app = runtime.block_on(async {
            let file = std::env::temp_dir().join(format!("taproom-fuzz-beers-{}.db", std::process::id()));
            let _ = std::fs::remove_file(&file);
            let db = taproom_common::db::Db::connect(&format!("sqlite:{}", file.display()))
                .await
                .expect("opens a scratch database");
            db.migrate(&taproom_beers::db::migrations()).await.expect("migrates");
            taproom_beers::demo::seed(&db).await.expect("seeds");
            taproom_beers::app(
                taproom_beers::AppState { db },
                Arc::new(StaticAuthenticator),
                Limits::default(),
            )
        });
        Target { runtime, app }
    })
}

fuzz_target!(|body: &[u8]| {
    let target = target();
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer admin")
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let response = target
        .runtime
        .block_on(target.app.clone().oneshot(request))
        .expect("the app is infallible");
    let status = response.status();
    let bytes = target
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("a body");
    assert!(
        !status.is_server_error(),
        "{status} for a client's body: {}",
        String::from_utf8_lossy(&bytes)
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&bytes).expect("every answer is JSON");
    if let Some(errors) = answer.get("errors").and_then(|e| e.as_array()) {
        for error in errors {
            let code = error["extensions"]["code"].as_str();
            assert!(code.is_some(), "an error without a code: {error}");
            assert_ne!(code, Some("INTERNAL_SERVER_ERROR"), "bad input is not internal: {error}");
        }
    }
});
