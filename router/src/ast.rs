//! Small helpers over graphql-tools' ASTs that several stages share.

use graphql_tools::static_graphql::{query::Value, schema::TypeDefinition};

/// The name a type definition defines.
pub fn type_name(definition: &TypeDefinition) -> &str {
    match definition {
        TypeDefinition::Scalar(t) => &t.name,
        TypeDefinition::Object(t) => &t.name,
        TypeDefinition::Interface(t) => &t.name,
        TypeDefinition::Union(t) => &t.name,
        TypeDefinition::Enum(t) => &t.name,
        TypeDefinition::InputObject(t) => &t.name,
    }
}

/// A GraphQL literal as JSON, with variables substituted from `variables`.
pub fn to_json(
    value: &Value,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Variable(name) => variables.get(name).cloned().unwrap_or(J::Null),
        Value::Int(n) => J::from(n.as_i64().unwrap_or_default()),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Boolean(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Enum(e) => J::String(e.clone()),
        Value::List(items) => J::Array(items.iter().map(|v| to_json(v, variables)).collect()),
        Value::Object(fields) => J::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v, variables)))
                .collect(),
        ),
    }
}
