//! Persisted queries, documents and the safelist, stage 0 of a request (`persisted`): what each
//! kind of request resolves to, the bounded APQ cache, and reloading the manifest.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use taproom_router::{
    error::{Code, RequestError},
    persisted::{
        sha256_hex, ManifestFile, ManifestOperation, Persisted, PersistedSettings, MANIFEST_FORMAT,
    },
};

const QUERY: &str = "{ beers { totalCount } }";

fn hash_only(hash: &str) -> Map<String, Value> {
    let Value::Object(map) = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}) else {
        unreachable!()
    };
    map
}

fn code(error: &RequestError) -> (&str, StatusCode) {
    (
        error.errors[0]
            .extensions
            .code
            .as_ref()
            .map_or("", Code::as_str),
        error.status,
    )
}

fn manifest_file(dir: &Path, bodies: &[&str]) -> PathBuf {
    let file = ManifestFile {
        format: MANIFEST_FORMAT.into(),
        version: 1,
        operations: bodies
            .iter()
            .enumerate()
            .map(|(i, body)| ManifestOperation {
                id: sha256_hex(body),
                name: format!("Op{i}"),
                kind: "query".into(),
                body: (*body).into(),
            })
            .collect(),
    };
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec(&file).expect("serializes")).expect("written");
    path
}

#[test]
fn apq_misses_then_registers_then_hits() {
    let persisted = Persisted::new(&PersistedSettings {
        apq_cache_bytes: 1 << 20,
        ..Default::default()
    })
    .expect("no file to read");
    let hash = sha256_hex(QUERY);
    let miss = persisted
        .resolve(None, None, &hash_only(&hash))
        .expect_err("not known yet");
    assert_eq!(code(&miss), ("PERSISTED_QUERY_NOT_FOUND", StatusCode::OK));
    let wrong = persisted
        .resolve(Some("{ other }"), None, &hash_only(&hash))
        .expect_err("not this query's hash");
    assert_eq!(
        code(&wrong),
        ("PERSISTED_QUERY_HASH_MISMATCH", StatusCode::BAD_REQUEST)
    );
    let registered = persisted
        .resolve(Some(QUERY), None, &hash_only(&hash.to_uppercase()))
        .expect("registers");
    assert_eq!(registered, QUERY);
    let hit = persisted
        .resolve(None, None, &hash_only(&hash))
        .expect("known now");
    assert_eq!(hit, QUERY);
    for bad in [
        json!({"persistedQuery": "x"}),
        json!({"persistedQuery": {"sha256Hash": hash}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}),
    ] {
        let Value::Object(extensions) = bad else {
            unreachable!()
        };
        let error = persisted
            .resolve(None, None, &extensions)
            .expect_err("malformed");
        assert_eq!(code(&error), ("BAD_REQUEST", StatusCode::BAD_REQUEST));
    }
    let Value::Object(v2) = json!({"persistedQuery": {"version": 2, "sha256Hash": hash}}) else {
        unreachable!()
    };
    assert_eq!(
        code(&persisted.resolve(None, None, &v2).expect_err("v2")),
        ("PERSISTED_QUERY_NOT_SUPPORTED", StatusCode::BAD_REQUEST)
    );
}

#[test]
fn without_apq_a_hash_alone_is_not_supported() {
    let persisted = Persisted::new(&PersistedSettings::default()).expect("nothing to read");
    let error = persisted
        .resolve(None, None, &hash_only(&sha256_hex(QUERY)))
        .expect_err("off");
    assert_eq!(
        code(&error),
        ("PERSISTED_QUERY_NOT_SUPPORTED", StatusCode::BAD_REQUEST)
    );
    let error = persisted
        .resolve(None, Some("abc"), &Map::new())
        .expect_err("no manifest");
    assert_eq!(
        code(&error),
        ("PERSISTED_QUERY_NOT_SUPPORTED", StatusCode::BAD_REQUEST)
    );
    let error = persisted
        .resolve(None, None, &Map::new())
        .expect_err("nothing");
    assert_eq!(error.errors[0].message, "the request has no query");
}

#[test]
fn the_apq_cache_is_bounded_in_bytes_and_forgets_the_least_recently_used() {
    // Room for about three entries of 64 + 100 bytes.
    let persisted = Persisted::new(&PersistedSettings {
        apq_cache_bytes: 500,
        ..Default::default()
    })
    .expect("no file to read");
    let queries: Vec<String> = (0..10)
        .map(|i| format!("{{ a{i:0>3} {} }}", "b ".repeat(45)))
        .collect();
    for query in &queries {
        persisted
            .resolve(Some(query), None, &hash_only(&sha256_hex(query)))
            .expect("registers");
        // Keep the first one in use (the cache records uses in the background: let it).
        persisted
            .resolve(None, None, &hash_only(&sha256_hex(&queries[0])))
            .expect("still known");
        persisted.apq_entries();
    }
    assert!(persisted.apq_bytes() <= 500, "{}", persisted.apq_bytes());
    assert!(persisted.apq_entries() <= 3, "{}", persisted.apq_entries());
    let oldest = persisted
        .resolve(None, None, &hash_only(&sha256_hex(&queries[1])))
        .expect_err("evicted");
    assert_eq!(code(&oldest).0, "PERSISTED_QUERY_NOT_FOUND");
    persisted
        .resolve(None, None, &hash_only(&sha256_hex(&queries[0])))
        .expect("the one in use stays");
}

#[test]
fn documents_resolve_from_the_manifest_and_the_safelist_refuses_the_rest() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = manifest_file(dir.path(), &[QUERY]);
    let open = Persisted::new(&PersistedSettings {
        apq_cache_bytes: 1 << 20,
        manifest: Some(path.clone()),
        safelist: false,
    })
    .expect("reads");
    let id = sha256_hex(QUERY);
    assert_eq!(
        open.resolve(None, Some(&id), &Map::new()).expect("listed"),
        QUERY
    );
    assert_eq!(
        open.resolve(None, Some(&id.to_uppercase()), &Map::new())
            .expect("listed, in capitals"),
        QUERY
    );
    assert_eq!(
        open.resolve(None, Some(&format!("sha256:{id}")), &Map::new())
            .expect("listed, with the prefix"),
        QUERY
    );
    assert_eq!(
        open.resolve(None, None, &hash_only(&id)).expect("listed"),
        QUERY
    );
    let unknown = open
        .resolve(None, Some("nope"), &Map::new())
        .expect_err("unknown");
    assert_eq!(
        code(&unknown),
        ("PERSISTED_QUERY_NOT_IN_LIST", StatusCode::NOT_FOUND)
    );
    open.resolve(Some("{ other }"), None, &Map::new())
        .expect("no safelist: anything runs");

    let strict = Persisted::new(&PersistedSettings {
        apq_cache_bytes: 1 << 20,
        manifest: Some(path),
        safelist: true,
    })
    .expect("reads");
    assert_eq!(
        strict
            .resolve(Some(QUERY), None, &Map::new())
            .expect("listed text"),
        QUERY
    );
    let refused = strict
        .resolve(Some("{ other }"), None, &Map::new())
        .expect_err("not listed");
    assert_eq!(
        code(&refused),
        ("QUERY_NOT_IN_SAFELIST", StatusCode::FORBIDDEN)
    );
    // Registering an unlisted query does not get it past the safelist later.
    let other = "{ other }";
    strict
        .resolve(Some(other), None, &hash_only(&sha256_hex(other)))
        .expect_err("not listed");
    let later = strict
        .resolve(None, None, &hash_only(&sha256_hex(other)))
        .expect_err("never registered");
    assert_eq!(
        code(&later),
        ("PERSISTED_QUERY_NOT_IN_LIST", StatusCode::NOT_FOUND)
    );
    assert!(Persisted::new(&PersistedSettings {
        safelist: true,
        ..Default::default()
    })
    .is_err());
}

#[test]
fn a_changed_manifest_is_reloaded_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = manifest_file(dir.path(), &[QUERY]);
    let persisted = Persisted::new(&PersistedSettings {
        manifest: Some(path.clone()),
        ..Default::default()
    })
    .expect("reads");
    assert!(!persisted.reload().expect("unchanged"));
    let second = "{ beer(sku: \"1\") { name } }";
    manifest_file(dir.path(), &[QUERY, second]);
    assert!(persisted.reload().expect("changed"));
    assert_eq!(
        persisted
            .resolve(None, Some(&sha256_hex(second)), &Map::new())
            .expect("the new one"),
        second
    );
    std::fs::write(&path, b"{\"format\": \"something else\"").expect("written");
    let error = persisted.reload().expect_err("bad file");
    assert!(
        format!("{error:#}").contains("not a persisted query manifest"),
        "{error:#}"
    );
    assert_eq!(
        persisted
            .resolve(None, Some(&sha256_hex(second)), &Map::new())
            .expect("the old list stays"),
        second
    );
    let wrong_format = serde_json::json!({"format": "x", "version": 1, "operations": []});
    std::fs::write(&path, wrong_format.to_string()).expect("written");
    let error = persisted.reload().expect_err("bad format");
    assert!(format!("{error:#}").contains("`format`"), "{error:#}");
}
