//! Introspection (`__schema`, `__type`, root `__typename`) answered from the API schema's own AST.
//!
//! The API schema is the supergraph without federation internals and `@inaccessible` elements, as
//! the query planner builds it (with the introspection types added). Introspection reads that
//! document directly: nothing is rebuilt into a second schema library, so every schema composition
//! accepts can be introspected (a library that re-validates the schema refuses valid ones, such as
//! an object whose list field narrows its interface's, `similar: [Book]` for `similar: [Product]`).
//!
//! Operations reaching it are validated already; it collects fields as the spec's CollectFields
//! does (aliases, merged response keys, fragments, `@skip`/`@include`) and writes JSON text.

mod collect;

use std::{collections::HashMap, sync::Arc};

use graphql_tools::static_graphql::{
    query::{self, FragmentDefinition, SelectionSet},
    schema::{
        Definition, Directive, DirectiveDefinition, Document, EnumValue, Field, InputValue, Type,
        TypeDefinition, Value,
    },
};
use serde_json::Map;

use self::collect::Context;
use crate::{ast::type_name, body::Shaped, json::write_json};

/// The introspection part of an operation: its root introspection fields and the fragments they
/// may spread.
#[derive(Debug)]
pub struct IntrospectionPart {
    pub selections: SelectionSet,
    pub fragments: Vec<FragmentDefinition>,
}

/// The API schema, indexed for introspection.
pub struct Introspection {
    document: Arc<Document>,
    /// Type name → its definition's index in `document.definitions` (the first, if repeated).
    types: HashMap<String, usize>,
    /// Type names in document order, each once.
    order: Vec<String>,
    /// Interface → the object types that implement it, in document order.
    implementations: HashMap<String, Vec<String>>,
    query: Option<String>,
    mutation: Option<String>,
    subscription: Option<String>,
}

/// Something introspection can return an object for.
#[derive(Clone, Copy)]
enum Meta<'s> {
    Schema,
    Named(&'s TypeDefinition),
    /// A list or non-null type.
    Wrapped(&'s Type),
    Field(&'s Field),
    InputValue(&'s InputValue),
    EnumValue(&'s EnumValue),
    Directive(&'s DirectiveDefinition),
}

impl Meta<'_> {
    fn typename(self) -> &'static str {
        match self {
            Meta::Schema => "__Schema",
            Meta::Named(_) | Meta::Wrapped(_) => "__Type",
            Meta::Field(_) => "__Field",
            Meta::InputValue(_) => "__InputValue",
            Meta::EnumValue(_) => "__EnumValue",
            Meta::Directive(_) => "__Directive",
        }
    }
}

/// A resolved introspection field.
enum Out<'s> {
    Null,
    Bool(bool),
    Str(&'s str),
    String(String),
    Object(Meta<'s>),
    List(Vec<Meta<'s>>),
    Strings(Vec<&'static str>),
}

impl<'s> From<Option<&'s str>> for Out<'s> {
    fn from(value: Option<&'s str>) -> Self {
        value.map_or(Out::Null, Out::Str)
    }
}

impl Introspection {
    /// Indexes the API schema `api`.
    pub fn new(api: Arc<Document>) -> Self {
        let mut types = HashMap::new();
        let mut order = Vec::new();
        let mut implementations: HashMap<String, Vec<String>> = HashMap::new();
        let mut roots = (None, None, None);
        for (index, definition) in api.definitions.iter().enumerate() {
            match definition {
                Definition::TypeDefinition(ty) => {
                    let name = type_name(ty);
                    if types.contains_key(name) {
                        continue;
                    }
                    types.insert(name.to_owned(), index);
                    order.push(name.to_owned());
                    if let TypeDefinition::Object(object) = ty {
                        for interface in &object.implements_interfaces {
                            implementations
                                .entry(interface.clone())
                                .or_default()
                                .push(object.name.clone());
                        }
                    }
                }
                Definition::SchemaDefinition(schema) => {
                    roots = (
                        schema.query.clone(),
                        schema.mutation.clone(),
                        schema.subscription.clone(),
                    );
                }
                _ => {}
            }
        }
        let root = |given: Option<String>, default: &str| {
            given.or_else(|| types.contains_key(default).then(|| default.to_owned()))
        };
        Introspection {
            query: root(roots.0, "Query"),
            mutation: root(roots.1, "Mutation"),
            subscription: root(roots.2, "Subscription"),
            document: api,
            types,
            order,
            implementations,
        }
    }

    /// Answers the root introspection fields of `part` for the root type `root`, shaped like the
    /// planned fields: each response key with its value as JSON text, in the client's order.
    pub fn execute(
        &self,
        part: &IntrospectionPart,
        variables: &Map<String, serde_json::Value>,
        root: &str,
    ) -> Shaped {
        let context = Context {
            variables,
            fragments: &part.fragments,
        };
        let mut groups = Vec::new();
        context.collect(&part.selections, root, &mut groups);
        let fields = groups
            .into_iter()
            .map(|(key, fields)| {
                let field = fields[0];
                let mut out = Vec::new();
                let value = match field.name.as_str() {
                    "__typename" => Out::Str(root),
                    "__schema" => Out::Object(Meta::Schema),
                    "__type" => context
                        .string_argument(field, "name")
                        .and_then(|name| self.named(&name))
                        .map_or(Out::Null, Out::Object),
                    _ => Out::Null,
                };
                self.write(&mut out, value, &fields, &context);
                (key.to_owned(), out)
            })
            .collect();
        Shaped {
            data: Some(fields),
            errors: Vec::new(),
        }
    }

    fn named(&self, name: &str) -> Option<Meta<'_>> {
        let index = *self.types.get(name)?;
        match &self.document.definitions[index] {
            Definition::TypeDefinition(ty) => Some(Meta::Named(ty)),
            _ => None,
        }
    }

    /// The type `ty` refers to (`None`: a named type the schema does not define).
    fn type_of<'s>(&'s self, ty: &'s Type) -> Option<Meta<'s>> {
        match ty {
            Type::NamedType(name) => self.named(name),
            wrapped => Some(Meta::Wrapped(wrapped)),
        }
    }

    fn write<'s>(
        &'s self,
        out: &mut Vec<u8>,
        value: Out<'s>,
        fields: &[&query::Field],
        context: &Context<'_>,
    ) {
        match value {
            Out::Null => out.extend_from_slice(b"null"),
            Out::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Out::Str(s) => write_json(out, s),
            Out::String(s) => write_json(out, &s),
            Out::Strings(list) => write_json(out, &list),
            Out::Object(meta) => self.object(out, meta, fields, context),
            Out::List(items) => {
                out.push(b'[');
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.object(out, item, fields, context);
                }
                out.push(b']');
            }
        }
    }

    /// Writes `meta` with the merged selections of `fields`.
    fn object(
        &self,
        out: &mut Vec<u8>,
        meta: Meta<'_>,
        fields: &[&query::Field],
        context: &Context<'_>,
    ) {
        let mut groups = Vec::new();
        for field in fields {
            context.collect(&field.selection_set, meta.typename(), &mut groups);
        }
        out.push(b'{');
        for (i, (key, group)) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(out, key);
            out.push(b':');
            let value = self.resolve(meta, group[0], context);
            self.write(out, value, group, context);
        }
        out.push(b'}');
    }

    fn resolve<'s>(
        &'s self,
        meta: Meta<'s>,
        field: &query::Field,
        context: &Context<'_>,
    ) -> Out<'s> {
        let name = field.name.as_str();
        if name == "__typename" {
            return Out::Str(meta.typename());
        }
        let include_deprecated = || context.bool_argument(field, "includeDeprecated");
        match meta {
            Meta::Schema => match name {
                "types" => Out::List(
                    self.order
                        .iter()
                        .filter_map(|name| self.named(name))
                        .collect(),
                ),
                "queryType" => self.root_type(self.query.as_deref()),
                "mutationType" => self.root_type(self.mutation.as_deref()),
                "subscriptionType" => self.root_type(self.subscription.as_deref()),
                "directives" => {
                    let mut seen = std::collections::HashSet::new();
                    Out::List(
                        self.document
                            .definitions
                            .iter()
                            .filter_map(|d| match d {
                                Definition::DirectiveDefinition(d) if seen.insert(&d.name) => {
                                    Some(Meta::Directive(d))
                                }
                                _ => None,
                            })
                            .collect(),
                    )
                }
                _ => Out::Null,
            },
            Meta::Named(ty) => self.resolve_type(ty, name, include_deprecated),
            Meta::Wrapped(ty) => match (name, ty) {
                ("kind", Type::ListType(_)) => Out::Str("LIST"),
                ("kind", _) => Out::Str("NON_NULL"),
                ("ofType", Type::ListType(inner) | Type::NonNullType(inner)) => {
                    self.type_of(inner).map_or(Out::Null, Out::Object)
                }
                _ => Out::Null,
            },
            Meta::Field(f) => match name {
                "name" => Out::Str(&f.name),
                "description" => f.description.as_deref().into(),
                "args" => input_values(&f.arguments, include_deprecated()),
                "type" => self.type_of(&f.field_type).map_or(Out::Null, Out::Object),
                "isDeprecated" => Out::Bool(deprecation(&f.directives).is_some()),
                "deprecationReason" => deprecation(&f.directives).into(),
                _ => Out::Null,
            },
            Meta::InputValue(v) => match name {
                "name" => Out::Str(&v.name),
                "description" => v.description.as_deref().into(),
                "type" => self.type_of(&v.value_type).map_or(Out::Null, Out::Object),
                "defaultValue" => v
                    .default_value
                    .as_ref()
                    .map_or(Out::Null, |d| Out::String(d.to_string())),
                "isDeprecated" => Out::Bool(deprecation(&v.directives).is_some()),
                "deprecationReason" => deprecation(&v.directives).into(),
                _ => Out::Null,
            },
            Meta::EnumValue(v) => match name {
                "name" => Out::Str(&v.name),
                "description" => v.description.as_deref().into(),
                "isDeprecated" => Out::Bool(deprecation(&v.directives).is_some()),
                "deprecationReason" => deprecation(&v.directives).into(),
                _ => Out::Null,
            },
            Meta::Directive(d) => match name {
                "name" => Out::Str(&d.name),
                "description" => d.description.as_deref().into(),
                "locations" => Out::Strings(if d.name == "oneOf" {
                    // The planner's built-in definition names the wrong locations; the spec's
                    // `@oneOf` is for input objects.
                    vec!["INPUT_OBJECT"]
                } else {
                    d.locations.iter().map(|l| l.as_str()).collect()
                }),
                "args" => input_values(&d.arguments, include_deprecated()),
                "isRepeatable" => Out::Bool(d.repeatable),
                _ => Out::Null,
            },
        }
    }

    fn root_type(&self, name: Option<&str>) -> Out<'_> {
        name.and_then(|n| self.named(n))
            .map_or(Out::Null, Out::Object)
    }

    fn resolve_type<'s>(
        &'s self,
        ty: &'s TypeDefinition,
        name: &str,
        include_deprecated: impl Fn() -> bool,
    ) -> Out<'s> {
        let visible =
            |directives: &[Directive]| include_deprecated() || deprecation(directives).is_none();
        let fields = |fields: &'s [Field]| {
            Out::List(
                fields
                    .iter()
                    .filter(|f| !f.name.starts_with("__") && visible(&f.directives))
                    .map(Meta::Field)
                    .collect(),
            )
        };
        let types =
            |names: &'s [String]| Out::List(names.iter().filter_map(|n| self.named(n)).collect());
        match (name, ty) {
            ("kind", _) => Out::Str(match ty {
                TypeDefinition::Scalar(_) => "SCALAR",
                TypeDefinition::Object(_) => "OBJECT",
                TypeDefinition::Interface(_) => "INTERFACE",
                TypeDefinition::Union(_) => "UNION",
                TypeDefinition::Enum(_) => "ENUM",
                TypeDefinition::InputObject(_) => "INPUT_OBJECT",
            }),
            ("name", _) => Out::Str(type_name(ty)),
            ("description", _) => description(ty).into(),
            ("specifiedByURL", TypeDefinition::Scalar(scalar)) => {
                directive_string(&scalar.directives, "specifiedBy", "url").into()
            }
            ("fields", TypeDefinition::Object(object)) => fields(&object.fields),
            ("fields", TypeDefinition::Interface(interface)) => fields(&interface.fields),
            ("interfaces", TypeDefinition::Object(object)) => types(&object.implements_interfaces),
            ("interfaces", TypeDefinition::Interface(interface)) => {
                types(&interface.implements_interfaces)
            }
            ("possibleTypes", TypeDefinition::Interface(interface)) => self
                .implementations
                .get(&interface.name)
                .map_or(Out::List(Vec::new()), |names| types(names)),
            ("possibleTypes", TypeDefinition::Union(union)) => types(&union.types),
            ("enumValues", TypeDefinition::Enum(enumeration)) => Out::List(
                enumeration
                    .values
                    .iter()
                    .filter(|v| visible(&v.directives))
                    .map(Meta::EnumValue)
                    .collect(),
            ),
            ("inputFields", TypeDefinition::InputObject(input)) => {
                input_values(&input.fields, include_deprecated())
            }
            ("isOneOf", TypeDefinition::InputObject(input)) => {
                Out::Bool(input.directives.iter().any(|d| d.name == "oneOf"))
            }
            _ => Out::Null,
        }
    }
}

/// Arguments or input fields, deprecated ones only when asked for.
fn input_values(values: &[InputValue], include_deprecated: bool) -> Out<'_> {
    Out::List(
        values
            .iter()
            .filter(|v| include_deprecated || deprecation(&v.directives).is_none())
            .map(Meta::InputValue)
            .collect(),
    )
}

fn description(definition: &TypeDefinition) -> Option<&str> {
    match definition {
        TypeDefinition::Scalar(t) => t.description.as_deref(),
        TypeDefinition::Object(t) => t.description.as_deref(),
        TypeDefinition::Interface(t) => t.description.as_deref(),
        TypeDefinition::Union(t) => t.description.as_deref(),
        TypeDefinition::Enum(t) => t.description.as_deref(),
        TypeDefinition::InputObject(t) => t.description.as_deref(),
    }
}

/// `Some(reason)` when `@deprecated` is present; the spec's default reason when it gives none.
fn deprecation(directives: &[Directive]) -> Option<&str> {
    directives.iter().find(|d| d.name == "deprecated").map(|d| {
        d.arguments
            .iter()
            .find_map(|(name, value)| match (name.as_str(), value) {
                ("reason", Value::String(reason)) => Some(reason.as_str()),
                _ => None,
            })
            .unwrap_or("No longer supported")
    })
}

fn directive_string<'d>(
    directives: &'d [Directive],
    directive: &str,
    argument: &str,
) -> Option<&'d str> {
    directives
        .iter()
        .filter(|d| d.name == directive)
        .flat_map(|d| d.arguments.iter())
        .find_map(|(name, value)| match value {
            Value::String(s) if name == argument => Some(s.as_str()),
            _ => None,
        })
}
