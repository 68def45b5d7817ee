//! Helpers shared by the router's integration tests.

use taproom_router::compose::SubgraphSdl;

/// Subgraph `name` at `http://<name>.invalid/graphql`: `sdl` under a Federation v2.5 `@link`
/// importing `@key` and `@shareable`.
pub fn subgraph(name: &str, sdl: &str) -> SubgraphSdl {
    SubgraphSdl {
        name: name.into(),
        url: format!("http://{name}.invalid/graphql"),
        sdl: format!(
            "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\", \"@shareable\"])\n{sdl}"
        ),
    }
}
