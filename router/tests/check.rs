//! Schema checks: the report of each kind of change between two schema folders, and the `check`
//! subcommand's exit status.

use std::process::Command;

/// One folder per kind of change under `tests/check_cases/`: `base/` and `new/` schema folders; the
/// report (or the composition error) is the snapshot.
#[test]
fn schema_check_reports() {
    insta::glob!("check_cases/*/new/subgraphs", |path| {
        let new_dir = path.parent().expect("new/");
        let base_dir = new_dir.parent().expect("case/").join("base");
        let base = taproom_router::check::compose_dir(&base_dir).expect("the base composes");
        let base_api = taproom_router::check::api_sdl(&base).expect("the base loads");
        let report = match taproom_router::check::compose_dir(new_dir) {
            Err(error) => format!("does not compose: {error:#}"),
            Ok(new) => {
                let new_api = taproom_router::check::api_sdl(&new).expect("the new schema loads");
                let report = taproom_router::check::check(&base_api, &new_api).expect("diffs");
                format!("breaking: {}\n{report}", report.is_breaking())
            }
        };
        insta::assert_snapshot!(report);
    });
}

#[test]
fn check_exits_non_zero_on_breaking_changes_unless_acknowledged() {
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_cases");
    let base =
        std::env::temp_dir().join(format!("taproom-check-base-{}.graphql", std::process::id()));
    let check = |case: &str, extra: &[&str]| {
        let base_sdl =
            taproom_router::check::compose_dir(&cases.join(case).join("base")).expect("composes");
        std::fs::write(&base, base_sdl).expect("writes");
        let dir = cases.join(case).join("new");
        let mut args = vec![
            "check",
            "--schema-dir",
            dir.to_str().expect("utf-8"),
            "--base",
            base.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let output = Command::new(env!("CARGO_BIN_EXE_taproom-router"))
            .args(&args)
            .output()
            .expect("runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, out) = check("field_removed", &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("BREAKING   Query.removed  field removed") && out.contains("--allow-breaking"),
        "{out}"
    );
    let (ok, out) = check("field_removed", &["--allow-breaking"]);
    assert!(ok, "{out}");
    let (ok, out) = check("field_added", &[]);
    assert!(ok, "an added field breaks nobody: {out}");

    let operations = std::env::temp_dir().join(format!("taproom-check-ops-{}", std::process::id()));
    std::fs::create_dir_all(&operations).expect("creates");
    std::fs::write(
        operations.join("page.graphql"),
        "query Page { kept removed }",
    )
    .expect("writes");
    let (ok, out) = check(
        "field_added",
        &["--operations", operations.to_str().expect("utf-8")],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("operation page.graphql would break"), "{out}");
    std::fs::remove_dir_all(operations).ok();
    std::fs::remove_file(base).ok();
}
