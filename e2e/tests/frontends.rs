//! What frontends expect of the router, over real HTTP through the whole federation: automatic
//! persisted queries, persisted documents and the safelist, batches, compression both ways, and
//! the production switches.

use std::io::{Read as _, Write as _};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use taproom_e2e::{Federation, HttpOptions, PersistedSettings, PASSWORD};

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error code: {response:#}"))
}

/// A client that neither asks for nor decodes compressed responses.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("a client")
}

/// Sends `request` and reads its status and JSON body.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

const COUNT: &str = "query Count { beers { totalCount } }";

#[tokio::test]
async fn automatic_persisted_queries_miss_register_and_hit_over_post_and_get() {
    let f = Federation::start().await;
    let hash = sha256(COUNT);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let miss = f
        .http
        .post(f.router.graphql_url())
        .json(&json!({ "extensions": extensions }))
        .send()
        .await
        .expect("answers");
    assert_eq!(miss.status(), 200);
    assert_eq!(
        miss.headers()["cache-control"],
        "private, no-cache, must-revalidate"
    );
    let body: Value = miss.json().await.expect("JSON");
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");

    let wrong = f
        .post(
            json!({ "query": "{ beers { totalCount } }", "extensions": extensions }),
            None,
        )
        .await;
    assert_eq!(wrong.0, 400);
    assert_eq!(code(&wrong.1), "PERSISTED_QUERY_HASH_MISMATCH");

    let registered = f
        .post(json!({ "query": COUNT, "extensions": extensions }), None)
        .await;
    assert_eq!(
        registered.1["data"]["beers"]["totalCount"], 43,
        "{registered:?}"
    );

    let hit = f.post(json!({ "extensions": extensions }), None).await;
    assert_eq!(hit.1["data"]["beers"]["totalCount"], 43, "{hit:?}");

    let (_, over_get) = answer(
        f.http
            .get(f.router.graphql_url())
            .query(&[("extensions", extensions.to_string())]),
    )
    .await;
    assert_eq!(over_get["data"]["beers"]["totalCount"], 43, "{over_get}");
}

#[tokio::test]
async fn without_apq_a_hash_alone_is_not_supported() {
    let f = Federation::start().await;
    let router = f
        .another_router()
        .persisted(PersistedSettings::default())
        .start()
        .await;
    let (_, body) = answer(f.http.post(router.graphql_url()).json(
        &json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256(COUNT) } } }),
    ))
    .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_SUPPORTED", "{body}");
}

fn manifest(dir: &std::path::Path, bodies: &[(&str, &str)]) -> std::path::PathBuf {
    let operations: Vec<Value> = bodies
        .iter()
        .map(|(name, body)| json!({ "id": sha256(body), "name": name, "type": "query", "body": body }))
        .collect();
    let path = dir.join("persisted-documents.json");
    std::fs::write(
        &path,
        json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations })
            .to_string(),
    )
    .expect("written");
    path
}

#[tokio::test]
async fn a_safelisted_router_runs_only_listed_operations() {
    let f = Federation::start().await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = manifest(dir.path(), &[("Count", COUNT)]);
    let router = f
        .another_router()
        .persisted(PersistedSettings {
            apq_cache_bytes: 1 << 20,
            manifest: Some(path),
            safelist: true,
        })
        .start()
        .await;
    let post = |body: Value| answer(f.http.post(router.graphql_url()).json(&body));
    let by_id = post(json!({ "documentId": sha256(COUNT) })).await;
    assert_eq!(by_id.1["data"]["beers"]["totalCount"], 43, "{by_id:?}");
    let by_text = post(json!({ "query": COUNT })).await;
    assert_eq!(by_text.1["data"]["beers"]["totalCount"], 43, "{by_text:?}");
    let by_hash =
        post(json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256(COUNT) } } }))
            .await;
    assert_eq!(by_hash.1["data"]["beers"]["totalCount"], 43, "{by_hash:?}");

    let unlisted = post(json!({ "query": "{ beers { totalCount } }" })).await;
    assert_eq!(unlisted.0, 403);
    assert_eq!(code(&unlisted.1), "QUERY_NOT_IN_SAFELIST");
    let unknown = post(json!({ "documentId": sha256("{ me { id } }") })).await;
    assert_eq!(unknown.0, 404);
    assert_eq!(code(&unknown.1), "PERSISTED_QUERY_NOT_IN_LIST");
}

#[tokio::test]
async fn a_batch_answers_each_operation_in_order_each_on_its_own() {
    let f = Federation::start().await;
    let aliases: String = (0..201).map(|i| format!("a{i}: __typename ")).collect();
    let many = format!("{{ {aliases} }}");
    let (status, body) = f
        .post(
            json!([
                { "query": COUNT },
                { "query": "{ beer(sku: \"nope\") { name } }" },
                { "query": "{ nope" },
                { "query": many },
                { "qeury": "{ me { id } }" },
                { "documentId": "abc" },
            ]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answers = body.as_array().expect("an array");
    assert_eq!(answers.len(), 6, "{body}");
    assert_eq!(answers[0]["data"]["beers"]["totalCount"], 43);
    assert_eq!(answers[1]["data"]["beer"], Value::Null);
    assert_eq!(code(&answers[2]), "GRAPHQL_PARSE_FAILED");
    assert_eq!(code(&answers[3]), "MAX_ALIASES_LIMIT");
    assert_eq!(code(&answers[4]), "BAD_REQUEST");
    assert_eq!(code(&answers[5]), "PERSISTED_QUERY_NOT_SUPPORTED");

    let eleven: Vec<Value> = (0..11).map(|_| json!({ "query": COUNT })).collect();
    let (status, body) = f.post(Value::Array(eleven), None).await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "BAD_REQUEST");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 10")),
        "{body}"
    );
}

/// A batch of ten sign-ins is one guess, not ten: the users subgraph checks credentials once per
/// batch, as once per operation.
#[tokio::test]
async fn a_batch_of_logins_checks_credentials_once() {
    let f = Federation::start().await;
    f.register("customer").await;
    let mut batch: Vec<Value> = (0..9)
        .map(|i| json!({ "query": format!(r#"mutation {{ login(username: "customer", password: "Guess{i:04}A") {{ token }} }}"#) }))
        .collect();
    batch.push(json!({ "query": format!(r#"mutation {{ login(username: "customer", password: "{PASSWORD}") {{ token }} }}"#) }));
    let (status, body) = f.post(Value::Array(batch), None).await;
    assert_eq!(status, 200, "{body}");
    let answers = body.as_array().expect("an array");
    let checked: Vec<&Value> = answers
        .iter()
        .filter(|a| {
            !a["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("one request may check credentials"))
        })
        .collect();
    assert_eq!(
        checked.len(),
        1,
        "exactly one sign-in was checked: {body:#}"
    );
    for refused in answers.iter().filter(|a| !checked.contains(a)) {
        assert_eq!(code(refused), "BAD_USER_INPUT", "{refused}");
    }
    // Separate requests are separate batches: the right password works on its own.
    let alone = f
        .gql(
            &format!(
                r#"mutation {{ login(username: "customer", password: "{PASSWORD}") {{ token }} }}"#
            ),
            json!({}),
            None,
        )
        .await;
    assert!(alone["data"]["login"]["token"].is_string(), "{alone}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("compresses");
    encoder.finish().expect("compresses")
}

#[tokio::test]
async fn gzip_request_bodies_are_read_within_the_body_limit() {
    let f = Federation::start().await;
    let send = |body: Vec<u8>, encoding: &'static str| {
        answer(
            plain_client()
                .post(f.router.graphql_url())
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .body(body),
        )
    };
    let body = serde_json::to_vec(&json!({ "query": COUNT })).expect("serializes");
    let ok = send(gzip(&body), "gzip").await;
    assert_eq!(ok.1["data"]["beers"]["totalCount"], 43, "{ok:?}");

    // 8 MiB of spaces is 8 KiB of gzip: small on the wire, far over the 1 MiB limit once read.
    let mut bomb = b"{\"query\": \"{ beers { totalCount } }\"".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 8 << 20));
    bomb.push(b'}');
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let (status, body) = send(bomb, "gzip").await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(code(&body), "BAD_REQUEST");

    let (status, body) = send(b"not gzip at all".to_vec(), "gzip").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(body_bytes(), "compress").await;
    assert_eq!(status, 415, "{body}");
}

fn body_bytes() -> Vec<u8> {
    serde_json::to_vec(&json!({ "query": COUNT })).expect("serializes")
}

/// The catalog's first 43 beers with every field: about 8 KB of JSON.
const CATALOG: &str =
    "{ beers(first: 43) { edges { cursor node { id sku name price image } } totalCount } }";

#[tokio::test]
async fn large_responses_are_compressed_for_clients_that_accept_it() {
    let f = Federation::start().await;
    let client = plain_client();
    let fetch = |query: &'static str, encoding: &'static str| {
        let request = client
            .post(f.router.graphql_url())
            .header("accept-encoding", encoding)
            .json(&json!({ "query": query }));
        async move {
            let response = request.send().await.expect("answers");
            let encoding = response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("text").to_owned());
            (encoding, response.bytes().await.expect("a body").to_vec())
        }
    };
    let (none, plain) = fetch(CATALOG, "identity").await;
    assert_eq!(none, None);
    assert!(plain.len() > 4096, "{}", plain.len());
    let (gzip, compressed) = fetch(CATALOG, "gzip").await;
    assert_eq!(gzip.as_deref(), Some("gzip"));
    assert!(
        compressed.len() * 3 < plain.len(),
        "{} vs {}",
        compressed.len(),
        plain.len()
    );
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut decoded)
        .expect("gzip");
    assert_eq!(decoded, plain);
    assert_eq!(fetch(CATALOG, "br").await.0.as_deref(), Some("br"));
    assert_eq!(fetch(CATALOG, "zstd").await.0.as_deref(), Some("zstd"));
    // Below the threshold, nothing is gained: sent as is.
    assert_eq!(fetch(COUNT, "gzip, br").await.0, None);
}

#[tokio::test]
async fn production_switches_turn_off_the_playground_introspection_and_plans() {
    let f = Federation::start().await;
    let router = f
        .another_router()
        .introspection(false)
        .http(HttpOptions {
            playground: false,
            query_plan_header: false,
            ..HttpOptions::default()
        })
        .start()
        .await;
    let base = router.graphql_url().replace("/graphql", "");
    let page = f
        .http
        .get(format!("{base}/"))
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), 404);
    let post = |query: &str| {
        f.http
            .post(router.graphql_url())
            .header("x-taproom-query-plan", "true")
            .json(&json!({ "query": query }))
    };
    let (_, schema) = answer(post("{ __schema { queryType { name } } }")).await;
    assert_eq!(code(&schema), "GRAPHQL_VALIDATION_FAILED", "{schema}");
    let (_, typename) = answer(post("{ __typename beers { totalCount } }")).await;
    assert_eq!(typename["data"]["__typename"], "Query", "{typename}");
    assert!(typename.get("extensions").is_none(), "no plan: {typename}");

    // The default router serves the playground with headers that keep it out of frames.
    let page = f
        .http
        .get(f.router.graphql_url().replace("/graphql", "/"))
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .expect("text")
        .contains("default-src 'self'"));
    // Only a router told so (the local stack's) names demo accounts on its page.
    assert!(!page
        .text()
        .await
        .expect("text")
        .contains("data-demo-accounts"));
    let demo = f
        .another_router()
        .http(HttpOptions {
            demo_accounts: true,
            ..HttpOptions::default()
        })
        .start()
        .await;
    let page = f
        .http
        .get(demo.graphql_url().replace("/graphql", "/"))
        .send()
        .await
        .expect("answers");
    assert!(page
        .text()
        .await
        .expect("text")
        .contains("<body data-demo-accounts=\"true\">"));
}
