//! Writing JSON text: the response body and subgraph request bodies are written as text, never
//! built as a tree first.

/// Appends `value` as JSON text.
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings and JSON values serialize into memory");
}

/// `value` as JSON text, for an error message.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("JSON values serialize")
}
