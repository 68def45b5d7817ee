//! `taproom-load`: steady mixed shop traffic against a router, for the soak (`scripts/soak.sh`) and
//! the multi-host test (`tests/hosts.rs`).
//!
//! Each of `--connections` workers registers its own customer, then loops: a catalog page (55%),
//! its open order with `owner` and each line's `beer` (20%), both over `GET`; `addToOrder` of one
//! bottle (20%) and `checkout` (5%, when its cart is not empty), over `POST`. Every `--report-every-secs` it prints one line:
//! requests, errors and p50/p99 latency of that interval. With `--events`, every failure and every
//! acknowledged `addToOrder` is written there as a JSON line (`t` in Unix milliseconds), so a test
//! can compare the writes it was told of with the database. A failure is any answer with `errors`,
//! a status other than 200, or no answer within `--timeout-secs`. Once every worker has signed up
//! it prints `signed up N customers`. The exit status is 0 whatever requests failed (judging is
//! the caller's), and 1 only if workers could not sign up.

use std::{
    io::Write as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "taproom-load",
    about = "Steady mixed shop traffic against a Taproom router"
)]
struct Args {
    /// The router's GraphQL URL.
    #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
    router: String,
    /// Concurrent workers, each with its own customer and keep-alive connection.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to send traffic.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Stop after this many requests in all (0: no bound), whichever comes first.
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    /// Print a line of figures this often.
    #[arg(long, default_value_t = 30)]
    report_every_secs: u64,
    /// A request without an answer after this long is a failure.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    /// Customers are named `<prefix>-<worker>`; use a new prefix for each run on one database.
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Write failures and acknowledged writes here, one JSON object per line.
    #[arg(long)]
    events: Option<std::path::PathBuf>,
}

/// What the workers share: the interval's figures and the events file.
struct Shared {
    interval: Mutex<Interval>,
    total: Mutex<Totals>,
    events: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    sent: std::sync::atomic::AtomicU64,
    signed_up: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Interval {
    micros: Vec<u32>,
    errors: u64,
}

#[derive(Default)]
struct Totals {
    requests: u64,
    errors: u64,
    acknowledged_writes: u64,
}

impl Shared {
    fn record(&self, started: Instant, failed: bool) {
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let mut interval = self.interval.lock().expect("never poisoned");
        interval.micros.push(micros);
        interval.errors += u64::from(failed);
        let mut total = self.total.lock().expect("never poisoned");
        total.requests += 1;
        total.errors += u64::from(failed);
    }

    fn event(&self, event: Value) {
        if let Some(events) = &self.events {
            let mut file = events.lock().expect("never poisoned");
            let _ = writeln!(file, "{event}");
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// How a request is sent: reads as `GET` (which load balancers may retry on another replica),
/// writes as `POST` with an `Idempotency-Key` of its own, so that a balancer or the router may send
/// it again after a lost answer without applying it twice.
#[derive(Clone, Copy)]
enum Method<'k> {
    Get,
    Post(Option<&'k str>),
}

/// One GraphQL request: its data, or why it failed (the first error's code, or the HTTP problem).
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    method: Method<'_>,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let mut request = match method {
        Method::Get => http
            .get(url)
            .query(&[("query", query), ("variables", &variables.to_string())]),
        Method::Post(key) => {
            let request = http
                .post(url)
                .json(&json!({ "query": query, "variables": variables }));
            match key {
                Some(key) => request.header("idempotency-key", key),
                None => request,
            }
        }
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            "TIMEOUT".to_owned()
        } else {
            format!("TRANSPORT: {e}")
        }
    })?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("HTTP {status}: not JSON: {e}"))?;
    if let Some(errors) = body.get("errors") {
        let code = errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("NO_CODE")
            .to_owned();
        return Err(format!("{code}: {}", errors[0]["message"]));
    }
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    Ok(body["data"].clone())
}

/// The load's client (`--timeout-secs`), and one with a minute's patience for signing up.
#[derive(Clone)]
struct Clients {
    load: reqwest::Client,
    setup: reqwest::Client,
}

/// A small deterministic generator per worker (xorshift), so runs are alike.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

async fn worker(
    id: usize,
    args: Arc<Args>,
    http: Clients,
    skus: Arc<Vec<String>>,
    shared: Arc<Shared>,
    until: Instant,
) -> anyhow::Result<()> {
    let username = format!("{}-{id}", args.prefix);
    // Sign-up hashes a password (argon2, deliberately slow, a few at a time): many workers signing
    // up at once wait their turn, or are told to come back (`RATE_LIMITED`, after a second), as a
    // client should be; this part gets a minute.
    let signing_up = Instant::now();
    let registered = loop {
        let answer = send(
            &http.setup,
            &args.router,
            None,
            Method::Post(None),
            "mutation($input: RegisterInput!) { register(input: $input) { token } }",
            json!({ "input": {
                "username": username,
                "email": format!("{username}@load.example"),
                "password": "Load-test-1234",
            } }),
        )
        .await;
        match answer {
            Err(error)
                if error.starts_with("RATE_LIMITED")
                    && signing_up.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            answer => {
                break answer
                    .map_err(|e| anyhow::anyhow!("worker {id}: cannot register {username}: {e}"))?
            }
        }
    };
    let token = registered["register"]["token"]
        .as_str()
        .context("register answered no token")?
        .to_owned();
    let signed_up = shared
        .signed_up
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    if signed_up == args.connections {
        println!("signed up {signed_up} customers");
    }
    let http = http.load;
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
    let mut lines_in_cart = 0u32;
    while Instant::now() < until {
        let sent = shared
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if args.max_requests > 0 && sent >= args.max_requests {
            break;
        }
        let roll = dice.roll(100);
        let started = Instant::now();
        let ask = |method, query, variables| {
            send(&http, &args.router, Some(&token), method, query, variables)
        };
        let (kind, outcome) = if roll < 75 {
            let (kind, query) = if roll < 55 {
                (
                    "catalog",
                    "{ beers(first: 10) { edges { node { sku name price } } totalCount } }",
                )
            } else {
                ("cart", "{ currentOrder { id status owner { username } items { quantity beer { name } } } }")
            };
            (kind, ask(Method::Get, query, json!({})).await)
        } else if roll < 95 || lines_in_cart == 0 {
            let sku = &skus[dice.roll(skus.len() as u64) as usize];
            let query =
                "mutation($sku: String!) { addToOrder(sku: $sku, quantity: 1) { id itemCount } }";
            let key = format!("{username}-{sent}");
            let outcome = ask(Method::Post(Some(&key)), query, json!({ "sku": sku })).await;
            match &outcome {
                Ok(data) => {
                    lines_in_cart += 1;
                    shared
                        .total
                        .lock()
                        .expect("never poisoned")
                        .acknowledged_writes += 1;
                    shared.event(json!({
                        "t": now_ms(), "kind": "add", "user": username, "sku": sku,
                        "order": data["addToOrder"]["id"],
                    }));
                }
                Err(_) => shared.event(json!({
                    "t": now_ms(), "kind": "add_unknown", "user": username, "sku": sku,
                })),
            }
            ("add", outcome)
        } else {
            let query = "mutation { checkout { id status } }";
            let key = format!("{username}-{sent}");
            let outcome = ask(Method::Post(Some(&key)), query, json!({})).await;
            // Even a checkout whose fate is unknown may have closed the cart: the next step adds a
            // line first (opening a new cart if so), so no checkout is sent for an empty one.
            lines_in_cart = 0;
            ("checkout", outcome)
        };
        let failed = outcome.is_err();
        shared.record(started, failed);
        if let Err(error) = outcome {
            shared.event(json!({
                "t": now_ms(), "kind": kind, "failed": error,
                "ms": started.elapsed().as_millis(),
            }));
        }
    }
    Ok(())
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[at]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let client = |timeout: Duration| {
        reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(args.connections)
            .build()
            .context("cannot build the HTTP client")
    };
    let http = Clients {
        load: client(Duration::from_secs(args.timeout_secs))?,
        setup: client(Duration::from_secs(60))?,
    };
    let catalog = send(
        &http.setup,
        &args.router,
        None,
        Method::Get,
        "{ beers(first: 50, available: true) { edges { node { sku } } } }",
        json!({}),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot read the catalog from {}: {e}", args.router))?;
    let skus: Vec<String> = catalog["beers"]["edges"]
        .as_array()
        .context("the catalog has no edges")?
        .iter()
        .filter_map(|edge| edge["node"]["sku"].as_str().map(str::to_owned))
        .collect();
    if skus.is_empty() {
        bail!("the catalog is empty: seed it first (`taproom beers seed-demo`)");
    }
    let events = match &args.events {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("--events: cannot create {}", path.display()))?,
        ))),
        None => None,
    };
    let shared = Arc::new(Shared {
        interval: Mutex::default(),
        total: Mutex::default(),
        events,
        sent: Default::default(),
        signed_up: Default::default(),
    });
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration_secs);
    let skus = Arc::new(skus);
    let mut workers = tokio::task::JoinSet::new();
    for id in 0..args.connections {
        workers.spawn(worker(
            id,
            args.clone(),
            http.clone(),
            skus.clone(),
            shared.clone(),
            until,
        ));
    }
    let report = {
        let shared = shared.clone();
        let every = Duration::from_secs(args.report_every_secs.max(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticker.tick().await;
                let Interval { mut micros, errors } =
                    std::mem::take(&mut *shared.interval.lock().expect("never poisoned"));
                micros.sort_unstable();
                println!(
                    "t={:>4}s requests={} errors={} p50={:.1}ms p99={:.1}ms",
                    started.elapsed().as_secs(),
                    micros.len(),
                    errors,
                    percentile(&micros, 0.5),
                    percentile(&micros, 0.99),
                );
            }
        })
    };
    let mut failed_workers = 0;
    while let Some(done) = workers.join_next().await {
        if let Err(error) = done.context("a worker panicked").and_then(|r| r) {
            eprintln!("taproom-load: {error:#}");
            failed_workers += 1;
        }
    }
    report.abort();
    if let Some(events) = &shared.events {
        events.lock().expect("never poisoned").flush()?;
    }
    let total = shared.total.lock().expect("never poisoned");
    println!(
        "total requests={} errors={} acknowledged_writes={} seconds={:.1}",
        total.requests,
        total.errors,
        total.acknowledged_writes,
        started.elapsed().as_secs_f64()
    );
    if failed_workers > 0 {
        bail!("{failed_workers} workers could not start");
    }
    Ok(())
}
