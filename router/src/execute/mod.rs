//! Execution: walk the query plan, send each fetch to its subgraph, merge the answers into one tree.
//!
//! The tree holds every fetched value under the response keys of the subgraph operations, which the
//! planner writes with the client's aliases. A fetch reads what it needs from the tree under a short
//! lock, awaits its subgraph with no lock held, then merges under the lock again; siblings of a
//! Parallel node therefore run concurrently and only ever add to the tree.
//!
//! Entity fetches send one `_entities` request per fetch node with the representations deduplicated,
//! and merge each result into every place it belongs. An entity the subgraph answers `null` for,
//! with no error about it, is unknown there: a bare reference (type and key only) that no other
//! subgraph could resolve by its key becomes `null` (the entity does not exist); any other object
//! stays, and that subgraph's fields come out null. Subgraph errors come back with their paths
//! rewritten to the client's path; a subgraph that cannot be asked yields an error with code
//! `SUBGRAPH_REQUEST_FAILED`.

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

use crate::{
    fetch::{SubgraphClient, SubgraphResponse},
    response::write_json,
    supergraph::Supergraph,
    value::{deep_merge, Bodies, Obj, Val},
};

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

impl Step<'_> {
    /// Equality, checking first whether both keys are the same borrowed string (paths of one fetch
    /// borrow their keys from the same plan node).
    fn same(self, other: Step<'_>) -> bool {
        match (self, other) {
            (Step::Key(a), Step::Key(b)) => std::ptr::eq(a, b) || a == b,
            (Step::Index(a), Step::Index(b)) => a == b,
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
    /// The subgraphs' response bodies, which the tree borrows its strings from.
    bodies: &'a Bodies,
    data: Mutex<Val<'a>>,
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
        bodies: &'a Bodies,
    ) -> Self {
        Execution {
            supergraph,
            client,
            headers,
            variables,
            bodies,
            data: Mutex::new(Val::Object(Obj::default())),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Runs `plan`; returns the merged tree and the errors.
    pub async fn run(self, plan: &QueryPlan) -> (Val<'a>, Vec<Value>) {
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

    /// The request body for a subgraph: `query`, the client variables it uses (`usages`) and
    /// each `(variable, representations)` as a list (representations are JSON text already).
    fn request_body(
        &self,
        query: &str,
        usages: Option<&std::collections::BTreeSet<String>>,
        representations: &[(&str, Vec<Vec<u8>>)],
    ) -> Vec<u8> {
        let size: usize = representations
            .iter()
            .flat_map(|(_, list)| list.iter().map(|r| r.len() + 1))
            .sum();
        let mut body = Vec::with_capacity(query.len() + size + 64);
        body.extend_from_slice(b"{\"query\":");
        write_json(&mut body, query);
        body.extend_from_slice(b",\"variables\":{");
        let mut first = true;
        let mut name = |body: &mut Vec<u8>, name: &str| {
            if !std::mem::take(&mut first) {
                body.push(b',');
            }
            write_json(body, name);
            body.push(b':');
        };
        for usage in usages.into_iter().flatten() {
            if let Some(value) = self.variables.get(usage) {
                name(&mut body, usage);
                write_json(&mut body, value);
            }
        }
        for (variable, list) in representations {
            name(&mut body, variable);
            body.push(b'[');
            for (i, representation) in list.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(representation);
            }
            body.push(b']');
        }
        body.extend_from_slice(b"}}");
        body
    }

    async fn send(&self, service: &str, body: Vec<u8>) -> Option<SubgraphResponse<'a>> {
        let Some(url) = self.supergraph.subgraph_urls.get(service) else {
            self.push_errors([subgraph_failed(service, "has no URL in the supergraph")]);
            return None;
        };
        match self
            .client
            .fetch(service, url, body, self.headers, self.bodies)
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
        let query = fetch.operation.document_str.as_str();
        let usages = fetch.variable_usages.as_ref();
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
            let body = self.request_body(query, usages, &[]);
            let Some(response) = self.send(&fetch.service_name, body).await else {
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
                let last = targets.len() - 1;
                let mut fetched = Some(fetched);
                let paths: Vec<&[Step]> = targets.iter().map(Vec::as_slice).collect();
                visit_paths(&mut tree, &paths, 0, 0, &mut |i, slot| {
                    let value = if i == last {
                        fetched.take()
                    } else {
                        fetched.clone()
                    };
                    if let Some(value) = value {
                        deep_merge(slot, value);
                    }
                });
            }
            return;
        };
        let (targets, representations) =
            self.representations(&[path], requires, fetch.input_rewrites.as_deref());
        if representations.is_empty() {
            return;
        }
        let body = self.request_body(query, usages, &[("representations", representations)]);
        let Some(response) = self.send(&fetch.service_name, body).await else {
            return;
        };
        let entities = response
            .data
            .and_then(|mut d| take_list(&mut d, "_entities"));
        self.merge_entities(
            &fetch.service_name,
            entities,
            response.errors,
            &targets,
            fetch.output_rewrites.as_deref(),
        );
    }

    async fn batch_fetch(&self, batch: &BatchFetchNode) {
        let mut lists = Vec::new();
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
            lists.push((variable, representations));
            by_variable.insert(variable, targets.clone());
            per_alias.push((alias, targets));
        }
        if per_alias.iter().all(|(_, targets)| targets.is_empty()) {
            return;
        }
        let body = self.request_body(
            &batch.operation.document_str,
            batch.variable_usages.as_ref(),
            &lists,
        );
        let Some(mut response) = self.send(&batch.service_name, body).await else {
            return;
        };
        let errors = std::mem::take(&mut response.errors);
        for (alias, targets) in &per_alias {
            let entities = response
                .data
                .as_mut()
                .and_then(|d| take_list(d, &alias.alias));
            let errors = errors
                .iter()
                .filter(|e| e["path"].get(0).and_then(Value::as_str) == Some(alias.alias.as_str()))
                .cloned()
                .collect();
            self.merge_entities(
                &batch.service_name,
                entities,
                errors,
                targets,
                alias.output_rewrites.as_deref(),
            );
        }
        self.push_errors(errors.into_iter().filter(|e| {
            !per_alias
                .iter()
                .any(|(a, _)| e["path"].get(0).and_then(Value::as_str) == Some(a.alias.as_str()))
        }));
    }

    /// The targets at `paths` with the index of their (deduplicated) representation, and the
    /// representations themselves as JSON text. Targets whose representation is empty are left out.
    fn representations<'p>(
        &self,
        paths: &[&'p [FlattenNodePathSegment]],
        requires: &SelectionSet,
        input_rewrites: Option<&[FetchRewrite]>,
    ) -> (Vec<Target<'p>>, Vec<Vec<u8>>) {
        let data = self.data.lock().expect("the data lock is never poisoned");
        let mut targets = Vec::new();
        let mut index_of: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut text = Vec::new();
        for path in paths {
            self.collect_targets(&data, path, &mut Vec::new(), &mut |target, value| {
                let Val::Object(object) = value else { return };
                // Rewrites change a copy; without them the object is read where it is (an
                // entity can hold a large subtree: copying it would cost more than the fetch).
                let rewritten;
                let object = match input_rewrites {
                    None => object,
                    Some(rewrites) => {
                        let mut wrapped = Val::Object(object.clone());
                        self.rewrite(&mut wrapped, rewrites);
                        let Val::Object(object) = wrapped else {
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
                // Most targets repeat a representation (the same beer on many lines): one buffer
                // serves every lookup, and is copied only for a new one.
                text.clear();
                write_json(&mut text, &representation);
                let index = match index_of.get(text.as_slice()) {
                    Some(&index) => index,
                    None => {
                        let index = index_of.len();
                        index_of.insert(text.clone(), index);
                        index
                    }
                };
                targets.push((target, index, reference_only));
            });
        }
        let mut representations = vec![Vec::new(); index_of.len()];
        for (text, index) in index_of {
            representations[index] = text;
        }
        (targets, representations)
    }

    /// The representation of `object` for `requires`: `__typename` plus the required fields. `None`
    /// when nothing but the type name could be projected (no key to look the entity up by).
    fn project(&self, object: &Obj<'a>, requires: &SelectionSet) -> Option<Obj<'a>> {
        let mut out = Obj::default();
        if let Some(typename) = object.get("__typename") {
            out.insert("__typename".into(), typename.clone());
        }
        self.project_into(object, requires, &mut out);
        (out.len() > usize::from(out.contains_key("__typename"))).then_some(out)
    }

    fn project_into(&self, object: &Obj<'a>, selections: &SelectionSet, out: &mut Obj<'a>) {
        let typename = object.get("__typename").and_then(Val::as_str);
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
                    out.insert(key.to_owned().into(), projected);
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    fn project_value(&self, value: &Val<'a>, selections: &SelectionSet) -> Val<'a> {
        match value {
            Val::Object(object) => {
                let mut out = Obj::default();
                if let Some(typename) = object.get("__typename") {
                    out.insert("__typename".into(), typename.clone());
                }
                self.project_into(object, selections, &mut out);
                Val::Object(out)
            }
            Val::List(items) => Val::List(
                items
                    .iter()
                    .map(|v| self.project_value(v, selections))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Merges an `_entities` answer of `service` (`None`: no list came back) into `targets` (index
    /// = representation), relocating the subgraph's errors about it.
    fn merge_entities(
        &self,
        service: &str,
        entities: Option<Vec<Val<'a>>>,
        subgraph_errors: Vec<Value>,
        targets: &[Target],
        output_rewrites: Option<&[FetchRewrite]>,
    ) {
        let Some(mut entities) = entities else {
            self.push_errors(subgraph_errors.into_iter().map(strip_path));
            return;
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
        for error in subgraph_errors {
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
        let paths: Vec<&[Step]> = targets.iter().map(|(path, _, _)| path.as_slice()).collect();
        visit_paths(&mut tree, &paths, 0, 0, &mut |i, slot| {
            let (_, index, reference_only) = &targets[i];
            let Some(entity) = entities.get_mut(*index) else {
                return;
            };
            uses[*index] -= 1;
            if entity.is_null() && !errored.contains(index) {
                // The subgraph does not know this entity. A bare reference (an order line's
                // beer) that no other subgraph could resolve by its key names an entity that does
                // not exist: null for the client too. An object with data of its own, or one that
                // another subgraph holds as its own entity, exists; this subgraph merely has
                // nothing to add, and its fields come out null.
                let missing = *reference_only
                    && !slot
                        .as_object()
                        .is_some_and(|o| self.supergraph.resolvable_elsewhere(o, service));
                if missing {
                    *slot = Val::Null;
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
        });
    }

    /// Visits every object reached by `path` from `value`, with its concrete path.
    fn collect_targets<'v, 'p>(
        &self,
        value: &'v Val<'a>,
        path: &'p [FlattenNodePathSegment],
        current: &mut Path<'p>,
        visit: &mut dyn FnMut(Path<'p>, &'v Val<'a>),
    ) {
        match value {
            Val::Null => {}
            Val::List(items) => {
                // Lists are entered where the path says `@`, and at its end; nested lists share one `@`.
                let rest = match path.first() {
                    Some(FlattenNodePathSegment::List) => &path[1..],
                    _ => path,
                };
                for (i, item) in items.iter().enumerate() {
                    current.push(Step::Index(i));
                    let next = if matches!(item, Val::List(_)) {
                        path
                    } else {
                        rest
                    };
                    self.collect_targets(item, next, current, visit);
                    current.pop();
                }
            }
            Val::Object(object) => match path.first() {
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
                        .and_then(Val::as_str)
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
    fn rewrite(&self, value: &mut Val<'a>, rewrites: &[FetchRewrite]) {
        for rewrite in rewrites {
            match rewrite {
                FetchRewrite::ValueSetter(setter) => {
                    self.rewrite_at(value, &setter.path, &mut |object, key| {
                        let to = Val::String(setter.set_value_to.clone().into());
                        object.insert(key.to_owned().into(), to);
                    })
                }
                FetchRewrite::KeyRenamer(renamer) => {
                    self.rewrite_at(value, &renamer.path, &mut |object, key| {
                        if let Some(v) = object.remove(key) {
                            object.insert(renamer.rename_key_to.clone().into(), v);
                        }
                    })
                }
            }
        }
    }

    fn rewrite_at(
        &self,
        value: &mut Val<'a>,
        path: &[FetchNodePathSegment],
        apply: &mut dyn FnMut(&mut Obj<'a>, &str),
    ) {
        match value {
            Val::List(items) => items
                .iter_mut()
                .for_each(|item| self.rewrite_at(item, path, apply)),
            Val::Object(object) => match path {
                [FetchNodePathSegment::Key(key)] => apply(object, key),
                [FetchNodePathSegment::Key(key), rest @ ..] => {
                    if let Some(child) = object.get_mut(key) {
                        self.rewrite_at(child, rest, apply);
                    }
                }
                [FetchNodePathSegment::TypenameEquals(types), rest @ ..] => {
                    let matches = object
                        .get("__typename")
                        .and_then(Val::as_str)
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

/// Calls `visit(first + i, slot)` for each `paths[i]` (all sharing their first `depth` steps, which
/// led to `value`) that leads to a value, in order. Paths with a common prefix walk it once: the
/// targets of one fetch are many lines of few orders.
fn visit_paths<'a>(
    value: &mut Val<'a>,
    paths: &[&[Step<'_>]],
    first: usize,
    depth: usize,
    visit: &mut dyn FnMut(usize, &mut Val<'a>),
) {
    let mut i = 0;
    while i < paths.len() {
        let Some(&step) = paths[i].get(depth) else {
            visit(first + i, value);
            i += 1;
            continue;
        };
        let end = i
            + 1
            + paths[i + 1..]
                .iter()
                .take_while(|p| p.get(depth).is_some_and(|s| s.same(step)))
                .count();
        let child = match (step, &mut *value) {
            (Step::Key(key), Val::Object(object)) => object.get_mut(key),
            (Step::Index(n), Val::List(items)) => items.get_mut(n),
            _ => None,
        };
        if let Some(child) = child {
            visit_paths(child, &paths[i..end], first + i, depth + 1, visit);
        }
        i = end;
    }
}

/// Takes the list under `key` out of the object `data`; `None` when there is no list there.
fn take_list<'a>(data: &mut Val<'a>, key: &str) -> Option<Vec<Val<'a>>> {
    match data.get_mut(key).map(std::mem::take) {
        Some(Val::List(items)) => Some(items),
        _ => None,
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
