//! The plan stage: the query text in, a [`Prepared`] operation out. Parse → check [limits] →
//! validate against the API schema → split off introspection ([`split`]) → normalize → add the
//! `__typename`s shaping needs ([`typenames`]) → plan. [`PlanCache`] keeps prepared operations per
//! supergraph by operation text and name, so a repeated operation is never parsed, validated or
//! planned twice. What fails is a [`PrepareError`], which becomes the client's [`RequestError`].

pub mod defer;
pub mod limits;
mod locations;
pub mod merging;
mod meta;
pub mod pool;
mod split;
mod typenames;

use std::{
    collections::HashSet,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use axum::http::StatusCode;
use graphql_tools::{
    static_graphql::query::{
        Definition, Document, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
        VariableDefinition,
    },
    validation::{
        rules::{self, ValidationRule},
        validate::{validate, ValidationPlan},
    },
};
use hive_router_query_planner::{
    ast::{normalization::normalize_operation, operation::OperationDefinition as Normalized},
    graph::PlannerOverrideContext,
    planner::plan_nodes::QueryPlan,
    utils::{cancellation::CancellationToken, parsing::safe_parse_operation},
};
use taproom_telemetry::traces::TARGET;

pub use self::limits::OperationLimits;
use self::{
    limits::{brace_depth, check_limits, depth_error},
    locations::locate_value_error,
    split::{collect_root_keys, introspection_in_root_fragments},
    typenames::fetch_hidden_typenames,
};
use crate::{
    ast::to_json,
    error::{Code, GraphqlError, Location, RequestError},
    introspection::IntrospectionPart,
    supergraph::{panic_message, Supergraph},
    variables::Variable,
};

/// Why an operation cannot run. Each maps to an `extensions.code`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PrepareError {
    #[error("{0}")]
    Parse(String),
    #[error("{}", .0.first().map(|(m, _)| m.as_str()).unwrap_or("invalid operation"))]
    Validation(Vec<(String, Vec<(usize, usize)>)>),
    #[error("{message}")]
    Limit { code: Code, message: String },
    #[error("query planning failed")]
    Planning(String),
}

impl PrepareError {
    /// The `extensions.code` clients see.
    pub fn code(&self) -> Code {
        match self {
            PrepareError::Parse(_) => Code::GraphqlParseFailed,
            PrepareError::Validation(_) => Code::GraphqlValidationFailed,
            PrepareError::Limit { code, .. } => code.clone(),
            PrepareError::Planning(_) => Code::QueryPlanningFailed,
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        PrepareError::Validation(vec![(message.into(), Vec::new())])
    }
}

impl From<PrepareError> for RequestError {
    fn from(error: PrepareError) -> Self {
        let code = error.code();
        match error {
            PrepareError::Validation(list) => RequestError {
                status: StatusCode::BAD_REQUEST,
                errors: list
                    .into_iter()
                    .map(|(message, locations)| {
                        let mut error = GraphqlError::new(code.clone(), message);
                        error.locations = locations
                            .into_iter()
                            .map(|(line, column)| Location { line, column })
                            .collect();
                        error
                    })
                    .collect(),
            },
            PrepareError::Planning(cause) => {
                tracing::error!(%cause, "query planning failed");
                RequestError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "query planning failed",
                )
            }
            other => RequestError::new(StatusCode::BAD_REQUEST, code, other.to_string()),
        }
    }
}

/// What kind of operation it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
}

impl Kind {
    /// The operation type as GraphQL writes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Subscription => "subscription",
        }
    }
}

/// An operation ready to execute.
#[derive(Debug)]
pub struct Prepared {
    pub kind: Kind,
    /// The operation's name, if it has one (a metrics label).
    pub name: Option<String>,
    /// The root type its selection starts from (`Query`, `Mutation`, or their renamed types).
    pub root: String,
    pub variables: Vec<Variable>,
    /// The response keys of the root selection, in the order the client asked for them.
    pub root_keys: Vec<String>,
    /// The root introspection fields, answered by the router itself.
    pub introspection: Option<IntrospectionPart>,
    /// Whether it asks for the schema (`__schema` or `__type`, not only `__typename`), which a
    /// router started with `--no-introspection` refuses.
    pub introspects_schema: bool,
    /// The normalized operation and its plan, when anything is left to fetch from subgraphs.
    pub planned: Option<(Normalized, QueryPlan)>,
    /// Whether it uses `@defer` (then it may be split: [`defer::split`]).
    pub defers: bool,
}

/// Prepared operations of one supergraph, bounded (least recently used entries go first).
pub struct PlanCache {
    cache: moka::future::Cache<(String, Option<String>), Arc<Prepared>>,
    /// How many operations were prepared (cache misses): a test reads this to prove caching.
    pub prepared: AtomicU64,
}

/// Why an operation has no prepared form: it cannot run, or the router could not prepare it now.
#[derive(Debug, Clone)]
pub enum NotPrepared {
    Invalid(PrepareError),
    /// No preparing thread was free in time ([`pool`]).
    Busy(RequestError),
}

impl From<NotPrepared> for RequestError {
    fn from(error: NotPrepared) -> Self {
        match error {
            NotPrepared::Invalid(error) => error.into(),
            NotPrepared::Busy(error) => error,
        }
    }
}

impl PlanCache {
    /// A cache of at most `capacity` operations.
    pub fn new(capacity: u64) -> Self {
        PlanCache {
            cache: moka::future::Cache::new(capacity),
            prepared: AtomicU64::new(0),
        }
    }

    /// The prepared form of `query` for `supergraph` (the supergraph this cache belongs to), from
    /// the cache (`true`) or made now on one of `preparer`'s threads for `client`. Callers asking
    /// for an operation being prepared wait for it: one preparation each.
    pub async fn get_or_prepare(
        &self,
        supergraph: &Arc<Supergraph>,
        query: &str,
        operation_name: Option<&str>,
        limits: &OperationLimits,
        preparer: &pool::Preparer,
        client: &crate::client::ClientKey,
    ) -> Result<(Arc<Prepared>, bool), NotPrepared> {
        let key = (query.to_owned(), operation_name.map(str::to_owned));
        if let Some(prepared) = self.cache.get(&key).await {
            return Ok((prepared, true));
        }
        // The future runs for one caller per missing key; the others wait for its result, so
        // they count as hits.
        let missed = std::sync::atomic::AtomicBool::new(false);
        let (text, name) = key.clone();
        let (supergraph, limits) = (supergraph.clone(), *limits);
        self.cache
            .try_get_with(key, async {
                missed.store(true, Ordering::Relaxed);
                self.prepared.fetch_add(1, Ordering::Relaxed);
                let prepared = preparer
                    .run(client, move || {
                        prepare(&supergraph, &text, name.as_deref(), &limits)
                    })
                    .await
                    .map_err(NotPrepared::Busy)?;
                prepared.map(Arc::new).map_err(NotPrepared::Invalid)
            })
            .await
            .map(|prepared| (prepared, !missed.load(Ordering::Relaxed)))
            .map_err(|e: Arc<NotPrepared>| (*e).clone())
    }
}

/// Prepares `query` (the operation `operation_name`, or its only one) for `supergraph`.
pub fn prepare(
    supergraph: &Supergraph,
    query: &str,
    operation_name: Option<&str>,
    limits: &OperationLimits,
) -> Result<Prepared, PrepareError> {
    // The parser recurses per nesting level: refuse absurd nesting before parsing, with the same
    // error the precise check below gives.
    let started = std::time::Instant::now();
    let checking = tracing::info_span!(target: TARGET, "graphql.parse_validate").entered();
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
    let root = match kind {
        Kind::Mutation => supergraph.planner.supergraph.mutation_type.clone(),
        Kind::Subscription => supergraph.planner.supergraph.subscription_type.clone(),
        Kind::Query => Some(supergraph.planner.supergraph.query_type.clone()),
    }
    .unwrap_or_else(|| "Query".into());
    check_limits(selection_set, &fragments, limits)?;

    let errors = validate(&supergraph.validation_schema, &document, &VALIDATION_RULES);
    let mut errors: Vec<(String, Vec<(usize, usize)>)> = errors
        .into_iter()
        .map(|e| {
            let mut locations: Vec<(usize, usize)> =
                e.locations.iter().map(|p| (p.line, p.column)).collect();
            if locations.is_empty() {
                locations = locate_value_error(query, &e.message);
            }
            (e.message, locations)
        })
        .collect();
    errors.extend(meta::unknown_meta_fields(
        &supergraph.field_types,
        &supergraph.planner.supergraph.query_type,
        &root,
        selection_set,
        &fragments,
    ));
    errors.extend(merging::conflicts(
        &supergraph.field_types,
        &root,
        selection_set,
        &fragments,
    ));
    if !errors.is_empty() {
        return Err(PrepareError::Validation(errors));
    }
    let defers = defer::uses_defer(selection_set, &fragments);
    if kind == Kind::Subscription && defers {
        return Err(PrepareError::validation(
            "@defer cannot be used in a subscription: each event is sent whole",
        ));
    }
    if kind == Kind::Mutation && defer::defers_a_root_field(selection_set, &fragments) {
        return Err(PrepareError::validation(
            "@defer cannot be used on a mutation's root fields: they run one after another, and each must be answered before the next starts",
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
    let introspects_schema = introspected
        .iter()
        .any(|s| matches!(s, Selection::Field(f) if f.name != "__typename"));
    let introspection = (!introspected.is_empty()).then(|| IntrospectionPart {
        selections: SelectionSet {
            span: selection_set.span,
            items: introspected.iter().map(|s| (*s).clone()).collect(),
        },
        fragments: fragments.iter().map(|f| (*f).clone()).collect(),
    });

    drop(checking);
    // The deadline counts from the start of the work: what parsing and validating took is no
    // longer the planner's.
    let deadline = |stage: &str| {
        if started.elapsed() > PLANNING_TIMEOUT {
            Err(PrepareError::Planning(format!(
                "{stage}: preparing took longer than {PLANNING_TIMEOUT:?}"
            )))
        } else {
            Ok(())
        }
    };
    deadline("after validation")?;
    let planned = if rest.is_empty() {
        None
    } else {
        let _planning = tracing::info_span!(target: TARGET, "graphql.plan").entered();
        let mut remaining = document.clone();
        // The planner plans no `@defer`: this is the operation answered whole.
        defer::strip(&mut remaining);
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
        fetch_hidden_typenames(supergraph, &mut normalized.selection_set, &root);
        deadline("after normalization")?;
        if normalized.selection_set.items.is_empty() {
            // Everything was skipped (`@skip(if: true)`, `@include(if: false)`): nothing to fetch.
            None
        } else {
            let plan = catch_unwind(AssertUnwindSafe(|| {
                supergraph.planner.plan_from_normalized_operation(
                    &normalized,
                    PlannerOverrideContext::default(),
                    &CancellationToken::with_timeout(
                        PLANNING_TIMEOUT.saturating_sub(started.elapsed()),
                    ),
                )
            }))
            .map_err(|panic| PrepareError::Planning(panic_message(panic)))?
            .map_err(|e| PrepareError::Planning(e.to_string()))?;
            Some((normalized, plan))
        }
    };

    Ok(Prepared {
        kind,
        name: self::operation_name(operation).map(str::to_owned),
        root,
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
        introspects_schema,
        planned,
        defers,
    })
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

/// `graphql-tools`' default rules but `OverlappingFieldsCanBeMerged`, which compares every pair of
/// fields with the same response name: [`merging`] checks the same rule in near-linear time.
static VALIDATION_RULES: std::sync::LazyLock<ValidationPlan> = std::sync::LazyLock::new(|| {
    let rules: Vec<Box<dyn ValidationRule>> = vec![
        Box::new(rules::UniqueOperationNames::new()),
        Box::new(rules::LoneAnonymousOperation::new()),
        Box::new(rules::SingleFieldSubscriptions::new()),
        Box::new(rules::KnownTypeNames::new()),
        Box::new(rules::FragmentsOnCompositeTypes::new()),
        Box::new(rules::VariablesAreInputTypes::new()),
        Box::new(rules::LeafFieldSelections::new()),
        Box::new(rules::FieldsOnCorrectType::new()),
        Box::new(rules::UniqueFragmentNames::new()),
        Box::new(rules::KnownFragmentNames::new()),
        Box::new(rules::NoUnusedFragments::new()),
        Box::new(rules::NoFragmentsCycle::new()),
        Box::new(rules::PossibleFragmentSpreads::new()),
        Box::new(rules::NoUnusedVariables::new()),
        Box::new(rules::NoUndefinedVariables::new()),
        Box::new(rules::KnownArgumentNames::new()),
        Box::new(rules::UniqueArgumentNames::new()),
        Box::new(rules::UniqueVariableNames::new()),
        Box::new(rules::ProvidedRequiredArguments::new()),
        Box::new(rules::KnownDirectives::new()),
        Box::new(rules::VariablesInAllowedPosition::new()),
        Box::new(rules::ValuesOfCorrectType::new()),
        Box::new(rules::UniqueInputFieldNames::new()),
        Box::new(rules::UniqueDirectivesPerLocation::new()),
    ];
    ValidationPlan::from(rules)
});

/// The longest preparing one operation may take, all stages together; the planner stops itself
/// at it, and the stages before it are checked against it as they end.
const PLANNING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
