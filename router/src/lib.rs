//! Taproom's router: one GraphQL endpoint in front of the subgraphs.
//!
//! A request flows through stages that read top to bottom, one module each:
//!
//! 1. [`http`]: GraphQL-over-HTTP in (`POST`/`GET /graphql`), the response out.
//! 2. [`plan`]: parse → check limits → validate against the API schema → split off introspection →
//!    normalize → plan (with `hive-router-query-planner`); cached per supergraph.
//! 3. [`variables`]: coerce the client's variables.
//! 4. [`execute`]: walk the plan, fetch from subgraphs ([`fetch`]), merge the answers.
//! 5. [`response`]: shape the merged tree to exactly the client's selection, propagating nulls;
//!    [`introspection`] answers `__schema`/`__type` from the API schema.
//!
//! The supergraph ([`supergraph`]) is loaded from a file or composed ([`compose`]) from live
//! subgraphs, which are then polled; a new supergraph is swapped in atomically only if it composes
//! and loads. The router depends on no subgraph crate: it sees SDL and HTTP only.

pub mod check;
pub mod compose;
pub mod config;
pub mod execute;
pub mod fetch;
pub mod http;
pub mod introspection;
pub mod plan;
pub mod playground;
pub mod response;
pub mod supergraph;
pub mod value;
pub mod variables;

/// Opts the process out of transparent huge pages; call first thing in `main`.
///
/// Where the kernel backs every large anonymous mapping with 2 MiB pages (`transparent_hugepage`
/// set to `always`), mimalloc's arenas are faulted in 2 MiB at a time: measured here, the router's
/// resident memory after ten sequential large answers was 41 MB with huge pages and 19 MB without,
/// for the same live data. Failure only costs memory, so it is logged.
pub fn avoid_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("warning: cannot opt out of transparent huge pages: {error}");
    }
}

use std::{
    collections::HashMap,
    future::Future,
    sync::{atomic::Ordering, Arc, RwLock},
    time::Duration,
};

use anyhow::Context as _;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use crate::{
    compose::SubgraphSdl,
    config::{Cli, Command, ServeArgs},
    fetch::SubgraphClient,
    plan::{Kind, OperationLimits, PrepareError},
    supergraph::Supergraph,
};

/// What a request produced.
pub enum Outcome {
    /// A GraphQL response (possibly with errors and partial data), as JSON text.
    Response(Vec<u8>),
    /// The request could not run at all.
    RequestError { status: StatusCode, body: Value },
}

/// The router's state: the current supergraph and the subgraph client.
pub struct Router {
    supergraph: RwLock<Arc<Supergraph>>,
    /// The HTTP client for subgraphs, with its request counters.
    pub client: SubgraphClient,
    /// Limits on operations.
    pub limits: OperationLimits,
}

impl Router {
    /// A router serving `supergraph`.
    pub fn new(
        supergraph: Arc<Supergraph>,
        client: SubgraphClient,
        limits: OperationLimits,
    ) -> Self {
        Router {
            supergraph: RwLock::new(supergraph),
            client,
            limits,
        }
    }

    /// The supergraph requests are served with now.
    pub fn supergraph(&self) -> Arc<Supergraph> {
        self.supergraph
            .read()
            .expect("the supergraph lock is never poisoned")
            .clone()
    }

    /// Serves `supergraph` from now on; requests already running finish with the old one.
    pub fn swap(&self, supergraph: Arc<Supergraph>) {
        *self
            .supergraph
            .write()
            .expect("the supergraph lock is never poisoned") = supergraph;
    }

    /// Operations prepared (plan cache misses) for the current supergraph.
    pub fn prepared_count(&self) -> u64 {
        self.supergraph().plans.prepared.load(Ordering::Relaxed)
    }

    /// Runs one GraphQL request through the pipeline.
    pub async fn execute(
        &self,
        query: &str,
        operation_name: Option<&str>,
        provided: &Map<String, Value>,
        headers: &HeaderMap,
        over_get: bool,
        want_plan: bool,
    ) -> Outcome {
        let supergraph = self.supergraph();
        let prepared = match plan::prepare(&supergraph, query, operation_name, &self.limits) {
            Ok(prepared) => prepared,
            Err(error) => return prepare_failed(error),
        };
        if over_get && prepared.kind != Kind::Query {
            return Outcome::RequestError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                body: json!({ "errors": [{ "message": "mutations are only accepted over POST", "extensions": { "code": "BAD_REQUEST" } }] }),
            };
        }
        let variables = match variables::coerce(
            &prepared.variables,
            provided,
            &supergraph.planner.consumer_schema.document,
        ) {
            Ok(variables) => variables,
            Err(messages) => {
                let errors: Vec<Value> = messages
                    .into_iter()
                    .map(|m| json!({ "message": m, "extensions": { "code": "BAD_USER_INPUT" } }))
                    .collect();
                return Outcome::RequestError {
                    status: StatusCode::BAD_REQUEST,
                    body: json!({ "errors": errors }),
                };
            }
        };

        let mut errors = Vec::new();
        // Root response keys with their values as JSON text.
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        let mut null_data = false;
        let root = match prepared.kind {
            Kind::Mutation => supergraph.planner.supergraph.mutation_type.clone(),
            _ => Some(supergraph.planner.supergraph.query_type.clone()),
        }
        .unwrap_or_else(|| "Query".into());
        if let Some((operation, plan)) = &prepared.planned {
            let bodies = value::Bodies::default();
            let (tree, fetch_errors) =
                execute::Execution::new(&supergraph, &self.client, headers, &variables, &bodies)
                    .run(plan)
                    .await;
            errors.extend(fetch_errors.into_iter().map(clean_subgraph_error));
            let (shaped, shape_errors) = response::shape(
                &supergraph,
                &variables,
                &tree,
                &operation.selection_set,
                &root,
                &errors,
            );
            errors.extend(shape_errors);
            match shaped {
                Some(shaped) => fields = shaped,
                None => null_data = true,
            }
        }
        if let Some(part) = &prepared.introspection {
            fields.extend(supergraph.introspection.execute(part, &variables, &root));
        }
        // The body is written as text: the shaped values already are JSON.
        let mut body = Vec::with_capacity(
            64 + fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>(),
        );
        body.push(b'{');
        if !errors.is_empty() {
            body.extend_from_slice(b"\"errors\":");
            response::write_json(&mut body, &errors);
            body.push(b',');
        }
        body.extend_from_slice(b"\"data\":");
        if null_data {
            body.extend_from_slice(b"null");
        } else {
            // The client's order of root fields; shaped and introspection fields are interleaved.
            let rank = |key: &str| {
                prepared
                    .root_keys
                    .iter()
                    .position(|k| k == key)
                    .unwrap_or(usize::MAX)
            };
            fields.sort_by_key(|(key, _)| rank(key));
            body.push(b'{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                response::write_json(&mut body, key);
                body.push(b':');
                body.extend_from_slice(value);
            }
            body.push(b'}');
        }
        if want_plan {
            let plan = match &prepared.planned {
                Some((_, plan)) => format!("{plan}"),
                None => {
                    "No subgraph fetches: the router answered this operation itself.".to_owned()
                }
            };
            body.extend_from_slice(b",\"extensions\":");
            response::write_json(&mut body, &json!({ "queryPlan": plan }));
        }
        body.push(b'}');
        Outcome::Response(body)
    }
}

/// Subgraph error locations point into the subgraph operation, not the client's: drop them.
fn clean_subgraph_error(mut error: Value) -> Value {
    if let Value::Object(object) = &mut error {
        object.remove("locations");
    }
    error
}

fn prepare_failed(error: PrepareError) -> Outcome {
    let code = error.code();
    let (status, errors) = match &error {
        PrepareError::Validation(list) => (
            StatusCode::BAD_REQUEST,
            list.iter()
                .map(|(message, locations)| {
                    let mut e = json!({ "message": message, "extensions": { "code": code } });
                    if !locations.is_empty() {
                        e["locations"] = locations
                            .iter()
                            .map(|(line, column)| json!({ "line": line, "column": column }))
                            .collect();
                    }
                    e
                })
                .collect(),
        ),
        PrepareError::Planning(cause) => {
            tracing::error!(%cause, "query planning failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![json!({ "message": "query planning failed", "extensions": { "code": code } })],
            )
        }
        other => (
            StatusCode::BAD_REQUEST,
            vec![json!({ "message": other.to_string(), "extensions": { "code": code } })],
        ),
    };
    Outcome::RequestError {
        status,
        body: json!({ "errors": errors }),
    }
}

/// Fetches a subgraph's federation SDL (`{ _service { sdl } }`).
pub async fn fetch_sdl(http: &reqwest::Client, name: &str, url: &str) -> anyhow::Result<String> {
    let response: Value = http
        .post(url)
        .json(&json!({ "query": "{ _service { sdl } }" }))
        .send()
        .await
        .with_context(|| format!("subgraph {name} at {url} is unreachable"))?
        .json()
        .await
        .with_context(|| format!("subgraph {name} at {url} did not answer JSON"))?;
    response["data"]["_service"]["sdl"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("subgraph {name} at {url} did not return its SDL: {response}"))
}

/// Fetches every subgraph's SDL and composes them.
pub async fn compose_live(
    http: &reqwest::Client,
    subgraphs: &[(String, String)],
) -> anyhow::Result<String> {
    let mut sdls = Vec::new();
    for (name, url) in subgraphs {
        sdls.push(SubgraphSdl {
            name: name.clone(),
            url: url.clone(),
            sdl: fetch_sdl(http, name, url).await?,
        });
    }
    Ok(compose::compose(&sdls)?)
}

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
                    compose_live(&reqwest::Client::new(), &subgraphs).await?
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
        Command::Serve(args) => {
            let listener = TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("LISTEN: cannot listen on {}", args.listen))?;
            serve(args, listener, shutdown_signal()).await
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

/// Loads the supergraph `args` name, then serves on `listener` until `shutdown` completes.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let overrides: HashMap<String, String> = args
        .subgraph_url
        .iter()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    let live: Vec<(String, String)> = args
        .subgraph
        .iter()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.subgraph_timeout_secs))
        .build()
        .context("cannot build the HTTP client")?;
    let sdl = match &args.supergraph {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--supergraph: cannot read {}", path.display()))?,
        None => compose_live(&http, &live).await?,
    };
    let supergraph =
        Supergraph::load(&sdl, &overrides, args.plan_cache_size).with_context(|| {
            match &args.supergraph {
                Some(path) => format!("--supergraph {}", path.display()),
                None => "the composed supergraph".to_owned(),
            }
        })?;
    let router = Arc::new(Router::new(
        supergraph,
        SubgraphClient::new(Duration::from_secs(args.subgraph_timeout_secs)),
        OperationLimits {
            max_depth: args.max_depth,
            max_aliases: args.max_aliases,
            max_fields: args.max_fields,
        },
    ));
    if !live.is_empty() {
        tokio::spawn(poll_subgraphs(
            router.clone(),
            http,
            live,
            overrides,
            Duration::from_secs(args.poll_interval_secs),
            args.plan_cache_size,
        ));
    }
    let cors: Vec<axum::http::HeaderValue> = args
        .cors_origin
        .iter()
        .map(|origin| {
            axum::http::HeaderValue::from_str(origin)
                .with_context(|| format!("--cors-origin: {origin:?} is not a valid origin"))
        })
        .collect::<anyhow::Result<_>>()?;
    tracing::info!(address = %listener.local_addr()?, "router listening");
    axum::serve(listener, http::routes(router, args.max_body_bytes, &cors))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Re-fetches the subgraphs' SDLs every `interval`; swaps in a new supergraph only if it composes and
/// loads, and keeps serving the old one otherwise.
async fn poll_subgraphs(
    router: Arc<Router>,
    http: reqwest::Client,
    subgraphs: Vec<(String, String)>,
    overrides: HashMap<String, String>,
    interval: Duration,
    plan_cache_size: u64,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let sdl = match compose_live(&http, &subgraphs).await {
            Ok(sdl) => sdl,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "schema poll failed; keeping the current supergraph");
                continue;
            }
        };
        if sdl == router.supergraph().sdl {
            continue;
        }
        match Supergraph::load(&sdl, &overrides, plan_cache_size) {
            Ok(supergraph) => {
                router.swap(supergraph);
                tracing::info!("subgraph schemas changed; new supergraph in service");
            }
            Err(error) => {
                tracing::error!(%error, "the new supergraph does not load; keeping the current one")
            }
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .expect("installing the Ctrl-C handler cannot fail on a live runtime");
    };
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler cannot fail on a live runtime")
            .recv()
            .await;
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
