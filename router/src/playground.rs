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

/// What the page may load and run: only the router's own files and requests (GraphiQL sets inline
/// styles, hence `'unsafe-inline'` for styles alone), and no one may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `GET /`; with `demo_accounts`, the page's welcome text names the local stack's demo accounts.
pub fn index(demo_accounts: bool) -> Response {
    let page = if demo_accounts {
        INDEX.replacen("<body>", "<body data-demo-accounts=\"true\">", 1)
    } else {
        INDEX.to_owned()
    };
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(page),
    )
        .into_response()
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
