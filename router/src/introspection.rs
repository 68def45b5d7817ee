//! Introspection (`__schema`, `__type`, root `__typename`) answered from the API schema.
//!
//! Rather than writing an introspection resolver, the API schema (the supergraph without federation
//! internals and `@inaccessible` elements) is turned into an async-graphql dynamic schema whose fields
//! are never resolved: async-graphql's own, well-tested introspection answers the introspection part
//! of an operation. The planned part never reaches it.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, InputObject, InputValue, Interface, InterfaceField, Object,
    Scalar, Schema, TypeRef, Union,
};
use graphql_tools::static_graphql::schema::{
    Definition, Directive, Document, Type, TypeDefinition, Value,
};

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// The executable introspection schema for the API schema `api`.
pub fn schema(api: &Document) -> Result<Schema, String> {
    let query = api
        .query_type_name()
        .cloned()
        .unwrap_or_else(|| "Query".into());
    let mutation = api.mutation_type_name().cloned();
    let subscription = api.subscription_type_name().cloned();
    let mut builder = Schema::build(&query, mutation.as_deref(), subscription.as_deref());
    for definition in &api.definitions {
        let Definition::TypeDefinition(definition) = definition else {
            continue;
        };
        builder = match definition {
            TypeDefinition::Scalar(scalar) => {
                if BUILT_IN_SCALARS.contains(&scalar.name.as_str()) {
                    continue;
                }
                let mut ty = Scalar::new(&scalar.name);
                if let Some(d) = &scalar.description {
                    ty = ty.description(d);
                }
                if let Some(url) = directive_string(&scalar.directives, "specifiedBy", "url") {
                    ty = ty.specified_by_url(url);
                }
                builder.register(ty)
            }
            TypeDefinition::Object(object) => {
                if object.name.starts_with("__") {
                    continue;
                }
                let mut ty = Object::new(&object.name);
                if let Some(d) = &object.description {
                    ty = ty.description(d);
                }
                for interface in &object.implements_interfaces {
                    ty = ty.implement(interface);
                }
                for field in object.fields.iter().filter(|f| !f.name.starts_with("__")) {
                    let mut f = Field::new(&field.name, type_ref(&field.field_type), |_| {
                        FieldFuture::new(async { Ok(None::<async_graphql::Value>) })
                    });
                    if let Some(d) = &field.description {
                        f = f.description(d);
                    }
                    if let Some(reason) = deprecation(&field.directives) {
                        f = f.deprecation(reason.as_deref());
                    }
                    for arg in &field.arguments {
                        f = f.argument(input_value(arg));
                    }
                    ty = ty.field(f);
                }
                builder.register(ty)
            }
            TypeDefinition::Interface(interface) => {
                let mut ty = Interface::new(&interface.name);
                if let Some(d) = &interface.description {
                    ty = ty.description(d);
                }
                for parent in &interface.implements_interfaces {
                    ty = ty.implement(parent);
                }
                for field in &interface.fields {
                    let mut f = InterfaceField::new(&field.name, type_ref(&field.field_type));
                    if let Some(d) = &field.description {
                        f = f.description(d);
                    }
                    if let Some(reason) = deprecation(&field.directives) {
                        f = f.deprecation(reason.as_deref());
                    }
                    for arg in &field.arguments {
                        f = f.argument(input_value(arg));
                    }
                    ty = ty.field(f);
                }
                builder.register(ty)
            }
            TypeDefinition::Union(union) => {
                let mut ty = Union::new(&union.name);
                if let Some(d) = &union.description {
                    ty = ty.description(d);
                }
                for member in &union.types {
                    ty = ty.possible_type(member);
                }
                builder.register(ty)
            }
            TypeDefinition::Enum(enumeration) => {
                if enumeration.name.starts_with("__") {
                    continue;
                }
                let mut ty = Enum::new(&enumeration.name);
                if let Some(d) = &enumeration.description {
                    ty = ty.description(d);
                }
                for value in &enumeration.values {
                    let mut item = EnumItem::new(&value.name);
                    if let Some(d) = &value.description {
                        item = item.description(d);
                    }
                    if let Some(reason) = deprecation(&value.directives) {
                        item = item.deprecation(reason.as_deref());
                    }
                    ty = ty.item(item);
                }
                builder.register(ty)
            }
            TypeDefinition::InputObject(input) => {
                let mut ty = InputObject::new(&input.name);
                if let Some(d) = &input.description {
                    ty = ty.description(d);
                }
                if input.directives.iter().any(|d| d.name == "oneOf") {
                    ty = ty.oneof();
                }
                for field in &input.fields {
                    ty = ty.field(input_value(field));
                }
                builder.register(ty)
            }
        };
    }
    builder.finish().map_err(|e| e.0)
}

fn type_ref(ty: &Type) -> TypeRef {
    match ty {
        Type::NamedType(name) => TypeRef::Named(name.clone().into()),
        Type::ListType(inner) => TypeRef::List(Box::new(type_ref(inner))),
        Type::NonNullType(inner) => TypeRef::NonNull(Box::new(type_ref(inner))),
    }
}

fn input_value(value: &graphql_tools::static_graphql::schema::InputValue) -> InputValue {
    let mut input = InputValue::new(&value.name, type_ref(&value.value_type));
    if let Some(d) = &value.description {
        input = input.description(d);
    }
    if let Some(default) = &value.default_value {
        input = input.default_value(const_value(default));
    }
    input
}

fn const_value(value: &Value) -> async_graphql::Value {
    use async_graphql::Value as V;
    match value {
        Value::Variable(_) | Value::Null => V::Null,
        Value::Int(n) => V::from(n.as_i64().unwrap_or_default()),
        Value::Float(f) => V::from(*f),
        Value::String(s) => V::String(s.clone()),
        Value::Boolean(b) => V::Boolean(*b),
        Value::Enum(e) => V::Enum(async_graphql::Name::new(e)),
        Value::List(items) => V::List(items.iter().map(const_value).collect()),
        Value::Object(fields) => V::Object(
            fields
                .iter()
                .map(|(k, v)| (async_graphql::Name::new(k), const_value(v)))
                .collect(),
        ),
    }
}

/// `Some(reason)` when `@deprecated` is present (`Some(None)` without a reason).
fn deprecation(directives: &[Directive]) -> Option<Option<String>> {
    directives.iter().find(|d| d.name == "deprecated").map(|d| {
        d.arguments
            .iter()
            .find_map(|(name, value)| match (name.as_str(), value) {
                ("reason", Value::String(reason)) => Some(reason.clone()),
                _ => None,
            })
    })
}

fn directive_string(directives: &[Directive], directive: &str, argument: &str) -> Option<String> {
    directives
        .iter()
        .filter(|d| d.name == directive)
        .flat_map(|d| d.arguments.iter())
        .find_map(|(name, value)| match value {
            Value::String(s) if name == argument => Some(s.clone()),
            _ => None,
        })
}
