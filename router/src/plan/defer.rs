//! `@defer`: an operation split into queries of its own, one for what is not deferred and one per
//! deferred fragment, each planned as an ordinary operation.
//!
//! The planner plans no `@defer`, so the router splits the operation before planning. The first
//! query is the operation without its deferred fragments (a selection left empty asks for
//! `__typename`, so that the path to a deferred fragment is still in the answer). Each deferred
//! fragment becomes a query of the path from the root down to the fragment's parent (the same
//! fields, with their arguments, aliases and directives, and the type conditions on the way),
//! selecting only the fragment there. A fragment deferred inside another is a query of its own
//! too, whose path runs through the outer one; it is delivered after it.
//!
//! All the queries start at once, so a deferred fragment that waits on a slow subgraph holds back
//! only its own part. The price is that the path to each deferred fragment is fetched again: its
//! root fields are asked once per query. That is why only queries are split: a mutation's fields
//! below the root are answered whole (`@defer` is a hint), and `@defer` on a mutation's root
//! fields or in a subscription is refused.

use std::collections::BTreeSet;

use graphql_tools::static_graphql::query::{
    Definition, Directive, Document, Field, FragmentDefinition, InlineFragment,
    OperationDefinition, Query, Selection, SelectionSet, Value, VariableDefinition,
};
use hive_router_query_planner::utils::parsing::safe_parse_operation;
use serde_json::{Map, Value as Json};

use super::{find_fragment, parts, select_operation, Kind, PrepareError};

const DEFER: &str = "defer";

fn is_defer(directive: &Directive) -> bool {
    directive.name == DEFER
}

/// Whether any selection of `set` (through `fragments` too) carries `@defer`.
pub fn uses_defer(set: &SelectionSet, fragments: &[&FragmentDefinition]) -> bool {
    fn walk(
        set: &SelectionSet,
        fragments: &[&FragmentDefinition],
        seen: &mut BTreeSet<String>,
    ) -> bool {
        set.items.iter().any(|selection| match selection {
            Selection::Field(field) => walk(&field.selection_set, fragments, seen),
            Selection::InlineFragment(inline) => {
                inline.directives.iter().any(is_defer)
                    || walk(&inline.selection_set, fragments, seen)
            }
            Selection::FragmentSpread(spread) => {
                spread.directives.iter().any(is_defer)
                    || (seen.insert(spread.fragment_name.clone())
                        && find_fragment(fragments, &spread.fragment_name)
                            .is_some_and(|f| walk(&f.selection_set, fragments, seen)))
            }
        })
    }
    walk(set, fragments, &mut BTreeSet::new())
}

/// Whether a fragment directly in the root selection (not below a field) carries `@defer`.
pub fn defers_a_root_field(set: &SelectionSet, fragments: &[&FragmentDefinition]) -> bool {
    fn walk(
        set: &SelectionSet,
        fragments: &[&FragmentDefinition],
        seen: &mut BTreeSet<String>,
    ) -> bool {
        set.items.iter().any(|selection| match selection {
            Selection::Field(_) => false,
            Selection::InlineFragment(inline) => {
                inline.directives.iter().any(is_defer)
                    || walk(&inline.selection_set, fragments, seen)
            }
            Selection::FragmentSpread(spread) => {
                spread.directives.iter().any(is_defer)
                    || (seen.insert(spread.fragment_name.clone())
                        && find_fragment(fragments, &spread.fragment_name)
                            .is_some_and(|f| walk(&f.selection_set, fragments, seen)))
            }
        })
    }
    walk(set, fragments, &mut BTreeSet::new())
}

/// Removes every `@defer` from `document`, keeping the fragments in place: the operation answered
/// whole.
pub fn strip(document: &mut Document) {
    fn walk(set: &mut SelectionSet) {
        for selection in &mut set.items {
            match selection {
                Selection::Field(field) => walk(&mut field.selection_set),
                Selection::InlineFragment(inline) => {
                    inline.directives.retain(|d| !is_defer(d));
                    walk(&mut inline.selection_set);
                }
                Selection::FragmentSpread(spread) => spread.directives.retain(|d| !is_defer(d)),
            }
        }
    }
    for definition in &mut document.definitions {
        match definition {
            Definition::Fragment(fragment) => walk(&mut fragment.selection_set),
            Definition::Operation(op) => walk(super::parts_mut(op)),
        }
    }
}

/// An operation split for incremental delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The query for everything not deferred.
    pub initial: String,
    /// One per deferred fragment (with `@defer(if:)` true), outer ones before those inside them.
    pub deferred: Vec<Deferred>,
}

/// One deferred fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub label: Option<String>,
    /// The response keys from the root to the fragment's parent (lists are not in it: every
    /// object of a list there is a parent).
    pub path: Vec<String>,
    /// The deferred fragment this one is inside, by index.
    pub parent: Option<usize>,
    /// The query for it: the path and the fragment.
    pub query: String,
}

/// A step of the path from the root to a deferred fragment, without what it selects.
#[derive(Debug, Clone)]
enum Step {
    Field(Field),
    Fragment(InlineFragment),
}

/// Splits the operation `operation_name` of `query` (already validated) at its `@defer`s, as
/// `variables` (coerced) turn them on. `None` when it is no query or none is on.
pub fn split(
    query: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Json>,
) -> Result<Option<Split>, PrepareError> {
    let document = safe_parse_operation(query)
        .map_err(|e| PrepareError::Parse(format!("syntax error: {e}")))?;
    let fragments: Vec<&FragmentDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some(f),
            Definition::Operation(_) => None,
        })
        .collect();
    let operation = select_operation(&document, operation_name)?;
    let (kind, set, variable_definitions) = parts(operation);
    if kind != Kind::Query {
        return Ok(None);
    }
    let name = match operation {
        OperationDefinition::Query(q) => q.name.clone(),
        _ => None,
    };
    let inlined = inline(set, &fragments);
    let mut found = Vec::new();
    let initial = cut(&inlined, &[], None, variables, &mut found);
    if found.is_empty() {
        return Ok(None);
    }
    let print = |set: SelectionSet| print_query(name.clone(), variable_definitions, set);
    let deferred = found
        .into_iter()
        .map(|found| {
            let mut set = SelectionSet {
                span: inlined.span,
                items: vec![Selection::InlineFragment(found.fragment)],
            };
            for step in found.steps.iter().rev() {
                let item = match step.clone() {
                    Step::Field(mut field) => {
                        field.selection_set = set;
                        Selection::Field(field)
                    }
                    Step::Fragment(mut fragment) => {
                        fragment.selection_set = set;
                        Selection::InlineFragment(fragment)
                    }
                };
                set = SelectionSet {
                    span: inlined.span,
                    items: vec![item],
                };
            }
            Deferred {
                label: found.label,
                path: found
                    .steps
                    .iter()
                    .filter_map(|step| match step {
                        Step::Field(field) => {
                            Some(field.alias.clone().unwrap_or(field.name.clone()))
                        }
                        Step::Fragment(_) => None,
                    })
                    .collect(),
                parent: found.parent,
                query: print(set),
            }
        })
        .collect();
    Ok(Some(Split {
        initial: print(initial),
        deferred,
    }))
}

/// A deferred fragment as [`cut`] finds it.
struct Found {
    label: Option<String>,
    steps: Vec<Step>,
    parent: Option<usize>,
    /// The fragment, without `@defer` and without the fragments deferred inside it.
    fragment: InlineFragment,
}

/// `set` with its fragment spreads written out as inline fragments (validation has refused
/// cycles and unknown fragments).
fn inline(set: &SelectionSet, fragments: &[&FragmentDefinition]) -> SelectionSet {
    SelectionSet {
        span: set.span,
        items: set
            .items
            .iter()
            .filter_map(|selection| {
                Some(match selection {
                    Selection::Field(field) => Selection::Field(Field {
                        selection_set: inline(&field.selection_set, fragments),
                        ..field.clone()
                    }),
                    Selection::InlineFragment(fragment) => {
                        Selection::InlineFragment(InlineFragment {
                            selection_set: inline(&fragment.selection_set, fragments),
                            ..fragment.clone()
                        })
                    }
                    Selection::FragmentSpread(spread) => {
                        let definition = find_fragment(fragments, &spread.fragment_name)?;
                        Selection::InlineFragment(InlineFragment {
                            position: spread.position,
                            type_condition: Some(definition.type_condition.clone()),
                            directives: spread.directives.clone(),
                            selection_set: inline(&definition.selection_set, fragments),
                        })
                    }
                })
            })
            .collect(),
    }
}

/// Whether `@defer` in `directives` is on, and its label.
fn deferral(directives: &[Directive], variables: &Map<String, Json>) -> Option<Option<String>> {
    let directive = directives.iter().find(|d| is_defer(d))?;
    let mut on = true;
    let mut label = None;
    for (name, value) in &directive.arguments {
        match (name.as_str(), value) {
            ("if", Value::Boolean(b)) => on = *b,
            ("if", Value::Variable(v)) => {
                on = variables.get(v).and_then(Json::as_bool) != Some(false)
            }
            ("label", Value::String(s)) => label = Some(s.clone()),
            ("label", Value::Variable(v)) => {
                label = variables.get(v).and_then(Json::as_str).map(str::to_owned)
            }
            _ => {}
        }
    }
    on.then_some(label)
}

/// `set` (at `steps` from the root) without the fragments deferred in it, which go to `found`.
fn cut(
    set: &SelectionSet,
    steps: &[Step],
    parent: Option<usize>,
    variables: &Map<String, Json>,
    found: &mut Vec<Found>,
) -> SelectionSet {
    let mut items = Vec::new();
    for selection in &set.items {
        match selection {
            Selection::Field(field) => {
                let mut step = field.clone();
                step.selection_set.items.clear();
                let mut kept = field.clone();
                if !field.selection_set.items.is_empty() {
                    let inner = [steps, &[Step::Field(step)]].concat();
                    kept.selection_set =
                        non_empty(cut(&field.selection_set, &inner, parent, variables, found));
                }
                items.push(Selection::Field(kept));
            }
            Selection::InlineFragment(fragment) => {
                let mut bare = fragment.clone();
                bare.directives.retain(|d| !is_defer(d));
                bare.selection_set.items.clear();
                let inner = [steps, &[Step::Fragment(bare.clone())]].concat();
                match deferral(&fragment.directives, variables) {
                    Some(label) => {
                        let index = found.len();
                        found.push(Found {
                            label,
                            steps: steps.to_vec(),
                            parent,
                            fragment: bare.clone(),
                        });
                        let selection_set = non_empty(cut(
                            &fragment.selection_set,
                            &inner,
                            Some(index),
                            variables,
                            found,
                        ));
                        found[index].fragment.selection_set = selection_set;
                    }
                    None => {
                        let mut kept = bare;
                        kept.selection_set =
                            cut(&fragment.selection_set, &inner, parent, variables, found);
                        if !kept.selection_set.items.is_empty() {
                            items.push(Selection::InlineFragment(kept));
                        }
                    }
                }
            }
            // `inline` wrote every spread out.
            Selection::FragmentSpread(_) => {}
        }
    }
    SelectionSet {
        span: set.span,
        items,
    }
}

/// `set`, or `__typename` when nothing is left in it.
fn non_empty(mut set: SelectionSet) -> SelectionSet {
    if set.items.is_empty() {
        set.items.push(Selection::Field(Field {
            position: set.span.0,
            alias: None,
            name: "__typename".to_owned(),
            arguments: Vec::new(),
            directives: Vec::new(),
            selection_set: SelectionSet {
                span: set.span,
                items: Vec::new(),
            },
        }));
    }
    set
}

/// The query `name` selecting `set`, declaring those of `definitions` that it uses.
fn print_query(
    name: Option<String>,
    definitions: &[VariableDefinition],
    set: SelectionSet,
) -> String {
    let mut used = BTreeSet::new();
    variables_in(&set, &mut used);
    let set = non_empty(set);
    let document = Document {
        definitions: vec![Definition::Operation(OperationDefinition::Query(Query {
            position: set.span.0,
            name,
            variable_definitions: definitions
                .iter()
                .filter(|d| used.contains(&d.name))
                .cloned()
                .collect(),
            directives: Vec::new(),
            selection_set: set,
        }))],
    };
    document.to_string()
}

fn variables_in(set: &SelectionSet, used: &mut BTreeSet<String>) {
    fn value(v: &Value, used: &mut BTreeSet<String>) {
        match v {
            Value::Variable(name) => {
                used.insert(name.clone());
            }
            Value::List(items) => items.iter().for_each(|v| value(v, used)),
            Value::Object(fields) => fields.iter().for_each(|(_, v)| value(v, used)),
            _ => {}
        }
    }
    fn directives(list: &[Directive], used: &mut BTreeSet<String>) {
        for directive in list {
            directive.arguments.iter().for_each(|(_, v)| value(v, used));
        }
    }
    for selection in &set.items {
        match selection {
            Selection::Field(field) => {
                field.arguments.iter().for_each(|(_, v)| value(v, used));
                directives(&field.directives, used);
                variables_in(&field.selection_set, used);
            }
            Selection::InlineFragment(fragment) => {
                directives(&fragment.directives, used);
                variables_in(&fragment.selection_set, used);
            }
            Selection::FragmentSpread(spread) => directives(&spread.directives, used),
        }
    }
}

/// What the client has been sent so far of a deferred operation's data: the initial payload's,
/// with every incremental part merged in at its path.
#[derive(Debug)]
pub struct Delivered {
    data: Json,
}

/// One step of a response path: a key, or an index in a list.
fn segment_json(segment: &Segment) -> Json {
    match segment {
        Segment::Key(key) => Json::String(key.clone()),
        Segment::Index(i) => Json::from(*i),
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Delivered {
    pub fn new(data: Json) -> Self {
        Delivered { data }
    }

    /// The `incremental` entries for `deferred`'s answer (`{data, errors}` of its query): one per
    /// object at its path in what was delivered that the fragment applies to, with the answer's
    /// errors on the first. A parent the answer has no object for (a null propagated inside the
    /// fragment) gets `data: null`.
    pub fn entries(&mut self, deferred: &Deferred, answer: &Json) -> Vec<Json> {
        let mut parents = Vec::new();
        positions(&self.data, &deferred.path, &mut Vec::new(), &mut parents);
        let errors = answer
            .get("errors")
            .and_then(Json::as_array)
            .filter(|e| !e.is_empty());
        let mut entries = Vec::new();
        for position in parents {
            let data = at(answer.get("data").unwrap_or(&Json::Null), &position);
            let data = match data {
                Some(Json::Object(fields)) if fields.is_empty() => continue,
                Some(Json::Object(fields)) => {
                    if let Some(Json::Object(target)) = at_mut(&mut self.data, &position) {
                        merge(target, fields);
                    }
                    Json::Object(fields.clone())
                }
                // The fragment's answer nulled its parent: only the fragment is null, with its
                // errors (without errors, the object went away between the two queries).
                _ if errors.is_some() => Json::Null,
                _ => continue,
            };
            entries.push(entry(deferred, data, &position));
        }
        if let Some(errors) = errors {
            if entries.is_empty() {
                let path: Vec<Segment> = deferred.path.iter().cloned().map(Segment::Key).collect();
                entries.push(entry(deferred, Json::Null, &path));
            }
            if let Some(Json::Object(first)) = entries.first_mut() {
                first.insert("errors".to_owned(), Json::Array(errors.clone()));
            }
        }
        entries
    }
}

fn entry(deferred: &Deferred, data: Json, position: &[Segment]) -> Json {
    let mut entry = Map::new();
    entry.insert("data".to_owned(), data);
    entry.insert(
        "path".to_owned(),
        Json::Array(position.iter().map(segment_json).collect()),
    );
    if let Some(label) = &deferred.label {
        entry.insert("label".to_owned(), Json::String(label.clone()));
    }
    Json::Object(entry)
}

/// Every object reached from `value` along `keys` (through lists), by position.
fn positions(value: &Json, keys: &[String], here: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    match value {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                here.push(Segment::Index(i));
                positions(item, keys, here, out);
                here.pop();
            }
        }
        Json::Object(fields) => match keys.split_first() {
            None => out.push(here.clone()),
            Some((key, rest)) => {
                if let Some(next) = fields.get(key) {
                    here.push(Segment::Key(key.clone()));
                    positions(next, rest, here, out);
                    here.pop();
                }
            }
        },
        _ => {}
    }
}

fn at<'v>(mut value: &'v Json, position: &[Segment]) -> Option<&'v Json> {
    for segment in position {
        value = match segment {
            Segment::Key(key) => value.get(key)?,
            Segment::Index(i) => value.get(i)?,
        };
    }
    Some(value)
}

fn at_mut<'v>(mut value: &'v mut Json, position: &[Segment]) -> Option<&'v mut Json> {
    for segment in position {
        value = match segment {
            Segment::Key(key) => value.get_mut(key)?,
            Segment::Index(i) => value.get_mut(i)?,
        };
    }
    Some(value)
}

/// Merges `from` into `into`, objects field by field (lists of objects item by item).
fn merge(into: &mut Map<String, Json>, from: &Map<String, Json>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Json::Object(a)), Json::Object(b)) => merge(a, b),
            (Some(Json::Array(a)), Json::Array(b)) if a.len() == b.len() => {
                for (a, b) in a.iter_mut().zip(b) {
                    match (a, b) {
                        (Json::Object(a), Json::Object(b)) => merge(a, b),
                        (a, b) => *a = b.clone(),
                    }
                }
            }
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn squash(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_deferred_fragment_becomes_a_query_of_its_path() {
        let query = r#"query Page($id: ID!, $slow: Boolean!) {
            beer(id: $id) { name ...Details @defer(label: "details", if: $slow) }
            me { ... @defer { orders { id ... @defer(label: "lines") { items { quantity } } } } }
        }
        fragment Details on Beer { description }"#;
        let variables = json!({"id": "1", "slow": true});
        let split = split(query, None, variables.as_object().expect("an object"))
            .expect("splits")
            .expect("defers");
        assert_eq!(
            squash(&split.initial),
            squash("query Page($id: ID!) { beer(id: $id) { name } me { __typename } }")
        );
        type Summary<'s> = (Option<&'s str>, Vec<&'s str>, Option<usize>, String);
        let queries: Vec<Summary> = split
            .deferred
            .iter()
            .map(|d| {
                (
                    d.label.as_deref(),
                    d.path.iter().map(String::as_str).collect(),
                    d.parent,
                    squash(&d.query),
                )
            })
            .collect();
        assert_eq!(
            queries,
            vec![
                (
                    Some("details"),
                    vec!["beer"],
                    None,
                    squash(
                        "query Page($id: ID!) { beer(id: $id) { ... on Beer { description } } }"
                    )
                ),
                (
                    None,
                    vec!["me"],
                    None,
                    squash("query Page { me { ... { orders { id } } } }")
                ),
                (
                    Some("lines"),
                    vec!["me", "orders"],
                    Some(1),
                    squash("query Page { me { ... { orders { ... { items { quantity } } } } } }")
                ),
            ]
        );
        // Turned off by its variable, the fragment stays where it is.
        let variables = json!({"id": "1", "slow": false});
        let off = super::split(query, None, variables.as_object().expect("an object"))
            .expect("splits")
            .expect("defers");
        assert!(off.initial.contains("description"), "{}", off.initial);
        assert_eq!(off.deferred.len(), 2);
    }

    #[test]
    fn entries_are_one_per_parent_and_errors_stay_inside_the_fragment() {
        let deferred = Deferred {
            label: Some("lines".to_owned()),
            path: vec!["me".to_owned(), "orders".to_owned()],
            parent: None,
            query: String::new(),
        };
        let mut delivered = Delivered::new(json!({"me": {"orders": [{"id": "1"}, {"id": "2"}]}}));
        let answer =
            json!({"data": {"me": {"orders": [{"items": []}, {"items": [{"quantity": 2}]}]}}});
        assert_eq!(
            delivered.entries(&deferred, &answer),
            vec![
                json!({"data": {"items": []}, "path": ["me", "orders", 0], "label": "lines"}),
                json!({"data": {"items": [{"quantity": 2}]}, "path": ["me", "orders", 1], "label": "lines"}),
            ]
        );
        // A null that propagated up past the parents nulls only the fragment, with its errors.
        let error = json!({"message": "beers is down", "path": ["me", "orders", 1, "items"]});
        let answer = json!({"data": {"me": null}, "errors": [error]});
        assert_eq!(
            delivered.entries(&deferred, &answer),
            vec![
                json!({"data": null, "path": ["me", "orders", 0], "label": "lines", "errors": [error]}),
                json!({"data": null, "path": ["me", "orders", 1], "label": "lines"}),
            ]
        );
    }
}
