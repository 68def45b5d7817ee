//! Meta fields: `__typename` on any type, `__schema` and `__type` on the query root, and no other
//! name starting with `__`. `graphql-tools`' `FieldsOnCorrectType` (0.5.12) lets every such name
//! through unchecked, and the planner then fails on it, or panics when it sits in an inline fragment
//! without a type condition; so the router refuses them itself, as an unknown field.

use std::collections::HashSet;

use graphql_tools::static_graphql::query::{
    FragmentDefinition, Selection, SelectionSet, TypeCondition,
};

use super::{find_fragment, merging::FieldTypes};

/// The most unknown meta fields reported for one operation.
const MAX_REPORTED: usize = 20;

/// An unknown meta field: the message and its position.
pub type Unknown = (String, Vec<(usize, usize)>);

/// The meta fields of `set` (selected on `root`; `query_root` is the schema's query type) that
/// no type has, fragments from `fragments`.
pub fn unknown_meta_fields(
    types: &FieldTypes,
    query_root: &str,
    root: &str,
    set: &SelectionSet,
    fragments: &[&FragmentDefinition],
) -> Vec<Unknown> {
    let mut walk = Walk {
        types,
        query_root,
        fragments,
        visited: HashSet::new(),
        found: Vec::new(),
    };
    walk.set(root, set);
    walk.found
}

struct Walk<'d> {
    types: &'d FieldTypes,
    query_root: &'d str,
    fragments: &'d [&'d FragmentDefinition],
    /// Fragments walked already: a fragment's type condition fixes its parent, so once is enough.
    visited: HashSet<&'d str>,
    found: Vec<Unknown>,
}

impl<'d> Walk<'d> {
    fn set(&mut self, parent: &str, set: &'d SelectionSet) {
        for selection in &set.items {
            if self.found.len() >= MAX_REPORTED {
                return;
            }
            match selection {
                Selection::Field(field) if field.name.starts_with("__") => {
                    let known = field.name == "__typename"
                        || (parent == self.query_root
                            && (field.name == "__schema" || field.name == "__type"));
                    if !known {
                        self.found.push((
                            format!(
                                "Cannot query field \"{}\" on type \"{parent}\".",
                                field.name
                            ),
                            vec![(field.position.line, field.position.column)],
                        ));
                    }
                }
                Selection::Field(field) => {
                    // Unknown fields are validation's to report.
                    let types = self.types;
                    if let Some(ty) = types.named_type(parent, &field.name) {
                        self.set(ty, &field.selection_set);
                    }
                }
                Selection::InlineFragment(inline) => match &inline.type_condition {
                    Some(TypeCondition::On(ty)) => self.set(ty, &inline.selection_set),
                    None => self.set(parent, &inline.selection_set),
                },
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = find_fragment(self.fragments, &spread.fragment_name) {
                        if self.visited.insert(fragment.name.as_str()) {
                            let TypeCondition::On(ty) = &fragment.type_condition;
                            self.set(ty, &fragment.selection_set);
                        }
                    }
                }
            }
        }
    }
}
