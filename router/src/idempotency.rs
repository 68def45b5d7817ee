//! Idempotency keys, as payment APIs have them: a client's `Idempotency-Key` names one request.
//!
//! The router never passes a client's key on as it is. Each operation of the request (one, or each
//! member of a batch) gets a key of the router's own making ([`derive`]): a hash of the client's
//! key and the member's place, which no key a client sends can equal, so a client's `K/0` is never
//! taken for member 0 of `K`. The executor then numbers it per mutation fetch. With it goes the
//! [`fingerprint`] of the operation (its text or persisted id, name and variables): a subgraph that
//! honours keys (Taproom's orders) binds a key to the request it was first used with, refuses it
//! with another (`BAD_USER_INPUT` naming the header), and answers a repeat with the first answer.

use axum::http::HeaderValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The header with the fingerprint of the client request a key came with.
pub const FINGERPRINT_HEADER: &str = "x-taproom-request-fingerprint";

/// The key the router sends for the client's `key`, for one operation of its request: `member`
/// is its index in a batch (`None`: the request is one operation).
pub fn derive(key: &HeaderValue, member: Option<usize>) -> HeaderValue {
    let hash = hex(&Sha256::digest(key.as_bytes())[..16]);
    let member = member.map_or_else(|| "one".to_owned(), |at| at.to_string());
    HeaderValue::from_str(&format!("tk1.{hash}.{member}"))
        .expect("hex and digits are a valid header")
}

/// The fingerprint of one operation: the SHA-256 of its query text (or persisted document id, or
/// APQ hash), its operation name and its variables, keys sorted so their order does not count.
pub fn fingerprint(
    query: Option<&str>,
    document_id: Option<&str>,
    extensions: &Map<String, Value>,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
) -> HeaderValue {
    let mut hash = Sha256::new();
    let persisted = extensions.get("persistedQuery").map(canonical);
    let parts = [
        query.unwrap_or(""),
        document_id.unwrap_or(""),
        persisted.as_deref().unwrap_or(""),
        operation_name.unwrap_or(""),
        &canonical(&Value::Object(variables.clone())),
    ];
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    HeaderValue::from_str(&hex(&hash.finalize())).expect("hex is a valid header")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `value` as JSON text with every object's keys sorted.
fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn client_keys_never_meet_derived_ones() {
        let key = HeaderValue::from_static("K");
        let slashed = HeaderValue::from_static("K/0");
        assert_ne!(derive(&key, Some(0)), derive(&slashed, None));
        assert_ne!(derive(&key, Some(0)), derive(&key, None));
        assert_eq!(derive(&key, Some(1)), derive(&key, Some(1)));
        assert!(derive(&key, None)
            .to_str()
            .expect("ascii")
            .starts_with("tk1."));
    }

    #[test]
    fn a_fingerprint_is_the_operation_and_its_variables_in_any_key_order() {
        let none = Map::new();
        let vars = |v: Value| v.as_object().expect("an object").clone();
        let add = "mutation($s: String!) { addToOrder(sku: $s, quantity: 1) { id } }";
        let a = fingerprint(
            Some(add),
            None,
            &none,
            None,
            &vars(json!({"s": "1", "t": {"a": 1, "b": 2}})),
        );
        let b = fingerprint(
            Some(add),
            None,
            &none,
            None,
            &vars(json!({"t": {"b": 2, "a": 1}, "s": "1"})),
        );
        assert_eq!(a, b);
        let other = fingerprint(
            Some(add),
            None,
            &none,
            None,
            &vars(json!({"s": "2", "t": {"a": 1, "b": 2}})),
        );
        assert_ne!(a, other);
        assert_ne!(
            a,
            fingerprint(
                Some(add),
                None,
                &none,
                Some("Add"),
                &vars(json!({"s": "1", "t": {"a": 1, "b": 2}}))
            )
        );
    }
}
