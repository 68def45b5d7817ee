//! The local stack: four services as separate processes of this same binary, supervised.
//!
//! Start order: migrations and demo data (in this process), then users, then beers and orders, then
//! the router, each awaited until its `/ready` answers. Children run in their own process groups so
//! a terminal's Ctrl-C reaches only the supervisor, which stops them in order with SIGTERM. A child
//! that stops on its own is started again after a backoff ([`Restarts`]) while the others keep
//! serving (the router answers with partial data meanwhile); one that keeps stopping is given up,
//! which stops the others and makes the stack exit non-zero. Children also exit by themselves if
//! the supervisor disappears (even by SIGKILL), so no process is ever orphaned.

use std::{
    path::Path,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use nix::{sys::signal, unistd::Pid};
use taproom_common::{db::Db, telemetry::LogFormat};
use tokio::{process::Command, sync::mpsc};

use crate::config::StackArgs;

/// Prints a line to standard output, ignoring a closed pipe (the stack must still stop cleanly when
/// whoever read its output is gone).
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Set in a child's environment: the supervisor's pid, watched by [`exit_with_parent`].
const PARENT_ENV: &str = "TAPROOM_SUPERVISOR_PID";

/// In a supervised child, exits the process as soon as the supervisor is gone.
pub fn exit_with_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return;
    };
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            eprintln!("taproom: the supervisor is gone; exiting");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(250));
    });
}

/// How to start one service: its name, port, arguments, and environment.
struct Launch {
    name: &'static str,
    port: u16,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// A running child service.
struct Child {
    name: &'static str,
    pid: Pid,
    port: u16,
}

/// How many times in a row a service is started again after it stopped on its own, before the
/// stack gives up on it. The count starts over once a service has run for [`STABLE_AFTER`].
const MAX_RESTARTS: u32 = 5;

/// How long a service must run for its earlier stops to be forgotten.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One service's restarts: how many in a row, and when it was last started.
struct Restarts {
    count: u32,
    started: Instant,
}

impl Restarts {
    /// The wait before the next start, or `None` when the service has used up its restarts:
    /// 0.5 s, doubling each time, at most 5 s.
    fn next(&mut self) -> Option<Duration> {
        if self.started.elapsed() >= STABLE_AFTER {
            self.count = 0;
        }
        if self.count >= MAX_RESTARTS {
            return None;
        }
        self.count += 1;
        Some(Duration::from_millis(500 << (self.count - 1)).min(Duration::from_secs(5)))
    }
}

/// What every child is started with besides its own [`Launch`].
struct Spawner {
    exe: std::path::PathBuf,
    log_format: LogFormat,
    service_base: String,
    exited: mpsc::UnboundedSender<(&'static str, ExitStatus)>,
}

impl Spawner {
    /// Starts `launch` as a child process, whose exit is reported on the exits channel.
    fn spawn(&self, launch: &Launch) -> anyhow::Result<Child> {
        let Launch {
            name,
            port,
            args: argv,
            env,
        } = launch;
        let mut command = Command::new(&self.exe);
        command
            .args(argv)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        for (key, value) in env {
            command.env(key, value);
        }
        // Every service logs as the stack was told to.
        command.env(
            "TAPROOM_LOG_FORMAT",
            match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
        );
        // Each service is its own in traces: `taproom-users`, ... (or `<OTEL_SERVICE_NAME>-users`).
        command.env("OTEL_SERVICE_NAME", format!("{}-{name}", self.service_base));
        // Settings meant for the stack must not leak into a service's own env-based config.
        for key in [
            "DATABASE_URL",
            "LISTEN",
            "SECRET_KEY",
            "AUTH_URL",
            "BEERS_URL",
            "SUPERGRAPH",
            "SUBGRAPHS",
            "SUBGRAPH_SECRET",
        ] {
            if !command.as_std().get_envs().any(|(k, _)| k == key) {
                command.env_remove(key);
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("{name}: cannot start"))?;
        let pid = Pid::from_raw(
            i32::try_from(child.id().context("a just-spawned child has a pid")?)
                .context("pid range")?,
        );
        let tx = self.exited.clone();
        let name = *name;
        tokio::spawn(async move {
            let status = child.wait().await;
            let status = status.unwrap_or_else(|_| ExitStatus::default());
            tx.send((name, status)).ok();
        });
        Ok(Child {
            name,
            pid,
            port: *port,
        })
    }
}

/// Runs the stack until Ctrl-C/SIGTERM (Ok) or until a service fails (Err).
pub async fn run(args: StackArgs) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM are ours from here on: while the databases are prepared and during
    // start-up too. Stopping mid-preparation rolls back what was unfinished (seeding is one
    // transaction per database), so the next start begins again from a consistent state.
    let mut shutdown = std::pin::pin!(shutdown_signal()?);
    let log_format = args.log_format;
    // Trace settings the services could not follow stop the stack now, not each service later.
    let traces = taproom_telemetry::traces::TraceSettings::from_env("taproom")
        .map_err(|e| anyhow::anyhow!(e))?;
    // Matters only when traces are on: then `OTEL_SERVICE_NAME`, or `taproom`.
    let service_base = traces.map_or_else(|| "taproom".to_owned(), |t| t.service_name);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("--data-dir: cannot create {}", args.data_dir.display()))?;
    let secret = secret_key(&args.data_dir)?;
    let prepared = tokio::select! {
        prepared = async {
            let urls = database_urls(&args).await?;
            prepare_databases(&urls).await?;
            anyhow::Ok(urls)
        } => prepared?,
        _ = &mut shutdown => {
            say!("taproom: stopped while preparing the databases");
            return Ok(());
        }
    };
    let urls = prepared;

    let (exited_tx, exited_rx) = mpsc::unbounded_channel::<(&'static str, ExitStatus)>();
    let mut exited = Exits {
        rx: exited_rx,
        dead: Vec::new(),
    };
    let mut children: Vec<Child> = Vec::new();
    let host = "127.0.0.1";
    let users_url = format!("http://{host}:{}/graphql", args.users_port);
    let beers_url = format!("http://{host}:{}/graphql", args.beers_port);
    let orders_url = format!("http://{host}:{}/graphql", args.orders_port);
    let auth_url = format!("http://{host}:{}/auth/introspect", args.users_port);

    // The router → subgraph secret, new for every run: the subgraphs answer only the router (and
    // each other), whatever else can reach their ports.
    let subgraph_secret = match &args.subgraph_secret {
        Some(secret) if secret.len() < 32 => {
            bail!("--subgraph-secret must be at least 32 characters")
        }
        Some(secret) => secret.clone(),
        None => random_secret(),
    };
    let plan: Vec<Launch> = [
        Launch {
            name: "users",
            port: args.users_port,
            args: vec!["users".into(), "serve".into()],
            env: vec![
                ("DATABASE_URL", urls[0].clone()),
                ("LISTEN", format!("{host}:{}", args.users_port)),
                ("SECRET_KEY", secret.clone()),
                ("SUBGRAPH_SECRET", subgraph_secret.clone()),
            ],
        },
        Launch {
            name: "beers",
            port: args.beers_port,
            args: vec!["beers".into(), "serve".into()],
            env: vec![
                ("DATABASE_URL", urls[1].clone()),
                ("LISTEN", format!("{host}:{}", args.beers_port)),
                ("AUTH_URL", auth_url.clone()),
                ("SUBGRAPH_SECRET", subgraph_secret.clone()),
            ],
        },
        Launch {
            name: "orders",
            port: args.orders_port,
            args: vec!["orders".into(), "serve".into()],
            env: vec![
                ("DATABASE_URL", urls[2].clone()),
                ("LISTEN", format!("{host}:{}", args.orders_port)),
                ("AUTH_URL", auth_url.clone()),
                ("BEERS_URL", beers_url.clone()),
                ("SUBGRAPH_SECRET", subgraph_secret.clone()),
            ],
        },
        Launch {
            name: "router",
            port: args.router_port,
            args: vec![
                "router".into(),
                "serve".into(),
                "--subgraph".into(),
                format!("users={users_url},beers={beers_url},orders={orders_url}"),
                // The stack always has its demo accounts (prepare_databases makes them).
                "--playground-demo-accounts".into(),
            ]
            .into_iter()
            .chain(
                args.cors_origin
                    .iter()
                    .flat_map(|origin| ["--cors-origin".to_owned(), origin.clone()]),
            )
            .collect(),
            env: vec![
                ("LISTEN", format!("{host}:{}", args.router_port)),
                ("SUBGRAPH_SECRET", subgraph_secret.clone()),
            ],
        },
    ]
    .into();

    let spawner = Spawner {
        exe: std::env::current_exe().context("cannot find this program's own path")?,
        log_format,
        service_base,
        exited: exited_tx,
    };
    let starting = async {
        for launch in &plan {
            children.push(spawner.spawn(launch)?);
            wait_ready(launch.name, launch.port, &mut exited).await?;
        }
        anyhow::Ok(())
    };
    let started = tokio::select! {
        started = starting => Some(started),
        _ = &mut shutdown => None,
    };
    match started {
        Some(Ok(())) => {}
        Some(Err(error)) => {
            stop(&children, &mut exited).await;
            return Err(error);
        }
        None => {
            stop(&children, &mut exited).await;
            say!("taproom: stopped before start-up completed");
            return Ok(());
        }
    }

    print_banner(&args, &urls);
    let outcome = supervise(&plan, &spawner, &mut children, &mut exited, &mut shutdown).await;
    stop(&children, &mut exited).await;
    if outcome.is_ok() {
        say!("taproom: stopped");
    }
    outcome
}

/// Watches the running stack until the shutdown signal (Ok) or a service that keeps stopping (Err):
/// a service that stops on its own is started again after a backoff, while the others serve on.
async fn supervise(
    plan: &[Launch],
    spawner: &Spawner,
    children: &mut [Child],
    exited: &mut Exits,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> anyhow::Result<()> {
    let now = Instant::now();
    let mut restarts: Vec<Restarts> = plan
        .iter()
        .map(|_| Restarts {
            count: 0,
            started: now,
        })
        .collect();
    // The restarts waiting out their backoff, each answering its service's index.
    let mut due = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.as_mut() => return Ok(()),
            Some((name, status)) = exited.next() => {
                let at = plan.iter().position(|l| l.name == name).context("a known service")?;
                let Some(wait) = restarts[at].next() else {
                    bail!("{name} stopped unexpectedly ({status}) {} times in a row; giving up on it and stopping the other services", MAX_RESTARTS + 1);
                };
                eprintln!(
                    "taproom: {name} stopped unexpectedly ({status}); starting it again in {:.1} s (restart {} of at most {MAX_RESTARTS} in a row)",
                    wait.as_secs_f64(),
                    restarts[at].count
                );
                due.spawn(async move {
                    tokio::time::sleep(wait).await;
                    at
                });
            }
            Some(Ok(at)) = due.join_next() => {
                let launch = &plan[at];
                restarts[at].started = Instant::now();
                match spawner.spawn(launch) {
                    Ok(child) => {
                        exited.dead.retain(|name| *name != launch.name);
                        children[at] = child;
                        tokio::spawn(say_when_ready(launch.name, launch.port));
                    }
                    Err(error) => bail!("{error:#}; stopping the other services"),
                }
            }
        }
    }
}

/// Says when a restarted service answers on `/ready` again (or that it has not within a minute).
async fn say_when_ready(name: &'static str, port: u16) {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = http.get(&url).send().await {
            if response.status().is_success() {
                say!("taproom: {name} is ready again");
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Exit events of the children, remembering who is gone.
struct Exits {
    rx: mpsc::UnboundedReceiver<(&'static str, ExitStatus)>,
    /// Children whose exit has been seen: never signalled again (their pid may be reused).
    dead: Vec<&'static str>,
}

impl Exits {
    fn try_next(&mut self) -> Option<(&'static str, ExitStatus)> {
        let event = self.rx.try_recv().ok()?;
        self.dead.push(event.0);
        Some(event)
    }

    async fn next(&mut self) -> Option<(&'static str, ExitStatus)> {
        let event = self.rx.recv().await?;
        self.dead.push(event.0);
        Some(event)
    }
}

/// Waits until `name` answers on `/ready`, or fails if it exits or takes over a minute.
async fn wait_ready(name: &str, port: u16, exited: &mut Exits) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("cannot build an HTTP client")?;
    let url = format!("http://127.0.0.1:{port}/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((child, status)) = exited.try_next() {
            bail!("{child} failed to start ({status}); see its error above");
        }
        if let Ok(response) = http.get(&url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{name} did not become ready on port {port} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the children, last started first: SIGTERM, then SIGKILL after 10 s.
async fn stop(children: &[Child], exited: &mut Exits) {
    while exited.try_next().is_some() {}
    let mut running: Vec<&Child> = children
        .iter()
        .filter(|c| !exited.dead.contains(&c.name))
        .collect();
    for child in running.iter().rev() {
        signal::kill(child.pid, signal::Signal::SIGTERM).ok();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !running.is_empty() {
        match tokio::time::timeout_at(deadline, exited.next()).await {
            Ok(Some((name, _))) => running.retain(|c| c.name != name),
            Ok(None) => break,
            Err(_) => {
                for child in &running {
                    eprintln!(
                        "taproom: {} (port {}) did not stop in 10 s; killing it",
                        child.name, child.port
                    );
                    signal::kill(child.pid, signal::Signal::SIGKILL).ok();
                }
                break;
            }
        }
    }
}

/// The secret key tokens are hashed with, generated on first start and kept in the data folder.
fn secret_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("secret_key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = key.trim().to_owned();
        if key.len() >= 32 {
            return Ok(key);
        }
        bail!(
            "{} is too short to be a secret key; delete it to generate a new one",
            path.display()
        );
    }
    let key = random_secret();
    std::fs::write(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok();
    }
    Ok(key)
}

/// 48 random letters and digits (about 285 bits).
fn random_secret() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

/// The three subgraphs' database URLs: SQLite files in the data folder, or PostgreSQL databases.
async fn database_urls(args: &StackArgs) -> anyhow::Result<[String; 3]> {
    let names = ["users", "beers", "orders"];
    let Some(server) = &args.postgres_url else {
        return Ok(
            names.map(|n| format!("sqlite:{}", args.data_dir.join(format!("{n}.db")).display()))
        );
    };
    let base = match server.find("://").map(|i| i + 3) {
        Some(start) => match server[start..].find('/') {
            Some(slash) => server[..start + slash].to_owned(),
            None => server.trim_end_matches('/').to_owned(),
        },
        None => bail!("--postgres-url must look like postgres://user:password@host:5432"),
    };
    let admin = Db::connect(&format!("{base}/postgres"))
        .await
        .context("--postgres-url: cannot connect")?;
    for name in names {
        let created = admin
            .execute(sqlx::query(&format!("CREATE DATABASE taproom_{name}")))
            .await;
        if let Err(error) = created {
            let exists =
                matches!(&error, sqlx::Error::Database(e) if e.code().as_deref() == Some("42P04"));
            if !exists {
                return Err(error).with_context(|| {
                    format!("--postgres-url: cannot create database taproom_{name}")
                });
            }
        }
    }
    admin.close().await;
    Ok(names.map(|n| format!("{base}/taproom_{n}")))
}

/// Migrates the three databases and adds the demo data where it is missing.
async fn prepare_databases(urls: &[String; 3]) -> anyhow::Result<()> {
    let users = Db::connect(&urls[0])
        .await
        .context("users: cannot open the database")?;
    users
        .migrate(&taproom_users::db::migrations())
        .await
        .context("users: cannot migrate the database")?;
    // The demo customer's orders come with the demo accounts, on the same first start only: a
    // later start must not give orders to an account that has been used.
    let demo_customer = if taproom_users::demo::seed(&users)
        .await
        .map_err(|e| anyhow::anyhow!("users: cannot create the demo accounts: {}", e.message()))?
    {
        say!("taproom: created the demo accounts");
        taproom_users::db::credentials_by_username(&users, "customer")
            .await
            .map_err(|e| anyhow::anyhow!("users: cannot read the demo customer: {}", e.message()))?
            .map(|(id, _)| id)
    } else {
        None
    };
    users.close().await;

    let beers = Db::connect(&urls[1])
        .await
        .context("beers: cannot open the database")?;
    beers
        .migrate(&taproom_beers::db::migrations())
        .await
        .context("beers: cannot migrate the database")?;
    let added = taproom_beers::demo::seed(&beers)
        .await
        .map_err(|e| anyhow::anyhow!("beers: cannot add the demo catalog: {e:?}"))?;
    if added > 0 {
        say!("taproom: added {added} demo beers");
    }
    let demo_beers = match demo_customer {
        Some(_) => taproom_beers::db::beers_by_skus(
            &beers,
            &taproom_orders::demo::skus()
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("beers: cannot read the demo beers: {e:?}"))?,
        None => Vec::new(),
    };
    beers.close().await;

    let orders = Db::connect(&urls[2])
        .await
        .context("orders: cannot open the database")?;
    orders
        .migrate(&taproom_orders::db::migrations())
        .await
        .context("orders: cannot migrate the database")?;
    if let Some(customer) = demo_customer {
        let lines: Vec<taproom_orders::db::LineBeer> = demo_beers
            .iter()
            .map(|beer| taproom_orders::db::LineBeer {
                sku: &beer.sku,
                beer_id: beer.id,
                name: &beer.name,
                unit_price_cents: beer.price_cents,
            })
            .collect();
        let added = taproom_orders::demo::seed(&orders, customer, &lines)
            .await
            .map_err(|e| anyhow::anyhow!("orders: cannot add the demo orders: {e:?}"))?;
        if added > 0 {
            say!("taproom: added {added} demo orders for the demo customer");
        }
    }
    orders.close().await;
    Ok(())
}

fn print_banner(args: &StackArgs, urls: &[String; 3]) {
    let router = format!("http://127.0.0.1:{}", args.router_port);
    say!();
    say!("Taproom is running.");
    say!("  playground and API  {router}/  (GraphQL endpoint {router}/graphql)");
    say!(
        "  users subgraph      http://127.0.0.1:{}/graphql",
        args.users_port
    );
    say!(
        "  beers subgraph      http://127.0.0.1:{}/graphql",
        args.beers_port
    );
    say!(
        "  orders subgraph     http://127.0.0.1:{}/graphql",
        args.orders_port
    );
    say!(
        "  databases           {}",
        urls.iter()
            .map(|u| taproom_common::db::redact(u))
            .collect::<Vec<_>>()
            .join(", ")
    );
    say!("Demo accounts (created on first start):");
    for account in &taproom_users::demo::DEMO_ACCOUNTS {
        let role = if account.is_admin {
            "admin"
        } else {
            "customer"
        };
        say!(
            "  {:<9} username {:<9} password {}",
            role,
            account.username,
            account.password
        );
    }
    say!("Sign in with: mutation {{ login(username: \"customer\", password: \"Customer1234\") {{ token }} }}");
    say!("then send Authorization: Bearer <token>. Ctrl-C stops everything.");
}

/// Completes on Ctrl-C or SIGTERM.
/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the future is
/// first awaited, so a signal that arrives at any point after is seen.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        say!("taproom: stopping");
    })
}
