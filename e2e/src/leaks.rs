//! Error messages never name an address, a port, a file path or an OS error: what a router under
//! test sends is scanned as it goes out ([`Scanner::layer`]), every body and every part of a
//! stream, and a router dropped after a leak fails its test ([`Scanner::check`]).
//!
//! Only the `message` members are read (data may hold URLs: a beer's picture, say). The router
//! writes compact JSON, so a message is found as `"message":"…"` in the bytes as sent.

use std::sync::{Arc, Mutex};

use axum::{body::Body, http::header, response::Response};
use futures_util::StreamExt as _;

/// What a message must not contain, and why.
const FORBIDDEN: [(&str, &str); 12] = [
    ("://", "a URL"),
    ("127.0.0.1", "a loopback address"),
    ("localhost", "a host name"),
    ("0.0.0.0", "an address"),
    ("[::", "an IPv6 address"),
    ("/tmp/", "a file path"),
    ("/root/", "a file path"),
    ("/home/", "a file path"),
    ("/work/", "a file path"),
    (".rs:", "a source location"),
    ("os error", "an OS error"),
    ("panicked at", "a panic"),
];

/// What in `message` gives away the router's or a subgraph's insides, if anything.
pub fn leak(message: &str) -> Option<&'static str> {
    if let Some((_, what)) = FORBIDDEN.iter().find(|(text, _)| message.contains(text)) {
        return Some(what);
    }
    // An IPv4 address: four dot-separated numbers.
    let dotted = message
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3)
        });
    dotted.then_some("an IP address")
}

/// Every error message in `text` (JSON, or a stream's part of it) that leaks, with what it leaks.
pub fn leaks_in(text: &str) -> Vec<String> {
    const KEY: &str = "\"message\":";
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        rest = rest[at + KEY.len()..].trim_start();
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        if let Some(Ok(message)) = stream.next() {
            if let Some(what) = leak(&message) {
                found.push(format!("{what} in {message:?}"));
            }
        }
    }
    found
}

/// The leaks seen in one router's responses.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Scanner {
    /// Scans `response`'s body as it is sent (compressed and upgraded ones are left alone).
    pub fn scan(&self, response: Response) -> Response {
        if response.headers().contains_key(header::CONTENT_ENCODING)
            || response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS
        {
            return response;
        }
        let seen = self.seen.clone();
        let (parts, body) = response.into_parts();
        let body = body.into_data_stream().map(move |chunk| {
            if let Ok(bytes) = &chunk {
                let found = leaks_in(&String::from_utf8_lossy(bytes));
                if !found.is_empty() {
                    seen.lock().expect("never poisoned").extend(found);
                }
            }
            chunk
        });
        Response::from_parts(parts, Body::from_stream(body))
    }

    /// Records the leaks of a message sent some other way (a WebSocket frame).
    pub fn record(&self, text: &str) {
        let found = leaks_in(text);
        self.seen.lock().expect("never poisoned").extend(found);
    }

    /// Panics with every leak seen, unless the thread is panicking already.
    pub fn check(&self) {
        let seen = self.seen.lock().expect("never poisoned");
        if !seen.is_empty() && !std::thread::panicking() {
            panic!(
                "the router sent error messages that give away its insides: {:#?}",
                *seen
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_and_paths_in_messages_only() {
        let body = r#"{"data":{"beer":{"image":"http://example.com/a.png"}},"errors":[{"message":"request to subgraph \"orders\" failed: error sending request for url (http://127.0.0.1:15003/graphql)"},{"message":"timed out"},{"message":"cannot open /tmp/x.db"},{"message":"peer 10.0.0.7 went away"}]}"#;
        let found = leaks_in(body);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("a URL"), "{found:?}");
        assert!(found[1].starts_with("a file path"), "{found:?}");
        assert!(found[2].starts_with("an IP address"), "{found:?}");
        assert!(leaks_in(r#"{"errors":[{"message":"price 1.19 is not 2.5"}]}"#).is_empty());
    }
}
