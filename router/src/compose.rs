//! Composition: subgraph SDLs in, a federation v2 supergraph SDL out.
//!
//! `graphql-composition` does the composing. Its rendered supergraph leaves `@join__type` off the root
//! operation types, and the query planner finds root fields through exactly those directives, so
//! [`compose`] adds `@join__type(graph: X)` to each root type for every subgraph that defines fields on it.

use graphql_tools::parser::schema::{self as ast, Definition, TypeDefinition};

/// A subgraph to compose: its name, the URL the router will send it operations, and its SDL.
#[derive(Debug, Clone)]
pub struct SubgraphSdl {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

/// Why composition failed; the message lists every problem, naming subgraph, type and field.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("subgraph {name:?} does not parse:\n{report}")]
    Parse { name: String, report: String },
    #[error("composition failed:\n{}", .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Composition(Vec<String>),
    #[error("cannot render the composed supergraph: {0}")]
    Render(String),
}

/// Composes `subgraphs` into a supergraph SDL the router can serve.
pub fn compose(subgraphs: &[SubgraphSdl]) -> Result<String, ComposeError> {
    let mut input = graphql_composition::Subgraphs::default();
    for subgraph in subgraphs {
        input
            .ingest_str(&subgraph.sdl, &subgraph.name, Some(&subgraph.url))
            .map_err(|e| ComposeError::Parse {
                name: subgraph.name.clone(),
                report: e.to_string(),
            })?;
    }
    let composed = graphql_composition::compose(&mut input);
    let graph = composed.into_result().map_err(|diagnostics| {
        ComposeError::Composition(diagnostics.iter_errors().map(str::to_owned).collect())
    })?;
    let sdl = graphql_composition::render_federated_sdl(&graph)
        .map_err(|e| ComposeError::Render(e.to_string()))?;
    add_root_join_types(&sdl)
}

/// Adds `@join__type(graph: G)` to each root operation type for every graph that has a
/// `@join__field(graph: G)` on it, unless it is already there.
fn add_root_join_types(sdl: &str) -> Result<String, ComposeError> {
    let mut document = ast::parse_schema::<String>(sdl)
        .map_err(|e| ComposeError::Render(format!("the composed supergraph does not parse: {e}")))?
        .into_static();
    let roots: Vec<String> = [
        document.query_type_name().cloned(),
        document.mutation_type_name().cloned(),
        document.subscription_type_name().cloned(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for definition in &mut document.definitions {
        let Definition::TypeDefinition(TypeDefinition::Object(object)) = definition else {
            continue;
        };
        if !roots.contains(&object.name) {
            continue;
        }
        let mut graphs: Vec<String> = Vec::new();
        for field in &object.fields {
            for directive in field.directives.iter().filter(|d| d.name == "join__field") {
                for (name, value) in &directive.arguments {
                    if let (true, ast::Value::Enum(graph)) = (name == "graph", value) {
                        if !graphs.contains(graph) {
                            graphs.push(graph.clone());
                        }
                    }
                }
            }
        }
        for graph in graphs {
            let present = object.directives.iter().any(|d| {
                d.name == "join__type"
                    && d.arguments.iter().any(|(n, v)| {
                        n == "graph" && matches!(v, ast::Value::Enum(g) if *g == graph)
                    })
            });
            if !present {
                object.directives.push(ast::Directive {
                    position: Default::default(),
                    name: "join__type".into(),
                    arguments: vec![("graph".into(), ast::Value::Enum(graph))],
                });
            }
        }
    }
    Ok(document.to_string())
}
