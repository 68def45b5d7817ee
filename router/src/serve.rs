//! Serving: load (or compose) the supergraph, listen, poll live subgraphs for schema changes.

use std::{
    collections::HashMap,
    future::{Future, IntoFuture as _},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use serde_json::{json, Value};
pub use taproom_http::shutdown_signal;
use tokio::net::TcpListener;

use crate::{
    config::ServeArgs,
    dashboard,
    fetch::SubgraphClient,
    http,
    metrics::{Reload, ReloadLabels},
    persisted::{Persisted, PersistedSettings},
    pipeline::Router,
    plan::OperationLimits,
    supergraph::Supergraph,
    tooling::compose::{self, SubgraphSdl},
};

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

/// The default budget of answers held, per CPU the router may run on (`--max-answers-held-bytes`).
const ANSWERS_HELD_PER_CPU: usize = 16 * 1024 * 1024;

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
    let http = args
        .secret
        .http_client(Duration::from_secs(args.subgraph_timeout_secs))
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
    let preparing_threads = args.preparing_threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |threads| usize::try_from(threads).unwrap_or(usize::MAX),
    );
    let router = Arc::new(
        Router::new(
            supergraph,
            SubgraphClient::new(Duration::from_secs(args.subgraph_timeout_secs))
                .dedupe(!args.no_subgraph_dedupe)
                .retrying(!args.no_subgraph_retry)
                .idempotent_subgraphs(args.idempotent_subgraph.clone())
                .presenting(args.secret.subgraph_secret.clone()),
            OperationLimits {
                max_depth: args.max_depth,
                max_aliases: args.max_aliases,
                max_fields: args.max_fields,
                max_deferred: args.max_deferred_fragments,
            },
        )
        .answers_held(args.max_answers_held_bytes.unwrap_or_else(|| {
            ANSWERS_HELD_PER_CPU
                * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }))
        .persisting(Persisted::new(&PersistedSettings {
            apq_cache_bytes: if args.no_apq { 0 } else { args.apq_cache_bytes },
            manifest: args.persisted_documents.clone(),
            safelist: args.safelist,
        })?)
        .introspection(!args.no_introspection)
        .max_subscriptions(args.max_subscriptions)
        .max_subscriptions_per_client(args.max_subscriptions_per_client)
        .max_connections_per_client(args.max_connections_per_client)
        .max_answer_bytes(args.max_answer_bytes)
        .preparing_threads(preparing_threads),
    );
    if router.persisted.watches_a_file() {
        tokio::spawn(watch_manifest(router.clone()));
    }
    tokio::spawn(sample_for_the_dashboard(router.clone()));
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
    let options = http::HttpOptions {
        max_body_bytes: args.max_body_bytes,
        cors_origins: cors,
        max_batch_size: args.max_batch_size,
        compression_min_bytes: args.compression_min_bytes,
        playground: !args.no_playground,
        demo_accounts: args.playground_demo_accounts,
        query_plan_header: !args.no_query_plan_header,
        metrics: args.metrics_listen.is_none(),
        max_subscriptions_per_connection: args.max_subscriptions_per_connection,
        trusted_proxies: crate::client::TrustedProxies {
            ranges: args.trusted_proxy.clone(),
            header: args.client_address_header,
        },
        websocket_idle: Duration::from_secs(args.websocket_idle_secs),
    };
    if let Some(address) = args.metrics_listen {
        let metrics = TcpListener::bind(address)
            .await
            .with_context(|| format!("--metrics-listen: cannot listen on {address}"))?;
        tracing::info!(%address, "metrics listening");
        tokio::spawn(axum::serve(metrics, http::metrics_routes(router.clone())).into_future());
    }
    tracing::info!(address = %listener.local_addr()?, "router listening");
    taproom_http::lifecycle::serve(
        listener,
        http::routes(router, options),
        &args.shutdown,
        shutdown,
    )
    .await?;
    tracing::info!("router stopped");
    Ok(())
}

/// Re-reads the persisted documents file when it changes (every two seconds); a bad file keeps
/// the current list, and says why once.
async fn watch_manifest(router: Arc<Router>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        match router.persisted.reload() {
            Ok(true) => tracing::info!("persisted documents changed; the new list is in service"),
            Ok(false) => {}
            Err(error) => tracing::error!(
                error = %format!("{error:#}"),
                "the persisted documents file does not load; keeping the current list"
            ),
        }
    }
}

/// Samples the router's metrics for the dashboard every [`dashboard::SAMPLE_EVERY`], for ever.
async fn sample_for_the_dashboard(router: Arc<Router>) {
    let mut ticker = tokio::time::interval(dashboard::SAMPLE_EVERY);
    loop {
        ticker.tick().await;
        let metrics = &router.client.metrics;
        metrics
            .history
            .sample(&taproom_telemetry::metrics::render(metrics.registry()));
    }
}

/// Compares subgraph SDLs by name and text.
fn same_sdls(a: &[SubgraphSdl], b: &[SubgraphSdl]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.name == b.name && a.sdl == b.sdl)
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
    let reload = |result| {
        router
            .client
            .metrics
            .reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    };
    // The subgraph SDLs last refused, so one refused change counts once, not at every poll.
    let mut refused: Option<Vec<SubgraphSdl>> = None;
    loop {
        ticker.tick().await;
        let mut sdls = Vec::new();
        let mut fetched = true;
        for (name, url) in &subgraphs {
            match fetch_sdl(&http, name, url).await {
                Ok(sdl) => sdls.push(SubgraphSdl {
                    name: name.clone(),
                    url: url.clone(),
                    sdl,
                }),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "schema poll failed; keeping the current supergraph");
                    fetched = false;
                    break;
                }
            }
        }
        if !fetched || refused.as_ref().is_some_and(|r| same_sdls(r, &sdls)) {
            continue;
        }
        let loaded = compose::compose(&sdls)
            .map_err(|e| e.to_string())
            .and_then(|sdl| {
                if sdl == router.supergraph().sdl {
                    Ok(None)
                } else {
                    Supergraph::load(&sdl, &overrides, plan_cache_size)
                        .map(Some)
                        .map_err(|e| e.to_string())
                }
            });
        match loaded {
            Ok(None) => refused = None,
            Ok(Some(supergraph)) => {
                router.swap(supergraph);
                reload(Reload::success);
                refused = None;
                tracing::info!("subgraph schemas changed; new supergraph in service");
            }
            Err(error) => {
                reload(Reload::failure);
                refused = Some(sdls);
                tracing::error!(%error, "the changed subgraph schemas do not compose or load; keeping the current supergraph")
            }
        }
    }
}
