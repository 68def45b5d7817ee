//! A loaded supergraph: everything the pipeline needs that depends only on the schema.
//!
//! Built once per supergraph SDL and swapped atomically when the SDL changes, so a request always sees
//! one consistent set of planner, API schema, subgraph URLs and plan cache.

use std::{
    collections::{BTreeSet, HashMap},
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Arc,
};

use hive_router_query_planner::{
    planner::Planner, state::supergraph_state::SupergraphDefinition,
    utils::parsing::safe_parse_schema,
};

use crate::{introspection, plan::PlanCache};

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
    #[error("cannot build the API schema for introspection: {0}")]
    Introspection(String),
}

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
    /// The API schema as an executable async-graphql schema, answering introspection.
    pub introspection: async_graphql::dynamic::Schema,
    /// Prepared operations of this supergraph (plans are only valid for the schema they were made for).
    pub plans: PlanCache,
}

impl Supergraph {
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
        let introspection = introspection::schema(&planner.consumer_schema.document)
            .map_err(SupergraphError::Introspection)?;
        Ok(Arc::new(Supergraph {
            sdl: sdl.to_owned(),
            planner,
            subgraph_urls,
            possible_types,
            introspection,
            plans: PlanCache::new(plan_cache_size),
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

    /// Whether `name` is an interface or union.
    pub fn is_abstract(&self, name: &str) -> bool {
        self.possible_types.contains_key(name)
            || matches!(
                self.planner.supergraph.definitions.get(name),
                Some(SupergraphDefinition::Interface(_) | SupergraphDefinition::Union(_))
            )
    }
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
