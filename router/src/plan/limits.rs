//! Limits on what one operation may ask (depth, aliases, fields once fragments are expanded,
//! deferred fragments), checked before validation, which is costly on huge operations. Takes the operation's selection
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
    /// The most `@defer`red fragments, once fragments are expanded: each is answered as an
    /// operation of its own (planned, fetched, shaped and sent as one part), so 2,850 of them took
    /// 12.6 s of the router's CPU.
    pub max_deferred: usize,
}

impl Default for OperationLimits {
    fn default() -> Self {
        OperationLimits {
            max_depth: 32,
            max_aliases: 200,
            max_fields: 20_000,
            max_deferred: 16,
        }
    }
}

/// How deep fragment spreads may chain (each spreading the next) before the operation is refused.
const MAX_FRAGMENT_CHAIN: usize = 100;

/// What [`selection_stats`] counts of a selection set, its fragments expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    depth: usize,
    aliases: usize,
    fields: usize,
    deferred: usize,
}

impl Stats {
    /// `self` and `other` side by side: the deeper depth, the counts added.
    fn beside(self, other: Stats) -> Stats {
        Stats {
            depth: self.depth.max(other.depth),
            aliases: self.aliases.saturating_add(other.aliases),
            fields: self.fields.saturating_add(other.fields),
            deferred: self.deferred.saturating_add(other.deferred),
        }
    }
}

fn defers(directives: &[graphql_tools::static_graphql::query::Directive]) -> usize {
    usize::from(directives.iter().any(|d| d.name == "defer"))
}

/// The nesting depth and the numbers of aliases, fields and deferred fragments of `set` with its
/// fragments expanded. Each fragment's figures are computed once and reused (a fragment spread
/// twice at every level would otherwise take exponential time); a cycle counts as nothing
/// (validation reports it).
fn selection_stats(
    set: &SelectionSet,
    fragments: &[&FragmentDefinition],
    memo: &mut HashMap<String, Stats>,
    chain: &mut Vec<String>,
) -> Result<Stats, PrepareError> {
    let mut total = Stats::default();
    for selection in &set.items {
        let stats = match selection {
            Selection::Field(field) => {
                let inner = selection_stats(&field.selection_set, fragments, memo, chain)?;
                Stats {
                    depth: inner.depth + 1,
                    aliases: inner
                        .aliases
                        .saturating_add(usize::from(field.alias.is_some())),
                    fields: inner.fields.saturating_add(1),
                    deferred: inner.deferred,
                }
            }
            Selection::InlineFragment(inline) => {
                let mut inner = selection_stats(&inline.selection_set, fragments, memo, chain)?;
                inner.deferred = inner.deferred.saturating_add(defers(&inline.directives));
                inner
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.fragment_name;
                let mut stats = if let Some(known) = memo.get(name) {
                    *known
                } else if chain.contains(name) {
                    Stats::default()
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
                    Stats::default()
                };
                stats.deferred = stats.deferred.saturating_add(defers(&spread.directives));
                stats
            }
        };
        total = total.beside(stats);
    }
    Ok(total)
}

/// Depth, alias, field and deferred-fragment limits, fragments expanded.
pub(super) fn check_limits(
    selection_set: &SelectionSet,
    fragments: &[&FragmentDefinition],
    limits: &OperationLimits,
) -> Result<(), PrepareError> {
    let mut memo = HashMap::new();
    let Stats {
        depth,
        aliases,
        fields,
        deferred,
    } = selection_stats(selection_set, fragments, &mut memo, &mut Vec::new())?;
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
    if deferred > limits.max_deferred {
        return Err(PrepareError::Limit {
            code: Code::MaxFieldsLimit,
            message: format!(
                "the operation defers {} fragments once its fragments are expanded; the limit is {} (each deferred fragment is fetched and sent as an operation of its own)",
                if deferred == usize::MAX {
                    "too many".to_owned()
                } else {
                    deferred.to_string()
                },
                limits.max_deferred
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
