//! The planner's rewrites: input rewrites (`ValueSetter`) on representations before they are sent,
//! output rewrites (`KeyRenamer`) on entities before they are merged.

use hive_router_query_planner::planner::plan_nodes::{FetchNodePathSegment, FetchRewrite};

use super::Execution;
use crate::value::{Obj, Val};

impl<'a> Execution<'a> {
    /// Applies input (`ValueSetter`) and output (`KeyRenamer`) rewrites to `value`.
    pub(super) fn rewrite(&self, value: &mut Val<'a>, rewrites: &[FetchRewrite]) {
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
