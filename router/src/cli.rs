//! The command line: `serve`, `compose`, `api-schema`, `check` and `manifest`.

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::{
    config::{self, Cli, Command},
    serve::{compose_live, serve, shutdown_signal},
    tooling::{check, manifest},
};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Compose(args) => {
            let sdl = match &args.schema_dir {
                Some(dir) => check::compose_dir(dir)?,
                None => {
                    let subgraphs: Vec<(String, String)> = args
                        .subgraph
                        .into_iter()
                        .map(|s| (s.name, s.value))
                        .collect();
                    let http = args
                        .secret
                        .http_client(std::time::Duration::from_secs(30))
                        .context("cannot build the HTTP client")?;
                    compose_live(&http, &subgraphs).await?
                }
            };
            write_output(args.output.as_deref(), &sdl)
        }
        Command::ApiSchema(args) => {
            let sdl = std::fs::read_to_string(&args.supergraph).with_context(|| {
                format!("--supergraph: cannot read {}", args.supergraph.display())
            })?;
            write_output(args.output.as_deref(), &check::api_sdl(&sdl)?)
        }
        Command::Check(args) => run_check(args),
        Command::Manifest(args) => {
            let sdl = std::fs::read_to_string(&args.supergraph).with_context(|| {
                format!("--supergraph: cannot read {}", args.supergraph.display())
            })?;
            let text = manifest::to_text(&manifest::build(&args.operations, &sdl)?);
            match &args.check {
                None => write_output(args.output.as_deref(), &text),
                Some(path) => {
                    let committed = std::fs::read_to_string(path)
                        .with_context(|| format!("--check: cannot read {}", path.display()))?;
                    anyhow::ensure!(
                        committed == text,
                        "{} is not the manifest of {}; write it again with `bash scripts/update-schema.sh`",
                        path.display(),
                        args.operations.display()
                    );
                    println!(
                        "{} is up to date with {}",
                        path.display(),
                        args.operations.display()
                    );
                    Ok(())
                }
            }
        }
        Command::Serve(args) => {
            let listener = TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("LISTEN: cannot listen on {}", args.listen))?;
            serve(*args, listener, shutdown_signal()).await
        }
    }
}

fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("--output: cannot write {}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// `taproom-router check`.
fn run_check(args: config::CheckArgs) -> anyhow::Result<()> {
    let new_supergraph = check::compose_dir(&args.schema_dir).with_context(|| {
        format!(
            "the subgraphs in {} do not compose",
            args.schema_dir.display()
        )
    })?;
    let new_api = check::api_sdl(&new_supergraph)?;
    let base_text = if std::path::Path::new(&args.base).is_file() {
        std::fs::read_to_string(&args.base)
            .with_context(|| format!("--base: cannot read {}", args.base))?
    } else {
        let spec = format!(
            "{}:./{}/supergraph.graphql",
            args.base,
            args.schema_dir.display()
        );
        let output = std::process::Command::new("git")
            .args(["show", &spec])
            .output()
            .context("--base: cannot run git")?;
        if !output.status.success() {
            anyhow::bail!(
                "--base {:?} is neither a file nor a git revision with {}/supergraph.graphql: {}",
                args.base,
                args.schema_dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        String::from_utf8(output.stdout).context("--base: the supergraph is not UTF-8")?
    };
    let base_api = if base_text.contains("join__Graph") {
        check::api_sdl(&base_text).context("--base: the base supergraph does not load")?
    } else {
        base_text
    };
    let mut report = check::check(&base_api, &new_api)?;
    if let Some(dir) = &args.operations {
        report.broken_operations = check::check_operations(&new_supergraph, dir)?;
    }
    println!(
        "schema check of {} against {}:",
        args.schema_dir.display(),
        args.base
    );
    print!("{report}");
    if report.is_breaking() && !args.allow_breaking {
        anyhow::bail!("the change breaks existing clients (see above); if that is intended, acknowledge it with --allow-breaking");
    }
    Ok(())
}
