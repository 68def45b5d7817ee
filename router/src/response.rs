//! Shaping: from the merged tree to exactly the client's selection.
//!
//! Walks the normalized operation against the supergraph's types: only fields the client selected
//! come out (keys, `__typename` and `@requires` inputs fetched for the plan stay behind), under the
//! client's aliases, in the client's order, with `@skip`/`@include` applied. Nulls propagate as the
//! GraphQL spec says: a null in a non-null position nulls its nearest nullable parent.

use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    state::supergraph_state::{SupergraphDefinition, TypeNode},
};
use serde_json::{json, Map, Value};

use crate::supergraph::Supergraph;

/// Shapes `data` (the tree under the root type `root`) to `selections`. Returns the shaped root
/// (`None` when a null propagated all the way up) and an error for every null in a non-null
/// position that `known_errors` (the fetch errors) do not already explain.
pub fn shape(
    supergraph: &Supergraph,
    variables: &Map<String, Value>,
    data: &Value,
    selections: &SelectionSet,
    root: &str,
    known_errors: &[Value],
) -> (Option<Map<String, Value>>, Vec<Value>) {
    let mut shaper = Shaper {
        supergraph,
        variables,
        // An error without a path (a subgraph that could not be asked) explains every null.
        explain_all: known_errors.iter().any(|e| e.get("path").is_none()),
        explained: known_errors
            .iter()
            .filter_map(|e| e.get("path").and_then(Value::as_array).cloned())
            .collect(),
        errors: Vec::new(),
    };
    let empty = Map::new();
    let object = data.as_object().unwrap_or(&empty);
    let shaped = shaper.object(object, selections, root, &mut Vec::new());
    (shaped, shaper.errors)
}

/// One step of a response path, borrowed while shaping; turned into JSON only for an error.
#[derive(Debug, Clone, Copy)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

impl Segment<'_> {
    fn matches(self, value: &Value) -> bool {
        match (self, value) {
            (Segment::Key(key), Value::String(s)) => key == s,
            (Segment::Index(i), Value::Number(n)) => n.as_u64() == Some(i as u64),
            _ => false,
        }
    }

    fn to_json(self) -> Value {
        match self {
            Segment::Key(key) => Value::String(key.to_owned()),
            Segment::Index(i) => Value::from(i),
        }
    }
}

fn path_json(path: &[Segment<'_>]) -> Vec<Value> {
    path.iter().map(|s| s.to_json()).collect()
}

struct Shaper<'a> {
    supergraph: &'a Supergraph,
    variables: &'a Map<String, Value>,
    /// Whether an error without a path explains every missing value.
    explain_all: bool,
    /// Paths errors point at: a null at or above one of them is explained.
    explained: Vec<Vec<Value>>,
    errors: Vec<Value>,
}

impl<'a> Shaper<'a> {
    fn object<'p>(
        &mut self,
        data: &'p Map<String, Value>,
        selections: &'p SelectionSet,
        declared: &'p str,
        path: &mut Vec<Segment<'p>>,
    ) -> Option<Map<String, Value>>
    where
        'a: 'p,
    {
        let runtime = data
            .get("__typename")
            .and_then(Value::as_str)
            .unwrap_or(declared);
        let mut out = Map::with_capacity(selections.items.len());
        self.collect(data, selections, runtime, declared, path, &mut out)?;
        Some(out)
    }

    /// Adds the fields of `selections` (declared on `declared`) to `out`; `None` when a non-null
    /// field is null, so the enclosing object must become null.
    fn collect<'p>(
        &mut self,
        data: &'p Map<String, Value>,
        selections: &'p SelectionSet,
        runtime: &'p str,
        declared: &'p str,
        path: &mut Vec<Segment<'p>>,
        out: &mut Map<String, Value>,
    ) -> Option<()>
    where
        'a: 'p,
    {
        let supergraph: &'a Supergraph = self.supergraph;
        let fields = supergraph
            .planner
            .supergraph
            .definitions
            .get(declared)
            .map(|d| d.fields());
        for item in &selections.items {
            match item {
                SelectionItem::Field(field) => {
                    if field.omit_from_response
                        || !self.included(field.skip_if.as_deref(), field.include_if.as_deref())
                    {
                        continue;
                    }
                    let key = field.selection_identifier();
                    if field.name == "__typename" {
                        out.entry(key.to_owned())
                            .or_insert_with(|| Value::String(runtime.to_owned()));
                        continue;
                    }
                    let value = data.get(key).unwrap_or(&Value::Null);
                    let ty = fields
                        .and_then(|fields| fields.get(&field.name))
                        .map(|f| &f.field_type);
                    path.push(Segment::Key(key));
                    let completed = match ty {
                        Some(ty) => self.complete(ty, value, &field.selections, path),
                        None => Some(value.clone()),
                    };
                    path.pop();
                    let completed = completed?;
                    match out.get_mut(key) {
                        Some(existing) => merge_shaped(existing, completed),
                        None => {
                            out.insert(key.to_owned(), completed);
                        }
                    }
                }
                SelectionItem::InlineFragment(fragment) => {
                    if !self.included(fragment.skip_if.as_deref(), fragment.include_if.as_deref()) {
                        continue;
                    }
                    let condition = fragment.type_condition.as_str();
                    if condition == declared || self.supergraph.satisfies(runtime, condition) {
                        self.collect(data, &fragment.selections, runtime, condition, path, out)?;
                    }
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
        Some(())
    }

    /// The value of a field of type `ty`; `None` when it is null in a non-null position.
    fn complete<'p>(
        &mut self,
        ty: &'p TypeNode,
        value: &'p Value,
        selections: &'p SelectionSet,
        path: &mut Vec<Segment<'p>>,
    ) -> Option<Value>
    where
        'a: 'p,
    {
        match ty {
            TypeNode::NonNull(inner) => {
                let completed = self.complete(inner, value, selections, path)?;
                if completed.is_null() {
                    let explained = self.explain_all
                        || self.explained.iter().any(|p| {
                            p.len() >= path.len() && path.iter().zip(p).all(|(s, v)| s.matches(v))
                        });
                    if !explained {
                        let path = path_json(path);
                        self.errors.push(json!({
                            "message": "cannot return null for a non-nullable field",
                            "path": path.clone(),
                            "extensions": { "code": "INTERNAL_SERVER_ERROR" },
                        }));
                        self.explained.push(path);
                    }
                    None
                } else {
                    Some(completed)
                }
            }
            TypeNode::List(inner) => match value {
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        path.push(Segment::Index(i));
                        let completed = self.complete(inner, item, selections, path);
                        path.pop();
                        match completed {
                            Some(v) => out.push(v),
                            None => return Some(Value::Null),
                        }
                    }
                    Some(Value::Array(out))
                }
                _ => Some(Value::Null),
            },
            TypeNode::Named(name) => {
                let composite = matches!(
                    self.supergraph.planner.supergraph.definitions.get(name),
                    Some(
                        SupergraphDefinition::Object(_)
                            | SupergraphDefinition::Interface(_)
                            | SupergraphDefinition::Union(_)
                    )
                );
                if !composite {
                    return Some(value.clone());
                }
                match value {
                    Value::Object(object) => Some(
                        self.object(object, selections, name, path)
                            .map_or(Value::Null, Value::Object),
                    ),
                    _ => Some(Value::Null),
                }
            }
        }
    }

    /// `@skip(if: $a)` / `@include(if: $b)` with the request's variables.
    fn included(&self, skip_if: Option<&str>, include_if: Option<&str>) -> bool {
        let truthy = |name: &str| self.variables.get(name) == Some(&Value::Bool(true));
        !skip_if.is_some_and(truthy) && include_if.is_none_or(truthy)
    }
}

/// Merges a second shaped selection of the same response key into the first: objects key by key
/// (keys of the first keep their position), lists element by element, a null from either side wins.
fn merge_shaped(existing: &mut Value, more: Value) {
    match (existing, more) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match a.get_mut(&key) {
                    Some(slot) => merge_shaped(slot, value),
                    None => {
                        a.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (slot, value) in a.iter_mut().zip(b) {
                merge_shaped(slot, value);
            }
        }
        (existing, Value::Null) => *existing = Value::Null,
        _ => {}
    }
}
