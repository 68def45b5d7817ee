//! Locations for validation errors about input values, found in the query text. Takes the query
//! and an error message; returns `(line, column)` pairs.

/// graphql-tools' rule for input values reports no locations (its AST has none for values). For the
/// two errors that name what they point at, an enum value that does not exist and an input field
/// that is not defined, the locations are found in the query text as graphql-js reports them: the
/// enum value, and the object field's name. Other errors keep no location.
pub(super) fn locate_value_error(query: &str, message: &str) -> Vec<(usize, usize)> {
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
}
