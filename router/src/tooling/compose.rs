//! Composition: subgraph SDLs in, a federation v2 supergraph SDL out.
//!
//! `graphql-composition` does the composing. Its rendered supergraph leaves `@join__type` off the root
//! operation types, and the query planner finds root fields through exactly those directives, so
//! [`compose`] adds `@join__type(graph: X)` to each root type for every subgraph that defines fields on it.
//!
//! Its output also departs from the join spec in ways other routers (Apollo Gateway, for one) refuse,
//! so that one supergraph file serves every router, [`compose`] also:
//! - adds the definitions of the core-schema machinery its `@link`s refer to (`@link` itself,
//!   `link__Import`, `link__Purpose`, `@inaccessible`) where missing;
//! - declares the join directives that the spec makes `repeatable` as such (`@join__type`, ...);
//! - adds `@join__type(graph: X)` to each custom scalar for every subgraph that defines it;
//! - adds the `@join__type(graph: X, key: ..., isInterfaceObject: true)` of an `@interfaceObject`
//!   whose keys are all `resolvable: false` (graphql-composition leaves it out).

use graphql_tools::parser::schema::{self as ast, Definition, TypeDefinition};

use crate::ast::type_name;

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
    let declared: Vec<Declared> = subgraphs
        .iter()
        .map(|subgraph| Declared::read(&subgraph.name, &subgraph.sdl))
        .collect();
    complete(&sdl, &declared)
}

/// What one subgraph SDL declares that the rendered supergraph may leave out.
struct Declared {
    subgraph: String,
    /// Its custom scalars.
    scalars: Vec<String>,
    /// Its `@interfaceObject` types: (type, key field set, resolvable).
    interface_objects: Vec<(String, String, bool)>,
}

impl Declared {
    /// Reads a subgraph SDL with cynic-parser, the parser composition itself uses (subgraph SDLs
    /// open with `extend schema`, which graphql-tools' parser does not accept). Composition has
    /// parsed this SDL already; a failure here only means nothing is found.
    fn read(subgraph: &str, sdl: &str) -> Declared {
        use cynic_parser::type_system::{Definition as Def, TypeDefinition as Type};
        let mut declared = Declared {
            subgraph: subgraph.to_owned(),
            scalars: Vec::new(),
            interface_objects: Vec::new(),
        };
        let Ok(document) = cynic_parser::parse_type_system_document(sdl) else {
            return declared;
        };
        for definition in document.definitions() {
            match definition {
                Def::Type(Type::Scalar(s)) => declared.scalars.push(s.name().to_owned()),
                Def::Type(Type::Object(o)) | Def::TypeExtension(Type::Object(o)) => {
                    let is_interface_object = o.directives().any(|d| {
                        matches!(d.name(), "interfaceObject" | "federation__interfaceObject")
                    });
                    if !is_interface_object {
                        continue;
                    }
                    for key in o
                        .directives()
                        .filter(|d| matches!(d.name(), "key" | "federation__key"))
                    {
                        let argument = |name: &str| key.arguments().find(|a| a.name() == name);
                        let Some(fields) =
                            argument("fields").and_then(|a| a.value().as_str().map(str::to_owned))
                        else {
                            continue;
                        };
                        let resolvable = argument("resolvable")
                            .and_then(|a| a.value().as_bool())
                            .unwrap_or(true);
                        declared
                            .interface_objects
                            .push((o.name().to_owned(), fields, resolvable));
                    }
                }
                _ => {}
            }
        }
        declared
    }
}

/// The join directives the join spec (v0.3) declares `repeatable`.
const REPEATABLE_JOIN_DIRECTIVES: [&str; 5] = [
    "join__type",
    "join__field",
    "join__implements",
    "join__unionMember",
    "join__enumValue",
];

fn join_type(graph: &str) -> ast::Directive<'static, String> {
    ast::Directive {
        position: Default::default(),
        name: "join__type".into(),
        arguments: vec![("graph".into(), ast::Value::Enum(graph.to_owned()))],
    }
}

fn has_join_type(directives: &[ast::Directive<'static, String>], graph: &str) -> bool {
    directives.iter().any(|d| {
        d.name == "join__type"
            && d.arguments
                .iter()
                .any(|(n, v)| n == "graph" && matches!(v, ast::Value::Enum(g) if g == graph))
    })
}

/// The `join__Graph` enum value of each subgraph name (`USERS @join__graph(name: "users")`).
fn graph_values(document: &ast::Document<'static, String>) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for definition in &document.definitions {
        let Definition::TypeDefinition(TypeDefinition::Enum(e)) = definition else {
            continue;
        };
        if e.name != "join__Graph" {
            continue;
        }
        for value in &e.values {
            for directive in value.directives.iter().filter(|d| d.name == "join__graph") {
                for (name, argument) in &directive.arguments {
                    if let (true, ast::Value::String(subgraph)) = (name == "name", argument) {
                        values.push((subgraph.clone(), value.name.clone()));
                    }
                }
            }
        }
    }
    values
}

/// The standard definitions of the link spec (v1.0) and of `@inaccessible` (v0.2), as Apollo's
/// composition writes them into every supergraph.
const CORE_DEFINITIONS: &str = r#"
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION

scalar link__Import

enum link__Purpose {
  "`SECURITY` features provide metadata necessary to securely resolve fields."
  SECURITY
  "`EXECUTION` features provide metadata necessary for operation execution."
  EXECUTION
}
"#;

/// Adds each of [`CORE_DEFINITIONS`] the supergraph does not define itself, after the schema
/// definition.
fn add_core_definitions(document: &mut ast::Document<'static, String>) {
    let defined: Vec<String> = document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            Definition::DirectiveDefinition(d) => Some(format!("@{}", d.name)),
            Definition::TypeDefinition(t) => Some(type_name(t).to_owned()),
            _ => None,
        })
        .collect();
    let core = ast::parse_schema::<String>(CORE_DEFINITIONS)
        .expect("the core definitions are valid SDL")
        .into_static();
    let missing = core.definitions.into_iter().filter(|definition| {
        let name = match definition {
            Definition::DirectiveDefinition(d) => format!("@{}", d.name),
            Definition::TypeDefinition(t) => type_name(t).to_owned(),
            _ => return false,
        };
        !defined.contains(&name)
    });
    let at = document
        .definitions
        .iter()
        .position(|d| matches!(d, Definition::SchemaDefinition(_)))
        .map_or(0, |i| i + 1);
    let tail = document.definitions.split_off(at);
    document.definitions.extend(missing);
    document.definitions.extend(tail);
}

/// Brings the rendered supergraph up to the join spec (see the module documentation).
/// `scalars` lists, per subgraph name, the custom scalars that subgraph defines.
fn complete(sdl: &str, declared: &[Declared]) -> Result<String, ComposeError> {
    let mut document = ast::parse_schema::<String>(sdl)
        .map_err(|e| ComposeError::Render(format!("the composed supergraph does not parse: {e}")))?
        .into_static();
    add_root_join_types(&mut document);
    let graphs = graph_values(&document);
    for definition in &mut document.definitions {
        match definition {
            Definition::DirectiveDefinition(d)
                if REPEATABLE_JOIN_DIRECTIVES.contains(&d.name.as_str()) =>
            {
                d.repeatable = true;
            }
            Definition::TypeDefinition(TypeDefinition::Scalar(scalar)) => {
                for (subgraph, graph) in &graphs {
                    let defines = declared
                        .iter()
                        .any(|d| d.subgraph == *subgraph && d.scalars.contains(&scalar.name));
                    if defines && !has_join_type(&scalar.directives, graph) {
                        scalar.directives.push(join_type(graph));
                    }
                }
            }
            // An `@interfaceObject` whose keys are all unresolvable is left off the interface, and
            // the planner then cannot reach the interface from that subgraph at all.
            Definition::TypeDefinition(TypeDefinition::Interface(interface)) => {
                for (subgraph, graph) in &graphs {
                    if has_join_type(&interface.directives, graph) {
                        continue;
                    }
                    let Some(d) = declared.iter().find(|d| d.subgraph == *subgraph) else {
                        continue;
                    };
                    for (_, key, resolvable) in d
                        .interface_objects
                        .iter()
                        .filter(|(t, _, _)| *t == interface.name)
                    {
                        let mut directive = join_type(graph);
                        directive
                            .arguments
                            .push(("key".into(), ast::Value::String(key.clone())));
                        if !resolvable {
                            directive
                                .arguments
                                .push(("resolvable".into(), ast::Value::Boolean(false)));
                        }
                        directive
                            .arguments
                            .push(("isInterfaceObject".into(), ast::Value::Boolean(true)));
                        interface.directives.push(directive);
                    }
                }
            }
            _ => {}
        }
    }
    add_core_definitions(&mut document);
    Ok(document.to_string())
}

/// Adds `@join__type(graph: G)` to each root operation type for every graph that has a
/// `@join__field(graph: G)` on it, unless it is already there.
fn add_root_join_types(document: &mut ast::Document<'static, String>) {
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
            if !has_join_type(&object.directives, &graph) {
                object.directives.push(join_type(&graph));
            }
        }
    }
}
