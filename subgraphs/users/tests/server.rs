//! The users subgraph as a real server: other subgraphs verifying tokens over HTTP, and the CLI.

use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::{json, Value};
use taproom_common::{
    auth::{Authenticator, Caller, Freshness, RemoteAuthenticator, MAX_CACHE_TTL},
    test_on_both_databases,
    testing::TestDb,
    trust::{SecretArgs, SubgraphSecret, SECRET_HEADER},
};
use taproom_users::config::{DbArgs, ServeArgs};
use tokio::{net::TcpListener, sync::oneshot};

const SECRET: &str = "test-secret-key-that-is-long-enough-0123";

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(test_db: &TestDb) -> Self {
        Self::start_with(test_db, None).await
    }

    /// A server that answers only callers presenting `secret`, when given.
    async fn start_with(test_db: &TestDb, secret: Option<&str>) -> Self {
        let db = test_db.connect().await;
        db.migrate(&taproom_users::db::migrations())
            .await
            .expect("migrates");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let args = ServeArgs {
            db: DbArgs {
                database_url: test_db.url.clone(),
            },
            shutdown: Default::default(),
            listen: listener.local_addr().expect("bound"),
            secret_key: Some(SECRET.into()),
            token_ttl_hours: 1,
            max_body_bytes: 1024 * 1024,
            trust: SecretArgs {
                subgraph_secret: secret.map(|s| SubgraphSecret::new(s).expect("long enough")),
            },
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(taproom_users::serve(args, listener, async {
            stopped.await.ok();
        }));
        Server {
            base,
            stop: Some(stop),
            task,
        }
    }

    async fn gql(&self, query: &str, token: Option<&str>) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json")
    }

    async fn stop(mut self) {
        self.stop.take().expect("running").send(()).ok();
        self.task.await.expect("joins").expect("serves cleanly");
    }
}

/// Another subgraph's view of a token: valid until revoked, then refused once its cache entry
/// (at most 5 s) expires; forged tokens never pass; a dead issuer is an error, not "anonymous".
async fn revocation_reaches_other_subgraphs_within_the_cache_ttl(test_db: TestDb) {
    let server = Server::start(&test_db).await;
    let registered = server
        .gql(
            r#"mutation { register(input: { username: "remote", email: "remote@example.com", password: "Secret123" }) { token user { id } } }"#,
            None,
        )
        .await;
    let token = registered["data"]["register"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let id: i64 = registered["data"]["register"]["user"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("numeric");

    let ttl = Duration::from_millis(500);
    let remote = RemoteAuthenticator::new(format!("{}/auth/introspect", server.base), ttl);
    let expected = Some(Caller {
        user_id: id,
        is_admin: false,
    });
    assert_eq!(
        remote
            .verify(&token, Freshness::Cached)
            .await
            .expect("verifies"),
        expected
    );
    assert_eq!(
        remote
            .verify("tpr_forged", Freshness::Cached)
            .await
            .expect("verifies"),
        None
    );

    let logout = server.gql("mutation { logout }", Some(&token)).await;
    assert_eq!(logout["data"]["logout"], json!(true));
    assert_eq!(
        remote
            .verify(&token, Freshness::Now)
            .await
            .expect("verifies"),
        None,
        "a write's verification asks the issuer, whatever is cached"
    );
    assert_eq!(
        remote
            .verify(&token, Freshness::Cached)
            .await
            .expect("verifies"),
        None,
        "and its answer replaces the cached one"
    );

    // A cached valid answer expires too: the claim of the TTL. A second token, checked (and so
    // cached as valid) before it is revoked at the issuer alone, without this authenticator
    // hearing of it.
    let again = server
        .gql(
            r#"mutation { login(username: "remote", password: "Secret123") { token } }"#,
            None,
        )
        .await;
    let second = again["data"]["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let cached = RemoteAuthenticator::new(format!("{}/auth/introspect", server.base), ttl);
    let longer =
        RemoteAuthenticator::new(format!("{}/auth/introspect", server.base), MAX_CACHE_TTL);
    for authenticator in [&cached, &longer] {
        assert_eq!(
            authenticator
                .verify(&second, Freshness::Cached)
                .await
                .expect("verifies"),
            expected
        );
    }
    let logout = server.gql("mutation { logout }", Some(&second)).await;
    assert_eq!(logout["data"]["logout"], json!(true));
    assert_eq!(
        longer
            .verify(&second, Freshness::Cached)
            .await
            .expect("verifies"),
        expected,
        "within its TTL a read trusts the cached answer (that is what the cache is for)"
    );
    // Waiting out the TTL is a wait for a state, not a measure of speed.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(
        cached
            .verify(&second, Freshness::Cached)
            .await
            .expect("verifies"),
        None,
        "a valid answer cached before the revocation is refused once its TTL has passed"
    );

    let uncached =
        RemoteAuthenticator::new(format!("{}/auth/introspect", server.base), Duration::ZERO);
    assert_eq!(
        uncached
            .verify(&token, Freshness::Cached)
            .await
            .expect("verifies"),
        None
    );

    server.stop().await;
    assert!(
        uncached.verify(&token, Freshness::Cached).await.is_err(),
        "an unreachable issuer is an error"
    );
}

/// The report: subgraphs answered anyone, `_entities` included. Started with a secret, the users
/// subgraph refuses `/graphql` and `/auth/introspect` without it (403, `FORBIDDEN`), answers callers
/// that present it (the router, and other subgraphs verifying tokens), and keeps `/health` open.
async fn a_subgraph_secret_keeps_out_everyone_else(test_db: TestDb) {
    const SUBGRAPH_SECRET: &str = "users-test-subgraph-secret-long-enough-012345";
    let server = Server::start_with(&test_db, Some(SUBGRAPH_SECRET)).await;
    let http = reqwest::Client::new();
    let entities = json!({ "query": r#"{ _entities(representations: [{__typename: "User", id: "1"}]) { ... on User { username } } }"# });
    for presented in [None, Some("wrong-secret-wrong-secret-wrong-secret-00")] {
        for path in ["/graphql", "/auth/introspect"] {
            let mut request = http.post(format!("{}{path}", server.base)).json(&entities);
            if let Some(secret) = presented {
                request = request.header(SECRET_HEADER, secret);
            }
            let response = request.send().await.expect("answers");
            assert_eq!(response.status().as_u16(), 403, "{path} with {presented:?}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                json!("FORBIDDEN"),
                "{body}"
            );
        }
    }
    let allowed: Value = http
        .post(format!("{}/graphql", server.base))
        .header(SECRET_HEADER, SUBGRAPH_SECRET)
        .json(&entities)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert!(allowed["data"]["_entities"].is_array(), "{allowed}");
    let health = http
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status().as_u16(), 200);

    // Another subgraph verifying a token presents the secret too.
    let registered: Value = http
        .post(format!("{}/graphql", server.base))
        .header(SECRET_HEADER, SUBGRAPH_SECRET)
        .json(&json!({ "query": r#"mutation { register(input: {username: "tess", email: "tess@example.com", password: "Secret123"}) { token } }"# }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let token = registered["data"]["register"]["token"]
        .as_str()
        .expect("token");
    let url = format!("{}/auth/introspect", server.base);
    let without = RemoteAuthenticator::new(url.clone(), Duration::ZERO);
    assert!(
        without.verify(token, Freshness::Now).await.is_err(),
        "refused: an error, not anonymous"
    );
    let with = RemoteAuthenticator::new(url, Duration::ZERO).presenting(Some(
        SubgraphSecret::new(SUBGRAPH_SECRET).expect("long enough"),
    ));
    assert!(with
        .verify(token, Freshness::Now)
        .await
        .expect("verifies")
        .is_some());
    server.stop().await;
}

test_on_both_databases!(
    revocation_reaches_other_subgraphs_within_the_cache_ttl,
    a_subgraph_secret_keeps_out_everyone_else,
);

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_taproom-users"))
}

#[tokio::test]
async fn serve_refuses_missing_or_short_secret_keys_naming_the_setting() {
    let dir = tempfile_dir();
    for key in [None, Some("short")] {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", format!("sqlite:{}/u.db", dir.display()))
            .env_remove("SECRET_KEY");
        if let Some(key) = key {
            command.env("SECRET_KEY", key);
        }
        let output = command.output().expect("runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("SECRET_KEY"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[tokio::test]
async fn serve_refuses_an_unmigrated_database_and_bad_urls() {
    let dir = tempfile_dir();
    let run = |url: &str| {
        Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url)
            .env("SECRET_KEY", SECRET)
            .output()
            .expect("runs")
    };
    let unmigrated = run(&format!("sqlite:{}/fresh.db", dir.display()));
    assert!(!unmigrated.status.success());
    assert!(String::from_utf8_lossy(&unmigrated.stderr).contains("migrate"));
    let bad = run("mysql://nope");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DATABASE_URL"));
}

#[tokio::test]
async fn create_admin_creates_then_promotes() {
    let dir = tempfile_dir();
    let url = format!("sqlite:{}/admin.db", dir.display());
    let run = |args: &[&str], password: &str| {
        Command::new(binary())
            .args(args)
            .env("DATABASE_URL", &url)
            .env("TAPROOM_ADMIN_PASSWORD", password)
            .output()
            .expect("runs")
    };
    assert!(run(&["migrate"], "").status.success());
    assert!(
        run(&["migrate"], "").status.success(),
        "migrate twice is safe"
    );
    let weak = run(
        &[
            "create-admin",
            "--username",
            "boss",
            "--email",
            "boss@example.com",
        ],
        "weak",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password"));
    let created = run(
        &[
            "create-admin",
            "--username",
            "boss",
            "--email",
            "boss@example.com",
        ],
        "Secret123",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created admin boss"));
    let promoted = run(
        &[
            "create-admin",
            "--username",
            "BOSS",
            "--email",
            "x@example.com",
        ],
        "",
    );
    assert!(promoted.status.success());
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("is now an admin"));

    let db = taproom_common::db::Db::connect(&url).await.expect("opens");
    let rows = taproom_users::db::users_by_ids(&db, &[1])
        .await
        .expect("reads");
    assert_eq!(rows[0].username, "boss");
    assert_eq!(rows[0].is_admin, 1);
}

#[test]
fn sdl_is_federation_v2_with_the_user_key() {
    let output = Command::new(binary()).arg("sdl").output().expect("runs");
    assert!(output.status.success());
    let sdl = String::from_utf8_lossy(&output.stdout);
    assert!(
        sdl.contains("https://specs.apollo.dev/federation/v2"),
        "{sdl}"
    );
    assert!(sdl.contains("type User @key(fields: \"id\")"), "{sdl}");
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "taproom-users-cli-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("creates");
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
