//! Splitting the root selection: the response keys in the client's order, and whether
//! introspection fields hide inside root fragments (which the router refuses). Takes the parsed
//! operation's root selection set and fragments.

use std::collections::HashSet;

use graphql_tools::static_graphql::query::{FragmentDefinition, Selection, SelectionSet};

use super::find_fragment;

/// The response keys of the root selection in request order, through root fragments.
pub(super) fn collect_root_keys(
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
pub(super) fn introspection_in_root_fragments(
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
