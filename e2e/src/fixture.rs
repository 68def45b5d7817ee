//! Fixture subgraphs for the conformance scenarios: a subgraph defined by its SDL and a JSON file of
//! data, served over real HTTP, answering whatever operation a router sends it.
//!
//! It is a small GraphQL executor over the data, not a schema-first server: operations are parsed but
//! not validated (the router's own validation is what is under test, and the subgraph SDL is what the
//! supergraph is composed from). What it does know from the SDL: each field's type (for
//! `__typename`), which types implement which interfaces or belong to which unions (for fragments),
//! and each entity type's `@key`s (for `_entities`).
//!
//! The data file (`<subgraph>.json`):
//! - `"Query"`, `"Mutation"`: the root objects.
//! - `"entities"`: per type name, the objects `_entities` finds by any of the type's keys (a
//!   representation matches when each key field it carries equals the stored one, nested keys by
//!   subset). An object elsewhere in the data that lacks a field but carries a key of a stored entity
//!   gets that field from the stored entity.
//! - A field's stored value may be `{"$args": [{"when": {...}, "value": ...}]}` (the first entry whose
//!   `when` equals the field's arguments), `{"$error": "message"}` (null plus an error at its path), or,
//!   in an entity, `{"$from": ["path", "in", "representation"]}`: when the field is asked for, the
//!   value the router sent in the representation (what `@requires` fields compute from). A
//!   representation without that value is an error, so a router that forgets a required field fails
//!   the scenario.
//! - Values are answered as stored, whatever the SDL says: an enum value or `__typename` the
//!   client's schema lacks, a scalar of the wrong kind, or a scalar where the SDL has an object or a
//!   list (for the router's output coercion).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use axum::{extract::State, routing::post, Json};
use graphql_tools::parser::query::{
    self as q, Definition, OperationDefinition, Selection, SelectionSet,
};
use serde_json::{json, Map, Value};

/// What the SDL says, as far as execution needs it.
#[derive(Debug, Default)]
struct Schema {
    /// (type, field) → the field's named type.
    field_types: HashMap<(String, String), String>,
    /// Abstract type → the types that implement or belong to it.
    possible: HashMap<String, HashSet<String>>,
    /// Entity type → its keys, each as the top-level field names of its field set.
    keys: HashMap<String, Vec<Vec<String>>>,
}

impl Schema {
    fn parse(sdl: &str) -> Schema {
        use cynic_parser::type_system::{Definition as D, TypeDefinition as T};
        let document = cynic_parser::parse_type_system_document(sdl)
            .unwrap_or_else(|e| panic!("fixture SDL does not parse: {e}"));
        let mut schema = Schema::default();
        for definition in document.definitions() {
            let (D::Type(ty) | D::TypeExtension(ty)) = definition else {
                continue;
            };
            let (name, fields, interfaces, directives): (_, Vec<_>, Vec<&str>, Vec<_>) = match ty {
                T::Object(o) => (
                    o.name(),
                    o.fields().collect(),
                    o.implements_interfaces().collect(),
                    o.directives().collect(),
                ),
                T::Interface(i) => (
                    i.name(),
                    i.fields().collect(),
                    i.implements_interfaces().collect(),
                    i.directives().collect(),
                ),
                T::Union(u) => {
                    for member in u.members() {
                        schema
                            .possible
                            .entry(u.name().to_owned())
                            .or_default()
                            .insert(member.name().to_owned());
                    }
                    continue;
                }
                _ => continue,
            };
            for field in fields {
                schema.field_types.insert(
                    (name.to_owned(), field.name().to_owned()),
                    field.ty().name().to_owned(),
                );
            }
            for interface in interfaces {
                schema
                    .possible
                    .entry(interface.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
            for directive in directives.iter().filter(|d| d.name() == "key") {
                let fields = directive
                    .arguments()
                    .find(|a| a.name() == "fields")
                    .and_then(|a| a.value().as_str().map(str::to_owned));
                if let Some(fields) = fields {
                    schema
                        .keys
                        .entry(name.to_owned())
                        .or_default()
                        .push(top_level_fields(&fields));
                }
            }
        }
        schema
    }

    fn satisfies(&self, typename: &str, condition: &str) -> bool {
        typename == condition
            || self
                .possible
                .get(condition)
                .is_some_and(|types| types.contains(typename))
    }
}

/// The top-level field names of a field set: `"id org { id }"` → `["id", "org"]`.
fn top_level_fields(fields: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    for token in fields
        .replace('{', " { ")
        .replace('}', " } ")
        .split_whitespace()
    {
        match token {
            "{" => depth += 1,
            "}" => depth -= 1,
            name if depth == 0 => names.push(name.to_owned()),
            _ => {}
        }
    }
    names
}

/// A fixture subgraph: schema, data, and the log of requests it received.
pub struct Fixture {
    schema: Schema,
    data: Value,
    /// Every request body received, in order.
    pub requests: Mutex<Vec<Value>>,
}

impl Fixture {
    pub fn new(sdl: &str, data: Value) -> Arc<Fixture> {
        Arc::new(Fixture {
            schema: Schema::parse(sdl),
            data,
            requests: Mutex::new(Vec::new()),
        })
    }

    /// The axum routes: `POST /graphql`.
    pub fn routes(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/graphql", post(serve))
            .with_state(self)
    }

    /// Executes one GraphQL request body.
    pub fn execute(&self, body: &Value) -> Value {
        self.requests
            .lock()
            .expect("the log lock is never poisoned")
            .push(body.clone());
        let query = body["query"].as_str().unwrap_or_default();
        let variables = body["variables"].as_object().cloned().unwrap_or_default();
        let document = match q::parse_query::<String>(query).map(|d| d.into_static()) {
            Ok(document) => document,
            Err(e) => return json!({ "errors": [{ "message": format!("parse error: {e}") }] }),
        };
        let mut fragments = HashMap::new();
        let mut operation = None;
        for definition in &document.definitions {
            match definition {
                Definition::Fragment(f) => {
                    fragments.insert(f.name.clone(), f);
                }
                Definition::Operation(o) => {
                    let name = match o {
                        OperationDefinition::Query(q) => q.name.as_deref(),
                        OperationDefinition::Mutation(m) => m.name.as_deref(),
                        _ => None,
                    };
                    let wanted = body["operationName"].as_str();
                    if operation.is_none() || (wanted.is_some() && wanted == name) {
                        operation = Some(o);
                    }
                }
            }
        }
        let (root, selections) = match operation {
            Some(OperationDefinition::Query(q)) => ("Query", &q.selection_set),
            Some(OperationDefinition::SelectionSet(s)) => ("Query", s),
            Some(OperationDefinition::Mutation(m)) => ("Mutation", &m.selection_set),
            _ => {
                return json!({ "errors": [{ "message": "no query or mutation in the document" }] })
            }
        };
        let mut run = Run {
            fixture: self,
            variables: &variables,
            fragments: &fragments,
            errors: Vec::new(),
            representation: None,
        };
        let root_value = self.data.get(root).cloned().unwrap_or_else(|| json!({}));
        let data = run.object(&root_value, root, selections, &mut Vec::new(), None);
        let mut response = json!({ "data": data });
        if !run.errors.is_empty() {
            response["errors"] = Value::Array(run.errors);
        }
        response
    }

    /// The stored entity a representation names, with `$from` values taken from it.
    fn entity(&self, representation: &Value) -> Result<Value, String> {
        let typename = representation["__typename"]
            .as_str()
            .ok_or("a representation without __typename")?;
        let mut candidates = vec![typename.to_owned()];
        if let Some(types) = self.schema.possible.get(typename) {
            candidates.extend(types.iter().cloned());
        }
        for candidate in &candidates {
            let keys = self.schema.keys.get(candidate);
            let Some(stored) = self.data["entities"][candidate.as_str()].as_array() else {
                continue;
            };
            for entity in stored {
                let matches = keys.is_some_and(|keys| {
                    keys.iter().any(|key| {
                        key.iter().all(|field| {
                            representation
                                .get(field)
                                .is_some_and(|want| subset(want, &entity[field.as_str()]))
                        })
                    })
                });
                if matches {
                    let mut entity = entity.clone();
                    if entity.get("__typename").is_none() {
                        entity["__typename"] = json!(candidate);
                    }
                    return Ok(entity);
                }
            }
        }
        Ok(Value::Null)
    }
}

async fn serve(State(fixture): State<Arc<Fixture>>, Json(body): Json<Value>) -> Json<Value> {
    Json(fixture.execute(&body))
}

/// Whether `want` is contained in `have` (objects by their keys, everything else equal).
fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        _ => want == have,
    }
}

/// The value at `path` (a `$from` list) in `representation`.
fn from_representation(path: &[Value], representation: &Value) -> Result<Value, String> {
    let mut current = representation;
    for step in path {
        let step = step.as_str().unwrap_or_default();
        current = current.get(step).ok_or_else(|| {
            format!("the representation lacks required field {path:?}: {representation}")
        })?;
    }
    Ok(current.clone())
}

/// One execution.
struct Run<'a> {
    fixture: &'a Fixture,
    variables: &'a Map<String, Value>,
    fragments: &'a HashMap<String, &'a q::FragmentDefinition<'static, String>>,
    errors: Vec<Value>,
    /// The representation of the entity being resolved, for `$from` values.
    representation: Option<Value>,
}

impl<'a> Run<'a> {
    fn input(&self, value: &q::Value<'static, String>) -> Value {
        match value {
            q::Value::Variable(name) => self.variables.get(name).cloned().unwrap_or(Value::Null),
            q::Value::Int(n) => json!(n.as_i64()),
            q::Value::Float(f) => json!(f),
            q::Value::String(s) => json!(s),
            q::Value::Boolean(b) => json!(b),
            q::Value::Null => Value::Null,
            q::Value::Enum(e) => json!(e),
            q::Value::List(items) => items.iter().map(|v| self.input(v)).collect(),
            q::Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.input(v)))
                    .collect(),
            ),
        }
    }

    fn included(&self, directives: &[q::Directive<'static, String>]) -> bool {
        directives.iter().all(|d| {
            let condition = d
                .arguments
                .iter()
                .find(|(name, _)| name == "if")
                .map(|(_, v)| self.input(v) == json!(true));
            match d.name.as_str() {
                "skip" => condition != Some(true),
                "include" => condition == Some(true),
                _ => true,
            }
        })
    }

    /// The fields of `selections` for an object of type `typename`, grouped by response key.
    fn collect<'s>(
        &self,
        selections: &'s SelectionSet<'static, String>,
        typename: &str,
        out: &mut Vec<(String, Vec<&'s q::Field<'static, String>>)>,
    ) where
        'a: 's,
    {
        for selection in &selections.items {
            match selection {
                Selection::Field(field) => {
                    if !self.included(&field.directives) {
                        continue;
                    }
                    let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, fields)) => fields.push(field),
                        None => out.push((key, vec![field])),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let applies = match &fragment.type_condition {
                        None => true,
                        Some(q::TypeCondition::On(c)) => self.fixture.schema.satisfies(typename, c),
                    };
                    if applies && self.included(&fragment.directives) {
                        self.collect(&fragment.selection_set, typename, out);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.fragments.get(&spread.fragment_name) {
                        let q::TypeCondition::On(c) = &fragment.type_condition;
                        if self.fixture.schema.satisfies(typename, c)
                            && self.included(&spread.directives)
                        {
                            self.collect(&fragment.selection_set, typename, out);
                        }
                    }
                }
            }
        }
    }

    /// Executes `selections` on `object` of declared type `declared`.
    fn object(
        &mut self,
        object: &Value,
        declared: &str,
        selections: &SelectionSet<'static, String>,
        path: &mut Vec<Value>,
        extra: Option<&[&q::Field<'static, String>]>,
    ) -> Value {
        let typename = object["__typename"].as_str().unwrap_or(declared).to_owned();
        let mut groups = Vec::new();
        self.collect(selections, &typename, &mut groups);
        if let Some(extra) = extra {
            for field in extra {
                self.collect(&field.selection_set, &typename, &mut groups);
            }
        }
        let mut out = Map::new();
        for (key, fields) in groups {
            let field = fields[0];
            path.push(json!(key));
            let value = self.field(object, &typename, field, &fields[1..], path);
            path.pop();
            out.insert(key, value);
        }
        Value::Object(out)
    }

    fn field(
        &mut self,
        object: &Value,
        typename: &str,
        field: &q::Field<'static, String>,
        more: &[&q::Field<'static, String>],
        path: &mut Vec<Value>,
    ) -> Value {
        if field.name == "__typename" {
            return json!(typename);
        }
        let arguments: Map<String, Value> = field
            .arguments
            .iter()
            .map(|(k, v)| (k.clone(), self.input(v)))
            .collect();
        if field.name == "_entities" {
            let representations = arguments["representations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut entities = Vec::new();
            for (i, representation) in representations.iter().enumerate() {
                path.push(json!(i));
                let value = match self.fixture.entity(representation) {
                    Ok(Value::Null) => Value::Null,
                    Ok(entity) => {
                        let declared = entity["__typename"].as_str().unwrap_or("").to_owned();
                        self.representation = Some(representation.clone());
                        let value =
                            self.object(&entity, &declared, &field.selection_set, path, Some(more));
                        self.representation = None;
                        value
                    }
                    Err(message) => {
                        self.errors
                            .push(json!({ "message": message, "path": path.clone() }));
                        Value::Null
                    }
                };
                path.pop();
                entities.push(value);
            }
            return Value::Array(entities);
        }
        let mut value = match object.get(&field.name) {
            Some(value) => value.clone(),
            // An entity reached inside another object carries its key only: the rest of its
            // fields come from the stored entity, as a real subgraph would resolve them.
            None => {
                let mut reference = object.clone();
                reference["__typename"] = json!(typename);
                self.fixture
                    .entity(&reference)
                    .ok()
                    .and_then(|entity| entity.get(&field.name).cloned())
                    .unwrap_or(Value::Null)
            }
        };
        if let Some(Value::Array(cases)) = value.get("$args").cloned() {
            value = cases
                .iter()
                .find(|case| {
                    case["when"]
                        .as_object()
                        .is_some_and(|when| when.iter().all(|(k, v)| arguments.get(k) == Some(v)))
                })
                .map(|case| case["value"].clone())
                .unwrap_or(Value::Null);
        }
        if let Some(Value::Array(from)) = value.get("$from").cloned() {
            let representation = self.representation.clone().unwrap_or(Value::Null);
            match from_representation(&from, &representation) {
                Ok(v) => value = v,
                Err(message) => {
                    self.errors
                        .push(json!({ "message": message, "path": path.clone() }));
                    return Value::Null;
                }
            }
        }
        if let Some(message) = value.get("$error").and_then(Value::as_str) {
            self.errors
                .push(json!({ "message": message, "path": path.clone() }));
            return Value::Null;
        }
        let declared = self
            .fixture
            .schema
            .field_types
            .get(&(typename.to_owned(), field.name.clone()))
            .cloned()
            .unwrap_or_default();
        self.complete(&value, &declared, field, more, path)
    }

    fn complete(
        &mut self,
        value: &Value,
        declared: &str,
        field: &q::Field<'static, String>,
        more: &[&q::Field<'static, String>],
        path: &mut Vec<Value>,
    ) -> Value {
        if field.selection_set.items.is_empty() {
            return value.clone();
        }
        match value {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.push(json!(i));
                        let v = self.complete(item, declared, field, more, path);
                        path.pop();
                        v
                    })
                    .collect(),
            ),
            Value::Object(_) => {
                self.object(value, declared, &field.selection_set, path, Some(more))
            }
            // A scalar where the SDL has an object or a list: a misbehaving subgraph, answered as
            // stored so that the router's output coercion is what is tested.
            _ => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_field_sets_yield_their_top_level_fields() {
        assert_eq!(top_level_fields("id"), ["id"]);
        assert_eq!(top_level_fields("id org { id name }"), ["id", "org"]);
        assert_eq!(top_level_fields("a{b{c}} d"), ["a", "d"]);
    }
}
