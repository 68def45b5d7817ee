//! The shaped response and its body: what shaping and introspection produce, written out as JSON
//! text once per request.

use crate::{error::GraphqlError, json::write_json};

/// A response's root fields, each as JSON text already, and its errors.
#[derive(Debug)]
pub struct Shaped {
    /// Each root response key with its value as JSON text, or `None` when a null propagated all
    /// the way up (`"data": null`).
    pub data: Option<Vec<(String, Vec<u8>)>>,
    pub errors: Vec<GraphqlError>,
}

impl Default for Shaped {
    fn default() -> Self {
        Shaped {
            data: Some(Vec::new()),
            errors: Vec::new(),
        }
    }
}

impl Shaped {
    /// Adds `other`'s root fields and errors (introspection beside the planned fields).
    pub fn merge(&mut self, other: Shaped) {
        if let (Some(data), Some(more)) = (&mut self.data, other.data) {
            data.extend(more);
        }
        self.errors.extend(other.errors);
    }

    /// The body: `errors` (if any), `data` with the root fields in the client's order
    /// (`root_keys`), and `extensions.queryPlan` when `plan` is given.
    pub fn into_body(self, root_keys: &[String], plan: Option<&str>) -> Vec<u8> {
        let Shaped { data, errors } = self;
        let size: usize = data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum();
        let mut body = Vec::with_capacity(64 + size);
        body.push(b'{');
        if !errors.is_empty() {
            body.extend_from_slice(b"\"errors\":");
            write_json(&mut body, &errors);
            body.push(b',');
        }
        body.extend_from_slice(b"\"data\":");
        match data {
            None => body.extend_from_slice(b"null"),
            Some(mut fields) => {
                // Shaped and introspection fields come interleaved in the client's order.
                let rank = |key: &str| {
                    root_keys
                        .iter()
                        .position(|k| k == key)
                        .unwrap_or(usize::MAX)
                };
                fields.sort_by_key(|(key, _)| rank(key));
                body.push(b'{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    write_json(&mut body, key);
                    body.push(b':');
                    body.extend_from_slice(value);
                }
                body.push(b'}');
            }
        }
        if let Some(plan) = plan {
            body.extend_from_slice(b",\"extensions\":{\"queryPlan\":");
            write_json(&mut body, plan);
            body.push(b'}');
        }
        body.push(b'}');
        body
    }
}
