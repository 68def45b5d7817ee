//! Credential checks at most once per operation.
//!
//! One request with 200 aliased `login` fields used to cost 200 argon2 checks and answered 199
//! errors whose paths named every wrong guess. Before anything runs, this extension counts the root
//! fields of each operation that check a password ([`CREDENTIAL_FIELDS`], through fragments too;
//! `@skip`/`@include` are not evaluated, so a field counts even when skipped) and refuses an
//! operation with more than one: `BAD_USER_INPUT`, nothing executed.

use std::{collections::HashSet, sync::Arc};

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    ErrorExtensionValues, Positioned, ServerError, ServerResult, Variables,
};
use taproom_common::error::ErrorCode;

use crate::error::Error;

/// The root fields that check credentials (and cost argon2 work).
pub const CREDENTIAL_FIELDS: [&str; 4] = ["login", "register", "changePassword", "deleteAccount"];

/// The extension factory: `schema_builder(..).extension(CredentialChecksOnce)`.
pub struct CredentialChecksOnce;

impl ExtensionFactory for CredentialChecksOnce {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CredentialChecksOnce)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for CredentialChecksOnce {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        for (_, operation) in document.operations.iter() {
            let mut found = Vec::new();
            count(
                &document,
                &operation.node.selection_set,
                &mut found,
                &mut HashSet::new(),
            );
            if found.len() > 1 {
                let error = Error::CredentialsTwice {
                    field: found[0].to_owned(),
                    count: found.len(),
                };
                let mut server_error = ServerError::new(error.message(), None);
                let mut extensions = ErrorExtensionValues::default();
                extensions.set("code", ErrorCode::BadUserInput.as_str());
                extensions.set("field", found[0]);
                server_error.extensions = Some(extensions);
                return Err(server_error);
            }
        }
        Ok(document)
    }
}

/// Adds the credential fields of `selection` (a root selection) to `found`, following fragments
/// once each.
fn count<'d>(
    document: &'d ExecutableDocument,
    selection: &'d Positioned<SelectionSet>,
    found: &mut Vec<&'d str>,
    visited: &mut HashSet<&'d str>,
) {
    for item in &selection.node.items {
        match &item.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                if let Some(known) = CREDENTIAL_FIELDS.iter().find(|f| **f == name) {
                    found.push(known);
                }
            }
            Selection::InlineFragment(fragment) => {
                count(document, &fragment.node.selection_set, found, visited)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if visited.insert(name) {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        count(document, &fragment.node.selection_set, found, visited);
                    }
                }
            }
        }
    }
}
