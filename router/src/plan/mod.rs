//! Stages before execution: parse → check limits → validate → split off introspection → normalize →
//! plan. The result, a [`Prepared`] operation, is cached per supergraph by operation text and name,
//! so a repeated operation is never parsed, validated or planned twice.

use std::{
    collections::{HashMap, HashSet},
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use graphql_tools::{
    static_graphql::query::{
        Definition, Document, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
        Type, Value, VariableDefinition,
    },
    validation::{rules::default_rules_validation_plan, validate::validate},
};
use hive_router_query_planner::{
    ast::{
        normalization::normalize_operation,
        operation::OperationDefinition as Normalized,
        selection_item::SelectionItem,
        selection_set::{FieldSelection, SelectionSet as NormalizedSelectionSet},
    },
    graph::PlannerOverrideContext,
    planner::plan_nodes::QueryPlan,
    utils::{cancellation::CancellationToken, parsing::safe_parse_operation},
};

use crate::{
    introspection::IntrospectionPart,
    supergraph::{panic_message, Supergraph},
};

/// Limits on what one operation may ask, checked before validation (which is costly on huge ones).
#[derive(Debug, Clone, Copy)]
pub struct OperationLimits {
    /// The deepest field nesting, fragments included.
    pub max_depth: usize,
    /// The most aliased fields.
    pub max_aliases: usize,
    /// The most fields once fragments are expanded (a few hundred bytes of nested fragments can
    /// otherwise expand to billions of fields).
    pub max_fields: usize,
}

impl Default for OperationLimits {
    fn default() -> Self {
        OperationLimits {
            max_depth: 32,
            max_aliases: 200,
            max_fields: 20_000,
        }
    }
}

/// Why an operation cannot run. Each maps to an `extensions.code`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PrepareError {
    #[error("{0}")]
    Parse(String),
    #[error("{}", .0.first().map(|(m, _)| m.as_str()).unwrap_or("invalid operation"))]
    Validation(Vec<(String, Vec<(usize, usize)>)>),
    #[error("{message}")]
    Limit { code: &'static str, message: String },
    #[error("query planning failed")]
    Planning(String),
}

impl PrepareError {
    /// The `extensions.code` clients see.
    pub fn code(&self) -> &'static str {
        match self {
            PrepareError::Parse(_) => "GRAPHQL_PARSE_FAILED",
            PrepareError::Validation(_) => "GRAPHQL_VALIDATION_FAILED",
            PrepareError::Limit { code, .. } => code,
            PrepareError::Planning(_) => "QUERY_PLANNING_FAILED",
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        PrepareError::Validation(vec![(message.into(), Vec::new())])
    }
}

/// What kind of operation it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
}

/// A variable the operation declares, for coercing the client's values.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub ty: Type,
    pub default: Option<serde_json::Value>,
}

/// An operation ready to execute.
#[derive(Debug)]
pub struct Prepared {
    pub kind: Kind,
    pub variables: Vec<Variable>,
    /// The response keys of the root selection, in the order the client asked for them.
    pub root_keys: Vec<String>,
    /// The root introspection fields, answered by the router itself.
    pub introspection: Option<IntrospectionPart>,
    /// The normalized operation and its plan, when anything is left to fetch from subgraphs.
    pub planned: Option<(Normalized, QueryPlan)>,
}

/// Prepared operations of one supergraph, bounded (least recently used entries go first).
pub struct PlanCache {
    cache: moka::sync::Cache<(String, Option<String>), Arc<Prepared>>,
    /// How many operations were prepared (cache misses): a test reads this to prove caching.
    pub prepared: AtomicU64,
}

impl PlanCache {
    /// A cache of at most `capacity` operations.
    pub fn new(capacity: u64) -> Self {
        PlanCache {
            cache: moka::sync::Cache::new(capacity),
            prepared: AtomicU64::new(0),
        }
    }
}

/// The prepared form of `query`, from the cache or made now.
pub fn prepare(
    supergraph: &Supergraph,
    query: &str,
    operation_name: Option<&str>,
    limits: &OperationLimits,
) -> Result<Arc<Prepared>, PrepareError> {
    let key = (query.to_owned(), operation_name.map(str::to_owned));
    supergraph
        .plans
        .cache
        .try_get_with(key, || {
            supergraph.plans.prepared.fetch_add(1, Ordering::Relaxed);
            prepare_uncached(supergraph, query, operation_name, limits).map(Arc::new)
        })
        .map_err(|e: Arc<PrepareError>| (*e).clone())
}

fn prepare_uncached(
    supergraph: &Supergraph,
    query: &str,
    operation_name: Option<&str>,
    limits: &OperationLimits,
) -> Result<Prepared, PrepareError> {
    // The parser recurses per nesting level: refuse absurd nesting before parsing, with the same
    // error the precise check below gives.
    let nesting = brace_depth(query);
    if nesting > limits.max_depth + 1 {
        return Err(depth_error(nesting - 1, limits));
    }
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
    let (kind, selection_set, variable_definitions) = parts(operation);
    check_limits(selection_set, &fragments, limits)?;

    let errors = validate(
        &supergraph.planner.consumer_schema.document,
        &document,
        &default_rules_validation_plan(),
    );
    if !errors.is_empty() {
        return Err(PrepareError::Validation(
            errors
                .into_iter()
                .map(|e| {
                    let mut locations: Vec<(usize, usize)> =
                        e.locations.iter().map(|p| (p.line, p.column)).collect();
                    if locations.is_empty() {
                        locations = locate_value_error(query, &e.message);
                    }
                    (e.message, locations)
                })
                .collect(),
        ));
    }
    if kind == Kind::Subscription {
        return Err(PrepareError::validation(
            "subscriptions are not supported by this router",
        ));
    }

    let mut root_keys = Vec::new();
    collect_root_keys(
        selection_set,
        &fragments,
        &mut root_keys,
        &mut HashSet::new(),
    );

    if introspection_in_root_fragments(selection_set, &fragments, &mut HashSet::new()) {
        return Err(PrepareError::validation(
            "select __schema, __type and __typename directly on the root type, not inside a fragment",
        ));
    }
    let is_introspection = |s: &Selection| matches!(s, Selection::Field(f) if f.name == "__schema" || f.name == "__type" || f.name == "__typename");
    let (introspected, rest): (Vec<&Selection>, Vec<&Selection>) = selection_set
        .items
        .iter()
        .partition(|s| is_introspection(s));
    let introspection = (!introspected.is_empty()).then(|| IntrospectionPart {
        selections: SelectionSet {
            span: selection_set.span,
            items: introspected.iter().map(|s| (*s).clone()).collect(),
        },
        fragments: fragments.iter().map(|f| (*f).clone()).collect(),
    });

    let planned = if rest.is_empty() {
        None
    } else {
        let mut remaining = document.clone();
        for definition in &mut remaining.definitions {
            if let Definition::Operation(op) = definition {
                if is_selected(op, operation_name) {
                    parts_mut(op).items.retain(|s| !is_introspection(s));
                }
            }
        }
        let mut normalized = catch_unwind(AssertUnwindSafe(|| {
            normalize_operation(&supergraph.planner.supergraph, &remaining, operation_name)
        }))
        .map_err(|panic| PrepareError::Planning(panic_message(panic)))?
        .map_err(|e| PrepareError::validation(e.to_string()))?
        .operation;
        let root = match kind {
            Kind::Mutation => supergraph.planner.supergraph.mutation_type.as_deref(),
            _ => Some(supergraph.planner.supergraph.query_type.as_str()),
        };
        if let Some(root) = root {
            fetch_hidden_typenames(supergraph, &mut normalized.selection_set, root);
        }
        if normalized.selection_set.items.is_empty() {
            // Everything was skipped (`@skip(if: true)`, `@include(if: false)`): nothing to fetch.
            None
        } else {
            let plan = catch_unwind(AssertUnwindSafe(|| {
                supergraph.planner.plan_from_normalized_operation(
                    &normalized,
                    PlannerOverrideContext::default(),
                    &CancellationToken::with_timeout(PLANNING_TIMEOUT),
                )
            }))
            .map_err(|panic| PrepareError::Planning(panic_message(panic)))?
            .map_err(|e| PrepareError::Planning(e.to_string()))?;
            Some((normalized, plan))
        }
    };

    Ok(Prepared {
        kind,
        variables: variable_definitions
            .iter()
            .map(|v| Variable {
                name: v.name.clone(),
                ty: v.var_type.clone(),
                default: v
                    .default_value
                    .as_ref()
                    .map(|d| to_json(d, &serde_json::Map::new())),
            })
            .collect(),
        root_keys,
        introspection,
        planned,
    })
}

/// Adds `__typename` (left out of the response) under every field of an interface or union that
/// hides some of its members from the client (`@inaccessible`), where the client did not select it:
/// shaping needs each object's type to turn one the client's schema cannot have into `null`.
fn fetch_hidden_typenames(supergraph: &Supergraph, set: &mut NormalizedSelectionSet, parent: &str) {
    for item in &mut set.items {
        match item {
            SelectionItem::Field(field) => {
                if field.selections.items.is_empty() {
                    continue;
                }
                let Some(ty) = supergraph
                    .planner
                    .supergraph
                    .definitions
                    .get(parent)
                    .and_then(|d| d.fields().get(&field.name))
                    .map(|f| f.field_type.inner_type().to_owned())
                else {
                    continue;
                };
                fetch_hidden_typenames(supergraph, &mut field.selections, &ty);
                let selected = field.selections.items.iter().any(|i| {
                    matches!(i, SelectionItem::Field(f) if f.name == "__typename"
                        && f.alias.is_none() && f.skip_if.is_none() && f.include_if.is_none())
                });
                if supergraph.hides_members(&ty) && !selected {
                    field.selections.items.insert(
                        0,
                        SelectionItem::Field(FieldSelection {
                            name: "__typename".into(),
                            selections: NormalizedSelectionSet { items: Vec::new() },
                            alias: None,
                            arguments: None,
                            skip_if: None,
                            include_if: None,
                            omit_from_response: true,
                        }),
                    );
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let condition = fragment.type_condition.clone();
                fetch_hidden_typenames(supergraph, &mut fragment.selections, &condition);
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
}

fn select_operation<'d>(
    document: &'d Document,
    name: Option<&str>,
) -> Result<&'d OperationDefinition, PrepareError> {
    let operations: Vec<&OperationDefinition> = document
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(op) => Some(op),
            Definition::Fragment(_) => None,
        })
        .collect();
    match name {
        Some(name) => operations
            .into_iter()
            .find(|op| operation_name(op) == Some(name))
            .ok_or_else(|| PrepareError::validation(format!("unknown operation named \"{name}\""))),
        None => match operations.as_slice() {
            [op] => Ok(op),
            [] => Err(PrepareError::validation(
                "the document contains no operation",
            )),
            _ => Err(PrepareError::validation(
                "the document contains several operations: send operationName to choose one",
            )),
        },
    }
}

fn operation_name(op: &OperationDefinition) -> Option<&str> {
    match op {
        OperationDefinition::SelectionSet(_) => None,
        OperationDefinition::Query(q) => q.name.as_deref(),
        OperationDefinition::Mutation(m) => m.name.as_deref(),
        OperationDefinition::Subscription(s) => s.name.as_deref(),
    }
}

fn is_selected(op: &OperationDefinition, name: Option<&str>) -> bool {
    name.is_none() || operation_name(op) == name
}

fn parts(op: &OperationDefinition) -> (Kind, &SelectionSet, &[VariableDefinition]) {
    match op {
        OperationDefinition::SelectionSet(s) => (Kind::Query, s, &[]),
        OperationDefinition::Query(q) => (Kind::Query, &q.selection_set, &q.variable_definitions),
        OperationDefinition::Mutation(m) => {
            (Kind::Mutation, &m.selection_set, &m.variable_definitions)
        }
        OperationDefinition::Subscription(s) => (
            Kind::Subscription,
            &s.selection_set,
            &s.variable_definitions,
        ),
    }
}

fn parts_mut(op: &mut OperationDefinition) -> &mut SelectionSet {
    match op {
        OperationDefinition::SelectionSet(s) => s,
        OperationDefinition::Query(q) => &mut q.selection_set,
        OperationDefinition::Mutation(m) => &mut m.selection_set,
        OperationDefinition::Subscription(s) => &mut s.selection_set,
    }
}

fn find_fragment<'a>(
    fragments: &[&'a FragmentDefinition],
    name: &str,
) -> Option<&'a FragmentDefinition> {
    fragments.iter().find(|f| f.name == name).copied()
}

/// The longest the planner may work on one operation.
const PLANNING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How deep fragment spreads may chain (each spreading the next) before the operation is refused.
const MAX_FRAGMENT_CHAIN: usize = 100;

/// The nesting depth, the number of aliases and the number of fields of `set` with its fragments
/// expanded. Each
/// fragment's figures are computed once and reused (a fragment spread twice at every level would
/// otherwise take exponential time); a cycle counts as nothing (validation reports it).
fn selection_stats(
    set: &SelectionSet,
    fragments: &[&FragmentDefinition],
    memo: &mut HashMap<String, (usize, usize, usize)>,
    chain: &mut Vec<String>,
) -> Result<(usize, usize, usize), PrepareError> {
    let (mut depth, mut aliases, mut fields) = (0usize, 0usize, 0usize);
    for selection in &set.items {
        let (d, a, f) = match selection {
            Selection::Field(field) => {
                let (d, a, f) = selection_stats(&field.selection_set, fragments, memo, chain)?;
                (
                    d + 1,
                    a.saturating_add(usize::from(field.alias.is_some())),
                    f.saturating_add(1),
                )
            }
            Selection::InlineFragment(inline) => {
                selection_stats(&inline.selection_set, fragments, memo, chain)?
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.fragment_name;
                if let Some(known) = memo.get(name) {
                    *known
                } else if chain.contains(name) {
                    (0, 0, 0)
                } else if let Some(fragment) = find_fragment(fragments, name) {
                    if chain.len() >= MAX_FRAGMENT_CHAIN {
                        return Err(PrepareError::Limit {
                            code: "MAX_DEPTH_LIMIT",
                            message: format!(
                                "fragment spreads chain more than {MAX_FRAGMENT_CHAIN} deep"
                            ),
                        });
                    }
                    chain.push(name.clone());
                    let stats = selection_stats(&fragment.selection_set, fragments, memo, chain)?;
                    chain.pop();
                    memo.insert(name.clone(), stats);
                    stats
                } else {
                    (0, 0, 0)
                }
            }
        };
        depth = depth.max(d);
        aliases = aliases.saturating_add(a);
        fields = fields.saturating_add(f);
    }
    Ok((depth, aliases, fields))
}

/// Depth and alias limits, fragments expanded.
fn check_limits(
    selection_set: &SelectionSet,
    fragments: &[&FragmentDefinition],
    limits: &OperationLimits,
) -> Result<(), PrepareError> {
    let mut memo = HashMap::new();
    let (depth, aliases, fields) =
        selection_stats(selection_set, fragments, &mut memo, &mut Vec::new())?;
    if depth > limits.max_depth {
        return Err(depth_error(depth, limits));
    }
    if fields > limits.max_fields {
        return Err(PrepareError::Limit {
            code: "MAX_FIELDS_LIMIT",
            message: format!(
                "the operation selects {} fields once its fragments are expanded; the limit is {}",
                if fields == usize::MAX {
                    "too many".to_owned()
                } else {
                    fields.to_string()
                },
                limits.max_fields
            ),
        });
    }
    if aliases > limits.max_aliases {
        return Err(PrepareError::Limit {
            code: "MAX_ALIASES_LIMIT",
            message: format!(
                "the operation has {aliases} aliases; the limit is {}",
                limits.max_aliases
            ),
        });
    }
    Ok(())
}

fn depth_error(depth: usize, limits: &OperationLimits) -> PrepareError {
    PrepareError::Limit {
        code: "MAX_DEPTH_LIMIT",
        message: format!(
            "the operation is {depth} levels deep; the limit is {}",
            limits.max_depth
        ),
    }
}

/// The deepest `{` nesting in a document, outside strings and comments: an upper bound of the
/// selection depth (plus one for the operation's own braces), computed without parsing.
fn brace_depth(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The response keys of the root selection in request order, through root fragments.
fn collect_root_keys(
    set: &SelectionSet,
    fragments: &[&FragmentDefinition],
    keys: &mut Vec<String>,
    seen: &mut HashSet<String>,
) {
    for selection in &set.items {
        match selection {
            Selection::Field(field) => {
                let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
            Selection::InlineFragment(inline) => {
                collect_root_keys(&inline.selection_set, fragments, keys, seen)
            }
            Selection::FragmentSpread(spread) => {
                // Each fragment once: its keys are the same every time.
                if !seen.insert(format!("...{}", spread.fragment_name)) {
                    continue;
                }
                if let Some(fragment) = find_fragment(fragments, &spread.fragment_name) {
                    collect_root_keys(&fragment.selection_set, fragments, keys, seen)
                }
            }
        }
    }
}

/// Whether a fragment at the root of the operation selects a root introspection field.
fn introspection_in_root_fragments(
    set: &SelectionSet,
    fragments: &[&FragmentDefinition],
    visited: &mut HashSet<String>,
) -> bool {
    let inside = |set: &SelectionSet, visited: &mut HashSet<String>| {
        set.items
            .iter()
            .any(|s| matches!(s, Selection::Field(f) if f.name.starts_with("__")))
            || introspection_in_root_fragments(set, fragments, visited)
    };
    set.items.iter().any(|selection| match selection {
        Selection::Field(_) => false,
        Selection::InlineFragment(inline) => inside(&inline.selection_set, visited),
        Selection::FragmentSpread(spread) => {
            visited.insert(spread.fragment_name.clone())
                && find_fragment(fragments, &spread.fragment_name)
                    .is_some_and(|fragment| inside(&fragment.selection_set, visited))
        }
    })
}

/// A GraphQL literal as JSON, with variables substituted from `variables`.
pub fn to_json(
    value: &Value,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Variable(name) => variables.get(name).cloned().unwrap_or(J::Null),
        Value::Int(n) => J::from(n.as_i64().unwrap_or_default()),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Boolean(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Enum(e) => J::String(e.clone()),
        Value::List(items) => J::Array(items.iter().map(|v| to_json(v, variables)).collect()),
        Value::Object(fields) => J::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v, variables)))
                .collect(),
        ),
    }
}

/// graphql-tools' rule for input values reports no locations (its AST has none for values). For the
/// two errors that name what they point at, an enum value that does not exist and an input field
/// that is not defined, the locations are found in the query text as graphql-js reports them: the
/// enum value, and the object field's name. Other errors keep no location.
fn locate_value_error(query: &str, message: &str) -> Vec<(usize, usize)> {
    use cynic_parser::{executable::Selection, Value};

    enum Wanted<'m> {
        EnumValue(&'m str),
        ObjectField(&'m str),
    }
    fn quoted(rest: &str) -> Option<&str> {
        rest.split('"').next()
    }
    let wanted = if message.contains("\" does not exist in \"") {
        message
            .strip_prefix("Value \"")
            .and_then(quoted)
            .map(Wanted::EnumValue)
    } else if message.contains("\" is not defined by type \"") {
        message
            .strip_prefix("Field \"")
            .and_then(quoted)
            .map(Wanted::ObjectField)
    } else {
        None
    };
    let Some(wanted) = wanted else {
        return Vec::new();
    };
    let Ok(document) = cynic_parser::parse_executable_document(query) else {
        return Vec::new();
    };

    fn visit(value: Value<'_>, wanted: &Wanted<'_>, found: &mut Vec<usize>) {
        match value {
            Value::Enum(e) => {
                if matches!(wanted, Wanted::EnumValue(name) if *name == e.name()) {
                    found.push(e.span().start);
                }
            }
            Value::List(items) => items.items().for_each(|v| visit(v, wanted, found)),
            Value::Object(object) => {
                for field in object.fields() {
                    if matches!(wanted, Wanted::ObjectField(name) if *name == field.name()) {
                        found.push(field.name_span().start);
                    }
                    visit(field.value(), wanted, found);
                }
            }
            _ => {}
        }
    }
    fn selections<'a>(
        items: impl Iterator<Item = Selection<'a>>,
        wanted: &Wanted<'_>,
        found: &mut Vec<usize>,
    ) {
        for item in items {
            match item {
                Selection::Field(field) => {
                    for argument in field.arguments() {
                        visit(argument.value(), wanted, found);
                    }
                    for directive in field.directives() {
                        for argument in directive.arguments() {
                            visit(argument.value(), wanted, found);
                        }
                    }
                    selections(field.selection_set(), wanted, found);
                }
                Selection::InlineFragment(fragment) => {
                    selections(fragment.selection_set(), wanted, found);
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut found = Vec::new();
    for operation in document.operations() {
        selections(operation.selection_set(), &wanted, &mut found);
    }
    for fragment in document.fragments() {
        selections(fragment.selection_set(), &wanted, &mut found);
    }
    found.sort_unstable();
    found
        .into_iter()
        .map(|offset| {
            let before = &query[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
                .chars()
                .count()
                + 1;
            (line, column)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_errors_are_located_where_graphql_js_points() {
        let query = "query {\n  a(tone: NEUTRAL, list: [WARM, NEUTRAL]) { id }\n  b(page: { first: 1, deep: { offset: 2 } }) { id }\n}";
        assert_eq!(
            locate_value_error(query, "Value \"NEUTRAL\" does not exist in \"Tone\" enum."),
            [(2, 11), (2, 33)]
        );
        assert_eq!(
            locate_value_error(query, "Field \"offset\" is not defined by type \"Deep\"."),
            [(3, 31)]
        );
        assert!(
            locate_value_error(query, "Expected value of type \"Int\", found \"x\".").is_empty()
        );
    }

    #[test]
    fn brace_depth_ignores_strings_and_comments() {
        assert_eq!(brace_depth("{ a { b } }"), 2);
        assert_eq!(brace_depth(r#"{ a(s: "{{{{") { b } } # {{{{"#), 2);
        assert_eq!(brace_depth("{ a(s: \"\"\"{{{\"\"\") }"), 1);
        assert_eq!(brace_depth(r#"{ a(s: "\"{") }"#), 1);
    }
}
