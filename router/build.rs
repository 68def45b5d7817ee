//! Installs the playground's browser assets (GraphiQL, React, ReactDOM) from the npm registry at the
//! versions pinned in `playground/package-lock.json`, so the router can embed and serve them with no
//! internet access at run time. Nothing from those packages is committed to this repository.

use std::{env, fs, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=playground/package.json");
    println!("cargo:rerun-if-changed=playground/package-lock.json");
    let source =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("playground");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("playground");
    fs::create_dir_all(&out).expect("OUT_DIR is writable");
    let lock =
        fs::read(source.join("package-lock.json")).expect("playground/package-lock.json exists");
    let stamp = out.join(".installed-lock");
    let installed = fs::read(&stamp).is_ok_and(|previous| previous == lock)
        && out.join("node_modules/graphiql/graphiql.min.js").is_file();
    if !installed {
        for file in ["package.json", "package-lock.json"] {
            fs::copy(source.join(file), out.join(file)).expect("copies the npm manifests");
        }
        let npm = env::var("NPM").unwrap_or_else(|_| "npm".into());
        let status = Command::new(&npm)
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&out)
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => panic!(
                "`npm ci` for the playground assets (graphiql, react, react-dom) failed with {status}; the npm registry must be reachable to build the router"
            ),
            Err(error) => panic!(
                "cannot run `{npm}` to install the playground assets (graphiql, react, react-dom): {error}. Building the router needs Node.js and npm"
            ),
        }
        fs::write(&stamp, &lock).expect("OUT_DIR is writable");
    }
    println!(
        "cargo:rustc-env=TAPROOM_PLAYGROUND_ASSETS={}",
        out.join("node_modules").display()
    );
}
