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
//!
//! Takes the plan, the coerced variables and the client's headers; returns the [`Executed`] tree and
//! its errors.

mod budget;
mod errors;
mod representations;
mod rewrites;

use std::{collections::HashMap, future::Future, pin::Pin, sync::Mutex};

use axum::http::{HeaderMap, HeaderValue};
use hive_router_query_planner::planner::plan_nodes::{
    BatchFetchNode, FetchNode, FetchRewrite, FlattenNodePathSegment, PlanNode, QueryPlan,
};
use hive_router_query_planner::state::supergraph_state::OperationKind;
use serde_json::{Map, Value};

pub use self::budget::AnswerBudget;
use self::budget::Share;
pub use self::errors::subgraph_failed;
use self::errors::{at_places, relocate_entity_error, relocate_root, strip_path};
use crate::{
    error::{Code, GraphqlError},
    fetch::{read_answer, SubgraphClient, SubgraphResponse, IDEMPOTENCY_HEADER},
    json::{write_array, write_json},
    path::{Path, Step},
    supergraph::Supergraph,
    value::{deep_merge, Bodies, Obj, Val},
};

/// What executing a plan produced: the merged tree (under the root type) and the errors.
pub struct Executed<'a> {
    pub data: Val<'a>,
    pub errors: Vec<GraphqlError>,
    /// The subgraph answers' bytes, together: about what the answer will take.
    pub fetched_bytes: usize,
    /// The answer bytes the operation holds of the router's budget ([`AnswerBudget`]), given
    /// back when its answer is written.
    pub share: Share<'a>,
}

/// Where an entity goes: its path, the index of its representation, and whether the object there
/// was a bare reference when the representation was taken.
type Target<'p> = (Path<'p>, usize, bool);

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
    errors: Mutex<Vec<GraphqlError>>,
    /// The operation's share of the router's budget of answers held ([`AnswerBudget`]).
    share: Share<'a>,
    /// Mutation fetches sent so far: each one's idempotency key ends with its number.
    mutation_fetches: std::sync::atomic::AtomicU32,
    /// Whether the plan's `Subscription` node was answered already: an event ([`Execution::run_event`]).
    event: bool,
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
            share: Share::new(None),
            mutation_fetches: std::sync::atomic::AtomicU32::new(0),
            event: false,
        }
    }

    /// Holds its answers within `budget` (none: no bound).
    pub fn budgeted(mut self, budget: Option<&'a AnswerBudget>) -> Self {
        self.share = Share::new(budget);
        self
    }

    /// Runs `plan`; returns the merged tree and the errors.
    pub async fn run(self, plan: &QueryPlan) -> Executed<'a> {
        if let Some(node) = &plan.node {
            self.node(node).await;
        }
        Executed {
            share: self.share,
            fetched_bytes: self.bodies.bytes(),
            data: self
                .data
                .into_inner()
                .expect("the data lock is never poisoned"),
            errors: self
                .errors
                .into_inner()
                .expect("the errors lock is never poisoned"),
        }
    }

    /// Runs the rest of a subscription's `plan` for one event: `event` is what the subgraph sent
    /// for the plan's `Subscription` node (`primary`), merged at the root first.
    pub async fn run_event(
        mut self,
        plan: &QueryPlan,
        primary: &FetchNode,
        event: SubgraphResponse<'a>,
    ) -> Executed<'a> {
        self.event = true;
        let mut data = event.data;
        if let (Some(data), Some(rewrites)) = (&mut data, &primary.output_rewrites) {
            self.rewrite(data, rewrites);
        }
        self.push_errors(event.errors);
        if let Some(data) = data {
            deep_merge(
                &mut self.data.lock().expect("the data lock is never poisoned"),
                data,
            );
        }
        self.run(plan).await
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
                // An event's: merged before the plan ran.
                PlanNode::Subscription(_) if self.event => {}
                PlanNode::Subscription(_) | PlanNode::Defer(_) => self.unsupported(kind(node)),
            }
        })
    }

    fn unsupported(&self, what: &str) {
        tracing::error!(what, "query plan node not supported");
        self.push_errors([GraphqlError::new(
            Code::InternalServerError,
            format!("this router cannot execute {what}"),
        )]);
    }

    fn push_errors(&self, errors: impl IntoIterator<Item = GraphqlError>) {
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
            write_array(&mut body, list);
        }
        body.extend_from_slice(b"}}");
        body
    }

    /// Sends `body` to `service`; `shareable` (a query) lets it share an identical request in flight.
    /// A failure is reported at `places`, the paths of the fields the request was to fetch.
    async fn send<'p>(
        &self,
        service: &str,
        body: Vec<u8>,
        shareable: bool,
        places: impl FnOnce() -> Vec<Path<'p>>,
    ) -> Option<SubgraphResponse<'a>> {
        let Some(url) = self.supergraph.subgraph_urls.get(service) else {
            self.push_errors(at_places(
                subgraph_failed(service, "has no URL in the supergraph"),
                &places(),
            ));
            return None;
        };
        // A mutation fetch's idempotency key: the request's, and the fetch's number in the
        // operation (the same plan numbers them the same way when the client sends it again).
        let numbered;
        let headers = match self.headers.get(IDEMPOTENCY_HEADER) {
            Some(key) if !shareable => {
                let n = self
                    .mutation_fetches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut headers = self.headers.clone();
                let key = format!("{}/{n}", key.to_str().unwrap_or(""));
                match HeaderValue::from_str(&key) {
                    Ok(value) => headers.insert(IDEMPOTENCY_HEADER, value),
                    Err(_) => headers.remove(IDEMPOTENCY_HEADER),
                };
                numbered = headers;
                &numbered
            }
            _ => self.headers,
        };
        let answer = self
            .client
            .request(service, url, body, headers, shareable)
            .await;
        if let Ok((_, body)) = &answer {
            self.share.hold(body.len()).await;
        }
        match answer.and_then(|answer| read_answer(answer, self.bodies)) {
            Ok(response) => Some(response),
            Err(reason) => {
                tracing::warn!(service, %reason, "subgraph request failed");
                self.push_errors(at_places(subgraph_failed(service, &reason), &places()));
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
            let shareable = shareable(fetch.operation_kind.as_ref(), query);
            // The fields it fetches: the operation's top-level fields at each target.
            let places = || {
                let keys: Vec<&str> = root_keys(fetch);
                targets
                    .iter()
                    .flat_map(|target| {
                        keys.iter().map(move |key| {
                            let mut place = target.clone();
                            place.push(Step::Key(key));
                            place
                        })
                    })
                    .collect()
            };
            let Some(response) = self
                .send(&fetch.service_name, body, shareable, places)
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
        let shareable = shareable(fetch.operation_kind.as_ref(), query);
        let places = || entity_places(&targets);
        let Some(response) = self
            .send(&fetch.service_name, body, shareable, places)
            .await
        else {
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
        let shareable = shareable(batch.operation_kind.as_ref(), &batch.operation.document_str);
        let places = || {
            let all: Vec<Target> = by_variable.values().flatten().cloned().collect();
            entity_places(&all)
        };
        let Some(mut response) = self
            .send(&batch.service_name, body, shareable, places)
            .await
        else {
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
                .filter(|e| e.path_root() == Some(alias.alias.as_str()))
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
                .any(|(a, _)| e.path_root() == Some(a.alias.as_str()))
        }));
    }

    /// Merges an `_entities` answer of `service` (`None`: no list came back) into `targets` (index
    /// = representation), relocating the subgraph's errors about it.
    fn merge_entities(
        &self,
        service: &str,
        entities: Option<Vec<Val<'a>>>,
        subgraph_errors: Vec<GraphqlError>,
        targets: &[Target],
        output_rewrites: Option<&[FetchRewrite]>,
    ) {
        let Some(mut entities) = entities else {
            self.push_errors(subgraph_errors.into_iter().map(strip_path));
            return;
        };
        let expected = targets.iter().map(|(_, i, _)| i + 1).max().unwrap_or(0);
        if entities.len() != expected {
            self.push_errors([GraphqlError::new(
                Code::SubgraphRequestFailed,
                format!(
                    "subgraph answered {} entities for {expected} representations",
                    entities.len()
                ),
            )]);
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

/// Whether a fetch may share an identical request in flight: queries only (entity fetches are
/// queries), never a mutation or subscription. A fetch of unknown kind counts as a query only when its
/// document says so.
fn shareable(kind: Option<&OperationKind>, document: &str) -> bool {
    match kind {
        Some(OperationKind::Query) => true,
        Some(OperationKind::Mutation | OperationKind::Subscription) => false,
        None => {
            let document = document.trim_start();
            document.starts_with('{') || document.starts_with("query")
        }
    }
}

/// The response keys of a fetch's top-level fields (what a root fetch places at each target).
fn root_keys(fetch: &FetchNode) -> Vec<&str> {
    use hive_router_query_planner::ast::selection_item::SelectionItem;
    fetch
        .operation
        .document
        .operation
        .selection_set
        .items
        .iter()
        .filter_map(|item| match item {
            SelectionItem::Field(field) => Some(field.selection_identifier()),
            _ => None,
        })
        .filter(|key| *key != "__typename")
        .collect()
}

/// The distinct positions of the entities an entity fetch was to resolve.
fn entity_places<'p>(targets: &[Target<'p>]) -> Vec<Path<'p>> {
    let mut places: Vec<Path<'p>> = Vec::new();
    for (path, _, _) in targets {
        if !places.contains(path) {
            places.push(path.clone());
        }
    }
    places
}
