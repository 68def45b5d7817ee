//! The `taproom-router` binary's command line: what `serve` says, and its exit status, when it
//! cannot start.

use std::process::Command;

fn router(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_taproom-router"))
        .args(args)
        .output()
        .expect("runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_explains_an_unreadable_or_invalid_supergraph_and_exits_1() {
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        "/nonexistent/supergraph.graphql",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--supergraph: cannot read /nonexistent/supergraph.graphql"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("taproom-router-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creates");
    let bad = dir.join("bad.graphql");
    std::fs::write(&bad, "type Query { oops: }").expect("writes");
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        bad.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(stderr.contains("does not parse"), "{stderr}");

    let no_graphs = dir.join("plain.graphql");
    std::fs::write(&no_graphs, "type Query { hello: String }").expect("writes");
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        no_graphs.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(stderr.starts_with("error: --supergraph"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// The committed supergraph, which loads without any subgraph running.
const SUPERGRAPH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql");

#[test]
fn persisted_document_settings_are_checked_at_start() {
    let (ok, stderr) = router(&["serve", "--supergraph", SUPERGRAPH, "--safelist"]);
    assert!(!ok);
    assert!(stderr.contains("--persisted-documents"), "{stderr}");

    let dir = tempfile::tempdir().expect("a temporary folder");
    let bad = dir.path().join("manifest.json");
    std::fs::write(
        &bad,
        r#"{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}"#,
    )
    .expect("writes");
    let (ok, stderr) = router(&[
        "serve",
        "--supergraph",
        SUPERGRAPH,
        "--listen",
        "127.0.0.1:0",
        "--persisted-documents",
        bad.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("only version 1 is known"), "{stderr}");

    // A manifest that no longer matches the operations fails the check, naming the fix.
    std::fs::write(&bad, "{}").expect("writes");
    let (ok, stderr) = router(&[
        "manifest",
        "--operations",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/operations"),
        "--supergraph",
        SUPERGRAPH,
        "--check",
        bad.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("update-schema.sh"), "{stderr}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("bound")
        .port()
}

/// `--metrics-listen` moves `/metrics` and the dashboard to its own address; `--no-playground` removes `/`.
#[tokio::test]
async fn metrics_can_move_to_their_own_address() {
    let (main, metrics) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_taproom-router"))
        .args(["serve", "--supergraph", SUPERGRAPH, "--no-playground"])
        .args(["--listen", &format!("127.0.0.1:{main}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let http = reqwest::Client::new();
    let get = |port: u16, path: &str| http.get(format!("http://127.0.0.1:{port}{path}")).send();
    let mut up = false;
    for _ in 0..100 {
        if get(main, "/health").await.is_ok() && get(metrics, "/health").await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the router did not start");
    let scraped = get(metrics, "/metrics").await.expect("answers");
    assert_eq!(scraped.status(), 200);
    assert!(scraped
        .text()
        .await
        .expect("text")
        .contains("taproom_router_operations_prepared_total"));
    assert_eq!(get(main, "/metrics").await.expect("answers").status(), 404);
    // The dashboard moves with the metrics, and is the metrics address's front page.
    assert_eq!(get(metrics, "/").await.expect("answers").status(), 200);
    assert_eq!(
        get(main, "/dashboard").await.expect("answers").status(),
        404
    );
    assert_eq!(get(main, "/").await.expect("answers").status(), 404);
    child.kill().await.ok();
}

/// Starts the router with `args` and `RUST_LOG` asking for the per-request lines, sends one query
/// with a request id and a trace context, and returns the echoed request id and the log text.
async fn one_logged_request(args: &[&str]) -> (String, String) {
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_taproom-router"))
        .args(["serve", "--supergraph", SUPERGRAPH])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("RUST_LOG", "info,tower_http=debug")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{url}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the router did not start");
    let response = http
        .post(format!("{url}/graphql"))
        .header("x-request-id", "log-test-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("answers");
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    response.text().await.expect("a body");
    child.start_kill().expect("stops");
    let output = child.wait_with_output().await.expect("exits");
    (echoed, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// `--log-format json` writes one JSON object per line, and a request's lines carry its request id
/// and trace id; text logs to a pipe have no colour codes.
#[tokio::test]
async fn logs_are_json_or_plain_text_and_carry_the_requests_ids() {
    let (echoed, logs) = one_logged_request(&["--log-format", "json"]).await;
    assert_eq!(echoed, "log-test-1");
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let of_the_request: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["spans"][0]["url.path"] == "/graphql")
        .collect();
    assert!(!of_the_request.is_empty(), "{logs}");
    for line in of_the_request {
        let span = &line["spans"][0];
        assert_eq!(span["request_id"], "log-test-1", "{line}");
        assert_eq!(
            span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{line}"
        );
    }

    let (_, text) = one_logged_request(&[]).await;
    assert!(!text.contains('\u{1b}'), "no ANSI codes in a pipe: {text}");
    // Span names and kinds are for trace collectors, not for people reading text.
    assert!(!text.contains("otel."), "{text}");
    assert!(
        text.contains("request_id=log-test-1")
            && text.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
        "{text}"
    );
}
