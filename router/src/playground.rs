//! The playground at `GET /`: GraphiQL (from npm, embedded at build time by `build.rs`) with a panel
//! showing each operation's query plan. Everything is served by the router itself, so it works with
//! no internet access.

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
};

macro_rules! npm_asset {
    ($path:literal) => {
        include_bytes!(concat!(env!("TAPROOM_PLAYGROUND_ASSETS"), "/", $path))
    };
}

const INDEX: &str = include_str!("playground/index.html");

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /playground/{file}`: the page's scripts and styles.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (
            npm_asset!("graphiql/graphiql.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "graphiql.min.css" => (
            npm_asset!("graphiql/graphiql.min.css"),
            "text/css; charset=utf-8",
        ),
        "react.production.min.js" => (
            npm_asset!("react/umd/react.production.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "react-dom.production.min.js" => (
            npm_asset!("react-dom/umd/react-dom.production.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "playground.js" => (
            include_bytes!("playground/playground.js"),
            "text/javascript; charset=utf-8",
        ),
        "playground.css" => (
            include_bytes!("playground/playground.css"),
            "text/css; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such playground file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
