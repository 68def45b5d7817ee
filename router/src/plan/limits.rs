//! Limits on what one operation may ask (depth, aliases, fields once fragments are expanded),
//! checked before validation, which is costly on huge operations. Takes the operation's selection
//! set and fragments; returns nothing, or the limit it breaks as a [`PrepareError::Limit`].

use std::collections::HashMap;

use graphql_tools::static_graphql::query::{FragmentDefinition, Selection, SelectionSet};

use super::{find_fragment, PrepareError};
use crate::error::Code;

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
                            code: Code::MaxDepthLimit,
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
pub(super) fn check_limits(
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
            code: Code::MaxFieldsLimit,
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
            code: Code::MaxAliasesLimit,
            message: format!(
                "the operation has {aliases} aliases; the limit is {}",
                limits.max_aliases
            ),
        });
    }
    Ok(())
}

pub(super) fn depth_error(depth: usize, limits: &OperationLimits) -> PrepareError {
    PrepareError::Limit {
        code: Code::MaxDepthLimit,
        message: format!(
            "the operation is {depth} levels deep; the limit is {}",
            limits.max_depth
        ),
    }
}

/// The deepest `{` nesting in a document, outside strings and comments: an upper bound of the
/// selection depth (plus one for the operation's own braces), computed without parsing.
pub(super) fn brace_depth(text: &str) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brace_depth_ignores_strings_and_comments() {
        assert_eq!(brace_depth("{ a { b } }"), 2);
        assert_eq!(brace_depth(r#"{ a(s: "{{{{") { b } } # {{{{"#), 2);
        assert_eq!(brace_depth("{ a(s: \"\"\"{{{\"\"\") }"), 1);
        assert_eq!(brace_depth(r#"{ a(s: "\"{") }"#), 1);
    }
}
