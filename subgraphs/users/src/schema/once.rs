//! Credential checks at most once per operation.
//!
//! One request with 200 aliased `login` fields used to cost 200 argon2 checks and answered 199
//! errors whose paths named every wrong guess. Before anything runs, this extension counts the root
//! fields of each operation that check a password ([`CREDENTIAL_FIELDS`], through fragments too;
//! `@skip`/`@include` are not evaluated, so a field counts even when skipped) and refuses an
//! operation with more than one: `BAD_USER_INPUT`, nothing executed.
//!
//! A whole client request is held to the same rule, however the router splits it ([`BatchId`]):
//! a batch of operations, or one mutation whose sign-ins the plan sends in separate users requests
//! (`a: login .. x: addToOrder .. b: login ..`). The first users request of a client request with a
//! credential field takes its one check; later ones are refused. The ids seen are remembered for
//! ten minutes, least recently used first out when 100,000 are held (always admitting the newest,
//! so a flood of ids cannot make the rule fail open). The record is per users process: behind a
//! load balancer over N users replicas, one client request gets at most N checks, each still
//! throttled.

use std::{collections::HashSet, sync::Arc, time::Duration};

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    ErrorExtensionValues, Positioned, ServerError, ServerResult, Variables,
};
use moka::future::Cache;
use taproom_common::{error::ErrorCode, trust::BatchId};

use crate::error::Error;

/// The root fields that check credentials (and cost argon2 work).
pub const CREDENTIAL_FIELDS: [&str; 4] = ["login", "register", "changePassword", "deleteAccount"];

/// The extension factory: `schema_builder(..).extension(CredentialChecksOnce::new())`.
#[derive(Clone)]
pub struct CredentialChecksOnce {
    /// Batches one of whose operations checked credentials.
    batches: Cache<String, ()>,
}

impl CredentialChecksOnce {
    pub fn new() -> Self {
        CredentialChecksOnce {
            batches: Cache::builder()
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }
}

impl Default for CredentialChecksOnce {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtensionFactory for CredentialChecksOnce {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
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
                return Err(refusal(
                    Error::CredentialsTwice {
                        field: found[0].to_owned(),
                        count: found.len(),
                    },
                    found[0],
                ));
            }
            if let (Some(field), Some(BatchId(batch))) = (found.first(), ctx.data_opt::<BatchId>())
            {
                let first = self
                    .batches
                    .entry(batch.clone())
                    .or_insert(())
                    .await
                    .is_fresh();
                if !first {
                    return Err(refusal(
                        Error::CredentialsTwiceInBatch {
                            field: (*field).to_owned(),
                        },
                        field,
                    ));
                }
            }
        }
        Ok(document)
    }
}

/// The `BAD_USER_INPUT` error refusing an operation before it runs.
fn refusal(error: Error, field: &str) -> ServerError {
    let mut server_error = ServerError::new(error.message(), None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", ErrorCode::BadUserInput.as_str());
    extensions.set("field", field);
    server_error.extensions = Some(extensions);
    server_error
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
