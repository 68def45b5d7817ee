//! Subgraph errors placed in the client's response: paths inside a subgraph operation rewritten to
//! the client's paths, and the error of a subgraph that could not be asked.

use super::Target;
use crate::{
    error::{Code, GraphqlError},
    path::{path_json, Path, Step},
};

/// The error for a subgraph that could not be asked or answered garbage.
pub fn subgraph_failed(service: &str, reason: &str) -> GraphqlError {
    GraphqlError::new(
        Code::SubgraphRequestFailed,
        format!("request to subgraph \"{service}\" failed: {reason}"),
    )
    .service(service)
}

/// The most places one failed fetch reports an error at; beyond them one error says how many more.
const MAX_FAILED_PLACES: usize = 100;

/// A failed fetch's error at each of `places` (the paths of the fields it could not fetch), so a
/// client can tell a field that could not be fetched from one that is null; at most
/// [`MAX_FAILED_PLACES`] of them, then one error without a path counting the rest.
pub(super) fn at_places(error: GraphqlError, places: &[Path]) -> Vec<GraphqlError> {
    let mut errors: Vec<GraphqlError> = places
        .iter()
        .take(MAX_FAILED_PLACES)
        .map(|place| prefix_path(error.clone(), place, 0))
        .collect();
    if places.len() > MAX_FAILED_PLACES {
        let mut rest = error.clone();
        rest.message = format!(
            "{} (and at {} more places)",
            error.message,
            places.len() - MAX_FAILED_PLACES
        );
        errors.push(strip_path(rest));
    }
    if errors.is_empty() {
        errors.push(error);
    }
    errors
}

/// A root-level error keeps its path, prefixed with each target's path (root re-entry fetches).
pub(super) fn relocate_root(error: GraphqlError, targets: &[Path]) -> Vec<GraphqlError> {
    match targets {
        [only] if only.is_empty() => vec![error],
        _ => targets
            .iter()
            .map(|target| prefix_path(error.clone(), target, 0))
            .collect(),
    }
}

/// `["_entities", i, rest..]` becomes `target + rest` for every target of representation `i`.
///
/// Some subgraph servers (async-graphql among them) leave the index out: `["_entities", rest..]`.
/// The entity is then found when it is unambiguous: a single representation, or a single entity that
/// came back null (a field error nulls its entity).
pub(super) fn relocate_entity_error(
    error: GraphqlError,
    targets: &[Target],
    sent: usize,
    nulls: &[usize],
) -> (Vec<GraphqlError>, Option<usize>) {
    let path = error.path.clone().unwrap_or_default();
    let (index, skip) = match path.get(1).map(|v| v.as_u64()) {
        Some(Some(index)) => (Some(index as usize), 2),
        Some(None) if sent == 1 => (Some(0), 1),
        Some(None) if nulls.len() == 1 => (Some(nulls[0]), 1),
        _ => (None, 0),
    };
    let matching: Vec<&Path> = match index {
        Some(index) => targets
            .iter()
            .filter(|(_, i, _)| *i == index)
            .map(|(p, _, _)| p)
            .collect(),
        None => Vec::new(),
    };
    if matching.is_empty() {
        (vec![strip_path(error)], index)
    } else {
        let relocated = matching
            .into_iter()
            .map(|target| prefix_path(error.clone(), target, skip))
            .collect();
        (relocated, index)
    }
}

fn prefix_path(mut error: GraphqlError, prefix: &[Step], skip: usize) -> GraphqlError {
    let rest = error.path.take().unwrap_or_default().into_iter().skip(skip);
    let mut path = path_json(prefix);
    path.extend(rest);
    error.path = Some(path);
    error
}

/// The error without its path (one that cannot be placed in the client's response).
pub(super) fn strip_path(mut error: GraphqlError) -> GraphqlError {
    error.path = None;
    error
}
