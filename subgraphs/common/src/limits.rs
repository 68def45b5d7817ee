//! Limits on the documents a subgraph executes, the same as the router's and counted the same way,
//! so that a client meets the router's limit first and a subgraph called directly is no softer.
//!
//! Checked right after parsing, before validation (which is costly on huge documents), by an
//! async-graphql extension that [`crate::http::schema_builder`] installs:
//!
//! - depth (fields nested, fragments expanded) at most [`MAX_DEPTH`]: the router's default 32 plus
//!   the `_entities` field its entity fetches wrap a selection in; `MAX_DEPTH_LIMIT`;
//! - aliases at most [`MAX_ALIASES`], the router's default; `MAX_ALIASES_LIMIT`;
//! - fields once fragments are expanded at most [`MAX_FIELDS`], the router's default;
//!   `MAX_FIELDS_LIMIT`;
//! - a directive repeated at one location (`@include(if: true) @include(if: true)`), which
//!   GraphQL's validation forbids and the router refuses; `GRAPHQL_VALIDATION_FAILED`.
//!
//! Errors carry no path (nothing was executed) and say which limit and by how much.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{Directive, ExecutableDocument, Selection, SelectionSet},
    ErrorExtensionValues, Positioned, ServerError, ServerResult, Variables,
};

/// The deepest document a subgraph executes.
pub const MAX_DEPTH: usize = 33;
/// The most aliases.
pub const MAX_ALIASES: usize = 200;
/// The most fields once fragments are expanded.
pub const MAX_FIELDS: usize = 20_000;
/// How deep fragment spreads may chain.
const MAX_FRAGMENT_CHAIN: usize = 100;

/// The extension: `.extension(DocumentLimits)`.
pub struct DocumentLimits;

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentLimits)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document).map_err(|(code, message)| {
            let mut error = ServerError::new(message, None);
            let mut extensions = ErrorExtensionValues::default();
            extensions.set("code", code);
            error.extensions = Some(extensions);
            error
        })?;
        Ok(document)
    }
}

/// Figures of a selection: depth, aliases, fields.
type Stats = (usize, usize, usize);

/// The limit `document` breaks, as (code, message), if any.
pub fn check(document: &ExecutableDocument) -> Result<(), (&'static str, String)> {
    let mut memo = HashMap::new();
    for (_, operation) in document.operations.iter() {
        repeated_directive(&operation.node.directives)?;
        let (depth, aliases, fields) = stats(
            document,
            &operation.node.selection_set,
            &mut memo,
            &mut Vec::new(),
        )?;
        if depth > MAX_DEPTH {
            return Err((
                "MAX_DEPTH_LIMIT",
                format!("the operation is {depth} fields deep; the limit is {MAX_DEPTH}"),
            ));
        }
        if fields > MAX_FIELDS {
            return Err((
                "MAX_FIELDS_LIMIT",
                format!(
                    "the operation selects {fields} fields once its fragments are expanded; the limit is {MAX_FIELDS}"
                ),
            ));
        }
        if aliases > MAX_ALIASES {
            return Err((
                "MAX_ALIASES_LIMIT",
                format!("the operation has {aliases} aliases; the limit is {MAX_ALIASES}"),
            ));
        }
    }
    Ok(())
}

/// A directive named twice at one location.
fn repeated_directive(directives: &[Positioned<Directive>]) -> Result<(), (&'static str, String)> {
    for (i, directive) in directives.iter().enumerate() {
        let name = &directive.node.name.node;
        if directives[..i].iter().any(|d| d.node.name.node == *name) {
            return Err((
                "GRAPHQL_VALIDATION_FAILED",
                format!("the directive @{name} is used more than once at one location"),
            ));
        }
    }
    Ok(())
}

fn stats<'d>(
    document: &'d ExecutableDocument,
    set: &'d Positioned<SelectionSet>,
    memo: &mut HashMap<&'d str, Stats>,
    chain: &mut Vec<&'d str>,
) -> Result<Stats, (&'static str, String)> {
    let (mut depth, mut aliases, mut fields) = (0usize, 0usize, 0usize);
    for item in &set.node.items {
        let (d, a, f) = match &item.node {
            Selection::Field(field) => {
                repeated_directive(&field.node.directives)?;
                let (d, a, f) = stats(document, &field.node.selection_set, memo, chain)?;
                (
                    d + 1,
                    a.saturating_add(usize::from(field.node.alias.is_some())),
                    f.saturating_add(1),
                )
            }
            Selection::InlineFragment(inline) => {
                repeated_directive(&inline.node.directives)?;
                stats(document, &inline.node.selection_set, memo, chain)?
            }
            Selection::FragmentSpread(spread) => {
                repeated_directive(&spread.node.directives)?;
                let name = spread.node.fragment_name.node.as_str();
                if let Some(known) = memo.get(name) {
                    *known
                } else if chain.contains(&name) {
                    (0, 0, 0)
                } else if let Some(fragment) =
                    document.fragments.get(&spread.node.fragment_name.node)
                {
                    if chain.len() >= MAX_FRAGMENT_CHAIN {
                        return Err((
                            "MAX_DEPTH_LIMIT",
                            format!("fragment spreads chain more than {MAX_FRAGMENT_CHAIN} deep"),
                        ));
                    }
                    repeated_directive(&fragment.node.directives)?;
                    chain.push(name);
                    let found = stats(document, &fragment.node.selection_set, memo, chain)?;
                    chain.pop();
                    memo.insert(name, found);
                    found
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

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(query: &str) -> Result<(), &'static str> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        check(&document).map_err(|(code, _)| code)
    }

    fn nested(depth: usize) -> String {
        let mut query = String::from("{ ");
        for _ in 1..depth {
            query.push_str("a { ");
        }
        query.push('b');
        for _ in 1..depth {
            query.push_str(" }");
        }
        query.push_str(" }");
        query
    }

    #[test]
    fn counts_like_the_router() {
        assert_eq!(checked(&nested(MAX_DEPTH)), Ok(()));
        assert_eq!(checked(&nested(MAX_DEPTH + 1)), Err("MAX_DEPTH_LIMIT"));
        let aliases = |n: usize| {
            let fields: String = (0..n).map(|i| format!("a{i}: b ")).collect();
            format!("{{ {fields} }}")
        };
        assert_eq!(checked(&aliases(MAX_ALIASES)), Ok(()));
        assert_eq!(checked(&aliases(MAX_ALIASES + 1)), Err("MAX_ALIASES_LIMIT"));
        // Fragments expand: 2^20 fields from a few lines.
        let mut bomb = String::from("{ ...F0 }\n");
        for i in 0..20 {
            bomb.push_str(&format!(
                "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
                n = i + 1
            ));
        }
        bomb.push_str("fragment F20 on Query { b }\n");
        assert_eq!(checked(&bomb), Err("MAX_FIELDS_LIMIT"));
    }

    #[test]
    fn a_directive_repeated_at_one_place_is_refused() {
        let repeated = "@include(if: true) ".repeat(5000);
        assert_eq!(
            checked(&format!("{{ a {repeated} }}")),
            Err("GRAPHQL_VALIDATION_FAILED")
        );
        assert_eq!(
            checked("{ a @include(if: true) @skip(if: false) b @include(if: true) }"),
            Ok(())
        );
    }
}
