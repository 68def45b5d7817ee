//! Execution: walk the query plan, send each fetch to its subgraph, merge the answers into one tree.
//!
//! The tree holds every fetched value under the response keys of the subgraph operations, which the
//! planner writes with the client's aliases. A fetch reads what it needs from the tree under a short
//! lock, awaits its subgraph with no lock held, then merges under the lock again; siblings of a
//! Parallel node therefore run concurrently and only ever add to the tree.
//!
//! Entity fetches send one `_entities` request per fetch node with the representations deduplicated,
//! and merge each result into every place it belongs. An entity the subgraph answers `null` for,
//! with no error about it, does not exist there: it becomes `null` in the tree (and stays null). Subgraph errors come back with their paths rewritten to the client's
//! path; a subgraph that cannot be asked yields an error with code `SUBGRAPH_REQUEST_FAILED`.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Mutex};

use axum::http::HeaderMap;
use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::{
        BatchFetchNode, FetchNode, FetchNodePathSegment, FetchRewrite, FlattenNodePathSegment,
        PlanNode, QueryPlan,
    },
};
use serde_json::{json, Map, Value};

use crate::{fetch::SubgraphClient, supergraph::Supergraph};

/// One step of a path into the response tree, borrowed while executing or shaping; turned into
/// JSON only for an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step<'p> {
    /// A response key, borrowed from the plan or the operation.
    Key(&'p str),
    Index(usize),
}

impl Step<'_> {
    /// Whether this step is the JSON path element `value`.
    pub fn matches(self, value: &Value) -> bool {
        match (self, value) {
            (Step::Key(key), Value::String(s)) => key == s,
            (Step::Index(i), Value::Number(n)) => n.as_u64() == Some(i as u64),
            _ => false,
        }
    }
}

type Path<'p> = Vec<Step<'p>>;

/// Where an entity goes: its path, the index of its representation, and whether the object there
/// was a bare reference when the representation was taken.
type Target<'p> = (Path<'p>, usize, bool);

/// A path as JSON, for an error's `path`.
pub fn path_json(path: &[Step<'_>]) -> Vec<Value> {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => Value::String((*k).to_owned()),
            Step::Index(i) => Value::from(*i),
        })
        .collect()
}

/// What one operation's execution shares.
pub struct Execution<'a> {
    pub supergraph: &'a Supergraph,
    pub client: &'a SubgraphClient,
    pub headers: &'a HeaderMap,
    /// The client's variables, coerced, defaults applied.
    pub variables: &'a Map<String, Value>,
    data: Mutex<Value>,
    errors: Mutex<Vec<Value>>,
}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

impl<'a> Execution<'a> {
    /// A new execution with an empty tree.
    pub fn new(
        supergraph: &'a Supergraph,
        client: &'a SubgraphClient,
        headers: &'a HeaderMap,
        variables: &'a Map<String, Value>,
    ) -> Self {
        Execution {
            supergraph,
            client,
            headers,
            variables,
            data: Mutex::new(Value::Object(Map::new())),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Runs `plan`; returns the merged tree and the errors.
    pub async fn run(self, plan: &QueryPlan) -> (Value, Vec<Value>) {
        if let Some(node) = &plan.node {
            self.node(node).await;
        }
        (
            self.data
                .into_inner()
                .expect("the data lock is never poisoned"),
            self.errors
                .into_inner()
                .expect("the errors lock is never poisoned"),
        )
    }

    fn node<'n>(&'n self, node: &'n PlanNode) -> BoxFuture<'n> {
        Box::pin(async move {
            match node {
                PlanNode::Sequence(sequence) => {
                    for child in &sequence.nodes {
                        self.node(child).await;
                    }
                }
                PlanNode::Parallel(parallel) => {
                    futures_util::future::join_all(parallel.nodes.iter().map(|n| self.node(n)))
                        .await;
                }
                PlanNode::Fetch(fetch) => self.fetch(fetch, &[]).await,
                PlanNode::Flatten(flatten) => match flatten.node.as_ref() {
                    PlanNode::Fetch(fetch) => self.fetch(fetch, flatten.path.as_slice()).await,
                    other => self.unsupported(&format!("a Flatten over {}", kind(other))),
                },
                PlanNode::BatchFetch(batch) => self.batch_fetch(batch).await,
                PlanNode::Condition(condition) => {
                    let value = self.variables.get(&condition.condition);
                    let branch = if value == Some(&Value::Bool(true)) {
                        &condition.if_clause
                    } else {
                        &condition.else_clause
                    };
                    if let Some(branch) = branch {
                        self.node(branch).await;
                    }
                }
                PlanNode::Subscription(_) | PlanNode::Defer(_) => self.unsupported(kind(node)),
            }
        })
    }

    fn unsupported(&self, what: &str) {
        tracing::error!(what, "query plan node not supported");
        self.push_errors([json!({
            "message": format!("this router cannot execute {what}"),
            "extensions": { "code": "INTERNAL_SERVER_ERROR" },
        })]);
    }

    fn push_errors(&self, errors: impl IntoIterator<Item = Value>) {
        self.errors
            .lock()
            .expect("the errors lock is never poisoned")
            .extend(errors);
    }

    /// The client variables an operation uses.
    fn variables_for(
        &self,
        usages: Option<&std::collections::BTreeSet<String>>,
    ) -> Map<String, Value> {
        usages
            .into_iter()
            .flatten()
            .filter_map(|name| self.variables.get(name).map(|v| (name.clone(), v.clone())))
            .collect()
    }

    async fn send(
        &self,
        service: &str,
        query: &str,
        variables: Map<String, Value>,
    ) -> Option<crate::fetch::SubgraphResponse> {
        let Some(url) = self.supergraph.subgraph_urls.get(service) else {
            self.push_errors([subgraph_failed(service, "has no URL in the supergraph")]);
            return None;
        };
        match self
            .client
            .fetch(service, url, query, variables, self.headers)
            .await
        {
            Ok(response) => Some(response),
            Err(reason) => {
                tracing::warn!(service, %reason, "subgraph request failed");
                self.push_errors([subgraph_failed(service, &reason)]);
                None
            }
        }
    }

    /// A fetch at `path` (empty: the root). With `requires` it is an entity fetch; without, its data
    /// is merged into every object at `path`.
    async fn fetch(&self, fetch: &FetchNode, path: &[FlattenNodePathSegment]) {
        let mut variables = self.variables_for(fetch.variable_usages.as_ref());
        let Some(requires) = &fetch.requires else {
            let targets = if path.is_empty() {
                vec![Vec::new()]
            } else {
                let data = self.data.lock().expect("the data lock is never poisoned");
                let mut targets = Vec::new();
                self.collect_targets(&data, path, &mut Vec::new(), &mut |p, _| targets.push(p));
                targets
            };
            if targets.is_empty() {
                return;
            }
            let Some(response) = self
                .send(
                    &fetch.service_name,
                    &fetch.operation.document_str,
                    variables,
                )
                .await
            else {
                return;
            };
            let mut data = response.data;
            if let (Some(data), Some(rewrites)) = (&mut data, &fetch.output_rewrites) {
                self.rewrite(data, rewrites);
            }
            self.push_errors(
                response
                    .errors
                    .into_iter()
                    .flat_map(|e| relocate_root(e, &targets)),
            );
            if let Some(fetched) = data {
                let mut tree = self.data.lock().expect("the data lock is never poisoned");
                for target in &targets {
                    if let Some(slot) = get_mut(&mut tree, target) {
                        deep_merge(slot, fetched.clone());
                    }
                }
            }
            return;
        };
        let (targets, representations) =
            self.representations(&[path], requires, fetch.input_rewrites.as_deref());
        if representations.is_empty() {
            return;
        }
        variables.insert("representations".into(), Value::Array(representations));
        let Some(response) = self
            .send(
                &fetch.service_name,
                &fetch.operation.document_str,
                variables,
            )
            .await
        else {
            return;
        };
        self.merge_entities(
            "_entities",
            response,
            &targets,
            fetch.output_rewrites.as_deref(),
        );
    }

    async fn batch_fetch(&self, batch: &BatchFetchNode) {
        let mut variables = self.variables_for(batch.variable_usages.as_ref());
        let mut per_alias = Vec::new();
        let mut by_variable: HashMap<&str, Vec<Target>> = HashMap::new();
        for alias in &batch.entity_batch.aliases {
            let variable = alias.representations_variable_name.as_str();
            if let Some(targets) = by_variable.get(variable) {
                per_alias.push((alias, targets.clone()));
                continue;
            }
            let paths: Vec<&[FlattenNodePathSegment]> =
                alias.merge_paths.iter().map(|p| p.as_slice()).collect();
            let (targets, representations) =
                self.representations(&paths, &alias.requires, alias.input_rewrites.as_deref());
            variables.insert(variable.to_owned(), Value::Array(representations));
            by_variable.insert(variable, targets.clone());
            per_alias.push((alias, targets));
        }
        if per_alias.iter().all(|(_, targets)| targets.is_empty()) {
            return;
        }
        let Some(mut response) = self
            .send(
                &batch.service_name,
                &batch.operation.document_str,
                variables,
            )
            .await
        else {
            return;
        };
        let errors = std::mem::take(&mut response.errors);
        for (alias, targets) in &per_alias {
            let part = crate::fetch::SubgraphResponse {
                data: response.data.as_ref().map(
                    |d| json!({ "_entities": d.get(&alias.alias).cloned().unwrap_or(Value::Null) }),
                ),
                errors: errors
                    .iter()
                    .filter(|e| {
                        e["path"].get(0).and_then(Value::as_str) == Some(alias.alias.as_str())
                    })
                    .cloned()
                    .collect(),
            };
            self.merge_entities("_entities", part, targets, alias.output_rewrites.as_deref());
        }
        self.push_errors(errors.into_iter().filter(|e| {
            !per_alias
                .iter()
                .any(|(a, _)| e["path"].get(0).and_then(Value::as_str) == Some(a.alias.as_str()))
        }));
    }

    /// The targets at `paths` with the index of their (deduplicated) representation, and the
    /// representations themselves. Targets whose representation is empty are left out.
    fn representations<'p>(
        &self,
        paths: &[&'p [FlattenNodePathSegment]],
        requires: &SelectionSet,
        input_rewrites: Option<&[FetchRewrite]>,
    ) -> (Vec<Target<'p>>, Vec<Value>) {
        let data = self.data.lock().expect("the data lock is never poisoned");
        let mut targets = Vec::new();
        let mut representations: Vec<Value> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for path in paths {
            self.collect_targets(&data, path, &mut Vec::new(), &mut |target, value| {
                let Value::Object(object) = value else { return };
                // Rewrites change a copy; without them the object is read where it is (an
                // entity can hold a large subtree: copying it would cost more than the fetch).
                let rewritten;
                let object = match input_rewrites {
                    None => object,
                    Some(rewrites) => {
                        let mut wrapped = Value::Object(object.clone());
                        self.rewrite(&mut wrapped, rewrites);
                        let Value::Object(object) = wrapped else {
                            return;
                        };
                        rewritten = object;
                        &rewritten
                    }
                };
                let Some(representation) = self.project(object, requires) else {
                    return;
                };
                // Whether the object is nothing but a reference (its type and what the
                // representation carries): a null answer then means the entity does not exist.
                let reference_only = object
                    .keys()
                    .all(|k| k == "__typename" || representation.contains_key(k));
                let key = serde_json::to_string(&representation).expect("JSON values serialize");
                let index = *index_of.entry(key).or_insert_with(|| {
                    representations.push(Value::Object(representation));
                    representations.len() - 1
                });
                targets.push((target, index, reference_only));
            });
        }
        (targets, representations)
    }

    /// The representation of `object` for `requires`: `__typename` plus the required fields. `None`
    /// when nothing but the type name could be projected (no key to look the entity up by).
    fn project(
        &self,
        object: &Map<String, Value>,
        requires: &SelectionSet,
    ) -> Option<Map<String, Value>> {
        let mut out = Map::new();
        if let Some(typename) = object.get("__typename") {
            out.insert("__typename".into(), typename.clone());
        }
        self.project_into(object, requires, &mut out);
        (out.len() > usize::from(out.contains_key("__typename"))).then_some(out)
    }

    fn project_into(
        &self,
        object: &Map<String, Value>,
        selections: &SelectionSet,
        out: &mut Map<String, Value>,
    ) {
        let typename = object.get("__typename").and_then(Value::as_str);
        for item in &selections.items {
            match item {
                SelectionItem::InlineFragment(fragment) => {
                    let matches = typename.is_none_or(|t| {
                        self.supergraph.satisfies(t, &fragment.type_condition)
                            || self.supergraph.satisfies(&fragment.type_condition, t)
                    });
                    if matches {
                        self.project_into(object, &fragment.selections, out);
                    }
                }
                SelectionItem::Field(field) => {
                    if field.name == "__typename" {
                        continue;
                    }
                    // After the planner's internal aliasing, `name` is the key in our tree and the
                    // alias is the key the subgraph expects.
                    let key = field.selection_identifier();
                    let Some(value) = object.get(&field.name).or_else(|| object.get(key)) else {
                        continue;
                    };
                    let projected = if field.selections.items.is_empty() {
                        value.clone()
                    } else {
                        self.project_value(value, &field.selections)
                    };
                    out.insert(key.to_owned(), projected);
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    fn project_value(&self, value: &Value, selections: &SelectionSet) -> Value {
        match value {
            Value::Object(object) => {
                let mut out = Map::new();
                if let Some(typename) = object.get("__typename") {
                    out.insert("__typename".into(), typename.clone());
                }
                self.project_into(object, selections, &mut out);
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.project_value(v, selections))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Merges an `_entities` answer into `targets` (index = representation), relocating errors.
    fn merge_entities(
        &self,
        root_key: &str,
        response: crate::fetch::SubgraphResponse,
        targets: &[Target],
        output_rewrites: Option<&[FetchRewrite]>,
    ) {
        let Some(mut data) = response.data else {
            self.push_errors(response.errors.into_iter().map(strip_path));
            return;
        };
        let mut entities = match data.get_mut(root_key).map(std::mem::take) {
            Some(Value::Array(entities)) => entities,
            _ => {
                self.push_errors(response.errors.into_iter().map(strip_path));
                return;
            }
        };
        let expected = targets.iter().map(|(_, i, _)| i + 1).max().unwrap_or(0);
        if entities.len() != expected {
            self.push_errors([json!({
                "message": format!(
                    "subgraph answered {} entities for {expected} representations",
                    entities.len()
                ),
                "extensions": { "code": "SUBGRAPH_REQUEST_FAILED" },
            })]);
        }
        let nulls: Vec<usize> = entities
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_null())
            .map(|(i, _)| i)
            .collect();
        let mut errors = Vec::new();
        let mut errored = std::collections::HashSet::new();
        for error in response.errors {
            let (relocated, index) = relocate_entity_error(error, targets, entities.len(), &nulls);
            errored.extend(index);
            errors.extend(relocated);
        }
        self.push_errors(errors);
        if let Some(rewrites) = output_rewrites {
            for entity in &mut entities {
                self.rewrite(entity, rewrites);
            }
        }
        // How many targets still want each entity: the last one takes it instead of a copy.
        let mut uses = vec![0usize; entities.len()];
        for (_, index, _) in targets {
            if let Some(n) = uses.get_mut(*index) {
                *n += 1;
            }
        }
        let mut tree = self.data.lock().expect("the data lock is never poisoned");
        for (path, index, reference_only) in targets {
            let Some(entity) = entities.get_mut(*index) else {
                continue;
            };
            uses[*index] -= 1;
            if let Some(slot) = get_mut(&mut tree, path) {
                if entity.is_null() && !errored.contains(index) {
                    // The subgraph does not know this entity. A bare reference (an order line's
                    // beer) names an entity that does not exist: null for the client too. An object
                    // with data of its own exists; this subgraph merely has nothing to add.
                    if *reference_only {
                        *slot = Value::Null;
                    }
                } else {
                    // A null explained by an error merges nothing: the fields this subgraph was to
                    // provide come out null (the error says why); other subgraphs' fields stay.
                    let entity = if uses[*index] == 0 {
                        std::mem::take(entity)
                    } else {
                        entity.clone()
                    };
                    deep_merge(slot, entity);
                }
            }
        }
    }

    /// Visits every object reached by `path` from `value`, with its concrete path.
    fn collect_targets<'v, 'p>(
        &self,
        value: &'v Value,
        path: &'p [FlattenNodePathSegment],
        current: &mut Path<'p>,
        visit: &mut dyn FnMut(Path<'p>, &'v Value),
    ) {
        match value {
            Value::Null => {}
            Value::Array(items) => {
                // Lists are entered where the path says `@`, and at its end; nested lists share one `@`.
                let rest = match path.first() {
                    Some(FlattenNodePathSegment::List) => &path[1..],
                    _ => path,
                };
                for (i, item) in items.iter().enumerate() {
                    current.push(Step::Index(i));
                    let next = if item.is_array() { path } else { rest };
                    self.collect_targets(item, next, current, visit);
                    current.pop();
                }
            }
            Value::Object(object) => match path.first() {
                None => visit(current.clone(), value),
                Some(FlattenNodePathSegment::Field(key)) => {
                    if let Some(child) = object.get(key) {
                        current.push(Step::Key(key.as_str()));
                        self.collect_targets(child, &path[1..], current, visit);
                        current.pop();
                    }
                }
                Some(FlattenNodePathSegment::TypeCondition(types)) => {
                    let matches = object
                        .get("__typename")
                        .and_then(Value::as_str)
                        .is_none_or(|t| types.iter().any(|c| self.supergraph.satisfies(t, c)));
                    if matches {
                        self.collect_targets(value, &path[1..], current, visit);
                    }
                }
                Some(FlattenNodePathSegment::List) => {}
            },
            _ => {}
        }
    }

    /// Applies input (`ValueSetter`) and output (`KeyRenamer`) rewrites to `value`.
    fn rewrite(&self, value: &mut Value, rewrites: &[FetchRewrite]) {
        for rewrite in rewrites {
            match rewrite {
                FetchRewrite::ValueSetter(setter) => {
                    self.rewrite_at(value, &setter.path, &mut |object, key| {
                        object.insert(key.to_owned(), Value::String(setter.set_value_to.clone()));
                    })
                }
                FetchRewrite::KeyRenamer(renamer) => {
                    self.rewrite_at(value, &renamer.path, &mut |object, key| {
                        if let Some(v) = object.remove(key) {
                            object.insert(renamer.rename_key_to.clone(), v);
                        }
                    })
                }
            }
        }
    }

    fn rewrite_at(
        &self,
        value: &mut Value,
        path: &[FetchNodePathSegment],
        apply: &mut dyn FnMut(&mut Map<String, Value>, &str),
    ) {
        match value {
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| self.rewrite_at(item, path, apply)),
            Value::Object(object) => match path {
                [FetchNodePathSegment::Key(key)] => apply(object, key),
                [FetchNodePathSegment::Key(key), rest @ ..] => {
                    if let Some(child) = object.get_mut(key) {
                        self.rewrite_at(child, rest, apply);
                    }
                }
                [FetchNodePathSegment::TypenameEquals(types), rest @ ..] => {
                    let matches = object
                        .get("__typename")
                        .and_then(Value::as_str)
                        .is_none_or(|t| types.iter().any(|c| self.supergraph.satisfies(t, c)));
                    if matches {
                        self.rewrite_at(value, rest, apply);
                    }
                }
                [] => {}
            },
            _ => {}
        }
    }
}

fn kind(node: &PlanNode) -> &'static str {
    match node {
        PlanNode::Fetch(_) => "Fetch",
        PlanNode::BatchFetch(_) => "BatchFetch",
        PlanNode::Sequence(_) => "Sequence",
        PlanNode::Parallel(_) => "Parallel",
        PlanNode::Flatten(_) => "Flatten",
        PlanNode::Condition(_) => "Condition",
        PlanNode::Subscription(_) => "subscriptions",
        PlanNode::Defer(_) => "@defer",
    }
}

/// The error for a subgraph that could not be asked or answered garbage.
pub fn subgraph_failed(service: &str, reason: &str) -> Value {
    json!({
        "message": format!("request to subgraph \"{service}\" failed: {reason}"),
        "extensions": { "code": "SUBGRAPH_REQUEST_FAILED", "service": service },
    })
}

fn get_mut<'v>(value: &'v mut Value, path: &[Step<'_>]) -> Option<&'v mut Value> {
    let mut current = value;
    for step in path {
        current = match (step, current) {
            (Step::Key(k), Value::Object(o)) => o.get_mut(*k)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Merges `source` into `target`: objects key by key, lists element by element; a null source
/// changes nothing, nor does anything merged into a null target; anything else replaces.
pub fn deep_merge(target: &mut Value, source: Value) {
    match (target, source) {
        (_, Value::Null) => {}
        // An entity found not to exist stays null, whichever sibling fetch merges first.
        (Value::Null, _) => {}
        (Value::Object(target), Value::Object(source)) => {
            for (key, value) in source {
                match target.get_mut(&key) {
                    Some(slot) => deep_merge(slot, value),
                    None => {
                        target.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(source)) => {
            for (i, value) in source.into_iter().enumerate() {
                match target.get_mut(i) {
                    Some(slot) => deep_merge(slot, value),
                    None => target.push(value),
                }
            }
        }
        (target, source) => *target = source,
    }
}

/// A root-level error keeps its path, prefixed with each target's path (root re-entry fetches).
fn relocate_root(error: Value, targets: &[Path]) -> Vec<Value> {
    match targets {
        [only] if only.is_empty() => vec![error],
        _ => targets
            .iter()
            .map(|target| prefix_path(error.clone(), target, 0))
            .collect(),
    }
}

/// `["_entities", i, rest..]` becomes `target + rest` for every target of representation `i`.
///
/// Some subgraph servers (async-graphql among them) leave the index out: `["_entities", rest..]`.
/// The entity is then found when it is unambiguous: a single representation, or a single entity that
/// came back null (a field error nulls its entity).
fn relocate_entity_error(
    error: Value,
    targets: &[Target],
    sent: usize,
    nulls: &[usize],
) -> (Vec<Value>, Option<usize>) {
    let path = error["path"].as_array().cloned().unwrap_or_default();
    let (index, skip) = match path.get(1).map(|v| v.as_u64()) {
        Some(Some(index)) => (Some(index as usize), 2),
        Some(None) if sent == 1 => (Some(0), 1),
        Some(None) if nulls.len() == 1 => (Some(nulls[0]), 1),
        _ => (None, 0),
    };
    let matching: Vec<&Path> = match index {
        Some(index) => targets
            .iter()
            .filter(|(_, i, _)| *i == index)
            .map(|(p, _, _)| p)
            .collect(),
        None => Vec::new(),
    };
    if matching.is_empty() {
        (vec![strip_path(error)], index)
    } else {
        let relocated = matching
            .into_iter()
            .map(|target| prefix_path(error.clone(), target, skip))
            .collect();
        (relocated, index)
    }
}

fn prefix_path(mut error: Value, prefix: &[Step], skip: usize) -> Value {
    let rest: Vec<Value> = error["path"]
        .as_array()
        .map(|p| p.iter().skip(skip).cloned().collect())
        .unwrap_or_default();
    let mut path = path_json(prefix);
    path.extend(rest);
    if let Value::Object(object) = &mut error {
        object.insert("path".into(), Value::Array(path));
    }
    error
}

fn strip_path(mut error: Value) -> Value {
    if let Value::Object(object) = &mut error {
        object.remove("path");
    }
    error
}
