//! Subtrees resolved once per request and shared where the same selection meets the same entity again.
//!
//! A federated query often asks the same thing of the same entity many times in one request: the
//! router's `myOrders { owner { orders { ... } } }` reaches the caller's own orders once under each of
//! their orders, so async-graphql resolved the same 20 orders, field by field, 20 times over. What a
//! field node of the document resolves to for one entity cannot differ between those places (same
//! document, same variables, same caller), so [`resolve_once`] loads and resolves it once and hands the others a
//! copy of the finished value.
//!
//! - The memo lives in the request's data ([`Memo`], put there by [`crate::http`]'s handler); without
//!   one (a schema executed directly in a test) [`resolve_once`] simply loads and resolves.
//! - Places that reach the same subtree at the same time wait for the first one instead of resolving
//!   it alongside (async-graphql resolves list items concurrently, so a plain cache would be empty
//!   for all of them).
//! - Queries only: in a mutation, a later root field may see what an earlier one changed.
//! - Only a clean result is shared. If resolving fails, or records an error on the way (a nullable
//!   field below that failed and became `null`), every place resolves on its own, so each error is
//!   reported once per path, as it would be without the memo.

use std::{
    borrow::Cow,
    collections::HashMap,
    future::Future,
    marker::PhantomData,
    sync::{Arc, Mutex},
};

use async_graphql::{
    parser::types::{Field, OperationType},
    registry, Context, ContextSelectionSet, OutputType, Positioned, Result, ServerResult, Value,
};
use tokio::sync::OnceCell;

/// One request's resolved subtrees, keyed by the field node of the document that resolved them and
/// the entity they were resolved for.
#[derive(Default)]
pub struct Memo {
    resolved: Mutex<HashMap<(usize, i64), Slot>>,
}

/// Where one subtree's value is waited for; `None` once its first resolution is known not to be
/// shareable.
type Slot = Arc<OnceCell<Option<Value>>>;

impl Memo {
    /// The slot of `field`'s value for `entity`, shared by every place that asks for it.
    fn slot(&self, field: &Positioned<Field>, entity: i64) -> Slot {
        // The field node's address identifies it: the document outlives the request's resolution.
        let key = (std::ptr::from_ref(field) as usize, entity);
        self.resolved
            .lock()
            .expect("the memo lock is never held across a panic")
            .entry(key)
            .or_default()
            .clone()
    }
}

/// Resolves the field being resolved (`ctx`) for `entity` once per request: the first place loads its
/// value with `load` and resolves it; the others get a copy of the result. `entity` must, together
/// with the field node, determine the whole value (e.g. the id of the user whose orders these are).
///
/// An error from `load` is this place's error; the places after it load for themselves.
pub async fn resolve_once<T, Fut>(
    ctx: &Context<'_>,
    entity: i64,
    load: impl FnOnce() -> Fut,
) -> Result<Resolved<T>>
where
    T: OutputType,
    Fut: Future<Output = Result<T>>,
{
    let field = ctx.item;
    // What async-graphql's generated resolvers do with a field's value.
    let selection = ctx.with_selection_set(&field.node.selection_set);
    let memo = ctx.data_opt::<Memo>().filter(|_| is_query(ctx));
    let Some(memo) = memo else {
        return Ok(Resolved::new(
            load().await?.resolve(&selection, field).await,
        ));
    };
    let slot = memo.slot(field, entity);
    let mut load = Some(load);
    let mut own = None;
    let shared = slot
        .get_or_init(|| async {
            let load = load.take().expect("the slot initialises once per place");
            let errors_before = recorded_errors(ctx);
            let result = match load().await {
                Ok(value) => Ok(value.resolve(&selection, field).await),
                Err(error) => Err(error),
            };
            let clean = recorded_errors(ctx) == errors_before;
            let shared = match &result {
                Ok(Ok(value)) if clean => Some(value.clone()),
                _ => None,
            };
            own = Some(result);
            shared
        })
        .await;
    if let Some(result) = own {
        return result.map(Resolved::new);
    }
    match (shared, load) {
        (Some(value), _) => Ok(Resolved::new(Ok(value.clone()))),
        (None, Some(load)) => Ok(Resolved::new(
            load().await?.resolve(&selection, field).await,
        )),
        (None, None) => {
            unreachable!("a place that did not initialise the slot still has its loader")
        }
    }
}

/// A field's value already resolved by [`resolve_once`], handed to async-graphql as it is; its
/// GraphQL type is `T`'s.
pub struct Resolved<T> {
    result: Mutex<Option<ServerResult<Value>>>,
    of: PhantomData<fn() -> T>,
}

impl<T> Resolved<T> {
    fn new(result: ServerResult<Value>) -> Self {
        Resolved {
            result: Mutex::new(Some(result)),
            of: PhantomData,
        }
    }
}

impl<T: OutputType> OutputType for Resolved<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        _ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        self.result
            .lock()
            .expect("the result lock is never held across a panic")
            .take()
            .expect("async-graphql resolves a field's value once")
    }
}

/// Whether the request runs a query. A mutation's root fields run one after another and change
/// what the next one sees, so a subtree reached again under a later one (through a fragment) must
/// be resolved again.
fn is_query(ctx: &Context<'_>) -> bool {
    ctx.query_env.operation.node.ty == OperationType::Query
}

/// How many errors the request has recorded so far (nullable fields that failed). async-graphql keeps
/// them in its query environment (as it does the operation), which it marks as not a stable
/// interface: the lock file pins the version, and a change there fails to compile rather than
/// sharing a subtree that had an error.
fn recorded_errors(ctx: &Context<'_>) -> usize {
    ctx.query_env
        .errors
        .lock()
        .expect("async-graphql never panics while holding its error list")
        .len()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Response, Schema};
    use serde_json::{json, Value as Json};

    use super::*;

    /// How many times a user's orders were loaded.
    type Loads = Arc<AtomicUsize>;

    struct Query;

    #[Object]
    impl Query {
        /// `count` references to each of `users`, in turn.
        async fn refs(&self, users: Vec<i64>, count: usize) -> Vec<UserRef> {
            (0..count)
                .flat_map(|_| users.iter().map(|&id| UserRef(id)))
                .collect()
        }
    }

    struct Mutation;

    #[Object]
    impl Mutation {
        /// User 1, after changing something of theirs.
        async fn touch(&self) -> UserRef {
            UserRef(1)
        }
    }

    struct UserRef(i64);

    /// User 13's orders fail to load; user 7's orders load, but their `note` fails.
    #[Object]
    impl UserRef {
        async fn orders(&self, ctx: &Context<'_>) -> Result<Resolved<Vec<OrderOf>>> {
            let user = self.0;
            resolve_once(ctx, user, || async move {
                ctx.data_unchecked::<Loads>().fetch_add(1, Ordering::SeqCst);
                // Let the other places start before this one finishes, as a database load would.
                tokio::task::yield_now().await;
                if user == 13 {
                    return Err("the orders did not load".into());
                }
                Ok((1..=2).map(|n| OrderOf(user, n)).collect())
            })
            .await
        }
    }

    struct OrderOf(i64, i64);

    #[Object]
    impl OrderOf {
        async fn id(&self) -> String {
            format!("{}-{}", self.0, self.1)
        }

        async fn note(&self) -> Result<Option<String>> {
            if self.0 == 7 {
                return Err("no note".into());
            }
            Ok(Some(format!("order {}", self.1)))
        }
    }

    /// `refs(users, count) { orders { id note } }`, with or without a memo: the answer as JSON and
    /// how many loads it took.
    async fn run(users: &[i64], count: usize, memo: bool) -> (Json, usize) {
        let loads = Loads::default();
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .data(loads.clone())
            .finish();
        let mut request = Request::new(format!(
            "{{ refs(users: {users:?}, count: {count}) {{ orders {{ id note }} }} }}"
        ));
        if memo {
            request = request.data(Memo::default());
        }
        let response: Response = schema.execute(request).await;
        let answer = serde_json::to_value(&response).expect("a response serialises");
        (answer, loads.load(Ordering::SeqCst))
    }

    fn error_paths(answer: &Json) -> Vec<String> {
        let mut paths: Vec<String> = answer["errors"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|error| error["path"].to_string())
            .collect();
        paths.sort();
        paths
    }

    #[tokio::test]
    async fn each_entity_loads_once_per_request_and_every_place_gets_the_same_answer() {
        let (shared, loads) = run(&[1, 2], 5, true).await;
        assert_eq!(loads, 2, "one load per user, not per place");
        let (alone, loads) = run(&[1, 2], 5, false).await;
        assert_eq!(loads, 10, "without a memo every place loads");
        assert_eq!(shared, alone);
        assert_eq!(
            shared["data"]["refs"][2]["orders"],
            json!([{"id": "1-1", "note": "order 1"}, {"id": "1-2", "note": "order 2"}])
        );
    }

    #[tokio::test]
    async fn a_mutation_resolves_every_place() {
        let loads = Loads::default();
        let schema = Schema::build(Query, Mutation, EmptySubscription)
            .data(loads.clone())
            .finish();
        let request = Request::new(
            "fragment F on UserRef { orders { id } } mutation { a: touch { ...F } b: touch { ...F } }",
        )
        .data(Memo::default());
        let response = schema.execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_load_is_not_shared_and_each_place_reports_its_own_error() {
        let (shared, loads) = run(&[13], 3, true).await;
        let (alone, _) = run(&[13], 3, false).await;
        assert_eq!(
            loads, 3,
            "after a failure the other places load for themselves"
        );
        assert_eq!(error_paths(&shared), error_paths(&alone));
        assert_eq!(error_paths(&shared).len(), 3);
        assert_eq!(shared, alone);
    }

    #[tokio::test]
    async fn a_subtree_with_an_error_inside_is_not_shared() {
        let (shared, loads) = run(&[7], 3, true).await;
        let (alone, _) = run(&[7], 3, false).await;
        assert_eq!(
            loads, 3,
            "an error below keeps the subtree from being shared"
        );
        // Two orders under each of three places: six errors, each with its own path.
        assert_eq!(error_paths(&shared).len(), 6);
        assert_eq!(error_paths(&shared), error_paths(&alone));
    }
}
