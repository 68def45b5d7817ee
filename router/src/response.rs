//! Shaping: from the merged tree to exactly the client's selection, written straight out as JSON.
//! Takes the [`Executed`] tree and the normalized operation; returns a [`Shaped`] response.
//!
//! Walks the normalized operation against the supergraph's types: only fields the client selected
//! come out (keys, `__typename` and `@requires` inputs fetched for the plan stay behind), under the
//! client's aliases, in the client's order, with `@skip`/`@include` applied. Fields selected more than
//! once under one response key are merged as the spec's CollectFields says. Nulls propagate as the
//! GraphQL spec says: a null in a non-null position nulls its nearest nullable parent. Values are
//! completed against the API schema as a single server would: a value it cannot hold (an unknown
//! or `@inaccessible` enum value, an object of a type that is not possible there, a scalar of the
//! wrong kind) becomes `null` with a field error.
//!
//! The answer is serialized while it is walked, with no second tree in between: a nullable position
//! remembers where its output starts, and when a non-null field below it turns out null, the output
//! is cut back there and `null` written instead. (Profiles showed the shaped copy of large answers
//! costing a fifth of the router's time and a third of its memory under load.)

use std::{collections::HashSet, rc::Rc};

use hive_router_query_planner::{
    ast::{
        operation::OperationDefinition,
        selection_item::SelectionItem,
        selection_set::{FieldSelection, SelectionSet},
    },
    state::supergraph_state::{SupergraphDefinition, TypeNode},
};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::{
    body::Shaped,
    error::{Code, GraphqlError},
    execute::Executed,
    json::{json_text, write_str},
    path::{path_json, Step},
    supergraph::Supergraph,
    value::{Obj, Val},
};

/// Shapes the executed tree (under the root type `root`) to the client's `operation`. The errors
/// are the execution's, then one for every null in a non-null position that they do not already
/// explain and every value the API schema cannot hold.
pub fn shape(
    supergraph: &Supergraph,
    variables: &Map<String, Value>,
    executed: Executed<'_>,
    operation: &OperationDefinition,
    root: &str,
) -> Shaped {
    // The operation's share of the answers held is given back when the answer is written, at
    // the end of this function.
    let Executed {
        data,
        mut errors,
        fetched_bytes,
        share: _share,
    } = executed;
    let mut shaper = Shaper {
        supergraph,
        variables,
        // An error without a path (a subgraph that could not be asked) explains every null.
        explain_all: errors.iter().any(|e| e.path.is_none()),
        explained: errors.iter().filter_map(|e| e.path.clone()).collect(),
        errors: Vec::new(),
        groups: FxHashMap::default(),
    };
    let empty = Obj::default();
    let object = data.as_object().unwrap_or(&empty);
    let shaped = shaper.root(object, &operation.selection_set, root, fetched_bytes);
    errors.append(&mut shaper.errors);
    Shaped {
        data: shaped,
        errors,
    }
}

/// A null reached a non-null position: the enclosing nullable value must become null.
struct Propagate;

/// What a field's named type is, as far as completing a value goes.
#[derive(Clone, Copy)]
enum Kind<'p> {
    /// An object type, or (`is_abstract`) an interface or union: values have selections.
    Composite { is_abstract: bool },
    /// An enum, with the values the API schema gives it.
    Enum(&'p str, &'p HashSet<String>),
    /// A built-in scalar (`Int`, `Float`, `String`, `Boolean`, `ID`).
    BuiltIn(Scalar),
    /// A custom scalar: the subgraph that owns it is trusted with its values.
    Custom,
}

/// The built-in scalars, told apart once per collected field rather than per value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Int,
    Float,
    String,
    Boolean,
    Id,
}

impl Scalar {
    fn named(name: &str) -> Option<Scalar> {
        Some(match name {
            "Int" => Scalar::Int,
            "Float" => Scalar::Float,
            "String" => Scalar::String,
            "Boolean" => Scalar::Boolean,
            "ID" => Scalar::Id,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scalar::Int => "Int",
            Scalar::Float => "Float",
            Scalar::String => "String",
            Scalar::Boolean => "Boolean",
            Scalar::Id => "ID",
        }
    }
}

/// The fields of one response key, as CollectFields groups them.
struct Group<'p> {
    key: &'p str,
    /// `"key":` as JSON text, written before every value of this key.
    key_json: Box<[u8]>,
    field: &'p FieldSelection,
    /// The field's type, looked up once per collected group (`None`: not in the supergraph).
    ty: Option<&'p TypeNode>,
    /// What its named type is, for completing its values.
    kind: Kind<'p>,
    /// Every selection set under this key, merged when the value is completed.
    selections: Vec<&'p SelectionSet>,
}

struct Shaper<'a, 'p> {
    supergraph: &'a Supergraph,
    variables: &'a Map<String, Value>,
    /// Whether an error without a path explains every missing value.
    explain_all: bool,
    /// Paths errors point at: a null at or above one of them is explained.
    explained: Vec<Vec<Value>>,
    errors: Vec<GraphqlError>,
    /// Collected fields per (selection set, runtime type): a list of 400 orders collects once.
    groups: FxHashMap<(*const SelectionSet, &'p str), Rc<[Group<'p>]>>,
}

impl<'a: 'p, 'p> Shaper<'a, 'p> {
    fn root(
        &mut self,
        data: &'p Obj<'p>,
        selections: &'p SelectionSet,
        root: &'p str,
        fetched_bytes: usize,
    ) -> Option<Vec<(String, Vec<u8>)>> {
        let groups = self.collect(&[selections], root, root);
        let mut path = Vec::new();
        let mut fields = Vec::with_capacity(groups.len());
        // The answer is about as large as what was fetched (keys and types fetched for the plan
        // only are left out; the client's aliases come in): sized once, grown rarely.
        let capacity = fetched_bytes / groups.len().max(1);
        for group in groups.iter() {
            let mut out = Vec::with_capacity(capacity);
            self.field(&mut out, data, group, root, &mut path, 0).ok()?;
            fields.push((group.key.to_owned(), out));
        }
        Some(fields)
    }

    /// The fields of `selections` for an object of type `runtime`, grouped by response key.
    fn collect(
        &mut self,
        selections: &[&'p SelectionSet],
        runtime: &'p str,
        declared: &'p str,
    ) -> Rc<[Group<'p>]> {
        let cache_key = match selections {
            [one] => Some((*one as *const SelectionSet, runtime)),
            _ => None,
        };
        if let Some(groups) = cache_key.and_then(|key| self.groups.get(&key)) {
            return groups.clone();
        }
        let mut groups = Vec::new();
        for set in selections {
            self.collect_into(set, runtime, declared, &mut groups);
        }
        let groups: Rc<[Group<'p>]> = groups.into();
        if let Some(key) = cache_key {
            self.groups.insert(key, groups.clone());
        }
        groups
    }

    fn collect_into(
        &self,
        selections: &'p SelectionSet,
        runtime: &'p str,
        declared: &'p str,
        groups: &mut Vec<Group<'p>>,
    ) {
        for item in &selections.items {
            match item {
                SelectionItem::Field(field) => {
                    if field.omit_from_response
                        || !self.included(field.skip_if.as_deref(), field.include_if.as_deref())
                    {
                        continue;
                    }
                    let key = field.selection_identifier();
                    match groups.iter_mut().find(|g| g.key == key) {
                        Some(group) => group.selections.push(&field.selections),
                        None => {
                            // Looked up on the type it was selected on: the fragment's condition,
                            // or the parent type.
                            let supergraph: &'a Supergraph = self.supergraph;
                            let ty = supergraph
                                .planner
                                .supergraph
                                .definitions
                                .get(declared)
                                .and_then(|d| d.fields().get(&field.name))
                                .map(|f| &f.field_type);
                            let kind = ty.map_or(Kind::Custom, |ty| {
                                let name = ty.inner_type();
                                match supergraph.planner.supergraph.definitions.get(name) {
                                    Some(SupergraphDefinition::Object(_)) => {
                                        Kind::Composite { is_abstract: false }
                                    }
                                    Some(
                                        SupergraphDefinition::Interface(_)
                                        | SupergraphDefinition::Union(_),
                                    ) => Kind::Composite { is_abstract: true },
                                    Some(SupergraphDefinition::Enum(_)) => supergraph
                                        .api_enum_values(name)
                                        .map_or(Kind::Custom, |values| Kind::Enum(name, values)),
                                    _ => Scalar::named(name).map_or(Kind::Custom, Kind::BuiltIn),
                                }
                            });
                            let mut key_json = Vec::with_capacity(key.len() + 3);
                            write_str(&mut key_json, key);
                            key_json.push(b':');
                            groups.push(Group {
                                key,
                                key_json: key_json.into(),
                                field,
                                ty,
                                kind,
                                selections: vec![&field.selections],
                            });
                        }
                    }
                }
                SelectionItem::InlineFragment(fragment) => {
                    if !self.included(fragment.skip_if.as_deref(), fragment.include_if.as_deref()) {
                        continue;
                    }
                    let condition = fragment.type_condition.as_str();
                    if condition == declared || self.supergraph.satisfies(runtime, condition) {
                        self.collect_into(&fragment.selections, runtime, condition, groups);
                    }
                }
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    /// Writes the object `data` of declared type `declared` and runtime type `runtime` with
    /// `selections`.
    fn object(
        &mut self,
        out: &mut Vec<u8>,
        data: &'p Obj<'p>,
        selections: &[&'p SelectionSet],
        declared: &'p str,
        runtime: &'p str,
        path: &mut Vec<Step<'p>>,
    ) -> Result<(), Propagate> {
        let groups = self.collect(selections, runtime, declared);
        out.push(b'{');
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&group.key_json);
            self.field(out, data, group, runtime, path, i)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// Writes the value of one response key of `data`, the `nth` of its selection (where the
    /// key usually is: subgraphs answer in the order they are asked).
    fn field(
        &mut self,
        out: &mut Vec<u8>,
        data: &'p Obj<'p>,
        group: &Group<'p>,
        runtime: &'p str,
        path: &mut Vec<Step<'p>>,
        nth: usize,
    ) -> Result<(), Propagate> {
        if group.field.name == "__typename" {
            write_str(out, runtime);
            return Ok(());
        }
        let value = data.get_near(group.key, nth).unwrap_or(&Val::Null);
        path.push(Step::Key(group.key));
        let written = match group.ty {
            Some(ty) => self.value(out, ty, group.kind, value, &group.selections, path),
            None => {
                value.write_to(out);
                Ok(value.is_null())
            }
        };
        path.pop();
        written.map(|_| ())
    }

    /// Writes a value of type `ty`. `Ok(true)` when it wrote `null`; `Err` when a null landed in a
    /// non-null position (nothing useful was written: the caller cuts it away).
    fn value(
        &mut self,
        out: &mut Vec<u8>,
        ty: &'p TypeNode,
        kind: Kind<'p>,
        value: &'p Val<'p>,
        selections: &[&'p SelectionSet],
        path: &mut Vec<Step<'p>>,
    ) -> Result<bool, Propagate> {
        match ty {
            TypeNode::NonNull(inner) => {
                if !self.value(out, inner, kind, value, selections, path)? {
                    return Ok(false);
                }
                // An error explains a null at its own path, above it (the null propagated up)
                // and below it (a fetch that failed there left what is under it empty).
                let explained = self.explain_all
                    || self
                        .explained
                        .iter()
                        .any(|p| path.iter().zip(p).all(|(s, v)| s.matches(v)));
                if !explained {
                    self.error(
                        path,
                        "cannot return null for a non-nullable field".to_owned(),
                    );
                }
                Err(Propagate)
            }
            TypeNode::List(inner) => {
                let Val::List(items) = value else {
                    if !value.is_null() {
                        let found = json_text(value);
                        self.error(
                            path,
                            format!("Expected a list for type \"{ty}\", found {found}"),
                        );
                    }
                    out.extend_from_slice(b"null");
                    return Ok(true);
                };
                let start = out.len();
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    path.push(Step::Index(i));
                    let written = self.value(out, inner, kind, item, selections, path);
                    path.pop();
                    if written.is_err() {
                        out.truncate(start);
                        out.extend_from_slice(b"null");
                        return Ok(true);
                    }
                }
                out.push(b']');
                Ok(false)
            }
            TypeNode::Named(name) => {
                let Kind::Composite { is_abstract } = kind else {
                    return Ok(self.leaf(out, kind, value, path));
                };
                let Val::Object(object) = value else {
                    if !value.is_null() {
                        let found = json_text(value);
                        self.error(
                            path,
                            format!("Expected an object for type \"{name}\", found {found}"),
                        );
                    }
                    out.extend_from_slice(b"null");
                    return Ok(true);
                };
                // A single server's object is always of a type the client's schema has: an object
                // type's own, or a member of the abstract type (never an `@inaccessible` one).
                let runtime = match object.get("__typename").and_then(Val::as_str) {
                    Some(typename) if is_abstract => {
                        if !self.supergraph.api_allows(name, typename) {
                            self.error(
                                path,
                                format!("Runtime object type \"{typename}\" is not a possible type for \"{name}\""),
                            );
                            out.extend_from_slice(b"null");
                            return Ok(true);
                        }
                        typename
                    }
                    _ => name.as_str(),
                };
                let start = out.len();
                match self.object(out, object, selections, name, runtime, path) {
                    Ok(()) => Ok(false),
                    Err(Propagate) => {
                        out.truncate(start);
                        out.extend_from_slice(b"null");
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Writes a leaf value (enum or scalar) as the API schema allows it; `true` when it wrote
    /// `null` (a value the type cannot represent becomes `null` with an error).
    fn leaf(
        &mut self,
        out: &mut Vec<u8>,
        kind: Kind<'p>,
        value: &Val<'_>,
        path: &[Step<'_>],
    ) -> bool {
        let valid = match (kind, value) {
            (_, Val::Null) => {
                out.extend_from_slice(b"null");
                return true;
            }
            (Kind::Enum(_, values), Val::String(v)) => values.contains(v.as_ref()),
            (Kind::Enum(..), _) => false,
            (Kind::BuiltIn(Scalar::Int), Val::Number(n)) => {
                n.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
            }
            (Kind::BuiltIn(Scalar::Float), Val::Number(_))
            | (Kind::BuiltIn(Scalar::String | Scalar::Id), Val::String(_))
            | (Kind::BuiltIn(Scalar::Boolean), Val::Bool(_)) => true,
            (Kind::BuiltIn(Scalar::Id), Val::Number(n)) if n.is_i64() || n.is_u64() => {
                // An ID is serialized as a string.
                write_str(out, &n.to_string());
                return false;
            }
            (Kind::BuiltIn(_), _) => false,
            (Kind::Custom | Kind::Composite { .. }, _) => true,
        };
        if valid {
            value.write_to(out);
            return false;
        }
        let found = json_text(value);
        let message = match kind {
            Kind::Enum(name, _) => format!("Enum \"{name}\" cannot represent value: {found}"),
            Kind::BuiltIn(scalar) => format!("{} cannot represent value: {found}", scalar.name()),
            Kind::Custom | Kind::Composite { .. } => format!("cannot represent value: {found}"),
        };
        self.error(path, message);
        out.extend_from_slice(b"null");
        true
    }

    /// Records a field error at `path`; a null there is then explained.
    fn error(&mut self, path: &[Step<'_>], message: String) {
        let path = path_json(path);
        self.errors
            .push(GraphqlError::new(Code::InternalServerError, message).at(path.clone()));
        self.explained.push(path);
    }

    /// `@skip(if: $a)` / `@include(if: $b)` with the request's variables.
    fn included(&self, skip_if: Option<&str>, include_if: Option<&str>) -> bool {
        let truthy = |name: &str| self.variables.get(name) == Some(&Value::Bool(true));
        !skip_if.is_some_and(truthy) && include_if.is_none_or(truthy)
    }
}
