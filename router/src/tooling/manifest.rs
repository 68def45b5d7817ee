//! `taproom-router manifest`: the frontend's operations (a folder of `*.graphql` files) as an Apollo
//! persisted query manifest, which `serve --persisted-documents` reads.
//!
//! Each named operation becomes one entry whose body is the operation printed in a canonical form
//! (graphql-parser's printer) followed by the fragments it uses, each once, by name; its id is the
//! body's SHA-256. Fragments may live in any file of the folder; operation names must be unique.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
};

use anyhow::Context as _;
use graphql_tools::{
    parser::query::{Definition, FragmentDefinition, OperationDefinition, Selection, SelectionSet},
    validation::{rules::default_rules_validation_plan, validate::validate},
};

use crate::{
    persisted::{sha256_hex, ManifestFile, ManifestOperation, MANIFEST_FORMAT},
    supergraph::Supergraph,
};

/// The manifest of the operations in `dir`, each validated against `supergraph_sdl`'s API schema.
pub fn build(dir: &Path, supergraph_sdl: &str) -> anyhow::Result<ManifestFile> {
    let mut texts = Vec::new();
    for path in &super::check::operation_files(dir)? {
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ));
    }
    let mut operations: BTreeMap<String, (String, OperationDefinition<'_, String>)> =
        BTreeMap::new();
    let mut fragments: HashMap<String, FragmentDefinition<'_, String>> = HashMap::new();
    for (file, text) in &texts {
        let document = graphql_tools::parser::parse_query::<String>(text)
            .map_err(|e| anyhow::anyhow!("{file} does not parse: {e}"))?;
        for definition in document.definitions {
            match definition {
                Definition::Fragment(fragment) => {
                    let name = fragment.name.clone();
                    anyhow::ensure!(
                        fragments.insert(name.clone(), fragment).is_none(),
                        "{file}: the fragment {name} is defined twice in the folder"
                    );
                }
                Definition::Operation(operation) => {
                    let name = operation_name(&operation).with_context(|| {
                        format!("{file}: every operation needs a name to be persisted")
                    })?;
                    anyhow::ensure!(
                        !operations.contains_key(&name),
                        "{file}: the operation name {name} is used twice in the folder"
                    );
                    operations.insert(name, (file.clone(), operation));
                }
            }
        }
    }
    let supergraph = Supergraph::load(supergraph_sdl, &HashMap::new(), 1)?;
    let mut entries = Vec::new();
    for (name, (file, operation)) in &operations {
        let mut used = BTreeSet::new();
        uses(operation_selection(operation), &fragments, &mut used)
            .with_context(|| format!("{file}: operation {name}"))?;
        let mut body = operation.to_string().trim_end().to_owned();
        for fragment in &used {
            body.push_str("\n\n");
            body.push_str(fragments[fragment.as_str()].to_string().trim_end());
        }
        let document = graphql_tools::parser::parse_query::<String>(&body)
            .map_err(|e| anyhow::anyhow!("{file}: operation {name} does not print back: {e}"))?
            .into_static();
        let errors = validate(
            &supergraph.planner.consumer_schema.document,
            &document,
            &default_rules_validation_plan(),
        );
        if !errors.is_empty() {
            let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
            anyhow::bail!(
                "{file}: operation {name} does not validate: {}",
                messages.join("; ")
            );
        }
        entries.push(ManifestOperation {
            id: sha256_hex(&body),
            name: name.clone(),
            kind: match operation {
                OperationDefinition::Mutation(_) => "mutation",
                OperationDefinition::Subscription(_) => "subscription",
                _ => "query",
            }
            .to_owned(),
            body,
        });
    }
    Ok(ManifestFile {
        format: MANIFEST_FORMAT.to_owned(),
        version: 1,
        operations: entries,
    })
}

/// The manifest as the JSON text it is written as (pretty, ending in a newline).
pub fn to_text(manifest: &ManifestFile) -> String {
    let mut text = serde_json::to_string_pretty(manifest).expect("a manifest serializes");
    text.push('\n');
    text
}

fn operation_name(operation: &OperationDefinition<'_, String>) -> Option<String> {
    match operation {
        OperationDefinition::Query(q) => q.name.clone(),
        OperationDefinition::Mutation(m) => m.name.clone(),
        OperationDefinition::Subscription(s) => s.name.clone(),
        OperationDefinition::SelectionSet(_) => None,
    }
}

fn operation_selection<'o, 'a>(
    operation: &'o OperationDefinition<'a, String>,
) -> &'o SelectionSet<'a, String> {
    match operation {
        OperationDefinition::Query(q) => &q.selection_set,
        OperationDefinition::Mutation(m) => &m.selection_set,
        OperationDefinition::Subscription(s) => &s.selection_set,
        OperationDefinition::SelectionSet(s) => s,
    }
}

/// Adds the fragments `selection` spreads (and those they spread) to `used`.
fn uses(
    selection: &SelectionSet<'_, String>,
    fragments: &HashMap<String, FragmentDefinition<'_, String>>,
    used: &mut BTreeSet<String>,
) -> anyhow::Result<()> {
    for item in &selection.items {
        match item {
            Selection::Field(field) => uses(&field.selection_set, fragments, used)?,
            Selection::InlineFragment(inline) => uses(&inline.selection_set, fragments, used)?,
            Selection::FragmentSpread(spread) => {
                let name = &spread.fragment_name;
                let fragment = fragments
                    .get(name)
                    .with_context(|| format!("uses the fragment {name}, defined nowhere"))?;
                if used.insert(name.clone()) {
                    uses(&fragment.selection_set, fragments, used)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPERGRAPH: &str = include_str!("../../../schema/supergraph.graphql");

    #[test]
    fn operations_become_entries_with_their_fragments_and_hashes() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(
            dir.path().join("a.graphql"),
            "# a page\nquery Page($sku: String!) { beer(sku: $sku) { ...Card } }\nmutation Out { logout }\n",
        )
        .expect("written");
        std::fs::write(
            dir.path().join("b.graphql"),
            "fragment Card on Beer { name ...Price }\nfragment Price on Beer { price }\nfragment Unused on Beer { sku }\n",
        )
        .expect("written");
        let manifest = build(dir.path(), SUPERGRAPH).expect("builds");
        let names: Vec<&str> = manifest
            .operations
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["Out", "Page"]);
        let page = &manifest.operations[1];
        assert_eq!(page.kind, "query");
        assert!(
            page.body.starts_with("query Page($sku: String!) {"),
            "{}",
            page.body
        );
        assert!(page.body.contains("fragment Card on Beer"), "{}", page.body);
        assert!(
            page.body.contains("fragment Price on Beer"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("Unused"), "{}", page.body);
        assert_eq!(page.id, sha256_hex(&page.body));
        assert_eq!(manifest.operations[0].kind, "mutation");
        // The manifest reads back as the router reads it.
        let loaded = crate::persisted::Manifest::parse(&to_text(&manifest)).expect("parses");
        assert_eq!(loaded.len(), 2);
    }

    #[test]
    fn unnamed_duplicated_or_invalid_operations_are_refused() {
        for (text, expected) in [
            ("{ me { id } }", "needs a name"),
            ("query A { me { id } }\nquery A { me { id } }", "used twice"),
            ("query A { me { nope } }", "does not validate"),
            ("query A { me { ...Gone } }", "defined nowhere"),
        ] {
            let dir = tempfile::tempdir().expect("a temporary folder");
            std::fs::write(dir.path().join("a.graphql"), text).expect("written");
            let error = build(dir.path(), SUPERGRAPH).expect_err(text);
            assert!(format!("{error:#}").contains(expected), "{text}: {error:#}");
        }
    }
}
