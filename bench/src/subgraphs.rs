//! A scenario's subgraphs: the shop's three, started from the release `taproom` binary on the seeded
//! databases, or the router-bound scenario's four, served by `taproom-bench-subgraphs` from static
//! data; the supergraph file every gateway is started on (the shop's: the checked-in one, its URLs
//! pointed at them; the router-bound one: composed by `taproom router compose` from the running
//! subgraphs); and the subgraphs measured alone — the recorded subgraph requests of each operation
//! sent straight to them, the ceiling no gateway can pass on this machine.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::{
    config::Args,
    load::{self, Target},
    ops::Operation,
    procs::{Launch, Process},
    report::Baseline,
    seed::Databases,
};

/// The shop's subgraphs, in port order (`--base-port` + 1, + 2, + 3).
pub(crate) const SHOP: [&str; 3] = ["users", "beers", "orders"];

/// The router-bound scenario's subgraphs, in port order (`--base-port` + 4 to + 7).
pub(crate) const ROUTER_BOUND: [&str; 4] = ["accounts", "inventory", "products", "reviews"];

/// The running subgraphs and the supergraph that points at them.
pub(crate) struct Subgraphs {
    /// Their names, in the order of the load generator's targets (a recorded step's `target`
    /// indexes this list).
    pub(crate) names: &'static [&'static str],
    processes: Vec<Process>,
    /// Where each of [`Subgraphs::names`] answers, in that order.
    pub(crate) targets: Vec<Target>,
    /// The supergraph's text, with the subgraphs' URLs.
    pub(crate) supergraph: String,
    /// The same, written to `supergraph.graphql` in the output directory (absolute).
    pub(crate) supergraph_path: PathBuf,
}

impl Subgraphs {
    /// Starts the router-bound scenario's four subgraphs (one process) pinned to `cpus`, each
    /// answering after `delay_ms`, waits until each answers, and composes
    /// `supergraph-router-bound.graphql` in `--out` from them.
    pub(crate) async fn start_router_bound(
        args: &Args,
        cpus: Option<&str>,
        logs: &Path,
        delay_ms: u64,
    ) -> Result<Subgraphs> {
        let offsets = 4..4 + ROUTER_BOUND.len() as u16;
        let listen: Vec<String> = ROUTER_BOUND
            .iter()
            .zip(offsets.clone())
            .map(|(name, offset)| format!("{name}={}", args.address(offset)))
            .collect();
        let mut process = Process::start(Launch {
            name: "router-bound-subgraphs",
            program: &args.fixture,
            args: vec!["--listen".into(), listen.join(",")],
            env: vec![("SUBGRAPH_DELAY_MS", delay_ms.to_string())],
            cpus,
            log_dir: logs,
        })?;
        let mut targets = Vec::new();
        for offset in offsets.clone() {
            let target = args.target(offset)?;
            process
                .wait_ready(Duration::from_secs(30), || {
                    load::answers_typename(target.clone())
                })
                .await?;
            targets.push(target);
        }
        let subgraphs: Vec<String> = ROUTER_BOUND
            .iter()
            .zip(offsets)
            .map(|(name, offset)| format!("{name}={}", args.graphql_url(offset)))
            .collect();
        let path = args.out.join("supergraph-router-bound.graphql");
        let composed = tokio::process::Command::new(&args.taproom)
            .args(["router", "compose", "--subgraph", &subgraphs.join(",")])
            .arg("--output")
            .arg(&path)
            .output()
            .await
            .context("running `taproom router compose`")?;
        if !composed.status.success() {
            bail!(
                "the router-bound subgraphs do not compose: {}",
                String::from_utf8_lossy(&composed.stderr)
            );
        }
        Ok(Subgraphs {
            names: &ROUTER_BOUND,
            processes: vec![process],
            targets,
            supergraph: std::fs::read_to_string(&path)?,
            supergraph_path: path.canonicalize()?,
        })
    }

    /// Starts the shop's three subgraphs on `databases`, pinned to `cpus`, waits until each answers,
    /// and writes `supergraph.graphql` into `--out` with their URLs. `subtree_memo` off makes the
    /// orders subgraph resolve a user's orders at every place a query reaches them (as before it
    /// had the memo), to measure what the memo is worth.
    pub(crate) async fn start_shop(
        args: &Args,
        databases: &Databases,
        cpus: Option<&str>,
        logs: &Path,
        subtree_memo: bool,
    ) -> Result<Subgraphs> {
        let auth_url = format!("http://{}/auth/introspect", args.address(1));
        let mut processes = Vec::new();
        let mut targets = Vec::new();
        for name in SHOP {
            let offset = processes.len() as u16 + 1;
            let mut env = vec![
                ("DATABASE_URL", databases.url(name)),
                ("LISTEN", args.address(offset)),
                ("RUST_LOG", "warn".to_owned()),
            ];
            match name {
                "users" => env.push(("SECRET_KEY", databases.secret_key.clone())),
                "beers" => env.push(("AUTH_URL", auth_url.clone())),
                // orders
                _ => {
                    env.push(("AUTH_URL", auth_url.clone()));
                    env.push(("BEERS_URL", args.graphql_url(2)));
                    if !subtree_memo {
                        env.push(("NO_SUBTREE_MEMO", "true".to_owned()));
                    }
                }
            }
            let mut process = Process::start(Launch {
                name,
                program: &args.taproom,
                args: vec![name.to_owned(), "serve".to_owned()],
                env,
                cpus,
                log_dir: logs,
            })?;
            let target = args.target(offset)?;
            process
                .wait_ready(Duration::from_secs(30), || {
                    load::answers_typename(target.clone())
                })
                .await?;
            processes.push(process);
            targets.push(target);
        }
        let supergraph = rewrite_supergraph(
            &std::fs::read_to_string(&args.supergraph)
                .with_context(|| format!("reading {}", args.supergraph.display()))?,
            &urls(&SHOP, |i| args.graphql_url(i as u16 + 1)),
        )?;
        let path = args.out.join("supergraph.graphql");
        std::fs::write(&path, &supergraph)?;
        Ok(Subgraphs {
            names: &SHOP,
            processes,
            targets,
            supergraph,
            supergraph_path: path.canonicalize()?,
        })
    }

    /// The resident memory now of subgraph `name`'s process, in bytes.
    pub(crate) fn rss_bytes(&self, name: &str) -> Result<f64> {
        self.processes
            .iter()
            .find(|process| process.name == name)
            .with_context(|| format!("no subgraph process named {name}"))?
            .rss_bytes()
    }

    /// The supergraph with subgraph `i`'s URL replaced by `url(i)`.
    pub(crate) fn supergraph_pointed_at(&self, url: impl Fn(usize) -> String) -> Result<String> {
        rewrite_supergraph(&self.supergraph, &urls(self.names, url))
    }

    /// Loads the subgraphs with each operation's recorded subgraph requests at each of
    /// `connections`, with no gateway in between; stops the run if they fail.
    pub(crate) async fn measure_alone(
        &self,
        operations: &[Operation],
        connections: &[usize],
        warmup: Duration,
        duration: Duration,
    ) -> Result<Vec<Baseline>> {
        let mut baselines = Vec::new();
        for op in operations {
            let work = Arc::new(op.subgraph_work.clone());
            for &connections in connections {
                load::run(&self.targets, work.clone(), connections, warmup).await?;
                let outcome = load::run(&self.targets, work.clone(), connections, duration).await?;
                eprintln!(
                    "subgraphs alone, {} at {connections}: {:.0} op/s ({} failed)",
                    op.name,
                    outcome.requests_per_second(),
                    outcome.failed
                );
                if let Some(failure) = &outcome.first_failure {
                    bail!("the subgraphs failed the {} baseline: {failure}", op.name);
                }
                baselines.push(Baseline::new(op.name, connections, &outcome));
            }
        }
        Ok(baselines)
    }

    /// Stops them, in start order.
    pub(crate) async fn stop(self) -> Result<()> {
        for process in self.processes {
            process.stop().await?;
        }
        Ok(())
    }
}

/// Each of `names` with `url(its index)`.
fn urls(names: &[&'static str], url: impl Fn(usize) -> String) -> Vec<(&'static str, String)> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, url(i)))
        .collect()
}

/// Replaces each named subgraph's URL in a supergraph's `join__Graph` enum.
fn rewrite_supergraph(sdl: &str, urls: &[(&str, String)]) -> Result<String> {
    let mut out = sdl.to_owned();
    for (name, url) in urls {
        let marker = format!("@join__graph(name: \"{name}\", url: \"");
        let start = out
            .find(&marker)
            .with_context(|| format!("no subgraph named {name} in the supergraph"))?
            + marker.len();
        let end = start
            + out[start..]
                .find('"')
                .context("unterminated URL in the supergraph")?;
        out.replace_range(start..end, url);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_each_subgraph_url_and_refuses_unknown_names() {
        let sdl = r#"enum join__Graph {
  BEERS @join__graph(name: "beers", url: "http://127.0.0.1:5002/graphql")
  USERS @join__graph(name: "users", url: "http://127.0.0.1:5001/graphql")
}"#;
        let out = rewrite_supergraph(sdl, &[("users", "http://127.0.0.1:14001/graphql".into())])
            .expect("users is named");
        assert!(out.contains(r#"name: "users", url: "http://127.0.0.1:14001/graphql""#));
        assert!(out.contains(r#"name: "beers", url: "http://127.0.0.1:5002/graphql""#));
        assert!(rewrite_supergraph(sdl, &[("orders", "x".into())]).is_err());
    }

    #[test]
    fn the_checked_in_supergraph_names_all_three_subgraphs() {
        let sdl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/supergraph.graphql"
        ))
        .expect("schema/supergraph.graphql is checked in");
        let urls = ["users", "beers", "orders"].map(|n| (n, format!("http://bench/{n}")));
        let out = rewrite_supergraph(&sdl, &urls).expect("all three are named");
        for (name, url) in urls {
            assert!(out.contains(&format!("name: \"{name}\", url: \"{url}\"")));
        }
    }
}
