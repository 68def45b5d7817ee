//! The end-to-end harness: [`Federation::start`] runs the three subgraphs and the router in this
//! process, each on its own `127.0.0.1:0` port with its own fresh database, talking real HTTP to each
//! other exactly as in production. Tests then speak GraphQL to the router like a frontend would.
//! [`TestRouter`] starts a router alone, over any supergraph (the conformance scenarios' fixture
//! subgraphs, or Taproom's with some subgraph URLs pointing at fakes).

pub mod fixture;
pub mod leaks;
pub mod otlp;
pub mod ws;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use axum::http::HeaderValue;
use serde_json::{json, Value};
use taproom_common::{
    auth::RemoteAuthArgs,
    testing::TestDb,
    trust::{SecretArgs, SubgraphSecret, SECRET_HEADER},
};
use taproom_router::{
    compose::SubgraphSdl, fetch::SubgraphClient, http::routes, persisted::Persisted,
    plan::OperationLimits, supergraph::Supergraph, Router,
};
pub use taproom_router::{http::HttpOptions, persisted::PersistedSettings};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The secret key the test users subgraph hashes tokens with.
pub const SECRET: &str = "e2e-secret-key-that-is-long-enough-0123456";
/// The secret the router and the subgraphs share (`SUBGRAPH_SECRET`), on as in the local stack.
pub const SUBGRAPH_SECRET: &str = "e2e-subgraph-secret-that-is-long-enough-0123";
/// The password of every test account.
pub const PASSWORD: &str = "Secret123";

/// A service running in this process until stopped.
pub struct Service {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Service {
    pub fn spawn<F>(
        listener: TcpListener,
        serve: impl FnOnce(TcpListener, oneshot::Receiver<()>) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let address = listener.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, stopped));
        Service {
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Serves `routes` on a fresh `127.0.0.1:0` port.
    pub async fn serve(routes: axum::Router) -> Self {
        Service::spawn(
            TcpListener::bind("127.0.0.1:0").await.expect("binds"),
            |listener, rx| async move {
                axum::serve(
                    listener,
                    routes.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stopped(rx))
                .await?;
                Ok(())
            },
        )
    }

    /// The service's GraphQL URL.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    /// Stops the service and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the service task joins")
                .expect("the service stops cleanly");
        }
    }
}

async fn stopped(rx: oneshot::Receiver<()>) {
    rx.await.ok();
}

/// Databases of the three subgraphs, kept for restarts.
struct Databases {
    users: TestDb,
    beers: TestDb,
    orders: TestDb,
}

/// The whole federation: three subgraphs and the router.
pub struct Federation {
    dbs: Databases,
    pub users: Service,
    pub beers: Service,
    pub orders: Service,
    pub router: Service,
    /// The router's state, for its counters.
    pub state: Arc<Router>,
    /// What scans the router's error messages for addresses and paths.
    pub scanner: leaks::Scanner,
    /// The orders service's events, for its subscriber count.
    orders_events: OrdersEvents,
    pub http: reqwest::Client,
}

impl Drop for Federation {
    /// A test whose router gave away an address or a path in an error message fails.
    fn drop(&mut self) {
        self.scanner.check();
    }
}

impl Federation {
    /// Starts everything on fresh SQLite databases with the demo catalog.
    pub async fn start() -> Self {
        Self::start_on(TestDb::sqlite().await).await
    }

    /// Starts everything on fresh databases of `first`'s backend (`first` is the users database).
    pub async fn start_on(first: TestDb) -> Self {
        let dbs = Databases {
            beers: first.sibling().await,
            orders: first.sibling().await,
            users: first,
        };
        let users_db = dbs.users.connect().await;
        users_db
            .migrate(&taproom_users::db::migrations())
            .await
            .expect("users migrate");
        let beers_db = dbs.beers.connect().await;
        beers_db
            .migrate(&taproom_beers::db::migrations())
            .await
            .expect("beers migrate");
        taproom_beers::demo::seed(&beers_db)
            .await
            .expect("beers seed");
        let orders_db = dbs.orders.connect().await;
        orders_db
            .migrate(&taproom_orders::db::migrations())
            .await
            .expect("orders migrate");

        let users = start_users(
            &dbs.users,
            TcpListener::bind("127.0.0.1:0").await.expect("binds"),
        )
        .await;
        let auth_url = format!("http://{}/auth/introspect", users.address);
        let beers = start_beers(
            &dbs.beers,
            &auth_url,
            TcpListener::bind("127.0.0.1:0").await.expect("binds"),
        )
        .await;
        let (orders, orders_events) = start_orders(
            &dbs.orders,
            &auth_url,
            &beers.graphql_url(),
            TcpListener::bind("127.0.0.1:0").await.expect("binds"),
        )
        .await;

        let supergraph = taproom_router::compose::compose(&[
            SubgraphSdl {
                name: "users".into(),
                url: users.graphql_url(),
                sdl: taproom_users::schema::sdl(),
            },
            SubgraphSdl {
                name: "beers".into(),
                url: beers.graphql_url(),
                sdl: taproom_beers::schema::sdl(),
            },
            SubgraphSdl {
                name: "orders".into(),
                url: orders.graphql_url(),
                sdl: taproom_orders::schema::sdl(),
            },
        ])
        .expect("the three subgraphs compose");
        let (router, state, scanner) = TestRouter::new(supergraph).start().await.into_parts();
        Federation {
            dbs,
            users,
            beers,
            orders,
            router,
            state,
            scanner,
            orders_events,
            http: reqwest::Client::new(),
        }
    }

    /// Another router over the same supergraph, to start after replacing some subgraph URLs or the
    /// timeout.
    pub fn another_router(&self) -> TestRouter {
        TestRouter::new(self.state.supergraph().sdl.clone())
    }

    /// A second orders replica on the same database (on a new port), as behind a load balancer.
    pub async fn another_orders_replica(&self) -> Service {
        let auth_url = format!("http://{}/auth/introspect", self.users.address);
        start_orders(
            &self.dbs.orders,
            &auth_url,
            &self.beers.graphql_url(),
            TcpListener::bind("127.0.0.1:0").await.expect("binds"),
        )
        .await
        .0
    }

    /// Subscriptions the orders service is listening for changes for now.
    pub fn orders_subscribers(&self) -> usize {
        self.orders_events
            .get()
            .map_or(0, taproom_orders::events::Events::subscribers)
    }

    /// Stops the beers subgraph.
    pub async fn stop_beers(&mut self) {
        self.beers.stop().await;
    }

    /// Starts the beers subgraph again on its old address and database.
    pub async fn restart_beers(&mut self) {
        let auth_url = format!("http://{}/auth/introspect", self.users.address);
        let listener = TcpListener::bind(self.beers.address)
            .await
            .expect("the old port is free again");
        self.beers = start_beers(&self.dbs.beers, &auth_url, listener).await;
    }

    /// POSTs an operation to the router; returns the response body.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        self.post(json!({ "query": query, "variables": variables }), token)
            .await
            .1
    }

    /// POSTs a raw JSON body to the router; returns status and body.
    pub async fn post(&self, body: Value, token: Option<&str>) -> (u16, Value) {
        self.post_bytes(serde_json::to_vec(&body).expect("serializes"), token)
            .await
    }

    /// POSTs raw bytes to the router as JSON; returns status and body (JSON, or a string).
    pub async fn post_bytes(&self, body: Vec<u8>, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.router.graphql_url())
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the router answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Registers `username` through the router; returns its token and id.
    pub async fn register(&self, username: &str) -> (String, String) {
        let response = self
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }",
                json!({ "input": { "username": username, "email": format!("{username}@example.com"), "password": PASSWORD } }),
                None,
            )
            .await;
        let payload = &response["data"]["register"];
        assert!(payload.is_object(), "registration failed: {response}");
        (
            payload["token"].as_str().expect("token").to_owned(),
            payload["user"]["id"].as_str().expect("id").to_owned(),
        )
    }

    /// Makes `username` an admin, directly in the users database.
    pub async fn promote(&self, username: &str) {
        let db = self.dbs.users.connect().await;
        assert!(taproom_users::db::promote_to_admin(&db, username)
            .await
            .expect("promotes"));
    }

    /// Requests the router has sent to `subgraph` so far.
    pub fn requests_to(&self, subgraph: &str) -> u64 {
        self.state
            .client
            .counts()
            .get(subgraph)
            .copied()
            .unwrap_or(0)
    }
}

/// A router to start over a supergraph, built from the router's public parts as its binary builds
/// one: `TestRouter::new(sdl).subgraph_url("users", fake).timeout(..).start().await`.
pub struct TestRouter {
    /// The supergraph SDL.
    supergraph: String,
    /// Subgraph name → URL, replacing the supergraph's `@join__graph(url:)` for those subgraphs.
    subgraph_urls: HashMap<String, String>,
    limits: OperationLimits,
    /// How long the router waits for one subgraph request.
    timeout: Duration,
    /// Whether identical subgraph queries in flight share one request (on, as in production).
    dedupe: bool,
    /// The budget of answer bytes operations may hold at once (0: no bound).
    answers_held: usize,
    /// Persisted queries: APQ on (1 MiB) by default, as a served router has it.
    persisted: PersistedSettings,
    /// The HTTP face's settings.
    http: HttpOptions,
    /// Whether `__schema` and `__type` are answered.
    introspection: bool,
    /// The most subscriptions open at once.
    max_subscriptions: usize,
    /// The subgraphs whose mutations with an idempotency key may be retried.
    idempotent: Vec<String>,
    /// Any other setting of the router, applied last.
    tune: Option<Box<dyn FnOnce(Router) -> Router>>,
}

impl TestRouter {
    /// A router over `supergraph` (SDL), with the default operation limits and a 5 s subgraph timeout.
    pub fn new(supergraph: impl Into<String>) -> Self {
        TestRouter {
            supergraph: supergraph.into(),
            subgraph_urls: HashMap::new(),
            limits: OperationLimits::default(),
            timeout: Duration::from_secs(5),
            dedupe: true,
            answers_held: 0,
            persisted: PersistedSettings {
                apq_cache_bytes: 1 << 20,
                ..PersistedSettings::default()
            },
            http: HttpOptions::default(),
            introspection: true,
            max_subscriptions: taproom_router::MAX_SUBSCRIPTIONS,
            idempotent: Vec::new(),
            tune: None,
        }
    }

    /// Applies `tune` to the router last (`Router::max_subscriptions_per_client`, say).
    pub fn tuned(mut self, tune: impl FnOnce(Router) -> Router + 'static) -> Self {
        self.tune = Some(Box::new(tune));
        self
    }

    /// Lets mutations with an idempotency key to `subgraph` be retried (`--idempotent-subgraph`).
    pub fn idempotent(mut self, subgraph: impl Into<String>) -> Self {
        self.idempotent.push(subgraph.into());
        self
    }

    /// Answers `__schema` and `__type` only if `on`.
    pub fn introspection(mut self, on: bool) -> Self {
        self.introspection = on;
        self
    }

    /// Persisted queries as `settings` say.
    pub fn persisted(mut self, settings: PersistedSettings) -> Self {
        self.persisted = settings;
        self
    }

    /// The HTTP face as `options` say (default: [`HttpOptions::default`], a 1 MiB body limit).
    pub fn max_subscriptions(mut self, most: usize) -> Self {
        self.max_subscriptions = most;
        self
    }

    pub fn http(mut self, options: HttpOptions) -> Self {
        self.http = options;
        self
    }

    /// Sends subgraph `name`'s requests to `url` instead of the supergraph's URL for it.
    pub fn subgraph_url(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.subgraph_urls.insert(name.into(), url.into());
        self
    }

    /// Limits on what one operation may ask.
    pub fn limits(mut self, limits: OperationLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long the router waits for one subgraph request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Turns subgraph request deduplication on (the default) or off.
    pub fn dedupe(mut self, on: bool) -> Self {
        self.dedupe = on;
        self
    }

    /// Lets operations hold about `bytes` of subgraph answers at once (0, the default here: no
    /// bound; the served router's default is 16 MiB per CPU).
    pub fn answers_held(mut self, bytes: usize) -> Self {
        self.answers_held = bytes;
        self
    }

    /// Loads the supergraph (panicking with the reason if it does not load) and serves the router on
    /// a fresh `127.0.0.1:0` port, with a 1 MiB body limit and no CORS origins.
    pub async fn start(self) -> RunningRouter {
        let supergraph = Supergraph::load(&self.supergraph, &self.subgraph_urls, 100)
            .unwrap_or_else(|e| panic!("the supergraph does not load: {e}"));
        let tune = self.tune.unwrap_or_else(|| Box::new(|router| router));
        let state = Arc::new(tune(
            Router::new(
                supergraph,
                SubgraphClient::new(self.timeout)
                    .dedupe(self.dedupe)
                    .idempotent_subgraphs(self.idempotent)
                    .presenting(Some(HeaderValue::from_static(SUBGRAPH_SECRET))),
                self.limits,
            )
            .answers_held(self.answers_held)
            .persisting(
                Persisted::new(&self.persisted)
                    .unwrap_or_else(|e| panic!("persisted queries do not load: {e:#}")),
            )
            .introspection(self.introspection)
            .max_subscriptions(self.max_subscriptions),
        ));
        let scanner = leaks::Scanner::default();
        let scanning = scanner.clone();
        let routes = routes(state.clone(), self.http).layer(axum::middleware::map_response(
            move |response| {
                let scanning = scanning.clone();
                async move { scanning.scan(response) }
            },
        ));
        let service = Service::serve(routes).await;
        RunningRouter {
            service,
            state,
            scanner,
        }
    }
}

/// A router started by [`TestRouter::start`], serving until stopped.
pub struct RunningRouter {
    /// Its HTTP server.
    pub service: Service,
    /// Its state, for its counters (`client.counts()`, `prepared_count()`).
    pub state: Arc<Router>,
    /// What scans its error messages for addresses and paths ([`leaks`]).
    pub scanner: leaks::Scanner,
}

impl Drop for RunningRouter {
    /// A test whose router gave away an address or a path in an error message fails.
    fn drop(&mut self) {
        self.scanner.check();
    }
}

impl RunningRouter {
    /// The router's GraphQL URL.
    pub fn graphql_url(&self) -> String {
        self.service.graphql_url()
    }

    /// Stops the router and waits until it has.
    pub async fn stop(&mut self) {
        self.service.stop().await;
    }

    /// Its server, state and scanner, for a harness that keeps them apart.
    pub fn into_parts(mut self) -> (Service, Arc<Router>, leaks::Scanner) {
        let service = Service {
            address: self.service.address,
            stop: self.service.stop.take(),
            task: self.service.task.take(),
        };
        (service, self.state.clone(), self.scanner.clone())
    }
}

fn secret_args() -> SecretArgs {
    SecretArgs {
        subgraph_secret: Some(SubgraphSecret::new(SUBGRAPH_SECRET).expect("long enough")),
    }
}

async fn start_users(db: &TestDb, listener: TcpListener) -> Service {
    let args = taproom_users::config::ServeArgs {
        db: taproom_users::config::DbArgs {
            database_url: db.url.clone(),
        },
        shutdown: Default::default(),
        listen: listener.local_addr().expect("bound"),
        secret_key: Some(SECRET.into()),
        token_ttl_hours: 1,
        max_body_bytes: 1024 * 1024,
        trust: secret_args(),
    };
    Service::spawn(listener, |listener, rx| {
        taproom_users::serve(args, listener, stopped(rx))
    })
}

async fn start_beers(db: &TestDb, auth_url: &str, listener: TcpListener) -> Service {
    let args = taproom_beers::config::ServeArgs {
        db: taproom_beers::config::DbArgs {
            database_url: db.url.clone(),
        },
        shutdown: Default::default(),
        listen: listener.local_addr().expect("bound"),
        auth: RemoteAuthArgs {
            auth_url: auth_url.to_owned(),
            auth_cache_seconds: 5,
        },
        max_body_bytes: 1024 * 1024,
        trust: secret_args(),
    };
    Service::spawn(listener, |listener, rx| {
        taproom_beers::serve(args, listener, stopped(rx))
    })
}

/// The order events of an orders service started here, once it has them.
pub type OrdersEvents = Arc<std::sync::OnceLock<taproom_orders::events::Events>>;

async fn start_orders(
    db: &TestDb,
    auth_url: &str,
    beers_url: &str,
    listener: TcpListener,
) -> (Service, OrdersEvents) {
    let args = taproom_orders::config::ServeArgs {
        db: taproom_orders::config::DbArgs {
            database_url: db.url.clone(),
        },
        shutdown: Default::default(),
        listen: listener.local_addr().expect("bound"),
        beers_url: beers_url.to_owned(),
        auth: RemoteAuthArgs {
            auth_url: auth_url.to_owned(),
            auth_cache_seconds: 5,
        },
        max_body_bytes: 1024 * 1024,
        no_subtree_memo: false,
        trust: secret_args(),
    };
    let events = OrdersEvents::default();
    let observed = events.clone();
    let service = Service::spawn(listener, |listener, rx| {
        taproom_orders::serve_observed(args, listener, stopped(rx), move |events| {
            observed.set(events.clone()).ok();
        })
    });
    (service, events)
}

/// Waits until `done` holds, checking every 10 ms; panics saying `what` never happened if it
/// does not within a minute (a bound for a broken test, not a measure of speed).
pub async fn until(what: &str, done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Forwards a GraphQL POST `body`, with the caller's `Authorization` and `idempotency-key` if any, to the subgraph at
/// `upstream`, as the tests' proxies in front of a subgraph do; returns its status and body.
pub async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    headers: &axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, axum::body::Bytes) {
    let mut request = http
        .post(upstream)
        .header("content-type", "application/json")
        .body(body);
    for header in ["authorization", SECRET_HEADER, "idempotency-key"] {
        if let Some(value) = headers.get(header) {
            request = request.header(header, value);
        }
    }
    let answer = request.send().await.expect("the subgraph answers");
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).expect("status");
    (status, answer.bytes().await.expect("a body"))
}
