//! Collecting an introspection selection's fields as the spec's CollectFields does (aliases,
//! merged response keys, fragments, `@skip`/`@include`), and reading field arguments, literal or
//! variable.

use graphql_tools::static_graphql::query::{
    self, FragmentDefinition, Selection, SelectionSet, TypeCondition,
};
use serde_json::Map;

use crate::ast::to_json;

/// What one execution shares.
pub(super) struct Context<'q> {
    pub(super) variables: &'q Map<String, serde_json::Value>,
    pub(super) fragments: &'q [FragmentDefinition],
}

impl<'q> Context<'q> {
    /// Groups the fields of `set` that apply to an object of type `typename` by response key, in
    /// order (the spec's CollectFields).
    pub(super) fn collect(
        &self,
        set: &'q SelectionSet,
        typename: &str,
        groups: &mut Vec<(&'q str, Vec<&'q query::Field>)>,
    ) {
        for item in &set.items {
            match item {
                Selection::Field(field) => {
                    if !self.included(&field.directives) {
                        continue;
                    }
                    let key = field.alias.as_deref().unwrap_or(&field.name);
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, fields)) => fields.push(field),
                        None => groups.push((key, vec![field])),
                    }
                }
                Selection::InlineFragment(inline) => {
                    let applies = match &inline.type_condition {
                        Some(TypeCondition::On(condition)) => condition == typename,
                        None => true,
                    };
                    if applies && self.included(&inline.directives) {
                        self.collect(&inline.selection_set, typename, groups);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.directives) {
                        continue;
                    }
                    let fragment = self
                        .fragments
                        .iter()
                        .find(|f| f.name == spread.fragment_name);
                    if let Some(fragment) = fragment {
                        let TypeCondition::On(condition) = &fragment.type_condition;
                        if condition == typename {
                            self.collect(&fragment.selection_set, typename, groups);
                        }
                    }
                }
            }
        }
    }

    /// `@skip(if:)` / `@include(if:)`, literal or variable.
    fn included(&self, directives: &[query::Directive]) -> bool {
        directives.iter().all(|d| {
            let condition = d
                .arguments
                .iter()
                .find(|(name, _)| name == "if")
                .is_some_and(|(_, value)| self.value(value) == serde_json::Value::Bool(true));
            match d.name.as_str() {
                "skip" => !condition,
                "include" => condition,
                _ => true,
            }
        })
    }

    fn value(&self, value: &query::Value) -> serde_json::Value {
        to_json(value, self.variables)
    }

    pub(super) fn bool_argument(&self, field: &query::Field, name: &str) -> bool {
        field
            .arguments
            .iter()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, v)| self.value(v) == serde_json::Value::Bool(true))
    }

    pub(super) fn string_argument(&self, field: &query::Field, name: &str) -> Option<String> {
        field
            .arguments
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match self.value(v) {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
    }
}
