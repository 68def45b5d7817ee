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
