//! A rewrite of the normalized operation before planning: `__typename` where shaping needs it.
//! Takes the normalized root selection set and its type; changes it in place.

use hive_router_query_planner::ast::{
    selection_item::SelectionItem,
    selection_set::{FieldSelection, SelectionSet as NormalizedSelectionSet},
};

use crate::supergraph::Supergraph;

/// Adds `__typename` (left out of the response) under every field of an interface or union that
/// hides some of its members from the client (`@inaccessible`), where the client did not select it:
/// shaping needs each object's type to turn one the client's schema cannot have into `null`.
pub(super) fn fetch_hidden_typenames(
    supergraph: &Supergraph,
    set: &mut NormalizedSelectionSet,
    parent: &str,
) {
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
