//! The variables stage: the client's variables in, coerced variables out (defaults applied, single
//! values wrapped where lists are expected), checked against the operation's declarations and the
//! API schema, so a wrong value is a clear request error before anything is sent to a subgraph.

use graphql_tools::static_graphql::{
    query::Type,
    schema::{self, Definition, TypeDefinition},
};
use serde_json::{Map, Value};

use axum::http::StatusCode;

use crate::{
    ast::type_name,
    error::{Code, GraphqlError, RequestError},
};

/// A variable the operation declares, for coercing the client's values.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub ty: Type,
    pub default: Option<serde_json::Value>,
}

/// Why the variables cannot be used: one message per invalid value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct CoercionError(pub Vec<String>);

impl From<CoercionError> for RequestError {
    fn from(error: CoercionError) -> Self {
        RequestError {
            status: StatusCode::BAD_REQUEST,
            errors: error
                .0
                .into_iter()
                .map(|message| GraphqlError::new(Code::BadUserInput, message))
                .collect(),
        }
    }
}

/// The variables to execute with (defaults applied), or the messages of every invalid one.
pub fn coerce(
    declared: &[Variable],
    provided: &Map<String, Value>,
    api: &schema::Document,
) -> Result<Map<String, Value>, CoercionError> {
    let mut coerced = Map::new();
    let mut errors = Vec::new();
    for variable in declared {
        match provided.get(&variable.name) {
            None => {
                if let Some(default) = &variable.default {
                    // Validation checked the literal; coercion still wraps a single value for a
                    // list type.
                    let value = check(
                        &variable.ty,
                        default,
                        api,
                        &mut String::new(),
                        &mut Vec::new(),
                    );
                    coerced.insert(variable.name.clone(), value);
                } else if matches!(variable.ty, Type::NonNullType(_)) {
                    errors.push(format!(
                        "variable \"${}\" of required type \"{}\" was not provided",
                        variable.name, variable.ty
                    ));
                }
            }
            Some(value) => {
                let mut problems = Vec::new();
                let value = check(&variable.ty, value, api, &mut String::new(), &mut problems);
                if problems.is_empty() {
                    coerced.insert(variable.name.clone(), value);
                } else {
                    errors.extend(problems.into_iter().map(|p| {
                        format!("variable \"${}\" got an invalid value: {p}", variable.name)
                    }));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(coerced)
    } else {
        Err(CoercionError(errors))
    }
}

fn find_type<'a>(api: &'a schema::Document, name: &str) -> Option<&'a TypeDefinition> {
    api.definitions.iter().find_map(|d| match d {
        Definition::TypeDefinition(t) if type_name(t) == name => Some(t),
        _ => None,
    })
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

/// Checks `value` against `ty`, adding what is wrong to `problems`; returns the coerced value (the
/// same, but that a single value where a list is expected becomes a list of one, at any depth).
fn check(
    ty: &Type,
    value: &Value,
    api: &schema::Document,
    path: &mut String,
    problems: &mut Vec<String>,
) -> Value {
    match ty {
        Type::NonNullType(inner) => {
            if value.is_null() {
                problems.push(format!("expected a non-null {inner}{}", at(path)));
                Value::Null
            } else {
                check(inner, value, api, path, problems)
            }
        }
        Type::ListType(inner) => match value {
            Value::Null => Value::Null,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        let item = check(inner, item, api, path, problems);
                        path.truncate(len);
                        item
                    })
                    .collect(),
            ),
            single => Value::Array(vec![check(inner, single, api, path, problems)]),
        },
        Type::NamedType(name) => {
            if value.is_null() {
                return Value::Null;
            }
            let ok = match name.as_str() {
                "Int" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                "Float" => value.is_number(),
                "String" => value.is_string(),
                "Boolean" => value.is_boolean(),
                "ID" => value.is_string() || value.as_i64().is_some(),
                _ => match find_type(api, name) {
                    Some(TypeDefinition::Enum(e)) => value
                        .as_str()
                        .is_some_and(|v| e.values.iter().any(|ev| ev.name == v)),
                    Some(TypeDefinition::InputObject(input)) => {
                        let Value::Object(fields) = value else {
                            problems.push(format!("expected an object of type {name}{}", at(path)));
                            return value.clone();
                        };
                        let mut coerced = fields.clone();
                        for key in fields.keys() {
                            if !input.fields.iter().any(|f| &f.name == key) {
                                problems.push(format!("{name} has no field \"{key}\"{}", at(path)));
                            }
                        }
                        for field in &input.fields {
                            let len = path.len();
                            if !path.is_empty() {
                                path.push('.');
                            }
                            path.push_str(&field.name);
                            match fields.get(&field.name) {
                                Some(v) => {
                                    let v = check(&field.value_type, v, api, path, problems);
                                    coerced.insert(field.name.clone(), v);
                                }
                                None if field.default_value.is_none()
                                    && matches!(field.value_type, Type::NonNullType(_)) =>
                                {
                                    problems.push(format!("missing required field{}", at(path)))
                                }
                                None => {}
                            }
                            path.truncate(len);
                        }
                        return Value::Object(coerced);
                    }
                    // Custom scalars: the subgraph that owns them checks the value.
                    _ => true,
                },
            };
            if !ok {
                problems.push(format!(
                    "expected a value of type {name}{}, got {value}",
                    at(path)
                ));
            }
            value.clone()
        }
    }
}
