//! A loaded supergraph: everything the pipeline needs that depends only on the schema.
//!
//! Built once per supergraph SDL and swapped atomically when the SDL changes, so a request always sees
//! one consistent set of planner, API schema, subgraph URLs and plan cache.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Arc,
};

use hive_router_query_planner::{
    planner::Planner, state::supergraph_state::SupergraphDefinition,
    utils::parsing::safe_parse_schema,
};

use crate::introspection::Introspection;

/// Why a supergraph could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SupergraphError {
    #[error("the supergraph SDL does not parse: {0}")]
    Parse(String),
    #[error("the supergraph is not a valid federation v2 supergraph: {0}")]
    Invalid(String),
    #[error("the supergraph names no subgraphs (no join__Graph values with @join__graph)")]
    NoSubgraphs,
    #[error("--subgraph-url names {0:?}, which the supergraph does not have (it has: {1})")]
    UnknownOverride(String, String),
}

/// How the API schema declares `@defer` (the planner's API schema does not).
pub const DEFER_DIRECTIVE_SDL: &str =
    "directive @defer(label: String, if: Boolean! = true) on FRAGMENT_SPREAD | INLINE_FRAGMENT";

/// A supergraph ready to serve.
pub struct Supergraph {
    /// The SDL it was loaded from.
    pub sdl: String,
    /// The query planner (and, inside it, the supergraph state and the API schema).
    pub planner: Planner,
    /// Subgraph name → the URL operations are sent to.
    pub subgraph_urls: HashMap<String, String>,
    /// Abstract type → the object types that belong to it.
    possible_types: HashMap<String, BTreeSet<String>>,
    /// What the API schema (the client's schema) contains, for checking subgraph answers.
    api: ApiTypes,
    /// The API schema, indexed to answer introspection.
    pub introspection: Introspection,
    /// The API schema with `@defer` declared: what operations are validated against.
    pub validation_schema: graphql_tools::static_graphql::schema::Document,
    /// How many prepared operations the router caches for this supergraph.
    pub plan_cache_size: u64,
    /// The API schema's types and fields, for the field-merging rule ([`crate::plan::merging`]).
    pub field_types: crate::plan::merging::FieldTypes,
}

impl Supergraph {
    /// The SHA-256 of its SDL, hex: which supergraph is in service (a metrics label).
    pub fn sha256(&self) -> String {
        crate::persisted::sha256_hex(&self.sdl)
    }

    /// Loads `sdl`; `url_overrides` replace `@join__graph(url:)` for the named subgraphs.
    pub fn load(
        sdl: &str,
        url_overrides: &HashMap<String, String>,
        plan_cache_size: u64,
    ) -> Result<Arc<Self>, SupergraphError> {
        let document = safe_parse_schema(sdl).map_err(|e| SupergraphError::Parse(e.to_string()))?;
        // The planner panics (`todo!`) on some shapes it does not support; a bad supergraph must be an
        // error message, not a crash.
        let planner = catch_unwind(AssertUnwindSafe(|| {
            Planner::new_from_supergraph(&document, Default::default())
        }))
        .map_err(|panic| SupergraphError::Invalid(panic_message(panic)))?
        .map_err(|e| SupergraphError::Invalid(e.to_string()))?;
        let mut subgraph_urls = planner.supergraph.subgraph_endpoint_map.clone();
        if subgraph_urls.is_empty() {
            return Err(SupergraphError::NoSubgraphs);
        }
        for (name, url) in url_overrides {
            if !subgraph_urls.contains_key(name) {
                let mut known: Vec<&String> = subgraph_urls.keys().collect();
                known.sort();
                let known = known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(SupergraphError::UnknownOverride(name.clone(), known));
            }
            subgraph_urls.insert(name.clone(), url.clone());
        }
        let mut possible_types: HashMap<String, BTreeSet<String>> = planner
            .supergraph
            .interface_to_object_types
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect();
        for definition in planner.supergraph.definitions.values() {
            if let SupergraphDefinition::Union(union) = definition {
                possible_types
                    .entry(union.name.clone())
                    .or_default()
                    .extend(union.types.iter().cloned());
            }
        }
        let mut validation_schema = (*planner.consumer_schema.document).clone();
        if !validation_schema.definitions.iter().any(|d| {
            matches!(d, graphql_tools::static_graphql::schema::Definition::DirectiveDefinition(d) if d.name == "defer")
        }) {
            let defer = safe_parse_schema(DEFER_DIRECTIVE_SDL)
                .map_err(|e| SupergraphError::Parse(e.to_string()))?;
            validation_schema.definitions.extend(defer.definitions);
        }
        let introspection = Introspection::new(Arc::new(validation_schema.clone()));
        let mut api = ApiTypes::new(&planner.consumer_schema.document);
        api.hiding = possible_types
            .iter()
            .filter(|(abstract_type, members)| {
                members.iter().any(|m| {
                    !api.possible
                        .get(*abstract_type)
                        .is_some_and(|allowed| allowed.contains(m))
                })
            })
            .map(|(abstract_type, _)| abstract_type.clone())
            .collect();
        Ok(Arc::new(Supergraph {
            sdl: sdl.to_owned(),
            planner,
            subgraph_urls,
            possible_types,
            api,
            introspection,
            field_types: crate::plan::merging::FieldTypes::new(&validation_schema),
            validation_schema,
            plan_cache_size,
        }))
    }

    /// Whether an object of runtime type `typename` matches the type condition `condition`.
    pub fn satisfies(&self, typename: &str, condition: &str) -> bool {
        typename == condition
            || self
                .possible_types
                .get(condition)
                .is_some_and(|types| types.contains(typename))
    }

    /// The values of the enum `name` in the API schema (`None`: not an enum there).
    pub fn api_enum_values(&self, name: &str) -> Option<&HashSet<String>> {
        self.api.enums.get(name)
    }

    /// Whether an object of type `typename` may stand where the API schema's abstract type
    /// `abstract_type` is expected (an `@inaccessible` type, or one that is not a member, may not).
    pub fn api_allows(&self, abstract_type: &str, typename: &str) -> bool {
        self.api
            .possible
            .get(abstract_type)
            .is_some_and(|types| types.contains(typename))
    }

    /// Whether the API schema hides some members of the abstract type `name`.
    pub fn hides_members(&self, name: &str) -> bool {
        self.api.hiding.contains(name)
    }

    /// Whether a subgraph other than `asked` can resolve the entity `object` by a key it carries
    /// (`@key` without `resolvable: false`, every top-level field of the key present in `object`).
    /// When one can, `object` is an entity of that subgraph's, not a mere reference.
    pub fn resolvable_elsewhere(&self, object: &crate::value::Obj<'_>, asked: &str) -> bool {
        let Some(typename) = object.get("__typename").and_then(crate::value::Val::as_str) else {
            return false;
        };
        let join_types = match self.planner.supergraph.definitions.get(typename) {
            Some(SupergraphDefinition::Object(o)) => &o.join_type,
            Some(SupergraphDefinition::Interface(i)) => &i.join_type,
            _ => return false,
        };
        let known = &self.planner.supergraph.known_subgraphs;
        join_types.iter().any(|join| {
            join.resolvable
                && known.get(&join.graph_id).is_some_and(|name| name != asked)
                && join
                    .key
                    .as_deref()
                    .is_some_and(|key| top_level_fields(key).all(|f| object.contains_key(f)))
        })
    }

    /// Whether `name` is an interface or union.
    pub fn is_abstract(&self, name: &str) -> bool {
        self.possible_types.contains_key(name)
            || matches!(
                self.planner.supergraph.definitions.get(name),
                Some(SupergraphDefinition::Interface(_) | SupergraphDefinition::Union(_))
            )
    }
}

/// The API schema's enums and abstract types: what a subgraph's answer may contain.
#[derive(Default)]
struct ApiTypes {
    /// Enum → its values.
    enums: HashMap<String, HashSet<String>>,
    /// Interfaces and unions some of whose members the API schema hides (`@inaccessible`): the
    /// router needs each such object's `__typename` to tell whether the client may see it.
    hiding: HashSet<String>,
    /// Interface or union → the object types that belong to it.
    possible: HashMap<String, HashSet<String>>,
}

impl ApiTypes {
    fn new(api: &graphql_tools::static_graphql::schema::Document) -> Self {
        use graphql_tools::static_graphql::schema::{Definition, TypeDefinition};
        let mut types = ApiTypes::default();
        // The planner's API schema drops `@inaccessible` types but may still name them as union
        // members or implementors: only object types it defines count.
        let objects: HashSet<&str> = api
            .definitions
            .iter()
            .filter_map(|d| match d {
                Definition::TypeDefinition(TypeDefinition::Object(o)) => Some(o.name.as_str()),
                _ => None,
            })
            .collect();
        for definition in &api.definitions {
            match definition {
                Definition::TypeDefinition(TypeDefinition::Enum(e)) => {
                    types
                        .enums
                        .entry(e.name.clone())
                        .or_default()
                        .extend(e.values.iter().map(|v| v.name.clone()));
                }
                Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                    for interface in &o.implements_interfaces {
                        types
                            .possible
                            .entry(interface.clone())
                            .or_default()
                            .insert(o.name.clone());
                    }
                }
                Definition::TypeDefinition(TypeDefinition::Union(u)) => {
                    types.possible.entry(u.name.clone()).or_default().extend(
                        u.types
                            .iter()
                            .filter(|t| objects.contains(t.as_str()))
                            .cloned(),
                    );
                }
                _ => {}
            }
        }
        types
    }
}

/// The top-level field names of a field set: `id org { id }` → `id`, `org`.
fn top_level_fields(field_set: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    field_set
        .split(|c: char| c.is_whitespace() || c == ',')
        .flat_map(|word| {
            // Split braces off the names they touch.
            word.split_inclusive(['{', '}'])
                .flat_map(|part| match part.strip_suffix(['{', '}']) {
                    Some(name) => [Some(name), Some(&part[part.len() - 1..])],
                    None => [Some(part), None],
                })
                .flatten()
        })
        .filter(|token| !token.is_empty())
        .filter(move |token| match *token {
            "{" => {
                depth += 1;
                false
            }
            "}" => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
}

/// The text of a caught panic.
pub fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "the query planner panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::top_level_fields;

    #[test]
    fn key_field_sets_name_their_top_level_fields() {
        let fields: Vec<&str> = top_level_fields("id org { id team{ name } } sku").collect();
        assert_eq!(fields, ["id", "org", "sku"]);
        let fields: Vec<&str> = top_level_fields("upc").collect();
        assert_eq!(fields, ["upc"]);
    }
}
