//! Schema checks: is a change to the subgraphs safe for the clients of the API?
//!
//! [`compose_dir`] composes the subgraph SDLs checked in under `schema/`; [`api_sdl`] derives the API
//! schema clients see; [`check`] diffs two API schemas with `graphql-schema-diff` and classifies
//! every change as breaking (an existing query can fail), dangerous (queries keep working but may see
//! something new, e.g. an enum value), or safe; [`check_operations`] validates a folder of client
//! operations against the new API schema.

use std::{collections::HashMap, fmt, path::Path};

use anyhow::{bail, Context as _};
use graphql_schema_diff::ChangeKind;
use graphql_tools::{
    static_graphql::schema::{Definition, Document, Type, TypeDefinition},
    validation::{rules::default_rules_validation_plan, validate::validate},
};

use super::compose::{compose, SubgraphSdl};
use crate::supergraph::Supergraph;

/// The file listing the subgraphs of a schema folder: `name=url` lines (`#` starts a comment).
pub const SUBGRAPHS_FILE: &str = "subgraphs";

/// Reads `dir/subgraphs` and each `dir/<name>.graphql`.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<SubgraphSdl>> {
    let list_path = dir.join(SUBGRAPHS_FILE);
    let list = std::fs::read_to_string(&list_path)
        .with_context(|| format!("cannot read {} (name=url lines)", list_path.display()))?;
    let mut subgraphs = Vec::new();
    for line in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((name, url)) = line.split_once('=') else {
            bail!("{}: expected name=url, got {line:?}", list_path.display());
        };
        let path = dir.join(format!("{}.graphql", name.trim()));
        let sdl = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the SDL of subgraph {:?} at {}",
                name.trim(),
                path.display()
            )
        })?;
        subgraphs.push(SubgraphSdl {
            name: name.trim().to_owned(),
            url: url.trim().to_owned(),
            sdl,
        });
    }
    Ok(subgraphs)
}

/// Composes the subgraphs of a schema folder into a supergraph SDL.
pub fn compose_dir(dir: &Path) -> anyhow::Result<String> {
    Ok(compose(&read_dir(dir)?)?)
}

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];
const BUILT_IN_DIRECTIVES: [&str; 5] = ["skip", "include", "deprecated", "specifiedBy", "oneOf"];

/// The API schema of a supergraph: what clients can query (no federation internals, nothing
/// `@inaccessible`, no built-in introspection definitions), as SDL.
pub fn api_sdl(supergraph_sdl: &str) -> anyhow::Result<String> {
    let supergraph = Supergraph::load(supergraph_sdl, &HashMap::new(), 1)?;
    let mut document: Document = (*supergraph.planner.consumer_schema.document).clone();
    let query = document.query_type_name().cloned();
    document
        .definitions
        .retain_mut(|definition| match definition {
            Definition::TypeDefinition(TypeDefinition::Scalar(s)) => {
                !BUILT_IN_SCALARS.contains(&s.name.as_str())
            }
            Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                if Some(&o.name) == query.as_ref() {
                    o.fields
                        .retain(|f| f.name != "__schema" && f.name != "__type");
                }
                !o.name.starts_with("__")
            }
            Definition::TypeDefinition(TypeDefinition::Enum(e)) => !e.name.starts_with("__"),
            Definition::DirectiveDefinition(d) => !BUILT_IN_DIRECTIVES.contains(&d.name.as_str()),
            _ => true,
        });
    Ok(document.to_string())
}

/// How a change affects existing clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Breaking,
    Dangerous,
    Safe,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Breaking => "BREAKING",
            Severity::Dangerous => "DANGEROUS",
            Severity::Safe => "safe",
        })
    }
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub severity: Severity,
    pub path: String,
    pub description: String,
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    pub changes: Vec<Classified>,
    /// Client operations that no longer validate: file name and messages.
    pub broken_operations: Vec<(String, Vec<String>)>,
}

impl Report {
    /// Whether anything would break an existing client.
    pub fn is_breaking(&self) -> bool {
        !self.broken_operations.is_empty()
            || self
                .changes
                .iter()
                .any(|c| c.severity == Severity::Breaking)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |s| self.changes.iter().filter(|c| c.severity == s).count();
        writeln!(
            f,
            "{} breaking, {} dangerous, {} safe change(s)",
            count(Severity::Breaking),
            count(Severity::Dangerous),
            count(Severity::Safe)
        )?;
        if !self.changes.is_empty() {
            let width = self
                .changes
                .iter()
                .map(|c| c.path.len())
                .max()
                .unwrap_or(0)
                .max(4);
            writeln!(f, "  {:<9}  {:<width$}  change", "severity", "path")?;
            for change in &self.changes {
                writeln!(
                    f,
                    "  {:<9}  {:<width$}  {}",
                    change.severity.to_string(),
                    change.path,
                    change.description
                )?;
            }
        }
        for (file, messages) in &self.broken_operations {
            writeln!(f, "operation {file} would break:")?;
            for message in messages {
                writeln!(f, "  - {message}")?;
            }
        }
        Ok(())
    }
}

/// Compares two API schemas.
pub fn check(base_api: &str, new_api: &str) -> anyhow::Result<Report> {
    let changes = graphql_schema_diff::diff(base_api, new_api)
        .map_err(|e| anyhow::anyhow!("cannot diff the API schemas: {e}"))?;
    let old = Types::parse(base_api)?;
    let new = Types::parse(new_api)?;
    let mut classified: Vec<Classified> = changes
        .iter()
        .filter_map(|change| classify(change.kind, &change.path, &old, &new))
        .collect();
    classified.sort_by(|a, b| (a.severity, &a.path).cmp(&(b.severity, &b.path)));
    classified.dedup();
    Ok(Report {
        changes: classified,
        broken_operations: Vec::new(),
    })
}

/// The `*.graphql` files of a folder of client operations, sorted.
pub fn operation_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("--operations: cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .collect();
    files.sort();
    Ok(files)
}

/// Validates every `*.graphql` operation file in `dir` against the supergraph's API schema.
pub fn check_operations(
    supergraph_sdl: &str,
    dir: &Path,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let supergraph = Supergraph::load(supergraph_sdl, &HashMap::new(), 1)?;
    let mut broken = Vec::new();
    for path in operation_files(dir)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let messages = match graphql_tools::parser::parse_query::<String>(&text) {
            Err(e) => vec![format!("does not parse: {e}")],
            Ok(document) => validate(
                &supergraph.planner.consumer_schema.document,
                &document.into_static(),
                &default_rules_validation_plan(),
            )
            .into_iter()
            .map(|e| e.message)
            .collect(),
        };
        if !messages.is_empty() {
            broken.push((name, messages));
        }
    }
    Ok(broken)
}

/// Field and argument types of a schema, for classifying changes.
struct Types {
    /// `Type.field` and `Type.field.arg` → (type, has default); input fields included.
    members: HashMap<String, (Type, bool)>,
    input_objects: Vec<String>,
}

impl Types {
    fn parse(sdl: &str) -> anyhow::Result<Self> {
        let document = graphql_tools::parser::parse_schema::<String>(sdl)
            .map_err(|e| anyhow::anyhow!("cannot parse an API schema: {e}"))?
            .into_static();
        let mut members = HashMap::new();
        let mut input_objects = Vec::new();
        for definition in &document.definitions {
            let Definition::TypeDefinition(definition) = definition else {
                continue;
            };
            let (name, fields) = match definition {
                TypeDefinition::Object(o) => (&o.name, &o.fields),
                TypeDefinition::Interface(i) => (&i.name, &i.fields),
                TypeDefinition::InputObject(input) => {
                    input_objects.push(input.name.clone());
                    for field in &input.fields {
                        members.insert(
                            format!("{}.{}", input.name, field.name),
                            (field.value_type.clone(), field.default_value.is_some()),
                        );
                    }
                    continue;
                }
                _ => continue,
            };
            for field in fields {
                members.insert(
                    format!("{name}.{}", field.name),
                    (field.field_type.clone(), false),
                );
                for arg in &field.arguments {
                    members.insert(
                        format!("{name}.{}.{}", field.name, arg.name),
                        (arg.value_type.clone(), arg.default_value.is_some()),
                    );
                }
            }
        }
        Ok(Types {
            members,
            input_objects,
        })
    }

    fn is_input_member(&self, path: &str) -> bool {
        path.split('.').count() == 3
            || self
                .input_objects
                .iter()
                .any(|i| path.split('.').next() == Some(i.as_str()))
    }

    fn required(&self, path: &str) -> bool {
        self.members
            .get(path)
            .is_some_and(|(ty, default)| matches!(ty, Type::NonNullType(_)) && !default)
    }
}

/// How a type changed: only in nullability (which way), or otherwise.
#[derive(PartialEq)]
enum TypeChange {
    Loosened,
    Tightened,
    Mixed,
    Other,
}

fn type_change(old: &Type, new: &Type) -> TypeChange {
    fn walk(old: &Type, new: &Type, loosened: &mut bool, tightened: &mut bool) -> bool {
        match (old, new) {
            (Type::NonNullType(a), Type::NonNullType(b))
            | (Type::ListType(a), Type::ListType(b)) => walk(a, b, loosened, tightened),
            (Type::NonNullType(a), b) => {
                *loosened = true;
                walk(a, b, loosened, tightened)
            }
            (a, Type::NonNullType(b)) => {
                *tightened = true;
                walk(a, b, loosened, tightened)
            }
            (Type::NamedType(a), Type::NamedType(b)) => a == b,
            _ => false,
        }
    }
    let (mut loosened, mut tightened) = (false, false);
    match (
        walk(old, new, &mut loosened, &mut tightened),
        loosened,
        tightened,
    ) {
        (false, _, _) => TypeChange::Other,
        (true, true, true) => TypeChange::Mixed,
        (true, true, false) => TypeChange::Loosened,
        (true, false, _) => TypeChange::Tightened,
    }
}

fn classify(kind: ChangeKind, path: &str, old: &Types, new: &Types) -> Option<Classified> {
    use ChangeKind::*;
    use Severity::*;
    let make = |severity, description: String| {
        Some(Classified {
            severity,
            path: path.to_owned(),
            description,
        })
    };
    let types = || {
        let o = old
            .members
            .get(path)
            .map(|(t, _)| t.to_string())
            .unwrap_or_default();
        let n = new
            .members
            .get(path)
            .map(|(t, _)| t.to_string())
            .unwrap_or_default();
        (o, n)
    };
    match kind {
        ChangeQueryType | ChangeMutationType | ChangeSubscriptionType => {
            make(Breaking, "root operation type changed".into())
        }
        RemoveObjectType | RemoveUnion | RemoveEnum | RemoveScalar | RemoveInterface
        | RemoveInputObject => make(Breaking, "type removed".into()),
        AddObjectType | AddUnion | AddEnum | AddScalar | AddInterface | AddInputObject => {
            make(Safe, "type added".into())
        }
        RemoveField if old.is_input_member(path) => make(Breaking, "input field removed".into()),
        RemoveField => make(Breaking, "field removed".into()),
        AddField if new.is_input_member(path) && new.required(path) => {
            make(Breaking, "required input field added (no default)".into())
        }
        AddField if new.is_input_member(path) => make(Safe, "optional input field added".into()),
        AddField => make(Safe, "field added".into()),
        ChangeFieldType | ChangeFieldArgumentType => {
            let (Some((o, _)), Some((n, _))) = (old.members.get(path), new.members.get(path))
            else {
                return make(Breaking, "type changed".into());
            };
            let (os, ns) = types();
            let input = kind == ChangeFieldArgumentType || new.is_input_member(path);
            match (type_change(o, n), input) {
                (TypeChange::Tightened, true) => {
                    make(Breaking, format!("input made non-null: {os} → {ns}"))
                }
                (TypeChange::Loosened, true) => {
                    make(Safe, format!("input made nullable: {os} → {ns}"))
                }
                (TypeChange::Loosened, false) => {
                    make(Breaking, format!("output made nullable: {os} → {ns}"))
                }
                (TypeChange::Tightened, false) => {
                    make(Safe, format!("output made non-null: {os} → {ns}"))
                }
                _ => make(Breaking, format!("type changed: {os} → {ns}")),
            }
        }
        AddFieldArgument if new.required(path) => {
            make(Breaking, "required argument added (no default)".into())
        }
        AddFieldArgument => make(Safe, "optional argument added".into()),
        RemoveFieldArgument => make(Breaking, "argument removed".into()),
        AddFieldArgumentDefault => make(Safe, "argument default added".into()),
        RemoveFieldArgumentDefault | ChangeFieldArgumentDefault => {
            make(Dangerous, "argument default changed".into())
        }
        AddEnumValue => make(
            Dangerous,
            "enum value added (clients may not handle it)".into(),
        ),
        RemoveEnumValue => make(Breaking, "enum value removed".into()),
        AddUnionMember => make(
            Dangerous,
            "union member added (clients may not handle it)".into(),
        ),
        RemoveUnionMember => make(Breaking, "union member removed".into()),
        AddInterfaceImplementation => make(Dangerous, "interface implementation added".into()),
        RemoveInterfaceImplementation => make(Breaking, "interface implementation removed".into()),
        AddDirectiveDefinition | RemoveDirectiveDefinition | AddDirective | RemoveDirective => {
            make(Safe, "directive changed".into())
        }
        ChangeDescription => make(Safe, "description changed".into()),
        AddSchemaDefinition
        | RemoveSchemaDefinition
        | AddSchemaExtension
        | RemoveSchemaExtension => None,
    }
}
