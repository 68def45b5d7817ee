//! Representations for entity fetches: the objects at a fetch's paths ([`Execution::collect_targets`])
//! projected to the fields the subgraph requires, each distinct one sent once.

use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::{FetchRewrite, FlattenNodePathSegment},
};

use rustc_hash::FxHashMap;

use super::{Execution, Target};
use crate::{
    path::{Path, Step},
    value::{Obj, Val},
};

impl<'a> Execution<'a> {
    /// The targets at `paths` with the index of their (deduplicated) representation, and the
    /// representations themselves as JSON text. Targets whose representation is empty are left out.
    pub(super) fn representations<'p>(
        &self,
        paths: &[&'p [FlattenNodePathSegment]],
        requires: &SelectionSet,
        input_rewrites: Option<&[FetchRewrite]>,
    ) -> (Vec<Target<'p>>, Vec<Vec<u8>>) {
        let data = self.data.lock().expect("the data lock is never poisoned");
        let mut targets = Vec::new();
        let mut index_of: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
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
                representation.write_to(&mut text);
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

    /// Visits every object reached by `path` from `value`, with its concrete path.
    pub(super) fn collect_targets<'v, 'p>(
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
}
